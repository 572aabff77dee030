import type { Register } from './registrar.js';
import { DESCRIPTIONS } from './descriptions.js';

/**
 * Every top-level command and the module that registers it (descriptions in descriptions.ts).
 * Start-up loads only the module of the command being run; root --help needs just this table.
 */
const LOADERS: Array<[string, () => Promise<Register>]> = [
  ['executions', async () => (await import('./executions.js')).registerExecutionCommands],
  ['reap', async () => (await import('./executions.js')).registerExecutionCommands],
  ['propagations', async () => (await import('./propagations.js')).registerPropagationCommands],
  ['schedule-groups', async () => (await import('./schedule-groups.js')).registerScheduleGroupCommands],
  ['adopt', async () => (await import('./schedule-groups.js')).registerScheduleGroupCommands],
  ['jobs', async () => (await import('./jobs.js')).registerJobCommands],
  ['workers', async () => (await import('./workers.js')).registerWorkerCommands],
  ['locks', async () => (await import('./locks.js')).registerLockCommands],
  ['apply', async () => (await import('./apply.js')).registerApplyCommand],
  ['runs', async () => (await import('./runs.js')).registerRunAndRevertCommands],
  ['revert', async () => (await import('./runs.js')).registerRunAndRevertCommands],
  ['check', async () => (await import('./check.js')).registerCheckCommand],
  ['demo', async () => (await import('./demo.js')).registerDemoCommand],
  ['config', async () => (await import('./config.js')).registerConfigCommands],
  ['emulator', async () => (await import('./emulator.js')).registerEmulatorCommands],
  ['completion', async () => (await import('./completion.js')).registerCompletionCommand],
];

export const COMMAND_INDEX: Array<{ name: string; description: string; load: () => Promise<Register> }> = LOADERS.map(([name, load]) => ({
  name,
  description: DESCRIPTIONS[name] ?? '',
  load,
}));
