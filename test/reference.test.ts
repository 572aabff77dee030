import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough, Readable } from 'node:stream';
import type { Command } from 'commander';
import { buildProgram } from '../src/cli/cli.js';
import { MAN_MACROS, referenceFiles, roff } from '../src/cli/reference-docs.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const STALE = 'the committed command reference differs from what the CLI says: run npm run reference (and commit docs/reference/ and opsctl.1)';

/** Every command and group of the real program (not the root), as its argv path. */
function everyCommand(cmd: Command, path: string[] = []): string[][] {
  return cmd.commands.filter((c) => c.name() !== 'help').flatMap((c) => [[...path, c.name()], ...everyCommand(c, [...path, c.name()])]);
}

let files: Map<string, string>;
let commands: string[][];
let program: Command;
beforeAll(async () => {
  files = await referenceFiles();
  program = await buildProgram({ stdout: new PassThrough(), stderr: new PassThrough(), stdin: Readable.from([]), env: {}, cwd: process.cwd() }, () => {}, 'all');
  commands = everyCommand(program);
});

describe('the command reference (docs/reference, opsctl.1)', () => {
  it('the committed files are what the CLI generates now', () => {
    const differ: string[] = [];
    for (const [path, text] of files) {
      const disk = join(ROOT, path);
      if (!existsSync(disk) || readFileSync(disk, 'utf8') !== text) differ.push(path);
    }
    // A page left behind by a removed or renamed command.
    for (const f of readdirSync(join(ROOT, 'docs/reference'))) if (!files.has(`docs/reference/${f}`)) differ.push(`docs/reference/${f} (not generated)`);
    expect(differ, STALE).toEqual([]);
  });

  it('is deterministic: a second generation is byte for byte the same, with no local path in it', async () => {
    const again = await referenceFiles();
    expect([...again]).toEqual([...files]);
    for (const [path, text] of files) expect(text, path).not.toContain(ROOT.replace(/\/$/, ''));
  });

  it('every command has a page (top-level) or a section on its page, with its synopsis and examples', () => {
    expect(commands.length).toBeGreaterThan(20);
    const index = files.get('docs/reference/README.md')!;
    for (const path of commands) {
      const page = files.get(`docs/reference/opsctl-${path[0]}.md`);
      expect(page, `no page for ${path[0]}`).toBeDefined();
      if (path.length === 1) expect(index, path[0]).toContain(`](opsctl-${path[0]}.md)`);
      // The section from its heading to the next command's heading.
      const heading = `${'#'.repeat(path.length)} opsctl ${path.join(' ')}\n`;
      const at = page!.indexOf(heading);
      expect(at, `no section for opsctl ${path.join(' ')}`).toBeGreaterThanOrEqual(0);
      const rest = page!.slice(at + heading.length);
      const next = rest.search(/^#{1,6} opsctl /m);
      const section = next < 0 ? rest : rest.slice(0, next);
      expect(section, path.join(' ')).toContain(`\`\`\`text\nopsctl ${path.join(' ')} `);
      expect(section, `opsctl ${path.join(' ')}: no examples`).toMatch(/^#+ Examples\n\n```text\n[\s\S]*\$ (npx )?opsctl /m);
    }
  });

  it('options with their defaults; the global options once, on the index', () => {
    const index = files.get('docs/reference/README.md')!;
    expect(index).toContain('| `-o, --output <format>` | output format: table (fitted to a terminal), wide (every column in full), json, ndjson (check also: markdown, prometheus) | `table` |');
    for (const o of program.options) expect(index, o.flags).toContain(`\`${o.flags}\``);
    const reap = files.get('docs/reference/opsctl-reap.md')!;
    expect(reap).toContain('| `--older-than <duration>` | threshold, e.g. 10m (default: executions.threshold) |');
    expect(reap).not.toContain('--database-url');
    for (const code of [0, 1, 2, 3, 4, 5, 130]) expect(index).toMatch(new RegExp(`^\\| ${code} \\| `, 'm'));
  });
});

describe('the man page opsctl.1', () => {
  const man = () => files.get('opsctl.1')!;
  const sections = () => man().split('\n').filter((l) => l.startsWith('.SH ')).map((l) => l.slice(4).replace(/"/g, ''));

  it('has the sections of a man page, in order', () => {
    expect(man()).toMatch(/^\.\\" .*\n\.TH OPSCTL 1 /);
    expect(sections()).toEqual(['NAME', 'SYNOPSIS', 'DESCRIPTION', 'COMMANDS', 'GLOBAL OPTIONS', 'EXIT STATUS', 'EXAMPLES', 'SEE ALSO']);
  });

  it('every control line is a known man(7) macro, and .nf/.fi and .RS/.RE pair up', () => {
    const lines = man().split('\n');
    const unknown = lines.filter((l) => /^[.']/.test(l) && !l.startsWith('.\\"') && !MAN_MACROS.includes(l.split(' ')[0]!));
    expect(unknown).toEqual([]);
    let fill = 0;
    let indent = 0;
    for (const l of lines) {
      fill += l === '.nf' ? 1 : l === '.fi' ? -1 : 0;
      indent += /^\.RS( |$)/.test(l) ? 1 : l === '.RE' ? -1 : 0;
      expect(fill === 0 || fill === 1, 'nested .nf').toBe(true);
      expect(indent).toBeGreaterThanOrEqual(0);
    }
    expect([fill, indent]).toEqual([0, 0]);
  });

  it('text is escaped: no bare hyphen, backslash or non-ASCII character', () => {
    const bad = man()
      .split('\n')
      .filter((l) => !l.startsWith('.\\"'))
      // Drop the macro name, then every escape (\-, \e, \&, \fB, \[u2013], \(en).
      .map((l) => l.replace(/^\.[A-Za-z]+ ?/, '').replace(/\\(\[[^\]]*\]|\(..|f.|.)/g, ''))
      .filter((l) => /[-\\]|[^\x00-\x7f]/.test(l));
    expect(bad).toEqual([]);
    expect(roff('.hidden -x \\n ≤')).toBe('\\&.hidden \\-x \\en \\[u2264]');
  });

  it('every command is under COMMANDS with its options', () => {
    const text = man();
    const body = text.slice(text.indexOf('.SH COMMANDS\n'), text.indexOf('.SH GLOBAL OPTIONS\n'));
    for (const path of commands) expect(body, path.join(' ')).toContain(`.SS ${roff(`opsctl ${path.join(' ')}`)}\n`);
    expect(body).toContain(`.B ${roff('--older-than <duration>')}\n`);
    const globals = text.slice(text.indexOf('.SH GLOBAL OPTIONS\n'), text.indexOf('.SH EXIT STATUS\n'));
    for (const o of program.options) expect(globals, o.flags).toContain(`.B ${roff(o.flags)}\n`);
  });

  it('is declared in package.json and shipped by npm pack', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.man).toBe('./opsctl.1');
    expect(pkg.files).toContain('opsctl.1');
    const pack = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
    expect(pack.status, pack.stderr).toBe(0);
    expect(JSON.parse(pack.stdout)[0].files.map((f: { path: string }) => f.path)).toContain('opsctl.1');
  });
});
