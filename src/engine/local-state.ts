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

const fsReason = (e: unknown) => (e as { code?: string }).code ?? (e as Error).message;

/** Checked before any change: a journal that cannot be written must stop the run while nothing is changed yet. */
export async function openJournal(path: string): Promise<(actor: string, entries: AuditEntry[]) => Promise<void>> {
  try {
    await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
    await (await open(path, 'a', 0o600)).close();
  } catch (e) {
    throw dependencyError(`cannot write the audit journal ${path} (${fsReason(e)}): set OPSCTL_STATE_DIR to a writable directory, or configure audit.table.`, e);
  }
  return async (actor, entries) => {
    const at = new Date().toISOString();
    // One append per batch: lines of one batch are never interleaved with another writer's.
    const lines = entries.map((e) => JSON.stringify({ at, actor, kind: e.kind, resourceType: e.resourceType, resourceId: e.resourceId, summary: e.summary, metadata: storedMetadata(e) })).join('\n');
    await appendFile(path, `${lines}\n`, { mode: 0o600 });
  };
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
