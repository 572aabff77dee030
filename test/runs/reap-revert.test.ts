import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshDatabase, tableChecksum } from '../support/db.js';
import { cli } from '../support/cli.js';
import { readJournalLines } from '../../src/engine/local-state.js';

// Issue #28: every --apply is a run with before/after images; `runs` lists them, `revert` puts
// the before-images back where the rows are still as the run left them.

let db: Awaited<ReturnType<typeof freshDatabase>>;
let dir: string;
const q = (sql: string, params: unknown[] = []) => db.client.query(sql, params);
const UUID7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

beforeAll(async () => {
  db = await freshDatabase('runs');
  dir = mkdtempSync(join(tmpdir(), 'opsctl-runs-'));
  // The same shape without the touch trigger: every column opsctl wrote comes back exactly.
  await q(`CREATE TABLE plain_executions (LIKE purchase_executions INCLUDING DEFAULTS INCLUDING CONSTRAINTS, PRIMARY KEY (id))`);
});
afterAll(async () => {
  await db?.drop();
});

const config = (name: string, extra: Record<string, unknown>) => {
  const f = join(dir, name);
  writeFileSync(f, JSON.stringify({ actor: 'test-operator', ...extra }));
  return f;
};

async function seed(table: string): Promise<string[]> {
  await q(`TRUNCATE ${table}, audit_log`);
  const r = await q(
    `INSERT INTO ${table} (status, error, updated_at, created_at, transitioned_at)
     SELECT (ARRAY['approved','running'])[1 + i % 2], CASE WHEN i % 3 = 0 THEN 'earlier error' END, now() - make_interval(mins => 30 + i), now() - interval '2 days',
            CASE WHEN i % 2 = 0 THEN now() - interval '1 day' END
       FROM generate_series(1, 6) i RETURNING id::text`,
  );
  return r.rows.map((x) => x.id as string).sort();
}

const rowsOf = async (table: string) => (await q(`SELECT id::text, status, error, updated_at, transitioned_at, created_at FROM ${table} ORDER BY id`)).rows;

