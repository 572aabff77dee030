import { Option, type Command } from 'commander';
import { withValues } from '../cli/completion-values.js';
import { describe } from './descriptions.js';
import type { Registrar } from './registrar.js';
import type { CommandContext } from '../cli/context.js';
import type { Column, Tone } from '../output/output.js';
import type { Config } from '../config/config.js';
import type { Database } from '../database/database.js';
import type { AwsFlags, SchedulerApi } from '../aws/scheduler-api.js';
import { validateGroupNames, type GroupPlan, type GroupRecord } from '../checks/schedule-groups.js';
import { addApplyFlags, assertMaxTotal, parseCount, splitList } from './shared-flags.js';
import { usageError } from '../errors.js';
import { GROUP_CLASSES } from '../checks/tag-diff.js';

interface ListFlags extends AwsFlags {
  prefix?: string;
  class?: string;
  withSchedules?: boolean;
}
interface WriteFlags extends AwsFlags {
  prefix?: string;
  apply?: boolean;
  force?: boolean;
  max?: string;
  allUnowned?: boolean;
  createMissing?: boolean;
  reason?: string;
  wait?: boolean;
  maxTotal?: string;
}

/** What `schedule-groups list` runs with. */
export interface ListOptions {
  prefix?: string;
  /** null: every class. */
  classes: string[] | null;
  withSchedules: boolean;
  aws: AwsFlags;
}

/** What `adopt schedule-group` and `schedule-groups reconcile` run with. */
export interface WriteOptions {
  kind: 'adopt' | 'reconcile';
  names: string[];
  prefix?: string;
  apply: boolean;
  force: boolean;
  max: number;
  allUnowned: boolean;
  createMissing: boolean;
  /** Recorded in the audit entry of every AWS change. */
  reason: string | null;
  /** Wait for another adopter of the same account+region instead of exiting 3. */
  wait: boolean;
  /** adopt with --target/--all-targets: the cap over every target × region. */
  maxTotal?: number;
  aws: AwsFlags;
}

const awsOf = (f: AwsFlags): AwsFlags => ({ region: f.region, profile: f.profile, endpointUrl: f.endpointUrl });

export function listOptions(flags: ListFlags): ListOptions {
  const classes = splitList(flags.class) ?? null;
  for (const c of classes ?? []) if (!CLASSES.includes(c)) throw usageError(`--class ${c} is not a class: use ${CLASSES.join(', ')}.`);
  return { prefix: flags.prefix, classes, withSchedules: Boolean(flags.withSchedules), aws: awsOf(flags) };
}

export function writeOptions(kind: WriteOptions['kind'], names: string[], flags: WriteFlags): WriteOptions {
  validateGroupNames(names);
  if (kind === 'adopt' && names.length === 0 && !flags.allUnowned && !flags.prefix) {
    throw usageError('adopt needs group names, --all-unowned or --prefix: it never adopts unscoped.');
  }
  if (kind === 'adopt' && names.length > 0 && flags.allUnowned) throw usageError('pass either group names or --all-unowned, not both.');
  return {
    kind,
    names,
    prefix: flags.prefix,
    apply: Boolean(flags.apply),
    force: Boolean(flags.force),
    max: flags.max === undefined ? DEFAULT_MAX : parseCount(flags.max, '--max'),
    allUnowned: Boolean(flags.allUnowned),
    createMissing: Boolean(flags.createMissing),
    reason: flags.reason ?? null,
    wait: Boolean(flags.wait),
    maxTotal: flags.maxTotal === undefined ? undefined : parseCount(flags.maxTotal, '--max-total'),
    aws: awsOf(flags),
  };
}

const CLASSES: string[] = [...GROUP_CLASSES];
const DEFAULT_MAX = 500; // the per-account quota of schedule groups

