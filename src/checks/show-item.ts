import type { Database } from '../database/database.js';
import type { Config, ExecutionsConfig, PropagationsConfig } from '../config/config.js';
import { displayName, qualifiedName, quoteIdent } from '../database/identifiers.js';
import { ExitCode, OpsctlError, usageError } from '../errors.js';
import { propagationNames } from './propagations-table.js';
import { errorClass } from './error-classes.js';
import type { ResolvedQueue } from './jobs-presets.js';
import type { JournalTarget } from '../engine/local-state.js';

/**
 * One item whole (`… show ID`): its row as the database has it (row_to_json) and its audit
 * history. Read-only: every query runs inside the caller's db.readOnly.
 */

/** One audit row of an item, newest first. */
export interface AuditRecord {
  createdAt: string | null;
  kind: string;
  actor: string | null;
  resourceType: string;
  resourceId: string | null;
  summary: string;
  metadata: unknown;
  /** Where the change was made (local-state.ts JournalTarget); lines written before it have none. */
  target?: unknown;
}

/** At most this many audit rows are shown per item, the newest. */
export const AUDIT_SHOWN = 100;

const iso = (v: unknown): string | null => (v instanceof Date ? v.toISOString() : v === null || v === undefined ? null : String(v));

/**
 * The row whose `key` equals the id, compared in the column's own type: the parameter takes
 * the column's type (an index on the key is used). An id that type does not take (not a uuid
 * for a uuid key, not a number for a bigint one) is a usage error, exit 2.
 */
async function rowByKey<R extends Record<string, unknown>>(ro: Database, sql: string, id: string, what: string): Promise<R | undefined> {
  try {
    return (await ro.queryRaw<R>(sql, [id]))[0];
  } catch (e) {
    const err = e as { code?: string; message?: string };
    // Class 22, data exception: the id could not be read as the key's type (22P02 invalid
    // input, 22003 out of range, 22007/22008 datetime, 22021 bad bytes).
    if (typeof err.code === 'string' && err.code.startsWith('22')) {
      const why = (err.message ?? '').replace(/: ".*"$/s, '');
      throw usageError(`"${id}" is not a valid key of ${what}: ${why}.`);
    }
    throw ro.translate(e);
  }
}

export const notFound = (noun: string, id: string, where: string) => new OpsctlError(`no ${noun} with id ${id} in ${where}.`, ExitCode.FINDINGS);

export interface ExecutionItem {
  table: string;
  id: string;
  status: string | null;
  error: string | null;
  updatedAt: string | null;
  /** now() - updatedAt on the database clock. */
  ageSeconds: number | null;
  /** Every column, as row_to_json has it. */
  row: Record<string, unknown>;
}

export async function showExecution(ro: Database, cfg: ExecutionsConfig, id: string): Promise<ExecutionItem> {
  const where = displayName(cfg.table, cfg.schema);
  const [key, status, error, updatedAt] = [cfg.key, cfg.status, cfg.error, cfg.updatedAt].map(quoteIdent);
  const r = await rowByKey<{ key: string; row: Record<string, unknown>; status: string | null; error: string | null; updated_at: unknown; age_seconds: number | null }>(
    ro,
    `SELECT t.${key}::text AS key, row_to_json(t) AS row, t.${status}::text AS status, t.${error}::text AS error, t.${updatedAt} AS updated_at,
            extract(epoch FROM now() - t.${updatedAt})::float8 AS age_seconds
       FROM ${qualifiedName(cfg.table, cfg.schema)} t WHERE t.${key} = $1`,
    id,
    `${where}.${cfg.key}`,
  );
  if (!r) throw notFound('execution', id, where);
  // The key as the database writes it (a uuid given in capitals, lower case): the audit rows carry that.
  return { table: where, id: r.key, status: r.status, error: r.error, updatedAt: iso(r.updated_at), ageSeconds: r.age_seconds, row: r.row };
}

export interface PropagationItem {
  table: string;
  id: string;
  state: 'pending' | 'applied' | 'dead-lettered';
  errorClass: string;
  lastError: string | null;
  row: Record<string, unknown>;
}

