// Tag reads run 32 at a time by default; when the Scheduler answers ThrottlingException the
// listing backs off (fewer calls in flight), the SDK retries the throttled calls, and the
// result is complete and correct. Faults come from the emulator, through the real SDK.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SchedulerEmulator } from '../../src/emulator/scheduler-emulator.js';
import { cli } from '../support/cli.js';
import { awsEnv, emulator, owner, sgConfig } from '../support/aws.js';

let emu: SchedulerEmulator;
beforeEach(async () => {
  emu = await emulator({ maxGroups: 500 });
  for (let i = 0; i < 120; i++) emu.seedGroup(`g-${String(i).padStart(3, '0')}`, i % 3 ? owner(`g-${String(i).padStart(3, '0')}`) : { team: 'other' });
});
afterEach(async () => {
  await emu.close();
});

describe('schedule-groups tag reads under throttling', () => {
  it('without throttling: the default concurrency reads every group once, and reports no back-off', async () => {
    emu.resetCallCounts();
    const r = await cli(['--config', sgConfig({ desiredTags: {} }), 'schedule-groups', '-o', 'json'], awsEnv(emu));
    expect(r.code).toBe(0);
    const out = r.json();
    expect(out.items).toHaveLength(121);
    expect(emu.callCounts().ListTagsForResource).toBe(120);
    expect(out.summary.throttled).toBe(0);
    expect(out.summary.concurrencyLowest).toBeUndefined();
  });

  it('backs off on ThrottlingException: every group still read and classified, the lowest concurrency reported', async () => {
    emu.injectFault('ListTagsForResource', 'ThrottlingException', 5);
    emu.resetCallCounts();
    const r = await cli(['--config', sgConfig({ desiredTags: {} }), 'schedule-groups', '-o', 'json'], awsEnv(emu));
    expect(r.code).toBe(0);
    const out = r.json();
    expect(out.items).toHaveLength(121);
    const classes = Object.fromEntries(out.items.map((i: any) => [i.name, i.class]));
    expect(classes['g-001']).toBe('owned');
    expect(classes['g-000']).toBe('unowned');
    // Five throttled answers, each retried by the SDK: 125 tag reads in all.
    expect(out.summary.throttled).toBe(5);
    expect(emu.callCounts().ListTagsForResource).toBe(125);
    expect(out.summary.concurrencyLowest).toBeGreaterThanOrEqual(1);
    expect(out.summary.concurrencyLowest).toBeLessThanOrEqual(16);
  });

  it('a configured concurrency is the ceiling: 1 reads one group at a time and cannot back off further', async () => {
    emu.injectFault('ListTagsForResource', 'ThrottlingException', 2);
    const r = await cli(['--config', sgConfig({ desiredTags: {}, concurrency: 1 }), 'schedule-groups', '-o', 'json'], awsEnv(emu));
    expect(r.code).toBe(0);
    expect(r.json().items).toHaveLength(121);
    expect(r.json().summary.throttled).toBe(2);
    expect(r.json().summary.concurrencyLowest).toBeUndefined();
  });
});
