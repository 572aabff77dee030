import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshDatabase } from '../support/db.js';
import { cli } from '../support/cli.js';
import type { PlanFile } from '../../src/plans/plan-file.js';

let db: Awaited<ReturnType<typeof freshDatabase>>;
let env: NodeJS.ProcessEnv;
let cwd: string;
const TEAM = '11111111-2222-4333-8444-555555555555';

beforeAll(async () => {
  db = await freshDatabase('planprop');
  env = { DATABASE_URL: db.url };
  cwd = mkdtempSync(join(tmpdir(), 'opsctl-planprop-'));
});
afterAll(async () => {
  await db.drop();
});
beforeEach(async () => {
  await db.client.query('TRUNCATE pending_propagations, audit_log');
});

/** A dead letter, dead-lettered `failedAgo` minutes ago. */
async function dead(failedAgo: number, kind = 'tier_elevation'): Promise<string> {
  const r = await db.client.query(
    `INSERT INTO pending_propagations (kind, team_id, attempts, last_error, failed_at, next_attempt_at, created_at)
     VALUES ($1, $2, 10, 'boom', now() - make_interval(secs => $3::float8 * 60), now() - interval '1 minute', now() - interval '40 days')
     RETURNING id::text`,
    [kind, TEAM, failedAgo],
  );
  return r.rows[0].id;
}
const row = async (id: string) => (await db.client.query('SELECT id::text, attempts, last_error, failed_at, next_attempt_at FROM pending_propagations WHERE id = $1', [id])).rows[0];

describe('propagations plans', () => {
  it('retry: the planned dead letters are retried; one dead-lettered since the plan is not; one changed since is race-lost and left alone', async () => {
    const a = await dead(60);
    const b = await dead(30);
    const file = join(cwd, 'retry.json');
    const dry = await cli(['propagations', 'retry', '--all', '--plan-out', file], env, { cwd });
    expect(dry.code, dry.stderr).toBe(0);
    const plan = JSON.parse(readFileSync(file, 'utf8')) as PlanFile;
    expect(plan.command).toBe('propagations retry');
    expect(plan.targets[0]!.items.map((i) => i.item.id).sort()).toEqual([a, b].sort());
    const late = await dead(5);
    // A worker touched b since the plan (another attempt, another error): its image differs.
    await db.client.query(`UPDATE pending_propagations SET last_error = 'boom again', attempts = 11 WHERE id = $1`, [b]);
    const bBefore = await row(b);
    const r = await cli(['apply', file, '--yes', '-o', 'json'], env, { cwd });
    expect(r.code, r.stderr).toBe(0);
    const out = r.json();
    const byId = Object.fromEntries(out.items.map((i: { id: string }) => [i.id, i]));
    expect(byId[a].outcomeClass).toBe('applied');
    expect(byId[b].outcomeClass).toBe('lost');
    expect(byId[b].detail).toBe('changed since the plan was written');
    expect(byId[late]).toBeUndefined();
    expect((await row(a)).failed_at).toBeNull();
    expect(await row(b)).toEqual(bBefore);
    expect((await row(late)).failed_at).not.toBeNull();
  });

  it('purge: the planned dead letters are deleted (the review confirms the count); one old enough since the plan stays', async () => {
    const a = await dead(60 * 24 * 40);
    const b = await dead(60 * 24 * 45);
    const young = await dead(60 * 24 * 29);
    const file = join(cwd, 'purge.json');
    const dry = await cli(['propagations', 'purge', '--older-than', '30d', '--plan-out', file], env, { cwd });
    expect(dry.code, dry.stderr).toBe(0);
    // Old enough now (it was not when the plan was made).
    await db.client.query(`UPDATE pending_propagations SET failed_at = now() - interval '31 days' WHERE id = $1`, [young]);
    const r = await cli(['apply', file, '--yes', '-o', 'json'], env, { cwd });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json().items.map((i: { id: string; outcome: string }) => [i.id, i.outcomeClass]).sort()).toEqual([[a, 'applied'], [b, 'applied']].sort());
    expect(await row(a)).toBeUndefined();
    expect(await row(b)).toBeUndefined();
    expect(await row(young)).toBeDefined();
  });
});
