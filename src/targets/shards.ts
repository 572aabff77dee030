import { usageError } from '../errors.js';

/**
 * `--shard I/N`: shard I of N gets the targets whose name hashes to I (FNV-1a, 32 bit, mod N).
 *
 * Why a hash of the name and not "sorted index mod N": a target's shard then depends on its
 * name and N only, not on the rest of the fleet. Adding or removing a target moves no other
 * target, and two shards that read different versions of the config (a ConfigMap updated
 * while an Indexed Job runs) still never both check, nor both miss, a target they both know.
 * The price is balance: shards differ in size by chance, not by at most one.
 */

export interface Shard {
  index: number;
  count: number;
}

export function parseShard(value: string, flag = '--shard'): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(value);
  if (!m) throw usageError(`${flag} takes I/N (shard I of N, counted from 0), like 0/4; got "${value}".`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1) throw usageError(`${flag} ${value}: N must be at least 1.`);
  if (count > 10_000) throw usageError(`${flag} ${value}: N must be at most 10000.`);
  if (index >= count) throw usageError(`${flag} ${value}: I must be between 0 and ${count - 1} (shards are counted from 0, as JOB_COMPLETION_INDEX is).`);
  return { index, count };
}

/** FNV-1a over the UTF-8 bytes: tiny, stable across Node versions and platforms. */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export const shardOf = (name: string, count: number): number => fnv1a32(name) % count;

export function pickShard(names: string[], shard: Shard): string[] {
  return names.filter((n) => shardOf(n, shard.count) === shard.index);
}
