import type { Database } from './database.js';
import { isConnectionError } from './database.js';
import { acquireTableLock } from './advisory-lock.js';
import { ExitCode, usageError, OpsctlError } from './errors.js';
import { displayName } from './identifiers.js';
import { BatchSizer, sizedBatches } from './batch-sizer.js';

/**
 * The one remediation engine: dry run vs apply, the --max cap, the advisory lock, batches in
 * short transactions, per-item outcomes, progress, summary counts and the exit code.
 * A remedy (reap, retry, purge, ...) only knows how to plan and how to apply one batch with
 * its compare-and-set guard.
 */

/** Outcome classes shared by every remedy; each remedy names them in its own words. */
export type OutcomeClass = 'applied' | 'lost' | 'skipped' | 'refused' | 'errored';

export interface OutcomeLabels {
  /** e.g. "reaped", "retried", "purged" */
  applied: string;
  /** e.g. "race-lost", "not-dead-anymore": the row changed since the plan; left alone. */
  lost: string;
}

export const DEFAULT_LABELS = { skipped: 'skipped-locked', refused: 'refused', errored: 'errored', planned: 'planned' } as const;

export interface PlannedItem {
  id: string;
  /** Set at plan time when the item must not be acted on (e.g. an unknown kind): reported, never applied. */
  refusal?: string | null;
  /** Set at plan time when there is nothing to do (e.g. already owned): reported with the `lost` label. */
  settled?: string | null;
}

export interface ItemOutcome {
  id: string;
  outcome: OutcomeClass;
  detail?: string;
  /** A more precise word than the class label, e.g. "created" for an applied create. */
  label?: string;
}

/**
 * A remedy over some target C (a Database session, a Scheduler API client). For database
 * remedies `table`/`schema` name what the advisory lock is keyed by.
 */
export interface Remedy<P extends PlannedItem, C = Database> {
  /** A verb for messages: "reap", "retry", "purge", "adopt". */
  action: string;
  /** What it works on, for messages (and, for database remedies, the lock key). */
  table: string;
  schema: string | null;
  labels: OutcomeLabels;
  /** Read-only (inside a READ ONLY transaction for databases). `limit` 0 means no limit. */
  plan(target: C, limit: number): Promise<P[]>;
  /** Applies one batch (inside one short transaction for databases); an outcome for every item. */
  applyBatch(target: C, batch: P[]): Promise<ItemOutcome[]>;
}

/** How the engine reaches a target: locking, read-only scope, the unit of one batch, fatal errors. */
export interface RemedyHost<C> {
  target: C;
  lock(wait: boolean): Promise<{ release(): Promise<void> }>;
  readOnly<T>(fn: (t: C) => Promise<T>): Promise<T>;
  batch<T>(fn: (t: C) => Promise<T>): Promise<T>;
  /** An error after which nothing more can be done (connection lost, credentials gone). */
  isFatal(e: unknown): boolean;
  describeError(e: unknown): string;
  /** The one-sentence form of a fatal error, with its exit code. */
  translate(e: unknown): OpsctlError;
  /** True when a failed batch is known to have changed nothing (a database transaction that was rolled back). */
  rolledBack?(e: unknown): boolean;
}

export function databaseHost(db: Database, table: string, schema: string | null): RemedyHost<Database> {
  return {
    target: db,
    lock: (wait) => acquireTableLock(db, table, schema, { wait }),
    readOnly: (fn) => db.readOnly(fn),
    batch: (fn) => db.transaction(fn),
    // Errors no other row can escape: the connection, privileges, the schema, the timeouts.
    isFatal: (e) => isConnectionError(e) || FATAL_SQLSTATES.has((e as { code?: string })?.code ?? ''),
    describeError: (e) => errorText(e),
    translate: (e) => db.translate(e),
    // Only a lost connection leaves the batch's COMMIT in doubt; any other error rolled it back.
    rolledBack: (e) => !isConnectionError(e),
  };
}

export interface RemediationOptions<P extends PlannedItem> {
  apply: boolean;
  /** 0 = no cap. */
  max: number;
  batchSize: number;
  /** Set: batches sized by time (see batch-sizer.ts), aiming at this many ms each, `batchSize` the cap. */
  batchTargetMs?: number;
  wait: boolean;
  /** Asked once with the plan before any write; false cancels with nothing written. */
  confirm?: (plan: P[]) => Promise<boolean>;
  onProgress?: (done: number, total: number) => void;
}

