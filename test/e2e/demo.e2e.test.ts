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
const demoEnv = () => ({ PATH: process.env.PATH, HOME: process.env.HOME, XDG_STATE_HOME: process.env.XDG_STATE_HOME, TMPDIR: scratch, OPSCTL_EMBEDDED_PG_CACHE: tmpdir() });
/** A bash in another directory, with nothing of opsctl on its PATH: what the reader's other shell is. */
function shellRun(script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { cwd: tmpdir(), env: { PATH: `${dirname(process.execPath)}:/usr/bin:/bin`, HOME: process.env.HOME, XDG_STATE_HOME: process.env.XDG_STATE_HOME }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
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
    // What the reader pastes into another shell: the export lines, then the printed command.
    const exports = out.split('\n').filter((l) => l.startsWith('export '));
    expect(exports.map((l) => /^export (\w+)=/.exec(l)![1])).toEqual(['DATABASE_URL', 'OPSCTL_CONFIG', 'AWS_ENDPOINT_URL_SCHEDULER', 'AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']);
    const command = out.split('\n')[out.split('\n').indexOf('then e.g.:') + 2];
    // This opsctl by its absolute path: `npx opsctl` outside the checkout fetches another package.
    expect(command).toBe(`${BIN} reap --apply`);
    const url = /export DATABASE_URL=(\S+)/.exec(out)![1];
    const cfg = /export OPSCTL_CONFIG=(\S+)/.exec(out)![1];
    const endpoint = /export AWS_ENDPOINT_URL_SCHEDULER=(\S+)/.exec(out)![1];
    const env = { DATABASE_URL: url, OPSCTL_CONFIG: cfg, AWS_ENDPOINT_URL_SCHEDULER: endpoint, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'demo', AWS_SECRET_ACCESS_KEY: 'opsctl-demo-not-a-secret' };
    expect(out).toContain('export AWS_SECRET_ACCESS_KEY=opsctl-demo-not-a-secret\n');
    // In a shell elsewhere (not the checkout), from only what was printed.
    const shell = await shellRun(`${exports.join('\n')}\n${command.replace(' reap --apply', ' reap --apply -o json')}`);
    expect(shell.code, shell.stderr).toBe(0);
    expect(JSON.parse(shell.stdout).summary.reaped).toBe(4);
    const groups = await cliProcess(['schedule-groups', '-o', 'json'], env);
    expect(groups.json().summary.unowned).toBe(2);

    // The fake secret is masked by value, and nothing else named after the demo is: the database
    // "demo" and the actor "opsctl-demo" stay readable.
    const shown = await cliProcess(['config', 'show'], env);
    expect(shown.stdout).toContain(`/demo`);
    expect(shown.stdout).toMatch(/actor\s+opsctl-demo\n/);
    const elsewhere = await cliProcess(['workers', 'dead'], { ...env, DATABASE_URL: url.replace(/\/demo$/, '/opsctl-demo-not-a-secret') });
    expect(elsewhere.code).toBe(3);
    expect(elsewhere.stderr).toContain('***');
    expect(elsewhere.stderr).not.toContain('opsctl-demo-not-a-secret');

    // The healthy worker keeps heartbeating while the demo waits: set back 10 minutes (dead by
    // its 2m bound), it is fresh again within a few heartbeats and `workers dead` never lists it.
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      await db.query("UPDATE scheduler.workers SET last_heartbeat_at = now() - interval '10 minutes' WHERE id = 'worker-b2'");
      let fresh = false;
      // Bounded polling for the demo's timer (every 5 s), not a sleep standing in for it.
      for (let i = 0; i < 100 && !fresh; i++) {
        fresh = (await db.query("SELECT last_heartbeat_at > now() - interval '1 minute' AS fresh FROM scheduler.workers WHERE id = 'worker-b2'")).rows[0].fresh;
        if (!fresh) await new Promise((r) => setTimeout(r, 200));
      }
      expect(fresh).toBe(true);
    } finally {
      await db.end();
    }
    const dead = await cliProcess(['workers', 'dead', '-o', 'json'], env);
    expect(JSON.stringify(dead.json().items)).not.toContain('worker-b2');

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
