import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { freshDatabase, tableChecksum } from '../support/db.js';
import { cli } from '../support/cli.js';
import { spawnOnTty } from '../support/tty.js';
import { eventually, installGate, opsctlBackends, removeGate } from '../support/reliability.js';

/**
 * --apply at a real terminal (util-linux `script` gives the CLI a pseudo-TTY): the plan is
 * shown before the question, no lock is held while the question waits, "n" and an unanswered
 * question change nothing (exit 5), Ctrl-C and Ctrl-D at the prompt change nothing (exit 130),
 * and Ctrl-C during the apply finishes the batch in flight, reports what was applied (exit 130).
 */
/** 120 columns, and a guard: a run that never ends must not outlive the test. */
const onTty = (args: string[], env: NodeJS.ProcessEnv) => spawnOnTty(args, { COLUMNS: '120', ...env }, { timeoutMs: 40_000 });

let db: Awaited<ReturnType<typeof freshDatabase>>;
const env = () => ({ DATABASE_URL: db.url });
const STUCK = 30;
beforeAll(async () => {
  db = await freshDatabase('apply_prompt');
});
afterAll(async () => {
  await db.drop();
});
beforeEach(async () => {
  await removeGate(db.client, 'purchase_executions');
  await db.client.query('TRUNCATE purchase_executions');
  await db.client.query(`INSERT INTO purchase_executions (status, updated_at) SELECT 'running', now() - make_interval(mins => 60 + i) FROM generate_series(1, ${STUCK}) i`);
});
const failed = async () => (await db.client.query("SELECT count(*)::int AS n FROM purchase_executions WHERE status = 'failed'")).rows[0].n;
const oldestId = async () => (await db.client.query('SELECT id::text FROM purchase_executions ORDER BY updated_at LIMIT 1')).rows[0].id as string;

describe('--apply on a terminal', () => {
  for (const [what, args] of [
    ['reap (a spooled plan)', ['reap', '--apply', '--max', '0']],
    ['reap under a --max cap (counted before the question)', ['reap', '--apply']],
  ] as const) {
    it(`${what}: the plan is shown before the question, and no lock is held while it waits`, async () => {
      const t = onTty([...args], env());
      await t.seen(/\[y\/N\]/);
      const shown = t.output();
      // The plan's rows come first (the oldest row is the first listed), then the question.
      expect(shown.indexOf(await oldestId())).toBeGreaterThan(-1);
      expect(shown.indexOf(await oldestId())).toBeLessThan(shown.indexOf('[y/N]'));
      expect(shown).toMatch(/… and 10 more \(30 in all\)/);
      // Another run (cron) reaps the table meanwhile: nothing blocks it.
      const other = await cli(['reap', '--apply', '--yes', '--max', '0', '-o', 'json'], env());
      expect(other.code).toBe(0);
      expect(other.json().summary).toMatchObject({ reaped: STUCK });
      t.type('y\r');
      expect(await t.done).toBe(0);
      // Every listed row was re-checked at write time: the other run had them.
      expect(t.output()).toMatch(/race-lost/);
      expect(t.output()).not.toMatch(/\breaped\s+│/);
      expect(await failed()).toBe(STUCK);
    });
  }

  it('"n": "Cancelled; nothing was changed.", exit 5, no result table', async () => {
    const before = await tableChecksum(db.client, 'purchase_executions');
    const t = onTty(['reap', '--apply', '--max', '0'], env());
    await t.seen(/\[y\/N\]/);
    const atPrompt = t.output().length;
    t.type('n\r');
    expect(await t.done).toBe(5);
    const after = t.output().slice(atPrompt);
    expect(after).toContain('Cancelled; nothing was changed.');
    expect(after).not.toMatch(/cancelled\s*│|│\s*cancelled/);
    expect(await tableChecksum(db.client, 'purchase_executions')).toBe(before);
  });

  for (const [key, name] of [
    ['\u0003', 'Ctrl-C'],
    ['\u0004', 'Ctrl-D'],
  ] as const) {
    it(`${name} at the prompt: nothing was changed, exit 130, no "unexpected error"`, async () => {
      const before = await tableChecksum(db.client, 'purchase_executions');
      const t = onTty(['reap', '--apply', '--max', '0'], env());
      await t.seen(/\[y\/N\]/);
      t.type(key);
      expect(await t.done).toBe(130);
      expect(t.output()).toMatch(/Interrupted at the prompt; nothing was changed\./);
      expect(t.output()).not.toMatch(/unexpected error/);
      expect(await tableChecksum(db.client, 'purchase_executions')).toBe(before);
    });
  }

  it('an unanswered question cancels after --confirm-timeout: exit 5, nothing written', async () => {
    const before = await tableChecksum(db.client, 'purchase_executions');
    const t = onTty(['--confirm-timeout', '1s', 'reap', '--apply', '--max', '0'], env());
    expect(await t.done).toBe(5);
    expect(t.output()).toMatch(/no answer within 1s \(--confirm-timeout\)/);
    expect(t.output()).toContain('Cancelled; nothing was changed.');
    expect(await tableChecksum(db.client, 'purchase_executions')).toBe(before);
  });

  it('Ctrl-C during the apply: the batch in flight finishes, the run stops and reports what it applied, exit 130', async () => {
    // Two batches of 5 pass; the third waits at a gate the test holds.
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    await holder.query('SELECT pg_advisory_lock(4242)');
    await installGate(db.client, 'purchase_executions', 2);
    try {
      const t = onTty(['reap', '--apply', '--max', '0', '--batch-size', '5'], { ...env(), OPSCTL_LOCK_TIMEOUT: '60s' });
      await t.seen(/\[y\/N\]/);
      t.type('y\r');
      await eventually('opsctl waiting at the gate in batch 3', async () => (await opsctlBackends(db.client, db.name)).find((b) => b.wait_event === 'advisory'));
      t.type('\u0003');
      await t.seen(/stopping after the batch in flight/);
      await holder.query('SELECT pg_advisory_unlock(4242)');
      expect(await t.done).toBe(130);
      // Batch 3 finished (never torn); nothing after it was started.
      expect(await failed()).toBe(15);
      expect(t.output()).toMatch(/not attempted: interrupted \(Ctrl-C\)/);
      expect(t.output()).toMatch(/interrupted \(Ctrl-C\): stopped after batch 3/);
    } finally {
      await holder.end();
      await removeGate(db.client, 'purchase_executions');
    }
  });
});
