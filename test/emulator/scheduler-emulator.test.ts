import { afterEach, describe, expect, it } from 'vitest';
import { setTimeout as delay } from 'node:timers/promises';
import {
  CreateScheduleCommand,
  CreateScheduleGroupCommand,
  DeleteScheduleCommand,
  DeleteScheduleGroupCommand,
  GetScheduleCommand,
  GetScheduleGroupCommand,
  ListScheduleGroupsCommand,
  ListSchedulesCommand,
  ListTagsForResourceCommand,
  SchedulerClient,
  TagResourceCommand,
  UntagResourceCommand,
  paginateListScheduleGroups,
  type ScheduleGroupSummary,
} from '@aws-sdk/client-scheduler';
import { startSchedulerEmulator, type EmulatorOptions, type SchedulerEmulator } from '../../src/emulator/scheduler-emulator.js';

const ACCOUNT = '123456789012';
const arnOf = (name: string, account = ACCOUNT, region = 'us-east-1'): string =>
  `arn:aws:scheduler:${region}:${account}:schedule-group/${name}`;
const TARGET = { Arn: 'arn:aws:sqs:us-east-1:123456789012:q', RoleArn: 'arn:aws:iam::123456789012:role/scheduler' };

const open: Array<{ emu: SchedulerEmulator; client: SchedulerClient }> = [];

async function setup(opts: EmulatorOptions = {}): Promise<{ emu: SchedulerEmulator; client: SchedulerClient }> {
  const emu = await startSchedulerEmulator(opts);
  const client = new SchedulerClient({
    region: 'us-east-1',
    endpoint: emu.url,
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
  });
  const pair = { emu, client };
  open.push(pair);
  return pair;
}

afterEach(async () => {
  for (const { emu, client } of open.splice(0)) {
    client.destroy();
    await emu.close();
  }
});

/** A controllable clock so time windows are tested without waiting. */
function manualClock(start = Date.parse('2024-05-01T12:00:00.000Z')): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

async function listAllGroupNames(client: SchedulerClient, prefix?: string): Promise<string[]> {
  const names: string[] = [];
  for await (const page of paginateListScheduleGroups({ client, pageSize: 100 }, { NamePrefix: prefix })) {
    for (const g of page.ScheduleGroups ?? []) names.push(g.Name as string);
  }
  return names;
}

async function createSchedule(client: SchedulerClient, name: string, group?: string, state?: 'ENABLED' | 'DISABLED') {
  return client.send(
    new CreateScheduleCommand({
      Name: name,
      GroupName: group,
      State: state,
      ScheduleExpression: 'rate(5 minutes)',
      Target: TARGET,
      FlexibleTimeWindow: { Mode: 'OFF' },
    }),
  );
}

