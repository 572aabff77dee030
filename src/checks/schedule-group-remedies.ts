import type { ScheduleGroupsConfig } from '../config/config.js';
import type { AuditEntry } from '../engine/audit.js';
import { NOT_ATTEMPTED, type ItemOutcome, type PlannedItem, type Remedy, type RemedyHost } from '../engine/remediation.js';
import { type SchedulerApi, isFatalAwsError, translateAwsError, withConflictRetry, type ConflictRetry } from '../aws/scheduler-api.js';
import { mapWithConcurrency } from '../engine/concurrency.js';
import { dependencyError } from '../errors.js';
import { parseDuration } from '../config/durations.js';
import { createGroupCall, getGroup, isNotFound, readGroupNow, readTags, tagGroup, untagGroup } from '../aws/scheduler-gateway.js';
import { adoptChanges, applyChanges, classify, describeChanges, expectedOwnerTags, reconcileChanges, type GroupClass, type TagChange, type Tags } from './tag-diff.js';
// Types only: the finder re-exports this module, so a value import back would be a cycle.
import type { GroupRecord } from './schedule-groups.js';

/**
 * Adopt and reconcile over Scheduler. The plan is read-only; at write time every group is
 * read again (GetScheduleGroup for its State, then its tags) and the ownership gate applied to
 * what AWS holds now: a group DELETING since the plan is refused at once, one that vanished is
 * `gone`, one that became foreign is refused. Each applied change carries its audit entry.
 */

/**
 * Where audit entries go: the database audit table when configured, else the local journal.
 * `table`: set when it writes into the audit table (the run's record then goes there too).
 */
export type AuditSink = ((entries: AuditEntry[]) => Promise<void>) & { table?: boolean };

/**
 * The engine's view of Scheduler: no transaction; every write is re-checked per group instead.
 * `lock`: the account+region lock; `audit`: where the engine's audit entries go (none: not recorded).
 */
export function schedulerHost(api: SchedulerApi, extra: { lock?: RemedyHost<SchedulerApi>['lock']; audit?: AuditSink } = {}): RemedyHost<SchedulerApi> {
  return {
    target: api,
    lock: extra.lock ?? (async () => ({ release: async () => {} })),
    readOnly: (fn) => fn(api),
    batch: (fn) => fn(api),
    isFatal: isFatalAwsError,
    describeError: (e) => translateAwsError(e, 'call', api).message,
    translate: (e) => translateAwsError(e, 'call', api),
    // No transaction to share with AWS: the engine hands each batch's entries over once the
    // changes were verified by read-back. A failure to record them is fatal (an OpsctlError),
    // so the engine stops instead of re-applying the batch item by item.
    writeAudit: async (_api, _destination, entries) => {
      if (!extra.audit || entries.length === 0) return;
      try {
        await extra.audit(entries);
      } catch (e) {
        throw dependencyError(`${entries.length} change(s) were made in AWS but their audit could not be recorded: ${(e as Error).message}`, e);
      }
    },
    // The run's record: into the audit table when the changes go there (else runs.jsonl).
    recordRun: async (_destination, entry) => {
      if (!extra.audit?.table) return false;
      await extra.audit([entry]);
      return true;
    },
  };
}

export interface GroupPlan extends PlannedItem {
  name: string;
  arn: string | null;
  state: string;
  class: GroupClass;
  action: 'tag' | 'create' | 'recreate' | 'none';
  changes: TagChange[];
  /** Rendered changes, for tables and json alike. */
  diff: string;
}

/** An outcome; an applied one carries the audit entry of its AWS change (the engine records it). */
export type GroupOutcome = ItemOutcome;

export interface WriteOptions {
  cfg: ScheduleGroupsConfig;
  force: boolean;
  retry: ConflictRetry;
  nowMs: () => number;
  /** Groups considered when no names are given (the listing; findGroups). */
  find: (api: SchedulerApi) => Promise<GroupRecord[]>;
  /** Named groups, read directly (findNamedGroups); without it, picked out of `find`. */
  findNamed?: (api: SchedulerApi, names: string[]) => Promise<GroupRecord[]>;
  /** Expected names (config), for re-creating an expected group through its DELETING window. */
  expected?: string[] | null;
  /** --reason: recorded in the audit entry of every change. */
  reason?: string | null;
  actor?: string;
}

