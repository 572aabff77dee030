import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { freshDatabase } from '../support/db.js';
import { cli, cliProcess } from '../support/cli.js';
import { configFile } from '../support/reliability.js';

/**
 * opsctl against a live worker and against other opsctl runs. The worker is a second
 * connection doing what the real services do (FOR UPDATE SKIP LOCKED, then a write); every
 * row it writes carries its marker, so an overwrite by opsctl cannot hide.
 */
let db: Awaited<ReturnType<typeof freshDatabase>>;
let env: NodeJS.ProcessEnv;
let auditCfg: string;

beforeAll(async () => {
  db = await freshDatabase('rel_races');
  env = { DATABASE_URL: db.url };
  auditCfg = configFile({ audit: { table: 'audit_log' }, actor: 'reliability' });
  // opsctl's write statements take a few ms each, so the worker gets to act between its batches.
  await db.client.query(`
    CREATE OR REPLACE FUNCTION rel_pace() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF current_setting('application_name') = 'opsctl' THEN PERFORM pg_sleep(0.01); END IF; RETURN NULL; END $$;
    CREATE TRIGGER rel_pace BEFORE UPDATE ON purchase_executions FOR EACH STATEMENT EXECUTE FUNCTION rel_pace();
    CREATE TRIGGER rel_pace BEFORE UPDATE ON pending_propagations FOR EACH STATEMENT EXECUTE FUNCTION rel_pace();`);
});
afterAll(async () => {
  await db.drop();
});

/**
 * Runs `step` on its own connection until `stop()` is true or `maxIterations` is reached;
 * resolves to the number of iterations done.
 */
async function worker(step: (c: pg.Client, i: number) => Promise<void>, stop: () => boolean, maxIterations: number): Promise<number> {
  const c = new pg.Client({ connectionString: db.url, application_name: 'rel-worker' });
  await c.connect();
  let i = 0;
  try {
    for (; i < maxIterations && !stop(); i++) await step(c, i);
  } finally {
    await c.end();
  }
  return i;
}

