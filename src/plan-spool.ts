import { mkdtemp, open, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A plan of any size with flat memory: its NDJSON lines (as the server wrote them) go to a
 * temporary file and are read back a batch at a time. The file is unlinked as soon as it is
 * open (mode 0600, in a fresh 0700 directory that is removed at once): nothing is left behind
 * whatever becomes of the process, and the plan stays readable after a lost connection, so the
 * rows a stopped run never attempted are still reported.
 */
export class PlanSpool {
  private written = 0;
  private lineCount = 0;
  private readPos = 0;
  private rest: Buffer = Buffer.alloc(0);
  private readonly chunk = Buffer.allocUnsafe(1 << 20);

  private constructor(private readonly fh: FileHandle) {}

  static async create(): Promise<PlanSpool> {
    const dir = await mkdtemp(join(tmpdir(), 'opsctl-plan-'));
    const file = join(dir, 'plan.ndjson');
    const fh = await open(file, 'wx+', 0o600);
    await unlink(file);
    await rmdir(dir);
    return new PlanSpool(fh);
  }

  /** Appends server chunks (a chunk may end mid-line); counts the lines. */
  async write(chunk: Buffer): Promise<void> {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) this.lineCount += 1;
    let off = 0;
    while (off < chunk.length) {
      const { bytesWritten } = await this.fh.write(chunk, off, chunk.length - off, this.written);
      off += bytesWritten;
      this.written += bytesWritten;
    }
  }

  get count(): number {
    return this.lineCount;
  }

  /** The next `n` lines (fewer at the end; none once all are read). */
  async take(n: number): Promise<string[]> {
    const out: string[] = [];
    for (;;) {
      let start = 0;
      for (let i = this.rest.indexOf(10); i !== -1 && out.length < n; i = this.rest.indexOf(10, start)) {
        out.push(this.rest.toString('utf8', start, i));
        start = i + 1;
      }
      this.rest = this.rest.subarray(start);
      if (out.length >= n || this.readPos >= this.written) return out;
      const { bytesRead } = await this.fh.read(this.chunk, 0, this.chunk.length, this.readPos);
      this.readPos += bytesRead;
      // Copied: the read buffer is reused, the rest of a line may outlive it.
      this.rest = Buffer.concat([this.rest, this.chunk.subarray(0, bytesRead)]);
    }
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => {});
  }
}
