// A listing raises V8's interrupt budget while it runs (src/aws.ts tierUpLater: TurboFan later,
// less background compiling) and puts it back afterwards, also when it fails; the built CLI's
// code cache keeps being used (the tagging SDK is loaded mid-listing).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSchedulerApi, currentInterruptBudget, tierUpLater, type SchedulerApi } from '../../src/aws/scheduler-api.js';
import { findGroups } from '../../src/checks/schedule-groups.js';
import { defaultConfig } from '../../src/config/config.js';
import type { SchedulerEmulator } from '../../src/emulator/scheduler-emulator.js';
import { cliProcess } from '../support/cli.js';
import { awsEnv, emulator, owner, sgConfig } from '../support/aws.js';

const DEFAULT = 67584; // Node 20's V8
const cfg = () => ({ ...defaultConfig().scheduleGroups });

let emu: SchedulerEmulator;
let api: SchedulerApi;
beforeEach(async () => {
  emu = await emulator({ maxGroups: 500 });
  for (let i = 0; i < 150; i++) emu.seedGroup(`t-${String(i).padStart(3, '0')}`, i % 2 ? owner(`t-${String(i).padStart(3, '0')}`) : {});
  api = await createSchedulerApi({ env: awsEnv(emu), region: 'us-east-1', endpoint: emu.url });
});
afterEach(async () => {
  api.client.destroy();
  await emu.close();
});

describe('V8 tier-up during a listing', () => {
  it('raised while a listing runs (seen from a throttle mid-listing), restored after it; nested listings restore at the outer end', async () => {
    expect(currentInterruptBudget()).toBe(DEFAULT);
    const seen: number[] = [];
    api.stats.onThrottle = () => seen.push(currentInterruptBudget());
    emu.injectFault('ListTagsForResource', 'ThrottlingException', 1);
    const records = await findGroups(api, cfg(), { expected: null, nowMs: Date.now() });
    expect(records).toHaveLength(151);
    expect(seen).toEqual([DEFAULT * 4]);
    expect(currentInterruptBudget()).toBe(DEFAULT);

    const outer = tierUpLater();
    await findGroups(api, cfg(), { expected: null, nowMs: Date.now() });
    expect(currentInterruptBudget()).toBe(DEFAULT * 4);
    outer();
    outer(); // once only
    expect(currentInterruptBudget()).toBe(DEFAULT);
  });

  it('a failed listing restores it too', async () => {
    emu.injectFault('ListScheduleGroups', 'AccessDeniedException', 1);
    await expect(findGroups(api, cfg(), { expected: null, nowMs: Date.now() })).rejects.toThrow(/AWS denied scheduler:ListScheduleGroups/);
    expect(currentInterruptBudget()).toBe(DEFAULT);
  });

  it('the built CLI: per-group and tagging-api listings run from the bundle\'s code cache, with nothing else on stderr', async () => {
    for (const extra of [{}, { tagSource: 'tagging-api' }]) {
      const r = await cliProcess(['--config', sgConfig({ desiredTags: {}, ...extra }), 'schedule-groups', '-o', 'json'], { ...awsEnv(emu), OPSCTL_DEBUG_CODE_CACHE: '1' });
      expect(r.code, r.stderr).toBe(0);
      expect(r.json().items).toHaveLength(151);
      // The libraries load from node_modules; neither SDK client warns about Node 20 (src/aws.ts).
      expect(r.stderr).toBe('opsctl: code cache used\n');
    }
  });
});
