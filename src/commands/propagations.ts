import type { Command } from 'commander';
import { describe } from './descriptions.js';
import { errorGroupSections } from './error-group-sections.js';
import type { Registrar } from './registrar.js';
import type { CommandContext } from '../cli/context.js';
import type { Column } from '../output/output.js';
import type { Presentation } from '../output/remediation-presenter.js';
import type { Database } from '../database/database.js';
import type { Remedy } from '../engine/remediation.js';
import type { DeadLetter, DeadLetterFilter } from '../checks/dead-letters.js';
import type { PlannedDeadLetter } from '../checks/dead-letter-remedies.js';
import type { PendingPropagation } from '../checks/pending-propagations.js';
import { usageError } from '../errors.js';
import { errorClassKey } from '../checks/error-classes.js';
import { formatAge, formatDuration, parseDuration } from '../config/durations.js';
import { failOnMissing, missingIdsNote } from './named-ids.js';
import { addApplyFlags, applyOptions, assertMaxTotal, parseCount, type ApplyFlags, type ApplyOptions } from './shared-flags.js';

interface DeadLetterFlags {
  kind?: string;
  since?: string;
  limit?: string;
}
interface PendingFlags {
  overdue?: string;
  kind?: string;
  limit?: string;
}
interface RetryFlags extends ApplyFlags {
  kind?: string;
  since?: string;
  errorClass?: string;
  all?: boolean;
  includeUnknownKinds?: boolean;
}
interface PurgeFlags extends ApplyFlags {
  olderThan?: string;
  kind?: string;
  expect?: string;
}

/** Dead letters listed by default: the grouped summary below the rows is the overview. */
const DEAD_LETTER_LIMIT = 100;
const PENDING_LIMIT = 1000;

/** What the propagations commands run with: flags checked and parsed; unset fields take the config's defaults. */
export interface DeadLetterListOptions {
  kind?: string;
  /** --since as given (for headlines) and in milliseconds. */
  since?: { text: string; ms: number };
  limit: number;
}
export interface PendingOptions {
  overdueMs?: number;
  kind?: string;
  limit: number;
}
export type RemedyOptions = ApplyOptions;
export type DeadLetterRetryOptions = RemedyOptions & Omit<DeadLetterListOptions, 'limit'> & { ids: string[]; all: boolean; includeUnknownKinds: boolean; errorClass?: string };
export type PurgeOptions = RemedyOptions & { olderThan: { text: string; ms: number }; kind?: string; expect?: number };

const since = (v: string | undefined) => (v === undefined ? undefined : { text: v, ms: parseDuration(v, '--since') });

export function deadLetterListOptions(f: DeadLetterFlags): DeadLetterListOptions {
  return { kind: f.kind, since: since(f.since), limit: f.limit === undefined ? DEAD_LETTER_LIMIT : parseCount(f.limit, '--limit') };
}

export function pendingOptions(f: PendingFlags): PendingOptions {
  return {
    overdueMs: f.overdue === undefined ? undefined : parseDuration(f.overdue, '--overdue'),
    kind: f.kind,
    limit: f.limit === undefined ? PENDING_LIMIT : parseCount(f.limit, '--limit'),
  };
}

export function deadLetterRetryOptions(ids: string[], f: RetryFlags): DeadLetterRetryOptions {
  if (ids.length === 0 && f.kind === undefined && f.since === undefined && f.errorClass === undefined && !f.all)
    throw usageError('retry needs a scope: pass dead-letter ids, a filter (--kind, --since, --error-class) or --all; nothing was changed.');
  const errorClass = f.errorClass === undefined ? undefined : errorClassKey(f.errorClass);
  if (errorClass === '') throw usageError('--error-class needs a class as `propagations dead-letters` lists it; nothing was changed.');
  return { ...applyOptions(f), ids, all: Boolean(f.all), kind: f.kind, since: since(f.since), includeUnknownKinds: Boolean(f.includeUnknownKinds), errorClass };
}

