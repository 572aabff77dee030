import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshDatabase, noPassword, serverPassword } from '../support/db.js';
import { cli, cliProcess } from '../support/cli.js';
import { awsEnv, emulator, sgConfig } from '../support/aws.js';
import { jobsConfig } from '../support/jobs.js';
import { configFile } from '../support/reliability.js';
import { REFERENCE_SCHEMA_SQL } from '../../src/reference/schema.js';
import { RIVER_SCHEMA_SQL } from '../../src/reference/queues/river.js';
import type { SchedulerEmulator } from '../../src/emulator/scheduler-emulator.js';

// `… show ID`: one item whole, on the reference schemas in a real PostgreSQL (and River's own
// schema), schedule groups against the Scheduler emulator.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let env: NodeJS.ProcessEnv;
let audited: string;
let plain: string;

beforeAll(async () => {
  db = await freshDatabase('show', REFERENCE_SCHEMA_SQL + RIVER_SCHEMA_SQL);
  env = { DATABASE_URL: db.url };
  const dir = mkdtempSync(join(tmpdir(), 'opsctl-show-'));
  audited = join(dir, 'audited.json');
  writeFileSync(audited, JSON.stringify({ actor: 'test-operator', audit: { table: 'audit_log' } }));
  plain = join(dir, 'plain.json');
  writeFileSync(plain, JSON.stringify({}));
});
afterAll(async () => {
  await db.drop();
});

const LONG_ERROR = `worker crashed: ${'x'.repeat(150)} end-of-error`;

