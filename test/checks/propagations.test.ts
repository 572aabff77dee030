import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import pg from 'pg';
import { freshDatabase, tableChecksum } from '../support/db.js';
import { cli } from '../support/cli.js';
import { runCli } from '../../src/cli/cli.js';
import { Database } from '../../src/database/database.js';
import { defaultConfig } from '../../src/config/config.js';
import { retryRemedy } from '../../src/checks/dead-letter-remedies.js';
import { remediate } from '../../src/engine/remediation.js';

let db: Awaited<ReturnType<typeof freshDatabase>>;
let env: NodeJS.ProcessEnv;
let cwd: string;
const TEAM = '11111111-2222-4333-8444-555555555555';

beforeAll(async () => {
  db = await freshDatabase('prop');
  env = { DATABASE_URL: db.url };
  cwd = mkdtempSync(join(tmpdir(), 'opsctl-prop-'));
});
afterAll(async () => {
  await db.drop();
});
beforeEach(async () => {
  await db.client.query('TRUNCATE pending_propagations, audit_log');
});

interface Seed {
  kind?: string;
  attempts?: number;
  lastError?: string | null;
  /** minutes ago; null = not dead */
  failedAgo?: number | null;
  appliedAgo?: number | null;
  /** minutes from now (negative: in the past) */
  nextIn?: number;
  teamId?: string;
}
async function ins(s: Seed): Promise<string> {
  const r = await db.client.query(
    `INSERT INTO pending_propagations (kind, team_id, attempts, last_error, failed_at, applied_at, next_attempt_at, created_at)
     VALUES ($1, $2, $3, $4,
             CASE WHEN $5::float8 IS NULL THEN NULL ELSE now() - make_interval(secs => $5::float8 * 60) END,
             CASE WHEN $6::float8 IS NULL THEN NULL ELSE now() - make_interval(secs => $6::float8 * 60) END,
             now() + make_interval(secs => $7::float8 * 60), now() - interval '40 days')
     RETURNING id::text`,
    [s.kind ?? 'tier_elevation', s.teamId ?? TEAM, s.attempts ?? 10, s.lastError === undefined ? 'boom' : s.lastError, s.failedAgo ?? null, s.appliedAgo ?? null, s.nextIn ?? -1],
  );
  return r.rows[0].id;
}
const row = async (id: string) =>
  (await db.client.query('SELECT id::text, kind, attempts, last_error, failed_at, applied_at, next_attempt_at, extract(epoch FROM now() - next_attempt_at)::float8 AS due_for FROM pending_propagations WHERE id = $1', [id])).rows[0];
const uuid = (i: number) => `${(0x10000000 + i * 7919).toString(16)}-aaaa-4bbb-8ccc-${(0x100000000000 + i * 104729).toString(16)}`;
const config = (name: string, body: unknown) => {
  const f = join(cwd, name);
  writeFileSync(f, JSON.stringify(body));
  return f;
};

const CONN_CLASS = 'connection refused: dial tcp <ip>:<n> for team <uuid> after <duration>';
const LONG = `payload rejected by the downstream service: ${'field plan is required; '.repeat(20)}`;

/** 40 dead letters: 30 of one error (varying ips, uuids, numbers), 6 of another, 4 odd ones; plus live rows. */
async function seedDeadLetters() {
  const conn: string[] = [];
  for (let i = 0; i < 30; i += 1)
    conn.push(await ins({ kind: i < 20 ? 'tier_elevation' : 'seat_sync', failedAgo: 5 + i, lastError: `connection refused: dial tcp 10.0.${i}.7:5432 for team ${uuid(i)} after ${i * 37 + 1}ms` }));
  const quota: string[] = [];
  for (let i = 0; i < 6; i += 1) quota.push(await ins({ kind: 'quota_v2', failedAgo: 100 + i, lastError: `no handler for kind "quota_v2" (attempt ${i})` }));
  const odd = [
    await ins({ failedAgo: 200, lastError: 'permission denied for table teams' }),
    await ins({ failedAgo: 201, lastError: null }),
    await ins({ failedAgo: 202, lastError: LONG }),
    await ins({ failedAgo: 1, lastError: 'newest of all' }),
  ];
  const live = [await ins({ attempts: 1, failedAgo: null }), await ins({ attempts: 3, failedAgo: null, appliedAgo: 5 })];
  return { conn, quota, odd, live, all: [...conn, ...quota, ...odd] };
}

