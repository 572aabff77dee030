import type { Command } from 'commander';
import { describe } from './descriptions.js';
import { errorGroupSections } from './error-group-sections.js';
import type { Registrar } from './registrar.js';
import type { CommandContext } from '../cli/context.js';
import type { Column, Section, Tone } from '../output/output.js';
import type { StaleQueueLock } from '../checks/queue-locks.js';
import type { ResolvedQueue } from '../checks/jobs-presets.js';
import type { DiscardedJob } from '../checks/discarded-jobs.js';
import type { PlannedRescue, StuckJob } from '../checks/stuck-jobs.js';
import { usageError } from '../errors.js';
import { errorClassKey } from '../checks/error-classes.js';
import { displayName } from '../database/identifiers.js';
import { formatAge, formatDuration, parseDuration } from '../config/durations.js';
import { failOnMissing, missingIdsNote } from './named-ids.js';
import { addApplyFlags, applyOptions, assertMaxTotal, parseCount, type ApplyFlags, type ApplyOptions } from './shared-flags.js';

interface StuckFlags {
  olderThan?: string;
  kind?: string;
  queue?: string;
  limit?: string;
}
interface DiscardedFlags {
  kind?: string;
  queue?: string;
  since?: string;
  limit?: string;
  includeCancelled?: boolean;
}
type RetryFlags = ApplyFlags & Omit<DiscardedFlags, 'limit'> & { all?: boolean; errorClass?: string };
type RescueFlags = ApplyFlags & Omit<StuckFlags, 'limit'> & { deadWorkers?: boolean; stale?: string };

const STUCK_LIMIT = 1000;
const DISCARDED_LIMIT = 100;

/** What the jobs commands run with: flags checked and parsed; unset fields take the config's defaults. */
export interface JobSelection {
  kind?: string;
  queue?: string;
}
export interface JobStuckOptions extends JobSelection {
  /** --older-than; unset: jobs.rescueAfter, else the queue's own rule. */
  olderThanMs?: number;
  limit: number;
}
export interface JobDiscardedOptions extends JobSelection {
  /** --since as given (for headlines) and in milliseconds. */
  since?: { text: string; ms: number };
  includeCancelled: boolean;
  limit: number;
}
export type JobApplyOptions = ApplyOptions;
export type JobRetryOptions = JobApplyOptions & Omit<JobDiscardedOptions, 'limit'> & { ids: string[]; all: boolean; errorClass?: string };
export type JobRescueOptions = JobApplyOptions & Omit<JobStuckOptions, 'limit'>;

const durationFlag = (v: string | undefined, flag: string) => (v === undefined ? undefined : parseDuration(v, flag));

export function jobStuckOptions(f: StuckFlags): JobStuckOptions {
  return { kind: f.kind, queue: f.queue, olderThanMs: durationFlag(f.olderThan, '--older-than'), limit: f.limit === undefined ? STUCK_LIMIT : parseCount(f.limit, '--limit') };
}

export function jobDiscardedOptions(f: DiscardedFlags): JobDiscardedOptions {
  return {
    kind: f.kind,
    queue: f.queue,
    since: f.since === undefined ? undefined : { text: f.since, ms: parseDuration(f.since, '--since') },
    includeCancelled: Boolean(f.includeCancelled),
    limit: f.limit === undefined ? DISCARDED_LIMIT : parseCount(f.limit, '--limit'),
  };
}

export function jobRetryOptions(ids: string[], f: RetryFlags): JobRetryOptions {
  if (ids.length === 0 && f.kind === undefined && f.queue === undefined && f.since === undefined && f.errorClass === undefined && !f.all)
    throw usageError('retry needs a scope: pass job ids, a filter (--kind, --queue, --since, --error-class) or --all; nothing was changed.');
  const { limit: _limit, ...selection } = jobDiscardedOptions(f);
  const errorClass = f.errorClass === undefined ? undefined : errorClassKey(f.errorClass);
  if (errorClass === '') throw usageError('--error-class needs a class as `jobs discarded` lists it; nothing was changed.');
  return { ...applyOptions(f), ...selection, ids, all: Boolean(f.all), errorClass };
}

