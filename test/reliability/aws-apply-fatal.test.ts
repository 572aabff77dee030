import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SchedulerEmulator } from '../../src/emulator/scheduler-emulator.js';
import { cli } from '../support/cli.js';
import { awsEnv, emulator, owner, sgConfig } from '../support/aws.js';

/**
 * Issue 25.1: an AWS apply cut short by a fatal answer (an HTML 502 from a proxy, AccessDenied)
 * on one group's TagResource. AWS has no transaction: the other groups' changes happened, so
 * each is reported with its real outcome and journaled with --reason, the faulted group is
 * errored with the sentence, the ones never tried say so, and -o json stays one document; exit 3.
 */
let emu: SchedulerEmulator;
beforeEach(async () => {
  emu = await emulator();
});
afterEach(async () => {
  await emu.close();
});

const FAULTS = {
  'HTML 502': (g: string) => `html=502,op=TagResource,group=${g}`,
  AccessDeniedException: (g: string) => `error=AccessDeniedException,op=TagResource,group=${g},times=100`,
} as const;
const SENTENCE = {
  'HTML 502': /answered scheduler:TagResource with HTTP 502 and a page that is not an AWS answer/,
  AccessDeniedException: /^AWS denied scheduler:TagResource/,
} as const;

const journal = (state: string) => {
  const file = join(state, 'audit.jsonl');
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l)) : [];
};
const names = (n: number) => Array.from({ length: n }, (_, i) => `r-${String(i + 1).padStart(n > 9 ? 2 : 1, '0')}`);

async function run(kind: 'adopt' | 'reconcile', fault: keyof typeof FAULTS, groups: string[], faulted: string) {
  emu.addFault(FAULTS[fault](faulted));
  const state = mkdtempSync(join(tmpdir(), 'opsctl-state-'));
  const args = kind === 'adopt' ? ['adopt', 'schedule-group'] : ['schedule-groups', 'reconcile'];
  const r = await cli(['--config', sgConfig(), ...args, ...groups, '--apply', '--yes', '--reason', 'INC-9', '-o', 'json'], awsEnv(emu, { OPSCTL_STATE_DIR: state }));
  // Changed in AWS: every owner and desired tag in place.
  const changed = groups.filter((g) => {
    const tags = emu.groups().find((x) => x.name === g)?.tags ?? {};
    return Object.entries({ ...owner(g), team: 'payments' }).every(([k, v]) => tags[k] === v);
  });
  return { r, changed, lines: journal(state) };
}

describe.each([
  ['adopt', 'adopted', (g: string) => emu.seedGroup(g, { env: 'prod' })],
  ['reconcile', 'reconciled', (g: string) => emu.seedGroup(g, { ...owner(g), team: 'old' })],
] as const)('%s --apply, a fatal answer on one group', (kind, applied, seed) => {
  it.each([
    ['HTML 502', 3, 1],
    ['AccessDeniedException', 3, 1],
    ['HTML 502', 20, 0],
    ['AccessDeniedException', 20, 0],
    // Batches of 32: the second batch is cut, the first one's changes are already journaled.
    ['HTML 502', 40, 35],
    ['AccessDeniedException', 40, 35],
  ] as const)('%s on TagResource, %i groups, group #%i faulted: every change is reported and journaled; exit 3', async (fault, n, at) => {
    const groups = names(n);
    for (const g of groups) seed(g);
    const faulted = groups[at] as string;
    const { r, changed, lines } = await run(kind, fault, groups, faulted);
    expect(r.code).toBe(3);
    const doc = JSON.parse(r.stdout); // one valid document
    expect(changed.length).toBeGreaterThan(0);
    expect(changed).not.toContain(faulted);

    const byName = new Map<string, any>(doc.items.map((i: any) => [i.name, i]));
    expect([...byName.keys()].sort()).toEqual(groups);
    // Every group changed in AWS is reported as such, and journaled with the reason.
    expect(doc.items.filter((i: any) => i.outcome === applied).map((i: any) => i.name).sort()).toEqual(changed);
    expect(lines.map((l) => l.resourceId).sort()).toEqual(changed);
    for (const l of lines) expect(l).toMatchObject({ kind: `schedule_group.${applied}`, metadata: { reason: 'INC-9' } });
    // The faulted group: errored with the sentence; the rest: never attempted, and untouched.
    expect(byName.get(faulted)).toMatchObject({ outcome: 'errored', outcomeClass: 'errored' });
    expect(byName.get(faulted).detail).toMatch(SENTENCE[fault]);
    for (const g of groups.filter((x) => x !== faulted && !changed.includes(x))) {
      expect(byName.get(g)).toMatchObject({ outcome: 'errored', detail: 'not attempted: the run stopped early' });
    }
    expect(doc.summary).toMatchObject({ [applied]: changed.length, errored: n - changed.length });
    const sentence = SENTENCE[fault].source.replace(/^\^/, '');
    expect(doc.summary.aborted).toMatch(new RegExp(`^stopped during batch ${n > 32 ? 2 : 1}: .*${sentence}`));
    // The failure is on stderr too, as one sentence.
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(new RegExp(`^opsctl: .*${sentence}`));
  });
});
