import type { Config, WorkersConfig } from '../config/config.js';
import type { ItemOutcome, Remedy } from '../engine/remediation.js';
import type { JobFilter, ResolvedQueue, StuckJobRow } from './jobs-presets.js';
import type { PlannedRescue } from './stuck-jobs.js';
import { presetRescue, toStuck } from './stuck-jobs.js';
import { lockThenClassify } from '../engine/guarded-batch.js';
import { tokenPlanState } from '../engine/plan-state.js';
import { usageError } from '../errors.js';
import { formatDuration } from '../config/durations.js';
import { holderVerdict, lockHolders, staleHeartbeat, workerNames } from './dead-workers.js';

/**
 * `jobs rescue --dead-workers`: running jobs whose worker (River: the last entry of
 * attempted_by; graphile-worker: locked_by) is a dead worker of the worker table
 * (config workers.*), whatever the job's age. The queues keep no heartbeats of their own:
 * the worker table is the application's registry, keyed by the same ids.
 * pg-boss (v10) records no worker on a job, so there is nothing to match.
 */

export function assertQueueRecordsWorker(q: ResolvedQueue): void {
  if (q.preset.queue === 'pg-boss')
    throw usageError('pg-boss (v10) records no worker on a job, so jobs held by dead workers cannot be told apart; use jobs rescue without --dead-workers (expire_in).');
}

export interface PlannedDeadWorkerRescue extends PlannedRescue {
  worker: string;
  workerSilentSeconds: number;
}

export interface DeadWorkerRescueOptions {
  staleMs: number;
  filter: JobFilter;
  reason?: string;
  actor: string;
  audit: Config['audit'];
}

export function deadWorkerRescueRemedy(q: ResolvedQueue, cfg: WorkersConfig, opts: DeadWorkerRescueOptions): Remedy<PlannedDeadWorkerRescue> {
  assertQueueRecordsWorker(q);
  const n = workerNames(cfg);
  const stale = formatDuration(opts.staleMs);
  const tokens = new Map<string, string>();
  const reasonFor = (worker: string, state: string) =>
    `opsctl: rescued: worker ${worker} stopped heartbeating (stale after ${stale}) while the job was in ${state} state${opts.reason ? ` (${opts.reason})` : ''}`;
  return {
    action: 'rescue',
    table: q.preset.table,
    schema: q.schema,
    labels: { applied: 'rescued', lost: 'race-lost' },
    audit: { audit: opts.audit, actor: opts.actor },
    image: { table: q.preset.table, schema: q.schema, key: 'id', columns: q.preset.writes.rescue },
    planState: tokenPlanState(tokens),
    async plan(db, limit) {
      const params: unknown[] = [];
      // The preset's own running-job query with a vanishing age threshold: every running job,
      // with its holder and its compare-and-set token; then only those whose holder is dead.
      const inner = q.preset.stuckSql(q.schema, { ...opts.filter, thresholdMs: 1 }, params, 0);
      params.push(opts.staleMs / 1000);
      const rows = await db.query<StuckJobRow & { silent_seconds: number }>(
        `SELECT s.*, extract(epoch FROM now() - w.${n.heartbeat})::float8 AS silent_seconds
           FROM (${inner}) s JOIN ${n.workers} w ON w.${n.id}::text = s.worker
          WHERE ${staleHeartbeat(n, `$${params.length}`)}
          ORDER BY w.${n.heartbeat}, s.attempted_at, s.id${limit > 0 ? ` LIMIT ${Math.floor(limit)}` : ''}`,
        params,
      );
      tokens.clear();
      return rows.map((r) => {
        tokens.set(r.id, r.token);
        return {
          ...toStuck(r, opts.staleMs),
          worker: r.worker as string,
          workerSilentSeconds: Math.floor(r.silent_seconds),
          reason: reasonFor(r.worker as string, r.state),
        };
      });
    },
    async applyBatch(tx, batch): Promise<ItemOutcome[]> {
      // Holders first (share lock: no heartbeat commits until this batch does), then the jobs.
      const live = await lockHolders(tx, cfg, opts.staleMs, batch.map((b) => b.worker));
      const verdict = new Map(batch.map((b) => [b.id, holderVerdict(live, b.worker)]));
      const eligible = batch.filter((b) => verdict.get(b.id) === null);
      const byId = new Map(eligible.map((b) => [b.id, b]));
      const classified = eligible.length
        ? await lockThenClassify(tx, eligible, {
            lockAndApply: presetRescue(q, tokens, byId),
            existsSql: q.preset.existsSql(q.schema),
            applied: (b, result) => ({
              label: `rescued-${result}`,
              audit: {
                kind: 'job.dead_worker_rescue',
                resourceType: q.preset.table,
                resourceId: b.id,
                summary: `${b.reason}: ${b.kind} job → ${result}`,
                metadata: { preset: q.preset.queue, job_id: b.id, kind: b.kind, queue: b.queue, worker: b.worker, stale, worker_silent_seconds: b.workerSilentSeconds, from_state: b.state, to_state: result, attempt: b.attempt, reason: opts.reason ?? null },
              },
            }),
            lost: () => 'changed since the plan (finished, or fetched again by another worker): left alone',
            skipped: 'locked by another transaction (a worker?); left alone',
            gone: 'job no longer exists (completed and deleted?)',
          })
        : [];
      const done = new Map(classified.map((o) => [o.id, o]));
      return batch.map((b): ItemOutcome => {
        const why = verdict.get(b.id);
        if (why) return { id: b.id, outcome: live.busy.has(b.worker) ? 'skipped' : 'lost', detail: why };
        return done.get(b.id) ?? { id: b.id, outcome: 'errored', detail: 'no outcome reported' };
      });
    },
  };
}
