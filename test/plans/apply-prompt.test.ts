import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { databaseChecksum, freshDatabase } from '../support/db.js';
import { cli } from '../support/cli.js';
import { spawnOnTty } from '../support/tty.js';

/** `opsctl apply FILE` at a real terminal (util-linux `script` gives it a pseudo-TTY), as test/e2e/apply-prompt.e2e.test.ts does for --apply. */
const onTty = (args: string[], env: NodeJS.ProcessEnv) => spawnOnTty(args, { COLUMNS: '120', ...env }, { timeoutMs: 40_000 });

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
    no.type('n\r');
    expect(await no.done).toBe(5);
    expect(await databaseChecksum(db.client)).toBe(before);

    const yes = onTty(['apply', file], env);
    await yes.seen(/\[y\/N\]/);
    yes.type('y\r');
    expect(await yes.done).toBe(0);
    expect(yes.output()).toContain('reaped');
    expect((await db.client.query(`SELECT count(*)::int AS n FROM purchase_executions WHERE status = 'failed'`)).rows[0].n).toBe(3);
  });
});
