import type { CommandContext } from '../cli/context.js';
import type { Config } from '../config/config.js';
import type { Database } from '../database/database.js';
import type { SchedulerApi } from '../aws/scheduler-api.js';
import type { RemediationReport, Remedy, RemedyHost } from '../engine/remediation.js';
import type { AuditSink, GroupPlan } from './schedule-group-remedies.js';
import { ExitCode } from '../errors.js';

/**
 * adopt / reconcile over one account+region, built one way for a single-target run and for
 * every target × region of a fleet, so both keep issue #13's guarantees: named groups fetched
 * directly, the account+region lock (--wait), every change audited with --reason (audit.table,
 * else the local journal), and named refused/absent/gone groups an exit 1.
 */

export interface GroupWriteSpec {
  kind: 'adopt' | 'reconcile';
  names: string[];
  prefix?: string;
  force: boolean;
  allUnowned: boolean;
  createMissing: boolean;
  /** Recorded in the audit entry of every AWS change. */
  reason: string | null;
  /** The effective config of the run (or of the target): its scheduleGroups, actor and audit. */
  config: Pick<Config, 'scheduleGroups' | 'actor' | 'audit'>;
  expected: string[] | null;
  /** A listing restarted on a dead page token, etc. */
  onWarning?: (warning: string) => void;
}

export interface GroupWriteRun {
  apply: boolean;
  /** Wait for another adopter of the same account+region instead of exiting 3. */
  wait: boolean;
  /** Set when the audit goes to config.audit.table: its session (also takes the advisory lock). */
  db: Database | null;
}

export interface PreparedGroupWrite {
  remedy: Remedy<GroupPlan, SchedulerApi>;
  host: RemedyHost<SchedulerApi>;
}

/** Writes stay at most 8 in flight (see writeConcurrency in checks/schedule-group-remedies.ts): batches of 4 such rounds. */
export const groupBatchSize = (cfg: Config['scheduleGroups']): number => Math.max(Math.min(cfg.concurrency, 8) * 4, 32);

/** Whether an --apply run needs a database session for its audit (else: the local journal). */
export const auditsToDatabase = (config: Pick<Config, 'audit'>, apply: boolean): boolean => apply && Boolean(config.audit.table);

/** The remedy and the host for one account+region: the one construction both paths use. */
export async function prepareGroupWrite(ctx: CommandContext, api: SchedulerApi, s: GroupWriteSpec, run: GroupWriteRun): Promise<PreparedGroupWrite> {
  const { findGroups, findNamedGroups } = await import('./schedule-groups.js');
  const { adoptRemedy, reconcileRemedy, schedulerHost } = await import('./schedule-group-remedies.js');
  const { parseDuration } = await import('../config/durations.js');
  const cfg = s.config.scheduleGroups;
  const common = {
    cfg,
    force: s.force,
    retry: { tries: cfg.conflictRetries, delayMs: parseDuration(cfg.conflictDelay, 'scheduleGroups.conflictDelay') },
    nowMs: () => ctx.deps.now(),
    find: (a: SchedulerApi) => findGroups(a, cfg, { prefix: s.prefix, expected: s.expected, nowMs: ctx.deps.now(), onWarning: s.onWarning }),
    // Named groups are read directly, never through the account's whole listing.
    findNamed: (a: SchedulerApi, n: string[]) => findNamedGroups(a, cfg, n, { nowMs: ctx.deps.now() }),
    expected: s.expected,
    reason: s.reason,
    actor: s.config.actor,
  };
  const remedy = s.kind === 'adopt' ? adoptRemedy({ ...common, names: s.names, allUnowned: s.allUnowned }) : reconcileRemedy({ ...common, names: s.names, createMissing: s.createMissing });
  // Every AWS change is audited: in the audit table when one is configured, else in the local journal.
  const audit = run.apply ? await groupAuditSink(ctx, api, s.config, run.db) : undefined;
  const host = schedulerHost(api, { lock: schedulerLock(ctx, api, run.db, run.wait), audit });
  return { remedy, host };
}

/**
 * Where a run's AWS changes are recorded: the audit table (its session `db`; whether it can take
 * them is settled from the catalog first, before any AWS call), else the local journal, each
 * line naming the region and the target. Either refuses here, with nothing changed.
 */
export async function groupAuditSink(ctx: CommandContext, api: SchedulerApi, config: Pick<Config, 'actor' | 'audit'>, db: Database | null): Promise<AuditSink> {
  if (db) {
    const { auditShape, writeAudit } = await import('../engine/audit.js');
    // AWS changes cannot be rolled back: whether the table can record them is settled from the
    // catalog now, before the first AWS call (refused with nothing changed, else how ids fit).
    const shape = await auditShape(db, config.audit);
    const sink: AuditSink = (entries) => db.transaction((tx) => writeAudit(tx, config.audit, config.actor, entries, shape));
    sink.table = true;
    return sink;
  }
  const { journalPath, openJournal } = await import('../engine/local-state.js');
  const append = await openJournal(journalPath(ctx.io.env));
  // Each line names the account's region (and endpoint) and the target it was made on.
  const target = { kind: 'aws' as const, name: ctx.targetName, region: api.region, endpoint: api.endpoint ?? null };
  return (entries) => append(config.actor, entries, target);
}

/**
 * A named group that is refused, absent or gone fails the run (exit 1), dry run or not: a typo
 * in CI must not pass silently. Unnamed selections only fail on errors. Returns those names.
 */
export function settleNamed(names: string[], report: RemediationReport<GroupPlan>): string[] {
  if (names.length === 0) return [];
  const failed = report.items.filter((i) => i.outcomeClass === 'refused' || i.outcome === 'gone').map((i) => i.name);
  if (failed.length && report.exitCode === ExitCode.OK) report.exitCode = ExitCode.FINDINGS;
  return failed;
}

/**
 * The lock that keeps two adopters off the same account+region (and endpoint): a lock file in
 * the local state directory, plus a PostgreSQL advisory lock when the audit goes to the
 * database, so runs on other hosts sharing that database are kept apart too.
 */
export function schedulerLock(ctx: CommandContext, api: SchedulerApi, db: Database | null, wait: boolean) {
  return async () => {
    const { getGroup, accountOf } = await import('../aws/scheduler-gateway.js');
    const { translateAwsError } = await import('../aws/scheduler-api.js');
    // The account is read from an ARN: `default` exists in every account and region.
    const account = accountOf((await getGroup(api, 'default').catch((e) => Promise.reject(translateAwsError(e, 'GetScheduleGroup', api))))?.Arn) ?? 'unknown-account';
    const key = `scheduler-${account}-${api.region}${api.endpoint ? `-${new URL(api.endpoint).host}` : ''}`;
    const what = `schedule groups of account ${account} in ${api.region}${api.endpoint ? ` at ${api.endpoint}` : ''}`;
    const { acquireFileLock } = await import('../engine/local-state.js');
    const file = await acquireFileLock(ctx.io.env, key, what, { wait, onWaiting: (m) => ctx.say(`opsctl: ${m}`) });
    if (!db) return file;
    try {
      const { acquireKeyLock } = await import('../engine/advisory-lock.js');
      const held = await acquireKeyLock(db, key, what, { wait });
      return { release: async () => (await held.release(), await file.release()) };
    } catch (e) {
      await file.release();
      throw e;
    }
  };
}
