import type { Command } from 'commander';
import { describe } from './descriptions.js';
import type { Registrar } from './registrar.js';
import type { CommandContext } from '../cli/context.js';
import type { Column } from '../output/output.js';
import type { ExpiredLockRow, IdleAdvisoryLock } from '../checks/expired-locks.js';
import { parseCount } from './shared-flags.js';
import { formatAge, formatDuration, parseDuration } from '../config/durations.js';

interface ExpiredFlags {
  stale?: string;
  limit?: string;
}
interface AdvisoryFlags {
  idle?: string;
  limit?: string;
}

const RELEASE_NOTE =
  'Read-only: opsctl never releases locks. An advisory lock is released only by its own session (or by ending it: pg_terminate_backend(pid), which also rolls back its open transaction).';

/** What `locks expired` runs with; an unset field takes its config default. */
export interface ExpiredOptions {
  staleMs?: number;
  /** 0 = no limit. */
  limit: number;
}
/** What `locks advisory` runs with. */
export interface AdvisoryOptions {
  idleMs?: number;
  limit: number;
}

export function expiredOptions(flags: ExpiredFlags): ExpiredOptions {
  return { staleMs: flags.stale === undefined ? undefined : parseDuration(flags.stale, '--stale'), limit: flags.limit === undefined ? 1000 : parseCount(flags.limit, '--limit') };
}
export function advisoryOptions(flags: AdvisoryFlags): AdvisoryOptions {
  return { idleMs: flags.idle === undefined ? undefined : parseDuration(flags.idle, '--idle'), limit: flags.limit === undefined ? 1000 : parseCount(flags.limit, '--limit') };
}

export async function runExpired(ctx: CommandContext, o: ExpiredOptions): Promise<number> {
  const { parseFormat } = await import('../output/output.js');
  parseFormat(ctx.globals.output);
  const { limit } = o;
  const cfg = (await ctx.config()).workers;
  const staleMs = o.staleMs ?? parseDuration(cfg.stale, 'workers.stale');
  const { assertLocksTable, findExpiredLockRows, workerTableExists } = await import('../checks/expired-locks.js');
  const { displayName } = await import('../database/identifiers.js');
  const where = displayName(cfg.locks.table, cfg.locks.schema);
  return ctx.withDatabase((db) =>
    db.readOnly(async (ro) => {
      await assertLocksTable(ro, cfg);
      // Holders are judged by heartbeat only where there is a worker table to judge them by.
      const judgeHolders = cfg.locks.holder !== null && (await workerTableExists(ro, cfg));
      if (judgeHolders) {
        const { assertWorkerTable } = await import('../checks/dead-workers.js');
        await assertWorkerTable(ro, cfg);
      }
      const rows = await findExpiredLockRows(ro, cfg, { staleMs, judgeHolders, limit });
      const columns: Column<ExpiredLockRow>[] = [
        { header: 'lock', value: (r) => r.name },
        ...(cfg.locks.holder ? [{ header: 'holder', value: (r: ExpiredLockRow) => r.holder }] : []),
        ...(cfg.locks.acquiredAt ? [{ header: 'acquired_at', value: (r: ExpiredLockRow) => r.acquiredAt?.replace(/\.\d{3}Z$/, 'Z') }] : []),
        ...(cfg.locks.expiresAt ? [{ header: 'expires_at', value: (r: ExpiredLockRow) => r.expiresAt?.replace(/\.\d{3}Z$/, 'Z') }] : []),
        ...(cfg.locks.expiresAt ? [{ header: 'expired for', value: (r: ExpiredLockRow) => (r.expiredSeconds === null ? '' : formatAge(r.expiredSeconds * 1000)) }] : []),
        { header: 'why', value: (r) => r.reasons.join(', '), tone: () => 'warn', shrink: true },
      ];
      const notes = [RELEASE_NOTE.replace(/ An advisory.*$/, '')];
      if (cfg.locks.holder && !judgeHolders) notes.push(`Holders not judged: the worker table ${displayName(cfg.table, cfg.schema)} does not exist.`);
      return ctx.emit({
        command: 'locks expired',
        mode: 'read',
        items: rows,
        columns,
        headline: `Rows of ${where} past their expiry${judgeHolders ? ` or held by a worker silent for longer than ${formatDuration(staleMs)}` : ''} (database clock)`,
        emptyMessage: `No expired locks in ${where}.`,
        notes: () => notes,
        summary: () => ({
          expired: rows.filter((r) => r.reasons.includes('expired')).length,
          holderDead: rows.filter((r) => r.reasons.includes('holder-dead')).length,
          listed: rows.length,
          ...(judgeHolders ? { stale: formatDuration(staleMs) } : {}),
          ...(limit > 0 && rows.length >= limit ? { limitReached: limit } : {}),
        }),
      });
    }),
  );
}

