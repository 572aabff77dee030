import type { CommandContext } from '../cli/context.js';
import type { Column, RemedyWords } from '../output/output.js';
import type { OutcomeCounts } from '../engine/remediation.js';
import { ExitCode, OpsctlError, usageError } from '../errors.js';
import { DEFAULT_LABELS } from '../engine/remediation.js';
import { maskSecrets } from '../output/masking.js';
import { runFleet, type FleetOptions, type FleetUnit } from './fleet.js';
import { commonUsageError, runOnUnit, type Captured, type SkippedTarget, type TargetKind, type TargetRun } from './target-context.js';

/**
 * A remedy over several targets, each step the command's own run function on one target:
 *   1. a dry run on every target (--concurrency at a time, each within --target-timeout);
 *   2. refuse before any write when a target exceeds --max or the fleet exceeds --max-total;
 *   3. show the total per target and ask once on a TTY;
 *   4. the --apply target by target, each through the one remediation engine (its lock,
 *      batches, compare-and-set guard and audit), never more than --max-total in all.
 * A target that cannot be planned is reported (exit 3) and never stops the others.
 */

export interface PlanThenApplySpec {
  command: string;
  kind: TargetKind;
  units: FleetUnit[];
  skipped: SkippedTarget[];
  fleetOpts: FleetOptions;
  apply: boolean;
  /** --max-total (0 or unset: no cap over the targets). */
  maxTotal?: number;
}

interface TargetReport {
  target: string;
  planned: number;
  summary?: Record<string, unknown>;
  error?: string;
  /** The target's own `note` (adopt: named groups refused): not a failure of the target, but part of its exit code. */
  note?: string;
  exitCode: number;
}

type Row = Record<string, unknown> & { target: string; region?: string; outcome?: string; outcomeClass?: string };

/** A target's error as the reader needs it: naming the target. */
const aboutTarget = (target: string, message: string) => (message.startsWith(`target ${target}`) ? message : `target ${target}: ${message}`);

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

