import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import parsePrometheus from 'parse-prometheus-text-format';
import { marked } from 'marked';
import type { SchedulerEmulator } from '../../src/emulator/scheduler-emulator.js';
import { freshDatabase, databaseChecksum } from '../support/db.js';
import { cli } from '../support/cli.js';
import { awsEnv, emulator, owner, OWNER } from '../support/aws.js';

let db: Awaited<ReturnType<typeof freshDatabase>>;
let emu: SchedulerEmulator;
let dir: string;

beforeAll(async () => {
  db = await freshDatabase('check');
  dir = mkdtempSync(join(tmpdir(), 'opsctl-check-'));
});
afterAll(async () => {
  await db.drop();
});
beforeEach(async () => {
  emu = await emulator();
  emu.seedGroup('billing-a', { ...owner('billing-a'), team: 'payments' });
  await db.client.query('TRUNCATE purchase_executions, pending_propagations, audit_log');
});
afterEach(async () => {
  await emu.close();
});

function config(extra: Record<string, unknown> = {}): string {
  const f = join(dir, `c-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(
    f,
    JSON.stringify({ scheduleGroups: { ownerTags: OWNER, ownerKeyPrefix: 'alchemy::', desiredTags: { team: 'payments' } }, ...extra }),
  );
  return f;
}
const env = () => ({ DATABASE_URL: db.url, ...awsEnv(emu) });
/** Statuses of the checks that ran (checks of unconfigured sections are skipped). */
const statuses = (out: any) => Object.fromEntries(out.items.filter((i: any) => i.status !== 'skipped').map((i: any) => [i.check, i.status]));

describe('opsctl check', () => {
  it('clean: exit 0, every check ok', async () => {
    const r = await cli(['--config', config(), 'check', '-o', 'json'], env());
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(statuses(r.json())).toEqual({ 'stuck-executions': 'ok', 'dead-letters': 'ok', 'pending-propagations': 'ok', 'schedule-groups': 'ok' });
    expect(r.json().summary.status).toBe('clean');
  });

  it('findings: exit 1, with counts and a worst example; and it writes nothing', async () => {
    await db.client.query("INSERT INTO purchase_executions (status, updated_at) VALUES ('running', now() - interval '2 hours'), ('completed', now() - interval '2 hours')");
    await db.client.query(
      "INSERT INTO pending_propagations (kind, team_id, attempts, last_error, failed_at) VALUES ('tier_elevation', gen_random_uuid(), 10, 'boom 42', now())",
    );
    emu.seedGroup('stray');
    const before = await databaseChecksum(db.client);
    const snap = emu.snapshot();
    const r = await cli(['--config', config(), 'check', '-o', 'json'], env());
    expect(r.code).toBe(1);
    const out = r.json();
    expect(statuses(out)).toEqual({ 'stuck-executions': 'finding', 'dead-letters': 'finding', 'pending-propagations': 'ok', 'schedule-groups': 'finding' });
    const sg = out.items.find((i: any) => i.check === 'schedule-groups');
    expect(sg.count).toBe(1);
    expect(sg.worst).toMatch(/^stray: unowned/);
    expect(out.items.find((i: any) => i.check === 'stuck-executions').worst).toMatch(/in running for 2h/);
    expect(await databaseChecksum(db.client)).toBe(before);
    expect(emu.snapshot()).toBe(snap);
  });

  it('thresholds from config decide what is a finding', async () => {
    await db.client.query("INSERT INTO purchase_executions (status, updated_at) VALUES ('running', now() - interval '2 hours')");
    const r = await cli(['--config', config({ check: { thresholds: { stuckExecutions: 5 } } }), 'check', '--only', 'executions', '-o', 'json'], env());
    expect(r.code).toBe(0);
    expect(r.json().items[0]).toMatchObject({ check: 'stuck-executions', status: 'ok', count: 1, threshold: 5 });
  });

  it('broken: a check that cannot run is unknown, never clean; exit 3', async () => {
    const missingTable = await cli(['--config', config({ propagations: { table: 'no_such_outbox' } }), 'check', '-o', 'json'], env());
    expect(missingTable.code).toBe(3);
    const s = statuses(missingTable.json());
    expect(s['dead-letters']).toBe('unknown');
    expect(s['pending-propagations']).toBe('unknown');
    expect(s['stuck-executions']).toBe('ok');
    expect(missingTable.json().items.find((i: any) => i.check === 'dead-letters').error).toMatch(/no_such_outbox/);

    emu.injectFault('ListScheduleGroups', 'AccessDeniedException', 1);
    const denied = await cli(['--config', config(), 'check', '-o', 'json'], env());
    expect(denied.code).toBe(3);
    expect(statuses(denied.json())['schedule-groups']).toBe('unknown');

    const noDb = await cli(['--config', config(), 'check', '-o', 'json'], { ...awsEnv(emu), DATABASE_URL: 'postgres://x:Pw-Never-Shown@127.0.0.1:1/none' });
    expect(noDb.code).toBe(3);
    expect(noDb.stdout).not.toContain('Pw-Never-Shown');
    expect(statuses(noDb.json())['stuck-executions']).toBe('unknown');
  });

  it('skips schedule groups when no ownership tags are configured (and says so)', async () => {
    const f = join(dir, 'noaws.json');
    writeFileSync(f, '{}');
    const r = await cli(['--config', f, 'check', '-o', 'json'], { DATABASE_URL: db.url });
    expect(r.code).toBe(0);
    const sg = r.json().items.find((i: any) => i.check === 'schedule-groups');
    expect(sg.status).toBe('skipped');
    expect(sg.error).toMatch(/ownerTags is not configured/);
    // Asked for explicitly, it cannot run: unknown.
    const only = await cli(['--config', f, 'check', '--only', 'schedule-groups', '-o', 'json'], { DATABASE_URL: db.url });
    expect(only.code).toBe(3);
  });

  it('markdown is a well-formed table with one row per check', async () => {
    await db.client.query("INSERT INTO purchase_executions (status, updated_at) VALUES ('approved', now() - interval '1 day')");
    const r = await cli(['--config', config(), 'check', '-o', 'markdown'], env());
    expect(r.code).toBe(1);
    const tokens = marked.lexer(r.stdout);
    const heading = tokens.find((t) => t.type === 'heading') as any;
    expect(heading.text).toMatch(/^opsctl check: 1 check\(s\) with findings/);
    const tables = tokens.filter((t) => t.type === 'table') as any[];
    expect(tables[0].header.map((h: any) => h.text)).toEqual(['check', 'status', 'count', 'threshold', 'worst example']);
    expect(tables[0].rows.map((r: any) => r[0].text)).toEqual(expect.arrayContaining(['stuck-executions', 'dead-letters', 'pending-propagations', 'schedule-groups']));
    expect(tables[1].rows).toHaveLength(1); // the stuck execution
  });

  it('prometheus output parses with a real parser and carries the statuses', async () => {
    await db.client.query("INSERT INTO purchase_executions (status, updated_at) VALUES ('approved', now() - interval '1 day')");
    await db.client.query(
      `INSERT INTO pending_propagations (kind, team_id, attempts, last_error, failed_at) VALUES ('we"ird\\kind', gen_random_uuid(), 10, 'x', now())`,
    );
    const r = await cli(['--config', config(), 'check', '-o', 'prometheus'], env());
    expect(r.code).toBe(1);
    const families = parsePrometheus(r.stdout) as Array<{ name: string; type: string; metrics: Array<{ labels?: Record<string, string>; value: string }> }>;
    const get = (name: string, check: string) => Number(families.find((f) => f.name === name)?.metrics.find((m) => m.labels?.check === check)?.value);
    expect(families.every((f) => f.type === 'GAUGE')).toBe(true);
    expect(get('opsctl_check_up', 'schedule-groups')).toBe(1);
    expect(get('opsctl_check_failing', 'stuck-executions')).toBe(1);
    expect(get('opsctl_check_findings', 'stuck-executions')).toBe(1);
    expect(get('opsctl_check_failing', 'dead-letters')).toBe(1);
    const kinds = families.find((f) => f.name === 'opsctl_check_breakdown')!.metrics.filter((m) => m.labels?.check === 'dead-letters');
    expect(kinds.map((m) => m.labels?.key)).toEqual(['we"ird\\kind']);
    const breakdown = families.find((f) => f.name === 'opsctl_check_breakdown')!;
    expect(breakdown.metrics.find((m) => m.labels?.check === 'schedule-groups' && m.labels?.key === 'owned')?.value).toBe('1');
  });

  it('ndjson is one line per check then a summary line; --only validates', async () => {
    const r = await cli(['--config', config(), 'check', '--only', 'executions,propagations', '-o', 'ndjson'], env());
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.check ?? l.type)).toEqual(['stuck-executions', 'dead-letters', 'pending-propagations', 'summary']);
    const bad = await cli(['check', '--only', 'everything'], env());
    expect(bad.code).toBe(2);
  });
});
