import type { Database } from '../database/database.js';
import type { Config } from '../config/config.js';
import { qualifiedName } from '../database/identifiers.js';
import { readJournalLines, runRecordsPath, type JournalTarget } from './local-state.js';
import { ROLLED_BACK_KIND, RUN_KIND } from './remediation.js';
import { runIdTime } from './run-id.js';

/**
 * Runs as they were recorded: every --apply is a run (its id a UUIDv7, on every audit entry it
 * wrote as metadata.runId), with a record written at its end (kind opsctl.run): in the audit
 * table when one is configured (so any host sharing it lists the run whole), else (or when that
 * insert failed) in runs.jsonl beside the local journal. `runs` lists them, `runs show` lists a
 * run's items with their before/after images, `revert` reads them back. The entries come from
 * the audit table when one is configured, else from the journal (only its lines of the target
 * worked on); a run whose record is missing (its process was killed) is built from its entries.
 */

/** One recorded change (or a run record), as read from the audit table or a journal line. */
export interface RunEntry {
  at: string;
  actor: string | null;
  kind: string;
  resourceType: string;
  resourceId: string | null;
  summary: string;
  metadata: Record<string, unknown>;
  target?: JournalTarget;
}

export interface RunListing {
  runId: string;
  /** ISO 8601: the run record's start, else the time the run id carries. */
  startedAt: string;
  finishedAt: string | null;
  actor: string | null;
  command: string | null;
  commandLine: string | null;
  target: string | null;
  reason: string | null;
  /** A revert: the run it reverts. */
  revertOf: string | null;
  /** Counts by outcome class (from the record), else the applied entries found. */
  outcomes: Record<string, number>;
  /** The remedy's word for each class (reaped, race-lost, ...), from the record; null without one. */
  labels: Record<string, string> | null;
  /** Applied items recorded (entries carrying this run's id). */
  items: number;
  /** false: no record (the process was killed, or the record could not be written): built from its entries. */
  recorded: boolean;
  exitCode: number | null;
}

/** Where a target's entries are: the audit table (configured), else the journal. */
export type RunSource = { kind: 'audit'; db: Database; audit: Config['audit'] } | { kind: 'journal'; path: string };

const iso = (v: unknown): string => (v instanceof Date ? v.toISOString() : String(v));

/** Journal lines whose target is `target` (a database by system identifier and name; AWS by target name). */
export function sameTarget(line: JournalTarget | undefined, want: JournalTarget | null): boolean {
  if (!want) return true;
  if (!line) return false;
  if (line.kind !== want.kind) return false;
  if (line.kind === 'postgres') return line.database === want.database && (line.system ?? null) === (want.system ?? null);
  return (line.name ?? null) === (want.name ?? null) && (want.region === undefined || line.region === want.region);
}

/** Every parsable line of the journal (none when there is none yet). */
export async function readJournal(path: string): Promise<RunEntry[]> {
  return readJournalLines(path, {
    contains: 'runId',
    keep: (j): j is RunEntry => j && typeof j.metadata === 'object' && j.metadata && typeof j.metadata.runId === 'string',
  });
}

/** Journal entries of `targets` (any of them), with rolled-back batches taken out. */
export async function journalEntries(path: string, targets: Array<JournalTarget | null>, runId?: string): Promise<RunEntry[]> {
  // The journal's changes and the run records beside it (runs.jsonl).
  const lines = [...(await readJournal(path)), ...(await readJournal(runRecordsPath(path)))];
  const all = lines.filter((e) => (runId === undefined || e.metadata.runId === runId) && targets.some((t) => sameTarget(e.target, t)));
  const rolledBack = new Set<string>();
  for (const e of all) if (e.kind === ROLLED_BACK_KIND) for (const id of (e.metadata.ids as string[]) ?? []) rolledBack.add(`${e.metadata.runId}\u0000${id}`);
  return all.filter((e) => e.kind !== ROLLED_BACK_KIND && !(e.kind !== RUN_KIND && rolledBack.has(`${e.metadata.runId}\u0000${itemKey(e)}`)));
}

