import { textArrayParam, type Database } from '../database/database.js';
import type { Config, ExecutionsConfig } from '../config/config.js';
import type { Remedy } from '../engine/remediation.js';
import { casThenClassify, endCas, lockThenClassify, type CasFirst } from '../engine/guarded-batch.js';
import { formatDuration } from '../config/durations.js';
import { qualifiedName, quoteIdent } from '../database/identifiers.js';
import { usageError } from '../errors.js';
import { imageSql, type Image, type RemedyImage } from '../engine/images.js';

/**
 * The statuses a listing or reap acts on: `requested` (the --status flag) or the configured
 * stuck statuses. A requested status outside executions.stuckStatuses is refused: reap would
 * write the failed status and its reason over a row that finished (or failed) on its own,
 * destroying what the system recorded.
 */
export function stuckStatusFilter(cfg: ExecutionsConfig, requested: string[] | undefined, where = ''): string[] {
  if (!requested) return cfg.stuckStatuses;
  const outside = requested.filter((s) => !cfg.stuckStatuses.includes(s));
  if (outside.length) {
    const list = outside.map((s) => JSON.stringify(s)).join(', ');
    throw usageError(
      `${where}--status ${list} ${outside.length === 1 ? 'is not a stuck status' : 'are not stuck statuses'} of ${cfg.table}: opsctl acts only on executions.stuckStatuses (${cfg.stuckStatuses.join(', ')}). Nothing was changed.`,
    );
  }
  return requested;
}

/** A row stuck in a non-terminal status past the threshold. */
export interface StuckExecution {
  id: string;
  status: string;
  /** ISO 8601, UTC. */
  updatedAt: string;
  /** Real age on the database clock, beside the threshold: rescuing by age can run work twice. */
  ageSeconds: number;
}

export interface StuckQuery {
  thresholdMs: number;
  statuses: string[];
  /** 0 = no limit */
  limit: number;
}

export interface PlannedReap extends StuckExecution {
  reason: string;
  refusal?: string | null;
}

function names(cfg: ExecutionsConfig) {
  return {
    table: qualifiedName(cfg.table, cfg.schema),
    key: quoteIdent(cfg.key),
    status: quoteIdent(cfg.status),
    updatedAt: quoteIdent(cfg.updatedAt),
    error: quoteIdent(cfg.error),
    transitionedAt: cfg.transitionedAt ? quoteIdent(cfg.transitionedAt) : null,
  };
}

/** The columns a reap writes (its before/after images, engine/images.ts). */
export function reapImage(cfg: ExecutionsConfig): RemedyImage {
  return { table: cfg.table, schema: cfg.schema, key: cfg.key, columns: [cfg.status, cfg.error, cfg.updatedAt, ...(cfg.transitionedAt ? [cfg.transitionedAt] : [])] };
}

/**
 * A reap batch's SQL: the SET and the compare-and-set recheck (only rows still in a stuck status
 * and still older than the threshold, re-evaluated on the newest row version), and the CAS-first
 * statement built from them (PostgreSQL 18: the status it replaced is RETURNING's old.*). Rows
 * are found by key (= ANY of the keys, an index scan): joined to a CTE instead, the planner
 * hashes it against a scan of the whole table, once per batch (50 ms at 100k rows). Exported for
 * bench/reap-sql-alone.mjs, which times this very statement without opsctl around it.
 * $1 keys, $2 the failed status, $3 the reason template ({status} filled in by the server),
 * $4 the stuck statuses, $5 the threshold in seconds: see reapParams.
 */
