/**
 * A preset is one job queue's schema and semantics: where its table lives, what "stuck" and
 * "discarded" mean there, and the SQL of its own retry and rescue, each guarded by a
 * compare-and-set on the state the plan saw. stuck-jobs.ts and discarded-jobs.ts run the
 * same pipeline over any preset. Types only: the presets import this, the registry
 * (queue-presets.ts) imports the presets.
 */

/** A preset's name, the value of jobs.queue. */
export type QueueKind = string;

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

/** Columns every preset's stuck and discarded queries return. */
interface JobRow {
  id: string;
  kind: string;
  queue: string | null;
  state: string;
  attempt: number;
  max_attempts: number;
  /** The snapshot the compare-and-set re-checks (e.g. attempted_at and attempt, as text). */
  token: string;
}

/** Columns every preset's stuck query returns. */
export interface StuckJobRow extends JobRow {
  attempted_at: Date;
  age_seconds: number;
  worker: string | null;
  /** The per-job limit when the queue has one (pg-boss expire_in), in seconds. */
  limit_seconds: number | null;
  /** What a rescue would make of it: retryable, discarded or cancelled. */
  next_state: string;
}

/** Columns every preset's discarded query returns. */
export interface DiscardedJobRow extends JobRow {
  finalized_at: Date | null;
  age_seconds: number | null;
  last_error: string | null;
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
  /** Ids as the queue stores them, so duplicates given differently collapse (default: leading zeros dropped). */
  normalizeId?: (id: string) => string;
  /** False when the queue has no queue name apart from the kind (pg-boss): listings leave the column out. */
  namedQueues?: boolean;
  /** False when the queue does not record which worker holds a job (pg-boss): listings leave the column out. */
  recordsWorker?: boolean;
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
  /** The columns of `table` (keyed by `id`) retrySql and rescueSql write: their before/after images (engine/images.ts). */
  writes: { retry: string[]; rescue: string[] };
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
  /** The columns of `table` (keyed by `id`) releaseSql writes. */
  writes: string[];
}

/** A table the queue moves finished jobs to (pg-boss's archive): its failures are listed (JobFilter.includeArchived), never retried. */
export interface ArchiveSql {
  table: string;
  /** One sentence: when the queue moves failures there, and why opsctl does not retry them. */
  note: string;
}

