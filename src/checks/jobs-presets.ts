import type { Config, JobsConfig } from '../config.js';
import type { Database } from '../database.js';
import { usageError } from '../errors.js';
import { displayName, qualifiedName } from '../identifiers.js';
import { parseDuration } from '../durations.js';
import { riverPreset } from './jobs-river.js';
import { graphileWorkerPreset } from './jobs-graphile-worker.js';
import { pgBossPreset } from './jobs-pg-boss.js';
import { obanPreset } from './jobs-oban.js';

/**
 * A preset is one job queue's schema and semantics: where its table lives, what "stuck" and
 * "discarded" mean there, and the SQL of its own retry and rescue, each guarded by a
 * compare-and-set on the state the plan saw. stuck-jobs.ts and discarded-jobs.ts run the
 * same pipeline over any preset.
 */

export type QueueKind = NonNullable<JobsConfig['queue']>;

export interface JobFilter {
  kind?: string;
  queue?: string;
  ids?: string[];
  /** Discarded within this long (finalized on or after now() - since). */
  sinceMs?: number;
  /** Also the queue's archive (presets with `archive`): rows carry archived = true. */
  includeArchived?: boolean;
}

export interface StuckFilter extends JobFilter {
  /** null: the queue's own per-job rule (pg-boss: started_on + expire_in). */
  thresholdMs: number | null;
}

/** Columns every preset's stuck query returns. */
export interface StuckJobRow {
  id: string;
  kind: string;
  queue: string | null;
  state: string;
  attempt: number;
  max_attempts: number;
  attempted_at: Date;
  age_seconds: number;
  worker: string | null;
  /** The per-job limit when the queue has one (pg-boss expire_in), in seconds. */
  limit_seconds: number | null;
  /** What a rescue would make of it: retryable, discarded or cancelled. */
  next_state: string;
  /** The snapshot the compare-and-set re-checks (e.g. attempted_at and attempt, as text). */
  token: string;
}

/** Columns every preset's discarded query returns. */
export interface DiscardedJobRow {
  id: string;
  kind: string;
  queue: string | null;
  state: string;
  attempt: number;
  max_attempts: number;
  finalized_at: Date | null;
  age_seconds: number | null;
  last_error: string | null;
  token: string;
  /** Presets with an archive: whether the row is there (read-only). */
  archived?: boolean;
}

export interface QueuePreset {
  queue: QueueKind;
  /** For messages: "River", "graphile-worker", "pg-boss", "Oban". */
  label: string;
  defaultSchema: string | null;
  /** The jobs table: the advisory-lock key and the name in messages. */
  table: string;
  /** Tables and the columns opsctl reads or writes in them (the schema check). */
  requiredColumns: Record<string, string[]>;
  /** One sentence on what to do when the table is missing. */
  missingHint: string;
  /** Checked after the columns: a sentence when the shape is a version opsctl does not support. */
  unsupportedShape?: (columns: Map<string, Set<string>>) => string | null;
  /** The queue's own stuck threshold; null = per job (pg-boss expire_in). */
  defaultRescueAfter: string | null;
  /** The state words shown for stuck and discarded jobs. */
  runningState: string;
  discardedStates(includeCancelled: boolean): string[];
  /** How a stuck job is recognised, for headlines, e.g. "running for longer than 1h". */
  describeStuck(threshold: string | null): string;
  /** One line each: what retry and rescue write, in the queue's own terms. */
  retryEffect: string;
  rescueEffect: string;
  /** True when the queue's own rescue writes no error text (graphile-worker, Oban): the reason goes to the audit row only. */
  reasonInAuditOnly?: boolean;
  idPattern: RegExp;
  idType: string;
  stuckSql(schema: string | null, f: StuckFilter, params: unknown[], limit: number): string;
  /** `order` newest: listings; oldest: a retry plan (the longest-waiting first). */
  discardedSql(schema: string | null, f: JobFilter, includeCancelled: boolean, params: unknown[], order: 'newest' | 'oldest', limit: number): string;
  /** $1 ids (text[]): locks without waiting, returns (id, state) of the rows it could lock. */
  lockSql(schema: string | null): string;
  /** $1 ids (text[]): (id) of the rows that exist. */
  existsSql(schema: string | null): string;
  /** $1 ids, $2 tokens, $3 reasons (text[]): rescues rows whose token still matches; returns (id, result). */
  rescueSql(schema: string | null): string;
  /** $1 ids, $2 tokens (text[]): retries rows still discarded with the same token; returns (id, state). */
  retrySql(schema: string | null, includeCancelled: boolean): string;
  /** Locks the queue keeps outside its jobs (graphile-worker's named queues); see queue-locks.ts. */
  queueLocks?: QueueLockSql;
  /** Where the queue moves old failures (pg-boss's archive); discardedSql reads it with f.includeArchived. */
  archive?: ArchiveSql;
}

export interface QueueLockSql {
  table: string;
  /** (id, queue, locked_at, locked_by, age_seconds, token) of locks older than the threshold with no locked job behind. */
  staleSql(schema: string | null, thresholdMs: number | null, params: unknown[], limit: number): string;
  /** $1 ids, $2 tokens (text[]): frees the locks still as planned; returns (id). */
  releaseSql(schema: string | null): string;
}

/** A table the queue moves finished jobs to (pg-boss's archive): its failures are listed (JobFilter.includeArchived), never retried. */
export interface ArchiveSql {
  table: string;
  /** One sentence: when the queue moves failures there, and why opsctl does not retry them. */
  note: string;
}

export const PRESETS: Record<QueueKind, QueuePreset> = {
  river: riverPreset,
  'graphile-worker': graphileWorkerPreset,
  'pg-boss': pgBossPreset,
  oban: obanPreset,
};

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
  if (!cfg.queue) throw usageError('no job queue is configured: set jobs.queue to river, graphile-worker, pg-boss or oban in the config file to use opsctl jobs.');
  const preset = PRESETS[cfg.queue];
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
  return [...new Set(preset.queue === 'pg-boss' ? ids.map((i) => i.toLowerCase()) : ids.map((i) => i.replace(/^0+(?=\d)/, '')))];
}