export function jobRescueOptions(f: RescueFlags): JobRescueOptions {
  if (f.stale !== undefined) throw usageError('--stale goes with --dead-workers (the heartbeat threshold); for an age threshold use --older-than.');
  return { ...applyOptions(f), kind: f.kind, queue: f.queue, olderThanMs: durationFlag(f.olderThan, '--older-than') };
}

/** Format, config, the queue preset; nothing touches the database before these are valid. */
async function setup(ctx: CommandContext) {
  const { parseFormat } = await import('../output/output.js');
  parseFormat(ctx.globals.output);
  const config = await ctx.config();
  const { resolveQueue } = await import('../checks/jobs-presets.js');
  const q = resolveQueue(config);
  return { config, q };
}

const attempts = (r: { attempt: number; maxAttempts: number }) => `${r.attempt}/${r.maxAttempts}`;

/** The table of stale queue locks (graphile-worker's named queues) under a stuck or rescue listing. */
function queueLockSection(locks: Array<StaleQueueLock & { outcome?: string }>, formatAge: (ms: number) => string): Section {
  return {
    title: 'Stale queue locks (no stuck job behind them)',
    columns: [
      { header: 'queue', value: (l: StaleQueueLock) => l.queue },
      { header: 'locked_by', value: (l: StaleQueueLock) => l.lockedBy },
      { header: 'age', value: (l: StaleQueueLock) => formatAge(l.ageSeconds * 1000) },
      { header: 'locked_at', value: (l: StaleQueueLock) => l.lockedAt },
      ...(locks.some((l) => l.outcome) ? [{ header: 'outcome', value: (l: { outcome?: string }) => l.outcome }] : []),
    ],
    rows: locks,
  };
}

export async function runStuck(ctx: CommandContext, o: JobStuckOptions): Promise<number> {
  const { q } = await setup(ctx);
  const { limit } = o;
  const { rescueThresholdMs, assertQueueSchema } = await import('../checks/jobs-presets.js');
  const { streamStuckJobs, countStuckJobs } = await import('../checks/stuck-jobs.js');
  const thresholdMs = o.olderThanMs ?? rescueThresholdMs(q, undefined);
  const threshold = thresholdMs === null ? null : formatDuration(thresholdMs);
  const filter = { thresholdMs, kind: o.kind, queue: o.queue };
  return ctx.withDatabase((db) =>
    db.readOnly(async (ro) => {
      // One snapshot for the count and the rows, so they agree.
      await ro.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      await assertQueueSchema(ro, q);
      const total = await countStuckJobs(ro, q, filter);
      const { findStaleQueueLocks } = await import('../checks/queue-locks.js');
      const queueLocks = (await findStaleQueueLocks(ro, q, thresholdMs)).map(({ token: _t, ...l }) => l);
      let shown = 0;
      const rows = (async function* () {
        for await (const r of streamStuckJobs(ro, q, filter, limit)) {
          shown += 1;
          yield r;
        }
      })();
      const columns: Column<StuckJob>[] = [
        { header: 'id', value: (r) => r.id },
        { header: 'kind', value: (r) => r.kind },
        ...(q.preset.namedQueues === false ? [] : [{ header: 'queue', value: (r: StuckJob) => r.queue }]),
        { header: 'state', value: (r) => r.state, tone: () => 'warn' },
        { header: 'attempt', value: attempts },
        { header: 'age', value: (r) => formatAge(r.ageSeconds * 1000) },
        { header: 'threshold', value: (r) => r.threshold, tone: () => 'dim' },
        ...(q.preset.recordsWorker === false ? [] : [{ header: 'worker', value: (r: StuckJob) => r.worker }]),
        { header: 'attempted_at', value: (r) => r.attemptedAt },
      ];
      return ctx.emit({
        command: 'jobs stuck',
        mode: 'read',
        items: rows,
        columns,
        headline: `${q.preset.label} jobs ${q.preset.describeStuck(threshold)} in ${q.where} (database clock)`,
        emptyMessage: `No stuck jobs: nothing ${q.preset.describeStuck(threshold)}.`,
        notes: () => [
          ...(limit > 0 && shown < total.count ? [`Showing the oldest ${shown} of ${total.count} (--limit 0 lists every job).`] : []),
          ...(queueLocks.length ? [`${queueLocks.length} stale queue lock(s) with no stuck job behind them: every job of those queues waits; jobs rescue frees them as ${q.preset.label}'s own recovery does.`] : []),
        ],
        sections: () => (queueLocks.length ? [queueLockSection(queueLocks, formatAge)] : []),
        summary: () => ({
          stuck: total.count,
          ...(q.preset.queueLocks ? { staleQueueLocks: queueLocks.length, queueLocks } : {}),
          shown,
          preset: q.preset.queue,
          threshold: threshold ?? 'expire_in',
          oldestAgeSeconds: total.oldestAgeSeconds,
          ...(limit > 0 && shown < total.count ? { limitReached: limit } : {}),
        }),
      });
    }),
  );
}

