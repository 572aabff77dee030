import type { PlannedItem, PlanState } from './remediation.js';

/**
 * Remedy.planState over a remedy's compare-and-set tokens (item id → the snapshot its row is
 * compared against at write time): `get` reads a token, `restore` puts back a reviewed plan's
 * (an item the plan kept none for: ''). `byId`, when given, is refilled with the plan's items too.
 */
export function tokenPlanState<P extends PlannedItem>(tokens: Map<string, string>, byId?: Map<string, P>): PlanState<P> {
  return {
    get: (id) => tokens.get(id),
    restore(items, saved) {
      tokens.clear();
      byId?.clear();
      for (const p of items) {
        tokens.set(p.id, saved.get(p.id) ?? '');
        byId?.set(p.id, p);
      }
    },
  };
}
