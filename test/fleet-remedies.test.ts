import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import { PassThrough } from 'node:stream';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../src/cli.js';
import { freshDatabase, databaseChecksum, serverPassword } from './support/db.js';
import { cli } from './support/cli.js';

/** reap and propagations retry over several real databases, one of them down. */
type Db = Awaited<ReturnType<typeof freshDatabase>>;
let a: Db, b: Db, c: Db;
let closedPort: number;
let dir: string;

const noPassword = (url: string) => {
  const u = new URL(url);
  u.password = '';
  return u.toString();
};

beforeAll(async () => {
  [a, b, c] = await Promise.all([freshDatabase('fr_a'), freshDatabase('fr_b'), freshDatabase('fr_c')]);
  closedPort = await new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
  dir = mkdtempSync(join(tmpdir(), 'opsctl-fleet-rem-'));
});
afterAll(async () => {
  await Promise.all([a.drop(), b.drop(), c.drop()]);
});

const stuck = async (d: Db, n: number) =>
  d.client.query(`INSERT INTO purchase_executions (status, updated_at) SELECT 'running', now() - interval '2 hours' FROM generate_series(1, ${n})`);
const deadLetters = async (d: Db, n: number) =>
  d.client.query(
    `INSERT INTO pending_propagations (kind, team_id, attempts, last_error, failed_at) SELECT 'tier_elevation', gen_random_uuid(), 10, 'boom', now() - interval '1 hour' FROM generate_series(1, ${n})`,
  );
const count = async (d: Db, sql: string) => (await d.client.query(sql)).rows[0].n as number;
const failed = (d: Db) => count(d, "SELECT count(*)::int AS n FROM purchase_executions WHERE status = 'failed'");

beforeEach(async () => {
  for (const d of [a, b, c]) await d.client.query('TRUNCATE purchase_executions, pending_propagations, audit_log');
  await stuck(a, 3);
  await stuck(b, 5);
  // c: nothing stuck
});

function config(withDown = false): string {
  const f = join(dir, `c-${Math.random().toString(36).slice(2)}.json`);
  const t = (d: Db) => ({ database: { url: noPassword(d.url), passwordEnv: 'PW' } });
  writeFileSync(
    f,
    JSON.stringify({
      audit: { table: 'audit_log', schema: null },
      targets: {
        a: t(a),
        b: t(b),
        c: t(c),
        ...(withDown ? { down: { database: { host: '127.0.0.1', port: closedPort, user: 'nobody', dbname: 'nothing' } } } : {}),
      },
    }),
  );
  return f;
}
const env = () => ({ PW: serverPassword() });
const checksums = () => Promise.all([a, b, c].map((d) => databaseChecksum(d.client)));