export async function runDiscarded(ctx: CommandContext, o: JobDiscardedOptions): Promise<number> {
  const { q } = await setup(ctx);
  const { limit } = o;
  const includeCancelled = o.includeCancelled || q.cfg.includeCancelled;
  // The queue's archive too (pg-boss), read-only: a failure moved there is still one the queue gave up on.
  const archive = q.preset.archive;
  const filter = { kind: o.kind, queue: o.queue, includeCancelled, sinceMs: o.since?.ms, ...(archive ? { includeArchived: true } : {}) };
  const { assertQueueSchema } = await import('../checks/jobs-presets.js');
  const { summariseDiscardedJobs, streamDiscardedJobs, discardedHeadline, countArchivedJobs } = await import('../checks/discarded-jobs.js');
  const states = q.preset.discardedStates(includeCancelled);
  return ctx.withDatabase((db) =>
    db.readOnly(async (ro) => {
      await ro.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      await assertQueueSchema(ro, q);
      const summary = await summariseDiscardedJobs(ro, q, filter);
      const archived = await countArchivedJobs(ro, q, filter);
      let shown = 0;
      const rows = (async function* () {
        for await (const r of streamDiscardedJobs(ro, q, filter, limit)) {
          shown += 1;
          yield r;
        }
      })();
      const columns: Column<DiscardedJob>[] = [
        { header: 'id', value: (r) => r.id },
        { header: 'kind', value: (r) => r.kind },
        ...(q.preset.namedQueues === false ? [] : [{ header: 'queue', value: (r: DiscardedJob) => r.queue }]),
        ...(states.length > 1 ? [{ header: 'state', value: (r: DiscardedJob) => r.state }] : []),
        { header: 'attempt', value: attempts },
        { header: 'since', value: (r) => (r.ageSeconds === null ? '' : formatAge(r.ageSeconds * 1000)) },
        { header: 'finalized_at', value: (r) => r.finalizedAt },
        ...(archive ? [{ header: 'where', value: (r: DiscardedJob) => (r.archived ? archive.table : q.preset.table), tone: (r: DiscardedJob): Tone => (r.archived ? 'dim' : undefined) }] : []),
        { header: 'last error', value: (r) => r.lastError, tone: () => 'bad', shrink: true },
      ];
      return ctx.emit({
        command: 'jobs discarded',
        mode: 'read',
        items: rows,
        columns,
        headline: discardedHeadline(summary, q.where, states),
        emptyMessage: 'No discarded jobs match.',
        sections: () => errorGroupSections(summary),
        notes: () => [
          ...(limit > 0 && shown < summary.total ? [`Showing the newest ${shown} of ${summary.total}; the groups count all of them (--limit 0 lists every job).`] : []),
          ...(archive && archived ? [`${archived} of them are in ${displayName(archive.table, q.schema)}: ${archive.note}.`] : []),
        ],
        summary: () => ({
          total: summary.total,
          shown,
          ...(archive ? { archived, archive: displayName(archive.table, q.schema) } : {}),
          preset: q.preset.queue,
          states,
          ...(limit > 0 && shown < summary.total ? { limitReached: limit } : {}),
          byKind: summary.byKind,
          byErrorClass: summary.byErrorClass,
        }),
      });
    }),
  );
}