describe('races with a live worker', () => {
  it('reap --apply --max 0 while a worker completes and fails rows: zero rows overwritten, outcomes add up to the plan', async () => {
    const N = 1500;
    await db.client.query('TRUNCATE purchase_executions, audit_log');
    await db.client.query(
      `INSERT INTO purchase_executions (status, updated_at) SELECT (ARRAY['approved','running'])[1 + i % 2], now() - interval '1 hour' - make_interval(secs => i) FROM generate_series(1, ${N}) i`,
    );
    // The worker's writes: id → status and error it wrote (its marker).
    const wrote = new Map<string, { status: string; error: string }>();
    let reapDone = false;
    let iterations = 0;
    const live = worker(
      async (c, i) => {
        // Newest first, while opsctl reaps oldest first: they meet in the middle of the plan.
        const r = await c.query(
          `UPDATE purchase_executions SET status = CASE WHEN random() < 0.5 THEN 'completed' ELSE 'failed' END,
                  error = 'worker #' || $1::int
            WHERE id IN (SELECT id FROM purchase_executions WHERE status IN ('approved','running')
                          ORDER BY updated_at DESC FOR UPDATE SKIP LOCKED LIMIT 5)
        RETURNING id::text, status, error`,
          [i],
        );
        for (const row of r.rows) wrote.set(row.id, { status: row.status, error: row.error });
        iterations = i + 1;
      },
      () => reapDone,
      3000,
    );
    // The worker is live before opsctl starts.
    for (let i = 0; i < 200 && iterations === 0; i++) await new Promise((res) => setImmediate(res));
    const r = await cli(['--config', auditCfg, 'reap', '--older-than', '10m', '--apply', '--max', '0', '--batch-size', '50', '-o', 'json'], env);
    reapDone = true;
    await live;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = r.json();
    const s = out.summary;
    expect(s.errored).toBe(0);
    expect(s.reaped + s['race-lost'] + s['skipped-locked'] + s.errored).toBe(s.planned);
    expect(out.items).toHaveLength(s.planned);
    // The race really happened: the worker won some rows after the plan was made.
    expect(s['race-lost'] + s['skipped-locked']).toBeGreaterThan(0);

    const rows = (await db.client.query('SELECT id::text, status, error, transitioned_at FROM purchase_executions')).rows;
    const byId = new Map(rows.map((x) => [x.id, x]));
    // Zero rows overwritten: every row the worker wrote is exactly as it left it.
    for (const [id, w] of wrote) {
      const now = byId.get(id);
      expect(now.status, id).toBe(w.status);
      expect(now.error, id).toBe(w.error);
      expect(now.transitioned_at, id).toBeNull();
    }
    // Every planned row has one owner: reaped by opsctl xor written by the worker.
    for (const item of out.items) {
      if (item.outcome === 'reaped') {
        expect(wrote.has(item.id), item.id).toBe(false);
        expect(byId.get(item.id).error).toBe('reaped after 10m in ' + item.status + ' state — executor did not complete');
      } else {
        expect(['race-lost', 'skipped-locked']).toContain(item.outcome);
        expect(wrote.has(item.id), item.id).toBe(true);
      }
    }
    const reapedRows = rows.filter((x) => x.error?.startsWith('reaped after')).length;
    expect(reapedRows).toBe(s.reaped);
    expect(reapedRows + wrote.size).toBe(N);
    const audit = (await db.client.query("SELECT count(*)::int AS n, count(DISTINCT resource_id)::int AS d FROM audit_log WHERE kind <> 'opsctl.run'")).rows[0];
    expect(audit).toEqual({ n: s.reaped, d: s.reaped });
  });

  it('propagations retry --all --apply --max 0 while the runner picks due rows and applies or re-dead-letters them: only the plan is retried, once; nothing the runner wrote is overwritten', async () => {
    const DEAD = 1000;
    await db.client.query('TRUNCATE pending_propagations, audit_log');
    await db.client.query(`
      INSERT INTO pending_propagations (kind, team_id, attempts, last_error, last_attempt_at, next_attempt_at, failed_at)
      SELECT 'tier_elevation', gen_random_uuid(), 10, 'upstream 503 #' || i, now() - interval '1 day', now() - interval '1 day', now() - interval '1 day' + make_interval(secs => i)
        FROM generate_series(1, ${DEAD}) i;
      -- Pending, not due: the runner leaves them alone, and so must opsctl.
      INSERT INTO pending_propagations (kind, team_id, next_attempt_at) SELECT 'tier_elevation', gen_random_uuid(), now() + interval '1 hour' FROM generate_series(1, 50);`);
    const planned = new Set((await db.client.query('SELECT id::text FROM pending_propagations WHERE failed_at IS NOT NULL')).rows.map((x) => x.id));
    // The runner's writes: id → its last write.
    const wrote = new Map<string, { applied: boolean; lastError: string | null }>();
    let done = false;
    const runner = worker(
      async (c, i) => {
        const r = await c.query(
          `WITH picked AS (
             SELECT id, random() < 0.6 AS ok FROM pending_propagations
              WHERE applied_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
              ORDER BY next_attempt_at FOR UPDATE SKIP LOCKED LIMIT 10)
           UPDATE pending_propagations p
              SET attempts = p.attempts + 1, last_attempt_at = now(),
                  applied_at = CASE WHEN picked.ok THEN now() END,
                  failed_at = CASE WHEN picked.ok THEN NULL ELSE now() END,
                  last_error = CASE WHEN picked.ok THEN p.last_error ELSE 'runner dead-lettered again #' || $1::int END
             FROM picked WHERE p.id = picked.id AND p.applied_at IS NULL AND p.failed_at IS NULL
           RETURNING p.id::text, p.applied_at IS NOT NULL AS applied, p.last_error`,
          [i],
        );
        for (const row of r.rows) wrote.set(row.id, { applied: row.applied, lastError: row.last_error });
      },
      () => done,
      5000,
    );
    const r = await cli(['--config', auditCfg, 'propagations', 'retry', '--all', '--apply', '--max', '0', '--batch-size', '50', '-o', 'json'], env);
    done = true;
    await runner;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = r.json();
    const s = out.summary;
    expect(s.planned).toBe(DEAD);
    expect(s.retried + s['not-dead-anymore'] + s['skipped-locked'] + s.errored).toBe(s.planned);
    expect(new Set(out.items.map((i: any) => i.id))).toEqual(planned);
    // The runner was live during the run: it picked up rows opsctl had just re-driven.
    expect(wrote.size).toBeGreaterThan(0);

    const rows = new Map(
      (await db.client.query('SELECT id::text, applied_at IS NOT NULL AS applied, failed_at IS NOT NULL AS dead, last_error FROM pending_propagations')).rows.map((x) => [x.id, x]),
    );
    for (const [id, w] of wrote) {
      // Only rows opsctl re-drove became due: the runner touched nothing else.
      expect(planned.has(id), id).toBe(true);
      const now = rows.get(id);
      expect(now.applied, id).toBe(w.applied);
      expect(now.dead, id).toBe(!w.applied);
      expect(now.last_error, id).toBe(w.lastError);
    }
    // Each planned row was retried exactly once, even those dead-lettered again mid-run.
    const audit = (await db.client.query("SELECT count(*)::int AS n, count(DISTINCT resource_id)::int AS d FROM audit_log WHERE kind = 'propagation.operator_retry'")).rows[0];
    expect(audit).toEqual({ n: s.retried, d: s.retried });
    const notDue = (await db.client.query("SELECT count(*)::int AS n FROM pending_propagations WHERE next_attempt_at > now() + interval '50 minutes' AND attempts = 0 AND failed_at IS NULL")).rows[0].n;
    expect(notDue).toBe(50);
  });
});

