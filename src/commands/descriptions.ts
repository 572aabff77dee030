/**
 * Every top-level command's one-line description: the root --help (commands/index.ts) and
 * each command's own help read it here, so they never disagree. No imports: any command may use it.
 */
export const DESCRIPTIONS: Record<string, string> = {
  'executions': 'Stuck executions in a job/execution table',
  'reap': 'Move stuck executions to the failed status (dry run unless --apply)',
  'propagations': 'Dead-lettered and troubled rows of the propagation outbox',
  'schedule-groups': 'Unowned, foreign, drifted and missing EventBridge Scheduler groups',
  'adopt': 'Take over resources by tagging them with the ownership tags',
  'jobs': 'Stuck and discarded jobs in a PostgreSQL job queue: River, graphile-worker, pg-boss, Oban (jobs.queue)',
  'workers': 'Workers with a stale heartbeat and the rows they still hold (workers.*)',
  'locks': 'Expired lock rows and advisory locks held by idle sessions (read-only)',
  'apply': 'Apply a reviewed plan written by a dry run with --plan-out: exactly its items, each re-checked',
  'runs': 'Every --apply as a run: list them, show one with the before and after of each change (read-only)',
  'revert': 'Put back what a run changed, where nothing changed since (dry run unless --apply)',
  'check': 'Run every check read-only (for CI cron): stuck executions, dead letters, stalled propagations, schedule groups, stuck/discarded jobs',
  'demo': 'See opsctl work in a minute: a throwaway PostgreSQL and Scheduler emulator with realistic trouble',
  'config': 'Inspect the effective configuration',
  'emulator': 'Local emulators for tests, demos and anyone without an AWS account',
  'completion': 'Print a shell completion script (bash, zsh, fish) generated from the command tree',
};

/** The description of a top-level command. */
export function describe(name: string): string {
  return DESCRIPTIONS[name] ?? '';
}
