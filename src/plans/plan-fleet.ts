import type { CommandContext } from '../cli/context.js';
import type { SchedulerApi } from '../aws/scheduler-api.js';
import { configFingerprint, type ConfigFingerprint, type PlanFile, type PlanIdentity } from './plan-file.js';
import { usageError } from '../errors.js';

/**
 * A fleet plan's targets (`targets[].name`: a target, or target/region for Scheduler), each
 * checked before anything is written on any: the target still in the config, its effective
 * config's fingerprint, its identity — each read through the target's own context (as any run
 * on it: its config, its database or Scheduler client, closed once read). The first refusal
 * throws (exit 2): nothing was written anywhere.
 */
export async function checkFleetPlan(
  ctx: CommandContext,
  plan: PlanFile,
  file: string,
  checkConfig: (name: string, planned: ConfigFingerprint, now: ConfigFingerprint) => void,
): Promise<void> {
  const config = await ctx.config();
  const { resolveTargets } = await import('../targets/targets.js');
  const { CHECK_THRESHOLDS } = await import('../checks/check-registry.js');
  const { runOnUnit, unitsOf } = await import('../targets/target-context.js');
  const { assertIdentity, awsIdentity, databaseIdentity } = await import('./plan-mode.js');
  const names = [...new Set(plan.targets.map((t) => targetOf(t.name)))];
  const unknown = names.filter((n) => !(n in config.targets));
  if (unknown.length) throw usageError(`the plan ${file} names target(s) the config does not have: ${unknown.join(', ')}. Nothing was changed.`);
  const kind = plan.kind === 'aws' ? 'aws' : 'database';
  const units = new Map(unitsOf(resolveTargets(config, names, CHECK_THRESHOLDS), kind).units.map((u) => [u.name, u]));
  for (const t of plan.targets) {
    const name = t.name as string;
    const unit = units.get(name);
    if (!unit) throw usageError(`the plan ${file} names ${name}, which the config's targets no longer have. Nothing was changed.`);
    let actual: PlanIdentity | undefined;
    await runOnUnit(ctx, unit, new AbortController().signal, async (c) => {
      checkConfig(name, t.config, configFingerprint(await c.config()));
      if (t.identity.kind === 'postgresql') actual = await c.withDatabase((db) => db.readOnly((ro) => databaseIdentity(ro)));
      else {
        const api: SchedulerApi = await c.openScheduler({});
        try {
          actual = await awsIdentity(api);
        } finally {
          api.client.destroy();
        }
      }
      return 0;
    });
    assertIdentity(file, t.identity, actual as PlanIdentity, name);
  }
}

/** The target of a plan entry's name (`billing-eu/eu-west-1` → `billing-eu`). */
export const targetOf = (name: string | null): string => (name ?? '').split('/')[0] as string;
