import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { BIN, cliProcess } from '../support/cli.js';

// Each demo gets a private TMPDIR (reachable by the postgres user): "nothing left behind" is
// checked there, where no other test or process writes; the binaries' cache stays shared.
let scratch: string;
const demoEnv = () => ({ PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: scratch, OPSCTL_EMBEDDED_PG_CACHE: tmpdir() });
const demoDirs = () => readdirSync(scratch).sort();
const demoPostgres = () => {
  try {
    return execFileSync('pgrep', ['-f', scratch], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
};

describe('opsctl demo', () => {
  beforeEach(() => {
    scratch = mkdtempSync(join(tmpdir(), 'opsctl-scratch-'));
    chmodSync(scratch, 0o755);
  });
  afterEach(() => rmSync(scratch, { recursive: true, force: true }));

  it('starts, runs check and the dry-run plans, and shuts down leaving nothing behind', async () => {
    const r = await cliProcess(['demo', '--no-color'], demoEnv());
    expect(r.stderr).toContain('Demo stopped');
    expect(r.code).toBe(0);
    for (const cmd of ['$ opsctl check', '$ opsctl reap --older-than 10m', '$ opsctl propagations retry --all', '$ opsctl adopt schedule-group --all-unowned', '$ opsctl jobs rescue']) {
      expect(r.stdout).toContain(cmd);
    }
    expect(r.stdout).toMatch(/stuck-executions\s+│ finding/);
    expect(r.stdout).toContain('refused'); // the unknown kind
    expect(r.stdout).toContain('billing-invoices'); // an unowned group
    expect(r.stdout).toMatch(/stuck-jobs\s+│ finding/); // River jobs stuck running
    for (const cmd of ['$ opsctl workers dead', '$ opsctl reap --dead-workers']) expect(r.stdout).toContain(cmd);
    expect(r.stdout).toMatch(/dead-workers\s+│ finding/); // worker-a1 silent for 25m, holding 2 runs
    expect(r.stdout).toContain('worker-a1');
    expect(r.stdout).not.toContain('worker-b2'); // heartbeating: never listed
    expect(r.stdout).not.toMatch(/\u001b\[/);
    expect(demoDirs()).toEqual([]);
    expect(demoPostgres()).toEqual([]);
  });

  it('--keep leaves both running with usable environment lines; Ctrl-C removes everything', async () => {
    const child = spawn(process.execPath, [BIN, 'demo', '--keep', '--no-color'], { stdio: ['ignore', 'pipe', 'pipe'], env: demoEnv() });
    let out = '';
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    await new Promise<void>((resolve, reject) => {
      child.stdout.setEncoding('utf8').on('data', (d) => {
        out += d;
        if (out.includes('Press Ctrl-C')) resolve();
      });
      child.on('exit', () => reject(new Error(`demo exited early: ${err}`)));
    });
    const url = /export DATABASE_URL=(\S+)/.exec(out)![1];
    const cfg = /export OPSCTL_CONFIG=(\S+)/.exec(out)![1];
    const endpoint = /export AWS_ENDPOINT_URL_SCHEDULER=(\S+)/.exec(out)![1];
    const env = { DATABASE_URL: url, OPSCTL_CONFIG: cfg, AWS_ENDPOINT_URL_SCHEDULER: endpoint, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'demo', AWS_SECRET_ACCESS_KEY: 'demo' };
    const reap = await cliProcess(['reap', '--apply', '-o', 'json'], env);
    expect(reap.code).toBe(0);
    expect(reap.json().summary.reaped).toBe(4);
    const groups = await cliProcess(['schedule-groups', '-o', 'json'], env);
    expect(groups.json().summary.unowned).toBe(2);

    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(err).toContain('Demo stopped');
    expect(existsSync(dirname(cfg))).toBe(false);
    expect(demoPostgres()).toEqual([]);
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
    await expect(c.connect()).rejects.toThrow();
  });

  it.each([
    ['its stdout pipe is closed early (| head)', (child: ReturnType<typeof spawn>) => child.stdout!.destroy()],
    ['it gets SIGTERM mid-run', (child: ReturnType<typeof spawn>) => child.kill('SIGTERM')],
  ])('leaves no PostgreSQL or files behind when %s', async (_what, interrupt) => {
    const child = spawn(process.execPath, [BIN, 'demo', '--no-color'], { stdio: ['ignore', 'pipe', 'pipe'], env: demoEnv() });
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    // Interrupt once the demo is running (its first step is on stdout).
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    interrupt(child);
    await exited;
    // The postmaster gets SIGQUIT on exit; give it a bounded number of polls to be gone.
    for (let i = 0; i < 100 && demoPostgres().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(demoPostgres()).toEqual([]);
    expect(demoDirs()).toEqual([]);
  });
});
