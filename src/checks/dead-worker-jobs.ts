import type { Config, WorkersConfig } from '../config.js';
import type { ItemOutcome, Remedy } from '../remediation.js';
import type { JobFilter, ResolvedQueue, StuckJobRow } from './jobs-presets.js';
import type { PlannedRescue } from './stuck-jobs.js';
import { writeAudit } from '../audit.js';
import { usageError } from '../errors.js';
import { formatDuration } from '../durations.js';
import { lockJobs } from './job-locks.js';
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
          id: r.id,
          kind: r.kind,
          queue: r.queue,
          state: r.state,
          attempt: r.attempt,
          maxAttempts: r.max_attempts,
          attemptedAt: r.attempted_at,
          ageSeconds: Math.floor(r.age_seconds),
          worker: r.worker as string,
          workerSilentSeconds: Math.floor(r.silent_seconds),
          threshold: stale,
          wouldBecome: r.next_state,
          reason: reasonFor(r.worker as string, r.state),
        };
      });
    },
    async applyBatch(tx, batch): Promise<ItemOutcome[]> {
      // Holders first (share lock: no heartbeat commits until this batch does), then the jobs.
      const live = await lockHolders(tx, cfg, opts.staleMs, batch.map((b) => b.worker));
      const verdict = new Map(batch.map((b) => [b.id, holderVerdict(live, b.worker)]));
      const eligible = batch.filter((b) => verdict.get(b.id) === null);
      const locks = eligible.length ? await lockJobs(tx, q, eligible.map((b) => b.id)) : { locked: new Map<string, string>(), present: new Set<string>() };
      const mine = eligible.filter((b) => locks.locked.has(b.id));
      // The preset's rescue, whose token (attempt and lease) proves the same holder still has it.
      const rescued = mine.length
        ? await tx.queryRaw<{ id: string; result: string }>(q.preset.rescueSql(q.schema), [mine.map((b) => b.id), mine.map((b) => tokens.get(b.id) ?? ''), mine.map((b) => b.reason)])
        : [];
      const result = new Map(rescued.map((r) => [r.id, r.result]));
      await writeAudit(
        tx,
        opts.audit,
        opts.actor,
        batch
          .filter((b) => result.has(b.id))
          .map((b) => ({
            kind: 'job.dead_worker_rescue',
            resourceType: q.preset.table,
            resourceId: b.id,
            summary: `${b.reason}: ${b.kind} job → ${result.get(b.id)}`,
            metadata: { preset: q.preset.queue, job_id: b.id, kind: b.kind, queue: b.queue, worker: b.worker, stale, worker_silent_seconds: b.workerSilentSeconds, from_state: b.state, to_state: result.get(b.id), attempt: b.attempt, reason: opts.reason ?? null },
          })),
      );
      return batch.map((b): ItemOutcome => {
        const why = verdict.get(b.id);
        if (why) return live.busy.has(b.worker) ? { id: b.id, outcome: 'skipped', detail: why } : { id: b.id, outcome: 'lost', detail: why };
        const r = result.get(b.id);
        if (r) return { id: b.id, outcome: 'applied', label: `rescued-${r}` };
        if (locks.locked.has(b.id)) return { id: b.id, outcome: 'lost', detail: 'changed since the plan (finished, or fetched again by another worker): left alone' };
        if (locks.present.has(b.id)) return { id: b.id, outcome: 'skipped', detail: 'locked by another transaction (a worker?); left alone' };
        return { id: b.id, outcome: 'lost', detail: 'job no longer exists (completed and deleted?)' };
      });
    },
  };
}