/** The named groups: read directly when the caller can, else picked out of the listing (absent = missing). */
async function named(api: SchedulerApi, o: WriteOptions, names: string[]): Promise<GroupRecord[]> {
  if (o.findNamed) return o.findNamed(api, names);
  const byName = new Map((await o.find(api)).map((r) => [r.name, r]));
  const absent = (name: string): GroupRecord => ({
    name, arn: null, state: 'ABSENT', class: 'missing', reasons: ['no such schedule group'], changes: reconcileChanges(o.cfg, name, {}), tags: {}, creationDate: null, lastModificationDate: null,
  });
  return names.map((n) => byName.get(n) ?? absent(n));
}

/**
 * Writes (TagResource, CreateScheduleGroup) stay at most 8 in flight whatever the read
 * concurrency: CreateScheduleGroup is documented at 10 requests per second.
 */
const writeConcurrency = (cfg: ScheduleGroupsConfig) => Math.min(cfg.concurrency, 8);

function planItem(r: GroupRecord, action: GroupPlan['action'], changes: TagChange[], extra: Partial<GroupPlan> = {}): GroupPlan {
  return { id: r.name, name: r.name, arn: r.arn, state: r.state, class: r.class, action, changes, diff: describeChanges(changes), ...extra };
}

/** Thrown inside a write when the group turned out to be DELETING or gone: refused/gone at once, not retried. */
class GroupChanged extends Error {
  constructor(readonly how: 'deleting' | 'gone') {
    super(how === 'gone' ? 'the group no longer exists' : 'the group is being deleted');
  }
}

const gone = (p: GroupPlan, when = 'since the plan'): GroupOutcome => ({ id: p.id, outcome: 'lost', label: 'gone', detail: `the group no longer exists (deleted ${when})` });
const beingDeleted = (p: GroupPlan): GroupOutcome => ({ id: p.id, outcome: 'refused', detail: 'the group is being deleted (it turned DELETING since the plan): not tagged' });

/**
 * One write with the bounded ConflictException retry; but a conflict because the group is
 * DELETING (or gone) is answered at once, not retried: tags cannot be written to it any more.
 */
async function write(api: SchedulerApi, o: WriteOptions, what: string, name: string, fn: () => Promise<void>): Promise<void> {
  await withConflictRetry(api, o.retry, what, async () => {
    try {
      await fn();
    } catch (e) {
      if (isNotFound(e)) throw new GroupChanged('gone');
      if ((e as { name?: string }).name === 'ConflictException') {
        const g = await getGroup(api, name);
        if (!g) throw new GroupChanged('gone');
        if (g.State === 'DELETING') throw new GroupChanged('deleting');
      }
      throw e;
    }
  });
}

/**
 * Thrown by tagAndVerify when a fatal error came after a write had been accepted: the change
 * reached AWS, so it is audited and reported (errored, unverified), not dropped.
 */
class WrittenUnverified extends Error {
  constructor(readonly error: unknown) {
    super((error as Error)?.message ?? String(error));
  }
}

/** tagAndVerify, with a write that reached AWS before a fatal error turned into an errored outcome that carries its audit. */
async function tagged(p: GroupPlan, changes: TagChange[], audit: (detail: string) => AuditEntry, fn: () => Promise<string>): Promise<GroupOutcome | string> {
  try {
    return await fn();
  } catch (e) {
    if (!(e instanceof WrittenUnverified)) throw e;
    const detail = `${describeChanges(changes)} written, not verified: ${e.message}`;
    return { id: p.id, outcome: 'errored', detail, fatal: e.error, audit: audit(detail) };
  }
}

async function tagAndVerify(api: SchedulerApi, o: WriteOptions, name: string, arn: string, current: Tags, changes: TagChange[], seen: { after?: Tags } = {}): Promise<string> {
  const upserts = changes.filter((c) => c.to !== null);
  const removals = changes.filter((c) => c.to === null);
  let written = false;
  try {
    if (upserts.length) {
      await write(api, o, `TagResource ${name}`, name, () => tagGroup(api, arn, Object.fromEntries(upserts.map((c) => [c.key, c.to as string]))));
      written = true;
    }
    if (removals.length) await write(api, o, `UntagResource ${name}`, name, () => untagGroup(api, arn, removals.map((c) => c.key)));
    written = true;
    // Read back: verify what AWS holds, not what we sent.
    const after = await readTags(api, arn);
    if (after === null) throw new Error(`${name} disappeared while it was being tagged`);
    seen.after = after;
    const want = applyChanges(current, changes);
    const wrong = changes.filter((c) => (c.to === null ? c.key in after : after[c.key] !== want[c.key]));
    if (wrong.length) throw new Error(`read-back after tagging ${name} does not show ${describeChanges(wrong)}`);
  } catch (e) {
    if (written && isFatalAwsError(e)) throw new WrittenUnverified(e);
    throw e;
  }
  return describeChanges(changes);
}

