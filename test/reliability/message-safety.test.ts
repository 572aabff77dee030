import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, databaseChecksum } from '../support/db.js';
import { cliProcess } from '../support/cli.js';
import { configFile, expectOneSentence } from '../support/reliability.js';
import { escapeControl } from '../../src/output/terminal-text.js';
import { maskSecrets } from '../../src/output/masking.js';

/**
 * What opsctl prints about bad input (issue 25): no password on any stream whatever produced the
 * message (a URL that does not parse, commander echoing a mistyped flag), the documented exit
 * code instead of the one of whatever code the input reached, and no line forged by a control
 * character in a value. The built CLI, as a user runs it, against a real PostgreSQL.
 */
let db: Awaited<ReturnType<typeof freshDatabase>>;
let env: NodeJS.ProcessEnv;
// Distinctive, each with a character a URL's userinfo cannot hold unencoded.
const PW = 'Mal-Pa55-Qv4zz';
const PW_SLASH = 'Sl/ash-Pa55-Wm2';
const PW_HASH = 'Ha#sh-Pa55-Tr8';
const ALL = [PW, PW_SLASH, PW_HASH];

beforeAll(async () => {
  db = await freshDatabase('rel_msg');
  env = { DATABASE_URL: db.url };
  await db.client.query(`
    INSERT INTO purchase_executions (status, updated_at) SELECT 'running', now() - interval '1 hour' FROM generate_series(1, 3);
    CREATE TABLE text_times (id bigserial PRIMARY KEY, status text NOT NULL, updated_at text NOT NULL, error text, transitioned_at timestamptz);
    INSERT INTO text_times (status, updated_at) VALUES ('running', '2020-01-01');`);
});
afterAll(async () => {
  await db.drop();
});

const noSecret = (r: { stdout: string; stderr: string }) => {
  for (const s of ALL) {
    expect(r.stderr).not.toContain(s);
    expect(r.stdout).not.toContain(s);
  }
};

