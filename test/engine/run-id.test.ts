import { describe, expect, it } from 'vitest';
import { afterAll, beforeAll } from 'vitest';
import { newRunId, runIdTime } from '../../src/engine/run-id.js';
import { freshDatabase } from '../support/db.js';
import { cli } from '../support/cli.js';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('run ids', () => {
  it('are UUIDv7: they carry their start time and sort by it', () => {
    const t = Date.UTC(2026, 11, 7, 14, 0, 0);
    const ids = [t + 5, t, t + 1000, t + 1].map((ms) => newRunId(ms));
    for (const id of ids) expect(id).toMatch(UUID_V7);
    expect(ids.map(runIdTime)).toEqual([t + 5, t, t + 1000, t + 1]);
    expect([...ids].sort().map(runIdTime)).toEqual([t, t + 1, t + 5, t + 1000]);
    expect(new Set(Array.from({ length: 1000 }, () => newRunId(t))).size).toBe(1000);
  });
});

describe('an --apply is a run', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  beforeAll(async () => {
    db = await freshDatabase('run_id');
    await db.client.query("INSERT INTO purchase_executions (status, updated_at) SELECT 'running', now() - interval '1 hour' FROM generate_series(1, 3)");
  });
  afterAll(async () => {
    await db.drop();
  });

  it('its id is in the JSON summary and on every audit row it wrote; a dry run is no run', async () => {
    const f = (await import('../support/reliability.js')).configFile({ audit: { table: 'audit_log', schema: null } });
    const dry = await cli(['--config', f, 'reap', '--older-than', '10m', '-o', 'json'], { DATABASE_URL: db.url });
    expect(dry.json().summary.runId).toBeUndefined();
    const r = await cli(['--config', f, 'reap', '--older-than', '10m', '--apply', '--yes', '--reason', 'INC-1', '-o', 'json'], { DATABASE_URL: db.url });
    expect(r.code).toBe(0);
    const runId = r.json().summary.runId as string;
    expect(runId).toMatch(UUID_V7);
    const { rows } = await db.client.query("SELECT metadata->>'runId' AS run FROM audit_log WHERE kind <> 'opsctl.run'");
    expect(rows.map((x) => x.run)).toEqual([runId, runId, runId]);
    const again = await cli(['--config', f, 'reap', '--older-than', '10m', '--apply', '--yes', '-o', 'json'], { DATABASE_URL: db.url });
    expect(again.json().summary.runId).not.toBe(runId);
    expect(again.json().summary.runId > runId).toBe(true);
  });
});
