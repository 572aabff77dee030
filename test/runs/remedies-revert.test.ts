import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshDatabase } from '../support/db.js';
import { cli } from '../support/cli.js';
import { REFERENCE_SCHEMA_SQL } from '../../src/reference/schema.js';
import { RIVER_SCHEMA_SQL } from '../../src/reference/queues/river.js';
import { obanSchemaSql } from '../../src/reference/queues/oban.js';
import { SCHEDULER_SCHEMA_SQL } from '../support/scheduler-schema.js';

// Issue #28: revert per remedy — propagations retry and purge, jobs retry and rescue (River and
// Oban), reap --dead-workers — each against a copy of the rows taken before the run.

let db: Awaited<ReturnType<typeof freshDatabase>>;
let dir: string;
const q = (sql: string, params: unknown[] = []) => db.client.query(sql, params);
/** Every row whole (to_jsonb), by id: what a revert must give back. */
const snapshot = async (table: string) => (await q(`SELECT t.id::text AS id, to_jsonb(t) AS row FROM ${table} t ORDER BY t.id`)).rows;

beforeAll(async () => {
  db = await freshDatabase('revert', REFERENCE_SCHEMA_SQL + SCHEDULER_SCHEMA_SQL + RIVER_SCHEMA_SQL + obanSchemaSql('public'));
  dir = mkdtempSync(join(tmpdir(), 'opsctl-revert-'));
});
afterAll(async () => {
  await db?.drop();
});

