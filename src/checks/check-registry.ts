import type { CheckDefinition } from './check/definition.js';
import { stuckExecutionsCheck } from './check/stuck-executions.js';
import { deadLettersCheck } from './check/dead-letters.js';
import { pendingPropagationsCheck } from './check/pending-propagations.js';
import { scheduleGroupsCheck } from './check/schedule-groups.js';
import { stuckJobsCheck } from './check/stuck-jobs.js';
import { discardedJobsCheck } from './check/discarded-jobs.js';

/**
 * Every check `opsctl check` runs, in report order: adding one is its file in check/, its
 * tests and a line here. Its group is what --only selects; its threshold key is accepted
 * under check.thresholds.
 */
export const CHECKS: readonly CheckDefinition[] = [
  stuckExecutionsCheck,
  deadLettersCheck,
  pendingPropagationsCheck,
  scheduleGroupsCheck,
  stuckJobsCheck,
  discardedJobsCheck,
];

export const CHECK_GROUPS: readonly string[] = [...new Set(CHECKS.map((c) => c.group))];

/** check.thresholds keys with their defaults, for the config. */
export const CHECK_THRESHOLDS: Record<string, number> = Object.fromEntries(CHECKS.map((c) => [c.threshold.key, c.threshold.default]));
