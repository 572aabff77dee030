/**
 * Batch sizes chosen by time: each batch is one transaction holding its row locks, so its
 * duration is what live workers may wait on. Fixed small batches pay a round trip and a commit
 * each; fixed large ones can hold locks too long on a slow table. The sizer grows the batch
 * towards the target while one stays under it and shrinks it in proportion when one runs long.
 */

/** Reap's aim per batch: row locks held ~250 ms, far under the 1 s no batch may exceed. */
export const REAP_BATCH_TARGET_MS = 250;

export interface BatchSizerOptions {
  /** The largest batch ever used (`--batch-size` / the config's batchSize). */
  cap: number;
  /** Lock time aimed at per batch, in ms (default 250). */
  targetMs?: number;
  /** The first batch (default 500, or the cap if smaller): small enough to be safe on any table. */
  initial?: number;
}

export class BatchSizer {
  readonly cap: number;
  readonly targetMs: number;
  private size: number;
  private readonly used: number[] = [];

  constructor(opts: BatchSizerOptions) {
    this.cap = Math.max(1, Math.floor(opts.cap));
    this.targetMs = opts.targetMs ?? 250;
    this.size = Math.max(1, Math.min(this.cap, Math.floor(opts.initial ?? 500)));
  }

  /** The size of the next batch. */
  next(): number {
    return this.size;
  }

  /** After each batch: how many rows it had and how long its transaction took. */
  record(rows: number, ms: number): void {
    this.used.push(rows);
    if (ms > this.targetMs) {
      // Too long: scale down to what would have met the target (at least one row).
      this.size = Math.max(1, Math.floor(rows * (this.targetMs / ms)));
    } else if (rows >= this.size) {
      // Under the target, and a full batch (a short last batch says little): double while well
      // under it, then grow to what would have met the target at the rate just measured. The
      // fixed cost of a batch makes that rate pessimistic, so the size approaches the target
      // from below instead of stalling anywhere under it.
      const fit = ms < this.targetMs / 2 ? rows * 2 : Math.floor(rows * (this.targetMs / ms));
      this.size = Math.min(this.cap, rows * 2, Math.max(rows, fit));
    }
  }

  /** The sizes used, in order. */
  sizes(): number[] {
    return [...this.used];
  }

  /** The sizes used, run-length encoded for a summary line: "500,1000,2000,4000×3,3100". */
  describe(): string {
    const parts: string[] = [];
    for (let i = 0; i < this.used.length; ) {
      let j = i;
      while (j < this.used.length && this.used[j] === this.used[i]) j++;
      parts.push(j - i > 1 ? `${this.used[i]}×${j - i}` : String(this.used[i]));
      i = j;
    }
    return parts.join(',');
  }
}

/** Slices `items` into batches, each as large as the sizer says at the moment it is taken. */
export function* sizedBatches<T>(items: T[], sizer: { next(): number }): Generator<T[]> {
  for (let i = 0; i < items.length; ) {
    const n = Math.max(1, sizer.next());
    yield items.slice(i, i + n);
    i += n;
  }
}
