import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../../src/database/embedded-postgres.js';
import type { SchedulerEmulator } from '../../src/emulator/scheduler-emulator.js';
import { freshDatabase, databaseChecksum, serverPassword, noPassword } from '../support/db.js';
import { cli } from '../support/cli.js';
import { awsEnv, emulator, owner, OWNER } from '../support/aws.js';
import { configFile } from '../support/reliability.js';
import { SCHEDULER_SCHEMA_SQL } from '../support/scheduler-schema.js';

/**
 * One path for one target or many: every command family over three real databases (one of
 * them down) and over two emulator regions, through the command's own run function. Rows are
 * tagged with their target; the down target is reported and stops nobody; exit codes aggregate.
 */
type Db = Awaited<ReturnType<typeof freshDatabase>>;
let a: Db, b: Db, c: Db;
let east: SchedulerEmulator, west: SchedulerEmulator;
let closedPort: number;


beforeAll(async () => {
  [a, b, c] = await Promise.all([freshDatabase('ontg_a'), freshDatabase('ontg_b'), freshDatabase('ontg_c')]);
  [east, west] = await Promise.all([emulator({ region: 'us-east-1' }), emulator({ region: 'eu-west-1' })]);
  closedPort = await freePort();
  for (const d of [a, b, c]) await d.client.query(SCHEDULER_SCHEMA_SQL);
});
afterAll(async () => {
  await Promise.all([east.close(), west.close()]);
  await Promise.all([a.drop(), b.drop(), c.drop()]);
});
beforeEach(async () => {
  for (const d of [a, b, c]) await d.client.query('TRUNCATE purchase_executions, pending_propagations, audit_log, scheduler.runs, scheduler.workers CASCADE');
});

const aws = () => ({ regions: ['us-east-1', 'eu-west-1'], endpoints: { 'us-east-1': east.url, 'eu-west-1': west.url } });
const fleet = (extra: Record<string, unknown> = {}) =>
  configFile({
    scheduleGroups: { ownerTags: OWNER, ownerKeyPrefix: 'alchemy::', desiredTags: { team: 'payments' } },
    targets: {
      'tenant-a': { database: { url: noPassword(a.url), passwordEnv: 'PW' }, aws: aws() },
      'tenant-b': { database: { url: noPassword(b.url), passwordEnv: 'PW' } },
      'tenant-c': { database: { url: noPassword(c.url), passwordEnv: 'PW' } },
      down: { database: { host: '127.0.0.1', port: closedPort, user: 'nobody', dbname: 'nothing' } },
    },
    ...extra,
  });
const env = () => ({ ...awsEnv(east), AWS_ENDPOINT_URL_SCHEDULER: '', PW: serverPassword() });

describe('listings over targets', () => {
  it('executions stuck: rows tagged with their target, grouped; the down target is exit 3 and stops nobody', async () => {
    await a.client.query("INSERT INTO purchase_executions (status, updated_at) SELECT 'running', now() - interval '2 hours' FROM generate_series(1, 2)");
    await c.client.query("INSERT INTO purchase_executions (status, updated_at) VALUES ('approved', now() - interval '3 hours')");
    const before = await Promise.all([a, b, c].map((d) => databaseChecksum(d.client)));
    const r = await cli(['--config', fleet(), 'executions', 'stuck', '--all-targets', '-o', 'json'], env());
    expect(r.code).toBe(3);
    const out = r.json();
    expect(out.items.map((i: any) => i.target)).toEqual(['tenant-a', 'tenant-a', 'tenant-c']);
    expect(out.items[2]).toMatchObject({ status: 'approved', target: 'tenant-c' });
    expect(out.summary.byTarget['tenant-a']).toMatchObject({ stuck: 2, exitCode: 0 });
    expect(out.summary.byTarget['tenant-b']).toMatchObject({ stuck: 0, exitCode: 0 });
    expect(out.summary.byTarget.down).toMatchObject({ exitCode: 3, error: expect.stringMatching(/connection refused/) });
    expect(out.summary).toMatchObject({ targets: 4, targetsFailed: 1 });
    expect(r.stderr).toMatch(/1 of 4 target\(s\) failed: down/);
    expect(await Promise.all([a, b, c].map((d) => databaseChecksum(d.client)))).toEqual(before);
    expect(r.stdout + r.stderr).not.toContain(serverPassword());
  });

  it('ndjson: one line per row, each with its target; table: the target is the first column', async () => {
    await b.client.query("INSERT INTO pending_propagations (kind, team_id, attempts, failed_at, last_error) VALUES ('k', gen_random_uuid(), 10, now() - interval '1 day', 'boom')");
    const nd = await cli(['--config', fleet(), 'propagations', 'dead-letters', '--target', 'tenant-*', '-o', 'ndjson'], env());
    expect(nd.code).toBe(0);
    const lines = nd.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.target)).toEqual([expect.objectContaining({ target: 'tenant-b', kind: 'k' })]);
    const table = await cli(['--config', fleet(), 'propagations', 'dead-letters', '--target', 'tenant-*'], env());
    expect(table.code).toBe(0);
    const header = table.stdout.split('\n').find((l) => /\btarget\b/.test(l) && /│|\|/.test(l)) as string;
    expect(header.replace(/[│┌┬─ ]+/g, ' ').trim().split(' ')[0]).toBe('target');
    expect(table.stdout).toContain('tenant-b');
  });

  it('propagations pending, workers dead, locks expired: each family on every database target', async () => {
    await a.client.query("INSERT INTO scheduler.workers (id, host, last_heartbeat_at) VALUES ('w-gone', 'h1', now() - interval '10 minutes')");
    await a.client.query("INSERT INTO scheduler.runs (status, worker_id, started_at) VALUES ('running', 'w-gone', now() - interval '11 minutes')");
    for (const args of [['propagations', 'pending'], ['workers', 'dead'], ['locks', 'expired']]) {
      const r = await cli(['--config', fleet(), ...args, '--target', 'tenant-a', '--target', 'tenant-b', '-o', 'json'], env());
      expect(r.code, args.join(' ')).toBeLessThanOrEqual(1);
      expect(Object.keys(r.json().summary.byTarget).sort()).toEqual(['tenant-a', 'tenant-b']);
    }
    const dead = (await cli(['--config', fleet(), 'workers', 'dead', '--all-targets', '-o', 'json'], env())).json();
    expect(dead.items.filter((i: any) => i.target === 'tenant-a').map((i: any) => i.id ?? i.worker)).toEqual(['w-gone']);
  });

  it('--shard picks its share of the targets', async () => {
    const shares = await Promise.all(
      ['0/2', '1/2'].map(async (s) => Object.keys((await cli(['--config', fleet(), 'executions', 'stuck', '--all-targets', '--shard', s, '-o', 'json'], env())).json().summary.byTarget)),
    );
    expect([...shares[0], ...shares[1]].sort()).toEqual(['down', 'tenant-a', 'tenant-b', 'tenant-c']);
    expect(shares[0].filter((t) => shares[1].includes(t))).toEqual([]);
  });
});

