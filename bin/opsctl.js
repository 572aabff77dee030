#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (built by `npm install` via the prepare script).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('opsctl: not built yet: run `npm install` (or `npm run build`) in the opsctl directory first.\n');
  process.exit(2);
}
await import(entry.href);
