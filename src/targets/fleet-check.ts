import type { CommandContext } from '../cli/context.js';
import type { Column, OutputFormat, Tone } from '../output/output.js';
import type { Database } from '../database/database.js';
import type { Deps } from '../cli/context.js';
import type { CheckDeps, CheckGroup, CheckResult } from '../checks/all-checks.js';
import type { ResolvedTarget } from './targets.js';
import { usageError } from '../errors.js';
import { maskSecrets } from '../output/masking.js';
import { TargetResources, fleetOptions, fleetSelection, runFleet, type TargetOutcome } from './fleet.js';

/**
 * `opsctl check --all-targets` / `--target`: every check on every selected target (database
 * checks once per target, the schedule-group check once per target × region), at most
 * --concurrency targets at once, one report. A target that cannot be reached or times out is
 * "unknown" for its checks, never clean, and the other targets go on.
 */

export interface FleetCheckResult extends CheckResult {
  target: string;
  /** The AWS region of a schedule-group check; null for the database checks. */
  region: string | null;
}

export type TargetStatus = 'clean' | 'findings' | 'unknown';

const DB_GROUPS: CheckGroup[] = ['executions', 'propagations', 'jobs', 'workers'];
const AWS_GROUPS: CheckGroup[] = ['schedule-groups'];

export interface CheckFleetFlags {
  region?: string;
  profile?: string;
  endpointUrl?: string;
}

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

/**
 * @param workerStale check --worker-stale: every target's workers.stale for this run (a flag
 * outranks each target's config, as it does the single-target config).
 */
export async function runFleetCheck(ctx: CommandContext, flags: CheckFleetFlags, format: OutputFormat, only: CheckGroup[] | null, workerStale?: string): Promise<number> {
  if (flags.region !== undefined || flags.profile !== undefined || flags.endpointUrl !== undefined)
    throw usageError('--region, --profile and --endpoint-url do not combine with --target/--all-targets: each target names its own (targets.NAME.aws).');
  const opts = fleetOptions(ctx.globals);
  const targets = await selectedTargets(ctx);
  const { runChecks, thresholdOf } = await import('../checks/all-checks.js');
  const { CHECKS } = await import('../checks/check-registry.js');

  const selectedDefs = (groups: CheckGroup[]) => CHECKS.filter((d) => groups.includes(d.group) && (!only || only.includes(d.group)));
  /** The rows a target would have produced, all with one status: for skipped parts and failed targets. */
  const rowsFor = (t: ResolvedTarget, status: 'skipped' | 'unknown', error: string, groups: CheckGroup[], region: string | null): FleetCheckResult[] =>
    selectedDefs(groups).map((d) => ({
      target: t.name,
      region,
      check: d.check,
      group: d.group,
      status,
      count: 0,
      threshold: thresholdOf(t.config, d.threshold),
      worst: null,
      items: [],
      breakdown: {},
      error,
      durationMs: 0,
    }));
  const expectedRows = (t: ResolvedTarget, status: 'unknown', error: string): FleetCheckResult[] => [
    ...(t.entry.database ? rowsFor(t, status, error, t.config.workers.enabled ? DB_GROUPS : DB_GROUPS.filter((g) => g !== 'workers'), null) : []),
    ...(t.entry.aws?.regions ?? []).flatMap((r) => rowsFor(t, status, error, AWS_GROUPS, r)),
  ];

  const checkTarget = async (t: ResolvedTarget, signal: AbortSignal): Promise<FleetCheckResult[]> => {
    const res = new TargetResources(signal);
    const secrets: string[] = [];
    // One deps factory per target: its database and account, closed on its deadline.
    const deps = targetDeps(ctx, t, res, secrets);
    const openDb = () => deps.openDatabase(t.config.database, ctx.io.env);
    const sg = t.config.scheduleGroups;
    const expectedGroups = () => targetExpectedGroups(ctx, t, res, secrets);
    const config = workerStale === undefined ? t.config : { ...t.config, workers: { ...t.config.workers, stale: workerStale } };
    const base: CheckDeps = {
      config,
      openDb,
      openScheduler: () => Promise.reject(usageError('no region')),
      expectedGroups,
      now: () => ctx.deps.now(),
    };
    const parts: Array<Promise<FleetCheckResult[]>> = [];
    // A target that does not enable workers skips dead-workers, as one without jobs.queue skips
    // the job checks: --only workers over a fleet asks "where it is configured", not "everywhere".
    const dbGroups = config.workers.enabled ? DB_GROUPS : DB_GROUPS.filter((g) => g !== 'workers');
    parts.push(
      t.entry.database
        ? runChecks(base, only, dbGroups).then((rs) => rs.map((r) => ({ ...r, target: t.name, region: null })))
        : Promise.resolve(rowsFor(t, 'skipped', `target ${t.name} has no database`, DB_GROUPS, null)),
    );
    if (t.entry.database && !config.workers.enabled) parts.push(Promise.resolve(rowsFor(t, 'skipped', `target ${t.name} does not enable workers (workers.enabled)`, ['workers'], null)));
    const aws = t.entry.aws;
    if (!aws) parts.push(Promise.resolve(rowsFor(t, 'skipped', `target ${t.name} has no aws section`, AWS_GROUPS, null)));
    for (const region of aws?.regions ?? []) {
      const openScheduler = () => openTargetScheduler(ctx, t, region, res);
      parts.push(runChecks({ ...base, openScheduler }, only, AWS_GROUPS).then((rs) => rs.map((r) => ({ ...r, target: t.name, region }))));
    }
    const rows = (await Promise.all(parts)).flat();
    // Driver messages may quote what they were given: never a target's password.
    return rows.map((r) => (r.error ? { ...r, error: maskSecrets(r.error, [...secrets, ...ctx.secrets()]) } : r));
  };

  const outcomes = await runFleet(targets, opts, checkTarget, (o, done, total) => ctx.progress(`check: ${done}/${total} targets (last: ${o.target})`));
  ctx.progressDone();
  const byName = new Map(targets.map((t) => [t.name, t]));
  const results: FleetCheckResult[] = outcomes.flatMap((o: TargetOutcome<FleetCheckResult[]>) =>
    o.ok ? o.value : expectedRows(byName.get(o.target) as ResolvedTarget, 'unknown', maskSecrets(o.error, ctx.secrets())),
  );
  return emitFleetCheck(ctx, format, results, outcomes);
}