export function purgeOptions(f: PurgeFlags): PurgeOptions {
  if (f.olderThan === undefined) throw usageError('purge needs --older-than D (e.g. 30d): only dead letters older than that are deleted.');
  return {
    ...applyOptions(f),
    olderThan: { text: f.olderThan, ms: parseDuration(f.olderThan, '--older-than') },
    kind: f.kind,
    expect: f.expect === undefined ? undefined : parseCount(f.expect, '--expect'),
  };
}

async function setup(ctx: CommandContext) {
  const { parseFormat } = await import('../output/output.js');
  parseFormat(ctx.globals.output);
  const config = await ctx.config();
  const { displayName } = await import('../database/identifiers.js');
  return { config, cfg: config.propagations, where: displayName(config.propagations.table, config.propagations.schema), formatAge, formatDuration };
}

export async function runDeadLetters(ctx: CommandContext, o: DeadLetterListOptions): Promise<number> {
  const { cfg, where } = await setup(ctx);
  const { limit } = o;
  const filter: DeadLetterFilter = { kind: o.kind, sinceMs: o.since?.ms };
  const { assertPropagationsSchema } = await import('../checks/propagations-table.js');
  const { summariseDeadLetters, streamDeadLetters, deadLetterHeadline } = await import('../checks/dead-letters.js');
  return ctx.withDatabase((db) =>
    db.readOnly(async (ro) => {
      // One snapshot for the summary and the rows, so their counts agree.
      await ro.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      await assertPropagationsSchema(ro, cfg);
      const summary = await summariseDeadLetters(ro, cfg, filter);
      let shown = 0;
      const rows = (async function* () {
        for await (const r of streamDeadLetters(ro, cfg, filter, limit)) {
          shown += 1;
          yield r;
        }
      })();
      const columns: Column<DeadLetter>[] = [
        { header: 'id', value: (r) => r.id },
        { header: 'kind', value: (r) => r.kind },
        { header: 'attempts', value: (r) => r.attempts },
        { header: 'dead for', value: (r) => formatAge(r.ageSeconds * 1000) },
        { header: 'failed_at', value: (r) => r.failedAt },
        { header: 'last error', value: (r) => r.lastError, tone: () => 'bad', shrink: true },
      ];
      return ctx.emit({
        command: 'propagations dead-letters',
        mode: 'read',
        items: rows,
        columns,
        headline: deadLetterHeadline(summary, where),
        emptyMessage: 'No dead letters match.',
        sections: () => errorGroupSections(summary),
        notes: () => (limit > 0 && shown < summary.total ? [`Showing the newest ${shown} of ${summary.total}; the groups count all of them (--limit 0 lists every row).`] : []),
        summary: () => ({ total: summary.total, shown, ...(limit > 0 && shown < summary.total ? { limitReached: limit } : {}), byKind: summary.byKind, byErrorClass: summary.byErrorClass }),
      });
    }),
  );
}

export async function runPending(ctx: CommandContext, o: PendingOptions): Promise<number> {
  const { cfg, where } = await setup(ctx);
  const { limit } = o;
  const overdueMs = o.overdueMs ?? parseDuration(cfg.overdue, 'propagations.overdue');
  const { assertPropagationsSchema } = await import('../checks/propagations-table.js');
  const { streamPending, summarisePending, nearDeadAt } = await import('../checks/pending-propagations.js');
  const q = { overdueMs, kind: o.kind, limit };
  return ctx.withDatabase((db) =>
    db.readOnly(async (ro) => {
      await ro.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      await assertPropagationsSchema(ro, cfg);
      const counts = await summarisePending(ro, cfg, q);
      let shown = 0;
      const rows = (async function* () {
        for await (const r of streamPending(ro, cfg, q)) {
          shown += 1;
          yield r;
        }
      })();
      const columns: Column<PendingPropagation>[] = [
        { header: 'id', value: (r) => r.id },
        { header: 'kind', value: (r) => r.kind, tone: (r) => (r.problems.includes('unknown-kind') ? 'warn' : undefined) },
        { header: 'attempts', value: (r) => `${r.attempts}/${cfg.maxAttempts}`, tone: (r) => (r.problems.includes('near-dead') ? 'warn' : undefined) },
        { header: 'due', value: (r) => (r.overdueSeconds >= 0 ? `${formatAge(r.overdueSeconds * 1000)} ago` : `in ${formatAge(-r.overdueSeconds * 1000)}`) },
        { header: 'problems', value: (r) => r.problems, tone: () => 'bad' },
        { header: 'last error', value: (r) => r.lastError, shrink: true },
      ];
      const threshold = formatDuration(overdueMs);
      return ctx.emit({
        command: 'propagations pending',
        mode: 'read',
        items: rows,
        columns,
        headline: `Pending propagations in trouble in ${where}: overdue by more than ${threshold}, near-dead (attempts >= ${nearDeadAt(cfg)} of ${cfg.maxAttempts})${cfg.knownKinds ? ', or of an unknown kind' : ''}`,
        emptyMessage: 'No pending propagation is in trouble.',
        notes: () => (limit > 0 && shown < counts.troubled ? [`Showing ${shown} of ${counts.troubled} (--limit 0 lists every row).`] : []),
        summary: () => ({
          troubled: counts.troubled,
          overdue: counts.overdue,
          'near-dead': counts.nearDead,
          ...(cfg.knownKinds ? { 'unknown-kind': counts.unknownKind } : {}),
          shown,
          overdueThreshold: threshold,
        }),
      });
    }),
  );
}

