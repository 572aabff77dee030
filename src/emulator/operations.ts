// The Scheduler API's operations (and the Tagging API's GetResources) over the state store:
// each takes a parsed request and answers a reply or throws the service's error.
import { ApiError, decodeToken, encodeToken, err, expiredPaginationToken, ok, readToken, type Reply, type Request } from './protocol.js';
import { byKey, type Group, type Schedule, type SchedulerStore } from './state.js';
import {
  MAX_TAGS,
  ROLE_ARN_RE,
  TAG_ARN_RE,
  checkClientToken,
  checkMaxResults,
  checkName,
  checkTagKey,
  checkTagList,
  optionalName,
} from './validation.js';

export type Handler = (req: Request, label: string | undefined) => Reply;

export interface OperationLimits {
  /** Group quota, counting `default` and DELETING groups. */
  maxGroups: number;
  /** A newly created group answers ConflictException to Tag/Untag/Delete for this long. */
  creatingMs: number;
}

const seconds = (ms: number): number => ms / 1000;

/**
 * The name of the schedule group a request addresses, if any (from its path label, its ARN, its
 * body or its query), so faults can be aimed at one group. Validation is left to the operation.
 */
export function addressedGroup(op: string, req: Request, label: string | undefined): string | undefined {
  switch (op) {
    case 'CreateScheduleGroup':
    case 'GetScheduleGroup':
    case 'DeleteScheduleGroup':
      return label;
    case 'TagResource':
    case 'UntagResource':
    case 'ListTagsForResource':
      return TAG_ARN_RE.exec(label ?? '')?.[4];
    case 'CreateSchedule':
    case 'UpdateSchedule':
      return typeof req.body.GroupName === 'string' ? req.body.GroupName : 'default';
    case 'GetSchedule':
    case 'DeleteSchedule':
      return req.query.get('groupName') ?? 'default';
    case 'ListSchedules':
      return req.query.get('ScheduleGroup') ?? undefined;
    default:
      return undefined;
  }
}

/** The groups a successful reply returned to the caller (for faults that fire after the Nth read of a group). */
export function groupsRead(op: string, addressed: string | undefined, reply: Reply): string[] {
  const body = reply.body as Record<string, unknown>;
  switch (op) {
    case 'GetScheduleGroup':
    case 'ListTagsForResource':
      return addressed === undefined ? [] : [addressed];
    case 'ListScheduleGroups':
      return ((body.ScheduleGroups ?? []) as Array<{ Name: string }>).map((g) => g.Name);
    case 'GetResources':
      return ((body.ResourceTagMappingList ?? []) as Array<{ ResourceARN: string }>).map((m) => TAG_ARN_RE.exec(m.ResourceARN)?.[4] ?? '');
    default:
      return [];
  }
}

