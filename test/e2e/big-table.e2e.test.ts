import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Readable, Writable } from 'node:stream';
import { freshDatabase } from '../support/db.js';
import { cliProcess } from '../support/cli.js';
import { Collect } from '../support/collect.js';
import { runCli } from '../../src/cli/cli.js';

/**
 * A table of any size is printed whole, after the work and never instead of it: 200,007 rows
 * once crashed the renderer ("Maximum call stack size exceeded", exit 4, nothing on stdout)
 * after a reap had reaped and audited every one of them.
 */
const ROWS = 200_007;
let db: Awaited<ReturnType<typeof freshDatabase>>;
const env = () => ({ DATABASE_URL: db.url });
const seed = async () => {
  await db.client.query(
    `INSERT INTO purchase_executions (status, updated_at) SELECT 'running', now() - interval '1 hour' - make_interval(secs => i) FROM generate_series(1, ${ROWS}) i`,
  );
};
/** Listed oldest first: the newest stuck row ends the table. */
const newestId = async () => (await db.client.query("SELECT id::text FROM purchase_executions WHERE status = 'running' ORDER BY updated_at DESC LIMIT 1")).rows[0].id as string;
const tableRows = (stdout: string) => stdout.split('\n').filter((l) => l.startsWith('│ '));

beforeAll(async () => {
  db = await freshDatabase('bigtable');
  await seed();
});
afterAll(async () => {
  await db.drop();
});

describe('a big table', () => {
  it('executions stuck --limit 0 prints all 200,007 rows, aligned, the last one last', async () => {
    const last = await newestId();
    const r = await cliProcess(['executions', 'stuck', '--limit', '0'], env());
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const rows = tableRows(r.stdout);
    expect(rows).toHaveLength(ROWS + 1); // and the header
    expect(rows[ROWS]).toContain(last);
    expect(new Set(rows.map((l) => l.length)).size).toBe(1);
    expect(r.stdout).toContain(`stuck: ${ROWS}`);
  });

  it('leaves in writes of about 64 KiB as it is drawn, not as one string of the whole table', async () => {
    // 20,000 of them are enough to tell (1.6 MB of table); in-process, to see the writes.
    const out = new Collect();
    const err = new Collect();
    const code = await runCli(['executions', 'stuck', '--limit', '20000'], { stdout: out, stderr: err, stdin: Readable.from([]), env: { PATH: process.env.PATH, XDG_STATE_HOME: process.env.XDG_STATE_HOME, ...env() }, cwd: process.cwd() });
    expect(err.text).toBe('');
    expect(code).toBe(0);
    const sizes = out.chunks.map((c) => c.length);
    const line = Buffer.byteLength(`${tableRows(out.text)[1]}\n`);
    expect(Math.max(...sizes)).toBeLessThan(3 * (65_536 + line)); // a chunk holds up to 64 Ki characters; the box's are 3 bytes
    expect(sizes.length).toBeGreaterThan(out.bytes.length / (3 * (65_536 + line)));
  });
});

describe('a table that cannot be printed after --apply', () => {
  it('keeps the exit code of the work, with one sentence on stderr', async () => {
    await db.client.query('TRUNCATE purchase_executions, audit_log');
    await db.client.query("INSERT INTO purchase_executions (status, updated_at) SELECT 'running', now() - interval '1 hour' FROM generate_series(1, 3000)");
    // stdout on a full disk; the listener stands for the process's own (src/main.ts).
    const full = new Writable({ write: (_c, _e, cb) => cb(Object.assign(new Error('no space left on device'), { code: 'ENOSPC' })) });
    full.on('error', () => {});
    const err = new Collect();
    const code = await runCli(['reap', '--apply', '--max', '0'], { stdout: full, stderr: err, stdin: Readable.from([]), env: { PATH: process.env.PATH, XDG_STATE_HOME: process.env.XDG_STATE_HOME, ...env() }, cwd: process.cwd() });
    expect((await db.client.query("SELECT count(*)::int AS n FROM purchase_executions WHERE status = 'failed'")).rows[0].n).toBe(3000);
    expect(code).toBe(0);
    expect(err.text).toBe('opsctl: reap --apply did its work, but the table could not be printed: no space left on device.\n');
  });
});
