import { describe, expect, it } from 'vitest';
import { PassThrough, Readable } from 'node:stream';
import type { Command } from 'commander';
import { buildProgram } from '../src/cli.js';
import { cli } from './support/cli.js';

/** Every leaf command of the real program, as its argv path. */
function leaves(cmd: Command, path: string[] = []): string[][] {
  const subs = cmd.commands.filter((c) => c.name() !== 'help');
  if (subs.length === 0) return [path];
  return subs.flatMap((c) => leaves(c, [...path, c.name()]));
}

describe('--help', () => {
  const program = buildProgram({ stdout: new PassThrough(), stderr: new PassThrough(), stdin: Readable.from([]), env: {}, cwd: process.cwd() }, () => {});
  const paths = leaves(program);

  it('finds every command', () => {
    expect(paths.length).toBeGreaterThanOrEqual(15);
  });

  it.each(paths.map((p) => [p.join(' ')]))('opsctl %s --help exits 0 and shows examples', async (path) => {
    const r = await cli([...path.split(' '), '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Examples:');
    expect(r.stdout).toContain(`opsctl ${path}`);
  });
});
