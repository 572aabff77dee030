import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseDuration, formatDuration, formatAge } from '../src/config/durations.js';
import { OpsctlError } from '../src/errors.js';

describe('parseDuration', () => {
  it.each([
    ['90s', 90_000],
    ['10m', 600_000],
    ['2h30m', 9_000_000],
    ['1d', 86_400_000],
    ['1w', 604_800_000],
    ['1.5h', 5_400_000],
    ['250ms', 250],
    [' 5m ', 300_000],
  ])('%s is %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each([
    ['0s', /greater than zero/],
    ['0m0s', /greater than zero/],
    ['-5m', /must be positive/],
    ['', /is empty/],
    ['garbage', /is not a duration/],
    ['10', /has no unit/],
    ['5 m', /is not a duration/],
    ['1y', /is not a duration/],
    ['99999d', /longer than ten years/],
  ])('refuses %j with one sentence and exit code 2', (input, msg) => {
    try {
      parseDuration(input, '--older-than');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(OpsctlError);
      expect((e as OpsctlError).exitCode).toBe(2);
      expect((e as OpsctlError).message).toMatch(msg);
      expect((e as OpsctlError).message).toContain('--older-than');
      expect((e as OpsctlError).message.split('\n')).toHaveLength(1);
    }
  });

  it('round-trips any positive whole-second duration through formatDuration (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3650 * 86_400 - 1 }), (secs) => {
        const ms = secs * 1000;
        expect(parseDuration(formatDuration(ms))).toBe(ms);
      }),
    );
  });

  it('never throws anything but a usage error, whatever the input (property)', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        try {
          const ms = parseDuration(s);
          expect(ms).toBeGreaterThan(0);
        } catch (e) {
          expect(e).toBeInstanceOf(OpsctlError);
          expect((e as OpsctlError).exitCode).toBe(2);
        }
      }),
    );
  });

  it('sums the parts of a compound duration (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 59 }), fc.integer({ min: 1, max: 59 }), (h, m, s) => {
        expect(parseDuration(`${h}h${m}m${s}s`)).toBe(((h * 60 + m) * 60 + s) * 1000);
      }),
    );
  });
});

describe('formatting', () => {
  it('formats durations exactly and ages coarsely', () => {
    expect(formatDuration(600_000)).toBe('10m');
    expect(formatDuration(9_000_000)).toBe('2h30m');
    expect(formatDuration(90_061_000)).toBe('1d1h1m1s');
    expect(formatAge(2_409_000)).toBe('40m9s');
    expect(formatAge(90_061_000)).toBe('1d1h');
  });
});