/** What retry and purge share: the schema checks, the engine run and its presentation. */
async function runRemedy(
  ctx: CommandContext,
  s: Awaited<ReturnType<typeof setup>>,
  o: RemedyOptions,
  make: (db: Database) => Promise<{ remedy: Remedy<PlannedDeadLetter> } & Omit<Presentation<PlannedDeadLetter>, 'action' | 'unit' | 'columns' | 'detail' | 'emptyMessage' | 'overMax'>>,
): Promise<number> {
  const { cfg, config } = s;
  const max = ctx.capMax(o.max ?? cfg.max);
  const batchSize = o.batchSize ?? cfg.batchSize;
  const { assertPropagationsSchema, assertAuditSchema } = await import('../checks/propagations-table.js');
  const { remediate } = await import('../engine/remediation.js');
  const { presentRemediation } = await import('../output/remediation-presenter.js');
  return ctx.withDatabase(async (db) => {
    await db.readOnly(async (ro) => {
      await assertPropagationsSchema(ro, cfg);
      if (o.apply) await assertAuditSchema(ro, config.audit);
    });
    const { remedy, ...m } = await make(db);
    return presentRemediation<PlannedDeadLetter>(
      ctx,
      {
        ...m,
        action: remedy.action,
        unit: 'rows',
        columns: [
          { header: 'id', value: (r) => r.id },
          { header: 'kind', value: (r) => r.kind },
          { header: 'attempts', value: (r) => r.attempts },
          { header: 'dead for', value: (r) => formatAge(r.ageSeconds * 1000) },
        ],
        detail: { planHeader: 'last error', text: (r) => r.lastError },
        emptyMessage: `Nothing to ${remedy.action}: no dead letter matches.`,
        overMax: `More than --max ${max} rows match`,
      },
      (hooks) => remediate(db, remedy, { apply: o.apply, max, batchSize, wait: o.wait, ...hooks }),
    );
  });
}

