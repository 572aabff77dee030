import type { CommandContext } from '../cli/context.js';
import type { Column, Tone } from '../output/output.js';
import type { Database } from '../database/database.js';
import type { OutcomeCounts, PlannedItem, Remedy, RemediationReport, ReportedItem, RunInfo } from '../engine/remediation.js';
import type { ResolvedTarget } from './targets.js';
import type { DeadLetterFilter } from '../checks/dead-letters.js';
import type { PlannedReap } from '../checks/stuck-executions.js';
import type { PlannedDeadLetter } from '../checks/dead-letter-remedies.js';
import type { PlannedRescue } from '../checks/stuck-jobs.js';
import type { GroupPlan } from '../checks/schedule-groups.js';
import { ExitCode, OpsctlError, usageError } from '../errors.js';
import { DEFAULT_LABELS } from '../engine/remediation.js';
import { maskSecrets } from '../output/masking.js';
import { TargetResources, fleetOptions, runFleet, type FleetUnit } from './fleet.js';
export type { FleetUnit } from './fleet.js';
import { openTargetDatabase, openTargetScheduler, selectedTargets, targetExpectedGroups } from './fleet-check.js';
import type { ApplyOptions } from '../commands/shared-flags.js';
import { formatDuration, parseDuration } from '../config/durations.js';

/**
 * A remedy (reap, propagations retry) over several targets:
 *   1. plan on every target (read-only, --concurrency at a time, each within --target-timeout);
 *   2. refuse before any write when a target exceeds --max or the fleet exceeds --max-total;
 *   3. show the total per target and ask once on a TTY;
 *   4. apply target by target, each through the one remediation engine (its lock, batches,
 *      compare-and-set guard and audit), never more than --max-total in all.
 * A target that cannot be planned is reported (exit 3) and never stops the others.
 */

/** What a fleet remedy runs with: the single-target apply options (their maxTotal included); unset: each target's config. */
export type FleetApplyOptions = ApplyOptions;

interface Prepared<P extends PlannedItem> {
  remedy: Remedy<P>;
  /** The target's own defaults (its config), unless --max / --batch-size are given. */
  max: number;
  batchSize: number;
  /** Set: batches sized by time up to batchSize (see batch-sizer.ts). */
  batchTargetMs?: number;
}


interface EngineRun<P extends PlannedItem> {
  apply: boolean;
  max: number;
  batchSize: number;
  wait: boolean;
  onProgress?: (done: number, total: number) => void;
  /** The run (issue #28): one id over every target, its record naming the target. */
  runId?: () => string;
  run?: RunInfo;
  journalPath?: string;
}

/** A unit opened and its remedy built: run the engine on it (plan or apply), then close it. */
export interface OpenedUnit<P extends PlannedItem> {
  max: number;
  batchSize: number;
  execute(run: EngineRun<P>): Promise<RemediationReport<P>>;
  close(): Promise<void>;
}

export interface FleetRemedySpec<P extends PlannedItem> {
  command: string;
  /** "Reap", "Retry" */
  verb: string;
  /** "execution(s)", "dead letter(s)" */
  noun: string;
  /** The engine's applied word ("reaped"); more precise labels start with it ("rescued-retryable"). */
  applied: string;
  /** The units to work on (default: every target with a database), and the targets left out with why. */
  units?: (targets: ResolvedTarget[]) => { units: FleetUnit[]; skipped: Array<{ name: string; why: string }> };
  /** Opens the unit (its connections tracked by `res`) and builds the remedy from the target's effective config. */
  open(unit: FleetUnit, res: TargetResources, secrets: string[], apply: boolean): Promise<OpenedUnit<P>>;
  /** Columns after `target`, before plan/outcome. */
  columns: Column<ReportedItem<P>>[];
  detail: (r: ReportedItem<P>, dryRun: boolean) => unknown;
  headline: (dryRun: boolean, targets: number) => string;
  /** Something the unit's report says that must reach the reader (and may have raised its exit code), e.g. named groups refused. */
  unitNote?: (report: RemediationReport<P>) => string | undefined;
}

