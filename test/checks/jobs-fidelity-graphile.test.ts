import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Logger, run, runMigrations, type TaskList } from 'graphile-worker';
// graphile-worker's own recovery (the SQL its runner executes at start and every few minutes).
import { resetLockedAt } from 'graphile-worker/dist/sql/resetLockedAt.js';
import { makeEnhancedWithPgClient, processSharedOptions } from 'graphile-worker/dist/lib.js';
import { makeWithPgClientFromClient } from 'graphile-worker/dist/helpers.js';
import { freshDatabase } from '../support/db.js';
import { cli, cliProcess } from '../support/cli.js';
import { connect, jobsConfig, queueFor, until } from '../support/jobs.js';
import { copyRows, expectSameRows, rowsOf } from '../support/fidelity.js';
import { AUDIT_LOG_SQL } from '../../src/reference/schema.js';
import { remediate } from '../../src/engine/remediation.js';
import { queueLockRemedy } from '../../src/checks/queue-locks.js';

// The same rows in two graphile-worker schemas (both made by its own migrations): graphile-worker's
// own code on `gw_own`, opsctl's on `gw_ops`, then every column compared.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let env: NodeJS.ProcessEnv;
const silent = new Logger(() => () => {});
const OWN = 'gw_own';
const OPS = 'gw_ops';
const ops = () => jobsConfig('graphile-worker', { schema: OPS });

beforeAll(async () => {
  db = await freshDatabase('gwfid', AUDIT_LOG_SQL);
  for (const schema of [OWN, OPS]) await runMigrations({ connectionString: db.url, schema, logger: silent });
  env = { DATABASE_URL: db.url };
});
afterAll(async () => {
  await db.drop();
});
beforeEach(async () => {
  for (const s of [OWN, OPS]) {
    await db.client.query(`TRUNCATE ${s}._private_jobs`);
    await db.client.query(`DELETE FROM ${s}._private_job_queues`);
  }
  await db.client.query('TRUNCATE audit_log');
});

async function add(task: string, queue: string | null, maxAttempts: number): Promise<string> {
  const r = await db.client.query(`SELECT id::text FROM ${OWN}.add_job($1, '{}'::json, queue_name := $2, max_attempts := $3)`, [task, queue, maxAttempts]);
  return r.rows[0].id;
}

/** The jobs were added hours ago: nothing the remedies write can pass for a seeded value. */
const backdate = (schema: string) =>
  db.client.query(`UPDATE ${schema}._private_jobs SET created_at = now() - interval '6 hours', updated_at = now() - interval '6 hours', run_at = now() - interval '6 hours'`);

/** What graphile-worker's getJobs writes when it fetches a job (and its named queue), back-dated. */
const fetchAt = (id: string, minutesAgo: number, worker: string) =>
  db.client.query(
    `WITH j AS (UPDATE ${OWN}._private_jobs SET attempts = attempts + 1, locked_by = $2, locked_at = now() - make_interval(mins => $3) WHERE id = $1 RETURNING job_queue_id, locked_at)
     UPDATE ${OWN}._private_job_queues q SET locked_by = $2, locked_at = j.locked_at FROM j WHERE q.id = j.job_queue_id`,
    [id, worker, minutesAgo],
  );

async function copyAll(): Promise<void> {
  await copyRows(db.client, OWN, OPS, '_private_tasks', 'ON CONFLICT DO NOTHING');
  for (const t of ['_private_job_queues', '_private_jobs']) await copyRows(db.client, OWN, OPS, t);
}

const jobs = (s: string) => rowsOf(db.client, `SELECT * FROM ${s}._private_jobs`);
const queues = (s: string) => rowsOf(db.client, `SELECT * FROM ${s}._private_job_queues`);

async function withRunner(schema: string, tasks: TaskList, done: () => Promise<boolean>): Promise<void> {
  const runner = await run({ connectionString: db.url, schema, concurrency: 2, pollInterval: 50, noHandleSignals: true, logger: silent, taskList: tasks });
  try {
    await until(done);
  } finally {
    await runner.stop();
  }
}

