// scheduleGroups.tagSource "tagging-api": tags read in bulk with the Resource Groups Tagging API
// (GetResources), ListScheduleGroups still the truth for existence, and every group GetResources
// does not return (never tagged, or the index lags) read with ListTagsForResource.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SchedulerEmulator } from '../../src/emulator/scheduler-emulator.js';
import { resolveTaggingEndpoint } from '../../src/aws/scheduler-api.js';
import { cli } from '../support/cli.js';
import { AWS_SECRET, awsEnv, emulator, owner, sgConfig } from '../support/aws.js';

let emu: SchedulerEmulator;
beforeEach(async () => {
  emu = await emulator({ maxGroups: 2000 });
});
afterEach(async () => {
  await emu.close();
});

const byName = (out: any) => Object.fromEntries(out.items.map((i: any) => [i.name, { class: i.class, tags: i.tags, reasons: i.reasons, changes: i.changes }]));

function seedMatrix() {
  emu.seedGroup('owned-a', { ...owner('owned-a'), team: 'payments' });
  emu.seedGroup('bare'); // never tagged: GetResources does not return it
  emu.seedGroup('bare-2');
  emu.seedGroup('user-tagged', { env: 'prod', costcenter: 'cc-9' });
  emu.seedGroup('emptied', {}, { everTagged: true }); // tagged once, every tag removed since: returned with no tags
  emu.seedGroup('theirs', { ...owner('theirs'), 'alchemy::stack': 'other', team: 'payments' });
  emu.seedGroup('drift-desired', { ...owner('drift-desired'), team: 'wrong', env: 'keep-me' });
  emu.seedGroup('drift-stale', { ...owner('drift-stale'), team: 'payments', 'alchemy::legacy': 'x', keep: 'me' });
  emu.seedGroup('drift-deleting', { ...owner('drift-deleting'), team: 'payments' }, { state: 'DELETING', lastModificationDate: new Date(Date.now() - 3 * 3_600_000) });
  emu.seedGroup('tmp-scratch');
}

