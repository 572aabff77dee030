import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { itemLines, OutcomeTails } from '../src/engine/item-lines.js';

// Any text JSON can carry: quotes, backslashes, control characters, lone surrogates, non-Latin-1.
const text = fc.string({ unit: 'binary', maxLength: 30 });
const value = fc.oneof(text, fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null));
// Keys that are array indices JSON.stringify writes first, whatever their order: none of a
// plan's columns or of what a parse adds is one (the contract of Remedy.streamedPlan.added).
const key = (k: string) => !/^(0|[1-9]\d*)$/.test(k);
// A planned item as its line carries it (id first, as every plan line has), and what parse added.
const planned = fc.record({ id: text, rest: fc.dictionary(text.filter((k) => k !== 'id' && key(k)), value, { maxKeys: 4 }) });
const addedFields = fc.dictionary(fc.oneof(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 8 }), fc.constantFrom('reason', '7', '12')).filter(key), value, { maxKeys: 3 });

describe('itemLines (a streamed report written from the plan lines)', () => {
  it('writes exactly what JSON.stringify({ ...item, outcome, outcomeClass, detail }) writes, a line per item', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ item: planned, added: addedFields, outcome: text, outcomeClass: fc.constantFrom('applied', 'lost', 'skipped', 'errored', 'planned'), detail: fc.option(text, { nil: undefined }) }), {
          maxLength: 12,
        }),
        fc.nat(3),
        (rows, lead) => {
          const tails = new OutcomeTails();
          // Only fields parse adds that the line does not already have (the contract of `added`).
          const norm = rows.map((r) => {
            const p: Record<string, unknown> = { id: r.item.id, ...r.item.rest };
            const add = Object.fromEntries(Object.entries(r.added).filter(([k]) => !(k in p)));
            return { ...r, p, add };
          });
          const lines = [...Array.from({ length: lead }, () => '{"x":1}'), ...norm.map((r) => JSON.stringify(r.p))];
          const out = itemLines(
            lines,
            lead,
            norm.map((r) => Buffer.from(Object.entries(r.add).map(([k, v]) => `,${JSON.stringify(k)}:${JSON.stringify(v)}`).join(''))),
            norm.map((r) => tails.get(r.outcome, r.outcomeClass)),
            norm.map((r) => r.detail),
          );
          const expected = norm
            .map((r) => {
              const item: Record<string, unknown> = { ...r.p, ...r.add, outcome: r.outcome, outcomeClass: r.outcomeClass };
              if (r.detail) item.detail = r.detail;
              return `${JSON.stringify(item)}\n`;
            })
            .join('');
          expect(out.toString('utf8')).toBe(expected);
          expect(out.equals(Buffer.from(expected))).toBe(true);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('refuses a line that is not a JSON object with fields', () => {
    const tails = new OutcomeTails();
    for (const line of ['[1]', '{}', '"x"']) {
      expect(() => itemLines([line], 0, [Buffer.from(',"a":1')], [tails.get('reaped', 'applied')], [undefined])).toThrow(/not a JSON object/);
    }
  });

  it('keeps one tail Buffer per outcome and class', () => {
    const tails = new OutcomeTails();
    expect(tails.get('reaped', 'applied')).toBe(tails.get('reaped', 'applied'));
    expect(tails.get('reaped', 'applied')).not.toBe(tails.get('reaped', 'lost'));
    expect(tails.get('created', 'applied').toString()).toBe(',"outcome":"created","outcomeClass":"applied"');
  });
});