for (const mode of ['audit table', 'journal only'] as const) {
  describe(`reap → runs → revert (${mode})`, () => {
    let env: NodeJS.ProcessEnv;
    let cfg: string;
    let state: string;
    beforeEach(() => {
      state = mkdtempSync(join(dir, 'state-'));
      env = { DATABASE_URL: db.url, OPSCTL_STATE_DIR: state };
      cfg = config(`${mode.replace(' ', '-')}.json`, {
        ...(mode === 'audit table' ? { audit: { table: 'audit_log' } } : {}),
        executions: { table: 'plain_executions' },
      });
    });

    it('restores status, error and the timestamps opsctl wrote exactly; a row touched since is left alone; a second revert changes nothing', async () => {
      const ids = await seed('plain_executions');
      const original = await rowsOf('plain_executions');
      const reap = await cli(['--config', cfg, 'reap', '--older-than', '10m', '--apply', '--reason', 'INC-28', '-o', 'json'], env);
      expect(reap.stderr).toBe('');
      expect(reap.code).toBe(0);
      const runId = reap.json().summary.runId;
      expect(runId).toMatch(UUID7);
      expect(reap.json().summary.reaped).toBe(6);
      if (mode === 'audit table') {
        const audit = (await q(`SELECT metadata FROM audit_log WHERE kind = 'execution.reaped' ORDER BY resource_id`)).rows;
        expect(audit).toHaveLength(6);
        for (const a of audit) {
          expect(a.metadata.runId).toBe(runId);
          expect(Object.keys(a.metadata.before).sort()).toEqual(['error', 'status', 'transitioned_at', 'updated_at']);
          expect(a.metadata.after.status).toBe('failed');
        }
        expect(existsSync(join(state, 'audit.jsonl'))).toBe(false);
      } else {
        // One line for the batch (reap's server-built batch line), read back as a line per change.
        expect(readFileSync(join(state, 'audit.jsonl'), 'utf8').trim().split('\n')).toHaveLength(1);
        const lines = await readJournalLines(join(state, 'audit.jsonl'), { keep: (j): j is any => true });
        expect(lines).toHaveLength(6);
        for (const l of lines) {
          expect(l.metadata.runId).toBe(runId);
          expect(l.target).toMatchObject({ kind: 'postgres', database: db.name });
          expect(l.metadata.before.status).toMatch(/approved|running/);
          expect(l.metadata.after.status).toBe('failed');
        }
      }
      // The run record: in the audit table when there is one (no runs.jsonl then), else beside the journal.
      if (mode === 'audit table') {
        const rows = (await q(`SELECT kind, resource_type, resource_id::text AS resource_id, team_id, actor, metadata FROM audit_log WHERE kind = 'opsctl.run'`)).rows;
        expect(rows).toHaveLength(1);
        expect(rows[0]).toMatchObject({ kind: 'opsctl.run', resource_type: 'opsctl_run', resource_id: runId, team_id: null, actor: 'test-operator' });
        expect(rows[0].metadata).toMatchObject({ runId, command: 'reap', reason: 'INC-28', actor: 'test-operator', outcomes: { applied: 6, lost: 0, skipped: 0, refused: 0, errored: 0 }, exitCode: 0 });
        expect(rows[0].metadata.commandLine).toContain('reap --older-than 10m --apply');
        expect(existsSync(join(state, 'runs.jsonl'))).toBe(false);
      } else {
        const records = readFileSync(join(state, 'runs.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
        expect(records).toHaveLength(1);
        expect(records[0]).toMatchObject({ kind: 'opsctl.run', resourceId: runId, metadata: { runId, command: 'reap', reason: 'INC-28', actor: 'test-operator', outcomes: { applied: 6 }, exitCode: 0 } });
        expect(records[0].metadata.commandLine).toContain('reap --older-than 10m --apply');
      }

      // runs: the list and one run, in json and as a table.
      const list = await cli(['--config', cfg, 'runs', '-o', 'json'], env);
      expect(list.code).toBe(0);
      expect(list.json().items[0]).toMatchObject({ runId, command: 'reap', reason: 'INC-28', actor: 'test-operator', outcomes: { applied: 6 }, recorded: true });
      const table = await cli(['--config', cfg, 'runs'], env);
      expect(table.stdout).toContain(runId);
      expect(table.stdout).toContain('INC-28');
      const show = await cli(['--config', cfg, 'runs', 'show', runId, '-o', 'json'], env);
      expect(show.code).toBe(0);
      expect(show.json().items.map((i: any) => i.id).sort()).toEqual(ids);
      for (const i of show.json().items) expect(i.after.status).toBe('failed');
      expect((await cli(['--config', cfg, 'runs', 'show', runId], env)).stdout).toContain('"status":"failed"');

      // A worker touches one row after the reap: that one is left alone.
      const touched = ids[0] as string;
      await q(`UPDATE plain_executions SET status = 'completed', updated_at = now() WHERE id = $1`, [touched]);
      const plan = await cli(['--config', cfg, 'revert', runId, '-o', 'json'], env);
      expect(plan.code).toBe(0);
      expect(plan.json().summary.planned).toBe(6);
      const before = await tableChecksum(db.client, 'plain_executions');
      expect(before).toBe(await tableChecksum(db.client, 'plain_executions'));
      const revert = await cli(['--config', cfg, 'revert', runId, '--apply', '--reason', 'undo INC-28', '-o', 'json'], env);
      expect(revert.stderr).toBe('');
      expect(revert.code).toBe(0);
      const doc = revert.json();
      expect(doc.summary).toMatchObject({ reverted: 5, 'changed-since': 1 });
      expect(doc.items.find((i: any) => i.key === touched).outcome).toBe('changed-since');
      const now = await rowsOf('plain_executions');
      for (const [i, row] of now.entries()) {
        if (row.id === touched) expect(row.status).toBe('completed');
        else expect(row).toEqual(original[i]);
      }

      // Reverting twice changes nothing.
      const sum = await tableChecksum(db.client, 'plain_executions');
      const again = await cli(['--config', cfg, 'revert', runId, '--apply', '-o', 'json'], env);
      expect(again.code).toBe(0);
      expect(again.json().summary.reverted).toBe(0);
      expect(again.json().items.filter((i: any) => i.outcome === 'already-reverted')).toHaveLength(5);
      expect(await tableChecksum(db.client, 'plain_executions')).toBe(sum);

      // The revert is a run of its own, the revert of the reap; and it can be reverted.
      const runs = (await cli(['--config', cfg, 'runs', '-o', 'json'], env)).json().items;
      expect(runs.map((r: any) => r.runId)).toContain(doc.summary.runId);
      expect(runs.find((r: any) => r.runId === doc.summary.runId)).toMatchObject({ revertOf: runId, reason: 'undo INC-28' });
      const redo = await cli(['--config', cfg, 'revert', doc.summary.runId, '--apply', '-o', 'json'], env);
      expect(redo.code).toBe(0);
      expect(redo.json().summary.reverted).toBe(5);
      for (const row of await rowsOf('plain_executions')) expect(row.status).toBe(row.id === touched ? 'completed' : 'failed');
    });
  });
}

describe('revert on a table whose trigger stamps updated_at', () => {
  it('puts back status, error and transitioned_at exactly; updated_at takes the trigger value (never disabled)', async () => {
    const state = mkdtempSync(join(dir, 'state-'));
    const env = { DATABASE_URL: db.url, OPSCTL_STATE_DIR: state };
    const cfg = config('trigger.json', { audit: { table: 'audit_log' } });
    await seed('purchase_executions');
    const original = await rowsOf('purchase_executions');
    const reap = await cli(['--config', cfg, 'reap', '--older-than', '10m', '--apply', '-o', 'json'], env);
    expect(reap.code).toBe(0);
    const t0 = new Date();
    const revert = await cli(['--config', cfg, 'revert', reap.json().summary.runId, '--apply', '-o', 'json'], env);
    expect(revert.code).toBe(0);
    expect(revert.json().summary.reverted).toBe(6);
    const now = await rowsOf('purchase_executions');
    for (const [i, row] of now.entries()) {
      const o = original[i];
      expect({ ...row, updated_at: null }).toEqual({ ...o, updated_at: null });
      expect(row.updated_at.getTime()).toBeGreaterThanOrEqual(t0.getTime() - 1000);
    }
  });
});

describe('where the changes are recorded', () => {
  it('no audit table and a journal that cannot be written: the apply is refused, exit 3, nothing written', async () => {
    await seed('purchase_executions');
    const sum = await tableChecksum(db.client, 'purchase_executions');
    const r = await cli(['reap', '--older-than', '10m', '--apply', '-o', 'json'], { DATABASE_URL: db.url, OPSCTL_STATE_DIR: '/dev/null/x' });
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^opsctl: cannot write the audit journal \/dev\/null\/x\/audit\.jsonl \(ENOTDIR\)[^\n]*\n$/);
    expect(await tableChecksum(db.client, 'purchase_executions')).toBe(sum);
  });

  it('a malformed run id is exit 2; an unknown one exit 1', async () => {
    const env = { DATABASE_URL: db.url, OPSCTL_STATE_DIR: mkdtempSync(join(dir, 'state-')) };
    expect((await cli(['runs', 'show', 'nope'], env)).code).toBe(2);
    expect((await cli(['revert', 'nope'], env)).code).toBe(2);
    const unknown = await cli(['runs', 'show', '01900000-0000-7000-8000-000000000000'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^opsctl: no run 01900000-0000-7000-8000-000000000000 is recorded/);
  });
});