for (const audited of [true, false]) {
  describe(`revert per remedy (${audited ? 'audit table' : 'journal only'})`, () => {
    let env: NodeJS.ProcessEnv;
    let cfg: string;
    const run = async (args: string[]) => {
      const r = await cli(['--config', cfg, ...args, '-o', 'json'], env);
      expect(r.stderr, args.join(' ')).toBe('');
      expect(r.code, args.join(' ')).toBe(0);
      return r.json();
    };
    const revert = (runId: string) => run(['revert', runId, '--apply', '--yes']);
    beforeEach(async () => {
      env = { DATABASE_URL: db.url, OPSCTL_STATE_DIR: mkdtempSync(join(dir, 'state-')) };
      cfg = join(dir, `cfg-${Math.random().toString(36).slice(2)}.json`);
      writeFileSync(
        cfg,
        JSON.stringify({
          actor: 'test-operator',
          ...(audited ? { audit: { table: 'audit_log' } } : {}),
        }),
      );
      await q('TRUNCATE pending_propagations, audit_log, river_job, oban_jobs, scheduler.runs, scheduler.workers CASCADE');
    });

    it('propagations retry: a row re-driven since is left alone; the others get failed_at, attempts, next_attempt_at back', async () => {
      await q(
        `INSERT INTO pending_propagations (kind, team_id, attempts, last_error, failed_at, next_attempt_at, created_at)
         SELECT 'tier_elevation', gen_random_uuid(), 10, 'connection refused', now() - make_interval(mins => i), now() - interval '1 hour', now() - interval '2 days' FROM generate_series(1, 4) i`,
      );
      const original = await snapshot('pending_propagations');
      const retry = await run(['propagations', 'retry', '--kind', 'tier_elevation', '--apply']);
      expect(retry.summary.retried).toBe(4);
      // The runner picks one up and applies it.
      const moved = original[0].id;
      await q(`UPDATE pending_propagations SET attempts = 1, applied_at = now() WHERE id = $1`, [moved]);
      const r = await revert(retry.summary.runId);
      expect(r.summary).toMatchObject({ reverted: 3, 'changed-since': 1 });
      const now = await snapshot('pending_propagations');
      for (const [i, row] of now.entries()) {
        if (row.id === moved) expect(row.row.applied_at).not.toBeNull();
        else expect(row).toEqual(original[i]);
      }
    });

    it('propagations purge: the deleted rows come back whole where their key is still free', async () => {
      await q(
        `INSERT INTO pending_propagations (kind, team_id, target_tier, payload, attempts, last_error, failed_at, next_attempt_at, created_at)
         SELECT 'quota_v2', gen_random_uuid(), 'gold', jsonb_build_object('n', i, 'nested', jsonb_build_array(1, 'two')), 7, 'boom ' || i, now() - interval '10 days', now() - interval '9 days', now() - interval '11 days'
           FROM generate_series(1, 3) i`,
      );
      const original = await snapshot('pending_propagations');
      const purge = await run(['propagations', 'purge', '--older-than', '7d', '--apply', '--expect', '3']);
      expect(purge.summary.purged).toBe(3);
      expect((await snapshot('pending_propagations')).length).toBe(0);
      // One key is taken again meanwhile: that row is left alone.
      const taken = original[2].id;
      await q(`INSERT INTO pending_propagations (id, kind, team_id) VALUES ($1, 'other', gen_random_uuid())`, [taken]);
      const r = await revert(purge.summary.runId);
      expect(r.summary).toMatchObject({ reverted: 2, 'changed-since': 1 });
      const now = await snapshot('pending_propagations');
      expect(now.slice(0, 2)).toEqual(original.slice(0, 2));
      expect(now[2].row.kind).toBe('other');
      // The revert of the purge (its inserts) can itself be reverted: the rows go again.
      const again = await revert(r.summary.runId);
      expect(again.summary.reverted).toBe(2);
      expect((await snapshot('pending_propagations')).map((x: any) => x.id)).toEqual([taken]);
    });

    it('jobs retry and rescue (River): a retried job that ran since is never reverted', async () => {
      const ins = async (state: string, extra: string) =>
        (
          await q(
            `INSERT INTO river_job (state, kind, queue, args, attempt, max_attempts, attempted_at, attempted_by, finalized_at, scheduled_at, errors, metadata)
             VALUES ($1::river_job_state, 'send_email', 'default', '{}', 3, 3, now() - interval '2 hours', ARRAY['w1'], ${extra}, now() - interval '3 hours',
                     ARRAY[jsonb_build_object('at', now(), 'attempt', 1, 'error', 'boom', 'trace', '')], '{"k": 1}') RETURNING id::text`,
            [state],
          )
        ).rows[0].id as string;
      const discarded = [await ins('discarded', "now() - interval '1 hour'"), await ins('discarded', "now() - interval '50 minutes'")];
      const running = [await ins('running', 'NULL'), await ins('running', 'NULL')];
      const jobsCfg = join(dir, `river-${audited}.json`);
      writeFileSync(jobsCfg, JSON.stringify({ actor: 'test-operator', ...(audited ? { audit: { table: 'audit_log' } } : {}), jobs: { queue: 'river' } }));
      cfg = jobsCfg;
      const original = await snapshot('river_job');
      const retry = await run(['jobs', 'retry', '--all', '--apply', '--yes']);
      expect(retry.summary.retried).toBe(2);
      const rescue = await run(['jobs', 'rescue', '--apply', '--yes']);
      expect(rescue.summary.rescued).toBe(2);
      // One retried job runs again (River fetched it): it has moved on.
      await q(`UPDATE river_job SET state = 'running', attempt = attempt + 1, attempted_at = now() WHERE id = $1`, [discarded[0]]);
      const r1 = await revert(retry.summary.runId);
      expect(r1.summary).toMatchObject({ reverted: 1, 'changed-since': 1 });
      const r2 = await revert(rescue.summary.runId);
      expect(r2.summary.reverted).toBe(2);
      const now = await snapshot('river_job');
      for (const [i, row] of now.entries()) {
        if (row.id === discarded[0]) expect(row.row.state).toBe('running');
        else expect(row, row.id).toEqual(original[i]);
      }
      expect(running.every((id) => now.some((r: any) => r.id === id && r.row.state === 'running'))).toBe(true);
    });

    it('jobs retry and rescue (Oban)', async () => {
      const ins = async (state: string) =>
        (
          await q(
            `INSERT INTO oban_jobs (state, queue, worker, args, errors, attempt, max_attempts, inserted_at, scheduled_at, attempted_at, attempted_by, discarded_at)
             VALUES ($1::oban_job_state, 'default', 'MyApp.Mailer', '{}', ARRAY['{"attempt":1,"error":"boom"}'::jsonb], 2, 3,
                     timezone('UTC', now()) - interval '3 hours', timezone('UTC', now()) - interval '2 hours', timezone('UTC', now()) - interval '2 hours', ARRAY['web.1'],
                     CASE WHEN $1 = 'discarded' THEN timezone('UTC', now()) - interval '1 hour' END) RETURNING id::text`,
            [state],
          )
        ).rows[0].id as string;
      await ins('discarded');
      await ins('executing');
      const obanCfg = join(dir, `oban-${audited}.json`);
      writeFileSync(obanCfg, JSON.stringify({ actor: 'test-operator', ...(audited ? { audit: { table: 'audit_log' } } : {}), jobs: { queue: 'oban', schema: 'public' } }));
      cfg = obanCfg;
      const original = await snapshot('oban_jobs');
      const retry = await run(['jobs', 'retry', '--all', '--apply', '--yes']);
      const rescue = await run(['jobs', 'rescue', '--apply', '--yes']);
      expect([retry.summary.retried, rescue.summary.rescued]).toEqual([1, 1]);
      expect((await revert(rescue.summary.runId)).summary.reverted).toBe(1);
      expect((await revert(retry.summary.runId)).summary.reverted).toBe(1);
      expect(await snapshot('oban_jobs')).toEqual(original);
    });

    it('reap --dead-workers: status, error and finished_at back; a row its worker finished since is left alone', async () => {
      await q(`INSERT INTO scheduler.workers (id, host, last_heartbeat_at) VALUES ('w-dead', 'h', now() - interval '10 minutes')`);
      await q(`INSERT INTO scheduler.runs (status, worker_id, started_at, updated_at) SELECT 'running', 'w-dead', now() - interval '30 minutes', now() - interval '30 minutes' FROM generate_series(1, 3)`);
      const original = await snapshot('scheduler.runs');
      const reap = await run(['reap', '--dead-workers', '--apply']);
      expect(reap.summary.reaped).toBe(3);
      const finished = original[1].id;
      await q(`UPDATE scheduler.runs SET status = 'succeeded' WHERE id = $1`, [finished]);
      const r = await revert(reap.summary.runId);
      expect(r.summary).toMatchObject({ reverted: 2, 'changed-since': 1 });
      const now = await snapshot('scheduler.runs');
      for (const [i, row] of now.entries()) {
        if (row.id === finished) expect(row.row.status).toBe('succeeded');
        else expect(row).toEqual(original[i]);
      }
      // The revert reverted: the two rows are reaped again, exactly as the reap left them.
      expect((await revert(r.summary.runId)).summary.reverted).toBe(2);
      const snap = await snapshot('scheduler.runs');
      expect((await revert(r.summary.runId)).summary.reverted).toBe(0);
      expect(await snapshot('scheduler.runs')).toEqual(snap);
      for (const row of await snapshot('scheduler.runs')) expect(row.row.status).toBe(row.id === finished ? 'succeeded' : 'failed');
    });
  });
}

