import { describe, expect, it } from 'vitest';
import { runFleet, fleetOptions, TargetResources } from '../src/targets/fleet.js';
import { dependencyError, OpsctlError } from '../src/errors.js';

const targets = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `t${i}` }));

/** A promise resolved from outside: the test decides when each target finishes. */
function gate() {
  let open!: () => void;
  const p = new Promise<void>((r) => (open = r));
  return { p, open };
}

describe('runFleet', () => {
  it('never has more than --concurrency targets in flight, and returns results in input order', async () => {
    let inFlight = 0;
    let peak = 0;
    const gates = targets(10).map(() => gate());
    const started: number[] = [];
    const run = runFleet(targets(10), { concurrency: 3, timeoutMs: 60_000 }, async (t) => {
      const i = Number(t.name.slice(1));
      started.push(i);
      inFlight += 1;
      peak = Math.max(peak, inFlight);
      await gates[i].p;
      inFlight -= 1;
      return i * 10;
    });
    // Finish them in reverse as they start: each release lets exactly one more in.
    for (let k = 0; k < 10; k++) {
      await new Promise<void>((r) => setImmediate(r));
      const waiting = started.filter((i) => gates[i]).at(-1)!;
      gates[waiting].open();
      delete (gates as any)[waiting];
    }
    const out = await run;
    expect(peak).toBe(3);
    expect(out.map((o) => o.target)).toEqual(targets(10).map((t) => t.name));
    expect(out.map((o) => (o.ok ? o.value : null))).toEqual([0, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
  });

  it('a failing target is reported with its error and exit code; the others still finish', async () => {
    const out = await runFleet(targets(3), { concurrency: 2, timeoutMs: 60_000 }, async (t) => {
      if (t.name === 't1') throw dependencyError('cannot connect to PostgreSQL at x: connection refused.');
      return t.name;
    });
    expect(out[0]).toMatchObject({ ok: true, value: 't0' });
    expect(out[1]).toMatchObject({ ok: false, exitCode: 3, timedOut: false, error: expect.stringMatching(/connection refused/) });
    expect(out[2]).toMatchObject({ ok: true, value: 't2' });
  });

  it('a target past its deadline is reported as timed out, its signal aborted and its resources closed', async () => {
    let closed = 0;
    let aborted = false;
    const out = await runFleet(targets(2), { concurrency: 2, timeoutMs: 50 }, async (t, signal) => {
      if (t.name === 't0') return 'fast';
      const res = new TargetResources(signal);
      res.track({}, () => {
        closed += 1;
      });
      signal.addEventListener('abort', () => (aborted = true));
      return new Promise<string>(() => {}); // hangs: only the deadline ends it
    });
    expect(out[0]).toMatchObject({ ok: true, value: 'fast' });
    expect(out[1]).toMatchObject({ ok: false, timedOut: true, exitCode: 3, error: expect.stringMatching(/target t1 did not finish within the target timeout of 50ms/) });
    expect(aborted).toBe(true);
    await new Promise<void>((r) => setImmediate(r));
    expect(closed).toBe(1);
  });
});

describe('fleet options', () => {
  it('defaults to 4 at once and 5m per target; refuses nonsense', () => {
    expect(fleetOptions({ output: 'table' })).toEqual({ concurrency: 4, timeoutMs: 300_000 });
    expect(fleetOptions({ output: 'table', concurrency: '16', targetTimeout: '90s' })).toEqual({ concurrency: 16, timeoutMs: 90_000 });
    for (const bad of [{ concurrency: '0' }, { concurrency: 'x' }, { targetTimeout: '10' }]) {
      let e: unknown;
      try {
        fleetOptions({ output: 'table', ...bad });
      } catch (x) {
        e = x;
      }
      expect(e).toBeInstanceOf(OpsctlError);
      expect((e as OpsctlError).exitCode).toBe(2);
    }
  });
});
