import type { Command } from 'commander';
import { describe } from './descriptions.js';
import type { Registrar } from './registrar.js';
import type { CommandContext } from '../cli/context.js';
import type { Column } from '../output/output.js';
import type { Database } from '../database/database.js';
import type { JournalTarget } from '../engine/local-state.js';
import type { RunEntry, RunListing, RunSource } from '../engine/runs.js';
import type { PlannedRevert } from '../engine/revert.js';
import type { PlannedGroupRevert } from '../checks/schedule-group-revert.js';
import { addApplyFlags, applyOptions, parseCount, type ApplyFlags } from './shared-flags.js';
import { ExitCode, OpsctlError, usageError } from '../errors.js';

/**
 * `runs` (every --apply, newest first), `runs show RUN` (its items with their before- and
 * after-images) and `revert RUN` (puts the before-images back where the rows are still as the
 * run left them). See docs/runs-plans-undo.md.
 */

const RUN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function checkRunId(id: string): string {
  if (!RUN_ID.test(id)) throw usageError(`"${id}" is not a run id (a UUID as \`opsctl runs\` lists them); nothing was read.`);
  return id.toLowerCase();
}

/** Where this target's runs are: its audit table (configured), else the journal; and the journal lines that are this target's. */
async function openRuns<T>(ctx: CommandContext, fn: (source: RunSource, journal: { path: string; targets: Array<JournalTarget | null> }, db: Database | null, notes: string[]) => Promise<T>): Promise<T> {
  const config = await ctx.config();
  const { journalPath } = await import('../engine/local-state.js');
  const { databaseIdentity } = await import('../engine/remediation.js');
  const path = journalPath(ctx.io.env);
  const aws: JournalTarget = { kind: 'aws', name: ctx.targetName };
  const notes: string[] = [];
  let db: Database | null = null;
  // No database configured at all (AWS-only use): the journal's runs, of every target.
  const env = ctx.io.env;
  const configured = Boolean(config.database.url || config.audit.table || env.PGHOST || env.PGDATABASE || env.PGSERVICE || env.PGPORT || ctx.targetName);
  if (!configured) notes.push('No database is configured: the journal\'s runs of every target are listed.');
  else try {
    db = await ctx.openDatabase();
  } catch (e) {
    // Runs recorded in the journal can be listed without a database (AWS-only use): every
    // target's then, said so. With an audit table, the database is where they are.
    if (config.audit.table) throw e;
    notes.push(`The database is not reachable (${(e as Error).message}): the journal's runs of every target are listed.`);
  }
  try {
    const identity = db ? await databaseIdentity(db) : null;
    const targets = identity ? [{ ...identity, name: ctx.targetName }, aws] : [null];
    const source: RunSource = config.audit.table && db ? { kind: 'audit', db, audit: config.audit } : { kind: 'journal', path };
    return await fn(source, { path, targets }, db, notes);
  } finally {
    await db?.close();
  }
}