export async function runAdvisory(ctx: CommandContext, o: AdvisoryOptions): Promise<number> {
  const { parseFormat } = await import('../output/output.js');
  parseFormat(ctx.globals.output);
  const { limit } = o;
  const cfg = (await ctx.config()).workers;
  const idleMs = o.idleMs ?? parseDuration(cfg.advisoryIdle, 'workers.advisoryIdle');
  const { findIdleAdvisoryLocks } = await import('../checks/expired-locks.js');
  return ctx.withDatabase((db) =>
    db.readOnly(async (ro) => {
      const listing = await findIdleAdvisoryLocks(ro, idleMs, limit);
      const columns: Column<IdleAdvisoryLock>[] = [
        { header: 'pid', value: (r) => r.pid },
        { header: 'key', value: (r) => r.key },
        { header: 'application_name', value: (r) => r.applicationName, shrink: true },
        { header: 'client', value: (r) => r.clientAddr ?? 'local' },
        { header: 'user', value: (r) => r.user },
        { header: 'state', value: (r) => r.state, tone: (r) => (r.state.startsWith('idle in transaction') ? 'bad' : 'warn') },
        { header: 'idle for', value: (r) => formatAge(r.idleSeconds * 1000) },
        { header: 'in transaction for', value: (r) => (r.transactionSeconds === null ? '' : formatAge(r.transactionSeconds * 1000)) },
        { header: 'connected for', value: (r) => formatAge(r.connectedSeconds * 1000), tone: () => 'dim' },
        { header: 'note', value: (r) => r.owner ?? '', tone: () => 'dim', shrink: true },
      ];
      const notes = [RELEASE_NOTE];
      if (listing.notVisible > 0)
        notes.push(`${listing.notVisible} advisory lock(s) are held by sessions this role cannot inspect: grant pg_read_all_stats (or pg_monitor) to see them.`);
      return ctx.emit({
        command: 'locks advisory',
        mode: 'read',
        items: listing.locks,
        columns,
        headline: `Advisory locks held by sessions idle for longer than ${formatDuration(idleMs)} (this database, pg_locks × pg_stat_activity)`,
        emptyMessage: `No advisory lock is held by a session idle for longer than ${formatDuration(idleMs)}.`,
        notes: () => notes,
        summary: () => ({
          idleHolders: new Set(listing.locks.map((l) => l.pid)).size,
          locks: listing.locks.length,
          idleInTransaction: listing.locks.filter((l) => l.state.startsWith('idle in transaction')).length,
          heldByBusySessions: listing.busy,
          notVisible: listing.notVisible,
          idle: formatDuration(idleMs),
          ...(limit > 0 && listing.locks.length >= limit ? { limitReached: limit } : {}),
        }),
      });
    }),
  );
}

const EXPIRED_EXAMPLES = `
Examples:
  $ opsctl locks expired                         # rows of workers.locks past expires_at, or whose holder is dead
  $ opsctl locks expired --stale 5m -o json

Read-only: opsctl never deletes lock rows (the application's own acquire decides whether an
expired row may be taken over).
Exit status: 0 listed, 2 bad flags or config, or a configured table/column missing, 3 database unreachable,
4 an internal error (a bug in opsctl).
`;
const ADVISORY_EXAMPLES = `
Examples:
  $ opsctl locks advisory                        # sessions idle longer than workers.advisoryIdle (5m)
  $ opsctl locks advisory --idle 30m -o json

Lists granted advisory locks of this database whose session is idle, or idle in transaction,
past the threshold: the key, the backend's pid, application_name, client address and ages.
Read-only: opsctl never terminates sessions. Seeing other roles' sessions needs
pg_read_all_stats (or pg_monitor); locks it cannot inspect are counted as notVisible.
Exit status: 0 listed, 2 bad flags or config, 3 database unreachable, 4 an internal error (a bug in opsctl).
`;

export function registerLockCommands(program: Command, r: Registrar): void {
  const locks = program
    .command('locks')
    .description(describe('locks'))
    .addHelpText('after', '\nExamples:\n  $ opsctl locks expired                         # read-only\n  $ opsctl locks advisory --idle 30m -o json\n');
  locks
    .command('expired')
    .description('List rows of the table-based lock past their expiry or held by a dead worker (read-only)')
    .option('--stale <duration>', 'a holder silent for longer than this is dead (default: workers.stale)')
    .option('--limit <n>', 'at most this many rows (0 = no limit; default 1000)')
    .addHelpText('after', EXPIRED_EXAMPLES)
    .action(r.wrap((ctx, flags: ExpiredFlags) => runExpired(ctx, expiredOptions(flags))));
  locks
    .command('advisory')
    .description('List advisory locks held by sessions idle (or idle in transaction) past a threshold (read-only)')
    .option('--idle <duration>', 'idle for longer than this, e.g. 5m (default: workers.advisoryIdle)')
    .option('--limit <n>', 'at most this many locks (0 = no limit; default 1000)')
    .addHelpText('after', ADVISORY_EXAMPLES)
    .action(r.wrap((ctx, flags: AdvisoryFlags) => runAdvisory(ctx, advisoryOptions(flags))));
}
