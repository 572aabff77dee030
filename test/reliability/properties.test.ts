import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseDuration, formatDuration } from '../../src/config/durations.js';
import { OpsctlError } from '../../src/errors.js';
import { adoptChanges, applyChanges, classify, expectedOwnerTags, reconcileChanges, type OwnershipConfig, type Tags } from '../../src/checks/tag-diff.js';
import { quoteIdent, qualifiedName } from '../../src/database/identifiers.js';
import { Database } from '../../src/database/database.js';
import { defaultConfig } from '../../src/config/config.js';
import { findStuck } from '../../src/checks/stuck-executions.js';
import { freshDatabase } from '../support/db.js';

/**
 * Properties the rest of the suite relies on, over generated inputs (test/durations.test.ts and
 * test/checks/tag-diff.test.ts hold the fixed-config properties; these add what they lack).
 */

const usage = (f: () => unknown): OpsctlError => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(OpsctlError);
    expect((e as OpsctlError).exitCode).toBe(2);
    expect((e as OpsctlError).message).not.toContain('\n');
    return e as OpsctlError;
  }
  throw new Error('expected a usage error');
};

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
const unit = fc.constantFrom(...(Object.keys(UNIT_MS) as Array<keyof typeof UNIT_MS>));

describe('duration parser (properties)', () => {
  it('formatDuration is exact: parseDuration(formatDuration(ms)) === ms for every whole number of milliseconds up to ten years', () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: 1, max: 120_000 }), fc.integer({ min: 1, max: 3650 * UNIT_MS.d })), (ms) => {
        expect(parseDuration(formatDuration(ms), 'x')).toBe(ms);
      }),
      { numRuns: 2000 },
    );
  });

  it('a compound duration is the sum of its parts, in any order and with decimals; surrounding blanks do not matter', () => {
    const part = fc.record({ n: fc.integer({ min: 0, max: 500 }), frac: fc.option(fc.integer({ min: 1, max: 9 }), { nil: undefined }), unit });
    fc.assert(
      fc.property(fc.array(part, { minLength: 1, maxLength: 5 }), fc.constantFrom('', ' ', '\t'), (parts, pad) => {
        // Decimals on units of a second and up, so the sum is whole milliseconds (no rounding edge).
        const frac = (p: (typeof parts)[number]) => (p.unit === 'ms' ? undefined : p.frac);
        const text = parts.map((p) => `${p.n}${frac(p) === undefined ? '' : `.${frac(p)}`}${p.unit}`).join('');
        const exact = parts.reduce((sum, p) => sum + (p.n + (frac(p) ?? 0) / 10) * UNIT_MS[p.unit], 0);
        const ms = Math.round(exact);
        if (ms <= 0) {
          expect(usage(() => parseDuration(pad + text + pad, '--x')).message).toMatch(/^--x must be greater than zero/);
        } else if (ms > 3650 * UNIT_MS.d) {
          expect(usage(() => parseDuration(text, '--x')).message).toMatch(/longer than ten years/);
        } else {
          expect(parseDuration(pad + text + pad, '--x')).toBe(ms);
        }
      }),
    );
  });

  it('refuses every negative, unit-less or zero value with one sentence naming its source', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000 }), unit, fc.constantFrom('--older-than', 'executions.threshold', '--since'), (n, u, what) => {
        expect(usage(() => parseDuration(`-${n}${u}`, what)).message).toMatch(new RegExp(`^${what.replace(/\./g, '\\.')} must be positive`));
        expect(usage(() => parseDuration(String(n), what)).message).toContain('has no unit');
        expect(usage(() => parseDuration(`0${u}`, what)).message).toContain('must be greater than zero');
      }),
    );
  });
});

// Tag keys and values the way AWS allows them (no aws: prefix), biased toward collisions.
const tagKey = fc.oneof(fc.constantFrom('team', 'env', 'cost', 'own::a', 'own::b', 'own::id', 'x'), fc.stringMatching(/^[a-z:]{1,8}$/));
const tagValue = fc.oneof(fc.constantFrom('a', 'b', 'prod'), fc.stringMatching(/^[a-z0-9{}]{1,6}$/));
const tags = fc.dictionary(tagKey, tagValue, { maxKeys: 8 });
const ownership: fc.Arbitrary<OwnershipConfig> = fc.record({
  ownerTags: fc.dictionary(fc.oneof(fc.constantFrom('own::a', 'own::b', 'own::id'), tagKey), fc.oneof(tagValue, fc.constant('{name}')), { minKeys: 1, maxKeys: 3 }),
  ownerKeyPrefix: fc.constantFrom(null, 'own::'),
  desiredTags: fc.dictionary(tagKey, tagValue, { maxKeys: 3 }),
  ignore: fc.constant([]),
});
const opts = { nowMs: Date.parse('2026-11-25T12:00:00Z'), deletingThresholdMs: 3_600_000 };

