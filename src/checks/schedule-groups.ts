import type { ScheduleGroupsConfig } from '../config.js';
import type { ItemOutcome, PlannedItem, Remedy, RemedyHost } from '../remediation.js';
import { type SchedulerApi, isFatalAwsError, translateAwsError, withConflictRetry, type ConflictRetry } from '../aws.js';
import { createAdaptiveLimiter, mapWithConcurrency } from '../concurrency.js';
import { parseDuration } from '../durations.js';
import { usageError } from '../errors.js';
import {
  adoptChanges,
  applyChanges,
  classify,
  describeChanges,
  expectedOwnerTags,
  isIgnored,
  reconcileChanges,
  type GroupClass,
  type TagChange,
  type Tags,
} from './tag-diff.js';

export interface GroupRecord {
  name: string;
  arn: string | null;
  state: string;
  class: GroupClass;
  reasons: string[];
  changes: TagChange[];
  tags: Tags;
  creationDate: Date | null;
  lastModificationDate: Date | null;
  schedules?: number;
}

export interface FindOptions {
  prefix?: string;
  withSchedules?: boolean;
  /** Names that must exist (config `expected` or the result of `expectedQuery`); null = don't judge. */
  expected: string[] | null;
  nowMs: number;
}

const isNotFound = (e: unknown) => (e as { name?: string }).name === 'ResourceNotFoundException';
const toTags = (list: Array<{ Key?: string; Value?: string }> | undefined): Tags =>
  Object.fromEntries((list ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
const toList = (tags: Tags) => Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));

/**
 * Writes (TagResource, CreateScheduleGroup) stay at most 8 in flight whatever the read
 * concurrency: CreateScheduleGroup is documented at 10 requests per second.
 */
const writeConcurrency = (cfg: ScheduleGroupsConfig) => Math.min(cfg.concurrency, 8);

export const GROUP_NAME = /^[0-9a-zA-Z\-_.]{1,64}$/;

export function validateGroupNames(names: string[]): void {
  for (const n of names) if (!GROUP_NAME.test(n)) throw usageError(`"${n}" is not a valid schedule group name (1–64 of letters, digits, - _ .).`);
}

/** Calls the API, turning the errors an operator must act on into one sentence. */
async function call<T>(api: SchedulerApi, operation: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (isFatalAwsError(e)) throw translateAwsError(e, operation, api);
    throw e;
  }
}

type ListedGroup = { Name?: string; Arn?: string; State?: string; CreationDate?: Date; LastModificationDate?: Date };

/** Every group, page by page (100 a page: the API's maximum, fewest calls); `onPage` sees each page as it arrives. */
export async function listAllGroups(api: SchedulerApi, prefix?: string, onPage?: (page: ListedGroup[]) => void): Promise<ListedGroup[]> {
  const groups: ListedGroup[] = [];
  let token: string | undefined;
  do {
    // The API's maximum page size: fewest calls.
    const page = await call(api, 'ListScheduleGroups', () =>
      api.client.send(new api.sdk.ListScheduleGroupsCommand({ MaxResults: 100, NextToken: token, ...(prefix ? { NamePrefix: prefix } : {}) })),
    );
    groups.push(...(page.ScheduleGroups ?? []));
    onPage?.(page.ScheduleGroups ?? []);
    token = page.NextToken;
  } while (token);
  return groups;
}

export async function readTags(api: SchedulerApi, arn: string): Promise<Tags | null> {
  try {
    const out = await call(api, 'ListTagsForResource', () => api.client.send(new api.sdk.ListTagsForResourceCommand({ ResourceArn: arn })));
    return toTags(out.Tags);
  } catch (e) {
    if (isNotFound(e)) return null;
    throw e;
  }
}

/**
 * Tags of every schedule group the Resource Groups Tagging API returns, by ARN, 100 a page.
 * It returns only groups that are or ever were tagged, and it is eventually consistent: callers
 * must treat ListScheduleGroups as the truth for existence and read any group absent here with
 * ListTagsForResource.
 */
export async function readTagsInBulk(api: SchedulerApi): Promise<Map<string, Tags>> {
  const tagging = await api.tagging();
  const byArn = new Map<string, Tags>();
  let token: string | undefined;
  do {
    const page = await call(api, 'tag:GetResources', () =>
      tagging.client.send(
        new tagging.sdk.GetResourcesCommand({ ResourceTypeFilters: ['scheduler:schedule-group'], ResourcesPerPage: 100, ...(token ? { PaginationToken: token } : {}) }),
      ),
    );
    for (const m of page.ResourceTagMappingList ?? []) if (m.ResourceARN) byArn.set(m.ResourceARN, toTags(m.Tags));
    token = page.PaginationToken || undefined; // the last page answers ''
  } while (token);
  return byArn;
}

