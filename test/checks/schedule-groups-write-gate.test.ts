import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, existsSync, writeFileSync, mkdirSync, unlinkSync } from 'node:fs';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import type { SchedulerEmulator } from '../../src/emulator/scheduler-emulator.js';
import { runCli } from '../../src/cli/cli.js';
import { resolveEndpoint } from '../../src/aws/scheduler-api.js';
import { cli } from '../support/cli.js';
import { awsEnv, emulator, owner, sgConfig } from '../support/aws.js';
import { eventually, expectOneSentence } from '../support/reliability.js';
import { freshDatabase } from '../support/db.js';

/**
 * Issue #13: the ownership gate and the DELETING window hold at write time. Every test drives
 * the real @aws-sdk/client-scheduler against the emulator, changing groups under opsctl's feet
 * with the emulator's fault injection (deleting=, vanish=, expire-token=, html=).
 */
let emu: SchedulerEmulator;
beforeEach(async () => {
  emu = await emulator();
});
afterEach(async () => {
  await emu.close();
});

const tagsOf = (name: string) => emu.groups().find((g) => g.name === name)?.tags;
const calls = (op: string) => emu.callCounts()[op] ?? 0;
const freshState = () => mkdtempSync(join(tmpdir(), 'opsctl-state-'));

describe('1. a group that turns DELETING between plan and write', () => {
  it('adopt (named): refused at once as being deleted, no TagResource, exit 1', async () => {
    emu.seedGroup('g1', { env: 'prod' });
    // Plan: GetScheduleGroup + ListTagsForResource (2 reads); the write-time re-read sees DELETING.
    emu.addFault('deleting=g1,after-reads=2');
    const started = Date.now();
    // The reference engine's bound (15 tries 2 s apart): retrying a DELETING group would take 28 s.
    const cfg = sgConfig({ conflictRetries: 15, conflictDelay: '2s' });
    const r = await cli(['--config', cfg, 'adopt', 'schedule-group', 'g1', '--apply', '-o', 'json'], awsEnv(emu));
    expect(r.json().items[0]).toMatchObject({ name: 'g1', outcome: 'refused' });
    expect(r.json().items[0].detail).toMatch(/being deleted/);
    expect(calls('TagResource')).toBe(0);
    expect(r.json().summary).toMatchObject({ refused: 1, adopted: 0, errored: 0, conflictsRetried: 0 });
    expect(r.code).toBe(1);
    expect(Date.now() - started).toBeLessThan(10_000); // at once, not after 14 × 2 s of retries
    expect(tagsOf('g1')).toEqual({ env: 'prod' });
  });

  it('adopt --all-unowned and reconcile: refused, never tagged; exit 0 for an unnamed selection', async () => {
    emu.seedGroup('u1');
    emu.seedGroup('d1', { ...owner('d1'), team: 'old' });
    // Listing page (1 read) + ListTagsForResource (2): the write-time GetScheduleGroup sees DELETING.
    emu.addFault('deleting=u1,after-reads=2');
    emu.addFault('deleting=d1,after-reads=2');
    const a = await cli(['--config', sgConfig(), 'adopt', 'schedule-group', '--all-unowned', '--apply', '-o', 'json'], awsEnv(emu));
    expect(a.code).toBe(0);
    expect(a.json().items.map((i: any) => [i.name, i.outcome])).toEqual([['u1', 'refused']]);
    const rc = await cli(['--config', sgConfig(), 'schedule-groups', 'reconcile', '--apply', '-o', 'json'], awsEnv(emu));
    expect(rc.json().items).toEqual([]); // d1 turned DELETING before reconcile's plan: not drifted any more, not planned
    expect(calls('TagResource') + calls('UntagResource')).toBe(0);
  });

  it('reconcile (named): a DELETING window that opens on the TagResource itself is refused after one call, not retried', async () => {
    emu.seedGroup('d1', { ...owner('d1'), team: 'old' });
    emu.addFault('deleting=d1,on=TagResource');
    const r = await cli(['--config', sgConfig({ conflictRetries: 15 }), 'schedule-groups', 'reconcile', 'd1', '--apply', '-o', 'json'], awsEnv(emu));
    expect(r.json().items[0]).toMatchObject({ name: 'd1', outcome: 'refused' });
    expect(r.json().items[0].detail).toMatch(/being deleted/);
    expect(calls('TagResource')).toBe(1);
    expect(r.json().summary.conflictsRetried).toBe(0);
  });
});

