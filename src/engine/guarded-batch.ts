import type { Database } from '../database/database.js';
import type { ItemOutcome, PlannedItem } from './remediation.js';

/**
 * Lock-then-classify, the one shape of every database remedy's batch: lock the planned rows
 * FOR UPDATE SKIP LOCKED (a row a live worker holds is skipped, never waited on), apply the
 * compare-and-set to the rows locked, then classify every planned row:
 *   changed by the CAS → applied; locked but not changed → lost (it changed since the plan);
 *   not locked but still there → skipped (another transaction holds it); gone → lost.
 * A remedy supplies the statements and the words; the engine supplies the transaction.
 */

export interface LockedAndApplied<R, C> {
  /** Rows this transaction locked, as they were when locked (id → row). */
  locked: Map<string, R>;
  /** Rows the compare-and-set changed (id → what it returned). */
  changed: Map<string, C>;
}

export interface GuardedBatch<P extends PlannedItem, R, C> {
  /**
   * Locks what it can of `ids` without waiting and applies the compare-and-set to the locked
   * rows (one statement or two: a remedy may do both in one CTE).
   */
  lockAndApply(tx: Database, ids: string[]): Promise<LockedAndApplied<R, C>>;
  /** $1 ids (text[]) → (id) of the rows that exist: tells a row someone holds from one that is gone. */
  existsSql: string;
  /** An applied row: its label/detail, and its audit entry (written by the engine). */
  applied(item: P, change: C, row: R | undefined): Omit<ItemOutcome, 'id' | 'outcome'>;
  /** Why a locked row the CAS did not change was left alone. */
  lost(item: P, row: R): string;
  /** Details for a row another transaction holds, and for one that no longer exists. */
  skipped: string;
  gone: string;
}

export async function lockThenClassify<P extends PlannedItem, R, C>(tx: Database, batch: P[], g: GuardedBatch<P, R, C>): Promise<ItemOutcome[]> {
  const ids = batch.map((b) => b.id);
  const { locked, changed } = await g.lockAndApply(tx, ids);
  const notLocked = ids.filter((id) => !locked.has(id));
  const present = notLocked.length ? new Set((await tx.queryRaw<{ id: string }>(g.existsSql, [notLocked])).map((r) => r.id)) : new Set<string>();
  return batch.map((b): ItemOutcome => {
    if (changed.has(b.id)) return { id: b.id, outcome: 'applied', ...g.applied(b, changed.get(b.id) as C, locked.get(b.id)) };
    const row = locked.get(b.id);
    if (row !== undefined) return { id: b.id, outcome: 'lost', detail: g.lost(b, row) };
    if (present.has(b.id)) return { id: b.id, outcome: 'skipped', detail: g.skipped };
    return { id: b.id, outcome: 'lost', detail: g.gone };
  });
}

/**
 * How long a compare-and-set may wait on a row a live transaction holds (casThenClassify): a
 * worker that commits within it is re-checked (the worker wins: race-lost); past it, the batch
 * is re-run the lock-then-classify way, which skips the row. Added to the batch's own lock
 * time, far under the 1 s no batch may hold row locks.
 */
export const CAS_LOCK_TIMEOUT_MS = 100;

/**
 * Skip-locked compare-and-set, one statement on every supported major (14–18): the rows of the
 * batch whose recheck holds on their newest row version are locked FOR UPDATE SKIP LOCKED and
 * changed by the same statement (a CTE), which returns what it changed with the values it
 * replaced. A row a live worker holds is skipped, never waited on. Only when some planned rows
 * were not changed is a second, read-only statement sent to say why:
 *   still there and still matching the recheck → skipped (another transaction held it);
 *   still there, no longer matching → lost (it changed since the plan; the worker wins);
 *   gone → lost.
 * The same classification lockThenClassify makes, with the recheck inside the lock step: a row
 * that no longer matches is never locked (no heap write for it), and no separate lock statement.
 */
export interface SkipLockedCas<P extends PlannedItem, R, C> extends Pick<GuardedBatch<P, R, C>, 'applied' | 'lost' | 'skipped' | 'gone'> {
  /** The one statement: id → change of the rows it locked and changed. */
  casSkipLocked(tx: Database, ids: string[], batch: P[]): Promise<Map<string, C>>;
  /** The rows of `ids` that exist now (id → the row, and whether the recheck still holds on it). */
  recheck(tx: Database, ids: string[]): Promise<Map<string, { row: R; eligible: boolean }>>;
}

