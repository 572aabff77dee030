// Regenerates the command reference (docs/reference/*.md) and the man page (opsctl.1) from the
// built CLI's command tree (`npm run reference` builds first). test/reference.test.ts fails
// when the committed files differ from what this writes.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { referenceFiles } from '../dist/cli/reference-docs.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const files = await referenceFiles();
// A page of a removed command must go too: docs/reference holds only generated pages.
const dir = join(ROOT, 'docs/reference');
mkdirSync(dir, { recursive: true });
for (const f of readdirSync(dir)) if (!files.has(`docs/reference/${f}`)) rmSync(join(dir, f));
for (const [path, text] of files) {
  mkdirSync(dirname(join(ROOT, path)), { recursive: true });
  writeFileSync(join(ROOT, path), text);
}
console.log(`wrote ${[...files.keys()].join(', ')}`);
