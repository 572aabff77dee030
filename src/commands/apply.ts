import type { Command } from 'commander';
import { resolve } from 'node:path';
import { describe } from './descriptions.js';
import type { Registrar } from './registrar.js';
import type { CommandContext, GlobalOptions } from '../cli/context.js';
import { usageError } from '../errors.js';

/**
 * `opsctl apply FILE`: applies a reviewed plan (written by a dry run with --plan-out) and
 * nothing else. Before anything is written: the file's format and digest, its age (--max-age),
 * the effective config against the plan's (--allow-config-change), and every target's identity.
 * Then the recorded command runs with --apply, its engine taking the file's items instead of
 * planning, each item re-checked at write time against its recorded before-image.
 */

export interface ApplyFlags {
  maxAge?: string;
  allowConfigChange?: boolean;
  region?: string;
  profile?: string;
  endpointUrl?: string;
}

/** A plan older than this is refused unless --max-age says otherwise. */
export const DEFAULT_PLAN_MAX_AGE = '1h';

const AWS_FLAGS = ['--region', '--profile', '--endpoint-url'] as const;

/** The global flags of this invocation, as the recorded command re-runs with them (its connection, output, --yes). */
export function globalArgs(g: GlobalOptions): string[] {
  const out: string[] = [];
  if (g.config !== undefined) out.push(`--config=${g.config}`);
  if (g.databaseUrl !== undefined) out.push(`--database-url=${g.databaseUrl}`);
  if (g.output !== undefined) out.push(`--output=${g.output}`);
  if (g.yes) out.push('--yes');
  if (g.color === false) out.push('--no-color');
  if (g.debug) out.push('--debug');
  if (g.confirmTimeout !== undefined) out.push(`--confirm-timeout=${g.confirmTimeout}`);
  if (g.concurrency !== undefined) out.push(`--concurrency=${g.concurrency}`);
  if (g.targetTimeout !== undefined) out.push(`--target-timeout=${g.targetTimeout}`);
  return out;
}

/** The recorded command's arguments with --apply (before any `--`), and the AWS flags given to apply in place of the recorded ones. */
export function applyArgs(recorded: string[], flags: ApplyFlags): string[] {
  const given: Record<string, string | undefined> = { '--region': flags.region, '--profile': flags.profile, '--endpoint-url': flags.endpointUrl };
  const dash = recorded.indexOf('--');
  const head = dash < 0 ? recorded : recorded.slice(0, dash);
  const tail = dash < 0 ? [] : recorded.slice(dash);
  const kept = head.filter((a) => !AWS_FLAGS.some((f) => given[f] !== undefined && (a === f || a.startsWith(`${f}=`))));
  const extra = AWS_FLAGS.flatMap((f) => (given[f] !== undefined ? [`${f}=${given[f]}`] : []));
  return [...kept, ...extra, '--apply', ...tail];
}

/** The value of `--flag=value` in recorded arguments. */
const recordedValue = (args: string[], flag: string): string | undefined => {
  const a = args.find((x) => x.startsWith(`${flag}=`));
  return a === undefined ? undefined : a.slice(flag.length + 1);
};