describe('schedule groups: create / get / list', () => {
  it('creates a group, returns its ARN, and reads it back with epoch-second dates', async () => {
    const clock = manualClock();
    const { client } = await setup({ now: clock.now });
    const created = await client.send(new CreateScheduleGroupCommand({ Name: 'orders-prod', Tags: [{ Key: 'team', Value: 'ops' }] }));
    expect(created.ScheduleGroupArn).toBe(arnOf('orders-prod'));

    const got = await client.send(new GetScheduleGroupCommand({ Name: 'orders-prod' }));
    expect(got).toMatchObject({ Name: 'orders-prod', Arn: arnOf('orders-prod'), State: 'ACTIVE' });
    expect(got.CreationDate).toBeInstanceOf(Date);
    expect(got.CreationDate?.getTime()).toBe(clock.now());
    expect(got.LastModificationDate?.getTime()).toBe(clock.now());

    const tags = await client.send(new ListTagsForResourceCommand({ ResourceArn: arnOf('orders-prod') }));
    expect(tags.Tags).toEqual([{ Key: 'team', Value: 'ops' }]);
  });

  it('seeds an untagged ACTIVE default group unless told not to', async () => {
    const { client } = await setup();
    const got = await client.send(new GetScheduleGroupCommand({ Name: 'default' }));
    expect(got.State).toBe('ACTIVE');
    expect((await client.send(new ListTagsForResourceCommand({ ResourceArn: arnOf('default') }))).Tags).toEqual([]);

    const bare = await setup({ seedDefaultGroup: false });
    expect((await bare.client.send(new ListScheduleGroupsCommand({}))).ScheduleGroups).toEqual([]);
  });

  it('paginates 250 groups with MaxResults 100: every name exactly once, NextToken only while more remain', async () => {
    const { client } = await setup();
    const expected = Array.from({ length: 250 }, (_, i) => `grp-${String(i).padStart(3, '0')}`);
    for (let i = 0; i < expected.length; i += 25) {
      await Promise.all(expected.slice(i, i + 25).map((Name) => client.send(new CreateScheduleGroupCommand({ Name }))));
    }

    const pageSizes: number[] = [];
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await client.send(new ListScheduleGroupsCommand({ MaxResults: 100, NextToken: token }));
      pages += 1;
      pageSizes.push(page.ScheduleGroups?.length ?? 0);
      for (const g of page.ScheduleGroups ?? []) seen.push(g.Name as string);
      token = page.NextToken;
    } while (token !== undefined && pages < 10);

    expect(pageSizes).toEqual([100, 100, 51]); // 250 + default
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort()).toEqual([...expected, 'default'].sort());

    // The default page size is also capped at 100.
    const first = await client.send(new ListScheduleGroupsCommand({}));
    expect(first.ScheduleGroups).toHaveLength(100);
    expect(first.NextToken).toBeTypeOf('string');

    // The SDK paginator agrees.
    expect((await listAllGroupNames(client)).sort()).toEqual([...expected, 'default'].sort());
  });

  it('a listing in progress still sees every pre-existing group once when others are created and deleted between pages', async () => {
    const { client, emu } = await setup({ deletingMs: 0 });
    for (let i = 0; i < 30; i++) emu.seedGroup(`m-${String(i).padStart(2, '0')}`);
    const p1 = await client.send(new ListScheduleGroupsCommand({ NamePrefix: 'm-', MaxResults: 10 }));
    await client.send(new DeleteScheduleGroupCommand({ Name: 'm-03' })); // already seen
    await client.send(new CreateScheduleGroupCommand({ Name: 'm-00a' })); // sorts before the cursor
    const rest: string[] = [];
    let token = p1.NextToken;
    for (let i = 0; token !== undefined && i < 10; i++) {
      const p = await client.send(new ListScheduleGroupsCommand({ NamePrefix: 'm-', MaxResults: 10, NextToken: token }));
      rest.push(...(p.ScheduleGroups ?? []).map((g) => g.Name as string));
      token = p.NextToken;
    }
    const all = [...(p1.ScheduleGroups ?? []).map((g) => g.Name as string), ...rest];
    expect(new Set(all).size).toBe(30);
    expect(all).toHaveLength(30);
  });

  it('filters by NamePrefix', async () => {
    const { client, emu } = await setup();
    for (const n of ['opsctl-a', 'opsctl-b', 'opsctlx', 'other-opsctl-c']) emu.seedGroup(n);
    expect((await listAllGroupNames(client, 'opsctl-')).sort()).toEqual(['opsctl-a', 'opsctl-b']);
    expect((await listAllGroupNames(client, 'zzz'))).toEqual([]);
  });

  it('rejects MaxResults outside 1..100, a bad NamePrefix and a forged NextToken with ValidationException 400', async () => {
    const { client } = await setup();
    for (const input of [{ MaxResults: 0 }, { MaxResults: 101 }, { NamePrefix: 'bad prefix' }, { NextToken: 'not-a-token' }]) {
      await expect(client.send(new ListScheduleGroupsCommand(input))).rejects.toMatchObject({
        name: 'ValidationException',
        $metadata: { httpStatusCode: 400 },
      });
    }
  });
});

