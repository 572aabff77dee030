import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import PgBoss from 'pg-boss';
import { freshDatabase, tableChecksum } from '../support/db.js';
import { cli } from '../support/cli.js';
import { connect, jobsConfig, queueFor, until } from '../support/jobs.js';
import { AUDIT_LOG_SQL } from '../../src/reference/schema.js';
import { remediate } from '../../src/engine/remediation.js';
import { retryRemedy } from '../../src/checks/discarded-jobs.js';
import { rescueRemedy } from '../../src/checks/stuck-jobs.js';

// pg-boss's own schema, created by pg-boss 10.x itself; its supervisor is off so the tests
// decide when a job expires.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let env: NodeJS.ProcessEnv;
let cfg: string;
let boss: PgBoss;

beforeAll(async () => {
  db = await freshDatabase('pgboss', AUDIT_LOG_SQL);
  boss = new PgBoss({ connectionString: db.url, schema: 'pgboss', supervise: false, schedule: false });
  boss.on('error', () => {});
  await boss.start();
  await boss.createQueue('send_email_dlq');
  await boss.createQueue('send_email', { name: 'send_email', deadLetter: 'send_email_dlq' });
  await boss.createQueue('import_csv', { name: 'import_csv' });
  env = { DATABASE_URL: db.url };
  cfg = jobsConfig('pg-boss');
});
afterAll(async () => {
  await boss.stop({ graceful: false, wait: true });
  await db.drop();
});
beforeEach(async () => {
  await db.client.query('DELETE FROM pgboss.job');
  await db.client.query('TRUNCATE audit_log');
});

/** A job fetched by pg-boss's own fetch, started `minutesAgo`. */
async function active(name = 'send_email', opts: { minutesAgo?: number; expireInSeconds?: number; retryLimit?: number } = {}): Promise<string> {
  const id = (await boss.send(name, {}, { retryLimit: opts.retryLimit ?? 2, expireInSeconds: opts.expireInSeconds ?? 900 }))!;
  await db.client.query("UPDATE pgboss.job SET start_after = now() - interval '1 second' WHERE id = $1", [id]);
  const [fetched] = await boss.fetch(name);
  expect(fetched.id).toBe(id);
  await db.client.query('UPDATE pgboss.job SET started_on = now() - make_interval(mins => $2) WHERE id = $1', [id, opts.minutesAgo ?? 0]);
  return id;
}

/** A job that failed its last attempt, through pg-boss's own fail. */
async function failed(name: string, message: string): Promise<string> {
  const id = await active(name, { retryLimit: 0 });
  await boss.fail(name, id, new Error(message));
  return id;
}

const row = async (id: string) =>
  (await db.client.query('SELECT name, state::text, retry_count, retry_limit, completed_on, output, start_after FROM pgboss.job WHERE id = $1', [id])).rows[0];

