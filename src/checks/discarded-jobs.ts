import type { Database } from '../database/database.js';
import type { Config } from '../config/config.js';
import type { Remedy } from '../engine/remediation.js';
import type { DiscardedJobRow, JobFilter, ResolvedQueue } from './jobs-presets.js';
import { BoundedTally, errorClass } from './error-classes.js';
import { lockThenClassify } from '../engine/guarded-batch.js';
import { tokenPlanState } from '../engine/plan-state.js';
import { lockJobsAndApply } from './jobs-presets.js';

/** A job the queue gave up on: River discarded, graphile-worker permanently failed, pg-boss failed (and cancelled, if included). */
export interface DiscardedJob {
  id: string;
  kind: string;
  queue: string | null;
  state: string;
  attempt: number;
  maxAttempts: number;
  finalizedAt: Date | null;
  /** How long ago it was given up on, on the database clock. */
  ageSeconds: number | null;
  lastError: string | null;
  errorClass: string;
  /** Presets with an archive (pg-boss): true when the job is in the archive table (read-only). */
  archived?: boolean;
}

const toDiscarded = (r: DiscardedJobRow): DiscardedJob => ({
  id: r.id,
  kind: r.kind,
  queue: r.queue,
  state: r.state,
  attempt: r.attempt,
  maxAttempts: r.max_attempts,
  finalizedAt: r.finalized_at,
  ageSeconds: r.age_seconds === null ? null : Math.floor(r.age_seconds),
  lastError: r.last_error,
  errorClass: errorClass(r.last_error),
  ...(r.archived === undefined ? {} : { archived: r.archived }),
});

export interface DiscardedQuery extends JobFilter {
  includeCancelled: boolean;
  /** Only jobs whose last error has this class (computed here, as the listing does; never in SQL). */
  errorClass?: string;
}

/** Discarded jobs, newest first (call inside db.readOnly: a server-side cursor). `limit` 0 = all. */
export async function* streamDiscardedJobs(db: Database, q: ResolvedQueue, f: DiscardedQuery, limit: number): AsyncGenerator<DiscardedJob> {
  const params: unknown[] = [];
  const sql = q.preset.discardedSql(q.schema, f, f.includeCancelled, params, 'newest', limit);
  for await (const r of db.stream<DiscardedJobRow>(sql, params)) yield toDiscarded(r);
}

export interface DiscardedSummary {
  total: number;
  byKind: Array<{ kind: string; count: number; oldest: Date | null; newest: Date | null }>;
  byErrorClass: Array<{ errorClass: string; count: number; kinds: string[]; oldest: Date | null; newest: Date | null }>;
}

export const TOP_ERROR_CLASSES = 20;
export const TOP_KINDS = 50;

/** Total and groups over every matching job (not only the listed ones), in one streamed pass and bounded memory. */
export async function summariseDiscardedJobs(db: Database, q: ResolvedQueue, f: DiscardedQuery): Promise<DiscardedSummary> {
  const params: unknown[] = [];
  const sql = `SELECT kind, last_error, finalized_at FROM (${q.preset.discardedSql(q.schema, f, f.includeCancelled, params, 'newest', 0)}) d`;
  const byClass = new BoundedTally({ top: TOP_ERROR_CLASSES });
  const byKind = new BoundedTally({ top: TOP_KINDS });
  for await (const r of db.stream<{ kind: string; last_error: string | null; finalized_at: Date | null }>(sql, params, 5000)) {
    byClass.add(errorClass(r.last_error), r.finalized_at, r.kind);
    byKind.add(r.kind, r.finalized_at);
  }
  return {
    total: byClass.count,
    byKind: byKind.groups().map((g) => ({ kind: g.key, count: g.count, oldest: g.oldest, newest: g.newest })),
    byErrorClass: byClass.groups().map((g) => ({ errorClass: g.key, count: g.count, kinds: g.tags, oldest: g.oldest, newest: g.newest })),
  };
}

/** "412 discarded jobs in river_job; 400 of them one error class: …" — the line an operator reads first. */
export function discardedHeadline(s: DiscardedSummary, where: string, states: string[]): string {
  const noun = `${states.join('/')} job${s.total === 1 ? '' : 's'}`;
  if (s.total === 0) return `No ${states.join('/')} jobs in ${where}.`;
  const top = s.byErrorClass[0];
  if (s.byErrorClass.length === 1) return `${s.total} ${noun} in ${where}, all one error class: ${top.errorClass}`;
  if (top.count * 2 > s.total) return `${s.total} ${noun} in ${where}; ${top.count} of them one error class: ${top.errorClass}`;
  return `${s.total} ${noun} in ${where}, ${s.byErrorClass.length} error classes; the largest (${top.count}): ${top.errorClass}`;
}

