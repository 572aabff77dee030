// Bundles opsctl's own compiled code (dist/*.js from tsc) into one CommonJS file, dist/opsctl.cjs:
// start-up then reads one file instead of an ESM graph of dozens, from one code cache (below).
// No third-party source is patched, and each runtime dependency is installed once: every package
// but commander stays external and loads from node_modules where npm installed it. V8 compiles
// the bundle's functions lazily; the heavy libraries (pg, zod, the AWS SDK) are required only
// inside the commands that use them.
import { readFile, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';

const OUT = 'dist/opsctl.cjs';
// commander builds every command's tree on each start-up, --help included: bundled as published
// (hence a devDependency), it compiles from the bundle's code cache. Loaded from node_modules it
// cost ~20 ms more CPU per --help (bench/).
const BUNDLED = new Set(['commander']);
const packageName = (spec) => spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');
const externalPackages = {
  name: 'external-packages',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => (BUNDLED.has(packageName(args.path)) ? undefined : { path: args.path, external: true }));
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
  logLevel: 'warning',
  plugins: [externalPackages],
});

// The launcher runs the bundle from a vm.Script (for its code cache), where V8 cannot run
// import() on Node 20 without an experimental hook: every dynamic import goes through the
// function the launcher passes in instead. The first line names the build: the launcher uses
// a code cache only when its header matches.
function forLauncher(text) {
  let code = text.replace(/(?<![\w$.])import\(("([^"]+)")?/g, (_, literal, spec) => {
    if (spec !== undefined && (spec.startsWith('.') || spec.startsWith('/'))) throw new Error(`bundle: import("${spec}") of a file was left out of the bundle`);
    return `__opsctlDynamicImport(${literal ?? ''}`;
  });
  if (/(?<![\w$.])import\(/.test(code)) throw new Error('bundle: an import() is left that the launcher cannot run; rewrite it');
  // Outside the launcher (require('dist/opsctl.cjs')) there is no such parameter: plain import().
  code = `var __opsctlDynamicImport=typeof __opsctlDynamicImport==="function"?__opsctlDynamicImport:(s)=>import(s);${code}`;
  return `//opsctl-build:${createHash('sha256').update(code).digest('hex').slice(0, 32)}\n${code}`;
}
await writeFile(OUT, forLauncher(result.outputFiles[0].text));
// Its licence ships with the copy (minifying drops no notice: commander's files carry none).
await writeFile(`${OUT}.LICENSE.txt`, '');
for (const name of BUNDLED) {
  const licence = await readFile(`node_modules/${name}/LICENSE`, 'utf8');
  await writeFile(`${OUT}.LICENSE.txt`, `${name} (bundled into dist/opsctl.cjs)\n\n${licence.trimEnd()}\n\n`, { flag: 'a' });
}

// Earlier builds bundled pg, zod and the AWS SDK into dist/vendor/: never leave a stale copy.
await rm('dist/vendor', { recursive: true, force: true });

// The code cache: V8's compiled code for what `opsctl --help` runs (src/main.ts builds every
// command first), written by the launcher itself (same Node, same V8 flags) so that start-up
// accepts it.
await rm(`${OUT}.cache`, { force: true });
const warm = spawnSync(process.execPath, ['bin/opsctl.cjs', '--help'], { env: { ...process.env, OPSCTL_WRITE_CODE_CACHE: '1' }, encoding: 'utf8' });
if (warm.status !== 0) throw new Error(`bundle: writing the code cache failed: ${warm.stderr}`);
