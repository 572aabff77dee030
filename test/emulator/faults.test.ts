// Fault injection, driven through the real @aws-sdk/client-scheduler (and the Tagging API client):
// the faults the sched helper's write-time gate must survive, typed and in the --fault text form.
import { afterEach, describe, expect, it } from 'vitest';
import {
  CreateScheduleGroupCommand,
  DeleteScheduleGroupCommand,
  GetScheduleGroupCommand,
  ListScheduleGroupsCommand,
  ListSchedulesCommand,
  ListTagsForResourceCommand,
  SchedulerClient,
  TagResourceCommand,
  UntagResourceCommand,
  paginateListScheduleGroups,
} from '@aws-sdk/client-scheduler';
import { GetResourcesCommand, ResourceGroupsTaggingAPIClient } from '@aws-sdk/client-resource-groups-tagging-api';
import { formatFault, parseFault, startSchedulerEmulator, type EmulatorOptions, type FaultSpec, type SchedulerEmulator } from '../../src/emulator/scheduler-emulator.js';
import { OpsctlError } from '../../src/errors.js';

const arnOf = (name: string): string => `arn:aws:scheduler:us-east-1:123456789012:schedule-group/${name}`;
const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' };
const open: Array<{ emu: SchedulerEmulator; client: SchedulerClient }> = [];

async function setup(opts: EmulatorOptions = {}): Promise<{ emu: SchedulerEmulator; client: SchedulerClient }> {
  const emu = await startSchedulerEmulator(opts);
  // maxAttempts 1: every injected call is seen by the test, not absorbed by the SDK's retry.
  const client = new SchedulerClient({ region: 'us-east-1', endpoint: emu.url, credentials, maxAttempts: 1 });
  open.push({ emu, client });
  return { emu, client };
}

afterEach(async () => {
  for (const { emu, client } of open.splice(0)) {
    client.destroy();
    await emu.close();
  }
});

function manualClock(start = Date.parse('2024-05-01T12:00:00.000Z')): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

const getGroup = (client: SchedulerClient, Name: string) => client.send(new GetScheduleGroupCommand({ Name }));
const tag = (client: SchedulerClient, name: string, Key = 'k', Value = 'v') =>
  client.send(new TagResourceCommand({ ResourceArn: arnOf(name), Tags: [{ Key, Value }] }));
const tagsOf = async (client: SchedulerClient, name: string) =>
  (await client.send(new ListTagsForResourceCommand({ ResourceArn: arnOf(name) }))).Tags;

describe('the --fault text form', () => {
  it('parses every kind, fills defaults when printed back, and round-trips', () => {
    const cases: Array<[string, FaultSpec, string]> = [
      ['error=ConflictException,op=TagResource,times=3', { kind: 'error', error: 'ConflictException', op: 'TagResource', times: 3 }, 'error=ConflictException,op=TagResource,times=3'],
      ['error=ThrottlingException', { kind: 'error', error: 'ThrottlingException' }, 'error=ThrottlingException,op=*,times=1'],
      ['error=ConflictException,op=UntagResource,group=orders', { kind: 'error', error: 'ConflictException', op: 'UntagResource', group: 'orders' }, 'error=ConflictException,op=UntagResource,group=orders,times=1'],
      ['deleting=orders,after-reads=2,for=30s', { kind: 'deleting', group: 'orders', afterReads: 2, forMs: 30_000 }, 'deleting=orders,after-reads=2,for=30s'],
      ['deleting=orders,on=TagResource', { kind: 'deleting', group: 'orders', on: 'TagResource' }, 'deleting=orders,on=TagResource'],
      ['deleting=orders,at=1m', { kind: 'deleting', group: 'orders', atMs: 60_000 }, 'deleting=orders,at=1m'],
      ['vanish=orders', { kind: 'vanish', group: 'orders' }, 'vanish=orders'],
      ['expire-token=ListScheduleGroups', { kind: 'expire-token', op: 'ListScheduleGroups' }, 'expire-token=ListScheduleGroups,page=2,times=1'],
      ['expire-token=GetResources,page=3,times=2', { kind: 'expire-token', op: 'GetResources', page: 3, times: 2 }, 'expire-token=GetResources,page=3,times=2'],
      ['html=502', { kind: 'html', status: 502 }, 'html=502,op=*'],
      [' html=503 , op=ListTagsForResource , times=1 ', { kind: 'html', status: 503, op: 'ListTagsForResource', times: 1 }, 'html=503,op=ListTagsForResource,times=1'],      ['html=502,op=TagResource,group=r-2', { kind: 'html', status: 502, op: 'TagResource', group: 'r-2' }, 'html=502,op=TagResource,group=r-2'],
    ];
    for (const [text, spec, printed] of cases) {
      expect(parseFault(text)).toEqual(spec);
      expect(formatFault(parseFault(text))).toBe(printed);
      expect(formatFault(parseFault(printed))).toBe(printed);
    }
  });

  it('refuses mistakes with one sentence (a usage error, exit 2)', () => {
    const bad: Array<[string, RegExp]> = [
      ['nope=1', /unknown fault "nope"/],
      ['error=NoSuchException', /error must be one of/],
      ['error=ConflictException,op=TagResources', /not an operation the emulator serves/],
      ['error=ConflictException,times=0', /times must be a whole number of at least 1/],
      ['deleting=orders,after-reads=1,on=TagResource', /at most one of after-reads, on and at/],
      ['deleting=bad name', /not a schedule group name/],
      ['deleting=orders,for=5', /has no unit/],
      ['vanish=orders,for=5s', /vanish takes after-reads, on, at, not for/],
      ['expire-token=ListTagsForResource', /expire-token applies to/],
      ['expire-token=ListScheduleGroups,page=1', /page must be 2 or more/],
      ['html=200', /between 400 and 599/],
      ['html', /is not KEY=VALUE/],
      ['error=ConflictException,times=1,times=2', /times is given twice/],
    ];
    for (const [text, message] of bad) {
      let caught: unknown;
      try {
        parseFault(text);
      } catch (e) {
        caught = e;
      }
      expect(caught, text).toBeInstanceOf(OpsctlError);
      expect((caught as OpsctlError).exitCode, text).toBe(2);
      expect((caught as Error).message, text).toMatch(message);
      expect((caught as Error).message, text).not.toMatch(/\n/);
    }
  });
});

