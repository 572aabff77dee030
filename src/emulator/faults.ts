// Fault injection: the ways the real service (or what stands in front of it) misbehaves that a
// caller must survive — injected errors, a group that turns DELETING or vanishes at a chosen
// moment, a page token that dies between pages, an HTML page instead of JSON. Every fault has a
// typed form (tests) and a one-line text form (`opsctl emulator scheduler --fault SPEC`, the
// admin endpoint), parsed by parseFault and printed back by formatFault.
import { formatDuration, parseDuration } from '../config/durations.js';
import { usageError } from '../errors.js';
import { ApiError, STATUS, expiredPaginationToken, invalidToken, readToken, type EmulatorErrorName, type Request } from './protocol.js';
import type { SchedulerStore } from './state.js';

/** When a group fault fires. At most one of afterReads / on / atMs; none = as soon as the group exists. */
export interface GroupTrigger {
  /** After the Nth read of the group has been answered (GetScheduleGroup, ListTagsForResource, or a ListScheduleGroups / GetResources page listing it). */
  afterReads?: number;
  /** On the first call of this operation addressed to the group; that call already sees the change. */
  on?: string;
  /** Once the emulator's clock is this many ms past its start. */
  atMs?: number;
}

export type FaultSpec =
  /** The next `times` (default 1) calls of `op` (default '*': any), optionally only those addressed to `group`, fail with `error`. */
  | { kind: 'error'; error: EmulatorErrorName; op?: string; group?: string; times?: number }
  /** The group turns DELETING at the trigger and disappears `forMs` later (default: the emulator's DELETING window). */
  | ({ kind: 'deleting'; group: string; forMs?: number } & GroupTrigger)
  /** The group, with its schedules, is gone at the trigger (deleted by someone else, the DELETING window skipped). */
  | ({ kind: 'vanish'; group: string } & GroupTrigger)
  /**
   * The page token that fetches page `page` (default 2) of a listing by `op` (default
   * ListScheduleGroups) dies: that request, and any later one presenting the same token, fails
   * (ValidationException; PaginationTokenExpiredException for GetResources). `times` (default 1)
   * listings are hit; a listing restarted from the first page gets fresh tokens.
   */
  | { kind: 'expire-token'; op?: ListingOp; page?: number; times?: number }
  /** `times` calls (default: all) of `op` (default '*'), optionally only those addressed to `group`, are answered with an HTML page of HTTP `status` (default 502). */
  | { kind: 'html'; status?: number; op?: string; group?: string; times?: number };

export type ListingOp = 'ListScheduleGroups' | 'ListSchedules' | 'GetResources';

export interface FaultView {
  /** The fault in its text form. */
  spec: string;
  /** How many times it has acted (calls failed or answered with HTML, tokens killed; 1 once a group fault has fired). */
  fired: number;
  /** False once it has nothing left to do. */
  active: boolean;
}

export const OPERATIONS = [
  'CreateScheduleGroup', 'GetScheduleGroup', 'ListScheduleGroups', 'DeleteScheduleGroup',
  'TagResource', 'UntagResource', 'ListTagsForResource',
  'CreateSchedule', 'GetSchedule', 'UpdateSchedule', 'ListSchedules', 'DeleteSchedule',
  'GetResources',
] as const;
const LISTINGS: readonly string[] = ['ListScheduleGroups', 'ListSchedules', 'GetResources'];
const NAME_RE = /^[0-9a-zA-Z\-_.]{1,64}$/;

const HELP = 'see `opsctl emulator scheduler --help` for the fault grammar';

function positiveInt(raw: string, what: string): number {
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw usageError(`--fault: ${what} must be a whole number of at least 1, got "${raw}".`);
  return Number(raw);
}

function operation(raw: string, what: string, allowAny: boolean): string {
  if ((allowAny && raw === '*') || (OPERATIONS as readonly string[]).includes(raw)) return raw;
  throw usageError(`--fault: ${what} "${raw}" is not an operation the emulator serves (${allowAny ? "'*', " : ''}${OPERATIONS.join(', ')}).`);
}

function groupName(raw: string): string {
  if (!NAME_RE.test(raw)) throw usageError(`--fault: "${raw}" is not a schedule group name (1-64 of 0-9 a-z A-Z - _ .).`);
  return raw;
}

/**
 * Parses the text form: `KIND=SUBJECT[,KEY=VALUE]...`
 *   error=ERROR[,op=OP][,group=NAME][,times=N]
 *   deleting=GROUP[,after-reads=N | ,on=OP | ,at=DURATION][,for=DURATION]
 *   vanish=GROUP[,after-reads=N | ,on=OP | ,at=DURATION]
 *   expire-token=OP[,page=N][,times=N]
 *   html=STATUS[,op=OP][,group=NAME][,times=N]
 * A mistake is one sentence (a usage error).
 */