describe('propagations dead-letters', () => {
  it('lists dead letters newest first and groups all of them by kind and error class', async () => {
    const { all, odd } = await seedDeadLetters();
    const r = await cli(['propagations', 'dead-letters', '-o', 'json'], env);
    expect(r.code).toBe(0);
    const out = r.json();
    expect(out.command).toBe('propagations dead-letters');
    expect(out.items.map((i: any) => i.id).sort()).toEqual([...all].sort());
    expect(out.items[0].id).toBe(odd[3]);
    const times = out.items.map((i: any) => Date.parse(i.failedAt));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    expect(out.items.find((i: any) => i.lastError === LONG)).toBeTruthy();
    const s = out.summary;
    expect(s.total).toBe(40);
    expect(s.byErrorClass[0]).toMatchObject({ errorClass: CONN_CLASS, count: 30, kinds: ['seat_sync', 'tier_elevation'] });
    expect(s.byErrorClass[1]).toMatchObject({ errorClass: 'no handler for kind <str> (attempt <n>)', count: 6, kinds: ['quota_v2'] });
    expect(s.byErrorClass.reduce((n: number, g: any) => n + g.count, 0)).toBe(40);
    expect(s.byErrorClass.find((g: any) => g.errorClass === '(no error)').count).toBe(1);
    expect(Object.fromEntries(s.byKind.map((k: any) => [k.kind, k.count]))).toEqual({ tier_elevation: 24, seat_sync: 10, quota_v2: 6 });
    const tier = s.byKind.find((k: any) => k.kind === 'tier_elevation');
    expect(Date.parse(tier.newest)).toBeGreaterThan(Date.parse(tier.oldest));
  });

  it('--limit shows fewer rows but the summary still counts every dead letter', async () => {
    await seedDeadLetters();
    const out = (await cli(['propagations', 'dead-letters', '--limit', '5', '-o', 'json'], env)).json();
    expect(out.items).toHaveLength(5);
    expect(out.summary).toMatchObject({ total: 40, shown: 5, limitReached: 5 });
    expect(out.summary.byErrorClass[0].count).toBe(30);
  });

  it('filters by --kind and --since (bound values, not SQL)', async () => {
    await seedDeadLetters();
    const q = (await cli(['propagations', 'dead-letters', '--kind', 'quota_v2', '-o', 'json'], env)).json();
    expect(q.summary.total).toBe(6);
    expect(q.summary.byErrorClass).toHaveLength(1);
    const recent = (await cli(['propagations', 'dead-letters', '--since', '10m', '-o', 'json'], env)).json();
    // failed 1, 5, 6, 7, 8, 9 minutes ago
    expect(recent.summary.total).toBe(6);
    const evil = await cli(['propagations', 'dead-letters', '--kind', "x' OR 1=1 --", '-o', 'json'], env);
    expect(evil.code).toBe(0);
    expect(evil.json().summary.total).toBe(0);
  });

  it('table mode: a headline naming the dominant class, whole errors when not a terminal, grouping sections', async () => {
    await seedDeadLetters();
    const r = await cli(['propagations', 'dead-letters'], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`40 dead letters in pending_propagations; 30 of them one error class: ${CONN_CLASS}`);
    expect(r.stdout).toContain('By kind');
    expect(r.stdout).toContain('By error class');
    // Not a terminal: nothing is cut (issue 27; a terminal gets the table fitted, see width.e2e).
    expect(r.stdout).toContain(LONG);
    expect(r.stdout).not.toContain('…');
    expect(r.stdout).not.toMatch(/\u001b\[/);
    expect(r.stdout).toMatch(/total: 40 {2}shown: 40/);
  });

  it('distinct error classes are capped: the top 20 by count, the rest folded into (other)', async () => {
    const letters = (i: number) => String.fromCharCode(97 + (i % 26)) + String.fromCharCode(97 + Math.floor(i / 26));
    await db.client.query(
      `INSERT INTO pending_propagations (kind, team_id, attempts, last_error, failed_at)
       SELECT 'k', $1, 10, 'handler ' || w || ' failed', now() - make_interval(mins => n)
         FROM unnest($2::text[], $3::int[]) AS u(w, n), generate_series(1, n)`,
      [TEAM, Array.from({ length: 30 }, (_, i) => letters(i)), Array.from({ length: 30 }, (_, i) => 31 - i)],
    );
    const s = (await cli(['propagations', 'dead-letters', '-o', 'json'], env)).json().summary;
    expect(s.byErrorClass).toHaveLength(21);
    expect(s.byErrorClass[0]).toMatchObject({ errorClass: 'handler aa failed', count: 31 });
    const other = s.byErrorClass[20];
    expect(other.errorClass).toBe('(other)');
    expect(other.count).toBe(s.total - s.byErrorClass.slice(0, 20).reduce((n: number, g: any) => n + g.count, 0));
  });

  it('a missing column is named with its config key', async () => {
    const f = config('badcol.json', { propagations: { columns: { failedAt: 'dead_at' } } });
    const r = await cli(['--config', f, 'propagations', 'dead-letters'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('column "dead_at" (config propagations.columns.failedAt) does not exist in table pending_propagations');
    const t = await cli(['--config', config('badtable.json', { propagations: { table: 'outbox' } }), 'propagations', 'pending'], env);
    expect(t.code).toBe(2);
    expect(t.stderr).toMatch(/table outbox \(config propagations\.table\) does not exist/);
  });
});

describe('propagations pending', () => {
  async function seedPending() {
    return {
      overdue: await ins({ attempts: 2, failedAgo: null, nextIn: -30 }),
      nearDead: await ins({ attempts: 8, failedAgo: null, nextIn: 10 }),
      both: await ins({ attempts: 9, failedAgo: null, nextIn: -60 }),
      unknown: await ins({ kind: 'mystery', attempts: 0, failedAgo: null, nextIn: 1 }),
      fine: [await ins({ attempts: 1, failedAgo: null, nextIn: -1 }), await ins({ attempts: 0, failedAgo: null, nextIn: 5 })],
      // Done rows are never "pending in trouble", however old or tried.
      done: [await ins({ attempts: 9, failedAgo: 5, nextIn: -600 }), await ins({ attempts: 9, failedAgo: null, appliedAgo: 5, nextIn: -600 })],
    };
  }

  it('classifies overdue and near-dead rows, most overdue first, with counts per problem', async () => {
    const s = await seedPending();
    const r = await cli(['propagations', 'pending', '-o', 'json'], env);
    expect(r.code).toBe(0);
    const out = r.json();
    expect(out.items.map((i: any) => [i.id, i.problems])).toEqual([
      [s.both, ['overdue', 'near-dead']],
      [s.overdue, ['overdue']],
      [s.nearDead, ['near-dead']],
    ]);
    expect(out.summary).toMatchObject({ troubled: 3, overdue: 2, 'near-dead': 2, overdueThreshold: '15m' });
    expect(out.summary['unknown-kind']).toBeUndefined();
    // attempts 8 of 10: one more failure waits backoff[8] = 16h, the next one dead-letters it.
    const nd = out.items[2];
    expect(Date.parse(nd.deadLetteredEarliest) - Date.parse(nd.nextAttemptAt)).toBe(16 * 3600_000);
    expect(out.items[0].deadLetteredEarliest).toBe(out.items[0].nextAttemptAt);
  });

  it('unknown kinds are flagged only when propagations.knownKinds is set; --overdue moves the bar', async () => {
    const s = await seedPending();
    const f = config('known.json', { propagations: { knownKinds: ['tier_elevation', 'seat_sync'] } });
    const out = (await cli(['--config', f, 'propagations', 'pending', '--overdue', '2h', '-o', 'json'], env)).json();
    expect(Object.fromEntries(out.items.map((i: any) => [i.id, i.problems]))).toEqual({
      [s.both]: ['near-dead'],
      [s.nearDead]: ['near-dead'],
      [s.unknown]: ['unknown-kind'],
    });
    expect(out.summary).toMatchObject({ troubled: 3, overdue: 0, 'near-dead': 2, 'unknown-kind': 1, overdueThreshold: '2h' });
    const table = await cli(['--config', f, 'propagations', 'pending'], env);
    expect(table.stdout).toContain('overdue, near-dead');
    expect(table.stdout).toContain('unknown-kind');
  });

  it('refuses a bad --overdue with exit 2 and one sentence', async () => {
    const r = await cli(['propagations', 'pending', '--overdue', '15'], env);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^opsctl: --overdue "15" has no unit/);
  });
});

describe('propagations retry', () => {
  const auditCfg = () => config('audit.json', { audit: { table: 'audit_log' }, actor: 'test-operator' });

  it('dry run prints the plan and changes nothing', async () => {
    const { all } = await seedDeadLetters();
    const before = await tableChecksum(db.client, 'pending_propagations');
    const r = await cli(['propagations', 'retry', '--all', '-o', 'json'], env);
    expect(r.code).toBe(0);
    const out = r.json();
    expect(out.mode).toBe('plan');
    expect(out.items.map((i: any) => i.id).sort()).toEqual([...all].sort());
    expect(out.items.every((i: any) => i.outcome === 'planned')).toBe(true);
    expect(out.summary).toMatchObject({ planned: 40, refused: 0 });
    expect(await tableChecksum(db.client, 'pending_propagations')).toBe(before);
    const table = await cli(['propagations', 'retry', '--kind', 'quota_v2'], env);
    expect(table.stdout).toContain('Dry run: nothing was changed');
  });

  it('--apply re-drives exactly the eligible rows, keeps last_error, audits, and a re-run finds nothing', async () => {
    const { conn, quota, odd, live } = await seedDeadLetters();
    const untouched = [...quota, ...odd.slice(0, 3), ...live];
    const snapshot = async (id: string) => {
      const { due_for, ...rest } = await row(id);
      return rest;
    };
    // One client: queries one after another.
    const all = async () => {
      const out = [];
      for (const id of untouched) out.push(await snapshot(id));
      return out;
    };
    const before = await all();
    const r = await cli(['--config', auditCfg(), 'propagations', 'retry', '--kind', 'tier_elevation', '--since', '30m', '--apply', '--reason', 'INC-9 fixed', '-o', 'json'], env);
    expect(r.code).toBe(0);
    const out = r.json();
    // tier_elevation dead letters of the last 30 minutes: the 20 connection errors (5..24 min ago) + the newest odd one.
    const expected = [...conn.slice(0, 20), odd[3]];
    expect(out.summary).toMatchObject({ planned: 21, retried: 21, 'not-dead-anymore': 0, 'skipped-locked': 0, errored: 0 });
    expect(out.items.map((i: any) => i.id).sort()).toEqual([...expected].sort());
    for (const id of expected) {
      const x = await row(id);
      expect(x.failed_at).toBeNull();
      expect(x.attempts).toBe(0);
      expect(Math.abs(x.due_for)).toBeLessThan(30);
      expect(x.last_error).not.toBeNull();
    }
    expect((await row(conn[0])).last_error).toMatch(/^connection refused: dial tcp 10\.0\.0\.7:5432/);
    expect(await all()).toEqual(before);
    for (const id of conn.slice(20)) expect((await row(id)).failed_at).not.toBeNull();

    const audit = await db.client.query("SELECT actor, kind, resource_id, summary, metadata, team_id::text FROM audit_log WHERE kind = 'propagation.operator_retry'");
    expect(audit.rows.map((a) => a.resource_id).sort()).toEqual([...expected].sort());
    expect(audit.rows[0]).toMatchObject({ actor: 'test-operator', team_id: TEAM });
    expect(audit.rows[0].summary).toContain('INC-9 fixed');
    // The runner's keys, and the id of the opsctl run that wrote it (a UUIDv7).
    expect(audit.rows[0].metadata).toEqual({
      propagation_id: audit.rows[0].resource_id,
      kind: 'tier_elevation',
      team_id: TEAM,
      previous_attempts: 10,
      reason: 'INC-9 fixed',
      runId: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
      // What the retry overwrote and what the row holds after it (issue #28), and where that is.
      before: { failed_at: expect.any(String), attempts: 10, next_attempt_at: expect.any(String) },
      after: { failed_at: null, attempts: 0, next_attempt_at: expect.any(String) },
      image: { table: 'pending_propagations', schema: null, key: 'id', columns: ['failed_at', 'attempts', 'next_attempt_at'], id: audit.rows[0].resource_id },
    });

    const again = await cli(['propagations', 'retry', '--kind', 'tier_elevation', '--since', '30m', '--apply', '-o', 'json'], env);
    expect(again.code).toBe(0);
    expect(again.json().summary.planned).toBe(0);
  });

  it('retries only the given ids and reports the ones that are not dead letters', async () => {
    const { conn, live } = await seedDeadLetters();
    const r = await cli(['propagations', 'retry', conn[3], conn[4], conn[4], live[0], uuid(999), '--apply', '-o', 'json'], env);
    // A named id that does not exist is a finding, as a named group is for adopt.
    expect(r.code).toBe(1);
    const out = r.json();
    expect(out.items.map((i: any) => i.id).sort()).toEqual([conn[3], conn[4]].sort());
    expect(out.summary).toMatchObject({ retried: 2, idsNotFound: 1, idsNotDead: 1 });
    expect((await row(conn[5])).failed_at).not.toBeNull();
    const one = await cli(['propagations', 'retry', uuid(998).toUpperCase(), conn[6], '--apply'], env);
    expect(one.code).toBe(1);
    expect(one.stdout).toContain(`1 named id does not exist: ${uuid(998).toUpperCase()} (exit 1).`);
    expect((await row(conn[6])).failed_at).toBeNull();
    const two = await cli(['propagations', 'retry', uuid(998), uuid(997)], env);
    expect(two.code).toBe(1);
    expect(two.stdout).toContain(`2 named ids do not exist: ${uuid(998)}, ${uuid(997)} (exit 1).`);
  });

  it('refuses unknown kinds at plan time unless --include-unknown-kinds', async () => {
    const { quota } = await seedDeadLetters();
    const f = config('known-retry.json', { propagations: { knownKinds: ['tier_elevation', 'seat_sync'] } });
    const r = await cli(['--config', f, 'propagations', 'retry', '--kind', 'quota_v2', '--apply', '-o', 'json'], env);
    expect(r.code).toBe(0);
    const out = r.json();
    expect(out.summary).toMatchObject({ planned: 0, retried: 0, refused: 6 });
    expect(out.items[0].outcome).toBe('refused');
    expect(out.items[0].detail).toMatch(/kind "quota_v2" is not in propagations.knownKinds/);
    for (const id of quota) expect((await row(id)).failed_at).not.toBeNull();
    const dry = (await cli(['--config', f, 'propagations', 'retry', '--all', '-o', 'json'], env)).json();
    expect(dry.summary).toMatchObject({ planned: 34, refused: 6 });

    const forced = await cli(['--config', f, 'propagations', 'retry', '--kind', 'quota_v2', '--include-unknown-kinds', '--apply', '-o', 'json'], env);
    expect(forced.json().summary).toMatchObject({ retried: 6, refused: 0 });
    for (const id of quota) expect((await row(id)).failed_at).toBeNull();
  });

  it('a row re-driven or applied by someone else between plan and apply is not-dead-anymore, left alone', async () => {
    const { quota } = await seedDeadLetters();
    const conn = await Database.connect({ settings: { ...defaultConfig().database, url: db.url }, env: {} });
    try {
      const cfg = defaultConfig();
      const report = await remediate(conn, retryRemedy(cfg.propagations, { filter: { kind: 'quota_v2' }, includeUnknownKinds: false, actor: 't', audit: cfg.audit }), {
        apply: true,
        max: 1000,
        batchSize: 500,
        wait: false,
        confirm: async (plan) => {
          expect(plan).toHaveLength(6);
          // After the plan: another operator re-drives one; the runner had applied another.
          await db.client.query("UPDATE pending_propagations SET failed_at = NULL, attempts = 0, next_attempt_at = now() + interval '1 hour' WHERE id = $1", [quota[0]]);
          await db.client.query('UPDATE pending_propagations SET failed_at = NULL, applied_at = now() WHERE id = $1', [quota[1]]);
          await db.client.query('DELETE FROM pending_propagations WHERE id = $1', [quota[2]]);
          return true;
        },
      });
      const byId = Object.fromEntries(report.items.map((i) => [i.id, i]));
      expect(byId[quota[0]]).toMatchObject({ outcome: 'not-dead-anymore', detail: expect.stringMatching(/pending again/) });
      expect(byId[quota[1]]).toMatchObject({ outcome: 'not-dead-anymore', detail: expect.stringMatching(/applied at/) });
      expect(byId[quota[2]]).toMatchObject({ outcome: 'not-dead-anymore', detail: 'row no longer exists' });
      expect(report.summary).toMatchObject({ planned: 6, retried: 3, 'not-dead-anymore': 3, errored: 0 });
      const other = await row(quota[0]);
      expect(other.due_for).toBeLessThan(-3000);
      expect((await row(quota[1])).applied_at).not.toBeNull();
    } finally {
      await conn.close();
    }
  });

  it('a row locked by an open transaction is skipped-locked, not waited on', async () => {
    const { quota } = await seedDeadLetters();
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT * FROM pending_propagations WHERE id = $1 FOR UPDATE', [quota[0]]);
      const r = await cli(['propagations', 'retry', '--kind', 'quota_v2', '--apply', '-o', 'json'], { ...env, OPSCTL_LOCK_TIMEOUT: '1s' });
      expect(r.code).toBe(0);
      const out = r.json();
      expect(out.summary).toMatchObject({ retried: 5, 'skipped-locked': 1 });
      expect(out.items.find((i: any) => i.id === quota[0]).outcome).toBe('skipped-locked');
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    expect((await row(quota[0])).failed_at).not.toBeNull();
  });

  it('racing a live worker: every row ends in one state, none lost, outcomes add up, nothing applied is un-applied', async () => {
    await db.client.query(
      `INSERT INTO pending_propagations (kind, team_id, attempts, last_error, failed_at, next_attempt_at)
       SELECT 'tier_elevation', $1, 10, 'boom ' || i, now() - make_interval(mins => i), now() - interval '2 days' FROM generate_series(1, 600) i`,
      [TEAM],
    );
    await db.client.query(
      `INSERT INTO pending_propagations (kind, team_id, attempts, next_attempt_at) SELECT 'seat_sync', $1, 0, now() - make_interval(secs => i) FROM generate_series(1, 200) i`,
      [TEAM],
    );
    const worker = new pg.Client({ connectionString: db.url });
    await worker.connect();
    const applied = new Set<string>();
    let killed = 0;
    let stop = false;
    let iterations = 0;
    // The reference runner's pick, marking rows applied (2 in 3) or dead again, as fast as it can.
    const loop = (async () => {
      while (!stop && iterations < 20_000) {
        iterations += 1;
        await worker.query('BEGIN');
        const picked = await worker.query<{ id: string }>(
          `SELECT id::text AS id FROM pending_propagations WHERE applied_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
            ORDER BY next_attempt_at FOR UPDATE SKIP LOCKED LIMIT 50`,
        );
        const ids = picked.rows.map((r) => r.id);
        const ok = await worker.query<{ id: string }>(
          'UPDATE pending_propagations SET applied_at = now(), attempts = attempts + 1 WHERE id = ANY($1) AND applied_at IS NULL AND failed_at IS NULL RETURNING id::text AS id',
          [ids.filter((_, i) => i % 3 !== 0)],
        );
        const dead = await worker.query(
          "UPDATE pending_propagations SET failed_at = now(), attempts = attempts + 1, last_error = 'worker: boom' WHERE id = ANY($1) AND applied_at IS NULL AND failed_at IS NULL",
          [ids.filter((_, i) => i % 3 === 0)],
        );
        await worker.query('COMMIT');
        for (const r of ok.rows) applied.add(r.id);
        killed += dead.rowCount ?? 0;
      }
    })();
    let r;
    try {
      r = await cli(['--config', auditCfg(), 'propagations', 'retry', '--all', '--apply', '--max', '0', '--batch-size', '20', '-o', 'json'], env);
    } finally {
      stop = true;
      await loop;
      await worker.end();
    }
    expect(r.code).toBe(0);
    const out = r.json();
    const s = out.summary;
    expect(s.errored).toBe(0);
    expect(s.retried + s['not-dead-anymore'] + s['skipped-locked'] + s.errored).toBe(s.planned);
    expect(out.items).toHaveLength(s.planned);
    expect(s.planned).toBeGreaterThanOrEqual(600);
    // The worker really raced the retry: it applied rows the retry had just re-driven.
    const retried = out.items.filter((i: any) => i.outcome === 'retried').map((i: any) => i.id);
    expect(retried.filter((id: string) => applied.has(id)).length).toBeGreaterThan(0);
    expect(killed).toBeGreaterThan(0);

    const states = await db.client.query<{ state: string; n: number }>(
      `SELECT CASE WHEN applied_at IS NOT NULL AND failed_at IS NOT NULL THEN 'both'
                   WHEN applied_at IS NOT NULL THEN 'applied' WHEN failed_at IS NOT NULL THEN 'dead' ELSE 'pending' END AS state,
              count(*)::int AS n FROM pending_propagations GROUP BY 1`,
    );
    const byState = Object.fromEntries(states.rows.map((x) => [x.state, x.n]));
    expect(byState.both).toBeUndefined();
    expect(states.rows.reduce((n, x) => n + x.n, 0)).toBe(800);
    const stillApplied = await db.client.query<{ n: number }>('SELECT count(*)::int AS n FROM pending_propagations WHERE id = ANY($1) AND applied_at IS NOT NULL', [[...applied]]);
    expect(stillApplied.rows[0].n).toBe(applied.size);
    const audit = await db.client.query<{ n: number; d: number }>(
      "SELECT count(*)::int AS n, count(DISTINCT resource_id)::int AS d FROM audit_log WHERE kind = 'propagation.operator_retry'",
    );
    expect(audit.rows[0]).toEqual({ n: s.retried, d: s.retried });
  });

  it('refuses a plan over --max with exit 2 and changes nothing', async () => {
    await seedDeadLetters();
    const before = await tableChecksum(db.client, 'pending_propagations');
    const r = await cli(['propagations', 'retry', '--all', '--apply', '--max', '10'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/more than 10 rows of pending_propagations would be changed by retry/);
    expect(await tableChecksum(db.client, 'pending_propagations')).toBe(before);
  });

  describe('bad input: exit 2, one sentence, nothing written', () => {
    it.each([
      [['propagations', 'retry'], /^opsctl: retry needs a scope: pass dead-letter ids, a filter \(--kind, --since, --error-class\) or --all/],
      [['propagations', 'retry', '--apply'], /^opsctl: retry needs a scope/],
      [['propagations', 'retry', 'not-a-uuid', '--apply'], /^opsctl: id "not-a-uuid" is not a valid uuid \(the type of pending_propagations\.id\)/],
      [['propagations', 'retry', '--since', 'yesterday', '--apply'], /^opsctl: --since "yesterday" is not a duration/],
      [['propagations', 'retry', '--all', '--max', 'lots', '--apply'], /^opsctl: --max must be a whole number/],
      [['propagations', 'dead-letters', '--since', '0m'], /^opsctl: --since must be greater than zero/],
      [['propagations', 'dead-letters', '--limit', '-1'], /^opsctl: --limit must be a whole number/],
    ])('%j', async (args, message) => {
      await seedDeadLetters();
      const before = await tableChecksum(db.client, 'pending_propagations');
      const r = await cli(args as string[], env);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
      expect(r.stdout).toBe('');
      expect(await tableChecksum(db.client, 'pending_propagations')).toBe(before);
    });

    it('a malformed id among good ones is named', async () => {
      const { conn } = await seedDeadLetters();
      const r = await cli(['propagations', 'retry', conn[0], `${conn[1]}x`, '--apply'], env);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`id "${conn[1]}x" is not a valid uuid`);
      expect((await row(conn[0])).failed_at).not.toBeNull();
    });
  });
});

describe('propagations purge', () => {
  /** Dead letters 40 days, 35 days and 1 day old; a pending and an applied row, both old. */
  async function seedOld() {
    return {
      old: [await ins({ failedAgo: 40 * 1440 }), await ins({ failedAgo: 35 * 1440, kind: 'quota_v2' }), await ins({ failedAgo: 31 * 1440 })],
      recent: [await ins({ failedAgo: 1440 }), await ins({ failedAgo: 29 * 1440 })],
      live: [await ins({ failedAgo: null, nextIn: -60 * 24 * 40 }), await ins({ failedAgo: null, appliedAgo: 40 * 1440 })],
    };
  }
  const count = async () => (await db.client.query('SELECT count(*)::int AS n FROM pending_propagations')).rows[0].n;

  it('dry run shows the count and the exact command to apply it', async () => {
    const { old } = await seedOld();
    const before = await tableChecksum(db.client, 'pending_propagations');
    const r = await cli(['propagations', 'purge', '--older-than', '30d'], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('opsctl propagations purge --older-than 30d --apply --expect 3');
    const j = (await cli(['propagations', 'purge', '--older-than', '30d', '-o', 'json'], env)).json();
    expect(j.items.map((i: any) => i.id).sort()).toEqual([...old].sort());
    expect(j.summary).toMatchObject({ planned: 3, olderThan: '30d' });
    expect(await tableChecksum(db.client, 'pending_propagations')).toBe(before);
  });

  it('--apply without --expect and without a terminal is refused (exit 2), nothing deleted', async () => {
    await seedOld();
    const r = await cli(['propagations', 'purge', '--older-than', '30d', '--apply'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^opsctl: purge --apply needs --expect N/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(await count()).toBe(7);
    const y = await cli(['propagations', 'purge', '--older-than', '30d', '--apply', '--yes'], env);
    expect(y.code).toBe(2);
    expect(y.stderr).toMatch(/^opsctl: purge --apply --yes needs --expect N \(the count its dry run showed\): -y skips the question/);
    expect(await count()).toBe(7);
  });

  it('a wrong --expect is refused (exit 2), nothing deleted', async () => {
    await seedOld();
    const before = await tableChecksum(db.client, 'pending_propagations');
    for (const n of ['2', '4']) {
      const r = await cli(['propagations', 'purge', '--older-than', '30d', '--apply', '--expect', n], env);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^opsctl: purge --expect ${n} does not match the plan: 3 dead letter`));
    }
    expect(await tableChecksum(db.client, 'pending_propagations')).toBe(before);
    // Nothing to purge at all, but 5 expected: still a mismatch.
    const none = await cli(['propagations', 'purge', '--older-than', '3650d', '--apply', '--expect', '5'], env);
    expect(none.code).toBe(2);
  });

  it('the right --expect deletes only the old dead letters, with audit rows; a re-run finds nothing', async () => {
    const { old, recent, live } = await seedOld();
    const f = config('audit-purge.json', { audit: { table: 'audit_log' }, actor: 'test-operator' });
    const r = await cli(['--config', f, 'propagations', 'purge', '--older-than', '30d', '--apply', '--expect', '3', '--reason', 'retention', '-o', 'json'], env);
    expect(r.code).toBe(0);
    expect(r.json().summary).toMatchObject({ planned: 3, purged: 3, errored: 0 });
    const left = (await db.client.query('SELECT id::text FROM pending_propagations')).rows.map((x) => x.id);
    expect(left.sort()).toEqual([...recent, ...live].sort());
    const audit = await db.client.query("SELECT resource_id, metadata FROM audit_log WHERE kind = 'propagation.operator_purged'");
    expect(audit.rows.map((a) => a.resource_id).sort()).toEqual([...old].sort());
    expect(audit.rows[0].metadata).toMatchObject({ older_than: '30d', reason: 'retention', last_error: 'boom', attempts: 10, team_id: TEAM });
    const again = await cli(['propagations', 'purge', '--older-than', '30d', '--apply', '--expect', '0', '-o', 'json'], env);
    expect(again.code).toBe(0);
    expect(again.json().summary.planned).toBe(0);
  });

  it('on a terminal, a typed yes confirms the count', async () => {
    await seedOld();
    const tty = <T extends object>(s: T) => Object.assign(s, { isTTY: true });
    const stdin = tty(new PassThrough());
    const stderr = tty(new PassThrough());
    const stdout = new PassThrough();
    let err = '';
    let answered = false;
    stderr.on('data', (d) => {
      err += d;
      // Once: a terminal-mode readline echoes to stderr, which would answer again.
      if (!answered && err.includes('[y/N]')) {
        answered = true;
        stdin.write('y\n');
      }
    });
    let out = '';
    stdout.on('data', (d) => (out += d));
    const code = await runCli(['propagations', 'purge', '--older-than', '30d', '--kind', 'quota_v2', '--apply', '-o', 'json'], {
      stdout,
      stderr,
      stdin,
      env: { PATH: process.env.PATH, XDG_STATE_HOME: process.env.XDG_STATE_HOME, ...env },
      cwd: process.cwd(),
    });
    expect(code).toBe(0);
    expect(err).toContain('Delete 1 dead letter(s) from pending_propagations? This cannot be undone.');
    expect(JSON.parse(out).summary).toMatchObject({ purged: 1 });
    expect(await count()).toBe(6);
  });

  it('requires --older-than', async () => {
    const r = await cli(['propagations', 'purge', '--apply', '--expect', '1'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^opsctl: purge needs --older-than/);
  });
});

describe('propagations retry --error-class', () => {
  /** A stripe-like id: letters and digits that vary per row (each used to be a class of its own). */
  const sid = (i: number) => `1Q${i}w${(i * 7) % 10}E${i % 3}r${'TyUiOp'[i % 6]}5T6y`;
  const OUTAGE = 'billing-api: invoice in_<id> (req-<id>) timed out after <duration> from <ip>';

  /** The 14:00 billing-api outage: 12 dead letters of one class; 5 of another class, same kind; 2 of another kind. */
  async function seedOutage() {
    const outage: string[] = [];
    for (let i = 0; i < 12; i += 1)
      outage.push(
        await ins({ kind: 'invoice_sync', failedAgo: 10 + i, lastError: `billing-api: invoice in_${sid(i)} (req-${sid(i + 40)}) timed out after ${(i + 1) * 0.5}s from 10.1.${i}.9` }),
      );
    const declined: string[] = [];
    for (let i = 0; i < 5; i += 1) declined.push(await ins({ kind: 'invoice_sync', failedAgo: 10 + i, lastError: `billing-api: card declined for cus_${sid(i + 80)}` }));
    const other = [await ins({ kind: 'seat_sync', failedAgo: 3, lastError: 'boom' }), await ins({ kind: 'seat_sync', failedAgo: 4, lastError: 'boom' })];
    return { outage, declined, other };
  }

  it('retries only the rows of the class dead-letters prints, leaving the other classes untouched', async () => {
    const { outage, declined, other } = await seedOutage();
    const listed = await cli(['propagations', 'dead-letters', '-o', 'json'], env);
    const classes = listed.json().summary.byErrorClass;
    // Each row's ids, numbers, duration and address vary: still one class, printed as the key.
    expect(classes[0]).toMatchObject({ errorClass: OUTAGE, count: 12 });
    expect(classes.map((c: any) => c.count).sort((a: number, b: number) => a - b)).toEqual([2, 5, 12]);
    const key = classes[0].errorClass;
    const before = await tableChecksum(db.client, 'pending_propagations');

    const plan = await cli(['propagations', 'retry', '--error-class', key, '-o', 'json'], env);
    expect(plan.code).toBe(0);
    expect(plan.json().items.map((i: any) => i.id).sort()).toEqual([...outage].sort());
    expect(plan.json().summary).toMatchObject({ planned: 12 });
    const table = await cli(['propagations', 'retry', '--error-class', key], env);
    expect(table.stdout).toContain(`error class "${OUTAGE}"`);
    expect(await tableChecksum(db.client, 'pending_propagations')).toBe(before);

    // --max counts only the class's rows: 12 fit under 12.
    const r = await cli(['--config', config('audit.json', { audit: { table: 'audit_log' }, actor: 'test-operator' }), 'propagations', 'retry', '--error-class', `  ${key.replace(/ /g, '\n ')} `, '--max', '12', '--apply', '--reason', 'billing-api back', '-o', 'json'], env);
    expect(r.code).toBe(0);
    expect(r.json().summary).toMatchObject({ planned: 12, retried: 12 });
    for (const id of outage) expect((await row(id)).failed_at).toBeNull();
    for (const id of [...declined, ...other]) expect(await row(id)).toMatchObject({ attempts: 10, failed_at: expect.any(Date) });
    const audit = await db.client.query("SELECT resource_id FROM audit_log WHERE kind = 'propagation.operator_retry'");
    expect(audit.rows.map((a) => a.resource_id).sort()).toEqual([...outage].sort());
  });

  it('a class that matches no dead letter in scope is exit 2 with a sentence, nothing changed', async () => {
    const { outage } = await seedOutage();
    const before = await tableChecksum(db.client, 'pending_propagations');
    const typo = await cli(['propagations', 'retry', '--error-class', 'billing-api: invoice in_<id> timed out', '--apply'], env);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toBe(
      'opsctl: --error-class "billing-api: invoice in_<id> timed out" matches no dead letter in scope; the classes are listed by `opsctl propagations dead-letters` ("By error class"). Nothing was changed.\n',
    );
    // A message pasted instead of its class: the sentence says which class it has.
    const pasted = await cli(['propagations', 'retry', '--error-class', 'billing-api: card declined for cus_9Zz9Zz9Zz9', '--apply'], env);
    expect(pasted.code).toBe(2);
    expect(pasted.stderr).toContain('the class of that text is "billing-api: card declined for cus_<id>"');
    // Out of scope (another kind) is no match either.
    const scoped = await cli(['propagations', 'retry', '--error-class', OUTAGE, '--kind', 'seat_sync'], env);
    expect(scoped.code).toBe(2);
    expect(await tableChecksum(db.client, 'pending_propagations')).toBe(before);
    expect((await row(outage[0])).failed_at).not.toBeNull();
  });

  it("CAS: a row of the class re-driven and dead again with another error since the plan is left alone", async () => {
    const { outage, declined } = await seedOutage();
    const conn = await Database.connect({ settings: { ...defaultConfig().database, url: db.url }, env: {} });
    try {
      const cfg = defaultConfig();
      const remedy = retryRemedy(cfg.propagations, { filter: { errorClass: OUTAGE }, includeUnknownKinds: false, actor: 't', audit: cfg.audit });
      const report = await remediate(conn, remedy, {
        apply: true,
        max: 1000,
        batchSize: 500,
        wait: false,
        confirm: async (plan) => {
          expect(plan.map((p) => p.id).sort()).toEqual([...outage].sort());
          // After the plan: the runner retried one and it died again, of another error.
          await db.client.query("UPDATE pending_propagations SET last_error = 'billing-api: card declined for cus_1a2b3c4d5e', failed_at = now() WHERE id = $1", [outage[0]]);
          return true;
        },
      });
      const byId = Object.fromEntries(report.items.map((i) => [i.id, i]));
      expect(byId[outage[0]]).toMatchObject({ outcome: 'not-dead-anymore', detail: 'error class changed since the plan (now "billing-api: card declined for cus_<id>"); left alone' });
      expect(report.summary).toMatchObject({ planned: 12, retried: 11 });
      expect((await row(outage[0])).failed_at).not.toBeNull();
      for (const id of declined) expect((await row(id)).failed_at).not.toBeNull();
    } finally {
      await conn.close();
    }
  });
});
