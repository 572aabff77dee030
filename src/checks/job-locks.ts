import type { Database } from '../database.js';
import type { ResolvedQueue } from './jobs-presets.js';

export interface JobLocks {
  /** Jobs this transaction now holds, with their current state word. */
  locked: Map<string, string>;
  /** Jobs that exist but another transaction (a worker) holds: skipped, never waited on. */
  present: Set<string>;
}

/**
 * Locks a batch's jobs with FOR UPDATE SKIP LOCKED, as the queues' own fetches do, so opsctl
 * never waits on (or blocks) a job a live worker holds; tells held from gone for the report.
 */
export async function lockJobs(tx: Database, q: ResolvedQueue, ids: string[]): Promise<JobLocks> {
  const rows = await tx.queryRaw<{ id: string; state: string }>(q.preset.lockSql(q.schema), [ids]);
  const locked = new Map(rows.map((r) => [r.id, r.state]));
  const rest = ids.filter((id) => !locked.has(id));
  const present = rest.length ? new Set((await tx.queryRaw<{ id: string }>(q.preset.existsSql(q.schema), [rest])).map((r) => r.id)) : new Set<string>();
  return { locked, present };
}
