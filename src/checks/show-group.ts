import type { ScheduleGroupsConfig } from '../config/config.js';
import { translateAwsError, type SchedulerApi } from '../aws/scheduler-api.js';
import { countSchedules, readGroupNow } from '../aws/scheduler-gateway.js';
import { parseDuration } from '../config/durations.js';
import { ExitCode, OpsctlError } from '../errors.js';
import { classify, describeChanges, type GroupClass, type Tags } from './tag-diff.js';

/** One schedule group whole (`schedule-groups show NAME`): what AWS holds, its class, its schedule count. */
export interface GroupItem {
  name: string;
  arn: string | null;
  region: string;
  state: string;
  class: GroupClass;
  reasons: string[];
  /** What adopt or reconcile would change ("+k=v ~k=a→b -k"); empty when nothing. */
  changes: string;
  tags: Tags;
  creationDate: string | null;
  lastModificationDate: string | null;
  schedules: number;
}

/** GetScheduleGroup, ListTagsForResource, ListSchedules (counted); a group that does not exist: exit 1. */
export async function showGroup(api: SchedulerApi, cfg: ScheduleGroupsConfig, name: string, nowMs: number): Promise<GroupItem> {
  const deletingThresholdMs = parseDuration(cfg.deletingThreshold, 'scheduleGroups.deletingThreshold');
  const read = async <T>(operation: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      throw translateAwsError(e, operation, api);
    }
  };
  const absent = () => new OpsctlError(`no schedule group named ${name} in ${api.region}.`, ExitCode.FINDINGS);
  const now = await read('GetScheduleGroup', () => readGroupNow(api, name));
  if (!now) throw absent();
  const { group, tags } = now;
  const state = group.State ?? 'UNKNOWN';
  const c = classify(cfg, { name, state, lastModificationDate: group.LastModificationDate ?? null }, tags, { nowMs, deletingThresholdMs });
  const schedules = await read('ListSchedules', () => countSchedules(api, name));
  return {
    name,
    arn: group.Arn ?? null,
    region: api.region,
    state,
    class: c.class,
    reasons: c.reasons,
    changes: describeChanges(c.changes),
    tags,
    creationDate: group.CreationDate?.toISOString() ?? null,
    lastModificationDate: group.LastModificationDate?.toISOString() ?? null,
    schedules,
  };
}
