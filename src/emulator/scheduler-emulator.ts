// A stateful, in-process emulator of the EventBridge Scheduler REST-JSON API.
// It exists so the real, unmodified @aws-sdk/client-scheduler (or the AWS CLI
// with --endpoint-url) can be exercised against behaviour that moto does not
// model: name conflicts, the DELETING window, pagination and real status codes.
// Wire facts (methods, paths, query keys, epoch-second dates, the
// x-amzn-errortype header) were checked against the installed SDK's schemas
// and the botocore service model for scheduler 2021-06-30.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export type GroupState = 'ACTIVE' | 'DELETING';
export type ScheduleState = 'ENABLED' | 'DISABLED';

export type EmulatorErrorName =
  | 'ConflictException'
  | 'ThrottlingException'
  | 'InternalServerException'
  | 'ServiceQuotaExceededException'
  | 'AccessDeniedException'
  | 'ValidationException';

/** The awsJson1_1 target of the Resource Groups Tagging API's GetResources (the emulator serves it on POST /). */
export const TAGGING_TARGET_PREFIX = 'ResourceGroupsTaggingAPI_20170126.';

export interface EmulatorOptions {
  /** 0 = random free port (default 0). */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default us-east-1. */
  region?: string;
  /** Default 123456789012. */
  accountId?: string;
  /** How long a deleted group stays DELETING before it disappears with its schedules (default 1000). */
  deletingMs?: number;
  /** A newly created group answers ConflictException to Tag/Untag/Delete for this long (default 0). */
  creatingMs?: number;
  /** Added latency on every call (default 0). */
  latencyMs?: number;
  /** Group quota, counting `default` and DELETING groups (default 500). */
  maxGroups?: number;
  /** Default true: a `default` group exists, ACTIVE, untagged. */
  seedDefaultGroup?: boolean;
  /** Clock in epoch ms (default Date.now). Lets tests drive the DELETING/creating windows without waiting. */
  now?: () => number;
}

export interface EmulatorGroupView {
  name: string;
  arn: string;
  state: GroupState;
  tags: Record<string, string>;
  creationDate: Date;
  lastModificationDate: Date;
  schedules: number;
}

export interface SchedulerEmulator {
  /** e.g. http://127.0.0.1:PORT */
  url: string;
  port: number;
  close(): Promise<void>;
  /** The next `count` calls of `operation` (or '*' for any) fail with `error`. */
  injectFault(operation: string, error: EmulatorErrorName, count: number): void;
  clearFaults(): void;
  setLatency(ms: number): void;
  /** Calls per operation name (faulted ones included) since start or the last reset. */
  callCounts(): Record<string, number>;
  resetCallCounts(): void;
  /**
   * Direct state access for tests: bypasses validation of tags (so `aws:` tags can be seeded), faults and latency. Replaces an existing group of that name.
   * `everTagged` (default: any tags given) decides whether the Tagging API's GetResources returns the group.
   */
  seedGroup(
    name: string,
    tags?: Record<string, string>,
    opts?: { state?: GroupState; creationDate?: Date; lastModificationDate?: Date; everTagged?: boolean },
  ): void;
  /** Direct seeding of a schedule into an existing group. */
  seedSchedule(groupName: string, name: string, opts?: { state?: ScheduleState; scheduleExpression?: string }): void;
  groups(): EmulatorGroupView[];
  /** Deterministic JSON of the whole state (groups, tags, schedules), for "nothing changed" checksums. */
  snapshot(): string;
}

interface Schedule {
  name: string;
  groupName: string;
  state: ScheduleState;
  scheduleExpression: string;
  scheduleExpressionTimezone?: string;
  description?: string;
  target: { Arn: string; RoleArn: string };
  flexibleTimeWindow: { Mode: string; MaximumWindowInMinutes?: number };
  creationDate: number;
  lastModificationDate: number;
}

interface Group {
  name: string;
  state: GroupState;
  // Map keeps insertion order, so ListTagsForResource answers in the order tags were first added.
  tags: Map<string, string>;
  /**
   * Set once the group is created with tags, tagged or seeded with tags; never cleared. The
   * Tagging API's GetResources only returns groups that are or ever were tagged (a group whose
   * tags were all removed is still returned, with no tags; one never tagged is absent).
   */
  everTagged: boolean;
  creationDate: number;
  lastModificationDate: number;
  schedules: Map<string, Schedule>;
  createToken?: string;
  deleteToken?: string;
  deletingUntil?: number;
  creatingUntil?: number;
}

