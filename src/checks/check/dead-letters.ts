import { ITEM_LIMIT, errorGroupFindings, withDb, type CheckDefinition } from './definition.js';

export const deadLettersCheck: CheckDefinition = {
  check: 'dead-letters',
  group: 'propagations',
  threshold: { key: 'deadLetters', default: 1 },
  run: (deps) =>
    withDb(deps, async (db) => {
      const cfg = deps.config.propagations;
      const { assertPropagationsSchema } = await import('../propagations-table.js');
      const { summariseDeadLetters, streamDeadLetters } = await import('../dead-letters.js');
      await assertPropagationsSchema(db, cfg);
      const s = await summariseDeadLetters(db, cfg, {});
      const items: Record<string, unknown>[] = [];
      if (s.total)
        for await (const d of streamDeadLetters(db, cfg, {}, ITEM_LIMIT))
          items.push({ id: d.id, kind: d.kind, attempts: d.attempts, failedAt: d.failedAt, lastError: d.lastError });
      return errorGroupFindings(s, items);
    }),
};
