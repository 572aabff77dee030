import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SchedulerEmulator } from '../../src/emulator/scheduler-emulator.js';
import { REFERENCE_SCHEMA_SQL } from '../../src/reference/schema.js';
import { RIVER_SCHEMA_SQL } from '../../src/reference/queues/river.js';
import { Database } from '../../src/database/database.js';
import { defaultConfig } from '../../src/config/config.js';
import { freshDatabase, databaseChecksum } from '../support/db.js';
import { cli } from '../support/cli.js';
import { awsEnv, emulator, owner, sgConfig } from '../support/aws.js';
import { configFile } from '../support/reliability.js';

/**
 * Dry runs write nothing. Three proofs: the checksum of every table is unchanged; a trigger on
 * every table counts every write statement attempted, even one later rolled back (a sequence
 * is not transactional), and the count stays put; and each dry run's queries run in a READ
 * ONLY transaction, checked by the server itself from inside the plan's own query.
 */
let db: Awaited<ReturnType<typeof freshDatabase>>;
let emu: SchedulerEmulator;
let env: NodeJS.ProcessEnv;

/** Commands with --apply, without it; each must plan something (a non-empty plan). */
const DB_DRY_RUNS: Array<[string, string[], (out: any) => number]> = [
  ['reap', ['reap', '--older-than', '10m'], (o) => o.summary.planned],
  ['propagations retry', ['propagations', 'retry', '--all'], (o) => o.summary.planned],
  ['propagations purge', ['propagations', 'purge', '--older-than', '30d'], (o) => o.summary.planned],
  ['jobs rescue', ['jobs', 'rescue'], (o) => o.summary.planned],
  ['jobs retry', ['jobs', 'retry', '--all'], (o) => o.summary.planned],
];

async function writeAttempts(): Promise<string> {
  const r = await db.client.query('SELECT last_value, is_called FROM rel_write_attempts');
  return `${r.rows[0].last_value}:${r.rows[0].is_called}`;
}

beforeAll(async () => {
  db = await freshDatabase('rel_dry', REFERENCE_SCHEMA_SQL + RIVER_SCHEMA_SQL);
  env = { DATABASE_URL: db.url };
  await db.client.query(`
    INSERT INTO purchase_executions (status, updated_at) SELECT (ARRAY['approved','running','completed'])[1 + i % 3], now() - make_interval(mins => 5 * i) FROM generate_series(1, 60) i;
    INSERT INTO pending_propagations (kind, team_id, attempts, last_error, failed_at)
      SELECT 'tier_elevation', gen_random_uuid(), 10, 'upstream 503', now() - make_interval(days => i) FROM generate_series(1, 60) i;
    INSERT INTO pending_propagations (kind, team_id) SELECT 'tier_elevation', gen_random_uuid() FROM generate_series(1, 10);
    INSERT INTO river_job (state, kind, args, attempt, max_attempts, attempted_at) SELECT 'running', 'send_email', '{}', 1, 3, now() - interval '3 hours' FROM generate_series(1, 10);
    INSERT INTO river_job (state, kind, args, attempt, max_attempts, attempted_at, finalized_at)
      SELECT 'discarded', 'import_csv', '{}', 5, 5, now() - interval '2 hours', now() - interval '1 hour' FROM generate_series(1, 10);

    -- Counts every write statement on every table, committed or not.
    CREATE SEQUENCE rel_write_attempts;
    CREATE FUNCTION rel_count_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM nextval('rel_write_attempts'); RETURN NULL; END $$;
    DO $$ DECLARE t text; BEGIN
      FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP
        EXECUTE format('CREATE TRIGGER rel_count_write BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION rel_count_write()', t);
      END LOOP;
    END $$;

    -- The server's own word that a query runs READ ONLY: raises otherwise.
    CREATE FUNCTION rel_assert_read_only() RETURNS boolean LANGUAGE plpgsql STABLE AS $$
    BEGIN
      IF current_setting('transaction_read_only') <> 'on' THEN RAISE EXCEPTION 'rel_assert_read_only: this query ran in a read-write transaction'; END IF;
      RETURN true;
    END $$;
    -- The same tables seen through views that call it: a dry run pointed at them can only
    -- succeed if every query it makes runs in a READ ONLY transaction.
    CREATE SCHEMA ro;
    CREATE VIEW ro.purchase_executions AS SELECT * FROM public.purchase_executions WHERE rel_assert_read_only();
    CREATE VIEW ro.pending_propagations AS SELECT * FROM public.pending_propagations WHERE rel_assert_read_only();
    CREATE VIEW ro.river_job AS SELECT * FROM public.river_job WHERE rel_assert_read_only();
  `);
  emu = await emulator();
});
afterAll(async () => {
  await emu.close();
  await db.drop();
});