/** How many of the given ids exist, and how many of those are not discarded (nothing to retry there). */
export async function checkRetryIds(
  db: Database,
  q: ResolvedQueue,
  ids: string[],
  includeCancelled: boolean,
): Promise<{ given: number; notFound: number; missing: string[]; notDiscarded: number }> {
  const found = await db.query<{ id: string }>(q.preset.existsSql(q.schema), [ids]);
  const there = new Set(found.map((r) => r.id));
  let missing = ids.filter((id) => !there.has(id));
  // A job in the queue's archive (pg-boss) exists: it is reported as archived, not as missing.
  if (missing.length && q.preset.archive) {
    const params: unknown[] = [];
    const sql = q.preset.discardedSql(q.schema, { ids: missing, includeArchived: true }, includeCancelled, params, 'oldest', 0);
    const archived = new Set((await db.query<{ id: string }>(`SELECT d.id FROM (${sql}) d WHERE d.archived`, params)).map((r) => r.id));
    missing = missing.filter((id) => !archived.has(id));
  }
  const params: unknown[] = [];
  const discarded = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM (${q.preset.discardedSql(q.schema, { ids }, includeCancelled, params, 'oldest', 0)}) d`,
    params,
  );
  return { given: ids.length, notFound: missing.length, missing, notDiscarded: found.length - (discarded[0]?.n ?? 0) };
}

/** How many matching discarded jobs are in the queue's archive (0 for presets without one). */
export async function countArchivedJobs(db: Database, q: ResolvedQueue, f: DiscardedQuery): Promise<number> {
  if (!q.preset.archive) return 0;
  const params: unknown[] = [];
  const sql = q.preset.discardedSql(q.schema, { ...f, includeArchived: true }, f.includeCancelled, params, 'newest', 0);
  const rows = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM (${sql}) d WHERE d.archived`, params);
  return rows[0]?.n ?? 0;
}

export type PlannedRetry = DiscardedJob;

export interface RetryOptions {
  filter: DiscardedQuery;
  reason?: string;
  actor: string;
  audit: Config['audit'];
}

/**
 * Retry: does what the queue's own retry does to each planned job (River JobRetry,
 * graphile-worker reschedule_jobs, pg-boss retry/resume), under a compare-and-set on the
 * state the plan saw, so a job retried or re-run by someone else since is left alone.
 */
export function retryRemedy(q: ResolvedQueue, opts: RetryOptions): Remedy<PlannedRetry> {
  const tokens = new Map<string, string>();
  return {
    action: 'retry',
    table: q.preset.table,
    schema: q.schema,
    labels: { applied: 'retried', lost: 'not-discarded-anymore' },
    audit: { audit: opts.audit, actor: opts.actor },
    image: { table: q.preset.table, schema: q.schema, key: 'id', columns: q.preset.writes.retry },
    planState: tokenPlanState(tokens),
    async plan(db, limit) {
      const params: unknown[] = [];
      const wanted = opts.filter.errorClass;
      let rows: DiscardedJobRow[];
      if (wanted === undefined) rows = await db.query<DiscardedJobRow>(q.preset.discardedSql(q.schema, opts.filter, opts.filter.includeCancelled, params, 'oldest', limit), params);
      else {
        // The class is computed in JS, exactly as the listing computes it: rows stream by (plan
        // runs in a read-only transaction) and only the matching ones are kept, up to the limit.
        // The CAS token (state and finalized/updated time) still guards each: a job whose error
        // changed since the plan has run again, so its token changed too.
        rows = [];
        for await (const r of db.stream<DiscardedJobRow>(q.preset.discardedSql(q.schema, opts.filter, opts.filter.includeCancelled, params, 'oldest', 0), params)) {
          if (errorClass(r.last_error) !== wanted) continue;
          rows.push(r);
          if (limit > 0 && rows.length >= limit) break;
        }
      }
      tokens.clear();
      for (const r of rows) tokens.set(r.id, r.token);
      return rows.map(toDiscarded);
    },
    applyBatch(tx, batch) {
      return lockThenClassify(tx, batch, {
        lockAndApply: (t, ids) =>
          lockJobsAndApply(t, q, ids, (mine) =>
            t
              .queryRaw<{ id: string; state: string }>(q.preset.retrySql(q.schema, opts.filter.includeCancelled), [mine, mine.map((id) => tokens.get(id) ?? '')])
              .then((rows) => rows.map((r) => [r.id, r.state] as const)),
          ),
        existsSql: q.preset.existsSql(q.schema),
        applied: (b, toState) => ({
          audit: {
            kind: 'job.operator_retry',
            resourceType: q.preset.table,
            resourceId: b.id,
            summary: `operator retry of a ${b.state} ${b.kind} job after ${b.attempt} attempt(s)${opts.reason ? `: ${opts.reason}` : ''}`,
            metadata: {
              preset: q.preset.queue,
              job_id: b.id,
              kind: b.kind,
              queue: b.queue,
              from_state: b.state,
              to_state: toState,
              attempt: b.attempt,
              max_attempts: b.maxAttempts,
              last_error: b.lastError,
              reason: opts.reason ?? null,
            },
          },
        }),
        lost: (b, state) => (state === b.state ? `${state} again since the plan (re-run by someone else?); left alone` : `not ${b.state} anymore (now ${state}); left alone`),
        skipped: 'locked by another transaction (a worker?); left alone',
        gone: 'job no longer exists (cleaned up?)',
      });
    },
  };
}
