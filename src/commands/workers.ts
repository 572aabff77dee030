import type { Command } from 'commander';
import { describe } from './descriptions.js';
import type { Registrar } from './registrar.js';
import type { CommandContext } from '../cli/context.js';
import type { Column } from '../output/output.js';
import type { DeadWorker, PlannedDeadWorkerReap } from '../checks/dead-workers.js';
import type { PlannedDeadWorkerRescue } from '../checks/dead-worker-jobs.js';
import { usageError } from '../errors.js';
import { formatAge, formatDuration, parseDuration } from '../config/durations.js';
import { applyOptions, assertMaxTotal, parseCount, type ApplyFlags, type ApplyOptions } from './shared-flags.js';

interface DeadFlags {
  stale?: string;
  limit?: string;
}
type DeadWorkerFlags = ApplyFlags & { stale?: string; kind?: string; queue?: string; olderThan?: string; status?: string };

export interface DeadOptions {
  staleMs?: number;
  /** 0 = no limit. */
  limit: number;
}

export function deadOptions(flags: DeadFlags): DeadOptions {
  return {
    staleMs: flags.stale === undefined ? undefined : parseDuration(flags.stale, '--stale'),
    limit: flags.limit === undefined ? 1000 : parseCount(flags.limit, '--limit'),
  };
}

export async function runDead(ctx: CommandContext, o: DeadOptions): Promise<number> {
  const { parseFormat } = await import('../output/output.js');
  parseFormat(ctx.globals.output);
  const { limit } = o;
  const cfg = (await ctx.config()).workers;
  const ms = o.staleMs ?? parseDuration(cfg.stale, 'workers.stale');
  const { assertWorkersSchema, countWorkers, findDeadWorkers, workerTableName, workTableName } = await import('../checks/dead-workers.js');
  const stale = formatDuration(ms);
  return ctx.withDatabase((db) =>
    db.readOnly(async (ro) => {
      // One snapshot: the counts and the list agree.
      await ro.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      await assertWorkersSchema(ro, cfg);
      const counts = await countWorkers(ro, cfg, ms);
      const dead = await findDeadWorkers(ro, cfg, ms, limit);
      const columns: Column<DeadWorker>[] = [
        { header: 'worker', value: (r) => r.id },
        ...(cfg.columns.host ? [{ header: 'host', value: (r: DeadWorker) => r.host }] : []),
        ...(cfg.columns.status ? [{ header: 'status', value: (r: DeadWorker) => r.status }] : []),
        { header: 'silent for', value: (r) => formatAge(r.silentSeconds * 1000), tone: () => 'warn' },
        { header: 'last heartbeat', value: (r) => r.heartbeatAt.replace(/\.\d{3}Z$/, 'Z') },
        { header: 'rows held', value: (r) => r.held, tone: (r) => (r.held > 0 ? 'bad' : 'dim') },
      ];
      const notes: string[] = [];
      if (counts.heldRows > 0) notes.push(`${counts.heldRows} row(s) are held by dead workers: opsctl reap --dead-workers shows the plan (nothing is changed without --apply).`);
      if (counts.heldByUnknown > 0) notes.push(`${counts.heldByUnknown} row(s) in ${cfg.runs.heldStatuses.join('/')} name a worker that is not in ${workerTableName(cfg)}: not judged, never reaped by --dead-workers.`);
      if (counts.neverHeartbeated > 0) notes.push(`${counts.neverHeartbeated} worker(s) never heartbeated (NULL): not judged dead.`);
      if (limit > 0 && dead.length < counts.dead) notes.push(`Showing the ${dead.length} longest silent of ${counts.dead} (--limit 0 lists all).`);
      return ctx.emit({
        command: 'workers dead',
        mode: 'read',
        items: dead,
        columns,
        headline: `Workers in ${workerTableName(cfg)} silent for longer than ${stale} (database clock), with the rows of ${workTableName(cfg)} they hold`,
        emptyMessage: `No dead workers: every heartbeat in ${workerTableName(cfg)} is within ${stale}.`,
        notes: () => notes,
        summary: () => ({ dead: counts.dead, workers: counts.workers, heldRows: counts.heldRows, heldByUnknown: counts.heldByUnknown, neverHeartbeated: counts.neverHeartbeated, stale, ...(limit > 0 && dead.length < counts.dead ? { limitReached: limit } : {}) }),
      });
    }),
  );
}

/** What `reap --dead-workers` and `jobs rescue --dead-workers` run with; an unset field takes its config default. */
export interface DeadWorkerOptions extends ApplyOptions {
  staleMs?: number;
  kind?: string;
  queue?: string;
}

