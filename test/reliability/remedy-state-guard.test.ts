import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, databaseChecksum } from '../support/db.js';
import { cli } from '../support/cli.js';
import { configFile } from '../support/reliability.js';

/**
 * A remedy acts only on the states its check calls stuck: `reap --status` outside
 * executions.stuckStatuses (the failed status itself, or a finished one) would write the failed
 * status and the reap reason over what the system recorded. Exit 2, one sentence, nothing written,
 * for the dry run and the apply, on one database and on a fleet.
 */
let db: Awaited<ReturnType<typeof freshDatabase>>;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  db = await freshDatabase('rel_state');
  env = { DATABASE_URL: db.url };
  await db.client.query(`
    INSERT INTO purchase_executions (status, error, updated_at) VALUES
      ('failed', 'card declined (original)', now() - interval '3 hours'),
      ('completed', NULL, now() - interval '3 hours'),
      ('cancelled', NULL, now() - interval '3 hours'),
      ('running', NULL, now() - interval '3 hours');`);
});
afterAll(async () => {
  await db.drop();
});

describe('reap --status outside executions.stuckStatuses', () => {
  for (const status of ['failed', 'completed', 'cancelled', 'running,completed']) {
    for (const apply of [true, false]) {
      it(`--status ${status}${apply ? ' --apply --yes' : ' (dry run)'}: exit 2, nothing written`, async () => {
        const before = await databaseChecksum(db.client);
        const r = await cli(['reap', '--status', status, '--older-than', '1h', ...(apply ? ['--apply', '--yes', '--reason', 'INC-1'] : [])], env);
        expect(r.code).toBe(2);
        expect(r.stdout).toBe('');
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).toMatch(/is not a stuck status|are not stuck statuses/);
        expect(r.stderr).toMatch(/executions\.stuckStatuses \(approved, running\)/);
        expect(await databaseChecksum(db.client)).toBe(before);
      });
    }
  }

  it('the failed row keeps the error it recorded', async () => {
    await cli(['reap', '--status', 'failed', '--older-than', '1h', '--apply', '--yes'], env);
    const { rows } = await db.client.query("SELECT error FROM purchase_executions WHERE status = 'failed'");
    expect(rows).toEqual([{ error: 'card declined (original)' }]);
  });

  it('executions stuck --status completed is refused the same way', async () => {
    const r = await cli(['executions', 'stuck', '--status', 'completed', '--older-than', '1h'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/"completed" is not a stuck status of purchase_executions/);
  });

  it('a subset of the stuck statuses is still taken', async () => {
    const r = await cli(['reap', '--status', 'running', '--older-than', '1h', '-o', 'json'], env);
    expect(r.code).toBe(0);
    expect(r.json().items.map((i: { status: string }) => i.status)).toEqual(['running']);
  });

  it('on a fleet: refused before any target is written', async () => {
    const f = configFile({ targets: { one: { database: { urlEnv: 'ONE_URL' } }, two: { database: { urlEnv: 'ONE_URL' } } } });
    const before = await databaseChecksum(db.client);
    const r = await cli(['--config', f, 'reap', '--all-targets', '--status', 'failed', '--older-than', '1h', '--apply', '--yes'], { ONE_URL: db.url });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/"failed" is not a stuck status/);
    expect(await databaseChecksum(db.client)).toBe(before);
  });
});

describe('config: a stuck status that is also the failed status', () => {
  it('executions.stuckStatuses containing executions.failedStatus: exit 2 naming the key', async () => {
    const f = configFile({ executions: { stuckStatuses: ['running', 'failed'] } });
    const before = await databaseChecksum(db.client);
    const r = await cli(['--config', f, 'reap', '--older-than', '1h', '--apply', '--yes'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/executions\.stuckStatuses.*must not contain executions\.failedStatus/);
    expect(await databaseChecksum(db.client)).toBe(before);
  });

  it('workers.runs.heldStatuses containing workers.runs.failedStatus: exit 2 naming the key', async () => {
    const f = configFile({ workers: { runs: { heldStatuses: ['running', 'failed'] } } });
    const r = await cli(['--config', f, 'reap', '--dead-workers'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/workers\.runs\.heldStatuses.*must not contain workers\.runs\.failedStatus/);
  });
});
