import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROWS, id, reapTwin, twinDatabases, type Db } from '../support/reap-twins.js';

/**
 * Reap with an audit table writes its audit rows in the batch's own statement (Remedy.auditsItself).
 * Those rows must be exactly what the engine's writeAudit writes for the same items: both paths
 * run here on two databases holding the same rows, and their audit rows (but for id and
 * created_at) and execution rows are compared column by column, metadata key by key.
 */
let a: Db;
let b: Db;

beforeAll(async () => {
  [a, b] = await twinDatabases('reap_audit');
});
afterAll(async () => {
  await a?.drop();
  await b?.drop();
});

async function reap(db: Db, auditInStatement: boolean) {
  const run = await reapTwin(db, { audit: { table: 'audit_log', schema: null }, auditInStatement });
  expect(Boolean(run.remedy.auditsItself)).toBe(auditInStatement);
  return run;
}

describe('reap with an audit table: audit rows written by the batch statement', () => {
  it('are identical, column by column and metadata key by key, to what writeAudit writes for the same items; so are the execution rows', async () => {
    const inStatement = await reap(a, true);
    const byEngine = await reap(b, false);

    for (const run of [inStatement, byEngine]) {
      expect(run.summary).toMatchObject({ planned: ROWS, reaped: ROWS - 2, 'skipped-locked': 1, 'race-lost': 1, errored: 0 });
      expect(run.items.find((i) => i.id === id(7))).toMatchObject({ outcome: 'skipped-locked' });
      expect(run.items.find((i) => i.id === id(12))).toMatchObject({ outcome: 'race-lost', detail: 'changed since the plan (now completed): the worker wins' });
    }
    // One statement a batch: no BEGIN/COMMIT and no INSERT of its own; the engine's path inserts.
    expect(inStatement.sent.some((q) => /^\s*INSERT INTO/i.test(q))).toBe(false);
    expect(byEngine.sent.some((q) => /^\s*INSERT INTO/i.test(q))).toBe(true);

    const executions = async (db: Db) =>
      (await db.client.query('SELECT id::text, status, error, updated_at, created_at, transitioned_at FROM purchase_executions ORDER BY id')).rows;
    expect(await executions(a)).toEqual(await executions(b));

    const audit = async (db: Db, run: typeof inStatement) => {
      const rows = (await db.client.query("SELECT team_id, user_id, actor, kind, resource_type, resource_id, summary, metadata FROM audit_log WHERE kind <> 'opsctl.run' ORDER BY resource_id")).rows;
      const ages = new Map(run.items.map((i) => [i.id, i.ageSeconds]));
      return rows.map((r) => {
        // The run's own: its id, and each row's age as its plan had it (two plans, seconds apart).
        expect(r.metadata.runId).toBe(run.summary.runId);
        expect(r.metadata.age_seconds).toBe(ages.get(r.resource_id));
        const { runId, age_seconds, ...metadata } = r.metadata;
        return { ...r, metadata };
      });
    };
    const fromStatement = await audit(a, inStatement);
    const fromEngine = await audit(b, byEngine);
    expect(fromStatement).toHaveLength(ROWS - 2);
    expect(fromStatement).toEqual(fromEngine);
    // Key by key, in the stored order (jsonb's).
    expect(fromStatement.map((r) => Object.keys(r.metadata))).toEqual(fromEngine.map((r) => Object.keys(r.metadata)));

    // The images: the row before (to_jsonb of the old values), the row after (the trigger's values win).
    const row3 = fromStatement.find((r) => r.resource_id === id(3))!;
    const row4 = fromStatement.find((r) => r.resource_id === id(4))!;
    expect(row3).toMatchObject({ actor: 'alice', kind: 'execution.reaped', resource_type: 'purchase_executions', team_id: null, user_id: null });
    expect(row3.summary).toBe("reaped after 10m in running state — executor did not complete (operator: operator's note)");
    expect(row3.metadata).toMatchObject({ execution_id: id(3), from_status: 'running', to_status: 'failed', threshold: '10m', reason: "operator's note" });
    expect(Object.keys(row3.metadata.before).sort()).toEqual(['error', 'status', 'transitioned_at', 'updated_at']);
    expect(row3.metadata.before).toMatchObject({ status: 'running', error: 'previous error 3', transitioned_at: null });
    expect(row4.metadata.before.error).toBeNull();
    expect(new Date(row4.metadata.before.transitioned_at).toISOString()).toBe('2025-06-01T12:00:04.123Z');
    expect(row4.metadata.before.transitioned_at).toMatch(/\.123456/);
    expect(row3.metadata.after).toMatchObject({ status: 'failed', error: "reaped after 10m in running state — executor did not complete (operator: operator's note)" });
    expect(new Date(row3.metadata.after.updated_at).toISOString()).toBe('2030-01-01T00:00:00.500Z');
    expect(new Date(row3.metadata.after.transitioned_at).toISOString()).toBe('2030-01-02T03:04:05.000Z');
    const [{ before }] = (await a.client.query(`SELECT to_jsonb(timestamptz '2025-06-01 12:00:04.123456+00') #>> '{}' AS before`)).rows;
    expect(row4.metadata.before.transitioned_at).toBe(before);
  });
});
