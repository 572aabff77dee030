import type { Database } from './database.js';
import { isConnectionError } from './database.js';
import { acquireTableLock } from './advisory-lock.js';
import { ExitCode, usageError, OpsctlError } from './errors.js';
import { displayName } from './identifiers.js';

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
}

export interface ItemOutcome {
  id: string;
  outcome: OutcomeClass;
  detail?: string;
}

export interface Remedy<P extends PlannedItem> {
  /** A verb for messages: "reap", "retry", "purge". */
  action: string;
  table: string;
  schema: string | null;
  labels: OutcomeLabels;
  /** Read-only; runs inside a READ ONLY transaction. `limit` 0 means no limit. */
  plan(db: Database, limit: number): Promise<P[]>;
  /** Applies one batch inside an open transaction and returns an outcome for every item. */
  applyBatch(tx: Database, batch: P[]): Promise<ItemOutcome[]>;
}

export interface RemediationOptions<P extends PlannedItem> {
  apply: boolean;
  /** 0 = no cap. */
  max: number;
  batchSize: number;
  wait: boolean;
  /** Asked once with the plan before any write; false cancels with nothing written. */
  confirm?: (plan: P[]) => Promise<boolean>;
  onProgress?: (done: number, total: number) => void;
}

export type ReportedItem<P> = P & { outcome: string; detail?: string };

export interface RemediationReport<P extends PlannedItem> {
  dryRun: boolean;
  items: ReportedItem<P>[];
  summary: Record<string, number | string | boolean>;
  exitCode: number;
}

function chunk<T>(xs: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

function errorText(e: unknown, db: Database): string {
  if (e instanceof OpsctlError) return e.message;
  const err = e as { message?: string; code?: string };
  return `${err?.message ?? String(e)}${err?.code ? ` (SQLSTATE ${err.code})` : ''}`;
}

export async function remediate<P extends PlannedItem>(
  db: Database,
  remedy: Remedy<P>,
  opts: RemediationOptions<P>,
): Promise<RemediationReport<P>> {
  const label = (o: OutcomeClass | 'planned'): string =>
    o === 'applied' ? remedy.labels.applied : o === 'lost' ? remedy.labels.lost : DEFAULT_LABELS[o];
  const limit = opts.max > 0 ? opts.max + 1 : 0;
  const where = displayName(remedy.table, remedy.schema);

  if (!opts.apply) {
    const plan = await db.readOnly((ro) => remedy.plan(ro, limit));
    const exceedsMax = opts.max > 0 && plan.length > opts.max;
    const shown = exceedsMax ? plan.slice(0, opts.max) : plan;
    const items = shown.map((p) => ({ ...p, outcome: label(p.refusal ? 'refused' : 'planned') }));
    const actionable = items.filter((i) => !i.refusal).length;
    return {
      dryRun: true,
      items,
      summary: {
        planned: actionable,
        refused: items.length - actionable,
        ...(exceedsMax ? { exceedsMax: true, max: opts.max } : {}),
      },
      exitCode: ExitCode.OK,
    };
  }

  const lock = await acquireTableLock(db, remedy.table, remedy.schema, { wait: opts.wait });
  try {
    // Planned under the lock: a second opsctl cannot plan the same rows meanwhile.
    const plan = await db.readOnly((ro) => remedy.plan(ro, limit));
    const actionable = plan.filter((p) => !p.refusal);
    if (opts.max > 0 && actionable.length > opts.max) {
      throw usageError(
        `more than ${opts.max} rows of ${where} would be changed by ${remedy.action}, above the --max cap; narrow the selection or raise --max (0 means no cap). Nothing was changed.`,
      );
    }
    const outcomes = new Map<string, ItemOutcome>();
    for (const p of plan) if (p.refusal) outcomes.set(p.id, { id: p.id, outcome: 'refused', detail: p.refusal });

    let cancelled = false;
    if (actionable.length > 0 && opts.confirm && !(await opts.confirm(plan))) cancelled = true;

    let batches = 0;
    let longestBatchMs = 0;
    let aborted: string | undefined;
    let done = 0;
    if (!cancelled) {
      for (const batch of chunk(actionable, opts.batchSize)) {
        if (aborted) {
          for (const p of batch) outcomes.set(p.id, { id: p.id, outcome: 'errored', detail: 'not attempted: the run stopped early' });
          continue;
        }
        const started = performance.now();
        try {
          const result = await db.transaction((tx) => remedy.applyBatch(tx, batch));
          for (const r of result) outcomes.set(r.id, r);
        } catch (e) {
          if (isConnectionError(e)) {
            aborted = `connection lost during batch ${batches + 1}: ${errorText(e, db)}`;
            for (const p of batch)
              outcomes.set(p.id, { id: p.id, outcome: 'errored', detail: 'unknown: the connection was lost during this batch; re-run to converge' });
          } else {
            // Isolate the failing rows: each item on its own, so one bad row does not fail its neighbours.
            for (const p of batch) {
              try {
                const [r] = await db.transaction((tx) => remedy.applyBatch(tx, [p]));
                outcomes.set(p.id, r ?? { id: p.id, outcome: 'errored', detail: 'no outcome reported' });
              } catch (e2) {
                if (isConnectionError(e2)) {
                  aborted = `connection lost: ${errorText(e2, db)}`;
                  outcomes.set(p.id, { id: p.id, outcome: 'errored', detail: 'unknown: the connection was lost; re-run to converge' });
                  break;
                }
                outcomes.set(p.id, { id: p.id, outcome: 'errored', detail: errorText(e2, db) });
              }
            }
            for (const p of batch) if (!outcomes.has(p.id)) outcomes.set(p.id, { id: p.id, outcome: 'errored', detail: 'not attempted: the run stopped early' });
          }
        }
        batches += 1;
        longestBatchMs = Math.max(longestBatchMs, performance.now() - started);
        done += batch.length;
        opts.onProgress?.(done, actionable.length);
      }
    }

    const items: ReportedItem<P>[] = plan.map((p) => {
      if (cancelled && !p.refusal) return { ...p, outcome: 'cancelled' };
      const o = outcomes.get(p.id) ?? { id: p.id, outcome: 'errored' as const, detail: 'no outcome reported' };
      return { ...p, outcome: label(o.outcome), ...(o.detail ? { detail: o.detail } : {}) };
    });
    const count = (o: OutcomeClass) => [...outcomes.values()].filter((x) => x.outcome === o).length;
    const summary: Record<string, number | string | boolean> = {
      planned: actionable.length,
      [remedy.labels.applied]: count('applied'),
      [remedy.labels.lost]: count('lost'),
      [DEFAULT_LABELS.skipped]: count('skipped'),
      [DEFAULT_LABELS.refused]: count('refused'),
      [DEFAULT_LABELS.errored]: count('errored'),
      batches,
      longestBatchMs: Math.round(longestBatchMs),
    };
    if (cancelled) summary.cancelled = true;
    if (aborted) summary.aborted = aborted;
    const exitCode = aborted ? ExitCode.DEPENDENCY : count('errored') > 0 ? ExitCode.FINDINGS : ExitCode.OK;
    return { dryRun: false, items, summary, exitCode };
  } finally {
    await lock.release();
  }
}