describe('2. the deleting class', () => {
  it('an owned expected group in DELETING is listed `deleting` (not owned) and `check` reports it', async () => {
    emu.seedGroup('phoenix', { ...owner('phoenix'), team: 'payments' });
    emu.addFault('deleting=phoenix');
    const cfg = sgConfig({ expected: ['phoenix'] });
    const r = await cli(['--config', cfg, 'schedule-groups', '-o', 'json'], awsEnv(emu));
    expect(r.code).toBe(0);
    const item = r.json().items.find((i: any) => i.name === 'phoenix');
    expect(item).toMatchObject({ class: 'deleting', state: 'DELETING', ownership: 'owned' });
    expect(r.json().summary).toMatchObject({ deleting: 1, owned: 0 });
    const only = await cli(['--config', cfg, 'schedule-groups', '--class', 'deleting', '-o', 'json'], awsEnv(emu));
    expect(only.json().items.map((i: any) => i.name)).toEqual(['phoenix']);
    const check = await cli(['--config', cfg, 'check', '--only', 'schedule-groups', '-o', 'json'], awsEnv(emu));
    expect(check.code).toBe(1);
    expect(check.stdout).toContain('"deleting"');
    expect(check.stdout).toContain('phoenix');
  });

  it('reconcile --create-missing plans the re-create and rides the DELETING window: waits for the deletion, then creates', async () => {
    emu.seedGroup('phoenix', { ...owner('phoenix'), team: 'payments', extra: 'old' });
    emu.addFault('deleting=phoenix'); // the plan, with a window that stays open
    const cfg = sgConfig({ expected: ['phoenix'], conflictRetries: 100, conflictDelay: '50ms' });
    const dry = await cli(['--config', cfg, 'schedule-groups', 'reconcile', '--create-missing', '-o', 'json'], awsEnv(emu));
    expect(dry.json().items[0]).toMatchObject({ name: 'phoenix', class: 'deleting', action: 'recreate', outcome: 'planned' });
    // The apply, against a window that closes 2 s after it opened (well inside 100 × 50 ms).
    await emu.close();
    emu = await emulator();
    emu.seedGroup('phoenix', { ...owner('phoenix'), team: 'payments', extra: 'old' });
    emu.addFault('deleting=phoenix,for=2s');
    const r = await cli(['--config', cfg, 'schedule-groups', 'reconcile', '--create-missing', '--apply', '-o', 'json'], awsEnv(emu));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.json().items[0]).toMatchObject({ name: 'phoenix', outcome: 'created' });
    expect(r.json().items[0].detail).toMatch(/re-created after the deletion completed/);
    expect(r.json().summary.conflictsRetried).toBeGreaterThan(0);
    const g = emu.groups().find((x) => x.name === 'phoenix');
    expect(g?.state).toBe('ACTIVE');
    expect(g?.tags).toEqual({ ...owner('phoenix'), team: 'payments' });
  });

  it('a DELETING window that does not close within conflictRetries × conflictDelay: errored, says so, nothing created, exit 1', async () => {
    emu.seedGroup('phoenix', { ...owner('phoenix'), team: 'payments' });
    emu.addFault('deleting=phoenix'); // the test emulator's window: an hour
    const cfg = sgConfig({ expected: ['phoenix'], conflictRetries: 3, conflictDelay: '5ms' });
    const r = await cli(['--config', cfg, 'schedule-groups', 'reconcile', '--create-missing', '--apply', '-o', 'json'], awsEnv(emu));
    expect(r.code).toBe(1);
    expect(r.json().items[0].outcome).toBe('errored');
    expect(r.json().items[0].detail).toMatch(/still DELETING after 3 tries 5 ms apart.*re-run reconcile --create-missing once its deletion completes/);
    expect(emu.groups().find((x) => x.name === 'phoenix')?.state).toBe('DELETING');
  });

  it('a DELETING group that was not ours is not re-created; without --create-missing a named one is refused', async () => {
    emu.seedGroup('theirs', { 'alchemy::stack': 'other', 'alchemy::stage': 'prod', 'alchemy::id': 'theirs' });
    emu.seedGroup('mine', { ...owner('mine'), team: 'payments' });
    emu.addFault('deleting=theirs');
    emu.addFault('deleting=mine');
    const cfg = sgConfig({ expected: ['theirs', 'mine'] });
    const r = await cli(['--config', cfg, 'schedule-groups', 'reconcile', '--create-missing', '-o', 'json'], awsEnv(emu));
    const by = Object.fromEntries(r.json().items.map((i: any) => [i.name, i]));
    expect(by.theirs.outcome).toBe('refused');
    expect(by.theirs.detail).toMatch(/not ours: not re-created/);
    expect(by.mine).toMatchObject({ outcome: 'planned', action: 'recreate' });
    const named = await cli(['--config', cfg, 'schedule-groups', 'reconcile', 'mine', '-o', 'json'], awsEnv(emu));
    expect(named.json().items[0].outcome).toBe('refused');
    expect(named.json().items[0].detail).toMatch(/pass --create-missing to re-create it/);
    expect(named.code).toBe(1);
  });
});

