import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import type { SchedulerEmulator } from '../../src/emulator/scheduler-emulator.js';
import { cli } from '../support/cli.js';
import { awsEnv, emulator, owner, sgConfig } from '../support/aws.js';
import { freshDatabase } from '../support/db.js';
import { expectOneSentence } from '../support/reliability.js';

/**
 * Issue 25.8: AWS changes audited into the reference `audit_log`, whose resource_id is a uuid.
 * A group name does not fit there: it goes in metadata with resource_id NULL, decided from the
 * catalog before the first write. A table that cannot record the changes at all is refused
 * before any AWS call, with nothing changed.
 */
const auditLog = (resourceId: string, extra = '') => `
CREATE TABLE audit_log (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  team_id uuid,
  user_id uuid,
  actor text NOT NULL,
  kind text NOT NULL,
  resource_type text NOT NULL,
  resource_id ${resourceId},
  summary text NOT NULL,
  metadata jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now()${extra}
);`;

let emu: SchedulerEmulator;
beforeEach(async () => {
  emu = await emulator();
});
afterEach(async () => {
  await emu.close();
});

const UNOWNED = ['u-1', 'u-2', 'u-3', 'u-4'];
const tagsOf = (name: string) => emu.groups().find((g) => g.name === name)?.tags;
const adopt = (url: string) =>
  cli(['--config', sgConfig({}, { actor: 'bob', audit: { table: 'audit_log', schema: null }, database: { url } }), 'adopt', 'schedule-group', '--all-unowned', '--apply', '--yes', '--reason', 'INC-8', '-o', 'json'], awsEnv(emu));

describe('adopt --all-unowned --apply with audit.table = the reference audit_log (resource_id uuid)', () => {
  it('the 4 groups are tagged and get audit rows: resource_id NULL, the name in metadata; exit 0', async () => {
    const db = await freshDatabase('sgauditref', auditLog('uuid'));
    try {
      for (const g of UNOWNED) emu.seedGroup(g, { env: 'prod' });
      emu.seedGroup('mine', { ...owner('mine'), team: 'payments' });
      const r = await adopt(db.url);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.json().summary.adopted).toBe(4);
      const rows = (await db.client.query("SELECT actor, kind, resource_type, resource_id, metadata FROM audit_log WHERE kind <> 'opsctl.run' ORDER BY metadata->>$1", ['name'])).rows;
      expect(rows.map((row) => row.metadata.name)).toEqual(UNOWNED);
      for (const row of rows) {
        expect(row).toMatchObject({ actor: 'bob', kind: 'schedule_group.adopted', resource_type: 'schedule_group', resource_id: null });
        expect(row.metadata).toMatchObject({ resource_id: row.metadata.name, reason: 'INC-8' });
      }
      // The run's record: its id fits the uuid column.
      const record = (await db.client.query("SELECT actor, resource_type, resource_id::text AS resource_id, team_id, metadata FROM audit_log WHERE kind = 'opsctl.run'")).rows;
      expect(record).toHaveLength(1);
      expect(record[0]).toMatchObject({ actor: 'bob', resource_type: 'opsctl_run', resource_id: r.json().summary.runId, team_id: null });
      expect(record[0].metadata).toMatchObject({ reason: 'INC-8', outcomes: { applied: 4 }, exitCode: 0 });
    } finally {
      await db.drop();
    }
  });
});

describe('an audit insert that fails after the changes were made in AWS', () => {
  it('the changes are reported as adopted, each saying its audit is missing; the sentence in stderr and the JSON; exit 3', async () => {
    // Passes the catalog check; the INSERT itself is refused (a CHECK constraint).
    const db = await freshDatabase('sgauditfail', auditLog('uuid', ",\n  CHECK (summary NOT LIKE 'adopted u-%')"));
    try {
      for (const g of UNOWNED) emu.seedGroup(g, { env: 'prod' });
      const r = await adopt(db.url);
      expect(r.code).toBe(3);
      const doc = JSON.parse(r.stdout);
      expect(doc.items.map((i: any) => [i.name, i.outcome])).toEqual(UNOWNED.map((g) => [g, 'adopted']));
      for (const i of doc.items) expect(i.detail).toMatch(/its audit could not be recorded$/);
      for (const g of UNOWNED) expect(tagsOf(g)).toMatchObject(owner(g));
      expect(doc.summary.aborted).toMatch(/4 change\(s\) were made in AWS but their audit could not be recorded: .*check constraint/);
      expect(expectOneSentence(r.stderr)).toBeNull();
      expect(r.stderr).toMatch(/^opsctl: 4 change\(s\) were made in AWS but their audit could not be recorded/);
      expect((await db.client.query("SELECT count(*)::int AS n FROM audit_log WHERE kind <> 'opsctl.run'")).rows[0].n).toBe(0);
    } finally {
      await db.drop();
    }
  });
});

describe('an audit table that cannot record the changes: refused before any AWS call, nothing changed', () => {
  it.each([
    ['resource_id uuid NOT NULL', auditLog('uuid NOT NULL'), 2, /^opsctl: audit table audit_log requires "resource_id" \(NOT NULL\), which opsctl cannot fill/],
    ['a NOT NULL column opsctl does not write, with no default', auditLog('text', ',\n  request_id uuid NOT NULL'), 2, /requires "request_id" \(NOT NULL\)/],
    ['no audit table', '', 2, /^opsctl: audit table audit_log \(config audit.table\) does not exist/],
  ])('%s: refused with one sentence, nothing changed', async (_what, schema, code, message) => {
    const db = await freshDatabase('sgauditno', schema);
    try {
      for (const g of UNOWNED) emu.seedGroup(g, { env: 'prod' });
      const r = await adopt(db.url);
      expect(r.code).toBe(code);
      expect(expectOneSentence(r.stderr)).toBeNull();
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toMatch(/Nothing was changed\.$/m);
      expect(emu.callCounts()).toEqual({});
      for (const g of UNOWNED) expect(tagsOf(g)).toEqual({ env: 'prod' });
    } finally {
      await db.drop();
    }
  });

  describe('a role without INSERT on the audit table', () => {
    const role = `opsctl_noinsert_${Math.random().toString(36).slice(2, 8)}`;
    let db: Awaited<ReturnType<typeof freshDatabase>>;
    beforeAll(async () => {
      db = await freshDatabase('sgauditpriv', auditLog('uuid'));
      await db.client.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'; GRANT SELECT ON audit_log TO ${role}`);
    });
    afterAll(async () => {
      await db.drop();
      const admin = new pg.Client({ connectionString: db.url.replace(/\/[^/]+$/, '/postgres') });
      await admin.connect();
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.end();
    });

    it('exit 3 (PostgreSQL refuses us), one sentence, no AWS call', async () => {
      for (const g of UNOWNED) emu.seedGroup(g, { env: 'prod' });
      const u = new URL(db.url);
      u.username = role;
      u.password = 'pw';
      const r = await adopt(u.toString());
      expect(r.code).toBe(3);
      expect(expectOneSentence(r.stderr)).toBeNull();
      expect(r.stderr).toMatch(/does not allow .* to INSERT into the audit table audit_log/);
      expect(emu.callCounts()).toEqual({});
      for (const g of UNOWNED) expect(tagsOf(g)).toEqual({ env: 'prod' });
    });
  });
});