export async function runRetry(ctx: CommandContext, o: DeadLetterRetryOptions): Promise<number> {
  const s = await setup(ctx);
  const { cfg, config, where } = s;
  const unique = [...new Set(o.ids)];
  const filter: DeadLetterFilter = { kind: o.kind, sinceMs: o.since?.ms, ids: unique.length ? unique : undefined, errorClass: o.errorClass };
  const scope = [
    unique.length ? `${unique.length} id(s)` : null,
    o.kind !== undefined ? `kind ${o.kind}` : null,
    o.since ? `dead-lettered within ${o.since.text}` : null,
    o.errorClass !== undefined ? `error class ${JSON.stringify(o.errorClass)}` : null,
  ]
    .filter(Boolean)
    .join(', ');
  assertMaxTotal(o);
  const { retryRemedy } = await import('../checks/dead-letter-remedies.js');
  const { checkIds } = await import('../checks/dead-letters.js');
  const { unknownClassMessage } = await import('../checks/error-classes.js');
  return runRemedy(ctx, s, o, async (db) => {
    const idCheck = unique.length ? await checkIds(db, cfg, unique) : null;
    const extra = idCheck ? { idsNotFound: idCheck.notFound, idsNotDead: idCheck.notDead } : {};
    return {
      remedy: retryRemedy(cfg, { filter, includeUnknownKinds: o.includeUnknownKinds, reason: o.reason, actor: config.actor, audit: config.audit }),
      command: 'propagations retry',
      headline: (mode) => `${mode === 'plan' ? 'Plan: retry' : 'Retry of'} dead letters in ${where} (${scope || 'all'}): clear failed_at, attempts → 0, due now`,
      question: (count) => `Retry ${count} dead letter(s) in ${where}?`,
      overTargets: { verb: 'Retry', noun: 'dead letter(s)', applied: 'retried' },
      summary: (report) => ({ ...report.summary, ...extra }),
      notesBefore: [
        ...missingIdsNote(idCheck?.missing ?? []),
        ...(idCheck && idCheck.notDead > 0
          ? [`${idCheck.notDead} named ${idCheck.notDead === 1 ? 'id is not a dead letter' : 'ids are not dead letters'} (applied or pending): nothing to retry there.`]
          : []),
      ],
      after: (report) => {
        // A key that matches nothing is a mistake to say, not "nothing to do": exit 2 (README).
        if (o.errorClass !== undefined && report.items.length === 0) throw usageError(unknownClassMessage(o.errorClass, 'dead letter', 'opsctl propagations dead-letters'));
        failOnMissing(idCheck?.missing ?? [])(report);
      },
      dryRunNotes: () => ['Dry run: nothing was changed. Re-run with --apply to retry these dead letters.'],
    };
  });
}

export async function runPurge(ctx: CommandContext, o: PurgeOptions): Promise<number> {
  const s = await setup(ctx);
  const { cfg, config, where } = s;
  const olderThanMs = o.olderThan.ms;
  const { expect } = o;
  // A deletion count is confirmed by --expect, or by a person answering on a terminal (-y does not count).
  // A reviewed plan (opsctl apply FILE) was confirmed by its review: its items are the deletion.
  if (o.apply && expect === undefined && !ctx.asksPerson && ctx.io.plan?.kind !== 'given')
    throw usageError(
      ctx.globals.yes
        ? 'purge --apply --yes needs --expect N (the count its dry run showed): -y skips the question, and a deletion is then confirmed by its count; nothing was deleted.'
        : 'purge --apply needs --expect N (the count its dry run showed) when no person answers on a terminal; nothing was deleted.',
    );
  const olderThan = s.formatDuration(olderThanMs);
  const { purgeRemedy } = await import('../checks/dead-letter-remedies.js');
  return runRemedy(ctx, s, o, async () => ({
    remedy: purgeRemedy(cfg, { filter: { kind: o.kind }, olderThanMs, reason: o.reason, actor: config.actor, audit: config.audit }),
    command: 'propagations purge',
    headline: (mode) => `${mode === 'plan' ? 'Plan: delete' : 'Purge of'} dead letters in ${where} dead-lettered more than ${olderThan} ago${o.kind !== undefined ? ` (kind ${o.kind})` : ''}`,
    question: (count) => `Delete ${count} dead letter(s) from ${where}? This cannot be undone.`,
    confirm:
      expect === undefined
        ? undefined
        : async (count) => {
            if (count !== expect) throw expectMismatch(expect, count, olderThan);
            return true;
          },
    summary: (report) => ({ ...report.summary, olderThan, ...(expect !== undefined ? { expect } : {}) }),
    dryRunNotes: (planned) => {
      const out = ['Dry run: nothing was deleted.'];
      if (expect !== undefined && expect !== planned) out.push(`--expect ${expect} does not match the ${planned} planned: --apply would refuse.`);
      out.push(`To delete them: opsctl propagations purge --older-than ${o.olderThan.text}${o.kind !== undefined ? ` --kind ${JSON.stringify(o.kind)}` : ''} --apply --expect ${planned}`);
      return out;
    },
    // The engine asks nothing when the plan is empty: an --expect of more than 0 is still wrong.
    after: (report) => {
      if (o.apply && expect !== undefined && Number(report.summary.planned) !== expect) throw expectMismatch(expect, Number(report.summary.planned), olderThan);
    },
  }));
}

