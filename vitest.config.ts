import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    globalSetup: ['test/support/global-setup.ts'],
    setupFiles: ['test/support/setup-env.ts'],
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: keep the database busy but not thrashing.
    maxWorkers: 2,
    // The default output, plus a closing table of the reliability scenarios (test/reliability).
    reporters: ['default', './test/support/scenario-reporter.ts'],
  },
});
