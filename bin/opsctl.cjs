#!/usr/bin/env node
'use strict';
// Thin launcher for the bundled CLI, dist/opsctl.cjs (built by `npm install` via the prepare script).
const { existsSync, readFileSync } = require('node:fs');
const { join } = require('node:path');

const args = process.argv.slice(2);
// `--version` is answered before anything else loads: scripts call it to probe the install.
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  process.stdout.write(`${JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')).version}\n`);
} else {
  const entry = join(__dirname, '..', 'dist', 'opsctl.cjs');
  if (!existsSync(entry)) {
    process.stderr.write('opsctl: not built yet: run `npm install` (or `npm run build`) in the opsctl directory first.\n');
    process.exit(2);
  }
  // Keep V8's young generation at its initial size: a million-row listing otherwise grows it
  // (and RSS by ~30 MB) though the live heap stays flat. Read by V8 at each resize, so it can be
  // set here, in-process: no re-exec, no NODE_OPTIONS, nothing added to start-up (bench/).
  require('node:v8').setFlagsFromString('--semi-space-growth-factor=1');
  require(entry);
}