describe('pg-boss: stuck and discarded', () => {
  it('classifies by its own rule: active past started_on + expire_in; --older-than overrides', async () => {
    const expired = await active('send_email', { minutesAgo: 2, expireInSeconds: 60 });
    const long = await active('import_csv', { minutesAgo: 2, expireInSeconds: 3600 });
    await failed('send_email', 'boom');
    await boss.send('send_email', {});
    const r = await cli(['--config', cfg, 'jobs', 'stuck', '-o', 'json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = r.json();
    expect(out.items).toHaveLength(1);
    expect(out.items[0]).toMatchObject({ id: expired, kind: 'send_email', state: 'active', attempt: 0, maxAttempts: 2, threshold: '1m', wouldBecome: 'retryable' });
    expect(out.summary).toMatchObject({ stuck: 1, threshold: 'expire_in', preset: 'pg-boss' });
    const wider = await cli(['--config', cfg, 'jobs', 'stuck', '--older-than', '1m', '-o', 'json'], env);
    expect(wider.json().items.map((i: any) => i.id).sort()).toEqual([expired, long].sort());
  });

  it('lists failed jobs with the error pg-boss stored, grouped; cancelled only when asked', async () => {
    const a = await failed('send_email', 'SMTP 421 for user 17');
    const b = await failed('import_csv', 'bad header');
    const c = (await boss.send('import_csv', {}))!;
    await boss.cancel('import_csv', c);
    const r = await cli(['--config', cfg, 'jobs', 'discarded', '-o', 'json'], env);
    expect(r.code).toBe(0);
    const out = r.json();
    expect(out.items.map((i: any) => i.id).sort()).toEqual([a, b].sort());
    expect(out.items.find((i: any) => i.id === a)).toMatchObject({ kind: 'send_email', state: 'failed', lastError: 'SMTP 421 for user 17', errorClass: 'SMTP <n> for user <n>' });
    const all = await cli(['--config', jobsConfig('pg-boss', { includeCancelled: true }), 'jobs', 'discarded', '-o', 'json'], env);
    expect(all.json().items.map((i: any) => i.id).sort()).toEqual([a, b, c].sort());
    expect(all.json().summary.states).toEqual(['failed', 'cancelled']);
  });

  it('refuses malformed ids and a missing schema with one sentence', async () => {
    const bad = await cli(['--config', cfg, 'jobs', 'retry', '42'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/job id "42" is not a valid uuid/);
    // pg-boss 11+ keeps expire_seconds instead of expire_in: refused, not misread.
    await db.client.query(`CREATE SCHEMA boss11; CREATE TABLE boss11.job (LIKE pgboss.job); ALTER TABLE boss11.job DROP COLUMN expire_in, ADD COLUMN expire_seconds int`);
    const v11 = await cli(['--config', jobsConfig('pg-boss', { schema: 'boss11' }), 'jobs', 'stuck'], env);
    expect(v11.code).toBe(2);
    expect(v11.stderr).toMatch(/pg-boss 11 or later\): opsctl supports pg-boss 10\.x/);
    const missing = await cli(['--config', jobsConfig('pg-boss', { schema: 'boss_nowhere' }), 'jobs', 'stuck'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/table boss_nowhere\.job of the pg-boss preset \(jobs\.queue pg-boss\) does not exist/);
  });
});

describe('pg-boss: rescue and retry', () => {
  it('dry runs write nothing', async () => {
    await active('send_email', { minutesAgo: 30, expireInSeconds: 60 });
    await failed('import_csv', 'boom');
    const before = await tableChecksum(db.client, 'pgboss"."job');
    for (const args of [['jobs', 'rescue'], ['jobs', 'retry', '--all']]) {
      const r = await cli(['--config', cfg, ...args, '-o', 'json'], env);
      expect(r.json()).toMatchObject({ mode: 'plan', summary: { planned: 1 } });
    }
    expect(await tableChecksum(db.client, 'pgboss"."job')).toBe(before);
  });

  it('rescue fails expired jobs as its supervisor would: retry when retries remain, else failed and copied to the dead letter queue', async () => {
    const retryable = await active('send_email', { minutesAgo: 30, expireInSeconds: 60, retryLimit: 2 });
    const exhausted = await active('send_email', { minutesAgo: 30, expireInSeconds: 60, retryLimit: 0 });
    const r = await cli(['--config', cfg, 'jobs', 'rescue', '--apply', '--reason', 'INC-3', '-o', 'json'], env);
    expect(r.code).toBe(0);
    expect(r.json().summary).toMatchObject({ planned: 2, rescued: 2, 'rescued-retryable': 1, 'rescued-discarded': 1 });
    const a = await row(retryable);
    expect(a).toMatchObject({ state: 'retry', retry_count: 0, completed_on: null });
    expect(a.output).toEqual({ value: { message: 'opsctl: rescued after 1m in active state (INC-3)' } });
    const b = await row(exhausted);
    expect(b.state).toBe('failed');
    expect(b.completed_on).not.toBeNull();
    const dlq = await db.client.query("SELECT data, output FROM pgboss.job WHERE name = 'send_email_dlq'");
    expect(dlq.rowCount).toBe(1);
    // pg-boss's own fetch picks the rescued job up again as its next attempt.
    const [again] = await boss.fetch('send_email');
    expect(again.id).toBe(retryable);
    expect((await row(retryable)).retry_count).toBe(1);
    const audit = await db.client.query("SELECT resource_type, metadata FROM audit_log WHERE kind = 'job.operator_rescue'");
    expect(audit.rowCount).toBe(2);
    expect(audit.rows[0].resource_type).toBe('job');
  });

  it("retry does what pg-boss's retry does (failed → retry, retry_limit + 1) and resume for cancelled; a re-run finds nothing", async () => {
    const f = await failed('send_email', 'boom');
    const c = (await boss.send('import_csv', {}))!;
    await boss.cancel('import_csv', c);
    const r = await cli(['--config', cfg, 'jobs', 'retry', '--all', '--include-cancelled', '--apply', '-o', 'json'], env);
    expect(r.code).toBe(0);
    expect(r.json().summary).toMatchObject({ planned: 2, retried: 2 });
    expect(await row(f)).toMatchObject({ state: 'retry', retry_limit: 1 });
    expect(await row(c)).toMatchObject({ state: 'created', completed_on: null });
    const [next] = await boss.fetch('send_email');
    expect(next.id).toBe(f);
    expect((await cli(['--config', cfg, 'jobs', 'retry', '--all', '--include-cancelled', '--apply', '-o', 'json'], env)).json().summary.planned).toBe(0);
  });

  it('CAS: a job completed by its worker, or retried by pg-boss itself, since the plan is left alone', async () => {
    const done = await active('send_email', { minutesAgo: 30, expireInSeconds: 60 });
    const dead = await failed('import_csv', 'boom');
    const conn = await connect(db.url);
    try {
      const { config, q } = queueFor('pg-boss');
      const rescue = await remediate(conn, rescueRemedy(q, { filter: { thresholdMs: null }, actor: 't', audit: config.audit }), {
        apply: true,
        max: 10,
        batchSize: 10,
        wait: false,
        confirm: async () => {
          await boss.complete('send_email', done, { ok: true });
          return true;
        },
      });
      expect(rescue.items.map((i) => i.outcome)).toEqual(['race-lost']);
      expect(await row(done)).toMatchObject({ state: 'completed', output: { ok: true } });
      const retry = await remediate(conn, retryRemedy(q, { filter: { includeCancelled: false }, actor: 't', audit: config.audit }), {
        apply: true,
        max: 10,
        batchSize: 10,
        wait: false,
        confirm: async () => {
          await boss.retry('import_csv', dead);
          return true;
        },
      });
      expect(retry.items.map((i) => i.outcome)).toEqual(['not-discarded-anymore']);
      expect(await row(dead)).toMatchObject({ state: 'retry', retry_limit: 1 });
    } finally {
      await conn.close();
    }
  });

  it('races workers using pg-boss fetch/complete: every job retried once and fetched exactly once', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) ids.push(await failed('send_email', `boom ${i}`));
    let stop = false;
    const fetched: string[] = [];
    const worker = (async () => {
      while (!stop) {
        const jobs = await boss.fetch('send_email', { batchSize: 5 });
        for (const j of jobs) fetched.push(j.id);
        if (jobs.length) await boss.complete('send_email', jobs.map((j) => j.id));
        else await new Promise((r) => setTimeout(r, 2));
      }
    })();
    try {
      const r = await cli(['--config', cfg, 'jobs', 'retry', '--all', '--apply', '--batch-size', '6', '-o', 'json'], env);
      expect(r.code).toBe(0);
      expect(r.json().summary).toMatchObject({ planned: 50, retried: 50, errored: 0 });
      await until(async () => (await db.client.query("SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'send_email' AND state <> 'completed'")).rows[0].n === 0);
    } finally {
      stop = true;
      await worker;
    }
    expect([...fetched].sort()).toEqual([...ids].sort());
  });

  it('rescue races a late worker completing its jobs: each job is rescued xor completed by it', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push(await active('import_csv', { minutesAgo: 30, expireInSeconds: 60 }));
    let stop = false;
    const lateDone: string[] = [];
    const late = (async () => {
      for (let n = 0; !stop; n++) {
        const id = ids[(n * 11) % ids.length];
        const res = await boss.complete('import_csv', id);
        if (res.affected) lateDone.push(id);
        await new Promise((r) => setTimeout(r, 1));
      }
    })();
    let s: any;
    try {
      const r = await cli(['--config', cfg, 'jobs', 'rescue', '--apply', '--batch-size', '4', '-o', 'json'], env);
      expect(r.code).toBe(0);
      s = r.json().summary;
    } finally {
      stop = true;
      await late;
    }
    const rows = (await db.client.query("SELECT id::text, state::text, output FROM pgboss.job WHERE name = 'import_csv'")).rows;
    const rescued = rows.filter((x) => x.state === 'retry');
    for (const x of rows) expect(x.state === 'retry' ? !lateDone.includes(x.id) && x.output.value.message.startsWith('opsctl:') : x.state === 'completed' && lateDone.includes(x.id), x.id).toBe(true);
    expect(rescued.length).toBe(s.rescued);
    expect(s.rescued + s['race-lost'] + s['skipped-locked']).toBe(s.planned);
  });
});
