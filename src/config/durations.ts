import { usageError } from '../errors.js';

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};
const WHOLE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$/;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g;
/** Ten years: anything longer is a typo, and keeps interval arithmetic far from overflow. */
const MAX_MS = 3650 * UNIT_MS.d;

/**
 * Parses `90s`, `10m`, `2h30m`, `1d`, `1.5h`. Refuses zero, negative, empty and unparseable
 * values with one sentence naming where the value came from (`what`, e.g. "--older-than").
 */
export function parseDuration(input: string, what = 'duration'): number {
  const raw = String(input ?? '').trim();
  const hint = 'use a number with a unit, like 90s, 10m, 2h30m or 1d';
  if (raw === '') throw usageError(`${what} is empty: ${hint}.`);
  if (raw.startsWith('-')) throw usageError(`${what} must be positive, got "${raw}": ${hint}.`);
  if (/^\d+(\.\d+)?$/.test(raw)) throw usageError(`${what} "${raw}" has no unit: ${hint}.`);
  if (!WHOLE.test(raw)) throw usageError(`${what} "${raw}" is not a duration: ${hint}.`);
  let ms = 0;
  for (const m of raw.matchAll(PART)) ms += Number(m[1]) * UNIT_MS[m[2]];
  ms = Math.round(ms);
  if (ms <= 0) throw usageError(`${what} must be greater than zero, got "${raw}".`);
  if (ms > MAX_MS) throw usageError(`${what} "${raw}" is longer than ten years.`);
  return ms;
}

/** The shortest exact rendering: 600000 → "10m", 9000000 → "2h30m", 1500 → "1.5s". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 0) return `-${formatDuration(-ms)}`;
  if (ms === 0) return '0s';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  let rest = ms;
  const parts: string[] = [];
  for (const [unit, size] of [
    ['d', UNIT_MS.d],
    ['h', UNIT_MS.h],
    ['m', UNIT_MS.m],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  if (rest > 0) {
    const s = rest / 1000;
    // Milliseconds kept (1.234s), so that parseDuration(formatDuration(ms)) === ms.
    parts.push(`${Number.isInteger(s) ? s : Number(s.toFixed(3))}s`);
  }
  return parts.join('');
}

/** A coarse age for tables: "3d4h", "12m", "45s" — two units at most. */
export function formatAge(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  if (ms < 0) return `-${formatAge(-ms)}`;
  const secs = Math.floor(ms / 1000);
  if (secs < 60) return `${secs}s`;
  const mins = Math.floor(secs / 60);
  if (mins < 60) return `${mins}m${secs % 60 ? `${secs % 60}s` : ''}`;
  const hours = Math.floor(mins / 60);
  if (hours < 24) return `${hours}h${mins % 60 ? `${mins % 60}m` : ''}`;
  const days = Math.floor(hours / 24);
  return `${days}d${hours % 24 ? `${hours % 24}h` : ''}`;
}
