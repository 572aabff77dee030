import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, tableChecksum } from '../support/db.js';
import { cliProcess } from '../support/cli.js';

// The built CLI as a subprocess, exactly as an operator runs it (`npm test` builds first).
let db: Awaited<ReturnType<typeof freshDatabase>>;
beforeAll(async () => {
  db = await freshDatabase('e2e');
  await db.client.query(
    "INSERT INTO purchase_executions (status, updated_at) SELECT (ARRAY['approved','running','completed'])[1 + i % 3], now() - make_interval(mins => i) FROM generate_series(1, 30) i",
  );
});
afterAll(async () => {
  await db.drop();
});

describe('opsctl as a subprocess', () => {
  it('--version and --help exit 0; every command has examples in its help', async () => {
    const v = await cliProcess(['--version']);
    expect(v.code).toBe(0);
    expect(v.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const h = await cliProcess(['--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('reap');
    for (const cmd of [['reap'], ['executions', 'stuck'], ['config', 'show']]) {
      const r = await cliProcess([...cmd, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('Examples:');
    }
  });

  it('reap: dry run shows the plan and changes nothing; --apply reaps; a re-run is a no-op', async () => {
    const env = { DATABASE_URL: db.url };
    const before = await tableChecksum(db.client, 'purchase_executions');
    const dry = await cliProcess(['reap', '--older-than', '10m'], env);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('Plan: reap executions in approved/running older than 10m');
    expect(dry.stdout).toContain('Dry run: nothing was changed');
    expect(await tableChecksum(db.client, 'purchase_executions')).toBe(before);
    const expected = (
      await db.client.query("SELECT count(*)::int AS n FROM purchase_executions WHERE status IN ('approved','running') AND updated_at < now() - interval '10 minutes'")
    ).rows[0].n;
    expect(expected).toBeGreaterThan(0);
    const applied = await cliProcess(['reap', '--older-than', '10m', '--apply', '-o', 'json'], env);
    expect(applied.code).toBe(0);
    expect(applied.json().summary.reaped).toBe(expected);
    const again = await cliProcess(['reap', '--older-than', '10m', '--apply', '-o', 'json'], env);
    expect(again.json().summary.planned).toBe(0);
  });

  it('expected errors print one sentence and no stack trace; --debug adds one', async () => {
    const env = { DATABASE_URL: 'postgres://ops:Sup3rSecret@127.0.0.1:1/app' };
    const r = await cliProcess(['executions', 'stuck'], env);
    expect(r.code).toBe(3);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).not.toContain('Sup3rSecret');
    const d = await cliProcess(['executions', 'stuck', '--debug'], env);
    expect(d.code).toBe(3);
    expect(d.stderr).toMatch(/\n\s+at /);
    expect(d.stderr).not.toContain('Sup3rSecret');
  });

  it('an unknown command is a usage error (exit 2)', async () => {
    const r = await cliProcess(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command/);
    // Probing with --help must not pass for a command that does not exist.
    const h = await cliProcess(['frobnicate', '--help']);
    expect(h.code).toBe(2);
    expect(h.stdout).toBe('');
  });
});