const classTone = (c: string): Tone => (c === 'owned' ? 'good' : c === 'ignored' ? 'dim' : c === 'foreign' || c === 'missing' || c === 'deleting' ? 'bad' : 'warn');
function addAwsFlags(cmd: Command): Command {
  return cmd
    .option('--region <region>', 'AWS region (default: $AWS_REGION, then scheduleGroups.region, then the profile)')
    .option('--profile <name>', 'AWS profile (default: $AWS_PROFILE)')
    .option('--endpoint-url <url>', 'Scheduler endpoint (default: $AWS_ENDPOINT_URL_SCHEDULER, then $AWS_ENDPOINT_URL, then scheduleGroups.endpoint)');
}

/** Expected names: the config list, or the rows of expectedQuery (read-only). */
async function expectedNames(ctx: CommandContext, config: Config): Promise<string[] | null> {
  // A target with only an AWS account has no database to ask expectedQuery.
  if (!ctx.hasDatabase()) return config.scheduleGroups.expected ?? null;
  const { expectedGroupNames } = await import('../checks/expected-groups.js');
  return expectedGroupNames(config.scheduleGroups, (fn) => ctx.withDatabase(fn));
}

function summarizeApi(api: SchedulerApi) {
  return {
    apiCalls: api.stats.calls,
    throttled: api.stats.throttled,
    conflictsRetried: api.stats.conflictsRetried,
    ...(api.stats.concurrencyLowest !== undefined ? { concurrencyLowest: api.stats.concurrencyLowest } : {}),
  };
}

export async function runList(ctx: CommandContext, o: ListOptions): Promise<number> {
  const { parseFormat } = await import('../output/output.js');
  parseFormat(ctx.globals.output);
  const { classes } = o;
  const config = await ctx.config();
  const expected = await expectedNames(ctx, config);
  const api = await ctx.openScheduler(o.aws);
  const { findGroups } = await import('../checks/schedule-groups.js');
  const { describeChanges } = await import('../checks/tag-diff.js');
  const warnings: string[] = [];
  const all = await findGroups(api, config.scheduleGroups, {
    prefix: o.prefix,
    withSchedules: o.withSchedules,
    expected,
    nowMs: ctx.deps.now(),
    onWarning: (w) => warnings.push(w),
  });
  const items = all.filter((g) => (classes ? classes.includes(g.class) : true));
  const counts: Record<string, number> = Object.fromEntries(CLASSES.map((c) => [c, 0]));
  for (const g of all) counts[g.class] += 1;
  const columns: Column<GroupRecord>[] = [
    { header: 'name', value: (g) => g.name },
    { header: 'state', value: (g) => g.state },
    { header: 'class', value: (g) => g.class, tone: (g) => classTone(g.class) },
    { header: 'tag differences', value: (g) => (g.class === 'owned' || g.class === 'ignored' ? '' : describeChanges(g.changes) || g.reasons.join('; ')), shrink: true },
    { header: 'created', value: (g) => g.creationDate },
    { header: 'modified', value: (g) => g.lastModificationDate },
    ...(o.withSchedules ? [{ header: 'schedules', value: (g: GroupRecord) => g.schedules ?? '' }] : []),
  ];
  api.client.destroy();
  return ctx.emit({
    command: 'schedule-groups list',
    mode: 'read',
    items: items.map((g) => ({ ...g, diff: describeChanges(g.changes) })),
    columns,
    headline: `Schedule groups in ${api.region}${o.prefix ? ` with prefix ${o.prefix}` : ''}`,
    emptyMessage: 'No schedule groups match.',
    summary: () => ({ groups: all.length, shown: items.length, ...counts, ...summarizeApi(api), ...(warnings.length ? { warnings } : {}) }),
    warnings: () => warnings,
  });
}

