// Tag reads shared with a worker thread (src/aws/tag-read-pool.ts): the worker has its own real
// @aws-sdk/client-scheduler client talking to the emulator; the records, call counts, throttling
// back-off and error sentences must be exactly those of reads made on the main thread.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createSchedulerApi, type SchedulerApi } from '../../src/aws/scheduler-api.js';
import { readTags } from '../../src/aws/scheduler-gateway.js';
import { startTagReadPool, type TagReadPool } from '../../src/aws/tag-read-pool.js';
import { findGroups } from '../../src/checks/schedule-groups.js';
import { defaultConfig } from '../../src/config/config.js';
import { OpsctlError } from '../../src/errors.js';
import type { SchedulerEmulator } from '../../src/emulator/scheduler-emulator.js';
import { cli, cliProcess } from '../support/cli.js';
import { OWNER, awsEnv, emulator, owner, sgConfig } from '../support/aws.js';

const cfg = () => ({ ...defaultConfig().scheduleGroups, ownerTags: OWNER, ownerKeyPrefix: 'alchemy::', desiredTags: { team: 'payments' } });
const name = (i: number) => `w-${String(i).padStart(3, '0')}`;

let emu: SchedulerEmulator;
let api: SchedulerApi;
let pool: TagReadPool | null = null;
beforeEach(async () => {
  emu = await emulator({ maxGroups: 500 });
  for (let i = 0; i < 250; i++) {
    // Owned, drifted (owned, wrong team), foreign (another stack) and untagged groups.
    const tags = i % 4 === 0 ? { ...owner(name(i)), team: 'payments' } : i % 4 === 1 ? { ...owner(name(i)), team: 'search' } : i % 4 === 2 ? { 'alchemy::stack': 'other', 'alchemy::stage': 'prod', 'alchemy::id': name(i) } : {};
    emu.seedGroup(name(i), tags);
  }
  api = await createSchedulerApi({ env: awsEnv(emu), region: 'us-east-1', endpoint: emu.url });
});
afterEach(async () => {
  await pool?.close();
  pool = null;
  api.client.destroy();
  await emu.close();
});

const ready = async (p: TagReadPool | null): Promise<TagReadPool> => {
  expect(p).not.toBeNull();
  // The worker announces itself with a message; one read through it waits for nothing else.
  await p!.send(emu.groups()[0].arn);
  expect(p!.ready).toBe(true);
  return p!;
};

