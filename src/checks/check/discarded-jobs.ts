import { ITEM_LIMIT, errorGroupFindings, withDb, type CheckDefinition, jobsNotConfigured } from './definition.js';

export const discardedJobsCheck: CheckDefinition = {
  check: 'discarded-jobs',
  group: 'jobs',
  threshold: { key: 'discardedJobs', default: 1 },
  skip: jobsNotConfigured,
  run: (deps) =>
    withDb(deps, async (db) => {
      const { resolveQueue, assertQueueSchema } = await import('../jobs-presets.js');
      const { summariseDiscardedJobs, streamDiscardedJobs } = await import('../discarded-jobs.js');
      const q = resolveQueue(deps.config);
      await assertQueueSchema(db, q);
      const f = { includeCancelled: q.cfg.includeCancelled };
      const s = await summariseDiscardedJobs(db, q, f);
      const items: Record<string, unknown>[] = [];
      if (s.total)
        for await (const d of streamDiscardedJobs(db, q, f, ITEM_LIMIT))
          items.push({ id: d.id, kind: d.kind, state: d.state, attempt: d.attempt, finalizedAt: d.finalizedAt, lastError: d.lastError });
      return errorGroupFindings(s, items);
    }),
};