describe('executions show', () => {
  it('after reap --apply: every column, the status named, the full error, the age and the audit row (table, json, ndjson)', async () => {
    const id = (
      await db.client.query("INSERT INTO purchase_executions (status, error, updated_at) VALUES ('running', $1, now() - interval '2 hours') RETURNING id::text", [LONG_ERROR])
    ).rows[0].id as string;
    const before = await cli(['--config', audited, 'executions', 'show', id, '-o', 'json'], env);
    expect(before.code).toBe(0);
    const b = before.json();
    expect(b.item.status).toBe('running');
    expect(b.item.error).toBe(LONG_ERROR);
    expect(b.item.ageSeconds).toBeGreaterThan(7000);
    expect(Object.keys(b.item.row).sort()).toEqual(['created_at', 'error', 'execution_id', 'id', 'status', 'transitioned_at', 'transitioned_by', 'updated_at']);
    expect(b.audit).toEqual([]);

    const reap = await cli(['--config', audited, 'reap', '--older-than', '1h', '--apply', '--reason', 'INC-27 executor crash', '-o', 'json'], env);
    expect(reap.code).toBe(0);

    const table = await cli(['--config', audited, 'executions', 'show', id], env);
    expect(table.code).toBe(0);
    expect(table.stdout).toContain(`Execution ${id} in purchase_executions`);
    expect(table.stdout).toMatch(/│ status\s+│ failed/);
    expect(table.stdout).toContain('age (database clock)');
    expect(table.stdout).toContain('Audit history');
    expect(table.stdout).toContain('test-operator');
    expect(table.stdout).toContain('execution.reaped');

    const json = (await cli(['--config', audited, 'executions', 'show', id, '-o', 'json'], env)).json();
    expect(Object.keys(json)).toEqual(['item', 'audit']);
    expect(json.item.status).toBe('failed');
    expect(json.item.row.id).toBe(id);
    expect(json.audit).toHaveLength(1);
    expect(json.audit[0]).toMatchObject({ kind: 'execution.reaped', actor: 'test-operator', resourceType: 'purchase_executions', resourceId: id });
    expect(json.audit[0].metadata.reason).toBe('INC-27 executor crash');

    // The key compared in its own type: a uuid in capitals is the same row, with the same audit rows.
    const upper = (await cli(['--config', audited, 'executions', 'show', id.toUpperCase(), '-o', 'json'], env)).json();
    expect(upper.item.id).toBe(id);
    expect(upper.audit).toHaveLength(1);

    const nd = await cli(['--config', audited, 'executions', 'show', id, '-o', 'ndjson'], env);
    expect(nd.stdout.trim().split('\n')).toHaveLength(1);
    // The same object (its age aside: the database clock moved on).
    const line = JSON.parse(nd.stdout);
    expect({ ...line, item: { ...line.item, ageSeconds: 0 } }).toEqual({ ...json, item: { ...json.item, ageSeconds: 0 } });
  });

  it('control characters in a value are shown escaped in the table, kept in json', async () => {
    const error = 'line one\nline two \x1b[31mred\x1b[0m';
    const id = (await db.client.query("INSERT INTO purchase_executions (status, error) VALUES ('failed', $1) RETURNING id::text", [error])).rows[0].id as string;
    const table = await cli(['--config', plain, 'executions', 'show', id], env);
    expect(table.stdout).not.toContain('\x1b');
    expect(table.stdout).toContain('line one');
    expect(table.stdout).toContain('line two');
    expect((await cli(['--config', plain, 'executions', 'show', id, '-o', 'json'], env)).json().item.error).toBe(error);
  });

  it('with no audit table: the local journal lines of this database that name the row (a reap\'s batch line read back)', async () => {
    const state = mkdtempSync(join(tmpdir(), 'opsctl-show-state-'));
    const e = { ...env, OPSCTL_STATE_DIR: state };
    const id = (await db.client.query("INSERT INTO purchase_executions (status, updated_at) VALUES ('approved', now() - interval '3 hours') RETURNING id::text")).rows[0].id as string;
    const none = await cli(['--config', plain, 'executions', 'show', id], e);
    expect(none.stdout).toContain('No audit history: audit.table is not configured, and no line of the local journal names this item.');
    // Another database's line for the same key is another row's: left out.
    const [{ system }] = (await db.client.query('SELECT system_identifier::text AS system FROM pg_control_system()')).rows;
    writeFileSync(
      join(state, 'audit.jsonl'),
      `${JSON.stringify({ at: '2026-01-01T00:00:00.000Z', actor: 'elsewhere', kind: 'execution.reaped', resourceType: 'purchase_executions', resourceId: id, summary: 'another database', metadata: {}, target: { kind: 'postgres', name: null, system, database: 'some_other_db' } })}\n`,
    );
    const reap = await cli(['--config', plain, 'reap', '--older-than', '2h', '--apply', '--yes', '--max', '0', '-o', 'json'], e);
    expect(reap.code).toBe(0);
    expect(reap.json().items.map((i: { id: string }) => i.id)).toContain(id);
    const table = await cli(['--config', plain, 'executions', 'show', id], e);
    expect(table.code).toBe(0);
    expect(table.stdout).toContain('Local journal (newest first)');
    expect(table.stdout).toContain('execution.reaped');
    expect(table.stdout).not.toContain('another database');
    expect(table.stdout).not.toContain('audit.table is not configured');
    const json = (await cli(['--config', plain, 'executions', 'show', id, '-o', 'json'], e)).json();
    expect(json.journal).toHaveLength(1);
    expect(json.journal[0]).toMatchObject({ kind: 'execution.reaped', resourceId: id, summary: expect.stringContaining('reaped after 2h in approved state'), target: { kind: 'postgres', database: db.name } });
    expect(json.journal[0].metadata).toMatchObject({ from_status: 'approved', to_status: 'failed', before: { status: 'approved' }, after: { status: 'failed' }, image: { id } });
  });

  it('the full error is not cut in the table', async () => {
    const id = (await db.client.query("INSERT INTO purchase_executions (status, error) VALUES ('failed', $1) RETURNING id::text", [LONG_ERROR])).rows[0].id as string;
    const r = await cli(['--config', plain, 'executions', 'show', id], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(LONG_ERROR);
    expect(r.stdout).toContain('audit.table is not configured');
  });

  it('an id that does not exist: exit 1, one sentence; a malformed id: exit 2 (the built CLI)', async () => {
    const missing = await cliProcess(['executions', 'show', '00000000-0000-4000-8000-000000000000'], env);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe('');
    expect(missing.stderr.trim()).toBe('opsctl: no execution with id 00000000-0000-4000-8000-000000000000 in purchase_executions.');
    const bad = await cliProcess(['executions', 'show', 'not-a-uuid'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toContain('"not-a-uuid" is not a valid key of purchase_executions.id');
    expect(bad.stderr).toContain('uuid');
  });
});

describe('show over targets', () => {
  it('--all-targets: one well-formed document, the item from the target that has it, exit 1 for the one that does not', async () => {
    const other = await freshDatabase('show_other');
    try {
      const id = (await db.client.query("INSERT INTO purchase_executions (status) VALUES ('running') RETURNING id::text")).rows[0].id as string;
      const cfg = configFile({ targets: { here: { database: { url: noPassword(db.url), passwordEnv: 'PW' } }, there: { database: { url: noPassword(other.url), passwordEnv: 'PW' } } } });
      const r = await cli(['--config', cfg, 'executions', 'show', id, '--all-targets', '-o', 'json'], { PW: serverPassword() });
      expect(r.code).toBe(1);
      const doc = r.json();
      expect(JSON.stringify(doc)).toContain(id);
      expect(r.stderr).toContain('1 of 2 target(s) failed: there');
      expect(JSON.stringify(doc)).toContain(`no execution with id ${id} in purchase_executions`);
    } finally {
      await other.drop();
    }
  });
});

describe('propagations show', () => {
  it('a dead letter whole: state, error class, every column; after retry --apply its audit row', async () => {
    const id = (
      await db.client.query(
        "INSERT INTO pending_propagations (kind, team_id, attempts, last_error, failed_at) VALUES ('tier_elevation', gen_random_uuid(), 10, 'HTTP 503 from billing for team 4f1c2d3e-aaaa-4bbb-8ccc-123456789abc', now()) RETURNING id::text",
      )
    ).rows[0].id as string;
    const dead = await cli(['--config', audited, 'propagations', 'show', id, '-o', 'json'], env);
    expect(dead.code).toBe(0);
    const d = dead.json();
    expect(d.item.state).toBe('dead-lettered');
    expect(d.item.errorClass).toBe('HTTP <n> from billing for team <uuid>');
    expect(d.item.row.kind).toBe('tier_elevation');
    expect(d.item.row.payload).toEqual({});
    expect(d.audit).toEqual([]);

    const retry = await cli(['--config', audited, 'propagations', 'retry', id, '--apply', '--reason', 'INC-7 fixed', '-o', 'json'], env);
    expect(retry.code).toBe(0);
    const after = await cli(['--config', audited, 'propagations', 'show', id], env);
    expect(after.code).toBe(0);
    expect(after.stdout).toMatch(/│ state\s+│ pending/);
    expect(after.stdout).toContain('Audit history');
    expect(after.stdout).toContain('propagation.operator_retry');
    expect(after.stdout).toContain('INC-7 fixed');
  });

  it('missing: exit 1; malformed: exit 2', async () => {
    const missing = await cli(['propagations', 'show', '00000000-0000-4000-8000-000000000000'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe('opsctl: no propagation with id 00000000-0000-4000-8000-000000000000 in pending_propagations.');
    const bad = await cli(['propagations', 'show', '42'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('"42" is not a valid key of pending_propagations.id');
  });
});

describe('jobs show (River)', () => {
  it('the job row whole with its errors array; after retry --apply its audit row', async () => {
    const river = jobsConfig('river');
    const id = (
      await db.client.query(
        `INSERT INTO river_job (state, kind, queue, args, attempt, max_attempts, attempted_at, attempted_by, finalized_at, scheduled_at, errors, metadata)
         VALUES ('discarded', 'send_email', 'default', '{"to":"a@example.com"}', 3, 3, now() - interval '1 hour', ARRAY['host-1_worker'], now(), now() - interval '2 hours',
                 ARRAY[$1::jsonb, $2::jsonb], '{}') RETURNING id::text`,
        [JSON.stringify({ at: '2026-01-01T00:00:00Z', attempt: 1, error: 'smtp timeout', trace: '' }), JSON.stringify({ at: '2026-01-01T00:01:00Z', attempt: 2, error: 'smtp refused', trace: '' })],
      )
    ).rows[0].id as string;
    const r = await cli(['--config', river, 'jobs', 'show', id, '-o', 'json'], env);
    expect(r.code).toBe(0);
    const j = r.json();
    expect(j.item).toMatchObject({ queue: 'river', table: 'river_job', id });
    expect(j.item.row.state).toBe('discarded');
    expect(j.item.row.args).toEqual({ to: 'a@example.com' });
    expect(j.item.row.errors.map((e: { error: string }) => e.error)).toEqual(['smtp timeout', 'smtp refused']);
    expect(j.audit).toEqual([]);

    expect((await cli(['--config', river, 'jobs', 'retry', id, '--apply', '-o', 'json'], env)).code).toBe(0);
    const after = await cli(['--config', river, 'jobs', 'show', id], env);
    expect(after.code).toBe(0);
    expect(after.stdout).toContain(`River job ${id} in river_job`);
    expect(after.stdout).toContain('smtp refused');
    expect(after.stdout).toContain('job.operator_retry');
  });

  it('missing: exit 1; malformed: exit 2', async () => {
    const river = jobsConfig('river');
    const missing = await cli(['--config', river, 'jobs', 'show', '987654321'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe('opsctl: no River job with id 987654321 in river_job.');
    const bad = await cli(['--config', river, 'jobs', 'show', 'abc'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('job id "abc" is not a valid bigint');
    const big = await cli(['--config', river, 'jobs', 'show', '99999999999999999999'], env);
    expect(big.code).toBe(2);
  });
});

describe('schedule-groups show', () => {
  let emu: SchedulerEmulator;
  beforeAll(async () => {
    emu = await emulator();
  });
  afterAll(async () => {
    await emu.close();
  });

  it('after adopt --apply: the tags, the class, the schedule count and the journal line', async () => {
    const cfg = sgConfig();
    emu.seedGroup('show-bare', { env: 'prod' });
    emu.seedSchedule('show-bare', 's1');
    emu.seedSchedule('show-bare', 's2');
    const before = await cli(['--config', cfg, 'schedule-groups', 'show', 'show-bare', '-o', 'json'], awsEnv(emu));
    expect(before.code).toBe(0);
    expect(before.json().item).toMatchObject({ name: 'show-bare', class: 'unowned', schedules: 2, tags: { env: 'prod' } });

    const adopt = await cli(['--config', cfg, 'adopt', 'schedule-group', 'show-bare', '--apply', '--reason', 'INC-12', '-o', 'json'], awsEnv(emu));
    expect(adopt.code).toBe(0);

    const json = (await cli(['--config', cfg, 'schedule-groups', 'show', 'show-bare', '-o', 'json'], awsEnv(emu))).json();
    expect(json.item).toMatchObject({ name: 'show-bare', state: 'ACTIVE', class: 'owned', schedules: 2 });
    expect(json.item.tags).toMatchObject({ env: 'prod', team: 'payments', 'alchemy::id': 'show-bare', 'alchemy::stack': 'billing' });
    expect(json.audit).toEqual([]);
    expect(json.journal).toHaveLength(1);
    expect(json.journal[0]).toMatchObject({ kind: 'schedule_group.adopted', resourceType: 'schedule_group', resourceId: 'show-bare' });
    expect(json.journal[0].summary).toContain('INC-12');

    const table = await cli(['--config', cfg, 'schedule-groups', 'show', 'show-bare'], awsEnv(emu));
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/│ class\s+│ owned/);
    expect(table.stdout).toMatch(/│ tag team\s+│ payments/);
    expect(table.stdout).toContain('Local journal');
    expect(table.stdout).toContain('schedule_group.adopted');
  });

  it('with audit.table: the audit rows of the group', async () => {
    const cfg = sgConfig({}, { audit: { table: 'audit_log' }, actor: 'test-operator' });
    emu.seedGroup('show-audited');
    const e = awsEnv(emu, { DATABASE_URL: db.url });
    expect((await cli(['--config', cfg, 'adopt', 'schedule-group', 'show-audited', '--apply', '-o', 'json'], e)).code).toBe(0);
    const json = (await cli(['--config', cfg, 'schedule-groups', 'show', 'show-audited', '-o', 'json'], e)).json();
    expect(json.item.class).toBe('owned');
    expect(json.audit).toHaveLength(1);
    expect(json.audit[0]).toMatchObject({ kind: 'schedule_group.adopted', resourceType: 'schedule_group', resourceId: 'show-audited', actor: 'test-operator' });
  });

  it('an audit table whose resource_id is a uuid: the group\'s rows are found by metadata.resource_id', async () => {
    await db.client.query(`CREATE TABLE audit_uuid (id bigserial PRIMARY KEY, team_id uuid, actor text NOT NULL, kind text NOT NULL, resource_type text NOT NULL,
                           resource_id uuid, summary text NOT NULL, metadata jsonb NOT NULL DEFAULT '{}', created_at timestamptz NOT NULL DEFAULT now())`);
    const cfg = sgConfig({}, { audit: { table: 'audit_uuid' }, actor: 'test-operator' });
    emu.seedGroup('show-uuid-audit');
    const e = awsEnv(emu, { DATABASE_URL: db.url });
    expect((await cli(['--config', cfg, 'adopt', 'schedule-group', 'show-uuid-audit', '--apply', '-o', 'json'], e)).code).toBe(0);
    expect((await db.client.query("SELECT resource_id, metadata->>'resource_id' AS rid FROM audit_uuid WHERE kind <> 'opsctl.run'")).rows).toEqual([{ resource_id: null, rid: 'show-uuid-audit' }]);
    const json = (await cli(['--config', cfg, 'schedule-groups', 'show', 'show-uuid-audit', '-o', 'json'], e)).json();
    expect(json.audit).toHaveLength(1);
    expect(json.audit[0]).toMatchObject({ kind: 'schedule_group.adopted', resourceId: 'show-uuid-audit' });
  });

  it('a group that does not exist: exit 1; a name that is not one: exit 2', async () => {
    const cfg = sgConfig();
    const missing = await cli(['--config', cfg, 'schedule-groups', 'show', 'no-such-group'], awsEnv(emu));
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe('opsctl: no schedule group named no-such-group in us-east-1.');
    const bad = await cli(['--config', cfg, 'schedule-groups', 'show', 'bad name!'], awsEnv(emu));
    expect(bad.code).toBe(2);
  });
});
