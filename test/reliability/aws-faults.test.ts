import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SchedulerEmulator, EmulatorErrorName } from '../../src/emulator/scheduler-emulator.js';
import { createSchedulerApi } from '../../src/aws/scheduler-api.js';
import { adoptRemedy, findGroups, reconcileRemedy, schedulerHost } from '../../src/checks/schedule-groups.js';
import { runRemediation } from '../../src/engine/remediation.js';
import { defaultConfig } from '../../src/config/config.js';
import { cli } from '../support/cli.js';
import { AWS_SECRET, OWNER, awsEnv, emulator, owner, sgConfig } from '../support/aws.js';
import { expectOneSentence } from '../support/reliability.js';

/**
 * The Scheduler emulator's faults against adopt and reconcile: conflicts (bounded retry),
 * throttling and 500s (absorbed by the SDK), timeouts (clear failure), random faults over 200
 * groups (converge on re-run), and ownership: a foreign owner is never overwritten without
 * --force, and a user's own tags are never removed.
 */
let emu: SchedulerEmulator;
beforeEach(async () => {
  emu = await emulator();
});
afterEach(async () => {
  await emu.close();
});

const tagsOf = (name: string) => emu.groups().find((g) => g.name === name)?.tags;
const FOREIGN = { 'alchemy::stack': 'other-stack', 'alchemy::stage': 'prod', 'alchemy::id': 'x', team: 'theirs', keep: 'yes' };
const userTags = (i: number) => ({ env: i % 2 ? 'prod' : 'dev', costcenter: `cc-${i}`, 'owner-email': `team${i}@example.com` });

