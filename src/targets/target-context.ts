import { CommandContext } from '../cli/context.js';
import type { Config } from '../config/config.js';
import type { AwsFlags, SchedulerApi } from '../aws/scheduler-api.js';
import type { CommandResult, Section } from '../output/output.js';
import { OpsctlError, usageError } from '../errors.js';
import { TargetResources, type FleetUnit, type TargetOutcome } from './fleet.js';
import { openTargetScheduler, targetDeps } from './open-target.js';
import type { ResolvedTarget } from './targets.js';

/**
 * A command context bound to one target (or one region of a target's account): the command's
 * own run function runs on it unchanged, and what it emits is captured for onTargets to merge.
 */

/** What a command works on: a target's database, each region of a target's AWS account, or the target whole (check: both). */
export type TargetKind = 'database' | 'aws' | 'target';

/** What one target's run produced: its result with the items read. */
export interface Captured {
  result: CommandResult<Record<string, unknown>> | null;
  items: Record<string, unknown>[];
  summary: Record<string, unknown>;
  notes: string[];
  sections: Section[];
  warnings: string[];
  exitCode: number;
}

/** How a target's run differs from a top-level run, beside its target. */
export interface TargetRunOptions {
  /** The one question of a run over targets was answered yes (or nobody was asked): the run asks nothing more. */
  confirmed?: boolean;
  /** What is left of --max-total: the apply's cap, with the target's own --max. */
  budget?: number;
}

/** A command's run function as onTargets calls it: `flags` override what was given on the command line (a plan: no --apply). */
export type TargetRun = (c: CommandContext, flags?: Record<string, unknown>) => Promise<number>;

/** The run-scoped globals a target's run gets: no fleet flags (it runs on one target). */
function oneTargetGlobals(g: CommandContext['globals'], confirmed: boolean): CommandContext['globals'] {
  const { target: _t, allTargets: _a, shard: _s, concurrency: _c, targetTimeout: _tt, ...rest } = g;
  return confirmed ? { ...rest, yes: true } : rest;
}

/** A command context bound to one unit: the command's run function cannot tell it from the top-level one. */
export class TargetContext extends CommandContext {
  captured?: Captured;
  constructor(
    private readonly parent: CommandContext,
    readonly unit: FleetUnit,
    private readonly res: TargetResources,
    private readonly targetSecrets: string[],
    private readonly runOptions: TargetRunOptions = {},
  ) {
    super(parent.io, oneTargetGlobals(parent.globals, Boolean(runOptions.confirmed)), targetDeps(parent, unit.target, res, targetSecrets));
    // One run over every target: the same invocation, the same run id.
    this.invocation = parent.invocation;
    this.runState = parent.runState;
  }

  override get targetName(): string | null {
    return this.unit.target.name;
  }

  override async config(): Promise<Config> {
    return this.unit.target.config;
  }

  override boundTarget(): FleetUnit {
    return this.unit;
  }

  override hasDatabase(): boolean {
    return Boolean(this.unit.target.entry.database);
  }

  override capMax(max: number): number {
    const budget = this.runOptions.budget;
    if (budget === undefined) return max;
    return max > 0 ? Math.min(max, budget) : budget;
  }

  /**
   * The unit's region of the target's account; a whole-target unit (check) names one of the
   * target's regions itself. --region/--profile/--endpoint-url were refused before any target ran.
   */
  override async openScheduler(flags: AwsFlags): Promise<SchedulerApi> {
    const t = this.unit.target;
    const region = this.unit.region ?? flags.region;
    if (!region) throw usageError(`target ${t.name} has no AWS region (targets.${t.name}.aws.regions).`);
    if (!(t.entry.aws?.regions ?? []).includes(region)) throw usageError(`target ${t.name} has no AWS region ${region} (targets.${t.name}.aws.regions).`);
    return openTargetScheduler(this.parent, t, region, this.res);
  }