export async function runWrite(ctx: CommandContext, o: WriteOptions): Promise<number> {
  const { parseFormat } = await import('../output/output.js');
  parseFormat(ctx.globals.output);
  const { kind, names } = o;
  if (kind === 'adopt') assertMaxTotal(o);
  const max = ctx.capMax(o.max);
  const config = await ctx.config();
  const { auditsToDatabase, groupBatchSize, prepareGroupWrite, settleNamed } = await import('../checks/schedule-group-writes.js');
  const target = ctx.boundTarget()?.target;
  // Over targets, a target whose config cannot adopt is refused before its account is read.
  if (target && kind === 'adopt' && Object.keys(config.scheduleGroups.ownerTags).length === 0)
    throw usageError(`target ${target.name}: scheduleGroups.ownerTags is not configured, so nothing can be adopted.`);
  // A target of the fleet may have only an AWS account: an audit.table needs its database.
  if (target && auditsToDatabase(config, o.apply) && !ctx.hasDatabase())
    throw usageError(
      `target ${target.name}: audit.table is set but the target has no database to record ${kind}'s changes in; give it a database or set targets.${target.name}.overrides.audit.table to null (the local journal).`,
    );
  const expected = await expectedNames(ctx, config);
  const api = await ctx.openScheduler(o.aws);
  const { runRemediation } = await import('../engine/remediation.js');
  const warnings: string[] = [];
  const spec = {
    kind,
    names,
    prefix: o.prefix,
    force: o.force,
    allUnowned: o.allUnowned,
    createMissing: o.createMissing,
    reason: o.reason,
    config,
    expected,
    onWarning: (w: string) => warnings.push(w),
  };
  const { presentRemediation } = await import('../output/remediation-presenter.js');
  const Verb = kind === 'adopt' ? 'Adopt' : 'Reconcile';
  const run = async (db: Database | null) => {
    const { remedy, host } = await prepareGroupWrite(ctx, api, spec, { apply: o.apply, wait: o.wait, db });
    return presentRemediation<GroupPlan>(
      ctx,
      {
        command: kind === 'adopt' ? 'adopt schedule-group' : 'schedule-groups reconcile',
        action: kind,
        unit: 'groups',
        question: (n) => `${Verb} ${n} schedule group(s) in ${api.region}?`,
        columns: [
          { header: 'group', value: (r) => r.name },
          { header: 'class', value: (r) => r.class, tone: (r) => classTone(r.class) },
        ],
        detail: { planHeader: 'tags it would write', text: (r) => r.diff },
        headline: (mode) => (mode === 'plan' ? `Plan: ${kind} schedule groups in ${api.region}` : `${Verb} schedule groups in ${api.region}`),
        emptyMessage: kind === 'adopt' ? 'Nothing to adopt: no unowned group matches.' : 'Nothing to reconcile: no drifted group matches.',
        dryRunNotes: () => [`Dry run: nothing was changed. Re-run with --apply to ${kind}.`],
        overMax: `More than --max ${max} groups`,
        notesAfter: () => (namedFailed.length ? [`Some named groups were refused or do not exist: exit 1 (${namedFailed.join(', ')}).`] : []),
        // The note in the summary too: over targets it is each target's (summary.byTarget).
        summary: (report) => ({ ...report.summary, ...summarizeApi(api), ...(warnings.length ? { warnings } : {}), ...(namedFailed.length ? { note: namedNote() } : {}) }),
        overTargets: { verb: Verb, noun: 'schedule group(s)', applied: remedy.labels.applied },
        // "already-owned" and "in-sync" are nothing to worry about here; "gone" is.
        tones: { lost: 'dim' },
        after: (report) => {
          namedFailed = settleNamed(names, report);
          // A listing restarted on a dead page token: said on stderr (and in the summary).
          for (const w of warnings) ctx.say(`opsctl: ${w}`);
        },
      },
      (hooks) => runRemediation(host, remedy, { apply: o.apply, max, batchSize: groupBatchSize(config.scheduleGroups), wait: o.wait, ...hooks }),
    );
  };
  let namedFailed: string[] = [];
  const namedNote = () => `named group(s) refused or absent: ${namedFailed.join(', ')} (exit 1)`;
  try {
    return auditsToDatabase(config, o.apply) ? await ctx.withDatabase((db) => run(db)) : await run(null);
  } finally {
    api.client.destroy();
  }
}

