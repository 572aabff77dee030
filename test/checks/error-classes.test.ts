import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BoundedTally, ERROR_CLASS_MAX_LENGTH, errorClass, NO_ERROR_CLASS, OTHER_CLASS } from '../../src/checks/error-classes.js';

describe('errorClass', () => {
  it.each([
    ['timeout after 3012ms for team 6f1c2d3e-1111-4aaa-8bbb-0123456789ab', 'timeout after <n>ms for team <uuid>'],
    ['POST https://api.example.com/v1/teams/42?x=1 returned 503', 'POST <url> returned <n>'],
    ['duplicate key value violates unique constraint "teams_pkey"', 'duplicate key value violates unique constraint <str>'],
    ["can't reach 'host-a' (errno 111)", "can't reach <str> (errno <n>)"],
    ['notify ops@example.com: trace 9f86d081884c7d65 at 0xdeadBEEF', 'notify <email>: trace <hex> at <hex>'],
    ['at 2026-11-25T17:05:06.123Z   retry\n\tlater', 'at <time> retry later'],
    ['unknown kind `tier_elevation_v2`', 'unknown kind <str>'],
  ])('%j → %j', (input, expected) => {
    expect(errorClass(input)).toBe(expected);
  });

  it('empty and missing errors have their own class', () => {
    expect(errorClass(null)).toBe(NO_ERROR_CLASS);
    expect(errorClass('   ')).toBe(NO_ERROR_CLASS);
  });

  it('long messages are cut at 80 characters, never inside a placeholder', () => {
    expect(errorClass(`${'x'.repeat(76)} 1234 more`)).toBe(`${'x'.repeat(76)} <n>`);
    // "<n>" would straddle the cut: dropped whole rather than left as "<n".
    expect(errorClass(`${'x'.repeat(77)} 1234 more`)).toBe('x'.repeat(77));
  });

  it('property: any input gives a class of at most 80 characters', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 3000 }), fc.string({ unit: 'grapheme', maxLength: 500 }), fc.string({ unit: 'binary', maxLength: 500 })), (s) => {
        const c = errorClass(s);
        expect(c.length).toBeGreaterThan(0);
        expect(c.length).toBeLessThanOrEqual(ERROR_CLASS_MAX_LENGTH);
      }),
      { numRuns: 500 },
    );
  });

  // A message template: fixed words (letters only) between slots filled with uuids or numbers.
  const word = fc.stringMatching(/^[A-Za-z_]{1,12}$/);
  const sep = fc.constantFrom(' ', ': ', ', ', '=', '/', ' (', ') ', '; ', ' #');
  const slot = fc.constantFrom<'uuid' | 'number'>('uuid', 'number');
  const template = fc.array(fc.tuple(word, sep, slot, sep), { minLength: 1, maxLength: 8 });
  const number = fc.oneof(
    fc.bigInt({ min: 0n, max: 10n ** 30n }).map(String),
    fc.tuple(fc.nat(), fc.nat()).map(([a, b]) => `${a}.${b}`),
  );
  const fill = (t: Array<[string, string, 'uuid' | 'number', string]>, values: string[]) => t.map(([w, s1, , s2], i) => `${w}${s1}${values[i]}${s2}`).join('');
  const valuesFor = (t: Array<[string, string, 'uuid' | 'number', string]>) =>
    fc.tuple(...t.map(([, , kind]) => (kind === 'uuid' ? fc.uuid() : number)));

  it('property: stable under replacing any uuid or number by another', () => {
    fc.assert(
      fc.property(
        template.chain((t) => fc.tuple(fc.constant(t), valuesFor(t), valuesFor(t))),
        ([t, a, b]) => {
          expect(errorClass(fill(t, a))).toBe(errorClass(fill(t, b)));
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('BoundedTally', () => {
  it('keeps the top groups by count and folds the rest into (other)', () => {
    const t = new BoundedTally({ top: 3 });
    const at = (m: number) => new Date(Date.UTC(2026, 0, 1, 0, m));
    for (let i = 0; i < 10; i += 1) t.add('a', at(i), 'k1');
    for (let i = 0; i < 5; i += 1) t.add('b', at(i), i % 2 ? 'k1' : 'k2');
    for (let i = 0; i < 4; i += 1) t.add('c', at(i));
    t.add('d', at(30));
    t.add('e', at(40));
    const g = t.groups();
    expect(g.map((x) => [x.key, x.count])).toEqual([['a', 10], ['b', 5], ['c', 4], [OTHER_CLASS, 2]]);
    expect(g[1].tags).toEqual(['k1', 'k2']);
    expect(g[3].oldest).toEqual(at(30));
    expect(g[3].newest).toEqual(at(40));
    expect(t.count).toBe(21);
  });

  it('never tracks more than maxTracked keys: later new keys count as (other)', () => {
    const t = new BoundedTally({ top: 100, maxTracked: 5 });
    for (let i = 0; i < 1000; i += 1) t.add(`k${i}`, null);
    const g = t.groups();
    expect(g.map((x) => x.key)).toEqual(['k0', 'k1', 'k2', 'k3', 'k4', OTHER_CLASS]);
    expect(g.find((x) => x.key === OTHER_CLASS)?.count).toBe(995);
    expect(g.reduce((n, x) => n + x.count, 0)).toBe(1000);
  });
});
