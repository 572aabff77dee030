import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runProcess } from '../support/cli.js';
import { envOf, execForm, readDockerfile, type Stage } from '../support/dockerfile.js';

/**
 * The Dockerfile (no Docker engine here): parsed and checked, then its runtime stage's install
 * step run for real into a temporary prefix, on the tarball npm pack makes, and the installed
 * opsctl run as the entrypoint would run it, as a non-root user.
 */
const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
const NOBODY = 65534;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}
function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return runProcess(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env });
}

const stages = readDockerfile();
const build = stages[0];
const runtime = stages[stages.length - 1];
const all = (s: Stage, kw: string) => s.instructions.filter((i) => i.keyword === kw);
const last = (s: Stage, kw: string) => all(s, kw).at(-1);
/** The RUN commands of a stage, each split at `&&` (and `;`). */
const commands = (s: Stage) => all(s, 'RUN').flatMap((r) => r.args.split(/\s*(?:&&|;)\s*/)).filter(Boolean);
const installCommand = () => {
  const found = commands(runtime).filter((c) => /^npm (install|i)\b/.test(c));
  expect(found).toHaveLength(1);
  return found[0];
};

describe('Dockerfile', () => {
  it('is multi-stage on a pinned node 20 bookworm-slim that satisfies engines.node', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const [min] = /\d+\.\d+/.exec(pkg.engines.node)!;
    for (const s of stages) {
      const m = /^node:(\d+)\.(\d+)(?:\.\d+)?-bookworm-slim$/.exec(s.from);
      expect(m, s.from).not.toBeNull();
      expect(Number(m![1])).toBe(20);
      expect(Number(m![2])).toBeGreaterThanOrEqual(Number(min.split('.')[1]));
    }
    expect(new Set(stages.map((s) => s.from)).size).toBe(1);
  });

  it('the build stage packs the package after building it', () => {
    const cmds = commands(build);
    const ci = cmds.findIndex((c) => /^npm ci\b/.test(c));
    const b = cmds.findIndex((c) => /^npm run build\b/.test(c));
    const pack = cmds.findIndex((c) => /^npm pack\b/.test(c));
    expect(ci).toBeGreaterThanOrEqual(0);
    expect(b).toBeGreaterThan(ci);
    expect(pack).toBeGreaterThan(b);
  });

  it('the runtime stage holds the tarball only (no source), installed without dev dependencies', () => {
    expect(build.name).toBeDefined();
    const copies = all(runtime, 'COPY');
    expect(copies).toHaveLength(1);
    expect(copies[0].args).toMatch(new RegExp(`^--from=${build.name}\\s+\\S*opsctl-\\*\\.tgz\\s+\\S+$`));
    const install = installCommand();
    expect(install).toMatch(/\s--omit=dev(\s|$)/);
    expect(install).toMatch(/\s(--global|-g)(\s|$)/);
    expect(install).toMatch(/[\s/]opsctl-\*\.tgz(\s|$)/);
    expect(commands(runtime).some((c) => /^npm (ci|run|pack)\b/.test(c))).toBe(false);
    // No dev dependency is named anywhere in the runtime stage.
    const text = runtime.instructions.map((i) => i.args).join('\n');
    for (const dev of Object.keys(pkg.devDependencies)) expect(text, dev).not.toMatch(new RegExp(`(^|[\\s/])${dev.replace(/[/.]/g, '\\$&')}(@|\\s|$)`));
    expect(envOf(runtime).NODE_ENV).toBe('production');
  });

  it('runs as a non-root user that owns OPSCTL_STATE_DIR, opsctl as the entrypoint', () => {
    const user = last(runtime, 'USER')!;
    expect(user).toBeDefined();
    // The last instruction that changes the user; numeric, so runAsNonRoot can verify it.
    expect(runtime.instructions.at(-1)!.line).toBeGreaterThanOrEqual(user.line);
    const [uid, gid] = user.args.split(':');
    expect(uid).toMatch(/^\d+$/);
    expect(Number(uid)).toBeGreaterThan(0);
    const state = envOf(runtime).OPSCTL_STATE_DIR;
    expect(state).toMatch(/^\//);
    const run = commands(runtime);
    expect(run).toContain(`mkdir -p ${state}`);
    expect(run).toContain(`chown ${uid}:${gid ?? uid} ${state}`);
    expect(run.some((c) => new RegExp(`^useradd .*--uid ${uid}\\b`).test(c))).toBe(true);
    expect(execForm(last(runtime, 'ENTRYPOINT')!)).toEqual(['opsctl']);
    expect(execForm(last(runtime, 'CMD')!)).toEqual(['--help']);
    expect(Object.keys(pkg.bin)).toEqual(['opsctl']);
  });

  it('.dockerignore keeps node_modules, dist, .git and .tmp out of the build context', () => {
    const lines = readFileSync(join(REPO, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    for (const p of ['node_modules', 'dist', '.git', '.tmp']) expect(lines).toContain(p);
    // And nothing the build needs.
    for (const need of ['package.json', 'package-lock.json', 'src', 'bin', 'scripts', 'tsconfig.json']) {
      expect(lines.some((l) => l === need || l === `${need}/` || l === `/${need}`), need).toBe(false);
    }
  });
});

describe("the runtime stage's install step, run for real into a temporary prefix", () => {
  let dir: string;
  let prefix: string;
  let state: string;
  // Dropping privileges needs root and setpriv; both are here (the test says so if not).
  const canDrop = process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0;
  /** As the image runs it: the Dockerfile's ENV, PATH with the prefix's bin, as a non-root user. */
  const asImage = (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const full = { ...envOf(runtime), OPSCTL_STATE_DIR: state, HOME: state, PATH: `${join(prefix, 'bin')}:/usr/bin:/bin`, ...env };
    const entry = execForm(last(runtime, 'ENTRYPOINT')!);
    const argv = [...entry, ...args];
    if (!canDrop) return run(argv[0], argv.slice(1), { env: full, cwd: state });
    return run('setpriv', ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups', '--', ...argv], { env: full, cwd: state });
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'opsctl-image-'));
    chmodSync(dir, 0o755); // the non-root user reads the installed files
    prefix = join(dir, 'prefix');
    // The build stage's `npm run build && npm pack`: dist/ is already built (pretest).
    const pack = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir, '--silent'], { cwd: REPO });
    expect(pack.code, pack.stderr).toBe(0);
    // COPY --from=build /src/opsctl-*.tgz /tmp/ → the temporary directory; --global → --prefix.
    const copyTo = all(runtime, 'COPY')[0].args.split(/\s+/).at(-1)!;
    const script = installCommand()
      .replaceAll(copyTo.replace(/\/?$/, '/'), `${dir}/`)
      .replace(/\s(--global|-g)(\s|$)/, ` $1 --prefix '${prefix}' --prefer-offline$2`);
    expect(script).toContain(dir);
    const install = await run('/bin/sh', ['-c', script], { env: { ...process.env, ...envOf(runtime) } });
    expect(install.code, install.stderr).toBe(0);
    state = join(dir, 'state');
    mkdirSync(state, { mode: 0o700 });
    if (canDrop) chownSync(state, NOBODY, NOBODY);
  }, 300_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('drops privileges to a non-root uid (setpriv, as root)', () => {
    expect(canDrop, 'setpriv as root is needed to run the installed opsctl as a non-root user').toBe(true);
  });

  it('installs opsctl and its runtime dependencies only', () => {
    const installed = join(prefix, 'lib', 'node_modules', 'opsctl');
    expect(existsSync(join(prefix, 'bin', 'opsctl'))).toBe(true);
    expect(existsSync(join(installed, 'src'))).toBe(false);
    const deps = readdirSync(join(installed, 'node_modules')).flatMap((d) => (d.startsWith('@') ? readdirSync(join(installed, 'node_modules', d)).map((s) => `${d}/${s}`) : [d]));
    for (const dep of Object.keys(pkg.dependencies)) expect(deps, dep).toContain(dep);
    for (const dev of Object.keys(pkg.devDependencies)) expect(deps, dev).not.toContain(dev);
  });

  it('the entrypoint with the default CMD prints the help, as a non-root user', async () => {
    const r = await asImage(execForm(last(runtime, 'CMD')!));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Usage: opsctl');
    expect(r.stderr).toBe('');
  });

  it('--version and check --help work as a non-root user; a check with no database is an error, exit 3, no EACCES', async () => {
    const version = await asImage(['--version']);
    expect(version.code, version.stderr).toBe(0);
    expect(version.stdout.trim()).toBe(pkg.version);
    const help = await asImage(['check', '--help']);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toContain('Usage: opsctl check');
    // Nothing listens on port 9: one sentence, exit 3, no stack trace and no EACCES.
    const check = await asImage(['check', '-o', 'json'], { DATABASE_URL: 'postgres://u@127.0.0.1:9/db', PGCONNECT_TIMEOUT: '2' });
    expect(check.code, check.stderr).toBe(3);
    expect(check.stderr).not.toMatch(/EACCES|^\s+at /m);
  });
});
