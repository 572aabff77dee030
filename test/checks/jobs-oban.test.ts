import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { freshDatabase } from '../support/db.js';
import { cli, cliProcess } from '../support/cli.js';
import { connect, jobsConfig, queueFor } from '../support/jobs.js';
import { copyRows, expectSameRows, rowsOf } from '../support/fidelity.js';
import { AUDIT_LOG_SQL } from '../../src/reference/schema.js';
import { obanSchemaSql } from '../../src/reference/queues/oban.js';
import { remediate } from '../../src/engine/remediation.js';
import { rescueRemedy } from '../../src/checks/stuck-jobs.js';

// Oban is Elixir: its Lifeline rescue, retry_job and Basic engine fetch are transcribed here as
// facts (the SQL its Ecto queries issue), run on `oban_own`; opsctl runs on `oban_ops`. The
// database clock is not UTC, as on many servers: Oban's timestamps hold UTC regardless.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let env: NodeJS.ProcessEnv;
const OWN = 'oban_own';
const OPS = 'oban_ops';
const ops = () => jobsConfig('oban', { schema: OPS });

beforeAll(async () => {
  db = await freshDatabase('oban', AUDIT_LOG_SQL + obanSchemaSql(OWN) + obanSchemaSql(OPS));
  await db.client.query(`ALTER DATABASE "${db.name}" SET timezone = 'America/New_York'`);
  await db.client.end();
  db.client = new pg.Client({ connectionString: db.url });
  await db.client.connect();
  env = { DATABASE_URL: db.url };
});
afterAll(async () => {
  await db.client.end();
  await db.drop();
});
beforeEach(async () => {
  await db.client.query(`TRUNCATE ${OWN}.oban_jobs, ${OPS}.oban_jobs, audit_log`);
});

interface Seed {
  state: string;
  attempt: number;
  max: number;
  worker?: string;
  queue?: string;
  /** attempted_at this many minutes ago (UTC, as Oban writes it). */
  ranMinutesAgo?: number;
  /** discarded_at / cancelled_at this many minutes ago. */
  finalizedMinutesAgo?: number;
  errors?: string[];
}

/** A job as Oban leaves it in each state: UTC naive timestamps, {attempt, at, error} entries. */
async function job(s: Seed, schema = OWN): Promise<string> {
  const errors = (s.errors ?? []).map((e, i) => JSON.stringify({ attempt: i + 1, at: '2026-01-01T00:00:00.000000Z', error: e }));
  const r = await db.client.query(
    `INSERT INTO ${schema}.oban_jobs (state, queue, worker, args, errors, attempt, max_attempts, inserted_at, scheduled_at, attempted_at, attempted_by, discarded_at, cancelled_at, completed_at)
     VALUES ($1::${schema}.oban_job_state, $2, $3, '{"id": 1}', $4::jsonb[], $5, $6,
             timezone('UTC', now()) - interval '3 hours', timezone('UTC', now()) - interval '2 hours',
             CASE WHEN $5 > 0 THEN timezone('UTC', now()) - make_interval(mins => $7) END, CASE WHEN $5 > 0 THEN ARRAY['web.1', 'f1e2'] END,
             CASE WHEN $1 = 'discarded' THEN timezone('UTC', now()) - make_interval(mins => $8) END,
             CASE WHEN $1 = 'cancelled' THEN timezone('UTC', now()) - make_interval(mins => $8) END,
             CASE WHEN $1 = 'completed' THEN timezone('UTC', now()) - make_interval(mins => $8) END)
     RETURNING id::text`,
    [s.state, s.queue ?? 'default', s.worker ?? 'MyApp.Mailer', errors, s.attempt, s.max, s.ranMinutesAgo ?? 5, s.finalizedMinutesAgo ?? 1],
  );
  return r.rows[0].id;
}

const jobs = (s: string) => rowsOf(db.client, `SELECT * FROM ${s}.oban_jobs`);

/** Oban.Plugins.Lifeline: both updates in one transaction, rescue_after 60 minutes. */
async function lifeline(): Promise<void> {
  await db.client.query('BEGIN');
  const base = `state = 'executing' AND attempted_at < timezone('UTC', now()) - interval '60 minutes'`;
  await db.client.query(`UPDATE ${OWN}.oban_jobs SET state = 'available' WHERE ${base} AND attempt < max_attempts`);
  await db.client.query(`UPDATE ${OWN}.oban_jobs SET state = 'discarded', discarded_at = timezone('UTC', now()) WHERE ${base} AND attempt >= max_attempts`);
  await db.client.query('COMMIT');
}