const expectMismatch = (expect: number, count: number, olderThan: string) =>
  usageError(`purge --expect ${expect} does not match the plan: ${count} dead letter(s) are older than ${olderThan} now; nothing was deleted (run the dry run again and pass its count).`);

const DEAD_LETTER_EXAMPLES = `
Examples:
  $ opsctl propagations dead-letters                       # newest 100, grouped by kind and error class
  $ opsctl propagations dead-letters --kind tier_elevation --since 24h
  $ opsctl propagations dead-letters --limit 0 -o ndjson   # every row, streamed

The groups (total, by kind, by error class) count every matching dead letter, not only the
rows shown. An error class is the last error with ids (uuids, hex, in_1Q2w…, tokens), numbers,
durations, quoted strings, urls, e-mails and IP addresses replaced by placeholders (<uuid>, <id>,
<n>, <duration>, <ip>, ...), cut at 80 characters. Retry one class: retry --error-class '<class>'.
`;
const PENDING_EXAMPLES = `
Examples:
  $ opsctl propagations pending                  # overdue (propagations.overdue, 15m), near-dead, unknown kinds
  $ opsctl propagations pending --overdue 1h --kind tier_elevation
  $ opsctl propagations pending -o json
`;
const RETRY_EXAMPLES = `
Examples:
  $ opsctl propagations retry --kind tier_elevation --since 24h            # dry run: the plan
  $ opsctl propagations retry 3fdd9021-3cc0-43e0-bf5d-cd479871879a --apply --reason "INC-7 fixed"
  $ opsctl propagations retry --all --apply --max 5000 --reason "handler deployed"
  $ opsctl propagations retry --kind tier_elevation --target 'prod-*' --apply --max-total 2000
  $ opsctl propagations retry --error-class 'billing-api: <n> timeout after <duration>' --since 2h --apply

--error-class takes a class exactly as the "By error class" table of dead-letters prints it;
only rows of that class are planned and retried (a row whose error changed since the plan is
left alone). A class that matches no dead letter in scope is exit 2, nothing changed.

Never unscoped: pass ids, a filter (--kind, --since) or --all. Each row is re-checked at
write time (still dead, not applied) and reported as retried, not-dead-anymore,
skipped-locked, refused (unknown kind) or errored. last_error is kept.
Exit status: 0 done, 1 some rows errored, 2 bad input, 3 database unreachable or another opsctl running,
4 an internal error (a bug in opsctl).
`;
const PURGE_EXAMPLES = `
Examples:
  $ opsctl propagations purge --older-than 30d                        # dry run: the count
  $ opsctl propagations purge --older-than 30d --apply --expect 412   # delete, if the count is still 412
  $ opsctl propagations purge --older-than 90d --kind tier_elevation --apply   # asks on a terminal

--apply deletes only when the count is confirmed: --expect N must equal the plan's count
(otherwise exit 2, nothing deleted), or a person answers yes on a terminal (-y does not count).
`;

/** `propagations show ID`: the outbox row whole, its state and error class, its audit history. */
export async function runShowPropagation(ctx: CommandContext, id: string): Promise<number> {
  const { parseFormat } = await import('../output/output.js');
  parseFormat(ctx.globals.output);
  const config = await ctx.config();
  const cfg = config.propagations;
  const { showPropagation } = await import('../checks/show-item.js');
  const { emitShow, readWithAudit, rowFields } = await import('./show-output.js');
  const { item, audit, journal } = await readWithAudit(ctx, cfg.table, (ro) => showPropagation(ro, cfg, id));
  const c = cfg.columns;
  const roles: Record<string, string> = { [c.id]: 'id', [c.kind]: 'kind', [c.attempts]: 'attempts', [c.lastError]: 'lastError', [c.appliedAt]: 'appliedAt', [c.failedAt]: 'failedAt' };
  return emitShow(ctx, {
    command: 'propagations show',
    headline: `Propagation ${item.id} in ${item.table}`,
    fields: [{ field: 'state', value: item.state }, { field: 'error class', value: item.errorClass }, ...rowFields(item.row, roles)],
    item: { ...item },
    audit,
    journal,
  });
}