interface Fault {
  operation: string;
  error: EmulatorErrorName;
  remaining: number;
}

class ApiError extends Error {
  constructor(
    readonly type: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const STATUS: Record<string, number> = {
  ValidationException: 400,
  ServiceQuotaExceededException: 402,
  AccessDeniedException: 403,
  ResourceNotFoundException: 404,
  ConflictException: 409,
  ThrottlingException: 429,
  InternalServerException: 500,
};

const err = (type: EmulatorErrorName | 'ResourceNotFoundException', message: string): ApiError =>
  new ApiError(type, STATUS[type] ?? 400, message);

const NAME_RE = /^[0-9a-zA-Z\-_.]+$/;
const CLIENT_TOKEN_RE = /^[a-zA-Z0-9\-_]+$/;
const ROLE_ARN_RE = /^arn:aws(-[a-z]+)?:iam::\d{12}:role\/[\w+=,.@/-]+$/;
const TAG_ARN_RE = /^arn:(aws(?:-[a-z]+)?):scheduler:([a-z0-9-]+):(\d{12}):schedule-group\/([0-9a-zA-Z\-_.]+)$/;
const MAX_TAGS = 200;

function checkName(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length < 1 || value.length > 64 || !NAME_RE.test(value)) {
    throw err(
      'ValidationException',
      `1 validation error detected: Value '${String(value)}' at '${field}' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9a-zA-Z-_.]+ and have length between 1 and 64`,
    );
  }
  return value;
}

function optionalName(value: string | null, field: string): string | undefined {
  return value === null ? undefined : checkName(value, field);
}

function checkMaxResults(raw: string | null): number {
  if (raw === null) return 100; // the service's default page size is not documented; 100 is the model's maximum
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 100) {
    throw err('ValidationException', `Value '${raw}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 100`);
  }
  return n;
}

function checkClientToken(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value.length < 1 || value.length > 64 || !CLIENT_TOKEN_RE.test(value)) {
    throw err('ValidationException', `Value '${String(value)}' at 'clientToken' failed to satisfy constraint`);
  }
  return value;
}

function checkTagKey(key: unknown, field: string): string {
  if (typeof key !== 'string' || key.length < 1 || key.length > 128) {
    throw err('ValidationException', `Value at '${field}' failed to satisfy constraint: Member must have length between 1 and 128`);
  }
  // AWS treats the reserved prefix case-insensitively.
  if (key.toLowerCase().startsWith('aws:')) {
    throw err('ValidationException', `Tag keys starting with 'aws:' are reserved for AWS use: '${key}'`);
  }
  return key;
}

function checkTagList(raw: unknown, field: string): Array<[string, string]> {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw err('ValidationException', `'${field}' must be a list`);
  if (raw.length > MAX_TAGS) {
    throw err('ValidationException', `Value at '${field}' failed to satisfy constraint: Member must have length less than or equal to ${MAX_TAGS}`);
  }
  const seen = new Set<string>();
  return raw.map((t: unknown, i): [string, string] => {
    const tag = (t ?? {}) as { Key?: unknown; Value?: unknown };
    const key = checkTagKey(tag.Key, `${field}.${i + 1}.member.key`);
    const value = tag.Value;
    if (typeof value !== 'string' || value.length < 1 || value.length > 256) {
      throw err('ValidationException', `Value at '${field}.${i + 1}.member.value' failed to satisfy constraint: Member must have length between 1 and 256`);
    }
    // Unverified against AWS: duplicates in one call are rejected so callers cannot depend on last-wins.
    if (seen.has(key)) throw err('ValidationException', `Duplicate tag key '${key}' in '${field}'`);
    seen.add(key);
    return [key, value];
  });
}

// Opaque tokens: base64url JSON carrying the last returned sort key, so items
// that exist throughout a listing are seen exactly once even if others come and go.
function encodeToken(op: string, after: string): string {
  return Buffer.from(JSON.stringify({ op, after }), 'utf8').toString('base64url');
}