describe('schedule-groups with tagSource "tagging-api"', () => {
  it('classifies exactly as per-group on the same emulator, reading only never-tagged groups one by one', async () => {
    seedMatrix();
    const extra = { expected: ['owned-a', 'must-exist'], ignore: ['tmp-*'] };
    emu.resetCallCounts();
    const perGroup = await cli(['--config', sgConfig(extra), 'schedule-groups', '-o', 'json'], awsEnv(emu));
    const perGroupCalls = emu.callCounts();
    emu.resetCallCounts();
    const bulk = await cli(['--config', sgConfig({ ...extra, tagSource: 'tagging-api' }), 'schedule-groups', '-o', 'json'], awsEnv(emu));
    const bulkCalls = emu.callCounts();
    expect(bulk.stderr).toBe('');
    expect(bulk.code).toBe(perGroup.code);
    expect(byName(bulk.json())).toEqual(byName(perGroup.json()));
    const { apiCalls: bulkApiCalls, ...bulkSummary } = bulk.json().summary;
    const { apiCalls: perGroupApiCalls, ...perGroupSummary } = perGroup.json().summary;
    expect(bulkSummary).toEqual(perGroupSummary);
    // opsctl's own count (both clients, every attempt) agrees with the emulator's.
    expect([perGroupApiCalls, bulkApiCalls]).toEqual([10, 4]);
    expect(byName(bulk.json())).toMatchObject({
      'owned-a': { class: 'owned' },
      bare: { class: 'unowned', tags: {} },
      'bare-2': { class: 'unowned' },
      'user-tagged': { class: 'unowned' },
      emptied: { class: 'unowned', tags: {} },
      theirs: { class: 'foreign' },
      'drift-desired': { class: 'drifted' },
      'drift-stale': { class: 'drifted' },
      'drift-deleting': { class: 'deleting' },
      'must-exist': { class: 'missing' },
      'tmp-scratch': { class: 'ignored' },
      default: { class: 'ignored' },
    });
    expect(perGroupCalls).toEqual({ ListScheduleGroups: 1, ListTagsForResource: 9 });
    // Only `bare` and `bare-2` are absent from GetResources (tmp-scratch and default are ignored, never read).
    expect(bulkCalls).toEqual({ ListScheduleGroups: 1, GetResources: 1, ListTagsForResource: 2 });
  });

  it('1,000 groups, about half never tagged: ceil(tagged/100) GetResources calls and ListTagsForResource only for the never-tagged', async () => {
    let tagged = 0;
    for (let i = 0; i < 1000; i++) {
      const name = `g-${String(i).padStart(4, '0')}`;
      // ~half never tagged; among the tagged, owned, user-tagged and foreign groups.
      const tags = i % 2 === 0 ? {} : i % 3 === 0 ? { env: 'prod' } : i % 5 === 0 ? { ...owner(name), 'alchemy::stack': 'other' } : owner(name);
      if (Object.keys(tags).length) tagged += 1;
      emu.seedGroup(name, tags);
    }
    const neverTagged = 1000 - tagged;
    expect(neverTagged).toBe(500);
    const cfg = { desiredTags: {} };
    emu.resetCallCounts();
    const perGroup = await cli(['--config', sgConfig(cfg), 'schedule-groups', '-o', 'json'], awsEnv(emu));
    emu.resetCallCounts();
    const bulk = await cli(['--config', sgConfig({ ...cfg, tagSource: 'tagging-api' }), 'schedule-groups', '-o', 'json'], awsEnv(emu));
    const calls = emu.callCounts();
    expect(bulk.code).toBe(0);
    expect(byName(bulk.json())).toEqual(byName(perGroup.json()));
    expect(bulk.json().summary).toMatchObject({ groups: 1001, unowned: 500 + 167, owned: expect.any(Number), foreign: expect.any(Number) });
    expect(calls.GetResources).toBe(Math.ceil(tagged / 100)); // 5
    expect(calls.ListTagsForResource).toBe(neverTagged); // default is ignored, never read
    expect(calls.ListScheduleGroups).toBe(11);
  });

  it('a group tagged since the last listing is absent from a lagging index and still read one by one', async () => {
    // Model the index lag: tags exist, GetResources does not know the group yet.
    emu.seedGroup('fresh', owner('fresh'), { everTagged: false });
    emu.resetCallCounts();
    const r = await cli(['--config', sgConfig({ desiredTags: {}, tagSource: 'tagging-api' }), 'schedule-groups', '-o', 'json'], awsEnv(emu));
    expect(byName(r.json()).fresh.class).toBe('owned');
    expect(emu.callCounts()).toEqual({ ListScheduleGroups: 1, GetResources: 1, ListTagsForResource: 1 });
  });

  it('AccessDenied on GetResources names tag:GetResources in one sentence; exit 3; the secret key never printed', async () => {
    emu.seedGroup('a', owner('a'));
    emu.injectFault('GetResources', 'AccessDeniedException', 1);
    const r = await cli(['--config', sgConfig({ tagSource: 'tagging-api' }), 'schedule-groups'], awsEnv(emu));
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^opsctl: AWS denied tag:GetResources/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr + r.stdout).not.toContain(AWS_SECRET);
  });

  it('a throttling burst on GetResources is absorbed by the SDK retries', async () => {
    emu.seedGroup('a', owner('a'));
    emu.injectFault('GetResources', 'ThrottlingException', 1);
    const r = await cli(['--config', sgConfig({ desiredTags: {}, tagSource: 'tagging-api' }), 'schedule-groups', '-o', 'json'], awsEnv(emu));
    expect(r.code).toBe(0);
    expect(byName(r.json()).a.class).toBe('owned');
    expect(emu.callCounts().GetResources).toBe(2);
    expect(r.json().summary.apiCalls).toBe(3); // ListScheduleGroups once, GetResources twice (the retry counted)
  });

  it('rejects an unknown tagSource with exit 2', async () => {
    const r = await cli(['--config', sgConfig({ tagSource: 'bulk' }), 'schedule-groups'], awsEnv(emu));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('tagSource');
  });
});

describe('the Tagging API endpoint', () => {
  it('AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API, else the Scheduler override, else AWS_ENDPOINT_URL', () => {
    expect(resolveTaggingEndpoint({ env: { AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API: 'http://t', AWS_ENDPOINT_URL_SCHEDULER: 'http://s' }, endpoint: 'http://flag' })).toBe('http://t');
    expect(resolveTaggingEndpoint({ env: { AWS_ENDPOINT_URL_SCHEDULER: 'http://s' }, endpoint: 'http://flag' })).toBe('http://flag');
    expect(resolveTaggingEndpoint({ env: { AWS_ENDPOINT_URL_SCHEDULER: 'http://s', AWS_ENDPOINT_URL: 'http://all' } })).toBe('http://s');
    expect(resolveTaggingEndpoint({ env: { AWS_ENDPOINT_URL: 'http://all' } })).toBe('http://all');
    expect(resolveTaggingEndpoint({ env: {} })).toBeNull();
    expect(resolveTaggingEndpoint({ env: { AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true', AWS_ENDPOINT_URL_SCHEDULER: 'http://s' } })).toBeNull();
  });
});
