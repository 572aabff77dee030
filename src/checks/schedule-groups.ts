import type { ScheduleGroupsConfig } from '../config/config.js';
import { type SchedulerApi, tierUpLater, translateAwsError } from '../aws/scheduler-api.js';
import { createAdaptiveLimiter, createLimiter } from '../engine/concurrency.js';
import { parseDuration } from '../config/durations.js';
import { usageError } from '../errors.js';
import { startTagReadPool, WORKER_MIN_GROUPS, type TagReadPool } from '../aws/tag-read-pool.js';
import { countSchedules, getGroup, listAllGroups, readTags, readTagsInBulk, type ListedGroup, type OnWarning } from '../aws/scheduler-gateway.js';
import { classify, isIgnored, reconcileChanges, type GroupClass, type Ownership, type TagChange, type Tags } from './tag-diff.js';

/**
 * The finder: which schedule groups exist, their tags, and their class. AWS calls live in
 * aws/scheduler-gateway.ts, ownership rules in tag-diff.ts, adopt/reconcile in
 * schedule-group-remedies.ts (re-exported below for existing importers).
 */

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
  /** Only for class `deleting`: what the tags say (owned, drifted, partial, unowned, foreign). */
  ownership?: Ownership;
  schedules?: number;
}

export interface FindOptions {
  prefix?: string;
  withSchedules?: boolean;
  /** Names that must exist (config `expected` or the result of `expectedQuery`); null = don't judge. */
  expected: string[] | null;
  nowMs: number;
  /** Told when a listing had to be restarted (a page token died). */
  onWarning?: OnWarning;
  /** Groups listed before tag reads are shared with a worker thread (default WORKER_MIN_GROUPS; Infinity: never). */
  workerMinGroups?: number;
  /** Starts the tag-read worker (default startTagReadPool); a test passes one that waits for it to be ready. */
  startWorker?: (api: SchedulerApi) => Promise<TagReadPool | null>;
}

export const GROUP_NAME = /^[0-9a-zA-Z\-_.]{1,64}$/;

export function validateGroupNames(names: string[]): void {
  for (const n of names) if (!GROUP_NAME.test(n)) throw usageError(`"${n}" is not a valid schedule group name (1–64 of letters, digits, - _ .).`);
}

/** A listing is all or nothing: an error that outlived the SDK's retries fails it with one sentence. */
function reader(api: SchedulerApi) {
  return async <T>(operation: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      throw translateAwsError(e, operation, api);
    }
  };
}

/** `deletingThresholdMs`: scheduleGroups.deletingThreshold, parsed once per listing by the caller. */
function toRecord(cfg: ScheduleGroupsConfig, g: ListedGroup, tags: Tags, nowMs: number, deletingThresholdMs: number): GroupRecord {
  const name = g.Name ?? '';
  const base = { name, arn: g.Arn ?? null, state: g.State ?? 'UNKNOWN', creationDate: g.CreationDate ?? null, lastModificationDate: g.LastModificationDate ?? null };
  const c = classify(cfg, { name, state: base.state, lastModificationDate: base.lastModificationDate }, tags, { nowMs, deletingThresholdMs });
  return { ...base, class: c.class, reasons: c.reasons, changes: c.changes, tags, ...(c.class === 'deleting' ? { ownership: c.ownership } : {}) };
}

export function absentRecord(cfg: ScheduleGroupsConfig, name: string, reason = 'expected but absent'): GroupRecord {
  return { name, arn: null, state: 'ABSENT', class: 'missing', reasons: [reason], changes: reconcileChanges(cfg, name, {}), tags: {}, creationDate: null, lastModificationDate: null };
}

const ignoredRecord = (g: ListedGroup): GroupRecord => ({
  name: g.Name ?? '',
  arn: g.Arn ?? null,
  state: g.State ?? 'UNKNOWN',
  class: 'ignored',
  reasons: [g.Name === 'default' ? 'the default group' : 'matches an ignore pattern'],
  changes: [],
  tags: {},
  creationDate: g.CreationDate ?? null,
  lastModificationDate: g.LastModificationDate ?? null,
});

/**
 * Named groups read directly: GetScheduleGroup + ListTagsForResource per name (bounded
 * concurrency), never the whole account's listing. An absent name is a `missing` record.
 */
