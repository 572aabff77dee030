import { formatAge } from '../../config/durations.js';
import { ITEM_LIMIT, withDb, type CheckDefinition, jobsNotConfigured } from './definition.js';

export const stuckJobsCheck: CheckDefinition = {
  check: 'stuck-jobs',
  group: 'jobs',
  threshold: { key: 'stuckJobs', default: 1 },
  skip: jobsNotConfigured,
  run: (deps) =>
    withDb(deps, async (db) => {
      const { resolveQueue, rescueThresholdMs, assertQueueSchema } = await import('../jobs-presets.js');
      const { countStuckJobs, findStuckJobs } = await import('../stuck-jobs.js');
      const q = resolveQueue(deps.config);
      await assertQueueSchema(db, q);
      const f = { thresholdMs: rescueThresholdMs(q, undefined) };
      const total = await countStuckJobs(db, q, f);
      const items = total.count ? (await findStuckJobs(db, q, f, ITEM_LIMIT)).map(({ token: _t, ...j }) => j) : [];
      // A stale queue lock (graphile-worker) blocks its whole queue: a finding like a stuck job.
      const { findStaleQueueLocks } = await import('../queue-locks.js');
      const locks = (await findStaleQueueLocks(db, q, f.thresholdMs)).map(({ token: _t, ...l }) => l);
      const w = items[0];
      const l = locks[0];
      return {
        count: total.count + locks.length,
        worst: w
          ? `${w.id} (${w.kind}) in ${w.state} for ${formatAge(w.ageSeconds * 1000)} (threshold ${w.threshold})`
          : l
            ? `queue ${l.queue} locked by ${l.lockedBy ?? '?'} for ${formatAge(l.ageSeconds * 1000)} with no job behind it`
            : null,
        items: [...items, ...locks.map((x) => ({ queueLock: x.queue, lockedBy: x.lockedBy, lockedAt: x.lockedAt, ageSeconds: x.ageSeconds }))] as unknown as Record<string, unknown>[],
        breakdown: { oldestAgeSeconds: total.oldestAgeSeconds, ...(q.preset.queueLocks ? { staleQueueLocks: locks.length } : {}) },
      };
    }),
};