async function countSchedules(api: SchedulerApi, group: string): Promise<number> {
  let n = 0;
  let token: string | undefined;
  do {
    const page = await call(api, 'ListSchedules', () =>
      api.client.send(new api.sdk.ListSchedulesCommand({ GroupName: group, MaxResults: 100, NextToken: token })),
    );
    n += page.Schedules?.length ?? 0;
    token = page.NextToken;
  } while (token);
  return n;
}

/**
 * Every group (ListScheduleGroups is the source of truth for existence) with its tags read
 * with bounded concurrency, classified; plus the expected groups that are missing.
 */
export async function findGroups(api: SchedulerApi, cfg: ScheduleGroupsConfig, opts: FindOptions): Promise<GroupRecord[]> {
  // A listing is all or nothing: an error that outlived the SDK's retries fails it with one sentence.
  const reading = async <T>(operation: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      throw translateAwsError(e, operation, api);
    }
  };
  const deletingThresholdMs = parseDuration(cfg.deletingThreshold, 'scheduleGroups.deletingThreshold');
  // `known`: tags already read in bulk (tagSource "tagging-api"); otherwise one ListTagsForResource.
  const readGroup = async (g: ListedGroup, known?: Tags): Promise<GroupRecord | null> => {
    const name = g.Name ?? '';
    const base = { name, arn: g.Arn ?? null, state: g.State ?? 'UNKNOWN', creationDate: g.CreationDate ?? null, lastModificationDate: g.LastModificationDate ?? null };
    if (isIgnored(cfg, name)) return { ...base, class: 'ignored', reasons: [name === 'default' ? 'the default group' : 'matches an ignore pattern'], changes: [], tags: {} };
    const tags = known ?? (await reading('ListTagsForResource', () => readTags(api, g.Arn ?? '')));
    if (tags === null) return null; // deleted between the listing and the tag read
    const c = classify(cfg, { name, state: base.state, lastModificationDate: base.lastModificationDate }, tags, { nowMs: opts.nowMs, deletingThresholdMs });
    const rec: GroupRecord = { ...base, class: c.class, reasons: c.reasons, changes: c.changes, tags };
    if (opts.withSchedules) rec.schedules = await reading('ListSchedules', () => countSchedules(api, name));
    return rec;
  };
  // Tag reads start as soon as each page of the listing arrives, at most `concurrency` in flight;
  // fewer while the service throttles (the read quotas are not published: its answer decides).
  const limit = createAdaptiveLimiter(cfg.concurrency);
  const previousOnThrottle = api.stats.onThrottle;
  api.stats.onThrottle = () => {
    limit.throttled();
    if (limit.lowest < cfg.concurrency) api.stats.concurrencyLowest = Math.min(api.stats.concurrencyLowest ?? Infinity, limit.lowest);
    previousOnThrottle?.();
  };
  // tagSource "tagging-api": GetResources pages run alongside the listing; a listed group it did
  // not return (never tagged, or the tagging index lags) falls back to ListTagsForResource.
  const bulk = cfg.tagSource === 'tagging-api' ? reading('tag:GetResources', () => readTagsInBulk(api)) : null;
  bulk?.catch(() => {}); // awaited below; never an unhandled rejection if the listing fails first
  const fromBulk = async (g: ListedGroup): Promise<GroupRecord | null> => {
    const tags = (await bulk)?.get(g.Arn ?? '');
    if (tags === undefined || isIgnored(cfg, g.Name ?? '')) return limit(() => readGroup(g));
    // Classified without a call; only --with-schedules still reads per group.
    return opts.withSchedules ? limit(() => readGroup(g, tags)) : readGroup(g, tags);
  };
  const listed: ListedGroup[] = [];
  const pending: Array<Promise<GroupRecord | null>> = [];
  try {
    await reading('ListScheduleGroups', () =>
      listAllGroups(api, opts.prefix, (page) => {
        listed.push(...page);
        for (const g of page) {
          const read = bulk ? fromBulk(g) : limit(() => readGroup(g));
          // Handled at once: a read may fail while later pages are still being listed (awaited below).
          read.catch(() => {});
          pending.push(read);
        }
      }),
    );
  } finally {
    // Never leave reads running (or their rejections unhandled) behind a failed listing.
    await Promise.allSettled(pending);
    if (bulk) await Promise.allSettled([bulk]);
    api.stats.onThrottle = previousOnThrottle;
  }
  if (bulk) await bulk; // a failed bulk read fails the listing with its own sentence
  const records = await Promise.all(pending);
  const found = records.filter((r): r is GroupRecord => r !== null);
  if (opts.expected) {
    const present = new Set(listed.map((g) => g.Name));
    for (const name of opts.expected) {
      if (present.has(name) || isIgnored(cfg, name) || (opts.prefix && !name.startsWith(opts.prefix))) continue;
      found.push({
        name,
        arn: null,
        state: 'ABSENT',
        class: 'missing',
        reasons: ['expected but absent'],
        changes: reconcileChanges(cfg, name, {}),
        tags: {},
        creationDate: null,
        lastModificationDate: null,
      });
    }
  }
  return found.sort((a, b) => a.name.localeCompare(b.name));
}

