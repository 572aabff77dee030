import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSchedulerEmulator, type SchedulerEmulator, type EmulatorOptions } from '../../src/emulator/scheduler-emulator.js';

export const AWS_SECRET = 'wJalrXUtnFEMI-test-SECRET-KEY';

export const OWNER = { 'alchemy::stack': 'billing', 'alchemy::stage': 'prod', 'alchemy::id': '{name}' };
export const owner = (name: string) => ({ 'alchemy::stack': 'billing', 'alchemy::stage': 'prod', 'alchemy::id': name });

export async function emulator(opts: EmulatorOptions = {}): Promise<SchedulerEmulator> {
  // Long DELETING window by default so seeded DELETING groups stay put; tests of the window shorten it.
  return startSchedulerEmulator({ deletingMs: 3_600_000, ...opts });
}

/** One state directory per test file: the audit journal and lock files never touch the real ~/.local/state. */
export const STATE_DIR = mkdtempSync(join(tmpdir(), 'opsctl-state-'));

/** Environment for the CLI against the emulator: static test credentials, never real AWS. */
export function awsEnv(emu: SchedulerEmulator, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    AWS_ENDPOINT_URL_SCHEDULER: emu.url,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'AKIDTESTONLY',
    AWS_SECRET_ACCESS_KEY: AWS_SECRET,
    AWS_EC2_METADATA_DISABLED: 'true',
    OPSCTL_STATE_DIR: STATE_DIR,
    ...extra,
  };
}

/** A config file with the reference ownership tags, a fast conflict retry and any extra keys. */
export function sgConfig(extra: Record<string, unknown> = {}, top: Record<string, unknown> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'opsctl-sg-'));
  const file = join(dir, 'opsctl.json');
  writeFileSync(
    file,
    JSON.stringify({
      ...top,
      scheduleGroups: {
        ownerTags: OWNER,
        ownerKeyPrefix: 'alchemy::',
        desiredTags: { team: 'payments' },
        conflictRetries: 5,
        conflictDelay: '10ms',
        ...extra,
      },
    }),
  );
  return file;
}