describe('tags', () => {
  it('tag / list / untag round trip, bumping LastModificationDate only on real changes', async () => {
    const clock = manualClock();
    const { client } = await setup({ now: clock.now });
    await client.send(new CreateScheduleGroupCommand({ Name: 'g1' }));
    const arn = arnOf('g1');
    const t0 = clock.now();

    clock.advance(5_000);
    await client.send(new TagResourceCommand({ ResourceArn: arn, Tags: [{ Key: 'owner', Value: 'alice' }, { Key: 'env', Value: 'prod' }] }));
    expect((await client.send(new ListTagsForResourceCommand({ ResourceArn: arn }))).Tags).toEqual([
      { Key: 'owner', Value: 'alice' },
      { Key: 'env', Value: 'prod' },
    ]);
    const afterTag = await client.send(new GetScheduleGroupCommand({ Name: 'g1' }));
    expect(afterTag.CreationDate?.getTime()).toBe(t0);
    expect(afterTag.LastModificationDate?.getTime()).toBe(t0 + 5_000);

    clock.advance(5_000);
    // Overwrite one value; untag one key plus an absent one (absent keys are a no-op).
    await client.send(new TagResourceCommand({ ResourceArn: arn, Tags: [{ Key: 'owner', Value: 'bob' }] }));
    await client.send(new UntagResourceCommand({ ResourceArn: arn, TagKeys: ['env', 'never-set'] }));
    expect((await client.send(new ListTagsForResourceCommand({ ResourceArn: arn }))).Tags).toEqual([{ Key: 'owner', Value: 'bob' }]);
    expect((await client.send(new GetScheduleGroupCommand({ Name: 'g1' }))).LastModificationDate?.getTime()).toBe(t0 + 10_000);

    clock.advance(5_000);
    await client.send(new TagResourceCommand({ ResourceArn: arn, Tags: [{ Key: 'owner', Value: 'bob' }] }));
    await client.send(new UntagResourceCommand({ ResourceArn: arn, TagKeys: ['never-set'] }));
    expect((await client.send(new GetScheduleGroupCommand({ Name: 'g1' }))).LastModificationDate?.getTime()).toBe(t0 + 10_000);
  });

  it('accepts keys and values with spaces and unicode through the encoded query string', async () => {
    const { client, emu } = await setup();
    emu.seedGroup('g1', { 'cost center': 'a/b', 'ünï': 'x' });
    await client.send(new UntagResourceCommand({ ResourceArn: arnOf('g1'), TagKeys: ['cost center', 'ünï'] }));
    expect(emu.groups().find((g) => g.name === 'g1')?.tags).toEqual({});
  });

  it('enforces at most 200 tags per resource', async () => {
    const { client, emu } = await setup();
    emu.seedGroup('g1', Object.fromEntries(Array.from({ length: 199 }, (_, i) => [`k${i}`, 'v'])));
    await client.send(new TagResourceCommand({ ResourceArn: arnOf('g1'), Tags: [{ Key: 'k-last', Value: 'v' }] }));
    await expect(
      client.send(new TagResourceCommand({ ResourceArn: arnOf('g1'), Tags: [{ Key: 'one-too-many', Value: 'v' }] })),
    ).rejects.toMatchObject({ name: 'ValidationException', $metadata: { httpStatusCode: 400 } });
    expect(Object.keys(emu.groups().find((g) => g.name === 'g1')?.tags ?? {})).toHaveLength(200);
  });
});

describe('validation errors', () => {
  it.each([
    ['a name with a space', () => new CreateScheduleGroupCommand({ Name: 'bad name' })],
    ['a 65-character name', () => new CreateScheduleGroupCommand({ Name: 'a'.repeat(65) })],
    ['an empty tag value on create', () => new CreateScheduleGroupCommand({ Name: 'ok', Tags: [{ Key: 'k', Value: '' }] })],
    ['an aws: tag key on create', () => new CreateScheduleGroupCommand({ Name: 'ok', Tags: [{ Key: 'aws:owner', Value: 'x' }] })],
    ['an empty tag value on tag', () => new TagResourceCommand({ ResourceArn: arnOf('g1'), Tags: [{ Key: 'k', Value: '' }] })],
    ['an AWS: tag key on tag', () => new TagResourceCommand({ ResourceArn: arnOf('g1'), Tags: [{ Key: 'AWS:x', Value: 'v' }] })],
    ['a 129-character tag key', () => new TagResourceCommand({ ResourceArn: arnOf('g1'), Tags: [{ Key: 'k'.repeat(129), Value: 'v' }] })],
    ['a 257-character tag value', () => new TagResourceCommand({ ResourceArn: arnOf('g1'), Tags: [{ Key: 'k', Value: 'v'.repeat(257) }] })],
    ['an aws: key on untag', () => new UntagResourceCommand({ ResourceArn: arnOf('g1'), TagKeys: ['aws:cloudformation:stack-name'] })],
    ['a schedule ARN on tag', () => new TagResourceCommand({ ResourceArn: 'arn:aws:scheduler:us-east-1:123456789012:schedule/g1/s', Tags: [{ Key: 'k', Value: 'v' }] })],
    ['deleting the default group', () => new DeleteScheduleGroupCommand({ Name: 'default' })],
  ])('%s -> ValidationException 400 and no state change', async (_label, make) => {
    const { client, emu } = await setup();
    emu.seedGroup('g1', { keep: 'me' });
    const before = emu.snapshot();
    const e = await client.send(make() as never).catch((x: unknown) => x);
    expect(e).toMatchObject({ name: 'ValidationException', $metadata: { httpStatusCode: 400 } });
    expect((e as Error).message).not.toBe('UnknownError'); // the Message body field reached the SDK
    expect(emu.snapshot()).toBe(before);
  });

  it('tags seeded by AWS itself (aws: prefix) are visible but not writable', async () => {
    const { client, emu } = await setup();
    emu.seedGroup('cfn', { 'aws:cloudformation:stack-name': 'stack' });
    const tags = await client.send(new ListTagsForResourceCommand({ ResourceArn: arnOf('cfn') }));
    expect(tags.Tags).toEqual([{ Key: 'aws:cloudformation:stack-name', Value: 'stack' }]);
  });
});

