import type { Config } from '../config.js';
import type { Database } from '../database.js';
import type { SchedulerApi } from '../aws.js';
import { OpsctlError } from '../errors.js';
import { formatAge, formatDuration, parseDuration } from '../durations.js';

/**
 * `opsctl check`: every check, read-only, concurrently. A check that cannot run is
 * "unknown" — never "ok" — and a check whose config is not set up is "skipped".
 */

export const CHECK_GROUPS = ['executions', 'propagations', 'schedule-groups', 'jobs', 'workers'] as const;
export type CheckGroup = (typeof CHECK_GROUPS)[number];
export type CheckStatus = 'ok' | 'finding' | 'unknown' | 'skipped';

export interface CheckResult {
  check: string;
  group: CheckGroup;
  status: CheckStatus;
  count: number;
  threshold: number;
  /** One line: the worst example, for the summary table. */
  worst: string | null;
  /** Up to ITEM_LIMIT findings. */
  items: Record<string, unknown>[];
  /** Extra figures (e.g. per class, per problem) for json and prometheus. */
  breakdown: Record<string, number>;
  error?: string;
  durationMs: number;
}

export const ITEM_LIMIT = 20;

export interface CheckDeps {
  config: Config;
  openDb: () => Promise<Database>;
  openScheduler: () => Promise<SchedulerApi>;
  expectedGroups: () => Promise<string[] | null>;
  now: () => number;
}

type Runner = (deps: CheckDeps) => Promise<Omit<CheckResult, 'check' | 'group' | 'status' | 'durationMs' | 'threshold'>>;

async function withDb<T>(deps: CheckDeps, fn: (db: Database) => Promise<T>): Promise<T> {
  const db = await deps.openDb();
  try {
    return await db.readOnly(fn);
  } finally {
    await db.close();
  }
}

const stuckExecutions: Runner = (deps) =>
  withDb(deps, async (db) => {
    const cfg = deps.config.executions;
    const { assertExecutionsSchema, countStuck, findStuck } = await import('./stuck-executions.js');
    await assertExecutionsSchema(db, cfg);
    const q = { thresholdMs: parseDuration(cfg.threshold, 'executions.threshold'), statuses: cfg.stuckStatuses };
    const count = await countStuck(db, cfg, q);
    const items = count ? await findStuck(db, cfg, { ...q, limit: ITEM_LIMIT }) : [];
    const w = items[0];
    return {
      count,
      worst: w ? `${w.id} in ${w.status} for ${formatAge(w.ageSeconds * 1000)} (threshold ${formatDuration(q.thresholdMs)})` : null,
      items: items as unknown as Record<string, unknown>[],
      breakdown: { oldestAgeSeconds: w?.ageSeconds ?? 0 },
    };
  });

const deadLetters: Runner = (deps) =>
  withDb(deps, async (db) => {
    const cfg = deps.config.propagations;
    const { assertPropagationsSchema } = await import('./propagations-table.js');
    const { summariseDeadLetters, streamDeadLetters } = await import('./dead-letters.js');
    await assertPropagationsSchema(db, cfg);
    const s = await summariseDeadLetters(db, cfg, {});
    const items: Record<string, unknown>[] = [];
    if (s.total)
      for await (const d of streamDeadLetters(db, cfg, {}, ITEM_LIMIT))
        items.push({ id: d.id, kind: d.kind, attempts: d.attempts, failedAt: d.failedAt, lastError: d.lastError });
    const top = s.byErrorClass[0];
    return {
      count: s.total,
      worst: top ? `${top.count}× ${top.errorClass} (${top.kinds.join(', ')})` : null,
      items,
      breakdown: Object.fromEntries(s.byKind.map((k) => [k.kind, k.count])),
    };
  });

