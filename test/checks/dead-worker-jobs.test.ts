import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Logger, runMigrations } from 'graphile-worker';
import { freshDatabase } from '../support/db.js';
import { cli } from '../support/cli.js';
import { connect, jobsConfig, queueFor } from '../support/jobs.js';
import { SCHEDULER_SCHEMA_SQL } from '../support/scheduler-schema.js';
import { REFERENCE_SCHEMA_SQL } from '../../src/reference/schema.js';
import { RIVER_SCHEMA_SQL } from '../../src/reference/queues/river.js';
import { remediate } from '../../src/engine/remediation.js';
import { deadWorkerRescueRemedy } from '../../src/checks/dead-worker-jobs.js';

/**
 * jobs rescue --dead-workers: River's attempted_by and graphile-worker's locked_by matched
 * against the worker table (scheduler.workers), whose heartbeats the application writes.
 */
let db: Awaited<ReturnType<typeof freshDatabase>>;
let env: NodeJS.ProcessEnv;
let river: string;
let gw: string;

beforeAll(async () => {
  db = await freshDatabase('dwjobs', REFERENCE_SCHEMA_SQL + RIVER_SCHEMA_SQL + SCHEDULER_SCHEMA_SQL);
  const silent = new Logger(() => () => {});
  await runMigrations({ connectionString: db.url, schema: 'graphile_worker', logger: silent });
  env = { DATABASE_URL: db.url };
  river = jobsConfig('river');
  gw = jobsConfig('graphile-worker');
});
afterAll(async () => {
  await db.drop();
});

const q = (sql: string, params: unknown[] = []) => db.client.query(sql, params);

beforeEach(async () => {
  await q('TRUNCATE river_job, audit_log, scheduler.workers, graphile_worker._private_jobs');
  await q('DELETE FROM graphile_worker._private_job_queues');
  // client-dead silent 10 minutes; client-live heartbeating.
  await q("INSERT INTO scheduler.workers (id, host, last_heartbeat_at) VALUES ('client-dead', 'a', now() - interval '10 minutes'), ('client-live', 'b', now())");
});

/** A running River job fetched `minutes` ago by `holder` (attempted_by ends with it). */
async function riverJob(holder: string, minutes: number, attempt = 1): Promise<string> {
  const r = await q(
    `INSERT INTO river_job (state, kind, queue, args, attempt, max_attempts, attempted_at, attempted_by, scheduled_at)
     VALUES ('running', 'send_email', 'default', '{}', $3, 3, now() - $2::float8 * interval '1 minute', ARRAY['old-client', $1], now() - interval '1 hour') RETURNING id::text`,
    [holder, minutes, attempt],
  );
  return r.rows[0].id;
}

