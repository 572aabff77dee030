import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshDatabase } from '../support/db.js';
import { cli } from '../support/cli.js';
import { configFile } from '../support/reliability.js';
import { SCHEDULER_SCHEMA_SQL } from '../support/scheduler-schema.js';
import { REFERENCE_SCHEMA_SQL } from '../../src/reference/schema.js';
import type { PlanFile } from '../../src/plans/plan-file.js';

let db: Awaited<ReturnType<typeof freshDatabase>>;
let env: NodeJS.ProcessEnv;
let cfgFile: string;
let cwd: string;

beforeAll(async () => {
  db = await freshDatabase('planworkers', REFERENCE_SCHEMA_SQL + SCHEDULER_SCHEMA_SQL);
  env = { DATABASE_URL: db.url };
  cfgFile = configFile({ actor: 'test-operator', audit: { table: 'audit_log' } });
  cwd = mkdtempSync(join(tmpdir(), 'opsctl-planworkers-'));
});
afterAll(async () => {
  await db.drop();
});

const q = (sql: string, params: unknown[] = []) => db.client.query(sql, params);

describe('reap --dead-workers plans', () => {
  it('applies exactly the planned rows of dead workers; a row of a worker that died since is not touched', async () => {
    await q(`INSERT INTO scheduler.workers (id, host, last_heartbeat_at) VALUES ('w-dead', 'a', now() - interval '10 minutes'), ('w-later', 'b', now())`);
    const held = (await q(`INSERT INTO scheduler.runs (status, worker_id, started_at, updated_at) SELECT 'running', 'w-dead', now(), now() FROM generate_series(1, 2) RETURNING id::text`)).rows.map((r) => r.id);
    const later = (await q(`INSERT INTO scheduler.runs (status, worker_id, started_at, updated_at) VALUES ('running', 'w-later', now(), now()) RETURNING id::text`)).rows[0].id;
    const file = join(cwd, 'dead.json');
    const dry = await cli(['--config', cfgFile, 'reap', '--dead-workers', '--plan-out', file], env, { cwd });
    expect(dry.code, dry.stderr).toBe(0);
    const plan = JSON.parse(readFileSync(file, 'utf8')) as PlanFile;
    expect(plan.args).toEqual(['reap', '--dead-workers']);
    expect(plan.targets[0]!.items.map((i) => i.item.id).sort()).toEqual([...held].sort());
    // w-later dies after the plan.
    await q(`UPDATE scheduler.workers SET last_heartbeat_at = now() - interval '1 hour' WHERE id = 'w-later'`);
    const r = await cli(['--config', cfgFile, 'apply', file, '--yes', '-o', 'json'], env, { cwd });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json().items.map((i: { id: string; outcomeClass: string }) => i.outcomeClass)).toEqual(['applied', 'applied']);
    const status = async (id: string) => (await q('SELECT status FROM scheduler.runs WHERE id = $1', [id])).rows[0].status;
    expect(await status(held[0]!)).not.toBe('running');
    expect(await status(later)).toBe('running');
  });
});
