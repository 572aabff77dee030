import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { databaseChecksum, freshDatabase, noPassword, serverPassword } from '../support/db.js';
import { cli } from '../support/cli.js';
import type { PlanFile } from '../../src/plans/plan-file.js';

type Db = Awaited<ReturnType<typeof freshDatabase>>;
let a: Db, b: Db, c: Db;
let dir: string;

beforeAll(async () => {
  [a, b, c] = await Promise.all([freshDatabase('pf_a'), freshDatabase('pf_b'), freshDatabase('pf_c')]);
  dir = mkdtempSync(join(tmpdir(), 'opsctl-planfleet-'));
});
afterAll(async () => {
  await Promise.all([a.drop(), b.drop(), c.drop()]);
});

const deadLetters = async (d: Db, n: number) =>
  (
    await d.client.query(
      `INSERT INTO pending_propagations (kind, team_id, attempts, last_error, failed_at) SELECT 'tier_elevation', gen_random_uuid(), 10, 'boom', now() - interval '1 hour' FROM generate_series(1, ${n}) RETURNING id::text`,
    )
  ).rows.map((r) => r.id as string);
const left = async (d: Db) => (await d.client.query('SELECT id::text FROM pending_propagations ORDER BY id')).rows.map((r) => r.id as string);

function config(targets: Record<string, Db>): string {
  const f = join(dir, `c-${Math.random().toString(36).slice(2)}.json`);
  const t = (d: Db) => ({ database: { url: noPassword(d.url), passwordEnv: 'PW' } });
  writeFileSync(f, JSON.stringify({ audit: { table: 'audit_log', schema: null }, targets: Object.fromEntries(Object.entries(targets).map(([k, d]) => [k, t(d)])) }));
  return f;
}
const env = () => ({ PW: serverPassword() });

beforeEach(async () => {
  for (const d of [a, b, c]) await d.client.query('TRUNCATE pending_propagations, audit_log');
});

describe('fleet plans', () => {
  it('one file with each target\'s items and identity; apply checks every target first: one foreign target is exit 2 with nothing written on any; then applies target by target, the planned rows only', async () => {
    const inA = await deadLetters(a, 2);
    const inB = await deadLetters(b, 3);
    const cfg = config({ a, b });
    const file = join(dir, 'purge.json');
    const dry = await cli(['--config', cfg, 'propagations', 'purge', '--older-than', '30m', '--all-targets', '--plan-out', file], env(), { cwd: dir });
    expect(dry.code, dry.stderr).toBe(0);
    const plan = JSON.parse(readFileSync(file, 'utf8')) as PlanFile;
    expect(plan.targets.map((t) => [t.name, t.identity.kind === 'postgresql' ? t.identity.database : null, t.items.length])).toEqual([
      ['a', a.name, 2],
      ['b', b.name, 3],
    ]);
    expect(plan.args).toEqual(['propagations', 'purge', '--older-than=30m']);

    // Target b now points at database c: refused before anything is written on a.
    await deadLetters(c, 1);
    const sums = await Promise.all([a, b, c].map((d) => databaseChecksum(d.client)));
    const wrong = await cli(['--config', config({ a, b: c }), 'apply', file, '--yes'], env(), { cwd: dir });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain(`b: this plan was made for database ${b.name}`);
    expect(await Promise.all([a, b, c].map((d) => databaseChecksum(d.client)))).toEqual(sums);

    const late = await deadLetters(a, 1);
    const r = await cli(['--config', cfg, 'apply', file, '--yes', '-o', 'json'], env(), { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const out = r.json();
    expect(out.items.map((i: { target: string; outcomeClass: string }) => `${i.target}:${i.outcomeClass}`).sort()).toEqual(['a:applied', 'a:applied', 'b:applied', 'b:applied', 'b:applied']);
    expect(await left(a)).toEqual(late);
    expect(await left(b)).toEqual([]);
    expect(inA.length + inB.length).toBe(5);
  });

  it('reap over targets (plan, one question, apply target by target): the plan file\'s rows only, on each target', async () => {
    const stuck = async (d: Db, n: number) =>
      (await d.client.query(`INSERT INTO purchase_executions (status, updated_at) SELECT 'running', now() - interval '2 hours' FROM generate_series(1, ${n}) RETURNING id::text`)).rows.map((r) => r.id as string);
    for (const d of [a, b]) await d.client.query('TRUNCATE purchase_executions');
    const inA = await stuck(a, 2);
    const inB = await stuck(b, 1);
    const cfg = config({ a, b });
    const file = join(dir, 'reap.json');
    const dry = await cli(['--config', cfg, 'reap', '--all-targets', '--max-total', '10', '--plan-out', file], env(), { cwd: dir });
    expect(dry.code, dry.stderr).toBe(0);
    const plan = JSON.parse(readFileSync(file, 'utf8')) as PlanFile;
    expect(plan.targets.map((t) => [t.name, t.items.length])).toEqual([
      ['a', 2],
      ['b', 1],
    ]);
    const lateA = await stuck(a, 1);
    const r = await cli(['--config', cfg, 'apply', file, '--yes', '-o', 'json'], env(), { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const out = r.json();
    expect(out.items.map((i: { target: string; id: string; outcome: string }) => `${i.target}:${i.id}:${i.outcome}`).sort()).toEqual(
      [...inA.map((id) => `a:${id}:reaped`), ...inB.map((id) => `b:${id}:reaped`)].sort(),
    );
    const status = async (d: Db, id: string) => (await d.client.query('SELECT status FROM purchase_executions WHERE id = $1', [id])).rows[0].status;
    expect(await status(a, lateA[0]!)).toBe('running');
    expect(await status(b, inB[0]!)).toBe('failed');
  });
});
