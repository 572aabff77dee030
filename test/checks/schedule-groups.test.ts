import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SchedulerEmulator } from '../../src/emulator/scheduler-emulator.js';
import { cli, cliProcess } from '../support/cli.js';
import { AWS_SECRET, awsEnv, emulator, owner, sgConfig } from '../support/aws.js';

let emu: SchedulerEmulator;
beforeEach(async () => {
  emu = await emulator();
});
afterEach(async () => {
  await emu.close();
});

function seedMatrix() {
  emu.seedGroup('owned-a', { ...owner('owned-a'), team: 'payments' });
  emu.seedGroup('bare');
  emu.seedGroup('user-tagged', { env: 'prod', costcenter: 'cc-9' });
  emu.seedGroup('theirs', { ...owner('theirs'), 'alchemy::stack': 'other', team: 'payments' });
  emu.seedGroup('drift-desired', { ...owner('drift-desired'), team: 'wrong', env: 'keep-me' });
  emu.seedGroup('drift-stale', { ...owner('drift-stale'), team: 'payments', 'alchemy::legacy': 'x', keep: 'me' });
  emu.seedGroup('drift-deleting', { ...owner('drift-deleting'), team: 'payments' }, { state: 'DELETING', lastModificationDate: new Date(Date.now() - 3 * 3_600_000) });
  emu.seedGroup('tmp-scratch');
}

const classes = (out: any) => Object.fromEntries(out.items.map((i: any) => [i.name, i.class]));

describe('schedule-groups list', () => {
  it('classifies owned, unowned, foreign, drifted, missing, ignored and default', async () => {
    seedMatrix();
    const cfg = sgConfig({ expected: ['owned-a', 'must-exist'], ignore: ['tmp-*'] });
    const r = await cli(['--config', cfg, 'schedule-groups', '-o', 'json'], awsEnv(emu));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(classes(r.json())).toEqual({
      'owned-a': 'owned',
      bare: 'unowned',
      'user-tagged': 'unowned',
      theirs: 'foreign',
      'drift-desired': 'drifted',
      'drift-stale': 'drifted',
      'drift-deleting': 'deleting',
      'must-exist': 'missing',
      'tmp-scratch': 'ignored',
      default: 'ignored',
    });
    const s = r.json().summary;
    expect(s).toMatchObject({ groups: 10, owned: 1, unowned: 2, foreign: 1, drifted: 2, deleting: 1, missing: 1, ignored: 2 });
    const stale = r.json().items.find((i: any) => i.name === 'drift-stale');
    expect(stale.diff).toBe('-alchemy::legacy');
  });

  it('filters by --class and --prefix, counts schedules, and reads 1,000 groups across pages with max-size pages', async () => {
    await emu.close();
    emu = await emulator({ maxGroups: 2000 });
    for (let i = 0; i < 1000; i++) emu.seedGroup(`g-${String(i).padStart(4, '0')}`, i % 2 ? owner(`g-${String(i).padStart(4, '0')}`) : {});
    emu.seedSchedule('g-0001', 's1');
    emu.seedSchedule('g-0001', 's2');
    emu.resetCallCounts();
    const r = await cli(['--config', sgConfig({ desiredTags: {} }), 'schedule-groups', '--class', 'unowned', '-o', 'json'], awsEnv(emu));
    expect(r.code).toBe(0);
    const out = r.json();
    expect(out.summary).toMatchObject({ groups: 1001, unowned: 500, owned: 500, shown: 500 });
    expect(new Set(out.items.map((i: any) => i.name)).size).toBe(500);
    const calls = emu.callCounts();
    expect(calls.ListScheduleGroups).toBe(11); // 1,001 groups at 100 a page
    expect(calls.ListTagsForResource).toBe(1000); // default is never read
    const p = await cli(['--config', sgConfig({ desiredTags: {} }), 'schedule-groups', '--prefix', 'g-000', '--with-schedules', '-o', 'json'], awsEnv(emu));
    const items = p.json().items;
    expect(items).toHaveLength(10);
    expect(items.find((i: any) => i.name === 'g-0001').schedules).toBe(2);
    expect(items.find((i: any) => i.name === 'g-0002').schedules).toBe(0);
  });

  it('rejects an unknown --class with exit 2', async () => {
    const r = await cli(['--config', sgConfig(), 'schedule-groups', '--class', 'bogus'], awsEnv(emu));
    expect(r.code).toBe(2);
  });
});

