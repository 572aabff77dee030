import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { freshDatabase, tableChecksum } from '../support/db.js';
import { cli } from '../support/cli.js';
import { connect, jobsConfig, queueFor, until } from '../support/jobs.js';
import { REFERENCE_SCHEMA_SQL } from '../../src/reference/schema.js';
import { RIVER_SCHEMA_SQL } from '../../src/reference/queues/river.js';
import { remediate } from '../../src/engine/remediation.js';
import { retryRemedy } from '../../src/checks/discarded-jobs.js';
import { rescueRemedy } from '../../src/checks/stuck-jobs.js';

// River's own schema (main migrations 001–006) next to the reference tables of the other checks.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let env: NodeJS.ProcessEnv;
let river: string;

beforeAll(async () => {
  db = await freshDatabase('river', REFERENCE_SCHEMA_SQL + RIVER_SCHEMA_SQL);
  env = { DATABASE_URL: db.url };
  river = jobsConfig('river');
});
afterAll(async () => {
  await db.drop();
});
beforeEach(async () => {
  await db.client.query('TRUNCATE river_job, audit_log');
});

interface Seed {
  state: string;
  kind?: string;
  queue?: string;
  attempt?: number;
  max?: number;
  /** attempted_at this many minutes ago (running jobs). */
  ranMinutesAgo?: number;
  /** finalized_at this many minutes ago (finalized states). */
  finalizedMinutesAgo?: number;
  errors?: string[];
  metadata?: Record<string, unknown>;
}

/** Inserts a job the way River leaves it in each state (finalized_at iff finalized). */
async function job(s: Seed, c: pg.Client = db.client): Promise<string> {
  const finalized = ['cancelled', 'completed', 'discarded'].includes(s.state);
  const errors = (s.errors ?? []).map((e, i) => JSON.stringify({ at: new Date().toISOString(), attempt: i + 1, error: e, trace: '' }));
  const r = await c.query(
    `INSERT INTO river_job (state, kind, queue, args, attempt, max_attempts, attempted_at, attempted_by, finalized_at, scheduled_at, errors, metadata)
     VALUES ($1::river_job_state, $2, $3, '{}', $4, $5,
             CASE WHEN $6::int IS NULL THEN NULL ELSE now() - make_interval(mins => $6::int) END, ARRAY['host-1_worker'],
             CASE WHEN $7 THEN now() - make_interval(mins => coalesce($8::int, 0)) END,
             now() - interval '3 hours', $9::jsonb[], $10)
     RETURNING id::text`,
    [s.state, s.kind ?? 'send_email', s.queue ?? 'default', s.attempt ?? 1, s.max ?? 3, s.ranMinutesAgo ?? (s.state === 'running' || finalized ? 5 : null), finalized, s.finalizedMinutesAgo ?? null, errors.length ? errors : null, s.metadata ?? {}],
  );
  return r.rows[0].id;
}

const row = async (id: string) =>
  (await db.client.query('SELECT state::text, attempt, max_attempts, finalized_at, scheduled_at, errors, attempted_at FROM river_job WHERE id = $1', [id])).rows[0];
const lastError = (r: { errors: Array<{ error: string }> | null }) => r.errors?.[r.errors.length - 1]?.error;

