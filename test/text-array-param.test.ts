import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import pgUtils from 'pg/lib/utils.js';
import { freshDatabase } from './support/db.js';
import { textArrayParam } from '../src/database/database.js';

let db: Awaited<ReturnType<typeof freshDatabase>>;
beforeAll(async () => {
  db = await freshDatabase('text_array_param');
});
afterAll(async () => {
  await db.drop();
});

describe('textArrayParam (reap batches pass their keys through it)', () => {
  it('is the very literal pg sends for a string[] (or the array itself, for pg to quote, when an element has a quote or a backslash)', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary' }), { maxLength: 20 }), (values) => {
        const ours = textArrayParam(values);
        if (values.some((v) => v.includes('"') || v.includes('\\'))) expect(ours).toBe(values);
        else expect(ours).toBe((pgUtils as { prepareValue(v: unknown): unknown }).prepareValue(values));
      }),
      { numRuns: 500 },
    );
  });

  it('round-trips through the server unchanged: keys with commas, braces, spaces, NULL-like text, unicode', async () => {
    const samples = [[], ['a'], ['4f1c3e0a-0000-4000-8000-000000000001'], ['a,b', '{c}', ' d ', 'NULL', 'null', 'é ü 字', ''], ['x"y', 'z\\w']];
    for (const values of samples) {
      const { rows } = await db.client.query('SELECT $1::text[] AS v', [textArrayParam(values)]);
      expect(rows[0].v).toEqual(values);
    }
  });
});
