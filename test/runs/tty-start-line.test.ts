import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshDatabase } from '../support/db.js';
import { cli } from '../support/cli.js';
import { runOnTty } from '../support/tty.js';

// Issue #28: on a terminal the run's id is printed when it starts (stderr, like progress); piped,
// stderr stays empty and the id is in the report (summary runId).

const onTty = (args: string[], env: NodeJS.ProcessEnv) => runOnTty(args, env, { timeoutMs: 20_000 });

let db: Awaited<ReturnType<typeof freshDatabase>>;
beforeAll(async () => {
  db = await freshDatabase('runs_tty');
});
afterAll(async () => {
  await db?.drop();
});

describe('the run id at the start of an --apply', () => {
  it('on a terminal: "opsctl: run <id> started", the same id as in the summary line; piped: nothing on stderr', async () => {
    await db.client.query(`INSERT INTO purchase_executions (status, updated_at) SELECT 'running', now() - interval '1 hour' FROM generate_series(1, 3)`);
    const env = { DATABASE_URL: db.url, OPSCTL_STATE_DIR: mkdtempSync(join(tmpdir(), 'opsctl-state-')), NO_COLOR: '1' };
    const r = await onTty(['reap', '--apply', '--yes'], env);
    expect(r.code).toBe(0);
    const started = /opsctl: run ([0-9a-f-]{36}) started/.exec(r.output)?.[1];
    expect(started).toBeDefined();
    expect(r.output).toContain(`runId: ${started}`);
    await db.client.query(`INSERT INTO purchase_executions (status, updated_at) SELECT 'running', now() - interval '1 hour' FROM generate_series(1, 3)`);
    const piped = await cli(['reap', '--apply'], env);
    expect(piped.code).toBe(0);
    expect(piped.stderr).toBe('');
    expect(piped.stdout).toMatch(/runId: [0-9a-f-]{36}/);
  });
});
