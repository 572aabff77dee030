import { type SchedulerApi, isFatalAwsError, translateAwsError } from './scheduler-api.js';
import { dependencyError } from '../errors.js';
import type { Tags } from '../checks/tag-diff.js';

/**
 * The Scheduler calls opsctl makes, one function each: pagination (with one restart when a
 * page token dies), not-found as null, and the errors an operator must act on as one sentence.
 * No ownership logic here: that is tag-diff.ts (pure) and the finder/remedies above it.
 */

export type ListedGroup = { Name?: string; Arn?: string; State?: string; CreationDate?: Date; LastModificationDate?: Date };

export const isNotFound = (e: unknown) => (e as { name?: string }).name === 'ResourceNotFoundException';
export const toTags = (list: Array<{ Key?: string; Value?: string }> | undefined): Tags =>
  Object.fromEntries((list ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
export const toList = (tags: Tags) => Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));

/** Calls the API, turning the errors an operator must act on into one sentence. */
export async function call<T>(api: SchedulerApi, operation: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (isFatalAwsError(e)) throw translateAwsError(e, operation, api);
    throw e;
  }
}

/**
 * A page token that died: the same request succeeded on page 1, so a ValidationException (or the
 * Tagging API's PaginationTokenExpiredException) on a later page can only be the token's fault —
 * typically a group deleted while it was being listed.
 */
const isDeadToken = (e: unknown) => /^(ValidationException|PaginationTokenExpiredException|InvalidParameterException)$/.test((e as { name?: string }).name ?? '');

/** Told when a listing had to start again: a warning for stderr and the JSON summary. */
export type OnWarning = (message: string) => void;

/**
 * Pages through `fetch` until no token is left. When a token dies between pages the listing
 * starts again once from the first page, and `key` keeps items already delivered from being
 * delivered twice; a second death fails with one sentence (exit 3).
 */
