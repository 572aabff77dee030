import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { Logger, run, runMigrations } from 'graphile-worker';
import { freshDatabase } from '../support/db.js';
import { cli } from '../support/cli.js';
import { connect, jobsConfig, queueFor, until } from '../support/jobs.js';
import { AUDIT_LOG_SQL } from '../../src/reference/schema.js';
import { remediate } from '../../src/engine/remediation.js';
import { retryRemedy } from '../../src/checks/discarded-jobs.js';
import { rescueRemedy } from '../../src/checks/stuck-jobs.js';

// graphile-worker's own schema, created by its own migrations (graphile-worker 0.17.x).
let db: Awaited<ReturnType<typeof freshDatabase>>;
let env: NodeJS.ProcessEnv;
let gw: string;
const silent = new Logger(() => () => {});

beforeAll(async () => {
  db = await freshDatabase('gw', AUDIT_LOG_SQL);
  await runMigrations({ connectionString: db.url, schema: 'graphile_worker', logger: silent });
  env = { DATABASE_URL: db.url };
  gw = jobsConfig('graphile-worker');
});
afterAll(async () => {
  await db.drop();
});
beforeEach(async () => {
  await db.client.query('TRUNCATE graphile_worker._private_jobs, audit_log');
  await db.client.query('DELETE FROM graphile_worker._private_job_queues');
});

/** Adds a job with graphile-worker's own add_job. */
async function add(task = 'send_email', opts: { queue?: string; maxAttempts?: number } = {}): Promise<string> {
  const r = await db.client.query('SELECT id::text FROM graphile_worker.add_job($1, $2::json, queue_name := $3, max_attempts := $4)', [task, JSON.stringify({}), opts.queue ?? null, opts.maxAttempts ?? 3]);
  return r.rows[0].id;
}

/** What graphile-worker's getJobs does to a job (and its named queue) it fetches, back-dated. */
async function lock(id: string, minutesAgo: number, worker = 'dead-pool'): Promise<void> {
  await db.client.query(
    `WITH j AS (UPDATE graphile_worker._private_jobs SET attempts = attempts + 1, locked_by = $2, locked_at = now() - make_interval(mins => $3) WHERE id = $1 RETURNING job_queue_id, locked_at)
     UPDATE graphile_worker._private_job_queues q SET locked_by = $2, locked_at = j.locked_at FROM j WHERE q.id = j.job_queue_id`,
    [id, worker, minutesAgo],
  );
}

/** A job that failed every attempt, the way graphile-worker leaves it. */
async function failed(task: string, error: string, attempts = 3): Promise<string> {
  const id = await add(task, { maxAttempts: attempts });
  await db.client.query('UPDATE graphile_worker._private_jobs SET attempts = max_attempts, last_error = $2 WHERE id = $1', [id, error]);
  return id;
}

const row = async (id: string) =>
  (await db.client.query('SELECT attempts, max_attempts, locked_at, locked_by, last_error, run_at, is_available FROM graphile_worker._private_jobs WHERE id = $1', [id])).rows[0];