describe('a group that turns DELETING at a chosen moment', () => {
  it('after the Nth read: reads 1..N see ACTIVE, then DELETING; tag, untag and re-create conflict; the name is free once the window closes', async () => {
    const clock = manualClock();
    const { emu, client } = await setup({ now: clock.now, deletingMs: 3_600_000 });
    emu.seedGroup('orders', { team: 'a' });
    emu.addFault('deleting=orders,after-reads=2,for=30s');

    expect((await getGroup(client, 'orders')).State).toBe('ACTIVE'); // read 1 (the plan)
    expect(await tagsOf(client, 'orders')).toEqual([{ Key: 'team', Value: 'a' }]); // read 2
    expect((await getGroup(client, 'orders')).State).toBe('DELETING'); // the write-time re-read
    await expect(tag(client, 'orders')).rejects.toMatchObject({ name: 'ConflictException', $metadata: { httpStatusCode: 409 } });
    await expect(client.send(new UntagResourceCommand({ ResourceArn: arnOf('orders'), TagKeys: ['team'] }))).rejects.toMatchObject({ name: 'ConflictException' });
    await expect(client.send(new CreateScheduleGroupCommand({ Name: 'orders' }))).rejects.toMatchObject({
      name: 'ConflictException',
      $metadata: { httpStatusCode: 409 },
      message: expect.stringMatching(/being deleted/),
    });
    expect(emu.groups().find((g) => g.name === 'orders')?.tags).toEqual({ team: 'a' });
    expect(emu.faults()).toEqual([{ spec: 'deleting=orders,after-reads=2,for=30s', fired: 1, active: false }]);

    clock.advance(29_999);
    expect((await getGroup(client, 'orders')).State).toBe('DELETING');
    clock.advance(1);
    await expect(getGroup(client, 'orders')).rejects.toMatchObject({ name: 'ResourceNotFoundException', $metadata: { httpStatusCode: 404 } });
    await client.send(new CreateScheduleGroupCommand({ Name: 'orders' }));
    expect((await getGroup(client, 'orders')).State).toBe('ACTIVE');
  });

  it('a group listed on a ListScheduleGroups page counts as read; other groups are untouched', async () => {
    const { emu, client } = await setup();
    emu.seedGroup('a-one');
    emu.seedGroup('a-two');
    emu.addFault({ kind: 'deleting', group: 'a-two', afterReads: 1 });
    const page = await client.send(new ListScheduleGroupsCommand({ NamePrefix: 'a-' }));
    expect(page.ScheduleGroups?.map((g) => [g.Name, g.State])).toEqual([['a-one', 'ACTIVE'], ['a-two', 'ACTIVE']]);
    expect((await getGroup(client, 'a-two')).State).toBe('DELETING');
    expect((await getGroup(client, 'a-one')).State).toBe('ACTIVE');
  });

  it('on the first TagResource call to it: that call already meets ConflictException and writes nothing', async () => {
    const { emu, client } = await setup({ deletingMs: 3_600_000 });
    emu.seedGroup('orders', { team: 'a' });
    emu.seedGroup('other');
    emu.addFault('deleting=orders,on=TagResource');
    await tag(client, 'other'); // a TagResource to another group does not trigger it
    expect((await getGroup(client, 'orders')).State).toBe('ACTIVE');
    const before = emu.snapshot();
    await expect(tag(client, 'orders', 'team', 'b')).rejects.toMatchObject({ name: 'ConflictException', $metadata: { httpStatusCode: 409 } });
    expect((await getGroup(client, 'orders')).State).toBe('DELETING');
    expect(emu.groups().find((g) => g.name === 'orders')?.tags).toEqual({ team: 'a' });
    expect(emu.snapshot()).not.toBe(before); // State and LastModificationDate moved; the tags did not
  });

  it('at a moment of the clock, and waits, armed, for a group that does not exist yet', async () => {
    const clock = manualClock();
    const { emu, client } = await setup({ now: clock.now, faults: ['deleting=later,at=10s,for=5s'] });
    clock.advance(10_000);
    await expect(getGroup(client, 'later')).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    expect(emu.faults()[0]).toMatchObject({ fired: 0, active: true });
    await client.send(new CreateScheduleGroupCommand({ Name: 'later' }));
    expect((await getGroup(client, 'later')).State).toBe('DELETING');
    clock.advance(5_000);
    expect(emu.groups().map((g) => g.name)).toEqual(['default']);
  });
  it('a TagResource stopped by an injected error does not trip an on=TagResource trigger; the next one does', async () => {
    const { emu, client } = await setup({ faults: ['error=ConflictException,op=TagResource', 'deleting=orders,on=TagResource'] });
    emu.seedGroup('orders');
    await expect(tag(client, 'orders')).rejects.toMatchObject({ name: 'ConflictException', message: 'Injected ConflictException for TagResource' });
    expect((await getGroup(client, 'orders')).State).toBe('ACTIVE');
    await expect(tag(client, 'orders')).rejects.toMatchObject({ name: 'ConflictException', message: expect.stringMatching(/being deleted/) });
    expect((await getGroup(client, 'orders')).State).toBe('DELETING');
  });
});

