import type { Database } from '../database/database.js';
import type { Config } from '../config/config.js';
import type { RemediationReport, Remedy } from '../engine/remediation.js';
import type { ResolvedQueue, StuckFilter, StuckJobRow } from './jobs-presets.js';
import { formatDuration } from '../config/durations.js';
import { lockThenClassify } from '../engine/guarded-batch.js';
import { tokenPlanState } from '../engine/plan-state.js';
import { lockJobsAndApply } from './jobs-presets.js';

/** A job in the queue's running state past the threshold (the queue's own rule by default). */
export interface StuckJob {
  id: string;
  kind: string;
  queue: string | null;
  state: string;
  attempt: number;
  maxAttempts: number;
  attemptedAt: Date;
  /** Real age on the database clock, beside the threshold: rescuing by age can run work twice. */
  ageSeconds: number;
  /** Who holds it, when the queue records it (River attempted_by, graphile-worker locked_by). */
  worker: string | null;
  /** The threshold it is past: the one given, or the job's own (pg-boss expire_in). */
  threshold: string;
  /** What a rescue makes of it: retryable, discarded, or cancelled (River, cancel requested). */
  wouldBecome: string;
}

/**
 * The preset's own rescue of the locked planned ids, whose compare-and-set token (attempt and
 * lease) proves the same holder still has the job: what every rescue (by age, by dead worker) runs.
 */
export const presetRescue =
  (q: ResolvedQueue, tokens: Map<string, string>, planned: Map<string, { reason: string }>) =>
  (t: Database, ids: string[]) =>
    lockJobsAndApply(t, q, ids, (mine) =>
      t
        .queryRaw<{ id: string; result: string }>(q.preset.rescueSql(q.schema), [mine, mine.map((id) => tokens.get(id) ?? ''), mine.map((id) => planned.get(id)?.reason ?? '')])
        .then((rows) => rows.map((r) => [r.id, r.result] as const)),
    );

/** A preset's stuck-job row as the listing shows it (also the base of a dead worker's job). */
export const toStuck = (r: StuckJobRow, thresholdMs: number | null): StuckJob => ({
  id: r.id,
  kind: r.kind,
  queue: r.queue,
  state: r.state,
  attempt: r.attempt,
  maxAttempts: r.max_attempts,
  attemptedAt: r.attempted_at,
  ageSeconds: Math.floor(r.age_seconds),
  worker: r.worker,
  threshold: formatDuration(thresholdMs ?? (r.limit_seconds ?? 0) * 1000),
  wouldBecome: r.next_state,
});

/** Stuck jobs, oldest first (call inside db.readOnly: a server-side cursor). `limit` 0 = all. */
export async function* streamStuckJobs(db: Database, q: ResolvedQueue, f: StuckFilter, limit: number): AsyncGenerator<StuckJob> {
  const params: unknown[] = [];
  const sql = q.preset.stuckSql(q.schema, f, params, limit);
  for await (const r of db.stream<StuckJobRow>(sql, params)) yield toStuck(r, f.thresholdMs);
}

export async function findStuckJobs(db: Database, q: ResolvedQueue, f: StuckFilter, limit: number): Promise<Array<StuckJob & { token: string }>> {
  const params: unknown[] = [];
  const rows = await db.query<StuckJobRow>(q.preset.stuckSql(q.schema, f, params, limit), params);
  return rows.map((r) => ({ ...toStuck(r, f.thresholdMs), token: r.token }));
}

export async function countStuckJobs(db: Database, q: ResolvedQueue, f: StuckFilter): Promise<{ count: number; oldestAgeSeconds: number }> {
  const params: unknown[] = [];
  const rows = await db.query<{ n: number; oldest: number | null }>(
    `SELECT count(*)::int AS n, max(age_seconds)::float8 AS oldest FROM (${q.preset.stuckSql(q.schema, f, params, 0)}) s`,
    params,
  );
  return { count: rows[0]?.n ?? 0, oldestAgeSeconds: Math.floor(rows[0]?.oldest ?? 0) };
}

export interface PlannedRescue extends StuckJob {
  /** The error text written with the rescue (River error entry, pg-boss output); graphile-worker and Oban: the audit row only. */
  reason: string;
}

export interface RescueOptions {
  filter: StuckFilter;
  reason?: string;
  actor: string;
  audit: Config['audit'];
}

/** "opsctl: rescued after 1h in running state (INC-42)": the threshold, not the measured age. */
export function rescueReason(threshold: string, state: string, reason?: string): string {
  return `opsctl: rescued after ${threshold} in ${state} state${reason ? ` (${reason})` : ''}`;
}

/**
 * Rescue: does what the queue's own rescuer would do to each planned job, under a
 * compare-and-set on the lease the plan saw (state plus attempted_at/locked_at and attempt),
 * so a job its worker finished, or that was fetched again, since the plan is left alone.
 */
export function rescueRemedy(q: ResolvedQueue, opts: RescueOptions): Remedy<PlannedRescue> {
  // The snapshot each job is compared against at write time; kept out of the reported items.
  const tokens = new Map<string, string>();
  const byId = new Map<string, PlannedRescue>();
  return {
    action: 'rescue',
    table: q.preset.table,
    schema: q.schema,
    labels: { applied: 'rescued', lost: 'race-lost' },
    audit: { audit: opts.audit, actor: opts.actor },
    image: { table: q.preset.table, schema: q.schema, key: 'id', columns: q.preset.writes.rescue },
    planState: tokenPlanState(tokens, byId),
    async plan(db, limit) {
      const rows = await findStuckJobs(db, q, opts.filter, limit);
      tokens.clear();
      byId.clear();
      return rows.map(({ token, ...job }) => {
        tokens.set(job.id, token);
        const planned = { ...job, reason: rescueReason(job.threshold, job.state, opts.reason) };
        byId.set(job.id, planned);
        return planned;
      });
    },
    applyBatch(tx, batch) {
      return lockThenClassify(tx, batch, {
        lockAndApply: presetRescue(q, tokens, byId),
        existsSql: q.preset.existsSql(q.schema),
        applied: (b, result) => ({
          label: `rescued-${result}`,
          audit: {
            kind: 'job.operator_rescue',
            resourceType: q.preset.table,
            resourceId: b.id,
            summary: `${b.reason}: ${b.kind} job → ${result}`,
            metadata: {
              preset: q.preset.queue,
              job_id: b.id,
              kind: b.kind,
              queue: b.queue,
              from_state: b.state,
              to_state: result,
              attempt: b.attempt,
              max_attempts: b.maxAttempts,
              threshold: b.threshold,
              age_seconds: b.ageSeconds,
              worker: b.worker,
              reason: opts.reason ?? null,
            },
          },
        }),
        lost: (b, now) => (now === b.state ? 'picked up again since the plan (a new attempt): the worker wins' : `changed since the plan (now ${now}): the worker wins`),
        skipped: 'locked by another transaction (a worker?); left alone',
        gone: 'job no longer exists (completed and deleted?)',
      });
    },
  };
}

/** The engine counts labelled outcomes under their label; `rescued` is their total. */
export function rescueSummary(report: RemediationReport<PlannedRescue>): Record<string, unknown> {
  if (report.mode === 'plan') {
    const would: Record<string, number> = {};
    for (const i of report.items) if (i.outcome === 'planned') would[`would-become-${i.wouldBecome}`] = (would[`would-become-${i.wouldBecome}`] ?? 0) + 1;
    return { ...report.summary, ...would };
  }
  const rescued = report.items.filter((i) => i.outcome.startsWith('rescued-')).length;
  return { ...report.summary, rescued };
}
