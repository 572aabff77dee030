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
  await db.client.query("INSERT INTO purchase_executions (status, updated_at) SELECT 'running', now() - make_interval(mins => 5 + i) FROM generate_series(1, 3) i");
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
/** Every script the launcher compiled, and how: `{ main: 'used', pg: 'used', … }`. */
const cacheStates = (stderr: string) =>
  Object.fromEntries([...stderr.matchAll(/^opsctl: code cache (.+?)(?: \((.+)\))?$/gm)].map((m) => [m[2] ?? 'main', m[1]]));

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

  it('pg, zod and the AWS SDK load from their vendored bundles and code caches, and work', () => {
    const vendor = JSON.parse(readFileSync(join(ROOT, 'dist/vendor/index.json'), 'utf8'));
    expect(Object.keys(vendor).sort()).toEqual(['@aws-sdk/client-resource-groups-tagging-api', '@aws-sdk/client-scheduler', 'pg', 'pg-copy-streams', 'zod']);
    const listed = run(['executions', 'stuck', '--older-than', '1m', '-o', 'json'], { DATABASE_URL: db.url });
    expect(listed.status).toBe(0);
    expect(JSON.parse(listed.stdout).mode).toBe('read');
    expect(JSON.parse(listed.stdout).items).toHaveLength(3);
    expect(cacheStates(listed.stderr)).toMatchObject({ main: 'used', zod: 'used', pg: 'used' });
    // reap changes V8's flags for its batches: only after its libraries are compiled.
    const reap = run(['reap', '--older-than', '1m', '-o', 'json'], { DATABASE_URL: db.url });
    expect(reap.status).toBe(0);
    expect(cacheStates(reap.stderr)).toEqual({ main: 'used', zod: 'used', pg: 'used', 'pg-copy-streams': 'used' });
    // The SDK is imported and answers with its one sentence (nothing listens there: exit 3).
    const sg = run(['schedule-groups', 'list'], { AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y', AWS_ENDPOINT_URL_SCHEDULER: 'http://127.0.0.1:9' });
    expect(cacheStates(sg.stderr)).toMatchObject({ main: 'used', '@aws-sdk/client-scheduler': 'used' });
    expect(sg.status).toBe(3);
    expect(sg.stderr).toMatch(/cannot reach the Scheduler endpoint/);
    expect(sg.stderr).not.toMatch(/\n\s+at /);
  });

  it('the vendored pg logs in with SCRAM-SHA-256 and with MD5 (it loads crypto only when a login needs it)', async () => {
    // The test server asks for plain passwords: two roles of this test get hashed logins instead,
    // by lines put first in pg_hba.conf while the test runs (the server writes its own file).
    const c = db.client;
    const hba = (await c.query<{ f: string }>("SELECT current_setting('hba_file') AS f")).rows[0].f;
    const before = (await c.query<{ t: string }>('SELECT pg_read_file($1) AS t', [hba])).rows[0].t;
    // COPY writes one line per row; it would escape a tab, which pg_hba.conf reads as a space anyway.
    const writeHba = async (text: string) => {
      const lines = text.trimEnd().split('\n').map((l) => `'${l.replace(/\t/g, ' ').replace(/'/g, "''")}'`);
      await c.query(`COPY (SELECT unnest(ARRAY[${lines.join(',')}]::text[])) TO '${hba.replace(/'/g, "''")}'`);
      await c.query('SELECT pg_reload_conf()');
    };
    const roles = { scram: 'opsctl_scram_login', md5: 'opsctl_md5_login' };
    try {
      await c.query(`SET password_encryption = 'scram-sha-256'; CREATE ROLE ${roles.scram} LOGIN PASSWORD 'scram-pw'`);
      await c.query(`SET password_encryption = 'md5'; CREATE ROLE ${roles.md5} LOGIN PASSWORD 'md5-pw'`);
      await c.query(`GRANT SELECT ON purchase_executions TO ${roles.scram}, ${roles.md5}`);
      const first = [`host all ${roles.scram} all scram-sha-256`, `host all ${roles.md5} all md5`].join('\n');
      await writeHba(`${first}\n${before}`);
      const methods = (await c.query<{ user_name: string[]; auth_method: string }>('SELECT user_name, auth_method FROM pg_hba_file_rules ORDER BY line_number LIMIT 2')).rows;
      expect(methods.map((m) => `${m.user_name[0]}:${m.auth_method}`)).toEqual([`${roles.scram}:scram-sha-256`, `${roles.md5}:md5`]);
      for (const [role, password] of [[roles.scram, 'scram-pw'], [roles.md5, 'md5-pw']]) {
        const u = new URL(db.url);
        u.username = role;
        u.password = password;
        const ok = run(['executions', 'stuck', '--older-than', '1m', '-o', 'json'], { DATABASE_URL: u.href });
        expect(ok.stderr).not.toMatch(/refused|error/i);
        expect(JSON.parse(ok.stdout).items).toHaveLength(3);
        expect(cacheStates(ok.stderr)).toMatchObject({ main: 'used', pg: 'used' });
        u.password = 'wrong';
        const bad = run(['executions', 'stuck', '--older-than', '1m', '-o', 'json'], { DATABASE_URL: u.href });
        expect(bad.status).toBe(3);
        expect(bad.stderr).toMatch(new RegExp(`refused the login: password authentication failed for user "${role}"`));
      }
    } finally {
      await writeHba(before);
      await c.query(`DROP ROLE IF EXISTS ${roles.scram}; DROP ROLE IF EXISTS ${roles.md5}`).catch(() => {});
    }
  });

  it('without dist/vendor the same commands load the libraries from node_modules', () => {
    const bare = mkdtempSync(join(tmpdir(), 'opsctl-no-vendor-'));
    try {
      for (const part of ['bin', 'dist', 'package.json']) cpSync(join(ROOT, part), join(bare, part), { recursive: true });
      rmSync(join(bare, 'dist/vendor'), { recursive: true });
      symlinkSync(join(ROOT, 'node_modules'), join(bare, 'node_modules'));
      const r = spawnSync(process.execPath, [join(bare, 'bin/opsctl.cjs'), 'executions', 'stuck', '--older-than', '1m', '-o', 'json'], {
        env: { PATH: process.env.PATH, HOME: process.env.HOME, OPSCTL_DEBUG_CODE_CACHE: '1', DATABASE_URL: db.url },
        encoding: 'utf8',
      });
      expect(r.status).toBe(0);
      expect(cacheStates(r.stderr)).toEqual({ main: 'used' });
      // ageSeconds moves between the two runs; the rows listed must not.
      const ids = (stdout: string) => JSON.stringify(JSON.parse(stdout), (k, v) => (/[aA]geSeconds$/.test(k) ? undefined : v));
      expect(ids(r.stdout)).toBe(ids(run(['executions', 'stuck', '--older-than', '1m', '-o', 'json'], { DATABASE_URL: db.url }).stdout));
    } finally {
      rmSync(bare, { recursive: true, force: true });
    }
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
