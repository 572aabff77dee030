import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freshDatabase, tableChecksum, serverPassword } from '../support/db.js';
import { cli } from '../support/cli.js';
import { eventually } from '../support/reliability.js';
import { Database } from '../../src/database/database.js';
import { defaultConfig } from '../../src/config/config.js';
import { reapRemedy } from '../../src/checks/stuck-executions.js';
import { databaseHost, remediate, streamRemediation } from '../../src/engine/remediation.js';

let db: Awaited<ReturnType<typeof freshDatabase>>;
let env: NodeJS.ProcessEnv;
let cwd: string;

beforeAll(async () => {
  db = await freshDatabase('reap');
  env = { DATABASE_URL: db.url };
  cwd = mkdtempSync(join(tmpdir(), 'opsctl-reap-'));
});
afterAll(async () => {
  await db.drop();
});

/** Seeds stuck, fresh and terminal rows; returns the ids by kind. */
async function seed(c: pg.Client = db.client, table = 'purchase_executions') {
  await c.query(`TRUNCATE "${table}"`);
  const ins = async (status: string, ageMinutes: number) =>
    (
      await c.query(`INSERT INTO "${table}" (status, updated_at, created_at) VALUES ($1, now() - make_interval(mins => $2), now() - make_interval(mins => $2)) RETURNING id::text`, [
        status,
        ageMinutes,
      ])
    ).rows[0].id as string;
  const stuck = [await ins('approved', 60), await ins('running', 30), await ins('running', 11), await ins('approved', 240)];
  const fresh = [await ins('running', 2), await ins('approved', 9)];
  const terminal = [await ins('completed', 120), await ins('failed', 120), await ins('pending', 120), await ins('cancelled', 500)];
  return { stuck, fresh, terminal };
}

/**
 * The server's major decides reap's batch shape without an audit table: CAS-first from 18
 * (RETURNING old.*: the batch waits, bounded, on a row a live worker holds), lock-then-classify
 * before (FOR UPDATE SKIP LOCKED: such a row is skipped, never waited on).
 */
const CAS_FIRST = inject('pgMajor') >= 18;

const statusOf = async (id: string) => (await db.client.query('SELECT status, error, transitioned_at FROM purchase_executions WHERE id = $1', [id])).rows[0];
/** One query after the other: a pg client runs one at a time (pg 9 refuses overlapping ones). */
const statusesOf = async (ids: string[]) => {
  const out = [];
  for (const id of ids) out.push(await statusOf(id));
  return out;
};