type Row<P> = ReportedItem<P> & { target: string; region?: string };

/** The database form of a unit: the target's session, its schema checked, the remedy built. */
export function databaseUnit<P extends PlannedItem>(ctx: CommandContext, prepare: (t: ResolvedTarget, db: Database, apply: boolean) => Promise<Prepared<P>>) {
  return async (unit: FleetUnit, res: TargetResources, secrets: string[], apply: boolean): Promise<OpenedUnit<P>> => {
    const db = await openTargetDatabase(ctx, unit.target, res, secrets);
    try {
      const p = await prepare(unit.target, db, apply);
      const { remediate } = await import('../engine/remediation.js');
      return { max: p.max, batchSize: p.batchSize, execute: (run) => remediate(db, p.remedy, { ...run, batchTargetMs: p.batchTargetMs }), close: () => db.close() };
    } catch (e) {
      await db.close();
      throw e;
    }
  };
}

const databaseUnits = (targets: ResolvedTarget[]) => ({
  units: targets.filter((t) => t.entry.database).map((t) => ({ name: t.name, target: t, region: null })),
  skipped: targets.filter((t) => !t.entry.database).map((t) => ({ name: t.name, why: `target ${t.name} has no database: skipped` })),
});

interface TargetReport {
  target: string;
  planned: number;
  summary?: Record<string, unknown>;
  error?: string;
  /** From spec.unitNote: not a failure of the unit, but part of its exit code. */
  note?: string;
  exitCode: number;
}

/**
 * The apply summary of a unit whose plan had nothing to act on: every outcome counted (0 for
 * what was not planned), the settled and refused items as planned, no batch.
 */
function idleApplySummary(plan: Record<string, unknown>, applied: string): Record<string, unknown> {
  const outcomes = (plan.outcomes ?? {}) as OutcomeCounts;
  const lost = outcomes.lost ?? { label: 'race-lost', count: 0 };
  const refused = outcomes.refused?.count ?? 0;
  return {
    planned: 0,
    [applied]: 0,
    [lost.label]: lost.count,
    [DEFAULT_LABELS.skipped]: 0,
    [DEFAULT_LABELS.refused]: refused,
    [DEFAULT_LABELS.errored]: 0,
    batches: 0,
    longestBatchMs: 0,
    outcomes: {
      applied: { label: applied, count: 0 },
      lost,
      skipped: { label: DEFAULT_LABELS.skipped, count: 0 },
      refused: { label: DEFAULT_LABELS.refused, count: refused },
      errored: { label: DEFAULT_LABELS.errored, count: 0 },
    } satisfies OutcomeCounts,
  };
}

const unitName = (r: { target: string; region?: string }) => (r.region ? `${r.target}/${r.region}` : r.target);

const outcomeTone = (o: string): Tone =>
  /^(reaped|retried|rescued|adopted)/.test(o) ? 'good' : o === 'errored' ? 'bad' : o === 'planned' ? 'info' : o === 'cancelled' ? 'dim' : 'warn';