const pendingPropagations: Runner = (deps) =>
  withDb(deps, async (db) => {
    const cfg = deps.config.propagations;
    const { assertPropagationsSchema } = await import('./propagations-table.js');
    const { summarisePending, streamPending } = await import('./pending-propagations.js');
    await assertPropagationsSchema(db, cfg);
    const q = { overdueMs: parseDuration(cfg.overdue, 'propagations.overdue'), limit: ITEM_LIMIT };
    const s = await summarisePending(db, cfg, q);
    const items: Record<string, unknown>[] = [];
    if (s.troubled)
      for await (const p of streamPending(db, cfg, q))
        items.push({ id: p.id, kind: p.kind, attempts: p.attempts, problems: p.problems, nextAttemptAt: p.nextAttemptAt, lastError: p.lastError });
    const w = items[0] as { id?: string; kind?: string; problems?: string[] } | undefined;
    return {
      count: s.troubled,
      worst: w ? `${w.id} (${w.kind}): ${(w.problems ?? []).join(', ')}` : null,
      items,
      breakdown: { overdue: s.overdue, 'near-dead': s.nearDead, 'unknown-kind': s.unknownKind },
    };
  });

const scheduleGroups: Runner = async (deps) => {
  const cfg = deps.config.scheduleGroups;
  const classes = deps.config.check.scheduleGroupClasses;
  const expected = await deps.expectedGroups();
  const api = await deps.openScheduler();
  try {
    const { findGroups } = await import('./schedule-groups.js');
    const { describeChanges } = await import('./tag-diff.js');
    const all = await findGroups(api, cfg, { expected, nowMs: deps.now() });
    const breakdown: Record<string, number> = { owned: 0, unowned: 0, foreign: 0, drifted: 0, missing: 0, ignored: 0 };
    for (const g of all) breakdown[g.class] += 1;
    const found = all.filter((g) => (classes as string[]).includes(g.class));
    const rank = ['foreign', 'missing', 'drifted', 'unowned'];
    const sorted = [...found].sort((a, b) => rank.indexOf(a.class) - rank.indexOf(b.class));
    const w = sorted[0];
    return {
      count: found.length,
      worst: w ? `${w.name}: ${w.class}${w.reasons.length ? ` (${w.reasons.slice(0, 2).join('; ')})` : ''}` : null,
      items: sorted.slice(0, ITEM_LIMIT).map((g) => ({ name: g.name, state: g.state, class: g.class, diff: describeChanges(g.changes), reasons: g.reasons })),
      breakdown,
    };
  } finally {
    api.client.destroy();
  }
};

const stuckJobs: Runner = (deps) =>
  withDb(deps, async (db) => {
    const { resolveQueue, rescueThresholdMs, assertQueueSchema } = await import('./jobs-presets.js');
    const { countStuckJobs, findStuckJobs } = await import('./stuck-jobs.js');
    const q = resolveQueue(deps.config);
    await assertQueueSchema(db, q);
    const f = { thresholdMs: rescueThresholdMs(q, undefined) };
    const total = await countStuckJobs(db, q, f);
    const items = total.count ? (await findStuckJobs(db, q, f, ITEM_LIMIT)).map(({ token: _t, ...j }) => j) : [];
    const w = items[0];
    return {
      count: total.count,
      worst: w ? `${w.id} (${w.kind}) in ${w.state} for ${formatAge(w.ageSeconds * 1000)} (threshold ${w.threshold})` : null,
      items: items as unknown as Record<string, unknown>[],
      breakdown: { oldestAgeSeconds: total.oldestAgeSeconds },
    };
  });

const discardedJobs: Runner = (deps) =>
  withDb(deps, async (db) => {
    const { resolveQueue, assertQueueSchema } = await import('./jobs-presets.js');
    const { summariseDiscardedJobs, streamDiscardedJobs } = await import('./discarded-jobs.js');
    const q = resolveQueue(deps.config);
    await assertQueueSchema(db, q);
    const f = { includeCancelled: q.cfg.includeCancelled };
    const s = await summariseDiscardedJobs(db, q, f);
    const items: Record<string, unknown>[] = [];
    if (s.total)
      for await (const d of streamDiscardedJobs(db, q, f, ITEM_LIMIT))
        items.push({ id: d.id, kind: d.kind, state: d.state, attempt: d.attempt, finalizedAt: d.finalizedAt, lastError: d.lastError });
    const top = s.byErrorClass[0];
    return {
      count: s.total,
      worst: top ? `${top.count}× ${top.errorClass} (${top.kinds.join(', ')})` : null,
      items,
      breakdown: Object.fromEntries(s.byKind.map((k) => [k.kind, k.count])),
    };
  });

