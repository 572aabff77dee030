import { CommandContext } from '../cli/context.js';
import type { Config } from '../config/config.js';
import type { AwsFlags, SchedulerApi } from '../aws/scheduler-api.js';
import type { Column, CommandResult, Section } from '../output/output.js';
import { OpsctlError, usageError } from '../errors.js';
import { TargetResources, fleetOptions, runFleet, type FleetUnit } from './fleet.js';
import { openTargetScheduler, selectedTargets, targetDeps } from './fleet-check.js';
import type { ResolvedTarget } from './targets.js';

/**
 * The one way a command runs on targets: the command's own run function, called once per
 * target (or per target and region, for AWS) with a context bound to that target — its
 * effective config, its database, its Scheduler client, all closed at its --target-timeout —
 * and the results merged: every row tagged with its target, one summary per target, the
 * highest exit code. Without --target/--all-targets/--shard the command runs as it is: a
 * fleet of one, the top-level config's.
 */

/** What a command works on: a target's database, or each region of a target's AWS account. */
export type TargetKind = 'database' | 'aws';

/** What one target's run produced: its result with the items read, or why it failed. */
interface Captured {
  result: CommandResult<Record<string, unknown>> | null;
  items: Record<string, unknown>[];
  summary: Record<string, unknown>;
  notes: string[];
  sections: Section[];
  warnings: string[];
  exitCode: number;
}

/** The run-scoped globals a target's run gets: no fleet flags (it runs on one target). */
function oneTargetGlobals(g: CommandContext['globals']): CommandContext['globals'] {
  const { target: _t, allTargets: _a, shard: _s, concurrency: _c, targetTimeout: _tt, ...rest } = g;
  return rest;
}