/** Mulberry32: a small seeded PRNG, so a failing random-fault run can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('ConflictException', () => {
  it.each([
    ['TagResource (adopt)', 'TagResource', ['adopt', 'schedule-group', 'g1', '--apply'], () => emu.seedGroup('g1', { env: 'prod' })],
    ['UntagResource (reconcile removing a stale owner key)', 'UntagResource', ['schedule-groups', 'reconcile', 'g1', '--apply'], () => emu.seedGroup('g1', { ...owner('g1'), team: 'payments', 'alchemy::legacy': 'x' })],
    ['CreateScheduleGroup (reconcile --create-missing)', 'CreateScheduleGroup', ['schedule-groups', 'reconcile', '--create-missing', '--apply'], () => {}],
  ])('%s: a burst below the bound converges; above it the group errors clearly and is left as it was', async (_what, op, args, seed) => {
    const cfg = sgConfig({ conflictRetries: 5, expected: ['g1'] });
    seed();
    emu.injectFault(op, 'ConflictException', 4);
    const ok = await cli(['--config', cfg, ...args, '-o', 'json'], awsEnv(emu));
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.json().summary).toMatchObject({ errored: 0, conflictsRetried: 4 });
    expect(tagsOf('g1')).toEqual({ ...owner('g1'), team: 'payments', ...(op === 'TagResource' ? { env: 'prod' } : {}) });

    // Start again from the same state, with a burst the bound cannot absorb.
    await emu.close();
    emu = await emulator();
    seed();
    const before = emu.snapshot();
    emu.injectFault(op, 'ConflictException', 50);
    const bad = await cli(['--config', cfg, ...args, '-o', 'json'], awsEnv(emu));
    expect(bad.code).toBe(1);
    const item = bad.json().items.find((i: any) => i.name === 'g1');
    expect(item.outcome).toBe('errored');
    expect(item.detail).toMatch(/still ConflictException after 5 tries 10 ms apart \(group being created\/deleted, or a name clash\)/);
    expect(bad.json().summary.conflictsRetried).toBe(4);
    expect(emu.snapshot()).toBe(before);
  });
});

describe('throttling, 500s and timeouts', () => {
  it.each<[string, EmulatorErrorName]>([
    ['ThrottlingException', 'ThrottlingException'],
    ['InternalServerException (500)', 'InternalServerException'],
  ])('%s bursts are absorbed by the SDK retry: adopt and reconcile converge, exit 0', async (_what, error) => {
    // Few groups: after a throttle the SDK's adaptive mode slows every later call of the run down.
    for (let i = 0; i < 3; i++) emu.seedGroup(`u${i}`, userTags(i));
    emu.seedGroup('d1', { ...owner('d1'), team: 'old', 'alchemy::legacy': 'x', env: 'keep' });
    const cfg = sgConfig();
    // Throttling answers are retried with a 500 ms backoff base (up to 1 s, then 2 s...): short bursts keep this quick.
    // One burst per run is enough to prove the point, and keeps the throttled run to seconds.
    const burst = 2;
    const ops = error === 'ThrottlingException' ? ['TagResource', 'UntagResource'] : ['ListScheduleGroups', 'ListTagsForResource', 'TagResource', 'UntagResource', 'GetScheduleGroup'];
    for (const op of ops) emu.injectFault(op, error, burst);
    const adopt = await cli(['--config', cfg, 'adopt', 'schedule-group', '--all-unowned', '--apply', '-o', 'json'], awsEnv(emu));
    expect(adopt.stderr).toBe('');
    expect(adopt.code).toBe(0);
    expect(adopt.json().summary).toMatchObject({ planned: 3, adopted: 3, errored: 0 });
    const rec = await cli(['--config', cfg, 'schedule-groups', 'reconcile', '--apply', '-o', 'json'], awsEnv(emu));
    expect(rec.stderr).toBe('');
    expect(rec.code).toBe(0);
    expect(rec.json().summary).toMatchObject({ reconciled: 1, errored: 0 });
    if (error === 'ThrottlingException') expect(adopt.json().summary.throttled + rec.json().summary.throttled).toBe(ops.length * burst);
    for (let i = 0; i < 3; i++) expect(tagsOf(`u${i}`)).toEqual({ ...userTags(i), ...owner(`u${i}`), team: 'payments' });
    expect(tagsOf('d1')).toEqual({ ...owner('d1'), team: 'payments', env: 'keep' });
  });

  it.each<[string, string, RegExp]>([
    ['ListScheduleGroups', 'ListScheduleGroups', /^opsctl: scheduler:ListScheduleGroups failed: InternalServerException: .*\(region us-east-1, endpoint http:/],
    ['ListTagsForResource', 'ListTagsForResource', /^opsctl: scheduler:ListTagsForResource failed: InternalServerException: /],
  ])('500s on %s outlasting the SDK retries fail the listing and the plan with one sentence, exit 3', async (_what, op, message) => {
    emu.seedGroup('u1');
    const before = emu.snapshot();
    for (const args of [['schedule-groups'], ['adopt', 'schedule-group', '--all-unowned', '--apply'], ['schedule-groups', 'reconcile', '--apply']]) {
      emu.clearFaults();
      emu.injectFault(op, 'InternalServerException', 20);
      const r = await cli(['--config', sgConfig(), ...args], awsEnv(emu));
      expect(r.code, args.join(' ')).toBe(3);
      expect(expectOneSentence(r.stderr)).toBeNull();
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toContain(AWS_SECRET);
    }
    expect(emu.snapshot()).toBe(before);
  });

  it('a Scheduler slower than scheduleGroups.requestTimeout: one sentence naming the timeout, exit 3, nothing changed', async () => {
    emu.seedGroup('u1');
    const before = emu.snapshot();
    emu.setLatency(5000);
    const started = Date.now();
    const r = await cli(['--config', sgConfig({ requestTimeout: '100ms' }), 'adopt', 'schedule-group', 'u1', '--apply'], awsEnv(emu));
    expect(r.code).toBe(3);
    expect(expectOneSentence(r.stderr)).toBeNull();
    // A named group is read directly (GetScheduleGroup), not through the listing.
    expect(r.stderr).toMatch(/^opsctl: scheduler:GetScheduleGroup timed out \(region us-east-1, endpoint http:\/\/127\.0\.0\.1:\d+\): no answer from the Scheduler endpoint\./);
    // Bounded: the SDK's attempts, each cut at 100 ms, not one 5 s wait per attempt.
    expect(Date.now() - started).toBeLessThan(5000);
    emu.setLatency(0);
    expect(emu.snapshot()).toBe(before);
  });

  it('scheduleGroups.requestTimeout is validated like every duration', async () => {
    const r = await cli(['--config', sgConfig({ requestTimeout: '0s' }), 'schedule-groups'], awsEnv(emu));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/scheduleGroups\.requestTimeout: must be greater than zero/);
  });
});

describe('200 groups under random faults', () => {
  it('adopt --all-unowned converges on re-run (bounded), adopting every unowned group and touching nothing else', async () => {
    const seed = 0x5eed7;
    const rnd = prng(seed);
    for (let i = 0; i < 200; i++) emu.seedGroup(`grp-${String(i).padStart(3, '0')}`, i % 3 ? userTags(i) : {});
    for (let i = 0; i < 5; i++) emu.seedGroup(`foreign-${i}`, FOREIGN);
    for (let i = 0; i < 5; i++) emu.seedGroup(`ours-${i}`, { ...owner(`ours-${i}`), team: 'payments' });
    const untouched = () => emu.groups().filter((g) => !g.name.startsWith('grp-')).map((g) => JSON.stringify([g.name, g.tags]));
    const othersBefore = untouched();
    // Mixed faults at random: conflicts where AWS answers them (tagging), throttling and 500s anywhere.
    let injected = 0;
    // (Throttling is rarer here only because the SDK backs off from it for seconds.)
    for (let i = 0; i < 60; i++) {
      const kind = rnd();
      const count = 1 + Math.floor(rnd() * 3);
      if (kind < 0.5) emu.injectFault('TagResource', 'ConflictException', count);
      else if (kind < 0.54) emu.injectFault(['TagResource', 'ListTagsForResource', '*'][Math.floor(rnd() * 3)], 'ThrottlingException', 1);
      else emu.injectFault(['TagResource', 'ListTagsForResource', 'ListScheduleGroups', '*'][Math.floor(rnd() * 4)], 'InternalServerException', count);
      injected += count;
    }
    const cfg = sgConfig({ conflictRetries: 3, conflictDelay: '5ms' });
    const runs: Array<{ code: number; summary: any }> = [];
    for (let attempt = 0; attempt < 8; attempt++) {
      const r = await cli(['--config', cfg, 'adopt', 'schedule-group', '--all-unowned', '--apply', '--max', '0', '-o', 'json'], awsEnv(emu));
      // Each run either finishes (0), reports the groups that errored (1), or stops with one sentence (3).
      expect([0, 1, 3], `run ${attempt} (seed ${seed}): ${r.stderr}`).toContain(r.code);
      if (r.code === 3) expect(expectOneSentence(r.stderr)).toBeNull();
      else expect(r.stderr).toBe('');
      const summary = r.code === 3 ? null : r.json().summary;
      runs.push({ code: r.code, summary, ...(r.code === 3 ? { stderr: r.stderr.trim() } : {}) } as any);
      if (r.code === 0 && summary.planned === 0) break;
    }
    const last = runs[runs.length - 1];
    expect(last, `did not converge in ${runs.length} runs (seed ${seed}, ${injected} faulty answers): ${JSON.stringify(runs.map((x: any) => x.stderr ?? x.code))}`).toMatchObject({ code: 0, summary: { planned: 0 } });
    // The faults really bit: some run did not get everything done at once.
    expect(runs.length).toBeGreaterThan(1);
    for (let i = 0; i < 200; i++) {
      const name = `grp-${String(i).padStart(3, '0')}`;
      expect(tagsOf(name), name).toEqual({ ...(i % 3 ? userTags(i) : {}), ...owner(name), team: 'payments' });
    }
    expect(untouched()).toEqual(othersBefore);
  }, 120_000);
});

describe('ownership', () => {
  const sgCfg = () => ({ ...defaultConfig().scheduleGroups, ownerTags: OWNER, ownerKeyPrefix: 'alchemy::', desiredTags: { team: 'payments' }, conflictRetries: 3, conflictDelay: '5ms' });

  it('a foreign owner is never overwritten without --force, by any command; with --force it is taken over and its user tags kept', async () => {
    emu.seedGroup('theirs', FOREIGN);
    emu.seedGroup('theirs-prefix-only', { 'alchemy::tenant': 'acme', env: 'prod' });
    emu.seedGroup('bare');
    emu.seedGroup('drifted', { ...owner('drifted'), team: 'old' });
    const cfg = sgConfig({ expected: ['theirs', 'missing-one'] });
    const foreignBefore = () => [tagsOf('theirs'), tagsOf('theirs-prefix-only')];
    const before = foreignBefore();
    for (const args of [
      ['adopt', 'schedule-group', '--all-unowned', '--apply'],
      ['adopt', 'schedule-group', '--prefix', 'theirs', '--apply'],
      ['adopt', 'schedule-group', 'theirs', 'theirs-prefix-only', '--apply'],
      ['schedule-groups', 'reconcile', '--create-missing', '--apply'],
      ['schedule-groups', 'reconcile', 'theirs', 'theirs-prefix-only', '--apply'],
    ]) {
      const r = await cli(['--config', cfg, ...args, '-o', 'json'], awsEnv(emu));
      expect(r.stderr, args.join(' ')).toBe('');
      // Named groups refused make the run fail (exit 1); unnamed selections refuse quietly.
      expect(r.code, args.join(' ')).toBe(args.some((a) => a.startsWith('theirs')) && !args.includes('--prefix') ? 1 : 0);
      for (const i of r.json().items.filter((x: any) => x.name.startsWith('theirs'))) expect(i.outcome, args.join(' ')).toBe('refused');
      expect(foreignBefore(), args.join(' ')).toEqual(before);
    }
    const forced = await cli(['--config', cfg, 'adopt', 'schedule-group', 'theirs', '--force', '--apply', '-o', 'json'], awsEnv(emu));
    expect(forced.json().items[0].outcome).toBe('adopted');
    expect(tagsOf('theirs')).toEqual({ ...owner('theirs'), team: 'payments', keep: 'yes' });
  });

  it('a group that becomes foreign between the plan and the write is refused at write time, not overwritten', async () => {
    emu.seedGroup('contested', { env: 'prod' });
    const api = await createSchedulerApi({ env: awsEnv(emu), region: 'us-east-1', endpoint: emu.url });
    try {
      const c = sgCfg();
      const common = { cfg: c, force: false, retry: { tries: 3, delayMs: 5 }, nowMs: () => Date.now(), find: (a: typeof api) => findGroups(a, c, { expected: null, nowMs: Date.now() }) };
      const report = await runRemediation(schedulerHost(api), adoptRemedy({ ...common, names: [], allUnowned: true }), {
        apply: true,
        max: 0,
        batchSize: 10,
        wait: false,
        // The plan has been shown; another stack claims the group now.
        confirm: async (plan) => {
          expect(plan.map((p) => p.name)).toEqual(['contested']);
          emu.seedGroup('contested', { ...FOREIGN, env: 'prod' });
          return true;
        },
      });
      expect(report.items[0]).toMatchObject({ name: 'contested', outcome: 'refused' });
      expect(report.items[0].detail).toMatch(/owned by someone else now/);
      expect(tagsOf('contested')).toEqual({ ...FOREIGN, env: 'prod' });
    } finally {
      api.client.destroy();
    }
  });

  it("a user's own tags are never removed: not by adopt, adopt --force, reconcile or reconcile --force, nor when they change between plan and write", async () => {
    const mine = { env: 'prod', costcenter: 'cc-1', 'Name with spaces': 'v a l', 'alchemyish:key': 'not-owner-prefix' };
    emu.seedGroup('unowned', mine);
    emu.seedGroup('foreign', { ...FOREIGN, ...mine });
    emu.seedGroup('drifted', { ...owner('drifted'), team: 'old', 'alchemy::legacy': 'x', 'alchemy::old-id': 'y', ...mine });
    const cfg = sgConfig();
    for (const args of [
      ['adopt', 'schedule-group', '--all-unowned', '--apply'],
      ['adopt', 'schedule-group', 'foreign', '--force', '--apply'],
      ['schedule-groups', 'reconcile', '--apply'],
      ['schedule-groups', 'reconcile', 'foreign', 'drifted', 'unowned', '--force', '--apply'],
    ]) {
      const r = await cli(['--config', cfg, ...args, '-o', 'json'], awsEnv(emu));
      expect(r.stderr, args.join(' ')).toBe('');
      expect(r.code, args.join(' ')).toBe(0);
      for (const name of ['unowned', 'foreign', 'drifted']) expect(tagsOf(name), `${args.join(' ')}: ${name}`).toMatchObject(mine);
    }
    expect(tagsOf('drifted')).toEqual({ ...owner('drifted'), team: 'payments', ...mine });
    expect(tagsOf('foreign')).toEqual({ ...owner('foreign'), team: 'payments', keep: 'yes', ...mine });

    // A user edits their tags after the plan: the write diffs against what AWS holds then.
    emu.seedGroup('late', { ...owner('late'), team: 'old', 'alchemy::stale': 'x' });
    const api = await createSchedulerApi({ env: awsEnv(emu), region: 'us-east-1', endpoint: emu.url });
    try {
      const c = sgCfg();
      const common = { cfg: c, force: false, retry: { tries: 3, delayMs: 5 }, nowMs: () => Date.now(), find: (a: typeof api) => findGroups(a, c, { expected: null, nowMs: Date.now() }) };
      const report = await runRemediation(schedulerHost(api), reconcileRemedy({ ...common, names: ['late'], createMissing: false }), {
        apply: true,
        max: 0,
        batchSize: 10,
        wait: false,
        confirm: async () => {
          emu.seedGroup('late', { ...owner('late'), team: 'old', 'alchemy::stale': 'x', added: 'after-the-plan' });
          return true;
        },
      });
      expect(report.items[0].outcome).toBe('reconciled');
      expect(tagsOf('late')).toEqual({ ...owner('late'), team: 'payments', added: 'after-the-plan' });
    } finally {
      api.client.destroy();
    }
  });
});
