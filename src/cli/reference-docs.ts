import { PassThrough, Readable } from 'node:stream';
import type { Argument, Command, Option } from 'commander';
import { buildProgram, VERSION } from './cli.js';

/**
 * The command reference (docs/reference/*.md and the man page opsctl.1), generated from the
 * commander tree itself so it cannot drift from what `--help` says. Not part of the bundle:
 * scripts/reference.mjs runs it from dist/, test/reference.test.ts from src/.
 *
 * Deterministic by construction: no clock, no paths, help rendered through io.helpOut (which
 * buildProgram fixes at 80 columns and no colour), an empty environment.
 */

/** Exit codes, as src/errors.ts defines them and the root help summarises them. */
export const EXIT_CODES: Array<[number, string]> = [
  [0, 'ok: nothing found, or every item done'],
  [1, 'findings (check, list commands), or some items failed'],
  [2, 'usage or configuration error (nothing changed)'],
  [3, 'a dependency (PostgreSQL, AWS) unreachable or refused, or another opsctl holds the lock'],
  [4, 'an internal error (a bug in opsctl)'],
  [5, '--apply not confirmed (nothing changed)'],
  [130, 'interrupted (Ctrl-C)'],
];

interface Node {
  cmd: Command;
  /** ["propagations", "retry"]; [] for the root. */
  path: string[];
  /** Everything --help prints after the generated part (the Examples and notes). */
  after: string;
}

const visible = (c: Command) => c.commands.filter((s) => s.name() !== 'help' && !(s as unknown as { _hidden?: boolean })._hidden);
const shownOptions = (c: Command) => (c.options as readonly Option[]).filter((o) => !o.hidden);

/** Builds the whole tree with help captured in memory (nothing reaches the process's stdout). */
export async function loadTree(): Promise<Node[]> {
  let sink = '';
  const io = { stdout: new PassThrough(), stderr: new PassThrough(), stdin: Readable.from([]), env: {}, cwd: '/', helpOut: { write: (s: string) => void (sink += s) } };
  const program = await buildProgram(io, () => {}, 'all');
  const out: Node[] = [];
  const walk = (cmd: Command, path: string[]) => {
    sink = '';
    cmd.outputHelp();
    const generated = cmd.helpInformation();
    // outputHelp = helpInformation + the addHelpText('after') listeners' output.
    if (!sink.startsWith(generated)) throw new Error(`opsctl ${path.join(' ')}: help does not start with its generated part`);
    out.push({ cmd, path, after: sink.slice(generated.length).replace(/^\n+/, '').replace(/\s+$/, '') });
    for (const c of visible(cmd)) walk(c, [...path, c.name()]);
  };
  walk(program, []);
  return out;
}

const synopsis = (n: Node) => ['opsctl', ...n.path, n.cmd.usage()].join(' ');
const defaultOf = (o: Option | Argument): string | undefined =>
  o.defaultValueDescription ?? (o.defaultValue === undefined ? undefined : typeof o.defaultValue === 'string' ? o.defaultValue : JSON.stringify(o.defaultValue));
const argName = (a: Argument) => (a.required ? `<${a.name()}${a.variadic ? '...' : ''}>` : `[${a.name()}${a.variadic ? '...' : ''}]`);
const pageName = (top: string) => `opsctl-${top}.md`;

// ---------------------------------------------------------------- markdown

