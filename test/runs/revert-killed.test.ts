import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshDatabase } from '../support/db.js';
import { cli } from '../support/cli.js';
import { configFile, eventually, installGate, opsctlBackends, removeGate, spawnCli } from '../support/reliability.js';

// Issue #28: a revert killed mid-way (SIGKILL after some batches) converges on a re-run; the
// killed run, which wrote no record, is still listed by `runs` (built from its entries).

let db: Awaited<ReturnType<typeof freshDatabase>>;
const ROWS = 400;
const BATCH = 50;

beforeAll(async () => {
  db = await freshDatabase('revert_kill');
});
afterAll(async () => {
  await db?.drop();
});

const snapshot = async () => (await db.client.query(`SELECT t.id::text AS id, t.status, t.error, t.transitioned_at FROM purchase_executions t ORDER BY t.id`)).rows;

describe('a revert killed mid-way', () => {
  it('leaves no half-reverted row, and a re-run converges on the rows as they were before the reap', async () => {
    await db.client.query(
      `INSERT INTO purchase_executions (status, updated_at) SELECT (ARRAY['approved','running'])[1 + i % 2], now() - interval '1 hour' - make_interval(secs => i) FROM generate_series(1, ${ROWS}) i`,
    );
    const original = await snapshot();
    const cfg = configFile({ audit: { table: 'audit_log' }, actor: 'reliability' });
    const env = { DATABASE_URL: db.url, OPSCTL_STATE_DIR: mkdtempSync(join(tmpdir(), 'opsctl-state-')) };
    const reap = await cli(['--config', cfg, 'reap', '--older-than', '10m', '--apply', '--max', '0', '--batch-size', String(BATCH), '-o', 'json'], env);
    expect(reap.code).toBe(0);
    const runId = reap.json().summary.runId;

    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    await holder.query('SELECT pg_advisory_lock(4242)');
    await installGate(db.client, 'purchase_executions', 2);
    const args = ['--config', cfg, 'revert', runId, '--apply', '--yes', '--batch-size', String(BATCH), '-o', 'json'];
    const { child, done } = spawnCli(args, { ...env, OPSCTL_LOCK_TIMEOUT: '60s' });
    let revertRun: string;
    try {
      // Two batches committed, the third waiting at the gate: killed there.
      revertRun = await eventually('revert rows committed and opsctl inside batch 3', async () => {
        const r = (await db.client.query(`SELECT metadata->>'runId' AS run FROM audit_log WHERE kind = 'opsctl.reverted' LIMIT 1`)).rows[0];
        const waiting = (await opsctlBackends(db.client, db.name)).some((b) => b.wait_event === 'advisory');
        return r && waiting ? (r.run as string) : false;
      });
      child.kill('SIGKILL');
      expect((await done).signal).toBe('SIGKILL');
    } finally {
      await holder.end();
    }
    await eventually('the killed run leaves no session behind', async () => (await opsctlBackends(db.client, db.name)).length === 0);
    await removeGate(db.client, 'purchase_executions');
    const reverted = (await db.client.query(`SELECT count(*)::int AS n FROM audit_log WHERE kind = 'opsctl.reverted'`)).rows[0].n;
    expect(reverted).toBe(2 * BATCH);
    // Every row is either reverted whole or still as the reap left it.
    const mid = await snapshot();
    const byId = new Map(original.map((o: any) => [o.id, o]));
    let back = 0;
    for (const row of mid) {
      if (row.status === 'failed') expect(row.error).toMatch(/^reaped after 10m/);
      else {
        expect(row).toEqual(byId.get(row.id));
        back += 1;
      }
    }
    expect(back).toBe(2 * BATCH);

    // The killed revert wrote no record: `runs` builds it from its entries.
    const runs = await cli(['--config', cfg, 'runs', '-o', 'json'], env);
    expect(runs.json().items.find((r: any) => r.runId === revertRun)).toMatchObject({ recorded: false, revertOf: runId, items: 2 * BATCH });

    const again = await cli(args, env);
    expect(again.code).toBe(0);
    expect(again.json().summary).toMatchObject({ reverted: ROWS - 2 * BATCH, 'already-reverted': 2 * BATCH, errored: 0 });
    expect(await snapshot()).toEqual(original);
  });
});