export type ReportedItem<P> = P & { outcome: string; detail?: string };

export interface RemediationReport<P extends PlannedItem> {
  /** Set when the run stopped part-way for a reason that must reach stderr too. */
  warning?: string;
  dryRun: boolean;
  items: ReportedItem<P>[];
  summary: Record<string, number | string | boolean>;
  exitCode: number;
}

/** insufficient_privilege, undefined table/column, read-only transaction, statement and lock timeouts. */
const FATAL_SQLSTATES = new Set(['42501', '42P01', '42703', '25006', '57014', '55P03']);

const isActionable = (p: PlannedItem) => !p.refusal && !p.settled;

function errorText(e: unknown): string {
  if (e instanceof OpsctlError) return e.message;
  const err = e as { message?: string; code?: string };
  return `${err?.message ?? String(e)}${err?.code ? ` (SQLSTATE ${err.code})` : ''}`;
}

/** The database form: advisory lock keyed by the remedy's table, one transaction per batch. */
export function remediate<P extends PlannedItem>(db: Database, remedy: Remedy<P>, opts: RemediationOptions<P>): Promise<RemediationReport<P>> {
  return runRemediation(databaseHost(db, remedy.table, remedy.schema), remedy, opts);
}

export async function runRemediation<P extends PlannedItem, C>(
  host: RemedyHost<C>,
  remedy: Remedy<P, C>,
  opts: RemediationOptions<P>,
): Promise<RemediationReport<P>> {
  const label = (o: OutcomeClass | 'planned'): string =>
    o === 'applied' ? remedy.labels.applied : o === 'lost' ? remedy.labels.lost : DEFAULT_LABELS[o];
  const limit = opts.max > 0 ? opts.max + 1 : 0;
  const where = displayName(remedy.table, remedy.schema);

  if (!opts.apply) {
    const plan = await host.readOnly((ro) => remedy.plan(ro, limit));
    const exceedsMax = opts.max > 0 && plan.filter(isActionable).length > opts.max;
    const shown = exceedsMax ? plan.slice(0, opts.max) : plan;
    const items = shown.map((p) => ({
      ...p,
      outcome: label(p.refusal ? 'refused' : p.settled ? 'lost' : 'planned'),
      ...(p.refusal || p.settled ? { detail: p.refusal ?? p.settled ?? undefined } : {}),
    }));
    const actionable = items.filter(isActionable).length;
    return {
      dryRun: true,
      items,
      summary: {
        planned: actionable,
        refused: items.filter((i) => i.refusal).length,
        [remedy.labels.lost]: items.filter((i) => !i.refusal && i.settled).length,
        ...(exceedsMax ? { exceedsMax: true, max: opts.max } : {}),
      },
      exitCode: ExitCode.OK,
    };
  }

  const lock = await host.lock(opts.wait);
  try {
    // Planned under the lock: a second opsctl cannot plan the same rows meanwhile.
    const plan = await host.readOnly((ro) => remedy.plan(ro, limit));
    const actionable = plan.filter(isActionable);
    if (opts.max > 0 && actionable.length > opts.max) {
      throw usageError(
        `more than ${opts.max} rows of ${where} would be changed by ${remedy.action}, above the --max cap; narrow the selection or raise --max (0 means no cap). Nothing was changed.`,
      );
    }
    const outcomes = new Map<string, ItemOutcome>();
    for (const p of plan) {
      if (p.refusal) outcomes.set(p.id, { id: p.id, outcome: 'refused', detail: p.refusal });
      else if (p.settled) outcomes.set(p.id, { id: p.id, outcome: 'lost', detail: p.settled });
    }

    let cancelled = false;
    if (actionable.length > 0 && opts.confirm && !(await opts.confirm(plan))) cancelled = true;

    let batches = 0;
    let longestBatchMs = 0;
    const sizer = opts.batchTargetMs ? new BatchSizer({ cap: opts.batchSize, targetMs: opts.batchTargetMs }) : null;
    let aborted: string | undefined;
    let fatal: OpsctlError | undefined;
    let done = 0;
    /**
     * A fatal error (connection, privilege, schema, timeout): with nothing applied yet the run
     * fails as a whole (one sentence, exit 3); otherwise it stops, and says what became of `items`.
     */
    const stop = (e: unknown, items: P[]) => {
      fatal = host.translate(e);
      if (![...outcomes.values()].some((o) => o.outcome === 'applied')) throw fatal;
      aborted = `stopped during batch ${batches + 1}: ${fatal.message}`;
      const detail = host.rolledBack?.(e)
        ? `not applied (the batch was rolled back): ${fatal.message}`
        : 'unknown: the connection was lost during this batch; re-run to converge';
      for (const p of items) outcomes.set(p.id, { id: p.id, outcome: 'errored', detail });
    };
    if (!cancelled) {
      for (const batch of sizedBatches(actionable, sizer ?? { next: () => opts.batchSize })) {
        if (aborted) {
          for (const p of batch) outcomes.set(p.id, { id: p.id, outcome: 'errored', detail: 'not attempted: the run stopped early' });
          continue;
        }
        const started = performance.now();
        try {
          const result = await host.batch((tx) => remedy.applyBatch(tx, batch));
          for (const r of result) outcomes.set(r.id, r);
        } catch (e) {
          if (host.isFatal(e)) {
            stop(e, batch);
          } else {
            // Isolate the failing rows: each item on its own, so one bad row does not fail its neighbours.
            for (const p of batch) {
              try {
                const [r] = await host.batch((tx) => remedy.applyBatch(tx, [p]));
                outcomes.set(p.id, r ?? { id: p.id, outcome: 'errored', detail: 'no outcome reported' });
              } catch (e2) {
                if (host.isFatal(e2)) {
                  stop(e2, [p]);
                  break;
                }
                outcomes.set(p.id, { id: p.id, outcome: 'errored', detail: host.describeError(e2) });
              }
            }
            for (const p of batch) if (!outcomes.has(p.id)) outcomes.set(p.id, { id: p.id, outcome: 'errored', detail: 'not attempted: the run stopped early' });
          }
        }
        batches += 1;
        const batchMs = performance.now() - started;
        sizer?.record(batch.length, batchMs);
        longestBatchMs = Math.max(longestBatchMs, batchMs);
        done += batch.length;
        opts.onProgress?.(done, actionable.length);
      }
    }

    const items: ReportedItem<P>[] = plan.map((p) => {
      if (cancelled && isActionable(p)) return { ...p, outcome: 'cancelled' };
      const o = outcomes.get(p.id) ?? { id: p.id, outcome: 'errored' as const, detail: 'no outcome reported' };
      return { ...p, outcome: o.label ?? label(o.outcome), ...(o.detail ? { detail: o.detail } : {}) };
    });
    // Items with their own label are counted under it, not twice.
    const count = (o: OutcomeClass) => [...outcomes.values()].filter((x) => x.outcome === o && !x.label).length;
    const errored = [...outcomes.values()].filter((x) => x.outcome === 'errored').length;
    const extraLabels: Record<string, number> = {};
    for (const o of outcomes.values()) if (o.label) extraLabels[o.label] = (extraLabels[o.label] ?? 0) + 1;
    const summary: Record<string, number | string | boolean> = {
      planned: actionable.length,
      [remedy.labels.applied]: count('applied'),
      [remedy.labels.lost]: count('lost'),
      [DEFAULT_LABELS.skipped]: count('skipped'),
      [DEFAULT_LABELS.refused]: count('refused'),
      [DEFAULT_LABELS.errored]: count('errored'),
      ...extraLabels,
      batches,
      longestBatchMs: Math.round(longestBatchMs),
      ...(sizer ? { batchSizes: sizer.describe() } : {}),
    };
    if (cancelled) summary.cancelled = true;
    if (aborted) summary.aborted = aborted;
    const exitCode = fatal ? fatal.exitCode : aborted ? ExitCode.DEPENDENCY : errored > 0 ? ExitCode.FINDINGS : ExitCode.OK;
    return { dryRun: false, items, summary, exitCode, ...(fatal ? { warning: fatal.message } : {}) };
  } finally {
    await lock.release();
  }
}