describe('not found and conflicts', () => {
  it('ResourceNotFoundException 404 for an unknown group, ARN, foreign account or region', async () => {
    const { client } = await setup();
    const cases = [
      new GetScheduleGroupCommand({ Name: 'nope' }),
      new DeleteScheduleGroupCommand({ Name: 'nope' }),
      new ListTagsForResourceCommand({ ResourceArn: arnOf('nope') }),
      new TagResourceCommand({ ResourceArn: arnOf('nope'), Tags: [{ Key: 'k', Value: 'v' }] }),
      new UntagResourceCommand({ ResourceArn: arnOf('nope'), TagKeys: ['k'] }),
      new ListTagsForResourceCommand({ ResourceArn: arnOf('default', '999999999999') }),
      new ListTagsForResourceCommand({ ResourceArn: arnOf('default', ACCOUNT, 'eu-west-1') }),
    ];
    for (const cmd of cases) {
      await expect(client.send(cmd as never)).rejects.toMatchObject({
        name: 'ResourceNotFoundException',
        $metadata: { httpStatusCode: 404 },
      });
    }
  });

  it('ConflictException 409 for a duplicate create (a new request, not a retry)', async () => {
    const { client, emu } = await setup();
    await client.send(new CreateScheduleGroupCommand({ Name: 'dup', Tags: [{ Key: 'a', Value: '1' }] }));
    await expect(
      client.send(new CreateScheduleGroupCommand({ Name: 'dup', Tags: [{ Key: 'b', Value: '2' }] })),
    ).rejects.toMatchObject({ name: 'ConflictException', $metadata: { httpStatusCode: 409 } });
    expect(emu.groups().find((g) => g.name === 'dup')?.tags).toEqual({ a: '1' });
    expect(emu.callCounts().CreateScheduleGroup).toBe(2); // 409 is not retried by the SDK
  });

  it('a retried create carrying the same ClientToken is answered idempotently', async () => {
    const { client } = await setup();
    const first = await client.send(new CreateScheduleGroupCommand({ Name: 'idem', ClientToken: 'tok-1' }));
    const again = await client.send(new CreateScheduleGroupCommand({ Name: 'idem', ClientToken: 'tok-1' }));
    expect(again.ScheduleGroupArn).toBe(first.ScheduleGroupArn);
    await expect(client.send(new CreateScheduleGroupCommand({ Name: 'idem', ClientToken: 'tok-2' }))).rejects.toMatchObject({
      name: 'ConflictException',
    });
  });

  it('ConflictException 409 for tagging, untagging, re-deleting or re-creating a DELETING group', async () => {
    const { client, emu } = await setup({ deletingMs: 60_000 });
    await client.send(new CreateScheduleGroupCommand({ Name: 'going', Tags: [{ Key: 'k', Value: 'v' }] }));
    await client.send(new DeleteScheduleGroupCommand({ Name: 'going' }));
    const before = emu.snapshot();
    for (const cmd of [
      new TagResourceCommand({ ResourceArn: arnOf('going'), Tags: [{ Key: 'k2', Value: 'v' }] }),
      new UntagResourceCommand({ ResourceArn: arnOf('going'), TagKeys: ['k'] }),
      new DeleteScheduleGroupCommand({ Name: 'going' }),
      new CreateScheduleGroupCommand({ Name: 'going' }),
    ]) {
      await expect(client.send(cmd as never)).rejects.toMatchObject({ name: 'ConflictException', $metadata: { httpStatusCode: 409 } });
    }
    expect(emu.snapshot()).toBe(before);
    // Tags remain readable while DELETING.
    expect((await client.send(new ListTagsForResourceCommand({ ResourceArn: arnOf('going') }))).Tags).toEqual([{ Key: 'k', Value: 'v' }]);
  });

  it('a freshly created group answers ConflictException to Tag/Untag/Delete during creatingMs', async () => {
    const clock = manualClock();
    const { client } = await setup({ creatingMs: 2_000, now: clock.now });
    await client.send(new CreateScheduleGroupCommand({ Name: 'young' }));
    const tag = () => client.send(new TagResourceCommand({ ResourceArn: arnOf('young'), Tags: [{ Key: 'k', Value: 'v' }] }));
    await expect(tag()).rejects.toMatchObject({ name: 'ConflictException' });
    await expect(client.send(new DeleteScheduleGroupCommand({ Name: 'young' }))).rejects.toMatchObject({ name: 'ConflictException' });
    clock.advance(2_000);
    await tag();
    expect((await client.send(new ListTagsForResourceCommand({ ResourceArn: arnOf('young') }))).Tags).toEqual([{ Key: 'k', Value: 'v' }]);
  });
});

