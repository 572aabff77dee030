import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { SchedulerEmulator } from '../../src/emulator/scheduler-emulator.js';
import { freshDatabase } from '../support/db.js';
import { cli } from '../support/cli.js';
import { awsEnv, emulator, owner, sgConfig } from '../support/aws.js';
import { SCHEDULER_SCHEMA_SQL } from '../support/scheduler-schema.js';

const example = (f: string) => readFileSync(new URL(`../../examples/${f}`, import.meta.url), 'utf8');

describe('examples/grants.sql: the README GRANT script is enough, and no more', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  const suffix = Math.random().toString(36).slice(2, 8);
  const as = (role: string, pw: string) => {
    const u = new URL(db.url);
    u.username = role;
    u.password = pw;
    return u.toString();
  };
  beforeAll(async () => {
    db = await freshDatabase('grants');
    // Role names are cluster-wide: suffix them so parallel runs never collide.
    const sql = example('grants.sql').replaceAll('opsctl_readonly', `opsctl_readonly_${suffix}`).replaceAll('opsctl_operator', `opsctl_operator_${suffix}`);
    await db.client.query(sql);
    await db.client.query(SCHEDULER_SCHEMA_SQL);
    await db.client.query(example('grants-workers.sql').replaceAll('opsctl_readonly', `opsctl_readonly_${suffix}`).replaceAll('opsctl_operator', `opsctl_operator_${suffix}`));
    await db.client.query(
      "INSERT INTO scheduler.workers (id, host, last_heartbeat_at) VALUES ('w-gone', 'h1', now() - interval '1 hour'); INSERT INTO scheduler.runs (status, worker_id) VALUES ('running', 'w-gone'); INSERT INTO scheduler.locks (name, holder, expires_at) VALUES ('nightly', 'w-gone', now() - interval '5 minutes')",
    );
    await db.client.query(
      "INSERT INTO purchase_executions (status, updated_at) VALUES ('running', now() - interval '1 hour'); INSERT INTO pending_propagations (kind, team_id, attempts, failed_at) VALUES ('k', gen_random_uuid(), 10, now() - interval '40 days')",
    );
  });
  afterAll(async () => {
    await db.drop();
    const admin = new pg.Client({ connectionString: db.url.replace(/\/[^/]+$/, '/postgres') });
    await admin.connect();
    await admin.query(`DROP ROLE IF EXISTS opsctl_operator_${suffix}; DROP ROLE IF EXISTS opsctl_readonly_${suffix}`);
    await admin.end();
  });

  it('the read-only role lists and plans, and cannot apply', async () => {
    const env = { DATABASE_URL: as(`opsctl_readonly_${suffix}`, 'change-me-readonly') };
    expect((await cli(['executions', 'stuck'], env)).code).toBe(0);
    expect((await cli(['reap'], env)).code).toBe(0);
    expect((await cli(['propagations', 'dead-letters'], env)).code).toBe(0);
    const apply = await cli(['reap', '--apply'], env);
    expect(apply.code).not.toBe(0);
    expect(apply.stderr).toMatch(/permission denied/);
  });

  it('grants-workers.sql: the read-only role lists dead workers and expired locks; the operator reaps their rows', async () => {
    const ro = { DATABASE_URL: as(`opsctl_readonly_${suffix}`, 'change-me-readonly') };
    const dead = await cli(['workers', 'dead', '-o', 'json'], ro);
    expect(dead.stderr).toBe('');
    expect(dead.json().items.map((i: any) => i.id)).toEqual(['w-gone']);
    const locks = await cli(['locks', 'expired', '-o', 'json'], ro);
    expect(locks.stderr).toBe('');
    expect(locks.json().items.map((i: any) => i.name)).toEqual(['nightly']);
    expect((await cli(['reap', '--dead-workers'], ro)).code).toBe(0);
    const refused = await cli(['reap', '--dead-workers', '--apply'], ro);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/permission denied/);
    const op = { DATABASE_URL: as(`opsctl_operator_${suffix}`, 'change-me-operator'), OPSCTL_ACTOR: 'grant-test' };
    const reap = await cli(['reap', '--dead-workers', '--apply', '-o', 'json'], op);
    expect(reap.stderr).toBe('');
    expect(reap.json().summary.reaped).toBe(1);
    const { rows } = await db.client.query("SELECT status FROM scheduler.runs WHERE worker_id = 'w-gone'");
    expect(rows).toEqual([{ status: 'failed' }]);
  });

  it('the operator role can reap, retry and purge with audit rows', async () => {
    const env = { DATABASE_URL: as(`opsctl_operator_${suffix}`, 'change-me-operator'), OPSCTL_ACTOR: 'grant-test' };
    const cfg = sgConfig({}, { audit: { table: 'audit_log' } });
    const reap = await cli(['--config', cfg, 'reap', '--apply', '-o', 'json'], env);
    expect(reap.stderr).toBe('');
    expect(reap.json().summary.reaped).toBe(1);
    const purge = await cli(['--config', cfg, 'propagations', 'purge', '--older-than', '30d', '--apply', '--expect', '1', '-o', 'json'], env);
    expect(purge.stderr).toBe('');
    expect(purge.code).toBe(0);
  });
});

describe('examples/iam-policy.json covers every Scheduler action opsctl calls', () => {
  let emu: SchedulerEmulator;
  beforeAll(async () => {
    emu = await emulator();
  });
  afterAll(async () => {
    await emu.close();
  });

  it('list, adopt, reconcile --create-missing and check use only allowed actions', async () => {
    const policy = JSON.parse(example('iam-policy.json'));
    const allowed = new Set<string>(policy.Statement.flatMap((s: any) => s.Action));
    // The emulator counts operations by name; GetResources is the Tagging API's (tag:), the rest are Scheduler's.
    const actionOf = (op: string) => (op === 'GetResources' ? `tag:${op}` : `scheduler:${op}`);
    emu.seedGroup('bare');
    emu.seedGroup('drift', { ...owner('drift'), team: 'old', 'alchemy::x': 'y' });
    emu.seedSchedule('bare', 's1');
    const cfg = sgConfig({ expected: ['needed'] });
    const tagCfg = sgConfig({ expected: ['needed'], tagSource: 'tagging-api' });
    emu.resetCallCounts();
    for (const args of [
      ['schedule-groups', '--with-schedules'],
      ['adopt', 'schedule-group', '--all-unowned', '--apply'],
      ['schedule-groups', 'reconcile', '--create-missing', '--apply'],
      ['check', '--only', 'schedule-groups'],
      ['--config', tagCfg, 'schedule-groups'],
    ]) {
      const r = await cli(args[0] === '--config' ? args : ['--config', cfg, ...args], awsEnv(emu));
      expect(r.stderr, args.join(' ')).toBe('');
    }
    const used = Object.keys(emu.callCounts());
    expect(used.length).toBeGreaterThanOrEqual(6);
    expect(used).toContain('GetResources');
    for (const op of used) expect(allowed.has(actionOf(op)), op).toBe(true);
  });
});