export function targetStatuses(results: FleetCheckResult[], targets: string[]): Record<string, TargetStatus> {
  const out: Record<string, TargetStatus> = {};
  for (const t of targets) {
    const mine = results.filter((r) => r.target === t);
    out[t] = mine.some((r) => r.status === 'unknown') ? 'unknown' : mine.some((r) => r.status === 'finding') ? 'findings' : 'clean';
  }
  return out;
}

const statusTone = (s: string): Tone => (s === 'ok' || s === 'clean' ? 'good' : s === 'finding' || s === 'findings' ? 'bad' : s === 'unknown' ? 'warn' : 'dim');

async function emitFleetCheck(ctx: CommandContext, format: OutputFormat, results: FleetCheckResult[], outcomes: TargetOutcome<unknown>[]): Promise<number> {
  const { checkExitCode } = await import('../checks/all-checks.js');
  const names = outcomes.map((o) => o.target);
  const byTarget = targetStatuses(results, names);
  // A target that failed as a whole with no checks to show still makes the run unknown.
  const failedEmpty = outcomes.some((o) => !o.ok && !results.some((r) => r.target === o.target));
  const exitCode = failedEmpty ? 3 : checkExitCode(results);
  const shard = ctx.globals.shard;
  if (format === 'markdown' || format === 'prometheus') {
    const { renderMarkdown, renderPrometheus } = await import('../output/check-report.js');
    ctx.io.stdout.write(format === 'markdown' ? renderMarkdown(results, exitCode, { targets: byTarget }) : renderPrometheus(results, ctx.deps.now(), { targets: byTarget }));
    return exitCode;
  }
  const count = (s: TargetStatus) => Object.values(byTarget).filter((x) => x === s).length;
  const summary = () => ({
    status: exitCode === 0 ? 'clean' : exitCode === 1 ? 'findings' : 'unknown',
    targets: names.length,
    ...(shard ? { shard: shard.replace(/\s/g, '') } : {}),
    targetsClean: count('clean'),
    targetsWithFindings: count('findings'),
    targetsUnknown: count('unknown'),
    findings: results.filter((r) => r.status === 'finding').length,
    unknown: results.filter((r) => r.status === 'unknown').length,
    byTarget,
  });
  const { cellText, FREE_TEXT_KEY, isTable } = await import('../output/output.js');
  const columns: Column<FleetCheckResult>[] = [
    { header: 'target', value: (r) => r.target },
    { header: 'region', value: (r) => r.region ?? '' },
    { header: 'check', value: (r) => r.check },
    { header: 'status', value: (r) => r.status, tone: (r) => statusTone(r.status) },
    { header: 'count', value: (r) => (r.status === 'unknown' || r.status === 'skipped' ? '-' : r.count) },
    { header: 'threshold', value: (r) => r.threshold, tone: () => 'dim' },
    { header: 'worst example', value: (r) => (r.status === 'unknown' || r.status === 'skipped' ? r.error : r.worst) ?? '', shrink: true },
  ];
  const durations = new Map(outcomes.map((o) => [o.target, o.durationMs]));
  // A table of 50 targets is read by a person: the skipped rows (unconfigured checks) only in json.
  const skipped = results.filter((r) => r.status === 'skipped').length;
  return ctx.emit({
    command: 'check',
    mode: 'read',
    items: isTable(format) ? results.filter((r) => r.status !== 'skipped') : results,
    notes: () => (isTable(format) && skipped ? [`${skipped} skipped check(s) not shown (not configured for their target; -o json lists them).`] : []),
    columns,
    headline: `opsctl check (read-only) on ${names.length} target(s)${shard ? `, shard ${shard}` : ''}`,
    emptyMessage: 'No target selected (the shard is empty).',
    sections: () => [
      {
        title: 'Per target',
        columns: [
          { header: 'target', value: (t: string) => t },
          { header: 'status', value: (t: string) => byTarget[t], tone: (t: string) => statusTone(byTarget[t]) },
          { header: 'findings', value: (t: string) => results.filter((r) => r.target === t && r.status === 'finding').length },
          { header: 'unknown', value: (t: string) => results.filter((r) => r.target === t && r.status === 'unknown').length },
          { header: 'took', value: (t: string) => `${durations.get(t) ?? 0} ms`, tone: () => 'dim' },
        ],
        rows: names,
      },
      ...results
        .filter((r) => r.items.length)
        .map((r) => {
          const keys = Object.keys(r.items[0]).filter((k) => k !== 'payload').slice(0, 6);
          return {
            title: `${r.target}${r.region ? ` (${r.region})` : ''} ${r.check}: ${r.count}${r.count > r.items.length ? ` (first ${r.items.length} shown)` : ''}`,
            columns: keys.map((k) => ({ header: k, value: (row: Record<string, unknown>) => cellText(row[k]), shrink: FREE_TEXT_KEY.test(k) })),
            rows: r.items,
          };
        }),
    ],
    summary,
    exitCode: () => exitCode,
  });
}
