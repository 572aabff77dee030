import { describe, expect, it } from 'vitest';
import { BatchSizer, sizedBatches } from '../src/engine/batch-sizer.js';

describe('BatchSizer', () => {
  it('starts at 500 rows, or at the cap when the cap is smaller', () => {
    expect(new BatchSizer({ cap: 10_000 }).next()).toBe(500);
    expect(new BatchSizer({ cap: 50 }).next()).toBe(50);
    expect(new BatchSizer({ cap: 0 }).next()).toBe(1);
  });

  it('grows while batches stay well under the target, at most doubling each time, never above the cap', () => {
    const s = new BatchSizer({ cap: 3000, targetMs: 250 });
    s.record(500, 10);
    expect(s.next()).toBe(1000);
    s.record(1000, 20);
    expect(s.next()).toBe(2000);
    s.record(2000, 40);
    expect(s.next()).toBe(3000); // capped
    s.record(3000, 60);
    expect(s.next()).toBe(3000);
    expect(s.sizes()).toEqual([500, 1000, 2000, 3000]);
  });

  it('grows towards the target in proportion to the time left, and holds once a batch meets it', () => {
    const s = new BatchSizer({ cap: 100_000, targetMs: 250 });
    s.record(500, 200);
    expect(s.next()).toBe(625);
    s.record(625, 250);
    expect(s.next()).toBe(625);
    s.record(625, 124);
    expect(s.next()).toBe(1250);
    s.record(1250, 200);
    expect(s.next()).toBe(1562);
  });

  it('shrinks in proportion when a batch runs long, down to one row', () => {
    const s = new BatchSizer({ cap: 100_000, targetMs: 250, initial: 8000 });
    s.record(8000, 1000);
    expect(s.next()).toBe(2000);
    s.record(2000, 1_000_000);
    expect(s.next()).toBe(1);
    s.record(1, 5000);
    expect(s.next()).toBe(1);
  });

  it('does not grow on a short last batch (it says nothing about a full one)', () => {
    const s = new BatchSizer({ cap: 10_000, targetMs: 250 });
    s.record(37, 1);
    expect(s.next()).toBe(500);
  });

  it('describes the sizes run-length encoded', () => {
    const s = new BatchSizer({ cap: 2000, targetMs: 250 });
    for (const [n, ms] of [[500, 1], [1000, 1], [2000, 1], [2000, 1], [2000, 1], [700, 1]] as const) s.record(n, ms);
    expect(s.describe()).toBe('500,1000,2000×3,700');
  });
});

describe('sizedBatches', () => {
  it('takes each batch at the size the sizer gives at that moment, covering every item once, in order', () => {
    const items = Array.from({ length: 10 }, (_, i) => i);
    const sizes = [1, 2, 3, 100];
    let k = 0;
    const out = [...sizedBatches(items, { next: () => sizes[Math.min(k++, sizes.length - 1)] as number })];
    expect(out).toEqual([[0], [1, 2], [3, 4, 5], [6, 7, 8, 9]]);
    expect([...sizedBatches([], { next: () => 5 })]).toEqual([]);
  });
});