const LIST_EXAMPLES = `
Examples:
  $ opsctl schedule-groups                              # every group, classified
  $ opsctl schedule-groups list --class unowned,foreign,drifted,missing
  $ opsctl schedule-groups --prefix billing- --with-schedules -o json
  $ AWS_ENDPOINT_URL_SCHEDULER=http://127.0.0.1:4599 opsctl schedule-groups   # against the emulator

Classes: owned (every owner tag matches), partial (some owner tags match, the rest absent: not
ours; adopt completes it), unowned (no owner keys), foreign (owner keys with other values),
drifted (ours, but desired tags missing or different, or stale owner-prefix keys), deleting
(State DELETING, whatever the tags), missing (expected but absent), ignored (the default group
and scheduleGroups.ignore patterns).
Endpoint: --endpoint-url > AWS_ENDPOINT_URL_SCHEDULER > AWS_ENDPOINT_URL > scheduleGroups.endpoint.
`;
const ADOPT_EXAMPLES = `
Examples:
  $ opsctl adopt schedule-group --all-unowned             # dry run: the tags it would add
  $ opsctl adopt schedule-group billing-nightly --apply
  $ opsctl adopt schedule-group --prefix billing- --apply --yes
  $ opsctl adopt schedule-group legacy-group --force --apply   # take over another owner's group
  $ opsctl adopt schedule-group --all-unowned --all-targets --apply --max-total 50   # every target × region

Each group is re-read at write time (its State, then its tags): DELETING since the plan is
refused at once, vanished is "gone". Then tagged (ConflictException retried up to
scheduleGroups.conflictRetries times, scheduleGroups.conflictDelay apart), read back, and
reported as adopted, already-owned, gone, refused or errored. Exit 1 if any errored, or if a
named group is refused, absent or gone. Every change is audited with --reason (audit.table,
else $OPSCTL_STATE_DIR/audit.jsonl); --apply locks the account+region (--wait waits, else exit 3).
`;
const RECONCILE_EXAMPLES = `
Examples:
  $ opsctl schedule-groups reconcile                      # dry run over every drifted group
  $ opsctl schedule-groups reconcile billing-nightly --apply
  $ opsctl schedule-groups reconcile --create-missing --apply   # also create missing expected groups

Adds or overwrites owner and desired tags and removes keys under scheduleGroups.ownerKeyPrefix
that are no longer wanted; a user's other tags are never removed. Partial and foreign groups
need adopt (or --force). --create-missing also re-creates an expected group of ours that is
DELETING, once the deletion completes (waiting conflictRetries × conflictDelay at most).
Audit, lock and exit codes as for adopt.
`;

/** `schedule-groups show NAME`: the group, its tags, class and schedule count, its audit history and journal lines. */
export async function runShowGroup(ctx: CommandContext, name: string, aws: AwsFlags): Promise<number> {
  const { parseFormat } = await import('../output/output.js');
  parseFormat(ctx.globals.output);
  validateGroupNames([name]);
  const config = await ctx.config();
  const { showGroup } = await import('../checks/show-group.js');
  const { auditHistory, journalHistory } = await import('../checks/show-item.js');
  const { journalPath } = await import('../engine/local-state.js');
  const { emitShow } = await import('./show-output.js');
  const api = await ctx.openScheduler(aws);
  let item;
  try {
    item = await showGroup(api, config.scheduleGroups, name, ctx.deps.now());
  } finally {
    api.client.destroy();
  }
  const audit = config.audit.table ? await ctx.withDatabase((db) => db.readOnly((ro) => auditHistory(ro, config.audit, 'schedule_group', name))) : undefined;
  const journal = await journalHistory(journalPath(ctx.io.env), 'schedule_group', name);
  const { tags, ...rest } = item;
  return emitShow(ctx, {
    command: 'schedule-groups show',
    headline: `Schedule group ${name} in ${item.region}`,
    fields: [
      ...Object.entries(rest).map(([field, value]) => ({ field, value: Array.isArray(value) ? value.join('; ') : value })),
      ...Object.entries(tags)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => ({ field: `tag ${k}`, value: v })),
    ],
    item: { ...item },
    audit,
    journal,
  });
}

