import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, tableChecksum } from '../support/db.js';
import { cliProcess } from '../support/cli.js';

// The built CLI as a subprocess (`npm test` builds first).
let db: Awaited<ReturnType<typeof freshDatabase>>;
beforeAll(async () => {
  db = await freshDatabase('e2eprop');
  await db.client.query(
    `INSERT INTO pending_propagations (kind, team_id, attempts, last_error, failed_at)
     SELECT (ARRAY['tier_elevation','seat_sync'])[1 + i % 2], gen_random_uuid(), 10,
            'timeout after ' || (i * 17) || 'ms calling https://teams.internal/v1/' || gen_random_uuid(), now() - make_interval(hours => i)
       FROM generate_series(1, 24) i`,
  );
  await db.client.query(`INSERT INTO pending_propagations (kind, team_id, attempts, next_attempt_at) VALUES ('tier_elevation', gen_random_uuid(), 9, now() - interval '1 hour')`);
});
afterAll(async () => {
  await db.drop();
});

describe('opsctl propagations as a subprocess', () => {
  it('every propagations command has --help with examples', async () => {
    for (const cmd of [[], ['dead-letters'], ['pending'], ['retry'], ['purge']]) {
      const r = await cliProcess(['propagations', ...cmd, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('Examples:');
    }
  });

  it('dead-letters groups, pending flags, retry dry run then --apply, purge guarded', async () => {
    const env = { DATABASE_URL: db.url };
    const list = await cliProcess(['propagations', 'dead-letters', '--limit', '3'], env);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain('24 dead letters in pending_propagations, all one error class: timeout after <duration> calling <url>');
    expect(list.stdout).toContain('Showing the newest 3 of 24');

    const pending = await cliProcess(['propagations', 'pending', '-o', 'json'], env);
    expect(pending.json().items[0].problems).toEqual(['overdue', 'near-dead']);

    const before = await tableChecksum(db.client, 'pending_propagations');
    const dry = await cliProcess(['propagations', 'retry', '--since', '6h30m'], env);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('Dry run: nothing was changed');
    expect(await tableChecksum(db.client, 'pending_propagations')).toBe(before);
    const applied = await cliProcess(['propagations', 'retry', '--since', '6h30m', '--apply', '-o', 'json'], env);
    expect(applied.code).toBe(0);
    expect(applied.json().summary).toMatchObject({ planned: 6, retried: 6 });
    const again = await cliProcess(['propagations', 'retry', '--since', '6h30m', '--apply', '-o', 'json'], env);
    expect(again.json().summary.planned).toBe(0);

    const refused = await cliProcess(['propagations', 'purge', '--older-than', '20h30m', '--apply'], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^opsctl: purge --apply needs --expect N/);
    const purged = await cliProcess(['propagations', 'purge', '--older-than', '20h30m', '--apply', '--expect', '4', '-o', 'json'], env);
    expect(purged.code).toBe(0);
    expect(purged.json().summary).toMatchObject({ purged: 4 });

    const none = await cliProcess(['propagations', 'retry', '--apply'], env);
    expect(none.code).toBe(2);
    expect(none.stderr.trim().split('\n')).toHaveLength(1);
  });
});
