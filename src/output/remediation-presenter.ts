import type { CommandContext } from '../cli/context.js';
import { ExitCode } from '../errors.js';
import type { Column, CommandResult, RemedyWords, Tone } from './output.js';
import { givenPlanFor, planCapture } from '../plans/plan-mode.js';
import type { PlannedItem, RemediationOptions, RemediationReport, ReportedItem, ResultClass, StreamedRemediationOptions, StreamedRemediationReport } from '../engine/remediation.js';

/**
 * The one adapter from an engine report to a command result, beside the engine: the confirm
 * question and progress line, the outcome column toned by outcome class, the detail column,
 * the dry-run and over-`--max` notes, the summary, the exit code and the stderr warning.
 * A command only says what differs: its columns, its words, its headline.
 */

export interface Presentation<P extends PlannedItem> {
  command: string;
  /** Verb and noun for the progress line: "reap: 10/40 rows". */
  action: string;
  unit: string;
  /** Asked on a terminal before any write, with the count of actionable items. */
  question: (count: number) => string;
  /** Replaces the terminal question (e.g. purge's --expect). */
  confirm?: (count: number) => Promise<boolean>;
  /** The item's own columns; the outcome and detail columns follow. */
  columns: Column<ReportedItem<P>>[];
  /** Header of the last column in a dry run (in an --apply it is "detail"), and its text when an item has no detail (free text: cut to fit a terminal). */
  detail: { planHeader: string; text: (r: ReportedItem<P>) => unknown };
  /** In a dry run, the outcome column can show something more telling than "planned" (rescue: what a job would become). */
  planOutcome?: { header: string; value: (r: ReportedItem<P>) => unknown };
  headline: (mode: RemediationReport<P>['mode']) => string;
  emptyMessage: string;
  /** Notes before the shared ones (e.g. about ids given that do not match). */
  notesBefore?: string[];
  /** Shown in a dry run with something planned. */
  dryRunNotes: (planned: number) => string[];
  /** "More than --max N rows are stuck": the shared note goes on with "--apply would refuse. ...". */
  overMax: string;
  /** Shown in a dry run of something that can run work twice, after the --max note. */
  notesAfter?: (mode: RemediationReport<P>['mode']) => string[];
  /** Extra summary figures; default: the engine's summary as it is. */
  summary?: (report: RemediationReport<P>) => Record<string, unknown>;
  /** Tones that differ from the default per class. */
  tones?: Partial<Record<ResultClass, Tone>>;
  /** Runs after the report, before rendering (e.g. a check that throws a usage error). */
  after?: (report: RemediationReport<P>) => void;
  /** Set by the remedies that plan every target before one question (--max-total): their words for it. */
  overTargets?: RemedyWords;
  /** What the run record adds (a revert: the run it reverts). */
  run?: { revertOf?: string };
}

const CLASS_TONES: Record<ResultClass, Tone> = {
  applied: 'good',
  errored: 'bad',
  lost: 'warn',
  skipped: 'warn',
  refused: 'warn',
  planned: 'info',
  cancelled: 'dim',
};

const actionable = (p: PlannedItem) => !p.refusal && !p.settled;

/** Items of the plan shown before the question on a terminal; the rest are counted. */
const PREVIEW_SHOWN = 20;

/**
 * The hooks every remedy runs with: on a terminal the plan is shown (on stderr: stdout may be
 * a pipe) before the question, and no lock is held while the question waits (asks); Ctrl-C
 * during the apply stops it after the batch in flight (shouldStop).
 */