describe('opsctl reap over targets', () => {
  it('dry run: plans on every target, totals per target, changes nothing; a down target is reported (exit 3)', async () => {
    const before = await checksums();
    const r = await cli(['--config', config(true), 'reap', '--all-targets', '-o', 'json'], env());
    expect(r.code).toBe(3);
    const out = r.json();
    expect(out.mode).toBe('plan');
    expect(out.summary).toMatchObject({ targets: 4, planned: 8, targetsFailed: 1 });
    expect(out.summary.byTarget.a.planned).toBe(3);
    expect(out.summary.byTarget.b.planned).toBe(5);
    expect(out.summary.byTarget.c.planned).toBe(0);
    expect(out.summary.byTarget.down).toMatchObject({ planned: 0, exitCode: 3, error: expect.stringMatching(/connection refused/) });
    expect(out.items.map((i: any) => i.target).sort()).toEqual(['a', 'a', 'a', 'b', 'b', 'b', 'b', 'b']);
    expect(out.items.every((i: any) => i.outcome === 'planned')).toBe(true);
    expect(await checksums()).toEqual(before);
    expect(r.stdout + r.stderr).not.toContain(serverPassword());
  });

  it('--apply: target by target through the engine, with audit rows; the down target does not stop the others', async () => {
    const r = await cli(['--config', config(true), 'reap', '--all-targets', '--apply', '--reason', 'fleet test', '-o', 'json'], env());
    expect(r.code).toBe(3);
    const out = r.json();
    expect(out.mode).toBe('apply');
    expect(out.summary).toMatchObject({ planned: 8, reaped: 8, targetsFailed: 1 });
    expect([await failed(a), await failed(b), await failed(c)]).toEqual([3, 5, 0]);
    expect(await count(a, 'SELECT count(*)::int AS n FROM audit_log')).toBeGreaterThan(0);
    expect(out.items.filter((i: any) => i.outcome === 'reaped')).toHaveLength(8);
    expect(r.stderr).toMatch(/1 of 4 target\(s\) failed: down/);
  });

  it('--max is per target: one target above it refuses the whole run before any write (exit 2)', async () => {
    const before = await checksums();
    const r = await cli(['--config', config(), 'reap', '--all-targets', '--apply', '--max', '4'], env());
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/more than --max 4 execution\(s\) would be changed on target b.*Nothing was changed on any target/);
    expect(await checksums()).toEqual(before);
    const ok = await cli(['--config', config(), 'reap', '--target', 'a', '--apply', '--max', '4', '-o', 'json'], env());
    expect(ok.code).toBe(0);
    expect(await failed(a)).toBe(3);
  });

  it('--max-total caps the fleet as a whole (exit 2, nothing changed), and needs targets', async () => {
    const before = await checksums();
    const r = await cli(['--config', config(), 'reap', '--all-targets', '--apply', '--max-total', '7'], env());
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/8 execution\(s\) would be changed across 2 target\(s\) \(a: 3, b: 5\), above --max-total 7/);
    expect(await checksums()).toEqual(before);
    const fits = await cli(['--config', config(), 'reap', '--all-targets', '--apply', '--max-total', '8', '-o', 'json'], env());
    expect(fits.code).toBe(0);
    expect(fits.json().summary).toMatchObject({ reaped: 8, maxTotal: 8 });
    const single = await cli(['--config', config(), 'reap', '--max-total', '8'], { DATABASE_URL: a.url });
    expect(single.code).toBe(2);
    expect(single.stderr).toMatch(/--max-total caps a run over several targets/);
  });

  it('on a terminal it asks once, with the total per target; "n" changes nothing anywhere', async () => {
    const before = await checksums();
    const tty = (answer: string) => {
      const stdin = Object.assign(new PassThrough(), { isTTY: true });
      const stderr = Object.assign(new PassThrough(), { isTTY: true });
      const stdout = new PassThrough();
      let err = '';
      let prompts = 0;
      stderr.on('data', (d) => {
        err += d;
        if (/\[y\/N\] $/.test(err)) {
          prompts += 1;
          err += '\n';
          stdin.write(`${answer}\n`);
        }
      });
      stdout.resume();
      return { io: { stdin, stderr, stdout, env: { PATH: process.env.PATH, ...env() }, cwd: process.cwd() }, text: () => err, prompts: () => prompts };
    };
    const no = tty('n');
    expect(await runCli(['--config', config(), 'reap', '--all-targets', '--apply'], no.io)).toBe(0);
    expect(no.text()).toMatch(/Reap 8 execution\(s\) on 2 target\(s\) \(a: 3, b: 5\)\? \[y\/N\]/);
    expect(no.prompts()).toBe(1);
    expect(await checksums()).toEqual(before);
    const yes = tty('y');
    expect(await runCli(['--config', config(), 'reap', '--all-targets', '--apply'], yes.io)).toBe(0);
    expect(yes.prompts()).toBe(1);
    expect([await failed(a), await failed(b)]).toEqual([3, 5]);
  });
});

describe('opsctl propagations retry over targets', () => {
  it('plans everywhere, applies target by target, reports per target', async () => {
    await deadLetters(a, 2);
    await deadLetters(c, 4);
    const dry = await cli(['--config', config(), 'propagations', 'retry', '--all', '--all-targets', '-o', 'json'], env());
    expect(dry.code).toBe(0);
    expect(dry.json().summary).toMatchObject({ planned: 6, byTarget: { a: { planned: 2 }, b: { planned: 0 }, c: { planned: 4 } } });
    const refused = await cli(['--config', config(), 'propagations', 'retry', '--all', '--all-targets', '--apply', '--max-total', '5'], env());
    expect(refused.code).toBe(2);
    expect(await count(c, 'SELECT count(*)::int AS n FROM pending_propagations WHERE failed_at IS NOT NULL')).toBe(4);
    const r = await cli(['--config', config(), 'propagations', 'retry', '--all', '--target', 'a', '--target', 'c', '--apply', '--reason', 'fixed', '-o', 'json'], env());
    expect(r.code).toBe(0);
    expect(r.json().summary).toMatchObject({ targets: 2, planned: 6, retried: 6 });
    for (const d of [a, c]) expect(await count(d, 'SELECT count(*)::int AS n FROM pending_propagations WHERE failed_at IS NOT NULL')).toBe(0);
    expect(r.json().items.every((i: any) => ['a', 'c'].includes(i.target) && i.outcome === 'retried')).toBe(true);
  });
});