describe('a group that vanishes at a chosen moment (between plan and write)', () => {
  it('after the plan read it is gone: the re-read and the write answer ResourceNotFoundException', async () => {
    const { emu, client } = await setup();
    emu.seedGroup('orders', { team: 'a' });
    emu.seedSchedule('orders', 'nightly');
    emu.addFault('vanish=orders,after-reads=1');
    expect(await tagsOf(client, 'orders')).toEqual([{ Key: 'team', Value: 'a' }]);
    await expect(tagsOf(client, 'orders')).rejects.toMatchObject({ name: 'ResourceNotFoundException', $metadata: { httpStatusCode: 404 } });
    await expect(tag(client, 'orders')).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    await expect(getGroup(client, 'orders')).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    expect(emu.groups().map((g) => g.name)).toEqual(['default']);
  });

  it('on=TagResource: the write itself finds no group', async () => {
    const { emu, client } = await setup();
    emu.seedGroup('orders');
    emu.addFault({ kind: 'vanish', group: 'orders', on: 'TagResource' });
    expect((await getGroup(client, 'orders')).State).toBe('ACTIVE');
    await expect(tag(client, 'orders')).rejects.toMatchObject({ name: 'ResourceNotFoundException', $metadata: { httpStatusCode: 404 } });
  });
});

describe('injected errors', () => {
  it('ConflictException N times on TagResource and UntagResource, aimed at one group; then the calls succeed', async () => {
    const { emu, client } = await setup();
    emu.seedGroup('orders', { old: 'x' });
    emu.seedGroup('other');
    emu.addFault('error=ConflictException,op=TagResource,group=orders,times=2');
    emu.addFault('error=ConflictException,op=UntagResource,times=1');
    await tag(client, 'other'); // not aimed at it
    for (let i = 0; i < 2; i++) await expect(tag(client, 'orders')).rejects.toMatchObject({ name: 'ConflictException', $metadata: { httpStatusCode: 409 } });
    await tag(client, 'orders');
    const untag = () => client.send(new UntagResourceCommand({ ResourceArn: arnOf('orders'), TagKeys: ['old'] }));
    await expect(untag()).rejects.toMatchObject({ name: 'ConflictException' });
    await untag();
    expect(emu.groups().find((g) => g.name === 'orders')?.tags).toEqual({ k: 'v' });
    expect(emu.callCounts()).toMatchObject({ TagResource: 4, UntagResource: 2 });
    expect(emu.faults().map((f) => [f.spec, f.fired, f.active])).toEqual([
      ['error=ConflictException,op=TagResource,group=orders,times=2', 2, false],
      ['error=ConflictException,op=UntagResource,times=1', 1, false],
    ]);
  });
});

