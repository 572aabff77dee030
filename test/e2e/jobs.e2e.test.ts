import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, tableChecksum } from '../support/db.js';
import { cliProcess } from '../support/cli.js';
import { jobsConfig } from '../support/jobs.js';
import { AUDIT_LOG_SQL } from '../../src/reference/schema.js';
import { RIVER_SCHEMA_SQL } from '../../src/reference/queues/river.js';

// The built CLI as a subprocess against River's schema (`npm test` builds first).
let db: Awaited<ReturnType<typeof freshDatabase>>;
let env: NodeJS.ProcessEnv;
let river: string;
beforeAll(async () => {
  db = await freshDatabase('jobs_e2e', AUDIT_LOG_SQL + RIVER_SCHEMA_SQL);
  env = { DATABASE_URL: db.url };
  river = jobsConfig('river');
  await db.client.query(`
    INSERT INTO river_job (state, kind, args, attempt, max_attempts, attempted_at, finalized_at, errors)
    SELECT 'running', 'send_email', '{}', 1 + i % 3, 3, now() - make_interval(mins => 60 + i), NULL, NULL FROM generate_series(1, 12) i;
    INSERT INTO river_job (state, kind, args, attempt, max_attempts, attempted_at, finalized_at, errors)
    SELECT 'discarded', 'import_csv', '{}', 5, 5, now() - interval '2 hours', now() - make_interval(mins => i),
           ARRAY[jsonb_build_object('at', now(), 'attempt', 5, 'error', 'row ' || i || ': bad date', 'trace', '')]
      FROM generate_series(1, 8) i;
    INSERT INTO river_job (state, kind, args, max_attempts) SELECT 'available', 'send_email', '{}', 3 FROM generate_series(1, 5);
  `);
});
afterAll(async () => {
  await db.drop();
});

describe('opsctl jobs as a subprocess', () => {
  it('every jobs command has --help with examples', async () => {
    const top = await cliProcess(['jobs', '--help']);
    expect(top.code).toBe(0);
    for (const cmd of ['stuck', 'discarded', 'retry', 'rescue']) {
      const r = await cliProcess(['jobs', cmd, '--help']);
      expect(r.code, cmd).toBe(0);
      expect(r.stdout, cmd).toContain('Examples:');
    }
  });

  it('without jobs.queue: one sentence on stderr, exit 2', async () => {
    const r = await cliProcess(['jobs', 'stuck'], env);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/set jobs\.queue/);
  });

  it('rescue and retry: dry run changes nothing; --apply converges; a re-run is a no-op', async () => {
    const before = await tableChecksum(db.client, 'river_job');
    const stuck = await cliProcess(['--config', river, 'jobs', 'stuck', '-o', 'ndjson'], env);
    expect(stuck.code).toBe(0);
    const lines = stuck.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(13);
    expect(lines[12]).toMatchObject({ type: 'summary', command: 'jobs stuck', summary: { stuck: 12 } });

    const dry = await cliProcess(['--config', river, 'jobs', 'rescue'], env);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('Plan: rescue River jobs running for longer than 1h in river_job');
    expect(dry.stdout).toContain('Dry run: nothing was changed');
    const dryRetry = await cliProcess(['--config', river, 'jobs', 'retry', '--kind', 'import_csv'], env);
    expect(dryRetry.code).toBe(0);
    expect(await tableChecksum(db.client, 'river_job')).toBe(before);

    const rescued = await cliProcess(['--config', river, 'jobs', 'rescue', '--apply', '--yes', '-o', 'json'], env);
    expect(rescued.code).toBe(0);
    expect(rescued.json().summary).toMatchObject({ planned: 12, rescued: 12, 'rescued-retryable': 8, 'rescued-discarded': 4 });
    const retried = await cliProcess(['--config', river, 'jobs', 'retry', '--kind', 'import_csv', '--apply', '-o', 'json'], env);
    expect(retried.code).toBe(0);
    // The 8 seeded discarded jobs, and the 4 the rescue just discarded are send_email: not in scope.
    expect(retried.json().summary).toMatchObject({ planned: 8, retried: 8 });

    const again = await cliProcess(['--config', river, 'jobs', 'rescue', '--apply', '-o', 'json'], env);
    expect(again.json().summary.planned).toBe(0);
    const againRetry = await cliProcess(['--config', river, 'jobs', 'retry', '--kind', 'import_csv', '--apply', '-o', 'json'], env);
    expect(againRetry.json().summary.planned).toBe(0);
    const audit = await db.client.query("SELECT kind, count(*)::int AS n FROM audit_log WHERE kind <> 'opsctl.run' GROUP BY kind ORDER BY kind");
    expect(audit.rows).toEqual([
      { kind: 'job.operator_rescue', n: 12 },
      { kind: 'job.operator_retry', n: 8 },
    ]);
  });

  it('opsctl check reports the jobs checks and exits 1 on findings', async () => {
    const r = await cliProcess(['--config', river, 'check', '--only', 'jobs', '-o', 'json'], env);
    expect(r.code).toBe(1);
    const statuses = Object.fromEntries(r.json().items.map((i: any) => [i.check, i.status]));
    expect(statuses).toEqual({ 'stuck-jobs': 'ok', 'discarded-jobs': 'finding' });
  });
});
