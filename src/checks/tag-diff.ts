import type { ScheduleGroupsConfig } from '../config/config.js';

/**
 * Ownership and tag diffing for schedule groups: pure functions, no AWS. A group is ours
 * only if every owner tag matches; keys under the owner prefix belong to owners, every
 * other tag is the user's and is never removed.
 */

export type GroupClass = 'owned' | 'partial' | 'unowned' | 'foreign' | 'drifted' | 'deleting' | 'missing' | 'ignored';

/** Every class, in the order tables and summaries list them. */
export const GROUP_CLASSES: GroupClass[] = ['owned', 'partial', 'unowned', 'foreign', 'drifted', 'deleting', 'missing', 'ignored'];

/** What the tags alone say about ownership (the class a DELETING group would have if it were ACTIVE). */
export type Ownership = 'owned' | 'drifted' | 'partial' | 'unowned' | 'foreign';

export type Tags = Record<string, string>;

/** One tag change: `to: null` removes the key. */
export interface TagChange {
  key: string;
  from: string | null;
  to: string | null;
}

export type OwnershipConfig = Pick<ScheduleGroupsConfig, 'ownerTags' | 'ownerKeyPrefix' | 'desiredTags' | 'ignore'>;

/** Owner tags for one group: `{name}` in a value becomes the group's name. */
export function expectedOwnerTags(cfg: OwnershipConfig, name: string): Tags {
  return Object.fromEntries(Object.entries(cfg.ownerTags).map(([k, v]) => [k, v.replaceAll('{name}', name)]));
}

export function isOwnerKey(cfg: OwnershipConfig, key: string): boolean {
  return key in cfg.ownerTags || (cfg.ownerKeyPrefix !== null && key.startsWith(cfg.ownerKeyPrefix));
}

const globs = new Map<string, RegExp>();

/** Compiled once per pattern: a listing asks for every group, twice. */
function globToRegExp(glob: string): RegExp {
  let re = globs.get(glob);
  if (!re) {
    const escaped = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
    globs.set(glob, (re = new RegExp(`^${escaped}$`)));
  }
  return re;
}

/** `default` is always ignored; `ignore` holds glob patterns (`*`, `?`). */
export function isIgnored(cfg: Pick<OwnershipConfig, 'ignore'>, name: string): boolean {
  return name === 'default' || cfg.ignore.some((p) => globToRegExp(p).test(name));
}

/** Changes that make `current` carry every tag of `wanted` (adds and overwrites, never removes). */
export function upserts(current: Tags, wanted: Tags): TagChange[] {
  return Object.entries(wanted)
    .filter(([k, v]) => current[k] !== v)
    .map(([k, v]) => ({ key: k, from: current[k] ?? null, to: v }))
    .sort((a, b) => a.key.localeCompare(b.key));
}

/** Owner-prefix keys that are neither owner nor desired tags any more: reconcile removes them. */
export function staleOwnerKeys(cfg: OwnershipConfig, name: string, current: Tags): TagChange[] {
  if (cfg.ownerKeyPrefix === null) return [];
  const keep = new Set([...Object.keys(expectedOwnerTags(cfg, name)), ...Object.keys(cfg.desiredTags)]);
  return Object.keys(current)
    .filter((k) => k.startsWith(cfg.ownerKeyPrefix as string) && !keep.has(k))
    .sort()
    .map((k) => ({ key: k, from: current[k], to: null }));
}

/** What adopt writes: owner and desired tags added or overwritten; nothing removed. */
export function adoptChanges(cfg: OwnershipConfig, name: string, current: Tags): TagChange[] {
  return upserts(current, { ...cfg.desiredTags, ...expectedOwnerTags(cfg, name) });
}

/** What reconcile writes: adopt's changes plus removal of stale owner-prefix keys (never a user's tag). */
export function reconcileChanges(cfg: OwnershipConfig, name: string, current: Tags): TagChange[] {
  return [...adoptChanges(cfg, name, current), ...staleOwnerKeys(cfg, name, current)];
}

