import type { Command } from 'commander';
import { describe } from './descriptions.js';
import type { Registrar } from './registrar.js';
import type { CommandContext } from '../cli/context.js';
import type { AwsFlags } from '../aws/scheduler-api.js';
import type { Column, Tone } from '../output/output.js';
import type { CheckDeps, CheckResult } from '../checks/all-checks.js';
import type { ResolvedTarget } from '../targets/targets.js';
import { CHECK_GROUPS } from '../checks/check-registry.js';
import { splitList } from './shared-flags.js';
import { usageError } from '../errors.js';
import { parseDuration } from '../config/durations.js';

interface CheckFlags {
  only?: string;
  region?: string;
  profile?: string;
  endpointUrl?: string;
  workerStale?: string;
}

const statusTone = (s: string): Tone => (s === 'ok' ? 'good' : s === 'finding' ? 'bad' : s === 'unknown' ? 'warn' : 'dim');

/** What `check` runs with. */
export interface CheckOptions {
  /** Groups to run; null: every check. */
  only: string[] | null;
  aws: AwsFlags;
  /** The dead-workers check's heartbeat threshold (a duration), instead of workers.stale. */
  workerStale?: string;
}

export function checkOptions(flags: CheckFlags): CheckOptions {
  const only = splitList(flags.only) ?? null;
  for (const g of only ?? []) if (!CHECK_GROUPS.includes(g)) throw usageError(`--only ${g} is not a check: use ${CHECK_GROUPS.join(', ')}.`);
  if (flags.workerStale !== undefined) parseDuration(flags.workerStale, '--worker-stale');
  return { only, aws: { region: flags.region, profile: flags.profile, endpointUrl: flags.endpointUrl }, workerStale: flags.workerStale };
}

export async function runCheck(ctx: CommandContext, o: CheckOptions): Promise<number> {
  const { parseFormat } = await import('../output/output.js');
  const format = parseFormat(ctx.globals.output, ['table', 'wide', 'json', 'ndjson', 'markdown', 'prometheus']);
  const { runChecks, checkExitCode } = await import('../checks/all-checks.js');
  const { only } = o;
  const unit = ctx.boundTarget();
  if (unit) return checkTarget(ctx, unit.target, o);
  // --worker-stale is the dead-workers check's heartbeat threshold: the workers.stale key, from the command line.
  const config = await ctx.config(o.workerStale !== undefined ? { workers: { stale: o.workerStale } } : {});
  const { expectedGroupNames } = await import('../checks/expected-groups.js');
  const { maskSecrets } = await import('../output/masking.js');
  // A check that could not run carries its error text into the report (json, table, markdown): masked.
  const results = (await runChecks(
    {
      config,
      openDb: () => ctx.openDatabase(),
      openScheduler: () => ctx.openScheduler(o.aws),
      expectedGroups: () => expectedGroupNames(config.scheduleGroups, (fn) => ctx.withDatabase(fn)),
      now: () => ctx.deps.now(),
    },
    only,
  )).map((r) => (r.error ? { ...r, error: maskSecrets(r.error, ctx.secrets()) } : r));
  const exitCode = checkExitCode(results);
  if (format === 'markdown' || format === 'prometheus') {
    const { renderMarkdown, renderPrometheus } = await import('../output/check-report.js');
    ctx.io.stdout.write(format === 'markdown' ? renderMarkdown(results, exitCode) : renderPrometheus(results, ctx.deps.now()));
    return exitCode;
  }
  const summary = () => ({
    status: exitCode === 0 ? 'clean' : exitCode === 1 ? 'findings' : 'unknown',
    ...Object.fromEntries(results.map((r) => [r.check, r.status])),
    findings: results.filter((r) => r.status === 'finding').length,
    unknown: results.filter((r) => r.status === 'unknown').length,
  });
  const columns: Column<CheckResult>[] = [
    { header: 'check', value: (r) => r.check },
    { header: 'status', value: (r) => r.status, tone: (r) => statusTone(r.status) },
    { header: 'count', value: (r) => (r.status === 'unknown' || r.status === 'skipped' ? '-' : r.count) },
    { header: 'threshold', value: (r) => r.threshold, tone: () => 'dim' },
    { header: 'worst example', value: (r) => (r.status === 'unknown' || r.status === 'skipped' ? r.error : r.worst) ?? '', shrink: true },
  ];
  const { cellText, FREE_TEXT_KEY } = await import('../output/output.js');
  return ctx.emit({
    command: 'check',
    mode: 'read',
    items: results,
    columns,
    headline: 'opsctl check (read-only)',
    sections: () =>
      results
        .filter((r) => r.items.length)
        .map((r) => {
          const keys = Object.keys(r.items[0]).filter((k) => k !== 'payload').slice(0, 6);
          return {
            title: `${r.check}: ${r.count}${r.count > r.items.length ? ` (first ${r.items.length} shown)` : ''}`,
            columns: keys.map((k) => ({ header: k, value: (row: Record<string, unknown>) => cellText(row[k]), shrink: FREE_TEXT_KEY.test(k) })),
            rows: r.items,
          };
        }),
    summary,
    // The table's cell is cut to its width: the reason a check could not run is what the reader acts on, so whole here.
    notes: () => results.filter((r) => r.status === 'unknown').map((r) => `${r.check} could not run: ${r.error ?? 'no reason given'}`),
    exitCode: () => exitCode,
  });
}