export function parseFault(text: string): FaultSpec {
  const parts = text.trim().split(',').map((p) => p.trim());
  const pairs = parts.map((p) => {
    const eq = p.indexOf('=');
    if (eq <= 0 || eq === p.length - 1) throw usageError(`--fault "${text}": "${p}" is not KEY=VALUE (${HELP}).`);
    return [p.slice(0, eq), p.slice(eq + 1)] as const;
  });
  const [[kind, subject], ...rest] = pairs as [readonly [string, string], ...Array<readonly [string, string]>];
  const opts = new Map<string, string>();
  for (const [k, v] of rest) {
    if (opts.has(k)) throw usageError(`--fault "${text}": ${k} is given twice.`);
    opts.set(k, v);
  }
  const allowed: Record<string, string[]> = {
    error: ['op', 'group', 'times'],
    deleting: ['after-reads', 'on', 'at', 'for'],
    vanish: ['after-reads', 'on', 'at'],
    'expire-token': ['page', 'times'],
    html: ['op', 'group', 'times'],
  };
  const keys = allowed[kind];
  if (!keys) throw usageError(`--fault "${text}": unknown fault "${kind}" (one of ${Object.keys(allowed).join(', ')}).`);
  for (const k of opts.keys()) {
    if (!keys.includes(k)) throw usageError(`--fault "${text}": ${kind} takes ${keys.join(', ')}, not ${k}.`);
  }
  const times = opts.has('times') ? positiveInt(opts.get('times') as string, 'times') : undefined;
  const trigger = (): GroupTrigger => {
    const given = ['after-reads', 'on', 'at'].filter((k) => opts.has(k));
    if (given.length > 1) throw usageError(`--fault "${text}": give at most one of after-reads, on and at.`);
    const t: GroupTrigger = {};
    if (opts.has('after-reads')) t.afterReads = positiveInt(opts.get('after-reads') as string, 'after-reads');
    if (opts.has('on')) t.on = operation(opts.get('on') as string, 'on', false);
    if (opts.has('at')) t.atMs = parseDuration(opts.get('at') as string, `--fault "${text}": at`);
    return t;
  };
  switch (kind) {
    case 'error': {
      if (!(subject in STATUS) || subject === 'ResourceNotFoundException') {
        throw usageError(`--fault "${text}": error must be one of ${Object.keys(STATUS).filter((e) => e !== 'ResourceNotFoundException').join(', ')}.`);
      }
      const spec: FaultSpec = { kind, error: subject as EmulatorErrorName };
      if (opts.has('op')) spec.op = operation(opts.get('op') as string, 'op', true);
      if (opts.has('group')) spec.group = groupName(opts.get('group') as string);
      if (times !== undefined) spec.times = times;
      return spec;
    }
    case 'deleting': {
      const spec: FaultSpec = { kind, group: groupName(subject), ...trigger() };
      if (opts.has('for')) spec.forMs = parseDuration(opts.get('for') as string, `--fault "${text}": for`);
      return spec;
    }
    case 'vanish':
      return { kind, group: groupName(subject), ...trigger() };
    case 'expire-token': {
      if (!LISTINGS.includes(subject)) throw usageError(`--fault "${text}": expire-token applies to ${LISTINGS.join(', ')}.`);
      const spec: FaultSpec = { kind, op: subject as ListingOp };
      if (opts.has('page')) {
        spec.page = positiveInt(opts.get('page') as string, 'page');
        if (spec.page < 2) throw usageError(`--fault "${text}": page must be 2 or more (the first page has no token).`);
      }
      if (times !== undefined) spec.times = times;
      return spec;
    }
    default: {
      const status = positiveInt(subject, 'the HTML status');
      if (status < 400 || status > 599) throw usageError(`--fault "${text}": the HTML status must be between 400 and 599.`);
      const spec: FaultSpec = { kind: 'html', status };
      if (opts.has('op')) spec.op = operation(opts.get('op') as string, 'op', true);
      if (opts.has('group')) spec.group = groupName(opts.get('group') as string);
      if (times !== undefined) spec.times = times;
      return spec;
    }
  }
}

/** The text form of a fault (parseFault(formatFault(f)) gives f back, defaults filled in). */
export function formatFault(f: FaultSpec): string {
  const parts: string[] = [];
  const trig = (t: GroupTrigger): void => {
    if (t.afterReads !== undefined) parts.push(`after-reads=${t.afterReads}`);
    if (t.on !== undefined) parts.push(`on=${t.on}`);
    if (t.atMs !== undefined) parts.push(`at=${formatDuration(t.atMs)}`);
  };
  switch (f.kind) {
    case 'error':
      parts.push(`error=${f.error}`, `op=${f.op ?? '*'}`);
      if (f.group !== undefined) parts.push(`group=${f.group}`);
      parts.push(`times=${f.times ?? 1}`);
      break;
    case 'deleting':
      parts.push(`deleting=${f.group}`);
      trig(f);
      if (f.forMs !== undefined) parts.push(`for=${formatDuration(f.forMs)}`);
      break;
    case 'vanish':
      parts.push(`vanish=${f.group}`);
      trig(f);
      break;
    case 'expire-token':
      parts.push(`expire-token=${f.op ?? 'ListScheduleGroups'}`, `page=${f.page ?? 2}`, `times=${f.times ?? 1}`);
      break;
    case 'html':
      parts.push(`html=${f.status ?? 502}`, `op=${f.op ?? '*'}`);
      if (f.group !== undefined) parts.push(`group=${f.group}`);
      if (f.times !== undefined) parts.push(`times=${f.times}`);
      break;
  }
  return parts.join(',');
}

