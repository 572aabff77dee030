import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SchedulerEmulator } from '../../src/emulator/scheduler-emulator.js';
import { freshDatabase, databaseChecksum, serverPassword, urlFor } from '../support/db.js';
import { cli, cliProcess, type CliResult } from '../support/cli.js';
import { AWS_SECRET, awsEnv, emulator, sgConfig } from '../support/aws.js';
import { configFile, expectOneSentence } from '../support/reliability.js';

/**
 * The bad-input matrix: every row is one wrong thing an operator can do or meet. Each must give
 * one clear sentence on stderr, its documented exit code (2 usage/config, 3 dependency), no
 * stack trace, nothing on stdout, and no secret anywhere: neither the database passwords used
 * here (all distinctive) nor the AWS secret key.
 */
let db: Awaited<ReturnType<typeof freshDatabase>>;
let emu: SchedulerEmulator;
let env: NodeJS.ProcessEnv;
const WRONG_PW = 'Wr0ng-Pa55-Qx7zz';
const UNREACHABLE_PW = 'Unre4ch-Pa55-Kq9zz';
const secrets = () => [serverPassword(), WRONG_PW, UNREACHABLE_PW, AWS_SECRET, encodeURIComponent(WRONG_PW)];
const EVIL = '"; DROP TABLE victim; --';

const withPassword = (url: string, pw: string) => {
  const u = new URL(url);
  u.password = pw;
  return u.toString();
};

beforeAll(async () => {
  db = await freshDatabase('rel_bad');
  env = { DATABASE_URL: db.url };
  await db.client.query(`
    CREATE TABLE victim (id int);
    INSERT INTO purchase_executions (status, updated_at) SELECT 'running', now() - interval '1 hour' FROM generate_series(1, 5);
    INSERT INTO pending_propagations (kind, team_id, attempts, failed_at) SELECT 'k', gen_random_uuid(), 10, now() - interval '40 days' FROM generate_series(1, 3);`);
  emu = await emulator();
  emu.seedGroup('bare');
});
afterAll(async () => {
  await emu.close();
  await db.drop();
});

type Run = () => Promise<CliResult>;
const inProcess = (args: string[], extraEnv: NodeJS.ProcessEnv = {}, useDb = true): Run => () => cli(args, { ...(useDb ? env : {}), ...extraEnv });
const subprocess = (args: string[], extraEnv: NodeJS.ProcessEnv = {}): Run => () => cliProcess(args, { ...env, ...extraEnv });
const cfg = (content: unknown): string[] => ['--config', configFile(content)];
const aws = (args: string[], extra: NodeJS.ProcessEnv = {}): Run => () => cli(['--config', sgConfig(), ...args], awsEnv(emu, extra));
const withFault = (op: string, fault: 'AccessDeniedException', run: Run): Run => async () => {
  emu.clearFaults();
  emu.injectFault(op, fault, 1);
  try {
    return await run();
  } finally {
    emu.clearFaults();
  }
};
const UUID = '3fdd9021-3cc0-43e0-bf5d-cd479871879a';

