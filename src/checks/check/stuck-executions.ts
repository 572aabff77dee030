import { formatAge, formatDuration, parseDuration } from '../../config/durations.js';
import { ITEM_LIMIT, withDb, type CheckDefinition } from './definition.js';

export const stuckExecutionsCheck: CheckDefinition = {
  check: 'stuck-executions',
  group: 'executions',
  threshold: { key: 'stuckExecutions', default: 1 },
  run: (deps) =>
    withDb(deps, async (db) => {
      const cfg = deps.config.executions;
      const { assertExecutionsSchema, countStuck, findStuck } = await import('../stuck-executions.js');
      await assertExecutionsSchema(db, cfg);
      const q = { thresholdMs: parseDuration(cfg.threshold, 'executions.threshold'), statuses: cfg.stuckStatuses };
      const count = await countStuck(db, cfg, q);
      const items = count ? await findStuck(db, cfg, { ...q, limit: ITEM_LIMIT }) : [];
      const w = items[0];
      return {
        count,
        worst: w ? `${w.id} in ${w.status} for ${formatAge(w.ageSeconds * 1000)} (threshold ${formatDuration(q.thresholdMs)})` : null,
        items: items as unknown as Record<string, unknown>[],
        breakdown: { oldestAgeSeconds: w?.ageSeconds ?? 0 },
      };
    }),
};
