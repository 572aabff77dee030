import type { Command } from 'commander';
import { describe } from './descriptions.js';
import type { Registrar } from './registrar.js';
import type { CommandContext } from '../cli/context.js';
import type { AwsFlags } from '../aws/scheduler-api.js';
import type { Column, Tone } from '../output/output.js';
import type { CheckResult } from '../checks/all-checks.js';
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
  if (ctx.globals.target?.length || ctx.globals.allTargets || ctx.globals.shard !== undefined) {
    const { runFleetCheck } = await import('../targets/fleet-check.js');
    return runFleetCheck(ctx, o.aws, format, only, o.workerStale);
  }
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
    .action(r.wrap((ctx, flags: CheckFlags) => runCheck(ctx, checkOptions(flags))));
}
