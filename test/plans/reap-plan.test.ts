import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { databaseChecksum, freshDatabase } from '../support/db.js';
import { cli } from '../support/cli.js';
import { planDigest, type PlanFile } from '../../src/plans/plan-file.js';

let db: Awaited<ReturnType<typeof freshDatabase>>;
let other: Awaited<ReturnType<typeof freshDatabase>>;
let env: NodeJS.ProcessEnv;
let cwd: string;

beforeAll(async () => {
  db = await freshDatabase('plan');
  other = await freshDatabase('planb');
  env = { DATABASE_URL: db.url, OPSCTL_ACTOR: 'plan-test' };
  cwd = mkdtempSync(join(tmpdir(), 'opsctl-plan-'));
});
afterAll(async () => {
  await db.drop();
  await other.drop();
});

async function ins(status: string, ageMinutes: number, client = db.client): Promise<string> {
  const r = await client.query(
    `INSERT INTO purchase_executions (status, updated_at, created_at) VALUES ($1, now() - make_interval(mins => $2), now() - make_interval(mins => $2)) RETURNING id::text`,
    [status, ageMinutes],
  );
  return r.rows[0].id as string;
}
const rows = async (client = db.client) => (await client.query('SELECT id::text, status, error, updated_at, transitioned_at FROM purchase_executions ORDER BY id')).rows;
const statusOf = async (id: string) => (await db.client.query('SELECT status FROM purchase_executions WHERE id = $1', [id])).rows[0]?.status as string;

/** Rewrites a plan file (e.g. an older createdAt) with its digest recomputed: what a test hook would write. */
function rewrite(file: string, change: (p: PlanFile) => void): void {
  const p = JSON.parse(readFileSync(file, 'utf8')) as PlanFile;
  change(p);
  p.digest = planDigest(p);
  writeFileSync(file, JSON.stringify(p, null, 2));
}

