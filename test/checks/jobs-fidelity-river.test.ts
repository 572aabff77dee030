import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/db.js';
import { cli, cliProcess } from '../support/cli.js';
import { jobsConfig } from '../support/jobs.js';
import { copyRows, expectSameRows, rowsOf, withoutTimes, type Row } from '../support/fidelity.js';
import { AUDIT_LOG_SQL } from '../../src/reference/schema.js';
import { riverSchemaSql } from '../../src/reference/queues/river.js';

// River is Go: its rescue, retry and fetch are transcribed here as facts (the SQL of its
// riverpgxv5 driver and the decisions of its JobRescuer and DefaultClientRetryPolicy), run on
// `river_own`; opsctl runs on `river_ops`; then every column is compared.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let env: NodeJS.ProcessEnv;
const OWN = 'river_own';
const OPS = 'river_ops';
const ops = () => jobsConfig('river', { schema: OPS });

beforeAll(async () => {
  db = await freshDatabase('riverfid', AUDIT_LOG_SQL + riverSchemaSql(OWN) + riverSchemaSql(OPS));
  env = { DATABASE_URL: db.url };
});
afterAll(async () => {
  await db.drop();
});
beforeEach(async () => {
  await db.client.query(`TRUNCATE ${OWN}.river_job, ${OPS}.river_job, audit_log`);
});

interface Seed {
  state: string;
  attempt: number;
  max: number;
  errors?: number;
  metadata?: Record<string, unknown>;
}

async function seed(s: Seed): Promise<string> {
  const finalized = ['cancelled', 'completed', 'discarded'].includes(s.state);
  const errors = Array.from({ length: s.errors ?? 0 }, (_, i) => JSON.stringify({ at: '2026-01-01T00:00:00Z', attempt: i + 1, error: `smtp: 421 try later (${i})`, trace: 'goroutine 1' }));
  const r = await db.client.query(
    `INSERT INTO ${OWN}.river_job (state, kind, queue, args, attempt, max_attempts, attempted_at, attempted_by, created_at, finalized_at, scheduled_at, errors, metadata)
     VALUES ($1::${OWN}.river_job_state, 'send_email', 'default', '{"to":"a@b"}', $2, $3, now() - interval '3 hours', ARRAY['host-1'],
             now() - interval '5 hours', CASE WHEN $4 THEN now() - interval '2 hours' END, now() - interval '4 hours', $5::jsonb[], $6)
     RETURNING id::text`,
    [s.state, s.attempt, s.max, finalized, errors.length ? errors : null, s.metadata ?? {}],
  );
  return r.rows[0].id;
}

const jobs = (s: string) => rowsOf(db.client, `SELECT * FROM ${s}.river_job`);

/** River's JobRescuer decision and DefaultClientRetryPolicy.NextRetry, then JobRescueMany. */
async function riverRescue(horizon: string): Promise<void> {
  const stuck = await db.client.query(`SELECT * FROM ${OWN}.river_job WHERE state = 'running' AND attempted_at < now() - $1::interval ORDER BY id`, [horizon]);
  const now = new Date();
  const p = { id: [] as string[], error: [] as string[], finalizedAt: [] as string[], scheduledAt: [] as string[], state: [] as string[] };
  for (const job of stuck.rows) {
    const zero = '0001-01-01 00:00:00+00';
    let state: string;
    let finalizedAt = zero;
    let scheduledAt = job.scheduled_at.toISOString();
    if (job.metadata.cancel_attempted_at) [state, finalizedAt] = ['cancelled', now.toISOString()];
    else if (job.attempt < Math.max(job.max_attempts, 0)) {
      const errorCount = (job.errors?.length ?? 0) + 1;
      const base = errorCount ** 4;
      state = 'retryable';
      scheduledAt = new Date(now.getTime() + (base + base * (Math.random() * 0.2 - 0.1)) * 1000).toISOString();
    } else [state, finalizedAt] = ['discarded', now.toISOString()];
    p.id.push(job.id);
    p.error.push(JSON.stringify({ at: now.toISOString(), attempt: Math.max(job.attempt, 0), error: 'Stuck job rescued by Rescuer', trace: 'TODO' }));
    p.finalizedAt.push(finalizedAt);
    p.scheduledAt.push(scheduledAt);
    p.state.push(state);
  }
  await db.client.query(
    `UPDATE ${OWN}.river_job
        SET errors = array_append(errors, updated_job.error),
            finalized_at = updated_job.finalized_at,
            scheduled_at = updated_job.scheduled_at,
            metadata = river_job.metadata || jsonb_build_object('river:rescue_count',
              coalesce(CASE WHEN jsonb_typeof(river_job.metadata -> 'river:rescue_count') = 'number' THEN (river_job.metadata ->> 'river:rescue_count')::int END, 0) + 1),
            state = updated_job.state
       FROM (SELECT unnest($1::bigint[]) AS id, unnest($2::jsonb[]) AS error,
                    nullif(unnest($3::timestamptz[]), '0001-01-01 00:00:00 +0000') AS finalized_at,
                    unnest($4::timestamptz[]) AS scheduled_at, unnest($5::text[])::${OWN}.river_job_state AS state) AS updated_job
      WHERE river_job.id = updated_job.id`,
    [p.id, p.error, p.finalizedAt, p.scheduledAt, p.state],
  );
}