/** The engine's view of Scheduler: no database lock; every write is re-checked per group instead. */
export function schedulerHost(api: SchedulerApi): RemedyHost<SchedulerApi> {
  return {
    target: api,
    lock: async () => ({ release: async () => {} }),
    readOnly: (fn) => fn(api),
    batch: (fn) => fn(api),
    isFatal: isFatalAwsError,
    describeError: (e) => translateAwsError(e, 'call', api).message,
    translate: (e) => translateAwsError(e, 'call', api),
    // No transaction to write in: Scheduler changes have no audit destination (CloudTrail
    // records the calls), as before. The entries reach the engine all the same.
    writeAudit: async () => {},
  };
}

/** The audit entry of an applied tag change or create. */
const groupAudit = (kind: string, p: GroupPlan, detail: string) => ({
  kind,
  resourceType: 'schedule_group',
  resourceId: p.name,
  summary: `${kind.replace('schedule_group.', '')} ${p.name}: ${detail}`,
  metadata: { name: p.name, arn: p.arn, class: p.class, detail },
});

export interface GroupPlan extends PlannedItem {
  name: string;
  arn: string | null;
  state: string;
  class: GroupClass;
  action: 'tag' | 'create' | 'none';
  changes: TagChange[];
  /** Rendered changes, for tables and json alike. */
  diff: string;
}

export interface WriteOptions {
  cfg: ScheduleGroupsConfig;
  force: boolean;
  retry: ConflictRetry;
  nowMs: () => number;
  /** Groups considered; found by the command with findGroups. */
  find: (api: SchedulerApi) => Promise<GroupRecord[]>;
}

function planItem(r: GroupRecord, action: GroupPlan['action'], changes: TagChange[], extra: Partial<GroupPlan> = {}): GroupPlan {
  return { id: r.name, name: r.name, arn: r.arn, state: r.state, class: r.class, action, changes, diff: describeChanges(changes), ...extra };
}

async function tagAndVerify(api: SchedulerApi, o: WriteOptions, name: string, arn: string, current: Tags, changes: TagChange[]): Promise<string> {
  const upserts = changes.filter((c) => c.to !== null);
  const removals = changes.filter((c) => c.to === null);
  if (upserts.length) {
    await withConflictRetry(api, o.retry, `TagResource ${name}`, () =>
      call(api, 'TagResource', () =>
        api.client.send(new api.sdk.TagResourceCommand({ ResourceArn: arn, Tags: upserts.map((c) => ({ Key: c.key, Value: c.to as string })) })),
      ),
    );
  }
  if (removals.length) {
    await withConflictRetry(api, o.retry, `UntagResource ${name}`, () =>
      call(api, 'UntagResource', () => api.client.send(new api.sdk.UntagResourceCommand({ ResourceArn: arn, TagKeys: removals.map((c) => c.key) }))),
    );
  }
  // Read back: verify what AWS holds, not what we sent.
  const after = await readTags(api, arn);
  if (after === null) throw new Error(`${name} disappeared while it was being tagged`);
  const want = applyChanges(current, changes);
  const wrong = changes.filter((c) => (c.to === null ? c.key in after : after[c.key] !== want[c.key]));
  if (wrong.length) throw new Error(`read-back after tagging ${name} does not show ${describeChanges(wrong)}`);
  return describeChanges(changes);
}