/** An item's key: the image's key value (database), else its resource id (AWS: the group name). */
export function itemKey(e: RunEntry): string {
  const image = e.metadata.image as { id?: string } | undefined;
  return image?.id ?? (e.metadata.name as string | undefined) ?? e.resourceId ?? '';
}

type AuditRow = { at: Date; actor: string | null; kind: string; resource_type: string; resource_id: string | null; summary: string; metadata: Record<string, unknown> };
const entryOf = (r: AuditRow): RunEntry => ({ at: iso(r.at), actor: r.actor, kind: r.kind, resourceType: r.resource_type, resourceId: r.resource_id, summary: r.summary, metadata: r.metadata });

/** The audit table's entries of one run (its items, and its record when it is there), oldest first. */
export async function auditEntries(db: Database, audit: Config['audit'], runId: string): Promise<RunEntry[]> {
  const rows = await db.query<AuditRow>(
    `SELECT created_at AS at, actor, kind, resource_type, resource_id::text AS resource_id, summary, metadata
       FROM ${qualifiedName(audit.table as string, audit.schema)}
      WHERE metadata ? 'runId' AND metadata->>'runId' = $1
      ORDER BY created_at, id`,
    [runId],
  );
  return rows.map(entryOf);
}

interface Partial {
  runId: string;
  first: string;
  last: string;
  actor: string | null;
  items: number;
  kinds: Set<string>;
  reason: string | null;
  revertOf: string | null;
  record: RunEntry | null;
}

function fold(parts: Map<string, Partial>, runId: string, at: string, actor: string | null, kind: string, count: number, reason: string | null, revertOf: string | null, record: RunEntry | null): void {
  let p = parts.get(runId);
  if (!p) parts.set(runId, (p = { runId, first: at, last: at, actor, items: 0, kinds: new Set(), reason: null, revertOf: null, record: null }));
  if (at < p.first) p.first = at;
  if (at > p.last) p.last = at;
  p.actor ??= actor;
  if (record) p.record = record;
  else {
    p.items += count;
    p.kinds.add(kind);
    p.reason ??= reason;
    p.revertOf ??= revertOf;
  }
}

