// The emulator's Resource Groups Tagging API (GetResources, awsJson1_1), driven by the real SDK client.
import { afterEach, describe, expect, it } from 'vitest';
import { CreateScheduleGroupCommand, SchedulerClient, TagResourceCommand, UntagResourceCommand } from '@aws-sdk/client-scheduler';
import { GetResourcesCommand, ResourceGroupsTaggingAPIClient, paginateGetResources } from '@aws-sdk/client-resource-groups-tagging-api';
import { startSchedulerEmulator, type EmulatorOptions, type SchedulerEmulator } from '../../src/emulator/scheduler-emulator.js';

const arnOf = (name: string) => `arn:aws:scheduler:us-east-1:123456789012:schedule-group/${name}`;
const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' };
const open: Array<{ emu: SchedulerEmulator; tagging: ResourceGroupsTaggingAPIClient; scheduler: SchedulerClient }> = [];

async function setup(opts: EmulatorOptions = {}) {
  const emu = await startSchedulerEmulator(opts);
  const tagging = new ResourceGroupsTaggingAPIClient({ region: 'us-east-1', endpoint: emu.url, credentials, maxAttempts: 1 });
  const scheduler = new SchedulerClient({ region: 'us-east-1', endpoint: emu.url, credentials });
  const t = { emu, tagging, scheduler };
  open.push(t);
  return t;
}

afterEach(async () => {
  for (const { emu, tagging, scheduler } of open.splice(0)) {
    tagging.destroy();
    scheduler.destroy();
    await emu.close();
  }
});

async function allMappings(tagging: ResourceGroupsTaggingAPIClient, perPage = 100) {
  const out: Record<string, Record<string, string>> = {};
  for await (const page of paginateGetResources({ client: tagging, pageSize: perPage }, { ResourceTypeFilters: ['scheduler:schedule-group'] })) {
    for (const m of page.ResourceTagMappingList ?? []) out[m.ResourceARN as string] = Object.fromEntries((m.Tags ?? []).map((t) => [t.Key, t.Value]));
  }
  return out;
}

describe('emulator: Resource Groups Tagging API GetResources', () => {
  it('returns only groups that are or ever were tagged: never-tagged groups (and `default`) are absent', async () => {
    const { emu, tagging, scheduler } = await setup();
    emu.seedGroup('seeded-tagged', { team: 'a' });
    emu.seedGroup('seeded-bare');
    emu.seedGroup('seeded-was-tagged', {}, { everTagged: true });
    await scheduler.send(new CreateScheduleGroupCommand({ Name: 'created-tagged', Tags: [{ Key: 'k', Value: 'v' }] }));
    await scheduler.send(new CreateScheduleGroupCommand({ Name: 'created-bare' }));
    await scheduler.send(new CreateScheduleGroupCommand({ Name: 'tagged-later' }));
    await scheduler.send(new TagResourceCommand({ ResourceArn: arnOf('tagged-later'), Tags: [{ Key: 'x', Value: '1' }] }));
    // Tagged, then every tag removed: still returned, with no tags.
    await scheduler.send(new UntagResourceCommand({ ResourceArn: arnOf('tagged-later'), TagKeys: ['x'] }));
    emu.resetCallCounts();
    expect(await allMappings(tagging)).toEqual({
      [arnOf('created-tagged')]: { k: 'v' },
      [arnOf('seeded-tagged')]: { team: 'a' },
      [arnOf('seeded-was-tagged')]: {},
      [arnOf('tagged-later')]: {},
    });
    expect(emu.callCounts()).toEqual({ GetResources: 1 });
  });

  it('pages by ResourcesPerPage (max 100) with a PaginationToken; the last page answers an empty token', async () => {
    const { emu, tagging } = await setup({ maxGroups: 1000 });
    for (let i = 0; i < 250; i++) emu.seedGroup(`g-${String(i).padStart(3, '0')}`, i % 2 ? { n: String(i) } : {});
    emu.resetCallCounts();
    const first = await tagging.send(new GetResourcesCommand({ ResourceTypeFilters: ['scheduler:schedule-group'], ResourcesPerPage: 100 }));
    expect(first.ResourceTagMappingList).toHaveLength(100);
    expect(first.PaginationToken).toBeTruthy();
    const all = await allMappings(tagging);
    expect(Object.keys(all)).toHaveLength(125);
    expect(all[arnOf('g-249')]).toEqual({ n: '249' });
    expect(emu.callCounts().GetResources).toBe(1 + 2);
    const last = await tagging.send(new GetResourcesCommand({ ResourceTypeFilters: ['scheduler:schedule-group'], ResourcesPerPage: 100, PaginationToken: first.PaginationToken }));
    expect(last.ResourceTagMappingList).toHaveLength(25);
    expect(last.PaginationToken).toBe('');
    // Other resource types: nothing. Too large a page: InvalidParameterException.
    const other = await tagging.send(new GetResourcesCommand({ ResourceTypeFilters: ['ec2:instance'] }));
    expect(other.ResourceTagMappingList).toEqual([]);
    await expect(tagging.send(new GetResourcesCommand({ ResourcesPerPage: 101 }))).rejects.toMatchObject({ name: 'InvalidParameterException' });
    await expect(tagging.send(new GetResourcesCommand({ PaginationToken: 'garbage' }))).rejects.toMatchObject({ name: 'PaginationTokenExpiredException' });
  });

  it('fault injection and latency apply to GetResources like any other operation', async () => {
    const { emu, tagging } = await setup();
    emu.seedGroup('a', { k: 'v' });
    emu.injectFault('GetResources', 'AccessDeniedException', 1);
    await expect(tagging.send(new GetResourcesCommand({}))).rejects.toMatchObject({ name: 'AccessDeniedException', $metadata: { httpStatusCode: 403 } });
    emu.injectFault('*', 'ThrottlingException', 1);
    await expect(tagging.send(new GetResourcesCommand({}))).rejects.toMatchObject({ name: 'ThrottlingException' });
    emu.setLatency(150);
    const t = performance.now();
    const ok = await tagging.send(new GetResourcesCommand({}));
    expect(performance.now() - t).toBeGreaterThanOrEqual(140);
    expect(ok.ResourceTagMappingList).toEqual([{ ResourceARN: arnOf('a'), Tags: [{ Key: 'k', Value: 'v' }] }]);
    expect(emu.callCounts().GetResources).toBe(3);
  });

  it('answers an unknown X-Amz-Target with UnknownOperation, counted as such', async () => {
    const { emu } = await setup();
    const r = await fetch(emu.url + '/', {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'ResourceGroupsTaggingAPI_20170126.TagResources' },
      body: '{}',
    });
    expect(r.status).toBe(404);
    expect(emu.callCounts()).toEqual({ UnknownOperation: 1 });
  });
});
