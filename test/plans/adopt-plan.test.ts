import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from '../support/cli.js';
import { awsEnv, emulator, owner, OWNER, sgConfig } from '../support/aws.js';
import type { SchedulerEmulator } from '../../src/emulator/scheduler-emulator.js';
import type { PlanFile } from '../../src/plans/plan-file.js';

let emu: SchedulerEmulator;
let other: SchedulerEmulator;
let cwd: string;

beforeAll(async () => {
  emu = await emulator();
  other = await emulator({ accountId: '210987654321' });
  cwd = mkdtempSync(join(tmpdir(), 'opsctl-planaws-'));
});
afterAll(async () => {
  await emu.close();
  await other.close();
});

describe('adopt schedule-group plans (Scheduler emulator)', () => {
  it('records each group\'s tags and the account and region; applies exactly the planned groups; one whose tags changed since is race-lost and left as it is', async () => {
    emu.seedGroup('bare', {});
    emu.seedGroup('user-tagged', { env: 'prod' });
    const cfg = sgConfig();
    const file = join(cwd, 'adopt.json');
    const dry = await cli(['--config', cfg, 'adopt', 'schedule-group', '--all-unowned', '--plan-out', file], awsEnv(emu), { cwd });
    expect(dry.code, dry.stderr).toBe(0);
    const plan = JSON.parse(readFileSync(file, 'utf8')) as PlanFile;
    expect(plan.kind).toBe('aws');
    expect(plan.targets[0]!.identity).toEqual({ kind: 'aws', account: '123456789012', region: 'us-east-1' });
    const images = Object.fromEntries(plan.targets[0]!.items.map((i) => [i.item.id, i.image]));
    expect(images).toEqual({ bare: { tags: {} }, 'user-tagged': { tags: { env: 'prod' } } });
    expect(readFileSync(file, 'utf8')).not.toContain('wJalrXUtnFEMI');

    // Since the plan: someone tags user-tagged; a new unowned group appears.
    emu.seedGroup('user-tagged', { env: 'staging' });
    emu.seedGroup('newcomer', {});
    const r = await cli(['--config', cfg, 'apply', file, '--yes', '-o', 'json'], awsEnv(emu), { cwd });
    expect(r.code, r.stderr).toBe(0);
    const out = r.json();
    expect(out.summary.plan.command).toBe('adopt schedule-group');
    const byName = Object.fromEntries(out.items.map((i: { id: string; outcome: string; detail?: string }) => [i.id, i]));
    expect(byName.bare.outcome).toBe('adopted');
    expect(byName['user-tagged'].outcome).toBe('race-lost');
    expect(byName['user-tagged'].detail).toBe('changed since the plan was written');
    expect(byName.newcomer).toBeUndefined();
    const g = Object.fromEntries(emu.groups().map((x) => [x.name, x.tags]));
    expect(g.bare).toEqual({ ...owner('bare'), team: 'payments' });
    expect(g['user-tagged']).toEqual({ env: 'staging' });
    expect(g.newcomer).toEqual({});
  });

  it('a plan made in one account is refused in another: exit 2, nothing written', async () => {
    emu.seedGroup('lonely', {});
    other.seedGroup('lonely', {});
    const cfg = sgConfig();
    const file = join(cwd, 'account.json');
    expect((await cli(['--config', cfg, 'adopt', 'schedule-group', 'lonely', '--plan-out', file], awsEnv(emu), { cwd })).code).toBe(0);
    const before = other.snapshot();
    const r = await cli(['--config', cfg, 'apply', file, '--yes'], awsEnv(other), { cwd });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('this plan was made for AWS account 123456789012 in us-east-1, not AWS account 210987654321 in us-east-1');
    expect(other.snapshot()).toBe(before);
  });

  it('over targets × regions: one file with each region\'s groups and identity; a region whose account changed is refused before any region is written', async () => {
    const [east, west, stranger] = await Promise.all([emulator({ region: 'us-east-1' }), emulator({ region: 'eu-west-1' }), emulator({ region: 'eu-west-1', accountId: '210987654321' })]);
    try {
      east.seedGroup('u1');
      west.seedGroup('u3');
      stranger.seedGroup('u3');
      const cfgFor = (westUrl: string) => {
        const f = join(cwd, `fleet-${Math.random().toString(36).slice(2)}.json`);
        writeFileSync(
          f,
          JSON.stringify({
            scheduleGroups: { ownerTags: OWNER, ownerKeyPrefix: 'alchemy::', desiredTags: { team: 'payments' }, conflictDelay: '10ms' },
            targets: { x: { aws: { regions: ['us-east-1', 'eu-west-1'], endpoints: { 'us-east-1': east.url, 'eu-west-1': westUrl } } } },
          }),
        );
        return f;
      };
      const e = { ...awsEnv(east), AWS_ENDPOINT_URL_SCHEDULER: '' };
      const file = join(cwd, 'fleet-adopt.json');
      const good = cfgFor(west.url);
      const dry = await cli(['--config', good, 'adopt', 'schedule-group', '--all-unowned', '--all-targets', '--plan-out', file], e, { cwd });
      expect(dry.code, dry.stderr).toBe(0);
      const plan = JSON.parse(readFileSync(file, 'utf8')) as PlanFile;
      expect(plan.targets.map((t) => [t.name, t.identity, t.items.map((i) => i.item.id)])).toEqual([
        ['x/eu-west-1', { kind: 'aws', account: '123456789012', region: 'eu-west-1' }, ['u3']],
        ['x/us-east-1', { kind: 'aws', account: '123456789012', region: 'us-east-1' }, ['u1']],
      ]);
      const snaps = () => [east.snapshot(), west.snapshot(), stranger.snapshot()];
      const before = snaps();
      const refused = await cli(['--config', cfgFor(stranger.url), 'apply', file, '--yes'], e, { cwd });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('x/eu-west-1: this plan was made for AWS account 123456789012 in eu-west-1, not AWS account 210987654321 in eu-west-1');
      expect(snaps()).toEqual(before);
      const r = await cli(['--config', good, 'apply', file, '--yes', '-o', 'json'], e, { cwd });
      expect(r.code, r.stderr).toBe(0);
      expect(r.json().items.map((i: { target: string; region: string; id: string; outcome: string }) => `${i.target}/${i.region}/${i.id}:${i.outcome}`).sort()).toEqual([
        'x/eu-west-1/u3:adopted',
        'x/us-east-1/u1:adopted',
      ]);
    } finally {
      await Promise.all([east.close(), west.close(), stranger.close()]);
    }
  });
});