  /** Read whole while the target's session is open (a listing streams from it); rendered once all targets are done. */
  override async emit<T>(result: CommandResult<T>): Promise<number> {
    const r = result as unknown as CommandResult<Record<string, unknown>>;
    const items: Record<string, unknown>[] = [];
    for await (const i of r.items) items.push(i);
    this.captured = {
      result: r,
      items,
      summary: r.summary(),
      notes: r.notes?.() ?? [],
      sections: r.sections?.() ?? [],
      warnings: r.warnings?.() ?? [],
      exitCode: r.exitCode?.() ?? 0,
    };
    return this.captured.exitCode;
  }

  override secrets(): string[] {
    return [...this.parent.secrets(), ...this.targetSecrets];
  }

  /** Asks on the top-level terminal, naming the target; nobody to ask (--yes, or the one question over targets answered): yes. */
  override async confirm(question: string): Promise<boolean> {
    if (!this.asksPerson) return true;
    return this.parent.confirm(`${this.unit.name}: ${question}`);
  }

  override progress(message: string): void {
    this.parent.progress(`${this.unit.name}: ${message}`);
  }

  override progressDone(): void {
    this.parent.progressDone();
  }

  override say(message: string): void {
    this.parent.say(message.startsWith('opsctl: ') ? `opsctl: ${this.unit.name}: ${message.slice(8)}` : `${this.unit.name}: ${message}`);
  }
}

/**
 * The one way a command runs on a target: its run function on a context bound to the unit,
 * every session and client it opened closed when it is done (or when `signal` aborts, its
 * deadline). What it emitted is returned; its error is thrown with the target's secrets masked.
 */
export async function runOnUnit(ctx: CommandContext, u: FleetUnit, signal: AbortSignal, run: TargetRun, flags?: Record<string, unknown>, options?: TargetRunOptions): Promise<Captured> {
  const res = new TargetResources(signal);
  const tctx = new TargetContext(ctx, u, res, [], options);
  try {
    const code = await run(tctx, flags);
    return tctx.captured ?? { exitCode: code, items: [], summary: {}, notes: [], sections: [], warnings: [], result: null };
  } catch (e) {
    if (e instanceof OpsctlError) throw new OpsctlError(tctx.printable(e.message), e.exitCode);
    // A driver's message may quote what it was given: never the target's password.
    if (e instanceof Error) e.message = tctx.printable(e.message);
    throw e;
  } finally {
    await res.close();
  }
}

/** The units a command of this kind works on among the targets, and the targets left out with why. */
export interface SkippedTarget {
  name: string;
  why: string;
  target: ResolvedTarget;
}

export function unitsOf(targets: ResolvedTarget[], kind: TargetKind): { units: FleetUnit[]; skipped: SkippedTarget[] } {
  if (kind === 'target') return { units: targets.map((t) => ({ name: t.name, target: t, region: null })), skipped: [] };
  if (kind === 'aws') {
    return {
      units: targets.flatMap((t) => (t.entry.aws?.regions ?? []).map((region) => ({ name: `${t.name}/${region}`, target: t, region }))),
      skipped: targets.filter((t) => !t.entry.aws?.regions?.length).map((t) => ({ name: t.name, why: `target ${t.name} has no AWS regions: skipped`, target: t })),
    };
  }
  return {
    units: targets.filter((t) => t.entry.database).map((t) => ({ name: t.name, target: t, region: null })),
    skipped: targets.filter((t) => !t.entry.database).map((t) => ({ name: t.name, why: `target ${t.name} has no database: skipped`, target: t })),
  };
}

/**
 * A usage error every target met before doing anything (a bad flag, read by the command's run
 * function on each target) is the command line's: said once, exit 2, as for one target.
 */
export function commonUsageError(outcomes: TargetOutcome<unknown>[]): OpsctlError | null {
  const first = outcomes[0];
  if (!first || first.ok || first.exitCode !== 2) return null;
  const same = outcomes.every((o) => !o.ok && o.exitCode === 2 && o.error === first.error);
  return same ? new OpsctlError(first.error, 2) : null;
}