describe('3. a group that vanished between plan and write', () => {
  it('adopt: outcome `gone` in items and summary, not already-owned; exit 1 for a named group', async () => {
    emu.seedGroup('g1');
    emu.addFault('vanish=g1,after-reads=2');
    const r = await cli(['--config', sgConfig(), 'adopt', 'schedule-group', 'g1', '--apply', '-o', 'json'], awsEnv(emu));
    expect(r.json().items[0]).toMatchObject({ name: 'g1', outcome: 'gone' });
    expect(r.json().items[0].detail).toMatch(/no longer exists/);
    expect(r.json().summary).toMatchObject({ gone: 1, 'already-owned': 0, adopted: 0 });
    expect(r.code).toBe(1);
    expect(calls('TagResource')).toBe(0);
  });

  it('reconcile --all: `gone`, not in-sync; exit 0 for an unnamed selection', async () => {
    emu.seedGroup('d1', { ...owner('d1'), team: 'old' });
    emu.addFault('vanish=d1,after-reads=2');
    const r = await cli(['--config', sgConfig(), 'schedule-groups', 'reconcile', '--apply', '-o', 'json'], awsEnv(emu));
    expect(r.json().items[0]).toMatchObject({ name: 'd1', outcome: 'gone' });
    expect(r.json().summary).toMatchObject({ gone: 1, 'in-sync': 0, reconciled: 0 });
    expect(r.code).toBe(0);
  });
});

describe('4. named targets refused or absent fail the run', () => {
  it('adopt nonexistent foreign-x default: exit 1 (dry run and --apply), every one refused', async () => {
    emu.seedGroup('foreign-x', { 'alchemy::stack': 'other', 'alchemy::stage': 'prod', 'alchemy::id': 'foreign-x' });
    for (const apply of [[], ['--apply']]) {
      const r = await cli(['--config', sgConfig(), 'adopt', 'schedule-group', 'nonexistent', 'foreign-x', 'default', ...apply, '-o', 'json'], awsEnv(emu));
      expect(r.code, apply.join(' ')).toBe(1);
      expect(r.json().items.map((i: any) => i.outcome)).toEqual(['refused', 'refused', 'refused']);
    }
    const ok = await cli(['--config', sgConfig(), 'adopt', 'schedule-group', '--all-unowned', '--apply', '-o', 'json'], awsEnv(emu));
    expect(ok.code).toBe(0);
    const table = await cli(['--config', sgConfig(), 'adopt', 'schedule-group', 'nonexistent'], awsEnv(emu));
    expect(table.code).toBe(1);
    expect(table.stdout).toMatch(/refused or do not exist: exit 1/);
  });
});

