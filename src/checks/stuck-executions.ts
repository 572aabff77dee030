import { textArrayParam, type Database } from '../database/database.js';
import type { Config, ExecutionsConfig } from '../config/config.js';
import type { Remedy } from '../engine/remediation.js';
import { imageRef, type RemedyImage } from '../engine/images.js';
import type { BatchLineHead, JournalTarget } from '../engine/local-state.js';
import { casThenClassify, endCas, skipLockedCasThenClassify, type CasFirst, type SkipLockedCas } from '../engine/guarded-batch.js';
import { formatDuration } from '../config/durations.js';
import { qualifiedName, quoteIdent } from '../database/identifiers.js';
import { usageError } from '../errors.js';

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

/** A SQL string literal. */
const literal = (s: string) => `'${s.replaceAll("'", "''")}'`;

/**
 * The columns a reap changes, as `jsonb_build_object('<configured name>', <alias>.<column>, …)`:
 * the before and after images of an audit entry (to_jsonb of each value).
 */
function imageSql(cfg: ExecutionsConfig, alias: string): string {
  const cols = reapImage(cfg).columns as string[];
  return `jsonb_build_object(${cols.map((c) => `${literal(c)}, ${alias}.${quoteIdent(c)}`).join(', ')})`;
}

/** The same values as a JSON array in reapImage's column order (a batch journal line's image: a fifth of the server's time of an object). */
function imageArraySql(cfg: ExecutionsConfig, alias: string): string {
  return `json_build_array(${(reapImage(cfg).columns as string[]).map((c) => `${alias}.${quoteIdent(c)}`).join(', ')})`;
}

export interface ReapStatementOptions {
  /** Return each changed row's before and after images (jsonb) beside its id and old status. */
  images?: boolean;
  /**
   * The audit table (qualified): the statement inserts each changed row's audit entry itself
   * (a CTE), exactly as writeAudit writes it. Params $6–$10: see reapAuditParams.
   */
  auditTable?: string | null;
  /**
   * The audit table's resource_id and metadata types (format_type, no typmod), read from the
   * catalog: the values go in with an explicit cast to each (the type's input function, as
   * jsonb_populate_record converts them, and each column's own length check on assignment).
   * Absent: through jsonb_populate_record, ~12 µs a row more on the server.
   */
  auditTypes?: { resourceId: string; metadata: string } | null;
  /**
   * No audit table: the statement also builds the batch's journal line (one more row, id NULL,
   * whose `journal` column holds it): a batch line (local-state.ts BatchLine) whose rows expand
   * to exactly the lines the engine would write for the entries. Params $6 keys, $7 ages, $8 the
   * line's text up to its rows: see reapJournalParams.
   */
  journal?: boolean;
}

/**
 * A reap batch's SQL: the SET and the compare-and-set recheck (only rows still in a stuck status
 * and still older than the threshold, re-evaluated on the newest row version), and the two
 * one-statement forms built from them:
 *   - `skipLocked` (every supported major): the rows whose recheck holds are locked FOR UPDATE
 *     SKIP LOCKED (the lock step re-evaluates the recheck on the newest row version) and changed
 *     by the same statement; a row a live worker holds is skipped, never waited on. The status it
 *     replaced is the locked row's.
 *   - `cas` (PostgreSQL 18: RETURNING old.*): the compare-and-set alone, which waits (bounded, see
 *     casThenClassify) on a held row.
 * Rows are found by key (= ANY of the keys, an index scan): joined to a CTE instead, the planner
 * hashes it against a scan of the whole table, once per batch (50 ms at 100k rows). With an audit
 * table the statement also inserts the audit rows (a CTE reading the changed rows), so a batch is
 * one statement either way. `recheckSql` ($1 keys, $2 statuses, $3 seconds) tells, for the rows a
 * batch did not change, which still match. Exported for bench/reap-sql-alone.mjs, which times
 * these very statements without opsctl around them.
 * $1 keys, $2 the failed status, $3 the reason template ({status} filled in by the server),
 * $4 the stuck statuses, $5 the threshold in seconds: see reapParams.
 */
