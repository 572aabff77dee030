// The emulator's state: schedule groups with their tags, states and schedules, and the clock
// that drives the DELETING and creating windows. It knows nothing of HTTP.
import { checkName } from './validation.js';

export type GroupState = 'ACTIVE' | 'DELETING';
export type ScheduleState = 'ENABLED' | 'DISABLED';

export interface Schedule {
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

export interface Group {
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

export interface EmulatorGroupView {
  name: string;
  arn: string;
  state: GroupState;
  tags: Record<string, string>;
  creationDate: Date;
  lastModificationDate: Date;
  schedules: number;
}

export interface SeedGroupOptions {
  state?: GroupState;
  creationDate?: Date;
  lastModificationDate?: Date;
  everTagged?: boolean;
}

export interface SeedScheduleOptions {
  state?: ScheduleState;
  scheduleExpression?: string;
}

export const byKey = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function sortedTags(tags: Map<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of [...tags.keys()].sort()) out[k] = tags.get(k) as string;
  return out;
}

export class SchedulerStore {
  readonly groups = new Map<string, Group>();

  constructor(
    readonly region: string,
    readonly accountId: string,
    /** How long a deleted group stays DELETING before it disappears with its schedules. */
    readonly deletingMs: number,
    readonly now: () => number,
  ) {}

  groupArn(name: string): string {
    return `arn:aws:scheduler:${this.region}:${this.accountId}:schedule-group/${name}`;
  }

  scheduleArn(group: string, name: string): string {
    return `arn:aws:scheduler:${this.region}:${this.accountId}:schedule/${group}/${name}`;
  }

  /** The earliest deletingUntil of a DELETING group (Infinity: none), so sweep() need not walk every group. */
  private nextExpiry = Infinity;

  // Expiry is applied lazily on every access rather than by timers, so no
  // timer keeps the process alive and an injected clock is honoured exactly.
  // It runs on every request: until the earliest DELETING window closes it costs one comparison,
  // not a walk over every group (1,000 groups made that the emulator's own largest cost, and garbage).
  sweep(): void {
    const t = this.now();
    if (t < this.nextExpiry) return;
    let next = Infinity;
    for (const g of this.groups.values()) {
      if (g.state !== 'DELETING' || g.deletingUntil === undefined) continue;
      if (g.deletingUntil <= t) this.groups.delete(g.name);
      else if (g.deletingUntil < next) next = g.deletingUntil;
    }
    this.nextExpiry = next;
  }

  private expiresAt(until: number): void {
    if (until < this.nextExpiry) this.nextExpiry = until;
  }

  newGroup(name: string, t: number): Group {
    return { name, state: 'ACTIVE', tags: new Map(), everTagged: false, creationDate: t, lastModificationDate: t, schedules: new Map() };
  }

  /** The group starts DELETING now and disappears, with its schedules, `forMs` later (default: the store's window). */
  startDeleting(g: Group, forMs = this.deletingMs, token?: string): void {
    const t = this.now();
    g.state = 'DELETING';
    g.deleteToken = token;
    g.deletingUntil = t + forMs;
    g.lastModificationDate = t;
    this.expiresAt(g.deletingUntil);
  }

  seedGroup(name: string, tags: Record<string, string> = {}, opts: SeedGroupOptions = {}): void {
    checkName(name, 'name');
    const t = this.now();
    const created = opts.creationDate?.getTime() ?? t;
    const g: Group = {
      ...this.newGroup(name, created),
      state: opts.state ?? 'ACTIVE',
      tags: new Map(Object.entries(tags)),
      everTagged: opts.everTagged ?? Object.keys(tags).length > 0,
      lastModificationDate: opts.lastModificationDate?.getTime() ?? created,
    };
    if (g.state === 'DELETING') {
      g.deletingUntil = t + this.deletingMs;
      this.expiresAt(g.deletingUntil);
    }
    this.groups.set(name, g);
  }

  seedSchedule(groupName: string, name: string, opts: SeedScheduleOptions = {}): void {
    checkName(name, 'name');
    this.sweep();
    const g = this.groups.get(groupName);
    if (!g) throw new Error(`seedSchedule: group ${groupName} does not exist`);
    const t = this.now();
    g.schedules.set(name, {
      name,
      groupName,
      state: opts.state ?? 'ENABLED',
      scheduleExpression: opts.scheduleExpression ?? 'rate(1 hour)',
      target: { Arn: `arn:aws:sqs:${this.region}:${this.accountId}:emulator-target`, RoleArn: `arn:aws:iam::${this.accountId}:role/emulator` },
      flexibleTimeWindow: { Mode: 'OFF' },
      creationDate: t,
      lastModificationDate: t,
    });
  }

  view(g: Group): EmulatorGroupView {
    return {
      name: g.name,
      arn: this.groupArn(g.name),
      state: g.state,
      tags: sortedTags(g.tags),
      creationDate: new Date(g.creationDate),
      lastModificationDate: new Date(g.lastModificationDate),
      schedules: g.schedules.size,
    };
  }

  views(): EmulatorGroupView[] {
    return [...this.groups.keys()].sort(byKey).map((n) => this.view(this.groups.get(n) as Group));
  }

  /** Deterministic JSON of the whole state (groups, tags, schedules), for "nothing changed" checksums. */
  snapshot(): string {
    const state = [...this.groups.keys()].sort(byKey).map((n) => {
      const g = this.groups.get(n) as Group;
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
    return JSON.stringify({ region: this.region, accountId: this.accountId, groups: state });
  }
}
