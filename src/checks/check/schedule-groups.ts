import { ITEM_LIMIT, type CheckDefinition } from './definition.js';

export const scheduleGroupsCheck: CheckDefinition = {
  check: 'schedule-groups',
  group: 'schedule-groups',
  threshold: { key: 'scheduleGroups', default: 1 },
  skip: (c) => (Object.keys(c.scheduleGroups.ownerTags).length === 0 ? 'scheduleGroups.ownerTags is not configured' : null),
  run: async (deps) => {
    const cfg = deps.config.scheduleGroups;
    const classes = deps.config.check.scheduleGroupClasses;
    const expected = await deps.expectedGroups();
    const api = await deps.openScheduler();
    try {
      const { findGroups } = await import('../schedule-groups.js');
      const { describeChanges } = await import('../tag-diff.js');
      const all = await findGroups(api, cfg, { expected, nowMs: deps.now() });
      const breakdown: Record<string, number> = { owned: 0, unowned: 0, foreign: 0, drifted: 0, missing: 0, ignored: 0 };
      for (const g of all) breakdown[g.class] += 1;
      const found = all.filter((g) => (classes as string[]).includes(g.class));
      const rank = ['foreign', 'missing', 'drifted', 'unowned'];
      const sorted = [...found].sort((a, b) => rank.indexOf(a.class) - rank.indexOf(b.class));
      const w = sorted[0];
      return {
        count: found.length,
        worst: w ? `${w.name}: ${w.class}${w.reasons.length ? ` (${w.reasons.slice(0, 2).join('; ')})` : ''}` : null,
        items: sorted.slice(0, ITEM_LIMIT).map((g) => ({ name: g.name, state: g.state, class: g.class, diff: describeChanges(g.changes), reasons: g.reasons })),
        breakdown,
      };
    } finally {
      api.client.destroy();
    }
  },
};
