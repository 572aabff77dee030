import { parseDuration } from '../../config/durations.js';
import { ITEM_LIMIT, withDb, type CheckDefinition } from './definition.js';

/** Dead workers still holding rows of the work table; the heartbeat threshold is workers.stale (check --worker-stale). */
export const deadWorkersCheck: CheckDefinition = {
  check: 'dead-workers',
  group: 'workers',
  threshold: { key: 'deadWorkers', default: 1 },
  skip: (c) => (c.workers.enabled ? null : 'workers.enabled is false'),
  run: (deps) =>
    withDb(deps, async (db) => {
      const { deadWorkersCheck: findings } = await import('../dead-workers.js');
      return findings(db, deps.config.workers, parseDuration(deps.config.workers.stale, 'workers.stale'), ITEM_LIMIT);
    }),
};