function errorDetail(e: unknown): string {
  const err = e as { name?: string; message?: string };
  return err.name && err.name !== 'Error' ? `${err.name}: ${err.message}` : (err.message ?? String(e));
}

/** The audit entry of an applied tag change or create: what, where, why (--reason) and who. */
function groupAudit(
  o: WriteOptions,
  api: SchedulerApi,
  kind: 'adopted' | 'reconciled' | 'created',
  p: GroupPlan,
  arn: string | null,
  changes: TagChange[],
  detail: string,
  images: { before: Tags | null; after: Tags | null } | null = null,
): AuditEntry {
  return {
    // The group's whole tag set before the write (null: it did not exist) and as read back after it.
    ...(images ? { before: images.before === null ? null : { tags: images.before }, after: images.after === null ? null : { tags: images.after } } : {}),
    kind: `schedule_group.${kind}`,
    resourceType: 'schedule_group',
    resourceId: p.name,
    summary: `${kind} ${p.name}: ${detail}${o.reason ? ` (reason: ${o.reason})` : ''}`,
    metadata: { name: p.name, arn, region: api.region, class: p.class, changes, detail, reason: o.reason ?? null, actor: o.actor ?? null },
  };
}

/**
 * Runs one item; a GroupChanged becomes its outcome, anything else is `errored`. A fatal error
 * is the item's outcome too (`fatal`: the engine stops the run after this batch): rejecting
 * would throw away what the batch's other calls, already in flight, did in AWS.
 */
async function guarded(p: GroupPlan, fn: () => Promise<GroupOutcome>): Promise<GroupOutcome> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof GroupChanged) return e.how === 'gone' ? gone(p, 'while it was being written') : beingDeleted(p);
    if (isFatalAwsError(e)) return { id: p.id, outcome: 'errored', fatal: e };
    return { id: p.id, outcome: 'errored', detail: errorDetail(e) };
  }
}

/**
 * Every item of a batch settles, writes at most 8 in flight: once one met a fatal error the
 * items not yet started are not attempted, the ones in flight finish and keep their outcomes.
 */
async function settleEach(cfg: ScheduleGroupsConfig, batch: GroupPlan[], fn: (p: GroupPlan) => Promise<GroupOutcome>): Promise<GroupOutcome[]> {
  let stopped = false;
  return mapWithConcurrency(batch, writeConcurrency(cfg), async (p) => {
    if (stopped) return { id: p.id, outcome: 'errored', detail: NOT_ATTEMPTED };
    const o = await guarded(p, () => fn(p));
    if (o.fatal !== undefined) stopped = true;
    return o;
  });
}

const deletingRefusal = (r: GroupRecord) => `the group is being deleted (${r.reasons.join(', ')})`;

/** Adopt: tag unowned and partial (and, with --force, foreign) groups with the owner and desired tags. */
export function adoptRemedy(o: WriteOptions & { names: string[]; allUnowned: boolean }): Remedy<GroupPlan, SchedulerApi> {
  const { cfg } = o;
  const deletingThresholdMs = parseDuration(cfg.deletingThreshold);
  return {
    action: 'adopt',
    table: 'schedule groups',
    schema: null,
    labels: { applied: 'adopted', lost: 'already-owned' },
    async plan(api) {
      const chosen = o.names.length ? await named(api, o, o.names) : (await o.find(api)).filter((r) => r.class === 'unowned' || r.class === 'partial');
      return chosen.map((r) => {
        const changes = adoptChanges(cfg, r.name, r.tags);
        switch (r.class) {
          case 'unowned':
          case 'partial':
            return planItem(r, 'tag', changes);
          case 'foreign':
            return o.force
              ? planItem(r, 'tag', changes)
              : planItem(r, 'none', changes, { refusal: `owned by someone else (${r.reasons.join(', ')}): pass --force to take it over` });
          case 'owned':
          case 'drifted':
            return planItem(r, 'none', [], { settled: r.class === 'drifted' ? 'already ours; drifted: use schedule-groups reconcile' : 'already ours' });
          case 'deleting':
            return planItem(r, 'none', [], { refusal: deletingRefusal(r) });
          case 'ignored':
            return planItem(r, 'none', [], { refusal: 'ignored (the default group or an ignore pattern)' });
          default:
            return planItem(r, 'none', [], { refusal: 'no such schedule group' });
        }
      });
    },
    async applyBatch(api, batch) {
      return settleEach(cfg, batch, async (p) => {
        // Re-check at write time against what AWS holds now: its State first, then its tags.
        const now = await readGroupNow(api, p.name);
        if (!now) return gone(p);
        if (now.group.State === 'DELETING') return beingDeleted(p);
        const c = classify(cfg, { name: p.name, state: now.group.State ?? 'ACTIVE' }, now.tags, { nowMs: o.nowMs(), deletingThresholdMs });
        if (c.class === 'owned' || c.class === 'drifted') return { id: p.id, outcome: 'lost', detail: 'owned by us since the plan' };
        if (c.class === 'foreign' && !o.force) return { id: p.id, outcome: 'refused', detail: `owned by someone else now (${c.reasons.join(', ')})` };
        const arn = now.group.Arn as string;
        const changes = adoptChanges(cfg, p.name, now.tags);
        const seen: { after?: Tags } = {};
        const audit = (d: string) => groupAudit(o, api, 'adopted', p, arn, changes, d, { before: now.tags, after: seen.after ?? applyChanges(now.tags, changes) });
        const detail = await tagged(p, changes, audit, () => tagAndVerify(api, o, p.name, arn, now.tags, changes, seen));
        if (typeof detail !== 'string') return detail;
        return { id: p.id, outcome: 'applied', detail, audit: audit(detail) };
      });
    },
  };
}