/** Adopt: tag unowned (and, with --force, foreign) groups with the owner and desired tags. */
export function adoptRemedy(o: WriteOptions & { names: string[]; allUnowned: boolean }): Remedy<GroupPlan, SchedulerApi> {
  const { cfg } = o;
  const deletingThresholdMs = parseDuration(cfg.deletingThreshold);
  return {
    action: 'adopt',
    table: 'schedule groups',
    schema: null,
    labels: { applied: 'adopted', lost: 'already-owned' },
    async plan(api) {
      const records = await o.find(api);
      const byName = new Map(records.map((r) => [r.name, r]));
      const chosen: GroupRecord[] = o.names.length
        ? o.names.map(
            (n) => byName.get(n) ?? { name: n, arn: null, state: 'ABSENT', class: 'missing' as const, reasons: [], changes: [], tags: {}, creationDate: null, lastModificationDate: null },
          )
        : records.filter((r) => r.class === 'unowned');
      return chosen.map((r) => {
        const changes = adoptChanges(cfg, r.name, r.tags);
        switch (r.class) {
          case 'unowned':
            return planItem(r, 'tag', changes);
          case 'foreign':
            return o.force
              ? planItem(r, 'tag', changes)
              : planItem(r, 'none', changes, { refusal: `owned by someone else (${r.reasons.join(', ')}): pass --force to take it over` });
          case 'owned':
          case 'drifted':
            return planItem(r, 'none', [], { settled: r.class === 'drifted' ? 'already ours; drifted: use schedule-groups reconcile' : 'already ours' });
          case 'ignored':
            return planItem(r, 'none', [], { refusal: 'ignored (the default group or an ignore pattern)' });
          default:
            return planItem(r, 'none', [], { refusal: 'no such schedule group' });
        }
      }).map((p) => (p.state === 'DELETING' && !p.refusal && !p.settled ? { ...p, action: 'none' as const, refusal: 'the group is being deleted' } : p));
    },
    async applyBatch(api, batch) {
      return mapWithConcurrency(batch, writeConcurrency(cfg), async (p): Promise<ItemOutcome> => {
        try {
          // Re-check at write time against what AWS holds now.
          const current = await readTags(api, p.arn as string);
          if (current === null) return { id: p.id, outcome: 'lost', detail: 'the group no longer exists' };
          const now = classify(cfg, { name: p.name, state: p.state }, current, { nowMs: o.nowMs(), deletingThresholdMs });
          if (now.class === 'owned' || now.class === 'drifted') return { id: p.id, outcome: 'lost', detail: 'owned by us since the plan' };
          if (now.class === 'foreign' && !o.force) return { id: p.id, outcome: 'refused', detail: `owned by someone else now (${now.reasons.join(', ')})` };
          const detail = await tagAndVerify(api, o, p.name, p.arn as string, current, adoptChanges(cfg, p.name, current));
          return { id: p.id, outcome: 'applied', detail, audit: groupAudit('schedule_group.adopted', p, detail) };
        } catch (e) {
          if (isFatalAwsError(e)) throw e;
          return { id: p.id, outcome: 'errored', detail: errorDetail(e) };
        }
      });
    },
  };
}

function errorDetail(e: unknown): string {
  const err = e as { name?: string; message?: string };
  return err.name && err.name !== 'Error' ? `${err.name}: ${err.message}` : (err.message ?? String(e));
}