export async function planThenApply(ctx: CommandContext, spec: PlanThenApplySpec, run: TargetRun): Promise<number> {
  const { units, skipped, apply } = spec;
  const maxTotal = spec.maxTotal ?? 0;
  const mask = (s: string) => maskSecrets(s, ctx.secrets());
  const byName = new Map(units.map((u) => [u.name, u]));
  const tag = (u: FleetUnit) => ({ target: u.target.name, ...(u.region ? { region: u.region } : {}) });
  // Each target's run sees one target: --max-total is this run's, the --apply each phase's.
  const planFlags = { apply: false, maxTotal: undefined };

  // 1. A dry run everywhere.
  const plans = await runFleet(units, spec.fleetOpts, (u, signal) => runOnUnit(ctx, u, signal, run, planFlags), (o, done, total) =>
    ctx.progress(`${spec.command}: planned ${done}/${total} targets (last: ${o.target})`),
  );
  ctx.progressDone();
  const refused = commonUsageError(plans);
  if (refused) throw refused;
  const planned = new Map<string, Captured>();
  const perTarget: TargetReport[] = [];
  for (const o of plans) {
    const u = byName.get(o.target) as FleetUnit;
    if (o.ok) {
      const c = o.value;
      planned.set(o.target, c);
      // A plan's exit code is 0 unless the remedy raised it (adopt: a named group refused or absent).
      perTarget.push({ target: o.target, planned: Number(c.summary.planned ?? 0), summary: c.summary, exitCode: c.exitCode, note: c.summary.note as string | undefined });
    } else perTarget.push({ target: o.target, planned: 0, error: mask(aboutTarget(u.target.name, o.error)), exitCode: o.exitCode });
  }
  for (const x of skipped) {
    // A remedy on AWS names what the target lacks: its aws section (or its regions).
    const why = spec.kind === 'aws' && !x.target.entry.aws ? `target ${x.name} has no aws section: skipped` : x.why;
    perTarget.push({ target: x.name, planned: 0, error: why, exitCode: 0 });
  }
  perTarget.sort((x, y) => x.target.localeCompare(y.target));
  const firstPlan = [...planned.values()].find((c) => c.result)?.result ?? null;
  const words: RemedyWords = firstPlan?.remedy ?? { verb: spec.command, noun: 'item(s)', applied: 'applied' };
  const total = perTarget.reduce((n, r) => n + r.planned, 0);
  const withPlans = perTarget.filter((r) => r.planned > 0);
  const perTargetText = withPlans.map((r) => `${r.target}: ${r.planned}`).join(', ');
  const over = perTarget.filter((r) => r.summary?.exceedsMax);

  const rows: Row[] = [];
  let dryRun = true;
  let firstApply: Captured['result'] | null = null;
  const planRows = (mark?: (i: Row) => Row) => {
    for (const [name, c] of planned) rows.push(...c.items.map((i) => ({ ...tag(byName.get(name) as FleetUnit), ...i }) as Row).map((r) => (mark ? mark(r) : r)));
  };
  if (!apply) planRows();
  else {
    // 2. Refuse before any write: the caps hold for the fleet as a whole.
    if (over.length)
      throw usageError(
        `more than --max ${over[0].summary?.max} ${words.noun} would be changed on target ${over[0].target}${over.length > 1 ? ` (and ${over.length - 1} more target(s))` : ''}; narrow the selection or raise --max. Nothing was changed on any target.`,
      );
    if (maxTotal > 0 && total > maxTotal)
      throw usageError(`${total} ${words.noun} would be changed across ${withPlans.length} target(s) (${perTargetText}), above --max-total ${maxTotal}. Nothing was changed on any target.`);
    dryRun = false;
    // 3. Ask once, with the total per target.
    const go = total === 0 || (await ctx.confirm(`${words.verb} ${total} ${words.noun} on ${withPlans.length} target(s) (${perTargetText})?`));
    if (!go && ctx.asksPerson) {
      ctx.say('Cancelled; nothing was changed on any target.');
      return ExitCode.NOT_CONFIRMED;
    }
    if (!go) {
      planRows((i) => (i.outcomeClass === 'planned' ? { ...i, outcome: 'cancelled', outcomeClass: 'cancelled' } : i));
      for (const r of perTarget) if (r.planned) r.summary = { ...r.summary, cancelled: true };
    } else {
      // 4. Target by target, the command's own --apply: the engine re-plans under each target's lock and guards each row.
      let used = 0;
      let interrupted = false;
      for (const r of perTarget) {
        if (r.error) continue;
        if (r.planned === 0) {
          // Nothing to do here: reported in the apply's shape (reaped: 0 ...), not the dry run's.
          r.summary = idleApplySummary(r.summary ?? {}, words.applied);
          continue;
        }
        const budget = maxTotal > 0 ? maxTotal - used : 0;
        if (maxTotal > 0 && budget <= 0) {
          r.error = `not attempted: --max-total ${maxTotal} reached`;
          r.exitCode = 1;
          continue;
        }
        if (interrupted) {
          r.error = 'not attempted: interrupted (Ctrl-C)';
          r.exitCode = ExitCode.INTERRUPTED;
          continue;
        }
        const u = byName.get(r.target) as FleetUnit;
        try {
          // The apply is not cut off by --target-timeout: an abandoned apply would leave its last batch in doubt. Each statement is bounded by database.statementTimeout.
          const c = await runOnUnit(ctx, u, new AbortController().signal, run, { apply: true, maxTotal: undefined }, { confirmed: true, ...(maxTotal > 0 ? { budget } : {}) });
          firstApply ??= c.result;
          used += Number(c.summary.planned ?? 0);
          r.summary = c.summary;
          r.exitCode = c.exitCode;
          r.note = c.summary.note as string | undefined;
          if (c.warnings.length) r.error = mask(c.warnings.join(' '));
          rows.push(...c.items.map((i) => ({ ...tag(u), ...i }) as Row));
          interrupted = c.exitCode === ExitCode.INTERRUPTED;
        } catch (e) {
          r.error = mask(aboutTarget(u.target.name, e instanceof OpsctlError ? e.message : ((e as Error)?.message ?? String(e))));
          r.exitCode = e instanceof OpsctlError ? e.exitCode : 3;
          // More rows than at plan time: the cap that refused may be what was left of --max-total.
          if (r.exitCode === 2 && maxTotal > 0) r.error += ` (the cap was what was left of --max-total ${maxTotal}: ${budget})`;
        }
      }
    }
  }

  const first = firstApply ?? firstPlan;
  const exitCode = Math.max(0, ...perTarget.map((r) => r.exitCode));
  const sums: Record<string, number> = {};
  for (const r of perTarget) for (const [k, v] of Object.entries(r.summary ?? {})) if (typeof v === 'number' && !['max', 'longestBatchMs', 'batches'].includes(k)) sums[k] = (sums[k] ?? 0) + v;
  const failed = perTarget.filter((r) => r.error && r.exitCode > 0);
  const notes: string[] = [];
  if (dryRun && total > 0) notes.push(`Dry run: nothing was changed on any target. Re-run with --apply to ${words.verb.toLowerCase()} these ${words.noun}.`);
  if (dryRun && over.length) notes.push(`More than --max on ${over.map((r) => r.target).join(', ')}: --apply would refuse (nothing changed anywhere).`);
  if (dryRun && maxTotal > 0 && total > maxTotal) notes.push(`${total} planned in all, above --max-total ${maxTotal}: --apply would refuse.`);
  for (const f of failed) notes.push(`${f.target}: ${f.error}`);
  for (const r of perTarget) if (r.note) notes.push(`${r.target}: ${r.note}`);
  const columns: Column<Row>[] = [
    { header: 'target', value: (r) => r.target },
    ...(spec.kind === 'aws' ? [{ header: 'region', value: (r: Row) => r.region ?? '' }] : []),
    ...(((first?.columns ?? []) as unknown) as Column<Row>[]),
  ];
  return ctx.emit<Row>({
    command: spec.command,
    mode: dryRun ? 'plan' : 'apply',
    items: rows,
    columns,
    headline: `${first?.headline ?? spec.command} — ${perTarget.length} target(s)`,
    emptyMessage: `Nothing to ${words.verb.toLowerCase()} on any of the ${perTarget.length} target(s).`,
    sections: () => [
      {
        title: 'Per target',
        columns: [
          { header: 'target', value: (r: TargetReport) => r.target },
          { header: 'planned', value: (r: TargetReport) => r.planned },
          ...(dryRun ? [] : [{ header: words.applied, value: (r: TargetReport) => rows.filter((x) => unitName(x) === r.target && String(x.outcome ?? '').startsWith(words.applied)).length }]),
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
      byTarget: Object.fromEntries(
        perTarget.map((r) => [r.target, { planned: r.planned, ...(r.summary ?? {}), ...(r.error ? { error: r.error } : {}), ...(r.note ? { note: r.note } : {}), exitCode: r.exitCode }]),
      ),
    }),
    exitCode: () => exitCode,
    warnings: () => (failed.length ? [`${failed.length} of ${perTarget.length} target(s) failed: ${failed.map((f) => f.target).join(', ')}.`] : []),
  });
}