describe('no password on any stream, parsed or not', () => {
  it.each<[string, string[], NodeJS.ProcessEnv, RegExp]>([
    ['--database-url missing the scheme colon', ['--database-url', `postgres//ops:${PW}@127.0.0.1:1/app`, 'reap'], {}, /^opsctl: --database-url is not a valid connection URL: postgres\/\/ops:\*\*\*@127\.0\.0\.1:1\/app /],
    ['DATABASE_URL with an unencoded "/" in the password', ['reap', '--apply'], { DATABASE_URL: `postgres://ops:${PW_SLASH}@127.0.0.1:1/app` }, /^opsctl: DATABASE_URL \(environment\) is not a valid connection URL: postgres:\/\/ops:\*\*\*@127\.0\.0\.1:1\/app /],
    ['DATABASE_URL with an unencoded "#" in the password', ['executions', 'stuck'], { DATABASE_URL: `postgres://ops:${PW_HASH}@127.0.0.1:1/app` }, /^opsctl: DATABASE_URL \(environment\) is not a valid connection URL: postgres:\/\/ops:\*\*\*@127\.0\.0\.1:1\/app /],
    ['check -o json with a URL that does not parse', ['check', '-o', 'json', '--only', 'executions'], { DATABASE_URL: `postgres://ops:${PW_SLASH}@127.0.0.1:1/app` }, /^opsctl: DATABASE_URL \(environment\) is not a valid connection URL/],
    ['config show with a URL that does not parse', ['config', 'show'], { DATABASE_URL: `postgres://ops:${PW_SLASH}@127.0.0.1:1/app` }, /^opsctl: DATABASE_URL \(environment\) is not a valid connection URL/],
    ['a mistyped --database-url (commander echoes it)', [`--database-ur=postgres://ops:${PW}@127.0.0.1:1/app`, 'reap'], {}, /^opsctl: unknown option '--database-ur=postgres:\/\/ops:\*\*\*@127\.0\.0\.1:1\/app'/],
    ['a mistyped --database-url with a "/" in the password', ['reap', `--database-ur=postgres://ops:${PW_SLASH}@127.0.0.1:1/app`], {}, /^opsctl: unknown option '--database-ur=postgres:\/\/ops:\*\*\*@127\.0\.0\.1:1\/app'/],
  ])('%s → exit 2, one masked sentence', async (_what, args, extraEnv, message) => {
    const r = await cliProcess(args, extraEnv);
    expect(r.code).toBe(2);
    expect(expectOneSentence(r.stderr)).toBeNull();
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
    noSecret(r);
  });

  it('the config file\'s database.url that does not parse is named by its file and key, masked', async () => {
    const file = configFile({ database: { url: `postgres://ops:${PW_SLASH}@127.0.0.1:1/app` } });
    const r = await cliProcess(['--config', file, 'executions', 'stuck', '-o', 'json'], {});
    expect(r.code).toBe(2);
    expect(expectOneSentence(r.stderr)).toBeNull();
    expect(r.stderr).toContain(`opsctl: ${file}: database.url is not a valid connection URL: postgres://ops:***@127.0.0.1:1/app`);
    expect(r.stdout).toBe('');
    noSecret(r);
  });

  it("a fleet target's urlEnv that does not parse: that target unknown, said in its error field, masked", async () => {
    const file = configFile({ targets: { broken: { database: { urlEnv: 'BROKEN_URL' } } } });
    const r = await cliProcess(['--config', file, 'check', '--all-targets', '--only', 'executions', '-o', 'json'], { BROKEN_URL: `postgres://ops:${PW_SLASH}@127.0.0.1:1/app` });
    expect(r.code).toBe(3);
    const errors = r.json().items.map((i: { error?: string }) => i.error);
    expect(errors).toContain('target broken: the environment variable BROKEN_URL (targets.broken.database.urlEnv) is not a valid connection URL: postgres://ops:***@127.0.0.1:1/app.');
    noSecret(r);
  });

  it('OPSCTL_CONFIG naming a file whose database.url does not parse: the file and key named, masked', async () => {
    const file = configFile({ database: { url: `postgres//ops:${PW}@127.0.0.1:1/app` } });
    const r = await cliProcess(['config', 'show', '-o', 'json'], { OPSCTL_CONFIG: file });
    expect(r.code).toBe(2);
    expect(expectOneSentence(r.stderr)).toBeNull();
    expect(r.stderr).toContain(`opsctl: ${file}: database.url is not a valid connection URL: postgres//ops:***@127.0.0.1:1/app`);
    expect(r.stdout).toBe('');
    noSecret(r);
  });

  it('masking text: any scheme://user:secret@ shape, password= pairs, and only long enough exact values', () => {
    expect(maskSecrets(`at postgres://u:${PW_SLASH}@h/db and mysql//root:${PW_HASH}@x`)).toBe('at postgres://u:***@h/db and mysql//root:***@x');
    expect(maskSecrets(`host=h password='${PW}' dbname=d`)).toBe("host=h password=*** dbname=d");
    expect(maskSecrets(`the secret is ${PW} here`, [PW])).toBe('the secret is *** here');
    // A short secret ("demo") is not masked as a word: messages would lose their sense.
    expect(maskSecrets('the demo database demo', ['demo'])).toBe('the demo database demo');
    expect(maskSecrets('postgres://demo:demo@localhost/demo', ['demo'])).toBe('postgres://demo:***@localhost/demo');
  });
});

