import type { Command } from 'commander';
import { resolve } from 'node:path';
import { CommandContext } from '../cli/context.js';
import { ExitCode, usageError } from '../errors.js';
import { PLAN_FORMAT, planDigest, writePlanFile, type PlanFile } from './plan-file.js';
import type { PlanOut } from './plan-mode.js';

/**
 * --plan-out FILE: added in one place (buildProgram) to every command that has --apply, and
 * handled here for all of them: the dry run runs as it would, its plan is captured by the
 * engine (with the before-images and the target's identity, in the plan's READ ONLY unit), and
 * the file is written once the command is done.
 */

/** Options that are not part of the plan's recorded command: the dry run's own output choice and the plan file itself. */
const NOT_RECORDED = new Set(['--plan-out', '--apply']);

/**
 * The command as `apply` re-runs it: its words, its options as given (or defaulted), its
 * arguments after `--`. No global flag: the apply gives its own connection, output and --yes.
 */
export function commandArgs(command: Command): string[] {
  const words: string[] = [];
  for (let x: Command | null = command; x && x.parent; x = x.parent) words.unshift(x.name());
  const opts = command.opts() as Record<string, unknown>;
  const out: string[] = [];
  for (const o of command.options) {
    if (!o.long || NOT_RECORDED.has(o.long)) continue;
    const v = opts[o.attributeName()];
    if (v === undefined) continue;
    if (o.negate) {
      if (v === false) out.push(o.long);
      continue;
    }
    if (typeof v === 'boolean') {
      if (v) out.push(o.long);
      continue;
    }
    for (const x of Array.isArray(v) ? v : [v]) out.push(`${o.long}=${String(x)}`);
  }
  const positional = command.args.map(String);
  return [...words, ...out, ...(positional.length ? ['--', ...positional] : [])];
}

/** Runs the dry run with its plan captured, then writes the plan file (nothing when the dry run failed or went over --max). */
export async function runPlanOut(ctx: CommandContext, command: Command, file: string, argv: string[], run: (c: CommandContext) => Promise<number>): Promise<number> {
  if ((command.opts() as { apply?: boolean }).apply) throw usageError('--plan-out writes the plan of a dry run: it does not combine with --apply (apply the plan with `opsctl apply FILE`).');
  const path = resolve(ctx.io.cwd, file);
  const out: PlanOut = { kind: 'out', file: path, targets: new Map(), overMax: false };
  const pctx = new CommandContext({ ...ctx.io, plan: out }, ctx.globals, ctx.deps);
  const code = await run(pctx);
  if (code >= ExitCode.USAGE) {
    ctx.say(`opsctl: the dry run did not complete everywhere (exit ${code}): no plan written to ${file}.`);
    return code;
  }
  if (out.overMax) {
    ctx.say(`opsctl: the plan is over the --max cap (--apply would refuse it): no plan written to ${file}. Narrow the selection or raise --max.`);
    return ExitCode.USAGE;
  }
  const g = ctx.globals;
  if (out.targets.size === 0 && (g.target?.length || g.allTargets || g.shard !== undefined)) {
    ctx.say(`opsctl: no target was planned: no plan written to ${file}.`);
    return ExitCode.USAGE;
  }
  if (out.targets.size === 0) {
    ctx.say(`opsctl: no plan was made (nothing was planned on any target): no plan written to ${file}.`);
    return code || ExitCode.USAGE;
  }
  const config = await ctx.config();
  const { VERSION } = await import('../cli/version.js');
  const { maskSecrets } = await import('../output/masking.js');
  const secrets = ctx.secrets();
  const targets = [...out.targets.values()].sort((a, b) => (a.name ?? '').localeCompare(b.name ?? ''));
  const raw: Omit<PlanFile, 'digest'> = {
    format: PLAN_FORMAT,
    createdAt: new Date(ctx.deps.now()).toISOString(),
    createdBy: config.actor,
    opsctlVersion: VERSION,
    command: targets.length ? commandPathOf(command) : '',
    argv: argv.map((a) => maskSecrets(a, secrets)),
    args: commandArgs(command).map((a) => maskSecrets(a, secrets)),
    kind: targets[0]?.identity.kind === 'aws' ? 'aws' : 'database',
    targets,
  };
  // As it will be read back (dates as their ISO text): the digest is of what the file says.
  const content = JSON.parse(JSON.stringify(raw)) as Omit<PlanFile, 'digest'>;
  const plan: PlanFile = { ...content, digest: planDigest(content) };
  writePlanFile(path, plan);
  const items = targets.reduce((n, t) => n + t.items.filter((i) => !i.item.refusal && !i.item.settled).length, 0);
  ctx.say(
    `opsctl: plan written to ${file}: ${items} item(s) to change${targets.length > 1 || targets[0]?.name ? ` on ${targets.length} target(s)` : ''} (${plan.digest.slice(0, 19)}…); apply it with: opsctl apply ${file}`,
  );
  return code;
}

function commandPathOf(command: Command): string {
  const words: string[] = [];
  for (let x: Command | null = command; x && x.parent; x = x.parent) words.unshift(x.name());
  return words.join(' ');
}
