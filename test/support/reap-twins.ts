import pg from 'pg';
import { freshDatabase } from './db.js';
import { Database } from '../../src/database/database.js';
import { defaultConfig } from '../../src/config/config.js';
import { reapRemedy, type ReapOptions } from '../../src/checks/stuck-executions.js';
import { databaseHost, streamRemediation } from '../../src/engine/remediation.js';

/**
 * Two databases holding the same stuck executions, for tests that run two paths of reap (one
 * on each) and compare what each wrote: fixed ids, statuses, errors and ages, and a BEFORE
 * trigger (after the touch trigger) that pins the new times, so both write the same values.
 */
export type Db = Awaited<ReturnType<typeof freshDatabase>>;

/** Stuck rows in each database (plus one that is not stuck). */
export const ROWS = 40;

/** The key of row i. */
export const id = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;

async function seed(db: Db, base: string) {
  await db.client.query(`
    INSERT INTO purchase_executions (id, status, error, updated_at, created_at, transitioned_at)
    SELECT ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid,
           (ARRAY['approved','running'])[1 + i % 2],
           CASE WHEN i % 3 = 0 THEN 'previous error ' || i END,
           timestamptz '${base}' - interval '1 hour' - make_interval(mins => i),
           timestamptz '${base}' - interval '2 days',
           CASE WHEN i % 4 = 0 THEN timestamptz '2025-06-01 12:00:00.123456+00' + make_interval(secs => i) END
      FROM generate_series(1, ${ROWS}) i;
    INSERT INTO purchase_executions (id, status, updated_at, created_at) VALUES ('00000000-0000-4000-8000-999999999999', 'running', timestamptz '${base}', timestamptz '${base}');
    CREATE FUNCTION pin_times() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN NEW.updated_at := timestamptz '2030-01-01 00:00:00.5+00'; NEW.transitioned_at := timestamptz '2030-01-02 03:04:05+00'; RETURN NEW; END $$;
    CREATE TRIGGER zz_pin_times BEFORE UPDATE ON purchase_executions FOR EACH ROW EXECUTE FUNCTION pin_times();
  `);
}

/** The two databases, seeded at the same instant (now() would differ between them). */
export async function twinDatabases(name: string): Promise<[Db, Db]> {
  const a = await freshDatabase(`${name}_a`);
  const b = await freshDatabase(`${name}_b`);
  const base = new Date().toISOString();
  await seed(a, base);
  await seed(b, base);
  return [a, b];
}

/**
 * A reap --apply of every stuck row through the streamed engine, in batches of 9: row 7 held
 * by another transaction throughout, row 12 finished by its worker after the plan (at the
 * confirm). `sent`: the SQL the reap sent on its session, but for the run's record.
 */
export async function reapTwin(db: Db, options: Pick<ReapOptions, 'audit' | 'auditInStatement' | 'journalInStatement'>, journalPath?: string) {
  const conn = await Database.connect({ settings: { ...defaultConfig().database, url: db.url }, env: {} });
  const sent: string[] = [];
  const queryRaw = conn.queryRaw.bind(conn);
  conn.queryRaw = ((sql: string, params?: unknown[]) => {
    // The run's record (kind opsctl.run, its own transaction after the last batch) is not a batch's.
    if (!JSON.stringify(params ?? []).includes('opsctl.run')) sent.push(sql);
    return queryRaw(sql, params);
  }) as typeof conn.queryRaw;
  const holder = new pg.Client({ connectionString: db.url });
  await holder.connect();
  try {
    await holder.query('BEGIN');
    await holder.query('SELECT 1 FROM purchase_executions WHERE id = $1 FOR UPDATE', [id(7)]);
    const remedy = reapRemedy(defaultConfig().executions, {
      thresholdMs: 600_000,
      statuses: ['approved', 'running'],
      limit: 0,
      reason: "operator's note",
      actor: 'alice',
      casLockTimeoutMs: 20,
      ...options,
    });
    const report = await streamRemediation(databaseHost(conn, remedy.table, remedy.schema), remedy, {
      apply: true,
      max: 0,
      batchSize: 9,
      wait: false,
      ...(journalPath ? { journalPath } : {}),
      confirm: async () => {
        await db.client.query("UPDATE purchase_executions SET status = 'completed' WHERE id = $1", [id(12)]);
        return true;
      },
    });
    const items = [];
    for await (const i of report.items) items.push(i);
    return { remedy, items, summary: report.summary, sent };
  } finally {
    await holder.query('ROLLBACK');
    await holder.end();
    await conn.close();
  }
}
