import { Writable } from 'node:stream';

/** A stream that keeps everything written to it (what a command printed). */
export class Collect extends Writable {
  chunks: Buffer[] = [];
  _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void) {
    this.chunks.push(Buffer.from(chunk));
    cb();
  }
  get bytes() {
    return Buffer.concat(this.chunks);
  }
  get text() {
    return this.bytes.toString('utf8');
  }
}
