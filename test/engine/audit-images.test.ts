import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeAudit, type AuditEntry } from '../../src/engine/audit.js';
import { openJournal } from '../../src/engine/local-state.js';
import type { Database } from '../../src/database/database.js';

/** An audit entry's before/after images (the contract shared by the remedies and undo): stored as metadata.before / metadata.after. */
const entry: AuditEntry = {
  kind: 'execution.reaped',
  resourceType: 'purchase_executions',
  resourceId: 'a1',
  summary: 'reaped',
  metadata: { execution_id: 'a1', from_status: 'running', runId: 'r1' },
  before: { status: 'running', error: null, updated_at: '2026-12-01T00:00:00+00:00' },
  after: { status: 'failed', error: 'reaped', updated_at: '2026-12-07T00:00:00+00:00' },
};

describe('audit entries: before and after images', () => {
  it('writeAudit stores them as metadata.before and metadata.after; an entry without them is stored as before', async () => {
    const sent: unknown[][] = [];
    const tx = { queryRaw: async (_sql: string, params: unknown[]) => (sent.push(params), []) } as unknown as Database;
    const { before, after, ...plain } = entry;
    await writeAudit(tx, { table: 'audit_log', schema: null }, 'alice', [entry, plain]);
    const rows = JSON.parse(sent[0]![0] as string);
    expect(rows[0].metadata).toEqual({ ...entry.metadata, before: entry.before, after: entry.after });
    expect(rows[1].metadata).toEqual(entry.metadata);
    expect(Object.keys(rows[1].metadata)).not.toContain('before');
  });

  it('the local journal stores them the same way', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'opsctl-journal-')), 'audit.jsonl');
    const write = await openJournal(file);
    await write('alice', [entry, { ...entry, before: null, after: null }]);
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines[0].metadata).toEqual({ ...entry.metadata, before: entry.before, after: entry.after });
    expect(lines[1].metadata).toEqual({ ...entry.metadata, before: null, after: null });
  });
});