describe('a page token that dies between pages', () => {
  it('ListScheduleGroups: page 2 answers ValidationException, the dead token stays dead, a restarted listing sees every group', async () => {
    const { emu, client } = await setup();
    for (let i = 0; i < 25; i++) emu.seedGroup(`g-${String(i).padStart(2, '0')}`);
    emu.addFault('expire-token=ListScheduleGroups');
    const first = await client.send(new ListScheduleGroupsCommand({ NamePrefix: 'g-', MaxResults: 10 }));
    expect(first.ScheduleGroups).toHaveLength(10);
    const dead = first.NextToken as string;
    const next = () => client.send(new ListScheduleGroupsCommand({ NamePrefix: 'g-', MaxResults: 10, NextToken: dead }));
    await expect(next()).rejects.toMatchObject({ name: 'ValidationException', $metadata: { httpStatusCode: 400 } });
    await expect(next()).rejects.toMatchObject({ name: 'ValidationException' });

    const names: string[] = [];
    for await (const page of paginateListScheduleGroups({ client, pageSize: 10 }, { NamePrefix: 'g-' })) {
      for (const g of page.ScheduleGroups ?? []) names.push(g.Name as string);
    }
    expect(names).toHaveLength(25);
    expect(new Set(names).size).toBe(25);
  });

  it('page=3 lets page 2 through; the SDK paginator fails on the third page', async () => {
    const { emu, client } = await setup({ faults: ['expire-token=ListScheduleGroups,page=3'] });
    for (let i = 0; i < 25; i++) emu.seedGroup(`g-${String(i).padStart(2, '0')}`);
    const seen: number[] = [];
    const run = async () => {
      for await (const page of paginateListScheduleGroups({ client, pageSize: 10 }, { NamePrefix: 'g-' })) seen.push(page.ScheduleGroups?.length ?? 0);
    };
    await expect(run()).rejects.toMatchObject({ name: 'ValidationException' });
    expect(seen).toEqual([10, 10]);
    expect(emu.callCounts().ListScheduleGroups).toBe(3);
  });

  it('ListSchedules: the same fault, on the schedules listing', async () => {
    const { emu, client } = await setup({ faults: ['expire-token=ListSchedules'] });
    emu.seedGroup('orders');
    for (let i = 0; i < 3; i++) emu.seedSchedule('orders', `s-${i}`);
    const first = await client.send(new ListSchedulesCommand({ GroupName: 'orders', MaxResults: 2 }));
    expect(first.Schedules).toHaveLength(2);
    await expect(client.send(new ListSchedulesCommand({ GroupName: 'orders', MaxResults: 2, NextToken: first.NextToken }))).rejects.toMatchObject({
      name: 'ValidationException',
    });
  });

  it("GetResources: the Tagging API's PaginationTokenExpiredException", async () => {
    const { emu } = await setup({ faults: [{ kind: 'expire-token', op: 'GetResources' }] });
    for (let i = 0; i < 5; i++) emu.seedGroup(`t-${i}`, { team: 'a' });
    const tagging = new ResourceGroupsTaggingAPIClient({ region: 'us-east-1', endpoint: emu.url, credentials, maxAttempts: 1 });
    try {
      const first = await tagging.send(new GetResourcesCommand({ ResourceTypeFilters: ['scheduler:schedule-group'], ResourcesPerPage: 2 }));
      expect(first.ResourceTagMappingList).toHaveLength(2);
      await expect(
        tagging.send(new GetResourcesCommand({ ResourceTypeFilters: ['scheduler:schedule-group'], ResourcesPerPage: 2, PaginationToken: first.PaginationToken })),
      ).rejects.toMatchObject({ name: 'PaginationTokenExpiredException', $metadata: { httpStatusCode: 400 } });
    } finally {
      tagging.destroy();
    }
  });
});

