import type { Database } from '../database/database.js';
import type { WorkersConfig } from '../config/config.js';
import { OPSCTL_LOCK_CLASS } from '../engine/advisory-lock.js';
import { qualifiedName, quoteIdent } from '../database/identifiers.js';
import { staleHeartbeat, workerNames } from './dead-workers.js';

/**
 * Locks nobody will release: rows of a table-based lock (workers.locks) that expired or whose
 * holder is a dead worker, and PostgreSQL advisory locks held by sessions idle past a
 * threshold. Read-only: opsctl lists them and never releases them. An advisory lock can only
 * be released by the session holding it, so the only remedy is pg_terminate_backend, which
 * also rolls back whatever that session has open: a judgement for a human, not a tool.
 */

export interface ExpiredLockRow {
  name: string;
  holder: string | null;
  acquiredAt: string | null;
  expiresAt: string | null;
  /** How long ago it expired (null: no expiry column, or not expired). */
  expiredSeconds: number | null;
  /** Why it is listed: "expired", "holder-dead" or both. */
  reasons: string[];
}

const ISO = (col: string) => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

export async function assertLocksTable(db: Database, cfg: WorkersConfig): Promise<void> {
  const l = cfg.locks;
  await db.assertColumns('workers.locks', l.table, l.schema, { name: l.name, holder: l.holder, expiresAt: l.expiresAt, acquiredAt: l.acquiredAt });
}

/** True when the worker table exists, so a lock's holder can be judged by its heartbeat. */
export async function workerTableExists(db: Database, cfg: WorkersConfig): Promise<boolean> {
  const r = await db.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [qualifiedName(cfg.table, cfg.schema)]);
  return Boolean(r[0]?.ok);
}

/**
 * Lock rows past their expiry (database clock) or held by a dead worker (when the holder column
 * and the worker table exist), longest expired first. `limit` 0 = all.
 */
export async function findExpiredLockRows(db: Database, cfg: WorkersConfig, opts: { staleMs: number; judgeHolders: boolean; limit: number }): Promise<ExpiredLockRow[]> {
  const l = cfg.locks;
  const n = workerNames(cfg);
  const name = quoteIdent(l.name);
  const holder = l.holder ? quoteIdent(l.holder) : null;
  const expires = l.expiresAt ? quoteIdent(l.expiresAt) : null;
  const acquired = l.acquiredAt ? quoteIdent(l.acquiredAt) : null;
  const judge = opts.judgeHolders && holder !== null;
  const expired = expires ? `coalesce(k.${expires} < now(), false)` : 'false';
  const holderDead = judge ? `coalesce(${staleHeartbeat(n, '$1')}, false)` : 'false';
  const rows = await db.query<{ name: string; holder: string | null; acquired_at: string | null; expires_at: string | null; expired_seconds: number | null; expired: boolean; holder_dead: boolean }>(
    `SELECT k.${name}::text AS name, ${holder ? `k.${holder}::text` : 'NULL::text'} AS holder,
            ${acquired ? ISO(`k.${acquired}`) : 'NULL::text'} AS acquired_at, ${expires ? ISO(`k.${expires}`) : 'NULL::text'} AS expires_at,
            ${expires ? `CASE WHEN ${expired} THEN extract(epoch FROM now() - k.${expires})::float8 END` : 'NULL::float8'} AS expired_seconds,
            ${expired} AS expired, ${holderDead} AS holder_dead
       FROM ${qualifiedName(l.table, l.schema)} k
       ${judge ? `LEFT JOIN ${n.workers} w ON w.${n.id}::text = k.${holder}::text` : ''}
      WHERE ${expired} OR ${holderDead}
      ORDER BY ${expires ? `k.${expires} NULLS LAST, ` : ''}k.${name}${opts.limit > 0 ? ` LIMIT ${Math.floor(opts.limit)}` : ''}`,
    judge ? [opts.staleMs / 1000] : [],
  );
  return rows.map((r) => ({
    name: r.name,
    holder: r.holder,
    acquiredAt: r.acquired_at,
    expiresAt: r.expires_at,
    expiredSeconds: r.expired_seconds === null ? null : Math.floor(r.expired_seconds),
    reasons: [...(r.expired ? ['expired'] : []), ...(r.holder_dead ? ['holder-dead'] : [])],
  }));
}