describe('tag reads through a worker thread', () => {
  it('a listing shared with the worker gives the same records and call counts as one read on the main thread alone', async () => {
    const opts = { expected: ['w-000', 'never-created'], nowMs: Date.now() };
    emu.resetCallCounts();
    const alone = await findGroups(api, cfg(), { ...opts, workerMinGroups: Infinity });
    const aloneCalls = emu.callCounts();
    expect(api.stats.readsByWorker).toBeUndefined();
    const callsBefore = api.stats.calls;
    emu.resetCallCounts();
    // Tag reads wait until the worker is ready, so it takes part whatever the machine's load.
    const release = emu.hold('ListTagsForResource');
    const startWorker = async (a: SchedulerApi) => {
      pool = await startTagReadPool(a);
      await vi.waitFor(() => expect(pool?.ready).toBe(true), { timeout: 30_000 });
      release();
      return pool;
    };
    const shared = await findGroups(api, cfg(), { ...opts, workerMinGroups: 0, startWorker });
    pool = null; // closed by findGroups
    expect(emu.callCounts()).toEqual(aloneCalls);
    expect(shared).toEqual(alone);
    expect(shared).toHaveLength(252); // 250, `default` and the missing one
    expect(new Set(shared.map((r) => r.class))).toEqual(new Set(['owned', 'drifted', 'foreign', 'unowned', 'ignored', 'missing']));
    // The worker answered some of the reads, and they are counted like the others.
    expect(api.stats.readsByWorker).toBeGreaterThan(0);
    expect(api.stats.calls - callsBefore).toBe(Object.values(aloneCalls).reduce((a, b) => a + b, 0));
  });

  it('throttling answered to the worker is retried by its SDK, counted, and told to the main thread at once', async () => {
    pool = await ready(await startTagReadPool(api));
    let told = 0;
    api.stats.onThrottle = () => (told += 1);
    emu.injectFault('ListTagsForResource', 'ThrottlingException', 2);
    emu.resetCallCounts();
    const before = api.stats.calls;
    const g = emu.groups().find((x) => x.name === 'w-000')!;
    expect(await readTags(api, g.arn, pool.send)).toEqual(g.tags);
    expect(told).toBe(2);
    expect(api.stats.throttled).toBe(2);
    expect(api.stats.calls - before).toBe(3);
    expect(api.stats.byOperation.ListTagsForResource).toBeGreaterThanOrEqual(3);
    expect(emu.callCounts().ListTagsForResource).toBe(3);
  });

  it('AccessDenied, a missing group and an invalid request read through the worker end exactly as on the main thread', async () => {
    pool = await ready(await startTagReadPool(api));
    const arn = emu.groups().find((x) => x.name === 'w-001')!.arn;
    const failure = async (send?: TagReadPool['send']) => {
      emu.injectFault('ListTagsForResource', 'AccessDeniedException', 1);
      return readTags(api, arn, send).then(
        () => null,
        (e: unknown) => e,
      );
    };
    const local = await failure();
    const remote = await failure(pool.send);
    expect(remote).toBeInstanceOf(OpsctlError);
    expect((remote as OpsctlError).message).toBe((local as OpsctlError).message);
    expect((remote as OpsctlError).message).toMatch(/^AWS denied scheduler:ListTagsForResource \(region us-east-1, endpoint http/);
    expect((remote as OpsctlError).exitCode).toBe(3);

    const gone = arn.replace('w-001', 'no-such-group');
    expect(await readTags(api, gone, pool.send)).toBeNull();
    expect(await readTags(api, gone)).toBeNull();

    // Not fatal for the run: the SDK's own error comes back with its name and status, for the listing's sentence.
    emu.injectFault('ListTagsForResource', 'ValidationException', 1);
    const invalid = await readTags(api, arn, pool.send).catch((e: unknown) => e);
    expect(invalid).not.toBeInstanceOf(OpsctlError);
    expect(invalid).toMatchObject({ name: 'ValidationException', $metadata: { httpStatusCode: 400 } });
  });

  it('the worker signs with the main thread\'s credentials: none found there is the one sentence, exit 3', async () => {
    // A client with no static keys: the SDK's default chain, in a sandbox with nothing to find.
    const dir = mkdtempSync(join(tmpdir(), 'opsctl-nocreds-'));
    const saved = { ...process.env };
    for (const k of Object.keys(process.env)) if (k.startsWith('AWS_')) delete process.env[k];
    Object.assign(process.env, { AWS_CONFIG_FILE: join(dir, 'config'), AWS_SHARED_CREDENTIALS_FILE: join(dir, 'credentials'), AWS_EC2_METADATA_DISABLED: 'true' });
    const bare = await createSchedulerApi({ env: process.env, region: 'us-east-1', endpoint: emu.url });
    try {
      const p = await startTagReadPool(bare);
      expect(p).not.toBeNull();
      try {
        const e = await readTags(bare, emu.groups()[0].arn, p!.send).catch((x: unknown) => x);
        expect(e).toBeInstanceOf(OpsctlError);
        expect((e as OpsctlError).message).toBe('no AWS credentials found: set AWS_PROFILE or --profile, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or log in with SSO.');
        expect((e as OpsctlError).exitCode).toBe(3);
      } finally {
        await p!.close();
      }
    } finally {
      bare.client.destroy();
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });

  it('the CLI: 251 groups list with their tag reads shared, complete and classified; AccessDenied mid-listing is one sentence, exit 3', async () => {
    const config = sgConfig({ desiredTags: { team: 'payments' } });
    const r = await cli(['--config', config, 'schedule-groups', '-o', 'json'], awsEnv(emu));
    expect(r.code).toBe(0);
    const out = r.json();
    expect(out.items).toHaveLength(251);
    expect(out.summary).toMatchObject({ groups: 251, owned: 63, drifted: 63, foreign: 62, unowned: 62, ignored: 1, apiCalls: 253, throttled: 0 });

    // Enough denials that reads on both threads meet one.
    emu.injectFault('ListTagsForResource', 'AccessDeniedException', 200);
    const denied = await cli(['--config', config, 'schedule-groups', '-o', 'json'], awsEnv(emu));
    expect(denied.code).toBe(3);
    expect(denied.stdout).toBe('');
    expect(denied.stderr.trim().split('\n')).toHaveLength(1);
    expect(denied.stderr).toMatch(/AWS denied scheduler:ListTagsForResource/);
  });

  it('the built CLI: the worker loads the installed SDK, and nothing but the bundle\'s code cache line reaches stderr', async () => {
    const r = await cliProcess(['schedule-groups', '-o', 'json'], { ...awsEnv(emu), OPSCTL_DEBUG_CODE_CACHE: '1' });
    expect(r.code).toBe(0);
    expect(r.json().items).toHaveLength(251);
    // No NodeVersionSupportWarning from either thread's SDK (src/aws.ts turns it off).
    expect(r.stderr).toBe('opsctl: code cache used\n');
  });
});