describe('bad input gets its sentence and exit 2, not the error of the code it reached', () => {
  it.each<[string, string[], RegExp]>([
    ['--max beyond any integer', ['reap', '--max', '99999999999999999999', '--apply'], /^opsctl: --max must be at most 2147483647 \(0 means no limit\), got "99999999999999999999"\.$/],
    ['--limit beyond any integer', ['executions', 'stuck', '--limit', '99999999999999999999'], /^opsctl: --limit must be at most 2147483647/],
    ['--limit beyond any integer (propagations)', ['propagations', 'dead-letters', '--limit', '99999999999999999999'], /^opsctl: --limit must be at most 2147483647/],
  ])('%s', async (_what, args, message) => {
    const before = await databaseChecksum(db.client);
    const r = await cliProcess(args, env);
    expect(r.code).toBe(2);
    expect(expectOneSentence(r.stderr)).toBeNull();
    expect(r.stderr.trim()).toMatch(message);
    expect(r.stdout).toBe('');
    expect(await databaseChecksum(db.client)).toBe(before);
  });

  it.each<[string, unknown, string[], RegExp]>([
    ['a NUL in a stuck status', { executions: { stuckStatuses: ['running', 'app\u0000roved'] } }, ['reap', '--apply'], /executions\.stuckStatuses\[1\]: must not contain control characters/],
    ['an ESC in the failed status', { executions: { failedStatus: 'failed\u001b[2J' } }, ['reap', '--apply'], /executions\.failedStatus: must not contain control characters/],
    ['a newline in a stuck status (listing)', { executions: { stuckStatuses: ['running\n'] } }, ['executions', 'stuck'], /executions\.stuckStatuses\[0\]: must not contain control characters/],
    ['a NUL in the reason template', { executions: { reasonTemplate: 'reaped\u0000' } }, ['reap', '--apply'], /executions\.reasonTemplate: must not contain NUL/],
    ['a NUL in a known kind', { propagations: { knownKinds: ['k\u0000'] } }, ['propagations', 'pending'], /propagations\.knownKinds\[0\]: must not contain control characters/],
    // The same range as --max: a cap beyond PostgreSQL's integer is a typo, not a cap.
    ['executions.max beyond the range of --max', { executions: { max: 1e10 } }, ['reap'], /executions\.max: Too big: expected number to be <=2147483647/],
  ])('config: %s → exit 2 naming the key', async (_what, content, args, message) => {
    const before = await databaseChecksum(db.client);
    const file = configFile(content);
    const r = await cliProcess(['--config', file, ...args], env);
    expect(r.code).toBe(2);
    expect(expectOneSentence(r.stderr)).toBeNull();
    expect(r.stderr).toMatch(new RegExp(`^opsctl: ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: `));
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
    expect(await databaseChecksum(db.client)).toBe(before);
  });

  it.each<[string, string[]]>([
    ['reap --apply', ['reap', '--apply']],
    ['executions stuck', ['executions', 'stuck']],
    ['executions stuck -o json', ['executions', 'stuck', '-o', 'json']],
  ])('a configured time column of type text → exit 2 naming executions.updatedAt (%s)', async (_what, args) => {
    const before = await databaseChecksum(db.client);
    const file = configFile({ executions: { table: 'text_times' } });
    const r = await cliProcess(['--config', file, ...args], env);
    expect(r.code).toBe(2);
    expect(expectOneSentence(r.stderr)).toBeNull();
    expect(r.stderr).toMatch(/^opsctl: column "updated_at" \(config executions\.updatedAt\) in table text_times is of type text: it must be a timestamptz/);
    expect(r.stdout).toBe('');
    expect(await databaseChecksum(db.client)).toBe(before);
  });

  it('a propagations time column of type text → exit 2 naming propagations.columns.failedAt', async () => {
    await db.client.query(`CREATE TABLE IF NOT EXISTS text_outbox (LIKE pending_propagations INCLUDING DEFAULTS); ALTER TABLE text_outbox ALTER COLUMN failed_at TYPE text;`);
    const file = configFile({ propagations: { table: 'text_outbox' } });
    const r = await cliProcess(['--config', file, 'propagations', 'dead-letters', '--since', '1h'], env);
    expect(r.code).toBe(2);
    expect(expectOneSentence(r.stderr)).toBeNull();
    expect(r.stderr).toMatch(/^opsctl: column "failed_at" \(config propagations\.columns\.failedAt\) in table text_outbox is of type text/);
    expect(r.stdout).toBe('');
  });

  it('a column type the server cannot compare, where no key is checked up front (workers heartbeat) → exit 2, not 3', async () => {
    await db.client.query(`
      CREATE TABLE IF NOT EXISTS text_workers (id text PRIMARY KEY, last_heartbeat_at text, status text, host text);
      CREATE TABLE IF NOT EXISTS plain_runs (id bigserial PRIMARY KEY, worker_id text, status text, error text, updated_at timestamptz, finished_at timestamptz);`);
    const file = configFile({ workers: { schema: null, table: 'text_workers', runs: { schema: null, table: 'plain_runs' } } });
    const r = await cliProcess(['--config', file, 'workers', 'dead'], env);
    expect(r.code).toBe(2);
    expect(expectOneSentence(r.stderr)).toBeNull();
    expect(r.stderr).toMatch(/operator does not exist: text .*: a configured column has a type opsctl cannot use; check the column types in the config\.$/m);
    expect(r.stdout).toBe('');
  });

  it('?sslmode=require: no SECURITY WARNING from the driver, just our one sentence', async () => {
    // The test server has no TLS: the connection is refused, as pg's verify-full refuses it.
    const r = await cliProcess(['executions', 'stuck'], { DATABASE_URL: `${db.url}?sslmode=require` });
    expect(r.stderr).not.toMatch(/SECURITY WARNING|Warning/);
    expect(expectOneSentence(r.stderr)).toBeNull();
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/does not support SSL/i);
  });
});

