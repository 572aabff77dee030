import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import parsePrometheus from 'parse-prometheus-text-format';
import { marked } from 'marked';
import type { SchedulerEmulator } from '../src/emulator/scheduler-emulator.js';
import { freshDatabase, databaseChecksum, serverPassword, noPassword } from './support/db.js';
import { cli } from './support/cli.js';
import { freePort } from '../src/database/embedded-postgres.js';
import { awsEnv, emulator, owner, OWNER } from './support/aws.js';
import { SCHEDULER_SCHEMA_SQL } from './support/scheduler-schema.js';

/**
 * opsctl check over a fleet: three real databases on the embedded server, one target on a
 * closed port ("down"), one that accepts and never answers ("hung"), and two emulators
 * standing for two regions of one account.
 */
type Db = Awaited<ReturnType<typeof freshDatabase>>;
let a: Db, b: Db, c: Db;
let east: SchedulerEmulator, west: SchedulerEmulator;
let closedPort: number;
let hung: Server;
const held: Socket[] = [];
let dir: string;


beforeAll(async () => {
  [a, b, c] = await Promise.all([freshDatabase('fleet_a'), freshDatabase('fleet_b'), freshDatabase('fleet_c')]);
  [east, west] = await Promise.all([emulator({ region: 'us-east-1' }), emulator({ region: 'eu-west-1' })]);
  closedPort = await freePort();
  hung = createServer((s) => held.push(s));
  await new Promise<void>((r) => hung.listen(0, '127.0.0.1', () => r()));
  dir = mkdtempSync(join(tmpdir(), 'opsctl-fleet-'));
});
afterAll(async () => {
  for (const s of held) s.destroy();
  await new Promise<void>((r) => hung.close(() => r()));
  await Promise.all([east.close(), west.close()]);
  await Promise.all([a.drop(), b.drop(), c.drop()]);
});
beforeEach(async () => {
  for (const d of [a, b, c]) await d.client.query('TRUNCATE purchase_executions, pending_propagations, audit_log');
});

function config(extraTargets: Record<string, unknown> = {}): string {
  const f = join(dir, `c-${Math.random().toString(36).slice(2)}.json`);
  const bUrl = new URL(b.url);
  writeFileSync(
    f,
    JSON.stringify({
      scheduleGroups: { ownerTags: OWNER, ownerKeyPrefix: 'alchemy::', desiredTags: { team: 'payments' } },
      targets: {
        'tenant-a': {
          database: { url: noPassword(a.url), passwordEnv: 'PW_A' },
          aws: { regions: ['us-east-1', 'eu-west-1'], endpoints: { 'us-east-1': east.url, 'eu-west-1': west.url } },
        },
        'tenant-b': {
          database: { host: bUrl.hostname, port: Number(bUrl.port), user: decodeURIComponent(bUrl.username), dbname: b.name, passwordEnv: 'PW_B' },
          overrides: { executions: { threshold: '3h' } },
        },
        'tenant-c': { database: { urlEnv: 'C_URL' } },
        down: { database: { host: '127.0.0.1', port: closedPort, user: 'nobody', dbname: 'nothing' } },
        ...extraTargets,
      },
    }),
  );
  return f;
}
const env = () => ({ ...awsEnv(east), AWS_ENDPOINT_URL_SCHEDULER: '', PW_A: serverPassword(), PW_B: serverPassword(), C_URL: c.url });
const row = (out: any, target: string, check: string, region: string | null = null) =>
  out.items.find((i: any) => i.target === target && i.check === check && i.region === region);

async function seed() {
  // Stuck for 2h: a finding with the default 10m threshold (tenant-a), not with tenant-b's 3h override.
  for (const d of [a, b]) await d.client.query("INSERT INTO purchase_executions (status, updated_at) VALUES ('running', now() - interval '2 hours')");
  east.seedGroup('billing-a', { ...owner('billing-a'), team: 'payments' });
  west.seedGroup('stray');
}