// [what, exit code, stderr, run]
const MATRIX: Array<[string, 2 | 3, RegExp, Run]> = [
  // durations
  ['duration 0s', 2, /--older-than must be greater than zero, got "0s"/, inProcess(['reap', '--older-than', '0s'])],
  ['duration -5m', 2, /--older-than must be positive, got "-5m"/, inProcess(['reap', '--older-than', '-5m'])],
  ['duration garbage', 2, /--older-than "garbage" is not a duration/, inProcess(['reap', '--older-than', 'garbage'])],
  ['duration empty', 2, /--older-than is empty/, inProcess(['reap', '--older-than', ''])],
  ['duration 10 (no unit)', 2, /--older-than "10" has no unit/, inProcess(['executions', 'stuck', '--older-than', '10'])],
  ['duration 5 m (space)', 2, /is not a duration/, inProcess(['executions', 'stuck', '--older-than', '5 m'])],
  ['duration --since 10', 2, /--since "10" has no unit/, inProcess(['propagations', 'dead-letters', '--since', '10'])],
  ['duration purge --older-than 0s', 2, /--older-than must be greater than zero/, inProcess(['propagations', 'purge', '--older-than', '0s'])],
  ['duration jobs rescue --older-than garbage', 2, /--older-than "garbage" is not a duration/, inProcess([...cfg({ jobs: { queue: 'river' } }), 'jobs', 'rescue', '--older-than', 'garbage'])],
  ['duration missing value', 2, /option '--older-than <duration>' argument missing/, inProcess(['reap', '--older-than'])],
  // ids
  ['id not a uuid', 2, /id "not-a-uuid" is not a valid uuid/, inProcess(['propagations', 'retry', 'not-a-uuid'])],
  ['id one character short', 2, /is not a valid uuid/, inProcess(['propagations', 'retry', UUID.slice(0, -1), '--apply'])],
  ['id with SQL in it', 2, /id ".*DROP TABLE victim.*" is not a valid uuid/, inProcess(['propagations', 'retry', EVIL, '--apply'])],
  ['a good id and a bad one', 2, /id "zz" is not a valid uuid/, inProcess(['propagations', 'retry', UUID, 'zz', '--apply'])],
  // flags
  ['unknown flag', 2, /unknown option '--frobnicate'/, inProcess(['reap', '--frobnicate'])],
  ['unknown command', 2, /unknown command 'frobnicate'/, inProcess(['frobnicate'])],
  ['--max -1', 2, /--max must be a whole number .* got "-1"/, inProcess(['reap', '--max', '-1'])],
  ['--max abc', 2, /--max must be a whole number .* got "abc"/, inProcess(['propagations', 'retry', '--all', '--max', 'abc'])],
  ['--max 1.5', 2, /--max must be a whole number/, inProcess(['adopt', 'schedule-group', 'bare', '--max', '1.5'])],
  ['--limit x', 2, /--limit must be a whole number .* got "x"/, inProcess(['executions', 'stuck', '--limit', 'x'])],
  ['--limit -3', 2, /--limit must be a whole number/, inProcess(['propagations', 'dead-letters', '--limit', '-3'])],
  ['--batch-size 0', 2, /--batch-size must be at least 1/, inProcess(['reap', '--batch-size', '0'])],
  ['-o yaml', 2, /-o yaml is not a known output format/, inProcess(['reap', '-o', 'yaml'])],
  ['-o prometheus outside check', 2, /-o prometheus is not a known output format/, inProcess(['executions', 'stuck', '-o', 'prometheus'])],
  ['retry without a scope', 2, /retry needs a scope/, inProcess(['propagations', 'retry', '--apply'])],
  ['adopt unscoped', 2, /never adopts unscoped/, aws(['adopt', 'schedule-group', '--apply'])],
  ['a schedule group name with a space', 2, /"bad name" is not a valid schedule group name/, aws(['adopt', 'schedule-group', 'bad name'])],
  // config keys and types
  ['config: unknown key', 2, /executions\.tabel: unknown key/, inProcess([...cfg({ executions: { tabel: 'x' } }), 'reap'])],
  ['config: wrong type', 2, /executions\.max: expected number, received string/, inProcess([...cfg({ executions: { max: '10' } }), 'reap'])],
  ['config: wrong type at the top', 2, /actor: expected string/, inProcess([...cfg({ actor: 5 }), 'reap'])],
  ['config: bad duration', 2, /database\.statementTimeout: .*"soon" is not a duration/, inProcess([...cfg({ database: { statementTimeout: 'soon' } }), 'reap'])],
  ['config: zero duration', 2, /executions\.threshold: must be greater than zero/, inProcess([...cfg({ executions: { threshold: '0m' } }), 'reap'])],
  ['config: not JSON', 2, /not valid JSON/, inProcess([...cfg('{"executions": '), 'reap'])],
  ['config: file missing', 2, /config file .* \(from --config\) does not exist/, inProcess(['--config', '/nonexistent/opsctl.json', 'reap'])],
  ['config: bad duration from the environment', 2, /environment: database\.lockTimeout: .*"10" has no unit/, inProcess(['reap'], { OPSCTL_LOCK_TIMEOUT: '10' })],
  ['config: a name longer than 63 bytes (multi-byte)', 2, /executions\.table: must be at most 63 bytes/, inProcess([...cfg({ executions: { table: 'é'.repeat(40) } }), 'reap'])],
  // identifiers with quotes, semicolons, spaces: names, never SQL
  ['identifier: table with quotes and a semicolon', 2, /table "; DROP TABLE victim; -- \(config executions\.table\) does not exist/, inProcess([...cfg({ executions: { table: EVIL } }), 'reap', '--apply'])],
  ['identifier: column with a semicolon', 2, /column "status; DROP TABLE victim" \(config executions\.status\) does not exist/, inProcess([...cfg({ executions: { status: 'status; DROP TABLE victim' } }), 'reap', '--apply'])],
  ['identifier: audit table with spaces and quotes', 2, /table audit "log"; DROP TABLE victim \(config audit\.table\) does not exist|relation .* does not exist/, inProcess([...cfg({ audit: { table: 'audit "log"; DROP TABLE victim' } }), 'reap', '--apply'])],
  ['identifier: propagations schema with a quote', 2, /does not exist/, inProcess([...cfg({ propagations: { schema: 'x"; DROP TABLE victim; --' } }), 'propagations', 'dead-letters'])],
  // the database
  ['database unreachable', 3, /cannot connect to PostgreSQL at postgres:\/\/ops:\*\*\*@127\.0\.0\.1:1\/app: connection refused/, inProcess(['executions', 'stuck'], { DATABASE_URL: `postgres://ops:${UNREACHABLE_PW}@127.0.0.1:1/app` }, false)],
  ['database unreachable (subprocess)', 3, /cannot connect to PostgreSQL .* connection refused/, subprocess(['reap', '--apply'], { DATABASE_URL: `postgres://ops:${UNREACHABLE_PW}@127.0.0.1:1/app` })],
  ['database host not found', 3, /cannot connect to PostgreSQL at .*: (host not found|no answer within the connect timeout|host unreachable)/, inProcess(['executions', 'stuck'], { DATABASE_URL: `postgres://ops:${UNREACHABLE_PW}@no-such-host.invalid:5432/app`, OPSCTL_CONNECT_TIMEOUT: '3s' }, false)],
  ['wrong password in the URL', 3, /refused the login: password authentication failed for user "postgres"/, () => cli(['reap'], { DATABASE_URL: withPassword(db.url, WRONG_PW) })],
  ['wrong password in --database-url', 3, /refused the login: password authentication failed/, () => cli(['--database-url', withPassword(db.url, WRONG_PW), 'reap', '--apply'], {})],
  ['wrong password in PGPASSWORD', 3, /refused the login: password authentication failed/, () => {
    const u = new URL(db.url);
    return cli(['executions', 'stuck'], { PGHOST: u.hostname, PGPORT: u.port, PGUSER: 'postgres', PGDATABASE: db.name, PGPASSWORD: WRONG_PW });
  }],
  ['wrong password (subprocess)', 3, /refused the login/, () => cliProcess(['propagations', 'retry', '--all'], { DATABASE_URL: withPassword(db.url, WRONG_PW) })],
  ['database does not exist', 3, /database "no_such_db_rel" does not exist/, () => cli(['reap'], { DATABASE_URL: urlFor('no_such_db_rel') })],
  ['missing table', 2, /table nope \(config executions\.table\) does not exist/, inProcess([...cfg({ executions: { table: 'nope' } }), 'executions', 'stuck'])],
  ['missing column', 2, /column "updatd_at" \(config executions\.updatedAt\) does not exist in table purchase_executions/, inProcess([...cfg({ executions: { updatedAt: 'updatd_at' } }), 'reap'])],
  // The listing checks the catalog only once the server has refused its COPY: same sentence, nothing printed, in every format.
  ['listing: missing column (-o json)', 2, /^opsctl: column "updatd_at" \(config executions\.updatedAt\) does not exist in table purchase_executions\.\n$/, inProcess([...cfg({ executions: { updatedAt: 'updatd_at' } }), 'executions', 'stuck', '-o', 'json'])],
  ['listing: missing key column (-o ndjson)', 2, /column "uid" \(config executions\.key\) does not exist in table purchase_executions/, inProcess([...cfg({ executions: { key: 'uid' } }), 'executions', 'stuck', '--limit', '0', '-o', 'ndjson'])],
  ['listing: missing table (-o ndjson)', 2, /table nope \(config executions\.table\) does not exist/, inProcess([...cfg({ executions: { table: 'nope' } }), 'executions', 'stuck', '-o', 'ndjson'])],
  ['listing: missing schema', 2, /table nowhere\.purchase_executions \(config executions\.table\) does not exist/, inProcess([...cfg({ executions: { schema: 'nowhere' } }), 'executions', 'stuck'])],
  ['listing: column with a semicolon', 2, /column "status; DROP TABLE victim" \(config executions\.status\) does not exist/, inProcess([...cfg({ executions: { status: 'status; DROP TABLE victim' } }), 'executions', 'stuck', '-o', 'ndjson'])],
  ['missing propagations column', 2, /column "failed" \(config propagations\.columns\.failedAt\) does not exist/, inProcess([...cfg({ propagations: { columns: { failedAt: 'failed' } } }), 'propagations', 'retry', '--all'])],
  ['missing audit table on --apply', 2, /(audit_missing|audit\.table).* does not exist/, inProcess([...cfg({ audit: { table: 'audit_missing' } }), 'reap', '--older-than', '10m', '--apply'])],
  // AWS
  ['missing AWS credentials (subprocess, nothing reachable)', 3, /^opsctl: no AWS credentials found/, () =>
    cliProcess(['--config', sgConfig(), 'schedule-groups'], {
      AWS_ENDPOINT_URL_SCHEDULER: emu.url,
      AWS_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: '/nonexistent/config',
      AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials',
      HOME: '/nonexistent',
    })],
  ['AccessDenied on listing', 3, /AWS denied scheduler:ListScheduleGroups .*IAM/, withFault('ListScheduleGroups', 'AccessDeniedException', aws(['schedule-groups']))],
  ['AccessDenied on TagResource during --apply', 3, /AWS denied scheduler:TagResource \(region us-east-1, endpoint http:/, withFault('TagResource', 'AccessDeniedException', aws(['adopt', 'schedule-group', 'bare', '--apply']))],
  ['unknown region', 3, /unknown AWS region "ap-moon-9": EventBridge Scheduler is not offered there/, aws(['schedule-groups'], { AWS_REGION: 'ap-moon-9', AWS_ENDPOINT_URL_SCHEDULER: '' })],
  ['not a region name', 3, /"Mars" is not an AWS region name/, aws(['schedule-groups', '--region', 'Mars'])],
  ['no region', 3, /no AWS region is set/, aws(['adopt', 'schedule-group', 'bare'], { AWS_REGION: '' })],
  ['Scheduler endpoint unreachable', 3, /cannot reach the Scheduler endpoint .*ECONNREFUSED/, aws(['schedule-groups'], { AWS_ENDPOINT_URL_SCHEDULER: 'http://127.0.0.1:1' })],
];

describe('bad input matrix', () => {
  let before: string;
  beforeAll(async () => {
    before = await databaseChecksum(db.client);
  });

  it.each(MATRIX)('%s → exit %i, one sentence, no stack, no secret', async (_what, code, message, run) => {
    const r = await run();
    expect(r.code).toBe(code);
    expect(expectOneSentence(r.stderr)).toBeNull();
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
    for (const s of secrets()) {
      expect(r.stderr).not.toContain(s);
      expect(r.stdout).not.toContain(s);
    }
  });

  it('nothing in the matrix wrote anything, and no identifier was ever executed as SQL', async () => {
    expect((await db.client.query("SELECT to_regclass('victim') IS NOT NULL AS ok")).rows[0].ok).toBe(true);
    expect(await databaseChecksum(db.client)).toBe(before);
  });

  it('a table and columns literally named with quotes, semicolons and spaces just work', async () => {
    await db.client.query(`CREATE TABLE ${'"' + EVIL.replace(/"/g, '""') + '"'} ("the id" uuid PRIMARY KEY DEFAULT gen_random_uuid(), "St;atus" text NOT NULL, "up""dated" timestamptz NOT NULL, "err or" text)`);
    await db.client.query(`INSERT INTO ${'"' + EVIL.replace(/"/g, '""') + '"'} ("St;atus", "up""dated") VALUES ('running', now() - interval '1 day'), ('done', now() - interval '1 day')`);
    const c = cfg({ executions: { table: EVIL, key: 'the id', status: 'St;atus', updatedAt: 'up"dated', error: 'err or', transitionedAt: null, stuckStatuses: ['running'], failedStatus: 'dead' } });
    const r = await cli([...c, 'reap', '--apply', '-o', 'json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.json().summary.reaped).toBe(1);
    expect((await db.client.query("SELECT to_regclass('victim') IS NOT NULL AS ok")).rows[0].ok).toBe(true);
  });

  it('config show masks the database password; no command prints it, even on success', async () => {
    const url = withPassword(db.url, WRONG_PW);
    const shown = await cli(['config', 'show', '-o', 'json'], { DATABASE_URL: url });
    expect(shown.code).toBe(0);
    const ok = await cli(['reap', '-o', 'json'], env);
    expect(ok.code).toBe(0);
    for (const r of [shown, ok]) for (const s of secrets()) expect(r.stdout + r.stderr).not.toContain(s);
    expect(shown.stdout).toContain('***');
  });
});
