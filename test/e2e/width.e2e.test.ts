import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshDatabase } from '../support/db.js';
import { cliProcess } from '../support/cli.js';
import { runOnTty } from '../support/tty.js';

/**
 * Tables fitted to the terminal (issue 27): on a TTY of 80 columns no line is wider than 80,
 * free text (a reason, an error) is cut with "…" and ids never are; -o wide and a pipe keep
 * every value whole.
 */

/** The CLI on a pseudo-terminal (util-linux `script`) sized `cols` columns by stty inside it, without colour; lines end in \n. */
async function onTty(args: string[], env: NodeJS.ProcessEnv, cols?: number): Promise<{ code: number; output: string }> {
  const r = await runOnTty(args, { NO_COLOR: '1', ...env }, { columns: cols, stdin: 'ignore' });
  return { code: r.code, output: r.output.replace(/\r\n/g, '\n') };
}

/** Terminal columns of a line: CJK counts 2 (the only wide characters these values hold). */
const columns = (line: string) => [...line].reduce((w, ch) => w + (/[\u3000-\u9fff\uff00-\uff60]/u.test(ch) ? 2 : 1), 0);
/** Widest line once escape sequences (the progress line's erase, \x1b[K) are taken out. */
const widest = (text: string) => Math.max(...text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').split('\n').map(columns));

/** Long enough to wrap any 80-column row; CJK so that the cut must count display width, not characters. */
const REASON = `支払い処理 INC-4242 executor crashed while settling batches — ${'the worker pool was drained before the settlement finished; '.repeat(2)}END`;

let db: Awaited<ReturnType<typeof freshDatabase>>;
let dir: string;
/** purchase_executions (uuid ids) for the listing; a table with integer ids for reap, whose fixed columns then leave room for the reason. */
const env = () => ({ DATABASE_URL: db.url });
const reapEnv = () => ({ DATABASE_URL: db.url, OPSCTL_CONFIG: join(dir, 'opsctl.config.json') });
const uuidReapEnv = () => ({ DATABASE_URL: db.url, OPSCTL_CONFIG: join(dir, 'uuid.config.json') });
let uuids: string[];

beforeAll(async () => {
  db = await freshDatabase('width');
  dir = mkdtempSync(join(tmpdir(), 'opsctl-width-'));
  writeFileSync(join(dir, 'opsctl.config.json'), JSON.stringify({ executions: { table: 'numbered_executions', reasonTemplate: REASON } }));
  writeFileSync(join(dir, 'uuid.config.json'), JSON.stringify({ executions: { reasonTemplate: REASON } }));
  await db.client.query(`
    CREATE TABLE numbered_executions (id bigint PRIMARY KEY, status text NOT NULL, error text, updated_at timestamptz NOT NULL, transitioned_at timestamptz);
    INSERT INTO numbered_executions (id, status, updated_at) SELECT 9000000000 + g, 'running', now() - interval '2 hours' FROM generate_series(1, 3) g;
  `);
  uuids = (
    await db.client.query(`INSERT INTO purchase_executions (status, error, updated_at) SELECT 'running', $1, now() - interval '2 hours' FROM generate_series(1, 3) RETURNING id`, [REASON])
  ).rows.map((r) => r.id);
});
afterAll(async () => {
  await db.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('reap (dry run) on an 80-column terminal', () => {
  it('fits: the reason is cut with "…", the ids are whole', async () => {
    const r = await onTty(['reap'], reapEnv(), 80);
    expect(r.code).toBe(0);
    expect(widest(r.output)).toBeLessThanOrEqual(80);
    for (let i = 1; i <= 3; i++) expect(r.output).toContain(`│ ${9000000000 + i} │`);
    expect(r.output).toContain('…');
    expect(r.output).not.toContain(REASON);
    expect(r.output).toContain('支払い処理 INC-4242');
  });

  it('uuid ids: fitted at 80 too — the threshold (in the headline) is left out of the fitted table, the reason cut, the uuids whole', async () => {
    const at80 = await onTty(['reap'], uuidReapEnv(), 80);
    expect(at80.code).toBe(0);
    expect(widest(at80.output)).toBeLessThanOrEqual(80);
    for (const id of uuids) expect(at80.output).toContain(`│ ${id} │`);
    expect(at80.output).toContain('…');
    expect(at80.output).not.toMatch(/│ threshold/);
    expect(at80.output).toMatch(/older than 10m/); // the headline says it
  });

  it('-o wide and piped output keep the threshold column', async () => {
    expect((await onTty(['reap', '-o', 'wide'], uuidReapEnv(), 80)).output).toMatch(/│ threshold/);
    expect((await cliProcess(['reap'], uuidReapEnv())).stdout).toMatch(/│ threshold/);
  });

  it('-o wide: every reason in full', async () => {
    const r = await onTty(['reap', '-o', 'wide'], reapEnv(), 80);
    expect(r.code).toBe(0);
    expect(r.output).toContain(REASON);
    expect(r.output).toContain(`│ ${9000000001} │`);
  });

  it('piped (not a terminal): every reason in full, no "…" added', async () => {
    const r = await cliProcess(['reap'], reapEnv());
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(REASON);
    expect(r.stdout).not.toContain('…');
  });

  it('without a size from the terminal, COLUMNS is the width', async () => {
    const r = await onTty(['reap'], { ...reapEnv(), COLUMNS: '80' });
    expect(r.code).toBe(0);
    expect(widest(r.output)).toBeLessThanOrEqual(80);
    expect(r.output).toContain('…');
  });
});

describe('executions stuck on an 80-column terminal', () => {
  it('no line wider than 80, the uuids whole, the headline wrapped between words rather than cut', async () => {
    const r = await onTty(['executions', 'stuck'], env(), 80);
    expect(r.code).toBe(0);
    expect(widest(r.output)).toBeLessThanOrEqual(80);
    for (const id of uuids) expect(r.output).toContain(id);
    expect(r.output.replace(/\n/g, ' ')).toContain('Executions in approved/running for longer than 10m (purchase_executions, database clock)');
    expect(r.output).not.toContain('…');
  });

  it('an "approved" row at 80 columns: updated_at (the age says it) gives way before anything wraps; at 200 it is there', async () => {
    // Inserted (an UPDATE would have the table's trigger stamp updated_at, and the row not be stuck).
    const { rows } = await db.client.query(`INSERT INTO purchase_executions (status, updated_at) VALUES ('approved', now() - interval '10 hours 11 minutes') RETURNING id::text`);
    try {
      const at80 = await onTty(['executions', 'stuck'], env(), 80);
      expect(widest(at80.output)).toBeLessThanOrEqual(80);
      expect(at80.output).toMatch(/│ approved │/);
      expect(at80.output, at80.output).not.toMatch(/updated_at/);
      const at200 = await onTty(['executions', 'stuck'], env(), 200);
      expect(at200.output).toMatch(/│ updated_at/);
      expect((await cliProcess(['executions', 'stuck'], env())).stdout).toMatch(/│ updated_at/);
    } finally {
      await db.client.query('DELETE FROM purchase_executions WHERE id = $1', [rows[0].id]);
    }
  });

  it('-o wide and a pipe: the headline on one line', async () => {
    const wide = await onTty(['executions', 'stuck', '-o', 'wide'], env(), 80);
    const piped = await cliProcess(['executions', 'stuck'], env());
    for (const out of [wide.output, piped.stdout]) {
      expect(out).toContain('Executions in approved/running for longer than 10m (purchase_executions, database clock)');
      for (const id of uuids) expect(out).toContain(id);
    }
  });
});

describe('propagations dead-letters on a 120-column terminal (its columns never cut take 96)', () => {
  it('the last error is cut, the ids are whole; piped it is whole', async () => {
    const ids = (
      await db.client.query(`INSERT INTO pending_propagations (kind, team_id, attempts, last_error, failed_at) VALUES ('quota', gen_random_uuid(), 10, $1, now() - interval '1 hour') RETURNING id`, [REASON])
    ).rows.map((x) => String(x.id));
    const tty = await onTty(['propagations', 'dead-letters'], env(), 120);
    expect(tty.code).toBe(0);
    expect(widest(tty.output)).toBeLessThanOrEqual(120);
    for (const id of ids) expect(tty.output).toContain(id);
    expect(tty.output).toContain('…');
    const piped = await cliProcess(['propagations', 'dead-letters'], env());
    expect(piped.stdout).toContain(REASON);
  });
});

describe('-o wide is an output format like table', () => {
  it('json is unchanged, and an unknown format names wide among the choices', async () => {
    const bad = await cliProcess(['executions', 'stuck', '-o', 'nope'], env());
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('use one of table, wide, json, ndjson');
    const json = await cliProcess(['executions', 'stuck', '-o', 'json'], env());
    expect(json.json().items.map((i: { id: string }) => i.id).sort()).toEqual([...uuids].sort());
  });

  it('check and config show take -o wide as they take table', async () => {
    const check = await cliProcess(['check', '--only', 'propagations', '-o', 'wide'], env());
    expect([0, 1]).toContain(check.code); // clean or findings: never the usage error of an unknown format
    expect(check.stdout).toMatch(/^opsctl check \(read-only\)\n┌/);
    const config = await cliProcess(['config', 'show', '-o', 'wide'], env());
    expect(config.code).toBe(0);
    expect(config.stdout).toContain('# source:');
  });
});

// Last: it reaps the uuid rows the tests above list.
describe('executions show on an 80-column terminal', () => {
  it('its history (here the local journal: no audit table) fits, the summary cut with "…"; piped it is whole', async () => {
    const e = { ...uuidReapEnv(), OPSCTL_STATE_DIR: join(dir, 'state') };
    const reap = await cliProcess(['reap', '--apply', '--yes', '--max', '0', '-o', 'json'], e);
    expect(reap.code).toBe(0);
    const r = await onTty(['executions', 'show', uuids[0] as string], e, 80);
    expect(r.code).toBe(0);
    const history = r.output.slice(r.output.indexOf('Local journal (newest first)'));
    expect(history).toContain('execution.reaped');
    expect(history).toContain('…');
    expect(widest(history)).toBeLessThanOrEqual(80);
    const piped = await cliProcess(['executions', 'show', uuids[0] as string], e);
    expect(piped.stdout).toContain('the worker pool was drained before the settlement finished; the worker pool');
  });
});