describe('deletion lifecycle', () => {
  it('a deleted group is visible as DELETING, then disappears (real clock, bounded polling)', async () => {
    const { client } = await setup({ deletingMs: 150 });
    await client.send(new CreateScheduleGroupCommand({ Name: 'temp' }));
    await client.send(new DeleteScheduleGroupCommand({ Name: 'temp' }));

    expect((await client.send(new GetScheduleGroupCommand({ Name: 'temp' }))).State).toBe('DELETING');
    const listed = (await client.send(new ListScheduleGroupsCommand({ NamePrefix: 'temp' }))).ScheduleGroups as ScheduleGroupSummary[];
    expect(listed.map((g) => [g.Name, g.State])).toEqual([['temp', 'DELETING']]);

    let gone = false;
    let polls = 0;
    while (!gone && polls < 100) {
      polls += 1;
      const outcome = await client
        .send(new GetScheduleGroupCommand({ Name: 'temp' }))
        .then((g) => g.State, (e: { name: string }) => e.name);
      if (outcome === 'ResourceNotFoundException') gone = true;
      else {
        expect(outcome).toBe('DELETING');
        await delay(20); // polling interval, not synchronisation: the loop condition decides
      }
    }
    expect(gone).toBe(true);
    expect(polls).toBeGreaterThan(1); // it really was DELETING for a while
    expect((await client.send(new ListScheduleGroupsCommand({ NamePrefix: 'temp' }))).ScheduleGroups).toEqual([]);
    // The name is free again.
    await client.send(new CreateScheduleGroupCommand({ Name: 'temp' }));
  });

  it('a group deletion removes its schedules once the group is gone (controlled clock)', async () => {
    const clock = manualClock();
    const { client, emu } = await setup({ deletingMs: 1_000, now: clock.now });
    await client.send(new CreateScheduleGroupCommand({ Name: 'jobs' }));
    await createSchedule(client, 's1', 'jobs');
    await createSchedule(client, 's2', 'jobs');
    await createSchedule(client, 's1'); // same name in the default group survives
    await client.send(new DeleteScheduleGroupCommand({ Name: 'jobs' }));

    // While DELETING the schedules still exist (they may still fire).
    expect((await client.send(new ListSchedulesCommand({ GroupName: 'jobs' }))).Schedules).toHaveLength(2);
    clock.advance(999);
    expect((await client.send(new GetScheduleGroupCommand({ Name: 'jobs' }))).State).toBe('DELETING');
    clock.advance(1);
    await expect(client.send(new GetScheduleGroupCommand({ Name: 'jobs' }))).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    await expect(client.send(new ListSchedulesCommand({ GroupName: 'jobs' }))).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
      $metadata: { httpStatusCode: 404 },
    });
    const remaining = (await client.send(new ListSchedulesCommand({}))).Schedules ?? [];
    expect(remaining.map((s) => `${s.GroupName}/${s.Name}`)).toEqual(['default/s1']);
    expect(emu.groups().map((g) => g.name)).toEqual(['default']);
  });

  it('overlapping DELETING windows each close at their own end: deleted, seeded DELETING and a fault-driven one (controlled clock)', async () => {
    const clock = manualClock();
    const { client, emu } = await setup({ deletingMs: 1_000, now: clock.now });
    for (const name of ['first', 'second', 'third']) await client.send(new CreateScheduleGroupCommand({ Name: name }));
    const state = async (name: string) => {
      try {
        return (await client.send(new GetScheduleGroupCommand({ Name: name }))).State;
      } catch (e) {
        return (e as { name: string }).name;
      }
    };
    await client.send(new DeleteScheduleGroupCommand({ Name: 'first' })); // closes at +1000
    clock.advance(400);
    emu.seedGroup('seeded', {}, { state: 'DELETING' }); // closes at +1400
    emu.addFault({ kind: 'deleting', group: 'third', on: 'GetScheduleGroup', forMs: 5_000 }); // closes at +5400 once read
    expect(await state('third')).toBe('DELETING');
    clock.advance(300);
    await client.send(new DeleteScheduleGroupCommand({ Name: 'second' })); // closes at +1700
    clock.advance(299); // +999
    expect([await state('first'), await state('seeded'), await state('second')]).toEqual(['DELETING', 'DELETING', 'DELETING']);
    clock.advance(1); // +1000: only the earliest window has closed
    expect([await state('first'), await state('seeded'), await state('second')]).toEqual(['ResourceNotFoundException', 'DELETING', 'DELETING']);
    clock.advance(400); // +1400
    expect([await state('seeded'), await state('second')]).toEqual(['ResourceNotFoundException', 'DELETING']);
    clock.advance(300); // +1700
    expect(await state('second')).toBe('ResourceNotFoundException');
    expect(await state('third')).toBe('DELETING');
    clock.advance(3_700); // +5400
    expect(await state('third')).toBe('ResourceNotFoundException');
    expect(emu.groups().map((g) => g.name)).toEqual(['default']);
  });
});

