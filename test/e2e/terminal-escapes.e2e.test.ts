import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import parsePrometheus from 'parse-prometheus-text-format';
import { freshDatabase } from '../support/db.js';
import { cliProcess } from '../support/cli.js';
import { runOnTty } from '../support/tty.js';

/**
 * Values from the database reach a terminal: a last_error or a kind holding escape sequences
 * must be shown, never obeyed (the class of kubectl's CVE-2021-25743). Every renderer that
 * prints them: table (cells, headline, sections), markdown, Prometheus.
 */
const TITLE = '\x1b]0;TITLE\x07'; // sets the terminal window's title
const RED = '\x1b[31m';
const CSI = '\x9b'; // C1 control sequence introducer
const LAST_ERROR = `boom ${TITLE} ${RED}red${CSI}x\rover`;
const KIND = `evil${RED}kind${CSI}`;
/** C0 except the newline that ends a line, DEL and C1: none may leave opsctl raw. */
const RAW_CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/;
const ESCAPED = ['\\x1b]0;TITLE\\x07', '\\x1b[31m', '\\x9b'];

let db: Awaited<ReturnType<typeof freshDatabase>>;
const env = () => ({ DATABASE_URL: db.url });
beforeAll(async () => {
  db = await freshDatabase('escapes');
  await db.client.query(`INSERT INTO pending_propagations (kind, team_id, attempts, last_error, failed_at) VALUES ($1, gen_random_uuid(), 10, $2, now() - interval '2 hours')`, [KIND, LAST_ERROR]);
});
afterAll(async () => {
  await db.drop();
});

/** The CLI on a pseudo-terminal (util-linux `script`), so it colours its output. */
const onTty = (args: string[], env: NodeJS.ProcessEnv) => runOnTty(args, env, { stdin: 'ignore' });

describe('control characters from the database', () => {
  it('a table shows them escaped in its cells, headline and sections', async () => {
    const r = await cliProcess(['propagations', 'dead-letters'], env());
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(RAW_CONTROL);
    for (const e of ESCAPED) expect(r.stdout).toContain(e);
    // The cell (last error), the headline's and the section's error class, the kind in its section.
    expect(r.stdout).toContain('\\x9bx\\rover');
    // The error class: its numbers as <n>, its \r as a space.
    expect(r.stdout).toContain('all one error class: boom \\x1b]<n>;TITLE\\x07 \\x1b[<n>mred\\x9bx over');
    expect(r.stdout).toContain('evil\\x1b[31mkind\\x9b');
  });

  it('on a terminal opsctl still colours its own output, and only it', async () => {
    const r = await onTty(['propagations', 'dead-letters'], env());
    expect(r.code).toBe(0);
    expect(r.output).toContain(`\x1b[31mboom \\x1b]0;TITLE\\x07`); // the 'bad' tone around the escaped text
    // Left once opsctl's own colour (SGR) and the terminal's line ends are taken out: nothing.
    expect(r.output.replace(/\x1b\[\d+m/g, '').replace(/\r\n/g, '\n')).not.toMatch(RAW_CONTROL);
  });

  it('markdown shows them escaped, and a | cannot open a cell', async () => {
    await db.client.query(`UPDATE pending_propagations SET last_error = last_error || ' a|b'`);
    try {
      const r = await cliProcess(['check', '--only', 'propagations', '-o', 'markdown'], env());
      expect(r.code).toBe(1);
      expect(r.stdout).not.toMatch(RAW_CONTROL);
      for (const e of ESCAPED) expect(r.stdout).toContain(e);
      expect(r.stdout).toContain('a\\|b');
    } finally {
      await db.client.query(`UPDATE pending_propagations SET last_error = $1`, [LAST_ERROR]);
    }
  });

  it('Prometheus label values carry them as text, per the exposition format', async () => {
    const r = await cliProcess(['check', '--only', 'propagations', '-o', 'prometheus'], env());
    expect(r.code).toBe(1);
    expect(r.stdout).not.toMatch(RAW_CONTROL);
    const families = parsePrometheus(r.stdout) as Array<{ name: string; metrics: Array<{ labels?: Record<string, string>; value: string }> }>;
    const breakdown = families.find((f) => f.name === 'opsctl_check_breakdown');
    // The label's value, once read back, is the escaped text a table shows.
    expect(breakdown?.metrics.map((m) => m.labels?.key)).toContain('evil\\x1b[31mkind\\x9b');
  });
});
