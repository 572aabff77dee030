import type { Database } from '../database/database.js';
import type { Config, PropagationsConfig } from '../config/config.js';
import type { Remedy } from '../engine/remediation.js';
import type { AuditEntry } from '../engine/audit.js';
import { lockThenClassify, type GuardedBatch } from '../engine/guarded-batch.js';
import { formatDuration } from '../config/durations.js';
import { errorClass } from './error-classes.js';
import { deadLetterColumns, deadLetterWhere, toDeadLetter, type DeadLetter, type DeadLetterFilter, type DeadLetterRow } from './dead-letters.js';
import { bind, propagationNames, type PropagationNames } from './propagations-table.js';

/** Retry and purge of dead letters: the plan, and one batch under its compare-and-set guard. */

export interface PlannedDeadLetter extends DeadLetter {
  refusal?: string | null;
}

interface Common {
  filter: DeadLetterFilter;
  reason?: string;
  actor: string;
  audit: Config['audit'];
}
export interface RetryOptions extends Common {
  includeUnknownKinds: boolean;
}
export interface PurgeOptions extends Common {
  olderThanMs: number;
}

/**
 * Dead letters not yet applied, matching the filter. Refused rows sort last, so the engine's
 * `--max + 1` probe counts the actionable ones and never truncates them behind refusals.
 */
async function planDeadLetters(db: Database, cfg: PropagationsConfig, f: DeadLetterFilter, refuseUnknown: boolean, limit: number): Promise<PlannedDeadLetter[]> {
  const n = propagationNames(cfg);
  const params: unknown[] = [];
  const where = deadLetterWhere(n, f, params);
  const unknown = refuseUnknown && cfg.knownKinds ? `NOT (${n.kind}::text = ANY(${bind(params, cfg.knownKinds)}::text[]))` : 'false';
  const sql = `SELECT ${deadLetterColumns(n)}, ${unknown} AS unknown_kind
       FROM ${n.table} WHERE ${where} AND ${n.appliedAt} IS NULL
      ORDER BY unknown_kind, ${n.failedAt}, ${n.id}`;
  type Row = DeadLetterRow & { unknown_kind: boolean };
  let rows: Row[];
  if (f.errorClass === undefined) rows = await db.query<Row>(`${sql}${limit > 0 ? ` LIMIT ${Math.floor(limit)}` : ''}`, params);
  else {
    // The class is computed in JS, exactly as the listing computes it: the rows stream by
    // (plan runs in a read-only transaction) and only the matching ones are kept, up to the limit.
    rows = [];
    for await (const r of db.stream<Row>(sql, params)) {
      if (errorClass(r.last_error) !== f.errorClass) continue;
      rows.push(r);
      if (limit > 0 && rows.length >= limit) break;
    }
  }
  return rows.map((r) => ({
    ...toDeadLetter(r),
    refusal: r.unknown_kind ? `kind "${r.kind}" is not in propagations.knownKinds (no handler?); pass --include-unknown-kinds to retry it anyway` : null,
  }));
}

interface LockedRow {
  id: string;
  kind: string;
  team_id: string | null;
  attempts: number;
  failed_at: Date | null;
  applied_at: Date | null;
  last_error: string | null;
}

/** Locks the batch's rows without waiting (a row a live worker holds is skipped), then runs the CAS on them. */
function lockAndApply(
  n: PropagationNames,
  cas: (tx: Database, ids: string[]) => Promise<Array<{ id: string }>>,
  keep: (row: LockedRow) => boolean = () => true,
): GuardedBatch<PlannedDeadLetter, LockedRow, true>['lockAndApply'] {
  return async (tx, ids) => {
    const rows = await tx.queryRaw<LockedRow>(
      `SELECT ${n.id}::text AS id, ${n.kind}::text AS kind, ${n.teamId} AS team_id, ${n.attempts}::int AS attempts,
              ${n.failedAt} AS failed_at, ${n.appliedAt} AS applied_at, ${n.lastError}::text AS last_error
         FROM ${n.table} WHERE ${n.id} = ANY($1) FOR UPDATE SKIP LOCKED`,
      [ids],
    );
    const locked = new Map(rows.map((r) => [r.id, r]));
    // A locked row cannot change under us: rows that no longer fit (keep) are left out of the CAS.
    const mine = rows.filter(keep).map((r) => r.id);
    const changed = mine.length ? await cas(tx, mine) : [];
    return { locked, changed: new Map(changed.map((r) => [r.id, true as const])) };
  };
}

const rowWords = (n: PropagationNames) => ({
  existsSql: `SELECT ${n.id}::text AS id FROM ${n.table} WHERE ${n.id} = ANY($1)`,
  skipped: 'locked by another transaction (a worker?); left alone',
  gone: 'row no longer exists',
});

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
const notDeadDetail = (r: LockedRow) =>
  r.applied_at ? `not dead anymore: applied at ${iso(r.applied_at)}` : r.failed_at === null ? 'not dead anymore: pending again (re-driven by someone else)' : 'changed since the plan; left alone';

/**
 * Retry: clears failed_at, resets attempts to 0 and makes the row due now, keeping
 * last_error; the runner picks it up like any pending row. The CAS re-checks that it is
 * still dead and not applied, so a row someone else re-drove (or the runner applied) is left alone.
 */