describe('jobs rescue --dead-workers (River)', () => {
  it('plans only jobs whose current holder is dead, whatever their age; --apply rescues them the way River does', async () => {
    const young = await riverJob('client-dead', 0.05);
    const old = await riverJob('client-dead', 300, 3);
    const live = await riverJob('client-live', 300);
    // Its earlier attempt was by client-dead; the current one is client-live's.
    const handedOver = await riverJob('client-live', 1);
    await q("UPDATE river_job SET attempted_by = ARRAY['client-dead', 'client-live'] WHERE id = $1", [handedOver]);
    const plan = await cli(['--config', river, 'jobs', 'rescue', '--dead-workers', '-o', 'json'], env);
    expect(plan.stderr).toBe('');
    expect(plan.code).toBe(0);
    const out = plan.json();
    expect(out.items.map((i: any) => i.id).sort()).toEqual([young, old].sort());
    expect(out.items.find((i: any) => i.id === old)).toMatchObject({ worker: 'client-dead', wouldBecome: 'discarded', threshold: '2m' });
    expect(out.items.find((i: any) => i.id === young)).toMatchObject({ wouldBecome: 'retryable' });
    expect(out.summary).toMatchObject({ planned: 2, preset: 'river', deadWorkers: 1, stale: '2m' });
    expect((await q("SELECT count(*)::int AS n FROM river_job WHERE state = 'running'")).rows[0].n).toBe(4);

    const r = await cli(['--config', river, 'jobs', 'rescue', '--dead-workers', '--apply', '--reason', 'INC-3', '-o', 'json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.json().summary).toMatchObject({ planned: 2, rescued: 2, 'rescued-retryable': 1, 'rescued-discarded': 1, errored: 0 });
    const rows = new Map((await q("SELECT id::text, state::text, errors[array_upper(errors, 1)] ->> 'error' AS err FROM river_job")).rows.map((x) => [x.id, x]));
    expect(rows.get(young)).toMatchObject({ state: 'retryable', err: 'opsctl: rescued: worker client-dead stopped heartbeating (stale after 2m) while the job was in running state (INC-3)' });
    expect(rows.get(old)!.state).toBe('discarded');
    expect(rows.get(live)!.state).toBe('running');
    expect(rows.get(handedOver)!.state).toBe('running');
    const audit = (await q("SELECT resource_id, metadata FROM audit_log WHERE kind = 'job.dead_worker_rescue' ORDER BY resource_id")).rows;
    expect(audit.map((a) => a.resource_id).sort()).toEqual([young, old].sort());
    expect(audit[0].metadata).toMatchObject({ preset: 'river', worker: 'client-dead', stale: '2m', reason: 'INC-3' });
  });

  it('a client that heartbeats again between plan and write keeps its jobs; a job fetched again by another client is left alone', async () => {
    const a = await riverJob('client-dead', 30);
    const b = await riverJob('client-dead', 30);
    await q("INSERT INTO scheduler.workers (id, host, last_heartbeat_at) VALUES ('client-gone', 'c', now() - interval '1 hour')");
    const c = await riverJob('client-gone', 30);
    const d = await riverJob('client-gone', 30);
    const { config, q: queue } = queueFor('river');
    const conn = await connect(db.url);
    try {
      const report = await remediate(conn, deadWorkerRescueRemedy(queue, config.workers, { staleMs: 120_000, filter: {}, actor: 't', audit: config.audit }), {
        apply: true,
        max: 0,
        batchSize: 100,
        wait: false,
        confirm: async (plan) => {
          expect(plan.map((p) => p.id).sort()).toEqual([a, b, c, d].sort());
          await q("UPDATE scheduler.workers SET last_heartbeat_at = now() WHERE id = 'client-dead'");
          // River's fetch of a retried job: a new attempt by a live client.
          await q("UPDATE river_job SET attempt = attempt + 1, attempted_at = now(), attempted_by = array_append(attempted_by, 'client-live') WHERE id = $1", [c]);
          return true;
        },
      });
      const by = Object.fromEntries(report.items.map((i) => [i.id, i]));
      expect(by[a]).toMatchObject({ outcome: 'race-lost', detail: 'worker client-dead heartbeated again since the plan: it keeps the row' });
      expect(by[b].outcome).toBe('race-lost');
      expect(by[c]).toMatchObject({ outcome: 'race-lost', detail: 'changed since the plan (finished, or fetched again by another worker): left alone' });
      expect(by[d].outcome).toBe('rescued-retryable');
    } finally {
      await conn.close();
    }
    const states = Object.fromEntries((await q('SELECT id::text, state::text FROM river_job')).rows.map((x) => [x.id, x.state]));
    expect(states).toEqual({ [a]: 'running', [b]: 'running', [c]: 'running', [d]: 'retryable' });
  });

  it('the age flags are refused with --dead-workers, and pg-boss (no worker recorded) says so: exit 2', async () => {
    const mixed = await cli(['--config', river, 'jobs', 'rescue', '--dead-workers', '--older-than', '1h'], env);
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toMatch(/^opsctl: jobs rescue --dead-workers selects by heartbeat, not age/);
    const boss = await cli(['--config', jobsConfig('pg-boss'), 'jobs', 'rescue', '--dead-workers'], env);
    expect(boss.code).toBe(2);
    expect(boss.stderr).toBe('opsctl: pg-boss (v10) records no worker on a job, so jobs held by dead workers cannot be told apart; use jobs rescue without --dead-workers (expire_in).\n');
  });
});

describe('jobs rescue --dead-workers (graphile-worker)', () => {
  it("rescues the jobs whose locked_by is a dead worker, releasing its named queue, and leaves a live worker's lock alone", async () => {
    const add = async (queue: string | null) => (await q("SELECT id::text FROM graphile_worker.add_job('send_email', '{}'::json, queue_name := $1)", [queue])).rows[0].id as string;
    // What graphile-worker's getJobs does to a job (and its named queue) when worker `by` fetches it.
    const lock = async (id: string, by: string) =>
      q(
        `WITH j AS (UPDATE graphile_worker._private_jobs SET attempts = attempts + 1, locked_by = $2, locked_at = now() - interval '1 minute' WHERE id = $1 RETURNING job_queue_id, locked_at)
         UPDATE graphile_worker._private_job_queues q SET locked_by = $2, locked_at = j.locked_at FROM j WHERE q.id = j.job_queue_id`,
        [id, by],
      );
    const dead = await add('serial');
    const live = await add(null);
    await lock(dead, 'client-dead');
    await lock(live, 'client-live');
    const r = await cli(['--config', gw, 'jobs', 'rescue', '--dead-workers', '--apply', '-o', 'json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.json().items.map((i: any) => [i.id, i.worker, i.outcome])).toEqual([[dead, 'client-dead', 'rescued-retryable']]);
    const jobs = Object.fromEntries((await q('SELECT id::text, locked_by FROM graphile_worker._private_jobs')).rows.map((x) => [x.id, x.locked_by]));
    expect(jobs).toEqual({ [dead]: null, [live]: 'client-live' });
    expect((await q("SELECT locked_by FROM graphile_worker._private_job_queues WHERE queue_name = 'serial'")).rows[0].locked_by).toBeNull();
  });
});