describe('a value cannot forge a line: control characters shown, not obeyed', () => {
  it.each<[string, string[], string]>([
    ['an id with a newline', ['propagations', 'retry', 'abc\nopsctl: done, 0 rows changed.'], 'opsctl: id "abc\\nopsctl: done, 0 rows changed." is not a valid uuid (the type of pending_propagations.id); nothing was changed.'],
    ['an id with ESC, CR and a C1 control', ['propagations', 'retry', 'x\u001b[2J\r\u0085y'], 'opsctl: id "x\\x1b[2J\\r\\x85y" is not a valid uuid (the type of pending_propagations.id); nothing was changed.'],
    ['a flag value with a newline', ['reap', '--max', '5\nopsctl: done'], 'opsctl: --max must be a whole number (0 means no limit), got "5\\nopsctl: done".'],
    ['an unknown option with a newline (commander)', ['reap', '--frob\nopsctl: done'], "opsctl: unknown option '--frob\\nopsctl: done'"],
    ['an unknown command with ESC', ['frob\u001b[31m'], "opsctl: unknown command 'frob\\x1b[31m'"],
  ])('%s → one line, the characters escaped', async (_what, args, line) => {
    const r = await cliProcess(args, env);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`${line}\n`);
    expect(r.stdout).toBe('');
  });

  it('a flag quoted in the headline and the empty message (table output) stays on its line', async () => {
    // (--status is refused outside executions.stuckStatuses; --kind is quoted as given.)
    const r = await cliProcess(['propagations', 'purge', '--older-than', '30d', '--kind', 'k\nopsctl: forged\u001b[2J'], env);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const lines = r.stdout.split('\n');
    expect(lines.some((l) => l.startsWith('opsctl: forged'))).toBe(false);
    expect(r.stdout).not.toContain('\u001b');
    expect(lines[0]).toContain('(kind k\\nopsctl: forged\\x1b[2J)');
  });

  it('config show (table): one line per setting, a newline in a value shown as \\n', async () => {
    const file = configFile({ executions: { reasonTemplate: 'reaped\nexecutions.max  0' } });
    const r = await cliProcess(['--config', file, 'config', 'show'], {});
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter((l) => l.startsWith('executions.max'))).toEqual([expect.stringMatching(/^executions\.max +1000$/)]);
    expect(r.stdout).toContain('reaped\\nexecutions.max  0');
  });

  it('escapeControl: C0, DEL and C1 made visible; everything else as it was', () => {
    expect(escapeControl('a\nb\rc\td')).toBe('a\\nb\\rc\\td');
    expect(escapeControl('\u0000\u001b\u007f\u0085\u009f')).toBe('\\x00\\x1b\\x7f\\x85\\x9f');
    expect(escapeControl('plain — ünïcode ✓ \\n')).toBe('plain — ünïcode ✓ \\n');
  });
});
