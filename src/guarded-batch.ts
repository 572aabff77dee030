import type { Database } from './database.js';
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