export async function runFleetRemedy<P extends PlannedItem>(ctx: CommandContext, o: FleetApplyOptions, spec: FleetRemedySpec<P>): Promise<number> {
  const { parseFormat } = await import('../output/output.js');
  parseFormat(ctx.globals.output);
  const opts = fleetOptions(ctx.globals);
  const maxTotal = o.maxTotal ?? 0;
  const batchFlag = o.batchSize;
  const maxFlag = o.max;
  const apply = o.apply;
  const all = await selectedTargets(ctx);
  const { units, skipped } = (spec.units ?? databaseUnits)(all);
  const mask = (s: string, extra: string[] = []) => maskSecrets(s, [...extra, ...ctx.secrets()]);

  /** Opens the unit, runs fn on it, always closes. */
  const onUnit = async <R>(u: FleetUnit, signal: AbortSignal, fn: (opened: OpenedUnit<P>, max: number, batchSize: number) => Promise<R>) => {
    const res = new TargetResources(signal);
    const secrets: string[] = [];
    try {
      const opened = await spec.open(u, res, secrets, apply);
      try {
        return { value: await fn(opened, maxFlag ?? opened.max, batchFlag ?? opened.batchSize), secrets };
      } finally {
        await opened.close();
      }
    } catch (e) {
      if (e instanceof OpsctlError) throw new OpsctlError(mask(e.message, secrets), e.exitCode);
      throw e;
    }
  };
  const byName = new Map(units.map((u) => [u.name, u]));
  const tag = (u: FleetUnit) => ({ target: u.target.name, ...(u.region ? { region: u.region } : {}) });

  // 1. Plan everywhere, read-only.
  const plans = await runFleet(
    units,
    opts,
    (u, signal) => onUnit(u, signal, async (opened, max, batchSize) => ({ report: await opened.execute({ apply: false, max, batchSize, wait: false }), max })),
    (o, done, total) => ctx.progress(`${spec.command}: planned ${done}/${total} targets (last: ${o.target})`),
  );
  ctx.progressDone();
  const planned = new Map<string, { report: RemediationReport<P>; max: number }>();
  const perTarget: TargetReport[] = [];
  for (const o of plans) {
    if (o.ok) {
      const { report } = o.value.value;
      planned.set(o.target, o.value.value);
      // A plan's exit code is 0 unless the remedy raised it (adopt: a named group refused or absent).
      perTarget.push({ target: o.target, planned: Number(report.summary.planned ?? 0), summary: report.summary, exitCode: report.exitCode, note: spec.unitNote?.(report) });
    } else perTarget.push({ target: o.target, planned: 0, error: mask(o.error), exitCode: o.exitCode });
  }
  for (const x of skipped) perTarget.push({ target: x.name, planned: 0, error: x.why, exitCode: 0 });
  perTarget.sort((x, y) => x.target.localeCompare(y.target));
  const total = perTarget.reduce((n, r) => n + r.planned, 0);
  const byTarget = (pick: (r: TargetReport) => unknown) => Object.fromEntries(perTarget.map((r) => [r.target, pick(r)]));
  const perTargetText = perTarget.filter((r) => r.planned > 0).map((r) => `${r.target}: ${r.planned}`).join(', ');
  const over = perTarget.filter((r) => r.summary?.exceedsMax);

  let rows: Row<P>[] = [];
  let dryRun = true;
  if (!apply) {
    for (const [name, { report }] of planned) rows.push(...report.items.map((i) => ({ ...tag(byName.get(name) as FleetUnit), ...i })));
  } else {
    // 2. Refuse before any write: the caps hold for the fleet as a whole.
    if (over.length)
      throw usageError(
        `more than --max ${planned.get(over[0].target)?.max} ${spec.noun} would be changed on target ${over[0].target}${over.length > 1 ? ` (and ${over.length - 1} more target(s))` : ''}; narrow the selection or raise --max. Nothing was changed on any target.`,
      );
    if (maxTotal > 0 && total > maxTotal)
      throw usageError(`${total} ${spec.noun} would be changed across ${perTarget.filter((r) => r.planned > 0).length} target(s) (${perTargetText}), above --max-total ${maxTotal}. Nothing was changed on any target.`);
    dryRun = false;
    // 3. Ask once, with the total per target.
    const go = total === 0 || (await ctx.confirm(`${spec.verb} ${total} ${spec.noun} on ${perTarget.filter((r) => r.planned > 0).length} target(s) (${perTargetText})?`));
    if (!go && ctx.asksPerson) {
      ctx.say('Cancelled; nothing was changed on any target.');
      return ExitCode.NOT_CONFIRMED;
    }
    if (!go) {
      for (const [name, { report }] of planned) rows.push(...report.items.map((i) => ({ ...tag(byName.get(name) as FleetUnit), ...i, ...(i.outcomeClass === 'planned' ? { outcome: 'cancelled', outcomeClass: 'cancelled' as const } : {}) })));
      for (const r of perTarget) if (r.planned) r.summary = { ...r.summary, cancelled: true };
    } else {
      // 4. Target by target: the engine re-plans under each target's lock and guards each row.
      let used = 0;
      for (const r of perTarget) {
        if (r.error) continue;
        if (r.planned === 0) {
          // Nothing to do here: reported in the apply's shape (reaped: 0 ...), not the dry run's.
          r.summary = idleApplySummary(r.summary ?? {}, spec.applied);
          continue;
        }
        const u = byName.get(r.target) as FleetUnit;
        const budget = maxTotal > 0 ? maxTotal - used : 0;
        if (maxTotal > 0 && budget <= 0) {
          r.error = `not attempted: --max-total ${maxTotal} reached`;
          r.exitCode = 1;
          continue;
        }
        try {
          // The apply is not cut off by --target-timeout: an abandoned apply would leave its last batch in doubt. Each statement is bounded by database.statementTimeout.
          // One run over every target: the same id (ctx.runState), each record naming its target.
          const { runHooks } = await import('../output/remediation-presenter.js');
          const rh = await runHooks(ctx, spec.command);
          const { value: report } = await onUnit(u, new AbortController().signal, (opened, max, batchSize) =>
            opened.execute({
              ...rh,
              run: { ...(rh.run as RunInfo), target: u.target.name },
              apply: true,
              max: maxTotal > 0 ? (max > 0 ? Math.min(max, budget) : budget) : max,
              batchSize,
              wait: o.wait,
              onProgress: (done, n) => ctx.progress(`${spec.command} ${u.name}: ${done}/${n} items`),
            }),
          );
          ctx.progressDone();
          used += Number(report.summary.planned ?? 0);
          r.summary = report.summary;
          r.exitCode = report.exitCode;
          r.note = spec.unitNote?.(report);
          if (report.warning) r.error = mask(report.warning);
          rows.push(...report.items.map((i) => ({ ...tag(u), ...i })));
        } catch (e) {
          ctx.progressDone();
          r.error = mask(e instanceof OpsctlError ? e.message : ((e as Error)?.message ?? String(e)));
          r.exitCode = e instanceof OpsctlError ? e.exitCode : 3;
          // More rows than at plan time: the cap that refused may be what was left of --max-total.
          if (r.exitCode === 2 && maxTotal > 0) r.error += ` (the cap was what was left of --max-total ${maxTotal}: ${budget})`;
        }
      }
    }
  }

  const exitCode = Math.max(0, ...perTarget.map((r) => r.exitCode));
  const sums: Record<string, number> = {};
  for (const r of perTarget) for (const [k, v] of Object.entries(r.summary ?? {})) if (typeof v === 'number' && !['max', 'longestBatchMs', 'batches'].includes(k)) sums[k] = (sums[k] ?? 0) + v;
  const failed = perTarget.filter((r) => r.error && r.exitCode > 0);
  const notes: string[] = [];
  if (dryRun && total > 0) notes.push(`Dry run: nothing was changed on any target. Re-run with --apply to ${spec.verb.toLowerCase()} these ${spec.noun}.`);
  if (dryRun && over.length) notes.push(`More than --max on ${over.map((r) => r.target).join(', ')}: --apply would refuse (nothing changed anywhere).`);
  if (dryRun && maxTotal > 0 && total > maxTotal) notes.push(`${total} planned in all, above --max-total ${maxTotal}: --apply would refuse.`);
  for (const f of failed) notes.push(`${f.target}: ${f.error}`);
  for (const r of perTarget) if (r.note) notes.push(`${r.target}: ${r.note}`);
  const columns: Column<Row<P>>[] = [
    { header: 'target', value: (r) => r.target },
    ...(spec.columns as unknown as Column<Row<P>>[]),
    { header: dryRun ? 'plan' : 'outcome', value: (r) => r.outcome, tone: (r) => outcomeTone(r.outcome) },
    { header: dryRun ? 'detail' : 'detail', value: (r) => spec.detail(r, dryRun), shrink: true },
  ];
  return ctx.emit({
    command: spec.command,
    mode: dryRun ? 'plan' : 'apply',
    items: rows,
    columns,
    headline: spec.headline(dryRun, perTarget.length),
    emptyMessage: `Nothing to ${spec.verb.toLowerCase()} on any of the ${perTarget.length} target(s).`,
    sections: () => [
      {
        title: 'Per target',
        columns: [
          { header: 'target', value: (r: TargetReport) => r.target },
          { header: 'planned', value: (r: TargetReport) => r.planned },
          ...(dryRun ? [] : [{ header: spec.applied, value: (r: TargetReport) => rows.filter((x) => unitName(x) === r.target && x.outcome.startsWith(spec.applied)).length }]),
          { header: 'note', value: (r: TargetReport) => r.error ?? r.note ?? (r.summary?.exceedsMax ? 'above --max' : ''), tone: (r: TargetReport) => (r.exitCode > 0 ? 'bad' : 'dim'), shrink: true },
        ],
        rows: perTarget,
      },
    ],
    notes: () => notes,
    summary: () => ({
      targets: perTarget.length,
      ...sums,
      ...(maxTotal > 0 ? { maxTotal } : {}),
      targetsFailed: failed.length,
      byTarget: byTarget((r) => ({ planned: r.planned, ...(r.summary ?? {}), ...(r.error ? { error: r.error } : {}), ...(r.note ? { note: r.note } : {}), exitCode: r.exitCode })),
    }),
    exitCode: () => exitCode,
    warnings: () => (failed.length ? [`${failed.length} of ${perTarget.length} target(s) failed: ${failed.map((f) => f.target).join(', ')}.`] : []),
  });
}


