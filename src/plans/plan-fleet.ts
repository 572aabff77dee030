import type { CommandContext } from '../cli/context.js';
import { configFingerprint, type ConfigFingerprint, type PlanFile, type PlanIdentity } from './plan-file.js';
import { usageError } from '../errors.js';

/**
 * A fleet plan's targets (`targets[].name`: a target, or target/region for Scheduler), each
 * checked before anything is written on any: the target still in the config, its effective
 * config's fingerprint, its identity (its own connection, opened and closed here). The first
 * refusal throws (exit 2): nothing was written anywhere.
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
  const { TargetResources } = await import('../targets/fleet.js');
  const { openTargetDatabase, openTargetScheduler } = await import('../targets/open-target.js');
  const { assertIdentity, awsIdentity, databaseIdentity } = await import('./plan-mode.js');
  const names = [...new Set(plan.targets.map((t) => targetOf(t.name)))];
  const unknown = names.filter((n) => !(n in config.targets));
  if (unknown.length) throw usageError(`the plan ${file} names target(s) the config does not have: ${unknown.join(', ')}. Nothing was changed.`);
  const resolved = new Map(resolveTargets(config, names, CHECK_THRESHOLDS).map((t) => [t.name, t]));
  for (const t of plan.targets) {
    const name = t.name as string;
    const target = resolved.get(targetOf(name));
    if (!target) throw usageError(`the plan ${file} names target ${name}, which the config does not have. Nothing was changed.`);
    checkConfig(name, t.config, configFingerprint(target.config));
    const res = new TargetResources(new AbortController().signal);
    let actual: PlanIdentity;
    try {
      if (t.identity.kind === 'postgresql') {
        const db = await openTargetDatabase(ctx, target, res, []);
        actual = await db.readOnly((ro) => databaseIdentity(ro));
      } else {
        const region = name.includes('/') ? name.slice(name.indexOf('/') + 1) : '';
        actual = await awsIdentity(await openTargetScheduler(ctx, target, region, res));
      }
    } finally {
      await res.close();
    }
    assertIdentity(file, t.identity, actual, name);
  }
}

/** The target of a plan entry's name (`billing-eu/eu-west-1` → `billing-eu`). */
export const targetOf = (name: string | null): string => (name ?? '').split('/')[0] as string;
