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
  const dist = join(__dirname, '..', 'dist');
  const entry = join(dist, 'opsctl.cjs');
  if (!existsSync(entry)) {
    process.stderr.write('opsctl: not built yet: run `npm install` (or `npm run build`) in the opsctl directory first.\n');
    process.exit(2);
  }
  launch(dist, entry);
}

/**
 * Runs the bundle from V8's code cache written by the build: compiling it from source is most of
 * opsctl's start-up above `node -e 0` (bench/). A cache that does not match (another build,
 * another Node, other V8 flags) is ignored and the bundle compiles from source, exactly as
 * `require` would. The bundle holds opsctl's code and commander; the packages it loads (pg,
 * zod, the AWS SDK, chalk, …) come from node_modules through the usual `require` and `import()`.
 */
function launch(dist, entry) {
  const vm = require('node:vm');
  const Module = require('node:module');
  const v8 = require('node:v8');
  const writeCache = process.env.OPSCTL_WRITE_CODE_CACHE === '1';
  const debug = !writeCache && process.env.OPSCTL_DEBUG_CODE_CACHE;

  // Keep V8's young generation at its initial size: a million-row listing otherwise grows it
  // (and RSS by ~30 MB) though the live heap stays flat. V8 reads it at each resize, so it is
  // set in-process: no re-exec, no NODE_OPTIONS. AWS commands give the growth back (src/aws.ts).
  // Set before the bundle compiles: V8 accepts a code cache only under the flags it was written with.
  v8.setFlagsFromString('--semi-space-growth-factor=1');

  const source = readFileSync(entry, 'utf8');
  const buildId = source.slice(0, source.indexOf('\n'));
  const cacheFile = `${entry}.cache`;
  let cachedData;
  let state = 'absent';
  if (!writeCache) {
    try {
      const cache = readFileSync(cacheFile);
      const header = cache.indexOf(10);
      if (header > 0 && cache.toString('latin1', 0, header) === buildId) cachedData = cache.subarray(header + 1);
      else state = 'of another build';
    } catch {
      // No cache: compile from source.
    }
  }
  const script = new vm.Script(
    `(function (exports, require, module, __filename, __dirname, __opsctlDynamicImport) {${source}\n})`,
    { filename: entry, cachedData },
  );
  if (writeCache) {
    // The build's one run (scripts/bundle.mjs): written at exit, once src/main.ts has built
    // every command's tree, so that the cache holds the functions --help runs.
    process.once('exit', () => {
      // V8 stamps a cache with the flags at the time it is written: those it was compiled under.
      v8.setFlagsFromString('--semi-space-growth-factor=1');
      require('node:fs').writeFileSync(cacheFile, Buffer.concat([Buffer.from(`${buildId}\n`, 'latin1'), script.createCachedData()]));
    });
  } else if (debug) {
    if (cachedData !== undefined) state = script.cachedDataRejected ? 'rejected by V8' : 'used';
    process.stderr.write(`opsctl: code cache ${state}\n`);
  }
  const mod = new Module(entry, module);
  mod.filename = entry;
  mod.paths = Module._nodeModulePaths(dist);
  // V8 cannot run import() from a vm.Script on Node 20 without an experimental hook: the
  // bundle's dynamic imports come here (scripts/bundle.mjs rewrites them).
  const dynamicImport = (specifier) => import(specifier);
  script.runInThisContext().call(mod.exports, mod.exports, Module.createRequire(entry), mod, entry, dist, dynamicImport);
}
