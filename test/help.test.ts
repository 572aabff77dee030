import { beforeAll, describe, expect, it } from 'vitest';
import { PassThrough, Readable } from 'node:stream';
import type { Command } from 'commander';
import { buildProgram } from '../src/cli/cli.js';
import { cli } from './support/cli.js';

/** Every leaf command of the real program, as its argv path. */
function leaves(cmd: Command, path: string[] = []): string[][] {
  const subs = cmd.commands.filter((c) => c.name() !== 'help');
  if (subs.length === 0) return [path];
  return subs.flatMap((c) => leaves(c, [...path, c.name()]));
}

/** Every command and group of the real program (not the root), as its argv path. */
function everyCommand(cmd: Command, path: string[] = []): string[][] {
  return cmd.commands.filter((c) => c.name() !== 'help').flatMap((c) => [[...path, c.name()], ...everyCommand(c, [...path, c.name()])]);
}

describe('--help', () => {
  let paths: string[][] = [];
  let all: string[][] = [];
  beforeAll(async () => {
    const program = await buildProgram({ stdout: new PassThrough(), stderr: new PassThrough(), stdin: Readable.from([]), env: {}, cwd: process.cwd() }, () => {}, 'all');
    paths = leaves(program);
    all = everyCommand(program);
  });

  it('every command and every group: --help has an Examples section that runs it', async () => {
    const missing: string[] = [];
    for (const path of all) {
      const r = await cli([...path, '--help']);
      if (r.code !== 0 || !r.stdout.includes('\nExamples:\n') || !r.stdout.includes(`opsctl ${path.join(" ")}`)) missing.push(path.join(' '));
    }
    expect(all.length).toBeGreaterThan(paths.length);
    expect(missing).toEqual([]);
  });

  it('finds every command', () => {
    expect(paths.length).toBeGreaterThanOrEqual(15);
  });

  it('every leaf command: --help exits 0 and shows examples', async () => {
    for (const path of paths) {
      const r = await cli([...path, '--help']);
      expect(r.code, path.join(' ')).toBe(0);
      expect(r.stdout, path.join(' ')).toContain('Examples:');
      expect(r.stdout, path.join(' ')).toContain(`opsctl ${path.join(' ')}`);
    }
  });

  it('the root help lists every command with the same description as its own help', async () => {
    const root = await cli(['--help']);
    const { COMMAND_INDEX } = await import('../src/commands/index.js');
    for (const c of COMMAND_INDEX) {
      expect(root.stdout).toContain(c.name);
      const own = await cli([c.name, '--help']);
      expect(own.stdout.replace(/\s+/g, ' ')).toContain(c.description);
    }
  });
});

describe('--version', () => {
  it('the CLI and the launcher report package.json version', async () => {
    const { readFileSync } = await import('node:fs');
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    const r = await cli(['--version']);
    expect(r.stdout.trim()).toBe(pkg.version);
    const { cliProcess } = await import('./support/cli.js');
    expect((await cliProcess(['--version'])).stdout.trim()).toBe(pkg.version);
    expect((await cliProcess(['-o', 'json', '--version'])).stdout.trim()).toBe(pkg.version);
  });
});