export interface IdleAdvisoryLock {
  pid: number;
  /** The key as the application wrote it: one bigint, or "int1,int2" for the two-key form. */
  key: string;
  /** "opsctl <table>" for opsctl's own table locks, else null. */
  owner: string | null;
  mode: string;
  applicationName: string | null;
  clientAddr: string | null;
  user: string | null;
  state: string;
  /** Since the session's last state change: how long it has sat idle. */
  idleSeconds: number;
  /** Since its transaction began (idle in transaction), else null. */
  transactionSeconds: number | null;
  connectedSeconds: number;
}

export interface AdvisoryLockListing {
  locks: IdleAdvisoryLock[];
  /** Advisory locks of this database held by sessions whose activity this role cannot see. */
  notVisible: number;
  /** Advisory locks of this database held by sessions that are active or idle for less than the threshold. */
  busy: number;
}

/**
 * Granted advisory locks of the current database (pg_locks joined to pg_stat_activity) held by
 * sessions idle, or idle in transaction, for longer than `idleMs`, longest idle first. Another
 * role's sessions show a NULL state unless this role has pg_read_all_stats: counted, not guessed.
 */
export async function findIdleAdvisoryLocks(db: Database, idleMs: number, limit: number): Promise<AdvisoryLockListing> {
  const from = `FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
               WHERE l.locktype = 'advisory' AND l.granted AND l.pid <> pg_backend_pid()
                 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`;
  const idle = `a.state IN ('idle', 'idle in transaction', 'idle in transaction (aborted)') AND a.state_change < now() - make_interval(secs => $1::float8)`;
  const rows = await db.query<{
    pid: number;
    key: string;
    owner: string | null;
    mode: string;
    application_name: string | null;
    client_addr: string | null;
    usename: string | null;
    state: string;
    idle_seconds: number;
    xact_seconds: number | null;
    connected_seconds: number;
  }>(
    // objsubid 1: one bigint key split into classid (high half) and objid (low half); 2: two int4 keys.
    `SELECT l.pid, CASE WHEN l.objsubid = 1 THEN ((l.classid::int8 << 32) | l.objid::int8)::text
                        ELSE (l.classid::int8::bit(32)::int4)::text || ',' || (l.objid::int8::bit(32)::int4)::text END AS key,
            CASE WHEN l.objsubid = 2 AND l.classid::int8 = $2::int8 THEN 'opsctl ' || coalesce(to_regclass(l.objid::regclass::text)::text, l.objid::text) END AS owner,
            l.mode, nullif(a.application_name, '') AS application_name, host(a.client_addr) AS client_addr, a.usename::text AS usename, a.state,
            extract(epoch FROM now() - a.state_change)::float8 AS idle_seconds,
            CASE WHEN a.state LIKE 'idle in transaction%' THEN extract(epoch FROM now() - a.xact_start)::float8 END AS xact_seconds,
            extract(epoch FROM now() - a.backend_start)::float8 AS connected_seconds
       ${from} AND ${idle}
      ORDER BY a.state_change, l.pid, key${limit > 0 ? ` LIMIT ${Math.floor(limit)}` : ''}`,
    [idleMs / 1000, OPSCTL_LOCK_CLASS],
  );
  const counts = await db.query<{ not_visible: number; busy: number }>(
    `SELECT count(*) FILTER (WHERE a.state IS NULL)::int AS not_visible, count(*) FILTER (WHERE a.state IS NOT NULL AND NOT (${idle}))::int AS busy ${from}`,
    [idleMs / 1000],
  );
  return {
    locks: rows.map((r) => ({
      pid: r.pid,
      key: r.key,
      owner: r.owner,
      mode: r.mode,
      applicationName: r.application_name,
      clientAddr: r.client_addr,
      user: r.usename,
      state: r.state,
      idleSeconds: Math.floor(r.idle_seconds),
      transactionSeconds: r.xact_seconds === null ? null : Math.floor(r.xact_seconds),
      connectedSeconds: Math.floor(r.connected_seconds),
    })),
    notVisible: counts[0]?.not_visible ?? 0,
    busy: counts[0]?.busy ?? 0,
  };
}
