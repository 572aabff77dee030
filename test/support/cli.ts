import { PassThrough, Readable } from 'node:stream';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runCli } from '../../src/cli/cli.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  json: () => any;
}

const collect = () => {
  const s = new PassThrough();
  const chunks: Buffer[] = [];
  s.on('data', (c) => chunks.push(Buffer.from(c)));
  return { stream: s, text: () => Buffer.concat(chunks).toString('utf8') };
};

/** Runs the CLI in-process with captured streams and a given environment (not process.env). */
export async function cli(args: string[], env: NodeJS.ProcessEnv = {}, opts: { cwd?: string } = {}): Promise<CliResult> {
  const out = collect();
  const err = collect();
  const code = await runCli(args, {
    stdout: out.stream,
    stderr: err.stream,
    stdin: Readable.from([]),
    // opsctl's state in the run's own directory (test/support/global-setup.ts), never the real home's.
    env: { PATH: process.env.PATH, XDG_STATE_HOME: process.env.XDG_STATE_HOME, ...env },
    cwd: opts.cwd ?? process.cwd(),
  });
  const stdout = out.text();
  return { code, stdout, stderr: err.text(), json: () => JSON.parse(stdout) };
}

export const BIN = fileURLToPath(new URL('../../bin/opsctl.cjs', import.meta.url));

/** Runs the built CLI as a subprocess, as a user would. */
export function cliProcess(args: string[], env: NodeJS.ProcessEnv = {}, opts: { cwd?: string } = {}): Promise<CliResult & { signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, XDG_STATE_HOME: process.env.XDG_STATE_HOME, ...env },
      cwd: opts.cwd ?? process.cwd(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    // Decoded across chunks: a "│" split between two reads must not become two U+FFFD.
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? -1, signal, stdout, stderr, json: () => JSON.parse(stdout) }));
  });
}

/** Any program as a subprocess, its output decoded as UTF-8 across chunks: the exit code and both streams. */
export function runProcess(cmd: string, args: string[], opts: { cwd?: string; env: NodeJS.ProcessEnv }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}
