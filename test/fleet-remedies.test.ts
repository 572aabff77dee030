import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../src/cli/cli.js';
import { freshDatabase, databaseChecksum, serverPassword, noPassword } from './support/db.js';
import { cli } from './support/cli.js';
import { eventually } from './support/reliability.js';
import type { SchedulerEmulator } from '../src/emulator/scheduler-emulator.js';

/** reap and propagations retry over several real databases, one of them down. */
type Db = Awaited<ReturnType<typeof freshDatabase>>;
let a: Db, b: Db, c: Db;
let closedPort: number;
let dir: string;


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
      return { io: { stdin, stderr, stdout, env: { PATH: process.env.PATH, XDG_STATE_HOME: process.env.XDG_STATE_HOME, ...env() }, cwd: process.cwd() }, text: () => err, prompts: () => prompts };
    };
    const no = tty('n');
    // Declined: exit 5, nothing changed (issue 27).
    expect(await runCli(['--config', config(), 'reap', '--all-targets', '--apply'], no.io)).toBe(5);
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

/**
 * Issue #13's guarantees hold on every target × region, as for one account: named groups
 * fetched directly, the account+region lock (--wait), the audit of every change with --reason,
 * named refused/absent groups an exit 1.
 */
describe('adopt schedule-group over targets keeps the single-target guarantees', () => {
  let east: SchedulerEmulator, west: SchedulerEmulator;
  let state: string;
  let awsEnv: (emu: SchedulerEmulator, extra?: NodeJS.ProcessEnv) => NodeJS.ProcessEnv;
  let OWNER: Record<string, string>;
  beforeEach(async () => {
    const support = await import('./support/aws.js');
    ({ awsEnv, OWNER } = support);
    [east, west] = await Promise.all([support.emulator({ region: 'us-east-1' }), support.emulator({ region: 'eu-west-1', accountId: '210987654321' })]);
    state = mkdtempSync(join(tmpdir(), 'opsctl-fleet-state-'));
  });
  afterEach(async () => {
    await Promise.all([east.close(), west.close()]);
  });

  /** Target x: both regions, journal audit; y (optional): the same regions, its audit in database a. */
  const adoptConfig = (top: Record<string, unknown> = {}, targets: Record<string, unknown> = {}) => {
    const f = join(dir, `adopt-${Math.random().toString(36).slice(2)}.json`);
    const aws = { regions: ['us-east-1', 'eu-west-1'], endpoints: { 'us-east-1': east.url, 'eu-west-1': west.url } };
    writeFileSync(
      f,
      JSON.stringify({
        actor: 'alice',
        scheduleGroups: { ownerTags: OWNER, ownerKeyPrefix: 'alchemy::', desiredTags: { team: 'payments' }, conflictDelay: '10ms' },
        ...top,
        targets: { x: { aws }, ...targets },
      }),
    );
    return f;
  };
  const e = () => ({ ...awsEnv(east, { OPSCTL_STATE_DIR: state }), AWS_ENDPOINT_URL_SCHEDULER: '', ...env() });
  const tagsOf = (emu: SchedulerEmulator, name: string) => emu.groups().find((g) => g.name === name)?.tags;
  const journal = () => readFileSync(join(state, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const lockFileOf = (emu: SchedulerEmulator, region: string) => {
    const account = /:(\d{12}):/.exec(emu.groups().find((g) => g.name === 'default')?.arn ?? '')?.[1];
    return join(state, 'locks', `scheduler-${account}-${region}-${new URL(emu.url).host}`.replace(/[^A-Za-z0-9._-]+/g, '_') + '.lock');
  };
  /** Held by a live process of this host (this test runner): a real holder, not a stale file. */
  const holdLock = (file: string) => {
    mkdirSync(join(state, 'locks'), { recursive: true });
    writeFileSync(file, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString(), what: 'test' }));
  };

  it('named groups are fetched directly in each region; every change is in the journal with --reason and its region', async () => {
    for (const emu of [east, west]) {
      emu.seedGroup('g1', { env: 'prod' });
      for (let i = 0; i < 30; i++) emu.seedGroup(`other-${i}`);
      emu.resetCallCounts();
    }
    const f = adoptConfig();
    const dry = await cli(['--config', f, 'adopt', 'schedule-group', 'g1', '--all-targets', '--reason', 'INC-9', '-o', 'json'], e());
    expect(dry.code).toBe(0);
    expect(dry.json().summary).toMatchObject({ planned: 2, byTarget: { 'x/us-east-1': { planned: 1 }, 'x/eu-west-1': { planned: 1 } } });
    for (const emu of [east, west]) expect(emu.callCounts()).toEqual({ GetScheduleGroup: 1, ListTagsForResource: 1 });
    expect(existsSync(join(state, 'audit.jsonl'))).toBe(false); // a dry run records nothing

    const r = await cli(['--config', f, 'adopt', 'schedule-group', 'g1', '--all-targets', '--apply', '--reason', 'INC-9 fleet take-over', '-o', 'json'], e());
    expect(r.code).toBe(0);
    expect(r.json().summary).toMatchObject({ planned: 2, adopted: 2 });
    for (const emu of [east, west]) {
      expect(emu.callCounts().ListScheduleGroups ?? 0).toBe(0); // never the account's whole listing
      expect(tagsOf(emu, 'g1')).toMatchObject({ 'alchemy::id': 'g1', team: 'payments', env: 'prod' });
    }
    const lines = journal();
    expect(lines.map((l) => [l.kind, l.resourceId, l.metadata.region, l.metadata.reason, l.actor]).sort()).toEqual([
      ['schedule_group.adopted', 'g1', 'eu-west-1', 'INC-9 fleet take-over', 'alice'],
      ['schedule_group.adopted', 'g1', 'us-east-1', 'INC-9 fleet take-over', 'alice'],
    ]);
    expect(lines.map((l) => l.metadata.arn).sort()).toEqual([expect.stringContaining(':210987654321:'), expect.stringContaining(':123456789012:')]);
    expect(lines.every((l) => /reason: INC-9 fleet take-over/.test(l.summary))).toBe(true);
    // The locks were released.
    expect([existsSync(lockFileOf(east, 'us-east-1')), existsSync(lockFileOf(west, 'eu-west-1'))]).toEqual([false, false]);
  });

  it("with audit.table: each region's changes are rows in the target's own database, with the reason; a target without a database is refused", async () => {
    east.seedGroup('u1');
    west.seedGroup('u2');
    const aws = { regions: ['us-east-1', 'eu-west-1'], endpoints: { 'us-east-1': east.url, 'eu-west-1': west.url } };
    const f = adoptConfig({ audit: { table: 'audit_log', schema: null } }, { x: { aws, database: { url: noPassword(a.url), passwordEnv: 'PW' } } });
    const r = await cli(['--config', f, 'adopt', 'schedule-group', '--all-unowned', '--all-targets', '--apply', '--reason', 'INC-10', '-o', 'json'], e());
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.json().summary).toMatchObject({ adopted: 2 });
    const rows = (await a.client.query("SELECT actor, kind, resource_id, metadata FROM audit_log WHERE kind LIKE 'schedule_group.%' ORDER BY resource_id")).rows;
    expect(rows.map((x) => [x.actor, x.kind, x.resource_id, x.metadata.region, x.metadata.reason])).toEqual([
      ['alice', 'schedule_group.adopted', 'u1', 'us-east-1', 'INC-10'],
      ['alice', 'schedule_group.adopted', 'u2', 'eu-west-1', 'INC-10'],
    ]);
    expect(existsSync(join(state, 'audit.jsonl'))).toBe(false);

    west.seedGroup('u3');
    const noDb = adoptConfig({ audit: { table: 'audit_log', schema: null } });
    const refused = await cli(['--config', noDb, 'adopt', 'schedule-group', '--all-unowned', '--all-targets', '--apply', '-o', 'json'], e());
    expect(refused.code).toBe(2);
    expect(refused.json().summary.byTarget['x/eu-west-1'].error).toMatch(/target x: audit\.table is set but the target has no database/);
    expect(tagsOf(west, 'u3')).toEqual({});
    // Its overrides can send its audit to the local journal instead.
    const journalled = adoptConfig({ audit: { table: 'audit_log', schema: null } }, { x: { aws, overrides: { audit: { table: null } } } });
    const ok = await cli(['--config', journalled, 'adopt', 'schedule-group', '--all-unowned', '--all-targets', '--apply', '--reason', 'INC-10b', '-o', 'json'], e());
    expect(ok.code).toBe(0);
    expect(journal().map((l) => [l.resourceId, l.metadata.region, l.metadata.reason])).toEqual([['u3', 'eu-west-1', 'INC-10b']]);
  });

  it('a lock held in one region: that unit is busy (exit 3), the other region is adopted; --wait waits for it', async () => {
    east.seedGroup('u1');
    west.seedGroup('u2');
    const f = adoptConfig();
    const westLock = lockFileOf(west, 'eu-west-1');
    holdLock(westLock);
    const busy = await cli(['--config', f, 'adopt', 'schedule-group', '--all-unowned', '--all-targets', '--apply', '--reason', 'INC-11', '-o', 'json'], e());
    expect(busy.code).toBe(3);
    const out = busy.json();
    expect(out.summary.byTarget['x/eu-west-1']).toMatchObject({ exitCode: 3, error: expect.stringMatching(/another opsctl run is already working on schedule groups of account 210987654321 in eu-west-1.*pass --wait/) });
    expect(out.summary.byTarget['x/us-east-1']).toMatchObject({ exitCode: 0, adopted: 1 });
    expect(tagsOf(east, 'u1')).toMatchObject({ 'alchemy::id': 'u1' });
    expect(tagsOf(west, 'u2')).toEqual({});
    expect(west.callCounts().TagResource ?? 0).toBe(0);
    expect(busy.stderr).toMatch(/1 of 2 target\(s\) failed: x\/eu-west-1/);
    expect(journal().map((l) => [l.resourceId, l.metadata.region])).toEqual([['u1', 'us-east-1']]);

    // --wait: in-process; its "waiting" message is the synchronisation point.
    const err = new PassThrough();
    let stderr = '';
    err.on('data', (d) => (stderr += d));
    const stdout = new PassThrough();
    let text = '';
    stdout.on('data', (d) => (text += d));
    const waiting = runCli(['--config', f, 'adopt', 'schedule-group', '--all-unowned', '--all-targets', '--apply', '--wait', '--reason', 'INC-11', '-o', 'json'], {
      stdout, stderr: err, stdin: Readable.from([]), env: { PATH: process.env.PATH, XDG_STATE_HOME: process.env.XDG_STATE_HOME, ...e() }, cwd: process.cwd(),
    });
    await eventually('the eu-west-1 unit waits for the lock', async () => /waiting for another opsctl run working on schedule groups of account 210987654321 in eu-west-1/.test(stderr));
    expect(west.callCounts().TagResource ?? 0).toBe(0);
    unlinkSync(westLock); // the other adopter is done
    expect(await waiting).toBe(0);
    expect(JSON.parse(text).summary.byTarget['x/eu-west-1']).toMatchObject({ exitCode: 0, adopted: 1 });
    expect(tagsOf(west, 'u2')).toMatchObject({ 'alchemy::id': 'u2' });
    expect(existsSync(westLock)).toBe(false);
  });

  it('a named group absent in a region: exit 1, dry run and --apply, as for one account; the others are still adopted', async () => {
    east.seedGroup('g1');
    west.seedGroup('g1');
    east.seedGroup('only-east');
    const f = adoptConfig();
    const dry = await cli(['--config', f, 'adopt', 'schedule-group', 'g1', 'only-east', '--all-targets', '-o', 'json'], e());
    expect(dry.code).toBe(1);
    const d = dry.json();
    expect(d.items.filter((i: any) => i.outcome === 'refused').map((i: any) => `${i.target}/${i.region}/${i.name}`)).toEqual(['x/eu-west-1/only-east']);
    expect(d.summary.byTarget['x/eu-west-1']).toMatchObject({ exitCode: 1, note: expect.stringMatching(/named group\(s\) refused or absent: only-east/) });
    expect(d.summary.byTarget['x/us-east-1']).toMatchObject({ exitCode: 0, planned: 2 });

    const r = await cli(['--config', f, 'adopt', 'schedule-group', 'g1', 'only-east', '--all-targets', '--apply', '--reason', 'INC-12', '-o', 'json'], e());
    expect(r.code).toBe(1);
    expect(r.json().summary).toMatchObject({ adopted: 3, byTarget: { 'x/eu-west-1': { exitCode: 1, adopted: 1 } } });
    expect(tagsOf(west, 'g1')).toMatchObject({ 'alchemy::id': 'g1' });

    const table = await cli(['--config', f, 'adopt', 'schedule-group', 'nonexistent', '--all-targets'], e());
    expect(table.code).toBe(1);
    expect(table.stdout).toMatch(/x\/us-east-1: named group\(s\) refused or absent: nonexistent/);
    expect(table.stdout).toMatch(/x\/eu-west-1: named group\(s\) refused or absent: nonexistent/);
  });
});