/** Oban.Engines.Basic.retry_all_jobs for these ids. */
const obanRetry = (ids: string[]) =>
  db.client.query(
    `UPDATE ${OWN}.oban_jobs SET state = 'available', max_attempts = GREATEST(max_attempts, attempt + 1), scheduled_at = timezone('UTC', now()),
            completed_at = NULL, cancelled_at = NULL, discarded_at = NULL
      WHERE id IN (SELECT id FROM ${OWN}.oban_jobs WHERE id = ANY($1::bigint[]) AND state NOT IN ('available', 'executing'))`,
    [ids],
  );

/** Oban.Engines.Basic.fetch_jobs for the default queue, then the job's ack as completed. */
async function obanWork(schema: string): Promise<string[]> {
  const fetched = await db.client.query(
    `WITH subset AS (SELECT id FROM ${schema}.oban_jobs WHERE state = 'available' AND queue = 'default'
                      ORDER BY priority ASC, scheduled_at ASC, id ASC LIMIT 100 FOR UPDATE SKIP LOCKED)
     UPDATE ${schema}.oban_jobs j SET state = 'executing', attempted_at = timezone('UTC', now()), attempted_by = ARRAY['web.2', 'a9b8'], attempt = j.attempt + 1
       FROM subset WHERE j.id = subset.id RETURNING j.id::text`,
  );
  const ids = fetched.rows.map((r) => r.id);
  await db.client.query(`UPDATE ${schema}.oban_jobs SET state = 'completed', completed_at = timezone('UTC', now()) WHERE id = ANY($1::bigint[])`, [ids]);
  return ids.sort();
}