/** A listing from what was found of a run: its record when there is one, else its entries. */
function listing(p: Partial): RunListing {
  const m = (p.record?.metadata ?? {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' ? v : null);
  const outcomes = (m.outcomes as Record<string, number> | undefined) ?? { applied: p.items };
  return {
    runId: p.runId,
    startedAt: str(m.startedAt) ?? new Date(runIdTime(p.runId)).toISOString(),
    finishedAt: str(m.finishedAt),
    actor: str(m.actor) ?? p.actor,
    command: str(m.command) ?? (p.kinds.size ? [...p.kinds].sort().join(',') : null),
    commandLine: str(m.commandLine),
    target: str(m.target),
    reason: str(m.reason) ?? p.reason,
    revertOf: str(m.revertOf) ?? p.revertOf,
    outcomes,
    labels: (m.labels as Record<string, string> | undefined) ?? null,
    items: p.items,
    recorded: p.record !== null,
    exitCode: typeof m.exitCode === 'number' ? m.exitCode : null,
  };
}

/**
 * Runs newest first (their ids sort by start), at most `limit` (0: all). From the audit table,
 * in two queries whatever the number of runs: its item entries grouped by run, and its run
 * records (kind opsctl.run: a run made on any host, also one that changed nothing); with the
 * journal's run records of the same target beside them (a record the table could not take).
 */
export async function listRuns(source: RunSource, journal: { path: string; targets: Array<JournalTarget | null> }, limit: number): Promise<RunListing[]> {
  const parts = new Map<string, Partial>();
  if (source.kind === 'audit') {
    const rows = await source.db.query<{ run_id: string; kind: string; first_at: Date; last_at: Date; actor: string | null; n: number; reason: string | null; revert_of: string | null }>(
      `SELECT metadata->>'runId' AS run_id, kind, min(created_at) AS first_at, max(created_at) AS last_at, min(actor) AS actor, count(*)::int AS n,
              min(metadata->>'reason') AS reason, min(metadata->>'revertOf') AS revert_of
         FROM ${qualifiedName(source.audit.table as string, source.audit.schema)}
        WHERE metadata ? 'runId' AND kind <> $1
        GROUP BY 1, 2`,
      [RUN_KIND],
    );
    for (const r of rows) fold(parts, r.run_id, iso(r.first_at), r.actor, r.kind, r.n, r.reason, r.revert_of, null);
    const recorded = await source.db.query<AuditRow>(
      `SELECT created_at AS at, actor, kind, resource_type, resource_id::text AS resource_id, summary, metadata
         FROM ${qualifiedName(source.audit.table as string, source.audit.schema)}
        WHERE kind = $1 AND metadata ? 'runId'`,
      [RUN_KIND],
    );
    // The journal's records (this host's; a record the table could not take, or one written
    // before records went to the table): their command line, counts and end. The table's win.
    const records = (await journalEntries(journal.path, journal.targets).catch(() => [])).filter((e) => e.kind === RUN_KIND);
    // A table several targets share: of a fleet run's records, the one naming this target wins.
    const here = journal.targets[0]?.name ?? null;
    const table = recorded.map(entryOf).sort((x, y) => Number(x.metadata.target === here) - Number(y.metadata.target === here));
    for (const e of [...records, ...table]) fold(parts, e.metadata.runId as string, e.at, e.actor, e.kind, 0, null, null, e);
  } else {
    for (const e of await journalEntries(source.path, journal.targets)) {
      fold(parts, e.metadata.runId as string, e.at, e.actor, e.kind, 1, (e.metadata.reason as string | null) ?? null, (e.metadata.revertOf as string | null) ?? null, e.kind === RUN_KIND ? e : null);
    }
  }
  const out = [...parts.values()].map(listing).sort((a, b) => (a.runId < b.runId ? 1 : a.runId > b.runId ? -1 : 0));
  return limit > 0 ? out.slice(0, limit) : out;
}

/** One run: its record (or what its entries say) and its item entries, oldest first. */
export async function readRun(source: RunSource, journal: { path: string; targets: Array<JournalTarget | null> }, runId: string): Promise<{ run: RunListing | null; items: RunEntry[] }> {
  const fromJournal = await journalEntries(journal.path, journal.targets, runId).catch((e) => {
    if (source.kind === 'journal') throw e;
    return [] as RunEntry[];
  });
  const entries = source.kind === 'audit' ? await auditEntries(source.db, source.audit, runId) : fromJournal;
  const items = entries.filter((e) => e.kind !== RUN_KIND);
  // The audit table's record (any host), else the journal's (this host's).
  const here = journal.targets[0]?.name ?? null;
  const inTable = source.kind === 'audit' ? entries.filter((e) => e.kind === RUN_KIND) : [];
  const record = inTable.find((e) => e.metadata.target === here) ?? inTable[0] ?? fromJournal.find((e) => e.kind === RUN_KIND) ?? null;
  if (!record && items.length === 0) return { run: null, items: [] };
  const parts = new Map<string, Partial>();
  for (const e of items) fold(parts, runId, e.at, e.actor, e.kind, 1, (e.metadata.reason as string | null) ?? null, (e.metadata.revertOf as string | null) ?? null, null);
  if (record) fold(parts, runId, record.at, record.actor, record.kind, 0, null, null, record);
  return { run: listing(parts.get(runId) as Partial), items };
}

/** The entries of earlier reverts of `runId` (their after-images tell a row a revert already put back). */
export async function revertsOf(source: RunSource, journal: { path: string; targets: Array<JournalTarget | null> }, runId: string): Promise<RunEntry[]> {
  if (source.kind === 'audit') {
    const rows = await source.db.query<AuditRow>(
      `SELECT created_at AS at, actor, kind, resource_type, resource_id::text AS resource_id, summary, metadata
         FROM ${qualifiedName(source.audit.table as string, source.audit.schema)}
        WHERE metadata ? 'revertOf' AND metadata->>'revertOf' = $1 AND kind <> $2
        ORDER BY created_at, id`,
      [runId, RUN_KIND],
    );
    return rows.map(entryOf);
  }
  return (await journalEntries(source.path, journal.targets)).filter((e) => e.kind !== RUN_KIND && e.metadata.revertOf === runId);
}