export async function findNamedGroups(api: SchedulerApi, cfg: ScheduleGroupsConfig, names: string[], opts: Pick<FindOptions, 'nowMs'>): Promise<GroupRecord[]> {
  const reading = reader(api);
  const deletingThresholdMs = parseDuration(cfg.deletingThreshold, 'scheduleGroups.deletingThreshold');
  const limit = createLimiter(cfg.concurrency);
  return Promise.all(
    [...new Set(names)].map((name) =>
      limit(async (): Promise<GroupRecord> => {
        if (isIgnored(cfg, name)) return ignoredRecord({ Name: name, State: 'UNKNOWN' });
        const g = await reading('GetScheduleGroup', () => getGroup(api, name));
        if (!g) return absentRecord(cfg, name, 'no such schedule group');
        const tags = await reading('ListTagsForResource', () => readTags(api, g.Arn ?? ''));
        if (tags === null) return absentRecord(cfg, name, 'no such schedule group (deleted while being read)');
        return toRecord(cfg, g, tags, opts.nowMs, deletingThresholdMs);
      }),
    ),
  );
}

export async function findGroups(api: SchedulerApi, cfg: ScheduleGroupsConfig, opts: FindOptions): Promise<GroupRecord[]> {
  const restoreTierUp = tierUpLater(); // see aws.ts: the same SDK code, call after call, for a second or two
  try {
    return await listAndRead(api, cfg, opts);
  } finally {
    restoreTierUp();
  }
}

async function listAndRead(api: SchedulerApi, cfg: ScheduleGroupsConfig, opts: FindOptions): Promise<GroupRecord[]> {
  const reading = reader(api);
  const deletingThresholdMs = parseDuration(cfg.deletingThreshold, 'scheduleGroups.deletingThreshold'); // a bad value fails before any call
  // `known`: tags already read in bulk (tagSource "tagging-api"); otherwise one ListTagsForResource.
  // Above WORKER_MIN_GROUPS a worker thread takes its share of the tag reads (aws/tag-read-pool.ts):
  // each read goes to whichever side has fewer in flight, so a side short of CPU gets fewer.
  let pool: TagReadPool | null = null;
  let poolStarting: Promise<TagReadPool | null> | null = null;
  let localInFlight = 0;
  const tagsOf = async (arn: string): Promise<Tags | null> => {
    if (pool?.ready && pool.inFlight <= localInFlight) return readTags(api, arn, pool.send);
    localInFlight += 1;
    try {
      return await readTags(api, arn);
    } finally {
      localInFlight -= 1;
    }
  };
  const readGroup = async (g: ListedGroup, known?: Tags): Promise<GroupRecord | null> => {
    const name = g.Name ?? '';
    if (isIgnored(cfg, name)) return ignoredRecord(g);
    const tags = known ?? (await reading('ListTagsForResource', () => tagsOf(g.Arn ?? '')));
    if (tags === null) return null; // deleted between the listing and the tag read
    const rec = toRecord(cfg, g, tags, opts.nowMs, deletingThresholdMs);
    if (opts.withSchedules) rec.schedules = await reading('ListSchedules', () => countSchedules(api, name, opts.onWarning));
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
  const bulk = cfg.tagSource === 'tagging-api' ? reading('tag:GetResources', () => readTagsInBulk(api, opts.onWarning)) : null;
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
      listAllGroups(api, opts.prefix, (page, more) => {
        listed.push(...page);
        if (!bulk && !poolStarting && more && listed.length >= (opts.workerMinGroups ?? WORKER_MIN_GROUPS)) {
          poolStarting = (opts.startWorker ?? startTagReadPool)(api).then((p) => (pool = p));
          poolStarting.catch(() => {}); // a worker that cannot start leaves every read here
        }
        for (const g of page) {
          const read = bulk ? fromBulk(g) : limit(() => readGroup(g));
          // Handled at once: a read may fail while later pages are still being listed (awaited below).
          read.catch(() => {});
          pending.push(read);
        }
      }, opts.onWarning),
    );
  } finally {
    // Never leave reads running (or their rejections unhandled) behind a failed listing.
    await Promise.allSettled(pending);
    if (bulk) await Promise.allSettled([bulk]);
    // Assigned in the page callback, which TypeScript's narrowing does not see.
    await (await (poolStarting as Promise<TagReadPool | null> | null)?.catch(() => null))?.close();
    api.stats.onThrottle = previousOnThrottle;
  }
  if (bulk) await bulk; // a failed bulk read fails the listing with its own sentence
  const records = await Promise.all(pending);
  const found = records.filter((r): r is GroupRecord => r !== null);
  if (opts.expected) {
    const present = new Set(listed.map((g) => g.Name));
    for (const name of opts.expected) {
      if (present.has(name) || isIgnored(cfg, name) || (opts.prefix && !name.startsWith(opts.prefix))) continue;
      found.push(absentRecord(cfg, name));
    }
  }
  return found.sort((a, b) => a.name.localeCompare(b.name));
}


// Adopt and reconcile live in their own module; re-exported so existing importers keep working.
export { adoptRemedy, reconcileRemedy, schedulerHost, type GroupPlan, type WriteOptions } from './schedule-group-remedies.js';
