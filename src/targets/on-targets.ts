import type { CommandContext } from '../cli/context.js';
import type { Column } from '../output/output.js';
import { usageError } from '../errors.js';
import { fleetOptions, runFleet, type FleetUnit } from './fleet.js';
import { selectedTargets } from './open-target.js';
import { commonUsageError, runOnUnit, unitsOf, type Captured, type TargetKind, type TargetRun } from './target-context.js';

/**
 * The one way a command runs on targets: the command's own run function, called once per
 * target (or per target and region, for AWS) with a context bound to that target — its
 * effective config, its database, its Scheduler client, all closed at its --target-timeout —
 * and the results merged. Without --target/--all-targets/--shard the command runs as it is: a
 * fleet of one, the top-level config's.
 *
 * How the results merge is the command's kind of result:
 * - rows (listings, most remedies): every row tagged with its target, one summary per target,
 *   the highest exit code;
 * - plan-then-apply (the remedies with --max-total): a plan on every target first, the caps
 *   checked across targets and one question, then the apply target by target (plan-then-apply.ts);
 * - check-reports (check): one check report over every target (check-reports.ts).
 */

export type { TargetKind } from './target-context.js';
export type TargetsMerge = 'rows' | 'plan-then-apply' | 'check-reports';

export interface OnTargetsSpec {
  /** "workers dead": the merged result's command. */
  command: string;
  kind: TargetKind;
  merge?: TargetsMerge;
}

const fleetFlagsGiven = (ctx: CommandContext): boolean => Boolean(ctx.globals.target?.length || ctx.globals.allTargets || ctx.globals.shard !== undefined);

/**
 * Runs `run` on the selected targets (or once, on the top-level config, without fleet flags).
 * An apply runs target by target, one at a time (its confirm names the target); a read runs
 * --concurrency targets at once.
 */
export async function onTargets(ctx: CommandContext, spec: OnTargetsSpec, run: TargetRun, opts: { apply?: boolean; maxTotal?: string } = {}): Promise<number> {
  if (!fleetFlagsGiven(ctx)) return run(ctx);
  if (ctx.globals.region !== undefined || ctx.globals.profile !== undefined || ctx.globals.endpointUrl !== undefined)
    throw usageError('--region, --profile and --endpoint-url do not combine with --target/--all-targets: each target names its own (targets.NAME.aws).');
  const { parseFormat } = await import('../output/output.js');
  if (spec.merge === 'check-reports') {
    const { CHECK_FORMATS, emitCheckReports } = await import('./check-reports.js');
    const format = parseFormat(ctx.globals.output, CHECK_FORMATS);
    const fleetOpts = fleetOptions(ctx.globals);
    const { units } = unitsOf(await selectedTargets(ctx), spec.kind);
    const outcomes = await runFleet(units, fleetOpts, (u, signal) => runOnUnit(ctx, u, signal, run), (o, done, total) =>
      ctx.progress(`${spec.command}: ${done}/${total} targets (last: ${o.target})`),
    );
    ctx.progressDone();
    const refused = commonUsageError(outcomes);
    if (refused) throw refused;
    return emitCheckReports(ctx, format, units, outcomes);
  }
  parseFormat(ctx.globals.output);
  const fleetOpts = fleetOptions(ctx.globals);
  const { units, skipped } = unitsOf(await selectedTargets(ctx), spec.kind);
  if (spec.merge === 'plan-then-apply') {
    const { planThenApply } = await import('./plan-then-apply.js');
    const { parseCount } = await import('../commands/shared-flags.js');
    const maxTotal = opts.maxTotal === undefined ? undefined : parseCount(opts.maxTotal, '--max-total');
    return planThenApply(ctx, { command: spec.command, kind: spec.kind, units, skipped, fleetOpts, apply: Boolean(opts.apply), maxTotal }, run);
  }
  const outcomes = await runFleet(units, opts.apply ? { ...fleetOpts, concurrency: 1 } : fleetOpts, (u, signal) => runOnUnit(ctx, u, signal, run), (o, done, total) =>
    ctx.progress(`${spec.command}: ${done}/${total} targets (last: ${o.target})`),
  );
  ctx.progressDone();
  const refused = commonUsageError(outcomes);
  if (refused) throw refused;

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
      const c = o.value;
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
