import type { Database } from './database.js';
import { isConnectionError } from './database.js';
import { acquireTableLock } from './advisory-lock.js';
import { ExitCode, usageError, OpsctlError } from './errors.js';
import { displayName } from './identifiers.js';
import { writeAudit, type AuditEntry } from './audit.js';
import type { Config } from './config.js';
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

export const DEFAULT_LABELS = { skipped: 'skipped-locked', refused: 'refused', errored: 'errored', planned: 'planned', cancelled: 'cancelled' } as const;

/** The class every reported item carries: the engine's outcome classes, plus `planned` (dry run) and `cancelled` (not confirmed). */
export type ResultClass = OutcomeClass | 'planned' | 'cancelled';

/** read: a listing or check, nothing planned; plan: a dry run; apply: --apply. */
export type ResultMode = 'read' | 'plan' | 'apply';

/** Where a remedy's audit entries go: the configured audit table, written as this actor. */
export interface AuditDestination {
  audit: Config['audit'];
  actor: string;
}

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
  /** What to record of an applied change: the engine writes it in the batch's own transaction. */
  audit?: AuditEntry;
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
  /** Where the engine records the audit entries of applied outcomes; null or absent: not recorded. */
  audit?: AuditDestination | null;
  /** Read-only (inside a READ ONLY transaction for databases). `limit` 0 means no limit. */
  plan(target: C, limit: number): Promise<P[]>;
  /**
   * Applies one batch (inside one short transaction for databases); an outcome for every item,
   * an applied one with its audit entry. It never writes the audit itself: the engine does.
   */
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
  /**
   * Records a batch's audit entries inside the batch (for a database: its transaction, so an
   * audit row exists iff the change committed). A host without one has no audit destination.
   */
  writeAudit?(target: C, destination: AuditDestination | null, entries: AuditEntry[]): Promise<void>;
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
    writeAudit: async (tx, d, entries) => {
      if (d) await writeAudit(tx, d.audit, d.actor, entries);
    },
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

/** A planned item with its outcome: `outcome` is the label (the remedy's word), `outcomeClass` the engine's class. */
export type ReportedItem<P> = P & { outcome: string; outcomeClass: ResultClass; detail?: string };

/** Per class: the remedy's word for it and how many items ended there (`byLabel` when items carried their own words). */
export type OutcomeCounts = Partial<Record<ResultClass, { label: string; count: number; byLabel?: Record<string, number> }>>;

export interface RemediationReport<P extends PlannedItem> {
  /** Set when the run stopped part-way for a reason that must reach stderr too. */
  warning?: string;
  mode: 'plan' | 'apply';
  items: ReportedItem<P>[];
  /** Counts under the remedy's words (planned, reaped, race-lost, ...), and `outcomes` keyed by class. */
  summary: Record<string, unknown> & { outcomes: OutcomeCounts };
  exitCode: number;
}

/** The summary's `outcomes`: every item counted under its class, with the class's label. */
function outcomeCounts(items: Array<{ outcome: string; outcomeClass: ResultClass }>, label: (c: ResultClass) => string, classes: ResultClass[]): OutcomeCounts {
  const out: OutcomeCounts = {};
  for (const c of classes) out[c] = { label: label(c), count: 0 };
  for (const i of items) {
    const entry = (out[i.outcomeClass] ??= { label: label(i.outcomeClass), count: 0 });
    entry.count += 1;
    if (i.outcome !== entry.label) (entry.byLabel ??= {})[i.outcome] = (entry.byLabel[i.outcome] ?? 0) + 1;
  }
  return out;
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
  const label = (o: ResultClass): string => (o === 'applied' ? remedy.labels.applied : o === 'lost' ? remedy.labels.lost : DEFAULT_LABELS[o]);
  const limit = opts.max > 0 ? opts.max + 1 : 0;
  const where = displayName(remedy.table, remedy.schema);

  if (!opts.apply) {
    const plan = await host.readOnly((ro) => remedy.plan(ro, limit));
    const exceedsMax = opts.max > 0 && plan.filter(isActionable).length > opts.max;
    const shown = exceedsMax ? plan.slice(0, opts.max) : plan;
    const items = shown.map((p) => {
      const outcomeClass: ResultClass = p.refusal ? 'refused' : p.settled ? 'lost' : 'planned';
      return { ...p, outcome: label(outcomeClass), outcomeClass, ...(p.refusal || p.settled ? { detail: p.refusal ?? p.settled ?? undefined } : {}) };
    });
    const actionable = items.filter(isActionable).length;
    return {
      mode: 'plan',
      items,
      summary: {
        planned: actionable,
        refused: items.filter((i) => i.refusal).length,
        [remedy.labels.lost]: items.filter((i) => !i.refusal && i.settled).length,
        ...(exceedsMax ? { exceedsMax: true, max: opts.max } : {}),
        outcomes: outcomeCounts(items, label, ['planned', 'lost', 'refused']),
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
    // The batch and its audit rows in one unit: an audit row exists iff its change committed.
    const applyAudited = async (tx: C, batch: P[]): Promise<ItemOutcome[]> => {
      const result = await remedy.applyBatch(tx, batch);
      const entries = result.filter((r) => r.outcome === 'applied' && r.audit).map((r) => r.audit as AuditEntry);
      if (entries.length && host.writeAudit) await host.writeAudit(tx, remedy.audit ?? null, entries);
      return result;
    };
    if (!cancelled) {
      for (const batch of sizedBatches(actionable, sizer ?? { next: () => opts.batchSize })) {
        if (aborted) {
          for (const p of batch) outcomes.set(p.id, { id: p.id, outcome: 'errored', detail: 'not attempted: the run stopped early' });
          continue;
        }
        const started = performance.now();
        try {
          const result = await host.batch((tx) => applyAudited(tx, batch));
          for (const r of result) outcomes.set(r.id, r);
        } catch (e) {
          if (host.isFatal(e)) {
            stop(e, batch);
          } else {
            // Isolate the failing rows: each item on its own, so one bad row does not fail its neighbours.
            for (const p of batch) {
              try {
                const [r] = await host.batch((tx) => applyAudited(tx, [p]));
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
      if (cancelled && isActionable(p)) return { ...p, outcome: label('cancelled'), outcomeClass: 'cancelled' as const };
      const o = outcomes.get(p.id) ?? { id: p.id, outcome: 'errored' as const, detail: 'no outcome reported' };
      return { ...p, outcome: o.label ?? label(o.outcome), outcomeClass: o.outcome, ...(o.detail ? { detail: o.detail } : {}) };
    });
    // Items with their own label are counted under it, not twice.
    const count = (o: OutcomeClass) => [...outcomes.values()].filter((x) => x.outcome === o && !x.label).length;
    const errored = [...outcomes.values()].filter((x) => x.outcome === 'errored').length;
    const extraLabels: Record<string, number> = {};
    for (const o of outcomes.values()) if (o.label) extraLabels[o.label] = (extraLabels[o.label] ?? 0) + 1;
    const summary: RemediationReport<P>['summary'] = {
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
      outcomes: outcomeCounts(items, label, ['applied', 'lost', 'skipped', 'refused', 'errored']),
    };
    if (cancelled) summary.cancelled = true;
    if (aborted) summary.aborted = aborted;
    const exitCode = fatal ? fatal.exitCode : aborted ? ExitCode.DEPENDENCY : errored > 0 ? ExitCode.FINDINGS : ExitCode.OK;
    return { mode: 'apply', items, summary, exitCode, ...(fatal ? { warning: fatal.message } : {}) };
  } finally {
    await lock.release();
  }
}
