import type { Database } from '../database/database.js';
import { dependencyError } from '../errors.js';
import { qualifiedName, displayName } from '../database/identifiers.js';

/** First key of opsctl's two-key advisory locks ("opsc"): keeps us apart from the app's own locks. */
export const OPSCTL_LOCK_CLASS = 0x6f707363;

export interface HeldLock {
  release(): Promise<void>;
}

/**
 * A session advisory lock keyed by the table's oid, so two opsctl runs never remediate the
 * same table at once (whatever schema path or spelling they used to name it).
 */
export async function acquireTableLock(
  db: Database,
  table: string,
  schema: string | null,
  opts: { wait: boolean },
): Promise<HeldLock> {
  const rows = await db.query<{ oid: string }>('SELECT to_regclass($1)::oid::bigint AS oid', [qualifiedName(table, schema)]);
  const oid = Number(rows[0]?.oid);
  if (!Number.isFinite(oid) || oid === 0) throw dependencyError(`table ${displayName(table, schema)} does not exist.`);
  const key2 = oid > 0x7fffffff ? oid - 0x100000000 : oid;
  if (opts.wait) {
    // Waiting is explicit: neither lock_timeout nor statement_timeout may cut it short.
    await db.query("SELECT set_config('lock_timeout', '0', false), set_config('statement_timeout', '0', false)");
    await db.query('SELECT pg_advisory_lock($1::int, $2::int)', [OPSCTL_LOCK_CLASS, key2]);
    await db.query('RESET lock_timeout; RESET statement_timeout');
  } else {
    const got = await db.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::int, $2::int) AS ok', [OPSCTL_LOCK_CLASS, key2]);
    if (!got[0]?.ok) {
      const holder = await db.query<{ pid: number; application_name: string; client_addr: string | null; backend_start: Date }>(
        `SELECT a.pid, a.application_name, a.client_addr::text AS client_addr, a.backend_start
           FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid AND l.objsubid = 2
          LIMIT 1`,
        [OPSCTL_LOCK_CLASS, oid],
      );
      const h = holder[0];
      const who = h
        ? ` (backend pid ${h.pid}, application_name ${h.application_name || '-'}${h.client_addr ? `, from ${h.client_addr}` : ''}, connected ${h.backend_start.toISOString()})`
        : '';
      throw dependencyError(
        `another opsctl run is already remediating ${displayName(table, schema)}${who}; re-run later, or pass --wait to wait for it.`,
      );
    }
  }
  return {
    release: async () => {
      await db.query('SELECT pg_advisory_unlock($1::int, $2::int)', [OPSCTL_LOCK_CLASS, key2]).catch(() => {});
    },
  };
}

/**
 * A session advisory lock keyed by a name (not a table), e.g. an AWS account and region: keeps
 * opsctl runs on different hosts that share this database apart.
 */
export async function acquireKeyLock(db: Database, key: string, what: string, opts: { wait: boolean }): Promise<HeldLock> {
  const params = [OPSCTL_LOCK_CLASS, `opsctl:${key}`];
  if (opts.wait) {
    await db.query("SELECT set_config('lock_timeout', '0', false), set_config('statement_timeout', '0', false)");
    await db.query('SELECT pg_advisory_lock($1::int, hashtext($2))', params);
    await db.query('RESET lock_timeout; RESET statement_timeout');
  } else {
    const got = await db.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::int, hashtext($2)) AS ok', params);
    if (!got[0]?.ok) throw dependencyError(`another opsctl run is already working on ${what} (advisory lock held in the database); re-run later, or pass --wait to wait for it.`);
  }
  return {
    release: async () => {
      await db.query('SELECT pg_advisory_unlock($1::int, hashtext($2))', params).catch(() => {});
    },
  };
}
