import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { freshDatabase, tableChecksum } from '../support/db.js';
import { cli, cliProcess } from '../support/cli.js';
import { configFile } from '../support/reliability.js';
import { SCHEDULER_SCHEMA_SQL } from '../support/scheduler-schema.js';
import { REFERENCE_SCHEMA_SQL } from '../../src/reference/schema.js';
import { Database } from '../../src/database/database.js';
import { defaultConfig } from '../../src/config/config.js';
import { deadWorkerReapRemedy } from '../../src/checks/dead-workers.js';
import { remediate } from '../../src/engine/remediation.js';

let db: Awaited<ReturnType<typeof freshDatabase>>;
let env: NodeJS.ProcessEnv;
let cfgFile: string;

beforeAll(async () => {
  db = await freshDatabase('workers', REFERENCE_SCHEMA_SQL + SCHEDULER_SCHEMA_SQL);
  env = { DATABASE_URL: db.url };
  cfgFile = configFile({ actor: 'test-operator', audit: { table: 'audit_log' } });
});
afterAll(async () => {
  await db.drop();
});

const q = (sql: string, params: unknown[] = []) => db.client.query(sql, params);

async function worker(id: string, heartbeatMinutesAgo: number | null, host = `${id}.internal`) {
  await q(
    `INSERT INTO scheduler.workers (id, host, last_heartbeat_at) VALUES ($1, $2, CASE WHEN $3::float8 IS NULL THEN NULL ELSE now() - $3::float8 * interval '1 minute' END)`,
    [id, host, heartbeatMinutesAgo],
  );
}
async function runs(workerId: string | null, n: number, status = 'running', updatedMinutesAgo = 30): Promise<string[]> {
  const r = await q(
    `INSERT INTO scheduler.runs (status, worker_id, started_at, updated_at)
     SELECT $1, $2, now() - $4::float8 * interval '1 minute', now() - $4::float8 * interval '1 minute' FROM generate_series(1, $3::int) RETURNING id::text`,
    [status, workerId, n, updatedMinutesAgo],
  );
  return r.rows.map((x) => x.id);
}
const rowsOf = async (ids: string[]) => (await q('SELECT id::text, status, worker_id, error, finished_at FROM scheduler.runs WHERE id = ANY($1::uuid[]) ORDER BY id', [ids])).rows;

/** w-dead: silent 10m, holds 3 running rows (one of them updated a second ago) and a finished one; w-alive holds 2. */
async function seed() {
  await q('TRUNCATE scheduler.runs, scheduler.workers, scheduler.locks, audit_log CASCADE');
  await worker('w-alive', 0);
  await worker('w-dead', 10);
  await worker('w-dead-idle', 60);
  await worker('w-new', null);
  const dead = [...(await runs('w-dead', 2)), ...(await runs('w-dead', 1, 'running', 0))];
  const deadFinished = await runs('w-dead', 1, 'succeeded');
  const alive = await runs('w-alive', 2, 'running', 300);
  const ghost = await runs('w-ghost', 1);
  return { dead, deadFinished, alive, ghost };
}