const SHOW_EXAMPLES = `
Examples:
  $ opsctl schedule-groups show billing-nightly
  $ opsctl schedule-groups show billing-nightly -o json   # { item, audit, journal }
`;

export function registerScheduleGroupCommands(program: Command, r: Registrar): void {
  const groups = program
    .command('schedule-groups')
    .description(describe('schedule-groups'))
    .addHelpText('after', '\nExamples:\n  $ opsctl schedule-groups                       # the same as list: every group, classified (read-only)\n  $ opsctl schedule-groups list --class unowned,drifted\n  $ opsctl schedule-groups reconcile billing-nightly --apply\n');
  addAwsFlags(
    groups
      .command('list', { isDefault: true })
      .description('List schedule groups with their ownership class and tag differences (read-only)')
      .option('--prefix <prefix>', 'only groups whose name starts with this')
      .addOption(withValues(new Option('--class <list>', `only these classes (${CLASSES.join(',')})`), CLASSES))
      .option('--with-schedules', "add each group's schedule count (one more call per group)"),
  )
    .addHelpText('after', LIST_EXAMPLES)
    .action(r.wrap((ctx, flags: ListFlags) => runList(ctx, listOptions(flags))));

  addAwsFlags(
    groups
      .command('show')
      .argument('<name>', 'the schedule group')
      .description('One schedule group whole: state, tags, ownership class, schedule count, audit history and journal lines (read-only)'),
  )
    .addHelpText('after', SHOW_EXAMPLES)
    .action(r.wrap((ctx, name: string, flags: AwsFlags) => runShowGroup(ctx, name, awsOf(flags))));

  const reconcile = addAwsFlags(
    groups
      .command('reconcile')
      .description('Converge drifted groups to the owner and desired tags (dry run unless --apply)')
      .argument('[names...]', 'groups to reconcile (default: every drifted group)')
      .option('--prefix <prefix>', 'only groups whose name starts with this')
      .option('--create-missing', 'also create expected groups that are missing, with the right tags')
      .option('--force', 'also converge groups carrying another owner’s tags'),
  );
  addApplyFlags(reconcile, { max: String(DEFAULT_MAX), batch: false })
    .addHelpText('after', RECONCILE_EXAMPLES)
    .action(r.wrap((ctx, names: string[], flags: WriteFlags) => runWrite(ctx, writeOptions('reconcile', names, flags))));

  const adopt = program
    .command('adopt')
    .description(describe('adopt'))
    .addHelpText('after', '\nExamples:\n  $ opsctl adopt schedule-group --all-unowned    # dry run: the tags it would add\n  $ opsctl adopt schedule-group billing-nightly --apply\n');
  const group = addAwsFlags(
    adopt
      .command('schedule-group')
      .description('Adopt schedule groups: tag them with the owner and desired tags (dry run unless --apply)')
      .argument('[names...]', 'groups to adopt')
      .option('--all-unowned', 'every unowned (or partial) group')
      .option('--prefix <prefix>', 'unowned groups whose name starts with this')
      .option('--force', 'also take over groups carrying another owner’s tags')
      .option('--max-total <n>', 'with --target/--all-targets: refuse to adopt more than this many in all (--max is per target × region)'),
  );
  addApplyFlags(group, { max: String(DEFAULT_MAX), batch: false })
    .addHelpText('after', ADOPT_EXAMPLES)
    .action(r.wrap((ctx, names: string[], flags: WriteFlags) => runWrite(ctx, writeOptions('adopt', names, flags)), { merge: 'plan-then-apply' }));
}
