import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROWS, id, reapTwin, twinDatabases, type Db } from '../support/reap-twins.js';
import { readJournalLines } from '../../src/engine/local-state.js';

/**
 * Reap with no audit table has the server build its journal lines in the batch's own statement
 * (Remedy.journalsItself). Those lines must be exactly what the engine writes for the same
 * items from the entries a batch returns: both paths run here on two databases holding the same
 * rows, and their journal lines (but for the time of writing and the target's database name) and
 * execution rows are compared field by field.
 */
let a: Db;
let b: Db;

beforeAll(async () => {
  [a, b] = await twinDatabases('reap_journal');
});
afterAll(async () => {
  await a?.drop();
  await b?.drop();
});

async function reap(db: Db, journalInStatement: boolean, dir: string) {
  const journalPath = join(dir, 'audit.jsonl');
  const run = await reapTwin(db, { audit: { table: null, schema: null }, journalInStatement }, journalPath);
  expect(Boolean(run.remedy.journalsItself)).toBe(journalInStatement);
  const raw = readFileSync(journalPath, 'utf8').split('\n').filter(Boolean);
  // As runs, revert and show read them back.
  const lines = await readJournalLines(journalPath, { keep: (j): j is any => true });
  return { ...run, raw, lines };
}

describe('reap with no audit table: journal lines built by the batch statement', () => {
  it('are identical, field by field, to the lines the engine writes from the entries; so are the execution rows', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'opsctl-journal-'));
    try {
      const inStatement = await reap(a, true, join(dir, 'a'));
      const byEngine = await reap(b, false, join(dir, 'b'));

      for (const run of [inStatement, byEngine]) {
        expect(run.summary).toMatchObject({ planned: ROWS, reaped: ROWS - 2, 'skipped-locked': 1, 'race-lost': 1, errored: 0 });
        expect(run.items.find((i) => i.id === id(7))).toMatchObject({ outcome: 'skipped-locked' });
        expect(run.items.find((i) => i.id === id(12))).toMatchObject({ outcome: 'race-lost', detail: 'changed since the plan (now completed): the worker wins' });
        // Every batch one statement (no BEGIN/COMMIT), whichever builds the lines.
        expect(run.sent.some((q) => /^\s*(BEGIN|COMMIT)\b/i.test(q))).toBe(false);
      }
      expect(inStatement.sent.some((q) => q.includes('string_agg'))).toBe(true);
      expect(byEngine.sent.some((q) => q.includes('string_agg'))).toBe(false);
      // A line a batch (5 batches of 9, less the two rows left alone) against a line a row.
      expect(inStatement.raw.length).toBeLessThanOrEqual(Math.ceil(ROWS / 9) + 1);
      expect(byEngine.raw).toHaveLength(ROWS - 2);

      const executions = async (db: Db) =>
        (await db.client.query('SELECT id::text, status, error, updated_at, created_at, transitioned_at FROM purchase_executions ORDER BY id')).rows;
      expect(await executions(a)).toEqual(await executions(b));

      const lines = (run: typeof inStatement) => {
        const ages = new Map(run.items.map((i) => [i.id, i.ageSeconds]));
        return run.lines
          .map((l) => {
            // The run's own: its id, its batch's time, each row's age as its plan had it (two plans, seconds apart).
            expect(l.metadata.runId).toBe(run.summary.runId);
            expect(l.metadata.age_seconds).toBe(ages.get(l.resourceId));
            expect(Number.isNaN(Date.parse(l.at))).toBe(false);
            expect(l.target).toMatchObject({ kind: 'postgres', name: null });
            const { runId, age_seconds, ...metadata } = l.metadata;
            const { at, target, ...rest } = l;
            const { database, ...where } = target;
            return { ...rest, where, metadata };
          })
          .sort((x, y) => x.resourceId.localeCompare(y.resourceId));
      };
      const fromStatement = lines(inStatement);
      const fromEngine = lines(byEngine);
      expect(fromStatement).toHaveLength(ROWS - 2);
      expect(fromStatement).toEqual(fromEngine);
      // Key by key, in the order the engine writes them.
      expect(fromStatement.map((l) => [Object.keys(l), Object.keys(l.metadata)])).toEqual(fromEngine.map((l) => [Object.keys(l), Object.keys(l.metadata)]));
      expect(new Set(fromStatement.map((l) => l.resourceId)).size).toBe(ROWS - 2);

      const row3 = fromStatement.find((l) => l.resourceId === id(3))!;
      expect(row3).toMatchObject({ actor: 'alice', kind: 'execution.reaped', resourceType: 'purchase_executions' });
      expect(row3.summary).toBe("reaped after 10m in running state — executor did not complete (operator: operator's note)");
      expect(row3.metadata).toMatchObject({ execution_id: id(3), from_status: 'running', to_status: 'failed', threshold: '10m', reason: "operator's note" });
      expect(row3.metadata.image).toEqual({ table: 'purchase_executions', schema: null, key: 'id', columns: ['status', 'error', 'updated_at', 'transitioned_at'], id: id(3) });
      expect(row3.metadata.before).toMatchObject({ status: 'running', error: 'previous error 3', transitioned_at: null });
      expect(new Date(row3.metadata.after.updated_at).toISOString()).toBe('2030-01-01T00:00:00.500Z');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
