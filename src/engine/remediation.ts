import type { Database } from '../database/database.js';
import { isConnectionError } from '../database/database.js';
import { acquireTableLock } from './advisory-lock.js';
import { ExitCode, dependencyError, usageError, OpsctlError } from '../errors.js';
import { displayName } from '../database/identifiers.js';
import { auditIdShape, writeAudit, type AuditEntry } from './audit.js';
import type { Config } from '../config/config.js';
import { BatchSizer } from './batch-sizer.js';
import { newRunId } from './run-id.js';
import { PlanSpool } from './plan-spool.js';
import { itemLines, OutcomeTails } from './item-lines.js';
import { imageRef, readImages, type Image, type RemedyImage } from './images.js';
import { journalPath, openJournal, runRecordsPath, type JournalAppend, type JournalTarget } from './local-state.js';

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
  /**
   * What to record of an applied change: the engine writes it in the batch's own transaction.
   * Its before/after images are the remedy's own when it has Remedy.suppliesImages; otherwise
   * the engine fills them in (Remedy.image).
   */
  audit?: AuditEntry;
  /**
   * Set by a remedy whose items are separate calls (AWS): this item met an error after which
   * the run cannot go on. The item is errored (its detail: the error's sentence); the batch's
   * other outcomes stand, with their audit, and the run stops after this batch.
   */
  fatal?: unknown;
}

/** The detail of an item the run never got to (a per-item remedy reports it for the rest of its batch). */
export const NOT_ATTEMPTED = 'not attempted: the run stopped early';

/**
 * A remedy over some target C (a Database session, a Scheduler API client). For database
 * remedies `table`/`schema` name what the advisory lock is keyed by.
 */
/** Remedy.planState: a token per item, read (`get`) and handed back (`restore`); plan-state.ts tokenPlanState builds one over a Map. */
export interface PlanState<P extends PlannedItem> {
  get(id: string): string | undefined;
  restore(items: P[], tokens: Map<string, string>): void;
}

export interface Remedy<P extends PlannedItem, C = Database> {
  /** A verb for messages: "reap", "retry", "purge", "adopt". */
  action: string;
  /** What it works on, for messages (and, for database remedies, the lock key). */
  table: string;
  schema: string | null;
  labels: OutcomeLabels;
  /** Where the engine records the audit entries of applied outcomes; null or absent: not recorded. */
  audit?: AuditDestination | null;
  /**
   * What a database remedy writes (images.ts): the engine reads the before-images of a batch's
   * rows under their row lock in the batch's transaction, and the after-images once the batch
   * applied, and puts them on the applied items' audit entries (before/after).
   */
  image?: RemedyImage;
  /**
   * The remedy sets audit.before/after on its applied outcomes itself (e.g. reap, from its own
   * statement's locked rows and RETURNING): the engine then reads no images of its own.
   */
  suppliesImages?: boolean;
  /**
   * What the plan keeps beside its items for the write-time guard (a compare-and-set token per
   * item, kept out of the report): a reviewed plan's file records it with each item, and hands
   * it back (`restore`) before its items are applied, as plan() would have left it.
   */
  planState?: PlanState<P>;
  /** Read-only (inside a READ ONLY transaction for databases). `limit` 0 means no limit. */
  plan(target: C, limit: number): Promise<P[]>;
  /**
   * Applies one batch (inside one short transaction for databases); an outcome for every item,
   * an applied one with its audit entry. It never writes the audit itself: the engine does.
   */
  applyBatch(target: C, batch: P[], context?: BatchContext): Promise<ItemOutcome[]>;
  /**
   * applyBatch writes the audit rows of its applied items itself, in its own statement (the
   * engine then writes none, and a oneStatement remedy's batch stays one statement with an
   * audit table too): each row exactly as writeAudit would write the item's entry, with
   * context.runId in metadata.runId (as ofRun adds it) and context.actor as its actor.
   */
  auditsItself?: boolean;
  /**
   * With no audit table, applyBatch builds its applied items' journal text itself when the
   * context asks (BatchContext.journal): the server writes the batch's line (local-state.ts
   * BatchLine), whose rows read back as exactly the lines journalLine gives for the entries the
   * engine would otherwise record, and the batch hands the text back in context.journal.text.
   * No context.journal: it returns the entries as any remedy does.
   */
  journalsItself?: boolean;
  /**
   * The plan as NDJSON text, one planned item a line, as the server writes it (read-only, like
   * plan): what streamRemediation spools instead of holding the plan. Every item it lists is
   * actionable (no refusal, nothing settled).
   */
  streamedPlan?: {
    ndjson(target: C, limit: number): AsyncIterable<Buffer>;
    parse(line: string): P;
    /**
     * What parse added to the line's object, as the JSON text `,"key":value…` (UTF-8, in the
     * order added; the same Buffer may be returned for many items). New keys only, none an
     * array index (JSON.stringify writes those first). With it the engine writes the json and
     * ndjson reports from the plan's own lines (item-lines.ts).
     */
    added?(item: P): Buffer;
  };
  /**
   * applyBatch makes its change in one statement (any other it runs only reads): with no audit
   * entries to write, the engine runs it without BEGIN/COMMIT, the statement being its own
   * transaction, so its row locks end with the statement whatever the client is doing.
   */
  oneStatement?: boolean;
  /**
   * After the last batch, on every session batches ran on (errors ignored): undoes what a batch
   * left on its session for the next one (reap's lowered lock_timeout, see casThenClassify).
   */
  finish?(target: C): Promise<void>;
}

/** What the engine tells applyBatch about the run (for a remedy that writes its own audit rows). */
export interface BatchContext {
  /** The run's id (metadata.runId of every audit entry), when the run has one. */
  runId?: string;
  /** Who the audit rows name (the remedy's audit destination's actor). */
  actor?: string;
  /**
   * For a remedy that journalsItself: the lines' time and target; applyBatch sets `text` to
   * the journal text of its applied items (whole lines, newline-separated, as appended).
   */
  journal?: { at: string; target: JournalTarget | null; text: string };
}

/** How the engine reaches a target: locking, read-only scope, the unit of one batch, fatal errors. */
export interface RemedyHost<C> {
  target: C;
  lock(wait: boolean): Promise<{ release(): Promise<void> }>;
  readOnly<T>(fn: (t: C) => Promise<T>): Promise<T>;
  batch<T>(fn: (t: C) => Promise<T>): Promise<T>;
  /** The unit of a remedy whose batch is one statement (Remedy.oneStatement): no explicit transaction. */
  statement?<T>(fn: (t: C) => Promise<T>): Promise<T>;
  /** An error after which nothing more can be done (connection lost, credentials gone). */
  isFatal(e: unknown): boolean;
  describeError(e: unknown): string;
  /** The one-sentence form of a fatal error, with its exit code. */
  translate(e: unknown): OpsctlError;
  /**
   * True when a failed batch is known to have changed nothing (a database transaction that was
   * rolled back). Only a transactional host has it: without it (AWS) every call is its own
   * change, so a batch's outcomes stand whatever ends the batch, and their audit is written.
   */
  rolledBack?(e: unknown): boolean;
  /**
   * Records a batch's audit entries inside the batch (for a database: its transaction, so an
   * audit row exists iff the change committed). A host without one has no audit destination.
   */
  writeAudit?(target: C, destination: AuditDestination | null, entries: AuditEntry[]): Promise<void>;
  /**
   * Writes the run's record (kind opsctl.run) into the audit table, in a short transaction of
   * its own after the last batch: true once written; false when there is no audit table (the
   * record then goes to runs.jsonl). A failure throws, and the engine falls back to runs.jsonl.
   */
  recordRun?(destination: AuditDestination | null, entry: AuditEntry): Promise<boolean>;
  /** Reads images (images.ts) inside a batch; only a database host has it. */
  readImages?(t: C, image: RemedyImage, ids: string[], lock: boolean): Promise<Map<string, Image>>;
  /** Where the changes are made, for journal lines (a database: its system identifier and name). */
  identity?(): Promise<Omit<JournalTarget, 'name'>>;
}

