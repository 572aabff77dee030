import { Readable } from 'node:stream';

/**
 * `COPY … TO STDOUT` read straight off the connection's socket: the CopyData payloads of each
 * socket read are moved together in place (the 5-byte message headers squeezed out) and pushed
 * as one chunk, the bytes the server wrote, so a row costs a copyWithin and no allocation. pg
 * would otherwise parse every row into a message object and an event. The protocol: CopyData
 * 'd' messages, with NoticeResponse/ParameterStatus/NotificationResponse allowed in between,
 * ended by CopyDone 'c' or ErrorResponse 'E'; whatever follows is handed back to pg's own
 * reader, which reports the error, CommandComplete ("COPY n") and ReadyForQuery to us.
 *
 * A pg "submittable": client.query(reader) queues it like any query. Back-pressure: the socket
 * is read only while the consumer wants more (push() returned true), so the server waits
 * on TCP and memory stays flat.
 */
const COPY_DATA = 0x64; // 'd'
const COPY_DONE = 0x63; // 'c'
/** Messages consumed while attached: CopyOutResponse 'H', CopyData, Notice 'N', ParameterStatus 'S', Notification 'A'. */
const PASSED = new Set([0x48, COPY_DATA, 0x4e, 0x53, 0x41]);

interface Socket {
  listeners(event: 'data'): ((chunk: Buffer) => void)[];
  removeListener(event: string, fn: (...a: any[]) => void): unknown;
  on(event: string, fn: (...a: any[]) => void): unknown;
  pause(): unknown;
  resume(): unknown;
  read(): Buffer | null;
}
interface Connection {
  stream: Socket;
  query(text: string): void;
}

export class CopyOutReader extends Readable {
  /** Rows the server reported sent (its "COPY n"), known once the stream has ended. */
  rowCount = 0;
  private connection: Connection | null = null;
  private pgData: ((chunk: Buffer) => void) | null = null;
  private readonly onReadable = () => this.pull();
  private attached = false;
  private wanted = false;
  private pulling = false;
  /** A message header split between two socket reads. */
  private carry: Buffer | null = null;
  /** Payload bytes of the current message still to come, and its type. */
  private remaining = 0;
  private code = 0;

  constructor(private readonly text: string) {
    super();
  }

  /** Called by pg with its Connection (typed here by the two members used). */
  submit(pgConnection: unknown): void {
    const connection = pgConnection as Connection;
    this.connection = connection;
    const socket = connection.stream;
    const listeners = socket.listeners('data');
    if (listeners.length !== 1) throw new Error(`COPY: expected pg's one data listener on the socket, found ${listeners.length}`);
    this.pgData = listeners[0] as (chunk: Buffer) => void;
    socket.removeListener('data', this.pgData);
    socket.pause();
    socket.on('readable', this.onReadable);
    this.attached = true;
    connection.query(this.text);
  }

  override _read(): void {
    this.wanted = true;
    this.pull();
  }

  private pull(): void {
    if (this.pulling || !this.wanted || !this.attached || !this.connection) return;
    this.pulling = true;
    const socket = this.connection.stream;
    let chunk: Buffer | null;
    while (this.wanted && this.attached && (chunk = socket.read()) !== null) this.parse(chunk);
    this.pulling = false;
  }

  private parse(input: Buffer): void {
    // The socket's buffer is ours: payloads move left within it (out never passes in).
    const chunk = this.carry ? Buffer.concat([this.carry, input]) : input;
    this.carry = null;
    const len = chunk.length;
    let i = 0;
    let out = 0;
    let remaining = this.remaining;
    let code = this.code;
    for (;;) {
      if (remaining > 0) {
        const n = Math.min(remaining, len - i);
        if (code === COPY_DATA) {
          if (out !== i) chunk.copyWithin(out, i, i + n);
          out += n;
        }
        i += n;
        remaining -= n;
        if (remaining > 0) break;
      }
      if (i >= len) break;
      if (len - i < 5) {
        this.carry = Buffer.from(chunk.subarray(i));
        break;
      }
      code = chunk[i] as number;
      if (!PASSED.has(code)) {
        // CopyDone (consumed here), ErrorResponse or anything else: pg reads on from there.
        if (code === COPY_DONE) i += 5;
        if (out) this.push(chunk.subarray(0, out));
        this.detach(chunk.subarray(i));
        return;
      }
      remaining = chunk.readUInt32BE(i + 1) - 4;
      i += 5;
    }
    this.remaining = remaining;
    this.code = code;
    if (out) this.wanted = this.push(chunk.subarray(0, out));
  }

  private detach(rest: Buffer): void {
    const connection = this.connection as Connection;
    const socket = connection.stream;
    socket.removeListener('readable', this.onReadable);
    this.attached = false;
    const pgData = this.pgData as (chunk: Buffer) => void;
    socket.on('data', pgData);
    if (rest.length) pgData(rest);
    // Adding the data listener back may leave the socket paused (as we left it): let it flow.
    process.nextTick(() => socket.resume());
  }

  /** From pg: the server's ErrorResponse, or the connection lost. */
  handleError(e: Error): void {
    this.destroy(e);
  }

  handleCommandComplete(msg: { text?: string }): void {
    const m = /^COPY (\d+)/.exec(msg?.text ?? '');
    if (m) this.rowCount = Number(m[1]);
  }

  /** The query is over (the count known, the session free): only now does the stream end. */
  handleReadyForQuery(): void {
    if (!this.destroyed) this.push(null);
  }
}