describe('an endpoint that answers an HTML page', () => {
  it('html=502 for one operation, once: the SDK sees a 502 with no AWS error type; the next call is served', async () => {
    const { emu, client } = await setup();
    emu.seedGroup('orders', { team: 'a' });
    emu.addFault('html=502,op=ListTagsForResource,times=1');
    expect((await getGroup(client, 'orders')).State).toBe('ACTIVE');
    const failure = await tagsOf(client, 'orders').then(
      () => undefined,
      (e: unknown) => e as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } },
    );
    expect(failure?.$metadata?.httpStatusCode).toBe(502);
    // What a caller must turn into one sentence: the SDK's deserialization error, which points at $response.
    expect(failure?.message).toMatch(/Deserialization error/);
    expect(failure?.name).not.toMatch(/^(ConflictException|ResourceNotFoundException|ValidationException)$/);
    expect(await tagsOf(client, 'orders')).toEqual([{ Key: 'team', Value: 'a' }]);
  });

  it('html=502 for every call: a text/html body on the wire', async () => {
    const { emu } = await setup({ faults: ['html=502'] });
    for (const path of ['/schedule-groups', '/schedule-groups/default']) {
      const res = await fetch(`${emu.url}${path}`);
      expect(res.status).toBe(502);
      expect(res.headers.get('content-type')).toBe('text/html');
      expect(res.headers.get('x-amzn-errortype')).toBeNull();
      expect(await res.text()).toMatch(/^<html>[\s\S]*502 Bad Gateway/);
    }
    expect(emu.faults()[0]).toMatchObject({ spec: 'html=502,op=*', fired: 2, active: true });
  });
});

describe('direct reads and call counts', () => {
  it('4 named groups among 158 cost 4 GetScheduleGroup + 4 ListTagsForResource; an absent one is ResourceNotFoundException', async () => {
    const { emu, client } = await setup();
    for (let i = 0; i < 157; i++) emu.seedGroup(`grp-${String(i).padStart(3, '0')}`, { n: String(i) });
    emu.resetCallCounts();
    const named = ['grp-001', 'grp-050', 'grp-100', 'grp-156'];
    for (const name of named) {
      const g = await getGroup(client, name);
      expect(g).toMatchObject({ Name: name, Arn: arnOf(name), State: 'ACTIVE' });
      expect(await tagsOf(client, name)).toEqual([{ Key: 'n', Value: String(Number(name.slice(4))) }]);
    }
    expect(emu.callCounts()).toEqual({ GetScheduleGroup: 4, ListTagsForResource: 4 });
    await expect(getGroup(client, 'grp-157')).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
      $metadata: { httpStatusCode: 404 },
    });
    await expect(tagsOf(client, 'grp-157')).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    expect(emu.callCounts()).toEqual({ GetScheduleGroup: 5, ListTagsForResource: 5 });
  });
});

describe('the admin endpoint', () => {
  it('arms faults from text, lists them with their count, reads and resets call counts; a bad line arms nothing', async () => {
    const { emu, client } = await setup();
    await client.send(new CreateScheduleGroupCommand({ Name: 'orders' }));
    const bad = await fetch(`${emu.url}/_emulator/faults`, { method: 'POST', body: 'vanish=orders,on=TagResource\nnope=1' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toMatch(/unknown fault "nope"/);
    expect(emu.faults()).toEqual([]);

    const armed = await fetch(`${emu.url}/_emulator/faults`, { method: 'POST', body: 'deleting=orders,on=DeleteScheduleGroup,for=1h\n' });
    expect(armed.status).toBe(201);
    expect(await armed.json()).toEqual([{ spec: 'deleting=orders,on=DeleteScheduleGroup,for=1h', fired: 0, active: true }]);
    // The delete meets a group already DELETING: ConflictException, as the real service answers a second delete.
    await expect(client.send(new DeleteScheduleGroupCommand({ Name: 'orders' }))).rejects.toMatchObject({ name: 'ConflictException' });
    expect(await (await fetch(`${emu.url}/_emulator/faults`)).json()).toEqual([{ spec: 'deleting=orders,on=DeleteScheduleGroup,for=1h', fired: 1, active: false }]);
    expect(await (await fetch(`${emu.url}/_emulator/calls`)).json()).toEqual({ CreateScheduleGroup: 1, DeleteScheduleGroup: 1 });
    expect((await fetch(`${emu.url}/_emulator/calls`, { method: 'DELETE' })).status).toBe(200);
    expect(emu.callCounts()).toEqual({});
    expect((await fetch(`${emu.url}/_emulator/faults`, { method: 'DELETE' })).status).toBe(200);
    expect(emu.faults()).toEqual([]);
    expect((await fetch(`${emu.url}/_emulator/nothing`)).status).toBe(404);
  });
});