export async function paginate<Item>(
  api: SchedulerApi,
  operation: string,
  fetch: (token: string | undefined) => Promise<{ items: Item[]; next: string | undefined }>,
  opts: { key: (item: Item) => string; onPage?: (page: Item[], more: boolean) => void; onWarning?: OnWarning },
): Promise<Item[]> {
  const out: Item[] = [];
  const seen = new Set<string>();
  let restarted = false;
  let token: string | undefined;
  let page = 0;
  for (;;) {
    let got: { items: Item[]; next: string | undefined };
    try {
      got = await call(api, operation, () => fetch(token));
    } catch (e) {
      if (token === undefined || !isDeadToken(e)) throw e;
      if (restarted) {
        throw dependencyError(
          `${operation} failed twice mid-listing: the page token died again after a restart (items are being deleted or created while listing); re-run when it settles.`,
          e,
        );
      }
      restarted = true;
      opts.onWarning?.(`${operation}: the page token for page ${page + 1} died (${(e as { name?: string }).name}); the listing was restarted once from the first page, groups already read were not read twice.`);
      token = undefined;
      page = 0;
      continue;
    }
    page += 1;
    const fresh = got.items.filter((i) => {
      const k = opts.key(i);
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
    out.push(...fresh);
    token = got.next || undefined; // the Tagging API's last page answers ''
    if (fresh.length) opts.onPage?.(fresh, token !== undefined);
    if (!token) return out;
  }
}

/** Every group, page by page (100 a page: the API's maximum, fewest calls); `onPage` sees each page as it arrives, and whether more are to come. */
export function listAllGroups(api: SchedulerApi, prefix?: string, onPage?: (page: ListedGroup[], more: boolean) => void, onWarning?: OnWarning): Promise<ListedGroup[]> {
  return paginate<ListedGroup>(
    api,
    'ListScheduleGroups',
    async (token) => {
      const page = await api.client.send(new api.sdk.ListScheduleGroupsCommand({ MaxResults: 100, NextToken: token, ...(prefix ? { NamePrefix: prefix } : {}) }));
      return { items: page.ScheduleGroups ?? [], next: page.NextToken };
    },
    { key: (g) => g.Name ?? '', onPage, onWarning },
  );
}

/** One group by name (state, ARN, dates); null when it does not exist. */
export async function getGroup(api: SchedulerApi, name: string): Promise<ListedGroup | null> {
  try {
    const g = await call(api, 'GetScheduleGroup', () => api.client.send(new api.sdk.GetScheduleGroupCommand({ Name: name })));
    return { Name: g.Name ?? name, Arn: g.Arn, State: g.State, CreationDate: g.CreationDate, LastModificationDate: g.LastModificationDate };
  } catch (e) {
    if (isNotFound(e)) return null;
    throw e;
  }
}

/** A group's tags; null when it does not exist. `send` makes the call elsewhere (a tag-read worker) with the same outcome. */
export async function readTags(
  api: SchedulerApi,
  arn: string,
  send: (arn: string) => Promise<{ Tags?: Array<{ Key?: string; Value?: string }> }> = (a) => api.client.send(new api.sdk.ListTagsForResourceCommand({ ResourceArn: a })),
): Promise<Tags | null> {
  try {
    const out = await call(api, 'ListTagsForResource', () => send(arn));
    return toTags(out.Tags);
  } catch (e) {
    if (isNotFound(e)) return null;
    throw e;
  }
}

/** What AWS holds for a group right now: GetScheduleGroup (state) then its tags; null once it is gone. */
export async function readGroupNow(api: SchedulerApi, name: string): Promise<{ group: ListedGroup; tags: Tags } | null> {
  const group = await getGroup(api, name);
  if (!group) return null;
  const tags = await readTags(api, group.Arn ?? '');
  return tags === null ? null : { group, tags };
}

/**
 * Tags of every schedule group the Resource Groups Tagging API returns, by ARN, 100 a page.
 * It returns only groups that are or ever were tagged, and it is eventually consistent: callers
 * must treat ListScheduleGroups as the truth for existence and read any group absent here with
 * ListTagsForResource.
 */
export async function readTagsInBulk(api: SchedulerApi, onWarning?: OnWarning): Promise<Map<string, Tags>> {
  const tagging = await api.tagging();
  const byArn = new Map<string, Tags>();
  await paginate<{ ResourceARN?: string; Tags?: Array<{ Key?: string; Value?: string }> }>(
    api,
    'tag:GetResources',
    async (token) => {
      const page = await tagging.client.send(
        new tagging.sdk.GetResourcesCommand({ ResourceTypeFilters: ['scheduler:schedule-group'], ResourcesPerPage: 100, ...(token ? { PaginationToken: token } : {}) }),
      );
      return { items: page.ResourceTagMappingList ?? [], next: page.PaginationToken };
    },
    { key: (m) => m.ResourceARN ?? '', onPage: (ms) => ms.forEach((m) => m.ResourceARN && byArn.set(m.ResourceARN, toTags(m.Tags))), onWarning },
  );
  return byArn;
}

export async function countSchedules(api: SchedulerApi, group: string, onWarning?: OnWarning): Promise<number> {
  const all = await paginate<{ Name?: string }>(
    api,
    'ListSchedules',
    async (token) => {
      const page = await api.client.send(new api.sdk.ListSchedulesCommand({ GroupName: group, MaxResults: 100, NextToken: token }));
      return { items: page.Schedules ?? [], next: page.NextToken };
    },
    { key: (s) => s.Name ?? '', onWarning },
  );
  return all.length;
}

export async function tagGroup(api: SchedulerApi, arn: string, tags: Tags): Promise<void> {
  await call(api, 'TagResource', () => api.client.send(new api.sdk.TagResourceCommand({ ResourceArn: arn, Tags: toList(tags) })));
}

export async function untagGroup(api: SchedulerApi, arn: string, keys: string[]): Promise<void> {
  await call(api, 'UntagResource', () => api.client.send(new api.sdk.UntagResourceCommand({ ResourceArn: arn, TagKeys: keys })));
}

export async function createGroupCall(api: SchedulerApi, name: string, tags: Tags): Promise<void> {
  await call(api, 'CreateScheduleGroup', () => api.client.send(new api.sdk.CreateScheduleGroupCommand({ Name: name, Tags: toList(tags) })));
}

/** The account of a group ARN (arn:aws:scheduler:region:account:schedule-group/name), or null. */
export function accountOf(arn: string | undefined): string | null {
  const m = /^arn:[^:]+:scheduler:[^:]*:(\d{12}):/.exec(arn ?? '');
  return m ? m[1] : null;
}