/** The database's identity for journal lines: its system identifier (when the role may read it) and its name. */
export async function databaseIdentity(db: Database): Promise<Omit<JournalTarget, 'name'>> {
  const rows = await db.query<{ system: string | null; database: string }>(
    `SELECT current_database() AS database,
            CASE WHEN has_function_privilege('pg_catalog.pg_control_system()', 'EXECUTE') THEN (SELECT system_identifier::text FROM pg_catalog.pg_control_system()) END AS system`,
  );
  return { kind: 'postgres', system: rows[0]?.system ?? null, database: rows[0]?.database ?? '' };
}

export function databaseHost(db: Database, table: string, schema: string | null): RemedyHost<Database> {
  return {
    target: db,
    lock: (wait) => acquireTableLock(db, table, schema, { wait }),
    readOnly: (fn) => db.readOnly(fn),
    batch: (fn) => db.transaction(fn),
    statement: (fn) => fn(db),
    // Errors no other row can escape: the connection, privileges, the schema, the timeouts.
    isFatal: (e) => isConnectionError(e) || FATAL_SQLSTATES.has((e as { code?: string })?.code ?? ''),
    describeError: (e) => errorText(e),
    translate: (e) => db.translate(e),
    // Only a lost connection leaves the batch's COMMIT in doubt; any other error rolled it back.
    rolledBack: (e) => !isConnectionError(e),
    writeAudit: async (tx, d, entries) => {
      if (d) await writeAudit(tx, d.audit, d.actor, entries);
    },
    // The run id (a UUID) goes in resource_id when the column takes it (uuid, or text long
    // enough), else NULL with metadata.resource_id, as writeAudit does for any id; team_id NULL.
    recordRun: async (d, entry) => {
      if (!d?.audit.table) return false;
      await db.transaction(async (tx) => writeAudit(tx, d.audit, d.actor, [entry], await auditIdShape(tx, d.audit)));
      return true;
    },
    readImages: (tx, image, ids, lock) => readImages(tx, image, ids, { lock }),
    identity: () => databaseIdentity(db),
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
  /**
   * A person answers `confirm` (a terminal): the plan is made and shown without the lock, so a
   * question left open blocks no other run; after "yes" the lock is taken and exactly the
   * listed items are applied, each re-checked at write time by its guard. Declined: nothing is
   * locked or written, the report is empty with `cancelled`.
   */
  asks?: boolean;
  /** Checked before each batch: true stops the run there (Ctrl-C), the rest reported not attempted, exit 130. */
  shouldStop?: () => boolean;
  /** Told once the run starts to change things (the lock held, the plan confirmed): its id, on every audit entry and in the summary. */
  onRunStart?: (runId: string) => void;
  /** The run's id (called once, when the run starts): a fleet's targets share one. Default: a new one. */
  runId?: () => string;
  /** What the run record says about the run (command line, target, --reason). */
  run?: RunInfo;
  /**
   * The local journal (local-state.ts): where a database remedy with no audit table records its
   * changes, and where every run's record goes. Default: journalPath(process.env).
   */
  journalPath?: string;
  onProgress?: (done: number, total: number) => void;
  /**
   * A reviewed plan's items (`opsctl apply FILE`): the engine's plan source is these items
   * instead of remedy.plan; each is re-checked against its recorded before-image at write time
   * (in the batch's unit, before the remedy's own guard). Rows the plan did not list are never touched.
   */
  given?: GivenPlan<any, any>;
  /** A dry run whose plan is written out (`--plan-out`): told the plan inside its READ ONLY unit. */
  capture?: PlanCapture<any, any>;
}

/** A plan's items handed to the engine (a reviewed plan file), with its write-time checks. */
export interface GivenPlan<P extends PlannedItem, C> {
  items: P[];
  /** Before anything else: gives the remedy back what its plan kept beside the items (Remedy.planState). */
  prepare?(remedy: Remedy<P, C>): void;
  /** Before the lock and before any write: throws when the target is not the one the plan was made for. */
  verify?(target: C): Promise<void>;
  /**
   * In the batch's unit (its transaction, under row locks), before the remedy: outcomes for the
   * items whose recorded before-image no longer matches; the rest go on to the remedy.
   */
  recheck(tx: C, remedy: Remedy<P, C>, batch: P[]): Promise<ItemOutcome[]>;
}

/** Told a dry run's plan with the read-only session it was made on (its before-images and the target's identity are read there). */
export type PlanCapture<P extends PlannedItem, C> = (target: C, remedy: Remedy<P, C>, items: P[], limit: number) => Promise<void>;

/** What a run record says about its run, besides its id, actor, times and counts. */
export interface RunInfo {
  /** The command: "reap", "propagations retry". */
  command: string;
  /** The command line as given, secrets masked. */
  commandLine: string;
  /** The config's target name (--target), null: the config's own. */
  target: string | null;
  reason: string | null;
  /** Set on a revert: the run it reverts. */
  revertOf?: string;
  /** Who runs it (config actor), for a remedy with no audit destination of its own (AWS). */
  actor?: string;
}

/** The kind and resource type of a run record (in the audit table, else runs.jsonl; see recordRun). */
export const RUN_KIND = 'opsctl.run';
export const RUN_RESOURCE = 'opsctl_run';
/** A journal line saying a batch whose entries were journaled was rolled back after all. */
export const ROLLED_BACK_KIND = 'opsctl.rolled_back';

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

/** Plan lines read ahead (and parsed) at a time between turns of the event loop. */
const READ_AHEAD_SLICE = 1024;
/** Items handed out between event-loop turns (and per NDJSON chunk of a streamed report). */
const ITEM_SLICE = 256;

/** insufficient_privilege, undefined table/column, read-only transaction, statement and lock timeouts. */
const FATAL_SQLSTATES = new Set(['42501', '42P01', '42703', '25006', '57014', '55P03']);

const isActionable = (p: PlannedItem) => !p.refusal && !p.settled;

function errorText(e: unknown): string {
  if (e instanceof OpsctlError) return e.message;
  const err = e as { message?: string; code?: string };
  return `${err?.message ?? String(e)}${err?.code ? ` (SQLSTATE ${err.code})` : ''}`;
}

/** The batch and its audit rows in one unit: an audit row exists iff its change committed. */
/** An audit entry of a run carries the run's id (metadata.runId): what `runs` and `revert` find a run by. */
const ofRun = (e: AuditEntry, runId: string | undefined): AuditEntry => (runId ? { ...e, metadata: { ...e.metadata, runId } } : e);

/** What every batch of a run records with: the run's id, the journal (no audit table), the target's identity. */
interface RunRecording {
  runId?: string;
  /** Set when a database remedy's entries go to the journal (no audit table). */
  journal: JournalAppend | null;
  target: JournalTarget | null;
  actor: string;
  /** Ids journaled by the attempt in flight: a rollback marker names them when it fails. */
  journaled?: string[];
}

/**
 * The entry of an applied item as it is recorded: the run's id, and with a remedy that has an
 * image, where it belongs (metadata.image: table, key, the item's key value) and its before/after.
 */
function recorded(e: AuditEntry, id: string, runId: string | undefined, image: RemedyImage | undefined, images: { before: Map<string, Image>; after: Map<string, Image> } | null): AuditEntry {
  const out = ofRun(e, runId);
  if (!image) return out;
  const withImages = images ? { ...out, before: images.before.get(id) ?? null, after: image.columns === 'row' ? null : (images.after.get(id) ?? null) } : out;
  return { ...withImages, metadata: { ...withImages.metadata, image: { ...imageRef(image), id } } };
}

/**
 * The journal could not be appended to: the run stops there. `outcomes`: the batch's change had
 * committed already (a one-statement batch), so its items are reported applied, each saying its
 * journal line is missing; null: the batch's transaction is rolled back by the throw.
 */
class JournalFailed extends Error {
  constructor(
    readonly error: OpsctlError,
    readonly outcomes: ItemOutcome[] | null,
  ) {
    super(error.message);
  }
}

async function applyAudited<P extends PlannedItem, C>(host: RemedyHost<C>, remedy: Remedy<P, C>, tx: C, batch: P[], rec: RunRecording, committed = false): Promise<ItemOutcome[]> {
  // The engine's own images: read under the row lock (FOR UPDATE SKIP LOCKED) in this batch's
  // transaction, so the before-image is the row the remedy's write replaces; a row another
  // transaction holds is left out here as the remedy's own SKIP LOCKED leaves it out.
  const image = remedy.image;
  const capture = image && !remedy.suppliesImages && host.readImages ? host.readImages.bind(host) : null;
  const before = capture && image ? await capture(tx, image, batch.map((p) => p.id), true) : null;
  // Lines the server builds (no per-row entry in this process: a large reap's journal was
  // most of its time, parsing the images and writing them out again).
  const journal = rec.journal;
  const own = journal && remedy.journalsItself ? { at: new Date().toISOString(), target: rec.target, text: '' } : undefined;
  const result = await remedy.applyBatch(tx, batch, { runId: rec.runId, actor: rec.actor, ...(own ? { journal: own } : {}) });
  // Written by the batch's own statement (into the audit table).
  if (remedy.auditsItself) return result;
  if (own && journal) {
    const ids = result.filter((r) => r.outcome === 'applied').map((r) => r.id);
    await appendJournal(ids.length, committed, result, () => journal.lines(own.text));
    rec.journaled = ids;
    return result;
  }
  const applied = result.filter((r) => r.outcome === 'applied' && r.audit);
  // After-images as the rows hold them now: after the write and the table's BEFORE triggers.
  const after = capture && image && image.columns !== 'row' && applied.length ? await capture(tx, image, applied.map((r) => r.id), false) : new Map<string, Image>();
  const entries = applied.map((r) => recorded(r.audit as AuditEntry, r.id, rec.runId, image, before ? { before, after } : null));
  if (entries.length) {
    if (journal) {
      await appendJournal(entries.length, committed, result, () => journal(rec.actor, entries, rec.target));
      rec.journaled = applied.map((r) => r.id);
    } else if (host.writeAudit) await host.writeAudit(tx, remedy.audit ?? null, entries);
  }
  return result;
}

/**
 * Appended before COMMIT (or just after a one-statement batch committed): a batch that is then
 * rolled back leaves lines whose revert finds the rows changed-since (and a rollback marker, see
 * applyOneBatch). A journal that cannot be written stops the run.
 */
async function appendJournal(count: number, committed: boolean, result: ItemOutcome[], append: () => Promise<void>): Promise<void> {
  try {
    await append();
  } catch (e) {
    const f = dependencyError(`cannot append to the audit journal (${(e as { code?: string }).code ?? (e as Error).message}): ${committed ? `${count} change(s) were made but not recorded` : 'the batch was rolled back'}.`, e);
    throw new JournalFailed(f, committed ? result : null);
  }
}

/** Whether an outcome is a change that reached the target (applied, or written and then errored by a fatal error). */
const reached = (o: ItemOutcome) => o.outcome === 'applied' || (o.fatal !== undefined && o.audit !== undefined);

type BatchResult<P> = { outcomes: ItemOutcome[]; fatal?: { error: unknown; items: P[] } };

/**
 * A batch on a host without transactions (AWS): what the calls did is done, so every outcome is
 * kept and every change that reached the target is audited, also when an item met a fatal error
 * (returned as `fatal`, with no item left in doubt) or when the audit itself cannot be written.
 */
async function applySettled<P extends PlannedItem, C>(host: RemedyHost<C>, remedy: Remedy<P, C>, batch: P[], runId?: string): Promise<BatchResult<P>> {
  // (An AWS remedy records its own before/after: the group's tags as read at write time.)
  const outcomes = await host.batch((t) => remedy.applyBatch(t, batch, { runId, actor: remedy.audit?.actor }));
  let fatal: BatchResult<P>['fatal'];
  for (const o of outcomes) {
    if (o.fatal === undefined) continue;
    fatal ??= { error: o.fatal, items: [] };
    o.detail ??= host.translate(o.fatal).message;
  }
  const audited = outcomes.filter((r) => r.audit && reached(r));
  if (audited.length && host.writeAudit) {
    try {
      await host.writeAudit(host.target, remedy.audit ?? null, audited.map((r) => ofRun(r.audit as AuditEntry, runId)));
    } catch (e) {
      // The changes happened: they are reported as they are, each saying its audit is missing,
      // and the run stops on the audit's sentence.
      fatal = { error: e, items: [] };
      for (const r of audited) r.detail = `${r.detail ? `${r.detail}; ` : ''}its audit could not be recorded`;
    }
  }
  return { outcomes, ...(fatal ? { fatal } : {}) };
}

/**
 * One batch in its own unit (a transaction for databases). A non-fatal error isolates the
 * failing rows: each item on its own, so one bad row does not fail its neighbours. A fatal
 * error (connection, privilege, schema, timeout) is returned with the items it left in doubt;
 * `outcomes` then covers the others (applied before it, or not attempted after it).
 */
async function applyOneBatch<P extends PlannedItem, C>(host: RemedyHost<C>, remedy: Remedy<P, C>, batch: P[], rec: RunRecording): Promise<BatchResult<P>> {
  const audited = Boolean(host.writeAudit && remedy.audit?.audit.table);
  // One statement, its own transaction: committed when it returns (what the journal then records).
  // (A remedy that writes its audit rows in its statement needs no BEGIN/COMMIT either.)
  const statement = Boolean(remedy.oneStatement && (!audited || remedy.auditsItself) && host.statement);
  const unit = statement && host.statement ? host.statement.bind(host) : host.batch.bind(host);
  const attempt = async (items: P[]): Promise<BatchResult<P>> => {
    if (!host.rolledBack) return applySettled(host, remedy, items, rec.runId);
    rec.journaled = undefined;
    try {
      return { outcomes: await unit((tx) => applyAudited(host, remedy, tx, items, rec, statement)) };
    } catch (e) {
      if (e instanceof JournalFailed) {
        // Made and committed (one statement): reported as applied, each saying so; the run stops.
        if (e.outcomes) {
          for (const o of e.outcomes) if (o.outcome === 'applied') o.detail = `${o.detail ? `${o.detail}; ` : ''}its journal line could not be written`;
          return { outcomes: e.outcomes, fatal: { error: e.error, items: [] } };
        }
        return { outcomes: [], fatal: { error: e.error, items } };
      }
      // Journaled before a COMMIT that did not happen: a marker says those lines were rolled
      // back (`runs` leaves them out). A lost connection leaves the COMMIT in doubt: no marker.
      const ids = rec.journaled as string[] | undefined;
      rec.journaled = undefined;
      if (ids?.length && rec.journal && host.rolledBack(e)) {
        const marker: AuditEntry = { kind: ROLLED_BACK_KIND, resourceType: RUN_RESOURCE, resourceId: rec.runId ?? '', summary: `${ids.length} journaled change(s) were rolled back`, metadata: { runId: rec.runId, ids } };
        await rec.journal(rec.actor, [marker], rec.target).catch(() => {});
      }
      throw e;
    }
  };
  try {
    return await attempt(batch);
  } catch (e) {
    if (host.isFatal(e)) return { outcomes: [], fatal: { error: e, items: batch } };
  }
  const outcomes: ItemOutcome[] = [];
  for (let i = 0; i < batch.length; i++) {
    const p = batch[i] as P;
    try {
      const r = await attempt([p]);
      outcomes.push(r.outcomes[0] ?? { id: p.id, outcome: 'errored', detail: 'no outcome reported' });
      if (r.fatal) {
        for (const q of batch.slice(i + 1)) outcomes.push({ id: q.id, outcome: 'errored', detail: NOT_ATTEMPTED });
        return { outcomes, fatal: r.fatal };
      }
    } catch (e2) {
      if (host.isFatal(e2)) {
        for (const q of batch.slice(i + 1)) outcomes.push({ id: q.id, outcome: 'errored', detail: NOT_ATTEMPTED });
        return { outcomes, fatal: { error: e2, items: [p] } };
      }
      outcomes.push({ id: p.id, outcome: 'errored', detail: host.describeError(e2) });
    }
  }
  return { outcomes };
}


/** The detail of an item a fatal error left in doubt: only a transactional host can say it was rolled back. */
function inDoubt<C>(host: RemedyHost<C>, e: unknown, f: OpsctlError): string {
  if (!host.rolledBack) return `unknown whether it was applied: ${f.message} Re-run to converge.`;
  return host.rolledBack(e) ? `not applied (the batch was rolled back): ${f.message}` : 'unknown: the connection was lost during this batch; re-run to converge';
}

/** The database form: advisory lock keyed by the remedy's table, one transaction per batch. */
export function remediate<P extends PlannedItem>(db: Database, remedy: Remedy<P>, opts: RemediationOptions<P>): Promise<RemediationReport<P>> {
  return runRemediation(databaseHost(db, remedy.table, remedy.schema), remedy, opts);
}

/**
 * The engine with its report collected: the plan held in memory (remedy.plan), the items as
 * one array. The same engine as streamRemediation (runEngine below), driven from an in-memory plan.
 */
export async function runRemediation<P extends PlannedItem, C>(
  host: RemedyHost<C>,
  remedy: Remedy<P, C>,
  opts: RemediationOptions<P>,
): Promise<RemediationReport<P>> {
  const { confirm, ...rest } = opts;
  const report = await runEngine(host, remedy, { ...rest, ...(confirm ? { confirm: (plan: PlanPreview<P>) => confirm(plan.items) } : {}) }, memoryPlan(host, remedy));
  const items: ReportedItem<P>[] = [];
  for await (const i of report.items) items.push(i);
  const warning = report.warning;
  return { mode: report.mode, items, summary: report.summary, exitCode: report.exitCode, ...(warning ? { warning } : {}) };
}

/** A report streamed as its batches commit: `summary`, `exitCode` and `warning` are known once `items` is consumed. */
export interface StreamedRemediationReport<P extends PlannedItem> {
  mode: 'plan' | 'apply';
  items: AsyncIterable<ReportedItem<P>>;
  /**
   * The same run with its items as NDJSON bytes, exactly as toJson writes `items` (the remedy
   * has streamedPlan.added): consume either this or `items`, once.
   */
  ndjson?: () => AsyncIterable<Buffer>;
  readonly summary: RemediationReport<P>['summary'];
  readonly exitCode: number;
  readonly warning?: string;
}

export interface StreamedRemediationOptions<C = Database> extends Omit<RemediationOptions<PlannedItem>, 'confirm'> {
  /**
   * Further sessions to the same target: each runs batches of its own (disjoint rows, taken in
   * plan order), side by side with the first. The lock and the plan stay on the first.
   */
  lanes?: RemedyHost<C>[];
  /** Asked once with the count of planned items (and the first of them) before any write; false cancels with nothing written. */
  confirm?: (count: number, first: PlannedItem[]) => Promise<boolean>;
  /**
   * A further session that streams the plan (its READ ONLY snapshot) while the first applies
   * it: batches start as soon as their rows are planned. Only when nothing needs the whole plan
   * first — no cap (`max` 0) and no prompt (the caller passes it only then; `confirm` is not
   * asked). Taken under the advisory lock like any plan.
   */
  planLane?: RemedyHost<C>;
}

/**
 * The engine with flat memory, for a remedy with a `streamedPlan`: the plan is spooled to an
 * unlinked temporary file (see plan-spool.ts) under the advisory lock, counted (the --max cap
 * and the confirm come before any write), then read back one batch at a time. Each batch's
 * items are handed out as it commits, while the next batch is already in flight: the report is
 * written as the database works.
 */
export async function streamRemediation<P extends PlannedItem, C>(
  host: RemedyHost<C>,
  remedy: Remedy<P, C>,
  opts: StreamedRemediationOptions<C>,
): Promise<StreamedRemediationReport<P>> {
  const sp = remedy.streamedPlan;
  if (!sp) throw new Error(`${remedy.action} has no streamed plan`);
  const { confirm, ...rest } = opts;
  return runEngine(host, remedy, { ...rest, ...(confirm ? { confirm: (plan: PlanPreview<P>) => confirm(plan.count, plan.items) } : {}) }, spooledPlan(host, sp, opts.planLane));
}

/** What a confirm is asked with: the count of actionable items, and the whole plan when it is held in memory. */
interface PlanPreview<P> {
  count: number;
  items: P[];
}

/**
 * Where the engine takes a plan's items from, in plan order: a spool of the server's NDJSON
 * lines (streamRemediation), or the array remedy.plan returned (runRemediation).
 */
interface PlanSource<P extends PlannedItem> {
  /** Items the plan listed so far (all of them once planned). */
  readonly count: number;
  /** Of those, the ones to act on (no refusal, nothing settled). */
  readonly actionable: number;
  /** Lines back with the items (the NDJSON sink writes from them). */
  readonly hasLines: boolean;
  /** The whole plan, when it is in memory (for a confirm that shows it). */
  readonly items: P[] | null;
  /** The next items: at most `n` actionable ones, with any others the plan has between them. */
  take(n: number, withLines: boolean): Promise<[P[], string[]]>;
  close(): Promise<void>;
}

interface SourceFactory<P extends PlannedItem> {
  /** Plans (read-only) and opens the source; `live` (a plan session) may still be writing it. */
  open(limit: number, opts: { live: boolean }): Promise<{ source: PlanSource<P>; planning: Promise<void> }>;
  readonly streamed: boolean;
  /** The remedy's JSON text of what parse added (spooled plans only). */
  readonly added?: (p: P) => Buffer;
  /** The session that writes a live plan (its errors are translated by it). */
  readonly planHost?: { translate(e: unknown): OpsctlError };
}

const NO_LINES: string[] = [];

function memoryPlan<P extends PlannedItem, C>(host: RemedyHost<C>, remedy: Remedy<P, C>, capture?: PlanCapture<P, C>): SourceFactory<P> {
  return {
    streamed: false,
    async open(limit) {
      const plan = await host.readOnly(async (ro) => {
        const items = await remedy.plan(ro, limit);
        // In the same READ ONLY unit: the before-images are those of the rows planned.
        if (capture) await capture(ro, remedy, items, limit);
        return items;
      });
      return itemsSource(plan);
    },
  };
}

/** The items of a reviewed plan (GivenPlan): nothing is planned, the file's items are the plan. */
function givenPlan<P extends PlannedItem>(items: P[]): SourceFactory<P> {
  return { streamed: false, open: async () => itemsSource(items) };
}

function itemsSource<P extends PlannedItem>(plan: P[]): { source: PlanSource<P>; planning: Promise<void> } {
  let at = 0;
  const actionable = plan.filter(isActionable).length;
  let lastActionable = -1;
  plan.forEach((p, i) => {
    if (isActionable(p)) lastActionable = i;
  });
  const source: PlanSource<P> = {
    count: plan.length,
    actionable,
    hasLines: false,
    items: plan,
    async take(n) {
      const from = at;
      for (let k = 0; at < plan.length && k < n; at++) if (isActionable(plan[at] as P)) k++;
      // Items after the last actionable one go with the last batch.
      if (at > lastActionable) at = plan.length;
      return [plan.slice(from, at), NO_LINES];
    },
    close: async () => {},
  };
  return { source, planning: Promise.resolve() };
}

/**
 * The remedy with a reviewed plan's write-time check before its own guard: items whose
 * recorded before-image changed are left alone (their outcome from `recheck`); one unit, so
 * never a single statement without a transaction (the check's row locks must hold until the write).
 */
function recheckedRemedy<P extends PlannedItem, C>(remedy: Remedy<P, C>, given: GivenPlan<P, C>): Remedy<P, C> {
  const r = Object.create(remedy) as Remedy<P, C>;
  r.oneStatement = false;
  r.applyBatch = async (tx, batch, context) => {
    const changed = await given.recheck(tx, remedy, batch);
    const left = new Set(changed.map((o) => o.id));
    const rest = batch.filter((p) => !left.has(p.id));
    return [...changed, ...(rest.length ? await remedy.applyBatch(tx, rest, context) : [])];
  };
  return r;
}

function spooledPlan<P extends PlannedItem, C>(host: RemedyHost<C>, sp: NonNullable<Remedy<P, C>['streamedPlan']>, planLane?: RemedyHost<C>): SourceFactory<P> {
  const wrap = (spool: PlanSource<P> & { spool: PlanSpool }) => spool;
  return {
    streamed: true,
    added: sp.added?.bind(sp),
    planHost: planLane ?? host,
    async open(limit, { live }) {
      let spool: PlanSpool;
      let planning: Promise<void> = Promise.resolve();
      if (live && planLane) {
        // Written by its own session while the batches take it.
        const l = await PlanSpool.create({ live: true });
        spool = l;
        planning = planLane
          .readOnly(async (ro) => {
            for await (const chunk of sp.ndjson(ro, 0)) await l.write(chunk);
          })
          .then(
            () => l.finish(),
            (e: unknown) => l.fail(e),
          );
      } else {
        spool = await PlanSpool.create();
        try {
          await host.readOnly(async (ro) => {
            for await (const chunk of sp.ndjson(ro, limit)) await spool.write(chunk);
          });
        } catch (e) {
          await spool.close();
          throw e;
        }
      }
      const source = wrap({
        spool,
        get count() {
          return spool.count;
        },
        get actionable() {
          return spool.count;
        },
        hasLines: true,
        items: null,
        async take(n, withLines) {
          const lines = await spool.take(n);
          return [lines.map((l) => sp.parse(l)), withLines ? lines : NO_LINES];
        },
        close: () => spool.close(),
      });
      return { source, planning };
    },
  };
}

/** The outcome of an item the plan itself settled (refused, or nothing to do), never applied. */
const settledOutcome = (p: PlannedItem): ItemOutcome =>
  p.refusal ? { id: p.id, outcome: 'refused', detail: p.refusal } : { id: p.id, outcome: 'lost', detail: p.settled ?? undefined };

interface EngineOptions<P extends PlannedItem, C> extends Omit<StreamedRemediationOptions<C>, 'confirm'> {
  confirm?: (plan: PlanPreview<P>) => Promise<boolean>;
}

/** Items of a spooled plan shown before the question (the rest are counted). */
export const PREVIEW_ROWS = 20;

/**
 * The one remediation engine: dry run or apply; under the lock, the plan (a source of items in
 * plan order), the --max cap and the confirm before any write; batches of actionable items, each
 * applied in its own unit with its guard and audit (applyOneBatch), one in flight per session;
 * every item reported in plan order with its outcome as its batch returns; the same outcome
 * classes, summary and exit codes whatever the source. A fatal error with nothing applied fails
 * the run as a whole (items are held back until something is applied, so no partial report has
 * been written); after something was applied, the run stops and says what became of the rest.
 */
async function runEngine<P extends PlannedItem, C>(
  host: RemedyHost<C>,
  remedy: Remedy<P, C>,
  opts: EngineOptions<P, C>,
  plan: SourceFactory<P>,
): Promise<StreamedRemediationReport<P>> {
  // A dry run written out: planned in memory, in one READ ONLY unit with its before-images.
  if (!opts.apply && opts.capture) plan = memoryPlan(host, remedy, opts.capture);
  // A reviewed plan: its items are the plan (a dry run shows them: a fleet's plan before its
  // question); applied, each is re-checked against its recorded before-image.
  const given = opts.given as GivenPlan<P, C> | undefined;
  if (given) {
    plan = givenPlan(given.items);
    given.prepare?.(remedy);
    if (opts.apply) remedy = recheckedRemedy(remedy, given);
    opts = { ...opts, planLane: undefined, capture: undefined };
    if (given.verify) await host.readOnly((ro) => (given.verify as (t: C) => Promise<void>)(ro));
  }
  const label = (o: ResultClass): string => (o === 'applied' ? remedy.labels.applied : o === 'lost' ? remedy.labels.lost : DEFAULT_LABELS[o]);
  const limit = opts.max > 0 ? opts.max + 1 : 0;
  const where = displayName(remedy.table, remedy.schema);
  const tally = new Tally(label);
  const report = (
    mode: 'plan' | 'apply',
    drive: <T>(sink: Sink<T>) => AsyncGenerator<T>,
    summary: () => RemediationReport<P>['summary'],
    exit: () => number,
    warning: () => string | undefined,
  ): StreamedRemediationReport<P> => ({
    mode,
    items: drive(objects),
    ...(plan.added ? { ndjson: () => drive(bytes) } : {}),
    get summary() {
      return summary();
    },
    get exitCode() {
      return exit();
    },
    get warning() {
      return warning();
    },
  });
  /** The word a reported item carries (its own label, or its class's), counted as it is handed out. */
  const reported = (c: ResultClass, o?: ItemOutcome): string => {
    const outcome = o?.label ?? label(c);
    tally.item(outcome, c);
    return outcome;
  };
  const item = (p: P, c: ResultClass, o?: ItemOutcome): ReportedItem<P> => {
    const r: ReportedItem<P> = { ...p, outcome: reported(c, o), outcomeClass: c };
    if (o?.detail) r.detail = o.detail;
    return r;
  };
  // How items leave the engine: as report objects (`items`), or (streamedPlan.added) as their
  // JSON text written from the plan's lines (`ndjson`). A sink turns the items ps[from, to) into
  // what is handed out, each with its outcome (`resolve`, called once per item) or a class.
  type Resolve = ((p: P) => ItemOutcome) | ResultClass;
  type Sink<T> = { lines: boolean; make(ps: readonly P[], lines: readonly string[], from: number, to: number, resolve: Resolve): T[] };
  const objects: Sink<ReportedItem<P>> = {
    lines: false,
    make(ps, _lines, from, to, resolve) {
      const out: ReportedItem<P>[] = [];
      for (let i = from; i < to; i++) {
        const p = ps[i] as P;
        if (typeof resolve === 'string') out.push(item(p, resolve));
        else {
          const o = resolve(p);
          out.push(item(p, o.outcome, o));
        }
      }
      return out;
    },
  };
  const tails = new OutcomeTails();
  const bytes: Sink<Buffer> = {
    lines: true,
    make(ps, lines, from, to, resolve) {
      const n = to - from;
      const added = new Array<Buffer>(n);
      const ts = new Array<Buffer>(n);
      const details = new Array<string | undefined>(n);
      for (let k = 0; k < n; k++) {
        const p = ps[from + k] as P;
        const o = typeof resolve === 'string' ? undefined : resolve(p);
        const c = o ? o.outcome : (resolve as ResultClass);
        added[k] = (plan.added as (p: P) => Buffer)(p);
        ts[k] = tails.get(reported(c, o), c);
        details[k] = o?.detail;
      }
      return [itemLines(lines, from, added, ts, details)];
    },
  };
  /** Items the plan settled keep their outcome; the others get `c` (planned, cancelled). */
  const orSettled = (c: ResultClass, count: boolean): Resolve => (p: P) => {
    if (isActionable(p)) return { id: p.id, outcome: c as OutcomeClass };
    const o = settledOutcome(p);
    if (count) tally.outcome(o);
    return o;
  };

  if (!opts.apply) {
    const { source } = await plan.open(limit, { live: false });
    const exceedsMax = opts.max > 0 && source.actionable > opts.max;
    const resolve: Resolve = source.actionable === source.count ? 'planned' : orSettled('planned', false);
    const drive = async function* <T>(sink: Sink<T>): AsyncGenerator<T> {
      try {
        // Over the cap: the first --max items of the plan are shown.
        for (let left = exceedsMax ? opts.max : source.count; left > 0; ) {
          const [ps, lines] = await source.take(Math.min(left, 4096), sink.lines);
          if (!ps.length) break;
          const n = Math.min(ps.length, left);
          left -= n;
          for (let i = 0; i < n; i += ITEM_SLICE) yield* sink.make(ps, lines, i, Math.min(n, i + ITEM_SLICE), resolve);
        }
      } finally {
        await source.close();
      }
    };
    return report(
      'plan',
      drive,
      () => ({
        planned: tally.reportedCount('planned'),
        refused: tally.reportedCount('refused'),
        [remedy.labels.lost]: tally.reportedCount('lost'),
        ...(exceedsMax ? { exceedsMax: true, max: opts.max } : {}),
        outcomes: tally.outcomes(['planned', 'lost', 'refused']),
      }),
      () => ExitCode.OK,
      () => undefined,
    );
  }

  const planLane = opts.planLane;
  if (planLane && opts.max > 0) throw new Error('a streamed plan cannot be checked against --max before the first write');
  // Where the changes are recorded, settled before anything is locked or written: a database
  // remedy with no audit table records them in the local journal, and a journal that cannot be
  // written refuses the run here (exit 3, nothing changed). Every run's record goes there too.
  const destination = remedy.audit ?? null;
  const jpath = opts.journalPath ?? journalPath(process.env);
  const journal = destination && !destination.audit.table && host.rolledBack ? await openJournal(jpath) : null;
  const identity = host.identity ? await host.identity().catch(() => null) : null;
  const target: JournalTarget | null = identity ? { ...identity, name: opts.run?.target ?? null } : null;
  const actor = destination?.actor ?? opts.run?.actor ?? 'unknown';
  const asks = Boolean(opts.asks && opts.confirm && !planLane);
  let lock: { release(): Promise<void> } = { release: async () => {} };
  let source: PlanSource<P>;
  let planning: Promise<void>;
  let cancelled = false;
  // Read before the question (a spooled plan's first rows, shown with it): handed to the batches first.
  let previewed: [P[], string[]] | null = null;
  try {
    // Planned under the lock (a second opsctl cannot plan the same rows meanwhile), unless a
    // person is asked: then the lock is taken only after "yes".
    if (!asks) lock = await host.lock(opts.wait);
    ({ source, planning } = await plan.open(limit, { live: Boolean(planLane) }));
    if (!planLane && opts.max > 0 && source.actionable > opts.max) {
      await source.close();
      throw usageError(
        `more than ${opts.max} rows of ${where} would be changed by ${remedy.action}, above the --max cap; narrow the selection or raise --max (0 means no cap). Nothing was changed.`,
      );
    }
    if (!planLane && source.actionable > 0 && opts.confirm) {
      let items = source.items;
      if (!items) {
        previewed = await source.take(PREVIEW_ROWS, plan.added !== undefined);
        items = previewed[0];
      }
      let yes: boolean;
      try {
        yes = await opts.confirm({ count: source.actionable, items });
      } catch (e) {
        await source.close();
        throw e;
      }
      if (!yes) cancelled = true;
      else if (asks) lock = await host.lock(opts.wait).catch(async (e: unknown) => {
        await source.close();
        throw e;
      });
    }
  } catch (e) {
    await lock.release();
    throw e;
  }
  if (cancelled && asks) {
    // Nobody said yes: nothing was locked or written, and there is nothing to report.
    await source.close();
    return report('apply', async function* () {}, () => ({ planned: source.actionable, cancelled: true, outcomes: {} }), () => ExitCode.NOT_CONFIRMED, () => undefined);
  }
  const allActionable = source.actionable === source.count && !source.items;
  // The run: every apply that goes ahead (a cancelled one changes nothing and is no run).
  const runId = cancelled ? undefined : (opts.runId?.() ?? newRunId());
  const startedAt = new Date().toISOString();
  if (runId) opts.onRunStart?.(runId);
  const rec: RunRecording = { runId, journal, target, actor };

  let batches = 0;
  let longestBatchMs = 0;
  const sizer = opts.batchTargetMs ? new BatchSizer({ cap: opts.batchSize, targetMs: opts.batchTargetMs }) : null;
  const nextSize = () => (sizer ? sizer.next() : opts.batchSize);
  let aborted: string | undefined;
  let interrupted = false;
  let fatal: OpsctlError | undefined;
  let applied = false;
  // A streamed plan that failed part-way: what it had listed is applied and reported, the run
  // then stops as after a fatal batch error (rows it never listed cannot be reported).
  let planFailed = false;
  // The plan's lines are kept beside their items only for a sink that writes from them.
  let keepLines = false;
  const take = async (n: number): Promise<[P[], string[]]> => {
    if (planFailed) return [[], NO_LINES];
    try {
      return await source.take(n, keepLines);
    } catch (e) {
      planFailed = true;
      const f = (plan.planHost ?? host).translate(e);
      if (!fatal) {
        fatal = f;
        aborted = `stopped: the plan failed after ${source.count} rows: ${f.message}`;
      }
      return [[], NO_LINES];
    }
  };
  const planned = () => source.actionable;
  // More sessions than the first (opts.lanes): batches run side by side, each on its own.
  const lanes = [host, ...(opts.lanes ?? [])];
  // Plan items read (and parsed) ahead while a batch is in flight, so that the next batch goes
  // to the database as soon as its lane's last one returns: taken then, ~9,000 lines left the
  // session idle ~30 ms between batches. Ahead by what the lanes' next batches take at the size
  // the sizer gives now (a batch that grows takes the rest then), so memory stays flat; started
  // once the previous batch's items are written out (see the loop). A plan in memory needs none.
  let ahead: P[] = previewed ? previewed[0] : [];
  let aheadLines: string[] = previewed ? previewed[1] : NO_LINES;
  let prefetch: Promise<void> | null = null;
  const append = ([ps, lines]: [P[], string[]]) => {
    ahead = ahead.length ? ahead.concat(ps) : ps;
    if (keepLines) aheadLines = aheadLines.length ? aheadLines.concat(lines) : lines;
  };
  // Read and parsed a slice at a time, yielding between slices: parsed in one go, a batch's lines
  // kept the event loop from the batch in flight for ~20 ms (its replies waited that long).
  const readAhead = () => {
    const want = lanes.length * nextSize();
    if (!allActionable || prefetch || aborted || planFailed || ahead.length >= want) return;
    prefetch = (async () => {
      try {
        while (ahead.length < want && !aborted) {
          const got = await take(Math.min(READ_AHEAD_SLICE, want - ahead.length));
          if (!got[0].length) return;
          append(got);
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      } finally {
        prefetch = null;
      }
    })();
  };
  /** The next `n` actionable items (fewer at the end of the plan), with the settled ones between them: the read-ahead ones first. */
  const nextBatch = async (n: number): Promise<[P[], string[]]> => {
    if (!allActionable) return take(n);
    if (ahead.length < n && prefetch) await prefetch;
    if (ahead.length < n) append(await take(n - ahead.length));
    const all = ahead.length <= n;
    const batch: [P[], string[]] = [all ? ahead : ahead.slice(0, n), !keepLines ? NO_LINES : all ? aheadLines : aheadLines.slice(0, n)];
    ahead = all ? [] : ahead.slice(n);
    if (keepLines) aheadLines = all ? NO_LINES : aheadLines.slice(n);
    return batch;
  };
  /** What is left of the plan, a chunk at a time, read-ahead items first (a run that stopped early). */
  const rest = async (): Promise<[P[], string[]]> => {
    if (prefetch) await prefetch;
    if (!ahead.length) return take(4096);
    const left: [P[], string[]] = [ahead, aheadLines];
    ahead = [];
    aheadLines = NO_LINES;
    return left;
  };
  const run = async ([segment, lines]: [P[], string[]], lane: RemedyHost<C>) => {
    const batch = allActionable ? segment : segment.filter(isActionable);
    const started = performance.now();
    const r: BatchResult<P> = batch.length ? await applyOneBatch(lane, remedy, batch, { ...rec }) : { outcomes: [] };
    return { segment, batch, lines, r, ms: performance.now() - started, lane };
  };

  const drive = async function* <T>(sink: Sink<T>): AsyncGenerator<T> {
    keepLines = sink.lines;
    // Until something is applied, items are held back: a fatal error then fails the run as a whole.
    let held: T[] | null = [];
    // Items are made as they are handed out, a slice at a time (short-lived: the young generation reclaims them).
    const emit = async function* ([batch, lines]: [P[], string[]], resolve: Resolve) {
      if (held && !applied) {
        for (let i = 0; i < batch.length; i += ITEM_SLICE) for (const t of sink.make(batch, lines, i, Math.min(batch.length, i + ITEM_SLICE), resolve)) held.push(t);
        return;
      }
      if (held) {
        yield* held;
        held = null;
      }
      // A macrotask turn every few hundred items: the batch in flight gets its result read
      // (and, in a transaction, its COMMIT sent) while this one's items are being written.
      for (let i = 0; i < batch.length; i += ITEM_SLICE) {
        if (i) await new Promise<void>((resolve) => setImmediate(resolve));
        yield* sink.make(batch, lines, i, Math.min(batch.length, i + ITEM_SLICE), resolve);
      }
    };
    try {
      if (cancelled) {
        const resolve = allActionable ? 'cancelled' : orSettled('cancelled', true);
        // rest(): the rows read for the question's preview first.
        for (let got = await rest(); got[0].length; got = await rest()) {
          for (let i = 0; i < got[0].length; i += ITEM_SLICE) yield* sink.make(got[0], got[1], i, Math.min(got[0].length, i + ITEM_SLICE), resolve);
        }
        return;
      }
      let done = 0;
      // One batch in flight per lane (session); results are taken in plan order.
      const queue: Array<ReturnType<typeof run>> = [];
      const start = async (lane: RemedyHost<C>) => {
        if (!aborted && opts.shouldStop?.()) {
          interrupted = true;
          aborted = `interrupted (Ctrl-C): stopped after batch ${batches}`;
        }
        if (aborted) return;
        const next = await nextBatch(nextSize());
        if (next[0].length) queue.push(run(next, lane));
      };
      for (const lane of lanes) await start(lane);
      readAhead();
      while (queue.length) {
        const { segment, batch, lines, r, ms, lane } = await (queue.shift() as ReturnType<typeof run>);
        if (r.outcomes.some(reached)) applied = true;
        const f = r.fatal ? lane.translate(r.fatal.error) : undefined;
        if (f && !fatal) {
          fatal = f;
          aborted = `stopped during batch ${batches + 1}: ${f.message}`;
        }
        if (batch.length) {
          batches += 1;
          sizer?.record(batch.length, ms);
          longestBatchMs = Math.max(longestBatchMs, ms);
          done += batch.length;
        }
        // The lane's next batch goes to the database before anything else is done with this one.
        await start(lane);
        if (batch.length) opts.onProgress?.(done, planned());
        const byId = new Map(r.outcomes.map((o) => [o.id, o]));
        if (r.fatal && f) {
          const detail = inDoubt(lane, r.fatal.error, f);
          for (const p of r.fatal.items) byId.set(p.id, { id: p.id, outcome: 'errored', detail });
        }
        yield* emit([segment, lines], (p) => {
          const o = isActionable(p) ? (byId.get(p.id) ?? { id: p.id, outcome: 'errored' as const, detail: 'no outcome reported' }) : settledOutcome(p);
          tally.outcome(o);
          return o;
        });
        // Read ahead once this batch's items are out, while the next batch is still on the
        // server: two batches' rows held at a time instead of three (median peak RSS at 100k
        // rows 78.5 against 80.5 MiB, 8 alternating runs; time the same).
        readAhead();
      }
      // Nothing applied (so nothing handed out yet): the run fails as a whole.
      if (fatal && !applied) throw fatal;
      if (aborted) {
        for (let got = await rest(); got[0].length; got = await rest()) {
          yield* emit(got, (p) => {
            const o: ItemOutcome = isActionable(p) ? { id: p.id, outcome: 'errored', detail: interrupted ? 'not attempted: interrupted (Ctrl-C)' : NOT_ATTEMPTED } : settledOutcome(p);
            tally.outcome(o);
            return o;
          });
        }
      }
      if (held) yield* held;
    } finally {
      // A consumer that stopped early: the plan's session finishes its COPY (and a read-ahead
      // its read) before the spool closes.
      await planning;
      await prefetch;
      await Promise.all(lanes.map((l) => remedy.finish?.(l.target).catch(() => {})));
      await source.close();
      // The run's record: also of a run stopped by a failure or Ctrl-C (a killed process leaves
      // none: `runs` then builds the run from its entries).
      if (runId) await recordRun();
      await lock.release();
    }
  };

  async function recordRun(): Promise<void> {
    if (!runId) return;
    const outcomes = tally.outcomes(['applied', 'lost', 'skipped', 'refused', 'errored']);
    const counts = Object.fromEntries(Object.entries(outcomes).map(([c, v]) => [c, v?.count ?? 0]));
    const exitCode = fatal ? fatal.exitCode : interrupted ? ExitCode.INTERRUPTED : aborted ? ExitCode.DEPENDENCY : tally.errored > 0 ? ExitCode.FINDINGS : ExitCode.OK;
    const info = opts.run;
    const entry: AuditEntry = {
      kind: RUN_KIND,
      resourceType: RUN_RESOURCE,
      resourceId: runId,
      summary: `${info?.command ?? remedy.action} on ${where}: ${Object.entries(outcomes).map(([, v]) => `${v?.count ?? 0} ${v?.label}`).join(', ')}`,
      metadata: {
        runId,
        command: info?.command ?? remedy.action,
        commandLine: info?.commandLine ?? null,
        target: info?.target ?? null,
        reason: info?.reason ?? null,
        actor,
        startedAt,
        finishedAt: new Date().toISOString(),
        planned: source.actionable,
        outcomes: counts,
        labels: Object.fromEntries(Object.entries(outcomes).map(([c, v]) => [c, v?.label])),
        exitCode,
        ...(aborted ? { aborted } : {}),
        ...(info?.revertOf ? { revertOf: info.revertOf } : {}),
        ...(remedy.image ? { image: imageRef(remedy.image) } : {}),
        recordedIn: destination?.audit.table ? 'audit' : journal ? 'journal' : 'target',
      },
    };
    // In the audit table when one is configured (its own short transaction: `runs` on any host
    // reads it there); without one, or when that insert fails (the connection gone, a privilege),
    // beside the journal in a file of their own (runs.jsonl: the journal holds changes only).
    // Whatever becomes of it, the run's exit code stays the run's. A run that failed as a whole
    // (a fatal error before anything was applied: exit 3, no report) leaves the database exactly
    // as it was, its audit table too: its record goes to runs.jsonl.
    // A run that had nothing to do (a cron reap finding nothing, every minute) would only fill the
    // audit table with empty records: it stays on this host.
    const failedWhole = fatal !== undefined && !applied;
    const nothingToDo = source.actionable === 0;
    const inTable = host.recordRun && !failedWhole && !nothingToDo ? await host.recordRun(destination, entry).catch(() => false) : false;
    if (inTable) return;
    const j = await openJournal(runRecordsPath(jpath)).catch(() => null);
    await j?.(actor, [entry], target).catch(() => {});
  }

  return report(
    'apply',
    drive,
    () => {
      const summary: RemediationReport<P>['summary'] = {
        planned: planned(),
        [remedy.labels.applied]: tally.count('applied'),
        [remedy.labels.lost]: tally.count('lost'),
        [DEFAULT_LABELS.skipped]: tally.count('skipped'),
        [DEFAULT_LABELS.refused]: tally.count('refused'),
        [DEFAULT_LABELS.errored]: tally.errored,
        ...tally.extraLabels,
        batches,
        longestBatchMs: Math.round(longestBatchMs),
        ...(sizer ? { batchSizes: sizer.describe() } : {}),
        outcomes: tally.outcomes(['applied', 'lost', 'skipped', 'refused', 'errored']),
        ...(runId ? { runId } : {}),
      };
      if (cancelled) summary.cancelled = true;
      if (aborted) summary.aborted = aborted;
      return summary;
    },
    () => (fatal ? fatal.exitCode : interrupted ? ExitCode.INTERRUPTED : aborted ? ExitCode.DEPENDENCY : tally.errored > 0 ? ExitCode.FINDINGS : ExitCode.OK),
    () => fatal?.message ?? (interrupted ? aborted : undefined),
  );
}

/** The summary's counts, kept as items go by (what runRemediation derives from its arrays). */
class Tally {
  private readonly byClass = new Map<OutcomeClass, number>();
  readonly extraLabels: Record<string, number> = {};
  errored = 0;
  private readonly reported: OutcomeCounts = {};
  constructor(private readonly label: (c: ResultClass) => string) {}
  /** An engine outcome: counted under its class, or under its own label when it has one. */
  outcome(o: ItemOutcome): void {
    if (o.outcome === 'errored') this.errored += 1;
    if (o.label) this.extraLabels[o.label] = (this.extraLabels[o.label] ?? 0) + 1;
    else this.byClass.set(o.outcome, (this.byClass.get(o.outcome) ?? 0) + 1);
  }
  count(c: OutcomeClass): number {
    return this.byClass.get(c) ?? 0;
  }
  /** A reported item, for `outcomes` (as outcomeCounts does). */
  item(outcome: string, c: ResultClass): void {
    const entry = (this.reported[c] ??= { label: this.label(c), count: 0 });
    entry.count += 1;
    if (outcome !== entry.label) (entry.byLabel ??= {})[outcome] = (entry.byLabel[outcome] ?? 0) + 1;
  }
  /** Reported items of class `c`. */
  reportedCount(c: ResultClass): number {
    return this.reported[c]?.count ?? 0;
  }
  outcomes(classes: ResultClass[]): OutcomeCounts {
    const out: OutcomeCounts = {};
    for (const c of classes) out[c] = this.reported[c] ?? { label: this.label(c), count: 0 };
    for (const [c, v] of Object.entries(this.reported) as [ResultClass, NonNullable<OutcomeCounts[ResultClass]>][]) out[c] ??= v;
    return out;
  }
}
