import type { Database } from '../database/database.js';
import type { Config } from '../config/config.js';
import type { ItemOutcome, Remedy } from '../engine/remediation.js';
import type { ResolvedQueue } from './jobs-presets.js';

/**
 * Locks a queue keeps on something other than a job (graphile-worker's named queues in
 * `_private_job_queues`): a lock left with no stuck job behind it blocks every job of that
 * queue, and no job listing shows it. Only presets with `queueLocks` have them.
 */

export interface QueueLockRow {
  id: string;
  queue: string;
  locked_at: Date;
  locked_by: string | null;
  age_seconds: number;
  token: string;
}

export interface StaleQueueLock {
  id: string;
  queue: string;
  lockedAt: Date;
  lockedBy: string | null;
  ageSeconds: number;
}

const toLock = (r: QueueLockRow): StaleQueueLock => ({ id: r.id, queue: r.queue, lockedAt: r.locked_at, lockedBy: r.locked_by, ageSeconds: Math.floor(r.age_seconds) });

/** Stale queue locks, oldest first; [] for presets without queue locks. `thresholdMs` null: the preset's default. */
export async function findStaleQueueLocks(db: Database, q: ResolvedQueue, thresholdMs: number | null, limit = 0): Promise<Array<StaleQueueLock & { token: string }>> {
  const ql = q.preset.queueLocks;
  if (!ql) return [];
  const params: unknown[] = [];
  const rows = await db.query<QueueLockRow>(ql.staleSql(q.schema, thresholdMs, params, limit), params);
  return rows.map((r) => ({ ...toLock(r), token: r.token }));
}

export interface QueueLockOptions {
  thresholdMs: number | null;
  reason?: string;
  actor: string;
  audit: Config['audit'];
}

/** Frees stale queue locks the way the queue's own recovery does, under a compare-and-set on the lock the plan saw. */
export function queueLockRemedy(q: ResolvedQueue, opts: QueueLockOptions): Remedy<StaleQueueLock> {
  const ql = q.preset.queueLocks!;
  const tokens = new Map<string, string>();
  return {
    action: 'release queue locks',
    table: ql.table,
    schema: q.schema,
    labels: { applied: 'released', lost: 'race-lost' },
    audit: { audit: opts.audit, actor: opts.actor },
    image: { table: ql.table, schema: q.schema, key: 'id', columns: ql.writes },
    async plan(db, limit) {
      const rows = await findStaleQueueLocks(db, q, opts.thresholdMs, limit);
      tokens.clear();
      return rows.map(({ token, ...l }) => {
        tokens.set(l.id, token);
        return l;
      });
    },
    // The engine writes the audit entries of applied outcomes, in the batch's transaction.
    async applyBatch(tx, batch): Promise<ItemOutcome[]> {
      const released = await tx.queryRaw<{ id: string }>(ql.releaseSql(q.schema), [batch.map((b) => b.id), batch.map((b) => tokens.get(b.id) ?? '')]);
      const done = new Set(released.map((r) => r.id));
      return batch.map((b): ItemOutcome =>
        done.has(b.id)
          ? {
              id: b.id,
              outcome: 'applied',
              audit: {
                kind: 'job.queue_lock_release',
                resourceType: ql.table,
                resourceId: b.queue,
                summary: `opsctl: released the stale lock of queue ${b.queue}${opts.reason ? ` (${opts.reason})` : ''}`,
                metadata: { preset: q.preset.queue, queue: b.queue, locked_by: b.lockedBy, locked_at: b.lockedAt, age_seconds: b.ageSeconds, reason: opts.reason ?? null },
              },
            }
          : { id: b.id, outcome: 'lost', detail: 'the queue lock changed since the plan (released or taken again); left alone' },
      );
    },
  };
}
