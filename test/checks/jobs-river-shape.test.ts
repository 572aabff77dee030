import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/db.js';
import { cli } from '../support/cli.js';
import { jobsConfig } from '../support/jobs.js';
import { AUDIT_LOG_SQL } from '../../src/reference/schema.js';
import { RIVER_JOB_STATES, RIVER_SCHEMA_SQL } from '../../src/reference/queues/river.js';
import { riverPreset } from '../../src/checks/jobs-river.js';

// Our own DDL of River's table shape, checked against the facts the River preset relies on.
let db: Awaited<ReturnType<typeof freshDatabase>>;
beforeAll(async () => {
  db = await freshDatabase('rivershape', AUDIT_LOG_SQL + RIVER_SCHEMA_SQL);
});
afterAll(async () => {
  await db.drop();
});

/** River's river_job columns and types (River v0.26), as its documentation and driver give them. */
const RIVER_COLUMNS: Record<string, string> = {
  id: 'bigint',
  state: 'river_job_state',
  attempt: 'smallint',
  max_attempts: 'smallint',
  attempted_at: 'timestamp with time zone',
  created_at: 'timestamp with time zone',
  finalized_at: 'timestamp with time zone',
  scheduled_at: 'timestamp with time zone',
  priority: 'smallint',
  args: 'jsonb',
  attempted_by: 'text[]',
  errors: 'jsonb[]',
  kind: 'text',
  metadata: 'jsonb',
  queue: 'text',
  tags: 'character varying(255)[]',
  unique_key: 'bytea',
  unique_states: 'bit(8)',
};

const insert = (state: string, finalized: boolean, extra = '') =>
  db.client.query(`INSERT INTO river_job (state, kind, args, max_attempts, finalized_at${extra ? ', unique_key, unique_states' : ''})
                   VALUES ('${state}', 'k', '{}', 3, ${finalized ? 'now()' : 'NULL'}${extra}) RETURNING id::text`);

describe("River's table shape (src/reference/queues/river.ts)", () => {
  it('has every column the preset reads or writes, with River’s types and nullability', async () => {
    const r = await db.client.query(
      `SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull FROM pg_attribute a
        WHERE a.attrelid = 'river_job'::regclass AND a.attnum > 0 AND NOT a.attisdropped`,
    );
    const have = Object.fromEntries(r.rows.map((x) => [x.attname, x.type]));
    expect(have).toEqual(RIVER_COLUMNS);
    for (const c of riverPreset.requiredColumns.river_job) expect(have[c], c).toBeDefined();
    const notNull = r.rows.filter((x) => x.attnotnull).map((x) => x.attname).sort();
    expect(notNull).toEqual(['args', 'attempt', 'created_at', 'id', 'kind', 'max_attempts', 'metadata', 'priority', 'queue', 'scheduled_at', 'state', 'tags'].sort());
  });

  it('the state enum in River’s order, with pending', async () => {
    const r = await db.client.query(`SELECT unnest(enum_range(NULL::river_job_state))::text AS s`);
    expect(r.rows.map((x) => x.s)).toEqual(['available', 'cancelled', 'completed', 'discarded', 'pending', 'retryable', 'running', 'scheduled']);
    expect(RIVER_JOB_STATES).toContain('pending');
  });

  it('finalized_at is set exactly for cancelled, completed and discarded', async () => {
    for (const s of RIVER_JOB_STATES) {
      const finalized = ['cancelled', 'completed', 'discarded'].includes(s);
      await expect(insert(s, finalized)).resolves.toBeDefined();
      await expect(insert(s, !finalized), s).rejects.toMatchObject({ code: '23514' });
    }
  });

  it('unique_states: one bit per state (available get_bit 7 … scheduled get_bit 0), enforced only in covered states', async () => {
    for (const [i, s] of RIVER_JOB_STATES.entries()) {
      const mask = '0'.repeat(7 - i) + '1' + '0'.repeat(i); // get_bit 7 is the last character
      const r = await db.client.query(`SELECT river_job_state_in_bitmask($1::bit(8), $2::river_job_state) AS on, river_job_state_in_bitmask(~$1::bit(8), $2::river_job_state) AS off`, [mask, s]);
      expect(r.rows[0], s).toEqual({ on: true, off: false });
    }
    // River's default unique states: everything but cancelled and discarded.
    const defaults = "'\\x01'::bytea, B'11110101'";
    await insert('available', false, `, ${defaults}`);
    await expect(insert('scheduled', false, `, ${defaults}`)).rejects.toMatchObject({ code: '23505' });
    const discarded = (await insert('discarded', true, `, ${defaults}`)).rows[0].id;
    // Retrying it would make two jobs with one key in covered states: River's JobRetry fails there too.
    const r = await cli(['--config', jobsConfig('river'), 'jobs', 'retry', discarded, '--apply', '-o', 'json'], { DATABASE_URL: db.url });
    expect(r.code).toBe(1);
    expect(r.json().items[0]).toMatchObject({ id: discarded, outcome: 'errored' });
    expect(r.json().items[0].detail).toMatch(/23505|unique/);
  });

  it('the indexes River fetches and cleans by', async () => {
    const r = await db.client.query(`SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'river_job'`);
    const defs = Object.fromEntries(r.rows.map((x) => [x.indexname, x.indexdef]));
    expect(defs.river_job_prioritized_fetching_index).toMatch(/\(state, queue, priority, scheduled_at, id\)/);
    expect(defs.river_job_state_and_finalized_at_index).toMatch(/\(state, finalized_at\) WHERE \(finalized_at IS NOT NULL\)/);
    expect(defs.river_job_unique_idx).toMatch(/UNIQUE INDEX .* \(unique_key\) WHERE .*river_job_state_in_bitmask\(unique_states, state\)/);
    expect(defs.river_job_metadata_index).toMatch(/USING gin \(metadata\)/);
  });
});
