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
  /** One read buffer, reused: bytes [start, end) are read but not yet handed out. */
  private buf = Buffer.allocUnsafe(1 << 20);
  private start = 0;
  private end = 0;
  /** A live spool (create({ live: true })): read while still being written, until finish() or fail(). */
  private finished: boolean;
  private failure: { error: unknown } | null = null;
  private wake: (() => void) | null = null;

  private constructor(
    private readonly fh: FileHandle,
    live: boolean,
  ) {
    this.finished = !live;
  }

  /**
   * `live`: lines are taken while the plan is still being written (take waits for them); the
   * writer ends it with finish() or fail(). Otherwise the whole plan is written before any take.
   */
  static async create(opts: { live?: boolean } = {}): Promise<PlanSpool> {
    const dir = await mkdtemp(join(tmpdir(), 'opsctl-plan-'));
    const file = join(dir, 'plan.ndjson');
    const fh = await open(file, 'wx+', 0o600);
    await unlink(file);
    await rmdir(dir);
    return new PlanSpool(fh, opts.live ?? false);
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
    this.notify();
  }

  /** A live spool: the plan is complete. */
  finish(): void {
    this.finished = true;
    this.notify();
  }

  /** A live spool: the plan failed; a take that runs out of lines throws `error`. */
  fail(error: unknown): void {
    this.failure = { error };
    this.finished = true;
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Lines written so far (a live spool: the whole plan once finished). */
  get count(): number {
    return this.lineCount;
  }

  /**
   * The next `n` lines (fewer at the end; none once all are read). A live spool waits for
   * them while the plan is still being written, and throws its failure once the lines written
   * before it are read.
   */
  async take(n: number): Promise<string[]> {
    const out: string[] = [];
    for (;;) {
      for (let i = this.buf.indexOf(10, this.start); i !== -1 && i < this.end && out.length < n; i = this.buf.indexOf(10, this.start)) {
        out.push(this.buf.toString('utf8', this.start, i));
        this.start = i + 1;
      }
      if (out.length >= n) return out;
      if (this.readPos >= this.written) {
        if (this.failure) {
          if (out.length) return out;
          throw this.failure.error;
        }
        if (this.finished) return out;
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      // Keep the unfinished line at the front (no new buffer per read: a plan of a million rows
      // is ~100 reads, and a buffer per read would live until the next major collection).
      if (this.start > 0) {
        this.buf.copy(this.buf, 0, this.start, this.end);
        this.end -= this.start;
        this.start = 0;
      }
      if (this.end === this.buf.length) {
        const bigger = Buffer.allocUnsafe(this.buf.length * 2);
        this.buf.copy(bigger, 0, 0, this.end);
        this.buf = bigger;
      }
      const { bytesRead } = await this.fh.read(this.buf, this.end, this.buf.length - this.end, this.readPos);
      this.readPos += bytesRead;
      this.end += bytesRead;
    }
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => {});
  }
}