describe('reap --plan-out, then apply FILE', () => {
  beforeEach(async () => {
    await db.client.query('TRUNCATE purchase_executions, audit_log');
  });

  it('applies exactly the planned rows: one that became stuck since is untouched; one a worker changed is race-lost and left as the worker left it', async () => {
    const a = await ins('running', 60);
    const b = await ins('approved', 30);
    const c = await ins('running', 20);
    const fresh = await ins('running', 2);
    const file = join(cwd, 'reap.json');
    const audited = join(cwd, 'audited.config.json');
    writeFileSync(audited, JSON.stringify({ audit: { table: 'audit_log' } }));
    const dry = await cli(['reap', '--older-than', '10m', '--plan-out', file, '-o', 'json', '--config', audited], env, { cwd });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stderr).toContain('plan written to');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const plan = JSON.parse(readFileSync(file, 'utf8')) as PlanFile;
    expect(plan.format).toBe('opsctl-plan/1');
    expect(plan.command).toBe('reap');
    expect(plan.args).toEqual(['reap', '--older-than=10m']);
    expect(plan.targets).toHaveLength(1);
    expect(plan.targets[0]!.identity).toMatchObject({ kind: 'postgresql', database: db.name });
    expect(plan.targets[0]!.items.map((i) => i.item.id).sort()).toEqual([a, b, c].sort());
    expect(plan.targets[0]!.items[0]!.image).toHaveProperty('status');
    expect(readFileSync(file, 'utf8')).not.toContain(new URL(db.url).password || 'no-password-in-url');

    // After the plan: `fresh` becomes stuck too; a worker finishes `b`.
    await db.client.query(`UPDATE purchase_executions SET updated_at = now() - interval '1 hour' WHERE id = $1`, [fresh]);
    await db.client.query(`UPDATE purchase_executions SET status = 'completed' WHERE id = $1`, [b]);
    const bAfterWorker = (await rows()).find((r) => r.id === b);

    const r = await cli(['apply', file, '--yes', '-o', 'json', '--config', audited], env, { cwd });
    expect(r.code, r.stderr).toBe(0);
    const out = r.json();
    expect(out.summary.plan.command).toBe('reap');
    expect(out.summary.runId).toBeTruthy();
    const byId = Object.fromEntries(out.items.map((i: { id: string; outcome: string; detail?: string }) => [i.id, i]));
    expect(byId[a].outcome).toBe('reaped');
    expect(byId[c].outcome).toBe('reaped');
    expect(byId[b].outcome).toBe('race-lost');
    expect(byId[b].detail).toBe('changed since the plan was written');
    expect(byId[fresh]).toBeUndefined();
    expect(await statusOf(a)).toBe('failed');
    expect(await statusOf(fresh)).toBe('running');
    expect((await rows()).find((x) => x.id === b)).toEqual(bAfterWorker);
    const audit = await db.client.query(`SELECT metadata->>'runId' AS run FROM audit_log WHERE kind <> 'opsctl.run'`);
    expect(audit.rows.map((x) => x.run)).toEqual([out.summary.runId, out.summary.runId]);
  });

  it('refuses an edited, an expired and a foreign plan, and --plan-out with --apply: exit 2, nothing written', async () => {
    await ins('running', 60);
    await ins('approved', 30);
    await ins('running', 60, other.client);
    const file = join(cwd, 'refused.json');
    expect((await cli(['reap', '--older-than', '10m', '--plan-out', file], env, { cwd })).code).toBe(0);
    const before = await databaseChecksum(db.client);
    const beforeOther = await databaseChecksum(other.client);
    const text = readFileSync(file, 'utf8');

    // One byte changed.
    const edited = join(cwd, 'edited.json');
    writeFileSync(edited, text.replace('"running"', '"runnina"'));
    const e = await cli(['apply', edited, '--yes'], env, { cwd });
    expect(e.code).toBe(2);
    expect(e.stderr).toContain('changed since it was written');

    // Written two hours ago (its digest recomputed, as a test hook would).
    const old = join(cwd, 'old.json');
    writeFileSync(old, text);
    rewrite(old, (p) => {
      p.createdAt = new Date(Date.now() - 2 * 3600_000).toISOString();
    });
    const o = await cli(['apply', old, '--yes', '--max-age', '1s'], env, { cwd });
    expect(o.code).toBe(2);
    expect(o.stderr).toContain('--max-age');
    expect((await cli(['apply', old, '--yes'], env, { cwd })).code).toBe(2);

    // Made on database A, applied to database B (same server: the identity names the database).
    const f = await cli(['apply', file, '--yes'], { ...env, DATABASE_URL: other.url }, { cwd });
    expect(f.code).toBe(2);
    expect(f.stderr).toContain(`this plan was made for database ${db.name}`);
    expect(f.stderr).toContain(`not database ${other.name}`);

    // Another format.
    const v2 = join(cwd, 'v2.json');
    writeFileSync(v2, text);
    rewrite(v2, (p) => {
      p.format = 'opsctl-plan/2';
    });
    expect((await cli(['apply', v2, '--yes'], env, { cwd })).code).toBe(2);

    // A config that differs from the plan's.
    const cfg = join(cwd, 'changed-refusal.config.json');
    writeFileSync(cfg, JSON.stringify({ executions: { reasonTemplate: 'reaped by a changed config' } }));
    const k = await cli(['apply', file, '--yes', '--config', cfg], env, { cwd });
    expect(k.code).toBe(2);
    expect(k.stderr).toContain('executions.reasonTemplate changed');

    const both = await cli(['reap', '--older-than', '10m', '--apply', '--plan-out', join(cwd, 'x.json')], env, { cwd });
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--plan-out');

    expect(await databaseChecksum(db.client)).toBe(before);
    expect(await databaseChecksum(other.client)).toBe(beforeOther);
  });

  it('--allow-config-change applies a plan made with another config (saying which key changed); --max-age 0 takes a plan of any age', async () => {
    const a = await ins('running', 60);
    const file = join(cwd, 'allowed.json');
    expect((await cli(['reap', '--older-than', '10m', '--plan-out', file], env, { cwd })).code).toBe(0);
    rewrite(file, (p) => {
      p.createdAt = new Date(Date.now() - 30 * 24 * 3600_000).toISOString();
    });
    const cfg = join(cwd, 'changed.config.json');
    writeFileSync(cfg, JSON.stringify({ executions: { reasonTemplate: 'reaped by a changed config' } }));
    const r = await cli(['apply', file, '--yes', '--max-age', '0', '--allow-config-change', '--config', cfg, '-o', 'json'], env, { cwd });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('executions.reasonTemplate changed');
    expect(r.json().items.map((i: { id: string; outcome: string }) => [i.id, i.outcome])).toEqual([[a, 'reaped']]);
  });

  it('a planned row another transaction holds at write time is skipped-locked and left alone (it cannot be compared with its image)', async () => {
    const a = await ins('running', 60);
    const b = await ins('running', 60);
    const file = join(cwd, 'locked.json');
    expect((await cli(['reap', '--older-than', '10m', '--plan-out', file], env, { cwd })).code).toBe(0);
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM purchase_executions WHERE id = $1 FOR UPDATE', [b]);
      const r = await cli(['apply', file, '--yes', '-o', 'json'], env, { cwd });
      expect(r.code, r.stderr).toBe(0);
      const byId = Object.fromEntries(r.json().items.map((i: { id: string; outcome: string }) => [i.id, i.outcome]));
      expect(byId).toEqual({ [a]: 'reaped', [b]: 'skipped-locked' });
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    expect(await statusOf(b)).toBe('running');
  });

  it('never a secret in the file: the password of --database-url is masked in argv, and no global flag is recorded to re-run', async () => {
    await ins('running', 60);
    const password = decodeURIComponent(new URL(db.url).password);
    expect(password.length).toBeGreaterThan(0);
    const file = join(cwd, 'secret.json');
    const r = await cli(['--database-url', db.url, 'reap', '--older-than', '10m', '--plan-out', file], {}, { cwd });
    expect(r.code, r.stderr).toBe(0);
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(password);
    const plan = JSON.parse(text) as PlanFile;
    expect(plan.argv[1]).toContain(':***@');
    expect(plan.args).toEqual(['reap', '--older-than=10m']);
  });
});
