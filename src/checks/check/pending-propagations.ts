import { parseDuration } from '../../config/durations.js';
import { ITEM_LIMIT, withDb, type CheckDefinition } from './definition.js';

export const pendingPropagationsCheck: CheckDefinition = {
  check: 'pending-propagations',
  group: 'propagations',
  threshold: { key: 'pendingPropagations', default: 1 },
  run: (deps) =>
    withDb(deps, async (db) => {
      const cfg = deps.config.propagations;
      const { assertPropagationsSchema } = await import('../propagations-table.js');
      const { summarisePending, streamPending } = await import('../pending-propagations.js');
      await assertPropagationsSchema(db, cfg);
      const q = { overdueMs: parseDuration(cfg.overdue, 'propagations.overdue'), limit: ITEM_LIMIT };
      const s = await summarisePending(db, cfg, q);
      const items: Record<string, unknown>[] = [];
      if (s.troubled)
        for await (const p of streamPending(db, cfg, q))
          items.push({ id: p.id, kind: p.kind, attempts: p.attempts, problems: p.problems, nextAttemptAt: p.nextAttemptAt, lastError: p.lastError });
      const w = items[0] as { id?: string; kind?: string; problems?: string[] } | undefined;
      return {
        count: s.troubled,
        worst: w ? `${w.id} (${w.kind}): ${(w.problems ?? []).join(', ')}` : null,
        items,
        breakdown: { overdue: s.overdue, 'near-dead': s.nearDead, 'unknown-kind': s.unknownKind },
      };
    }),
};
