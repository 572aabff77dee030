import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { freshDatabase, databaseChecksum } from '../support/db.js';
import { cli } from '../support/cli.js';
import { configFile, eventually, installGate, opsctlBackends, removeGate, spawnCli, expectOneSentence } from '../support/reliability.js';

/**
 * Faults during --apply: the connection killed, opsctl killed, timeouts, locks held by others.
 * Every case ends with the same invariant: no half-applied row, and a re-run converges.
 */
let db: Awaited<ReturnType<typeof freshDatabase>>;
let env: NodeJS.ProcessEnv;
let auditCfg: string;
const STUCK = 400;
const BATCH = 50;

beforeAll(async () => {
  db = await freshDatabase('rel_faults');
  env = { DATABASE_URL: db.url };
  auditCfg = configFile({ audit: { table: 'audit_log' }, actor: 'reliability' });
});
afterAll(async () => {
  await db.drop();
});

beforeEach(async () => {
  await db.client.query('TRUNCATE purchase_executions, audit_log');
  await db.client.query(`
    INSERT INTO purchase_executions (status, updated_at)
    SELECT (ARRAY['approved','running'])[1 + i % 2], now() - interval '1 hour' - make_interval(secs => i) FROM generate_series(1, ${STUCK}) i;
    INSERT INTO purchase_executions (status, updated_at) SELECT 'running', now() FROM generate_series(1, 20);
    INSERT INTO purchase_executions (status, updated_at) SELECT 'completed', now() - interval '2 hours' FROM generate_series(1, 20);
  `);
});

/** Every row is either fully reaped or untouched; returns how many were reaped. */
async function assertNoHalfAppliedRow(): Promise<number> {
  const r = await db.client.query(`
    SELECT count(*) FILTER (WHERE status = 'failed' AND error LIKE 'reaped after 10m in % state — executor did not complete%' AND transitioned_at IS NOT NULL)::int AS reaped,
           count(*) FILTER (WHERE status IN ('approved','running','completed') AND error IS NULL AND transitioned_at IS NULL)::int AS untouched,
           count(*)::int AS total
      FROM purchase_executions`);
  const { reaped, untouched, total } = r.rows[0];
  expect(reaped + untouched, 'every row is either fully reaped or untouched').toBe(total);
  // One audit row per reaped row, committed with it: never one without the other.
  const audit = await db.client.query(`
    SELECT count(*)::int AS n,
           count(*) FILTER (WHERE p.status = 'failed')::int AS matched,
           count(DISTINCT a.resource_id)::int AS distinct_ids
      FROM audit_log a LEFT JOIN purchase_executions p ON p.id::text = a.resource_id
     WHERE a.kind <> 'opsctl.run'`);
  expect(audit.rows[0]).toEqual({ n: reaped, matched: reaped, distinct_ids: reaped });
  return reaped;
}

const reapArgs = (...extra: string[]) => ['--config', auditCfg, 'reap', '--older-than', '10m', '--apply', '--max', '0', '--batch-size', String(BATCH), '-o', 'json', ...extra];

async function holdGate(): Promise<pg.Client> {
  const holder = new pg.Client({ connectionString: db.url });
  await holder.connect();
  await holder.query('SELECT pg_advisory_lock(4242)');
  return holder;
}