export function reapStatements(cfg: ExecutionsConfig): { set: string; recheck: string; cas: string } {
  const n = names(cfg);
  const set = `${n.status} = $2, ${n.error} = replace($3::text, '{status}', t.${n.status}::text),
                      ${n.updatedAt} = now()${n.transitionedAt ? `, ${n.transitionedAt} = now()` : ''}`;
  const recheck = `t.${n.status} = ANY($4::text[]) AND t.${n.updatedAt} < now() - make_interval(secs => $5::float8)`;
  // The images of what it replaced (old.*) and of what the row holds after it (RETURNING: after BEFORE triggers).
  const cols = reapImage(cfg).columns;
  return {
    set,
    recheck,
    cas: `UPDATE ${n.table} t SET ${set} WHERE t.${n.key} = ANY($1) AND ${recheck} RETURNING t.${n.key}::text AS id, old.${n.status}::text AS status, ${imageSql('old', cols)} AS before, ${imageSql('t', cols)} AS after`,
  };
}

/** The values of reapStatements' $1–$5 for a batch of keys. */
export function reapParams(cfg: ExecutionsConfig, ids: string[], reasonTemplate: string, q: Pick<StuckQuery, 'statuses' | 'thresholdMs'>): unknown[] {
  return [textArrayParam(ids), cfg.failedStatus, reasonTemplate, q.statuses, q.thresholdMs / 1000];
}

/** Fails with a sentence naming the config key when the table or a column is missing, or a time column is not a timestamp. */
export async function assertExecutionsSchema(db: Database, cfg: ExecutionsConfig): Promise<void> {
  await db.assertColumns('executions', cfg.table, cfg.schema, {
    key: cfg.key,
    status: cfg.status,
    updatedAt: cfg.updatedAt,
    error: cfg.error,
    transitionedAt: cfg.transitionedAt,
  }, ['updatedAt', 'transitionedAt']);
}

/**
 * Stuck = status in the stuck set and updated_at older than the threshold on the database
 * clock, oldest first. Filters on status first (the reference table indexes status only).
 */
export function stuckSql(cfg: ExecutionsConfig, limit: number): string {
  const n = names(cfg);
  // Columns qualified with the alias: ORDER BY must sort by the key's own type, not the text alias.
  // updated_at is formatted by the server: parsing it into a Date only to print it again costs more than the query.
  return `SELECT t.${n.key}::text AS id, t.${n.status}::text AS status,
                 to_char(t.${n.updatedAt}::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS updated_at,
                 extract(epoch FROM now() - t.${n.updatedAt})::float8 AS age_seconds
            FROM ${n.table} t
           WHERE t.${n.status} = ANY($1::text[]) AND t.${n.updatedAt} < now() - make_interval(secs => $2::float8)
           ORDER BY t.${n.updatedAt}, t.${n.key}${limit > 0 ? ` LIMIT ${Math.floor(limit)}` : ''}`;
}

const toStuck = (r: { id: string; status: string; updated_at: string; age_seconds: number }): StuckExecution => ({
  id: r.id,
  status: r.status,
  updatedAt: r.updated_at,
  ageSeconds: Math.floor(r.age_seconds),
});

/** Streams stuck rows (call inside db.readOnly). */
export async function* streamStuck(db: Database, cfg: ExecutionsConfig, q: StuckQuery): AsyncGenerator<StuckExecution> {
  for await (const r of db.stream<{ id: string; status: string; updated_at: string; age_seconds: number }>(stuckSql(cfg, q.limit), [
    q.statuses,
    q.thresholdMs / 1000,
  ])) {
    yield toStuck(r);
  }
}

/**
 * The same rows as stuckSql, as NDJSON text written by the server (`row_to_json`: the bytes
 * JSON.stringify writes for a StuckExecution), through `COPY … TO STDOUT`. COPY takes no bind
 * parameters, so the statuses and the threshold are bound to `set_config` in the same
 * transaction (see bindStuckSettings) and read back here with current_setting: no value is
 * ever written into the SQL text. CSV with control characters as quote and delimiter (never
 * present in JSON text, whose control characters are escaped) passes each JSON line through
 * unchanged, where the text format would double every backslash.
 */