describe('jobs stuck and discarded (Oban)', () => {
  it('executing past 1h (Lifeline) is stuck, on UTC timestamps whatever the server time zone', async () => {
    const stuck = await job({ state: 'executing', attempt: 1, max: 20, ranMinutesAgo: 90, worker: 'MyApp.Importer' }, OPS);
    await job({ state: 'executing', attempt: 1, max: 20, ranMinutesAgo: 50 }, OPS);
    await job({ state: 'available', attempt: 0, max: 20 }, OPS);
    const r = await cli(['--config', ops(), 'jobs', 'stuck', '-o', 'json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = r.json();
    expect(out.items).toHaveLength(1);
    expect(out.items[0]).toMatchObject({ id: stuck, kind: 'MyApp.Importer', queue: 'default', state: 'executing', attempt: 1, maxAttempts: 20, threshold: '1h', worker: 'web.1/f1e2', wouldBecome: 'available' });
    expect(out.items[0].ageSeconds).toBeGreaterThanOrEqual(90 * 60 - 5);
    expect(out.items[0].ageSeconds).toBeLessThan(91 * 60);
    expect(Math.abs(new Date(out.items[0].attemptedAt).getTime() - (Date.now() - 90 * 60_000))).toBeLessThan(60_000);
    expect(out.summary).toMatchObject({ stuck: 1, preset: 'oban', threshold: '1h' });
  });

  it('discarded jobs with their last error, --since on discarded_at (UTC), cancelled when asked', async () => {
    const a = await job({ state: 'discarded', attempt: 3, max: 3, finalizedMinutesAgo: 10, errors: ['a', '** (RuntimeError) smtp 421'] }, OPS);
    const b = await job({ state: 'discarded', attempt: 3, max: 3, finalizedMinutesAgo: 120, errors: ['x'] }, OPS);
    const c = await job({ state: 'cancelled', attempt: 1, max: 3, finalizedMinutesAgo: 5 }, OPS);
    await job({ state: 'completed', attempt: 1, max: 3 }, OPS);
    const r = await cli(['--config', ops(), 'jobs', 'discarded', '-o', 'json'], env);
    expect(r.json().items.map((i: any) => i.id)).toEqual([a, b]);
    expect(r.json().items[0]).toMatchObject({ state: 'discarded', lastError: '** (RuntimeError) smtp 421', kind: 'MyApp.Mailer' });
    expect(r.json().items[0].ageSeconds).toBeGreaterThanOrEqual(600 - 5);
    expect(r.json().items[0].ageSeconds).toBeLessThan(700);
    expect((await cli(['--config', ops(), 'jobs', 'discarded', '--since', '1h', '-o', 'json'], env)).json().items.map((i: any) => i.id)).toEqual([a]);
    expect((await cli(['--config', ops(), 'jobs', 'discarded', '--include-cancelled', '-o', 'json'], env)).json().items.map((i: any) => i.id)).toEqual([c, a, b]);
  });

  it('CAS: a job fetched again since the plan is race-lost and left alone', async () => {
    const id = await job({ state: 'executing', attempt: 1, max: 20, ranMinutesAgo: 90 }, OPS);
    const conn = await connect(db.url);
    try {
      const { config, q } = queueFor('oban', { schema: OPS });
      const report = await remediate(conn, rescueRemedy(q, { filter: { thresholdMs: 3_600_000 }, actor: 't', audit: config.audit }), {
        apply: true,
        max: 10,
        batchSize: 10,
        wait: false,
        confirm: async () => {
          // Lifeline ran, then a producer fetched it again.
          await db.client.query(`UPDATE ${OPS}.oban_jobs SET state = 'executing', attempt = 2, attempted_at = timezone('UTC', now()) - interval '2 hours' WHERE id = $1`, [id]);
          return true;
        },
      });
      expect(report.items.map((i) => i.outcome)).toEqual(['race-lost']);
      expect((await db.client.query(`SELECT state::text, attempt FROM ${OPS}.oban_jobs WHERE id = $1`, [id])).rows[0]).toEqual({ state: 'executing', attempt: 2 });
    } finally {
      await conn.close();
    }
  });
});

describe('Oban fidelity', () => {
  it('rescue writes what Lifeline writes (and nothing else); then its fetch runs the rescued jobs', async () => {
    const retry = await job({ state: 'executing', attempt: 1, max: 20, ranMinutesAgo: 90, errors: [] });
    const again = await job({ state: 'executing', attempt: 2, max: 3, ranMinutesAgo: 300, errors: ['** (RuntimeError) boom'] });
    const exhausted = await job({ state: 'executing', attempt: 3, max: 3, ranMinutesAgo: 120, errors: ['e1', 'e2'] });
    await job({ state: 'executing', attempt: 1, max: 20, ranMinutesAgo: 10 });
    await copyRows(db.client, OWN, OPS, 'oban_jobs');

    const t0 = Date.now();
    await lifeline();
    const r = await cliProcess(['--config', ops(), 'jobs', 'rescue', '--apply', '--reason', 'INC-4', '-o', 'json'], env);
    const t1 = Date.now();
    expect(r.code).toBe(0);
    expect(r.json().summary).toMatchObject({ planned: 3, rescued: 3, 'rescued-available': 2, 'rescued-discarded': 1 });
    expectSameRows(await jobs(OWN), await jobs(OPS), { nowToleranceMs: t1 - t0 + 1000 });
    const ex = (await jobs(OPS)).get(exhausted)!;
    expect(ex.state).toBe('discarded');
    expect(ex.errors).toHaveLength(2);
    const audit = await db.client.query(`SELECT metadata FROM audit_log WHERE resource_id = $1`, [exhausted]);
    expect(audit.rows[0].metadata).toMatchObject({ preset: 'oban', from_state: 'executing', to_state: 'discarded', reason: 'INC-4' });

    expect(await obanWork(OPS)).toEqual([retry, again].sort());
  });

  it('retry writes what retry_job writes: max_attempts = GREATEST(max_attempts, attempt + 1); then its fetch runs them within attempt_range', async () => {
    const exhausted = await job({ state: 'discarded', attempt: 3, max: 3, finalizedMinutesAgo: 30, errors: ['e1', 'e2', 'e3'] });
    const early = await job({ state: 'discarded', attempt: 1, max: 5, finalizedMinutesAgo: 20, errors: ['unknown worker'] });
    const cancelled = await job({ state: 'cancelled', attempt: 2, max: 2, finalizedMinutesAgo: 10 });
    await copyRows(db.client, OWN, OPS, 'oban_jobs');

    const t0 = Date.now();
    await obanRetry([exhausted, early, cancelled]);
    const r = await cliProcess(['--config', ops(), 'jobs', 'retry', '--all', '--include-cancelled', '--apply', '-o', 'json'], env);
    const t1 = Date.now();
    expect(r.json().summary).toMatchObject({ planned: 3, retried: 3 });
    expectSameRows(await jobs(OWN), await jobs(OPS), { nowToleranceMs: t1 - t0 + 1000 });
    expect((await jobs(OPS)).get(exhausted)).toMatchObject({ attempt: 3, max_attempts: 4, discarded_at: null });
    expect((await jobs(OPS)).get(early)).toMatchObject({ max_attempts: 5 });

    expect(await obanWork(OPS)).toEqual([exhausted, early, cancelled].sort());
  });
});