function hooks<P extends PlannedItem>(ctx: CommandContext, p: Presentation<P>) {
  const ask = async (items: P[], count: number): Promise<boolean> => {
    const preview = async () => {
      const shown = items.filter(actionable).slice(0, PREVIEW_SHOWN);
      const { render } = await import('./output.js');
      const previewReport = { mode: 'plan' as const, items: shown.map((i) => ({ ...i, outcome: 'planned', outcomeClass: 'planned' as const })), summary: { planned: count, outcomes: {} }, exitCode: 0 };
      const result = remediationResult<P>(previewReport as unknown as RemediationReport<P>, p);
      const rest = count - shown.length;
      // Every row of the question's plan is "planned": no outcome column, more room for the rest.
      const columns = [...p.columns, { header: p.detail.planHeader, value: (r: ReportedItem<P>) => p.detail.text(r), shrink: true }];
      await render({ ...result, columns, notes: () => (rest > 0 ? [`… and ${rest} more (${count} in all).`] : []), summary: () => ({}) }, 'table', { stream: ctx.io.stderr, env: ctx.io.env, noColor: ctx.globals.color === false });
    };
    const m = ctx.io.plan;
    const question = m?.kind === 'given' ? `Apply the plan ${m.file}: ${p.question(count)}` : p.question(count);
    return p.confirm ? p.confirm(count) : ctx.confirm(question, preview);
  };
  return {
    ask,
    asks: ctx.asksPerson,
    shouldStop: () => ctx.interrupted,
    onProgress: (done: number, total: number) => ctx.progress(`${p.action}: ${done}/${total} ${p.unit}`),
    ...planHooks(ctx),
  };
}

/** A reviewed plan: the dry run's plan captured for --plan-out, or the plan file's items applied (src/plans/plan-mode.ts). */
function planHooks(ctx: CommandContext): Pick<RemediationOptions<PlannedItem>, 'capture' | 'given'> {
  const m = ctx.io.plan;
  if (m?.kind === 'out') return { capture: planCapture(ctx, m) };
  if (m?.kind === 'given') return { given: givenPlanFor(ctx, m) };
  return {};
}

/** An apply of a plan file says so: the file and the command it applies, in the headline and the summary. */
function ofPlan<T>(ctx: CommandContext, r: CommandResult<T>): CommandResult<T> {
  const m = ctx.io.plan;
  if (m?.kind !== 'given') return r;
  const plan = { file: m.file, command: m.plan.command, args: m.plan.args, createdAt: m.plan.createdAt, createdBy: m.plan.createdBy, digest: m.plan.digest };
  return { ...r, headline: `Plan ${m.file} (opsctl ${m.plan.args.join(' ')}): ${r.headline ?? ''}`, summary: () => ({ ...r.summary(), plan }) };
}

/** The hooks that make an apply a run (engine RunInfo): its shared id, its record, where the journal is, its start line. */
export type RunHooks = Pick<RemediationOptions<PlannedItem>, 'runId' | 'run' | 'journalPath' | 'onRunStart'>;

export async function runHooks(ctx: CommandContext, command: string, extra: { revertOf?: string } = {}): Promise<RunHooks> {
  const { newRunId } = await import('../engine/run-id.js');
  const { journalPath } = await import('../engine/local-state.js');
  const config = await ctx.config();
  return {
    // One id for every apply of this invocation (a fleet's targets, rescue's queue locks).
    runId: () => (ctx.runState.id ??= newRunId()),
    run: { command: ctx.invocation.command || command, commandLine: ctx.commandLine(), target: ctx.targetName, reason: ctx.invocation.reason, actor: config.actor, ...extra },
    journalPath: journalPath(ctx.io.env),
    // On a terminal only, like progress: piped stderr stays empty; the end is in the report (summary.runId).
    onRunStart: (id) => {
      if (ctx.io.stderr.isTTY) ctx.say(`opsctl: run ${id} started`);
    },
  };
}

/** Declined at the prompt (or no answer in time): no table, one sentence, exit 5. */
function declined(ctx: CommandContext, summary: Record<string, unknown>): number | null {
  if (!summary.cancelled || !ctx.asksPerson) return null;
  ctx.say('Cancelled; nothing was changed.');
  return ExitCode.NOT_CONFIRMED;
}

/** Runs the remedy with the presentation's confirm/progress hooks, then renders its report. */
export async function presentRemediation<P extends PlannedItem>(
  ctx: CommandContext,
  p: Presentation<P>,
  run: (hooks: Pick<RemediationOptions<P>, 'confirm' | 'onProgress' | 'asks' | 'shouldStop' | 'capture' | 'given'> & RunHooks) => Promise<RemediationReport<P>>,
): Promise<number> {
  const h = hooks(ctx, p);
  const rh = await runHooks(ctx, p.command, p.run);
  const untrap = ctx.trapInterrupts();
  let report: RemediationReport<P>;
  try {
    report = await run({ confirm: (plan) => h.ask(plan, plan.filter(actionable).length), asks: h.asks, shouldStop: h.shouldStop, onProgress: h.onProgress, capture: h.capture, given: h.given, ...rh });
  } finally {
    untrap();
  }
  ctx.progressDone();
  const no = declined(ctx, report.summary);
  if (no !== null) return no;
  p.after?.(report);
  return ctx.emit(ofPlan(ctx, remediationResult(report, p)));
}

