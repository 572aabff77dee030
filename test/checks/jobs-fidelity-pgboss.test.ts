import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import PgBoss from 'pg-boss';
import { createRequire } from 'node:module';
import { freshDatabase } from '../support/db.js';
import { cli, cliProcess } from '../support/cli.js';
import { jobsConfig, until } from '../support/jobs.js';
import { copyRows, expectSameRows, rowsOf } from '../support/fidelity.js';
import { AUDIT_LOG_SQL } from '../../src/reference/schema.js';

// pg-boss's own SQL generators: the statements its maintenance runs (expire, archive).
const plans = createRequire(import.meta.url)('pg-boss/src/plans.js') as {
  failJobsByTimeout(schema: string): string;
  archive(schema: string, completedInterval: string, failedInterval?: string): string;
};

// The same rows in two pg-boss 10 schemas, each created by pg-boss itself: pg-boss's own code
// on `boss_own`, opsctl's on `boss_ops`, then every column compared.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let env: NodeJS.ProcessEnv;
const OWN = 'boss_own';
const OPS = 'boss_ops';
const boss: Record<string, PgBoss> = {};
const ops = () => jobsConfig('pg-boss', { schema: OPS });

beforeAll(async () => {
  db = await freshDatabase('bossfid', AUDIT_LOG_SQL);
  for (const schema of [OWN, OPS]) {
    const b = new PgBoss({ connectionString: db.url, schema, supervise: false, schedule: false });
    b.on('error', () => {});
    await b.start();
    await b.createQueue('mail_dlq');
    await b.createQueue('mail', { name: 'mail', deadLetter: 'mail_dlq' });
    boss[schema] = b;
  }
  env = { DATABASE_URL: db.url };
});
afterAll(async () => {
  for (const b of Object.values(boss)) await b.stop({ graceful: false, wait: true });
  await db.drop();
});
beforeEach(async () => {
  for (const s of [OWN, OPS]) await db.client.query(`DELETE FROM ${s}.job; DELETE FROM ${s}.archive`);
  await db.client.query('TRUNCATE audit_log');
});

/** A job sent and fetched by pg-boss itself on `boss_own`, started `minutesAgo`. */
async function active(n: number, opts: { retryLimit: number; retryDelay?: number; retryBackoff?: boolean; retryCount?: number }): Promise<string> {
  const b = boss[OWN];
  const id = (await b.send('mail', { n }, { retryLimit: opts.retryLimit, retryDelay: opts.retryDelay ?? 0, retryBackoff: opts.retryBackoff ?? false, expireInSeconds: 60 }))!;
  await db.client.query(`UPDATE ${OWN}.job SET start_after = now() - interval '1 hour', retry_count = $2 WHERE id = $1`, [id, opts.retryCount ?? 0]);
  const [fetched] = await b.fetch('mail');
  expect(fetched.id).toBe(id);
  await db.client.query(`UPDATE ${OWN}.job SET started_on = now() - interval '30 minutes', created_on = now() - interval '2 hours' WHERE id = $1`, [id]);
  return id;
}

const jobs = (s: string) => rowsOf(db.client, `SELECT * FROM ${s}.job WHERE name = 'mail'`);
/** Dead-letter copies get a new random id: keyed by their data instead. */
const deadLetters = (s: string) => rowsOf(db.client, `SELECT data->>'n' AS id, name, data, state, retry_limit, retry_count, keep_until, output, priority, policy FROM ${s}.job WHERE name = 'mail_dlq'`);

describe('pg-boss fidelity: rescue is its failJobsByTimeout', () => {
  it('same rows (and dead letters) as its own expiry; then its own fetch runs the retried jobs', async () => {
    const plain = await active(1, { retryLimit: 2 });
    const backoff = await active(2, { retryLimit: 3, retryDelay: 1, retryBackoff: true });
    const exhausted = await active(3, { retryLimit: 1, retryCount: 1 });
    await copyRows(db.client, OWN, OPS, 'job');

    const t0 = Date.now();
    await db.client.query(plans.failJobsByTimeout(OWN));
    const r = await cliProcess(['--config', ops(), 'jobs', 'rescue', '--apply', '-o', 'json'], env);
    const t1 = Date.now();
    expect(r.code).toBe(0);
    expect(r.json().summary).toMatchObject({ rescued: 3, 'rescued-retryable': 2, 'rescued-discarded': 1 });

    const own = await jobs(OWN);
    const opsRows = await jobs(OPS);
    // Its backoff: now + delay * 2^min(16, count + 1) / 2 * (1 + random()).
    const inBackoff = (v: unknown, row: Record<string, unknown>) => {
      const base = (row.retry_delay as number) * 2 ** Math.min(16, (row.retry_count as number) + 1) / 2 * 1000;
      const at = (v as Date).getTime();
      expect(at).toBeGreaterThanOrEqual(t0 + base - 1000);
      expect(at).toBeLessThanOrEqual(t1 + 2 * base + 1000);
    };
    expectSameRows(own, opsRows, {
      nowToleranceMs: t1 - t0 + 1000,
      freeText: ['output'],
      jittered: {
        start_after: (a, b, row) => {
          if (row.id === backoff) {
            inBackoff(a, row);
            inBackoff(b, opsRows.get(backoff)!);
          } else expect(Math.abs((a as Date).getTime() - (b as Date).getTime())).toBeLessThanOrEqual(t1 - t0 + 1000);
        },
      },
    });
    expectSameRows(await deadLetters(OWN), await deadLetters(OPS), { nowToleranceMs: t1 - t0 + 1000, freeText: ['output'] });
    expect((await deadLetters(OPS)).size).toBe(1);
    expect(opsRows.get(exhausted)!.state).toBe('failed');

    // pg-boss's own fetch and complete run what opsctl rescued, once its backoff is due.
    const ran = new Set<string>();
    await until(async () => {
      for (const j of await boss[OPS].fetch('mail', { batchSize: 10 })) {
        ran.add(j.id);
        await boss[OPS].complete('mail', j.id);
      }
      return ran.size >= 2;
    });
    expect([...ran].sort()).toEqual([plain, backoff].sort());
  });
});

