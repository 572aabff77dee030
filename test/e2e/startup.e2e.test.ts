import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freshDatabase } from '../support/db.js';

// The launcher runs the bundle (opsctl's own code, and commander as published) from V8's code
// cache that the build writes beside it (dist/opsctl.cjs.cache); every other package loads from
// node_modules. These tests run a copy of bin/ + dist/ so that the cache can be broken without
// touching the checkout's own.
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let copy: string;
let db: Awaited<ReturnType<typeof freshDatabase>>;

beforeAll(async () => {
  copy = mkdtempSync(join(tmpdir(), 'opsctl-code-cache-'));
  for (const part of ['bin', 'dist', 'package.json']) cpSync(join(ROOT, part), join(copy, part), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'));
  // Preloaded by `traced`: at exit, every CommonJS file loaded (a CommonJS package that import()
  // loads is in require.cache too) and Node's own modules.
  writeFileSync(
    join(copy, 'trace-loads.cjs'),
    "process.on('exit', () => process.stderr.write(`loaded: ${JSON.stringify({ files: Object.keys(require.cache), builtins: process.moduleLoadList })}\\n`));\n",
  );
  db = await freshDatabase('code_cache');
  await db.client.query("INSERT INTO purchase_executions (status, updated_at) SELECT 'running', now() - make_interval(mins => 5 + i) FROM generate_series(1, 3) i");
});
afterAll(async () => {
  rmSync(copy, { recursive: true, force: true });
  await db.drop();
});

const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, [join(copy, 'bin/opsctl.cjs'), ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, XDG_STATE_HOME: process.env.XDG_STATE_HOME, OPSCTL_DEBUG_CODE_CACHE: '1', ...env },
    encoding: 'utf8',
  });
const cacheFile = () => join(copy, 'dist/opsctl.cjs.cache');
const cacheState = (stderr: string) => /opsctl: code cache (.*)/.exec(stderr)?.[1];
/** `run` with trace-loads.cjs preloaded: the packages loaded (name → directory), Node's modules, and stderr without the trace. */
function traced(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, ['--require', join(copy, 'trace-loads.cjs'), join(copy, 'bin/opsctl.cjs'), ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, XDG_STATE_HOME: process.env.XDG_STATE_HOME, OPSCTL_DEBUG_CODE_CACHE: '1', ...env },
    encoding: 'utf8',
  });
  const line = /^loaded: (.*)$/m.exec(r.stderr);
  expect(line, r.stderr).not.toBeNull();
  const { files, builtins } = JSON.parse(line![1]) as { files: string[]; builtins: string[] };
  const packages = new Map<string, string>();
  for (const f of files) {
    const m = /^(.*\/node_modules\/)((?:@[^/]+\/)?[^/]+)/.exec(f);
    if (m) packages.set(m[2], realpathSync(m[1] + m[2]));
  }
  return { ...r, stderr: r.stderr.replace(/^loaded: .*\n/m, ''), packages, builtins };
}
/** Every file under dist/. */
const distFiles = (dir = join(ROOT, 'dist')): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? distFiles(join(dir, e.name)) : [join(dir, e.name)]));

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

  it('dist/ holds no copy of pg, pg-copy-streams, zod or the AWS SDK, and no dist/vendor', () => {
    expect(existsSync(join(ROOT, 'dist/vendor'))).toBe(false);
    // A string each library has in its code and opsctl's own code does not.
    const marks = { pg: 'SCRAM-SERVER-FIRST-MESSAGE', 'pg-copy-streams': 'CopyInResponse', zod: '$ZodType', 'the AWS SDK': 'NodeVersionSupportWarning' };
    const files = distFiles();
    expect(files).toContain(join(ROOT, 'dist/opsctl.cjs'));
    for (const [lib, mark] of Object.entries(marks)) expect(files.filter((f) => readFileSync(f, 'latin1').includes(mark)), lib).toEqual([]);
  });

  it('pg, pg-copy-streams, zod and the AWS SDK load from node_modules, and work; the SDK warns of nothing', () => {
    const listed = traced(['executions', 'stuck', '--older-than', '1m', '-o', 'json'], { DATABASE_URL: db.url });
    expect(listed.status, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).mode).toBe('read');
    expect(JSON.parse(listed.stdout).items).toHaveLength(3);
    expect(listed.stderr).toBe('opsctl: code cache used\n');
    // The checkout's installed packages (the copy's node_modules links to them).
    expect(listed.packages.get('pg')).toBe(join(ROOT, 'node_modules/pg'));
    // The environment layer is checked without zod (config/zod.ts): a listing does not load it.
    expect(listed.packages.has('zod')).toBe(false);
    // A config file with a section the hand check leaves to zod loads it, from node_modules.
    writeFileSync(join(copy, 'zod.config.json'), JSON.stringify({ executions: { stuckStatuses: ['approved', 'running'] } }));
    const configured = traced(['--config', join(copy, 'zod.config.json'), 'executions', 'stuck', '--older-than', '1m', '-o', 'json'], { DATABASE_URL: db.url });
    expect(configured.status, configured.stderr).toBe(0);
    expect(configured.packages.get('zod')).toBe(join(ROOT, 'node_modules/zod'));
    const reap = traced(['reap', '--older-than', '1m', '-o', 'json'], { DATABASE_URL: db.url });
    expect(reap.status, reap.stderr).toBe(0);
    expect(reap.packages.get('pg-copy-streams')).toBe(join(ROOT, 'node_modules/pg-copy-streams'));
    // The SDK is imported and answers with its one sentence (nothing listens there: exit 3), on
    // Node 20 without its NodeVersionSupportWarning (src/aws.ts turns it off).
    const sg = traced(['schedule-groups', 'list'], { AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y', AWS_ENDPOINT_URL_SCHEDULER: 'http://127.0.0.1:9' });
    expect(sg.packages.get('@aws-sdk/client-scheduler')).toBe(join(ROOT, 'node_modules/@aws-sdk/client-scheduler'));
    expect(sg.status).toBe(3);
    expect(sg.stderr).toMatch(/^opsctl: code cache used\nopsctl: cannot reach the Scheduler endpoint[^\n]*\n$/);
  });

  it('--help loads no package from node_modules, and commander runs as published', () => {
    for (const args of [['--help'], ['reap', '--help'], ['schedule-groups', '--help']]) {
      const r = traced(args);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toBe('opsctl: code cache used\n');
      expect([...r.packages.keys()], args.join(' ')).toEqual([]);
      // Unpatched, commander requires child_process as it loads (an earlier build deferred it).
      expect(r.builtins).toContain('NativeModule child_process');
    }
  });

  it('pg logs in with SCRAM-SHA-256 and with MD5', async () => {
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
        expect(ok.stderr).toBe('opsctl: code cache used\n');
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
