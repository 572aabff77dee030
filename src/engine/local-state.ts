import { appendFile, mkdir, open, readFile, unlink } from 'node:fs/promises';
import { hostname, homedir } from 'node:os';
import { join } from 'node:path';
import { storedMetadata, type AuditEntry } from './audit.js';
import { dependencyError } from '../errors.js';
import { delay } from './concurrency.js';

/**
 * opsctl's local state, for what has no database to live in: the audit journal of AWS changes
 * (when no audit table is configured) and the lock files that keep two adopters apart.
 * Directory: $OPSCTL_STATE_DIR, else $XDG_STATE_HOME/opsctl, else ~/.local/state/opsctl.
 */
export function stateDir(env: NodeJS.ProcessEnv): string {
  if (env.OPSCTL_STATE_DIR) return env.OPSCTL_STATE_DIR;
  if (env.XDG_STATE_HOME) return join(env.XDG_STATE_HOME, 'opsctl');
  return join(env.HOME || homedir(), '.local', 'state', 'opsctl');
}

export const journalPath = (env: NodeJS.ProcessEnv) => join(stateDir(env), 'audit.jsonl');
/** Run records (one line per run, written at its end) beside the journal: runs.jsonl. */
export const runRecordsPath = (journal: string) => join(journal, '..', 'runs.jsonl');

const fsReason = (e: unknown) => (e as { code?: string }).code ?? (e as Error).message;

/**
 * A batch line: the journal line of a whole batch, written by the server for a remedy that
 * journals itself (reap with no audit table): what is the same for every row once, then a
 * short array per row. Read back (readJournalLines) it is the lines journalLine would have
 * written, one per row:
 *   resourceId = row[0], summary = summaries[row[1]],
 *   metadata = { ...metadata, [k]: row[each[k]] for k in each, image: { ...metadata.image, id: row[0] },
 *                before: image.columns zipped with row[2], after: the same with row[3] }.
 */
export interface BatchLineHead {
  at: string;
  actor: string;
  kind: string;
  resourceType: string;
  target?: JournalTarget;
  summaries: Record<string, string>;
  metadata: Record<string, unknown> & { image: { columns: string[] } };
  each: Record<string, number>;
}
type BatchLine = BatchLineHead & { rows: unknown[][] };

const isBatchLine = (j: any): j is BatchLine => j !== null && typeof j === 'object' && Array.isArray(j.rows) && j.each && j.metadata?.image;

const zip = (columns: string[], values: unknown): Record<string, unknown> | null => {
  if (!Array.isArray(values)) return null;
  const o: Record<string, unknown> = {};
  columns.forEach((c, i) => (o[c] = values[i]));
  return o;
};

/** A batch line's rows as the lines journalLine writes (the same keys, in its order). */
function expandBatchLine(b: BatchLine): Record<string, unknown>[] {
  const { image, ...common } = b.metadata;
  return b.rows.map((r) => {
    const id = r[0] as string;
    const metadata: Record<string, unknown> = {};
    for (const [k, i] of Object.entries(b.each)) metadata[k] = r[i];
    Object.assign(metadata, common, { image: { ...image, id }, before: zip(image.columns, r[2]), after: zip(image.columns, r[3]) });
    return { at: b.at, actor: b.actor, kind: b.kind, resourceType: b.resourceType, resourceId: id, summary: b.summaries[r[1] as string], metadata, ...(b.target ? { target: b.target } : {}) };
  });
}

/**
 * The journal's lines that `keep` accepts, in the order written; none when there is no journal
 * yet. `contains` skips, before parsing, a line that does not hold it; a line that does not
 * parse (a write cut short) is skipped.
 */
export async function readJournalLines<T>(path: string, select: { contains?: string; keep: (j: any) => j is T }): Promise<T[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return [];
    throw dependencyError(`cannot read the audit journal ${path} (${fsReason(e)}).`, e);
  }
  const out: T[] = [];
  for (const line of text.split('\n')) {
    if (select.contains !== undefined && !line.includes(select.contains)) continue;
    try {
      const j: unknown = JSON.parse(line);
      if (isBatchLine(j)) {
        for (const e of expandBatchLine(j)) if (select.keep(e)) out.push(e);
      } else if (select.keep(j)) out.push(j);
    } catch {
      // a torn line (a write cut short)
    }
  }
  return out;
}

