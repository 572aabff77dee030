import type { Command } from 'commander';
import { describe } from './index.js';
import type { Registrar } from '../cli.js';
import type { CommandContext } from '../context.js';
import type { Column, Tone } from '../output.js';
import type { StuckExecution } from '../checks/stuck-executions.js';
import { addApplyFlags, parseCount, parsePositive, splitList } from './shared-flags.js';

interface StuckFlags {
  olderThan?: string;
  status?: string;
  limit?: string;
}
interface ReapFlags extends StuckFlags {
  apply?: boolean;
  max?: string;
  batchSize?: string;
  reason?: string;
  wait?: boolean;
}

const outcomeTone = (o: string): Tone =>
  o === 'reaped' ? 'good' : o === 'errored' ? 'bad' : o === 'race-lost' || o === 'skipped-locked' ? 'warn' : o === 'planned' ? 'info' : undefined;

async function resolveQuery(ctx: CommandContext, flags: StuckFlags) {
  const { parseDuration } = await import('../durations.js');
  const cfg = (await ctx.config()).executions;
  const thresholdMs = parseDuration(flags.olderThan ?? cfg.threshold, flags.olderThan !== undefined ? '--older-than' : 'executions.threshold');
  const statuses = splitList(flags.status) ?? cfg.stuckStatuses;
  return { cfg, thresholdMs, statuses };
}

export async function runStuck(ctx: CommandContext, flags: StuckFlags): Promise<number> {
  const { parseFormat } = await import('../output.js');
  parseFormat(ctx.globals.output);
  const limit = flags.limit === undefined ? 1000 : parseCount(flags.limit, '--limit');
  const { cfg, thresholdMs, statuses } = await resolveQuery(ctx, flags);
  const { assertExecutionsSchema, copyStuck } = await import('../checks/stuck-executions.js');
  const { formatAge, formatDuration } = await import('../durations.js');
  return ctx.withDatabase((db) =>
    db.readOnly(async (ro) => {
      await assertExecutionsSchema(ro, cfg);
      // COPY: json/ndjson pass the server's row text through; a table parses the same rows.
      const listing = copyStuck(ro, cfg, { thresholdMs, statuses, limit });
      const columns: Column<StuckExecution>[] = [
        { header: 'id', value: (r) => r.id },
        { header: 'status', value: (r) => r.status, tone: () => 'warn' },
        { header: 'age', value: (r) => formatAge(r.ageSeconds * 1000) },
        { header: 'updated_at', value: (r) => r.updatedAt.replace(/\.\d{3}Z$/, 'Z') },
      ];
      return ctx.emit({
        command: 'executions stuck',
        dryRun: true,
        items: listing.rows(),
        ndjson: listing.ndjson,
        columns,
        headline: `Executions in ${statuses.join('/')} for longer than ${formatDuration(thresholdMs)} (${cfg.table}, database clock)`,
        emptyMessage: `No stuck executions: nothing in ${statuses.join('/')} older than ${formatDuration(thresholdMs)}.`,
        summary: () => {
          const count = listing.count;
          return { stuck: count, threshold: formatDuration(thresholdMs), oldestAgeSeconds: listing.oldestAgeSeconds, ...(limit > 0 && count >= limit ? { limitReached: limit } : {}) };
        },
      });
    }),
  );
}

const REAP_BATCH_TARGET_MS = 250;