/** The engine settings shared by retry and rescue. */
function engineOptions(q: ResolvedQueue, o: JobApplyOptions) {
  return { apply: o.apply, max: o.max ?? q.cfg.max, batchSize: o.batchSize ?? q.cfg.batchSize, wait: o.wait };
}

export async function runRetry(ctx: CommandContext, o: JobRetryOptions): Promise<number> {
  const { config, q } = await setup(ctx);
  const { ids } = o;
  const { assertQueueSchema, checkJobIds } = await import('../checks/jobs-presets.js');
  const unique = checkJobIds(q.preset, ids);
  const includeCancelled = o.includeCancelled || q.cfg.includeCancelled;
  const filter = {
    kind: o.kind,
    queue: o.queue,
    includeCancelled,
    sinceMs: o.since?.ms,
    ids: unique.length ? unique : undefined,
    errorClass: o.errorClass,
  };
  const opts = engineOptions(q, o);
  const states = q.preset.discardedStates(includeCancelled);
  const { retryRemedy, checkRetryIds, countArchivedJobs } = await import('../checks/discarded-jobs.js');
  const { unknownClassMessage } = await import('../checks/error-classes.js');
  const { remediate } = await import('../engine/remediation.js');
  const { presentRemediation } = await import('../output/remediation-presenter.js');
  return ctx.withDatabase(async (db) => {
    const idCheck = await db.readOnly(async (ro) => {
      await assertQueueSchema(ro, q);
      if (opts.apply && config.audit.table) await ro.assertColumns('audit', config.audit.table, config.audit.schema, {});
      return unique.length ? checkRetryIds(ro, q, unique, includeCancelled) : null;
    });
    // pg-boss's archive: matching failures there are reported, never retried (its own retry cannot either).
    const archived = q.preset.archive ? await db.readOnly((ro) => countArchivedJobs(ro, q, filter)) : 0;
    const remedy = retryRemedy(q, { filter, reason: o.reason, actor: config.actor, audit: config.audit });
    const scope =
      [unique.length ? `${unique.length} id(s)` : null, o.kind !== undefined ? `kind ${o.kind}` : null, o.queue !== undefined ? `queue ${o.queue}` : null, o.since ? `within ${o.since.text}` : null, o.errorClass !== undefined ? `error class ${JSON.stringify(o.errorClass)}` : null]
        .filter(Boolean)
        .join(', ') || 'all';
    return presentRemediation<DiscardedJob>(
      ctx,
      {
        command: 'jobs retry',
        action: 'retry',
        unit: 'jobs',
        question: (n) => `Retry ${n} ${states.join('/')} job(s) in ${q.where} (${q.preset.label})?`,
        columns: [
          { header: 'id', value: (r) => r.id },
          { header: 'kind', value: (r) => r.kind },
          ...(states.length > 1 ? [{ header: 'state', value: (r: DiscardedJob) => r.state }] : []),
          { header: 'attempt', value: attempts },
          { header: 'since', value: (r) => (r.ageSeconds === null ? '' : formatAge(r.ageSeconds * 1000)) },
        ],
        detail: { planHeader: 'last error', text: (r) => r.lastError },
        headline: (mode) => `${mode === 'plan' ? 'Plan: retry' : 'Retry of'} ${states.join('/')} jobs in ${q.where} (${scope})`,
        emptyMessage: `Nothing to retry: no ${states.join('/')} job matches.`,
        notesBefore: [
          ...missingIdsNote(idCheck?.missing ?? []),
          ...(idCheck && idCheck.notDiscarded > 0
            ? [`${idCheck.notDiscarded} named ${idCheck.notDiscarded === 1 ? 'id is' : 'ids are'} not ${states.join('/')}: nothing to retry there.`]
            : []),
          ...(archived && q.preset.archive ? [`${archived} matching job(s) are in ${displayName(q.preset.archive.table, q.schema)}, not retried: ${q.preset.archive.note}.`] : []),
        ],
        dryRunNotes: () => [`Dry run: nothing was changed. Re-run with --apply to retry these jobs: ${q.preset.retryEffect}.`],
        overMax: `More than --max ${opts.max} jobs match`,
        after: (report) => {
          // A key that matches nothing is a mistake to say, not "nothing to do": exit 2 (README).
          if (o.errorClass !== undefined && report.items.length === 0) throw usageError(unknownClassMessage(o.errorClass, `${states.join('/')} job`, 'opsctl jobs discarded'));
          failOnMissing(idCheck?.missing ?? [])(report);
        },
        summary: (report) => ({
          ...report.summary,
          preset: q.preset.queue,
          ...(q.preset.archive ? { archivedNotRetried: archived } : {}),
          ...(idCheck ? { idsNotFound: idCheck.notFound, idsNotDiscarded: idCheck.notDiscarded } : {}),
        }),
      },
      (hooks) => remediate(db, remedy, { ...opts, ...hooks }),
    );
  });
}

