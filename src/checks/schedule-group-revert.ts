import type { AuditEntry } from '../engine/audit.js';
import type { ItemOutcome, PlannedItem, Remedy } from '../engine/remediation.js';
import type { RunEntry } from '../engine/runs.js';
import { sameJson } from '../engine/revert.js';
import { isFatalAwsError, type SchedulerApi } from '../aws/scheduler-api.js';
import { readGroupNow, readTags, tagGroup, untagGroup } from '../aws/scheduler-gateway.js';
import type { Tags } from './tag-diff.js';

/**
 * `revert RUN` of an adopt or reconcile: each group's tag set put back exactly as it was
 * (the keys the run changed get their old values, the keys it added are removed), only while
 * the group's tags are still exactly the run's after-image. A group the run created is not
 * deleted (refused). Every call is its own change (no transaction): the read-back verifies it.
 */

export interface PlannedGroupRevert extends PlannedItem {
  name: string;
  region: string | null;
  kind: string;
  change: string;
}

interface GroupRevertItem {
  plan: PlannedGroupRevert;
  entry: RunEntry;
  before: Tags | null;
  after: Tags | null;
}

const tagsOf = (image: unknown): Tags | null => ((image as { tags?: Tags } | null)?.tags ?? null);

/** An AWS run's entry (adopt, reconcile, a revert of one): its group's name. */
export const isGroupEntry = (e: RunEntry) => e.kind.startsWith('schedule_group.');

export function groupRevertItems(entries: RunEntry[]): GroupRevertItem[] {
  return entries.map((entry) => {
    const name = (entry.metadata.name as string | undefined) ?? entry.resourceId ?? '';
    const before = tagsOf(entry.metadata.before);
    const after = tagsOf(entry.metadata.after);
    const plan: PlannedGroupRevert = { id: name, name, region: (entry.metadata.region as string | undefined) ?? null, kind: entry.kind, change: '' };
    if (!('before' in entry.metadata) || !after) plan.refusal = 'no before-image was recorded for this change: nothing to put back';
    else if (before === null) plan.refusal = 'created by the run: revert does not delete schedule groups';
    else {
      const changed = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => before[k] !== after[k]).sort();
      plan.change = changed.map((k) => `${k}: ${after[k] ?? '(none)'} → ${before[k] ?? '(removed)'}`).join('; ') || 'nothing differs';
    }
    return { plan, entry, before, after };
  });
}

export interface GroupRevertOptions {
  runId: string;
  reason?: string;
  actor: string;
}

export function groupRevertRemedy(items: GroupRevertItem[], opts: GroupRevertOptions): Remedy<PlannedGroupRevert, SchedulerApi> {
  const byId = new Map(items.map((i) => [i.plan.id, i]));
  return {
    action: 'revert',
    table: 'schedule groups',
    schema: null,
    labels: { applied: 'reverted', lost: 'changed-since' },
    async plan(_api, limit) {
      const all = [...items.filter((i) => !i.plan.refusal), ...items.filter((i) => i.plan.refusal)].map((i) => i.plan);
      return limit > 0 ? all.slice(0, limit) : all;
    },
    async applyBatch(api, batch) {
      const out: ItemOutcome[] = [];
      let stopped = false;
      for (const p of batch) {
        if (stopped) {
          out.push({ id: p.id, outcome: 'errored', detail: 'not attempted: the run stopped early' });
          continue;
        }
        try {
          out.push(await revertOne(api, byId.get(p.id) as GroupRevertItem, opts));
        } catch (e) {
          if (isFatalAwsError(e)) {
            stopped = true;
            out.push({ id: p.id, outcome: 'errored', fatal: e });
          } else out.push({ id: p.id, outcome: 'errored', detail: (e as Error).message ?? String(e) });
        }
      }
      return out;
    },
  };
}

async function revertOne(api: SchedulerApi, i: GroupRevertItem, opts: GroupRevertOptions): Promise<ItemOutcome> {
  const id = i.plan.id;
  const before = i.before as Tags;
  const now = await readGroupNow(api, i.plan.name);
  if (!now) return { id, outcome: 'lost', label: 'gone', detail: 'the group no longer exists' };
  if (now.group.State === 'DELETING') return { id, outcome: 'refused', detail: 'the group is being deleted' };
  if (sameJson(now.tags, before)) return { id, outcome: 'lost', label: 'already-reverted', detail: 'the group already holds its tags from before the run' };
  if (!sameJson(now.tags, i.after)) return { id, outcome: 'lost', detail: 'its tags changed since the run: left alone' };
  const arn = now.group.Arn as string;
  const upserts = Object.fromEntries(Object.entries(before).filter(([k, v]) => now.tags[k] !== v));
  const removals = Object.keys(now.tags).filter((k) => !(k in before));
  if (Object.keys(upserts).length) await tagGroup(api, arn, upserts);
  if (removals.length) await untagGroup(api, arn, removals);
  const read = await readTags(api, arn);
  const audit: AuditEntry = {
    kind: 'schedule_group.reverted',
    resourceType: 'schedule_group',
    resourceId: i.plan.name,
    summary: `revert of ${i.entry.kind} ${i.plan.name} (run ${opts.runId})${opts.reason ? `: ${opts.reason}` : ''}`,
    metadata: { name: i.plan.name, arn, region: api.region, revertOf: opts.runId, revertedKind: i.entry.kind, reason: opts.reason ?? null, actor: opts.actor },
    before: { tags: now.tags },
    after: { tags: read ?? {} },
  };
  if (!read || !sameJson(read, before)) return { id, outcome: 'errored', detail: 'written, but the read-back does not show the tags from before the run', audit };
  return { id, outcome: 'applied', detail: i.plan.change, audit };
}