describe('graphile-worker: stuck and discarded', () => {
  it('classifies by its own 4h rule: locked past 4h is stuck; a 1h lock, waiting and permanently failed jobs are not', async () => {
    const stuck = await add('import_csv', { queue: 'imports' });
    await lock(stuck, 300);
    const recent = await add();
    await lock(recent, 60);
    await add();
    await failed('send_email', 'boom');
    const r = await cli(['--config', gw, 'jobs', 'stuck', '-o', 'json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = r.json();
    expect(out.items).toHaveLength(1);
    expect(out.items[0]).toMatchObject({ id: stuck, kind: 'import_csv', queue: 'imports', state: 'locked', attempt: 1, maxAttempts: 3, worker: 'dead-pool', threshold: '4h', wouldBecome: 'retryable' });
    expect(out.summary).toMatchObject({ stuck: 1, threshold: '4h', preset: 'graphile-worker' });
    const wider = await cli(['--config', gw, 'jobs', 'stuck', '--older-than', '30m', '-o', 'json'], env);
    expect(wider.json().items.map((i: any) => i.id)).toEqual([stuck, recent]);
  });

  it('lists permanently failed jobs with last_error, grouped by task and error class', async () => {
    const a = await failed('send_email', 'SMTP 421 for user 17');
    const b = await failed('send_email', 'SMTP 421 for user 99');
    const c = await failed('import_csv', 'bad header');
    await add();
    const r = await cli(['--config', gw, 'jobs', 'discarded', '-o', 'json'], env);
    expect(r.code).toBe(0);
    const out = r.json();
    expect(out.items.map((i: any) => i.id).sort()).toEqual([a, b, c].sort());
    expect(out.items.find((i: any) => i.id === c)).toMatchObject({ kind: 'import_csv', state: 'failed', attempt: 3, maxAttempts: 3, lastError: 'bad header' });
    expect(out.summary.byErrorClass[0]).toMatchObject({ errorClass: 'SMTP <n> for user <n>', count: 2, kinds: ['send_email'] });
  });

  it('a missing schema names the preset and the table', async () => {
    const r = await cli(['--config', jobsConfig('graphile-worker', { schema: 'gw_nowhere' }), 'jobs', 'stuck'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/table gw_nowhere\._private_jobs of the graphile-worker preset \(jobs\.queue graphile-worker\) does not exist/);
  });
});

describe('graphile-worker: rescue and retry', () => {
  it('rescue does what resetLockedAt does, for the planned jobs: unlocks job and queue; no attempts left stays failed', async () => {
    const retryable = await add('send_email', { queue: 'mail' });
    await lock(retryable, 300);
    const exhausted = await add('send_email', { maxAttempts: 1 });
    await lock(exhausted, 300);
    const r = await cli(['--config', gw, 'jobs', 'rescue', '--apply', '--reason', 'INC-5', '-o', 'json'], env);
    expect(r.code).toBe(0);
    expect(r.json().summary).toMatchObject({ planned: 2, rescued: 2, 'rescued-retryable': 1, 'rescued-discarded': 1 });
    const a = await row(retryable);
    expect(a).toMatchObject({ attempts: 1, locked_at: null, locked_by: null, is_available: true, last_error: null });
    const queue = (await db.client.query("SELECT locked_at, locked_by FROM graphile_worker._private_job_queues WHERE queue_name = 'mail'")).rows[0];
    expect(queue).toEqual({ locked_at: null, locked_by: null });
    expect(await row(exhausted)).toMatchObject({ attempts: 1, max_attempts: 1, locked_at: null, is_available: false });
    const audit = await db.client.query("SELECT resource_type, metadata FROM audit_log WHERE kind = 'job.operator_rescue'");
    expect(audit.rowCount).toBe(2);
    expect(audit.rows[0].resource_type).toBe('_private_jobs');
    expect(audit.rows[0].metadata).toMatchObject({ reason: 'INC-5' });
    expect((await cli(['--config', gw, 'jobs', 'rescue', '--apply', '-o', 'json'], env)).json().summary.planned).toBe(0);
  });

  it('retry gives a permanently failed job one more attempt (reschedule_jobs: run_at now, max_attempts = attempts + 1), keeping last_error', async () => {
    const id = await failed('send_email', 'boom');
    const waiting = await add();
    const r = await cli(['--config', gw, 'jobs', 'retry', '--kind', 'send_email', '--apply', '-o', 'json'], env);
    expect(r.code).toBe(0);
    expect(r.json().summary).toMatchObject({ planned: 1, retried: 1 });
    expect(await row(id)).toMatchObject({ attempts: 3, max_attempts: 4, last_error: 'boom', is_available: true });
    expect(await row(waiting)).toMatchObject({ attempts: 0, max_attempts: 3 });
    expect((await cli(['--config', gw, 'jobs', 'retry', '--all', '--apply', '-o', 'json'], env)).json().summary.planned).toBe(0);
  });

  it('CAS: a job re-locked by another worker, or rescheduled by someone else, since the plan is left alone', async () => {
    const relocked = await add();
    await lock(relocked, 300);
    const conn = await connect(db.url);
    try {
      const { config, q } = queueFor('graphile-worker');
      const rescue = await remediate(conn, rescueRemedy(q, { filter: { thresholdMs: 4 * 3_600_000 }, actor: 't', audit: config.audit }), {
        apply: true,
        max: 10,
        batchSize: 10,
        wait: false,
        confirm: async () => {
          // graphile-worker's own resetLockedAt ran, and a live worker fetched the job again.
          await db.client.query('UPDATE graphile_worker._private_jobs SET locked_at = NULL, locked_by = NULL WHERE id = $1', [relocked]);
          await lock(relocked, 0, 'live-pool');
          return true;
        },
      });
      expect(rescue.items.map((i) => i.outcome)).toEqual(['race-lost']);
      expect(await row(relocked)).toMatchObject({ attempts: 2, locked_by: 'live-pool', last_error: null });

      const dead = await failed('send_email', 'boom');
      const retry = await remediate(conn, retryRemedy(q, { filter: { includeCancelled: false }, actor: 't', audit: config.audit }), {
        apply: true,
        max: 10,
        batchSize: 10,
        wait: false,
        confirm: async () => {
          await db.client.query('SELECT graphile_worker.reschedule_jobs(ARRAY[$1::bigint], run_at := now(), attempts := 0)', [dead]);
          return true;
        },
      });
      expect(retry.items.map((i) => i.outcome)).toEqual(['not-discarded-anymore']);
      expect(await row(dead)).toMatchObject({ attempts: 0, max_attempts: 3 });
    } finally {
      await conn.close();
    }
  });
});

describe('graphile-worker: races against its own runner', () => {
  async function withRunner<T>(fn: (executed: string[]) => Promise<T>): Promise<{ result: T; executed: string[] }> {
    const executed: string[] = [];
    const runner = await run({
      connectionString: db.url,
      schema: 'graphile_worker',
      concurrency: 4,
      pollInterval: 50,
      noHandleSignals: true,
      logger: silent,
      taskList: {
        send_email: async (_payload, helpers) => {
          executed.push(String(helpers.job.id));
        },
      },
    });
    try {
      const result = await fn(executed);
      await until(async () => (await db.client.query('SELECT count(*)::int AS n FROM graphile_worker._private_jobs')).rows[0].n === 0);
      return { result, executed };
    } finally {
      await runner.stop();
    }
  }

  it('retry --all while the runner polls: each job retried once and run exactly once', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) ids.push(await failed('send_email', `boom ${i}`));
    const { result, executed } = await withRunner(() => cli(['--config', gw, 'jobs', 'retry', '--all', '--apply', '--batch-size', '7', '-o', 'json'], env));
    expect(result.code).toBe(0);
    expect(result.json().summary).toMatchObject({ planned: 60, retried: 60, errored: 0 });
    expect([...executed].sort()).toEqual([...ids].sort());
  });

  it('rescue while a late worker completes some stuck jobs: each job finished exactly once, by one or the other; queue locks released', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      const id = await add('send_email', { queue: i % 2 ? `serial-${i}` : undefined });
      await lock(id, 120);
      ids.push(id);
    }
    const late = new pg.Client({ connectionString: db.url });
    await late.connect();
    const lateDone: string[] = [];
    let stop = false;
    const loop = (async () => {
      for (let n = 0; !stop; n++) {
        const id = ids[(n * 7) % ids.length];
        // The dead worker was only slow: it finishes its job as graphile-worker's completeJobs
        // does (delete it, release its queue).
        const r = await late.query(
          `WITH j AS (DELETE FROM graphile_worker._private_jobs WHERE id = $1 AND locked_by = 'dead-pool' RETURNING id, job_queue_id),
                q AS (UPDATE graphile_worker._private_job_queues q SET locked_by = NULL, locked_at = NULL FROM j WHERE q.id = j.job_queue_id AND q.locked_by = 'dead-pool')
           SELECT id::text FROM j`,
          [id],
        );
        if (r.rowCount) lateDone.push(id);
        await new Promise((res) => setTimeout(res, 1));
      }
    })();
    try {
      const { result, executed } = await withRunner(() => cli(['--config', gw, 'jobs', 'rescue', '--older-than', '1h', '--apply', '--batch-size', '5', '-o', 'json'], env));
      stop = true;
      await loop;
      expect(result.code).toBe(0);
      const s = result.json().summary;
      expect(executed.filter((id) => lateDone.includes(id))).toEqual([]);
      expect([...executed, ...lateDone].sort()).toEqual([...ids].sort());
      expect(new Set(executed).size).toBe(executed.length);
      expect(executed.length).toBe(s.rescued);
      expect(s.rescued + s['race-lost'] + s['skipped-locked']).toBe(s.planned);
      const locked = await db.client.query('SELECT count(*)::int AS n FROM graphile_worker._private_job_queues WHERE locked_at IS NOT NULL');
      expect(locked.rows[0].n).toBe(0);
    } finally {
      stop = true;
      await loop;
      await late.end();
    }
  });
});