describe('faults mid-apply', () => {
  it("the database connection killed mid-apply (pg_terminate_backend of opsctl's backend): no half-applied row, the report says how far it got, a re-run converges", async () => {
    const holder = await holdGate();
    await installGate(db.client, 'purchase_executions', 2);
    try {
      const run = cli(reapArgs(), { ...env, OPSCTL_LOCK_TIMEOUT: '60s' });
      // Batches 1 and 2 committed; batch 3 is waiting at the gate: mid-apply, exactly.
      const blocked = await eventually('opsctl waiting at the gate in batch 3', async () =>
        (await opsctlBackends(db.client, db.name)).find((b) => b.wait_event === 'advisory'),
      );
      await db.client.query('SELECT pg_terminate_backend($1)', [blocked.pid]);
      const r = await run;
      expect(r.code).toBe(3);
      expect(expectOneSentence(r.stderr)).toBeNull();
      expect(r.stderr).toMatch(/^opsctl: the connection to PostgreSQL at .* was terminated/);
      // The report says how far it got: two batches reaped, stopped in the third.
      const out = r.json();
      expect(out.summary).toMatchObject({ planned: STUCK, reaped: 2 * BATCH, errored: STUCK - 2 * BATCH, batches: 3 });
      expect(out.summary.aborted).toMatch(/^stopped during batch 3: .*terminated/);
      const byOutcome = (o: string, d: RegExp) => out.items.filter((i: any) => i.outcome === o && d.test(i.detail ?? '')).length;
      expect(byOutcome('errored', /connection was lost during this batch/)).toBe(BATCH);
      expect(byOutcome('errored', /not attempted/)).toBe(STUCK - 3 * BATCH);
    } finally {
      await removeGate(db.client, 'purchase_executions');
      await holder.end();
    }
    expect(await assertNoHalfAppliedRow()).toBe(2 * BATCH);
    const again = await cli(reapArgs(), env);
    expect(again.code).toBe(0);
    expect(again.json().summary).toMatchObject({ planned: STUCK - 2 * BATCH, reaped: STUCK - 2 * BATCH, errored: 0 });
    expect(await assertNoHalfAppliedRow()).toBe(STUCK);
  });

  it('opsctl killed with SIGKILL mid-apply: no half-applied row, the next run says how far it got and converges', async () => {
    const holder = await holdGate();
    await installGate(db.client, 'purchase_executions', 2);
    const { child, done } = spawnCli(reapArgs(), { ...env, OPSCTL_LOCK_TIMEOUT: '60s' });
    try {
      // Killed once the first audit rows are committed and it is inside its third batch.
      await eventually('audit rows committed and opsctl inside batch 3', async () => {
        const n = (await db.client.query('SELECT count(*)::int AS n FROM audit_log')).rows[0].n;
        const waiting = (await opsctlBackends(db.client, db.name)).some((b) => b.wait_event === 'advisory');
        return n > 0 && waiting;
      });
      child.kill('SIGKILL');
      const r = await done;
      expect(r.signal).toBe('SIGKILL');
    } finally {
      await holder.end();
    }
    // The orphaned backend finishes its statement. A batch is one statement that inserts its own
    // audit rows (no BEGIN/COMMIT: Remedy.auditsItself), so the third batch ends as a whole: it
    // commits with its audit rows (the statement ran to its end) or not at all — never a row
    // without its audit row, nor part of a batch.
    await eventually('the killed run leaves no session behind', async () => (await opsctlBackends(db.client, db.name)).length === 0);
    await removeGate(db.client, 'purchase_executions');
    const committed = await assertNoHalfAppliedRow();
    expect([2 * BATCH, 3 * BATCH]).toContain(committed);
    const next = await cli(reapArgs(), env);
    expect(next.code).toBe(0);
    expect(next.json().summary).toMatchObject({ planned: STUCK - committed, reaped: STUCK - committed, errored: 0 });
    expect(await assertNoHalfAppliedRow()).toBe(STUCK);
  });
});