interface Armed {
  spec: FaultSpec;
  remaining: number; // calls, tokens or (group faults) 1 until fired
  fired: number;
  reads: number; // group faults with afterReads
}

/** What a call meets before it reaches its operation. */
export type Intercept = { html: number } | { error: ApiError } | undefined;

export class FaultInjector {
  private armed: Armed[] = [];
  private readonly deadTokens = new Set<string>();

  constructor(
    private readonly store: SchedulerStore,
    private readonly startedAt: number,
  ) {}

  add(fault: FaultSpec | string): FaultSpec {
    const spec = typeof fault === 'string' ? parseFault(fault) : fault;
    if (spec.kind === 'error' && !(spec.error in STATUS)) throw new Error(`unknown fault ${spec.error}`);
    const remaining = spec.kind === 'error' || spec.kind === 'expire-token' ? (spec.times ?? 1) : spec.kind === 'html' ? (spec.times ?? Infinity) : 1;
    if (remaining > 0) this.armed.push({ spec, remaining, fired: 0, reads: 0 });
    return spec;
  }

  /** Disarms every fault; tokens already killed stay dead, as they would on the real service. */
  clear(): void {
    this.armed = [];
  }

  list(): FaultView[] {
    return this.armed.map((a) => ({ spec: formatFault(a.spec), fired: a.fired, active: a.remaining > 0 }));
  }

  /** Fires group faults whose moment has come by the clock (or that wait only for the group to exist). */
  tick(): void {
    const elapsed = this.store.now() - this.startedAt;
    for (const a of this.armed) {
      const s = a.spec;
      if (a.remaining === 0 || (s.kind !== 'deleting' && s.kind !== 'vanish')) continue;
      if (s.afterReads !== undefined || s.on !== undefined) continue;
      if (s.atMs !== undefined && elapsed < s.atMs) continue;
      this.fire(a);
    }
  }

  /** Called once per routed call, before its operation runs. */
  before(op: string, addressed: string | undefined, req: Request): Intercept {
    for (const a of this.armed) {
      const s = a.spec;
      if (a.remaining === 0) continue;
      if (s.kind === 'html' && (s.op ?? '*') !== '*' && s.op !== op) continue;
      if (s.kind === 'html' && s.group !== undefined && s.group !== addressed) continue;
      if (s.kind === 'html') {
        this.spend(a);
        return { html: s.status ?? 502 };
      }
    }
    for (const a of this.armed) {
      const s = a.spec;
      if (a.remaining === 0 || s.kind !== 'error') continue;
      if ((s.op ?? '*') !== '*' && s.op !== op) continue;
      if (s.group !== undefined && s.group !== addressed) continue;
      this.spend(a);
      return { error: new ApiError(s.error, STATUS[s.error] ?? 500, `Injected ${s.error} for ${op}`) };
    }
    const token = LISTINGS.includes(op) ? (op === 'GetResources' ? req.body.PaginationToken : req.query.get('NextToken')) : undefined;
    if (typeof token === 'string' && token !== '') {
      const dead = (): Intercept => ({ error: op === 'GetResources' ? expiredPaginationToken() : invalidToken() });
      if (this.deadTokens.has(token)) return dead();
      const page = readToken(op, token)?.page;
      for (const a of this.armed) {
        const s = a.spec;
        if (a.remaining === 0 || s.kind !== 'expire-token' || (s.op ?? 'ListScheduleGroups') !== op || page !== (s.page ?? 2)) continue;
        this.deadTokens.add(token);
        this.spend(a);
        return dead();
      }
    }
    for (const a of this.armed) {
      const s = a.spec;
      if (a.remaining === 0 || (s.kind !== 'deleting' && s.kind !== 'vanish') || s.on !== op || s.group !== addressed) continue;
      this.fire(a);
    }
    return undefined;
  }

  /** Called with each successful reply: counts the reads of groups that a fault fires after. */
  after(read: string[]): void {
    for (const a of this.armed) {
      const s = a.spec;
      if (a.remaining === 0 || (s.kind !== 'deleting' && s.kind !== 'vanish') || s.afterReads === undefined) continue;
      if (!read.includes(s.group)) continue;
      a.reads += 1;
      if (a.reads >= s.afterReads) this.fire(a);
    }
  }

  private spend(a: Armed): void {
    a.remaining -= 1;
    a.fired += 1;
  }

  // A group fault waits, armed, until its group exists.
  private fire(a: Armed): void {
    const s = a.spec;
    if (s.kind !== 'deleting' && s.kind !== 'vanish') return;
    const g = this.store.groups.get(s.group);
    if (!g) return;
    if (s.kind === 'vanish') this.store.groups.delete(s.group);
    else this.store.startDeleting(g, s.forMs ?? this.store.deletingMs);
    this.spend(a);
  }
}

