// The COPY listing (server-written NDJSON) must print exactly what the cursor path printed:
// the same bytes in json and ndjson, the same table, for awkward keys and statuses.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/db.js';
import { Database } from '../../src/database/database.js';
import { defaultConfig, type ExecutionsConfig } from '../../src/config/config.js';
import { copyStuck, streamStuck, type StuckExecution, type StuckQuery } from '../../src/checks/stuck-executions.js';
import { render, type CommandResult, type OutputFormat } from '../../src/output/output.js';
import { Collect } from '../support/collect.js';

let db: Awaited<ReturnType<typeof freshDatabase>>;
let conn: Database;

// Keys and statuses chosen to break naive row text: quotes, backslashes, newlines, tabs, control
// characters, CSV/COPY specials, multi-byte UTF-8 (2, 3 and 4 bytes), JSON-looking text.
const AWKWARD = [
  'plain',
  'quote " double',
  "quote ' single",
  'back\\slash \\n not a newline',
  'new\nline',
  'carriage\r\nreturn',
  'tab\there',
  'bell\u0007 and \u001f unit separator',
  'csv,comma;semi|pipe',
  '\\.',
  '\\N',
  'NULL',
  '',
  'ünïcödé — “curly” ‘quotes’',
  '日本語のキー',
  'emoji 🧨🚀 astral',
  'line\u2028separator\u2029paragraph',
  'del\u007fchar',
  '{"looks":"like json"}',
  ' leading and trailing spaces ',
];

const cfgFor = (table: string, statuses: string[]): ExecutionsConfig => ({
  ...defaultConfig().executions,
  table,
  key: 'k',
  status: 'st',
  updatedAt: 'upd',
  error: 'err',
  transitionedAt: null,
  stuckStatuses: statuses,
});

beforeAll(async () => {
  db = await freshDatabase('copy', '');
  const c = db.client;
  // A text key (the awkward values), a bigint key (beyond 2^53), a quoted table name.
  await c.query(`CREATE TABLE "odd ""table""" (k text PRIMARY KEY, st text, upd timestamptz, err text)`);
  await c.query(`CREATE TABLE big_keys (k bigint PRIMARY KEY, st text NOT NULL, upd timestamp NOT NULL, err text)`);
  let i = 0;
  for (const key of AWKWARD) {
    i += 1;
    // Statuses are awkward too; the NULL rows (status or updated_at) must be left out by both paths.
    await c.query(`INSERT INTO "odd ""table""" VALUES ($1, $2, now() - make_interval(mins => $3), NULL)`, [key, i % 2 ? 'running "hot"\n\\' : 'approved ✓', 20 + i]);
  }
  await c.query(`INSERT INTO "odd ""table""" VALUES ('null status', NULL, now() - interval '2 hours', NULL), ('null updated', 'approved ✓', NULL, NULL),
                 ('fresh', 'approved ✓', now(), NULL), ('done', 'completed', now() - interval '3 hours', NULL)`);
  // Enough rows that the server's chunks split lines and multi-byte characters: 3-byte and
  // 4-byte characters in every key, so some chunk boundary falls inside one.
  await c.query(`INSERT INTO "odd ""table""" SELECT 'bulk ' || g || ' ' || repeat('日🚀', 1 + g % 20), 'approved ✓', now() - interval '1 day' - g * interval '1 ms', NULL FROM generate_series(1, 3000) g`);
  await c.query(`INSERT INTO big_keys VALUES (9223372036854775807, 'running', now() - interval '1 hour', NULL), (9007199254740993, 'running', now() - interval '2 hours', NULL),
                 (-9223372036854775808, 'approved', now() - interval '3 hours', NULL), (1, 'approved', now() - interval '4 days', NULL), (2, 'approved', now(), NULL)`);
  conn = await Database.connect({ settings: { ...defaultConfig().database, url: db.url }, env: {} });
});
afterAll(async () => {
  await conn?.close();
  await db.drop();
});

/** The listing result as runStuck builds it, from either path. */
function result(source: 'cursor' | 'copy', ro: Database, cfg: ExecutionsConfig, q: StuckQuery): CommandResult<StuckExecution> {
  const base = { command: 'executions stuck', mode: 'read' as const, columns: [
    { header: 'id', value: (r: StuckExecution) => r.id },
    { header: 'status', value: (r: StuckExecution) => r.status },
    { header: 'age', value: (r: StuckExecution) => r.ageSeconds },
    { header: 'updated_at', value: (r: StuckExecution) => r.updatedAt },
  ] };
  if (source === 'cursor') {
    let count = 0;
    let oldest = 0;
    const items = (async function* () {
      for await (const r of streamStuck(ro, cfg, q)) {
        count += 1;
        oldest = Math.max(oldest, r.ageSeconds);
        yield r;
      }
    })();
    return { ...base, items, summary: () => ({ stuck: count, oldestAgeSeconds: oldest }) };
  }
  const listing = copyStuck(ro, cfg, q);
  return { ...base, items: listing.rows(), ndjson: listing.ndjson, summary: () => ({ stuck: listing.count, oldestAgeSeconds: listing.oldestAgeSeconds }) };
}