describe('fault injection and retries', () => {
  it('three injected ConflictExceptions fail the first three TagResource calls; the fourth succeeds', async () => {
    const { client, emu } = await setup();
    emu.seedGroup('g1');
    emu.injectFault('TagResource', 'ConflictException', 3);
    const tag = () => client.send(new TagResourceCommand({ ResourceArn: arnOf('g1'), Tags: [{ Key: 'k', Value: 'v' }] }));
    for (let i = 0; i < 3; i++) {
      await expect(tag()).rejects.toMatchObject({ name: 'ConflictException', $metadata: { httpStatusCode: 409, attempts: 1 } });
      expect(emu.groups().find((g) => g.name === 'g1')?.tags).toEqual({});
    }
    await tag();
    expect(emu.groups().find((g) => g.name === 'g1')?.tags).toEqual({ k: 'v' });
    expect(emu.callCounts().TagResource).toBe(4);
    // Other operations were never affected.
    expect(emu.callCounts().ListTagsForResource).toBeUndefined();
  });

  it('two ThrottlingExceptions are absorbed by the SDK retry (3 attempts); a third one surfaces', async () => {
    const { client, emu } = await setup();
    emu.seedGroup('g1');
    emu.injectFault('TagResource', 'ThrottlingException', 2);
    const out = await client.send(new TagResourceCommand({ ResourceArn: arnOf('g1'), Tags: [{ Key: 'k', Value: 'v' }] }));
    expect(out.$metadata.attempts).toBe(3);
    expect(emu.callCounts()).toEqual({ TagResource: 3 });
    expect(emu.groups().find((g) => g.name === 'g1')?.tags).toEqual({ k: 'v' });

    emu.resetCallCounts();
    emu.injectFault('GetScheduleGroup', 'ThrottlingException', 3);
    await expect(client.send(new GetScheduleGroupCommand({ Name: 'g1' }))).rejects.toMatchObject({
      name: 'ThrottlingException',
      $metadata: { httpStatusCode: 429, attempts: 3 },
    });
    expect(emu.callCounts()).toEqual({ GetScheduleGroup: 3 });
  }, 20_000);

  it("'*' faults hit any operation; AccessDenied, quota and internal errors carry their status codes; clearFaults cancels", async () => {
    const { client, emu } = await setup();
    emu.injectFault('*', 'AccessDeniedException', 1);
    await expect(client.send(new ListScheduleGroupsCommand({}))).rejects.toMatchObject({
      name: 'AccessDeniedException',
      $metadata: { httpStatusCode: 403 },
    });
    emu.injectFault('CreateScheduleGroup', 'ServiceQuotaExceededException', 1);
    await expect(client.send(new CreateScheduleGroupCommand({ Name: 'q' }))).rejects.toMatchObject({
      name: 'ServiceQuotaExceededException',
      $metadata: { httpStatusCode: 402 },
    });
    emu.injectFault('GetScheduleGroup', 'InternalServerException', 1);
    const got = await client.send(new GetScheduleGroupCommand({ Name: 'default' })); // 500 is retried by the SDK
    expect(got.$metadata.attempts).toBe(2);

    emu.injectFault('*', 'ValidationException', 5);
    emu.clearFaults();
    await client.send(new CreateScheduleGroupCommand({ Name: 'q' }));
    expect(emu.callCounts()).toEqual({ ListScheduleGroups: 1, CreateScheduleGroup: 2, GetScheduleGroup: 2 });
  }, 20_000);
});