describe('revert of a purge on a table with an identity key (GENERATED ALWAYS) and a generated column', () => {
  it('inserts the rows again with their own ids (OVERRIDING SYSTEM VALUE); the generated column is computed again', async () => {
    await q(`CREATE TABLE outbox_ident (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, kind text NOT NULL, team_id uuid, target_tier text, payload jsonb NOT NULL DEFAULT '{}',
      attempts int NOT NULL DEFAULT 0, last_attempt_at timestamptz, last_error text, next_attempt_at timestamptz NOT NULL DEFAULT now(),
      applied_at timestamptz, failed_at timestamptz, created_at timestamptz NOT NULL DEFAULT now(),
      kind_upper text GENERATED ALWAYS AS (upper(kind)) STORED)`);
    await q(
      `INSERT INTO outbox_ident (kind, team_id, attempts, last_error, failed_at, next_attempt_at, created_at)
       SELECT 'quota_v2', gen_random_uuid(), 7, 'boom', now() - interval '10 days', now() - interval '9 days', now() - interval '11 days' FROM generate_series(1, 3)`,
    );
    const original = await snapshot('outbox_ident');
    const cfg = join(dir, 'ident.json');
    writeFileSync(cfg, JSON.stringify({ actor: 'test-operator', audit: { table: 'audit_log' }, propagations: { table: 'outbox_ident' } }));
    const env = { DATABASE_URL: db.url, OPSCTL_STATE_DIR: mkdtempSync(join(dir, 'state-')) };
    const purge = await cli(['--config', cfg, 'propagations', 'purge', '--older-than', '7d', '--apply', '--expect', '3', '-o', 'json'], env);
    expect(purge.code, purge.stderr).toBe(0);
    expect((await snapshot('outbox_ident')).length).toBe(0);
    const r = await cli(['--config', cfg, 'revert', purge.json().summary.runId, '--apply', '--yes', '-o', 'json'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json().summary.reverted).toBe(3);
    expect(await snapshot('outbox_ident')).toEqual(original);
  });
});