describe('workers dead', () => {
  beforeEach(seed);

  it('lists workers whose heartbeat is past the threshold, longest silent first, with the rows each holds', async () => {
    const r = await cli(['workers', 'dead', '-o', 'json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = r.json();
    expect(out.command).toBe('workers dead');
    expect(out.mode).toBe('read');
    expect(out.items.map((i: any) => [i.id, i.held, i.host])).toEqual([
      ['w-dead-idle', 0, 'w-dead-idle.internal'],
      ['w-dead', 3, 'w-dead.internal'],
    ]);
    expect(out.items[1].silentSeconds).toBeGreaterThanOrEqual(600 - 5);
    expect(out.items[1].status).toBe('active');
    expect(out.summary).toMatchObject({ dead: 2, workers: 4, heldRows: 3, heldByUnknown: 1, neverHeartbeated: 1, stale: '2m' });
  });

  it('--stale moves the line; table and ndjson carry the same rows', async () => {
    const r = await cli(['workers', 'dead', '--stale', '30m', '-o', 'ndjson'], env);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.slice(0, -1).map((l) => l.id)).toEqual(['w-dead-idle']);
    expect(lines.at(-1)).toMatchObject({ type: 'summary', summary: { dead: 1, heldRows: 0, stale: '30m' } });
    const t = await cli(['workers', 'dead'], env);
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/w-dead\.internal/);
    expect(t.stdout).toMatch(/1 row\(s\) in running name a worker that is not in scheduler\.workers/);
  });

  it('a missing table or column is one sentence naming its config key, exit 2', async () => {
    const bad = configFile({ workers: { columns: { heartbeat: 'last_beat' } } });
    const r = await cli(['--config', bad, 'workers', 'dead'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('opsctl: column "last_beat" (config workers.columns.heartbeat) does not exist in table scheduler.workers.\n');
    const noTable = configFile({ workers: { runs: { table: 'jobs' } } });
    const r2 = await cli(['--config', noTable, 'workers', 'dead'], env);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/^opsctl: table scheduler\.jobs \(config workers\.runs\.table\) does not exist/);
  });

  it('bad config and flags: one sentence, exit 2', async () => {
    const noLockColumns = configFile({ workers: { locks: { holder: null, expiresAt: null } } });
    const r = await cli(['--config', noLockColumns, 'workers', 'dead'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/workers\.locks: needs at least one of holder and expiresAt/);
    const zero = await cli(['workers', 'dead', '--stale', '0s'], env);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toBe('opsctl: --stale must be greater than zero, got "0s".\n');
    const mixed = await cli(['reap', '--dead-workers', '--older-than', '10m'], env);
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toMatch(/selects by heartbeat, not age: drop --older-than/);
    const stray = await cli(['reap', '--stale', '2m'], env);
    expect(stray.code).toBe(2);
    expect(stray.stderr).toMatch(/--stale goes with --dead-workers/);
  });
});

describe('reap --dead-workers', () => {
  beforeEach(seed);

  it('dry run: plans exactly the rows held by dead workers, whatever their age, and changes nothing', async () => {
    const { dead } = await seed();
    const before = await tableChecksum(db.client, 'audit_log');
    const runsBefore = (await q("SELECT md5(string_agg(r::text, '|' ORDER BY id)) AS s FROM scheduler.runs r")).rows[0].s;
    const r = await cli(['--config', cfgFile, 'reap', '--dead-workers', '-o', 'json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = r.json();
    expect(out.mode).toBe('plan');
    expect(out.items.map((i: any) => i.id).sort()).toEqual([...dead].sort());
    for (const i of out.items) {
      expect(i).toMatchObject({ worker: 'w-dead', status: 'running', outcome: 'planned' });
      expect(i.reason).toBe('reaped: worker w-dead stopped heartbeating (stale after 2m) while it held this run in running state');
    }
    // The row updated a second ago is planned too: the criterion is the holder's heartbeat, not the row's age.
    expect(Math.min(...out.items.map((i: any) => i.ageSeconds))).toBeLessThan(60);
    expect(out.summary).toMatchObject({ planned: 3, deadWorkers: 1, stale: '2m' });
    expect((await q("SELECT md5(string_agg(r::text, '|' ORDER BY id)) AS s FROM scheduler.runs r")).rows[0].s).toBe(runsBefore);
    expect(await tableChecksum(db.client, 'audit_log')).toBe(before);
  });

  it('--apply reaps them once, with the reason and an audit row each; live, finished and unknown-holder rows are untouched', async () => {
    const { dead, deadFinished, alive, ghost } = await seed();
    const r = await cli(['--config', cfgFile, 'reap', '--dead-workers', '--apply', '--reason', 'INC-9', '-o', 'json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.json().summary).toMatchObject({ planned: 3, reaped: 3, 'race-lost': 0, 'skipped-locked': 0, errored: 0 });
    for (const row of await rowsOf(dead)) {
      expect(row.status).toBe('failed');
      expect(row.worker_id).toBe('w-dead');
      expect(row.error).toBe('reaped: worker w-dead stopped heartbeating (stale after 2m) while it held this run in running state (operator: INC-9)');
      expect(row.finished_at).not.toBeNull();
    }
    expect((await rowsOf(deadFinished))[0].status).toBe('succeeded');
    for (const row of await rowsOf([...alive, ...ghost])) expect(row).toMatchObject({ status: 'running', error: null });
    const audit = (await q("SELECT resource_id, actor, metadata FROM audit_log WHERE kind = 'run.reaped_dead_worker' ORDER BY resource_id")).rows;
    expect(audit.map((a) => a.resource_id)).toEqual([...dead].sort());
    expect(audit[0]).toMatchObject({ actor: 'test-operator', metadata: { worker: 'w-dead', from_status: 'running', to_status: 'failed', stale: '2m', reason: 'INC-9' } });
    const again = await cli(['--config', cfgFile, 'reap', '--dead-workers', '--apply', '-o', 'json'], env);
    expect(again.json().summary.planned).toBe(0);
  });

  it('a worker that heartbeats again between plan and write keeps its rows (race-lost); a row handed to another worker is left alone', async () => {
    const { dead, alive } = await seed();
    await q("UPDATE scheduler.workers SET last_heartbeat_at = now() - interval '20 minutes' WHERE id = 'w-dead-idle'");
    const idleRows = await runs('w-dead-idle', 2);
    const conn = await Database.connect({ settings: { ...defaultConfig().database, url: db.url }, env: {} });
    try {
      const cfg = defaultConfig();
      const report = await remediate(conn, deadWorkerReapRemedy(cfg.workers, { staleMs: 120_000, actor: 't', audit: { table: 'audit_log', schema: null } }), {
        apply: true,
        max: 0,
        batchSize: 500,
        wait: false,
        // The plan is made; now w-dead comes back, and one of w-dead-idle's rows goes to w-alive.
        confirm: async (plan) => {
          expect(plan.map((p) => p.id).sort()).toEqual([...dead, ...idleRows].sort());
          await q("UPDATE scheduler.workers SET last_heartbeat_at = now() WHERE id = 'w-dead'");
          await q("UPDATE scheduler.runs SET worker_id = 'w-alive' WHERE id = $1", [idleRows[0]]);
          return true;
        },
      });
      const byId = Object.fromEntries(report.items.map((i) => [i.id, i]));
      for (const id of dead) {
        expect(byId[id].outcome).toBe('race-lost');
        expect(byId[id].detail).toBe('worker w-dead heartbeated again since the plan: it keeps the row');
      }
      expect(byId[idleRows[0]]).toMatchObject({ outcome: 'race-lost', detail: 'changed since the plan (now running, worker w-alive): left alone' });
      expect(byId[idleRows[1]].outcome).toBe('reaped');
      expect(report.summary).toMatchObject({ planned: 5, reaped: 1, 'race-lost': 4, errored: 0 });
    } finally {
      await conn.close();
    }
    for (const row of await rowsOf(dead)) expect(row).toMatchObject({ status: 'running', worker_id: 'w-dead', error: null, finished_at: null });
    expect((await rowsOf([idleRows[0]]))[0]).toMatchObject({ status: 'running', worker_id: 'w-alive' });
    for (const row of await rowsOf(alive)) expect(row.status).toBe('running');
    expect((await q("SELECT count(*)::int AS n FROM audit_log WHERE kind = 'run.reaped_dead_worker'")).rows[0].n).toBe(1);
  });

  it('a worker writing its heartbeat at write time is never waited on: its rows are skipped-locked, and it keeps them', async () => {
    const { dead } = await seed();
    const beat = new pg.Client({ connectionString: db.url });
    await beat.connect();
    try {
      await beat.query('BEGIN');
      await beat.query("UPDATE scheduler.workers SET last_heartbeat_at = now() WHERE id = 'w-dead'");
      // lock_timeout 1s: had the reaper waited on the worker row, the run would fail instead.
      const r = await cli(['reap', '--dead-workers', '--apply', '-o', 'json'], { ...env, OPSCTL_LOCK_TIMEOUT: '1s' });
      expect(r.code).toBe(0);
      const out = r.json();
      expect(out.summary).toMatchObject({ planned: 3, reaped: 0, 'skipped-locked': 3 });
      expect(out.items[0].detail).toBe('worker w-dead is writing its heartbeat right now: left alone');
      await beat.query('COMMIT');
    } finally {
      await beat.end();
    }
    for (const row of await rowsOf(dead)) expect(row.status).toBe('running');
  });
});

describe('a live heartbeat against four concurrent reapers', () => {
  it('the heartbeating worker is never reaped; the dead worker\'s rows are reaped exactly once, with one audit row each', async () => {
    await q('TRUNCATE scheduler.runs, scheduler.workers, audit_log CASCADE');
    // Both start silent for 10 minutes: only the heartbeat loop tells the live one apart.
    await worker('w-live', 10);
    await worker('w-gone', 10);
    const DEAD = 600;
    const LIVE = 200;
    await runs('w-gone', DEAD);
    await runs('w-live', LIVE, 'running', 120);

    // The live worker: its own connection, heartbeating in a loop, as a worker does.
    const hb = new pg.Client({ connectionString: db.url, application_name: 'w-live' });
    await hb.connect();
    let beats = 0;
    let stop = false;
    let firstBeat!: () => void;
    const started = new Promise<void>((res) => (firstBeat = res));
    const loop = (async () => {
      while (!stop) {
        await hb.query("UPDATE scheduler.workers SET last_heartbeat_at = now() WHERE id = 'w-live'");
        beats += 1;
        if (beats === 1) firstBeat();
      }
    })();
    await started;
    const beatsAtStart = beats;
    const args = ['--config', cfgFile, 'reap', '--dead-workers', '--apply', '--max', '0', '--batch-size', '50', '--wait', '-o', 'json'];
    const all = await Promise.all([1, 2, 3, 4].map(() => cliProcess(args, env)));
    const beatsDuring = beats - beatsAtStart;
    stop = true;
    await loop;
    await hb.end();

    for (const r of all) {
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    }
    // The worker kept heartbeating while the reapers ran.
    expect(beatsDuring).toBeGreaterThan(0);
    const reaped = all.map((r) => r.json().summary.reaped).sort((a, b) => b - a);
    expect(reaped).toEqual([DEAD, 0, 0, 0]);
    for (const r of all) for (const i of r.json().items) expect(i.worker).toBe('w-gone');
    const state = (await q('SELECT worker_id, status, count(*)::int AS n FROM scheduler.runs GROUP BY 1, 2 ORDER BY 1, 2')).rows;
    expect(state).toEqual([
      { worker_id: 'w-gone', status: 'failed', n: DEAD },
      { worker_id: 'w-live', status: 'running', n: LIVE },
    ]);
    const audit = (await q("SELECT count(*)::int AS n, count(DISTINCT resource_id)::int AS d FROM audit_log WHERE kind = 'run.reaped_dead_worker'")).rows[0];
    expect(audit).toEqual({ n: DEAD, d: DEAD });
  });
});

describe('check: dead-workers', () => {
  beforeEach(seed);

  it('skipped unless workers.enabled (unknown if asked for with --only); a dead worker holding rows is a finding, one holding nothing is not', async () => {
    const off = await cli(['check', '-o', 'json'], env);
    expect(off.json().items.find((i: any) => i.check === 'dead-workers')).toMatchObject({ status: 'skipped', error: 'workers.enabled is false' });
    const asked = await cli(['check', '--only', 'workers', '-o', 'json'], env);
    expect(asked.code).toBe(3);
    expect(asked.json().items[0]).toMatchObject({ check: 'dead-workers', status: 'unknown', error: 'workers.enabled is false' });
    const on = configFile({ workers: { enabled: true } });
    const r = await cli(['--config', on, 'check', '--only', 'workers', '-o', 'json'], env);
    expect(r.code).toBe(1);
    const [c] = r.json().items;
    expect(c).toMatchObject({ check: 'dead-workers', status: 'finding', count: 1, threshold: 1, breakdown: { deadWorkers: 2, heldRows: 3, heldByUnknown: 1 } });
    expect(c.worst).toMatch(/^w-dead on w-dead\.internal silent for 10m\d*s? holds 3 row\(s\) \(stale after 2m\)$/);
    expect(c.items.map((i: any) => i.id)).toEqual(['w-dead']);
  });

  it('its heartbeat threshold comes from workers.stale or --worker-stale; enabled, it runs with the other checks', async () => {
    const on = configFile({ workers: { enabled: true, stale: '1h' } });
    const r = await cli(['--config', on, 'check', '-o', 'json'], env);
    expect(r.json().items.find((i: any) => i.check === 'dead-workers')).toMatchObject({ status: 'ok', count: 0 });
    const flag = await cli(['--config', on, 'check', '--worker-stale', '5m', '-o', 'json'], env);
    expect(flag.code).toBe(1);
    expect(flag.json().items.find((i: any) => i.check === 'dead-workers')).toMatchObject({ status: 'finding', count: 1 });
    const bad = await cli(['check', '--worker-stale', 'soon'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^opsctl: --worker-stale "soon" is not a duration/);
  });
});

describe('read paths and dry runs are read-only; the documented grants suffice', () => {
  it('workers dead, reap --dead-workers (dry run), locks expired and locks advisory run every query READ ONLY (checked by the server) and write nothing', async () => {
    await seed();
    await q(`INSERT INTO scheduler.locks (name, holder, expires_at) VALUES ('l1', 'w-dead', now() + interval '1 hour'), ('l2', 'w-alive', now() - interval '1 hour')`);
    await q(`
      CREATE OR REPLACE FUNCTION public.wk_assert_read_only() RETURNS boolean LANGUAGE plpgsql STABLE AS $$
      BEGIN
        IF current_setting('transaction_read_only') <> 'on' THEN RAISE EXCEPTION 'wk_assert_read_only: this query ran in a read-write transaction'; END IF;
        RETURN true;
      END $$;
      CREATE SCHEMA IF NOT EXISTS ro;
      CREATE OR REPLACE VIEW ro.workers AS SELECT * FROM scheduler.workers WHERE public.wk_assert_read_only();
      CREATE OR REPLACE VIEW ro.runs AS SELECT * FROM scheduler.runs WHERE public.wk_assert_read_only();
      CREATE OR REPLACE VIEW ro.locks AS SELECT * FROM scheduler.locks WHERE public.wk_assert_read_only();`);
    await expect(q('SELECT * FROM ro.workers')).rejects.toThrow(/read-write transaction/);
    const viaViews = configFile({ workers: { schema: 'ro', runs: { schema: 'ro' }, locks: { schema: 'ro' } } });
    const checksum = async () => (await q("SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) AS s FROM (SELECT r::text AS t FROM scheduler.runs r UNION ALL SELECT w::text FROM scheduler.workers w UNION ALL SELECT l::text FROM scheduler.locks l) x")).rows[0].s;
    const before = await checksum();
    const runs: Array<[string[], (o: any) => number]> = [
      [['workers', 'dead'], (o) => o.summary.heldRows],
      [['reap', '--dead-workers'], (o) => o.summary.planned],
      [['locks', 'expired'], (o) => o.summary.listed],
      [['locks', 'advisory', '--idle', '1ms'], () => 1],
    ];
    for (const [args, found] of runs) {
      const r = await cli(['--config', viaViews, ...args, '-o', 'json'], env);
      expect(r.stderr, args.join(' ')).toBe('');
      expect(r.code, args.join(' ')).toBe(0);
      expect(found(r.json()), args.join(' ')).toBeGreaterThan(0);
    }
    expect(await checksum()).toBe(before);
  });

  it('reap --dead-workers --apply works with the documented grants; without UPDATE on a column of the worker table it is refused (exit 3), nothing written', async () => {
    const { dead } = await seed();
    const role = `wk_op_${Math.random().toString(36).slice(2, 8)}`;
    const { serverPassword } = await import('../support/db.js');
    await q(`CREATE ROLE ${role} LOGIN PASSWORD '${serverPassword()}';
      GRANT USAGE ON SCHEMA scheduler TO ${role};
      GRANT SELECT ON scheduler.workers, scheduler.runs, scheduler.locks TO ${role};
      GRANT UPDATE (status, error, updated_at, finished_at) ON scheduler.runs TO ${role};`);
    const u = new URL(db.url);
    u.username = role;
    const asRole = { DATABASE_URL: u.toString() };
    try {
      const dry = await cli(['workers', 'dead', '-o', 'json'], asRole);
      expect(dry.code).toBe(0);
      const refused = await cli(['reap', '--dead-workers', '--apply', '-o', 'json'], asRole);
      expect(refused.code).toBe(3);
      expect(refused.stderr).toMatch(/^opsctl: PostgreSQL refused the operation: permission denied for table workers/);
      for (const row of await rowsOf(dead)) expect(row.status).toBe('running');
      await q(`GRANT UPDATE (host) ON scheduler.workers TO ${role}`);
      const ok = await cli(['reap', '--dead-workers', '--apply', '-o', 'json'], asRole);
      expect(ok.stderr).toBe('');
      expect(ok.code).toBe(0);
      expect(ok.json().summary).toMatchObject({ planned: 3, reaped: 3 });
      // The worker table itself is never written.
      expect((await q("SELECT host FROM scheduler.workers WHERE id = 'w-dead'")).rows[0].host).toBe('w-dead.internal');
    } finally {
      await q(`DROP OWNED BY ${role}; DROP ROLE ${role}`);
    }
  });
});

describe('every name configurable', () => {
  it('a minimal shape with its own names (uuid ids, bigint keys, no error/updated/finished columns, a quoted odd name) works end to end', async () => {
    await q(`
      DROP TABLE IF EXISTS public."Node Registry", public.work_items;
      CREATE TABLE public."Node Registry" (node uuid PRIMARY KEY, "beat;at" timestamptz);
      CREATE TABLE public.work_items (item_no bigserial PRIMARY KEY, owner uuid, phase text NOT NULL);
      INSERT INTO public."Node Registry" VALUES ('00000000-0000-0000-0000-00000000000a', now() - interval '1 hour'), ('00000000-0000-0000-0000-00000000000b', now());
      INSERT INTO public.work_items (owner, phase) VALUES
        ('00000000-0000-0000-0000-00000000000a', 'claimed'), ('00000000-0000-0000-0000-00000000000a', 'claimed'),
        ('00000000-0000-0000-0000-00000000000a', 'done'), ('00000000-0000-0000-0000-00000000000b', 'claimed');`);
    const own = configFile({
      actor: 'test-operator',
      audit: { table: 'audit_log' },
      workers: {
        schema: 'public',
        table: 'Node Registry',
        columns: { id: 'node', heartbeat: 'beat;at', status: null, host: null },
        stale: '10m',
        runs: { schema: null, table: 'work_items', key: 'item_no', worker: 'owner', status: 'phase', heldStatuses: ['claimed'], failedStatus: 'abandoned', error: null, updatedAt: null, finishedAt: null },
      },
    });
    const dead = await cli(['--config', own, 'workers', 'dead', '-o', 'json'], env);
    expect(dead.stderr).toBe('');
    expect(dead.json().items).toEqual([{ id: '00000000-0000-0000-0000-00000000000a', host: null, status: null, heartbeatAt: expect.any(String), silentSeconds: expect.any(Number), held: 2 }]);
    const r = await cli(['--config', own, 'reap', '--dead-workers', '--apply', '-o', 'json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.json().summary).toMatchObject({ planned: 2, reaped: 2 });
    expect(r.json().items.map((i: any) => i.ageSeconds)).toEqual([null, null]);
    const phases = (await q('SELECT owner::text, phase, count(*)::int AS n FROM public.work_items GROUP BY 1, 2 ORDER BY 1, 2')).rows;
    expect(phases).toEqual([
      { owner: '00000000-0000-0000-0000-00000000000a', phase: 'abandoned', n: 2 },
      { owner: '00000000-0000-0000-0000-00000000000a', phase: 'done', n: 1 },
      { owner: '00000000-0000-0000-0000-00000000000b', phase: 'claimed', n: 1 },
    ]);
  });
});
