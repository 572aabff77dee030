import type pg from 'pg';
import { expect } from 'vitest';

/**
 * Fidelity tests: the same rows in two schemas, the queue's own remedy on one ("own"),
 * opsctl's on the other ("ops"), then every column of every row compared.
 */

/** Copies every row of schema `from`.table into `to`.table (generated columns left out; a schema's own enums cast by name). */
export async function copyRows(client: pg.Client, from: string, to: string, table: string, onConflict = ''): Promise<void> {
  const cols = await client.query<{ attname: string; same: boolean; target: string }>(
    `SELECT s.attname, s.atttypid = t.atttypid AS same, format_type(t.atttypid, t.atttypmod) AS target
       FROM pg_attribute s JOIN pg_attribute t ON t.attrelid = to_regclass($2) AND t.attname = s.attname
      WHERE s.attrelid = to_regclass($1) AND s.attnum > 0 AND NOT s.attisdropped AND s.attgenerated = '' ORDER BY s.attnum`,
    [`"${from}"."${table}"`, `"${to}"."${table}"`],
  );
  const list = cols.rows.map((c) => `"${c.attname}"`).join(', ');
  const values = cols.rows.map((c) => (c.same ? `"${c.attname}"` : `"${c.attname}"::text::${c.target}`)).join(', ');
  await client.query(`INSERT INTO "${to}"."${table}" (${list}) OVERRIDING SYSTEM VALUE SELECT ${values} FROM "${from}"."${table}" ${onConflict}`);
}

export type Row = Record<string, unknown>;

export async function rowsOf(client: pg.Client, sql: string): Promise<Map<string, Row>> {
  const r = await client.query(sql);
  return new Map(r.rows.map((x) => [String(x.id), x]));
}

export interface CompareOptions {
  /** Free-text columns (error messages written by the remedy): compared for presence only. */
  freeText?: string[];
  /** Timestamps the remedy sets to "now" on each side: equal within this many ms. */
  nowToleranceMs: number;
  /** Values a queue sets with random jitter: checked per side by the callback instead. */
  jittered?: Record<string, (own: unknown, ops: unknown, row: Row) => void>;
  /** Deep paths inside json/array columns whose values are free text, e.g. errors[].error. */
  normalise?: (column: string, value: unknown) => unknown;
}

const isDate = (v: unknown): v is Date => v instanceof Date;

/** Every row and every column equal, but for the declared free text, "now" tolerance and jitter. */
export function expectSameRows(own: Map<string, Row>, ops: Map<string, Row>, o: CompareOptions): void {
  expect([...ops.keys()].sort(), 'the same rows on both sides').toEqual([...own.keys()].sort());
  for (const [id, a] of own) {
    const b = ops.get(id)!;
    expect(Object.keys(b).sort(), `row ${id}: the same columns`).toEqual(Object.keys(a).sort());
    for (const col of Object.keys(a)) {
      const where = `row ${id}, column ${col}`;
      let x = a[col];
      let y = b[col];
      if (o.jittered?.[col]) {
        o.jittered[col](x, y, a);
        continue;
      }
      if (o.freeText?.includes(col)) {
        expect(y === null, `${where}: null on both sides or on neither`).toBe(x === null);
        continue;
      }
      if (o.normalise) {
        x = o.normalise(col, x);
        y = o.normalise(col, y);
      }
      if (isDate(x) && isDate(y)) {
        expect(Math.abs(x.getTime() - y.getTime()), `${where}: ${x.toISOString()} vs ${y.toISOString()}`).toBeLessThanOrEqual(o.nowToleranceMs);
        continue;
      }
      expect(y, where).toEqual(x);
    }
  }
}

/** Replaces each Date (at any depth) and each ISO timestamp string by a marker, for json columns. */
export function withoutTimes(v: unknown): unknown {
  if (v instanceof Date) return '<time>';
  if (typeof v === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/.test(v)) return '<time>';
  if (Array.isArray(v)) return v.map(withoutTimes);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, withoutTimes(x)]));
  return v;
}
