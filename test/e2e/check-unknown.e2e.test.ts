import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshDatabase } from '../support/db.js';
import { cliProcess } from '../support/cli.js';

// A table cell is cut to the column's width; the reason a check could not run is what the reader acts on.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let dir: string;
const TABLE = 'no_such_outbox_whose_long_name_pushes_the_reason_past_a_cell';
beforeAll(async () => {
  db = await freshDatabase('e2eunknown');
  dir = mkdtempSync(join(tmpdir(), 'opsctl-unknown-'));
});
afterAll(async () => {
  await db.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('check with a check that cannot run', () => {
  const run = async (format: string) => {
    const cfg = join(dir, 'c.json');
    writeFileSync(cfg, JSON.stringify({ propagations: { table: TABLE } }));
    return cliProcess(['--config', cfg, 'check', '--only', 'propagations', '--no-color', '-o', format], { DATABASE_URL: db.url });
  };

  it('prints each unknown check\'s whole reason under the table', async () => {
    const json = await run('json');
    expect(json.code, json.stderr).toBe(3);
    const reasons = new Map<string, string>(json.json().items.filter((i: any) => i.status === 'unknown').map((i: any) => [i.check, i.error]));
    expect(reasons.size).toBeGreaterThan(0);
    for (const reason of reasons.values()) expect(reason.length).toBeGreaterThan(90); // longer than the table's cell

    const table = await run('table');
    expect(table.code).toBe(3);
    const lines = table.stdout.split('\n');
    for (const [check, reason] of reasons) expect(lines).toContain(`${check} could not run: ${reason}`);
  });

  it('markdown lists each whole reason below its table', async () => {
    const json = (await run('json')).json();
    const md = await run('markdown');
    expect(md.code).toBe(3);
    for (const i of json.items.filter((x: any) => x.status === 'unknown')) expect(md.stdout).toContain(`**${i.check}** could not run: ${i.error}`);
  });
});
