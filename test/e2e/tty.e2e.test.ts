import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freshDatabase, tableChecksum } from '../support/db.js';
import { runOnTty } from '../support/tty.js';

/**
 * The CLI on a real terminal: util-linux `script` gives it a pseudo-TTY, so isTTY, the
 * confirmation prompt, colour and progress behave exactly as for a person at a shell.
 */
// A guard, not synchronisation: a prompt that never comes must not leave the child holding the table's lock.
const onTty = (args: string[], env: NodeJS.ProcessEnv, answer?: { when: RegExp; type: string }) => runOnTty(args, env, { answer, timeoutMs: 20_000 });

let db: Awaited<ReturnType<typeof freshDatabase>>;
const env = () => ({ DATABASE_URL: db.url });
beforeAll(async () => {
  db = await freshDatabase('tty');
});
afterAll(async () => {
  await db.drop();
});
beforeEach(async () => {
  await db.client.query('TRUNCATE purchase_executions');
  await db.client.query(
    "INSERT INTO purchase_executions (status, updated_at) SELECT (ARRAY['approved','running'])[1 + i % 2], now() - interval '1 hour' FROM generate_series(1, 1200) i",
  );
});
const failed = async () => (await db.client.query("SELECT count(*)::int AS n FROM purchase_executions WHERE status = 'failed'")).rows[0].n;

describe('on a terminal', () => {
  it('--apply shows the count and asks; "n" changes nothing', async () => {
    const before = await tableChecksum(db.client, 'purchase_executions');
    const r = await onTty(['reap', '--apply', '--max', '0'], env(), { when: /\[y\/N\]/, type: 'n\r' });
    expect(r.output).toMatch(/Reap 1200 execution\(s\) in purchase_executions \(move to failed\)\? \[y\/N\]/);
    // Declined: a documented exit code of its own (5), and no result table (issue 27).
    expect(r.code).toBe(5);
    expect(r.output).toContain('Cancelled; nothing was changed.');
    expect(await tableChecksum(db.client, 'purchase_executions')).toBe(before);
  });

  it('"y" applies, with colour and progress on the terminal', async () => {
    const r = await onTty(['reap', '--apply', '--max', '0', '--batch-size', '100'], env(), { when: /\[y\/N\]/, type: 'y\r' });
    expect(r.code).toBe(0);
    expect(await failed()).toBe(1200);
    expect(r.output).toMatch(/reap: \d+\/1200 rows/); // progress, on stderr
    expect(r.output).toMatch(/\u001b\[3\dm/); // colour
  });

  it('--yes does not ask; NO_COLOR turns colour off even on a terminal', async () => {
    const r = await onTty(['reap', '--apply', '--max', '0', '--yes'], { ...env(), NO_COLOR: '1' });
    expect(r.code).toBe(0);
    expect(r.output).not.toContain('[y/N]');
    expect(r.output).not.toMatch(/\u001b\[3\dm/);
    expect(await failed()).toBe(1200);
  });
});

describe('propagations purge on a terminal', () => {
  const deadLetters = async () => (await db.client.query('SELECT count(*)::int AS n FROM pending_propagations WHERE failed_at IS NOT NULL')).rows[0].n;
  beforeEach(async () => {
    await db.client.query('TRUNCATE pending_propagations');
    await db.client.query(
      `INSERT INTO pending_propagations (kind, team_id, attempts, last_error, failed_at)
       SELECT 'seat_sync', gen_random_uuid(), 10, 'timeout', now() - interval '3 days' FROM generate_series(1, 5)`,
    );
  });

  it('--apply -y without --expect: the sentence says -y skips the question and the count confirms; nothing deleted', async () => {
    const r = await onTty(['propagations', 'purge', '--older-than', '1d', '--apply', '-y'], env());
    expect(r.code).toBe(2);
    expect(r.output).toContain('opsctl: purge --apply --yes needs --expect N (the count its dry run showed): -y skips the question');
    // A person is at this terminal: the old sentence ("nobody can confirm on a terminal") was false here.
    expect(r.output).not.toMatch(/nobody|no person/);
    expect(r.output).not.toContain('[y/N]');
    expect(await deadLetters()).toBe(5);
  });

  it('--apply without -y asks with the count; "y" deletes them', async () => {
    const r = await onTty(['propagations', 'purge', '--older-than', '1d', '--apply'], env(), { when: /\[y\/N\]/, type: 'y\r' });
    expect(r.output).toMatch(/Delete 5 dead letter\(s\) from pending_propagations\? This cannot be undone\. \[y\/N\]/);
    expect(r.code).toBe(0);
    expect(await deadLetters()).toBe(0);
  });
});
