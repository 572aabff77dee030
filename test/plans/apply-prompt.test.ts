import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { databaseChecksum, freshDatabase } from '../support/db.js';
import { BIN, cli } from '../support/cli.js';

/** `opsctl apply FILE` at a real terminal (util-linux `script` gives it a pseudo-TTY), as test/e2e/apply-prompt.e2e.test.ts does for --apply. */
function onTty(args: string[], env: NodeJS.ProcessEnv) {
  const cmd = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const child = spawn('script', ['-qefc', cmd, '/dev/null'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, TERM: 'xterm-256color', COLUMNS: '120', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  const waiters: Array<{ re: RegExp; resolve: () => void }> = [];
  child.stdout.setEncoding('utf8').on('data', (d) => {
    output += d;
    for (const w of waiters.splice(0)) (w.re.test(output) ? w.resolve() : waiters.push(w));
  });
  const guard = setTimeout(() => child.kill('SIGKILL'), 40_000);
  const done = new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(guard);
      resolve(code ?? -1);
    });
  });
  return {
    child,
    output: () => output,
    seen: (re: RegExp) => (re.test(output) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ re, resolve }))),
    done,
  };
}

let db: Awaited<ReturnType<typeof freshDatabase>>;
let cwd: string;
beforeAll(async () => {
  db = await freshDatabase('plan_prompt');
  cwd = mkdtempSync(join(tmpdir(), 'opsctl-planprompt-'));
});
afterAll(async () => {
  await db.drop();
});

describe('opsctl apply FILE on a terminal', () => {
  it('shows the plan and asks: "n" changes nothing (exit 5), "y" applies the planned rows', async () => {
    await db.client.query(`INSERT INTO purchase_executions (status, updated_at) SELECT 'running', now() - make_interval(mins => 60 + i) FROM generate_series(1, 3) i`);
    const file = join(cwd, 'plan.json');
    const env = { DATABASE_URL: db.url };
    expect((await cli(['reap', '--plan-out', file], env, { cwd })).code).toBe(0);
    const before = await databaseChecksum(db.client);

    const no = onTty(['apply', file], env);
    await no.seen(/\[y\/N\]/);
    expect(no.output()).toContain(`Plan ${file}: opsctl reap`);
    expect(no.output()).toMatch(/Apply the plan .*: Reap 3 execution\(s\)/);
    no.child.stdin.write('n\r');
    expect(await no.done).toBe(5);
    expect(await databaseChecksum(db.client)).toBe(before);

    const yes = onTty(['apply', file], env);
    await yes.seen(/\[y\/N\]/);
    yes.child.stdin.write('y\r');
    expect(await yes.done).toBe(0);
    expect(yes.output()).toContain('reaped');
    expect((await db.client.query(`SELECT count(*)::int AS n FROM purchase_executions WHERE status = 'failed'`)).rows[0].n).toBe(3);
  });
});