/** "reaped 3, race-lost 1": each class under the remedy's word when the record has it. */
const outcomesText = (o: Record<string, number>, labels: Record<string, string> | null) =>
  Object.entries(o)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${labels?.[k] ?? k} ${n}`)
    .join(', ') || 'none';

export async function runRunsList(ctx: CommandContext, o: { limit: number }): Promise<number> {
  const { parseFormat } = await import('../output/output.js');
  parseFormat(ctx.globals.output);
  const { listRuns } = await import('../engine/runs.js');
  return openRuns(ctx, async (source, journal, _db, notes) => {
    const runs = await listRuns(source, journal, o.limit);
    const { formatDuration } = await import('../config/durations.js');
    const now = Date.now();
    // At 80 columns the run id (never cut) leaves little room: the age stays, the start time and
    // the actor give way first (-o wide shows them).
    const columns: Column<RunListing>[] = [
      { header: 'run', value: (r) => r.runId },
      { header: 'started', value: (r) => r.startedAt.replace(/\.\d{3}Z$/, 'Z'), wideOnly: true },
      { header: 'age', value: (r) => formatDuration(Math.max(0, Math.floor((now - Date.parse(r.startedAt)) / 1000)) * 1000) },
      { header: 'actor', value: (r) => r.actor, shrink: true, wideOnly: true },
      { header: 'command', value: (r) => (r.revertOf ? `${r.command ?? 'revert'} of ${r.revertOf}` : r.command), shrink: true },
      { header: 'target', value: (r) => r.target ?? '', wideOnly: true },
      { header: 'reason', value: (r) => r.reason ?? '', shrink: true },
      { header: 'outcomes', value: (r) => outcomesText(r.outcomes, r.labels) + (r.recorded ? '' : ' (no record: from its entries)'), shrink: true },
    ];
    const where = source.kind === 'audit' ? `audit table ${source.audit.table}` : `journal ${source.path}`;
    return ctx.emit({
      command: 'runs',
      mode: 'read',
      items: runs,
      columns,
      headline: `Runs (every --apply), newest first, from the ${where}`,
      emptyMessage: `No runs recorded in the ${where}.`,
      notes: () => [...notes, ...(runs.some((r) => !r.recorded) ? ['A run without a record was stopped before it could write one (killed): it is built from its entries.'] : [])],
      summary: () => ({ runs: runs.length, source: source.kind, ...(o.limit > 0 && runs.length >= o.limit ? { limitReached: o.limit } : {}) }),
    });
  });
}

/** An item of `runs show`: one change with its before- and after-image. */
interface RunItem {
  id: string;
  kind: string;
  resourceType: string;
  at: string;
  summary: string;
  before: unknown;
  after: unknown;
}

const compact = (v: unknown) => (v === undefined ? '' : JSON.stringify(v));

/** An image's keys in the order of the remedy's columns (jsonb keeps its own order: shortest key first). */
function inImageOrder(image: unknown, e: RunEntry): unknown {
  const columns = (e.metadata.image as { columns?: unknown } | undefined)?.columns;
  if (!isRecord(image) || !Array.isArray(columns)) return image;
  const ordered: Record<string, unknown> = {};
  for (const c of columns) if (typeof c === 'string' && c in image) ordered[c] = image[c];
  return Object.assign(ordered, image);
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const shortValue = (v: unknown) => (v === undefined ? '(none)' : typeof v === 'string' ? v : JSON.stringify(v));

/**
 * What a change did, for a person: only the keys whose values differ, `key: before → after`
 * (one level into a nested object, as an adopt's `tags`). The images themselves are the json
 * output's, and the table's with -o wide.
 */
export function changesText(before: unknown, after: unknown, prefix = ''): string {
  if (isRecord(before) && after === null) return 'deleted (the whole row is its before-image)';
  if (before === null && isRecord(after)) return 'created';
  if (!isRecord(before) || !isRecord(after)) return '';
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])];
  return keys
    .filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]))
    .map((k) => (!prefix && isRecord(before[k]) && isRecord(after[k]) ? changesText(before[k], after[k], `${k}.`) : `${prefix}${k}: ${shortValue(before[k])} → ${shortValue(after[k])}`))
    .join('; ');
}

export async function runRunsShow(ctx: CommandContext, runId: string): Promise<number> {
  const { parseFormat } = await import('../output/output.js');
  parseFormat(ctx.globals.output);
  const id = checkRunId(runId);
  const { readRun, itemKey } = await import('../engine/runs.js');
  return openRuns(ctx, async (source, journal, _db, notes) => {
    const { run, items } = await readRun(source, journal, id);
    if (!run) {
      if (ctx.targetName) return ctx.emit({ command: 'runs show', mode: 'read', items: [], columns: [], emptyMessage: `Run ${id} made no change here.`, summary: () => ({ runId: id, items: 0 }) });
      throw new OpsctlError(`no run ${id} is recorded for this target (${source.kind === 'audit' ? `audit table ${source.audit.table}` : `journal ${source.path}`}): see opsctl runs.`, ExitCode.FINDINGS);
    }
    const rows: RunItem[] = items.map((e: RunEntry) => ({ id: itemKey(e), kind: e.kind, resourceType: e.resourceType, at: e.at, summary: e.summary, before: inImageOrder(e.metadata.before, e), after: inImageOrder(e.metadata.after, e) }));
    const columns: Column<RunItem>[] = [
      { header: 'id', value: (r) => r.id },
      { header: 'kind', value: (r) => r.kind, wideOnly: true },
      { header: 'at', value: (r) => r.at, wideOnly: true },
      { header: 'changed', value: (r) => changesText(r.before, r.after), shrink: true },
      { header: 'before', value: (r) => compact(r.before), shrink: true, wideOnly: true },
      { header: 'after', value: (r) => compact(r.after), shrink: true, wideOnly: true },
    ];
    return ctx.emit({
      command: 'runs show',
      mode: 'read',
      items: rows,
      columns,
      headline: `Run ${id}: ${run.revertOf ? `revert of ${run.revertOf}` : (run.command ?? 'unknown command')}, by ${run.actor ?? 'unknown'}, started ${run.startedAt}${run.reason ? ` (reason: ${run.reason})` : ''}`,
      emptyMessage: 'The run changed nothing.',
      notes: () => [...notes, ...(run.recorded ? [] : ['No run record (the process was killed?): built from its entries.'])],
      summary: () => ({ ...run }),
    });
  });
}

interface RevertFlags extends ApplyFlags {}

export async function runRevert(ctx: CommandContext, runIdArg: string, flags: RevertFlags): Promise<number> {
  const { parseFormat } = await import('../output/output.js');
  parseFormat(ctx.globals.output);
  const id = checkRunId(runIdArg);
  const o = applyOptions(flags);
  const config = await ctx.config();
  const { readRun, revertsOf } = await import('../engine/runs.js');
  const { isGroupEntry } = await import('../checks/schedule-group-revert.js');
  const { presentRemediation } = await import('../output/remediation-presenter.js');
  // Read first (and closed): a revert of an AWS run needs the database only for its audit table.
  const found = await openRuns(ctx, async (source, journal) => ({ ...(await readRun(source, journal, id)), earlier: await revertsOf(source, journal, id) }));
  if (!found.run && !ctx.targetName) throw new OpsctlError(`no run ${id} is recorded for this target: see opsctl runs.`, ExitCode.FINDINGS);
  const items = found.items.filter((e) => e.kind !== 'opsctl.run');
  const max = o.max ?? 0;
  const batchSize = o.batchSize ?? 500;
  const common = {
    command: 'revert',
    unit: 'items',
    question: (n: number) => `Revert ${n} change(s) of run ${id} (only where nothing changed since)?`,
    detail: { planHeader: 'would put back', text: (r: { change: string }) => r.change },
    headline: (mode: 'plan' | 'apply') => (mode === 'plan' ? `Plan: revert run ${id}` : `Revert of run ${id}`),
    emptyMessage: `Run ${id} made no change here: nothing to revert.`,
    dryRunNotes: () => ['Dry run: nothing was changed. Re-run with --apply to revert; an item changed since the run is left alone (changed-since).'],
    overMax: `More than --max ${max} changes`,
    run: { revertOf: id },
  };
  if (items.length && items.every(isGroupEntry)) {
    const { groupRevertItems, groupRevertRemedy } = await import('../checks/schedule-group-revert.js');
    const { schedulerHost } = await import('../checks/schedule-group-remedies.js');
    const { groupAuditSink, schedulerLock } = await import('../checks/schedule-group-writes.js');
    const region = (items.find((e) => typeof e.metadata.region === 'string')?.metadata.region as string | undefined) ?? undefined;
    const api = await ctx.openScheduler(ctx.targetName ? {} : { region });
    try {
      const work = async (db: Database | null) => {
        const remedy = groupRevertRemedy(groupRevertItems(items), { runId: id, reason: o.reason, actor: config.actor });
        const host = schedulerHost(api, { lock: schedulerLock(ctx, api, db, o.wait), ...(o.apply ? { audit: await groupAuditSink(ctx, api, config, db) } : {}) });
        const { runRemediation } = await import('../engine/remediation.js');
        return presentRemediation<PlannedGroupRevert>(
          ctx,
          {
            ...common,
            action: 'revert',
            columns: [
              { header: 'group', value: (r) => r.name },
              { header: 'reverts', value: (r) => r.kind },
            ],
            tones: { lost: 'warn' },
          },
          (hooks) => runRemediation(host, remedy, { apply: o.apply, max, batchSize, wait: o.wait, ...hooks }),
        );
      };
      return config.audit.table && o.apply ? await ctx.withDatabase(work) : await work(null);
    } finally {
      api.client.destroy();
    }
  }
  const { revertItems, revertRemedy } = await import('../engine/revert.js');
  const { remediate } = await import('../engine/remediation.js');
  return ctx.withDatabase(async (db) => {
    if (o.apply && config.audit.table) await db.readOnly((ro) => ro.assertColumns('audit', config.audit.table as string, config.audit.schema, {}));
    const remedy = revertRemedy(revertItems(items, found.earlier), { runId: id, reason: o.reason, actor: config.actor, audit: config.audit });
    return presentRemediation<PlannedRevert>(
      ctx,
      {
        ...common,
        action: 'revert',
        columns: [
          { header: 'id', value: (r) => r.key },
          { header: 'table', value: (r) => r.table, wideOnly: true },
          { header: 'reverts', value: (r) => r.kind },
        ],
      },
      (hooks) => remediate(db, remedy, { apply: o.apply, max, batchSize, wait: o.wait, ...hooks }),
    );
  });
}

const RUNS_EXAMPLES = `
Examples:
  $ opsctl runs                                  # every --apply, newest first: id, started, actor, command, reason, outcomes
  $ opsctl runs --limit 5 -o json
  $ opsctl runs show 0193a5f0-7c1e-7b2a-9d4e-3f1a2b3c4d5e          # each item with its before and after
  $ opsctl revert 0193a5f0-7c1e-7b2a-9d4e-3f1a2b3c4d5e             # the plan; add --apply to act