describe('dry runs write nothing', () => {
  it('a write inside Database.readOnly is refused by the server with SQLSTATE 25006 (read_only_sql_transaction)', async () => {
    const conn = await Database.connect({ settings: { ...defaultConfig().database, url: db.url }, env: {} });
    try {
      for (const sql of ["UPDATE purchase_executions SET status = 'failed'", 'DELETE FROM pending_propagations', "INSERT INTO audit_log (actor, kind, resource_type, resource_id, summary) VALUES ('a','b','c','d','e')"]) {
        const e = await conn.readOnly((ro) => ro.queryRaw(sql)).then(
          () => null,
          (x) => x,
        );
        expect(e?.code, sql).toBe('25006');
      }
      expect(await conn.readOnly((ro) => ro.query<{ ro: string }>("SELECT current_setting('transaction_read_only') AS ro"))).toEqual([{ ro: 'on' }]);
    } finally {
      await conn.close();
    }
    // The probe itself bites: outside a READ ONLY transaction it raises.
    await expect(db.client.query('SELECT rel_assert_read_only()')).rejects.toThrow(/read-write transaction/);
  });

  it.each(DB_DRY_RUNS)('%s: the dry run plans rows, and leaves every table and the write counter unchanged', async (_name, args, planned) => {
    const cfg = configFile({ audit: { table: 'audit_log' }, jobs: { queue: 'river' } });
    const before = await databaseChecksum(db.client);
    const attempts = await writeAttempts();
    for (const format of ['json', 'table', 'ndjson']) {
      const r = await cli(['--config', cfg, ...args, '-o', format], env);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      if (format === 'json') {
        expect(r.json().mode).toBe('plan');
        expect(planned(r.json())).toBeGreaterThan(0);
      }
    }
    expect(await databaseChecksum(db.client)).toBe(before);
    expect(await writeAttempts()).toBe(attempts);
  });

  it.each(DB_DRY_RUNS)('%s: every query of the dry run runs in a READ ONLY transaction (checked by the server inside the plan query)', async (_name, args, planned) => {
    const base = configFile({ audit: { table: 'audit_log' }, jobs: { queue: 'river' } });
    const viaViews = configFile({ audit: { table: 'audit_log' }, executions: { schema: 'ro' }, propagations: { schema: 'ro' }, jobs: { queue: 'river', schema: 'ro' } });
    const direct = await cli(['--config', base, ...args, '-o', 'json'], env);
    const probed = await cli(['--config', viaViews, ...args, '-o', 'json'], env);
    expect(probed.stderr).toBe('');
    expect(probed.code).toBe(0);
    expect(planned(probed.json())).toBe(planned(direct.json()));
    expect(planned(probed.json())).toBeGreaterThan(0);
  });

  it('adopt schedule-group and schedule-groups reconcile: the dry run leaves the emulator snapshot unchanged and calls no write API', async () => {
    emu.seedGroup('bare', { env: 'prod' });
    emu.seedGroup('theirs', { 'alchemy::stack': 'other', 'alchemy::stage': 'prod', 'alchemy::id': 'theirs' });
    emu.seedGroup('drifted', { ...owner('drifted'), team: 'old', 'alchemy::legacy': 'x' });
    const cfg = sgConfig({ expected: ['missing-one'] });
    const before = emu.snapshot();
    emu.resetCallCounts();
    const runs: Array<[string[], number]> = [
      [['adopt', 'schedule-group', '--all-unowned'], 1],
      [['adopt', 'schedule-group', 'bare', 'theirs', '--force'], 2],
      [['schedule-groups', 'reconcile', '--create-missing'], 2],
      [['schedule-groups', 'reconcile', 'drifted', 'theirs', '--force'], 2],
    ];
    for (const [args, planned] of runs) {
      const r = await cli(['--config', cfg, ...args, '-o', 'json'], awsEnv(emu));
      expect(r.stderr, args.join(' ')).toBe('');
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.json().mode).toBe('plan');
      expect(r.json().summary.planned, args.join(' ')).toBe(planned);
    }
    expect(emu.snapshot()).toBe(before);
    const writes = Object.keys(emu.callCounts()).filter((op) => !/^(List|Get)/.test(op));
    expect(writes).toEqual([]);
  });
});