describe('graphile-worker fidelity: rescue is its own resetLockedAt', () => {
  it('same rows as resetLockedAt: last_error and updated_at kept, stale queue locks freed; then its runner runs the jobs', async () => {
    const retried = await add('send_email', 'mail', 3);
    const exhausted = await add('send_email', null, 1);
    const blocked = await add('send_email', 'orphaned', 3);
    const fresh = await add('send_email', 'fresh', 3);
    await backdate(OWN);
    // A job that failed once with a real error, then was fetched again by a pool that died.
    await fetchAt(retried, 400, 'dead-pool');
    await db.client.query(`UPDATE ${OWN}._private_jobs SET attempts = 2, last_error = 'smtp: connection reset' WHERE id = $1`, [retried]);
    await fetchAt(exhausted, 400, 'dead-pool');
    await fetchAt(fresh, 30, 'live-pool');
    // A queue lock left behind with no locked job (a pool killed between its two updates).
    await db.client.query(`UPDATE ${OWN}._private_job_queues SET locked_at = now() - interval '5 hours', locked_by = 'gone-pool' WHERE queue_name = 'orphaned'`);
    await copyAll();

    const stuck = await cli(['--config', ops(), 'jobs', 'stuck', '-o', 'json'], env);
    expect(stuck.json().summary).toMatchObject({ stuck: 2, staleQueueLocks: 1 });
    expect(stuck.json().summary.queueLocks).toEqual([expect.objectContaining({ queue: 'orphaned', lockedBy: 'gone-pool' })]);
    expect((await cli(['--config', ops(), 'jobs', 'stuck'], env)).stdout).toMatch(/Stale queue locks \(no stuck job behind them\)[\s\S]*orphaned[\s\S]*gone-pool/);
    const check = await cli(['--config', ops(), 'check', '--only', 'jobs', '-o', 'json'], env);
    const stuckCheck = check.json().items.find((i: any) => i.check === 'stuck-jobs');
    expect(stuckCheck).toMatchObject({ status: 'finding', count: 3 });
    expect(stuckCheck.breakdown).toMatchObject({ staleQueueLocks: 1 });

    const t0 = Date.now();
    const options = processSharedOptions({ connectionString: db.url, schema: OWN, logger: silent });
    await resetLockedAt(options, makeEnhancedWithPgClient(makeWithPgClientFromClient(db.client)));
    const r = await cliProcess(['--config', ops(), 'jobs', 'rescue', '--apply', '--reason', 'INC-7', '-o', 'json'], env);
    const tolerance = Date.now() - t0 + 1000;
    expect(r.code).toBe(0);
    expect(r.json().summary).toMatchObject({ rescued: 2, queueLocksReleased: 1 });

    expectSameRows(await jobs(OWN), await jobs(OPS), { nowToleranceMs: tolerance });
    expectSameRows(await queues(OWN), await queues(OPS), { nowToleranceMs: tolerance });
    const kept = (await db.client.query(`SELECT last_error FROM ${OPS}._private_jobs WHERE id = $1`, [retried])).rows[0];
    expect(kept.last_error).toBe('smtp: connection reset');
    // opsctl's reason is in the audit row, not in the queue's columns.
    const audit = await db.client.query("SELECT kind, resource_id, summary, metadata FROM audit_log WHERE kind <> 'opsctl.run' ORDER BY id");
    expect(audit.rows.map((a) => a.kind).sort()).toEqual(['job.operator_rescue', 'job.operator_rescue', 'job.queue_lock_release']);
    expect(audit.rows.find((a) => a.resource_id === retried).summary).toMatch(/INC-7/);
    expect(audit.rows.find((a) => a.kind === 'job.queue_lock_release').metadata).toMatchObject({ queue: 'orphaned', locked_by: 'gone-pool', reason: 'INC-7' });

    // graphile-worker's own runner now runs what was rescued, including the job behind the freed queue.
    const ran: string[] = [];
    await withRunner(OPS, { send_email: async (_p, h) => void ran.push(String(h.job.id)) }, async () => ran.length >= 2);
    expect(ran.sort()).toEqual([retried, blocked].sort());
  });
});

