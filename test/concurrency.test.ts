import { describe, expect, it } from 'vitest';
import { createLimiter, mapWithConcurrency } from '../src/concurrency.js';

/** A task that finishes only when the test releases it: concurrency observed, no timers. */
function gate() {
  let release!: () => void;
  const done = new Promise<void>((r) => (release = r));
  return { release, done };
}

describe('bounded concurrency', () => {
  it('createLimiter never runs more than n tasks at once and runs every task', async () => {
    const limit = createLimiter(3);
    let running = 0;
    let peak = 0;
    const gates = Array.from({ length: 10 }, gate);
    const results = gates.map((g, i) =>
      limit(async () => {
        running += 1;
        peak = Math.max(peak, running);
        await g.done;
        running -= 1;
        return i;
      }),
    );
    await Promise.resolve();
    expect(running).toBe(3);
    for (const g of gates) {
      g.release();
      await new Promise((r) => setImmediate(r));
    }
    expect(await Promise.all(results)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(peak).toBe(3);
  });

  it('a failing task rejects its own promise and frees its slot', async () => {
    const limit = createLimiter(1);
    const a = limit(async () => {
      throw new Error('boom');
    });
    const b = limit(async () => 'ok');
    await expect(a).rejects.toThrow('boom');
    expect(await b).toBe('ok');
  });

  it('mapWithConcurrency keeps input order', async () => {
    expect(await mapWithConcurrency([3, 1, 2], 2, async (x) => x * 10)).toEqual([30, 10, 20]);
  });
});
