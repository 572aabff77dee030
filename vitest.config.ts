import { defineConfig } from 'vitest/config';
import { chosenMajor, LEFTOVERS_PROJECT, NEWEST, OLDEST } from './test/support/pg-majors.js';

/**
 * Tests that never reach the run's PostgreSQL (AWS, the emulator, parsing, rendering, the demo
 * and the install, which bring their own server): the oldest major skips them, they would only
 * run the same code twice. A test missing from this list just runs on both.
 */
const SERVERLESS = [
  'test/batch-sizer.test.ts',
  'test/checks/error-classes.test.ts',
  'test/cli-errors.test.ts',
  'test/completion.test.ts',
  'test/docs-commands.test.ts',
  'test/docs-links.test.ts',
  'test/checks/schedule-groups*.test.ts',
  'test/checks/tag-diff.test.ts',
  'test/concurrency.test.ts',
  'test/config.test.ts',
  'test/config-lazy-zod.test.ts',
  'test/durations.test.ts',
  'test/e2e/container-image.e2e.test.ts',
  'test/e2e/demo.e2e.test.ts',
  'test/e2e/examples.test.ts',
  'test/e2e/newcomer.e2e.test.ts',
  'test/emulator/**',
  'test/fleet.test.ts',
  'test/help.test.ts',
  'test/item-lines.test.ts',
  'test/output-serialized.test.ts',
  'test/plan-spool.test.ts',
  'test/reference.test.ts',
  'test/reliability/aws-faults.test.ts',
  'test/shards.test.ts',
  'test/shell-quote.test.ts',
  'test/targets.test.ts',
];

// OPSCTL_TEST_PG_MAJOR=14|18: every test on that major alone (so does OPSCTL_TEST_DATABASE_URL,
// on that server). Unset: every test on the newest, and the tests that use the database on the
// oldest too, in one run and one report.
const only = chosenMajor();
const globalSetup = ['test/support/global-setup.ts'];
const LAST = 'test/tmp-leftovers.last-test.ts';

export default defineConfig({
  test: {
    setupFiles: ['test/support/setup-env.ts'],
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // A deprecated use of a library fails the test that makes it, instead of one warning per
    // worker that nobody traces (pg's "client.query() when the client is already executing a
    // query", from two queries at once on one client).
    execArgv: ['--throw-deprecation'],
    // Two cores: keep the database busy but not thrashing (shared by the projects).
    maxWorkers: 2,
    // The default output, plus a closing table of the reliability scenarios (test/reliability).
    reporters: ['default', './test/support/scenario-reporter.ts'],
    // Each project starts its own server in its global setup (not the root's: the root would
    // run it a third time, for no project).
    // The last project runs once every other test is done (groupOrder): it fails on anything the
    // run left in the real temp directory.
    projects: [
      ...(only || process.env.OPSCTL_TEST_DATABASE_URL
        ? [{ extends: true, test: { name: only ? `pg${only}` : 'pg-server', globalSetup, exclude: [LAST] } }]
        : [
            { extends: true, test: { name: `pg${NEWEST}`, globalSetup, exclude: [LAST] } },
            { extends: true, test: { name: `pg${OLDEST}`, globalSetup, exclude: [LAST, ...SERVERLESS] } },
          ]),
      // (A file named on the command line runs even where `include` does not match it: hence the
      // excludes, here and above.)
      { extends: true, test: { name: LEFTOVERS_PROJECT, globalSetup, include: [LAST], exclude: ['test/**/*.test.ts'], sequence: { groupOrder: 1 } } },
    ],
  },
});