describe('a run stopped by a failure', () => {
  it('still writes its record: the counts so far, the exit code and why it stopped', async () => {
    await db.client.query('TRUNCATE purchase_executions, audit_log');
    await db.client.query(`INSERT INTO purchase_executions (status, updated_at) SELECT 'running', now() - interval '1 hour' FROM generate_series(1, ${ROWS})`);
    const cfg = configFile({ audit: { table: 'audit_log' }, actor: 'reliability' });
    const state = mkdtempSync(join(tmpdir(), 'opsctl-state-'));
    const env = { DATABASE_URL: db.url, OPSCTL_STATE_DIR: state, OPSCTL_LOCK_TIMEOUT: '300ms' };
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    await holder.query('SELECT pg_advisory_lock(4242)');
    await installGate(db.client, 'purchase_executions', 2);
    let r: Awaited<ReturnType<typeof cli>>;
    try {
      r = await cli(['--config', cfg, 'reap', '--older-than', '10m', '--apply', '--max', '0', '--batch-size', String(BATCH), '-o', 'json'], env);
    } finally {
      await removeGate(db.client, 'purchase_executions');
      await holder.end();
    }
    expect(r.code).toBe(3);
    const runId = r.json().summary.runId;
    const list = (await cli(['--config', cfg, 'runs', '-o', 'json'], env)).json().items;
    expect(list.find((x: any) => x.runId === runId)).toMatchObject({ recorded: true, exitCode: 3, outcomes: { applied: 2 * BATCH }, items: 2 * BATCH });
  });
});

describe('the journal fails mid-run (no audit table)', () => {
  it('the run stops with one sentence (exit 3); the batch that had committed is reported applied, each item saying its journal line is missing', async () => {
    await db.client.query('TRUNCATE purchase_executions, audit_log');
    await db.client.query(`INSERT INTO purchase_executions (status, updated_at) SELECT 'running', now() - interval '1 hour' - make_interval(secs => i) FROM generate_series(1, ${ROWS}) i`);
    const state = mkdtempSync(join(tmpdir(), 'opsctl-state-'));
    const env = { DATABASE_URL: db.url, OPSCTL_STATE_DIR: state, OPSCTL_LOCK_TIMEOUT: '60s' };
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    await holder.query('SELECT pg_advisory_lock(4242)');
    await installGate(db.client, 'purchase_executions', 2);
    const run = cli(['reap', '--older-than', '10m', '--apply', '--max', '0', '--batch-size', String(BATCH), '-o', 'json'], env);
    try {
      await eventually('opsctl waiting at the gate in batch 3', async () => (await opsctlBackends(db.client, db.name)).some((b) => b.wait_event === 'advisory'));
      // The journal turns into a directory: the next append fails (EISDIR), whoever runs the test.
      rmSync(join(state, 'audit.jsonl'));
      mkdirSync(join(state, 'audit.jsonl'));
    } finally {
      await holder.end();
    }
    const r = await run;
    await removeGate(db.client, 'purchase_executions');
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^opsctl: cannot append to the audit journal \(EISDIR\)[^\n]*\n$/);
    const failed = (await db.client.query(`SELECT count(*)::int AS n FROM purchase_executions WHERE status = 'failed'`)).rows[0].n;
    const items = r.json().items;
    // reap without an audit table runs each batch as one statement: committed when the append failed.
    expect(failed).toBe(3 * BATCH);
    expect(items.filter((i: any) => /its journal line could not be written$/.test(i.detail ?? ''))).toHaveLength(BATCH);
    expect(items.filter((i: any) => i.outcome === 'reaped')).toHaveLength(3 * BATCH);
  });
});
