import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshDatabase } from '../support/db.js';
import { cli } from '../support/cli.js';

// With audit.table, a run's record (kind opsctl.run) goes into the audit table: a run made on
// one host (a cron box, its own state directory) is listed whole by `opsctl runs` on another,
// also a run that changed nothing. Where the table refuses the record, runs.jsonl takes it.

let db: Awaited<ReturnType<typeof freshDatabase>>;
let dir: string;
const q = (sql: string, params: unknown[] = []) => db.client.query(sql, params);

beforeAll(async () => {
  db = await freshDatabase('records');
  dir = mkdtempSync(join(tmpdir(), 'opsctl-records-'));
});
afterAll(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await q('TRUNCATE purchase_executions, audit_log');
});

const config = (name: string, extra: Record<string, unknown> = {}) => {
  const f = join(dir, name);
  writeFileSync(f, JSON.stringify({ actor: 'cron-box', audit: { table: 'audit_log' }, ...extra }));
  return f;
};
const stuck = async (n: number): Promise<string[]> =>
  (await q(`INSERT INTO purchase_executions (status, updated_at) SELECT 'running', now() - interval '2 hours' FROM generate_series(1, ${n}) RETURNING id::text`)).rows.map((r) => r.id as string);

describe('run records in the audit table', () => {
  it('a run with nothing to do (a cron reap finding nothing) adds no row to the audit table: its record stays on the host', async () => {
    const cfg = config('empty.json');
    const state = mkdtempSync(join(dir, 'host-cron-'));
    const reap = await cli(['--config', cfg, 'reap', '--older-than', '10m', '--apply', '-o', 'json'], { DATABASE_URL: db.url, OPSCTL_STATE_DIR: state });
    expect(reap.code, reap.stderr).toBe(0);
    const runId = reap.json().summary.runId as string;
    expect(runId).toMatch(/^[0-9a-f-]{36}$/);
    expect((await q('SELECT count(*)::int AS n FROM audit_log')).rows[0].n).toBe(0);
    const local = readFileSync(join(state, 'runs.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(local.map((r) => r.metadata.runId)).toEqual([runId]);
  });

  it("a run made on host A is listed by host B with its command, reason and counts; a run where every item was race-lost too", async () => {
    const cfg = config('shared.json');
    const hostA = { DATABASE_URL: db.url, OPSCTL_STATE_DIR: mkdtempSync(join(dir, 'host-a-')) };
    const hostB = { DATABASE_URL: db.url, OPSCTL_STATE_DIR: mkdtempSync(join(dir, 'host-b-')) };

    // Host A (cron): a reap that changes 4 rows.
    await stuck(4);
    const reap = await cli(['--config', cfg, 'reap', '--older-than', '10m', '--apply', '--reason', 'nightly INC-7', '-o', 'json'], hostA);
    expect(reap.stderr).toBe('');
    expect(reap.code).toBe(0);
    const runId = reap.json().summary.runId as string;

    // Host A again: a reviewed plan whose every row a worker finished since: all race-lost, nothing changed.
    await q('TRUNCATE purchase_executions');
    await stuck(3);
    const planFile = join(dir, 'plan.json');
    const dry = await cli(['--config', cfg, 'reap', '--older-than', '10m', '--plan-out', planFile, '-o', 'json'], hostA);
    expect(dry.code, dry.stderr).toBe(0);
    await q(`UPDATE purchase_executions SET status = 'completed'`);
    const lost = await cli(['--config', cfg, 'apply', planFile, '--yes', '-o', 'json'], hostA);
    expect(lost.code, lost.stderr).toBe(0);
    const lostId = lost.json().summary.runId as string;
    expect(lost.json().items.map((i: any) => i.outcome)).toEqual(['race-lost', 'race-lost', 'race-lost']);
    expect((await q(`SELECT count(*)::int AS n FROM audit_log WHERE metadata->>'runId' = $1 AND kind <> 'opsctl.run'`, [lostId])).rows[0].n).toBe(0);

    // Host A wrote no runs.jsonl: both records are in the audit table.
    expect(existsSync(join(hostA.OPSCTL_STATE_DIR, 'runs.jsonl'))).toBe(false);
    const records = (await q(`SELECT resource_type, resource_id, team_id, actor, metadata FROM audit_log WHERE kind = 'opsctl.run' ORDER BY resource_id`)).rows;
    expect(records.map((r) => r.resource_id)).toEqual([runId, lostId].sort());
    for (const r of records) expect(r).toMatchObject({ resource_type: 'opsctl_run', team_id: null, actor: 'cron-box' });

    // Host B: empty state directory, the same audit table.
    const list = await cli(['--config', cfg, 'runs', '-o', 'json'], hostB);
    expect(list.stderr).toBe('');
    expect(list.code).toBe(0);
    const items = list.json().items;
    expect(items.map((r: any) => r.runId)).toEqual([lostId, runId]);
    expect(items[1]).toMatchObject({ runId, command: 'reap', reason: 'nightly INC-7', actor: 'cron-box', outcomes: { applied: 4, lost: 0, skipped: 0, refused: 0, errored: 0 }, items: 4, recorded: true, exitCode: 0 });
    expect(items[1].commandLine).toContain('reap --older-than 10m --apply');
    expect(items[1].finishedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(items[0].command).toBeTruthy();
    expect(items[0]).toMatchObject({ runId: lostId, actor: 'cron-box', outcomes: { applied: 0, lost: 3 }, items: 0, recorded: true, exitCode: 0 });
    const table = await cli(['--config', cfg, 'runs'], hostB);
    expect(table.stdout).toContain('nightly INC-7');
    expect(table.stdout).toContain('race-lost 3');

    // runs show on host B: the record's command line, and the run's items.
    const show = await cli(['--config', cfg, 'runs', 'show', runId, '-o', 'json'], hostB);
    expect(show.code).toBe(0);
    expect(show.json().items).toHaveLength(4);
    expect(show.json().summary).toMatchObject({ runId, command: 'reap', recorded: true, outcomes: { applied: 4 } });
    const showLost = await cli(['--config', cfg, 'runs', 'show', lostId, '-o', 'json'], hostB);
    expect(showLost.code).toBe(0);
    expect(showLost.json().items).toEqual([]);
    expect(showLost.json().summary).toMatchObject({ runId: lostId, recorded: true, outcomes: { lost: 3 } });
  });

  it('a uuid resource_id column takes the run id as it is', async () => {
    await q(`CREATE TABLE audit_uuid (id bigserial PRIMARY KEY, team_id uuid, user_id uuid, actor text NOT NULL, kind text NOT NULL, resource_type text NOT NULL,
               resource_id uuid, summary text NOT NULL, metadata jsonb NOT NULL DEFAULT '{}', created_at timestamptz NOT NULL DEFAULT now())`);
    await stuck(2);
    const cfg = config('uuid.json', { audit: { table: 'audit_uuid' } });
    const env = { DATABASE_URL: db.url, OPSCTL_STATE_DIR: mkdtempSync(join(dir, 'state-')) };
    const r = await cli(['--config', cfg, 'reap', '--older-than', '10m', '--apply', '-o', 'json'], env);
    expect(r.code, r.stderr).toBe(0);
    const runId = r.json().summary.runId;
    const rows = (await q(`SELECT resource_id::text AS resource_id, metadata FROM audit_uuid WHERE kind = 'opsctl.run'`)).rows;
    expect(rows).toHaveLength(1);
    expect(rows[0].resource_id).toBe(runId);
    expect(rows[0].metadata).not.toHaveProperty('resource_id');
    expect(rows[0].metadata.outcomes).toMatchObject({ applied: 2 });
  });

  it('a table that refuses the record: it goes to runs.jsonl, and the run keeps its exit code', async () => {
    await q(`ALTER TABLE audit_log ADD CONSTRAINT no_run_records CHECK (kind <> 'opsctl.run') NOT VALID`);
    try {
      await stuck(2);
      const cfg = config('refused.json');
      const state = mkdtempSync(join(dir, 'state-'));
      const env = { DATABASE_URL: db.url, OPSCTL_STATE_DIR: state };
      const r = await cli(['--config', cfg, 'reap', '--older-than', '10m', '--apply', '--reason', 'fallback', '-o', 'json'], env);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const runId = r.json().summary.runId;
      expect((await q(`SELECT count(*)::int AS n FROM audit_log WHERE kind = 'execution.reaped'`)).rows[0].n).toBe(2);
      expect((await q(`SELECT count(*)::int AS n FROM audit_log WHERE kind = 'opsctl.run'`)).rows[0].n).toBe(0);
      const lines = readFileSync(join(state, 'runs.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ kind: 'opsctl.run', resourceId: runId, metadata: { reason: 'fallback', outcomes: { applied: 2 } } });
      // The same host lists it whole, from the table's entries and its runs.jsonl.
      const list = (await cli(['--config', cfg, 'runs', '-o', 'json'], env)).json().items;
      expect(list.find((x: any) => x.runId === runId)).toMatchObject({ recorded: true, reason: 'fallback', outcomes: { applied: 2 } });
    } finally {
      await q('ALTER TABLE audit_log DROP CONSTRAINT no_run_records');
    }
  });
});
