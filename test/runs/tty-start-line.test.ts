import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshDatabase } from '../support/db.js';
import { BIN, cli } from '../support/cli.js';

// Issue #28: on a terminal the run's id is printed when it starts (stderr, like progress); piped,
// stderr stays empty and the id is in the report (summary runId).

function onTty(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const cmd = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const child = spawn('script', ['-qefc', cmd, '/dev/null'], { env: { PATH: process.env.PATH, HOME: process.env.HOME, TERM: 'xterm-256color', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (output += d));
    const guard = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no exit within 20 s; output so far: ${output}`));
    }, 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(guard);
      resolve({ code: code ?? -1, output });
    });
  });
}

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
