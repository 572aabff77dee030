import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshDatabase } from '../support/db.js';
import { cli } from '../support/cli.js';
import { jobsConfig } from '../support/jobs.js';
import { REFERENCE_SCHEMA_SQL } from '../../src/reference/schema.js';
import { RIVER_SCHEMA_SQL } from '../../src/reference/queues/river.js';
import type { PlanFile } from '../../src/plans/plan-file.js';

let db: Awaited<ReturnType<typeof freshDatabase>>;
let env: NodeJS.ProcessEnv;
let river: string;
let cwd: string;

beforeAll(async () => {
  db = await freshDatabase('planriver', REFERENCE_SCHEMA_SQL + RIVER_SCHEMA_SQL);
  env = { DATABASE_URL: db.url };
  river = jobsConfig('river');
  cwd = mkdtempSync(join(tmpdir(), 'opsctl-planjobs-'));
});
afterAll(async () => {
  await db.drop();
});
beforeEach(async () => {
  await db.client.query('TRUNCATE river_job, audit_log');
});

async function job(state: string, minutesAgo: number): Promise<string> {
  const finalized = state === 'discarded';
  const r = await db.client.query(
    `INSERT INTO river_job (state, kind, queue, args, attempt, max_attempts, attempted_at, attempted_by, finalized_at, scheduled_at, metadata)
     VALUES ($1::river_job_state, 'send_email', 'default', '{}', 1, 3, now() - make_interval(mins => $2::int), ARRAY['host-1_worker'],
             CASE WHEN $3 THEN now() - make_interval(mins => $2::int) END, now() - interval '3 hours', '{}')
     RETURNING id::text`,
    [state, minutesAgo, finalized],
  );
  return r.rows[0].id;
}
const stateOf = async (id: string) => (await db.client.query('SELECT state::text FROM river_job WHERE id = $1', [id])).rows[0].state as string;

describe('jobs plans (River)', () => {
  it('retry: exactly the planned discarded jobs; one discarded since the plan stays discarded', async () => {
    const a = await job('discarded', 30);
    const file = join(cwd, 'retry.json');
    const dry = await cli(['--config', river, 'jobs', 'retry', '--all', '--plan-out', file], env, { cwd });
    expect(dry.code, dry.stderr).toBe(0);
    const plan = JSON.parse(readFileSync(file, 'utf8')) as PlanFile;
    expect(plan.targets[0]!.items.map((i) => i.item.id)).toEqual([a]);
    const late = await job('discarded', 1);
    const r = await cli(['--config', river, 'apply', file, '--yes', '-o', 'json'], env, { cwd });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json().items.map((i: { id: string; outcomeClass: string }) => [i.id, i.outcomeClass])).toEqual([[a, 'applied']]);
    expect(await stateOf(a)).toBe('available');
    expect(await stateOf(late)).toBe('discarded');
  });

  it('rescue: a planned job that finished since the plan is race-lost and left completed', async () => {
    const a = await job('running', 90);
    const b = await job('running', 120);
    const file = join(cwd, 'rescue.json');
    expect((await cli(['--config', river, 'jobs', 'rescue', '--plan-out', file], env, { cwd })).code).toBe(0);
    await db.client.query(`UPDATE river_job SET state = 'completed', finalized_at = now() WHERE id = $1`, [b]);
    const r = await cli(['--config', river, 'apply', file, '--yes', '-o', 'json'], env, { cwd });
    expect(r.code, r.stderr).toBe(0);
    const byId = Object.fromEntries(r.json().items.map((i: { id: string }) => [i.id, i]));
    expect(byId[a].outcomeClass).toBe('applied');
    expect(byId[b].outcomeClass).toBe('lost');
    expect(await stateOf(b)).toBe('completed');
  });
});