/** Markdown text outside code spans: `<` would open HTML, `|` would split a table cell. */
const md = (s: string) =>
  s
    .split(/(`[^`]*`)/)
    .map((part, i) => (i % 2 ? part : part.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\*/g, '\\*')))
    .join('')
    .replace(/\|/g, '\\|')
    .replace(/\n/g, ' ');
const code = (s: string) => (s.includes('`') ? `\`\` ${s} \`\`` : `\`${s}\``);
/** The after-help text under an "Examples" heading: its own "Examples:" label would repeat it. */
const withoutLabel = (after: string) => after.replace(/^Examples:\n/, '');
const anchor = (path: string[]) => `opsctl-${path.join('-')}`;

/** An options table; the Default column (commander's defaultValue) only when some option has one. */
function mdOptions(options: readonly Option[]): string[] {
  if (!options.length) return [];
  if (options.every((o) => defaultOf(o) === undefined)) return ['| Option | Description |', '| --- | --- |', ...options.map((o) => `| ${code(o.flags)} | ${md(o.description)} |`)];
  return ['| Option | Description | Default |', '| --- | --- | --- |', ...options.map((o) => `| ${code(o.flags)} | ${md(o.description)} | ${defaultOf(o) === undefined ? '' : code(defaultOf(o)!)} |`)];
}

function mdSection(n: Node, level: number): string[] {
  const h = '#'.repeat(Math.min(level, 6));
  const lines = [`${h} opsctl ${n.path.join(' ')}`, '', md(n.cmd.description()), '', '```text', synopsis(n), '```', ''];
  if (n.cmd.aliases().length) lines.push(`Aliases: ${n.cmd.aliases().map(code).join(', ')}`, '');
  const args = n.cmd.registeredArguments;
  if (args.length) {
    const defaults = args.some((a) => defaultOf(a) !== undefined);
    lines.push(`${h}# Arguments`, '', defaults ? '| Argument | Description | Default |' : '| Argument | Description |', defaults ? '| --- | --- | --- |' : '| --- | --- |');
    for (const a of args) lines.push(`| ${code(argName(a))} | ${md(a.description)} |${defaults ? ` ${defaultOf(a) === undefined ? '' : code(defaultOf(a)!)} |` : ''}`);
    lines.push('');
  }
  const options = shownOptions(n.cmd);
  if (options.length) lines.push(`${h}# Options`, '', ...mdOptions(options), '', 'And the [global options](README.md#global-options).', '');
  const subs = visible(n.cmd);
  if (subs.length) {
    lines.push(`${h}# Subcommands`, '');
    for (const s of subs) lines.push(`- [${code(`opsctl ${[...n.path, s.name()].join(' ')}`)}](#${anchor([...n.path, s.name()])}): ${md(s.description())}`);
    lines.push('');
  }
  if (n.after) lines.push(`${h}# Examples`, '', '```text', withoutLabel(n.after), '```', '');
  return lines;
}

/** The markdown pages: file name (relative to docs/reference) → content. */
export function markdownPages(tree: Node[]): Map<string, string> {
  const pages = new Map<string, string>();
  const root = tree.find((n) => n.path.length === 0)!;
  const tops = tree.filter((n) => n.path.length === 1);
  const banner = '<!-- Generated from the CLI by `npm run reference`: do not edit by hand. -->';
  for (const top of tops) {
    const lines = [banner, ''];
    for (const n of tree.filter((m) => m.path[0] === top.path[0])) lines.push(...mdSection(n, n.path.length));
    lines.push('[All commands](README.md)', '');
    pages.set(pageName(top.path[0]!), lines.join('\n'));
  }
  const index = [
    banner,
    '',
    '# opsctl command reference',
    '',
    md(root.cmd.description()),
    '',
    '```text',
    synopsis(root).replace('[options] [command]', '[global options] <command> [options]'),
    '```',
    '',
    `Version ${VERSION}. Every command's page: synopsis, arguments, options with their defaults, subcommands, examples. The same reference is the man page \`opsctl.1\` (\`man opsctl\` once installed).`,
    '',
    '## Commands',
    '',
    '| Command | Description |',
    '| --- | --- |',
    ...tops.map((t) => `| [${code(`opsctl ${t.path[0]}`)}](${pageName(t.path[0]!)}) | ${md(t.cmd.description())} |`),
    '',
    '## Global options',
    '',
    'Accepted before or after the command.',
    '',
    ...mdOptions(shownOptions(root.cmd)),
    '',
    '## Exit codes',
    '',
    '| Code | Meaning |',
    '| --- | --- |',
    ...EXIT_CODES.map(([c, m]) => `| ${c} | ${md(m)} |`),
    '',
    '## Examples',
    '',
    '```text',
    withoutLabel(root.after),
    '```',
    '',
  ];
  pages.set('README.md', index.join('\n'));
  return pages;
}

// ---------------------------------------------------------------- man page

/**
 * roff text: backslash as \e, every hyphen as \- (a minus, so it copies and searches as one),
 * non-ASCII as \[uXXXX] (groff and mandoc read it whatever the input encoding), and a line
 * that would start with a control character (. or ') guarded by \&.
 */
export const roff = (s: string) =>
  s
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .replace(/[^\x00-\x7f]/gu, (c) => `\\[u${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}]`)
    .split('\n')
    .map((l) => (/^[.']/.test(l) ? `\\&${l}` : l))
    .join('\n');

/** The macros the man page uses (the test checks every control line against this list). */
export const MAN_MACROS = ['.TH', '.nh', '.ad', '.SH', '.SS', '.PP', '.TP', '.IP', '.RS', '.RE', '.nf', '.fi', '.B', '.I'];

const manOptions = (options: readonly Option[]): string[] =>
  options.flatMap((o) => ['.TP', `.B ${roff(o.flags)}`, roff(o.description + (defaultOf(o) === undefined ? '' : ` (default: ${defaultOf(o)})`))]);

const manLiteral = (text: string): string[] => ['.nf', '.RS 4', roff(text), '.RE', '.fi'];

export function manPage(tree: Node[]): string {
  const root = tree.find((n) => n.path.length === 0)!;
  const [first, ...rest] = root.cmd.description().split('\n');
  const lines = [
    `.\\" Generated from the CLI by \`npm run reference\`: do not edit by hand.`,
    `.TH OPSCTL 1 "" "opsctl ${roff(VERSION)}" "User Commands"`,
    // Option names and config keys (executions.stuckStatuses) must not be hyphenated or stretched.
    '.nh',
    '.ad l',
    '.SH NAME',
    `opsctl \\- ${roff(first!.replace(/\.$/, '').replace(/^T/, 't'))}`,
    '.SH SYNOPSIS',
    '.B opsctl',
    '[\\fIglobal options\\fR] \\fIcommand\\fR [\\fIsubcommand\\fR] [\\fIoptions\\fR] [\\fIarguments\\fR]',
    '.SH DESCRIPTION',
    roff([first, ...rest].join('\n')),
    '.PP',
    `Every command and subcommand follows, with its synopsis, arguments, options and examples; \\fBopsctl \\fIcommand\\fB \\-\\-help\\fR prints the same.`,
    '.SH COMMANDS',
  ];
  for (const n of tree.filter((m) => m.path.length > 0)) {
    lines.push(`.SS ${roff(`opsctl ${n.path.join(' ')}`)}`, roff(n.cmd.description()), '.PP', ...manLiteral(synopsis(n)));
    const args = n.cmd.registeredArguments;
    if (args.length) {
      lines.push('.PP', 'Arguments:', '.RS 4');
      for (const a of args) lines.push('.TP', `.I ${roff(argName(a))}`, roff(a.description + (defaultOf(a) === undefined ? '' : ` (default: ${defaultOf(a)})`)));
      lines.push('.RE');
    }
    const options = shownOptions(n.cmd);
    if (options.length) lines.push('.PP', 'Options:', '.RS 4', ...manOptions(options), '.RE');
    const subs = visible(n.cmd);
    if (subs.length) lines.push('.PP', `Subcommands: ${roff(subs.map((s) => s.name()).join(', '))}.`);
    if (n.after) lines.push('.PP', ...manLiteral(n.after));
  }
  lines.push(
    '.SH GLOBAL OPTIONS',
    'Accepted before or after the command.',
    ...manOptions(shownOptions(root.cmd)),
    '.TP',
    `.B ${roff('-h, --help')}`,
    'display help for the command',
    '.SH EXIT STATUS',
    ...EXIT_CODES.flatMap(([c, m]) => ['.TP', `.B ${c}`, roff(m)]),
    '.SH EXAMPLES',
    ...manLiteral(root.after),
    '.SH SEE ALSO',
    roff('opsctl <command> --help; the same reference in markdown: docs/reference/README.md in opsctl\'s source.'),
    '',
  );
  return lines.join('\n');
}

/** Every generated file, relative to the package root → content. */
export async function referenceFiles(): Promise<Map<string, string>> {
  const tree = await loadTree();
  const files = new Map<string, string>();
  for (const [name, text] of markdownPages(tree)) files.set(`docs/reference/${name}`, text);
  files.set('opsctl.1', manPage(tree));
  return files;
}