describe('remedies over targets', () => {
  it('propagations purge --apply: each target purges its own old dead letters; the down one is reported', async () => {
    for (const d of [a, c]) await d.client.query("INSERT INTO pending_propagations (kind, team_id, attempts, failed_at) VALUES ('k', gen_random_uuid(), 10, now() - interval '40 days')");
    const r = await cli(['--config', fleet(), 'propagations', 'purge', '--older-than', '30d', '--all-targets', '--apply', '--yes', '--expect', '1', '-o', 'json'], env());
    expect(r.code).toBe(3);
    const out = r.json();
    expect(out.items.map((i: any) => [i.target, i.outcome])).toEqual([
      ['tenant-a', 'purged'],
      ['tenant-c', 'purged'],
    ]);
    for (const d of [a, c]) expect((await d.client.query('SELECT count(*)::int AS n FROM pending_propagations')).rows[0].n).toBe(0);
    // tenant-b had nothing: its --expect 1 does not hold, so it refused and changed nothing.
    expect(out.summary.byTarget['tenant-b'].exitCode).toBe(2);
    expect(out.summary.byTarget.down.exitCode).toBe(3);
  });

  it('reap --dead-workers --apply on every target', async () => {
    for (const d of [a, b]) {
      await d.client.query("INSERT INTO scheduler.workers (id, host, last_heartbeat_at) VALUES ('w-gone', 'h1', now() - interval '10 minutes')");
      await d.client.query("INSERT INTO scheduler.runs (status, worker_id, started_at) VALUES ('running', 'w-gone', now() - interval '11 minutes')");
    }
    const r = await cli(['--config', fleet(), 'reap', '--dead-workers', '--target', 'tenant-*', '--apply', '--yes', '-o', 'json'], env());
    expect(r.code).toBe(0);
    expect(r.json().items.map((i: any) => i.target)).toEqual(['tenant-a', 'tenant-b']);
    for (const d of [a, b]) expect((await d.client.query('SELECT status FROM scheduler.runs')).rows).toEqual([{ status: 'failed' }]);
  });
});

describe('schedule groups over two regions', () => {
  it('schedule-groups list: one unit per region of each target with aws; rows tagged with target and region', async () => {
    east.seedGroup('billing-a', { ...owner('billing-a'), team: 'payments' });
    west.seedGroup('stray');
    const r = await cli(['--config', fleet(), 'schedule-groups', 'list', '--all-targets', '-o', 'json'], env());
    expect(r.code).toBeLessThanOrEqual(1);
    const out = r.json();
    expect(Object.keys(out.summary.byTarget).sort()).toEqual(['tenant-a/eu-west-1', 'tenant-a/us-east-1', 'tenant-b', 'tenant-c', 'down'].sort());
    const names = out.items.map((i: any) => `${i.region}:${i.name}`);
    expect(names).toContain('us-east-1:billing-a');
    expect(names).toContain('eu-west-1:stray');
    expect(out.summary.byTarget['tenant-b']).toMatchObject({ skipped: expect.stringMatching(/no AWS regions/) });
  });

  it('schedule-groups reconcile --apply: each region converged on its own endpoint', async () => {
    east.seedGroup('billing-r', { ...owner('billing-r'), team: 'stale' });
    west.seedGroup('billing-r', { ...owner('billing-r'), team: 'stale' });
    const r = await cli(['--config', fleet(), 'schedule-groups', 'reconcile', 'billing-r', '--target', 'tenant-a', '--apply', '--yes', '-o', 'json'], env());
    expect(r.code).toBe(0);
    expect(r.json().items.map((i: any) => i.region).sort()).toEqual(['eu-west-1', 'us-east-1']);
    for (const emu of [east, west]) expect(emu.groups().find((g) => g.name === 'billing-r')?.tags).toEqual({ ...owner('billing-r'), team: 'payments' });
  });
});
