import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { freshDatabase, serverPassword } from '../support/db.js';
import { cli } from '../support/cli.js';
import { configFile, eventually } from '../support/reliability.js';
import { SCHEDULER_SCHEMA_SQL } from '../support/scheduler-schema.js';
import { REFERENCE_SCHEMA_SQL } from '../../src/reference/schema.js';

let db: Awaited<ReturnType<typeof freshDatabase>>;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  db = await freshDatabase('locks', REFERENCE_SCHEMA_SQL + SCHEDULER_SCHEMA_SQL);
  env = { DATABASE_URL: db.url };
});
afterAll(async () => {
  await db.drop();
});

const q = (sql: string, params: unknown[] = []) => db.client.query(sql, params);

describe('locks expired', () => {
  beforeEach(async () => {
    await q('TRUNCATE scheduler.locks, scheduler.workers');
    await q("INSERT INTO scheduler.workers (id, host, last_heartbeat_at) VALUES ('w-live', 'a', now()), ('w-dead', 'b', now() - interval '10 minutes')");
    await q(`INSERT INTO scheduler.locks (name, holder, acquired_at, expires_at) VALUES
      ('nightly-billing', 'w-live', now() - interval '2 hours', now() - interval '1 hour'),
      ('hourly-sync', 'w-dead', now() - interval '5 minutes', now() + interval '1 hour'),
      ('report', 'w-dead', now() - interval '3 hours', now() - interval '2 hours'),
      ('fresh', 'w-live', now(), now() + interval '1 hour')`);
  });

  it('lists rows past their expiry or held by a dead worker, longest expired first, and changes nothing', async () => {
    const before = (await q("SELECT md5(string_agg(l::text, '|' ORDER BY name)) AS s FROM scheduler.locks l")).rows[0].s;
    const r = await cli(['locks', 'expired', '-o', 'json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = r.json();
    expect(out.items.map((i: any) => [i.name, i.holder, i.reasons])).toEqual([
      ['report', 'w-dead', ['expired', 'holder-dead']],
      ['nightly-billing', 'w-live', ['expired']],
      ['hourly-sync', 'w-dead', ['holder-dead']],
    ]);
    expect(out.items[0].expiredSeconds).toBeGreaterThanOrEqual(7200 - 5);
    expect(out.items[2].expiredSeconds).toBeNull();
    expect(out.summary).toMatchObject({ expired: 2, holderDead: 2, listed: 3, stale: '2m' });
    expect((await q("SELECT md5(string_agg(l::text, '|' ORDER BY name)) AS s FROM scheduler.locks l")).rows[0].s).toBe(before);
  });

  it('without a worker table the holders are not judged (said in a note); an expiry-less lock table is judged by holder only', async () => {
    const noWorkers = configFile({ workers: { table: 'no_such_workers' } });
    const r = await cli(['--config', noWorkers, 'locks', 'expired', '-o', 'json'], env);
    expect(r.code).toBe(0);
    expect(r.json().items.map((i: any) => i.name)).toEqual(['report', 'nightly-billing']);
    const t = await cli(['--config', noWorkers, 'locks', 'expired'], env);
    expect(t.stdout).toContain('Holders not judged: the worker table scheduler.no_such_workers does not exist.');
    const holderOnly = configFile({ workers: { locks: { expiresAt: null } } });
    const h = await cli(['--config', holderOnly, 'locks', 'expired', '-o', 'json'], env);
    expect(h.json().items.map((i: any) => i.name).sort()).toEqual(['hourly-sync', 'report']);
  });
});

describe('locks advisory', () => {
  it('lists advisory locks held by idle and idle-in-transaction sessions past the threshold, with application_name, client and ages; busy or fresh ones are not listed', async () => {
    const idle = new pg.Client({ connectionString: db.url, application_name: 'billing-worker' });
    const inTx = new pg.Client({ connectionString: db.url, application_name: 'report-runner' });
    const busy = new pg.Client({ connectionString: db.url, application_name: 'busy-one' });
    for (const c of [idle, inTx, busy]) await c.connect();
    try {
      await idle.query('SELECT pg_advisory_lock(-42::bigint), pg_advisory_lock(7, -3)');
      await inTx.query('BEGIN');
      await inTx.query('SELECT pg_advisory_xact_lock(9001)');
      // Busy: holds a lock while it waits, inside a statement, on a lock idle holds.
      await busy.query('SELECT pg_advisory_lock(555)');
      const waiting = busy.query('SELECT pg_advisory_lock(-42::bigint)');
      const pids = { idle: (await idle.query('SELECT pg_backend_pid() AS p')).rows[0].p, inTx: (await inTx.query('SELECT pg_backend_pid() AS p')).rows[0].p };
      // A long threshold: nobody has been idle that long.
      const none = await cli(['locks', 'advisory', '--idle', '1h', '-o', 'json'], env);
      expect(none.code).toBe(0);
      expect(none.json().items).toEqual([]);
      // A threshold of 50ms, once both sessions have sat idle that long.
      const out = await eventually('idle past 50ms', async () => {
        const r = await cli(['locks', 'advisory', '--idle', '50ms', '-o', 'json'], env);
        const o = r.json();
        return o.items.length === 3 ? o : null;
      });
      const keys = out.items.map((i: any) => [i.pid, i.key, i.applicationName, i.state]).sort((a: any, b: any) => a[1].localeCompare(b[1]));
      expect(keys).toEqual(
        [
          [pids.idle, '-42', 'billing-worker', 'idle'],
          [pids.idle, '7,-3', 'billing-worker', 'idle'],
          [pids.inTx, '9001', 'report-runner', 'idle in transaction'],
        ].sort((a: any, b: any) => a[1].localeCompare(b[1])),
      );
      const tx = out.items.find((i: any) => i.key === '9001');
      expect(tx.transactionSeconds).not.toBeNull();
      expect(tx.clientAddr === null || /^[0-9a-f.:]+$/.test(tx.clientAddr)).toBe(true);
      expect(tx.connectedSeconds).toBeGreaterThanOrEqual(tx.idleSeconds);
      expect(out.summary).toMatchObject({ idleHolders: 2, locks: 3, idleInTransaction: 1, heldByBusySessions: 1, notVisible: 0, idle: '50ms' });
      await idle.query('SELECT pg_advisory_unlock_all()');
      await waiting;
    } finally {
      await inTx.query('ROLLBACK').catch(() => {});
      for (const c of [idle, inTx, busy]) await c.end();
    }
  });

  it("opsctl's own table lock is named as such (an opsctl run that died mid-apply would show here)", async () => {
    const holder = new pg.Client({ connectionString: db.url, application_name: 'opsctl' });
    await holder.connect();
    try {
      // The key opsctl's advisory-lock.ts takes for a table: ("opsc", the table's oid).
      await holder.query("SELECT pg_advisory_lock(1869640547, 'purchase_executions'::regclass::oid::int)");
      const out = await eventually('idle past 1ms', async () => {
        const r = await cli(['locks', 'advisory', '--idle', '1ms', '-o', 'json'], env);
        return r.json().items.length === 1 ? r.json() : null;
      });
      expect(out.items[0]).toMatchObject({ owner: 'opsctl purchase_executions', applicationName: 'opsctl', state: 'idle' });
    } finally {
      await holder.end();
    }
  });

  it("a role that cannot see other roles' sessions counts their locks as notVisible instead of guessing", async () => {
    const role = `locks_ro_${Math.random().toString(36).slice(2, 8)}`;
    await q(`CREATE ROLE ${role} LOGIN PASSWORD '${serverPassword()}'`);
    const holder = new pg.Client({ connectionString: db.url, application_name: 'hidden' });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock(77)');
      const u = new URL(db.url);
      u.username = role;
      const out = await eventually('lock visible as held', async () => {
        const r = await cli(['locks', 'advisory', '--idle', '1ms', '-o', 'json'], { DATABASE_URL: u.toString() });
        return r.code === 0 && r.json().summary.notVisible === 1 ? r.json() : null;
      });
      expect(out.items).toEqual([]);
      const t = await cli(['locks', 'advisory', '--idle', '1ms'], { DATABASE_URL: u.toString() });
      expect(t.stdout).toContain('grant pg_read_all_stats (or pg_monitor) to see them');
      expect(t.stdout).not.toContain(serverPassword());
    } finally {
      await holder.end();
      await q(`DROP ROLE ${role}`);
    }
  });
});