describe('5. partial ownership', () => {
  it('is its own class; reconcile never completes the owner tags without adopt or --force', async () => {
    const partial = { 'alchemy::stack': 'billing', team: 'payments', env: 'prod' };
    emu.seedGroup('half', partial);
    const cfg = sgConfig();
    const list = await cli(['--config', cfg, 'schedule-groups', '-o', 'json'], awsEnv(emu));
    const item = list.json().items.find((i: any) => i.name === 'half');
    expect(item.class).toBe('partial');
    expect(item.reasons).toEqual(['owner tag alchemy::stage absent', 'owner tag alchemy::id absent']);
    const all = await cli(['--config', cfg, 'schedule-groups', 'reconcile', '--apply', '-o', 'json'], awsEnv(emu));
    expect(all.json().items).toEqual([]);
    const named = await cli(['--config', cfg, 'schedule-groups', 'reconcile', 'half', '--apply', '-o', 'json'], awsEnv(emu));
    expect(named.code).toBe(1);
    expect(named.json().items[0]).toMatchObject({ outcome: 'refused' });
    expect(named.json().items[0].detail).toMatch(/only some owner tags are ours.*adopt it first/);
    expect(tagsOf('half')).toEqual(partial);
    const adopted = await cli(['--config', cfg, 'adopt', 'schedule-group', '--all-unowned', '--apply', '-o', 'json'], awsEnv(emu));
    expect(adopted.json().items[0]).toMatchObject({ name: 'half', outcome: 'adopted' });
    expect(tagsOf('half')).toEqual({ ...owner('half'), team: 'payments', env: 'prod' });
  });

  it('reconcile --force completes a partial group', async () => {
    emu.seedGroup('half', { 'alchemy::stack': 'billing', 'alchemy::stage': 'prod' });
    const r = await cli(['--config', sgConfig(), 'schedule-groups', 'reconcile', 'half', '--force', '--apply', '-o', 'json'], awsEnv(emu));
    expect(r.code).toBe(0);
    expect(r.json().items[0].outcome).toBe('reconciled');
    expect(tagsOf('half')).toEqual({ ...owner('half'), team: 'payments' });
  });
});