function decodeToken(op: string, raw: string | null): string | undefined {
  if (raw === null) return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as { op?: unknown; after?: unknown };
    if (parsed.op === op && typeof parsed.after === 'string') return parsed.after;
  } catch {
    // fall through to the ValidationException below
  }
  throw err('ValidationException', 'The NextToken provided is invalid');
}

const seconds = (ms: number): number => ms / 1000;

function sortedTags(tags: Map<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of [...tags.keys()].sort()) out[k] = tags.get(k) as string;
  return out;
}

const byKey = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

interface Request {
  method: string;
  segments: string[]; // decoded path segments
  query: URLSearchParams;
  body: Record<string, unknown>;
}

interface Reply {
  status: number;
  body: unknown;
}

export async function startSchedulerEmulator(opts: EmulatorOptions = {}): Promise<SchedulerEmulator> {
  const region = opts.region ?? 'us-east-1';
  const accountId = opts.accountId ?? '123456789012';
  const deletingMs = opts.deletingMs ?? 1000;
  const creatingMs = opts.creatingMs ?? 0;
  const maxGroups = opts.maxGroups ?? 500;
  const now = opts.now ?? Date.now;
  let latencyMs = opts.latencyMs ?? 0;

  const groups = new Map<string, Group>();
  let faults: Fault[] = [];
  let counts: Record<string, number> = {};
  const pendingTimers = new Set<NodeJS.Timeout>();

  const groupArn = (name: string): string => `arn:aws:scheduler:${region}:${accountId}:schedule-group/${name}`;
  const scheduleArn = (group: string, name: string): string => `arn:aws:scheduler:${region}:${accountId}:schedule/${group}/${name}`;

  // Expiry is applied lazily on every access rather than by timers, so no
  // timer keeps the process alive and an injected clock is honoured exactly.
  function sweep(): void {
    const t = now();
    for (const [name, g] of groups) {
      if (g.state === 'DELETING' && g.deletingUntil !== undefined && g.deletingUntil <= t) groups.delete(name);
    }
  }

  function newGroup(name: string, t: number): Group {
    return { name, state: 'ACTIVE', tags: new Map(), everTagged: false, creationDate: t, lastModificationDate: t, schedules: new Map() };
  }

  if (opts.seedDefaultGroup ?? true) groups.set('default', newGroup('default', now()));

  function summary(g: Group): Record<string, unknown> {
    return {
      Arn: groupArn(g.name),
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
    if (partition !== 'aws' || arnRegion !== region || arnAccount !== accountId || !g) {
      throw err('ResourceNotFoundException', `Resource ${arn} does not exist.`);
    }
    return g;
  }

  function assertMutable(g: Group, what: string): void {
    if (g.state === 'DELETING') throw err('ConflictException', `Schedule group ${g.name} is being deleted; cannot ${what}.`);
    if (g.creatingUntil !== undefined && now() < g.creatingUntil) {
      throw err('ConflictException', `Schedule group ${g.name} is still being created; cannot ${what}.`);
    }
  }

  function scheduleSummary(s: Schedule): Record<string, unknown> {
    return {
      Arn: scheduleArn(s.groupName, s.name),
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

  type Handler = (req: Request, label: string | undefined) => Reply;
  const ok = (body: unknown = {}): Reply => ({ status: 200, body });

  const handlers: Record<string, Handler> = {
    CreateScheduleGroup(req, label) {
      const name = checkName(label, 'name');
      const token = checkClientToken(req.body.ClientToken);
      const tags = checkTagList(req.body.Tags, 'tags');
      const existing = groups.get(name);
      if (existing) {
        // A retry of the same request (same idempotency token) answers as the first one did.
        if (token !== undefined && existing.createToken === token && existing.state === 'ACTIVE') {
          return ok({ ScheduleGroupArn: groupArn(name) });
        }
        throw err('ConflictException', `Schedule group ${name} already exists.`);
      }
      if (groups.size >= maxGroups) {
        throw err('ServiceQuotaExceededException', `Quota of ${maxGroups} schedule groups reached.`);
      }
      const t = now();
      const g = newGroup(name, t);
      g.tags = new Map(tags);
      g.everTagged = tags.length > 0;
      g.createToken = token;
      if (creatingMs > 0) g.creatingUntil = t + creatingMs;
      groups.set(name, g);
      return ok({ ScheduleGroupArn: groupArn(name) });
    },

    GetScheduleGroup(_req, label) {
      return ok(summary(requireGroup(checkName(label, 'name'))));
    },

    ListScheduleGroups(req) {
      const prefix = optionalName(req.query.get('NamePrefix'), 'namePrefix');
      const max = checkMaxResults(req.query.get('MaxResults'));
      const after = decodeToken('ListScheduleGroups', req.query.get('NextToken'));
      const matching = [...groups.keys()]
        .filter((n) => (prefix === undefined || n.startsWith(prefix)) && (after === undefined || n > after))
        .sort(byKey);
      const page = matching.slice(0, max);
      const out: Record<string, unknown> = { ScheduleGroups: page.map((n) => summary(groups.get(n) as Group)) };
      if (matching.length > max) out.NextToken = encodeToken('ListScheduleGroups', page[page.length - 1] as string);
      return ok(out);
    },

    DeleteScheduleGroup(req, label) {
      const name = checkName(label, 'name');
      const token = checkClientToken(req.query.get('clientToken') ?? undefined);
      if (name === 'default') throw err('ValidationException', 'The default schedule group cannot be deleted.');
      const g = requireGroup(name);
      if (g.state === 'DELETING' && token !== undefined && g.deleteToken === token) return ok();
      assertMutable(g, 'delete it');
      const t = now();
      g.state = 'DELETING';
      g.deleteToken = token;
      g.deletingUntil = t + deletingMs;
      g.lastModificationDate = t;
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
        g.lastModificationDate = now();
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
        g.lastModificationDate = now();
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
      const t = now();
      g.schedules.set(name, { name, groupName, ...fields, creationDate: t, lastModificationDate: t });
      return ok({ ScheduleArn: scheduleArn(groupName, name) });
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
      g.schedules.set(name, { ...s, ...fields, lastModificationDate: now() });
      return ok({ ScheduleArn: scheduleArn(groupName, name) });
    },

    GetSchedule(req, label) {
      const name = checkName(label, 'name');
      const groupName = optionalName(req.query.get('groupName'), 'groupName') ?? 'default';
      const s = groups.get(groupName)?.schedules.get(name);
      if (!s) throw err('ResourceNotFoundException', `Schedule ${name} does not exist in group ${groupName}.`);
      return ok({
        Arn: scheduleArn(groupName, name),
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
      const after = decodeToken('ListSchedules', req.query.get('NextToken'));
      // The model lists ResourceNotFoundException for ListSchedules: an unknown group filter.
      if (groupFilter !== undefined) requireGroup(groupFilter);
      const sortKey = (s: Schedule): string => `${s.groupName}/${s.name}`;
      const matching: Schedule[] = [];
      for (const g of groups.values()) {
        if (groupFilter !== undefined && g.name !== groupFilter) continue;
        for (const s of g.schedules.values()) {
          if (prefix !== undefined && !s.name.startsWith(prefix)) continue;
          if (state !== null && s.state !== state) continue;
          if (after !== undefined && sortKey(s) <= after) continue;
          matching.push(s);
        }
      }
      matching.sort((a, b) => byKey(sortKey(a), sortKey(b)));
      const page = matching.slice(0, max);
      const out: Record<string, unknown> = { Schedules: page.map(scheduleSummary) };
      if (matching.length > max) out.NextToken = encodeToken('ListSchedules', sortKey(page[page.length - 1] as Schedule));
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
      let after: string | undefined;
      if (rawToken) {
        try {
          after = decodeToken('GetResources', rawToken);
        } catch {
          throw new ApiError('PaginationTokenExpiredException', 400, 'The PaginationToken is invalid or expired.');
        }
      }
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
            .map((g) => ({ g, arn: groupArn(g.name) }))
            .filter(({ arn }) => (arnList === undefined || (arnList as unknown[]).includes(arn)) && (after === undefined || arn > after))
            .sort((x, y) => byKey(x.arn, y.arn))
        : [];
      const page = matching.slice(0, perPage);
      return ok({
        ResourceTagMappingList: page.map(({ g, arn }) => ({ ResourceARN: arn, Tags: [...g.tags].map(([Key, Value]) => ({ Key, Value })) })),
        PaginationToken: matching.length > perPage ? encodeToken('GetResources', (page[page.length - 1] as { arn: string }).arn) : '',
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

  // Map method + path shape to an operation name and its single path label (if any).
  function route(method: string, segments: string[], target?: string): { op: string; label?: string; json11?: boolean } | undefined {
    if (target !== undefined) {
      // awsJson1_1: POST / with X-Amz-Target; only GetResources of the Tagging API is served.
      if (method !== 'POST' || segments.length !== 0 || target !== `${TAGGING_TARGET_PREFIX}GetResources`) return undefined;
      return { op: 'GetResources', json11: true };
    }
    const [root, label, ...rest] = segments;
    if (rest.length > 0) return undefined;
    const table: Record<string, Record<string, string>> = {
      'schedule-groups': label === undefined
        ? { GET: 'ListScheduleGroups' }
        : { POST: 'CreateScheduleGroup', GET: 'GetScheduleGroup', DELETE: 'DeleteScheduleGroup' },
      schedules: label === undefined
        ? { GET: 'ListSchedules' }
        : { POST: 'CreateSchedule', GET: 'GetSchedule', PUT: 'UpdateSchedule', DELETE: 'DeleteSchedule' },
      tags: label === undefined
        ? {}
        : { POST: 'TagResource', GET: 'ListTagsForResource', DELETE: 'UntagResource' },
    };
    const op = root === undefined ? undefined : table[root]?.[method];
    return op ? { op, label } : undefined;
  }

  function send(res: http.ServerResponse, status: number, body: unknown, errorType?: string, json11 = false): void {
    // awsJson1_1 errors also carry the type in the body's __type.
    const payload = JSON.stringify(json11 && errorType ? { __type: errorType, ...(body as object) } : body);
    const headers: http.OutgoingHttpHeaders = {
      'content-type': json11 ? 'application/x-amz-json-1.1' : 'application/json',
      'content-length': Buffer.byteLength(payload),
      'x-amzn-requestid': randomUUID(),
    };
    if (errorType) headers['x-amzn-errortype'] = errorType;
    res.writeHead(status, headers);
    res.end(payload);
  }

  interface Routed {
    url: URL;
    method: string;
    segments: string[];
    matched: { op: string; label?: string; json11?: boolean } | undefined;
    op: string;
  }

  // Routing and counting happen on arrival, so a call held by latency is already visible in callCounts().
  function arrive(rawUrl: string, method: string, target?: string): Routed {
    const url = new URL(rawUrl, 'http://emulator.invalid');
    let segments: string[];
    try {
      // Split before decoding: the ARN label arrives as one segment with '/' encoded as %2F.
      segments = url.pathname.split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s));
    } catch {
      segments = [];
    }
    const matched = route(method, segments, target);
    const op = matched?.op ?? 'UnknownOperation';
    counts[op] = (counts[op] ?? 0) + 1;
    return { url, method, segments, matched, op };
  }

  function handle({ url, method, segments, matched, op }: Routed, rawBody: string, res: http.ServerResponse): void {
    if (!matched) {
      send(res, 404, { message: `No operation matches ${method} ${url.pathname}` }, 'UnknownOperationException');
      return;
    }
    const json11 = matched.json11 === true;
    const faultIdx = faults.findIndex((f) => f.remaining > 0 && (f.operation === op || f.operation === '*'));
    if (faultIdx >= 0) {
      const fault = faults[faultIdx] as Fault;
      fault.remaining -= 1;
      if (fault.remaining === 0) faults.splice(faultIdx, 1);
      send(res, STATUS[fault.error] ?? 500, { Message: `Injected ${fault.error} for ${op}` }, fault.error, json11);
      return;
    }
    try {
      let body: Record<string, unknown> = {};
      if (rawBody.trim() !== '') {
        try {
          const parsed: unknown = JSON.parse(rawBody);
          if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
          else throw new Error('not an object');
        } catch {
          throw new ApiError('SerializationException', 400, 'Request body is not a JSON object.');
        }
      }
      sweep();
      const reply = (handlers[op] as Handler)({ method, segments, query: url.searchParams, body }, matched.label);
      send(res, reply.status, reply.body, undefined, json11);
    } catch (e) {
      if (e instanceof ApiError) send(res, e.status, { Message: e.message }, e.type, json11);
      else send(res, 500, { Message: `Emulator bug: ${(e as Error).message}` }, 'InternalServerException', json11);
    }
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const target = req.headers['x-amz-target'];
      const routed = arrive(req.url ?? '/', req.method ?? 'GET', Array.isArray(target) ? target[0] : target);
      const go = (): void => handle(routed, rawBody, res);
      // Latency simulates the network before the request reaches the service.
      if (latencyMs <= 0) return go();
      const timer = setTimeout(() => {
        pendingTimers.delete(timer);
        go();
      }, latencyMs);
      pendingTimers.add(timer);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host ?? '127.0.0.1';
  const urlHost = host.includes(':') ? `[${host}]` : host;

  function view(g: Group): EmulatorGroupView {
    return {
      name: g.name,
      arn: groupArn(g.name),
      state: g.state,
      tags: sortedTags(g.tags),
      creationDate: new Date(g.creationDate),
      lastModificationDate: new Date(g.lastModificationDate),
      schedules: g.schedules.size,
    };
  }

  return {
    url: `http://${urlHost}:${port}`,
    port,
    close() {
      for (const t of pendingTimers) clearTimeout(t);
      pendingTimers.clear();
      return new Promise<void>((resolve, reject) => {
        server.close((e) => (e ? reject(e) : resolve()));
        // The SDK keeps sockets alive; without this close() would wait for them to idle out.
        server.closeAllConnections();
      });
    },
    injectFault(operation, error, count) {
      if (!(error in STATUS)) throw new Error(`unknown fault ${error}`);
      if (count > 0) faults.push({ operation, error, remaining: count });
    },
    clearFaults() {
      faults = [];
    },
    setLatency(ms) {
      latencyMs = ms;
    },
    callCounts() {
      return { ...counts };
    },
    resetCallCounts() {
      counts = {};
    },
    seedGroup(name, tags = {}, seedOpts = {}) {
      checkName(name, 'name');
      const t = now();
      const created = seedOpts.creationDate?.getTime() ?? t;
      const g: Group = {
        ...newGroup(name, created),
        state: seedOpts.state ?? 'ACTIVE',
        tags: new Map(Object.entries(tags)),
        everTagged: seedOpts.everTagged ?? Object.keys(tags).length > 0,
        lastModificationDate: seedOpts.lastModificationDate?.getTime() ?? created,
      };
      if (g.state === 'DELETING') g.deletingUntil = t + deletingMs;
      groups.set(name, g);
    },
    seedSchedule(groupName, name, seedOpts = {}) {
      checkName(name, 'name');
      sweep();
      const g = groups.get(groupName);
      if (!g) throw new Error(`seedSchedule: group ${groupName} does not exist`);
      const t = now();
      g.schedules.set(name, {
        name,
        groupName,
        state: seedOpts.state ?? 'ENABLED',
        scheduleExpression: seedOpts.scheduleExpression ?? 'rate(1 hour)',
        target: { Arn: `arn:aws:sqs:${region}:${accountId}:emulator-target`, RoleArn: `arn:aws:iam::${accountId}:role/emulator` },
        flexibleTimeWindow: { Mode: 'OFF' },
        creationDate: t,
        lastModificationDate: t,
      });
    },
    groups() {
      sweep();
      return [...groups.keys()].sort(byKey).map((n) => view(groups.get(n) as Group));
    },
    snapshot() {
      sweep();
      const state = [...groups.keys()].sort(byKey).map((n) => {
        const g = groups.get(n) as Group;
        return {
          name: g.name,
          state: g.state,
          creationDate: g.creationDate,
          lastModificationDate: g.lastModificationDate,
          tags: sortedTags(g.tags),
          schedules: [...g.schedules.keys()].sort(byKey).map((sn) => {
            const s = g.schedules.get(sn) as Schedule;
            return {
              name: s.name,
              state: s.state,
              scheduleExpression: s.scheduleExpression,
              scheduleExpressionTimezone: s.scheduleExpressionTimezone ?? null,
              description: s.description ?? null,
              target: { Arn: s.target.Arn, RoleArn: s.target.RoleArn },
              flexibleTimeWindow: { Mode: s.flexibleTimeWindow.Mode, MaximumWindowInMinutes: s.flexibleTimeWindow.MaximumWindowInMinutes ?? null },
              creationDate: s.creationDate,
              lastModificationDate: s.lastModificationDate,
            };
          }),
        };
      });
      return JSON.stringify({ region, accountId, groups: state });
    },
  };
}