export function stuckCopySql(cfg: ExecutionsConfig, limit: number): string {
  const n = names(cfg);
  return `COPY (SELECT row_to_json(r) FROM (
            SELECT t.${n.key}::text AS id, t.${n.status}::text AS status,
                   to_char(t.${n.updatedAt}::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "updatedAt",
                   floor(extract(epoch FROM now() - t.${n.updatedAt})::float8)::bigint AS "ageSeconds"
              FROM ${n.table} t
             WHERE t.${n.status} = ANY(current_setting('opsctl.stuck_statuses')::text[])
               AND t.${n.updatedAt} < now() - make_interval(secs => current_setting('opsctl.stuck_threshold_seconds')::float8)
             ORDER BY t.${n.updatedAt}, t.${n.key}${limit > 0 ? ` LIMIT ${Math.floor(limit)}` : ''}) r)
          TO STDOUT (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')`;
}

/** Binds the query's values for stuckCopySql, local to the current transaction. */
async function bindStuckSettings(db: Database, q: StuckQuery): Promise<void> {
  // The server turns the bound array and number into their text forms; nothing is quoted here.
  await db.query(`SELECT set_config('opsctl.stuck_statuses', $1::text[]::text, true), set_config('opsctl.stuck_threshold_seconds', $2::float8::text, true)`, [
    q.statuses,
    q.thresholdMs / 1000,
  ]);
}

/** A stuck listing streamed by the server as NDJSON; count and oldest age known once consumed. */
export interface StuckListing {
  /**
   * Binds the settings and starts the COPY, up to its first chunk: a query the server rejects
   * (a configured name that does not exist) fails here, before anything is printed. Optional:
   * ndjson() and rows() start it themselves.
   */
  open(): Promise<void>;
  /** One JSON object a line, in chunks as they arrive (a chunk may end mid-line). */
  ndjson(): AsyncGenerator<Buffer>;
  /** The same rows parsed, for tables. */
  rows(): AsyncGenerator<StuckExecution>;
  readonly count: number;
  readonly oldestAgeSeconds: number;
}

/** Streams stuck rows through COPY (call inside db.readOnly); consume either ndjson() or rows(), once. */
export function copyStuck(db: Database, cfg: ExecutionsConfig, q: StuckQuery): StuckListing {
  // The count: the rows copyOut saw go by.
  const done = { rows: 0 };
  let oldest = 0;
  let source: AsyncGenerator<Buffer> | null = null;
  let first: IteratorResult<Buffer> | null = null;
  const open = async () => {
    if (source) return;
    await bindStuckSettings(db, q);
    source = db.copyOut(stuckCopySql(cfg, q.limit), done);
    first = await source.next();
  };
  const ndjson = async function* (): AsyncGenerator<Buffer> {
    await open();
    const it = source as AsyncGenerator<Buffer>;
    let head: Buffer | null = Buffer.alloc(0);
    try {
      for (let r = first as IteratorResult<Buffer>; !r.done; r = await it.next()) {
        const chunk = r.value;
        if (head) {
          // Oldest first: the first row carries the oldest age.
          head = Buffer.concat([head, chunk]);
          const nl = head.indexOf(10);
          if (nl >= 0) {
            oldest = (JSON.parse(head.toString('utf8', 0, nl)) as StuckExecution).ageSeconds;
            head = null;
          }
        }
        yield chunk;
      }
    } finally {
      // A consumer that stopped early: copyOut drains the rest so the session stays usable.
      await it.return(undefined);
    }
  };
  const rows = async function* (): AsyncGenerator<StuckExecution> {
    // A chunk may end inside a line, or inside a UTF-8 character: split on whole lines only.
    let rest: Buffer = Buffer.alloc(0);
    for await (const chunk of ndjson()) {
      const buf = rest.length ? Buffer.concat([rest, chunk]) : chunk;
      let start = 0;
      for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, start)) {
        yield JSON.parse(buf.toString('utf8', start, i)) as StuckExecution;
        start = i + 1;
      }
      rest = buf.subarray(start);
    }
  };
  return {
    open,
    ndjson,
    rows,
    get count() {
      return done.rows;
    },
    get oldestAgeSeconds() {
      return oldest;
    },
  };
}