describe('6. --reason in the audit of every change, and the account+region lock', () => {
  it('without an audit table: one JSON line per change in $OPSCTL_STATE_DIR/audit.jsonl, with the reason', async () => {
    emu.seedGroup('u1', { env: 'prod' });
    emu.seedGroup('d1', { ...owner('d1'), team: 'old' });
    const state = freshState();
    const env = awsEnv(emu, { OPSCTL_STATE_DIR: state });
    const cfg = sgConfig({ expected: ['newbie'] }, { actor: 'alice' });
    const dry = await cli(['--config', cfg, 'adopt', 'schedule-group', 'u1', '--reason', 'INC-42'], env);
    expect(dry.code).toBe(0);
    expect(existsSync(join(state, 'audit.jsonl'))).toBe(false); // a dry run records nothing
    const a = await cli(['--config', cfg, 'adopt', 'schedule-group', 'u1', '--apply', '--reason', 'INC-42 take over', '-o', 'json'], env);
    expect(a.code).toBe(0);
    const rc = await cli(['--config', cfg, 'schedule-groups', 'reconcile', '--create-missing', '--apply', '--reason', 'INC-43', '-o', 'json'], env);
    expect(rc.json().summary).toMatchObject({ reconciled: 1, created: 1 });
    const lines = readFileSync(join(state, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ kind: 'schedule_group.adopted', resourceId: 'u1', actor: 'alice', metadata: { reason: 'INC-42 take over' } });
    // reconcile's two changes: one batch, in the order they completed.
    expect(lines.slice(1).map((l) => [l.kind, l.resourceId, l.metadata.reason, l.actor]).sort()).toEqual([
      ['schedule_group.created', 'newbie', 'INC-43', 'alice'],
      ['schedule_group.reconciled', 'd1', 'INC-43', 'alice'],
    ]);
    expect(lines).toHaveLength(3);
    expect(lines[0].metadata.changes).toEqual(expect.arrayContaining([{ key: 'alchemy::id', from: null, to: 'u1' }]));
    expect(lines[0].summary).toMatch(/reason: INC-42 take over/);
  });

  it('with audit.table: the rows go to the database audit table (and no journal is written)', async () => {
    const db = await freshDatabase('sgaudit');
    try {
      emu.seedGroup('u1');
      const state = freshState();
      const cfg = sgConfig({}, { actor: 'bob', audit: { table: 'audit_log', schema: null }, database: { url: db.url } });
      const r = await cli(['--config', cfg, 'adopt', 'schedule-group', 'u1', '--apply', '--reason', 'INC-7', '-o', 'json'], awsEnv(emu, { OPSCTL_STATE_DIR: state }));
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const rows = (await db.client.query("SELECT actor, kind, resource_type, resource_id, metadata FROM audit_log WHERE kind <> 'opsctl.run'")).rows;
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ actor: 'bob', kind: 'schedule_group.adopted', resource_type: 'schedule_group', resource_id: 'u1' });
      expect(rows[0].metadata.reason).toBe('INC-7');
      expect(existsSync(join(state, 'audit.jsonl'))).toBe(false);
    } finally {
      await db.drop();
    }
  });

  it('an unwritable journal stops the run before any change: exit 3, one sentence', async () => {
    emu.seedGroup('u1');
    const file = join(freshState(), 'not-a-dir');
    writeFileSync(file, 'x');
    const r = await cli(['--config', sgConfig(), 'adopt', 'schedule-group', 'u1', '--apply'], awsEnv(emu, { OPSCTL_STATE_DIR: file }));
    expect(r.code).toBe(3);
    expect(expectOneSentence(r.stderr)).toBeNull();
    expect(r.stderr).toMatch(/cannot write the audit journal/);
    expect(tagsOf('u1')).toEqual({});
  });

  it('a second adopter of the same account+region exits 3 (busy); with --wait it waits for the first, then works', async () => {
    emu.seedGroup('u1');
    const state = freshState();
    const env = awsEnv(emu, { OPSCTL_STATE_DIR: state });
    const account = /:(\d{12}):/.exec(emu.groups().find((g) => g.name === 'default')?.arn ?? '')?.[1];
    const lockFile = join(state, 'locks', `scheduler-${account}-us-east-1-${new URL(emu.url).host}`.replace(/[^A-Za-z0-9._-]+/g, '_') + '.lock');
    // Held by a live process of this host (this test runner): a real holder, not a stale file.
    mkdirSync(join(state, 'locks'), { recursive: true });
    writeFileSync(lockFile, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString(), what: 'test' }));
    const busy = await cli(['--config', sgConfig(), 'adopt', 'schedule-group', 'u1', '--apply'], env);
    expect(busy.code).toBe(3);
    expect(expectOneSentence(busy.stderr)).toBeNull();
    expect(busy.stderr).toMatch(/another opsctl run is already working on schedule groups of account \d{12} in us-east-1.*pass --wait/);
    expect(calls('TagResource')).toBe(0);

    // --wait: runs in-process; its "waiting" message is the synchronisation point.
    const err = new PassThrough();
    let stderr = '';
    err.on('data', (d) => (stderr += d));
    const out = new PassThrough();
    let stdout = '';
    out.on('data', (d) => (stdout += d));
    const waiting = runCli(['--config', sgConfig(), 'adopt', 'schedule-group', 'u1', '--apply', '--wait', '-o', 'json'], {
      stdout: out, stderr: err, stdin: Readable.from([]), env: { PATH: process.env.PATH, XDG_STATE_HOME: process.env.XDG_STATE_HOME, ...env }, cwd: process.cwd(),
    });
    await eventually('the second adopter waits', async () => /waiting for another opsctl run/.test(stderr));
    expect(calls('TagResource')).toBe(0);
    unlinkSync(lockFile); // the first adopter is done
    expect(await waiting).toBe(0);
    expect(JSON.parse(stdout).items[0].outcome).toBe('adopted');
    expect(existsSync(lockFile)).toBe(false); // released
  });

  it('a lock left by a process that no longer runs is taken over', async () => {
    emu.seedGroup('u1');
    const state = freshState();
    const account = /:(\d{12}):/.exec(emu.groups().find((g) => g.name === 'default')?.arn ?? '')?.[1];
    const lockFile = join(state, 'locks', `scheduler-${account}-us-east-1-${new URL(emu.url).host}`.replace(/[^A-Za-z0-9._-]+/g, '_') + '.lock');
    mkdirSync(join(state, 'locks'), { recursive: true });
    writeFileSync(lockFile, JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), since: '2026-01-01T00:00:00Z', what: 'test' }));
    const r = await cli(['--config', sgConfig(), 'adopt', 'schedule-group', 'u1', '--apply', '-o', 'json'], awsEnv(emu, { OPSCTL_STATE_DIR: state }));
    expect(r.code).toBe(0);
    expect(r.json().items[0].outcome).toBe('adopted');
  });
});