describe('adopt schedule-group', () => {
  it('dry run changes nothing; --apply adopts exactly the unowned groups, keeps user tags; a re-run is a no-op', async () => {
    seedMatrix();
    const cfg = sgConfig({ ignore: ['tmp-*'] });
    const before = emu.snapshot();
    const dry = await cli(['--config', cfg, 'adopt', 'schedule-group', '--all-unowned', '-o', 'json'], awsEnv(emu));
    expect(dry.code).toBe(0);
    expect(dry.json().items.map((i: any) => i.name).sort()).toEqual(['bare', 'user-tagged']);
    expect(emu.snapshot()).toBe(before);

    const r = await cli(['--config', cfg, 'adopt', 'schedule-group', '--all-unowned', '--apply', '-o', 'json'], awsEnv(emu));
    expect(r.code).toBe(0);
    expect(r.json().summary).toMatchObject({ planned: 2, adopted: 2, errored: 0 });
    const g = Object.fromEntries(emu.groups().map((x) => [x.name, x.tags]));
    expect(g['user-tagged']).toEqual({ ...owner('user-tagged'), team: 'payments', env: 'prod', costcenter: 'cc-9' });
    expect(g.bare).toEqual({ ...owner('bare'), team: 'payments' });
    expect(g.theirs['alchemy::stack']).toBe('other');
    expect(g['tmp-scratch']).toEqual({});

    const after = emu.snapshot();
    const again = await cli(['--config', cfg, 'adopt', 'schedule-group', '--all-unowned', '--apply', '-o', 'json'], awsEnv(emu));
    expect(again.json().summary.planned).toBe(0);
    expect(emu.snapshot()).toBe(after);
  });

  it('a foreign group is refused without --force and taken over with it; named owned groups are already-owned', async () => {
    seedMatrix();
    const cfg = sgConfig();
    const refused = await cli(['--config', cfg, 'adopt', 'schedule-group', 'theirs', 'owned-a', 'nope', '--apply', '-o', 'json'], awsEnv(emu));
    expect(refused.code).toBe(1); // named groups refused or absent fail the run
    const byName = Object.fromEntries(refused.json().items.map((i: any) => [i.name, i.outcome]));
    expect(byName).toEqual({ theirs: 'refused', 'owned-a': 'already-owned', nope: 'refused' });
    expect(emu.groups().find((x) => x.name === 'theirs')?.tags['alchemy::stack']).toBe('other');
    const forced = await cli(['--config', cfg, 'adopt', 'schedule-group', 'theirs', '--force', '--apply', '-o', 'json'], awsEnv(emu));
    expect(forced.json().items[0].outcome).toBe('adopted');
    expect(emu.groups().find((x) => x.name === 'theirs')?.tags).toEqual({ ...owner('theirs'), team: 'payments' });
  });

  it('a ConflictException burst below the bound converges; above it the group errors clearly (exit 1)', async () => {
    emu.seedGroup('bare');
    emu.injectFault('TagResource', 'ConflictException', 4);
    const ok = await cli(['--config', sgConfig({ conflictRetries: 5 }), 'adopt', 'schedule-group', 'bare', '--apply', '-o', 'json'], awsEnv(emu));
    expect(ok.code).toBe(0);
    expect(ok.json().summary).toMatchObject({ adopted: 1, conflictsRetried: 4 });

    emu.seedGroup('bare2');
    emu.injectFault('TagResource', 'ConflictException', 10);
    const bad = await cli(['--config', sgConfig({ conflictRetries: 5 }), 'adopt', 'schedule-group', 'bare2', '--apply', '-o', 'json'], awsEnv(emu));
    expect(bad.code).toBe(1);
    const item = bad.json().items[0];
    expect(item.outcome).toBe('errored');
    expect(item.detail).toMatch(/still ConflictException after 5 tries/);
    expect(emu.groups().find((x) => x.name === 'bare2')?.tags).toEqual({});
  });

  it('throttling is absorbed by the SDK retry and counted', async () => {
    seedMatrix();
    emu.injectFault('ListTagsForResource', 'ThrottlingException', 2);
    const r = await cli(['--config', sgConfig(), 'schedule-groups', '-o', 'json'], awsEnv(emu));
    expect(r.code).toBe(0);
    expect(r.json().summary.throttled).toBe(2);
    expect(classes(r.json()).bare).toBe('unowned');
  });

  it('never adopts unscoped', async () => {
    const r = await cli(['--config', sgConfig(), 'adopt', 'schedule-group', '--apply'], awsEnv(emu));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/never adopts unscoped/);
  });
});

