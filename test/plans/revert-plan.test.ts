import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshDatabase } from '../support/db.js';
import { cli } from '../support/cli.js';
import type { PlanFile } from '../../src/plans/plan-file.js';

let db: Awaited<ReturnType<typeof freshDatabase>>;
let dir: string;
beforeAll(async () => {
  db = await freshDatabase('planrevert');
  dir = mkdtempSync(join(tmpdir(), 'opsctl-planrevert-'));
});
afterAll(async () => {
  await db.drop();
});

describe('revert RUN --plan-out, then apply FILE', () => {
  it('puts back the planned rows (revert is a remedy with --apply like the others)', async () => {
    const cfg = join(dir, 'c.json');
    writeFileSync(cfg, JSON.stringify({ actor: 'test-operator', audit: { table: 'audit_log' } }));
    const env = { DATABASE_URL: db.url, OPSCTL_STATE_DIR: mkdtempSync(join(dir, 'state-')) };
    await db.client.query(`INSERT INTO purchase_executions (status, updated_at) SELECT 'running', now() - interval '1 hour' FROM generate_series(1, 2)`);
    const reap = await cli(['--config', cfg, 'reap', '--apply', '--yes', '-o', 'json'], env);
    expect(reap.code, reap.stderr).toBe(0);
    const runId = reap.json().summary.runId as string;
    const file = join(dir, 'revert.json');
    const dry = await cli(['--config', cfg, 'revert', runId, '--plan-out', file], env, { cwd: dir });
    expect(dry.code, dry.stderr).toBe(0);
    const plan = JSON.parse(readFileSync(file, 'utf8')) as PlanFile;
    expect(plan.command).toBe('revert');
    expect(plan.args).toEqual(['revert', '--', runId]);
    expect(plan.targets[0]!.items).toHaveLength(2);
    const r = await cli(['--config', cfg, 'apply', file, '--yes', '-o', 'json'], env, { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json().items.map((i: { outcomeClass: string }) => i.outcomeClass)).toEqual(['applied', 'applied']);
    expect((await db.client.query(`SELECT count(*)::int AS n FROM purchase_executions WHERE status = 'running'`)).rows[0].n).toBe(2);
  });
});
