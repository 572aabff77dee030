import type { Database } from '../database/database.js';
import type { PropagationsConfig } from '../config/config.js';
import { parseDuration } from '../config/durations.js';
import { bind, propagationNames } from './propagations-table.js';

/**
 * Pending propagations in trouble (neither applied nor dead yet):
 * - overdue: due for longer than the threshold, so no runner is picking it up (a runner
 *   leases a row by pushing next_attempt_at ahead, so a worked row is never overdue);
 * - near-dead: attempts >= maxAttempts - 2, one or two failures from the dead-letter queue;
 * - unknown-kind: kind not in propagations.knownKinds (only when that is set): the writer
 *   is newer than the worker, and the row will be dead-lettered after its retries.
 */
export type PendingProblem = 'overdue' | 'near-dead' | 'unknown-kind';

export interface PendingPropagation {
  id: string;
  kind: string;
  teamId: string | null;
  attempts: number;
  nextAttemptAt: Date;
  /** now() - next_attempt_at: positive when due (or overdue), negative when scheduled ahead. */
  overdueSeconds: number;
  lastAttemptAt: Date | null;
  lastError: string | null;
  createdAt: Date;
  /** When it would be dead-lettered if every remaining attempt failed (from propagations.backoff). */
  deadLetteredEarliest: Date;
  problems: PendingProblem[];
}

export interface PendingQuery {
  overdueMs: number;
  kind?: string;
  /** 0 = no limit */
  limit: number;
}

export interface PendingSummary {
  troubled: number;
  overdue: number;
  nearDead: number;
  unknownKind: number;
}

interface Row {
  id: string;
  kind: string;
  team_id: string | null;
  attempts: number;
  next_attempt_at: Date;
  overdue_seconds: number;
  last_attempt_at: Date | null;
  last_error: string | null;
  created_at: Date;
  is_overdue: boolean;
  is_near_dead: boolean;
  is_unknown: boolean;
}

/** attempts >= this is near-dead. */
export const nearDeadAt = (cfg: PropagationsConfig) => Math.max(1, cfg.maxAttempts - 2);

/** The pending rows with a flag per problem; callers keep the rows with at least one. */
function troubledSql(cfg: PropagationsConfig, q: PendingQuery, params: unknown[]): string {
  const n = propagationNames(cfg);
  const unknown = cfg.knownKinds ? `NOT (${n.kind}::text = ANY(${bind(params, cfg.knownKinds)}::text[]))` : 'false';
  const where = [`${n.appliedAt} IS NULL`, `${n.failedAt} IS NULL`];
  if (q.kind !== undefined) where.push(`${n.kind}::text = ${bind(params, q.kind)}`);
  return `SELECT ${n.id}::text AS id, ${n.kind}::text AS kind, ${n.teamId} AS team_id, ${n.attempts}::int AS attempts,
                 ${n.nextAttemptAt} AS next_attempt_at, extract(epoch FROM now() - ${n.nextAttemptAt})::float8 AS overdue_seconds,
                 ${n.lastAttemptAt} AS last_attempt_at, ${n.lastError}::text AS last_error, ${n.createdAt} AS created_at,
                 coalesce(${n.nextAttemptAt} < now() - make_interval(secs => ${bind(params, q.overdueMs / 1000)}::float8), false) AS is_overdue,
                 ${n.attempts} >= ${bind(params, nearDeadAt(cfg))}::int AS is_near_dead,
                 ${unknown} AS is_unknown
            FROM ${n.table} WHERE ${where.join(' AND ')}`;
}

/** Troubled pending rows, most overdue first (call inside db.readOnly: a server-side cursor). */
export async function* streamPending(db: Database, cfg: PropagationsConfig, q: PendingQuery): AsyncGenerator<PendingPropagation> {
  const params: unknown[] = [];
  const sql = `SELECT * FROM (${troubledSql(cfg, q, params)}) p WHERE is_overdue OR is_near_dead OR is_unknown
                ORDER BY next_attempt_at, id${q.limit > 0 ? ` LIMIT ${Math.floor(q.limit)}` : ''}`;
  const backoffMs = cfg.backoff.map((d) => parseDuration(d, 'propagations.backoff'));
  for await (const r of db.stream<Row>(sql, params)) {
    const problems: PendingProblem[] = [];
    if (r.is_overdue) problems.push('overdue');
    if (r.is_near_dead) problems.push('near-dead');
    if (r.is_unknown) problems.push('unknown-kind');
    yield {
      id: r.id,
      kind: r.kind,
      teamId: r.team_id,
      attempts: r.attempts,
      nextAttemptAt: r.next_attempt_at,
      overdueSeconds: Math.floor(r.overdue_seconds),
      lastAttemptAt: r.last_attempt_at,
      lastError: r.last_error,
      createdAt: r.created_at,
      deadLetteredEarliest: new Date(r.next_attempt_at.getTime() + remainingBackoffMs(r.attempts, cfg.maxAttempts, backoffMs)),
      problems,
    };
  }
}

/**
 * Backoff still ahead if every attempt fails: the runner picks the delay by the attempt count
 * before increment and dead-letters on failure number maxAttempts.
 */
export function remainingBackoffMs(attempts: number, maxAttempts: number, backoffMs: number[]): number {
  let ms = 0;
  for (let i = attempts; i <= maxAttempts - 2; i += 1) ms += backoffMs[Math.min(i, backoffMs.length - 1)];
  return ms;
}

/** Counts per problem over every troubled row (not only the listed ones). */
export async function summarisePending(db: Database, cfg: PropagationsConfig, q: PendingQuery): Promise<PendingSummary> {
  const params: unknown[] = [];
  const [r] = await db.query<PendingSummary>(
    `SELECT count(*) FILTER (WHERE is_overdue OR is_near_dead OR is_unknown)::int AS troubled,
            count(*) FILTER (WHERE is_overdue)::int AS overdue,
            count(*) FILTER (WHERE is_near_dead)::int AS "nearDead",
            count(*) FILTER (WHERE is_unknown)::int AS "unknownKind"
       FROM (${troubledSql(cfg, q, params)}) p`,
    params,
  );
  return r;
}