/** Flags to options: --dead-workers replaces the age criterion, so the age flags are refused. */
export function deadWorkerOptions(flags: DeadWorkerFlags, command: string): DeadWorkerOptions {
  refuseAgeFlags(flags, command);
  return { ...applyOptions(flags), staleMs: flags.stale === undefined ? undefined : parseDuration(flags.stale, '--stale'), kind: flags.kind, queue: flags.queue };
}

/** `opsctl reap --dead-workers`: rows of workers.runs held by dead workers, whatever their age. */
export async function runReapDeadWorkers(ctx: CommandContext, o: DeadWorkerOptions): Promise<number> {
  const { parseFormat } = await import('../output/output.js');
  parseFormat(ctx.globals.output);
  const config = await ctx.config();
  const cfg = config.workers;
  const ms = o.staleMs ?? parseDuration(cfg.stale, 'workers.stale');
  assertMaxTotal(o);
  const max = ctx.capMax(o.max ?? cfg.max);
  const { assertWorkersSchema, deadWorkerReapRemedy, workTableName } = await import('../checks/dead-workers.js');
  const { remediate } = await import('../engine/remediation.js');
  const { presentRemediation } = await import('../output/remediation-presenter.js');
  const stale = formatDuration(ms);
  const where = workTableName(cfg);
  return ctx.withDatabase(async (db) => {
    await db.readOnly(async (ro) => {
      await assertWorkersSchema(ro, cfg);
      if (o.apply && config.audit.table) await ro.assertColumns('audit', config.audit.table, config.audit.schema, {});
    });
    const remedy = deadWorkerReapRemedy(cfg, { staleMs: ms, reason: o.reason, actor: config.actor, audit: config.audit });
    return presentRemediation<PlannedDeadWorkerReap>(
      ctx,
      {
        command: 'reap',
        action: 'reap',
        unit: 'rows',
        question: (n) => `Reap ${n} row(s) of ${where} held by dead workers (move to ${cfg.runs.failedStatus})?`,
        overTargets: { verb: 'Reap', noun: 'row(s) held by dead workers', applied: remedy.labels.applied },
        columns: [
          { header: 'id', value: (r) => r.id },
          { header: 'worker', value: (r) => r.worker },
          { header: 'worker silent', value: (r) => formatAge(r.workerSilentSeconds * 1000) },
          { header: 'stale after', value: () => stale, tone: () => 'dim' },
          { header: 'status', value: (r) => r.status },
          { header: 'row age', value: (r) => (r.ageSeconds === null ? '' : formatAge(r.ageSeconds * 1000)) },
        ],
        detail: { planHeader: 'reason it would write', text: (r) => r.reason },
        headline: (mode) => `${mode === 'plan' ? 'Plan: reap' : 'Reap of'} rows of ${where} held by workers silent for longer than ${stale} → ${cfg.runs.failedStatus}`,
        emptyMessage: `Nothing to reap: no row of ${where} is held by a worker silent for longer than ${stale}.`,
        dryRunNotes: () => ['Dry run: nothing was changed. Re-run with --apply to reap these rows; a worker that heartbeats again before the write keeps its rows.'],
        overMax: `More than --max ${max} rows are held by dead workers`,
        summary: (report) => ({ ...report.summary, deadWorkers: new Set(report.items.map((i) => i.worker)).size, stale }),
      },
      (hooks) => remediate(db, remedy, { apply: o.apply, max, batchSize: o.batchSize ?? cfg.batchSize, wait: o.wait, ...hooks }),
    );
  });
}

