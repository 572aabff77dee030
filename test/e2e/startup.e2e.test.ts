import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freshDatabase } from '../support/db.js';

// The launcher runs the bundle from V8's code cache that the build writes beside it
// (dist/opsctl.cjs.cache). These tests run a copy of bin/ + dist/ so that the cache can be
// broken without touching the checkout's own.
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let copy: string;
let db: Awaited<ReturnType<typeof freshDatabase>>;

beforeAll(async () => {
  copy = mkdtempSync(join(tmpdir(), 'opsctl-code-cache-'));
  for (const part of ['bin', 'dist', 'package.json']) cpSync(join(ROOT, part), join(copy, part), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'));
  db = await freshDatabase('code_cache');
});
afterAll(async () => {
  rmSync(copy, { recursive: true, force: true });
  await db.drop();
});

const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, [join(copy, 'bin/opsctl.cjs'), ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, OPSCTL_DEBUG_CODE_CACHE: '1', ...env },
    encoding: 'utf8',
  });
const cacheFile = () => join(copy, 'dist/opsctl.cjs.cache');
const cacheState = (stderr: string) => /opsctl: code cache (.*)/.exec(stderr)?.[1];

describe('the start-up code cache', () => {
  it('is built with the bundle, for it, and accepted by this Node', () => {
    const bundleId = readFileSync(join(ROOT, 'dist/opsctl.cjs'), 'utf8').split('\n', 1)[0];
    expect(bundleId).toMatch(/^\/\/opsctl-build:[0-9a-f]{32}$/);
    expect(readFileSync(join(ROOT, 'dist/opsctl.cjs.cache')).toString('latin1').split('\n', 1)[0]).toBe(bundleId);
    const r = run(['--help']);
    expect(r.status).toBe(0);
    expect(cacheState(r.stderr)).toBe('used');
    expect(r.stdout).toContain('Usage: opsctl');
  });

  it('commands that import pg and the AWS SDK lazily work from the cached bundle', () => {
    const listed = run(['executions', 'stuck', '--older-than', '1m', '-o', 'json'], { DATABASE_URL: db.url });
    expect(cacheState(listed.stderr)).toBe('used');
    expect(listed.status).toBe(0);
    expect(listed.stdout.length).toBeGreaterThan(0);
    expect(JSON.parse(listed.stdout).mode).toBe('read');
    // No credentials: the SDK is imported, and its one sentence comes back (exit 3).
    const sg = run(['schedule-groups', 'list'], { AWS_REGION: 'eu-west-1', AWS_ENDPOINT_URL_SCHEDULER: 'http://127.0.0.1:9' });
    expect(cacheState(sg.stderr)).toBe('used');
    expect(sg.status).toBe(3);
    expect(sg.stderr).not.toMatch(/\n\s+at /);
  });

  it('a cache of another build, a corrupt one or none: the bundle compiles from source, same output', () => {
    const reference = run(['reap', '--help']);
    expect(cacheState(reference.stderr)).toBe('used');
    const good = readFileSync(cacheFile());
    const header = good.indexOf(10);

    writeFileSync(cacheFile(), Buffer.concat([Buffer.from('//opsctl-build:00000000000000000000000000000000\n'), good.subarray(header + 1)]));
    const stale = run(['reap', '--help']);
    expect(cacheState(stale.stderr)).toBe('of another build');
    expect(stale.stdout).toBe(reference.stdout);

    writeFileSync(cacheFile(), Buffer.concat([good.subarray(0, header + 1), Buffer.alloc(good.length - header - 1, 7)]));
    const corrupt = run(['reap', '--help']);
    expect(cacheState(corrupt.stderr)).toBe('rejected by V8');
    expect(corrupt.status).toBe(0);
    expect(corrupt.stdout).toBe(reference.stdout);

    rmSync(cacheFile());
    const none = run(['reap', '--help']);
    expect(cacheState(none.stderr)).toBe('absent');
    expect(none.stdout).toBe(reference.stdout);
    writeFileSync(cacheFile(), good);
  });
});

describe('help is written without building the stdout stream', () => {
  it('to a pipe and to a file: the same text; to a pipe closed early: no error', () => {
    const bin = `"${process.execPath}" "${join(copy, 'bin/opsctl.cjs')}"`;
    const piped = run(['jobs', 'discarded', '--help']);
    expect(piped.status).toBe(0);
    expect(piped.stdout).toContain('Usage: opsctl jobs discarded');
    const file = join(copy, 'help.txt');
    const toFile = spawnSync('sh', ['-c', `${bin} jobs discarded --help > "${file}"`], { encoding: 'utf8' });
    expect(toFile.status).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(piped.stdout);
    // The reader goes away after one byte: EPIPE is not an error worth a message.
    const closed = spawnSync('sh', ['-c', `${bin} --help | head -c 1 >/dev/null`], { encoding: 'utf8' });
    expect(closed.status).toBe(0);
    expect(closed.stderr).toBe('');
  });
});