export async function runApply(ctx: CommandContext, file: string, flags: ApplyFlags): Promise<number> {
  const { parseFormat } = await import('../output/output.js');
  parseFormat(ctx.globals.output);
  if (ctx.globals.target?.length || ctx.globals.allTargets || ctx.globals.shard !== undefined)
    throw usageError('opsctl apply takes its targets from the plan: --target, --all-targets and --shard do not combine with it.');
  const { parseDuration, formatAge, formatDuration } = await import('../config/durations.js');
  const maxAgeText = flags.maxAge ?? DEFAULT_PLAN_MAX_AGE;
  const maxAgeMs = maxAgeText.trim() === '0' ? 0 : parseDuration(maxAgeText, '--max-age');
  const { readPlanFile, configFingerprint, changedKeys, describeIdentity } = await import('../plans/plan-file.js');
  const path = resolve(ctx.io.cwd, file);
  const plan = readPlanFile(path);

  // Too old: what the plan saw may no longer be what a reviewer approved.
  const ageMs = ctx.deps.now() - Date.parse(plan.createdAt);
  if (maxAgeMs > 0 && ageMs > maxAgeMs)
    throw usageError(
      `the plan ${file} was written ${formatAge(ageMs)} ago (${plan.createdAt}), longer ago than --max-age ${formatDuration(maxAgeMs)}: make a new plan, or pass a longer --max-age (0: no limit). Nothing was changed.`,
    );

  const fleet = plan.targets.some((t) => t.name !== null);
  const { assertIdentity, awsIdentity, databaseIdentity } = await import('../plans/plan-mode.js');
  const warnings: string[] = [];
  const checkConfig = (name: string | null, planned: (typeof plan.targets)[number]['config'], now: ReturnType<typeof configFingerprint>) => {
    if (planned.hash === now.hash) return;
    const keys = changedKeys(planned, now);
    const which = keys.length ? `${keys.slice(0, 5).join(', ')}${keys.length > 5 ? ` and ${keys.length - 5} more` : ''} changed` : 'it changed';
    const where = name ? `${name}: ` : '';
    if (!flags.allowConfigChange)
      throw usageError(
        `${where}the effective config is not the one the plan ${file} was made with (${which}): a changed config can change what the remedy writes. Make a new plan, or pass --allow-config-change. Nothing was changed.`,
      );
    warnings.push(`${where}the effective config differs from the plan's (${which}); applied anyway (--allow-config-change).`);
  };

  // Every target is checked (config, identity) before anything is written anywhere.
  if (!fleet) {
    const t = plan.targets[0];
    if (!t) throw usageError(`the plan ${file} has no target. Nothing was changed.`);
    checkConfig(null, t.config, configFingerprint(await ctx.config()));
    if (t.identity.kind === 'postgresql') {
      const actual = await ctx.withDatabase((db) => db.readOnly((ro) => databaseIdentity(ro)));
      assertIdentity(file, t.identity, actual, null);
    } else {
      const api = await ctx.openScheduler({
        region: flags.region ?? recordedValue(plan.args, '--region'),
        profile: flags.profile ?? recordedValue(plan.args, '--profile'),
        endpointUrl: flags.endpointUrl ?? recordedValue(plan.args, '--endpoint-url'),
      });
      try {
        // What the API says now (never the plan's own ARNs).
        assertIdentity(file, t.identity, await awsIdentity(api), null);
      } finally {
        api.client.destroy();
      }
    }
  } else {
    const { checkFleetPlan } = await import('../plans/plan-fleet.js');
    await checkFleetPlan(ctx, plan, file, (name, planned, now) => checkConfig(name, planned, now));
  }

  // The plan, shown before anything happens (stderr: stdout is the report).
  const count = plan.targets.reduce((n, t) => n + t.items.filter((i) => !i.item.refusal && !i.item.settled).length, 0);
  ctx.say(
    `Plan ${file}: opsctl ${plan.args.join(' ')} — written ${plan.createdAt} (${formatAge(Math.max(0, ageMs))} ago) by ${plan.createdBy}; ${count} item(s) on ${plan.targets.map((t) => `${t.name ? `${t.name}: ` : ''}${describeIdentity(t.identity)}`).join(', ')}.`,
  );
  for (const w of warnings) ctx.say(`opsctl: ${w}`);
  const runCli = ctx.deps.runCli;
  if (!runCli) throw new Error('opsctl apply needs the program to re-run the recorded command');
  const { targetOf } = await import('../plans/plan-fleet.js');
  const targets = fleet ? [...new Set(plan.targets.map((t) => targetOf(t.name)))].map((n) => `--target=${n}`) : [];
  const argv = [...globalArgs(ctx.globals), ...targets, ...applyArgs(plan.args, flags)];
  return runCli(argv, { ...ctx.io, plan: { kind: 'given', file, plan } });
}

const APPLY_EXAMPLES = `
Examples:
  $ opsctl reap --older-than 10m --plan-out plan.json    # in CI: the dry run, its plan written for review
  $ opsctl apply plan.json                               # after approval: exactly those rows, each re-checked
  $ opsctl apply plan.json --yes -o json                 # no question (cron, CI); the report as JSON
  $ opsctl apply plan.json --max-age 4h                  # accept a plan up to 4 hours old (default 1h; 0: no limit)

Refused with exit 2, nothing written: a plan for another database or AWS account/region, one older than
--max-age, one edited since it was written (digest), an unknown format, a changed config (unless
--allow-config-change). A planned row that changed since the plan is reported race-lost and left alone;
rows that became eligible since the plan are not touched. Exit codes are those of the command applied.
`;

export function registerApplyCommand(program: Command, r: Registrar): void {
  program
    .command('apply')
    .description(describe('apply'))
    .argument('<file>', 'a plan written by a dry run with --plan-out')
    .option('--max-age <duration>', `refuse a plan written longer ago than this (default ${DEFAULT_PLAN_MAX_AGE}; 0: no limit)`)
    .option('--allow-config-change', "apply even when the effective config differs from the plan's (the keys that changed are named on stderr)")
    .option('--region <region>', 'for a Scheduler plan: the AWS region (default: the one the plan was made with, then as for the command)')
    .option('--profile <name>', 'for a Scheduler plan: the AWS profile (default: as for the command)')
    .option('--endpoint-url <url>', 'for a Scheduler plan: the Scheduler endpoint (default: as for the command)')
    .addHelpText('after', APPLY_EXAMPLES)
    .action(r.wrap((ctx, file: string, flags: ApplyFlags) => runApply(ctx, file, flags)));
}