export function reapStatements(cfg: ExecutionsConfig, o: ReapStatementOptions = {}): { set: string; recheck: string; cas: string; skipLocked: string; recheckSql: string } {
  const n = names(cfg);
  const set = `${n.status} = $2, ${n.error} = replace($3::text, '{status}', t.${n.status}::text),
                      ${n.updatedAt} = now()${n.transitionedAt ? `, ${n.transitionedAt} = now()` : ''}`;
  const recheckOf = (statuses: string, secs: string) => `t.${n.status} = ANY(${statuses}::text[]) AND t.${n.updatedAt} < now() - make_interval(secs => ${secs}::float8)`;
  const recheck = recheckOf('$4', '$5');
  const images = Boolean(o.images || o.auditTable);
  // The audit rows: the fields writeAudit sends, through the same jsonb_populate_record(set)
  // (each cast to the table's own column types), with the same metadata keys.
  const direct = o.auditTypes;
  const metadataSql = `$10::jsonb || jsonb_build_object('execution_id', upd.id, 'from_status', upd.status, 'age_seconds', p.age, 'before', upd.before, 'after', upd.after,
                                                 'image', ($10::jsonb -> 'image') || jsonb_build_object('id', upd.id))`;
  const audit = o.auditTable && direct
    ? `, audit AS (
       INSERT INTO ${o.auditTable} (actor, kind, resource_type, resource_id, summary, metadata, team_id, created_at)
       SELECT $8::jsonb ->> 'actor', $8::jsonb ->> 'kind', $8::jsonb ->> 'resource_type', upd.id::${direct.resourceId}, $9::jsonb ->> upd.status,
              (${metadataSql})::${direct.metadata}, NULL, now()
         FROM upd JOIN unnest($6::text[], $7::bigint[]) AS p(id, age) ON p.id = upd.id
     )`
    : o.auditTable
    ? `, audit AS (
       INSERT INTO ${o.auditTable} (actor, kind, resource_type, resource_id, summary, metadata, team_id, created_at)
       SELECT e.actor, e.kind, e.resource_type, e.resource_id, e.summary, e.metadata, e.team_id, now()
         FROM upd JOIN unnest($6::text[], $7::bigint[]) AS p(id, age) ON p.id = upd.id,
              jsonb_populate_record(NULL::${o.auditTable}, $8::jsonb || jsonb_build_object(
                'resource_id', upd.id, 'summary', $9::jsonb -> upd.status,
                'metadata', ${metadataSql})) AS e
     )`
    : '';
  // The batch's journal line: $8 its text up to the rows, then one array a row (see BatchLine:
  // [key, status it replaced, before, after, age]). Built as one jsonb object a row (the line the
  // engine writes) it cost the server ~23 µs a row; as arrays a few µs.
  const journal = !audit && o.journal
    ? ` SELECT id, status, NULL::text AS journal FROM upd
       UNION ALL
       SELECT NULL, NULL, $8::text || string_agg(json_build_array(upd.id, upd.status, upd.before, upd.after, p.age)::text, ',') || ']}'
         FROM upd JOIN unnest($6::text[], $7::bigint[]) AS p(id, age) ON p.id = upd.id`
    : '';
  const image = (alias: string) => (journal ? imageArraySql(cfg, alias) : imageSql(cfg, alias));
  const wrap = (upd: string) => (audit ? `WITH upd AS (${upd})${audit} SELECT id, status FROM upd` : journal ? `WITH upd AS (${upd})${journal}` : upd);
  const cas = `UPDATE ${n.table} t SET ${set} WHERE t.${n.key} = ANY($1) AND ${recheck}
    RETURNING t.${n.key}::text AS id, old.${n.status}::text AS status${images ? `, ${image('old')} AS before, ${image('new')} AS after` : ''}`;
  const lockedCols = [n.status, n.error, n.updatedAt, ...(n.transitionedAt ? [n.transitionedAt] : [])];
  const skipUpd = `UPDATE ${n.table} t SET ${set}
      FROM locked l
     WHERE t.${n.key} = ANY(ARRAY(SELECT l2.k FROM locked l2)) AND t.${n.key} = l.k
    RETURNING t.${n.key}::text AS id, l.${n.status}::text AS status${images ? `, ${image('l')} AS before, ${image('t')} AS after` : ''}`;
  // The rows by key (the primary key's index), the recheck a filter on them: written as is, the
  // planner scanned the whole stuck range by the updated_at index for every batch (10,600 heap
  // pages and 91,500 rows filtered out for an 8,500-row batch at 100k of 1M rows).
  // `+ interval '0'` changes no value and keeps that index out.
  const lockRecheck = `t.${n.status} = ANY($4::text[]) AND t.${n.updatedAt} + interval '0' < now() - make_interval(secs => $5::float8)`;
  const skipLocked = `WITH locked AS MATERIALIZED (
       SELECT t.${n.key} AS k, ${lockedCols.map((c) => `t.${c}`).join(', ')} FROM ${n.table} t
        WHERE t.${n.key} = ANY($1) AND ${lockRecheck} FOR UPDATE SKIP LOCKED
     ), ${audit ? `upd AS (${skipUpd})${audit} SELECT id, status FROM upd` : journal ? `upd AS (${skipUpd})${journal}` : `upd AS (${skipUpd}) SELECT * FROM upd`}`;
  const recheckSql = `SELECT t.${n.key}::text AS id, t.${n.status}::text AS status, (${recheckOf('$2', '$3')}) AS eligible FROM ${n.table} t WHERE t.${n.key} = ANY($1)`;
  return { set, recheck, cas: wrap(cas), skipLocked, recheckSql };
}