export function retryRemedy(cfg: PropagationsConfig, opts: RetryOptions): Remedy<PlannedDeadLetter> {
  const n = propagationNames(cfg);
  return {
    action: 'retry',
    table: cfg.table,
    schema: cfg.schema,
    labels: { applied: 'retried', lost: 'not-dead-anymore' },
    audit: { audit: opts.audit, actor: opts.actor },
    image: { table: cfg.table, schema: cfg.schema, key: cfg.columns.id, columns: [cfg.columns.failedAt, cfg.columns.attempts, cfg.columns.nextAttemptAt] },
    plan: (db, limit) => planDeadLetters(db, cfg, opts.filter, !opts.includeUnknownKinds, limit),
    applyBatch: (tx, batch) =>
      lockThenClassify(tx, batch, {
        lockAndApply: lockAndApply(
          n,
          (t, ids) =>
            t.queryRaw<{ id: string }>(
              `UPDATE ${n.table} SET ${n.failedAt} = NULL, ${n.attempts} = 0, ${n.nextAttemptAt} = now()
                WHERE ${n.id} = ANY($1) AND ${n.failedAt} IS NOT NULL AND ${n.appliedAt} IS NULL
            RETURNING ${n.id}::text AS id`,
              [ids],
            ),
          // --error-class: a row re-driven and dead again with another error since the plan is not this outage's.
          (row) => opts.filter.errorClass === undefined || errorClass(row.last_error) === opts.filter.errorClass,
        ),
        ...rowWords(n),
        applied: (_b, _c, row) => ({ audit: retryAudit(cfg, row as LockedRow, opts.reason) }),
        lost: (_b, row) =>
          opts.filter.errorClass !== undefined && row.failed_at && !row.applied_at && errorClass(row.last_error) !== opts.filter.errorClass
            ? `error class changed since the plan (now ${JSON.stringify(errorClass(row.last_error))}); left alone`
            : notDeadDetail(row),
      }),
  };
}

function retryAudit(cfg: PropagationsConfig, row: LockedRow, reason?: string): AuditEntry {
  return {
    kind: 'propagation.operator_retry',
    resourceType: cfg.table,
    resourceId: row.id,
    summary: `operator retry of a dead-lettered ${row.kind} propagation after ${row.attempts} attempt(s)${reason ? `: ${reason}` : ''}`,
    metadata: { propagation_id: row.id, kind: row.kind, team_id: row.team_id, previous_attempts: row.attempts, reason: reason ?? null },
    teamId: cfg.columns.teamId ? row.team_id : null,
  };
}

/**
 * Purge: deletes dead letters older than the threshold. The CAS re-checks dead, old enough
 * and not applied, so a row re-driven (or dead-lettered again recently) since the plan survives.
 */
export function purgeRemedy(cfg: PropagationsConfig, opts: PurgeOptions): Remedy<PlannedDeadLetter> {
  const n = propagationNames(cfg);
  const olderThan = formatDuration(opts.olderThanMs);
  const filter = { ...opts.filter, olderThanMs: opts.olderThanMs };
  return {
    action: 'purge',
    table: cfg.table,
    schema: cfg.schema,
    labels: { applied: 'purged', lost: 'not-dead-anymore' },
    audit: { audit: opts.audit, actor: opts.actor },
    // The whole row a purge deletes: a revert re-inserts it.
    image: { table: cfg.table, schema: cfg.schema, key: cfg.columns.id, columns: 'row' },
    plan: (db, limit) => planDeadLetters(db, cfg, filter, false, limit),
    applyBatch: (tx, batch) =>
      lockThenClassify(tx, batch, {
        lockAndApply: lockAndApply(n, (t, ids) =>
          t.queryRaw<{ id: string }>(
            `DELETE FROM ${n.table}
              WHERE ${n.id} = ANY($1) AND ${n.failedAt} IS NOT NULL AND ${n.appliedAt} IS NULL
                AND ${n.failedAt} < now() - make_interval(secs => $2::float8)
          RETURNING ${n.id}::text AS id`,
            [ids, opts.olderThanMs / 1000],
          ),
        ),
        ...rowWords(n),
        applied: (b, _c, r) => {
          const row = r as LockedRow;
          return {
            audit: {
              kind: 'propagation.operator_purged',
              resourceType: cfg.table,
              resourceId: b.id,
              summary: `operator purge of a ${row.kind} dead letter older than ${olderThan}${opts.reason ? `: ${opts.reason}` : ''}`,
              // The row is gone: the audit row keeps what it was.
              metadata: { propagation_id: b.id, kind: row.kind, team_id: row.team_id, attempts: row.attempts, failed_at: row.failed_at, last_error: row.last_error, older_than: olderThan, reason: opts.reason ?? null },
              teamId: cfg.columns.teamId ? row.team_id : null,
            },
          };
        },
        lost: (_b, r) => (r.failed_at && !r.applied_at ? `dead-lettered again at ${iso(r.failed_at)}, within ${olderThan}; left alone` : notDeadDetail(r)),
      }),
  };
}
