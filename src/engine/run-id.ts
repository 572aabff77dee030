import { randomBytes } from 'node:crypto';

/**
 * A run's id: a UUIDv7 (RFC 9562), its first 48 bits the start time in milliseconds, so ids
 * sort by when their runs started; the rest random. Node 20 has no built-in v7.
 */
export function newRunId(nowMs: number = Date.now()): string {
  const b = randomBytes(16);
  b.writeUIntBE(nowMs, 0, 6);
  b[6] = 0x70 | ((b[6] as number) & 0x0f); // version 7
  b[8] = 0x80 | ((b[8] as number) & 0x3f); // variant 10
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The start time a run id carries (ms since the epoch). */
export const runIdTime = (id: string): number => parseInt(id.replace(/-/g, '').slice(0, 12), 16);
