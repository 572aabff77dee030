#!/usr/bin/env node
'use strict';
// Thin launcher for the bundled CLI, dist/opsctl.cjs (built by `npm install` via the prepare script).
const { existsSync, readFileSync } = require('node:fs');
const { dirname, join } = require('node:path');

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
  // Set before the bundle is compiled: V8 checks its flags against the code cache's.
  require('node:v8').setFlagsFromString('--semi-space-growth-factor=1');
  runBundle(entry);
}

/**
 * Runs the bundle from V8's code cache (dist/opsctl.cjs.cache, written by the build) when the
 * cache belongs to this very bundle: compiling 320 kB of JavaScript is about a third of
 * opsctl's start-up above `node -e 0` (bench/). A cache that does not match (another build,
 * another Node) is ignored and the bundle compiles from source, exactly as `require` would.
 * The bundle's `import()` calls go through __opsctlDynamicImport, because V8 cannot run a
 * dynamic import from a vm.Script without an experimental loader hook.
 */
function runBundle(entry) {
  const vm = require('node:vm');
  const Module = require('node:module');
  const source = readFileSync(entry, 'utf8');
  const buildId = source.slice(0, source.indexOf('\n'));
  const cacheFile = `${entry}.cache`;
  let cachedData;
  let cacheState = 'absent';
  try {
    const cache = readFileSync(cacheFile);
    const header = cache.indexOf(10);
    if (header > 0 && cache.toString('latin1', 0, header) === buildId) cachedData = cache.subarray(header + 1);
    else cacheState = 'of another build';
  } catch {
    // No cache: compile from source.
  }
  const script = new vm.Script(
    `(function (exports, require, module, __filename, __dirname, __opsctlDynamicImport) {${source}\n})`,
    { filename: entry, cachedData },
  );
  const bundle = new Module(entry, module);
  bundle.filename = entry;
  bundle.paths = Module._nodeModulePaths(dirname(entry));
  if (process.env.OPSCTL_WRITE_CODE_CACHE === cacheFile) {
    // The build runs one `--help` through here, so the cache holds the functions start-up runs.
    process.once('exit', () => {
      require('node:fs').writeFileSync(cacheFile, Buffer.concat([Buffer.from(`${buildId}\n`, 'latin1'), script.createCachedData()]));
    });
  } else if (process.env.OPSCTL_DEBUG_CODE_CACHE) {
    if (cachedData !== undefined) cacheState = script.cachedDataRejected ? 'rejected by V8' : 'used';
    process.stderr.write(`opsctl: code cache ${cacheState}\n`);
  }
  const run = script.runInThisContext();
  run.call(bundle.exports, bundle.exports, Module.createRequire(entry), bundle, entry, dirname(entry), (specifier) => import(specifier));
}
