import type { Command } from 'commander';
import { describe } from './descriptions.js';
import type { Registrar } from './registrar.js';
import type { CommandContext } from '../cli/context.js';
import type { Column } from '../output/output.js';
import { formatAge, formatDuration, parseDuration } from '../config/durations.js';
import type { PlannedReap, StuckExecution } from '../checks/stuck-executions.js';
import type { Database } from '../database/database.js';
import { usageError } from '../errors.js';
import { addApplyFlags, applyOptions, assertMaxTotal, parseCount, parsePositive, splitList, type ApplyFlags, type ApplyOptions } from './shared-flags.js';

interface StuckFlags {
  olderThan?: string;
  status?: string;
  limit?: string;
}
type ReapFlags = StuckFlags & ApplyFlags & { deadWorkers?: boolean; stale?: string; connections?: string };

/** What `executions stuck` runs with; an unset field takes its config default. */
export interface StuckOptions {
  thresholdMs?: number;
  statuses?: string[];
  /** 0 = no limit. */
  limit: number;
}

/** What `reap` runs with; an unset field takes its config default. */
export interface ReapOptions extends ApplyOptions {
  thresholdMs?: number;
  statuses?: string[];
  /** Database sessions applying batches side by side (1: one session, the default). */
  connections?: number;
}

/** The most sessions one reap may open: each holds row locks of its own batch. */
export const MAX_REAP_CONNECTIONS = 4;

/** Flags to typed options: every value checked before anything is read. */
export function stuckOptions(flags: StuckFlags): StuckOptions {
  return {
    thresholdMs: flags.olderThan === undefined ? undefined : parseDuration(flags.olderThan, '--older-than'),
    statuses: splitList(flags.status),
    limit: flags.limit === undefined ? 1000 : parseCount(flags.limit, '--limit'),
  };
}

export function reapOptions(flags: ReapFlags): ReapOptions {
  if (flags.stale !== undefined) throw usageError('--stale goes with --dead-workers (the heartbeat threshold); for an age threshold use --older-than.');
  return {
    thresholdMs: flags.olderThan === undefined ? undefined : parseDuration(flags.olderThan, '--older-than'),
    statuses: splitList(flags.status),
    ...applyOptions(flags),
    ...(flags.connections === undefined ? {} : { connections: reapConnections(flags.connections) }),
  };
}

function reapConnections(value: string): number {
  const n = parsePositive(value, '--connections');
  if (n > MAX_REAP_CONNECTIONS) throw usageError(`--connections is at most ${MAX_REAP_CONNECTIONS}, got "${value}".`);
  return n;
}

async function resolveQuery(ctx: CommandContext, o: { thresholdMs?: number; statuses?: string[] }) {
  const cfg = (await ctx.config()).executions;
  const thresholdMs = o.thresholdMs ?? parseDuration(cfg.threshold, 'executions.threshold');
  const { stuckStatusFilter } = await import('../checks/stuck-executions.js');
  return { cfg, thresholdMs, statuses: stuckStatusFilter(cfg, o.statuses) };
}

