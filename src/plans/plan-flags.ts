import type { Command } from 'commander';

/**
 * --plan-out FILE, added in one place (buildProgram) to every command that has --apply; what it
 * does is src/plans/plan-out.ts (loaded only when the flag is given).
 */

export const PLAN_OUT_HELP = 'with a dry run: write the plan (items, before-images, target identity, command) to FILE for review; apply it with `opsctl apply FILE`';

/** Adds --plan-out to every command of the tree that has --apply. */
export function addPlanOutFlags(program: Command): void {
  const visit = (c: Command) => {
    if (c.options.some((o) => o.long === '--apply') && !c.options.some((o) => o.long === '--plan-out')) {
      const words: string[] = [];
      for (let x: Command | null = c; x && x.parent; x = x.parent) words.unshift(x.name());
      const plan = `$ opsctl ${words.join(' ')} --plan-out plan.json`;
      const apply = '$ opsctl apply plan.json';
      const w = Math.max(plan.length, apply.length) + 2;
      c.option('--plan-out <file>', PLAN_OUT_HELP).addHelpText(
        'after',
        `Reviewed plan (docs/plans.md):
  ${plan.padEnd(w)}# dry run; the plan written to plan.json (mode 0600)
  ${apply.padEnd(w)}# later, after review: exactly those items, each re-checked`,
      );
    }
    for (const sub of c.commands) visit(sub);
  };
  visit(program);
}

