import { describe, expect, it } from 'vitest';
import { cli, cliProcess } from './support/cli.js';

describe('usage errors: one prefix, and a suggestion for a typo', () => {
  it('a top-level typo gets "Did you mean", as a sub-command typo does', async () => {
    const top = await cli(['chek']);
    expect(top.code).toBe(2);
    expect(top.stderr).toBe("opsctl: unknown command 'chek'\n(Did you mean check?)\n");
    const far = await cli(['frobnicate']);
    expect(far.code).toBe(2);
    expect(far.stderr).toBe("opsctl: unknown command 'frobnicate'\n");
    const sub = await cli(['propagations', 'dead-leters']);
    expect(sub.code).toBe(2);
    expect(sub.stderr).toBe("opsctl: unknown command 'dead-leters'\n(Did you mean dead-letters?)\n");
  });

  it("commander's own errors carry the opsctl: prefix (the built CLI too)", async () => {
    const cases: string[][] = [
      ['reap', '--bogus'],
      ['propagations', 'retry', '--reason'],
      ['jobs', 'stuck', 'extra', 'words'],
      ['--output'],
    ];
    for (const args of cases) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/^opsctl: /);
      expect(r.stderr, args.join(' ')).not.toMatch(/^error:/m);
    }
    const built = await cliProcess(['reap', '--older-then', '10m']);
    expect(built.code).toBe(2);
    expect(built.stderr).toBe("opsctl: unknown option '--older-then'\n(Did you mean --older-than?)\n");
  });
});