/** `opsctl jobs rescue --dead-workers`: running jobs whose worker is dead, whatever their age. */
export async function runRescueDeadWorkers(ctx: CommandContext, o: DeadWorkerOptions): Promise<number> {
  const { parseFormat } = await import('../output/output.js');
  parseFormat(ctx.globals.output);
  const config = await ctx.config();
  const { resolveQueue, assertQueueSchema } = await import('../checks/jobs-presets.js');
  const q = resolveQueue(config);
  const { assertQueueRecordsWorker, deadWorkerRescueRemedy } = await import('../checks/dead-worker-jobs.js');
  assertQueueRecordsWorker(q);
  const cfg = config.workers;
  const ms = o.staleMs ?? parseDuration(cfg.stale, 'workers.stale');
  assertMaxTotal(o);
  const max = ctx.capMax(o.max ?? q.cfg.max);
  const { assertWorkerTable, workerTableName } = await import('../checks/dead-workers.js');
  const { rescueSummary } = await import('../checks/stuck-jobs.js');
  const { remediate } = await import('../engine/remediation.js');
  const { presentRemediation } = await import('../output/remediation-presenter.js');
  const stale = formatDuration(ms);
  return ctx.withDatabase(async (db) => {
    await db.readOnly(async (ro) => {
      await assertQueueSchema(ro, q);
      await assertWorkerTable(ro, cfg);
      if (o.apply && config.audit.table) await ro.assertColumns('audit', config.audit.table, config.audit.schema, {});
    });
    const remedy = deadWorkerRescueRemedy(q, cfg, { staleMs: ms, filter: { kind: o.kind, queue: o.queue }, reason: o.reason, actor: config.actor, audit: config.audit });
    return presentRemediation<PlannedDeadWorkerRescue>(
      ctx,
      {
        command: 'jobs rescue',
        action: 'rescue',
        unit: 'jobs',
        question: (n) => `Rescue ${n} job(s) in ${q.where} held by dead workers (${q.preset.label})?`,
        overTargets: { verb: 'Rescue', noun: 'job(s) held by dead workers', applied: remedy.labels.applied },
        columns: [
          { header: 'id', value: (r) => r.id },
          { header: 'kind', value: (r) => r.kind },
          { header: 'worker', value: (r) => r.worker },
          { header: 'worker silent', value: (r) => formatAge(r.workerSilentSeconds * 1000) },
          { header: 'stale after', value: () => stale, tone: () => 'dim' },
          { header: 'job age', value: (r) => formatAge(r.ageSeconds * 1000) },
        ],
        planOutcome: { header: 'would become', value: (r) => r.wouldBecome },
        detail: { planHeader: 'error it would record', text: (r) => r.reason },
        headline: (mode) => `${mode === 'plan' ? 'Plan: rescue' : 'Rescue of'} ${q.preset.label} jobs in ${q.where} held by workers of ${workerTableName(cfg)} silent for longer than ${stale}`,
        emptyMessage: `Nothing to rescue: no running job is held by a worker silent for longer than ${stale}.`,
        dryRunNotes: () => [`Dry run: nothing was changed. Re-run with --apply to rescue these jobs: ${q.preset.rescueEffect}.`],
        overMax: `More than --max ${max} jobs are held by dead workers`,
        summary: (report) => ({ ...rescueSummary(report), preset: q.preset.queue, deadWorkers: new Set(report.items.map((i) => i.worker)).size, stale }),
      },
      (hooks) => remediate(db, remedy, { apply: o.apply, max, batchSize: o.batchSize ?? q.cfg.batchSize, wait: o.wait, ...hooks }),
    );
  });
}

/** --dead-workers replaces the age criterion: the age flags make no sense with it. */
export function refuseAgeFlags(flags: { olderThan?: string; status?: string }, command: string): void {
  if (flags.olderThan !== undefined) throw usageError(`${command} --dead-workers selects by heartbeat, not age: drop --older-than (use --stale for the heartbeat threshold).`);
  if (flags.status !== undefined) throw usageError(`${command} --dead-workers uses workers.runs.heldStatuses: drop --status.`);
}

const DEAD_EXAMPLES = `
Examples:
  $ opsctl workers dead                          # heartbeat older than workers.stale (2m)
  $ opsctl workers dead --stale 30s -o json
  $ opsctl workers dead --limit 0 -o ndjson

A worker is dead when its heartbeat (workers.columns.heartbeat) is older than the threshold on
the database clock. "rows held" counts the rows of workers.runs in a held status naming it.
Read-only. Remedy: opsctl reap --dead-workers (dry run unless --apply).
Exit status: 0 listed (dead workers are not an error here: opsctl check --only workers makes
them one), 2 bad flags or config, or a configured table/column missing, 3 database unreachable,
4 an internal error (a bug in opsctl).
`;

export function registerWorkerCommands(program: Command, r: Registrar): void {
  const workers = program
    .command('workers')
    .description(describe('workers'))
    .addHelpText('after', '\nExamples:\n  $ opsctl workers dead                          # read-only\n  $ opsctl workers dead --stale 30s -o json\n  $ opsctl reap --dead-workers                   # the remedy for the rows they hold: a dry run unless --apply\n');
  workers
    .command('dead')
    .description('List workers whose heartbeat is stale, with how many rows each still holds (read-only)')
    .option('--stale <duration>', 'heartbeat older than this is dead, e.g. 2m, 30s (default: workers.stale)')
    .option('--limit <n>', 'at most this many workers (0 = no limit; default 1000)')
    .addHelpText('after', DEAD_EXAMPLES)
    .action(r.wrap((ctx, flags: DeadFlags) => runDead(ctx, deadOptions(flags))));
}
