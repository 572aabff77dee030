import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from '../support/cli.js';
import { awsEnv, emulator, owner, sgConfig } from '../support/aws.js';
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
});