const SHOW_EXAMPLES = `
Examples:
  $ opsctl propagations show 42
  $ opsctl propagations show 42 -o json          # { item, audit }
`;

export function registerPropagationCommands(program: Command, r: Registrar): void {
  const propagations = program
    .command('propagations')
    .description(describe('propagations'))
    .addHelpText(
      'after',
      `
Examples:
  $ opsctl propagations dead-letters --since 24h
  $ opsctl propagations pending
  $ opsctl propagations retry --kind tier_elevation --apply --reason "INC-7 fixed"
  $ opsctl propagations purge --older-than 30d
`,
    );
  propagations
    .command('dead-letters')
    .description('List dead letters (failed_at set), newest first, grouped by kind and error class (read-only)')
    .option('--kind <kind>', 'only this kind')
    .option('--since <duration>', 'only dead-lettered within this long, e.g. 24h')
    .option('--limit <n>', `at most this many rows (0 = no limit; default ${DEAD_LETTER_LIMIT})`)
    .addHelpText('after', DEAD_LETTER_EXAMPLES)
    .action(r.wrap((ctx, flags: DeadLetterFlags) => runDeadLetters(ctx, deadLetterListOptions(flags))));

  propagations
    .command('pending')
    .description('List pending propagations in trouble: overdue, near-dead or of an unknown kind (read-only)')
    .option('--overdue <duration>', 'due for longer than this counts as overdue (default: propagations.overdue)')
    .option('--kind <kind>', 'only this kind')
    .option('--limit <n>', `at most this many rows (0 = no limit; default ${PENDING_LIMIT})`)
    .addHelpText('after', PENDING_EXAMPLES)
    .action(r.wrap((ctx, flags: PendingFlags) => runPending(ctx, pendingOptions(flags))));

  propagations
    .command('show')
    .argument('<id>', 'the outbox row id (propagations.columns.id)')
    .description('One propagation whole: every column, its state, the full error and its class, its audit history (read-only)')
    .addHelpText('after', SHOW_EXAMPLES)
    .action(r.wrap((ctx, id: string) => runShowPropagation(ctx, id)));

  const retry = propagations
    .command('retry')
    .argument('[ids...]', 'dead-letter ids')
    .description('Re-drive dead letters: clear failed_at, reset attempts, due now (dry run unless --apply)')
    .option('--kind <kind>', 'only this kind')
    .option('--since <duration>', 'only dead-lettered within this long, e.g. 24h')
    .option('--error-class <class>', 'only dead letters of this error class, as `propagations dead-letters` lists it (quote it)')
    .option('--all', 'every dead letter (required when no ids or filter are given)')
    .option('--include-unknown-kinds', 'also retry kinds not in propagations.knownKinds')
    .option('--max-total <n>', 'with --target/--all-targets: refuse to change more than this many in all (--max is per target)');
  addApplyFlags(retry, { max: '1000' })
    .addHelpText('after', RETRY_EXAMPLES)
    .action(r.wrap((ctx, ids: string[], flags: RetryFlags) => runRetry(ctx, deadLetterRetryOptions(ids, flags)), { merge: 'plan-then-apply' }));

  const purge = propagations
    .command('purge')
    .description('Delete dead letters older than a threshold (dry run unless --apply)')
    .option('--older-than <duration>', 'required: dead-lettered longer ago than this, e.g. 30d')
    .option('--kind <kind>', 'only this kind')
    .option('--expect <n>', 'with --apply: the count the dry run showed; refuse if the plan differs');
  addApplyFlags(purge, { max: '1000' })
    .addHelpText('after', PURGE_EXAMPLES)
    .action(r.wrap((ctx, flags: PurgeFlags) => runPurge(ctx, purgeOptions(flags))));
}