Every --apply is a run: its id (a UUIDv7, sortable by start) is in the report (summary runId)
and on every audit entry it writes (metadata.runId). Runs are read from the audit table
(audit.table: the run records, kind opsctl.run, and the entries), else from the local journal
($OPSCTL_STATE_DIR/audit.jsonl, with the run records beside it in runs.jsonl, where a record
also goes when the audit table refused it). Read-only.
Exit status: 0 listed, 2 bad flags or config, 3 the database or the journal unreachable, 4 an internal error (a bug in opsctl).
`;

const SHOW_EXAMPLES = `
Examples:
  $ opsctl runs show 0193a5f0-7c1e-7b2a-9d4e-3f1a2b3c4d5e
  $ opsctl runs show 0193a5f0-7c1e-7b2a-9d4e-3f1a2b3c4d5e -o json    # items with before/after as JSON objects

Before: what the change overwrote (the columns it wrote with their old values, the whole row a
purge deleted, a group's tags); after: what the row held once written (after its triggers).
Exit status: 0 shown, 1 no such run here, 2 a malformed run id, 3 the database or the journal unreachable.
`;

const REVERT_EXAMPLES = `
Examples:
  $ opsctl revert 0193a5f0-7c1e-7b2a-9d4e-3f1a2b3c4d5e                      # the plan: what would be put back
  $ opsctl revert 0193a5f0-7c1e-7b2a-9d4e-3f1a2b3c4d5e --apply --reason INC-42
  $ opsctl revert 0193a5f0-7c1e-7b2a-9d4e-3f1a2b3c4d5e --apply --yes -o json

Puts each item's before-image back only where the row (or the group's tags) is still exactly
as the run left it: an item changed since is reported changed-since and left alone, so a job
that ran again after a retry is never reverted. A purge is reverted by inserting the deleted
rows whose key is still free; an adopt or reconcile by restoring the group's tag set (a group
the run created is not deleted). A column the table's own trigger stamps (updated_at) takes the
trigger's value. A revert is a run of its own (its record says revertOf), so it can be reverted.
Exit status: 0 done, 1 some items errored, 2 bad flags or config, 3 a dependency unreachable or refused,
5 --apply not confirmed, 130 interrupted (Ctrl-C).
`;

export function registerRunCommands(program: Command, r: Registrar): void {
  const runs = program
    .command('runs')
    .description(describe('runs'))
    .option('--limit <n>', 'at most this many runs, newest first (0 = all; default 50)')
    .addHelpText('after', RUNS_EXAMPLES)
    .action(r.wrap((ctx, flags: { limit?: string }) => runRunsList(ctx, { limit: flags.limit === undefined ? 50 : parseCount(flags.limit, '--limit') })));
  runs
    .command('show')
    .description('One run: each item it changed, with its before and after (read-only)')
    .argument('<run>', 'the run id, as `opsctl runs` lists it')
    .addHelpText('after', SHOW_EXAMPLES)
    .action(r.wrap((ctx, run: string) => runRunsShow(ctx, run)));
}

export function registerRevertCommand(program: Command, r: Registrar): void {
  const cmd = program
    .command('revert')
    .description(describe('revert'))
    .argument('<run>', 'the run id, as `opsctl runs` lists it');
  addApplyFlags(cmd, { max: '0' });
  cmd.addHelpText('after', REVERT_EXAMPLES).action(r.wrap((ctx, run: string, flags: RevertFlags) => runRevert(ctx, run, flags)));
}

export function registerRunAndRevertCommands(program: Command, r: Registrar): void {
  registerRunCommands(program, r);
  registerRevertCommand(program, r);
}