/** Reconcile: converge drifted groups (and, with createMissing, create missing expected ones). */
export function reconcileRemedy(o: WriteOptions & { names: string[]; createMissing: boolean }): Remedy<GroupPlan, SchedulerApi> {
  const { cfg } = o;
  const deletingThresholdMs = parseDuration(cfg.deletingThreshold);
  return {
    action: 'reconcile',
    table: 'schedule groups',
    schema: null,
    labels: { applied: 'reconciled', lost: 'in-sync' },
    async plan(api) {
      const records = await o.find(api);
      const byName = new Map(records.map((r) => [r.name, r]));
      const chosen = o.names.length
        ? o.names.map(
            (n) => byName.get(n) ?? { name: n, arn: null, state: 'ABSENT', class: 'missing' as const, reasons: ['absent'], changes: reconcileChanges(cfg, n, {}), tags: {}, creationDate: null, lastModificationDate: null },
          )
        : records.filter((r) => r.class === 'drifted' || (r.class === 'missing' && o.createMissing));
      return chosen.map((r): GroupPlan => {
        switch (r.class) {
          case 'drifted':
            if (r.changes.length === 0) return planItem(r, 'none', [], { refusal: `stuck in DELETING (${r.reasons.join(', ')}): tags cannot fix it` });
            return planItem(r, 'tag', r.changes);
          case 'missing':
            return o.createMissing
              ? planItem(r, 'create', upsertsOnly(reconcileChanges(cfg, r.name, {})))
              : planItem(r, 'none', [], { refusal: 'absent: pass --create-missing to create it' });
          case 'owned':
            return planItem(r, 'none', [], { settled: 'in sync' });
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
      return mapWithConcurrency(batch, writeConcurrency(cfg), async (p): Promise<ItemOutcome> => {
        try {
          if (p.action === 'create') return await createGroup(api, o, p);
          const current = await readTags(api, p.arn as string);
          if (current === null) return { id: p.id, outcome: 'lost', detail: 'the group no longer exists' };
          const now = classify(cfg, { name: p.name, state: p.state }, current, { nowMs: o.nowMs(), deletingThresholdMs });
          if (now.class === 'foreign' && !o.force) return { id: p.id, outcome: 'refused', detail: `owned by someone else now (${now.reasons.join(', ')})` };
          if (now.class === 'unowned') return { id: p.id, outcome: 'refused', detail: 'not ours any more: adopt it first' };
          const changes = reconcileChanges(cfg, p.name, current);
          if (changes.length === 0) return { id: p.id, outcome: 'lost', detail: 'in sync since the plan' };
          const detail = await tagAndVerify(api, o, p.name, p.arn as string, current, changes);
          const state = await groupState(api, p.name);
          return { id: p.id, outcome: 'applied', detail: `${detail}${state && state !== 'ACTIVE' ? ` (state ${state})` : ''}`, audit: groupAudit('schedule_group.reconciled', p, detail) };
        } catch (e) {
          if (isFatalAwsError(e)) throw e;
          return { id: p.id, outcome: 'errored', detail: errorDetail(e) };
        }
      });
    },
  };
}

const upsertsOnly = (changes: TagChange[]) => changes.filter((c) => c.to !== null);

async function groupState(api: SchedulerApi, name: string): Promise<string | null> {
  try {
    const g = await call(api, 'GetScheduleGroup', () => api.client.send(new api.sdk.GetScheduleGroupCommand({ Name: name })));
    return g.State ?? null;
  } catch (e) {
    if (isNotFound(e)) return null;
    throw e;
  }
}

/** Creates a missing group with its tags, through the DELETING window of a previous one. */
async function createGroup(api: SchedulerApi, o: WriteOptions, p: GroupPlan): Promise<ItemOutcome> {
  const tags: Tags = { ...o.cfg.desiredTags, ...expectedOwnerTags(o.cfg, p.name) };
  let existed = false;
  await withConflictRetry(api, o.retry, `CreateScheduleGroup ${p.name}`, async () => {
    try {
      await call(api, 'CreateScheduleGroup', () => api.client.send(new api.sdk.CreateScheduleGroupCommand({ Name: p.name, Tags: toList(tags) })));
    } catch (e) {
      // Conflict while an old group of that name is DELETING: retry; an ACTIVE one means someone created it.
      if ((e as { name?: string }).name === 'ConflictException' && (await groupState(api, p.name)) === 'ACTIVE') {
        existed = true;
        return;
      }
      throw e;
    }
  });
  if (existed) return { id: p.id, outcome: 'lost', detail: 'created by someone else since the plan: run reconcile again to check its tags' };
  const state = await groupState(api, p.name);
  const arn = (await call(api, 'GetScheduleGroup', () => api.client.send(new api.sdk.GetScheduleGroupCommand({ Name: p.name })))).Arn as string;
  const after = await readTags(api, arn);
  const missing = Object.entries(tags).filter(([k, v]) => after?.[k] !== v);
  if (missing.length) return { id: p.id, outcome: 'errored', detail: `created, but read-back lacks ${missing.map(([k]) => k).join(', ')}` };
  const detail = `created (state ${state ?? 'unknown'}) with ${Object.keys(tags).length} tags`;
  return { id: p.id, outcome: 'applied', label: 'created', detail, audit: groupAudit('schedule_group.created', p, detail) };
}
