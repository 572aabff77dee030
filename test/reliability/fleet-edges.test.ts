import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server, type Socket } from 'node:net';
import { freshDatabase } from '../support/db.js';
import { cli, cliProcess } from '../support/cli.js';
import { configFile } from '../support/reliability.js';

/**
 * Fleet edges: a target that accepts TCP and never answers must not keep the process alive
 * past its --target-timeout (its handshaking connection is closed), and a target with nothing
 * to do reports the apply's summary (reaped: 0), not the dry run's.
 */
let a: Awaited<ReturnType<typeof freshDatabase>>;
let b: Awaited<ReturnType<typeof freshDatabase>>;
let hung: Server;
const held: Socket[] = [];
const closed: Promise<void>[] = [];

beforeAll(async () => {
  [a, b] = await Promise.all([freshDatabase('fleet_edge_a'), freshDatabase('fleet_edge_b')]);
  hung = createServer((s) => {
    held.push(s);
    s.resume(); // read to the end, so the client's FIN is seen
    closed.push(new Promise((r) => s.on('close', () => r())));
  });
  await new Promise<void>((r) => hung.listen(0, '127.0.0.1', () => r()));
});
afterAll(async () => {
  for (const s of held) s.destroy();
  await new Promise<void>((r) => hung.close(() => r()));
  await Promise.all([a.drop(), b.drop()]);
});

describe('a target that accepts TCP and never answers', () => {
  // The connect timeout is ten minutes: before the fix, the process lived until it (the test's
  // own timeout fails first); now the deadline closes the socket and the process exits.
  for (const args of [
    ['check', '--only', 'executions'],
    ['reap', '--older-than', '1h', '--apply', '--yes'],
  ]) {
    it(`${args[0]}: the process exits once the target timeout has passed, the hung socket closed`, async () => {
      const port = (hung.address() as { port: number }).port;
      const f = configFile({
        database: { connectTimeout: '10m' },
        targets: { hung: { database: { host: '127.0.0.1', port, user: 'u', dbname: 'd' } }, fine: { database: { urlEnv: 'A_URL' } } },
      });
      const before = held.length;
      const r = await cliProcess(['--config', f, ...args.slice(0, 1), '--all-targets', '--target-timeout', '2s', ...args.slice(1), '-o', 'json'], { A_URL: a.url });
      expect(r.code).toBe(3);
      expect(held.length).toBeGreaterThan(before);
      // The server saw the client close its end: nothing was left handshaking.
      await Promise.all(closed.slice(before));
      expect(r.stdout + r.stderr).toMatch(/did not finish within the target timeout of 2s/);
      const out = r.json();
      expect(JSON.stringify(out)).toContain('fine');
    }, 60_000);
  }
});

describe('reap --all-targets --apply', () => {
  it('a target with nothing to do reports reaped: 0 beside the one that reaped', async () => {
    await a.client.query(`TRUNCATE purchase_executions; INSERT INTO purchase_executions (status, updated_at) SELECT 'running', now() - interval '2 hours' FROM generate_series(1, 3)`);
    const f = configFile({ targets: { a: { database: { urlEnv: 'A_URL' } }, b: { database: { urlEnv: 'B_URL' } } } });
    const r = await cli(['--config', f, 'reap', '--all-targets', '--older-than', '1h', '--apply', '--yes', '-o', 'json'], { A_URL: a.url, B_URL: b.url });
    expect(r.code).toBe(0);
    const byTarget = r.json().summary.byTarget as Record<string, any>;
    const sumOf = (name: string) => byTarget[name];
    expect(sumOf('a')).toMatchObject({ planned: 3, reaped: 3, errored: 0 });
    expect(sumOf('b')).toMatchObject({ planned: 0, reaped: 0, 'race-lost': 0, errored: 0 });
    expect(sumOf('b').outcomes.applied).toEqual({ label: 'reaped', count: 0 });
  });
});