describe('locks and timeouts', () => {
  it('a lock_timeout mid-apply stops the run with exit 3 and one sentence; the report says two batches were reaped and the third was rolled back, not "unknown"', async () => {
    const holder = await holdGate();
    await installGate(db.client, 'purchase_executions', 2);
    let r: Awaited<ReturnType<typeof cli>>;
    try {
      r = await cli(reapArgs(), { ...env, OPSCTL_LOCK_TIMEOUT: '300ms' });
    } finally {
      await removeGate(db.client, 'purchase_executions');
      await holder.end();
    }
    expect(r.code).toBe(3);
    expect(expectOneSentence(r.stderr)).toBeNull();
    expect(r.stderr).toMatch(/lock_timeout of 300ms/);
    const out = r.json();
    // Batches are sized by time up to --batch-size: on a loaded machine the sizer may shrink one
    // (e.g. 50,37,50), so the counts come from the sizes the run reports.
    const sizes: number[] = String(out.summary.batchSizes)
      .split(',')
      .flatMap((p) => {
        const [n, k] = p.split('×');
        return Array<number>(Number(k ?? 1)).fill(Number(n));
      });
    for (const size of sizes) expect(size).toBeGreaterThan(0), expect(size).toBeLessThanOrEqual(BATCH);
    const reaped = sizes[0]! + sizes[1]!;
    expect(out.summary).toMatchObject({ planned: STUCK, reaped, errored: STUCK - reaped, batches: 3 });
    const third = out.items.filter((i: any) => i.outcome === 'errored' && !/not attempted/.test(i.detail));
    expect(third).toHaveLength(sizes[2] ?? third.length);
    expect(third.length).toBeGreaterThan(0);
    // The database rolled that batch back: the report must not send the operator hunting for a half-applied batch.
    for (const i of third) expect(i.detail).toMatch(/^not applied \(the batch was rolled back\): a lock could not be taken within the lock_timeout/);
    expect(await assertNoHalfAppliedRow()).toBe(reaped);
  });

  it('a row held by an open transaction is skipped, not waited on (lock_timeout 200ms would fail a wait); a re-run reaps it', async () => {
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    const held = (await db.client.query("SELECT id::text FROM purchase_executions WHERE status = 'approved' AND updated_at < now() - interval '10 minutes' LIMIT 1")).rows[0].id;
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM purchase_executions WHERE id = $1 FOR UPDATE', [held]);
      const r = await cli(reapArgs(), { ...env, OPSCTL_LOCK_TIMEOUT: '200ms' });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.json().summary).toMatchObject({ planned: STUCK, reaped: STUCK - 1, 'skipped-locked': 1, errored: 0 });
      expect(r.json().items.find((i: any) => i.id === held).outcome).toBe('skipped-locked');
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    expect(await assertNoHalfAppliedRow()).toBe(STUCK - 1);
    const again = await cli(reapArgs(), env);
    expect(again.json().summary).toMatchObject({ planned: 1, reaped: 1 });
    expect(await assertNoHalfAppliedRow()).toBe(STUCK);
  });

  it('statement_timeout is honoured: a statement slower than OPSCTL_STATEMENT_TIMEOUT=200ms stops the run, exit 3, one sentence, nothing written', async () => {
    await db.client.query(`
      CREATE OR REPLACE FUNCTION rel_slow() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF current_setting('application_name') = 'opsctl' THEN PERFORM pg_sleep(5); END IF; RETURN NULL; END $$;
      CREATE TRIGGER rel_slow BEFORE UPDATE ON purchase_executions FOR EACH STATEMENT EXECUTE FUNCTION rel_slow();`);
    const before = await databaseChecksum(db.client);
    try {
      const started = Date.now();
      const r = await cli(reapArgs(), { ...env, OPSCTL_STATEMENT_TIMEOUT: '200ms' });
      expect(r.code).toBe(3);
      expect(expectOneSentence(r.stderr)).toBeNull();
      expect(r.stderr).toMatch(/cancelled after the statement_timeout of 200ms \(database\.statementTimeout\)/);
      // One timeout, not one per row: the run stops instead of retrying each row into the same wall.
      expect(Date.now() - started).toBeLessThan(4000);
      // Nothing was applied, so the run failed as a whole: no report, only the sentence.
      expect(r.stdout).toBe('');
    } finally {
      await db.client.query('DROP TRIGGER rel_slow ON purchase_executions');
    }
    expect(await databaseChecksum(db.client)).toBe(before);
  });

  it('lock_timeout is honoured: an ACCESS EXCLUSIVE lock on the table → exit 3 with the lock_timeout sentence, nothing written', async () => {
    const before = await databaseChecksum(db.client);
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE purchase_executions IN ACCESS EXCLUSIVE MODE');
      for (const args of [reapArgs(), ['reap', '--older-than', '10m']]) {
        const r = await cli(args, { ...env, OPSCTL_LOCK_TIMEOUT: '200ms' });
        expect(r.code).toBe(3);
        expect(expectOneSentence(r.stderr)).toBeNull();
        expect(r.stderr).toMatch(/lock could not be taken within the lock_timeout of 200ms \(database\.lockTimeout\)/);
      }
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    expect(await databaseChecksum(db.client)).toBe(before);
  });

  it('lock_timeout is honoured on the audit table too: exit 3 with the lock_timeout sentence, nothing written (no row without its audit row)', async () => {
    const before = await databaseChecksum(db.client);
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE audit_log IN SHARE MODE');
      const started = Date.now();
      const r = await cli(reapArgs(), { ...env, OPSCTL_LOCK_TIMEOUT: '200ms' });
      expect(r.code).toBe(3);
      expect(expectOneSentence(r.stderr)).toBeNull();
      expect(r.stderr).toMatch(/lock_timeout of 200ms/);
      expect(Date.now() - started).toBeLessThan(4000);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    expect(await databaseChecksum(db.client)).toBe(before);
    const again = await cli(reapArgs(), env);
    expect(again.json().summary).toMatchObject({ reaped: STUCK });
    expect(await assertNoHalfAppliedRow()).toBe(STUCK);
  });

  it('--wait waits for the other run, however long, and is not cut short by lock_timeout or statement_timeout', async () => {
    const holderDb = new pg.Client({ connectionString: db.url });
    await holderDb.connect();
    // The lock another opsctl run would hold (the same two-key advisory lock, keyed by the table's oid).
    const { OPSCTL_LOCK_CLASS } = await import('../../src/engine/advisory-lock.js');
    const oid = Number((await holderDb.query("SELECT 'purchase_executions'::regclass::oid::bigint AS oid")).rows[0].oid);
    await holderDb.query('SELECT pg_advisory_lock($1::int, $2::int)', [OPSCTL_LOCK_CLASS, oid > 0x7fffffff ? oid - 0x100000000 : oid]);
    let released = false;
    try {
      const run = cli(reapArgs('--wait'), { ...env, OPSCTL_LOCK_TIMEOUT: '100ms', OPSCTL_STATEMENT_TIMEOUT: '200ms' });
      await eventually('opsctl waiting for the table lock', async () => (await opsctlBackends(db.client, db.name)).some((b) => b.wait_event === 'advisory'));
      // Hold it well past both timeouts before letting go.
      await new Promise((res) => setTimeout(res, 600));
      expect((await opsctlBackends(db.client, db.name)).some((b) => b.wait_event === 'advisory')).toBe(true);
      await holderDb.query('SELECT pg_advisory_unlock_all()');
      released = true;
      const r = await run;
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.json().summary).toMatchObject({ reaped: STUCK });
    } finally {
      if (!released) await holderDb.query('SELECT pg_advisory_unlock_all()');
      await holderDb.end();
    }
    expect(await assertNoHalfAppliedRow()).toBe(STUCK);
  });
});