export async function runRescue(ctx: CommandContext, o: JobRescueOptions): Promise<number> {
  assertMaxTotal(o);
  const { config, q } = await setup(ctx);
  const { assertQueueSchema, rescueThresholdMs } = await import('../checks/jobs-presets.js');
  const thresholdMs = o.olderThanMs ?? rescueThresholdMs(q, undefined);
  const threshold = thresholdMs === null ? null : formatDuration(thresholdMs);
  const engine = engineOptions(q, o);
  const opts = { ...engine, max: ctx.capMax(engine.max) };
  const { rescueRemedy, rescueSummary } = await import('../checks/stuck-jobs.js');
  const { remediate } = await import('../engine/remediation.js');
  const { presentRemediation } = await import('../output/remediation-presenter.js');
  return ctx.withDatabase(async (db) => {
    await db.readOnly(async (ro) => {
      await assertQueueSchema(ro, q);
      if (opts.apply && config.audit.table) await ro.assertColumns('audit', config.audit.table, config.audit.schema, {});
    });
    const remedy = rescueRemedy(q, { filter: { thresholdMs, kind: o.kind, queue: o.queue }, reason: o.reason, actor: config.actor, audit: config.audit });
    let locks: import('../engine/remediation.js').RemediationReport<StaleQueueLock> | null = null;
    return presentRemediation<PlannedRescue>(
      ctx,
      {
        command: 'jobs rescue',
        action: 'rescue',
        unit: 'jobs',
        question: (n) => `Rescue ${n} stuck job(s) in ${q.where} (${q.preset.label})? A job that is in fact still running may run twice.`,
        overTargets: { verb: 'Rescue', noun: 'stuck job(s)', applied: remedy.labels.applied },
        columns: [
          { header: 'id', value: (r) => r.id },
          { header: 'kind', value: (r) => r.kind },
          { header: 'attempt', value: attempts },
          { header: 'age', value: (r) => formatAge(r.ageSeconds * 1000) },
          { header: 'threshold', value: (r) => r.threshold, tone: () => 'dim' },
        ],
        planOutcome: { header: 'would become', value: (r) => r.wouldBecome },
        detail: { planHeader: q.preset.reasonInAuditOnly ? 'reason (audit row only)' : 'error it would record', text: (r) => r.reason },
        headline: (mode) =>
          `${mode === 'plan' ? 'Plan: rescue' : 'Rescue of'} ${q.preset.label} jobs ${q.preset.describeStuck(threshold)} in ${q.where}${o.kind !== undefined ? ` (kind ${o.kind})` : ''}`,
        emptyMessage: `Nothing to rescue: no job ${q.preset.describeStuck(threshold)}.`,
        dryRunNotes: () => [
          `Dry run: nothing was changed. Re-run with --apply to rescue these jobs: ${q.preset.rescueEffect}.`,
          'A rescued job that was in fact still running may run twice: the threshold must exceed the longest legitimate run.',
        ],
        overMax: `More than --max ${opts.max} jobs are stuck`,
        notesAfter: () =>
          locks?.items.length
            ? [
                `${locks.items.length} stale queue lock(s) with no stuck job behind them${locks.mode === 'plan' ? ': --apply frees them (locked_at/locked_by cleared) as its own recovery does' : ''}: ${locks.items
                  .map((l) => `${l.queue} (locked by ${l.lockedBy ?? '?'} for ${formatAge(l.ageSeconds * 1000)}) ${l.outcome}`)
                  .join(', ')}.`,
              ]
            : [],
        summary: (report) => ({
          ...rescueSummary(report),
          preset: q.preset.queue,
          threshold: threshold ?? 'expire_in',
          ...(locks
            ? { [locks.mode === 'plan' ? 'staleQueueLocks' : 'queueLocksReleased']: locks.mode === 'plan' ? locks.items.length : Number(locks.summary.released ?? 0), queueLocks: locks.items }
            : {}),
        }),
      },
      async (hooks) => {
        const report = await remediate(db, remedy, { ...opts, ...hooks });
        // Stale queue locks (graphile-worker) after the jobs: a job's rescue frees its own queue's lock.
        // A reviewed plan (opsctl apply FILE) holds the jobs only: no lock it did not list is freed.
        if (!q.preset.queueLocks || report.summary.cancelled || ctx.io.plan?.kind === 'given') return report;
        const { queueLockRemedy } = await import('../checks/queue-locks.js');
        locks = await remediate(db, queueLockRemedy(q, { thresholdMs, reason: o.reason, actor: config.actor, audit: config.audit }), {
          ...opts,
          asks: hooks.asks,
          // The same run as the jobs' rescue: one id, one journal.
          runId: hooks.runId,
          run: hooks.run,
          journalPath: hooks.journalPath,
          confirm: (plan) => (Number(report.summary.planned ?? 0) > 0 ? Promise.resolve(true) : hooks.confirm!(plan as never)),
        });
        const warning = [report.warning, locks.warning].filter(Boolean).join(' ');
        return { ...report, exitCode: Math.max(report.exitCode, locks.exitCode), ...(warning ? { warning } : {}) };
      },
    );
  });
}

