import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BoundedTally, ERROR_CLASS_MAX_LENGTH, errorClass, NO_ERROR_CLASS, OTHER_CLASS } from '../../src/checks/error-classes.js';

describe('errorClass', () => {
  it.each([
    ['timeout after 3012ms for team 6f1c2d3e-1111-4aaa-8bbb-0123456789ab', 'timeout after <duration> for team <uuid>'],
    ['No such invoice: in_1Q2w3E4r5T6y (request req-7f3a9c2e1b5d)', 'No such invoice: in_<id> (request req-<id>)'],
    ['customer cus_NffrFeUfNV2Hib not found; job 1Q2w3E4r5T6y', 'customer cus_<id> not found; job <id>'],
    ['retry in 1.5s after 250ms; gave up after 3m (1h30m)', 'retry in <duration> after <duration>; gave up after <duration> (<duration>)'],
    ['dial tcp 10.0.1.7:5432: connection refused', 'dial tcp <ip>:<n>: connection refused'],
    ['dial tcp [2001:db8::1]:443: i/o timeout; from ::ffff:10.0.0.1 and fe80::1: no route', 'dial tcp [<ip>]:<n>: i/o timeout; from <ip> and <ip>: no route'],
    ['bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0 rejected', 'bearer <id>.<id> rejected'],
    ['tier_elevation_v2_handler failed: ConditionalCheckFailedException', 'tier_elevation_v<n>_handler failed: ConditionalCheckFailedException'],
    // Words with digits are not ids; "std::io" is not an address; "1st" is not a duration.
    ['utf8mb4 sha256 HTTP2Connection std::io::Error 1st', 'utf<n>mb<n> sha<n> HTTP<n>Connection std::io::Error <n>st'],
    ['ConditionalCheckFailedException: x86_64 v1beta1', 'ConditionalCheckFailedException: x<n>_<n> v<n>beta<n>'],
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

  // The ids, addresses and durations real errors carry, each a placeholder whatever its value.
  const digit = fc.integer({ min: 0, max: 9 }).map(String);
  const nonHexLetter = fc.constantFrom(...'ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ'.split(''));
  const alnum = (min: number, max: number) => fc.stringMatching(new RegExp(`^[A-Za-z0-9]{${min},${max}}$`));
  const VARIABLE = {
    uuid: fc.uuid(),
    number,
    // Stripe-style and request ids: a prefix (kept: it says what the id is) and a random tail.
    stripe: fc.tuple(digit, nonHexLetter, alnum(4, 22)).map(([d, l, t]) => `cus_${d}${l}${t}`),
    request: fc.tuple(digit, nonHexLetter, alnum(4, 22)).map(([d, l, t]) => `req-${l}${d}${t}`),
    mixed: fc.array(fc.tuple(digit, nonHexLetter), { minLength: 4, maxLength: 12 }).map((xs) => xs.flat().join('')),
    hex: fc.tuple(digit, fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'), fc.stringMatching(/^[0-9a-f]{6,38}$/)).map(([d, l, t]) => `${d}${l}${t}`),
    base64url: fc.tuple(digit, fc.constantFrom('g', 'q', 'z'), fc.constantFrom('G', 'Q', 'Z'), fc.stringMatching(/^[A-Za-z0-9_-]{17,60}$/)).map(([d, l, u, t]) => `${d}${l}${u}${t}`),
    email: fc.tuple(fc.stringMatching(/^[a-z0-9][a-z0-9.+_-]{0,15}$/), fc.stringMatching(/^[a-z0-9-]{1,12}$/), fc.constantFrom('com', 'io', 'co.uk')).map(([u, d, t]) => `${u}@${d}.${t}`),
    ipv4: fc.ipV4(),
    ipv6: fc.ipV6().filter((a) => a !== '::'),
    duration: fc.tuple(fc.nat({ max: 100_000 }), fc.constantFrom('ns', 'us', 'ms', 's', 'm', 'h', 'd'), fc.boolean()).map(([n, u, frac]) => `${frac ? `${n}.5` : n}${u}`),
  };
  type Kind = keyof typeof VARIABLE;
  const kinds = Object.keys(VARIABLE) as Kind[];

  it('property: stable under replacing any id, address, duration or number by another of its kind', () => {
    const t2 = fc.array(fc.tuple(word, sep, fc.constantFrom(...kinds), sep), { minLength: 1, maxLength: 6 });
    const values = (t: Array<[string, string, Kind, string]>) => fc.tuple(...t.map(([, , kind]) => VARIABLE[kind]));
    const text = (t: Array<[string, string, Kind, string]>, v: string[]) => t.map(([w, s1, , s2], i) => `${w}${s1}${v[i]}${s2}`).join('');
    fc.assert(
      fc.property(
        t2.chain((t) => fc.tuple(fc.constant(t), values(t), values(t))),
        ([t, a, b]) => {
          expect(errorClass(text(t, a))).toBe(errorClass(text(t, b)));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('property: a value of each kind alone in a message never leaves its digits or letters behind', () => {
    for (const kind of kinds) {
      fc.assert(
        fc.property(VARIABLE[kind], (v) => {
          expect(errorClass(`failed for ${v}: giving up`), `${kind} ${v}`).toMatch(/^failed for (cus_|req-)?<[a-z]+>: giving up$/);
        }),
        { numRuns: 300 },
      );
    }
  });

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
