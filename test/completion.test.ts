import { beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import type { Command } from 'commander';
import { buildProgram } from '../src/cli/cli.js';
import { completionTree } from '../src/commands/completion.js';
import { cliProcess } from './support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'opsctl-completion-'));
const scripts: Record<string, string> = {};

beforeAll(async () => {
  for (const shell of ['bash', 'zsh', 'fish']) {
    const r = await cliProcess(['completion', shell]);
    expect(r.code, shell).toBe(0);
    scripts[shell] = r.stdout;
    writeFileSync(join(dir, `opsctl.${shell}`), r.stdout);
  }
});

/** What the bash script offers for the words typed so far (the last one being completed), in a real bash. */
function complete(words: string[]): string[] {
  const arr = words.map((w) => `'${w}'`).join(' ');
  const out = execFileSync('bash', ['-c', `source ${join(dir, 'opsctl.bash')}; COMP_WORDS=(${arr}); COMP_CWORD=${words.length - 1}; _opsctl_complete; printf '%s\\n' "\${COMPREPLY[@]}"`], {
    encoding: 'utf8',
  });
  return out.split('\n').filter(Boolean).sort();
}

/** zsh and fish are Debian packages (.ci/run installs them): missing, the test says so instead of skipping. */
const need = (shell: string) => {
  if (spawnSync('sh', ['-c', `command -v ${shell}`]).status !== 0) throw new Error(`${shell} is not installed: apt-get install -y zsh fish (as .ci/run does)`);
};

describe('opsctl completion', () => {
  it('bash: commands, subcommands, flags and fixed values', () => {
    expect(complete(['opsctl', 're'])).toEqual(['reap', 'revert']);
    expect(complete(['opsctl', 'propagations', 're'])).toEqual(['retry']);
    expect(complete(['opsctl', 'jobs', ''])).toEqual(['discarded', 'rescue', 'retry', 'show', 'stuck']);
    expect(complete(['opsctl', 'propagations', 'retry', '--err'])).toEqual(['--error-class']);
    // A global flag after the command, and one before it does not hide the command.
    expect(complete(['opsctl', '-o', 'json', 'propagations', 'retry', '--all-t'])).toEqual(['--all-targets']);
    expect(complete(['opsctl', 'reap', '-o', ''])).toEqual(['json', 'markdown', 'ndjson', 'prometheus', 'table', 'wide']);
    expect(complete(['opsctl', '--output', 'n'])).toEqual(['ndjson']);
    expect(complete(['opsctl', 'schedule-groups', 'list', '--class', 'unowned,dr'])).toEqual(['unowned,drifted']);
    // A free-text value completes nothing (not a command name).
    expect(complete(['opsctl', 'jobs', 'retry', '--kind', ''])).toEqual([]);
  });

  it('the scripts are generated from the command tree: every command and flag is in each', async () => {
    const program: Command = await buildProgram({ stdout: new PassThrough(), stderr: new PassThrough(), stdin: Readable.from([]), env: {}, cwd: process.cwd() }, () => {}, 'all');
    const tree = completionTree(program);
    expect(tree.length).toBeGreaterThan(20);
    for (const node of tree) {
      for (const sub of node.subcommands) for (const shell of ['bash', 'zsh', 'fish']) expect(scripts[shell], `${shell}: ${node.path} ${sub}`).toContain(sub);
      for (const flag of node.flags) for (const shell of ['bash', 'zsh']) expect(scripts[shell], `${shell}: ${node.path} ${flag}`).toContain(flag);
      const words = node.path ? node.path.split(' ') : [];
      expect(complete(['opsctl', ...words, '--']).length, node.path).toBeGreaterThan(0);
    }
    expect(scripts.fish).toContain(`complete -c opsctl -n '__opsctl_at '\\''propagations retry'\\''' -l 'error-class' -x`);
  });

  it('zsh: the script parses (zsh -n)', () => {
    need('zsh');
    expect(spawnSync('zsh', ['-n', join(dir, 'opsctl.zsh')], { encoding: 'utf8' }).stderr).toBe('');
  });

  it('fish: the script parses (fish -n)', () => {
    need('fish');
    expect(spawnSync('fish', ['-n', join(dir, 'opsctl.fish')], { encoding: 'utf8' }).stderr).toBe('');
    const fish = (line: string) =>
      execFileSync('fish', ['-c', `source ${join(dir, 'opsctl.fish')}; complete -C '${line}'`], { encoding: 'utf8' })
        .split('\n')
        .map((l) => l.split('\t')[0])
        .filter(Boolean)
        .sort();
    expect(fish('opsctl propagations re')).toEqual(['retry']);
    expect(fish('opsctl reap -o ')).toEqual(['json', 'markdown', 'ndjson', 'prometheus', 'table', 'wide']);
    expect(fish('opsctl jobs retry --err')).toEqual(['--error-class']);
  });

  it('an unknown shell is exit 2 with a sentence', async () => {
    const r = await cliProcess(['completion', 'tcsh']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('opsctl: completion: "tcsh" is not a supported shell: use one of bash, zsh, fish.\n');
  });
});

describe('opsctl completion at a real terminal', () => {
  it('bash: Tab completes a subcommand and a -o value on the command line', async () => {
    const { spawn } = await import('node:child_process');
    const { BIN } = await import('./support/cli.js');
    // `opsctl` on PATH as a person has it, and an interactive bash in a pseudo-terminal (script).
    const bin = mkdtempSync(join(tmpdir(), 'opsctl-completion-bin-'));
    writeFileSync(join(bin, 'opsctl'), `#!/bin/sh\nexec '${process.execPath}' '${BIN}' "$@"\n`, { mode: 0o755 });
    const child = spawn('script', ['-qefc', 'bash --norc --noprofile -i', '/dev/null'], {
      env: { PATH: `${bin}:${process.env.PATH}`, HOME: dir, TERM: 'xterm', PS1: '$ ' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    const seen = (re: RegExp) =>
      new Promise<void>((resolve, reject) => {
        const guard = setTimeout(() => reject(new Error(`not seen ${re}: ${JSON.stringify(out.slice(-400))}`)), 20_000);
        const check = () => {
          if (re.test(out)) {
            clearTimeout(guard);
            child.stdout.off('data', check);
            resolve();
          }
        };
        child.stdout.on('data', check);
        check();
      });
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    try {
      child.stdin.write(`source <(opsctl completion bash); echo READY\n`);
      await seen(/^READY/m);
      // Typed, completed by Tab, never run: the line is killed (Ctrl-U) at the end.
      child.stdin.write('opsctl propagations ret\t');
      await seen(/opsctl propagations retry /);
      child.stdin.write('-o nd\t');
      await seen(/-o ndjson/);
      child.stdin.write('\u0015');
    } finally {
      child.stdin.write('exit\n');
      child.kill();
    }
  });
});