export async function findStuck(db: Database, cfg: ExecutionsConfig, q: StuckQuery): Promise<StuckExecution[]> {
  const rows = await db.query<{ id: string; status: string; updated_at: string; age_seconds: number }>(stuckSql(cfg, q.limit), [
    q.statuses,
    q.thresholdMs / 1000,
  ]);
  return rows.map(toStuck);
}

/** The canonical reason, e.g. "reaped after 10m in running state — executor did not complete". */
export function reapReason(template: string, vars: { threshold: string; status: string; reason?: string; actor: string }): string {
  let out = template
    .replaceAll('{threshold}', vars.threshold)
    .replaceAll('{status}', vars.status)
    .replaceAll('{actor}', vars.actor)
    .replaceAll('{reason}', vars.reason ?? '');
  if (vars.reason && !template.includes('{reason}')) out += ` (operator: ${vars.reason})`;
  return out;
}

export interface ReapOptions extends StuckQuery {
  reason?: string;
  actor: string;
  audit: Config['audit'];
  /** How long a batch's compare-and-set may wait on a held row before it is re-run skipping it (default CAS_LOCK_TIMEOUT_MS). */
  casLockTimeoutMs?: number;
}

/** Reap: move stuck rows to the failed status with a compare-and-set that re-checks status and age. */
export function reapRemedy(cfg: ExecutionsConfig, opts: ReapOptions): Remedy<PlannedReap> {
  const n = names(cfg);
  const threshold = formatDuration(opts.thresholdMs);
  const reasonFor = (status: string) => reapReason(cfg.reasonTemplate, { threshold, status, reason: opts.reason, actor: opts.actor });
  // A plan line's reason depends on its status alone: its text and its JSON, once per status.
  const reasons = new Map<string, { text: string; json: Buffer }>();
  const reasonOf = (status: string) => {
    let r = reasons.get(status);
    if (!r) {
      const text = reasonFor(status);
      reasons.set(status, (r = { text, json: Buffer.from(`,"reason":${JSON.stringify(text)}`) }));
    }
    return r;
  };
  // The batch's SQL and its reason template ({status} filled in by the server): the same for every batch.
  const template = reapReason(cfg.reasonTemplate, { threshold, status: '{status}', reason: opts.reason, actor: opts.actor });
  const { set, recheck, cas: casSql } = reapStatements(cfg);
  const imageCols = reapImage(cfg).columns;
  const params = (ids: string[]) => reapParams(cfg, ids, template, opts);
  // Asked once, on the first batch: which way a batch is applied depends on it.
  let serverVersion: Promise<number> | undefined;
  return {
    action: 'reap',
    table: cfg.table,
    schema: cfg.schema,
    labels: { applied: 'reaped', lost: 'race-lost' },
    audit: { audit: opts.audit, actor: opts.actor },
    image: reapImage(cfg),
    // Its before/after come from its own statement (the locked rows, or RETURNING's old.*, and RETURNING).
    suppliesImages: true,
    // The compare-and-set is one statement (whichever way, see applyBatch; the others only read
    // or set the session's lock_timeout).
    oneStatement: true,
    finish: endCas,
    async plan(db, limit) {
      const rows = await findStuck(db, cfg, { ...opts, limit });
      return rows.map((r) => ({ ...r, reason: reasonFor(r.status) }));
    },
    // The same rows through the listing's COPY (the server writes each line): spooled, not held.
    streamedPlan: {
      ndjson: (db, limit) => copyStuck(db, cfg, { ...opts, limit }).ndjson(),
      parse(line) {
        // The parsed object itself gets its reason (no copy of it per row).
        const r = JSON.parse(line) as PlannedReap;
        r.reason = reasonOf(r.status).text;
        return r;
      },
      // What parse added: the reason.
      added: (r) => reasonOf(r.status).json,
    },
    async applyBatch(tx, batch) {
      type Change = { status: string; before: Image; after: Image };
      const guard: CasFirst<PlannedReap, string, Change> = {
        // One statement per batch: lock what can be locked without waiting, then the
        // compare-and-set on the locked rows.
        async lockAndApply(t, ids) {
          // The locked row is the one the UPDATE replaces (locked: nobody else writes it first):
          // its image is the before-image; RETURNING's is the after-image.
          const rows = await t.queryRaw<{ id: string; status: string; updated: boolean; before: Image; after: Image }>(
            `WITH locked AS (
               SELECT l.${n.key} AS k, l.${n.status}::text AS status, ${imageSql('l', imageCols)} AS before FROM ${n.table} l WHERE l.${n.key} = ANY($1) FOR UPDATE SKIP LOCKED
             ), upd AS (
               UPDATE ${n.table} t SET ${set}
                WHERE t.${n.key} = ANY(ARRAY(SELECT k FROM locked)) AND ${recheck}
            RETURNING t.${n.key} AS k, ${imageSql('t', imageCols)} AS after
             )
             SELECT locked.k::text AS id, locked.status, upd.k IS NOT NULL AS updated, locked.before, upd.after FROM locked LEFT JOIN upd ON upd.k = locked.k`,
            params(ids),
          );
          return { locked: new Map(rows.map((r) => [r.id, r.status])), changed: new Map(rows.filter((r) => r.updated).map((r) => [r.id, { status: r.status, before: r.before, after: r.after }])) };
        },
        // The compare-and-set alone (CAS-first, see casThenClassify): the status it replaced
        // is RETURNING's old.* (PostgreSQL 18).
        async cas(t, ids) {
          const rows = await t.queryRaw<{ id: string; status: string; before: Image; after: Image }>(casSql, params(ids));
          return new Map(rows.map((r) => [r.id, { status: r.status, before: r.before, after: r.after }]));
        },
        async current(t, ids) {
          const rows = await t.queryRaw<{ id: string; status: string }>(`SELECT ${n.key}::text AS id, ${n.status}::text AS status FROM ${n.table} WHERE ${n.key} = ANY($1)`, [ids]);
          return new Map(rows.map((r) => [r.id, r.status]));
        },
        lockTimeoutMs: opts.casLockTimeoutMs,
        existsSql: `SELECT ${n.key}::text AS id FROM ${n.table} WHERE ${n.key} = ANY($1)`,
        // Every applied row is recorded (the audit table, else the local journal), with its images.
        applied: (b, c) => ({
          audit: {
            kind: 'execution.reaped',
            resourceType: cfg.table,
            resourceId: b.id,
            summary: reasonFor(c.status),
            metadata: { execution_id: b.id, from_status: c.status, to_status: cfg.failedStatus, threshold, age_seconds: b.ageSeconds, reason: opts.reason ?? null },
            before: c.before,
            after: c.after,
          },
        }),
        lost: (_b, status) => `changed since the plan (now ${status}): the worker wins`,
        skipped: 'locked by another transaction; left alone',
        gone: 'row no longer exists',
      };
      // CAS-first needs the batch to be its own statement (no audit table: the engine runs it
      // without BEGIN/COMMIT, see Remedy.oneStatement) and RETURNING old.* (server 18 or later).
      if (!opts.audit.table && (await (serverVersion ??= tx.queryRaw<{ v: number }>(`SELECT current_setting('server_version_num')::int AS v`).then((r) => r[0]?.v ?? 0))) >= 180000) {
        return casThenClassify(tx, batch, guard);
      }
      return lockThenClassify(tx, batch, guard);
    },
  };
}

/** How many rows are stuck (for `check`), without listing them. */
export async function countStuck(db: Database, cfg: ExecutionsConfig, q: Omit<StuckQuery, 'limit'>): Promise<number> {
  const n = names(cfg);
  const rows = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM ${n.table} WHERE ${n.status} = ANY($1::text[]) AND ${n.updatedAt} < now() - make_interval(secs => $2::float8)`,
    [q.statuses, q.thresholdMs / 1000],
  );
  return rows[0]?.n ?? 0;
}
