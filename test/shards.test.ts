import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fnv1a32, parseShard, pickShard, shardOf } from '../src/targets/shards.js';
import { OpsctlError } from '../src/errors.js';

const usage = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(OpsctlError);
    expect((e as OpsctlError).exitCode).toBe(2);
    return (e as Error).message;
  }
  throw new Error('expected a usage error');
};

describe('--shard I/N', () => {
  it('parses I/N and refuses anything else with one sentence', () => {
    expect(parseShard('0/4')).toEqual({ index: 0, count: 4 });
    expect(parseShard(' 3 / 4 ')).toEqual({ index: 3, count: 4 });
    expect(usage(() => parseShard('4/4'))).toMatch(/between 0 and 3/);
    expect(usage(() => parseShard('1/0'))).toMatch(/at least 1/);
    expect(usage(() => parseShard('-1/4'))).toMatch(/I\/N/);
    expect(usage(() => parseShard('a/b'))).toMatch(/I\/N/);
    expect(usage(() => parseShard('2'))).toMatch(/I\/N/);
  });

  it('FNV-1a matches its published test vectors', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
  });

  it('the shards of a fleet are disjoint and their union is the whole fleet', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.stringMatching(/^[a-z0-9][a-z0-9_.-]{0,20}$/), { maxLength: 80 }), fc.integer({ min: 1, max: 12 }), (names, n) => {
        const parts = Array.from({ length: n }, (_, i) => pickShard(names, { index: i, count: n }));
        const all = parts.flat();
        expect(all.length).toBe(names.length);
        expect(new Set(all)).toEqual(new Set(names));
      }),
    );
  });

  it("a target's shard depends on its name only: adding targets moves no other target", () => {
    const names = Array.from({ length: 40 }, (_, i) => `tenant-${i}`);
    const before = new Map(names.map((n) => [n, shardOf(n, 4)]));
    const grown = [...names, 'tenant-new-1', 'aaa-first', 'zzz-last'];
    for (const n of names) expect(pickShard(grown, { index: before.get(n)!, count: 4 })).toContain(n);
  });
});
