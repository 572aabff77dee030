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
  const dist = join(__dirname, '..', 'dist');
  const entry = join(dist, 'opsctl.cjs');
  if (!existsSync(entry)) {
    process.stderr.write('opsctl: not built yet: run `npm install` (or `npm run build`) in the opsctl directory first.\n');
    process.exit(2);
  }
  launch(dist, entry);
}

/**
 * Runs the bundle, and the heavy libraries it loads lazily (pg, zod, the AWS SDK: bundled into
 * dist/vendor/ by the build), from V8's code cache written by the build: compiling them from
 * source is most of opsctl's start-up above `node -e 0` (bench/). A cache that does not match
 * (another build, another Node, other V8 flags) is ignored and the code compiles from source,
 * exactly as `require` would.
 */
function launch(dist, entry) {
  const vm = require('node:vm');
  const Module = require('node:module');
  const v8 = require('node:v8');
  const writeCaches = process.env.OPSCTL_WRITE_CODE_CACHE === '1';
  const debug = !writeCaches && process.env.OPSCTL_DEBUG_CODE_CACHE;

  // Keep V8's young generation at its initial size: a million-row listing otherwise grows it
  // (and RSS by ~30 MB) though the live heap stays flat. V8 reads it at each resize, so it is
  // set in-process: no re-exec, no NODE_OPTIONS. AWS commands give the growth back (src/aws.ts).
  // Every script compiles under growth 1, the flags its code cache was written with.
  let growth = 1;
  v8.setFlagsFromString('--semi-space-growth-factor=1');

  /** Compiles and runs one CommonJS file from its code cache; returns its exports. */
  function run(file, name, extra) {
    const source = readFileSync(file, 'utf8');
    const buildId = source.slice(0, source.indexOf('\n'));
    const cacheFile = `${file}.cache`;
    let cachedData;
    let state = 'absent';
    if (!writeCaches) {
      try {
        const cache = readFileSync(cacheFile);
        const header = cache.indexOf(10);
        if (header > 0 && cache.toString('latin1', 0, header) === buildId) cachedData = cache.subarray(header + 1);
        else state = 'of another build';
      } catch {
        // No cache: compile from source.
      }
    }
    if (growth !== 1) v8.setFlagsFromString('--semi-space-growth-factor=1');
    const script = new vm.Script(
      `(function (exports, require, module, __filename, __dirname, __opsctlDynamicImport) {${source}\n})`,
      { filename: file, cachedData },
    );
    if (growth !== 1) v8.setFlagsFromString(`--semi-space-growth-factor=${growth}`);
    if (writeCaches) {
      process.once('exit', () => {
        // V8 stamps a cache with the flags at the time it is written: those it was compiled under.
        v8.setFlagsFromString('--semi-space-growth-factor=1');
        require('node:fs').writeFileSync(cacheFile, Buffer.concat([Buffer.from(`${buildId}\n`, 'latin1'), script.createCachedData()]));
      });
    } else if (debug) {
      if (cachedData !== undefined) state = script.cachedDataRejected ? 'rejected by V8' : 'used';
      process.stderr.write(`opsctl: code cache ${state}${name ? ` (${name})` : ''}\n`);
    }
    const mod = new Module(file, module);
    mod.filename = file;
    mod.paths = Module._nodeModulePaths(dirname(file));
    const req = Module.createRequire(file);
    script.runInThisContext().call(mod.exports, mod.exports, extra ? extra.require(req) : req, mod, file, dirname(file), extra && extra.dynamicImport);
    return mod.exports;
  }

  // The libraries the build bundled into dist/vendor/ (its index: package name → file).
  let vendorIndex;
  const vendored = (name) => {
    vendorIndex ??= (() => {
      try {
        return JSON.parse(readFileSync(join(dist, 'vendor', 'index.json'), 'utf8'));
      } catch {
        return {};
      }
    })();
    return Object.prototype.hasOwnProperty.call(vendorIndex, name) ? join(dist, 'vendor', vendorIndex[name]) : undefined;
  };
  const loaded = new Map();
  const loadVendor = (name, file) => {
    if (!loaded.has(name)) {
      loaded.set(name, run(file, name));
      // See src/aws.ts: SDK calls allocate a lot; the young generation may grow again.
      if (name.startsWith('@aws-sdk/')) v8.setFlagsFromString(`--semi-space-growth-factor=${(growth = 2)}`);
    }
    return loaded.get(name);
  };
  const isPackage = (id) => !id.startsWith('node:') && !id.startsWith('.') && !id.startsWith('/');
  const extra = {
    // require('zod') from the bundle: the vendored copy; anything else as usual.
    require: (req) => {
      const wrapped = (id) => {
        const file = isPackage(id) && vendored(id);
        return file ? loadVendor(id, file) : req(id);
      };
      return Object.assign(wrapped, req);
    },
    // V8 cannot run import() from a vm.Script on Node 20 without an experimental hook: the
    // bundle's dynamic imports come here (scripts/bundle.mjs rewrites them).
    dynamicImport: (specifier) => {
      const file = typeof specifier === 'string' && isPackage(specifier) && vendored(specifier);
      if (!file) return import(specifier);
      try {
        const exports = loadVendor(specifier, file);
        return Promise.resolve(Object.assign({}, exports, { default: exports }));
      } catch (e) {
        return Promise.reject(e);
      }
    },
  };
  if (writeCaches) {
    // The build's one run (scripts/bundle.mjs): compile every vendored library too, so that
    // each gets its cache, and let src/main.ts build every command's tree.
    for (const name of Object.keys(JSON.parse(readFileSync(join(dist, 'vendor', 'index.json'), 'utf8')))) loadVendor(name, vendored(name));
  }
  run(entry, undefined, extra);
}