/** River's JobRetry, one job. */
const riverRetry = (id: string) =>
  db.client.query(
    `WITH job_to_update AS (SELECT id FROM ${OWN}.river_job WHERE river_job.id = $1 FOR UPDATE)
     UPDATE ${OWN}.river_job SET state = 'available',
            max_attempts = CASE WHEN attempt = max_attempts THEN max_attempts + 1 ELSE max_attempts END,
            finalized_at = NULL, scheduled_at = now()
       FROM job_to_update
      WHERE river_job.id = job_to_update.id AND river_job.state != 'running'
        AND NOT (river_job.state = 'available' AND river_job.scheduled_at < now())`,
    [id],
  );

/** River's JobSchedule (no unique keys here), JobGetAvailable and completion, at River's `now` parameter. */
async function riverWork(schema: string, now: string): Promise<string[]> {
  await db.client.query(
    `UPDATE ${schema}.river_job SET state = 'available'
      WHERE id IN (SELECT id FROM ${schema}.river_job WHERE state IN ('retryable', 'scheduled') AND priority >= 0 AND queue IS NOT NULL AND scheduled_at <= $1::timestamptz
                    ORDER BY priority, scheduled_at, id FOR UPDATE)`,
    [now],
  );
  const fetched = await db.client.query(
    `WITH locked_jobs AS (
       SELECT * FROM ${schema}.river_job WHERE state = 'available' AND queue = 'default' AND scheduled_at <= $1::timestamptz
        ORDER BY priority ASC, scheduled_at ASC, id ASC LIMIT 100 FOR UPDATE SKIP LOCKED)
     UPDATE ${schema}.river_job SET state = 'running', attempt = river_job.attempt + 1, attempted_at = $1::timestamptz,
            attempted_by = array_append(river_job.attempted_by, 'host-2')
       FROM locked_jobs WHERE river_job.id = locked_jobs.id RETURNING river_job.id::text`,
    [now],
  );
  const ids = fetched.rows.map((r) => r.id);
  await db.client.query(`UPDATE ${schema}.river_job SET state = 'completed', finalized_at = now() WHERE id = ANY($1::bigint[]) AND state = 'running'`, [ids]);
  return ids.sort();
}

/** errors: entry count, attempts and times compared; the message and trace are free text. */
const errorsShape = (column: string, v: unknown) =>
  column === 'errors' && Array.isArray(v) ? v.map((e: any) => ({ attempt: e.attempt, at: withoutTimes(e.at) })) : v;