/** The values of reapStatements' $1–$5 for a batch of keys. */
export function reapParams(cfg: ExecutionsConfig, ids: string[], reasonTemplate: string, q: Pick<StuckQuery, 'statuses' | 'thresholdMs'>): unknown[] {
  return [textArrayParam(ids), cfg.failedStatus, reasonTemplate, q.statuses, q.thresholdMs / 1000];
}

/** The audit entry's constant parts, as reapStatements' $8–$10 take them (JSON text). */
export interface ReapAuditConstants {
  /** $8: the row's fields that are the same for every entry (actor, kind, resource_type, team_id). */
  row: string;
  /** $9: the summary by the status the row had. */
  summaries: string;
  /** $10: metadata keys the same for every entry (to_status, threshold, reason, runId). */
  metadata: string;
}

/**
 * reapStatements' $6–$8 when the statement builds the batch's journal line: the keys, their
 * ages, and the line's text up to its rows (BatchLine: what is the same for every row, with
 * `each` saying where a row holds execution_id, from_status and age_seconds).
 */
export function reapJournalParams(batch: Array<{ id: string; ageSeconds: number }>, ids: string[], head: string): unknown[] {
  return [textArrayParam(ids), agesParam(batch), head];
}

/** The planned ages of a batch's rows, in its order, as a bigint[] literal. */
function agesParam(batch: Array<{ ageSeconds: number }>): string {
  const ages = new Array<number>(batch.length);
  for (let i = 0; i < batch.length; i++) ages[i] = (batch[i] as { ageSeconds: number }).ageSeconds;
  return `{${ages.join(',')}}`;
}

/** The text of a reap batch's journal line up to its rows (BatchLine), for reapJournalParams. */
export function reapJournalHead(k: Pick<ReapAuditConstants, 'summaries' | 'metadata'>, line: { at: string; actor: string; kind: string; resourceType: string; target: unknown }): string {
  const { target, ...rest } = line;
  const head: BatchLineHead = { ...rest, ...(target ? { target: target as JournalTarget } : {}), summaries: JSON.parse(k.summaries), metadata: JSON.parse(k.metadata), each: { execution_id: 0, from_status: 1, age_seconds: 4 } };
  return `${JSON.stringify(head).slice(0, -1)},"rows":[`;
}

/** The values of reapStatements' $6–$10 for a batch (with an audit table). */
export function reapAuditParams(batch: Array<{ id: string; ageSeconds: number }>, ids: string[], k: ReapAuditConstants): unknown[] {
  return [textArrayParam(ids), agesParam(batch), k.row, k.summaries, k.metadata];
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
  /**
   * With an audit table: false has the engine write the audit entries (writeAudit, in a
   * transaction around the batch) instead of the batch's own statement. The rows are the same
   * either way (a test compares them); default true.
   */
  auditInStatement?: boolean;
  /**
   * With no audit table: false has the engine build the journal lines from the entries the
   * batch returns instead of the server building them (Remedy.journalsItself). The lines are
   * the same either way (a test compares them); default true.
   */
  journalInStatement?: boolean;
}