export const requiresFleet = (ctx: CommandContext): boolean => Boolean(ctx.globals.target?.length || ctx.globals.allTargets || ctx.globals.shard !== undefined);

/** --max-total only means something over several targets. */
export function assertMaxTotal(ctx: CommandContext, flags: { maxTotal?: unknown }): void {
  if (flags.maxTotal !== undefined && !requiresFleet(ctx)) throw usageError('--max-total caps a run over several targets: use it with --target or --all-targets (one target: --max).');
}

/** reap's options on a fleet: the single-target ones (unset: each target's config) plus --max-total. */
export interface FleetReapOptions extends FleetApplyOptions {
  thresholdMs?: number;
  statuses?: string[];
}

export async function runFleetReap(ctx: CommandContext, o: FleetReapOptions): Promise<number> {
  const { formatAge } = await import('../config/durations.js');
  const { assertExecutionsSchema, reapRemedy, stuckStatusFilter } = await import('../checks/stuck-executions.js');
  const { REAP_BATCH_TARGET_MS } = await import('../engine/batch-sizer.js');
  // A --status some target does not call stuck is refused before any target is opened.
  if (o.statuses) for (const t of await selectedTargets(ctx)) stuckStatusFilter(t.config.executions, o.statuses, `target ${t.name}: `);
  return runFleetRemedy<PlannedReap>(ctx, o, {
    command: 'reap',
    verb: 'Reap',
    noun: 'execution(s)',
    applied: 'reaped',
    open: databaseUnit(ctx, async (t, db) => {
      const cfg = t.config.executions;
      const thresholdMs = o.thresholdMs ?? parseDuration(cfg.threshold, `targets.${t.name}: executions.threshold`);
      await db.readOnly((ro) => assertExecutionsSchema(ro, cfg));
      const statuses = o.statuses ?? cfg.stuckStatuses;
      return {
        remedy: reapRemedy(cfg, { thresholdMs, statuses, limit: 0, reason: o.reason, actor: t.config.actor, audit: t.config.audit }),
        max: cfg.max,
        batchSize: cfg.batchSize,
        batchTargetMs: REAP_BATCH_TARGET_MS,
      };
    }),
    columns: [
      { header: 'id', value: (r) => r.id },
      { header: 'status', value: (r) => r.status },
      { header: 'age', value: (r) => formatAge(r.ageSeconds * 1000) },
    ],
    detail: (r, dry) => (dry ? r.reason : (r.detail ?? r.reason)),
    headline: (dry, n) =>
      `${dry ? 'Plan: reap' : 'Reap of'} stuck executions on ${n} target(s)${o.thresholdMs !== undefined ? ` older than ${formatDuration(o.thresholdMs)}` : " (each target's executions.threshold)"}`,
  });
}