describe('River fidelity: rescue is its JobRescuer', () => {
  it('same rows as River: state, finalized_at, scheduled_at by its retry policy, errors entry, river:rescue_count; then River fetches them', async () => {
    const fresh = await seed({ state: 'running', attempt: 1, max: 3 });
    const twoErrors = await seed({ state: 'running', attempt: 3, max: 5, errors: 2, metadata: { 'river:rescue_count': 2, tenant: 't1' } });
    const badCount = await seed({ state: 'running', attempt: 1, max: 3, metadata: { 'river:rescue_count': 'x' } });
    const exhausted = await seed({ state: 'running', attempt: 3, max: 3, errors: 2 });
    const cancelAsked = await seed({ state: 'running', attempt: 1, max: 3, metadata: { cancel_attempted_at: '2026-01-01T00:00:00Z' } });
    await seed({ state: 'discarded', attempt: 3, max: 3, errors: 3 });
    await copyRows(db.client, OWN, OPS, 'river_job');

    const t0 = Date.now();
    await riverRescue('1 hour');
    const r = await cliProcess(['--config', ops(), 'jobs', 'rescue', '--apply', '-o', 'json'], env);
    const t1 = Date.now();
    expect(r.code).toBe(0);
    expect(r.json().summary).toMatchObject({ rescued: 5, 'rescued-retryable': 3, 'rescued-discarded': 1, 'rescued-cancelled': 1 });

    const own = await jobs(OWN);
    const opsRows = await jobs(OPS);
    const inPolicy = (v: unknown, row: Row, side: string) => {
      if (row.state !== 'retryable') return;
      const base = ((row.errors as unknown[]).length) ** 4 * 1000; // the rescue's entry is the (len + 1)th
      const at = (v as Date).getTime();
      expect(at, `${side} row ${row.id}: scheduled_at within River's ±10% of ${base / 1000}s`).toBeGreaterThanOrEqual(t0 + base * 0.9 - 1000);
      expect(at, `${side} row ${row.id}: scheduled_at within River's ±10% of ${base / 1000}s`).toBeLessThanOrEqual(t1 + base * 1.1 + 1000);
    };
    expectSameRows(own, opsRows, {
      nowToleranceMs: t1 - t0 + 1000,
      normalise: errorsShape,
      jittered: {
        scheduled_at: (a, b, row) => {
          if (row.state === 'retryable') {
            inPolicy(a, row, 'River');
            inPolicy(b, opsRows.get(String(row.id))!, 'opsctl');
          } else expect(b).toEqual(a);
        },
      },
    });
    expect(opsRows.get(twoErrors)!.metadata).toEqual({ 'river:rescue_count': 3, tenant: 't1' });
    expect(opsRows.get(badCount)!.metadata).toEqual({ 'river:rescue_count': 1 });
    expect(opsRows.get(exhausted)!.state).toBe('discarded');
    expect(opsRows.get(cancelAsked)!.state).toBe('cancelled');

    // River's own scheduler and fetch, at a `now` past every backoff, run what opsctl rescued.
    const later = new Date(Date.now() + 3 * 86_400_000).toISOString();
    expect(await riverWork(OPS, later)).toEqual([fresh, twoErrors, badCount].sort());
    expect(await riverWork(OWN, later)).toEqual([fresh, twoErrors, badCount].sort());
  });
});

describe('River fidelity: retry is its JobRetry', () => {
  it('same rows as JobRetry: max_attempts raised only when attempt = max_attempts; then River fetches them', async () => {
    const exhausted = await seed({ state: 'discarded', attempt: 3, max: 3, errors: 3 });
    const early = await seed({ state: 'discarded', attempt: 1, max: 3, errors: 1 });
    // max_attempts lowered after the job ran: attempt > max_attempts; JobRetry does not raise it.
    const over = await seed({ state: 'discarded', attempt: 5, max: 3, errors: 5, metadata: { 'river:rescue_count': 1 } });
    const cancelled = await seed({ state: 'cancelled', attempt: 1, max: 3, metadata: { cancel_attempted_at: '2026-01-01T00:00:00Z' } });
    await copyRows(db.client, OWN, OPS, 'river_job');

    const t0 = Date.now();
    for (const id of [exhausted, early, over, cancelled]) await riverRetry(id);
    const r = await cliProcess(['--config', ops(), 'jobs', 'retry', '--all', '--include-cancelled', '--apply', '-o', 'json'], env);
    const t1 = Date.now();
    expect(r.json().summary).toMatchObject({ planned: 4, retried: 4 });
    expectSameRows(await jobs(OWN), await jobs(OPS), { nowToleranceMs: t1 - t0 + 1000 });
    expect((await jobs(OPS)).get(over)).toMatchObject({ attempt: 5, max_attempts: 3 });

    const now = new Date(Date.now() + 1000).toISOString();
    expect(await riverWork(OPS, now)).toEqual([exhausted, early, over, cancelled].sort());
  });
});