export async function skipLockedCasThenClassify<P extends PlannedItem, R, C>(tx: Database, batch: P[], g: SkipLockedCas<P, R, C>): Promise<ItemOutcome[]> {
  const ids = batch.map((b) => b.id);
  const changed = await g.casSkipLocked(tx, ids, batch);
  const rest = changed.size === ids.length ? [] : ids.filter((id) => !changed.has(id));
  const now = rest.length ? await g.recheck(tx, rest) : null;
  return batch.map((b): ItemOutcome => {
    const c = changed.get(b.id);
    if (c !== undefined) return { id: b.id, outcome: 'applied', ...g.applied(b, c, undefined) };
    const row = now?.get(b.id);
    if (row === undefined) return { id: b.id, outcome: 'lost', detail: g.gone };
    if (row.eligible) return { id: b.id, outcome: 'skipped', detail: g.skipped };
    return { id: b.id, outcome: 'lost', detail: g.lost(b, row.row) };
  });
}

export interface CasFirst<P extends PlannedItem, R, C> extends Pick<GuardedBatch<P, R, C>, 'applied' | 'lost' | 'gone'> {
  /**
   * One statement, no lock step: the compare-and-set on `ids` (its WHERE re-evaluated by the
   * server against any row version committed meanwhile), id → change of the rows it changed.
   */
  cas(tx: Database, ids: string[], batch: P[]): Promise<Map<string, C>>;
  /** The rows of `ids` that exist, as they are now (id → row): why the others were left alone. */
  current(tx: Database, ids: string[]): Promise<Map<string, R>>;
  /** The wait allowed on a held row (default CAS_LOCK_TIMEOUT_MS). */
  lockTimeoutMs?: number;
  /** The batch again, skipping held rows, after the wait ran out (lockThenClassify or skipLockedCasThenClassify). */
  fallback(tx: Database, batch: P[]): Promise<ItemOutcome[]>;
}

/**
 * Sessions whose lock_timeout casThenClassify has lowered and left lowered for their next batch:
 * setting it and resetting it around every batch cost two round trips a batch, and each waited
 * on the event loop, busy writing out the previous batch (15–40 ms a batch at 100k rows).
 * endCas puts the session's own value back.
 */
const lowered = new WeakSet<Database>();

/**
 * CAS-first: the compare-and-set alone, waiting at most CAS_LOCK_TIMEOUT_MS on a row lock (never
 * longer than the session's own lock_timeout), then classified: changed → applied; still there
 * → lost (it changed since the plan); gone → lost.
 * Cheaper than locking first (the FOR UPDATE lock is a heap write of its own plus a second
 * key lookup). On lock_not_available the statement changed nothing (it is one statement), and
 * the batch is re-run by g.fallback under the session's own lock_timeout: a row a live
 * worker still holds is skipped, as it always was. Only outside a transaction block: the
 * timeout would otherwise abort the whole transaction.
 * The lowered lock_timeout stays on the session for the next batch (see `lowered`): call endCas
 * after the last one (Remedy.finish).
 */
export async function casThenClassify<P extends PlannedItem, R, C>(tx: Database, batch: P[], g: CasFirst<P, R, C>): Promise<ItemOutcome[]> {
  const ids = batch.map((b) => b.id);
  if (!lowered.has(tx)) {
    // Session-level (the statement is its own transaction), and never longer than the
    // configured database.lockTimeout (0 there: no limit).
    await tx.queryRaw(
      `SELECT set_config('lock_timeout', CASE WHEN c <> '0' AND c::interval < $1::text::interval THEN c ELSE $1::text END, false) FROM current_setting('lock_timeout') c`,
      [`${g.lockTimeoutMs ?? CAS_LOCK_TIMEOUT_MS}ms`],
    );
    lowered.add(tx);
  }
  let changed: Map<string, C> | null = null;
  try {
    changed = await g.cas(tx, ids, batch);
  } catch (e) {
    // Any other error: the session stays lowered for what follows (the rows one by one, or the end).
    if ((e as { code?: string })?.code !== '55P03') throw e;
  }
  if (!changed) {
    await endCas(tx);
    return g.fallback(tx, batch);
  }
  const done = changed;
  const rest = ids.filter((id) => !done.has(id));
  // Why the others were left alone, read under the session's own lock_timeout, as it always was.
  if (rest.length) await endCas(tx);
  const now = rest.length ? await g.current(tx, rest) : new Map<string, R>();
  return batch.map((b): ItemOutcome => {
    if (done.has(b.id)) return { id: b.id, outcome: 'applied', ...g.applied(b, done.get(b.id) as C, undefined) };
    const row = now.get(b.id);
    if (row !== undefined) return { id: b.id, outcome: 'lost', detail: g.lost(b, row) };
    return { id: b.id, outcome: 'lost', detail: g.gone };
  });
}

/** The session's own lock_timeout back after casThenClassify lowered it (nothing to do otherwise). */
export async function endCas(tx: Database): Promise<void> {
  if (!lowered.has(tx)) return;
  lowered.delete(tx);
  await tx.queryRaw('RESET lock_timeout');
}
