import type { JobFilter } from './queue-preset.js';

/** SQL pieces every queue preset shares: bound parameters and the optional filters. */

/** Appends a bound parameter; returns its placeholder. */
export function bind(params: unknown[], value: unknown): string {
  params.push(value);
  return `$${params.length}`;
}

export const limitClause = (limit: number) => (limit > 0 ? ` LIMIT ${Math.floor(limit)}` : '');

export interface FilterColumns {
  kind: string;
  /** null: the queue has no queue name of its own (its kind is its queue). */
  queue: string | null;
  /** The id column and a cast of a text[] to its type, so its index is usable. */
  id: string;
  idArrayType: string;
  finalizedAt?: string;
}

/** The optional filters as separate predicates (not `$1 IS NULL OR …`), so indexes stay usable. */
export function filterPredicates(c: FilterColumns, f: JobFilter, params: unknown[]): string[] {
  const out: string[] = [];
  if (f.kind !== undefined) out.push(`${c.kind} = ${bind(params, f.kind)}`);
  if (f.queue !== undefined) out.push(`${c.queue ?? c.kind} = ${bind(params, f.queue)}`);
  if (f.ids) out.push(`${c.id} = ANY(${bind(params, f.ids)}::${c.idArrayType})`);
  if (f.sinceMs !== undefined && c.finalizedAt) out.push(`${c.finalizedAt} >= now() - make_interval(secs => ${bind(params, f.sinceMs / 1000)}::float8)`);
  return out;
}

/** `now() - interval` for a threshold in ms, bound. */
export const olderThan = (column: string, ms: number, params: unknown[]) => `${column} < now() - make_interval(secs => ${bind(params, ms / 1000)}::float8)`;