export function createOperations(store: SchedulerStore, limits: OperationLimits): Record<string, Handler> {
  const { groups } = store;

  function summary(g: Group): Record<string, unknown> {
    return {
      Arn: store.groupArn(g.name),
      Name: g.name,
      State: g.state,
      CreationDate: seconds(g.creationDate),
      LastModificationDate: seconds(g.lastModificationDate),
    };
  }

  function requireGroup(name: string): Group {
    const g = groups.get(name);
    if (!g) throw err('ResourceNotFoundException', `Schedule group ${name} does not exist.`);
    return g;
  }

  function groupForArn(rawArn: string | undefined): Group {
    const arn = rawArn ?? '';
    const m = TAG_ARN_RE.exec(arn);
    if (!m || arn.length > 1011) {
      throw err('ValidationException', `Value '${arn}' at 'resourceArn' failed to satisfy constraint: Member must satisfy regular expression pattern`);
    }
    const [, partition, arnRegion, arnAccount, name] = m;
    const g = groups.get(name as string);
    if (partition !== 'aws' || arnRegion !== store.region || arnAccount !== store.accountId || !g) {
      throw err('ResourceNotFoundException', `Resource ${arn} does not exist.`);
    }
    return g;
  }

  function assertMutable(g: Group, what: string): void {
    if (g.state === 'DELETING') throw err('ConflictException', `Schedule group ${g.name} is being deleted; cannot ${what}.`);
    if (g.creatingUntil !== undefined && store.now() < g.creatingUntil) {
      throw err('ConflictException', `Schedule group ${g.name} is still being created; cannot ${what}.`);
    }
  }

  function scheduleSummary(s: Schedule): Record<string, unknown> {
    return {
      Arn: store.scheduleArn(s.groupName, s.name),
      Name: s.name,
      GroupName: s.groupName,
      State: s.state,
      CreationDate: seconds(s.creationDate),
      LastModificationDate: seconds(s.lastModificationDate),
      Target: { Arn: s.target.Arn },
    };
  }

  function readScheduleBody(body: Record<string, unknown>): Pick<Schedule, 'scheduleExpression' | 'target' | 'flexibleTimeWindow' | 'state' | 'description' | 'scheduleExpressionTimezone'> {
    const expr = body.ScheduleExpression;
    if (typeof expr !== 'string' || expr.length < 1 || expr.length > 256) {
      throw err('ValidationException', "Value at 'scheduleExpression' failed to satisfy constraint: Member must have length between 1 and 256");
    }
    const target = (body.Target ?? null) as { Arn?: unknown; RoleArn?: unknown } | null;
    if (!target || typeof target.Arn !== 'string' || target.Arn.length < 1) {
      throw err('ValidationException', "Value null at 'target.arn' failed to satisfy constraint: Member must not be null");
    }
    if (typeof target.RoleArn !== 'string' || !ROLE_ARN_RE.test(target.RoleArn)) {
      throw err('ValidationException', "Value at 'target.roleArn' failed to satisfy constraint: Member must satisfy regular expression pattern");
    }
    const ftw = (body.FlexibleTimeWindow ?? null) as { Mode?: unknown; MaximumWindowInMinutes?: unknown } | null;
    if (!ftw || (ftw.Mode !== 'OFF' && ftw.Mode !== 'FLEXIBLE')) {
      throw err('ValidationException', "Value at 'flexibleTimeWindow.mode' failed to satisfy enum value set: [OFF, FLEXIBLE]");
    }
    const state = body.State ?? 'ENABLED';
    if (state !== 'ENABLED' && state !== 'DISABLED') {
      throw err('ValidationException', "Value at 'state' failed to satisfy enum value set: [ENABLED, DISABLED]");
    }
    return {
      scheduleExpression: expr,
      target: { Arn: target.Arn, RoleArn: target.RoleArn },
      flexibleTimeWindow:
        typeof ftw.MaximumWindowInMinutes === 'number'
          ? { Mode: ftw.Mode, MaximumWindowInMinutes: ftw.MaximumWindowInMinutes }
          : { Mode: ftw.Mode },
      state,
      description: typeof body.Description === 'string' ? body.Description : undefined,
      scheduleExpressionTimezone: typeof body.ScheduleExpressionTimezone === 'string' ? body.ScheduleExpressionTimezone : undefined,
    };
  }

  return {
    CreateScheduleGroup(req, label) {
      const name = checkName(label, 'name');
      const token = checkClientToken(req.body.ClientToken);
      const tags = checkTagList(req.body.Tags, 'tags');
      const existing = groups.get(name);
      if (existing) {
        // A retry of the same request (same idempotency token) answers as the first one did.
        if (token !== undefined && existing.createToken === token && existing.state === 'ACTIVE') {
          return ok({ ScheduleGroupArn: store.groupArn(name) });
        }
        // The name is only free again once the DELETING window has closed.
        if (existing.state === 'DELETING') throw err('ConflictException', `Schedule group ${name} is being deleted; it cannot be created again until the deletion completes.`);
        throw err('ConflictException', `Schedule group ${name} already exists.`);
      }
      if (groups.size >= limits.maxGroups) {
        throw err('ServiceQuotaExceededException', `Quota of ${limits.maxGroups} schedule groups reached.`);
      }
      const t = store.now();
      const g = store.newGroup(name, t);
      g.tags = new Map(tags);
      g.everTagged = tags.length > 0;
      g.createToken = token;
      if (limits.creatingMs > 0) g.creatingUntil = t + limits.creatingMs;
      groups.set(name, g);
      return ok({ ScheduleGroupArn: store.groupArn(name) });
    },

    GetScheduleGroup(_req, label) {
      return ok(summary(requireGroup(checkName(label, 'name'))));
    },

    ListScheduleGroups(req) {
      const prefix = optionalName(req.query.get('NamePrefix'), 'namePrefix');
      const max = checkMaxResults(req.query.get('MaxResults'));
      const token = decodeToken('ListScheduleGroups', req.query.get('NextToken'));
      const matching = [...groups.keys()]
        .filter((n) => (prefix === undefined || n.startsWith(prefix)) && (token === undefined || n > token.after))
        .sort(byKey);
      const page = matching.slice(0, max);
      const out: Record<string, unknown> = { ScheduleGroups: page.map((n) => summary(groups.get(n) as Group)) };
      if (matching.length > max) out.NextToken = encodeToken('ListScheduleGroups', page[page.length - 1] as string, (token?.page ?? 1) + 1);
      return ok(out);
    },

    DeleteScheduleGroup(req, label) {
      const name = checkName(label, 'name');
      const token = checkClientToken(req.query.get('clientToken') ?? undefined);
      if (name === 'default') throw err('ValidationException', 'The default schedule group cannot be deleted.');
      const g = requireGroup(name);
      if (g.state === 'DELETING' && token !== undefined && g.deleteToken === token) return ok();
      assertMutable(g, 'delete it');
      store.startDeleting(g, store.deletingMs, token);
      return ok();
    },

    TagResource(req, label) {
      const g = groupForArn(label);
      const tags = checkTagList(req.body.Tags, 'tags');
      if (!Array.isArray(req.body.Tags)) throw err('ValidationException', "Value null at 'tags' failed to satisfy constraint: Member must not be null");
      assertMutable(g, 'tag it');
      if (tags.length > 0) g.everTagged = true;
      const merged = new Map(g.tags);
      for (const [k, v] of tags) merged.set(k, v);
      if (merged.size > MAX_TAGS) throw err('ValidationException', `A resource can have at most ${MAX_TAGS} tags.`);
      const changed = tags.some(([k, v]) => g.tags.get(k) !== v);
      if (changed) {
        g.tags = merged;
        g.lastModificationDate = store.now();
      }
      return ok();
    },

    UntagResource(req, label) {
      const g = groupForArn(label);
      const keys = req.query.getAll('TagKeys');
      if (keys.length > MAX_TAGS) throw err('ValidationException', `At most ${MAX_TAGS} tag keys may be removed in one call.`);
      keys.forEach((k, i) => checkTagKey(k, `tagKeys.${i + 1}.member`));
      assertMutable(g, 'untag it');
      // Removing an absent key is a no-op, as elsewhere in AWS.
      const changed = keys.some((k) => g.tags.has(k));
      if (changed) {
        for (const k of keys) g.tags.delete(k);
        g.lastModificationDate = store.now();
      }
      return ok();
    },

    ListTagsForResource(_req, label) {
      const g = groupForArn(label);
      return ok({ Tags: [...g.tags].map(([Key, Value]) => ({ Key, Value })) });
    },

    CreateSchedule(req, label) {
      const name = checkName(label, 'name');
      const groupName = req.body.GroupName === undefined ? 'default' : checkName(req.body.GroupName, 'groupName');
      checkClientToken(req.body.ClientToken);
      const fields = readScheduleBody(req.body);
      const g = requireGroup(groupName);
      if (g.state === 'DELETING') throw err('ConflictException', `Schedule group ${groupName} is being deleted.`);
      if (g.schedules.has(name)) throw err('ConflictException', `Schedule ${name} already exists in group ${groupName}.`);
      const t = store.now();
      g.schedules.set(name, { name, groupName, ...fields, creationDate: t, lastModificationDate: t });
      return ok({ ScheduleArn: store.scheduleArn(groupName, name) });
    },

    UpdateSchedule(req, label) {
      const name = checkName(label, 'name');
      const groupName = req.body.GroupName === undefined ? 'default' : checkName(req.body.GroupName, 'groupName');
      checkClientToken(req.body.ClientToken);
      const fields = readScheduleBody(req.body);
      const g = requireGroup(groupName);
      const s = g.schedules.get(name);
      if (!s) throw err('ResourceNotFoundException', `Schedule ${name} does not exist in group ${groupName}.`);
      if (g.state === 'DELETING') throw err('ConflictException', `Schedule group ${groupName} is being deleted.`);
      g.schedules.set(name, { ...s, ...fields, lastModificationDate: store.now() });
      return ok({ ScheduleArn: store.scheduleArn(groupName, name) });
    },

    GetSchedule(req, label) {
      const name = checkName(label, 'name');
      const groupName = optionalName(req.query.get('groupName'), 'groupName') ?? 'default';
      const s = groups.get(groupName)?.schedules.get(name);
      if (!s) throw err('ResourceNotFoundException', `Schedule ${name} does not exist in group ${groupName}.`);
      return ok({
        Arn: store.scheduleArn(groupName, name),
        Name: s.name,
        GroupName: s.groupName,
        State: s.state,
        ScheduleExpression: s.scheduleExpression,
        ScheduleExpressionTimezone: s.scheduleExpressionTimezone,
        Description: s.description,
        Target: s.target,
        FlexibleTimeWindow: s.flexibleTimeWindow,
        CreationDate: seconds(s.creationDate),
        LastModificationDate: seconds(s.lastModificationDate),
      });
    },

    ListSchedules(req) {
      const groupFilter = optionalName(req.query.get('ScheduleGroup'), 'groupName');
      const prefix = optionalName(req.query.get('NamePrefix'), 'namePrefix');
      const state = req.query.get('State');
      if (state !== null && state !== 'ENABLED' && state !== 'DISABLED') {
        throw err('ValidationException', "Value at 'state' failed to satisfy enum value set: [ENABLED, DISABLED]");
      }
      const max = checkMaxResults(req.query.get('MaxResults'));
      const token = decodeToken('ListSchedules', req.query.get('NextToken'));
      // The model lists ResourceNotFoundException for ListSchedules: an unknown group filter.
      if (groupFilter !== undefined) requireGroup(groupFilter);
      const sortKey = (s: Schedule): string => `${s.groupName}/${s.name}`;
      const matching: Schedule[] = [];
      for (const g of groups.values()) {
        if (groupFilter !== undefined && g.name !== groupFilter) continue;
        for (const s of g.schedules.values()) {
          if (prefix !== undefined && !s.name.startsWith(prefix)) continue;
          if (state !== null && s.state !== state) continue;
          if (token !== undefined && sortKey(s) <= token.after) continue;
          matching.push(s);
        }
      }
      matching.sort((a, b) => byKey(sortKey(a), sortKey(b)));
      const page = matching.slice(0, max);
      const out: Record<string, unknown> = { Schedules: page.map(scheduleSummary) };
      if (matching.length > max) out.NextToken = encodeToken('ListSchedules', sortKey(page[page.length - 1] as Schedule), (token?.page ?? 1) + 1);
      return ok(out);
    },

    // Resource Groups Tagging API (awsJson1_1), for schedule groups only: the documented gap is
    // modelled — a group that was never tagged is absent; one whose tags were all removed is
    // returned with an empty tag list. Pages are in ARN order with an opaque token; the last page
    // carries PaginationToken '' as the service does.
    GetResources(req) {
      const b = req.body;
      const types = b.ResourceTypeFilters ?? [];
      if (!Array.isArray(types) || types.some((t) => typeof t !== 'string')) {
        throw new ApiError('InvalidParameterException', 400, 'ResourceTypeFilters must be a list of strings.');
      }
      const perPage = b.ResourcesPerPage ?? 50;
      if (typeof perPage !== 'number' || !Number.isInteger(perPage) || perPage < 1 || perPage > 100) {
        throw new ApiError('InvalidParameterException', 400, 'ResourcesPerPage must be between 1 and 100.');
      }
      const rawToken = b.PaginationToken;
      if (rawToken !== undefined && rawToken !== null && typeof rawToken !== 'string') {
        throw new ApiError('InvalidParameterException', 400, 'PaginationToken must be a string.');
      }
      const token = rawToken ? readToken('GetResources', rawToken) : undefined;
      if (rawToken && !token) throw expiredPaginationToken();
      const tagFilters = (b.TagFilters ?? []) as Array<{ Key?: unknown; Values?: unknown }>;
      if (!Array.isArray(tagFilters)) throw new ApiError('InvalidParameterException', 400, 'TagFilters must be a list.');
      const arnList = b.ResourceARNList;
      if (arnList !== undefined && !Array.isArray(arnList)) throw new ApiError('InvalidParameterException', 400, 'ResourceARNList must be a list.');
      const wantsGroups = types.length === 0 || types.some((t) => t === 'scheduler' || t === 'scheduler:schedule-group');
      const matchesTags = (g: Group): boolean =>
        tagFilters.every((f) => {
          const key = String(f?.Key ?? '');
          if (!g.tags.has(key)) return false;
          const values = Array.isArray(f?.Values) ? (f.Values as unknown[]) : [];
          return values.length === 0 || values.includes(g.tags.get(key));
        });
      const matching = wantsGroups
        ? [...groups.values()]
            .filter((g) => g.everTagged && matchesTags(g))
            .map((g) => ({ g, arn: store.groupArn(g.name) }))
            .filter(({ arn }) => (arnList === undefined || (arnList as unknown[]).includes(arn)) && (token === undefined || arn > token.after))
            .sort((x, y) => byKey(x.arn, y.arn))
        : [];
      const page = matching.slice(0, perPage);
      return ok({
        ResourceTagMappingList: page.map(({ g, arn }) => ({ ResourceARN: arn, Tags: [...g.tags].map(([Key, Value]) => ({ Key, Value })) })),
        PaginationToken:
          matching.length > perPage ? encodeToken('GetResources', (page[page.length - 1] as { arn: string }).arn, (token?.page ?? 1) + 1) : '',
      });
    },

    DeleteSchedule(req, label) {
      const name = checkName(label, 'name');
      const groupName = optionalName(req.query.get('groupName'), 'groupName') ?? 'default';
      checkClientToken(req.query.get('clientToken') ?? undefined);
      const g = groups.get(groupName);
      if (!g || !g.schedules.has(name)) {
        throw err('ResourceNotFoundException', `Schedule ${name} does not exist in group ${groupName}.`);
      }
      g.schedules.delete(name);
      return ok();
    },
  };
}