export async function runReap(ctx: CommandContext, flags: ReapFlags): Promise<number> {
  const { parseFormat } = await import('../output.js');
  parseFormat(ctx.globals.output);
  const { cfg, thresholdMs, statuses } = await resolveQuery(ctx, flags);
  const config = await ctx.config();
  const max = flags.max === undefined ? cfg.max : parseCount(flags.max, '--max');
  const batchSize = flags.batchSize === undefined ? cfg.batchSize : parsePositive(flags.batchSize, '--batch-size');
  const { assertExecutionsSchema, reapRemedy } = await import('../checks/stuck-executions.js');
  const { remediate } = await import('../remediation.js');
  const { formatAge, formatDuration } = await import('../durations.js');
  const threshold = formatDuration(thresholdMs);
  return ctx.withDatabase(async (db) => {
    await db.readOnly((ro) => assertExecutionsSchema(ro, cfg));
    const remedy = reapRemedy(cfg, { thresholdMs, statuses, limit: 0, reason: flags.reason, actor: config.actor, audit: config.audit });
    const report = await remediate(db, remedy, {
      apply: Boolean(flags.apply),
      max,
      batchSize,
      // Batches sized by time up to the cap: ~250 ms of row locks each (see batch-sizer.ts).
      batchTargetMs: REAP_BATCH_TARGET_MS,
      wait: Boolean(flags.wait),
      confirm: (plan) => ctx.confirm(`Reap ${plan.length} execution(s) in ${cfg.table} (move to ${cfg.failedStatus})?`),
      onProgress: (done, total) => ctx.progress(`reap: ${done}/${total} rows`),
    });
    ctx.progressDone();
    const columns: Column<(typeof report.items)[number]>[] = [
      { header: 'id', value: (r) => r.id },
      { header: 'status', value: (r) => r.status },
      { header: 'age', value: (r) => formatAge(r.ageSeconds * 1000) },
      { header: 'threshold', value: () => threshold, tone: () => 'dim' },
      { header: report.dryRun ? 'plan' : 'outcome', value: (r) => r.outcome, tone: (r) => outcomeTone(r.outcome) },
      { header: report.dryRun ? 'reason it would write' : 'detail', value: (r) => (report.dryRun ? r.reason : (r.detail ?? r.reason)), maxWidth: 70 },
    ];
    const notes: string[] = [];
    if (report.dryRun && report.items.length > 0) notes.push('Dry run: nothing was changed. Re-run with --apply to reap these rows.');
    if (report.summary.exceedsMax) notes.push(`More than --max ${max} rows are stuck: --apply would refuse. Narrow the selection or raise --max.`);
    if (report.dryRun && report.items.length > 0)
      notes.push('A reaped execution that was in fact still running may run twice: the threshold must exceed the longest legitimate run.');
    return ctx.emit({
      command: 'reap',
      dryRun: report.dryRun,
      items: report.items,
      columns,
      headline: report.dryRun
        ? `Plan: reap executions in ${statuses.join('/')} older than ${threshold} in ${cfg.table} → ${cfg.failedStatus}`
        : `Reap of ${cfg.table}: executions in ${statuses.join('/')} older than ${threshold}`,
      emptyMessage: `Nothing to reap: no execution in ${statuses.join('/')} older than ${threshold}.`,
      summary: () => ({ ...report.summary, threshold }),
      notes: () => notes,
      exitCode: () => report.exitCode,
      warnings: () => (report.warning ? [report.warning] : []),
    });
  });
}

const STUCK_EXAMPLES = `
Examples:
  $ opsctl executions stuck                      # default threshold (executions.threshold, 10m)
  $ opsctl executions stuck --older-than 2h --status running
  $ opsctl executions stuck --limit 0 -o ndjson  # every row, streamed
`;
const REAP_EXAMPLES = `
Examples:
  $ opsctl reap --older-than 10m                 # dry run: the plan, nothing changed
  $ opsctl reap --older-than 10m --apply --reason "INC-1234 executor crash"
  $ opsctl reap --older-than 1h --apply --yes --max 5000 -o json

Each row is re-checked at write time (status and age, compare-and-set) and reported as
reaped, race-lost (the worker finished first and wins), skipped-locked or errored.
Exit status: 0 done, 1 some rows errored, 2 bad input, 3 database unreachable or another reaper running.
`;

export function registerExecutionCommands(program: Command, r: Registrar): void {
  const executions = program.command('executions').description(describe('executions'));
  executions
    .command('stuck')
    .description('List executions stuck in a non-terminal status past a threshold, oldest first (read-only)')
    .option('--older-than <duration>', 'threshold, e.g. 10m, 2h30m, 1d (default: executions.threshold)')
    .option('--status <list>', 'stuck statuses, comma-separated (default: executions.stuckStatuses)')
    .option('--limit <n>', 'at most this many rows (0 = no limit)', undefined)
    .addHelpText('after', STUCK_EXAMPLES)
    .action(r.wrap((ctx, flags: StuckFlags) => runStuck(ctx, flags)));

  const reap = program
    .command('reap')
    .description(describe('reap'))
    .option('--older-than <duration>', 'threshold, e.g. 10m (default: executions.threshold)')
    .option('--status <list>', 'stuck statuses, comma-separated (default: executions.stuckStatuses)');
  addApplyFlags(reap, { max: '1000', batchHelp: 'largest batch: batches are sized by time, ~250 ms each, up to this many rows (default from config, 10000)' })
    .addHelpText('after', REAP_EXAMPLES)
    .action(r.wrap((ctx, flags: ReapFlags) => runReap(ctx, flags)));
}
