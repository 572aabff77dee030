import type { Config, JobsConfig } from '../config/config.js';
import type { Database } from '../database/database.js';
import { usageError } from '../errors.js';
import { displayName, qualifiedName } from '../database/identifiers.js';
import { parseDuration } from '../config/durations.js';
import { presetNamed, QUEUE_NAMES } from './queue-presets.js';
import type { QueuePreset } from './queue-preset.js';

export type { QueueKind, JobFilter, StuckFilter, StuckJobRow, DiscardedJobRow, QueuePreset, QueueLockSql, ArchiveSql } from './queue-preset.js';

/** The configured queue with its schema resolved; one sentence and exit 2 when none is set. */
export interface ResolvedQueue {
  preset: QueuePreset;
  schema: string | null;
  cfg: JobsConfig;
  /** schema.table for messages. */
  where: string;
}

export function resolveQueue(config: Config): ResolvedQueue {
  const cfg = config.jobs;
  if (!cfg.queue)
    throw usageError(`no job queue is configured: set jobs.queue to ${QUEUE_NAMES.slice(0, -1).join(', ')} or ${QUEUE_NAMES[QUEUE_NAMES.length - 1]} in the config file to use opsctl jobs.`);
  const preset = presetNamed(cfg.queue);
  const schema = cfg.schema ?? preset.defaultSchema;
  return { preset, schema, cfg, where: displayName(preset.table, schema) };
}

/** The stuck threshold: the flag, else jobs.rescueAfter, else the queue's own (null = per job). */
export function rescueThresholdMs(q: ResolvedQueue, flag: string | undefined): number | null {
  if (flag !== undefined) return parseDuration(flag, '--older-than');
  if (q.cfg.rescueAfter !== null) return parseDuration(q.cfg.rescueAfter, 'jobs.rescueAfter');
  return q.preset.defaultRescueAfter === null ? null : parseDuration(q.preset.defaultRescueAfter);
}

/** Fails with one sentence naming the preset and the table when the queue's schema is not there. */
export async function assertQueueSchema(db: Database, q: ResolvedQueue): Promise<void> {
  const { preset, schema } = q;
  const found = new Map<string, Set<string>>();
  for (const [table, columns] of Object.entries(preset.requiredColumns)) {
    const name = displayName(table, schema);
    const rows = await db.query<{ attname: string | null; exists: boolean }>(
      `SELECT to_regclass($1) IS NOT NULL AS exists, a.attname
         FROM (SELECT 1) one LEFT JOIN pg_attribute a ON a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`,
      [qualifiedName(table, schema)],
    );
    if (!rows[0]?.exists)
      throw usageError(`table ${name} of the ${preset.label} preset (jobs.queue ${preset.queue}) does not exist in ${db.target}: ${preset.missingHint}`);
    const have = new Set(rows.map((r) => r.attname).filter((a): a is string => a !== null));
    found.set(table, have);
    const missing = columns.filter((c) => !have.has(c));
    if (missing.length)
      throw usageError(`table ${name} has no column ${missing.map((c) => `"${c}"`).join(', ')}: it is not the ${preset.label} schema opsctl supports (jobs.queue ${preset.queue}).`);
  }
  const unsupported = preset.unsupportedShape?.(found);
  if (unsupported) throw usageError(unsupported);
}

/** Ids are checked before any query: a malformed one is a usage error, nothing is read or written. */
export function checkJobIds(preset: QueuePreset, ids: string[]): string[] {
  for (const id of ids) if (!preset.idPattern.test(id)) throw usageError(`job id "${id}" is not a valid ${preset.idType} (a ${preset.label} job id); nothing was changed.`);
  const normalize = preset.normalizeId ?? ((i: string) => i.replace(/^0+(?=\d)/, ''));
  return [...new Set(ids.map(normalize))];
}

/**
 * The jobs half of lock-then-classify: lock with the preset's FOR UPDATE SKIP LOCKED (as the
 * queue's own fetch does), then run its compare-and-set on the jobs locked.
 */
export async function lockJobsAndApply<C>(
  tx: Database,
  q: ResolvedQueue,
  ids: string[],
  apply: (locked: string[]) => Promise<ReadonlyArray<readonly [string, C]>>,
): Promise<{ locked: Map<string, string>; changed: Map<string, C> }> {
  const rows = await tx.queryRaw<{ id: string; state: string }>(q.preset.lockSql(q.schema), [ids]);
  const locked = new Map(rows.map((r) => [r.id, r.state]));
  const mine = ids.filter((id) => locked.has(id));
  return { locked, changed: new Map(mine.length ? await apply(mine) : []) };
}