/** What a reap batch's statement returns for a row it changed. */
interface ReapChange {
  id: string;
  /** The status it replaced. */
  status: string;
  /** The changed columns before and after (with an audit table). */
  before?: Record<string, unknown>;
  after?: Record<string, unknown>;
}

/** A row of a statement that builds the journal: a change, or (id null) the batch's journal line. */
type ReapRow = ReapChange & { journal?: string | null };

/** Reap: move stuck rows to the failed status with a compare-and-set that re-checks status and age. */
export function reapRemedy(cfg: ExecutionsConfig, opts: ReapOptions): Remedy<PlannedReap> {
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
  const auditTable = opts.audit.table ? qualifiedName(opts.audit.table, opts.audit.schema) : null;
  const auditsItself = Boolean(auditTable && opts.auditInStatement !== false);
  const journalsItself = !auditTable && opts.journalInStatement !== false;
  // Built on the first batch, with what the server says (its version; the audit table's types).
  let statements: Promise<{ major: number; sql: ReturnType<typeof reapStatements>; journaled: ReturnType<typeof reapStatements> | null }> | undefined;
  const prepare = (tx: Database) =>
    (statements ??= tx
      .queryRaw<{ v: number; rid: string | null; md: string | null }>(
        `SELECT current_setting('server_version_num')::int AS v,
                (SELECT format_type(a.atttypid, NULL) FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attname = 'resource_id' AND a.attnum > 0 AND NOT a.attisdropped) AS rid,
                (SELECT format_type(a.atttypid, NULL) FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attname = 'metadata' AND a.attnum > 0 AND NOT a.attisdropped) AS md`,
        [auditsItself ? auditTable : null],
      )
      .then(([r]) => ({
        major: r?.v ?? 0,
        sql: reapStatements(cfg, {
          // Always: the entry goes to the audit table or, without one, the journal (runs, revert).
          images: true,
          auditTable: auditsItself ? auditTable : null,
          // Types known (the table exists): cast to them; otherwise jsonb_populate_record says what is wrong, as writeAudit's would.
          auditTypes: r?.rid && r?.md ? { resourceId: r.rid, metadata: r.md } : null,
        }),
        journaled: journalsItself ? reapStatements(cfg, { images: true, journal: true }) : null,
      })));
  const params = (ids: string[]) => reapParams(cfg, ids, template, opts);
  // The audit entry's parts that are the same for every row (as writeAudit's entry has them), by run.
  const auditConstants = new Map<string, ReapAuditConstants>();
  const constantsFor = (runId: string | undefined, actor: string): ReapAuditConstants => {
    const key = `${runId ?? ''}\n${actor}`;
    let k = auditConstants.get(key);
    if (!k) {
      const summaries: Record<string, string> = {};
      for (const st of opts.statuses) summaries[st] = reasonFor(st);
      k = {
        row: JSON.stringify({ actor, kind: 'execution.reaped', resource_type: cfg.table, team_id: null }),
        summaries: JSON.stringify(summaries),
        // `image` as the engine records it (remediation.ts `recorded`); the statement adds the row's id to it.
        metadata: JSON.stringify({ to_status: cfg.failedStatus, threshold, reason: opts.reason ?? null, ...(runId ? { runId } : {}), image: imageRef(reapImage(cfg)) }),
      };
      auditConstants.set(key, k);
    }
    return k;
  };
  return {
    action: 'reap',
    table: cfg.table,
    schema: cfg.schema,
    labels: { applied: 'reaped', lost: 'race-lost' },
    audit: { audit: opts.audit, actor: opts.actor },
    // The compare-and-set is one statement (whichever way, see applyBatch; the others only read
    // or set the session's lock_timeout), and with an audit table it inserts the audit rows too.
    oneStatement: true,
    auditsItself,
    journalsItself,
    image: reapImage(cfg),
    // Its before/after come from its own statement (the locked rows, or RETURNING's old.*, and RETURNING).
    suppliesImages: true,
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
    async applyBatch(tx, batch, context) {
      const { major, sql, journaled } = await prepare(tx);
      // The server builds the journal lines when the engine asks for them (journalsItself).
      const journal = journaled && context?.journal ? context.journal : null;
      const { cas: casSql, skipLocked: skipLockedSql, recheckSql } = journal && journaled ? journaled : sql;
      const actor = context?.actor ?? opts.actor;
      let head: string | undefined;
      const withAudit = auditsItself
        ? (ids: string[], b: PlannedReap[]) => [...params(ids), ...reapAuditParams(b, ids, constantsFor(context?.runId, actor))]
        : journal
        ? (ids: string[], b: PlannedReap[]) => [...params(ids), ...reapJournalParams(b, ids, (head ??= reapJournalHead(constantsFor(context?.runId, actor), { at: journal.at, actor, kind: 'execution.reaped', resourceType: cfg.table, target: journal.target })))]
        : params;
      const changes = (rows: ReapRow[]) => {
        const out = new Map<string, ReapChange>();
        for (const r of rows) {
          if (r.id !== null) out.set(r.id, r);
          else if (journal && r.journal) journal.text = journal.text ? `${journal.text}\n${r.journal}` : r.journal;
        }
        return out;
      };
      const words = {
        // Every applied row is recorded (the audit table, else the journal) with its images;
        // written by the statement itself: no entry built here.
        applied: (b: PlannedReap, c: ReapChange) => ({
          audit: !auditsItself && !journal ? {
            kind: 'execution.reaped',
            resourceType: cfg.table,
            resourceId: b.id,
            summary: reasonFor(c.status),
            metadata: { execution_id: b.id, from_status: c.status, to_status: cfg.failedStatus, threshold, age_seconds: b.ageSeconds, reason: opts.reason ?? null },
            before: c.before ?? null,
            after: c.after ?? null,
          } : undefined,
        }),
        lost: (_b: PlannedReap, status: string) => `changed since the plan (now ${status}): the worker wins`,
        skipped: 'locked by another transaction; left alone',
        gone: 'row no longer exists',
      };
      const skipLocked: SkipLockedCas<PlannedReap, string, ReapChange> = {
        ...words,
        // One statement: lock what can be locked without waiting among the rows that still match,
        // and compare-and-set them (with an audit table, their audit rows inserted by it too).
        casSkipLocked: async (t, ids, b) => changes(await t.queryRaw<ReapRow & Record<string, unknown>>(skipLockedSql, withAudit(ids, b))),
        async recheck(t, ids) {
          const rows = await t.queryRaw<{ id: string; status: string; eligible: boolean }>(recheckSql, [textArrayParam(ids), opts.statuses, opts.thresholdMs / 1000]);
          return new Map(rows.map((r) => [r.id, { row: r.status, eligible: r.eligible }]));
        },
      };
      // CAS-first needs RETURNING old.* (server 18 or later) and the batch to be its own
      // statement (no BEGIN/COMMIT: see Remedy.oneStatement, auditsItself).
      const casFirst = !auditTable || auditsItself;
      if (casFirst && major >= 180000) {
        const guard: CasFirst<PlannedReap, string, ReapChange> = {
          ...words,
          // The compare-and-set alone (CAS-first, see casThenClassify): the status it replaced
          // is RETURNING's old.* (PostgreSQL 18).
          cas: async (t, ids, b) => changes(await t.queryRaw<ReapRow & Record<string, unknown>>(casSql, withAudit(ids, b))),
          async current(t, ids) {
            const rows = await t.queryRaw<{ id: string; status: string }>(recheckSql, [textArrayParam(ids), opts.statuses, opts.thresholdMs / 1000]);
            return new Map(rows.map((r) => [r.id, r.status]));
          },
          lockTimeoutMs: opts.casLockTimeoutMs,
          fallback: (t, b) => skipLockedCasThenClassify(t, b, skipLocked),
        };
        return casThenClassify(tx, batch, guard);
      }
      return skipLockedCasThenClassify(tx, batch, skipLocked);
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