/** Reconcile: converge drifted groups (and, with createMissing, create missing expected ones). */
export function reconcileRemedy(o: WriteOptions & { names: string[]; createMissing: boolean }): Remedy<GroupPlan, SchedulerApi> {
  const { cfg } = o;
  const deletingThresholdMs = parseDuration(cfg.deletingThreshold);
  const expected = new Set(o.expected ?? []);
  return {
    action: 'reconcile',
    table: 'schedule groups',
    schema: null,
    labels: { applied: 'reconciled', lost: 'in-sync' },
    async plan(api) {
      const chosen = o.names.length
        ? await named(api, o, o.names)
        : (await o.find(api)).filter((r) => r.class === 'drifted' || (o.createMissing && (r.class === 'missing' || (r.class === 'deleting' && expected.has(r.name)))));
      return chosen.map((r): GroupPlan => {
        switch (r.class) {
          case 'drifted':
            return planItem(r, 'tag', r.changes);
          case 'missing':
            return o.createMissing
              ? planItem(r, 'create', upsertsOnly(reconcileChanges(cfg, r.name, {})))
              : planItem(r, 'none', [], { refusal: 'absent: pass --create-missing to create it' });
          case 'deleting':
            // The reference engine's redeploy: wait out the DELETING window, then create it again.
            if (!o.createMissing) return planItem(r, 'none', [], { refusal: `${deletingRefusal(r)}: pass --create-missing to re-create it once the deletion completes` });
            if (r.ownership !== 'owned' && r.ownership !== 'drifted') return planItem(r, 'none', [], { refusal: `${deletingRefusal(r)}, and it was not ours: not re-created` });
            return planItem(r, 'recreate', upsertsOnly(reconcileChanges(cfg, r.name, {})));
          case 'owned':
            return planItem(r, 'none', [], { settled: 'in sync' });
          case 'partial':
            return o.force
              ? planItem(r, 'tag', reconcileChanges(cfg, r.name, r.tags))
              : planItem(r, 'none', [], { refusal: `only some owner tags are ours (${r.reasons.join(', ')}): adopt it first (opsctl adopt schedule-group), or pass --force` });
          case 'foreign':
            return o.force ? planItem(r, 'tag', reconcileChanges(cfg, r.name, r.tags)) : planItem(r, 'none', [], { refusal: `owned by someone else (${r.reasons.join(', ')}): adopt it with --force first` });
          case 'unowned':
            return planItem(r, 'none', [], { refusal: 'not ours: adopt it first (opsctl adopt schedule-group)' });
          default:
            return planItem(r, 'none', [], { refusal: 'ignored (the default group or an ignore pattern)' });
        }
      });
    },
    async applyBatch(api, batch) {
      return settleEach(cfg, batch, async (p) => {
        if (p.action === 'create' || p.action === 'recreate') return await createGroup(api, o, p);
        const now = await readGroupNow(api, p.name);
        if (!now) return gone(p);
        if (now.group.State === 'DELETING') return beingDeleted(p);
        const c = classify(cfg, { name: p.name, state: now.group.State ?? 'ACTIVE' }, now.tags, { nowMs: o.nowMs(), deletingThresholdMs });
        if (c.class === 'foreign' && !o.force) return { id: p.id, outcome: 'refused', detail: `owned by someone else now (${c.reasons.join(', ')})` };
        if (c.class === 'partial' && !o.force) return { id: p.id, outcome: 'refused', detail: `only some owner tags are ours now (${c.reasons.join(', ')}): adopt it first` };
        if (c.class === 'unowned') return { id: p.id, outcome: 'refused', detail: 'not ours any more: adopt it first' };
        const changes = reconcileChanges(cfg, p.name, now.tags);
        if (changes.length === 0) return { id: p.id, outcome: 'lost', detail: 'in sync since the plan' };
        const arn = now.group.Arn as string;
        const seen: { after?: Tags } = {};
        const images = () => ({ before: now.tags, after: seen.after ?? applyChanges(now.tags, changes) });
        const detail = await tagged(p, changes, (d) => groupAudit(o, api, 'reconciled', p, arn, changes, d, images()), () => tagAndVerify(api, o, p.name, arn, now.tags, changes, seen));
        if (typeof detail !== 'string') return detail;
        // The final State is read back from AWS, not assumed. The tags are verified by now: a
        // fatal error on this read stops the run but leaves the change applied and audited.
        let state: string | null = null;
        let fatal: unknown;
        try {
          state = (await getGroup(api, p.name))?.State ?? null;
        } catch (e) {
          if (!isFatalAwsError(e)) throw e;
          fatal = e;
        }
        const shown = `${detail}${state && state !== 'ACTIVE' ? ` (state ${state})` : ''}`;
        return { id: p.id, outcome: 'applied', detail: shown, audit: groupAudit(o, api, 'reconciled', p, arn, changes, shown, images()), ...(fatal ? { fatal } : {}) };
      });
    },
  };
}