describe('opsctl jobs rescue over targets', () => {
  it("each target with its own queue preset (overrides); plans, applies target by target; a target without a queue is refused", async () => {
    const { REFERENCE_SCHEMA_SQL } = await import('../src/reference/schema.js');
    const { RIVER_SCHEMA_SQL } = await import('../src/reference/queues/river.js');
    const [r1, r2] = await Promise.all([freshDatabase('fr_river1', REFERENCE_SCHEMA_SQL + RIVER_SCHEMA_SQL), freshDatabase('fr_river2', REFERENCE_SCHEMA_SQL + RIVER_SCHEMA_SQL)]);
    try {
      const runningJobs = (d: Db, n: number) =>
        d.client.query(
          `INSERT INTO river_job (state, kind, queue, args, attempt, max_attempts, attempted_at, attempted_by, scheduled_at)
           SELECT 'running', 'send_email', 'default', '{}', 1, 3, now() - interval '2 hours', ARRAY['host-1'], now() - interval '3 hours' FROM generate_series(1, ${n})`,
        );
      await runningJobs(r1, 2);
      await runningJobs(r2, 1);
      const river = (d: Db) => ({ database: { url: noPassword(d.url), passwordEnv: 'PW' }, overrides: { jobs: { queue: 'river' } } });
      const f = join(dir, 'jobs.json');
      writeFileSync(f, JSON.stringify({ targets: { r1: river(r1), r2: river(r2), plain: { database: { url: noPassword(c.url), passwordEnv: 'PW' } } } }));
      const dry = await cli(['--config', f, 'jobs', 'rescue', '--target', 'r*', '-o', 'json'], env());
      expect(dry.code).toBe(0);
      expect(dry.json().summary).toMatchObject({ planned: 3, byTarget: { r1: { planned: 2 }, r2: { planned: 1 } } });
      const noQueue = await cli(['--config', f, 'jobs', 'rescue', '--all-targets', '-o', 'json'], env());
      expect(noQueue.code).toBe(2);
      expect(noQueue.json().summary.byTarget.plain.error).toMatch(/target plain: no job queue is configured/);
      const r = await cli(['--config', f, 'jobs', 'rescue', '--target', 'r*', '--apply', '--max-total', '3', '-o', 'json'], env());
      expect(r.code).toBe(0);
      expect(r.json().summary).toMatchObject({ planned: 3, 'rescued-retryable': 3 });
      for (const d of [r1, r2]) expect(await count(d, "SELECT count(*)::int AS n FROM river_job WHERE state = 'running'")).toBe(0);
    } finally {
      await Promise.all([r1.drop(), r2.drop()]);
    }
  });
});

describe('opsctl adopt schedule-group over targets × regions', () => {
  it('plans in every region of every target, refuses above --max-total, then adopts region by region', async () => {
    const { emulator, awsEnv, OWNER } = await import('./support/aws.js');
    const [east, west] = await Promise.all([emulator({ region: 'us-east-1' }), emulator({ region: 'eu-west-1' })]);
    try {
      east.seedGroup('u1');
      east.seedGroup('u2');
      west.seedGroup('u3');
      const f = join(dir, 'adopt.json');
      writeFileSync(
        f,
        JSON.stringify({
          scheduleGroups: { ownerTags: OWNER, ownerKeyPrefix: 'alchemy::', desiredTags: { team: 'payments' }, conflictDelay: '10ms' },
          targets: {
            x: { aws: { regions: ['us-east-1', 'eu-west-1'], endpoints: { 'us-east-1': east.url, 'eu-west-1': west.url } } },
            a: { database: { url: noPassword(a.url), passwordEnv: 'PW' } },
          },
        }),
      );
      const e = { ...awsEnv(east), AWS_ENDPOINT_URL_SCHEDULER: '', ...env() };
      const dry = await cli(['--config', f, 'adopt', 'schedule-group', '--all-unowned', '--all-targets', '-o', 'json'], e);
      expect(dry.code).toBe(0);
      const s = dry.json().summary;
      expect(s).toMatchObject({ planned: 3, byTarget: { 'x/us-east-1': { planned: 2 }, 'x/eu-west-1': { planned: 1 }, a: { error: 'target a has no aws section: skipped' } } });
      expect(dry.json().items.map((i: any) => `${i.target}/${i.region}/${i.name}`).sort()).toEqual(['x/eu-west-1/u3', 'x/us-east-1/u1', 'x/us-east-1/u2']);
      const snaps = [east.snapshot(), west.snapshot()];
      const refused = await cli(['--config', f, 'adopt', 'schedule-group', '--all-unowned', '--all-targets', '--apply', '--max-total', '2'], e);
      expect(refused.code).toBe(2);
      expect([east.snapshot(), west.snapshot()]).toEqual(snaps);
      const r = await cli(['--config', f, 'adopt', 'schedule-group', '--all-unowned', '--all-targets', '--apply', '--max-total', '3', '-o', 'json'], e);
      expect(r.code).toBe(0);
      expect(r.json().summary).toMatchObject({ planned: 3, adopted: 3 });
      const after = await cli(['--config', f, 'check', '--all-targets', '--only', 'schedule-groups', '-o', 'json'], e);
      expect(after.code).toBe(0); // every group now owned: clean in both regions
    } finally {
      await Promise.all([east.close(), west.close()]);
    }
  });
});
