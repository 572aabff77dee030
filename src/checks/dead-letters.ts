import type { Database } from '../database/database.js';
import type { PropagationsConfig } from '../config/config.js';
import { usageError } from '../errors.js';
import { displayName } from '../database/identifiers.js';
import { BoundedTally, errorClass } from './error-classes.js';
import { bind, propagationNames, type PropagationNames } from './propagations-table.js';

/** A dead-lettered propagation: failed_at is set. */
export interface DeadLetter {
  id: string;
  kind: string;
  teamId: string | null;
  attempts: number;
  failedAt: Date;
  /** How long it has been dead: now() - failed_at on the database clock. */
  ageSeconds: number;
  createdAt: Date;
  lastError: string | null;
  errorClass: string;
}

export interface DeadLetterFilter {
  kind?: string;
  /** Dead-lettered within this long (failed_at >= now() - since). */
  sinceMs?: number;
  /** Dead-lettered longer ago than this (failed_at < now() - olderThan): purge. */
  olderThanMs?: number;
  ids?: string[];
  /** Only rows whose last error has this class (computed here, as the listing does; never in SQL). */
  errorClass?: string;
}

/** Conditions every dead-letter query shares; values are bound, names quoted. */
export function deadLetterWhere(n: PropagationNames, f: DeadLetterFilter, params: unknown[]): string {
  const where = [`${n.failedAt} IS NOT NULL`];
  if (f.kind !== undefined) where.push(`${n.kind}::text = ${bind(params, f.kind)}`);
  if (f.sinceMs !== undefined) where.push(`${n.failedAt} >= now() - make_interval(secs => ${bind(params, f.sinceMs / 1000)}::float8)`);
  if (f.olderThanMs !== undefined) where.push(`${n.failedAt} < now() - make_interval(secs => ${bind(params, f.olderThanMs / 1000)}::float8)`);
  // Untyped parameter: the server parses the ids as the id column's own type.
  if (f.ids) where.push(`${n.id} = ANY(${bind(params, f.ids)})`);
  return where.join(' AND ');
}

export function deadLetterColumns(n: PropagationNames): string {
  return `${n.id}::text AS id, ${n.kind}::text AS kind, ${n.teamId} AS team_id, ${n.attempts}::int AS attempts,
          ${n.failedAt} AS failed_at, extract(epoch FROM now() - ${n.failedAt})::float8 AS age_seconds,
          ${n.createdAt} AS created_at, ${n.lastError}::text AS last_error`;
}

export interface DeadLetterRow {
  id: string;
  kind: string;
  team_id: string | null;
  attempts: number;
  failed_at: Date;
  age_seconds: number;
  created_at: Date;
  last_error: string | null;
}

export const toDeadLetter = (r: DeadLetterRow): DeadLetter => ({
  id: r.id,
  kind: r.kind,
  teamId: r.team_id,
  attempts: r.attempts,
  failedAt: r.failed_at,
  ageSeconds: Math.floor(r.age_seconds),
  createdAt: r.created_at,
  lastError: r.last_error,
  errorClass: errorClass(r.last_error),
});

/** Dead letters, newest first (call inside db.readOnly: a server-side cursor). `limit` 0 = all. */
export async function* streamDeadLetters(db: Database, cfg: PropagationsConfig, f: DeadLetterFilter, limit: number): AsyncGenerator<DeadLetter> {
  const n = propagationNames(cfg);
  const params: unknown[] = [];
  const sql = `SELECT ${deadLetterColumns(n)} FROM ${n.table} WHERE ${deadLetterWhere(n, f, params)}
                ORDER BY ${n.failedAt} DESC, ${n.id}${limit > 0 ? ` LIMIT ${Math.floor(limit)}` : ''}`;
  for await (const r of db.stream<DeadLetterRow>(sql, params)) yield toDeadLetter(r);
}

export interface DeadLetterSummary {
  total: number;
  byKind: Array<{ kind: string; count: number; oldest: Date | null; newest: Date | null }>;
  byErrorClass: Array<{ errorClass: string; count: number; kinds: string[]; oldest: Date | null; newest: Date | null }>;
}

/** Groups shown at most; the rest are folded into "(other)". */
export const TOP_ERROR_CLASSES = 20;
export const TOP_KINDS = 50;

/**
 * Total and groups over every matching dead letter (not only the listed ones), from one
 * streamed pass: only the bounded tallies are held, never the rows.
 */