describe('concurrent reapers', () => {
  const N = 1200;
  async function seed() {
    await db.client.query('TRUNCATE purchase_executions, audit_log');
    await db.client.query(
      `INSERT INTO purchase_executions (status, updated_at) SELECT (ARRAY['approved','running'])[1 + i % 2], now() - interval '1 hour' FROM generate_series(1, ${N}) i`,
    );
  }
  async function assertReapedExactlyOnce() {
    const rows = (await db.client.query("SELECT count(*)::int AS n FROM purchase_executions WHERE status = 'failed' AND transitioned_at IS NOT NULL")).rows[0].n;
    expect(rows).toBe(N);
    const audit = (await db.client.query("SELECT count(*)::int AS n, count(DISTINCT resource_id)::int AS d FROM audit_log WHERE kind <> 'opsctl.run'")).rows[0];
    expect(audit).toEqual({ n: N, d: N });
    const orphans = (await db.client.query("SELECT count(*)::int AS n FROM audit_log a LEFT JOIN purchase_executions p ON p.id::text = a.resource_id WHERE p.status IS DISTINCT FROM 'failed' AND a.kind <> 'opsctl.run'")).rows[0].n;
    expect(orphans).toBe(0);
  }
  const args = () => ['--config', auditCfg, 'reap', '--older-than', '10m', '--apply', '--max', '0', '--batch-size', '100', '-o', 'json'];

  it('four reapers with --wait (subprocesses): every row reaped exactly once, one audit row each; the others waited, then found nothing', async () => {
    await seed();
    const runs = await Promise.all([1, 2, 3, 4].map(() => cliProcess([...args(), '--wait'], env)));
    for (const r of runs) {
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    }
    const reaped = runs.map((r) => r.json().summary.reaped).sort((a, b) => b - a);
    expect(reaped).toEqual([N, 0, 0, 0]);
    for (const r of runs.filter((x) => x.json().summary.reaped === 0)) expect(r.json().summary.planned).toBe(0);
    await assertReapedExactlyOnce();
  });

  it('four reapers without --wait: every row reaped exactly once; the others exited 3 naming the holder (or found nothing)', async () => {
    await seed();
    const runs = await Promise.all([1, 2, 3, 4].map(() => cli(args(), env)));
    let turnedAway = 0;
    let total = 0;
    for (const r of runs) {
      expect([0, 3]).toContain(r.code);
      if (r.code === 3) {
        turnedAway += 1;
        expect(r.stderr).toMatch(/^opsctl: another opsctl run is already remediating purchase_executions \(backend pid \d+, application_name opsctl/);
        expect(r.stdout).toBe('');
      } else {
        expect(r.stderr).toBe('');
        total += r.json().summary.reaped;
      }
    }
    expect(total).toBe(N);
    // 12 paced batches keep the lock held far longer than the others take to ask for it.
    expect(turnedAway).toBeGreaterThanOrEqual(1);
    await assertReapedExactlyOnce();
  });
});