const JOBS_EXAMPLES = `
Examples:
  $ echo '{"jobs": {"queue": "river"}}' > opsctl.config.json
  $ opsctl jobs stuck                          # read-only
  $ opsctl jobs discarded --since 24h          # read-only, grouped by kind and error class
  $ opsctl jobs rescue --apply --reason "INC-81 worker OOM"
  $ opsctl jobs retry --kind send_email --apply
`;
const STUCK_EXAMPLES = `
Examples:
  $ opsctl jobs stuck                          # the queue's own rule (River 1h, graphile-worker 4h, pg-boss expire_in, Oban 1h)
  $ opsctl jobs stuck --older-than 30m --kind send_email
  $ opsctl jobs stuck --queue critical --limit 0 -o ndjson

Needs jobs.queue (river, graphile-worker, pg-boss or oban) in the config file.
`;
const DISCARDED_EXAMPLES = `
Examples:
  $ opsctl jobs discarded                      # newest 100, grouped by kind and error class
  $ opsctl jobs discarded --kind send_email --since 24h
  $ opsctl jobs discarded --include-cancelled -o json | jq '.summary.byErrorClass'
`;
const RETRY_EXAMPLES = `
Examples:
  $ opsctl jobs retry 1042 1043                # dry run: the plan, nothing changed
  $ opsctl jobs retry --kind send_email --since 24h --apply --reason "INC-77 SMTP fixed"
  $ opsctl jobs retry --all --apply --yes --max 5000 -o json
  $ opsctl jobs retry --error-class 'smtp: <n> try later' --since 2h --apply

--error-class takes a class exactly as the "By error class" table of jobs discarded prints it;
only jobs of that class are planned and retried. A class that matches no job in scope is
exit 2, nothing changed.

Never unscoped: give ids, a filter or --all. Each job is re-checked at write time
(compare-and-set on the state the plan saw) and reported as retried,
not-discarded-anymore (someone else got there first), skipped-locked or errored.
Exit status: 0 done, 1 some jobs errored, 2 bad input, 3 database unreachable or another opsctl running,
4 an internal error (a bug in opsctl).
`;
const RESCUE_EXAMPLES = `
Examples:
  $ opsctl jobs rescue                         # dry run with the queue's own threshold
  $ opsctl jobs rescue --older-than 2h --kind import_csv --apply --reason "INC-81 worker OOM"
  $ opsctl jobs rescue --apply --yes -o json
  $ opsctl jobs rescue --all-targets --apply --max-total 500   # each target's own queue preset

A rescued job that was in fact still running may run twice: the threshold must exceed the
longest legitimate run. Outcomes: rescued-retryable, rescued-discarded (no attempts left),
race-lost (its worker finished or it was fetched again since the plan), skipped-locked, errored.
Exit status: 0 done, 1 some jobs errored, 2 bad input, 3 database unreachable or another opsctl running,
4 an internal error (a bug in opsctl).

  $ opsctl jobs rescue --dead-workers          # jobs whose worker's heartbeat (workers.table) is stale, any age
With --dead-workers (River, graphile-worker; pg-boss v10 records no worker) a job is rescued
only if its worker is still silent at write time and the job still has the same attempt.
`;