export interface FleetRetryOptions extends FleetApplyOptions {
  includeUnknownKinds: boolean;
}

export async function runFleetRetry(ctx: CommandContext, filter: DeadLetterFilter, scope: string, o: FleetRetryOptions): Promise<number> {
  const { formatAge } = await import('../config/durations.js');
  const { assertPropagationsSchema, assertAuditSchema } = await import('../checks/propagations-table.js');
  const { retryRemedy } = await import('../checks/dead-letter-remedies.js');
  return runFleetRemedy<PlannedDeadLetter>(ctx, o, {
    command: 'propagations retry',
    verb: 'Retry',
    noun: 'dead letter(s)',
    applied: 'retried',
    open: databaseUnit(ctx, async (t, db, apply) => {
      const cfg = t.config.propagations;
      await db.readOnly(async (ro) => {
        await assertPropagationsSchema(ro, cfg);
        if (apply) await assertAuditSchema(ro, t.config.audit);
      });
      return {
        remedy: retryRemedy(cfg, { filter, includeUnknownKinds: o.includeUnknownKinds, reason: o.reason, actor: t.config.actor, audit: t.config.audit }),
        max: cfg.max,
        batchSize: cfg.batchSize,
      };
    }),
    columns: [
      { header: 'id', value: (r) => r.id },
      { header: 'kind', value: (r) => r.kind },
      { header: 'attempts', value: (r) => r.attempts },
      { header: 'dead for', value: (r) => formatAge(r.ageSeconds * 1000) },
    ],
    detail: (r, dry) => r.refusal ?? (dry ? r.lastError : (r.detail ?? r.lastError)),
    headline: (dry, n) => `${dry ? 'Plan: retry' : 'Retry of'} dead letters (${scope || 'all'}) on ${n} target(s): clear failed_at, attempts → 0, due now`,
  });
}

