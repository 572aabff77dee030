import { describe, expect, it } from 'vitest';
import { createAdaptiveLimiter, createLimiter, mapWithConcurrency } from '../src/engine/concurrency.js';

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

describe('adaptive concurrency (backs off on throttling)', () => {
  /** Starts `n` gated tasks; reports how many run and the peak. */
  function harness(limit: ReturnType<typeof createAdaptiveLimiter>, n: number) {
    const state = { running: 0, peak: 0, started: 0 };
    const gates = Array.from({ length: n }, gate);
    const results = gates.map((g, i) =>
      limit(async () => {
        state.running += 1;
        state.started += 1;
        state.peak = Math.max(state.peak, state.running);
        await g.done;
        state.running -= 1;
        return i;
      }),
    );
    return { state, gates, results };
  }
  const tick = () => new Promise((r) => setImmediate(r));

  it('halves the calls in flight on a throttle, once per round, and never goes below one', async () => {
    const limit = createAdaptiveLimiter(8);
    const { state, gates, results } = harness(limit, 40);
    await tick();
    expect(state.running).toBe(8);
    limit.throttled();
    limit.throttled(); // the same round: the calls in flight were sent at the old rate
    expect(limit.limit).toBe(4);
    // The 8 in flight finish; only 4 take their place.
    for (const g of gates.slice(0, 8)) g.release();
    await tick();
    await tick();
    expect(state.running).toBe(4);
    expect(limit.lowest).toBe(4);
    for (const g of gates) {
      g.release();
      await tick();
    }
    expect((await Promise.all(results)).length).toBe(40);
  });

  it('adds one back per round without a throttle, up to the configured maximum', async () => {
    const limit = createAdaptiveLimiter(4);
    limit.throttled();
    expect(limit.limit).toBe(2);
    const { gates, results } = harness(limit, 30);
    for (const g of gates) {
      g.release();
      await tick();
    }
    await Promise.all(results);
    expect(limit.limit).toBe(4);
    expect(limit.lowest).toBe(2);
    const one = createAdaptiveLimiter(1);
    one.throttled();
    expect(one.limit).toBe(1);
  });
});