describe('executions stuck', () => {
  beforeEach(async () => {
    await db.client.query('TRUNCATE audit_log');
  });

  it('lists exactly the stuck rows, oldest first, with their age', async () => {
    const { stuck } = await seed();
    const r = await cli(['executions', 'stuck', '--older-than', '10m', '-o', 'json'], env);
    expect(r.code).toBe(0);
    const out = r.json();
    expect(out.command).toBe('executions stuck');
    expect(out.mode).toBe('read');
    expect(out.items.map((i: any) => i.id)).toEqual([stuck[3], stuck[0], stuck[1], stuck[2]]);
    expect(out.items[0].ageSeconds).toBeGreaterThanOrEqual(240 * 60 - 5);
    expect(out.summary.stuck).toBe(4);
  });

  it('filters by status and threshold, and ndjson ends with one summary line', async () => {
    const { stuck } = await seed();
    const r = await cli(['executions', 'stuck', '--older-than', '20m', '--status', 'running', '-o', 'ndjson'], env);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(2);
    expect(lines[0].id).toBe(stuck[1]);
    expect(lines[1]).toMatchObject({ type: 'summary', command: 'executions stuck', summary: { stuck: 1 } });
  });

  it('prints a table without colour when not a TTY', async () => {
    await seed();
    const r = await cli(['executions', 'stuck'], env);
    expect(r.stdout).toContain('approved');
    expect(r.stdout).not.toMatch(/\u001b\[/);
  });
});

describe('reap', () => {
  beforeEach(async () => {
    await db.client.query('TRUNCATE audit_log');
  });

  it('dry run prints the plan and changes nothing', async () => {
    const { stuck } = await seed();
    const before = await tableChecksum(db.client, 'purchase_executions');
    const r = await cli(['reap', '--older-than', '10m', '-o', 'json'], env);
    expect(r.code).toBe(0);
    const out = r.json();
    expect(out.mode).toBe('plan');
    expect(out.items.map((i: any) => i.id).sort()).toEqual([...stuck].sort());
    const running = out.items.find((i: any) => i.id === stuck[1]);
    expect(running.reason).toBe('reaped after 10m in running state — executor did not complete');
    expect(running.outcome).toBe('planned');
    expect(await tableChecksum(db.client, 'purchase_executions')).toBe(before);
  });

  it('dry runs execute in a READ ONLY transaction: a write inside one fails', async () => {
    const conn = await Database.connect({ settings: { ...defaultConfig().database, url: db.url }, env: {} });
    try {
      await expect(conn.readOnly((ro) => ro.query("UPDATE purchase_executions SET status = 'failed'"))).rejects.toThrow(/read-only transaction/);
      const settings = await conn.query<{ app: string; st: string; lt: string }>(
        "SELECT current_setting('application_name') AS app, current_setting('statement_timeout') AS st, current_setting('lock_timeout') AS lt",
      );
      expect(settings[0]).toEqual({ app: 'opsctl', st: '30s', lt: '5s' });
    } finally {
      await conn.close();
    }
  });

  it('--apply reaps exactly the stuck rows, writes the reason, audits, and a re-run finds nothing', async () => {
    const { stuck, fresh, terminal } = await seed();
    const untouched = [...fresh, ...terminal];
    const before = await statusesOf(untouched);
    const cfgFile = join(cwd, 'audit.json');
    writeFileSync(cfgFile, JSON.stringify({ audit: { table: 'audit_log' }, actor: 'test-operator' }));
    const r = await cli(['--config', cfgFile, 'reap', '--older-than', '10m', '--apply', '--reason', 'INC-42', '-o', 'json'], env);
    expect(r.code).toBe(0);
    const out = r.json();
    expect(out.mode).toBe('apply');
    expect(out.summary).toMatchObject({ planned: 4, reaped: 4, 'race-lost': 0, errored: 0 });
    for (const id of stuck) {
      const row = await statusOf(id);
      expect(row.status).toBe('failed');
      expect(row.error).toMatch(/^reaped after 10m in (approved|running) state — executor did not complete \(operator: INC-42\)$/);
      expect(row.transitioned_at).not.toBeNull();
    }
    expect(await statusOf(stuck[1]).then((r) => r.error)).toContain('in running state');
    expect(await statusesOf(untouched)).toEqual(before);
    const audit = await db.client.query("SELECT actor, kind, resource_id, metadata FROM audit_log WHERE kind <> 'opsctl.run' ORDER BY resource_id");
    expect(audit.rows.map((a) => a.resource_id).sort()).toEqual([...stuck].sort());
    expect(audit.rows[0]).toMatchObject({ actor: 'test-operator', kind: 'execution.reaped' });
    expect(audit.rows[0].metadata).toMatchObject({ to_status: 'failed', threshold: '10m', reason: 'INC-42' });
    // The run's record, in the audit table too (its own transaction after the last batch).
    const record = (await db.client.query("SELECT actor, kind, resource_type, resource_id, team_id, metadata FROM audit_log WHERE kind = 'opsctl.run'")).rows;
    expect(record).toHaveLength(1);
    expect(record[0]).toMatchObject({ actor: 'test-operator', kind: 'opsctl.run', resource_type: 'opsctl_run', resource_id: out.summary.runId, team_id: null });
    expect(record[0].metadata).toMatchObject({ runId: out.summary.runId, command: 'reap', reason: 'INC-42', outcomes: { applied: 4, lost: 0, errored: 0 }, exitCode: 0 });

    const again = await cli(['reap', '--older-than', '10m', '--apply', '-o', 'json'], env);
    expect(again.code).toBe(0);
    expect(again.json().summary.planned).toBe(0);
  });

  it('rows completed by the worker between plan and apply are race-lost, not overwritten', async () => {
    const { stuck } = await seed();
    const conn = await Database.connect({ settings: { ...defaultConfig().database, url: db.url }, env: {} });
    try {
      const cfg = defaultConfig();
      const report = await remediate(conn, reapRemedy(cfg.executions, { thresholdMs: 600_000, statuses: ['approved', 'running'], limit: 0, actor: 't', audit: cfg.audit }), {
        apply: true,
        max: 1000,
        batchSize: 500,
        wait: false,
        // The plan has been made and shown; the real worker finishes two rows now.
        confirm: async (plan) => {
          expect(plan.map((p) => p.id).sort()).toEqual([...stuck].sort());
          await db.client.query("UPDATE purchase_executions SET status = 'completed' WHERE id = ANY($1)", [[stuck[0], stuck[1]]]);
          return true;
        },
      });
      const byId = Object.fromEntries(report.items.map((i) => [i.id, i.outcome]));
      expect(byId[stuck[0]]).toBe('race-lost');
      expect(byId[stuck[1]]).toBe('race-lost');
      expect(byId[stuck[2]]).toBe('reaped');
      expect(byId[stuck[3]]).toBe('reaped');
      expect(report.summary).toMatchObject({ planned: 4, reaped: 2, 'race-lost': 2, errored: 0 });
      expect((await statusOf(stuck[0])).status).toBe('completed');
      expect((await statusOf(stuck[0])).error).toBeNull();
    } finally {
      await conn.close();
    }
  });

  it('the streamed engine (what reap runs): same outcomes as the plan raced, items handed out batch by batch, the summary once consumed', async () => {
    const { stuck } = await seed();
    const conn = await Database.connect({ settings: { ...defaultConfig().database, url: db.url }, env: {} });
    try {
      const cfg = defaultConfig();
      const remedy = reapRemedy(cfg.executions, { thresholdMs: 600_000, statuses: ['approved', 'running'], limit: 0, actor: 't', audit: cfg.audit });
      const progress: number[] = [];
      const report = await streamRemediation(databaseHost(conn, remedy.table, remedy.schema), remedy, {
        apply: true,
        max: 1000,
        batchSize: 1,
        wait: false,
        // Asked with the count before any write; the worker then finishes the oldest row.
        confirm: async (count) => {
          expect(count).toBe(4);
          await db.client.query("UPDATE purchase_executions SET status = 'completed' WHERE id = $1", [stuck[3]]);
          return true;
        },
        onProgress: (done) => progress.push(done),
      });
      const items = [];
      for await (const i of report.items) items.push(i);
      // Oldest first, one row a batch.
      expect(items.map((i) => i.id)).toEqual([stuck[3], stuck[0], stuck[1], stuck[2]]);
      expect(items.map((i) => i.outcome)).toEqual(['race-lost', 'reaped', 'reaped', 'reaped']);
      expect(items[0]).toMatchObject({ status: 'approved', outcomeClass: 'lost', detail: 'changed since the plan (now completed): the worker wins' });
      expect(items[1]).toMatchObject({ reason: 'reaped after 10m in approved state — executor did not complete', outcomeClass: 'applied' });
      expect(progress).toEqual([1, 2, 3, 4]);
      expect(report.summary).toMatchObject({ planned: 4, reaped: 3, 'race-lost': 1, errored: 0, batches: 4 });
      expect(report.exitCode).toBe(0);
      expect((await statusOf(stuck[3])).status).toBe('completed');
      expect((await statusOf(stuck[0])).status).toBe('failed');
    } finally {
      await conn.close();
    }
  });

  it('the streamed engine\'s JSON text (what json and ndjson print) is its items as toJson writes them: every outcome, in plan order', async () => {
    const { toJson } = await import('../../src/output/output.js');
    const runs: Record<string, { lines: string[]; summary: Record<string, unknown> }> = {};
    await db.client.query(`CREATE OR REPLACE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF OLD.error = 'poison' THEN RAISE EXCEPTION 'row % is poisoned', OLD.id; END IF; RETURN NEW; END $$;
      CREATE TRIGGER poison BEFORE UPDATE ON purchase_executions FOR EACH ROW EXECUTE FUNCTION poison();`);
    try {
      for (const via of ['items', 'ndjson'] as const) {
        const { stuck } = await seed();
        // The youngest stuck row is refused by the database (errored), the next is held by
        // another transaction (skipped-locked), the oldest is finished by its worker (race-lost).
        await db.client.query('ALTER TABLE purchase_executions DISABLE TRIGGER purchase_executions_touch');
        await db.client.query("UPDATE purchase_executions SET error = 'poison' WHERE id = $1", [stuck[2]]);
        await db.client.query('ALTER TABLE purchase_executions ENABLE TRIGGER purchase_executions_touch');
        const holder = new pg.Client({ connectionString: db.url });
        await holder.connect();
        const conn = await Database.connect({ settings: { ...defaultConfig().database, url: db.url }, env: {} });
        try {
          await holder.query('BEGIN');
          await holder.query('SELECT 1 FROM purchase_executions WHERE id = $1 FOR UPDATE', [stuck[1]]);
          const cfg = defaultConfig();
          const remedy = reapRemedy(cfg.executions, { thresholdMs: 600_000, statuses: ['approved', 'running'], limit: 0, actor: 't', audit: cfg.audit, casLockTimeoutMs: 20 });
          const report = await streamRemediation(databaseHost(conn, remedy.table, remedy.schema), remedy, {
            apply: true,
            max: 0,
            batchSize: 1,
            wait: false,
            confirm: async () => {
              await db.client.query("UPDATE purchase_executions SET status = 'completed' WHERE id = $1", [stuck[3]]);
              return true;
            },
          });
          let lines: string[];
          if (via === 'items') {
            lines = [];
            for await (const i of report.items) lines.push(toJson(i));
          } else {
            expect(report.ndjson).toBeTypeOf('function');
            const chunks: Buffer[] = [];
            for await (const c of report.ndjson!()) chunks.push(c);
            const text = Buffer.concat(chunks).toString('utf8');
            expect(text.endsWith('\n')).toBe(true);
            lines = text.slice(0, -1).split('\n');
          }
          runs[via] = { lines, summary: report.summary };
          expect(lines.map((l) => JSON.parse(l).id)).toEqual([stuck[3], stuck[0], stuck[1], stuck[2]]);
        } finally {
          await holder.query('ROLLBACK');
          await holder.end();
          await conn.close();
        }
      }
    } finally {
      await db.client.query('DROP TRIGGER poison ON purchase_executions');
    }
    const parsed = (via: string) => runs[via]!.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    // Byte for byte what JSON.stringify writes for the item it carries (key order, escapes, the em dash).
    for (const l of runs.ndjson!.lines) expect(l).toBe(JSON.stringify(JSON.parse(l)));
    // The same items either way, but for what differs between the two seeds (ids, times).
    const sameFields = (o: Record<string, unknown>) => {
      const { id, updatedAt, ageSeconds, detail, ...rest } = o;
      return { keys: Object.keys(o), ...rest, detail: typeof detail === 'string' ? detail.replace(String(id), '<id>') : detail };
    };
    expect(parsed('ndjson').map(sameFields)).toEqual(parsed('items').map(sameFields));
    expect(parsed('ndjson').map((o) => o.outcome)).toEqual(['race-lost', 'reaped', 'skipped-locked', 'errored']);
    expect(parsed('ndjson')[1]).toMatchObject({ reason: 'reaped after 10m in approved state — executor did not complete', outcomeClass: 'applied' });
    expect(parsed('ndjson')[3]!.detail).toMatch(/is poisoned/);
    // Two runs: their timings and run ids differ by design.
    const counts = ({ longestBatchMs, runId, ...rest }: Record<string, unknown>) => rest;
    expect(counts(runs.ndjson!.summary)).toEqual(counts(runs.items!.summary));
    expect(runs.ndjson!.summary).toMatchObject({ planned: 4, reaped: 1, 'race-lost': 1, 'skipped-locked': 1, errored: 1 });
  });

  it('the plan streamed on its own session while the batches apply (planLane): exactly the plan is reported, each row re-checked at write time', async () => {
    const { stuck } = await seed();
    const conn = await Database.connect({ settings: { ...defaultConfig().database, url: db.url }, env: {} });
    const planConn = await Database.connect({ settings: { ...defaultConfig().database, url: db.url }, env: {} });
    const worker = new pg.Client({ connectionString: db.url });
    await worker.connect();
    try {
      // The worker is finishing the newest planned row: the last batch waits on it.
      await worker.query('BEGIN');
      await worker.query("UPDATE purchase_executions SET status = 'completed' WHERE id = $1", [stuck[2]]);
      const workerPid = (await worker.query('SELECT pg_backend_pid() AS p')).rows[0].p as number;
      const reaperPid = (await conn.query<{ p: number }>('SELECT pg_backend_pid() AS p'))[0]!.p;
      const cfg = defaultConfig();
      const remedy = reapRemedy(cfg.executions, { thresholdMs: 600_000, statuses: ['approved', 'running'], limit: 0, actor: 't', audit: cfg.audit, casLockTimeoutMs: 60_000 });
      const report = await streamRemediation(databaseHost(conn, remedy.table, remedy.schema), remedy, {
        apply: true,
        max: 0,
        batchSize: 1,
        wait: false,
        planLane: databaseHost(planConn, remedy.table, remedy.schema),
        // Never asked: the plan is not whole before the first write.
        confirm: async () => {
          throw new Error('confirm asked');
        },
      });
      const run = (async () => {
        const items = [];
        for await (const i of report.items) items.push(i);
        return items;
      })();
      let late: string;
      if (CAS_FIRST) {
        await eventually('the last batch waiting on the worker', async () => (await db.client.query('SELECT $1::int = ANY(pg_blocking_pids($2)) AS b', [workerPid, reaperPid])).rows[0].b);
        // Meanwhile a row becomes stuck that the plan's snapshot (taken before the first batch) does not have.
        late = (await db.client.query("INSERT INTO purchase_executions (status, updated_at) VALUES ('running', now() - interval '1 day') RETURNING id::text")).rows[0].id as string;
        await worker.query('COMMIT');
      } else {
        // Before 18 the last batch skips the row the worker holds instead of waiting on it.
        await run;
        late = (await db.client.query("INSERT INTO purchase_executions (status, updated_at) VALUES ('running', now() - interval '1 day') RETURNING id::text")).rows[0].id as string;
        await worker.query('COMMIT');
      }
      const items = await run;
      expect(items.map((i) => i.id)).toEqual([stuck[3], stuck[0], stuck[1], stuck[2]]);
      const last = CAS_FIRST ? 'race-lost' : 'skipped-locked';
      expect(items.map((i) => i.outcome)).toEqual(['reaped', 'reaped', 'reaped', last]);
      expect(report.summary).toMatchObject({ planned: 4, reaped: 3, [last]: 1, errored: 0, batches: 4 });
      expect(report.exitCode).toBe(0);
      expect((await statusOf(late)).status).toBe('running');
      expect((await statusOf(stuck[2])).status).toBe('completed');
      // Caps and prompts need the whole plan first: a capped run is refused the streamed plan.
      await expect(
        streamRemediation(databaseHost(conn, remedy.table, remedy.schema), remedy, { apply: true, max: 10, batchSize: 1, wait: false, planLane: databaseHost(planConn, remedy.table, remedy.schema) }),
      ).rejects.toThrow(/--max/);
    } finally {
      await worker.query('ROLLBACK').catch(() => {});
      await worker.end();
      await conn.close();
      await planConn.close();
    }
  });

  it.each(['items', 'ndjson'] as const)('a streamed plan that fails before any write fails the run as a whole (read as %s): nothing handed out, nothing changed, the lock released', async (via) => {
    await seed();
    const before = await tableChecksum(db.client, 'purchase_executions');
    const conn = await Database.connect({ settings: { ...defaultConfig().database, url: db.url }, env: {} });
    const planConn = await Database.connect({ settings: { ...defaultConfig().database, url: db.url }, env: {} });
    try {
      // The plan's session is gone before the plan starts.
      const planPid = (await planConn.query<{ p: number }>('SELECT pg_backend_pid() AS p'))[0]!.p;
      await db.client.query('SELECT pg_terminate_backend($1)', [planPid]);
      const cfg = defaultConfig();
      const remedy = reapRemedy(cfg.executions, { thresholdMs: 600_000, statuses: ['approved', 'running'], limit: 0, actor: 't', audit: cfg.audit });
      const report = await streamRemediation(databaseHost(conn, remedy.table, remedy.schema), remedy, {
        apply: true,
        max: 0,
        batchSize: 1,
        wait: false,
        planLane: databaseHost(planConn, remedy.table, remedy.schema),
      });
      const items: unknown[] = [];
      await expect(
        (async () => {
          for await (const i of via === 'items' ? report.items : report.ndjson!()) items.push(i);
        })(),
      ).rejects.toMatchObject({ exitCode: 3 });
      expect(items).toEqual([]);
      expect(await tableChecksum(db.client, 'purchase_executions')).toBe(before);
      const { acquireTableLock } = await import('../../src/engine/advisory-lock.js');
      await (await acquireTableLock(conn, 'purchase_executions', null, { wait: false })).release();
    } finally {
      await conn.close();
      await planConn.close().catch(() => {});
    }
  });

  it('the streamed engine, not confirmed: every planned row reported cancelled, nothing written', async () => {
    await seed();
    const before = await tableChecksum(db.client, 'purchase_executions');
    const conn = await Database.connect({ settings: { ...defaultConfig().database, url: db.url }, env: {} });
    try {
      const cfg = defaultConfig();
      const remedy = reapRemedy(cfg.executions, { thresholdMs: 600_000, statuses: ['approved', 'running'], limit: 0, actor: 't', audit: cfg.audit });
      const report = await streamRemediation(databaseHost(conn, remedy.table, remedy.schema), remedy, { apply: true, max: 0, batchSize: 500, wait: false, confirm: async () => false });
      const items = [];
      for await (const i of report.items) items.push(i);
      expect(items.map((i) => i.outcome)).toEqual(['cancelled', 'cancelled', 'cancelled', 'cancelled']);
      expect(report.summary).toMatchObject({ planned: 4, reaped: 0, cancelled: true, batches: 0 });
      expect(await tableChecksum(db.client, 'purchase_executions')).toBe(before);
      // The advisory lock was released when the items ran out: another run may take it.
      const { acquireTableLock } = await import('../../src/engine/advisory-lock.js');
      await (await acquireTableLock(conn, 'purchase_executions', null, { wait: false })).release();
    } finally {
      await conn.close();
    }
  });

  it('reap --apply -o ndjson: one line per planned row as the batches commit, then the summary line', async () => {
    const { stuck } = await seed();
    const r = await cli(['reap', '--older-than', '10m', '--apply', '--batch-size', '2', '-o', 'ndjson'], env);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.slice(0, 4).map((l) => [l.id, l.outcome])).toEqual([stuck[3], stuck[0], stuck[1], stuck[2]].map((id) => [id, 'reaped']));
    expect(lines[4]).toMatchObject({ type: 'summary', command: 'reap', mode: 'apply', summary: { planned: 4, reaped: 4, batches: 2, batchSizes: '2×2' } });
  });

  it('reap --connections 2: batches on two sessions, every row reaped once with its audit row, in plan order; a held row skipped', async () => {
    await db.client.query('TRUNCATE purchase_executions');
    await db.client.query(
      "INSERT INTO purchase_executions (status, updated_at) SELECT (ARRAY['approved','running'])[1 + i % 2], now() - interval '1 hour' - i * interval '1 second' FROM generate_series(1, 1000) i",
    );
    const held = (await db.client.query("SELECT id::text FROM purchase_executions ORDER BY updated_at DESC LIMIT 1")).rows[0].id;
    const order = (await db.client.query('SELECT id::text FROM purchase_executions ORDER BY updated_at, id')).rows.map((r) => r.id);
    const cfgFile = join(cwd, 'audit-connections.json');
    writeFileSync(cfgFile, JSON.stringify({ audit: { table: 'audit_log' } }));
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM purchase_executions WHERE id = $1 FOR UPDATE', [held]);
      const r = await cli(['--config', cfgFile, 'reap', '--older-than', '10m', '--apply', '--max', '0', '--batch-size', '100', '--connections', '2', '-o', 'json'], { ...env, OPSCTL_LOCK_TIMEOUT: '1s' });
      expect(r.code).toBe(0);
      const out = r.json();
      expect(out.items.map((i: any) => i.id)).toEqual(order);
      expect(out.summary).toMatchObject({ planned: 1000, reaped: 999, 'skipped-locked': 1, errored: 0 });
      // Ten of --batch-size 100, or one more where the sizer split a batch that took longer than
      // its time target (a loaded machine).
      expect(out.summary.batches).toBeGreaterThanOrEqual(10);
      expect(out.items.find((i: any) => i.id === held).outcome).toBe('skipped-locked');
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    const audit = (await db.client.query("SELECT count(*)::int AS n, count(DISTINCT resource_id)::int AS d FROM audit_log WHERE kind <> 'opsctl.run'")).rows[0];
    expect(audit).toEqual({ n: 999, d: 999 });
    expect((await db.client.query("SELECT count(*)::int AS n FROM purchase_executions WHERE status = 'failed'")).rows[0].n).toBe(999);
    // Bad values are refused before anything is read.
    const bad = await cli(['reap', '--apply', '--connections', '0'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--connections must be at least 1/);
  });

  it('a row locked by an open transaction is skipped, not waited on', async () => {
    const { stuck } = await seed();
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT * FROM purchase_executions WHERE id = $1 FOR UPDATE', [stuck[0]]);
      // lock_timeout 1s: had opsctl waited on the row, the run would fail instead of finishing.
      const r = await cli(['reap', '--older-than', '10m', '--apply', '-o', 'json'], { ...env, OPSCTL_LOCK_TIMEOUT: '1s' });
      expect(r.code).toBe(0);
      const out = r.json();
      expect(out.summary).toMatchObject({ reaped: 3, 'skipped-locked': 1 });
      expect(out.items.find((i: any) => i.id === stuck[0]).outcome).toBe('skipped-locked');
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    expect((await statusOf(stuck[0])).status).toBe('approved');
  });

  /** A streamed reap --apply of the default config on `conn`, its report and every item read out. */
  const streamedReap = async (conn: Database, casLockTimeoutMs?: number) => {
    const cfg = defaultConfig();
    const remedy = reapRemedy(cfg.executions, { thresholdMs: 600_000, statuses: ['approved', 'running'], limit: 0, actor: 't', audit: cfg.audit, casLockTimeoutMs });
    const report = await streamRemediation(databaseHost(conn, remedy.table, remedy.schema), remedy, { apply: true, max: 0, batchSize: 500, wait: false });
    const items = [];
    for await (const i of report.items) items.push(i);
    return { report, items };
  };

  it(CAS_FIRST
    ? 'a batch waits (bounded) on rows a live worker holds: the worker\'s committed change wins (race-lost), a row it only locked is reaped'
    : 'before 18, a batch skips the rows a live worker holds (skipped-locked), never waiting on them', async () => {
    const { stuck } = await seed();
    const worker = new pg.Client({ connectionString: db.url });
    await worker.connect();
    const conn = await Database.connect({ settings: { ...defaultConfig().database, url: db.url }, env: {} });
    try {
      await worker.query('BEGIN');
      await worker.query("UPDATE purchase_executions SET status = 'completed' WHERE id = $1", [stuck[0]]);
      await worker.query('SELECT 1 FROM purchase_executions WHERE id = $1 FOR UPDATE', [stuck[1]]);
      const workerPid = (await worker.query('SELECT pg_backend_pid() AS p')).rows[0].p as number;
      const reaperPid = (await conn.query<{ p: number }>('SELECT pg_backend_pid() AS p'))[0]!.p;
      // A wait far longer than the test needs: the worker commits once the batch is seen waiting.
      const run = streamedReap(conn, 60_000);
      if (!CAS_FIRST) {
        // Lock-then-classify: the run ends while the worker still holds both rows.
        const { report, items } = await run;
        const byId = Object.fromEntries(items.map((i) => [i.id, i]));
        for (const id of stuck.slice(0, 2)) expect(byId[id]).toMatchObject({ outcome: 'skipped-locked', outcomeClass: 'skipped', detail: 'locked by another transaction; left alone' });
        for (const id of stuck.slice(2)) expect(byId[id]).toMatchObject({ outcome: 'reaped', outcomeClass: 'applied' });
        expect(report.summary).toMatchObject({ planned: 4, reaped: 2, 'race-lost': 0, 'skipped-locked': 2, errored: 0, batches: 1 });
        await worker.query('COMMIT');
        expect((await statusOf(stuck[0])).status).toBe('completed');
        expect((await statusOf(stuck[1])).status).toBe('running');
        expect((await conn.query<{ lock_timeout: string }>('SHOW lock_timeout'))[0]!.lock_timeout).toBe('5s');
        return;
      }
      await eventually('the batch waiting on the worker', async () => (await db.client.query('SELECT $1::int = ANY(pg_blocking_pids($2)) AS b', [workerPid, reaperPid])).rows[0].b);
      await worker.query('COMMIT');
      const { report, items } = await run;
      const byId = Object.fromEntries(items.map((i) => [i.id, i]));
      expect(byId[stuck[0]]).toMatchObject({ outcome: 'race-lost', outcomeClass: 'lost', detail: 'changed since the plan (now completed): the worker wins' });
      for (const id of stuck.slice(1)) expect(byId[id]).toMatchObject({ outcome: 'reaped', outcomeClass: 'applied' });
      expect(report.summary).toMatchObject({ planned: 4, reaped: 3, 'race-lost': 1, 'skipped-locked': 0, errored: 0, batches: 1 });
      expect((await statusOf(stuck[0])).status).toBe('completed');
      expect((await statusOf(stuck[1])).status).toBe('failed');
      // The short wait was for that statement only: the session has its configured lock_timeout back.
      expect((await conn.query<{ lock_timeout: string }>('SHOW lock_timeout'))[0]!.lock_timeout).toBe('5s');
    } finally {
      await worker.query('ROLLBACK').catch(() => {});
      await worker.end();
      await conn.close();
    }
  });

  it('a row still held past the wait: the batch is re-run skipping it, with the same classification as before (skipped-locked), the rest reaped', async () => {
    const { stuck } = await seed();
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    const conn = await Database.connect({ settings: { ...defaultConfig().database, url: db.url }, env: {} });
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM purchase_executions WHERE id = $1 FOR UPDATE', [stuck[2]]);
      // The default wait (CAS_LOCK_TIMEOUT_MS): the holder never lets go during the run.
      const { report, items } = await streamedReap(conn);
      expect(items.find((i) => i.id === stuck[2])).toMatchObject({ outcome: 'skipped-locked', outcomeClass: 'skipped', detail: 'locked by another transaction; left alone' });
      expect(report.summary).toMatchObject({ planned: 4, reaped: 3, 'race-lost': 0, 'skipped-locked': 1, errored: 0, batches: 1 });
      expect(report.exitCode).toBe(0);
      expect((await conn.query<{ lock_timeout: string }>('SHOW lock_timeout'))[0]!.lock_timeout).toBe('5s');
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
      await conn.close();
    }
    expect((await statusOf(stuck[2])).status).toBe('running');
  });

  /** 50 stuck rows, one a minute older than the next: their plan order is their age. */
  const seedFifty = async () => {
    await db.client.query('TRUNCATE purchase_executions');
    const rows = await db.client.query(
      "INSERT INTO purchase_executions (status, updated_at) SELECT (ARRAY['approved','running'])[1 + i % 2], now() - interval '1 hour' - make_interval(mins => i) FROM generate_series(1, 50) i RETURNING id::text, updated_at",
    );
    return rows.rows.sort((a, b) => a.updated_at - b.updated_at).map((r) => r.id as string);
  };
  /** A session of opsctl's own on the test database, and the default reap of rows older than 10m. */
  const session = () => Database.connect({ settings: { ...defaultConfig().database, url: db.url }, env: {} });
  const defaultReap = () => {
    const cfg = defaultConfig();
    return reapRemedy(cfg.executions, { thresholdMs: 600_000, statuses: ['approved', 'running'], limit: 0, actor: 't', audit: cfg.audit });
  };

  it('the short CAS lock_timeout is set once per session, not around every batch; a fallback runs under the session\'s own and the next batch lowers it again; the run ends on the configured value', async () => {
    const plan = await seedFifty();
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    const conn = await session();
    // What the reap sends on its session, in order (the real session: only observed).
    const sent: string[] = [];
    const queryRaw = conn.queryRaw.bind(conn);
    conn.queryRaw = ((sql: string, params?: unknown[]) => {
      sent.push(sql);
      return queryRaw(sql, params);
    }) as typeof conn.queryRaw;
    try {
      // Held through the run: the 5th of 10 batches cannot compare-and-set it and falls back.
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM purchase_executions WHERE id = $1 FOR UPDATE', [plan[22]]);
      const remedy = defaultReap();
      const report = await streamRemediation(databaseHost(conn, remedy.table, remedy.schema), remedy, { apply: true, max: 0, batchSize: 5, wait: false });
      const items = [];
      for await (const i of report.items) items.push(i);
      expect(report.summary).toMatchObject({ planned: 50, reaped: 49, 'skipped-locked': 1, batches: 10 });
      expect(items.map((i) => i.id)).toEqual(plan);
      expect(items[22]).toMatchObject({ outcome: 'skipped-locked' });
      const kinds = sent
        .map((q) => (/set_config\('lock_timeout'/.test(q) ? 'lower' : /^RESET lock_timeout/.test(q) ? 'reset' : /^(WITH upd AS \()?UPDATE/.test(q) ? 'cas' : /FOR UPDATE SKIP LOCKED/.test(q) ? 'lock' : null))
        .filter(Boolean);
      // Batches 1–4 under one lowering; batch 5's CAS times out, its re-run locks under the
      // configured value; batches 6–10 under a second lowering; the session's own value at the end.
      // Before 18 no batch is CAS-first: ten lock-then-classify batches, lock_timeout never touched.
      expect(kinds).toEqual(
        CAS_FIRST ? ['lower', 'cas', 'cas', 'cas', 'cas', 'cas', 'reset', 'lock', 'lower', 'cas', 'cas', 'cas', 'cas', 'cas', 'reset'] : Array(10).fill('lock'),
      );
      expect((await conn.query<{ lock_timeout: string }>('SHOW lock_timeout'))[0]!.lock_timeout).toBe('5s');
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
      await conn.close();
    }
  });

  it('batches sized by time, read ahead while the previous one is in flight: every planned row once, in plan order, on one session and on two', async () => {
    for (const lanes of [0, 1]) {
      const plan = await seedFifty();
      const conn = await session();
      const extra = await Promise.all(Array.from({ length: lanes }, session));
      try {
        const remedy = defaultReap();
        const report = await streamRemediation(databaseHost(conn, remedy.table, remedy.schema), remedy, {
          apply: true,
          max: 0,
          batchSize: 7,
          batchTargetMs: 250,
          wait: false,
          lanes: extra.map((x) => databaseHost(x, remedy.table, remedy.schema)),
        });
        const items = [];
        for await (const i of report.items) items.push(i);
        expect(items.map((i) => i.id)).toEqual(plan);
        expect(items.every((i) => i.outcome === 'reaped')).toBe(true);
        expect(report.summary).toMatchObject({ planned: 50, reaped: 50, errored: 0 });
        expect((await db.client.query("SELECT count(*)::int AS n FROM purchase_executions WHERE status = 'failed'")).rows[0].n).toBe(50);
      } finally {
        await Promise.all([conn, ...extra].map((x) => x.close()));
      }
    }
  });

  it('--connections N where the database lets in fewer sessions: one sentence, exit 3, nothing written, and the sessions it did open are closed', async () => {
    const { stuck } = await seed();
    const role = `conn_lim_${Math.random().toString(36).slice(2, 8)}`;
    // Room for the first session and one more. --connections 3 asks for two more, and the plan's
    // own session races them for that room: a plan session turned away is no error (the plan is
    // then made first), so only a limit the batch sessions alone exceed fails every time.
    await db.client.query(`CREATE ROLE ${role} LOGIN CONNECTION LIMIT 2 PASSWORD '${serverPassword()}'; GRANT SELECT, UPDATE ON purchase_executions TO ${role}`);
    const u = new URL(db.url);
    u.username = role;
    const sessionsOfRole = async () => (await db.client.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1', [role])).rows[0].n as number;
    try {
      const r = await cli(['reap', '--older-than', '10m', '--apply', '--yes', '--max', '0', '--connections', '3', '-o', 'json'], { DATABASE_URL: u.toString() });
      expect(r.code).toBe(3);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^opsctl: .*too many connections for role/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      for (const id of stuck) expect(['approved', 'running']).toContain((await statusOf(id)).status);
      await eventually('every session of the run closed', async () => (await sessionsOfRole()) === 0);
    } finally {
      await db.client.query(`DROP OWNED BY ${role}; DROP ROLE ${role}`);
    }
  });

  it('two --apply runs started together reap each row exactly once', async () => {
    await db.client.query('TRUNCATE purchase_executions');
    await db.client.query(
      "INSERT INTO purchase_executions (status, updated_at) SELECT (ARRAY['approved','running'])[1 + i % 2], now() - interval '1 hour' FROM generate_series(1, 1200) i",
    );
    const cfgFile = join(cwd, 'audit2.json');
    writeFileSync(cfgFile, JSON.stringify({ audit: { table: 'audit_log' } }));
    const args = ['--config', cfgFile, 'reap', '--older-than', '10m', '--apply', '--max', '0', '--batch-size', '100', '-o', 'json'];
    const [a, b] = await Promise.all([cli(args, env), cli([...args, '--wait'], env)]);
    const outs = [a, b].filter((x) => x.code === 0).map((x) => x.json());
    const reaped = outs.reduce((n, o) => n + o.summary.reaped, 0);
    // Either both ran (one waited, then found nothing) or one was turned away with exit 3.
    for (const x of [a, b]) expect([0, 3]).toContain(x.code);
    expect(reaped).toBe(1200);
    const dup = await db.client.query("SELECT resource_id, count(*) FROM audit_log WHERE kind <> 'opsctl.run' GROUP BY 1 HAVING count(*) > 1");
    expect(dup.rowCount).toBe(0);
    expect((await db.client.query("SELECT count(*)::int AS n FROM audit_log WHERE kind <> 'opsctl.run'")).rows[0].n).toBe(1200);
  });

  it('a second reaper without --wait is turned away with exit 3 while the lock is held', async () => {
    await seed();
    const holder = await Database.connect({ settings: { ...defaultConfig().database, url: db.url }, env: {} });
    const { acquireTableLock } = await import('../../src/engine/advisory-lock.js');
    const lock = await acquireTableLock(holder, 'purchase_executions', null, { wait: false });
    try {
      const r = await cli(['reap', '--apply'], env);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/another opsctl run is already remediating purchase_executions \(backend pid \d+/);
      // The dry run needs no lock.
      expect((await cli(['reap'], env)).code).toBe(0);
    } finally {
      await lock.release();
      await holder.close();
    }
  });

  it('refuses more rows than --max with exit 2 and changes nothing', async () => {
    await seed();
    const before = await tableChecksum(db.client, 'purchase_executions');
    const r = await cli(['reap', '--older-than', '10m', '--apply', '--max', '3'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/more than 3 rows .* --max cap/);
    expect(await tableChecksum(db.client, 'purchase_executions')).toBe(before);
    const dry = await cli(['reap', '--older-than', '10m', '--max', '3', '-o', 'json'], env);
    expect(dry.json().summary).toMatchObject({ exceedsMax: true, planned: 3 });
  });

  it('a row the database refuses is errored; its neighbours are still reaped; exit 1', async () => {
    const { stuck } = await seed();
    await db.client.query(`CREATE OR REPLACE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF OLD.error = 'poison' THEN RAISE EXCEPTION 'row % is poisoned', OLD.id; END IF; RETURN NEW; END $$;
      CREATE TRIGGER poison BEFORE UPDATE ON purchase_executions FOR EACH ROW EXECUTE FUNCTION poison();`);
    try {
      await db.client.query("ALTER TABLE purchase_executions DISABLE TRIGGER purchase_executions_touch");
      await db.client.query("UPDATE purchase_executions SET error = 'poison' WHERE id = $1", [stuck[2]]);
      await db.client.query("ALTER TABLE purchase_executions ENABLE TRIGGER purchase_executions_touch");
      const r = await cli(['reap', '--older-than', '10m', '--apply', '-o', 'json'], env);
      expect(r.code).toBe(1);
      const out = r.json();
      expect(out.summary).toMatchObject({ reaped: 3, errored: 1 });
      const bad = out.items.find((i: any) => i.id === stuck[2]);
      expect(bad.outcome).toBe('errored');
      expect(bad.detail).toMatch(/is poisoned/);
    } finally {
      await db.client.query('DROP TRIGGER poison ON purchase_executions');
    }
  });

  it('works on a table and columns whose names need quoting (never executed as SQL)', async () => {
    await db.client.query(`CREATE TABLE "jobs; DROP TABLE audit_log; --" ("job id" uuid PRIMARY KEY DEFAULT gen_random_uuid(), "State" text NOT NULL, "touched ""at""" timestamptz NOT NULL, err text)`);
    await db.client.query(`INSERT INTO "jobs; DROP TABLE audit_log; --" ("State", "touched ""at""") VALUES ('running', now() - interval '1 day'), ('done', now() - interval '1 day')`);
    const f = join(cwd, 'weird.json');
    writeFileSync(
      f,
      JSON.stringify({
        executions: { table: 'jobs; DROP TABLE audit_log; --', key: 'job id', status: 'State', updatedAt: 'touched "at"', error: 'err', transitionedAt: null, stuckStatuses: ['running'], failedStatus: 'dead' },
      }),
    );
    const r = await cli(['--config', f, 'reap', '--apply', '-o', 'json'], env);
    expect(r.stderr).toBe('');
    expect(r.json().summary.reaped).toBe(1);
    const rows = await db.client.query(`SELECT "State" FROM "jobs; DROP TABLE audit_log; --" ORDER BY 1`);
    expect(rows.rows.map((x) => x.State)).toEqual(['dead', 'done']);
    expect((await db.client.query("SELECT to_regclass('audit_log') IS NOT NULL AS ok")).rows[0].ok).toBe(true);
  });
});

describe('bad input', () => {
  it.each([['0s'], ['-5m'], ['garbage'], ['']])('refuses --older-than %j with exit 2 and one sentence', async (d) => {
    const r = await cli(['reap', '--older-than', d], env);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^opsctl: --older-than/);
    expect(r.stdout).toBe('');
  });

  it('an unknown column in config is named with its config key, exit 2', async () => {
    const f = join(cwd, 'typo.json');
    writeFileSync(f, JSON.stringify({ executions: { updatedAt: 'updatd_at' } }));
    const r = await cli(['--config', f, 'reap'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('column "updatd_at" (config executions.updatedAt) does not exist in table purchase_executions');
  });

  it('a missing table is named, exit 2', async () => {
    const f = join(cwd, 'notable.json');
    writeFileSync(f, JSON.stringify({ executions: { table: 'no_such_table' } }));
    const r = await cli(['--config', f, 'executions', 'stuck'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/table no_such_table \(config executions\.table\) does not exist/);
  });

  it('an unreachable database: exit 3, one sentence, the password never printed', async () => {
    const r = await cli(['reap'], { DATABASE_URL: 'postgres://ops:TopSecret-123@127.0.0.1:1/app' });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/cannot connect to PostgreSQL at postgres:\/\/ops:\*\*\*@127\.0\.0\.1:1\/app: connection refused/);
    expect(r.stderr + r.stdout).not.toContain('TopSecret-123');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a wrong password: exit 3, neither password printed', async () => {
    const u = new URL(db.url);
    u.password = 'Wrong-Pass-987';
    const r = await cli(['reap'], { DATABASE_URL: u.toString() });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/refused the login/);
    expect(r.stderr).not.toContain('Wrong-Pass-987');
    expect(r.stderr).not.toContain(serverPassword());
  });

  it('PG* variables are used when no URL is given', async () => {
    const u = new URL(db.url);
    const r = await cli(['executions', 'stuck', '-o', 'json'], {
      PGHOST: u.hostname,
      PGPORT: u.port,
      PGUSER: decodeURIComponent(u.username),
      PGPASSWORD: serverPassword(),
      PGDATABASE: u.pathname.slice(1),
    });
    expect(r.code).toBe(0);
    expect(r.json().command).toBe('executions stuck');
  });

  it('unknown flags and output formats are usage errors (exit 2)', async () => {
    expect((await cli(['reap', '--bogus'], env)).code).toBe(2);
    const r = await cli(['reap', '-o', 'yaml'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/-o yaml is not a known output format/);
    expect((await cli(['reap', '--max', 'lots'], env)).code).toBe(2);
  });
});