describe('graphile-worker: a stale queue lock with no stuck job at all', () => {
  it('a dry run lists it and changes nothing; --apply frees it; a lock its live pool took since is left alone', async () => {
    await add('send_email', 'orphaned', 3);
    await add('send_email', 'taken', 3);
    await db.client.query(`UPDATE ${OWN}._private_job_queues SET locked_at = now() - interval '5 hours', locked_by = 'gone-pool' WHERE queue_name IN ('orphaned', 'taken')`);
    await copyAll();
    const dry = await cli(['--config', ops(), 'jobs', 'rescue', '-o', 'json'], env);
    expect(dry.json().summary).toMatchObject({ planned: 0, staleQueueLocks: 2 });
    expect((await queues(OPS)).size).toBe(2);
    for (const q of (await queues(OPS)).values()) expect(q.locked_by).toBe('gone-pool');
    const conn = await connect(db.url);
    try {
      const { config, q } = queueFor('graphile-worker', { schema: OPS });
      const report = await remediate(conn, queueLockRemedy(q, { thresholdMs: null, actor: 't', audit: config.audit }), {
        apply: true,
        max: 10,
        batchSize: 10,
        wait: false,
        // Between plan and write, a live pool takes queue "taken" (graphile-worker's getJobs locks it anew).
        confirm: async () => {
          await db.client.query(`UPDATE ${OPS}._private_job_queues SET locked_at = now(), locked_by = 'live-pool' WHERE queue_name = 'taken'`);
          return true;
        },
      });
      expect(Object.fromEntries(report.items.map((i) => [i.queue, i.outcome]))).toEqual({ orphaned: 'released', taken: 'race-lost' });
    } finally {
      await conn.close();
    }
    const byName = new Map([...(await queues(OPS)).values()].map((x) => [x.queue_name, x]));
    expect(byName.get('orphaned')).toMatchObject({ locked_at: null, locked_by: null });
    expect(byName.get('taken')).toMatchObject({ locked_by: 'live-pool' });
    expect((await db.client.query("SELECT resource_id FROM audit_log WHERE kind = 'job.queue_lock_release'")).rows).toEqual([{ resource_id: 'orphaned' }]);
    // Through the CLI: the same lock left stale again is freed by rescue --apply even with no stuck job.
    await db.client.query(`UPDATE ${OPS}._private_job_queues SET locked_at = now() - interval '5 hours', locked_by = 'gone-pool' WHERE queue_name = 'taken'`);
    const apply = await cliProcess(['--config', ops(), 'jobs', 'rescue', '--apply', '--yes', '-o', 'json'], env);
    expect(apply.code).toBe(0);
    expect(apply.json().summary).toMatchObject({ planned: 0, queueLocksReleased: 1 });
    for (const x of (await queues(OPS)).values()) expect(x).toMatchObject({ locked_at: null, locked_by: null });
    const again = await cli(['--config', ops(), 'jobs', 'stuck', '-o', 'json'], env);
    expect(again.json().summary).toMatchObject({ stuck: 0, staleQueueLocks: 0 });
  });
});

describe('graphile-worker fidelity: retry is its own reschedule_jobs; --since sees its failure path', () => {
  it('jobs failed by its own runner are listed by --since and retried exactly as reschedule_jobs does', async () => {
    const failed: string[] = [];
    for (let i = 0; i < 3; i++) failed.push(await add('flaky', i === 2 ? 'serial' : null, 1));
    await backdate(OWN);
    // graphile-worker's own failure path (failJobs) on a real run.
    await withRunner(OWN, { flaky: async () => { throw new Error('smtp: connection reset'); } }, async () =>
      (await db.client.query(`SELECT count(*)::int AS n FROM ${OWN}._private_jobs WHERE attempts = 1 AND locked_at IS NULL AND max_attempts = 1`)).rows[0].n === 3,
    );
    // Added once the runner is gone: had it been there, the runner could hold it (locked) at the
    // moment permanently_fail_jobs runs, which skips locked jobs, and it would not be discarded.
    const manual = await add('flaky', null, 5);
    await db.client.query(`UPDATE ${OWN}._private_jobs SET created_at = now() - interval '6 hours', updated_at = now() - interval '6 hours', run_at = now() - interval '6 hours' WHERE id = $1`, [manual]);
    await db.client.query(`SELECT ${OWN}.permanently_fail_jobs(ARRAY[$1::bigint], 'bad payload')`, [manual]);

    const since = await cli(['--config', jobsConfig('graphile-worker', { schema: OWN }), 'jobs', 'discarded', '--since', '10m', '-o', 'json'], env);
    expect(since.code).toBe(0);
    expect(since.json().items.map((i: any) => i.id).sort()).toEqual([...failed, manual].sort());
    const old = await cli(['--config', jobsConfig('graphile-worker', { schema: OWN }), 'jobs', 'discarded', '-o', 'json'], env);
    for (const i of old.json().items) expect(i.ageSeconds, `job ${i.id} failed just now`).toBeLessThan(600);

    await copyAll();
    const t0 = Date.now();
    for (const id of [...failed, manual])
      await db.client.query(`SELECT ${OWN}.reschedule_jobs(ARRAY[$1::bigint], run_at := now(), max_attempts := (SELECT attempts + 1 FROM ${OWN}._private_jobs WHERE id = $1))`, [id]);
    const r = await cliProcess(['--config', ops(), 'jobs', 'retry', '--all', '--apply', '-o', 'json'], env);
    const tolerance = Date.now() - t0 + 1000;
    expect(r.json().summary).toMatchObject({ planned: 4, retried: 4 });
    expectSameRows(await jobs(OWN), await jobs(OPS), { nowToleranceMs: tolerance });

    const ran: string[] = [];
    await withRunner(OPS, { flaky: async (_p, h) => void ran.push(String(h.job.id)) }, async () => ran.length >= 4);
    expect(ran.sort()).toEqual([...failed, manual].sort());
  });
});
