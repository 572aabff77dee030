import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshDatabase, serverPassword, noPassword } from '../support/db.js';
import { cli } from '../support/cli.js';

// Issue #28: a fleet apply is ONE run over every target; runs and revert are ordinary commands,
// so --target/--all-targets run them on each target.

type Db = Awaited<ReturnType<typeof freshDatabase>>;
let a: Db, b: Db;
let dir: string;

beforeAll(async () => {
  [a, b] = await Promise.all([freshDatabase('fruns_a'), freshDatabase('fruns_b')]);
  dir = mkdtempSync(join(tmpdir(), 'opsctl-fleet-runs-'));
});
afterAll(async () => {
  await Promise.all([a?.drop(), b?.drop()]);
});

const stuck = (d: Db, n: number) => d.client.query(`INSERT INTO purchase_executions (status, updated_at) SELECT 'running', now() - interval '2 hours' FROM generate_series(1, ${n})`);
const statuses = async (d: Db) => (await d.client.query(`SELECT status, count(*)::int AS n FROM purchase_executions GROUP BY 1 ORDER BY 1`)).rows;

for (const audited of [true, false]) {
  describe(`a fleet reap, runs and revert (${audited ? 'audit table' : 'journal only'})`, () => {
    it('one run id on every target; runs lists it per target; revert --all-targets puts every target back', async () => {
      for (const d of [a, b]) await d.client.query('TRUNCATE purchase_executions, audit_log');
      await stuck(a, 3);
      await stuck(b, 5);
      const cfg = join(dir, `c-${audited}.json`);
      const t = (d: Db) => ({ database: { url: noPassword(d.url), passwordEnv: 'PW' } });
      writeFileSync(cfg, JSON.stringify({ actor: 'fleet-op', ...(audited ? { audit: { table: 'audit_log', schema: null } } : {}), targets: { a: t(a), b: t(b) } }));
      const env = { PW: serverPassword(), OPSCTL_STATE_DIR: mkdtempSync(join(dir, 'state-')) };
      const reap = await cli(['--config', cfg, '--all-targets', 'reap', '--older-than', '10m', '--apply', '--yes', '--reason', 'fleet INC', '-o', 'json'], env);
      expect(reap.stderr).toBe('');
      expect(reap.code).toBe(0);
      const ids = new Set(Object.values(reap.json().summary.byTarget as Record<string, { runId?: string }>).map((s) => s.runId));
      expect(ids.size).toBe(1);
      const runId = [...ids][0] as string;
      expect(runId).toMatch(/^[0-9a-f-]{36}$/);

      const runs = await cli(['--config', cfg, '--all-targets', 'runs', '-o', 'json'], env);
      expect(runs.code).toBe(0);
      const rows = runs.json().items.filter((r: any) => r.runId === runId);
      expect(rows.map((r: any) => [r.target, r.outcomes.applied]).sort()).toEqual([
        ['a', 3],
        ['b', 5],
      ]);
      const show = await cli(['--config', cfg, '--target', 'b', 'runs', 'show', runId, '-o', 'json'], env);
      expect(show.code).toBe(0);
      expect(show.json().items).toHaveLength(5);

      const revert = await cli(['--config', cfg, '--all-targets', 'revert', runId, '--apply', '--yes', '-o', 'json'], env);
      expect(revert.stderr).toBe('');
      expect(revert.code).toBe(0);
      expect(revert.json().items.filter((i: any) => i.outcome === 'reverted').length).toBe(8);
      expect(await statuses(a)).toEqual([{ status: 'running', n: 3 }]);
      expect(await statuses(b)).toEqual([{ status: 'running', n: 5 }]);
    });
  });
}