describe('schedule-groups reconcile plans (Scheduler emulator)', () => {
  it('reconciles the planned drifted group; one re-tagged since the plan is race-lost and left as it is', async () => {
    emu.seedGroup('drift-a', { ...owner('drift-a'), team: 'wrong' });
    emu.seedGroup('drift-b', { ...owner('drift-b'), team: 'wrong' });
    const cfg = sgConfig();
    const file = join(cwd, 'reconcile.json');
    const dry = await cli(['--config', cfg, 'schedule-groups', 'reconcile', 'drift-a', 'drift-b', '--plan-out', file], awsEnv(emu), { cwd });
    expect(dry.code, dry.stderr).toBe(0);
    emu.seedGroup('drift-b', { ...owner('drift-b'), team: 'other-wrong' });
    const r = await cli(['--config', cfg, 'apply', file, '--yes', '-o', 'json'], awsEnv(emu), { cwd });
    expect(r.code, r.stderr).toBe(0);
    const byName = Object.fromEntries(r.json().items.map((i: { id: string; outcome: string }) => [i.id, i.outcome]));
    expect(byName).toEqual({ 'drift-a': 'reconciled', 'drift-b': 'race-lost' });
    const g = Object.fromEntries(emu.groups().map((x) => [x.name, x.tags]));
    expect(g['drift-a'].team).toBe('payments');
    expect(g['drift-b'].team).toBe('other-wrong');
  });
});
