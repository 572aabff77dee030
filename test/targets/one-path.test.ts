import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from '../../src/cli/cli.js';
import { freshDatabase, noPassword, serverPassword } from '../support/db.js';
import { cli } from '../support/cli.js';
import { freePort } from '../../src/database/embedded-postgres.js';

/**
 * Issue #26, "one path": reap over targets opens each target and runs the reap command's own
 * run function there exactly as a listing does (executions stuck), so a down target is the
 * same failure in both; its two phases (plan everywhere, apply target by target) ask one
 * question. Three real databases, one target on a closed port.
 */
type Db = Awaited<ReturnType<typeof freshDatabase>>;
let a: Db, b: Db, c: Db;
let closedPort: number;
let dir: string;

beforeAll(async () => {
  [a, b, c] = await Promise.all([freshDatabase('one_a'), freshDatabase('one_b'), freshDatabase('one_c')]);
  closedPort = await freePort();
  dir = mkdtempSync(join(tmpdir(), 'opsctl-one-path-'));
});
afterAll(async () => {
  await Promise.all([a.drop(), b.drop(), c.drop()]);
});
beforeEach(async () => {
  for (const d of [a, b, c]) await d.client.query('TRUNCATE purchase_executions, audit_log');
  const stuck = (d: Db, n: number) => d.client.query(`INSERT INTO purchase_executions (status, updated_at) SELECT 'running', now() - interval '2 hours' FROM generate_series(1, ${n})`);
  await stuck(a, 2);
  await stuck(b, 4);
});

function config(): string {
  const f = join(dir, `c-${Math.random().toString(36).slice(2)}.json`);
  const t = (d: Db) => ({ database: { url: noPassword(d.url), passwordEnv: 'PW' } });
  writeFileSync(
    f,
    JSON.stringify({
      audit: { table: 'audit_log', schema: null },
      targets: { a: t(a), b: t(b), c: t(c), down: { database: { host: '127.0.0.1', port: closedPort, user: 'nobody', dbname: 'nothing' } } },
    }),
  );
  return f;
}
const env = () => ({ PW: serverPassword() });
const failed = async (d: Db) => (await d.client.query("SELECT count(*)::int AS n FROM purchase_executions WHERE status = 'failed'")).rows[0].n as number;

/** A terminal on stdin and stderr that answers every [y/N] question with `answer`, counting them. */
function terminal(answer: string) {
  const stdin = Object.assign(new PassThrough(), { isTTY: true });
  const stderr = Object.assign(new PassThrough(), { isTTY: true });
  const stdout = new PassThrough();
  let text = '';
  let questions = 0;
  stderr.on('data', (d) => {
    text += d;
    if (/\[y\/N\] $/.test(text)) {
      questions += 1;
      text += '\n';
      stdin.write(`${answer}\n`);
    }
  });
  stdout.resume();
  return { io: { stdin, stderr, stdout, env: { PATH: process.env.PATH, XDG_STATE_HOME: process.env.XDG_STATE_HOME, ...env() }, cwd: process.cwd() }, text: () => text, questions: () => questions };
}

describe('reap over targets goes through the same path as a listing', () => {
  it('the down target is the same failure (exit 3) in a listing and in reap; the others are planned', async () => {
    const listing = await cli(['--config', config(), 'executions', 'stuck', '--all-targets', '-o', 'json'], env());
    const plan = await cli(['--config', config(), 'reap', '--all-targets', '-o', 'json'], env());
    expect([listing.code, plan.code]).toEqual([3, 3]);
    const [l, p] = [listing.json(), plan.json()];
    expect(Object.keys(p.summary.byTarget).sort()).toEqual(Object.keys(l.summary.byTarget).sort());
    expect(l.summary.byTarget.down).toMatchObject({ exitCode: 3, error: expect.stringMatching(/connection refused/) });
    // The same sentence from the same opener: the plan's error names the target in front of it.
    expect(p.summary.byTarget.down).toMatchObject({ exitCode: 3, planned: 0, error: `target down: ${l.summary.byTarget.down.error}` });
    expect({ a: p.summary.byTarget.a.planned, b: p.summary.byTarget.b.planned, c: p.summary.byTarget.c.planned }).toEqual({ a: 2, b: 4, c: 0 });
    // Each row is the reap command's own plan row, tagged with its target, as a listing's rows are.
    expect(p.items.map((i: any) => [i.target, i.outcome])).toEqual([...Array(2).fill(['a', 'planned']), ...Array(4).fill(['b', 'planned'])]);
    expect(l.items.map((i: any) => i.target)).toEqual(['a', 'a', 'b', 'b', 'b', 'b']);
    expect(plan.stdout + plan.stderr).not.toContain(serverPassword());
  });

  it('--apply on a terminal: one question with the totals per target, then a and b reaped; the down target exit 3', async () => {
    const t = terminal('y');
    const code = await runCli(['--config', config(), 'reap', '--all-targets', '--apply', '--reason', 'one path'], t.io);
    expect(code).toBe(3);
    expect(t.questions()).toBe(1);
    expect(t.text()).toMatch(/Reap 6 execution\(s\) on 2 target\(s\) \(a: 2, b: 4\)\? \[y\/N\]/);
    expect(t.text()).toMatch(/1 of 4 target\(s\) failed: down/);
    expect([await failed(a), await failed(b), await failed(c)]).toEqual([2, 4, 0]);
    // Each apply was the engine's, audited in its own target's database.
    expect((await a.client.query("SELECT count(*)::int AS n FROM audit_log WHERE metadata->>'reason' = 'one path'")).rows[0].n).toBeGreaterThan(0);
  });
});

describe('no per-command fleet function', () => {
  const src = fileURLToPath(new URL('../../src', import.meta.url));
  const files = (readdirSync(src, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts'));
  const text = (f: string) => readFileSync(join(src, f), 'utf8');

  it('no remedy spec, no fleet run of a command of its own', () => {
    expect(files.filter((f) => /FleetRemedySpec|fleetRemedy|runFleet(Check|Reap|Retry|Rescue|Adopt)/.test(text(f)))).toEqual([]);
    expect(files.filter((f) => /fleet-check|fleet-remedies/.test(f))).toEqual([]);
  });

  it('targets are fanned out in onTargets only, and opened by a TargetContext only', () => {
    const fanOut = files.filter((f) => /\brunFleet\(/.test(text(f))).sort();
    expect(fanOut).toEqual([join('targets', 'on-targets.ts'), join('targets', 'plan-then-apply.ts')]);
    expect(files.filter((f) => /new TargetContext\(/.test(text(f)))).toEqual([join('targets', 'target-context.ts')]);
    expect(files.filter((f) => /open-target\.js/.test(text(f))).sort()).toEqual([join('targets', 'on-targets.ts'), join('targets', 'target-context.ts')]);
  });
});