async function both(cfg: ExecutionsConfig, q: StuckQuery, format: OutputFormat): Promise<{ cursor: Buffer; copy: Buffer }> {
  // One READ ONLY transaction for both: now() is the same, so ages are identical.
  return conn.readOnly(async (ro) => {
    const out: Record<string, Buffer> = {};
    for (const source of ['cursor', 'copy'] as const) {
      const sink = new Collect();
      await render(result(source, ro, cfg, q), format, { stream: sink, env: { NO_COLOR: '1' } });
      out[source] = sink.bytes;
    }
    return out as { cursor: Buffer; copy: Buffer };
  });
}

describe('executions stuck through COPY', () => {
  const odd = cfgFor('odd "table"', ['running "hot"\n\\', 'approved ✓']);
  const q = (limit: number): StuckQuery => ({ thresholdMs: 10 * 60_000, statuses: odd.stuckStatuses, limit });

  for (const format of ['ndjson', 'json', 'table'] as const) {
    it(`writes the same ${format} bytes as the cursor path (awkward text keys, 3,000+ rows)`, async () => {
      const { cursor, copy } = await both(odd, q(0), format);
      expect(copy.equals(cursor)).toBe(true);
      if (format !== 'table') {
        const text = copy.toString('utf8');
        const items = format === 'json' ? JSON.parse(text).items : text.trimEnd().split('\n').slice(0, -1).map((l) => JSON.parse(l));
        expect(items).toHaveLength(AWKWARD.length + 3000);
        expect(new Set(items.map((i: StuckExecution) => i.id))).toEqual(new Set([...AWKWARD, ...items.filter((i: StuckExecution) => i.id.startsWith('bulk ')).map((i: StuckExecution) => i.id)]));
        expect(items.some((i: StuckExecution) => i.id === 'null status' || i.id === 'null updated' || i.id === 'fresh')).toBe(false);
      }
    });
  }

  it('honours --limit and reports the same summary (count, oldest age) at the limit', async () => {
    const { cursor, copy } = await both(odd, q(7), 'ndjson');
    expect(copy.equals(cursor)).toBe(true);
    const lines = copy.toString('utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(8);
    expect(JSON.parse(lines[7] as string).summary.stuck).toBe(7);
  });

  it('keeps big integer keys exact (text), on a timestamp-without-time-zone column', async () => {
    const big = cfgFor('big_keys', ['running', 'approved']);
    for (const format of ['ndjson', 'json'] as const) {
      const { cursor, copy } = await both(big, { thresholdMs: 60_000, statuses: big.stuckStatuses, limit: 0 }, format);
      expect(copy.equals(cursor)).toBe(true);
    }
    const { copy } = await both(big, { thresholdMs: 60_000, statuses: big.stuckStatuses, limit: 0 }, 'ndjson');
    const ids = copy.toString('utf8').trimEnd().split('\n').slice(0, -1).map((l) => JSON.parse(l).id);
    expect(ids).toEqual(['1', '-9223372036854775808', '9007199254740993', '9223372036854775807']);
  });

  it('prints an empty listing identically (no rows: no stray separators)', async () => {
    for (const format of ['ndjson', 'json', 'table'] as const) {
      const { cursor, copy } = await both(odd, { thresholdMs: 1000 * 86_400_000, statuses: odd.stuckStatuses, limit: 0 }, format);
      expect(copy.toString('utf8')).toBe(cursor.toString('utf8'));
    }
  });

  it('binds the threshold and statuses without writing them into the SQL, inside the READ ONLY transaction', async () => {
    const { stuckCopySql } = await import('../../src/checks/stuck-executions.js');
    const sql = stuckCopySql(odd, 0);
    expect(sql).not.toContain('hot');
    expect(sql).toContain("current_setting('opsctl.stuck_statuses')");
    const readOnly = await conn.readOnly(async (ro) => {
      const listing = copyStuck(ro, odd, q(1));
      for await (const _ of listing.ndjson());
      return (await ro.query<{ v: string }>(`SELECT current_setting('transaction_read_only') AS v`))[0]?.v;
    });
    expect(readOnly).toBe('on');
    // Local to that transaction: gone afterwards.
    const after = await conn.query<{ v: string | null }>(`SELECT current_setting('opsctl.stuck_statuses', true) AS v`);
    expect(after[0]?.v ?? '').toBe('');
  });
});