/** Applies changes to a tag set (for verifying a read-back and for property tests). */
export function applyChanges(current: Tags, changes: TagChange[]): Tags {
  const out = { ...current };
  for (const c of changes) {
    if (c.to === null) delete out[c.key];
    else out[c.key] = c.to;
  }
  return out;
}

export interface GroupFacts {
  name: string;
  state: string;
  lastModificationDate?: Date | null;
}

export interface Classification {
  class: GroupClass;
  /** Why, in words an operator reads in a table. */
  reasons: string[];
  /** What adopt (for unowned/partial/foreign) or reconcile (for drifted) would change. */
  changes: TagChange[];
  /** The tags' verdict alone; differs from `class` only for a DELETING group. */
  ownership?: Ownership;
}

/**
 * owned: every owner tag matches (and desired tags present); partial: some owner tags match,
 * the others are absent, none disagrees — not ours (the reference engine's rule: anything short
 * of every owner tag matching is not owned), so only adopt completes it; unowned: no owner keys;
 * foreign: an owner key with another value, or only owner-prefix keys that are not ours;
 * drifted: every owner tag ours, but desired tags missing or different, or stale owner-prefix
 * keys; deleting: state DELETING, whatever the tags (`ownership` keeps their verdict).
 */
export function classify(cfg: OwnershipConfig, group: GroupFacts, tags: Tags, opts: { nowMs: number; deletingThresholdMs: number }): Classification {
  if (isIgnored(cfg, group.name)) return { class: 'ignored', reasons: [group.name === 'default' ? 'the default group' : 'matches an ignore pattern'], changes: [] };
  const c = classifyTags(cfg, group.name, tags);
  if (group.state !== 'DELETING') return c;
  const since = group.lastModificationDate?.getTime();
  const reasons = [
    since !== undefined ? `DELETING since ${new Date(since).toISOString()}` : 'DELETING',
    ...(since !== undefined && opts.nowMs - since > opts.deletingThresholdMs ? ['longer than scheduleGroups.deletingThreshold'] : []),
    `tags: ${c.class}`,
  ];
  return { class: 'deleting', reasons, changes: [], ownership: c.class as Ownership };
}

function classifyTags(cfg: OwnershipConfig, name: string, tags: Tags): Classification & { class: Ownership } {
  const owner = expectedOwnerTags(cfg, name);
  const ownerKeysPresent = Object.keys(tags).filter((k) => isOwnerKey(cfg, k));
  if (ownerKeysPresent.length === 0 || Object.keys(owner).length === 0) {
    return { class: 'unowned', reasons: ['no ownership tags'], changes: adoptChanges(cfg, name, tags), ownership: 'unowned' };
  }
  const conflicting = Object.entries(owner).filter(([k, v]) => k in tags && tags[k] !== v);
  const oursPresent = Object.keys(owner).filter((k) => k in tags);
  if (conflicting.length > 0 || oursPresent.length === 0) {
    const reasons = conflicting.length
      ? conflicting.map(([k, v]) => `${k}=${tags[k]} (ours: ${v})`)
      : [`owner keys ${ownerKeysPresent.join(', ')} are not ours`];
    return { class: 'foreign', reasons, changes: adoptChanges(cfg, name, tags), ownership: 'foreign' };
  }
  if (oursPresent.length < Object.keys(owner).length) {
    const absent = Object.keys(owner).filter((k) => !(k in tags));
    return { class: 'partial', reasons: absent.map((k) => `owner tag ${k} absent`), changes: adoptChanges(cfg, name, tags), ownership: 'partial' };
  }
  const changes = reconcileChanges(cfg, name, tags);
  const reasons = changes.map((c) => (c.to === null ? `stale ${c.key}` : c.from === null ? `missing ${c.key}` : `${c.key}=${c.from} (want ${c.to})`));
  const cls = reasons.length ? 'drifted' : 'owned';
  return { class: cls, reasons, changes, ownership: cls };
}

/** "+k=v ~k=a→b -k" for tables. */
export function describeChanges(changes: TagChange[]): string {
  return changes.map((c) => (c.to === null ? `-${c.key}` : c.from === null ? `+${c.key}=${c.to}` : `~${c.key}=${c.from}→${c.to}`)).join(' ');
}