const deadWorkers: Runner = (deps) =>
  withDb(deps, async (db) => {
    const { deadWorkersCheck } = await import('./dead-workers.js');
    return deadWorkersCheck(db, deps.config.workers, parseDuration(deps.config.workers.stale, 'workers.stale'), ITEM_LIMIT);
  });

const jobsNotConfigured = (c: Config) => (c.jobs.queue === null ? 'jobs.queue is not configured' : null);

interface CheckDef {
  check: string;
  group: CheckGroup;
  threshold: (c: Config) => number;
  run: Runner;
  /** Why it is skipped, when its config is not set up. */
  skip?: (c: Config) => string | null;
}

export const CHECKS: CheckDef[] = [
  { check: 'stuck-executions', group: 'executions', threshold: (c) => c.check.thresholds.stuckExecutions, run: stuckExecutions },
  { check: 'dead-letters', group: 'propagations', threshold: (c) => c.check.thresholds.deadLetters, run: deadLetters },
  { check: 'pending-propagations', group: 'propagations', threshold: (c) => c.check.thresholds.pendingPropagations, run: pendingPropagations },
  {
    check: 'schedule-groups',
    group: 'schedule-groups',
    threshold: (c) => c.check.thresholds.scheduleGroups,
    run: scheduleGroups,
    skip: (c) => (Object.keys(c.scheduleGroups.ownerTags).length === 0 ? 'scheduleGroups.ownerTags is not configured' : null),
  },
  { check: 'stuck-jobs', group: 'jobs', threshold: (c) => c.check.thresholds.stuckJobs, run: stuckJobs, skip: jobsNotConfigured },
  { check: 'discarded-jobs', group: 'jobs', threshold: (c) => c.check.thresholds.discardedJobs, run: discardedJobs, skip: jobsNotConfigured },
  { check: 'dead-workers', group: 'workers', threshold: (c) => c.check.thresholds.deadWorkers, run: deadWorkers, skip: (c) => (c.workers.enabled ? null : 'workers.enabled is false') },
];

function describe(e: unknown): string {
  if (e instanceof OpsctlError) return e.message;
  return (e as Error)?.message ?? String(e);
}

/** Runs the selected checks concurrently; never throws for a check's own failure. */
export async function runChecks(deps: CheckDeps, only: CheckGroup[] | null): Promise<CheckResult[]> {
  const selected = CHECKS.filter((c) => !only || only.includes(c.group));
  return Promise.all(
    selected.map(async (def): Promise<CheckResult> => {
      const started = performance.now();
      const threshold = def.threshold(deps.config);
      const base = { check: def.check, group: def.group, threshold };
      const skipped = def.skip?.(deps.config);
      if (skipped && !only?.includes(def.group)) {
        return { ...base, status: 'skipped', count: 0, worst: null, items: [], breakdown: {}, error: skipped, durationMs: 0 };
      }
      try {
        if (skipped) throw new Error(skipped);
        const r = await def.run(deps);
        return { ...base, ...r, status: r.count >= threshold ? 'finding' : 'ok', durationMs: Math.round(performance.now() - started) };
      } catch (e) {
        return { ...base, status: 'unknown', count: 0, worst: null, items: [], breakdown: {}, error: describe(e), durationMs: Math.round(performance.now() - started) };
      }
    }),
  );
}

/** 3 if any check could not run, else 1 if any finding crossed its threshold, else 0. */
export function checkExitCode(results: CheckResult[]): number {
  if (results.some((r) => r.status === 'unknown')) return 3;
  if (results.some((r) => r.status === 'finding')) return 1;
  return 0;
}