describe('pg-boss fidelity: retry is its retry and resume', () => {
  it('same rows as boss.retry (failed) and boss.resume (cancelled); then its own fetch runs them', async () => {
    const failedId = await active(1, { retryLimit: 0 });
    await boss[OWN].fail('mail', failedId, new Error('smtp: connection reset'));
    const cancelled = (await boss[OWN].send('mail', { n: 2 }))!;
    await boss[OWN].cancel('mail', cancelled);
    await copyRows(db.client, OWN, OPS, 'job');

    const t0 = Date.now();
    await boss[OWN].retry('mail', failedId);
    await boss[OWN].resume('mail', cancelled);
    const r = await cliProcess(['--config', ops(), 'jobs', 'retry', '--all', '--include-cancelled', '--apply', '-o', 'json'], env);
    const t1 = Date.now();
    expect(r.json().summary).toMatchObject({ planned: 2, retried: 2 });
    expectSameRows(await jobs(OWN), await jobs(OPS), { nowToleranceMs: t1 - t0 + 1000 });

    const ran = new Set<string>();
    await until(async () => {
      for (const j of await boss[OPS].fetch('mail', { batchSize: 10 })) {
        ran.add(j.id);
        await boss[OPS].complete('mail', j.id);
      }
      return ran.size >= 2;
    });
    expect([...ran].sort()).toEqual([failedId, cancelled].sort());
  });
});

describe('pg-boss: failures in its archive', () => {
  it('discarded lists archived failures and says where they are; retry leaves them and says why', async () => {
    const recent = await active(1, { retryLimit: 0 });
    await boss[OWN].fail('mail', recent, new Error('smtp: 421 try later'));
    const old = await active(2, { retryLimit: 0 });
    await boss[OWN].fail('mail', old, new Error('smtp: 550 no such user'));
    await db.client.query(`UPDATE ${OWN}.job SET completed_on = now() - interval '13 hours' WHERE id = $1`, [old]);
    // pg-boss's own maintenance with its defaults: failures older than 12 h go to the archive.
    await db.client.query(plans.archive(OWN, `${12 * 3600} seconds`, `${12 * 3600} seconds`));
    expect((await db.client.query(`SELECT id::text FROM ${OWN}.archive`)).rows.map((x) => x.id)).toEqual([old]);

    const cfg = jobsConfig('pg-boss', { schema: OWN });
    const d = await cli(['--config', cfg, 'jobs', 'discarded', '-o', 'json'], env);
    expect(d.code).toBe(0);
    const out = d.json();
    expect(out.items.map((i: any) => [i.id, i.archived])).toEqual([
      [recent, false],
      [old, true],
    ]);
    expect(out.items[1]).toMatchObject({ state: 'failed', lastError: 'smtp: 550 no such user' });
    expect(out.summary).toMatchObject({ total: 2, archived: 1, archive: `${OWN}.archive` });
    const table = await cli(['--config', cfg, 'jobs', 'discarded'], env);
    expect(table.stdout).toMatch(/1 of them are in boss_own\.archive: pg-boss moves failed jobs there after archiveFailedAfterSeconds/);
    expect((await cli(['--config', cfg, 'jobs', 'discarded', '--since', '1h', '-o', 'json'], env)).json().summary).toMatchObject({ total: 1, archived: 0 });

    const retry = await cli(['--config', cfg, 'jobs', 'retry', '--all', '--apply', '-o', 'json'], env);
    expect(retry.json().summary).toMatchObject({ planned: 1, retried: 1, archivedNotRetried: 1 });
    expect(retry.json().items.map((i: any) => i.id)).toEqual([recent]);
    const byId = await cli(['--config', cfg, 'jobs', 'retry', old, '-o', 'json'], env);
    expect(byId.json().summary).toMatchObject({ planned: 0, archivedNotRetried: 1, idsNotFound: 0 });
    const plain = await cli(['--config', cfg, 'jobs', 'retry', old], env);
    expect(plain.stdout).toMatch(/1 matching job\(s\) are in boss_own\.archive, not retried/);
    expect((await db.client.query(`SELECT count(*)::int AS n FROM ${OWN}.archive`)).rows[0].n).toBe(1);
  });
});