describe('tag diffing over arbitrary ownership configs (properties)', () => {
  it('reconcile: diffed against the tags actually there, every change is effective, the result is owned, a re-diff is empty', () => {
    fc.assert(
      fc.property(ownership, tags, fc.stringMatching(/^[a-z]{1,8}$/), (cfg, current, name) => {
        fc.pre(name !== 'default');
        const changes = reconcileChanges(cfg, name, current);
        expect(new Set(changes.map((c) => c.key)).size).toBe(changes.length);
        for (const c of changes) {
          expect(c.from).toBe(current[c.key] ?? null);
          expect(c.to).not.toBe(c.from);
        }
        const after = applyChanges(current, changes);
        expect(reconcileChanges(cfg, name, after)).toEqual([]);
        const wanted = { ...cfg.desiredTags, ...expectedOwnerTags(cfg, name) };
        for (const [k, v] of Object.entries(wanted)) expect(after[k]).toBe(v);
        expect(classify(cfg, { name, state: 'ACTIVE' }, after, opts).class).toBe('owned');
      }),
      { numRuns: 500 },
    );
  });

  it("neither adopt nor reconcile ever removes or alters a user's tag (a key that is not an owner key and not a desired tag)", () => {
    fc.assert(
      fc.property(ownership, tags, (cfg, current) => {
        const isUsers = (k: string) => !(k in cfg.ownerTags) && !(k in cfg.desiredTags) && !(cfg.ownerKeyPrefix !== null && k.startsWith(cfg.ownerKeyPrefix));
        for (const changes of [adoptChanges(cfg, 'g', current), reconcileChanges(cfg, 'g', current)]) {
          const after: Tags = applyChanges(current, changes);
          for (const [k, v] of Object.entries(current)) if (isUsers(k)) expect(after[k]).toBe(v);
          for (const c of changes) if (c.to === null) expect(cfg.ownerKeyPrefix !== null && c.key.startsWith(cfg.ownerKeyPrefix)).toBe(true);
        }
        expect(adoptChanges(cfg, 'g', current).every((c) => c.to !== null)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('a group carrying another owner’s value for an owner tag is foreign, and only adopt --force changes that tag', () => {
    fc.assert(
      fc.property(ownership, tags, (cfg, current) => {
        const owner = expectedOwnerTags(cfg, 'g');
        const [k, v] = Object.entries(owner)[0];
        const theirs = { ...current, [k]: `${v}-other` };
        expect(classify(cfg, { name: 'g', state: 'ACTIVE' }, theirs, opts).class).toBe('foreign');
      }),
    );
  });
});

describe('identifier quoting (property, real PostgreSQL)', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let conn: Database;
  beforeAll(async () => {
    db = await freshDatabase('rel_ident', '');
    conn = await Database.connect({ settings: { ...defaultConfig().database, url: db.url }, env: {} });
  });
  afterAll(async () => {
    await conn.close();
    await db.drop();
  });

  // Any code point but NUL, at most 63 bytes (PostgreSQL's limit; longer names are truncated).
  const name = fc
    .string({ unit: 'binary', minLength: 1, maxLength: 24 })
    .filter((s) => !s.includes('\u0000') && Buffer.byteLength(s, 'utf8') <= 63);
  const tricky = fc.oneof(
    name,
    fc.constantFrom('"', '""', '"; DROP TABLE x; --', "it's", 'a b', ' lead', 'trail ', 'MiXeD', 'select', 'user', 'ü-ñ-日本', '\\', '$1', '%s', '😀', 'a"."b'),
  );

  it('the server encodes names in UTF-8 (so every code point can be a name)', async () => {
    expect((await conn.query<{ e: string }>("SELECT current_setting('server_encoding') AS e"))[0].e).toBe('UTF8');
  });

  it('a table and columns created with quoteIdent read back from pg_class and pg_attribute as exactly that name; opsctl finds rows through them', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(tricky, fc.uniqueArray(tricky, { minLength: 4, maxLength: 4 }), async (table, cols) => {
        const schema = `s${n++}`;
        const [key, status, updatedAt, error] = cols;
        await db.client.query(`CREATE SCHEMA ${quoteIdent(schema)}`);
        try {
          const t = qualifiedName(table, schema);
          await db.client.query(
            `CREATE TABLE ${t} (${quoteIdent(key)} int PRIMARY KEY, ${quoteIdent(status)} text, ${quoteIdent(updatedAt)} timestamptz, ${quoteIdent(error)} text)`,
          );
          const rel = await db.client.query('SELECT c.relname, n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::regclass', [t]);
          expect(rel.rows).toEqual([{ relname: table, nspname: schema }]);
          const atts = await db.client.query('SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 ORDER BY attnum', [t]);
          expect(atts.rows.map((r) => r.attname)).toEqual(cols);
          // opsctl's own checks and queries reach the same objects through the same quoting.
          await db.client.query(`INSERT INTO ${t} VALUES (1, 'running', now() - interval '1 hour', NULL), (2, 'done', now() - interval '1 hour', NULL)`);
          const cfg = { ...defaultConfig().executions, schema, table, key, status, updatedAt, error, transitionedAt: null };
          await conn.assertColumns('executions', table, schema, { key, status, updatedAt, error });
          const stuck = await conn.readOnly((ro) => findStuck(ro, cfg, { thresholdMs: 600_000, statuses: ['running'], limit: 0 }));
          expect(stuck.map((s) => [s.id, s.status])).toEqual([['1', 'running']]);
        } finally {
          await db.client.query(`DROP SCHEMA ${quoteIdent(schema)} CASCADE`);
        }
      }),
      { numRuns: 50 },
    );
  });
});