export interface FleetRescueOptions extends FleetApplyOptions {
  /** --older-than; unset: each target's jobs.rescueAfter, else its queue's own rule. */
  olderThanMs?: number;
  kind?: string;
  queue?: string;
}

/** jobs rescue over targets: each target's own queue preset (jobs.queue, in its overrides or the top level). */
export async function runFleetRescue(ctx: CommandContext, o: FleetRescueOptions): Promise<number> {
  const { formatAge } = await import('../config/durations.js');
  const { assertQueueSchema, rescueThresholdMs, resolveQueue } = await import('../checks/jobs-presets.js');
  const { rescueRemedy } = await import('../checks/stuck-jobs.js');
  return runFleetRemedy<PlannedRescue>(ctx, o, {
    command: 'jobs rescue',
    verb: 'Rescue',
    noun: 'stuck job(s)',
    applied: 'rescued',
    open: databaseUnit(ctx, async (t, db, apply) => {
      let q;
      try {
        q = resolveQueue(t.config);
      } catch (e) {
        throw usageError(`target ${t.name}: ${(e as Error).message}`);
      }
      const thresholdMs = o.olderThanMs ?? rescueThresholdMs(q, undefined);
      await db.readOnly(async (ro) => {
        await assertQueueSchema(ro, q);
        if (apply && t.config.audit.table) await ro.assertColumns('audit', t.config.audit.table, t.config.audit.schema, {});
      });
      return {
        remedy: rescueRemedy(q, { filter: { thresholdMs, kind: o.kind, queue: o.queue }, reason: o.reason, actor: t.config.actor, audit: t.config.audit }),
        max: q.cfg.max,
        batchSize: q.cfg.batchSize,
      };
    }),
    columns: [
      { header: 'id', value: (r) => r.id },
      { header: 'kind', value: (r) => r.kind },
      { header: 'state', value: (r) => r.state },
      { header: 'age', value: (r) => formatAge(r.ageSeconds * 1000) },
      { header: 'would become', value: (r) => r.wouldBecome },
    ],
    detail: (r, dry) => (dry ? r.reason : (r.detail ?? r.reason)),
    headline: (dry, n) =>
      `${dry ? 'Plan: rescue' : 'Rescue of'} stuck jobs on ${n} target(s)${o.olderThanMs !== undefined ? ` older than ${formatDuration(o.olderThanMs)}` : " (each target's queue rule)"}`,
  });
}