describe('schedule-groups reconcile', () => {
  it('converges drifted groups without touching user tags, creates missing ones, and a re-run is a no-op', async () => {
    seedMatrix();
    const cfg = sgConfig({ expected: ['must-exist'], ignore: ['tmp-*'] });
    const before = emu.snapshot();
    const dry = await cli(['--config', cfg, 'schedule-groups', 'reconcile', '--create-missing', '-o', 'json'], awsEnv(emu));
    expect(emu.snapshot()).toBe(before);
    const plan = Object.fromEntries(dry.json().items.map((i: any) => [i.name, i.outcome]));
    // drift-deleting is DELETING and not expected: not selected (an expected one would be re-created).
    expect(plan).toEqual({ 'drift-desired': 'planned', 'drift-stale': 'planned', 'must-exist': 'planned' });

    const r = await cli(['--config', cfg, 'schedule-groups', 'reconcile', '--create-missing', '--apply', '-o', 'json'], awsEnv(emu));
    expect(r.code).toBe(0);
    expect(r.json().summary).toMatchObject({ reconciled: 2, created: 1, refused: 0, errored: 0 });
    const g = Object.fromEntries(emu.groups().map((x) => [x.name, x.tags]));
    expect(g['drift-desired']).toEqual({ ...owner('drift-desired'), team: 'payments', env: 'keep-me' });
    expect(g['drift-stale']).toEqual({ ...owner('drift-stale'), team: 'payments', keep: 'me' });
    expect(g['must-exist']).toEqual({ ...owner('must-exist'), team: 'payments' });

    const again = await cli(['--config', cfg, 'schedule-groups', 'reconcile', '--create-missing', '--apply', '-o', 'json'], awsEnv(emu));
    expect(again.json().summary).toMatchObject({ planned: 0, reconciled: 0 });
  });

  it('creates a missing group through a ConflictException window (as while its predecessor is DELETING)', async () => {
    const cfg = sgConfig({ expected: ['phoenix'], conflictRetries: 10 });
    emu.injectFault('CreateScheduleGroup', 'ConflictException', 3);
    const r = await cli(['--config', cfg, 'schedule-groups', 'reconcile', '--create-missing', '--apply', '-o', 'json'], awsEnv(emu));
    expect(r.stderr).toBe('');
    expect(r.json().items[0]).toMatchObject({ name: 'phoenix', outcome: 'created' });
    expect(r.json().summary.conflictsRetried).toBe(3);
    const g = emu.groups().find((x) => x.name === 'phoenix');
    expect(g?.state).toBe('ACTIVE');
    expect(g?.tags).toEqual({ ...owner('phoenix'), team: 'payments' });
  });

  it('a group deleted out of band is re-created through its DELETING window (the reference engine\'s redeploy)', async () => {
    await emu.close();
    // A window long enough that the run surely starts inside it, even on a loaded machine.
    emu = await emulator({ deletingMs: 2000 });
    emu.seedGroup('phoenix', { ...owner('phoenix'), team: 'payments' });
    const cfg = sgConfig({ expected: ['phoenix'], conflictRetries: 100, conflictDelay: '50ms' });
    const { SchedulerClient, DeleteScheduleGroupCommand } = await import('@aws-sdk/client-scheduler');
    const c = new SchedulerClient({ region: 'us-east-1', endpoint: emu.url, credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
    await c.send(new DeleteScheduleGroupCommand({ Name: 'phoenix' }));
    c.destroy();
    const during = await cli(['--config', cfg, 'schedule-groups', 'reconcile', '--create-missing', '--apply', '-o', 'json'], awsEnv(emu));
    expect(during.json().items[0]).toMatchObject({ name: 'phoenix', class: 'deleting', action: 'recreate', outcome: 'created' });
    const g = emu.groups().find((x) => x.name === 'phoenix');
    expect(g?.state).toBe('ACTIVE');
    expect(g?.tags).toEqual({ ...owner('phoenix'), team: 'payments' });
  });
});

describe('AWS errors', () => {
  it('AccessDenied names the denied action; exit 3; the secret key never printed', async () => {
    emu.injectFault('ListScheduleGroups', 'AccessDeniedException', 1);
    const r = await cli(['--config', sgConfig(), 'schedule-groups'], awsEnv(emu));
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^opsctl: AWS denied scheduler:ListScheduleGroups/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr + r.stdout).not.toContain(AWS_SECRET);
  });

  it('an unknown region and a missing region are one sentence, exit 3', async () => {
    const env = awsEnv(emu, { AWS_REGION: 'ap-moon-9', AWS_ENDPOINT_URL_SCHEDULER: '' });
    const r = await cli(['--config', sgConfig(), 'schedule-groups'], env);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/unknown AWS region "ap-moon-9"/);
    const r2 = await cli(['--config', sgConfig(), 'schedule-groups'], awsEnv(emu, { AWS_REGION: '' }));
    expect(r2.code).toBe(3);
    expect(r2.stderr).toMatch(/no AWS region is set/);
  });

  it('missing credentials: one sentence, exit 3 (subprocess with an empty AWS environment)', async () => {
    const r = await cliProcess(['--config', sgConfig(), 'schedule-groups'], {
      AWS_ENDPOINT_URL_SCHEDULER: emu.url,
      AWS_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: '/nonexistent/config',
      AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials',
      HOME: '/nonexistent',
    });
    expect(r.code).toBe(3);
    expect(r.stderr.trim()).toMatch(/^opsctl: no AWS credentials found/);
    expect(r.stderr).not.toMatch(/NodeVersionSupportWarning|\n\s+at /);
  });
});