describe('opsctl check --all-targets', () => {
  it('checks every target and region in one report; the down target is unknown, never clean, and stops nobody', async () => {
    await seed();
    const before = await Promise.all([a, b, c].map((d) => databaseChecksum(d.client)));
    const r = await cli(['--config', config(), 'check', '--all-targets', '-o', 'json'], env());
    expect(r.code).toBe(3);
    const out = r.json();
    expect(out.summary).toMatchObject({
      status: 'unknown',
      targets: 4,
      byTarget: { 'tenant-a': 'findings', 'tenant-b': 'clean', 'tenant-c': 'clean', down: 'unknown' },
      targetsClean: 2,
      targetsWithFindings: 1,
      targetsUnknown: 1,
    });
    expect(out.items.every((i: any) => typeof i.target === 'string')).toBe(true);
    expect(row(out, 'tenant-a', 'stuck-executions')).toMatchObject({ status: 'finding', count: 1 });
    expect(row(out, 'tenant-b', 'stuck-executions')).toMatchObject({ status: 'ok', count: 0 }); // its own 3h threshold: 2h is not stuck
    expect(row(out, 'tenant-c', 'stuck-executions')).toMatchObject({ status: 'ok', count: 0 });
    // One schedule-group check per region, each against its own endpoint.
    expect(row(out, 'tenant-a', 'schedule-groups', 'us-east-1')).toMatchObject({ status: 'ok', count: 0 });
    expect(row(out, 'tenant-a', 'schedule-groups', 'eu-west-1')).toMatchObject({ status: 'finding', count: 1, worst: expect.stringMatching(/^stray: unowned/) });
    // A target without an aws section skips the schedule-group check; one without a database the database checks.
    expect(row(out, 'tenant-b', 'schedule-groups')).toMatchObject({ status: 'skipped', error: 'target tenant-b has no aws section' });
    const down = out.items.filter((i: any) => i.target === 'down' && i.status !== 'skipped');
    expect(down.map((i: any) => i.check).sort()).toEqual(['dead-letters', 'pending-propagations', 'stuck-executions']);
    for (const d of down) expect(d).toMatchObject({ status: 'unknown', error: expect.stringMatching(/connection refused/) });
    // Read-only everywhere; no password anywhere.
    expect(await Promise.all([a, b, c].map((d) => databaseChecksum(d.client)))).toEqual(before);
    expect(r.stdout + r.stderr).not.toContain(serverPassword());
  });

  it('--target picks targets by name or glob; exit codes aggregate as for one target', async () => {
    await seed();
    const clean = await cli(['--config', config(), 'check', '--target', 'tenant-b', '--target', 'tenant-c', '-o', 'json'], env());
    expect(clean.code).toBe(0);
    expect(clean.json().summary).toMatchObject({ status: 'clean', targets: 2 });
    const findings = await cli(['--config', config(), 'check', '--target', 'tenant-*', '-o', 'json'], env());
    expect(findings.code).toBe(1);
    expect(Object.keys(findings.json().summary.byTarget)).toEqual(['tenant-a', 'tenant-b', 'tenant-c']);
    const only = await cli(['--config', config(), 'check', '--target', 'tenant-a', '--only', 'executions', '-o', 'json'], env());
    expect(only.json().items.map((i: any) => i.check)).toEqual(['stuck-executions']);
  });

  it('bad selections and flags are usage errors (exit 2) with one sentence', async () => {
    const unknown = await cli(['--config', config(), 'check', '--target', 'tenant-z'], env());
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^opsctl: --target tenant-z is not a configured target/);
    expect((await cli(['--config', config(), 'check', '--all-targets', '--shard', '2/2'], env())).code).toBe(2);
    expect((await cli(['--config', config(), 'check', '--all-targets', '--concurrency', '0'], env())).code).toBe(2);
    expect((await cli(['--config', config(), 'check', '--all-targets', '--region', 'us-east-1'], env())).code).toBe(2);
    // Every command that reads or changes a target runs on targets; opsctl's own commands do not.
    const notFleet = await cli(['--config', config(), 'config', 'show', '--all-targets'], env());
    expect(notFleet.code).toBe(2);
    expect(notFleet.stderr).toMatch(/does not run on targets/);
    const pw = join(dir, 'pw.json');
    writeFileSync(pw, JSON.stringify({ targets: { x: { database: { url: 'postgres://u:Sekrit-99@h/d' } } } }));
    const inFile = await cli(['--config', pw, 'check', '--all-targets'], env());
    expect(inFile.code).toBe(2);
    expect(inFile.stderr).toMatch(/password in the config file is not allowed/);
    expect(inFile.stderr).not.toContain('Sekrit-99');
  });

  it('a target that hangs is cut off at --target-timeout and reported unknown; the others finish', async () => {
    const port = (hung.address() as { port: number }).port;
    const f = config({ hung: { database: { host: '127.0.0.1', port, user: 'u', dbname: 'd' } } });
    const started = performance.now();
    const r = await cli(['--config', f, 'check', '--target', 'hung', '--target', 'tenant-c', '--target-timeout', '1s', '-o', 'json'], env());
    expect(performance.now() - started).toBeLessThan(8000); // well before the 10s connect timeout
    expect(r.code).toBe(3);
    const out = r.json();
    expect(out.summary.byTarget).toEqual({ hung: 'unknown', 'tenant-c': 'clean' });
    expect(row(out, 'hung', 'stuck-executions')).toMatchObject({ status: 'unknown', error: expect.stringMatching(/did not finish within the target timeout of 1s/) });
  });

  it('runs dead-workers on targets that enable it; --worker-stale is every target\'s heartbeat threshold', async () => {
    await a.client.query(SCHEDULER_SCHEMA_SQL);
    await a.client.query('TRUNCATE scheduler.runs, scheduler.workers CASCADE');
    // A worker silent for 10 minutes still holding a running run: dead at the default 2m, alive at 1h.
    await a.client.query("INSERT INTO scheduler.workers (id, host, last_heartbeat_at) VALUES ('w-gone', 'h1', now() - interval '10 minutes')");
    await a.client.query("INSERT INTO scheduler.runs (status, worker_id, started_at) VALUES ('running', 'w-gone', now() - interval '11 minutes')");
    const f = config({ 'tenant-w': { database: { url: noPassword(a.url), passwordEnv: 'PW_A' }, overrides: { workers: { enabled: true } } } });
    const args = ['--config', f, 'check', '--target', 'tenant-w', '--target', 'tenant-c', '--only', 'workers', '-o', 'json'];
    const dead = await cli(args, env());
    expect(dead.code).toBe(1);
    expect(row(dead.json(), 'tenant-w', 'dead-workers')).toMatchObject({ status: 'finding', count: 1 });
    // Disabled on tenant-c (the default): skipped, never unknown.
    expect(row(dead.json(), 'tenant-c', 'dead-workers')).toMatchObject({ status: 'skipped', error: 'target tenant-c does not enable workers (workers.enabled)' });
    const lenient = await cli([...args, '--worker-stale', '1h'], env());
    expect(lenient.code).toBe(0);
    expect(row(lenient.json(), 'tenant-w', 'dead-workers')).toMatchObject({ status: 'ok', count: 0 });
    const bad = await cli([...args, '--worker-stale', '0s'], env());
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('ndjson tags every line with its target; markdown has a target column; prometheus a target label', async () => {
    await seed();
    const nd = await cli(['--config', config(), 'check', '--target', 'tenant-*', '-o', 'ndjson'], env());
    const lines = nd.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.at(-1)).toMatchObject({ type: 'summary', summary: { targets: 3 } });
    expect(lines.slice(0, -1).every((l) => ['tenant-a', 'tenant-b', 'tenant-c'].includes(l.target))).toBe(true);

    const md = await cli(['--config', config(), 'check', '--target', 'tenant-*', '-o', 'markdown'], env());
    expect(md.code).toBe(1);
    const table = marked.lexer(md.stdout).find((t) => t.type === 'table') as any;
    expect(table.header.map((h: any) => h.text)).toEqual(['target', 'region', 'check', 'status', 'count', 'threshold', 'worst example']);
    expect(table.rows.some((r: any) => r[0].text === 'tenant-a' && r[1].text === 'eu-west-1' && r[2].text === 'schedule-groups')).toBe(true);
    const perTarget = (marked.lexer(md.stdout).filter((t) => t.type === 'table') as any[]).find((t) => t.header[0].text === 'target' && t.header[1].text === 'status');
    expect(perTarget.rows.map((r: any) => [r[0].text, r[1].text])).toEqual([
      ['tenant-a', '❌ findings'],
      ['tenant-b', '✅ clean'],
      ['tenant-c', '✅ clean'],
    ]);

    const prom = await cli(['--config', config(), 'check', '--all-targets', '-o', 'prometheus'], env());
    expect(prom.code).toBe(3);
    const families = parsePrometheus(prom.stdout) as Array<{ name: string; metrics: Array<{ labels?: Record<string, string>; value: string }> }>;
    const failing = families.find((f) => f.name === 'opsctl_check_failing')!.metrics;
    expect(failing.find((m) => m.labels?.target === 'tenant-a' && m.labels?.check === 'stuck-executions')?.value).toBe('1');
    expect(failing.find((m) => m.labels?.target === 'tenant-a' && m.labels?.region === 'eu-west-1')?.value).toBe('1');
    expect(failing.find((m) => m.labels?.target === 'tenant-a' && m.labels?.region === 'us-east-1')?.value).toBe('0');
    const up = families.find((f) => f.name === 'opsctl_target_up')!.metrics;
    expect(Object.fromEntries(up.map((m) => [m.labels!.target, m.value]))).toEqual({ down: '0', 'tenant-a': '1', 'tenant-b': '1', 'tenant-c': '1' });
  });
});
