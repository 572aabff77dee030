import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { exportLines } from '../src/commands/shell-quote.js';

// The environment lines of `demo --keep` and `emulator scheduler` are pasted or eval'd by a shell.
describe('exportLines', () => {
  it.each([
    'http://127.0.0.1:4599',
    'postgres://postgres:0a1b@127.0.0.1:5432/demo',
    '/tmp/with space/opsctl.config.json',
    "it's",
    '$HOME `id` $(id) "x" \\ ; & | * ? ~ #',
    '',
  ])('bash gets %j back exactly', (value) => {
    const lines = exportLines({ OPSCTL_VALUE: value });
    expect(lines).toMatch(/^export OPSCTL_VALUE=/);
    const got = execFileSync('bash', ['-c', 'eval "$LINES" && printf %s "$OPSCTL_VALUE"'], { env: { PATH: process.env.PATH, LINES: lines }, encoding: 'utf8' });
    expect(got).toBe(value);
  });
});
