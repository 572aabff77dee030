import type { Config } from '../../config/config.js';
import type { Database } from '../../database/database.js';
import type { SchedulerApi } from '../../aws/scheduler-api.js';

/**
 * One check of `opsctl check`: a read-only count of one problem with a few examples. A check
 * is this definition in its own file plus one line in ../check-registry.ts.
 */

export interface CheckDeps {
  config: Config;
  openDb: () => Promise<Database>;
  openScheduler: () => Promise<SchedulerApi>;
  expectedGroups: () => Promise<string[] | null>;
  now: () => number;
}

/** What a check found: the count, the worst example in one line, up to ITEM_LIMIT items, extra figures. */
export interface CheckFindings {
  count: number;
  worst: string | null;
  items: Record<string, unknown>[];
  breakdown: Record<string, number>;
}

export interface CheckDefinition {
  check: string;
  /** What `--only` selects by; several checks may share a group. */
  group: string;
  /** Its key under check.thresholds and the default: a count at or above it is a finding. */
  threshold: { key: string; default: number };
  /** Why it is skipped, when its config is not set up. */
  skip?: (c: Config) => string | null;
  run: (deps: CheckDeps) => Promise<CheckFindings>;
}

export const ITEM_LIMIT = 20;

/** A read-only session for one check, always closed. */
export async function withDb<T>(deps: CheckDeps, fn: (db: Database) => Promise<T>): Promise<T> {
  const db = await deps.openDb();
  try {
    return await db.readOnly(fn);
  } finally {
    await db.close();
  }
}

export const jobsNotConfigured = (c: Config) => (c.jobs.queue === null ? 'jobs.queue is not configured' : null);

/** Findings of a listing grouped by error class (dead letters, discarded jobs): the largest class is the worst example. */
export function errorGroupFindings(
  s: { total: number; byKind: Array<{ kind: string; count: number }>; byErrorClass: Array<{ errorClass: string; count: number; kinds: string[] }> },
  items: Record<string, unknown>[],
): CheckFindings {
  const top = s.byErrorClass[0];
  return {
    count: s.total,
    worst: top ? `${top.count}× ${top.errorClass} (${top.kinds.join(', ')})` : null,
    items,
    breakdown: Object.fromEntries(s.byKind.map((k) => [k.kind, k.count])),
  };
}