describe('jobs stuck (River)', () => {
  it('classifies: running past 1h is stuck; fresh running and other states are not', async () => {
    const stuck = [await job({ state: 'running', ranMinutesAgo: 61 }), await job({ state: 'running', ranMinutesAgo: 300, kind: 'import_csv' })];
    await job({ state: 'running', ranMinutesAgo: 59 });
    await job({ state: 'running', ranMinutesAgo: 10 });
    for (const state of ['available', 'retryable', 'scheduled', 'completed', 'discarded', 'cancelled']) await job({ state, ranMinutesAgo: 600 });
    const r = await cli(['--config', river, 'jobs', 'stuck', '-o', 'json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = r.json();
    expect(out.command).toBe('jobs stuck');
    expect(out.items.map((i: any) => i.id)).toEqual([stuck[1], stuck[0]]);
    expect(out.items[0]).toMatchObject({ kind: 'import_csv', queue: 'default', state: 'running', attempt: 1, maxAttempts: 3, threshold: '1h', worker: 'host-1_worker', wouldBecome: 'retryable' });
    expect(out.items[0].ageSeconds).toBeGreaterThanOrEqual(300 * 60 - 5);
    expect(out.summary).toMatchObject({ stuck: 2, shown: 2, preset: 'river', threshold: '1h' });

    const wider = await cli(['--config', river, 'jobs', 'stuck', '--older-than', '30m', '--kind', 'send_email', '-o', 'json'], env);
    expect(wider.json().summary.stuck).toBe(2);
    const table = await cli(['--config', river, 'jobs', 'stuck'], env);
    expect(table.stdout).toContain('River jobs running for longer than 1h in river_job');
    expect(table.stdout).not.toMatch(/\u001b\[/);
  });

  it('filters by queue and honours jobs.rescueAfter', async () => {
    await job({ state: 'running', ranMinutesAgo: 20, queue: 'critical' });
    await job({ state: 'running', ranMinutesAgo: 20, queue: 'default' });
    const r = await cli(['--config', jobsConfig('river', { rescueAfter: '15m' }), 'jobs', 'stuck', '--queue', 'critical', '-o', 'json'], env);
    expect(r.json().items.map((i: any) => i.queue)).toEqual(['critical']);
    expect(r.json().summary.threshold).toBe('15m');
  });

  it('without jobs.queue: one sentence, exit 2; a missing table names the preset and the table, exit 2', async () => {
    const none = await cli(['jobs', 'stuck'], env);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/set jobs\.queue to river, graphile-worker, pg-boss or oban/);
    expect(none.stderr.trim().split('\n')).toHaveLength(1);
    const unknown = await cli(['--config', jobsConfig('sidekiq'), 'jobs', 'stuck'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/jobs\.queue: Invalid option: expected one of "river"\|"graphile-worker"\|"pg-boss"\|"oban"/);
    const missing = await cli(['--config', jobsConfig('river', { schema: 'elsewhere' }), 'jobs', 'discarded'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^opsctl: table elsewhere\.river_job of the River preset \(jobs\.queue river\) does not exist in postgres:\/\/.*: run River's migrations/);
    const retry = await cli(['--config', jobsConfig('river', { schema: 'elsewhere' }), 'jobs', 'retry', '--all'], env);
    expect(retry.code).toBe(2);
  });
});

describe('jobs discarded (River)', () => {
  it('lists discarded jobs newest first with the last error entry, grouped by kind and error class', async () => {
    const a = await job({ state: 'discarded', kind: 'send_email', attempt: 3, max: 3, finalizedMinutesAgo: 30, errors: ['smtp: dial tcp 10.0.0.1:25: i/o timeout', 'smtp: 421 try later'] });
    const b = await job({ state: 'discarded', kind: 'send_email', attempt: 3, max: 3, finalizedMinutesAgo: 10, errors: ['x', 'smtp: 421 try later'] });
    const c = await job({ state: 'discarded', kind: 'import_csv', attempt: 5, max: 5, finalizedMinutesAgo: 20, errors: ['row 17: invalid date "2024-13-01"'] });
    const cancelled = await job({ state: 'cancelled', kind: 'import_csv', finalizedMinutesAgo: 5, errors: ['cancelled by user 42'] });
    await job({ state: 'completed', finalizedMinutesAgo: 1 });
    const r = await cli(['--config', river, 'jobs', 'discarded', '-o', 'json'], env);
    expect(r.code).toBe(0);
    const out = r.json();
    expect(out.items.map((i: any) => i.id)).toEqual([b, c, a]);
    expect(out.items[0]).toMatchObject({ kind: 'send_email', state: 'discarded', attempt: 3, maxAttempts: 3, lastError: 'smtp: 421 try later', errorClass: 'smtp: <n> try later' });
    expect(out.summary.total).toBe(3);
    expect(out.summary.byKind).toEqual([
      expect.objectContaining({ kind: 'send_email', count: 2 }),
      expect.objectContaining({ kind: 'import_csv', count: 1 }),
    ]);
    expect(out.summary.byErrorClass[0]).toMatchObject({ errorClass: 'smtp: <n> try later', count: 2, kinds: ['send_email'] });
    expect(out.summary.byErrorClass[1]).toMatchObject({ errorClass: 'row <n>: invalid date <str>', count: 1 });

    const withCancelled = await cli(['--config', river, 'jobs', 'discarded', '--include-cancelled', '-o', 'json'], env);
    expect(withCancelled.json().items.map((i: any) => i.id)).toEqual([cancelled, b, c, a]);
    const recent = await cli(['--config', river, 'jobs', 'discarded', '--since', '15m', '--kind', 'send_email', '-o', 'json'], env);
    expect(recent.json().items.map((i: any) => i.id)).toEqual([b]);
    const table = await cli(['--config', river, 'jobs', 'discarded'], env);
    expect(table.stdout).toMatch(/^3 discarded jobs in river_job; 2 of them one error class: smtp: <n> try later/);
    expect(table.stdout).toContain('By error class');
  });
});

describe('jobs rescue (River)', () => {
  it('dry run shows the plan and what each job would become, and writes nothing', async () => {
    await job({ state: 'running', ranMinutesAgo: 90, attempt: 1, max: 3 });
    await job({ state: 'running', ranMinutesAgo: 90, attempt: 3, max: 3 });
    await job({ state: 'discarded', finalizedMinutesAgo: 5 });
    const before = await tableChecksum(db.client, 'river_job');
    const r = await cli(['--config', river, 'jobs', 'rescue', '-o', 'json'], env);
    expect(r.code).toBe(0);
    const out = r.json();
    expect(out.mode).toBe('plan');
    expect(out.items.map((i: any) => [i.outcome, i.wouldBecome])).toEqual([
      ['planned', 'retryable'],
      ['planned', 'discarded'],
    ]);
    expect(out.items[0].reason).toBe('opsctl: rescued after 1h in running state');
    expect(out.summary).toMatchObject({ planned: 2, 'would-become-retryable': 1, 'would-become-discarded': 1 });
    const retryDry = await cli(['--config', river, 'jobs', 'retry', '--all'], env);
    expect(retryDry.stdout).toContain('Dry run: nothing was changed');
    expect(await tableChecksum(db.client, 'river_job')).toBe(before);
    expect((await db.client.query('SELECT count(*)::int AS n FROM audit_log')).rows[0].n).toBe(0);
  });

  it('--apply: retryable when attempts remain, discarded when exhausted, cancelled when a cancel was requested; error entry appended; audited; a re-run finds nothing', async () => {
    const retryable = await job({ state: 'running', ranMinutesAgo: 90, attempt: 1, max: 3, errors: [] });
    const exhausted = await job({ state: 'running', ranMinutesAgo: 120, attempt: 3, max: 3, errors: ['boom 1', 'boom 2'] });
    const cancelAsked = await job({ state: 'running', ranMinutesAgo: 100, attempt: 1, max: 3, metadata: { cancel_attempted_at: new Date().toISOString() } });
    const fresh = await job({ state: 'running', ranMinutesAgo: 5 });
    const r = await cli(['--config', river, 'jobs', 'rescue', '--apply', '--reason', 'INC-1', '-o', 'json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = r.json();
    expect(out.summary).toMatchObject({ planned: 3, rescued: 3, 'rescued-retryable': 1, 'rescued-discarded': 1, 'rescued-cancelled': 1, 'race-lost': 0, errored: 0 });
    const byId = Object.fromEntries(out.items.map((i: any) => [i.id, i.outcome]));
    expect(byId).toEqual({ [retryable]: 'rescued-retryable', [exhausted]: 'rescued-discarded', [cancelAsked]: 'rescued-cancelled' });

    const a = await row(retryable);
    expect(a.state).toBe('retryable');
    expect(a.finalized_at).toBeNull();
    expect(Math.abs(a.scheduled_at.getTime() - Date.now())).toBeLessThan(60_000);
    expect(a.attempt).toBe(1);
    expect(a.errors).toHaveLength(1);
    expect(a.errors[0]).toMatchObject({ attempt: 1, error: 'opsctl: rescued after 1h in running state (INC-1)', trace: '' });
    expect(new Date(a.errors[0].at).getTime()).toBeGreaterThan(Date.now() - 60_000);

    const b = await row(exhausted);
    expect(b.state).toBe('discarded');
    expect(b.finalized_at).not.toBeNull();
    expect(b.errors.map((e: any) => e.error)).toEqual(['boom 1', 'boom 2', 'opsctl: rescued after 1h in running state (INC-1)']);
    expect((await row(cancelAsked)).state).toBe('cancelled');
    expect((await row(fresh)).state).toBe('running');

    const audit = await db.client.query("SELECT actor, kind, resource_type, resource_id, metadata FROM audit_log WHERE kind <> 'opsctl.run' ORDER BY resource_id::bigint");
    expect(audit.rows.map((x) => x.resource_id)).toEqual([retryable, exhausted, cancelAsked].sort((x, y) => Number(x) - Number(y)));
    expect(audit.rows[0]).toMatchObject({ actor: 'test-operator', kind: 'job.operator_rescue', resource_type: 'river_job' });
    expect(audit.rows.find((x) => x.resource_id === exhausted).metadata).toMatchObject({ preset: 'river', from_state: 'running', to_state: 'discarded', threshold: '1h', reason: 'INC-1' });

    const again = await cli(['--config', river, 'jobs', 'rescue', '--apply', '-o', 'json'], env);
    expect(again.json().summary.planned).toBe(0);
  });

  it('CAS: a job its worker finished, or that was fetched again, between plan and apply is race-lost and left alone', async () => {
    const done = await job({ state: 'running', ranMinutesAgo: 90 });
    const refetched = await job({ state: 'running', ranMinutesAgo: 90, attempt: 1 });
    const rescued = await job({ state: 'running', ranMinutesAgo: 90 });
    const conn = await connect(db.url);
    try {
      const { config, q } = queueFor('river');
      const report = await remediate(conn, rescueRemedy(q, { filter: { thresholdMs: 3_600_000 }, actor: 't', audit: config.audit }), {
        apply: true,
        max: 100,
        batchSize: 10,
        wait: false,
        confirm: async () => {
          await db.client.query("UPDATE river_job SET state = 'completed', finalized_at = now() WHERE id = $1", [done]);
          // River's own rescuer got there first, then a worker fetched it again: a new attempt, running.
          await db.client.query("UPDATE river_job SET attempt = attempt + 1, attempted_at = now() - interval '2 hours' WHERE id = $1", [refetched]);
          return true;
        },
      });
      const byId = Object.fromEntries(report.items.map((i) => [i.id, i.outcome]));
      expect(byId).toEqual({ [done]: 'race-lost', [refetched]: 'race-lost', [rescued]: 'rescued-retryable' });
      expect(report.items.find((i) => i.id === done)?.detail).toMatch(/now completed/);
      const d = await row(done);
      expect(d.state).toBe('completed');
      expect(d.errors).toBeNull();
      const f = await row(refetched);
      expect(f.state).toBe('running');
      expect(f.attempt).toBe(2);
      expect(f.errors).toBeNull();
    } finally {
      await conn.close();
    }
  });

  it('races a late worker and a River fetcher: every job is rescued xor finished by its worker, counts add up', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 150; i++) ids.push(await job({ state: 'running', ranMinutesAgo: 120, attempt: 1, max: 3 }));
    const worker = new pg.Client({ connectionString: db.url });
    await worker.connect();
    let stop = false;
    const loop = (async () => {
      let n = 0;
      while (!stop) {
        n += 1;
        // The original worker finishing late, one job at a time, with River's own completion guard.
        const late = ids[(n * 37) % ids.length];
        await worker.query("UPDATE river_job SET state = 'completed', finalized_at = now() WHERE id = $1 AND state = 'running'", [late]);
        // River's scheduler makes due retryable jobs available; a worker fetches and completes them.
        await worker.query("UPDATE river_job SET state = 'available' WHERE state = 'retryable' AND scheduled_at <= now()");
        const fetched = await worker.query(
          `UPDATE river_job SET state = 'running', attempt = attempt + 1, attempted_at = now(), attempted_by = array_append(attempted_by, 'host-2')
            WHERE id IN (SELECT id FROM river_job WHERE state = 'available' AND queue = 'default' AND scheduled_at <= now()
                          ORDER BY priority, scheduled_at, id LIMIT 10 FOR UPDATE SKIP LOCKED)
        RETURNING id`,
        );
        if (fetched.rowCount)
          await worker.query("UPDATE river_job SET state = 'completed', finalized_at = now() WHERE id = ANY($1) AND state = 'running'", [fetched.rows.map((x) => x.id)]);
      }
    })();
    let out: any;
    try {
      const r = await cli(['--config', river, 'jobs', 'rescue', '--apply', '--batch-size', '7', '--max', '0', '-o', 'json'], env);
      expect(r.code).toBe(0);
      out = r.json();
      await until(async () => (await db.client.query("SELECT count(*)::int AS n FROM river_job WHERE state <> 'completed'")).rows[0].n === 0);
    } finally {
      stop = true;
      await loop;
      await worker.end();
    }
    const rows = (await db.client.query('SELECT id::text, attempt, errors FROM river_job')).rows;
    const rescuedRows = rows.filter((x) => (x.errors ?? []).some((e: any) => e.error.startsWith('opsctl: rescued')));
    // Rescued: one opsctl entry and exactly one more attempt; finished by its worker: untouched.
    for (const x of rows) {
      const mine = (x.errors ?? []).filter((e: any) => e.error.startsWith('opsctl: rescued')).length;
      expect(mine === 1 ? x.attempt === 2 : mine === 0 && x.attempt === 1, `job ${x.id}`).toBe(true);
    }
    expect(rescuedRows.length).toBe(out.summary.rescued);
    expect(out.summary.rescued + out.summary['race-lost'] + out.summary['skipped-locked']).toBe(out.summary.planned);
    expect(out.summary.errored).toBe(0);
    expect((await db.client.query("SELECT count(*)::int AS n FROM audit_log WHERE kind = 'job.operator_rescue'")).rows[0].n).toBe(out.summary.rescued);
  });
});

describe('jobs retry (River)', () => {
  it('needs a scope; malformed ids are refused before anything is read', async () => {
    const r = await cli(['--config', river, 'jobs', 'retry', '--apply'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/retry needs a scope/);
    const bad = await cli(['--config', river, 'jobs', 'retry', '12x', '--apply'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/job id "12x" is not a valid bigint/);
  });

  it('--apply does what River JobRetry does: available now, finalized_at cleared, max_attempts raised only when exhausted; attempt and errors kept', async () => {
    const exhausted = await job({ state: 'discarded', attempt: 3, max: 3, finalizedMinutesAgo: 30, errors: ['a', 'b', 'c'] });
    const early = await job({ state: 'discarded', attempt: 1, max: 3, finalizedMinutesAgo: 20, errors: ['unknown kind'] });
    const cancelled = await job({ state: 'cancelled', attempt: 1, max: 3, finalizedMinutesAgo: 10 });
    const r = await cli(['--config', river, 'jobs', 'retry', '--all', '--apply', '--reason', 'INC-9', '-o', 'json'], env);
    expect(r.code).toBe(0);
    expect(r.json().summary).toMatchObject({ planned: 2, retried: 2, 'not-discarded-anymore': 0, errored: 0 });
    const a = await row(exhausted);
    expect(a).toMatchObject({ state: 'available', attempt: 3, max_attempts: 4, finalized_at: null });
    expect(a.errors.map((e: any) => e.error)).toEqual(['a', 'b', 'c']);
    expect(Math.abs(a.scheduled_at.getTime() - Date.now())).toBeLessThan(60_000);
    expect(await row(early)).toMatchObject({ state: 'available', attempt: 1, max_attempts: 3 });
    expect((await row(cancelled)).state).toBe('cancelled');
    const audit = await db.client.query("SELECT kind, resource_id, metadata FROM audit_log WHERE kind = 'job.operator_retry'");
    expect(audit.rows.map((x) => x.resource_id).sort()).toEqual([exhausted, early].sort());
    expect(audit.rows[0].metadata).toMatchObject({ preset: 'river', from_state: 'discarded', to_state: 'available', reason: 'INC-9' });

    const withCancelled = await cli(['--config', river, 'jobs', 'retry', cancelled, '--include-cancelled', '--apply', '-o', 'json'], env);
    expect(withCancelled.json().summary).toMatchObject({ retried: 1 });
    expect(await row(cancelled)).toMatchObject({ state: 'available', finalized_at: null });
    const again = await cli(['--config', river, 'jobs', 'retry', '--all', '--include-cancelled', '--apply', '-o', 'json'], env);
    expect(again.json().summary.planned).toBe(0);
  });

  it('ids: only those ids; ids that do not exist or are not discarded are reported', async () => {
    const a = await job({ state: 'discarded', finalizedMinutesAgo: 1 });
    const b = await job({ state: 'discarded', finalizedMinutesAgo: 1 });
    const running = await job({ state: 'running' });
    const r = await cli(['--config', river, 'jobs', 'retry', a, running, '999999', '--apply', '-o', 'json'], env);
    // A named id that does not exist is a finding, as a named group is for adopt.
    expect(r.code).toBe(1);
    expect(r.json().summary).toMatchObject({ retried: 1, idsNotFound: 1, idsNotDiscarded: 1 });
    expect((await row(a)).state).toBe('available');
    expect((await row(b)).state).toBe('discarded');
    const one = await cli(['--config', river, 'jobs', 'retry', '999', '--apply'], env);
    expect(one.code).toBe(1);
    expect(one.stdout).toContain('1 named id does not exist: 999 (exit 1).');
    const two = await cli(['--config', river, 'jobs', 'retry', '999', '0998', b], env);
    expect(two.code).toBe(1);
    expect(two.stdout).toContain('2 named ids do not exist: 999, 998 (exit 1).');
    expect((await row(b)).state).toBe('discarded');
  });

  it('CAS: a job retried by someone else and fetched by a worker since the plan is not-discarded-anymore and left alone', async () => {
    const taken = await job({ state: 'discarded', attempt: 3, max: 3, finalizedMinutesAgo: 30 });
    const rediscarded = await job({ state: 'discarded', attempt: 3, max: 3, finalizedMinutesAgo: 30 });
    const mine = await job({ state: 'discarded', attempt: 3, max: 3, finalizedMinutesAgo: 30 });
    const conn = await connect(db.url);
    try {
      const { config, q } = queueFor('river');
      const report = await remediate(conn, retryRemedy(q, { filter: { includeCancelled: false }, actor: 't', audit: config.audit }), {
        apply: true,
        max: 100,
        batchSize: 10,
        wait: false,
        confirm: async () => {
          await db.client.query("UPDATE river_job SET state = 'running', attempt = 4, max_attempts = 4, finalized_at = NULL, attempted_at = now() WHERE id = $1", [taken]);
          // Retried, run and discarded again by someone else: a different failure than the plan showed.
          await db.client.query("UPDATE river_job SET attempt = 4, max_attempts = 4, finalized_at = now() WHERE id = $1", [rediscarded]);
          return true;
        },
      });
      const byId = Object.fromEntries(report.items.map((i) => [i.id, i.outcome]));
      expect(byId).toEqual({ [taken]: 'not-discarded-anymore', [rediscarded]: 'not-discarded-anymore', [mine]: 'retried' });
      expect(await row(taken)).toMatchObject({ state: 'running', attempt: 4, max_attempts: 4 });
      expect(await row(rediscarded)).toMatchObject({ state: 'discarded', max_attempts: 4 });
    } finally {
      await conn.close();
    }
  });

  it('races a River worker fetching with FOR UPDATE SKIP LOCKED: every job retried once and run once, nothing overwritten', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 200; i++) ids.push(await job({ state: 'discarded', attempt: 3, max: 3, finalizedMinutesAgo: 60, errors: ['e1', 'e2', 'e3'] }));
    const worker = new pg.Client({ connectionString: db.url });
    await worker.connect();
    let stop = false;
    let ran = 0;
    const loop = (async () => {
      while (!stop) {
        const fetched = await worker.query(
          `UPDATE river_job SET state = 'running', attempt = attempt + 1, attempted_at = now()
            WHERE id IN (SELECT id FROM river_job WHERE state = 'available' AND queue = 'default' AND scheduled_at <= now()
                          ORDER BY priority, scheduled_at, id LIMIT 10 FOR UPDATE SKIP LOCKED)
        RETURNING id`,
        );
        ran += fetched.rowCount ?? 0;
        if (fetched.rowCount)
          await worker.query("UPDATE river_job SET state = 'completed', finalized_at = now() WHERE id = ANY($1) AND state = 'running'", [fetched.rows.map((x) => x.id)]);
        else await new Promise((r) => setTimeout(r, 2));
      }
    })();
    let out: any;
    try {
      const r = await cli(['--config', river, 'jobs', 'retry', '--all', '--apply', '--batch-size', '9', '--max', '0', '-o', 'json'], env);
      expect(r.code).toBe(0);
      out = r.json();
      await until(async () => (await db.client.query("SELECT count(*)::int AS n FROM river_job WHERE state <> 'completed'")).rows[0].n === 0);
    } finally {
      stop = true;
      await loop;
      await worker.end();
    }
    expect(out.summary).toMatchObject({ planned: 200, retried: 200, errored: 0 });
    expect(ran).toBe(200);
    const rows = (await db.client.query('SELECT attempt, max_attempts, array_length(errors, 1) AS n FROM river_job')).rows;
    for (const x of rows) expect(x).toEqual({ attempt: 4, max_attempts: 4, n: 3 });
    expect((await db.client.query("SELECT count(DISTINCT resource_id)::int AS n FROM audit_log WHERE kind = 'job.operator_retry'")).rows[0].n).toBe(200);
  });

  it('refuses more jobs than --max with exit 2 and changes nothing', async () => {
    for (let i = 0; i < 4; i++) await job({ state: 'discarded', finalizedMinutesAgo: 1 });
    const before = await tableChecksum(db.client, 'river_job');
    const r = await cli(['--config', river, 'jobs', 'retry', '--all', '--apply', '--max', '3'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/more than 3 rows of river_job would be changed by retry/);
    expect(await tableChecksum(db.client, 'river_job')).toBe(before);
  });
});

describe('opsctl check with jobs (River)', () => {
  it('stuck-jobs and discarded-jobs are findings when jobs.queue is set; skipped when it is not', async () => {
    await job({ state: 'running', ranMinutesAgo: 180, kind: 'import_csv' });
    await job({ state: 'discarded', finalizedMinutesAgo: 3, errors: ['boom 7'] });
    const r = await cli(['--config', river, 'check', '--only', 'jobs', '-o', 'json'], env);
    expect(r.code).toBe(1);
    const checks = Object.fromEntries(r.json().items.map((i: any) => [i.check, i]));
    expect(checks['stuck-jobs']).toMatchObject({ status: 'finding', count: 1, group: 'jobs' });
    expect(checks['stuck-jobs'].worst).toMatch(/\(import_csv\) in running for 3h \(threshold 1h\)/);
    expect(checks['discarded-jobs']).toMatchObject({ status: 'finding', count: 1 });
    expect(checks['discarded-jobs'].worst).toBe('1× boom <n> (send_email)');

    const off = await cli(['check', '-o', 'json'], env);
    const statuses = Object.fromEntries(off.json().items.map((i: any) => [i.check, i.status]));
    expect(statuses).toMatchObject({ 'stuck-jobs': 'skipped', 'discarded-jobs': 'skipped', 'stuck-executions': 'ok' });
    expect(off.code).toBe(0);
  });
});

describe('jobs retry --error-class (River)', () => {
  const CLASS = 'smtp: <n> mailbox unavailable for <email> (queue id <id>)';

  it('retries only the jobs of the class jobs discarded prints; the other class is untouched', async () => {
    const outage: string[] = [];
    for (let i = 0; i < 4; i += 1)
      outage.push(await job({ state: 'discarded', finalizedMinutesAgo: i + 1, errors: [`smtp: 550 mailbox unavailable for user${i}@example.com (queue id 4Xq${i}Zp9Lm${i}Rt7)`] }));
    const other = [await job({ state: 'discarded', finalizedMinutesAgo: 1, errors: ['smtp: 421 try later'] }), await job({ state: 'discarded', finalizedMinutesAgo: 2, errors: ['smtp: 421 try later'] })];
    const listed = await cli(['--config', river, 'jobs', 'discarded', '-o', 'json'], env);
    expect(listed.json().summary.byErrorClass[0]).toMatchObject({ errorClass: CLASS, count: 4 });

    const plan = await cli(['--config', river, 'jobs', 'retry', '--error-class', CLASS, '-o', 'json'], env);
    expect(plan.code).toBe(0);
    expect(plan.json().items.map((i: any) => i.id).sort()).toEqual([...outage].sort());
    const r = await cli(['--config', river, 'jobs', 'retry', '--error-class', CLASS, '--apply', '-o', 'json'], env);
    expect(r.code).toBe(0);
    expect(r.json().summary).toMatchObject({ planned: 4, retried: 4 });
    for (const id of outage) expect((await row(id)).state).toBe('available');
    for (const id of other) expect((await row(id)).state).toBe('discarded');

    const none = await cli(['--config', river, 'jobs', 'retry', '--error-class', CLASS, '--apply'], env);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^opsctl: --error-class "smtp: <n> mailbox unavailable for <email> \(queue id <id>\)" matches no discarded job in scope; the classes are listed by `opsctl jobs discarded`/);
    for (const id of other) expect((await row(id)).state).toBe('discarded');
  });
});