describe('7. named groups are fetched directly', () => {
  it('4 named among 158: GetScheduleGroup + ListTagsForResource per name, no listing', async () => {
    for (let i = 0; i < 158; i++) emu.seedGroup(`g-${String(i).padStart(3, '0')}`);
    const names = ['g-001', 'g-050', 'g-100', 'g-157'];
    emu.resetCallCounts();
    const dry = await cli(['--config', sgConfig(), 'adopt', 'schedule-group', ...names, '-o', 'json'], awsEnv(emu));
    expect(dry.code).toBe(0);
    expect(dry.json().summary.planned).toBe(4);
    expect(emu.callCounts()).toEqual({ GetScheduleGroup: 4, ListTagsForResource: 4 });
    emu.resetCallCounts();
    const r = await cli(['--config', sgConfig(), 'adopt', 'schedule-group', ...names, '--apply', '-o', 'json'], awsEnv(emu));
    expect(r.json().summary.adopted).toBe(4);
    // Plan 4+4, the lock's account read 1, write-time re-read 4+4, tag 4, read-back 4.
    expect(emu.callCounts()).toEqual({ GetScheduleGroup: 9, ListTagsForResource: 12, TagResource: 4 });
    expect(r.json().summary.apiCalls).toBe(25);
  });
});

describe('8. bad endpoints', () => {
  it('--endpoint-url not-a-url is a usage error: exit 2, one sentence, no call made', async () => {
    const r = await cli(['--config', sgConfig(), 'adopt', 'schedule-group', 'g1', '--endpoint-url', 'not-a-url'], awsEnv(emu));
    expect(r.code).toBe(2);
    expect(expectOneSentence(r.stderr)).toBeNull();
    expect(r.stderr).toMatch(/^opsctl: --endpoint-url "not-a-url" is not an http\(s\) URL/);
    const env = await cli(['--config', sgConfig(), 'schedule-groups'], awsEnv(emu, { AWS_ENDPOINT_URL_SCHEDULER: 'ftp://x' }));
    expect(env.code).toBe(2);
    expect(env.stderr).toMatch(/^opsctl: AWS_ENDPOINT_URL_SCHEDULER "ftp:\/\/x" is not an http\(s\) URL/);
    expect(emu.callCounts()).toEqual({});
  });

  it('an endpoint answering HTML: one sentence without SDK internals, exit 3 (listing and apply alike)', async () => {
    emu.seedGroup('u1');
    emu.addFault('html=502');
    for (const args of [['schedule-groups'], ['adopt', 'schedule-group', 'u1', '--apply']]) {
      const r = await cli(['--config', sgConfig(), ...args], awsEnv(emu));
      expect(r.code, args.join(' ')).toBe(3);
      expect(expectOneSentence(r.stderr), args.join(' ')).toBeNull();
      expect(r.stderr).toMatch(/answered scheduler:\w+ with HTTP 502 and a page that is not an AWS answer/);
      expect(r.stderr).not.toMatch(/\$response|Deserialization|hidden field|SyntaxError|Unexpected token/);
    }
  });

  it('HTML on the write only: the run stops with one sentence, exit 3, nothing tagged', async () => {
    emu.seedGroup('u1');
    emu.addFault('html=503,op=TagResource');
    const r = await cli(['--config', sgConfig(), 'adopt', 'schedule-group', 'u1', '--apply'], awsEnv(emu));
    expect(r.code).toBe(3);
    expect(expectOneSentence(r.stderr)).toBeNull();
    expect(r.stderr).toMatch(/answered scheduler:TagResource with HTTP 503/);
    expect(tagsOf('u1')).toEqual({});
  });
});