/** A command context bound to one unit: the command's run function cannot tell it from the top-level one. */
export class TargetContext extends CommandContext {
  captured?: Captured;
  constructor(
    private readonly parent: CommandContext,
    readonly unit: FleetUnit,
    private readonly res: TargetResources,
    private readonly targetSecrets: string[],
  ) {
    super(parent.io, oneTargetGlobals(parent.globals), targetDeps(parent, unit.target, res, targetSecrets));
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

  override async openScheduler(flags: AwsFlags): Promise<SchedulerApi> {
    if (flags.region !== undefined || flags.profile !== undefined || flags.endpointUrl !== undefined)
      throw usageError('--region, --profile and --endpoint-url do not combine with --target/--all-targets: each target names its own (targets.NAME.aws).');
    if (!this.unit.region) throw usageError(`target ${this.unit.target.name} has no AWS region (targets.${this.unit.target.name}.aws.regions).`);
    return openTargetScheduler(this.parent, this.unit.target, this.unit.region, this.res);
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

  override async confirm(question: string): Promise<boolean> {
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

function unitsOf(targets: ResolvedTarget[], kind: TargetKind): { units: FleetUnit[]; skipped: Array<{ name: string; why: string }> } {
  if (kind === 'aws') {
    return {
      units: targets.flatMap((t) => (t.entry.aws?.regions ?? []).map((region) => ({ name: `${t.name}/${region}`, target: t, region }))),
      skipped: targets.filter((t) => !t.entry.aws?.regions?.length).map((t) => ({ name: t.name, why: `target ${t.name} has no AWS regions: skipped` })),
    };
  }
  return {
    units: targets.filter((t) => t.entry.database).map((t) => ({ name: t.name, target: t, region: null })),
    skipped: targets.filter((t) => !t.entry.database).map((t) => ({ name: t.name, why: `target ${t.name} has no database: skipped` })),
  };
}

export interface OnTargetsSpec {
  /** "workers dead": the merged result's command. */
  command: string;
  kind: TargetKind;
}

/**
 * Runs `run` on the selected targets (or once, on the top-level config, without fleet flags).
 * An apply runs target by target, one at a time (its confirm names the target); a read runs
 * --concurrency targets at once.
 */
export async function onTargets(ctx: CommandContext, spec: OnTargetsSpec, run: (c: CommandContext) => Promise<number>, opts: { apply?: boolean } = {}): Promise<number> {
  const fleet = Boolean(ctx.globals.target?.length || ctx.globals.allTargets || ctx.globals.shard !== undefined);
  if (!fleet) return run(ctx);
  const { parseFormat } = await import('../output/output.js');
  parseFormat(ctx.globals.output);
  const fleetOpts = fleetOptions(ctx.globals);
  const { units, skipped } = unitsOf(await selectedTargets(ctx), spec.kind);
  const outcomes = await runFleet(units, opts.apply ? { ...fleetOpts, concurrency: 1 } : fleetOpts, async (u, signal) => {
    const res = new TargetResources(signal);
    const tctx = new TargetContext(ctx, u, res, []);
    try {
      const code = await run(tctx);
      return tctx.captured ?? { exitCode: code, items: [], summary: {}, notes: [], sections: [], warnings: [], result: null };
    } catch (e) {
      if (e instanceof OpsctlError) throw new OpsctlError(tctx.printable(e.message), e.exitCode);
      throw e;
    } finally {
      await res.close();
    }
  }, (o, done, total) => ctx.progress(`${spec.command}: ${done}/${total} targets (last: ${o.target})`));
  ctx.progressDone();

  type Row = Record<string, unknown> & { target: string };
  const rows: Row[] = [];
  const byTarget: Record<string, Record<string, unknown>> = {};
  const notes: string[] = [];
  const warnings: string[] = [];
  let first: Captured['result'] | null = null;
  let exitCode = 0;
  const regionOf = new Map(units.map((u) => [u.name, u]));
  for (const o of outcomes) {
    const u = regionOf.get(o.target) as FleetUnit;
    const tag = { target: u.target.name, ...(u.region ? { region: u.region } : {}) };
    if (o.ok) {
      const c = o.value as Captured;
      first ??= c.result;
      for (const i of c.items) rows.push({ ...tag, ...i });
      byTarget[o.target] = { ...c.summary, exitCode: c.exitCode };
      for (const n of c.notes) notes.push(`${o.target}: ${n}`);
      for (const w of c.warnings) warnings.push(`${o.target}: ${w}`);
      exitCode = Math.max(exitCode, c.exitCode);
    } else {
      byTarget[o.target] = { error: o.error, exitCode: o.exitCode };
      notes.push(`${o.target}: ${o.error}`);
      exitCode = Math.max(exitCode, o.exitCode);
    }
  }
  for (const s of skipped) {
    byTarget[s.name] = { skipped: s.why, exitCode: 0 };
    notes.push(s.why);
  }
  // Grouped by target (a stable sort keeps each target's own order).
  rows.sort((a, b) => a.target.localeCompare(b.target));
  const failed = outcomes.filter((o) => !o.ok);
  if (failed.length) warnings.push(`${failed.length} of ${outcomes.length} target(s) failed: ${failed.map((f) => f.target).join(', ')}.`);
  const columns: Column<Row>[] = [
    { header: 'target', value: (r) => r.target },
    ...(spec.kind === 'aws' ? [{ header: 'region', value: (r: Row) => r.region }] : []),
    ...(((first?.columns ?? []) as unknown) as Column<Row>[]),
  ];
  return ctx.emit<Row>({
    command: spec.command,
    mode: first?.mode ?? 'read',
    items: rows,
    columns,
    headline: `${first?.headline ?? spec.command} — ${units.length} target(s)`,
    emptyMessage: `Nothing found on any of the ${units.length + skipped.length} target(s).`,
    summary: () => ({ targets: units.length + skipped.length, targetsFailed: failed.length, byTarget }),
    sections: () => [
      {
        title: 'Per target',
        columns: [
          { header: 'target', value: (r: { target: string }) => r.target },
          { header: 'rows', value: (r: { target: string }) => rows.filter((x) => (x.region ? `${x.target}/${x.region}` : x.target) === r.target).length },
          { header: 'exit', value: (r: { target: string }) => byTarget[r.target]?.exitCode },
        ],
        rows: Object.keys(byTarget)
          .sort()
          .map((target) => ({ target })),
      },
    ],
    notes: () => notes,
    exitCode: () => exitCode,
    warnings: () => warnings,
  });
}
