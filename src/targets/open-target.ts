import type { CommandContext, Deps } from '../cli/context.js';
import type { Database } from '../database/database.js';
import type { ResolvedTarget } from './targets.js';
import { fleetSelection, type TargetResources } from './fleet.js';

/**
 * Opening a target: its selection from the config, and its database, Scheduler client and
 * expected schedule groups, each opened through the run's own deps and tracked by the
 * target's resources (closed at its deadline). Used by onTargets' TargetContext only.
 */

/** Loads the config, selects and resolves the targets (exit 2 for any config or selection problem). */
export async function selectedTargets(ctx: CommandContext): Promise<ResolvedTarget[]> {
  const config = await ctx.config();
  const { selectTargetNames, resolveTargets } = await import('./targets.js');
  const { CHECK_THRESHOLDS } = await import('../checks/check-registry.js');
  const names = selectTargetNames(Object.keys(config.targets), fleetSelection(ctx.globals));
  return resolveTargets(config, names, CHECK_THRESHOLDS);
}

/**
 * The deps factory of one target: the run's own (ctx.deps) pointed at the target's database
 * and account, every session and client it opens tracked so the target's deadline closes them.
 */
export function targetDeps(ctx: CommandContext, t: ResolvedTarget, res: TargetResources, secrets: string[]): Deps {
  return {
    openDatabase: async (settings, env) => {
      const { targetConnection } = await import('./targets.js');
      const conn = targetConnection(t, ctx.io.env, ctx.io.cwd);
      secrets.push(...conn.secrets);
      return res.track(await ctx.deps.openDatabase({ ...settings, url: conn.url }, env, res.signal), (d) => d.close());
    },
    openScheduler: async (access) => res.track(await ctx.deps.openScheduler(access), (a) => a.client.destroy()),
    now: () => ctx.deps.now(),
  };
}

/** Opens the target's database with its own connection and settings; closed on its deadline. */
export function openTargetDatabase(ctx: CommandContext, t: ResolvedTarget, res: TargetResources, secrets: string[]): Promise<Database> {
  return targetDeps(ctx, t, res, secrets).openDatabase(t.config.database, ctx.io.env);
}

/** The target's expected schedule groups: its config list, or expectedQuery on its own database. */
export async function targetExpectedGroups(ctx: CommandContext, t: ResolvedTarget, res: TargetResources, secrets: string[]): Promise<string[] | null> {
  const sg = t.config.scheduleGroups;
  if (sg.expected) return sg.expected;
  if (!sg.expectedQuery || !t.entry.database) return null;
  const db = await openTargetDatabase(ctx, t, res, secrets);
  try {
    return await db.readOnly(async (ro) => {
      const rows = await ro.query<Record<string, unknown>>(sg.expectedQuery as string);
      return rows.map((r) => String(Object.values(r)[0])).filter(Boolean);
    });
  } finally {
    await db.close();
  }
}

/** A Scheduler client for one region of the target's account (its profile, its endpoint for that region); destroyed on its deadline. */
export async function openTargetScheduler(ctx: CommandContext, t: ResolvedTarget, region: string, res: TargetResources) {
  const { schedulerAccess } = await import('../aws/scheduler-api.js');
  const aws = t.entry.aws;
  const access = schedulerAccess(ctx.io.env, { region, profile: aws?.profile, endpointUrl: aws?.endpoints?.[region] }, t.config);
  return targetDeps(ctx, t, res, []).openScheduler(access);
}