export interface FleetAdoptOptions extends FleetApplyOptions {
  names: string[];
  prefix?: string;
  force: boolean;
  allUnowned: boolean;
}

/** The per-account quota of schedule groups: adopt's default --max, as for one account. */
const ADOPT_DEFAULT_MAX = 500;

/**
 * adopt schedule-group over targets: one unit per target × region of its aws section, each
 * built by the single-target construction (prepareGroupWrite): named groups fetched directly,
 * the account+region lock (busy: that unit exit 3, the others go on; --wait waits), every
 * change audited with --reason in the target's audit.table or the local journal, and named
 * refused/absent/gone groups an exit 1.
 */
export async function runFleetAdopt(ctx: CommandContext, o: FleetAdoptOptions): Promise<number> {
  const { auditsToDatabase, groupBatchSize, prepareGroupWrite, settleNamed } = await import('../checks/schedule-group-writes.js');
  const { runRemediation } = await import('../engine/remediation.js');
  return runFleetRemedy<GroupPlan>(ctx, o, {
    command: 'adopt schedule-group',
    verb: 'Adopt',
    noun: 'schedule group(s)',
    applied: 'adopted',
    units: (targets) => ({
      units: targets.flatMap((t) => (t.entry.aws?.regions ?? []).map((region) => ({ name: `${t.name}/${region}`, target: t, region }))),
      skipped: targets.filter((t) => !t.entry.aws).map((t) => ({ name: t.name, why: `target ${t.name} has no aws section: skipped` })),
    }),
    async open(unit, res, secrets) {
      const t = unit.target;
      const config = t.config;
      if (Object.keys(config.scheduleGroups.ownerTags).length === 0) throw usageError(`target ${t.name}: scheduleGroups.ownerTags is not configured, so nothing can be adopted.`);
      if (config.audit.table && !t.entry.database)
        throw usageError(`target ${t.name}: audit.table is set but the target has no database to record adopt's changes in; give it a database or set targets.${t.name}.overrides.audit.table to null (the local journal).`);
      const expected = await targetExpectedGroups(ctx, t, res, secrets);
      const api = await openTargetScheduler(ctx, t, unit.region as string, res);
      const spec = {
        kind: 'adopt' as const,
        names: o.names,
        prefix: o.prefix,
        force: o.force,
        allUnowned: o.allUnowned,
        createMissing: false,
        reason: o.reason ?? null,
        config,
        expected,
        onWarning: (w: string) => ctx.say(`opsctl: ${unit.name}: ${w}`),
      };
      return {
        max: ADOPT_DEFAULT_MAX,
        batchSize: groupBatchSize(config.scheduleGroups),
        async execute(run) {
          // The audit session only for an apply, as for one target: plans open nothing to write to.
          const db = auditsToDatabase(config, run.apply) ? await openTargetDatabase(ctx, t, res, secrets) : null;
          try {
            const { remedy, host } = await prepareGroupWrite(ctx, api, spec, { apply: run.apply, wait: run.wait, db });
            const report = await runRemediation(host, remedy, run);
            settleNamed(o.names, report);
            return report;
          } finally {
            await db?.close();
          }
        },
        close: async () => api.client.destroy(),
      };
    },
    unitNote: (report) => {
      const failed = settleNamed(o.names, report);
      return failed.length ? `named group(s) refused or absent: ${failed.join(', ')} (exit 1)` : undefined;
    },
    columns: [
      { header: 'region', value: (r) => (r as unknown as { region?: string }).region ?? '' },
      { header: 'group', value: (r) => r.name },
      { header: 'class', value: (r) => r.class },
    ],
    detail: (r) => r.detail ?? r.diff,
    headline: (dry, n) => `${dry ? 'Plan: adopt' : 'Adopt'} schedule groups on ${n} target × region(s)`,
  });
}
