import type { Command } from 'commander';
import type { Registrar } from '../cli.js';

type Register = (program: Command, r: Registrar) => void;

/**
 * Every top-level command, its one-line description and the module that registers it.
 * Start-up loads only the module of the command being run; root --help needs just this table.
 */
export const COMMAND_INDEX: Array<{ name: string; description: string; load: () => Promise<Register> }> = [
  { name: 'executions', description: 'Stuck executions in a job/execution table', load: async () => (await import('./executions.js')).registerExecutionCommands },
  { name: 'reap', description: 'Move stuck executions to the failed status (dry run unless --apply)', load: async () => (await import('./executions.js')).registerExecutionCommands },
  { name: 'propagations', description: 'Dead-lettered and troubled rows of the propagation outbox', load: async () => (await import('./propagations.js')).registerPropagationCommands },
  { name: 'schedule-groups', description: 'Unowned, foreign, drifted and missing EventBridge Scheduler groups', load: async () => (await import('./schedule-groups.js')).registerScheduleGroupCommands },
  { name: 'adopt', description: 'Take over resources by tagging them with the ownership tags', load: async () => (await import('./schedule-groups.js')).registerScheduleGroupCommands },
  { name: 'jobs', description: 'Stuck and discarded jobs in a PostgreSQL job queue: River, graphile-worker, pg-boss (jobs.queue)', load: async () => (await import('./jobs.js')).registerJobCommands },
  { name: 'workers', description: 'Workers with a stale heartbeat and the rows they still hold (workers.*)', load: async () => (await import('./workers.js')).registerWorkerCommands },
  { name: 'locks', description: 'Expired lock rows and advisory locks held by idle sessions (read-only)', load: async () => (await import('./locks.js')).registerLockCommands },
  { name: 'check', description: 'Run every check read-only (for CI cron): stuck executions, dead letters, stalled propagations, schedule groups, stuck/discarded jobs', load: async () => (await import('./check.js')).registerCheckCommand },
  { name: 'demo', description: 'See opsctl work in a minute: a throwaway PostgreSQL and Scheduler emulator with realistic trouble', load: async () => (await import('./demo.js')).registerDemoCommand },
  { name: 'config', description: 'Inspect the effective configuration', load: async () => (await import('./config.js')).registerConfigCommands },
  { name: 'emulator', description: 'Local emulators for tests, demos and anyone without an AWS account', load: async () => (await import('./emulator.js')).registerEmulatorCommands },
];

/** The description of a top-level command, so its module and the index never disagree. */
export function describe(name: string): string {
  return COMMAND_INDEX.find((c) => c.name === name)?.description ?? '';
}