/**
 * check on one target of a run over targets: its database checks once, its schedule-group
 * check once per region of its account, each row naming its target and region; the parts the
 * target does not have are "skipped". Merged with the other targets' by onTargets (check-reports.ts).
 */
async function checkTarget(ctx: CommandContext, t: ResolvedTarget, o: CheckOptions): Promise<number> {
  const { runChecks, checkExitCode } = await import('../checks/all-checks.js');
  const { AWS_CHECK_GROUPS, DATABASE_CHECK_GROUPS, checkRowsFor } = await import('../targets/check-reports.js');
  const { expectedGroupNames } = await import('../checks/expected-groups.js');
  const { maskSecrets } = await import('../output/masking.js');
  const { only } = o;
  // --worker-stale outranks each target's workers.stale, as it does the single-target config.
  const config = o.workerStale === undefined ? t.config : { ...t.config, workers: { ...t.config.workers, stale: o.workerStale } };
  const base: CheckDeps = {
    config,
    openDb: () => ctx.openDatabase(),
    openScheduler: () => Promise.reject(usageError('no region')),
    expectedGroups: async () => (ctx.hasDatabase() || config.scheduleGroups.expected ? expectedGroupNames(config.scheduleGroups, (fn) => ctx.withDatabase(fn)) : null),
    now: () => ctx.deps.now(),
  };
  const tagged = (region: string | null) => (rs: CheckResult[]) => rs.map((r) => ({ ...r, target: t.name, region }));
  // A target that does not enable workers skips dead-workers, as one without jobs.queue skips
  // the job checks: --only workers over a fleet asks "where it is configured", not "everywhere".
  const dbGroups = config.workers.enabled ? DATABASE_CHECK_GROUPS : DATABASE_CHECK_GROUPS.filter((g) => g !== 'workers');
  const parts: Array<Promise<Array<CheckResult & { target: string; region: string | null }>>> = [
    t.entry.database ? runChecks(base, only, dbGroups).then(tagged(null)) : checkRowsFor(t, 'skipped', `target ${t.name} has no database`, DATABASE_CHECK_GROUPS, null, only),
  ];
  if (t.entry.database && !config.workers.enabled) parts.push(checkRowsFor(t, 'skipped', `target ${t.name} does not enable workers (workers.enabled)`, ['workers'], null, only));
  if (!t.entry.aws) parts.push(checkRowsFor(t, 'skipped', `target ${t.name} has no aws section`, AWS_CHECK_GROUPS, null, only));
  for (const region of t.entry.aws?.regions ?? []) parts.push(runChecks({ ...base, openScheduler: () => ctx.openScheduler({ region }) }, only, AWS_CHECK_GROUPS).then(tagged(region)));
  // Driver messages may quote what they were given: never a target's password.
  const results = (await Promise.all(parts)).flat().map((r) => (r.error ? { ...r, error: maskSecrets(r.error, ctx.secrets()) } : r));
  return ctx.emit({ command: 'check', mode: 'read', items: results, columns: [], summary: () => ({}), exitCode: () => checkExitCode(results) });
}

const EXAMPLES = `
Examples:
  $ opsctl check                                   # every check, summary table then findings
  $ opsctl check --only executions,propagations    # just the database checks
  $ opsctl check -o markdown >> "$GITHUB_STEP_SUMMARY"
  $ opsctl check -o prometheus > /var/lib/node_exporter/textfile/opsctl.prom
  $ opsctl check --all-targets                     # every target of the config, 4 at a time
  $ opsctl check --target 'prod-*' --target staging -o json
  $ opsctl check --all-targets --shard $JOB_COMPLETION_INDEX/4 --concurrency 8 --target-timeout 2m -o prometheus
  $ opsctl check --only workers --worker-stale 5m  # dead workers still holding rows (needs workers.enabled)

With targets (--target, --all-targets; the global options in opsctl --help): database checks
once per target, schedule groups once per target × region, one report; an unreachable or
timed-out target is unknown (exit 3), never clean, and the others still run.

Exit status: 0 clean, 1 a finding at or above its threshold (check.thresholds),
2 bad flags or config, 3 a check could not run (reported as unknown, never as clean),
4 an internal error (a bug in opsctl).
check never writes: remediation is reap / propagations retry / adopt / reconcile.
`;

export function registerCheckCommand(program: Command, r: Registrar): void {
  program
    .command('check')
    .description(describe('check'))
    .option('--only <list>', `only these checks: ${CHECK_GROUPS.join(', ')}`)
    .option('--worker-stale <duration>', 'dead-workers check: a heartbeat older than this is dead (default: workers.stale)')
    .option('--region <region>', 'AWS region for the schedule-groups check')
    .option('--profile <name>', 'AWS profile')
    .option('--endpoint-url <url>', 'Scheduler endpoint')
    .addHelpText('after', EXAMPLES)
    .action(r.wrap((ctx, flags: CheckFlags) => runCheck(ctx, checkOptions(flags)), { merge: 'check-reports' }));
}