describe('schedules', () => {
  it('create / get / list by group with filters and pagination / delete', async () => {
    const { client, emu } = await setup();
    emu.seedGroup('jobs');
    emu.seedGroup('other');
    const created = await createSchedule(client, 'nightly', 'jobs');
    expect(created.ScheduleArn).toBe('arn:aws:scheduler:us-east-1:123456789012:schedule/jobs/nightly');
    await createSchedule(client, 'hourly', 'jobs', 'DISABLED');
    for (let i = 0; i < 12; i++) await createSchedule(client, `bulk-${String(i).padStart(2, '0')}`, 'jobs');
    await createSchedule(client, 'nightly', 'other');

    const got = await client.send(new GetScheduleCommand({ Name: 'nightly', GroupName: 'jobs' }));
    expect(got).toMatchObject({ Name: 'nightly', GroupName: 'jobs', State: 'ENABLED', ScheduleExpression: 'rate(5 minutes)', Target: TARGET });
    expect(got.CreationDate).toBeInstanceOf(Date);

    const names: string[] = [];
    let token: string | undefined;
    for (let i = 0; i < 10; i++) {
      const page = await client.send(new ListSchedulesCommand({ GroupName: 'jobs', MaxResults: 5, NextToken: token }));
      expect(page.Schedules!.length).toBeLessThanOrEqual(5);
      for (const s of page.Schedules ?? []) {
        expect(s.GroupName).toBe('jobs');
        expect(s.Target?.Arn).toBe(TARGET.Arn);
        names.push(s.Name as string);
      }
      token = page.NextToken;
      if (!token) break;
    }
    expect(names).toHaveLength(14);
    expect(new Set(names).size).toBe(14);

    const disabled = await client.send(new ListSchedulesCommand({ GroupName: 'jobs', State: 'DISABLED' }));
    expect(disabled.Schedules?.map((s) => s.Name)).toEqual(['hourly']);
    const prefixed = await client.send(new ListSchedulesCommand({ NamePrefix: 'nightly' }));
    expect(prefixed.Schedules?.map((s) => `${s.GroupName}/${s.Name}`)).toEqual(['jobs/nightly', 'other/nightly']);

    await client.send(new DeleteScheduleCommand({ Name: 'nightly', GroupName: 'jobs' }));
    await expect(client.send(new GetScheduleCommand({ Name: 'nightly', GroupName: 'jobs' }))).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });
    await expect(client.send(new DeleteScheduleCommand({ Name: 'nightly', GroupName: 'jobs' }))).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
      $metadata: { httpStatusCode: 404 },
    });
    expect(emu.groups().find((g) => g.name === 'jobs')?.schedules).toBe(13);
    expect(emu.groups().find((g) => g.name === 'other')?.schedules).toBe(1);
  });

  it('conflicts on a duplicate schedule, 404 for a missing group, 400 for a bad role ARN', async () => {
    const { client, emu } = await setup();
    emu.seedGroup('jobs');
    await createSchedule(client, 's', 'jobs');
    await expect(createSchedule(client, 's', 'jobs')).rejects.toMatchObject({ name: 'ConflictException', $metadata: { httpStatusCode: 409 } });
    await expect(createSchedule(client, 's', 'missing')).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
      $metadata: { httpStatusCode: 404 },
    });
    await expect(
      client.send(
        new CreateScheduleCommand({
          Name: 'x',
          GroupName: 'jobs',
          ScheduleExpression: 'rate(1 hour)',
          Target: { Arn: TARGET.Arn, RoleArn: 'not-a-role' },
          FlexibleTimeWindow: { Mode: 'OFF' },
        }),
      ),
    ).rejects.toMatchObject({ name: 'ValidationException', $metadata: { httpStatusCode: 400 } });
    expect(emu.groups().find((g) => g.name === 'jobs')?.schedules).toBe(1);
  });
});