export async function showPropagation(ro: Database, cfg: PropagationsConfig, id: string): Promise<PropagationItem> {
  const where = displayName(cfg.table, cfg.schema);
  const n = propagationNames(cfg);
  const r = await rowByKey<{ key: string; row: Record<string, unknown>; state: PropagationItem['state']; last_error: string | null }>(
    ro,
    `SELECT t.${n.id}::text AS key, row_to_json(t) AS row,
            CASE WHEN t.${n.failedAt} IS NOT NULL THEN 'dead-lettered' WHEN t.${n.appliedAt} IS NOT NULL THEN 'applied' ELSE 'pending' END AS state,
            t.${n.lastError}::text AS last_error
       FROM ${n.table} t WHERE t.${n.id} = $1`,
    id,
    `${where}.${cfg.columns.id}`,
  );
  if (!r) throw notFound('propagation', id, where);
  return { table: where, id: r.key, state: r.state, errorClass: errorClass(r.last_error), lastError: r.last_error, row: r.row };
}

export interface JobItem {
  queue: string;
  table: string;
  id: string;
  row: Record<string, unknown>;
}

export async function showJob(ro: Database, q: ResolvedQueue, id: string): Promise<JobItem> {
  const { preset, schema } = q;
  if (!preset.idPattern.test(id)) throw usageError(`job id "${id}" is not a valid ${preset.idType} (a ${preset.label} job id).`);
  const r = await rowByKey<{ key: string; row: Record<string, unknown> }>(ro, `SELECT j.id::text AS key, row_to_json(j) AS row FROM ${qualifiedName(preset.table, schema)} j WHERE j.id = $1`, id, `${q.where}.id`);
  if (!r) throw notFound(`${preset.label} job`, id, q.where);
  return { queue: preset.queue, table: q.where, id: r.key, row: r.row };
}

/**
 * The audit rows of one item (audit.table), newest first: those whose resource_id is the id,
 * and those written with resource_id NULL and the id in metadata.resource_id (an id the column
 * could not hold, see writeAudit). `resourceType` is what the remedy writes (the table's name,
 * or schedule_group). Undefined when no audit table is configured.
 */
export async function auditHistory(ro: Database, audit: Config['audit'], resourceType: string, id: string): Promise<AuditRecord[] | undefined> {
  if (!audit.table) return undefined;
  await ro.assertColumns('audit', audit.table, audit.schema, {});
  const table = qualifiedName(audit.table, audit.schema);
  const rows = await ro.query<{ created_at: unknown; kind: string; actor: string | null; resource_type: string; resource_id: string | null; summary: string; metadata: unknown }>(
    // Two branches, not one OR: an index on resource_id (a text column) serves the first.
    `SELECT * FROM (
       SELECT a.created_at, a.kind::text AS kind, a.actor::text AS actor, a.resource_type::text AS resource_type, a.resource_id::text AS resource_id,
              a.summary::text AS summary, a.metadata
         FROM ${table} a WHERE a.resource_type = $1 AND a.resource_id::text = $2
       UNION ALL
       SELECT a.created_at, a.kind::text, a.actor::text, a.resource_type::text, NULL::text, a.summary::text, a.metadata
         FROM ${table} a WHERE a.resource_type = $1 AND a.resource_id IS NULL AND a.metadata->>'resource_id' = $2
     ) h
      ORDER BY h.created_at DESC
      LIMIT ${AUDIT_SHOWN}`,
    [resourceType, id],
  );
  return rows.map((r) => ({
    createdAt: iso(r.created_at),
    kind: r.kind,
    actor: r.actor,
    resourceType: r.resource_type,
    resourceId: r.resource_id ?? id,
    summary: r.summary,
    metadata: r.metadata,
  }));
}

/** One line of the local journal ($OPSCTL_STATE_DIR/audit.jsonl), as openJournal writes it. */
export interface JournalRecord {
  at: string;
  actor: string | null;
  kind: string;
  resourceType: string;
  resourceId: string;
  summary: string;
  metadata: unknown;
}

/**
 * The journal lines of one resource, newest first; none when there is no journal yet. Lines that
 * do not parse are skipped. `target`: only lines made there (a database by system identifier and
 * name: another database's row with the same key is another row).
 */
export async function journalHistory(path: string, resourceType: string, id: string, target?: JournalTarget | null): Promise<JournalRecord[]> {
  const { readJournalLines } = await import('../engine/local-state.js');
  const { sameTarget } = await import('../engine/runs.js');
  const lines = await readJournalLines(path, {
    contains: id,
    keep: (j): j is JournalRecord => j.resourceType === resourceType && j.resourceId === id && (target === undefined || sameTarget(j.target, target)),
  });
  return lines.reverse();
}