export async function summariseDeadLetters(db: Database, cfg: PropagationsConfig, f: DeadLetterFilter): Promise<DeadLetterSummary> {
  const n = propagationNames(cfg);
  const params: unknown[] = [];
  const sql = `SELECT ${n.kind}::text AS kind, ${n.lastError}::text AS last_error, ${n.failedAt} AS failed_at
                 FROM ${n.table} WHERE ${deadLetterWhere(n, f, params)}`;
  const byClass = new BoundedTally({ top: TOP_ERROR_CLASSES });
  const byKind = new BoundedTally({ top: TOP_KINDS });
  for await (const r of db.stream<{ kind: string; last_error: string | null; failed_at: Date }>(sql, params, 5000)) {
    byClass.add(errorClass(r.last_error), r.failed_at, r.kind);
    byKind.add(r.kind, r.failed_at);
  }
  return {
    total: byClass.count,
    byKind: byKind.groups().map((g) => ({ kind: g.key, count: g.count, oldest: g.oldest, newest: g.newest })),
    byErrorClass: byClass.groups().map((g) => ({ errorClass: g.key, count: g.count, kinds: g.tags, oldest: g.oldest, newest: g.newest })),
  };
}

/** "412 dead letters; 400 of them one error class: …" — the line an operator reads first. */
export function deadLetterHeadline(s: DeadLetterSummary, where: string): string {
  if (s.total === 0) return `No dead letters in ${where}.`;
  const noun = s.total === 1 ? 'dead letter' : 'dead letters';
  const top = s.byErrorClass[0];
  if (s.byErrorClass.length === 1) return `${s.total} ${noun} in ${where}, all one error class: ${top.errorClass}`;
  if (top.count * 2 > s.total) return `${s.total} ${noun} in ${where}; ${top.count} of them one error class: ${top.errorClass}`;
  return `${s.total} ${noun} in ${where}, ${s.byErrorClass.length} error classes; the largest (${top.count}): ${top.errorClass}`;
}

const INPUT_SYNTAX = new Set(['22P02', '22003', '22007', '22008', '22023', '22021']);

export interface IdCheck {
  given: number;
  notFound: number;
  /** The ids given that do not exist, as given. */
  missing: string[];
  /** Found, but applied or pending: nothing to retry or purge. */
  notDead: number;
}

/**
 * Ids from the command line are cast by the server to the id column's own type (uuid,
 * bigint, text...) inside a READ ONLY transaction: a malformed one is a usage error before
 * anything is written. Returns how many are not dead letters, for the report.
 */
export async function checkIds(db: Database, cfg: PropagationsConfig, ids: string[]): Promise<IdCheck> {
  const n = propagationNames(cfg);
  const probe = (xs: string[]) =>
    db.readOnly((ro) =>
      ro.queryRaw<{ found: number; dead: number }>(
        `SELECT count(*)::int AS found, count(*) FILTER (WHERE ${n.failedAt} IS NOT NULL AND ${n.appliedAt} IS NULL)::int AS dead
           FROM ${n.table} WHERE ${n.id} = ANY($1)`,
        [xs],
      ),
    );
  try {
    const [r] = await probe(ids);
    const notFound = ids.length - r.found;
    // Which ones, by position: the server compares in the id column's type ("3FDD…" is "3fdd…").
    const found = notFound
      ? await db.readOnly((ro) => ro.queryRaw<{ pos: number }>(`SELECT array_position($1, ${n.id}) AS pos FROM ${n.table} WHERE ${n.id} = ANY($1)`, [ids]))
      : [];
    const at = new Set(found.map((f) => f.pos - 1));
    return { given: ids.length, notFound, missing: notFound ? ids.filter((_, i) => !at.has(i)) : [], notDead: r.found - r.dead };
  } catch (e) {
    if (!INPUT_SYNTAX.has((e as { code?: string }).code ?? '')) throw db.translate(e);
  }
  // Name the first bad id (a handful of ids: one probe each is cheap).
  const type = await db.query<{ t: string }>(
    'SELECT format_type(a.atttypid, a.atttypmod) AS t FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attname = $2',
    [n.table, cfg.columns.id],
  );
  for (const id of ids) {
    try {
      await probe([id]);
    } catch (e) {
      if (INPUT_SYNTAX.has((e as { code?: string }).code ?? ''))
        throw usageError(`id "${id}" is not a valid ${type[0]?.t ?? 'id'} (the type of ${displayName(cfg.table, cfg.schema)}.${cfg.columns.id}); nothing was changed.`);
      throw db.translate(e);
    }
  }
  throw usageError('an id is not valid for the id column; nothing was changed.');
}
