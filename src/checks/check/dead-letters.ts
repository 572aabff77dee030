import { ITEM_LIMIT, withDb, type CheckDefinition } from './definition.js';

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
      const top = s.byErrorClass[0];
      return {
        count: s.total,
        worst: top ? `${top.count}× ${top.errorClass} (${top.kinds.join(', ')})` : null,
        items,
        breakdown: Object.fromEntries(s.byKind.map((k) => [k.kind, k.count])),
      };
    }),
};
