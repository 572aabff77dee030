import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PlanSpool } from '../src/engine/plan-spool.js';

const saved = process.env.TMPDIR;
afterEach(() => {
  if (saved === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = saved;
});

describe('PlanSpool', () => {
  it('gives back every line once, in order, whatever the chunk and batch boundaries, and leaves no file behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'opsctl-spool-test-'));
    process.env.TMPDIR = dir;
    const spool = await PlanSpool.create();
    try {
      // Nothing on disk by name, even while the spool is open: the file was unlinked at once.
      expect(readdirSync(dir)).toEqual([]);
      const lines = Array.from({ length: 5000 }, (_, i) => JSON.stringify({ id: `row-${i}`, note: 'é'.repeat(i % 7) }));
      const text = Buffer.from(`${lines.join('\n')}\n`);
      // Chunks that end mid-line and mid-character.
      for (let off = 0, n = 1; off < text.length; off += n, n = (n * 7 + 3) % 997 || 1) await spool.write(text.subarray(off, off + n));
      expect(spool.count).toBe(5000);
      const got: string[] = [];
      for (const n of [1, 2, 1000, 3000, 5000]) got.push(...(await spool.take(n)));
      expect(got).toEqual(lines);
      expect(await spool.take(10)).toEqual([]);
    } finally {
      await spool.close();
      expect(readdirSync(dir)).toEqual([]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a line longer than its read buffer (1 MiB) comes back whole', async () => {
    const spool = await PlanSpool.create();
    try {
      const long = 'x'.repeat(3 * (1 << 20) + 17);
      await spool.write(Buffer.from(`a\n${long}\nb\n`));
      expect(await spool.take(5)).toEqual(['a', long, 'b']);
    } finally {
      await spool.close();
    }
  });

  it('an empty plan counts zero and gives nothing back', async () => {
    const spool = await PlanSpool.create();
    try {
      expect(spool.count).toBe(0);
      expect(await spool.take(100)).toEqual([]);
    } finally {
      await spool.close();
    }
  });

  it('live: a take waits for lines still being written, lines split across writes come back whole, and it ends at finish()', async () => {
    const spool = await PlanSpool.create({ live: true });
    try {
      // Two whole lines and half of a third: a take of 3 must wait for the rest.
      await spool.write(Buffer.from('{"id":"a"}\n{"id":"b"}\n{"id":'));
      const pending = spool.take(3);
      let settled = false;
      void pending.then(() => (settled = true));
      await new Promise<void>((resolve) => setImmediate(resolve));
      expect(settled).toBe(false);
      await spool.write(Buffer.from('"c"}\n{"id":"d"}\n'));
      expect(await pending).toEqual(['{"id":"a"}', '{"id":"b"}', '{"id":"c"}']);
      const rest = spool.take(10);
      spool.finish();
      expect(await rest).toEqual(['{"id":"d"}']);
      expect(await spool.take(10)).toEqual([]);
      expect(spool.count).toBe(4);
    } finally {
      await spool.close();
    }
  });

  it('live: after fail(), the lines written before it are still given back, then the failure is thrown', async () => {
    const spool = await PlanSpool.create({ live: true });
    try {
      await spool.write(Buffer.from('{"id":"a"}\n{"id":"b"}\n'));
      spool.fail(new Error('the plan failed'));
      expect(await spool.take(5)).toEqual(['{"id":"a"}', '{"id":"b"}']);
      await expect(spool.take(5)).rejects.toThrow('the plan failed');
    } finally {
      await spool.close();
    }
  });
});