export async function runStuck(ctx: CommandContext, o: StuckOptions): Promise<number> {
  const { parseFormat } = await import('../output/output.js');
  parseFormat(ctx.globals.output);
  const { limit } = o;
  const { cfg, thresholdMs, statuses } = await resolveQuery(ctx, o);
  const { assertExecutionsSchema, copyStuck } = await import('../checks/stuck-executions.js');
  const { isTypeMismatch, isUndefinedName } = await import('../database/database.js');
  // Runs once the connection is under way (TCP, the server starting a session, the login),
  // time opsctl otherwise spends idle: the COPY reader and the output stream are ready before
  // the first row instead of being built after it.
  setImmediate(() => {
    import('../database/require-package.js').then((m) => m.requirePackage('pg-copy-streams')).catch(() => {});
    void ctx.io.stdout;
  });
  return ctx.withDatabase(async (db) => {
    try {
      return await listStuck(db);
    } catch (e) {
      // The listing asks the catalog nothing beforehand (a round trip on every run); when the
      // server did not know a name, or a column's type did not fit (updatedAt a text column),
      // this says which configured table or column is wrong.
      if (isUndefinedName(e) || isTypeMismatch(e)) await db.readOnly((ro) => assertExecutionsSchema(ro, cfg));
      throw e;
    }
  });

  function listStuck(db: Database): Promise<number> {
    return db.readOnly(async (ro) => {
      // COPY: json/ndjson pass the server's row text through; a table parses the same rows.
      const listing = copyStuck(ro, cfg, { thresholdMs, statuses, limit });
      // Started before anything is printed: a query the server rejects fails with no output.
      await listing.open();
      const columns: Column<StuckExecution>[] = [
        { header: 'id', value: (r) => r.id },
        { header: 'status', value: (r) => r.status, tone: () => 'warn' },
        { header: 'age', value: (r) => formatAge(r.ageSeconds * 1000) },
        // The age says it on a terminal; -o wide and piped output keep the timestamp.
        { header: 'updated_at', value: (r) => r.updatedAt.replace(/\.\d{3}Z$/, 'Z'), wideOnly: true },
      ];
      return ctx.emit({
        command: 'executions stuck',
        mode: 'read',
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
    });
  }
}

export async function runReap(ctx: CommandContext, o: ReapOptions): Promise<number> {
  const { parseFormat } = await import('../output/output.js');
  parseFormat(ctx.globals.output);
  assertMaxTotal(o);
  if (ctx.boundTarget() && (o.connections ?? 1) > 1) throw usageError('--connections applies to a reap of one database: it does not combine with --target, --all-targets or --shard.');
  const { cfg, thresholdMs, statuses } = await resolveQuery(ctx, o);
  const config = await ctx.config();
  const max = ctx.capMax(o.max ?? cfg.max);
  const { assertExecutionsSchema, reapRemedy } = await import('../checks/stuck-executions.js');
  const { databaseHost, streamRemediation } = await import('../engine/remediation.js');
  const { presentStreamedRemediation } = await import('../output/remediation-presenter.js');
  const { REAP_BATCH_TARGET_MS } = await import('../engine/batch-sizer.js');
  const threshold = formatDuration(thresholdMs);
  const connections = o.apply ? (o.connections ?? 1) : 1;
  // Nothing needs the whole plan before the first write — no --max cap (0) and nobody to ask
  // (--yes, or no TTY: see ctx.confirm) — so the batches start while the plan is still streaming,
  // on a read-only session of its own: the plan's time is no longer added to the batches'.
  const pipelined = o.apply && max === 0 && (ctx.globals.yes || !ctx.io.stdin.isTTY || !ctx.io.stderr.isTTY);
  // Each batch's rows live for the batch and are promoted to V8's old generation, which then
  // grows to ~4× its live size between major collections: peak RSS rose with the rows reaped
  // (78 MiB at 10k, 122 MiB at 100k). Read by V8 at each heap resize, so set here, in-process,
  // once pg and pg-copy-streams are loaded: the launcher compiles them from code caches that V8
  // accepts only under the flags they were written with.
  return ctx.withDatabase(async (db) => {
    // The plan's own session when the batches can start while it streams (see planLane),
    // connecting while this one checks the schema. A database short of connections still gets
    // its reap: without that session the plan is made first.
    const planSession = pipelined ? ctx.openDatabase().catch(() => undefined) : Promise.resolve(undefined);
    let extra: Database[] = [];
    try {
      (await import('../database/require-package.js')).requirePackage('pg-copy-streams'); // the plan's COPY needs it: loaded before the flag changes
      (await import('node:v8')).setFlagsFromString('--optimize-for-size');
      await db.readOnly((ro) => assertExecutionsSchema(ro, cfg));
      // Further sessions for --connections, opened before anything is planned or locked. If one
      // cannot be opened, those that were are closed too (an open one would also keep the
      // process from exiting).
      const opened = await Promise.allSettled(Array.from({ length: connections - 1 }, () => ctx.openDatabase()));
      extra = opened.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
      const refused = opened.find((o): o is PromiseRejectedResult => o.status === 'rejected');
      if (refused) throw refused.reason;
      return await reapOn(db, extra, await planSession);
    } finally {
      const planDb = await planSession;
      await Promise.all([...extra, ...(planDb ? [planDb] : [])].map((x) => x.close()));
    }
  });

  async function reapOn(db: Database, extra: Database[], planDb: Database | undefined): Promise<number> {
    const remedy = reapRemedy(cfg, { thresholdMs, statuses, limit: 0, reason: o.reason, actor: config.actor, audit: config.audit });
    return presentStreamedRemediation<PlannedReap>(
      ctx,
      {
        command: 'reap',
        action: 'reap',
        unit: 'rows',
        question: (n) => `Reap ${n} execution(s) in ${cfg.table} (move to ${cfg.failedStatus})?`,
        overTargets: { verb: 'Reap', noun: 'execution(s)', applied: remedy.labels.applied },
        columns: [
          { header: 'id', value: (r) => r.id },
          { header: 'status', value: (r) => r.status },
          { header: 'age', value: (r) => formatAge(r.ageSeconds * 1000) },
          // In the headline already: only -o wide and piped output repeat it on every row.
          { header: 'threshold', value: () => threshold, tone: () => 'dim', wideOnly: true },
        ],
        detail: { planHeader: 'reason it would write', text: (r) => r.reason },
        headline: (mode) =>
          mode === 'plan'
            ? `Plan: reap executions in ${statuses.join('/')} older than ${threshold} in ${cfg.table} → ${cfg.failedStatus}`
            : `Reap of ${cfg.table}: executions in ${statuses.join('/')} older than ${threshold}`,
        emptyMessage: `Nothing to reap: no execution in ${statuses.join('/')} older than ${threshold}.`,
        dryRunNotes: () => ['Dry run: nothing was changed. Re-run with --apply to reap these rows.'],
        overMax: `More than --max ${max} rows are stuck`,
        notesAfter: (mode) =>
          mode === 'plan' ? ['A reaped execution that was in fact still running may run twice: the threshold must exceed the longest legitimate run.'] : [],
        summary: (report) => ({ ...report.summary, threshold }),
      },
      // Batches sized by time up to the cap (see batch-sizer.ts); the plan spooled, the report
      // streamed as the batches commit: memory stays flat however many rows are reaped.
      (hooks) =>
        streamRemediation(databaseHost(db, remedy.table, remedy.schema), remedy, {
          apply: o.apply,
          max,
          batchSize: o.batchSize ?? cfg.batchSize,
          batchTargetMs: REAP_BATCH_TARGET_MS,
          wait: o.wait,
          lanes: extra.map((x) => databaseHost(x, remedy.table, remedy.schema)),
          ...(planDb ? { planLane: databaseHost(planDb, remedy.table, remedy.schema) } : {}),
          ...hooks,
        }),
    );
  }
}

/** `executions show ID`: the row whole, its age on the database clock, its audit history. */
export async function runShowExecution(ctx: CommandContext, id: string): Promise<number> {
  const { parseFormat } = await import('../output/output.js');
  parseFormat(ctx.globals.output);
  const config = await ctx.config();
  const cfg = config.executions;
  const { showExecution } = await import('../checks/show-item.js');
  const { emitShow, readWithAudit, rowFields } = await import('./show-output.js');
  const { item, audit, journal } = await readWithAudit(ctx, cfg.table, (ro) => showExecution(ro, cfg, id));
  return emitShow(ctx, {
    command: 'executions show',
    headline: `Execution ${item.id} in ${item.table}`,
    fields: [
      ...rowFields(item.row, { [cfg.key]: 'key', [cfg.status]: 'status', [cfg.error]: 'error', [cfg.updatedAt]: 'updatedAt' }),
      { field: 'age (database clock)', value: item.ageSeconds === null ? '' : formatAge(item.ageSeconds * 1000) },
    ],
    item: { ...item },
    audit,
    journal,
  });
}

const SHOW_EXAMPLES = `
Examples:
  $ opsctl executions show 7f0c2a4e-5b1d-4c8e-9a57-2f4d1e6b9c30
  $ opsctl executions show 7f0c2a4e-5b1d-4c8e-9a57-2f4d1e6b9c30 -o json   # { item, audit }
`;

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
  $ opsctl reap --all-targets --apply --max 100 --max-total 1000   # plan everywhere, ask once, apply target by target

Each row is re-checked at write time (status and age, compare-and-set) and reported as
reaped, race-lost (the worker finished first and wins), skipped-locked or errored.
Exit status: 0 done, 1 some rows errored, 2 bad input, 3 database unreachable or another reaper running,
4 an internal error (a bug in opsctl).

  $ opsctl reap --dead-workers                   # rows of workers.runs held by dead workers, any age
  $ opsctl reap --dead-workers --stale 5m --apply --reason "INC-9 node lost"
With --dead-workers a row is re-checked at write time: still held by the same worker, and that
worker still silent (a worker that heartbeats again before the write keeps its rows: race-lost).
`;

export function registerExecutionCommands(program: Command, r: Registrar): void {
  const executions = program
    .command('executions')
    .description(describe('executions'))
    .addHelpText('after', '\nExamples:\n  $ opsctl executions stuck                      # read-only\n  $ opsctl executions stuck --older-than 2h -o json\n  $ opsctl reap --older-than 10m                 # the remedy: a dry run unless --apply\n');
  executions
    .command('stuck')
    .description('List executions stuck in a non-terminal status past a threshold, oldest first (read-only)')
    .option('--older-than <duration>', 'threshold, e.g. 10m, 2h30m, 1d (default: executions.threshold)')
    .option('--status <list>', 'stuck statuses, comma-separated (default: executions.stuckStatuses)')
    .option('--limit <n>', 'at most this many rows (0 = no limit)', undefined)
    .addHelpText('after', STUCK_EXAMPLES)
    .action(r.wrap((ctx, flags: StuckFlags) => runStuck(ctx, stuckOptions(flags))));

  executions
    .command('show')
    .description("One execution whole: every column, the full error, its age and its audit history (read-only)")
    .argument('<id>', "the row's key (executions.key)")
    .addHelpText('after', SHOW_EXAMPLES)
    .action(r.wrap((ctx, id: string) => runShowExecution(ctx, id)));

  const reap = program
    .command('reap')
    .description(describe('reap'))
    .option('--older-than <duration>', 'threshold, e.g. 10m (default: executions.threshold)')
    .option('--status <list>', 'stuck statuses, comma-separated (default: executions.stuckStatuses)')
    .option('--max-total <n>', 'with --target/--all-targets: refuse to change more than this many in all (--max is per target)')
    .option('--dead-workers', 'instead: rows of workers.runs held by workers whose heartbeat is stale, whatever their age')
    .option('--stale <duration>', 'with --dead-workers: a heartbeat older than this is dead (default: workers.stale)')
    .option('--connections <n>', `with --apply: database sessions applying batches side by side, 1–${MAX_REAP_CONNECTIONS} (default 1: one batch holding row locks at a time)`);
  addApplyFlags(reap, { max: '1000', batchHelp: 'largest batch: batches are sized by time, ~250 ms each, up to this many rows (default from config, 10000)' })
    .addHelpText('after', REAP_EXAMPLES)
    .action(
      r.wrap(
        async (ctx, flags: ReapFlags) => {
          if (!flags.deadWorkers) return runReap(ctx, reapOptions(flags));
          if (flags.connections !== undefined) throw usageError('--connections goes with an age reap (--older-than), not with --dead-workers.');
          const { deadWorkerOptions, runReapDeadWorkers } = await import('./workers.js');
          return runReapDeadWorkers(ctx, deadWorkerOptions(flags, 'reap'));
        },
        { merge: 'plan-then-apply' },
      ),
    );
}