/** The same with a streamed report (streamRemediation): items rendered as the batches commit. */
export async function presentStreamedRemediation<P extends PlannedItem>(
  ctx: CommandContext,
  p: Presentation<P>,
  run: (hooks: Pick<StreamedRemediationOptions, 'confirm' | 'onProgress' | 'asks' | 'shouldStop' | 'capture' | 'given'> & RunHooks) => Promise<StreamedRemediationReport<P>>,
): Promise<number> {
  const h = hooks(ctx, p);
  const rh = await runHooks(ctx, p.command, p.run);
  const untrap = ctx.trapInterrupts();
  let untrapped = false;
  const release = () => {
    if (!untrapped) untrap();
    untrapped = true;
  };
  let report: StreamedRemediationReport<P>;
  try {
    report = await run({ confirm: (count, first) => h.ask(first as P[], count), asks: h.asks, shouldStop: h.shouldStop, onProgress: h.onProgress, capture: h.capture, given: h.given, ...rh });
  } catch (e) {
    release();
    throw e;
  }
  if (report.mode === 'apply' && report.summary.cancelled && ctx.asksPerson) {
    release();
    return declined(ctx, report.summary) as number;
  }
  const done = async function* <T>(it: AsyncIterable<T>) {
    try {
      yield* it;
    } finally {
      release();
      ctx.progressDone();
    }
  };
  // summary/exitCode/warning are read only after the items are consumed, as a streamed report needs.
  const result = ofPlan(ctx, remediationResult({ mode: report.mode, items: done(report.items), get summary() { return report.summary; }, get exitCode() { return report.exitCode; }, get warning() { return report.warning; } } as unknown as RemediationReport<P>, p));
  // json and ndjson: the engine's own JSON text of the same items (the run is one or the other).
  const ndjson = report.ndjson;
  return ctx.emit(ndjson ? { ...result, ndjson: () => done(ndjson()) } : result);
}

/** The command result of a report: the same shape for every remedy (docs/output-and-exit-codes.md). */
export function remediationResult<P extends PlannedItem>(report: RemediationReport<P>, p: Presentation<P>): CommandResult<ReportedItem<P>> {
  const plan = report.mode === 'plan';
  const tone = (r: ReportedItem<P>): Tone => ({ ...CLASS_TONES, ...p.tones })[r.outcomeClass];
  const columns: Column<ReportedItem<P>>[] = [
    ...p.columns,
    plan && p.planOutcome
      ? { header: p.planOutcome.header, value: (r) => (r.outcomeClass === 'planned' ? p.planOutcome!.value(r) : r.outcome), tone }
      : { header: plan ? 'plan' : 'outcome', value: (r) => r.outcome, tone },
    { header: plan ? p.detail.planHeader : 'detail', value: (r) => r.detail ?? p.detail.text(r), shrink: true },
  ];
  // Read when rendered, after the items: a streamed report knows its summary only then.
  const notes = () => {
    const planned = Number(report.summary.planned ?? 0);
    return [
      ...(p.notesBefore ?? []),
      ...(plan && planned > 0 ? p.dryRunNotes(planned) : []),
      ...(report.summary.exceedsMax ? [`${p.overMax}: --apply would refuse. Narrow the selection or raise --max (0 = no cap).`] : []),
      ...(p.notesAfter?.(report.mode) ?? []),
    ];
  };
  return {
    command: p.command,
    mode: report.mode,
    items: report.items,
    columns,
    headline: p.headline(report.mode),
    emptyMessage: p.emptyMessage,
    summary: () => (p.summary ? p.summary(report) : { ...report.summary }),
    notes,
    exitCode: () => report.exitCode,
    warnings: () => (report.warning ? [report.warning] : []),
    ...(p.overTargets ? { remedy: p.overTargets } : {}),
  };
}