/** `jobs show ID`: the job row of the configured queue whole (its errors too), its audit history. */
export async function runShowJob(ctx: CommandContext, id: string): Promise<number> {
  const { parseFormat } = await import('../output/output.js');
  parseFormat(ctx.globals.output);
  const config = await ctx.config();
  const { resolveQueue, assertQueueSchema } = await import('../checks/jobs-presets.js');
  const q = resolveQueue(config);
  const { showJob } = await import('../checks/show-item.js');
  const { emitShow, readWithAudit, rowFields } = await import('./show-output.js');
  const { item, audit, journal } = await readWithAudit(ctx, q.preset.table, async (ro) => {
    await assertQueueSchema(ro, q);
    return showJob(ro, q, id);
  });
  return emitShow(ctx, {
    command: 'jobs show',
    headline: `${q.preset.label} job ${item.id} in ${item.table}`,
    fields: rowFields(item.row, {}),
    item: { ...item },
    audit,
    journal,
  });
}

const SHOW_EXAMPLES = `
Examples:
  $ opsctl jobs show 1042                        # the job row whole, errors included
  $ opsctl jobs show 1042 -o json                # { item, audit }
`;

export function registerJobCommands(program: Command, r: Registrar): void {
  const jobs = program
    .command('jobs')
    .description(describe('jobs'))
    .addHelpText('after', JOBS_EXAMPLES);
  jobs
    .command('stuck')
    .description('List jobs stuck in the running state past a threshold, oldest first (read-only)')
    .option('--older-than <duration>', "threshold, e.g. 30m, 2h (default: jobs.rescueAfter, else the queue's own rule)")
    .option('--kind <kind>', 'only jobs of this kind (graphile-worker: task identifier; pg-boss: queue name; Oban: worker)')
    .option('--queue <name>', 'only jobs in this named queue')
    .option('--limit <n>', `at most this many jobs (0 = no limit; default ${STUCK_LIMIT})`)
    .addHelpText('after', STUCK_EXAMPLES)
    .action(r.wrap((ctx, flags: StuckFlags) => runStuck(ctx, jobStuckOptions(flags))));

  jobs
    .command('discarded')
    .description('List jobs the queue gave up on, newest first, grouped by kind and error class (read-only)')
    .option('--kind <kind>', 'only jobs of this kind')
    .option('--queue <name>', 'only jobs in this named queue')
    .option('--since <duration>', 'only jobs discarded within this long, e.g. 24h')
    .option('--include-cancelled', 'cancelled jobs too (River, pg-boss, Oban; default: jobs.includeCancelled)')
    .option('--limit <n>', `at most this many jobs listed (0 = no limit; default ${DISCARDED_LIMIT}); the groups count all`)
    .addHelpText('after', DISCARDED_EXAMPLES)
    .action(r.wrap((ctx, flags: DiscardedFlags) => runDiscarded(ctx, jobDiscardedOptions(flags))));

  jobs
    .command('show')
    .argument('<id>', 'the job id (River, graphile-worker, Oban: a number; pg-boss: a uuid)')
    .description('One job whole: every column of the job row, its errors, its audit history (read-only)')
    .addHelpText('after', SHOW_EXAMPLES)
    .action(r.wrap((ctx, id: string) => runShowJob(ctx, id)));

  const retry = jobs
    .command('retry')
    .description("Retry discarded jobs the way the queue's own retry does (dry run unless --apply)")
    .argument('[ids...]', 'job ids')
    .option('--all', 'every discarded job (still capped by --max)')
    .option('--kind <kind>', 'only jobs of this kind')
    .option('--queue <name>', 'only jobs in this named queue')
    .option('--since <duration>', 'only jobs discarded within this long')
    .option('--error-class <class>', 'only jobs of this error class, as `jobs discarded` lists it (quote it)')
    .option('--include-cancelled', 'cancelled jobs too (default: jobs.includeCancelled)');
  addApplyFlags(retry, { max: '1000' })
    .addHelpText('after', RETRY_EXAMPLES)
    .action(r.wrap((ctx, ids: string[], flags: RetryFlags) => runRetry(ctx, jobRetryOptions(ids, flags))));

  const rescue = jobs
    .command('rescue')
    .description("Rescue stuck jobs the way the queue's own rescuer does (dry run unless --apply)")
    .option('--older-than <duration>', "threshold (default: jobs.rescueAfter, else the queue's own rule)")
    .option('--kind <kind>', 'only jobs of this kind')
    .option('--queue <name>', 'only jobs in this named queue')
    .option('--max-total <n>', 'with --target/--all-targets: refuse to change more than this many in all (--max is per target)')
    .option('--dead-workers', "instead: running jobs whose worker (River attempted_by, graphile-worker locked_by) has a stale heartbeat in workers.table, whatever their age")
    .option('--stale <duration>', 'with --dead-workers: a heartbeat older than this is dead (default: workers.stale)');
  addApplyFlags(rescue, { max: '1000' })
    .addHelpText('after', RESCUE_EXAMPLES)
    .action(
      r.wrap(
        async (ctx, flags: RescueFlags) => {
          if (!flags.deadWorkers) return runRescue(ctx, jobRescueOptions(flags));
          const { deadWorkerOptions, runRescueDeadWorkers } = await import('./workers.js');
          return runRescueDeadWorkers(ctx, deadWorkerOptions(flags, 'jobs rescue'));
        },
        { merge: 'plan-then-apply' },
      ),
    );
}