describe('state inspection, quota, latency, raw protocol', () => {
  it('snapshot() is unchanged by reads (including failed ones) and changed by a write', async () => {
    const { client, emu } = await setup();
    emu.seedGroup('a', { x: '1' });
    emu.seedGroup('b');
    emu.seedSchedule('a', 'sched');
    const before = emu.snapshot();
    expect(JSON.parse(before).groups.map((g: { name: string }) => g.name)).toEqual(['a', 'b', 'default']);

    await client.send(new ListScheduleGroupsCommand({}));
    await client.send(new GetScheduleGroupCommand({ Name: 'a' }));
    await client.send(new ListTagsForResourceCommand({ ResourceArn: arnOf('a') }));
    await client.send(new ListSchedulesCommand({ GroupName: 'a' }));
    await client.send(new GetScheduleCommand({ Name: 'sched', GroupName: 'a' }));
    await client.send(new GetScheduleGroupCommand({ Name: 'zzz' })).catch(() => undefined);
    await client.send(new UntagResourceCommand({ ResourceArn: arnOf('b'), TagKeys: ['absent'] }));
    expect(emu.snapshot()).toBe(before);

    await client.send(new TagResourceCommand({ ResourceArn: arnOf('b'), Tags: [{ Key: 'y', Value: '2' }] }));
    expect(emu.snapshot()).not.toBe(before);
  });

  it('enforces maxGroups with ServiceQuotaExceededException 402, counting DELETING groups until they are gone', async () => {
    const clock = manualClock();
    const { client } = await setup({ maxGroups: 3, deletingMs: 1_000, now: clock.now });
    await client.send(new CreateScheduleGroupCommand({ Name: 'g1' }));
    await client.send(new CreateScheduleGroupCommand({ Name: 'g2' })); // + default = 3
    const create = () => client.send(new CreateScheduleGroupCommand({ Name: 'g3' }));
    await expect(create()).rejects.toMatchObject({ name: 'ServiceQuotaExceededException', $metadata: { httpStatusCode: 402 } });
    await client.send(new DeleteScheduleGroupCommand({ Name: 'g1' }));
    await expect(create()).rejects.toMatchObject({ name: 'ServiceQuotaExceededException' });
    clock.advance(1_000);
    await create();
  });

  it('applies latency to every call and lets it be changed at run time', async () => {
    const { client, emu } = await setup({ latencyMs: 120 });
    let t = performance.now();
    await client.send(new GetScheduleGroupCommand({ Name: 'default' }));
    expect(performance.now() - t).toBeGreaterThanOrEqual(110);
    emu.setLatency(0);
    t = performance.now();
    await client.send(new GetScheduleGroupCommand({ Name: 'default' }));
    expect(performance.now() - t).toBeLessThan(110);
  });

  it('speaks the wire format directly: epoch-second dates, x-amzn-errortype, UnknownOperation 404', async () => {
    const clock = manualClock(Date.parse('2024-05-01T12:00:00.250Z'));
    const { emu } = await setup({ now: clock.now });
    const ok = await fetch(`${emu.url}/schedule-groups/default`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toBe('application/json');
    const body = (await ok.json()) as Record<string, unknown>;
    expect(body.CreationDate).toBe(1714564800.25);

    const bad = await fetch(`${emu.url}/schedule-groups/${encodeURIComponent('bad name')}`);
    expect(bad.status).toBe(400);
    expect(bad.headers.get('x-amzn-errortype')).toBe('ValidationException');
    expect(((await bad.json()) as { Message?: string }).Message).toMatch(/name/);

    const unknown = await fetch(`${emu.url}/nothing/here`, { method: 'PATCH' });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('x-amzn-errortype')).toBe('UnknownOperationException');
    expect(emu.callCounts()).toEqual({ GetScheduleGroup: 2, UnknownOperation: 1 });
  });

  it('close() returns promptly with keep-alive sockets open and a call still held by latency', async () => {
    const emu = await startSchedulerEmulator();
    const client = new SchedulerClient({
      region: 'us-east-1',
      endpoint: emu.url,
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
      maxAttempts: 1,
    });
    await client.send(new ListScheduleGroupsCommand({}));
    emu.setLatency(30_000);
    const inFlight = client.send(new GetScheduleGroupCommand({ Name: 'default' })).then(
      () => 'answered',
      () => 'failed',
    );
    // Calls are counted on arrival, so this tells us the request reached the server.
    for (let i = 0; i < 200 && !emu.callCounts().GetScheduleGroup; i++) await delay(5);
    expect(emu.callCounts().GetScheduleGroup).toBe(1);
    const t = performance.now();
    await emu.close();
    expect(performance.now() - t).toBeLessThan(1_000);
    expect(await inFlight).toBe('failed');
    client.destroy();
  }, 20_000);
});