/**
 * What a journal line says about where its change was made, so that `runs` and `revert` read
 * only the lines of the target they work on: a database by its system identifier and name
 * (the target's name from the config beside them), an AWS account+region.
 */
export interface JournalTarget {
  kind: 'postgres' | 'aws';
  /** The config's target name (--target), null: the config's own. */
  name: string | null;
  /** postgres: pg_control_system().system_identifier (null when not readable) and current_database(). */
  system?: string | null;
  database?: string;
  /** aws: the region, and the endpoint when not AWS's own. */
  region?: string;
  endpoint?: string | null;
}

/**
 * Appends entries (one write per call) with the target they were made on. `lines`: appends
 * whole lines already built (a batch line by the server, see Remedy.journalsItself), one write.
 */
export type JournalAppend = ((actor: string, entries: AuditEntry[], target?: JournalTarget | null) => Promise<void>) & {
  lines(text: string): Promise<void>;
};

/** One journal line's object: what `runs`, `revert` and `show` read back. */
function journalLine(at: string, actor: string, e: AuditEntry, target: JournalTarget | null | undefined): Record<string, unknown> {
  return { at, actor, kind: e.kind, resourceType: e.resourceType, resourceId: e.resourceId, summary: e.summary, metadata: storedMetadata(e), ...(target ? { target } : {}) };
}

/** Checked before any change: a journal that cannot be written must stop the run while nothing is changed yet. */
export async function openJournal(path: string): Promise<JournalAppend> {
  try {
    await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
    await (await open(path, 'a', 0o600)).close();
  } catch (e) {
    throw dependencyError(`cannot write the audit journal ${path} (${fsReason(e)}): set OPSCTL_STATE_DIR to a writable directory, or configure audit.table. Nothing was changed.`, e);
  }
  // One append per batch: lines of one batch are never interleaved with another writer's.
  const lines = async (text: string) => {
    if (text) await appendFile(path, text.endsWith('\n') ? text : `${text}\n`, { mode: 0o600 });
  };
  const append = async (actor: string, entries: AuditEntry[], target?: JournalTarget | null) => {
    if (entries.length === 0) return;
    const at = new Date().toISOString();
    await lines(entries.map((e) => JSON.stringify(journalLine(at, actor, e, target))).join('\n'));
  };
  return Object.assign(append, { lines });
}

interface LockOwner {
  pid: number;
  host: string;
  since: string;
  what: string;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM';
  }
};

/**
 * An exclusive lock file (created with O_EXCL) under stateDir/locks. A lock left by a process
 * of this host that no longer runs is taken over; one held by a live process (or another host)
 * is busy: exit 3, or with `wait` polled until it is released.
 */
export async function acquireFileLock(
  env: NodeJS.ProcessEnv,
  key: string,
  what: string,
  opts: { wait: boolean; onWaiting?: (message: string) => void; pollMs?: number },
): Promise<{ release(): Promise<void> }> {
  const dir = join(stateDir(env), 'locks');
  const file = join(dir, `${key.replace(/[^A-Za-z0-9._-]+/g, '_')}.lock`);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw dependencyError(`cannot create the lock directory ${dir} (${fsReason(e)}): set OPSCTL_STATE_DIR to a writable directory.`, e);
  }
  const me: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString(), what };
  let told = false;
  for (;;) {
    try {
      const h = await open(file, 'wx', 0o600);
      await h.writeFile(JSON.stringify(me));
      await h.close();
      return { release: async () => void (await unlink(file).catch(() => {})) };
    } catch (e) {
      if ((e as { code?: string }).code !== 'EEXIST') throw dependencyError(`cannot create the lock file ${file} (${fsReason(e)}).`, e);
    }
    let owner: LockOwner | null = null;
    try {
      owner = JSON.parse(await readFile(file, 'utf8')) as LockOwner;
    } catch {
      owner = null; // being written or just released: look again
    }
    if (owner && owner.host === me.host && !alive(owner.pid)) {
      await unlink(file).catch(() => {}); // its process is gone: a stale lock
      continue;
    }
    const who = owner ? ` (pid ${owner.pid} on ${owner.host}, since ${owner.since})` : '';
    if (!opts.wait) throw dependencyError(`another opsctl run is already working on ${what}${who}; re-run later, or pass --wait to wait for it.`);
    if (!told) opts.onWaiting?.(`waiting for another opsctl run working on ${what}${who} (lock ${file})…`);
    told = true;
    await delay(opts.pollMs ?? 200);
  }
}