describe('9. endpoint precedence: flag > environment > config file', () => {
  const dead = 'http://127.0.0.1:9'; // nothing listens on the discard port

  it('resolveEndpoint', () => {
    const env = { AWS_ENDPOINT_URL_SCHEDULER: 'http://svc', AWS_ENDPOINT_URL: 'http://global' };
    expect(resolveEndpoint({ env, endpoint: 'http://flag', configEndpoint: 'http://file' })).toBe('http://flag');
    expect(resolveEndpoint({ env, configEndpoint: 'http://file' })).toBe('http://svc');
    expect(resolveEndpoint({ env: { AWS_ENDPOINT_URL: 'http://global' }, configEndpoint: 'http://file' })).toBe('http://global');
    expect(resolveEndpoint({ env: {}, configEndpoint: 'http://file' })).toBe('http://file');
    expect(resolveEndpoint({ env: { ...env, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true' }, configEndpoint: 'http://file' })).toBeNull();
    expect(resolveEndpoint({ env: { AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true' }, endpoint: 'http://flag' })).toBe('http://flag');
  });

  it('against the emulator: the environment beats scheduleGroups.endpoint; the flag beats both', async () => {
    emu.seedGroup('u1');
    const fileDead = sgConfig({ endpoint: dead, requestTimeout: '2s' });
    const envWins = await cli(['--config', fileDead, 'schedule-groups', '-o', 'json'], awsEnv(emu));
    expect(envWins.code).toBe(0);
    expect(envWins.json().items.map((i: any) => i.name)).toContain('u1');
    const fileOnly = await cli(['--config', sgConfig({ endpoint: emu.url }), 'schedule-groups', '-o', 'json'], awsEnv(emu, { AWS_ENDPOINT_URL_SCHEDULER: '' }));
    expect(fileOnly.code).toBe(0);
    const flagWins = await cli(['--config', fileDead, 'schedule-groups', '--endpoint-url', emu.url, '-o', 'json'], awsEnv(emu, { AWS_ENDPOINT_URL_SCHEDULER: dead }));
    expect(flagWins.code).toBe(0);
    const envDead = await cli(['--config', sgConfig({ endpoint: emu.url }), 'schedule-groups'], awsEnv(emu, { AWS_ENDPOINT_URL_SCHEDULER: dead }));
    expect(envDead.code).toBe(3);
    expect(envDead.stderr).toMatch(/cannot reach the Scheduler endpoint.*127\.0\.0\.1:9/);
  });
});

describe('10. a page token that dies between pages', () => {
  it('the listing restarts once (no group twice) and says so on stderr and in the JSON', async () => {
    for (let i = 0; i < 250; i++) emu.seedGroup(`g-${String(i).padStart(3, '0')}`);
    emu.addFault('expire-token=ListScheduleGroups,page=2');
    const r = await cli(['--config', sgConfig(), 'schedule-groups', '-o', 'json'], awsEnv(emu));
    expect(r.code).toBe(0);
    const names = r.json().items.map((i: any) => i.name);
    expect(names).toHaveLength(251);
    expect(new Set(names).size).toBe(251);
    expect(r.json().summary.warnings).toEqual([expect.stringMatching(/ListScheduleGroups: the page token for page 2 died.*restarted once/)]);
    expect(r.stderr).toMatch(/^opsctl: ListScheduleGroups: the page token for page 2 died/);
    // Tags of the first page were not read twice.
    expect(calls('ListTagsForResource')).toBe(250);
  });

  it('tagSource tagging-api: a GetResources token that dies is restarted the same way', async () => {
    for (let i = 0; i < 250; i++) emu.seedGroup(`g-${String(i).padStart(3, '0')}`, owner(`g-${String(i).padStart(3, '0')}`));
    emu.addFault('expire-token=GetResources,page=2');
    const r = await cli(['--config', sgConfig({ tagSource: 'tagging-api', desiredTags: {} }), 'schedule-groups', '-o', 'json'], awsEnv(emu));
    expect(r.code).toBe(0);
    expect(r.json().summary).toMatchObject({ groups: 251, owned: 250 });
    expect(r.json().summary.warnings).toEqual([expect.stringMatching(/^tag:GetResources: the page token for page 2 died \(PaginationTokenExpiredException\)/)]);
    expect(calls('ListTagsForResource')).toBe(0);
  });

  it('a second death is exit 3 with one sentence', async () => {
    for (let i = 0; i < 250; i++) emu.seedGroup(`g-${String(i).padStart(3, '0')}`);
    emu.addFault('expire-token=ListScheduleGroups,page=2,times=2');
    const r = await cli(['--config', sgConfig(), 'adopt', 'schedule-group', '--all-unowned', '--apply'], awsEnv(emu));
    expect(r.code).toBe(3);
    expect(expectOneSentence(r.stderr)).toBeNull();
    expect(r.stderr).toMatch(/ListScheduleGroups failed twice mid-listing/);
    expect(calls('TagResource')).toBe(0);
  });
});
