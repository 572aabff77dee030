import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough, Readable } from 'node:stream';
import type { Command } from 'commander';
import { buildProgram } from '../src/cli/cli.js';

/**
 * Every opsctl command written in the README and docs/ (in code blocks) names a command that
 * exists and only flags that command (or the program) accepts: a renamed flag or command fails
 * the build. docs/reference/ is generated from the CLI itself (test/reference.test.ts).
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const pages = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** `opsctl …` at the start of a line, after a `$ ` prompt or `npx `: its words, up to a shell operator or comment. */
function invocations(markdown: string): string[][] {
  const out: string[][] = [];
  for (const block of markdown.matchAll(/```[^\n]*\n([\s\S]*?)```/g)) {
    for (const line of (block[1] as string).split('\n')) {
      const m = /(?:^|\$ |npx |[=(] *)opsctl((?:[ \t]+[^\s;|>&#)]+)+)/.exec(line.replace(/\\$/, ''));
      if (!m) continue;
      const words = (m[1] as string).trim().split(/[ \t]+/).map((w) => w.replace(/^["']|["']$/g, ''));
      if (words[0]?.startsWith('<')) continue; // "opsctl <command> --help"
      out.push(words);
    }
  }
  return out;
}

const optionsOf = (c: Command): string[] => c.options.flatMap((o) => [o.long, o.short].filter((x): x is string => Boolean(x))).concat(['--help', '-h']);

describe('commands in the README and docs/', async () => {
  const program = await buildProgram({ stdout: new PassThrough(), stderr: new PassThrough(), stdin: Readable.from([]), env: {}, cwd: ROOT }, () => {}, 'all');
  const globals = optionsOf(program).concat(['--no-color', '-V', '--version']);
  const valueGlobals = new Set(program.options.filter((o) => o.required || o.optional).flatMap((o) => [o.long, o.short].filter(Boolean) as string[]));

  for (const page of pages) {
    it(`${page}: every command exists and accepts its flags`, () => {
      const problems: string[] = [];
      for (const argv of invocations(readFileSync(join(ROOT, page), 'utf8'))) {
        let cmd: Command = program;
        const chain: Command[] = [program];
        for (let i = 0; i < argv.length; i++) {
          const w = argv[i] as string;
          if (w === '--') break;
          if (w.startsWith('-')) {
            const flag = w.split('=')[0] as string;
            // A group with a default subcommand (schedule-groups → list) hands it the flags.
            const fallback = (cmd as unknown as { _defaultCommandName?: string })._defaultCommandName;
            const dflt = fallback ? cmd.commands.find((c) => c.name() === fallback) : undefined;
            const known = chain.some((c) => optionsOf(c).includes(flag)) || globals.includes(flag) || Boolean(dflt && optionsOf(dflt).includes(flag));
            if (!known) problems.push(`${argv.join(' ')}: ${flag} is not a flag of "${chain.map((c) => c.name()).join(' ')}"`);
            if (valueGlobals.has(flag) && !w.includes('=') && cmd === program) i += 1; // a global's value, before the command
            continue;
          }
          const sub = cmd.commands.find((c) => c.name() === w || c.aliases().includes(w));
          if (sub) {
            cmd = sub;
            chain.push(sub);
          } else if (cmd === program) {
            problems.push(`${argv.join(' ')}: no command "${w}"`);
            break;
          }
        }
      }
      expect(problems).toEqual([]);
    });
  }

  it('finds the commands it checks', () => {
    const all = pages.flatMap((p) => invocations(readFileSync(join(ROOT, p), 'utf8')));
    expect(all.length).toBeGreaterThan(50);
  });
});