const upsertsOnly = (changes: TagChange[]) => changes.filter((c) => c.to !== null);

/**
 * Creates a missing group with its tags. While an old group of that name is DELETING,
 * CreateScheduleGroup answers ConflictException: retried conflictRetries times conflictDelay
 * apart (the reference engine's 15 × 2 s), which is how long opsctl waits for the window to close.
 */
async function createGroup(api: SchedulerApi, o: WriteOptions, p: GroupPlan): Promise<GroupOutcome> {
  const tags: Tags = { ...o.cfg.desiredTags, ...expectedOwnerTags(o.cfg, p.name) };
  let existed = false;
  let lastState: string | null = null;
  try {
    await withConflictRetry(api, o.retry, `CreateScheduleGroup ${p.name}`, async () => {
      try {
        await createGroupCall(api, p.name, tags);
      } catch (e) {
        if ((e as { name?: string }).name === 'ConflictException') {
          lastState = (await getGroup(api, p.name))?.State ?? null;
          // An ACTIVE one means someone else created it since the plan.
          if (lastState === 'ACTIVE') {
            existed = true;
            return;
          }
        }
        throw e;
      }
    });
  } catch (e) {
    if (lastState === 'DELETING') {
      return {
        id: p.id,
        outcome: 'errored',
        detail: `not created: the old group was still DELETING after ${o.retry.tries} tries ${o.retry.delayMs} ms apart (scheduleGroups.conflictRetries × conflictDelay); re-run reconcile --create-missing once its deletion completes`,
      };
    }
    throw e;
  }
  if (existed) return { id: p.id, outcome: 'lost', detail: 'created by someone else since the plan: run reconcile again to check its tags' };
  const changes = Object.entries(tags).map(([key, to]) => ({ key, from: null, to }));
  let g: Awaited<ReturnType<typeof getGroup>>;
  let after: Tags | null;
  try {
    g = await getGroup(api, p.name);
    after = g ? await readTags(api, g.Arn ?? '') : null;
  } catch (e) {
    // Created in AWS: a fatal error on the read-back leaves it audited, not dropped.
    if (!isFatalAwsError(e)) throw e;
    const detail = `created, not verified: ${(e as Error).message}`;
    return { id: p.id, outcome: 'errored', detail, fatal: e, audit: groupAudit(o, api, 'created', p, null, changes, detail, { before: null, after: tags }) };
  }
  const missing = Object.entries(tags).filter(([k, v]) => after?.[k] !== v);
  if (missing.length) return { id: p.id, outcome: 'errored', detail: `created, but read-back lacks ${missing.map(([k]) => k).join(', ')}` };
  const detail = `${p.action === 'recreate' ? 're-created after the deletion completed' : 'created'} (state ${g?.State ?? 'unknown'}) with ${Object.keys(tags).length} tags`;
  return { id: p.id, outcome: 'applied', label: 'created', detail, audit: groupAudit(o, api, 'created', p, g?.Arn ?? null, changes, detail, { before: null, after: after ?? tags }) };
}
