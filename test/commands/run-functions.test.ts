import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { freshDatabase } from '../support/db.js';
import { awsEnv, emulator, OWNER, owner } from '../support/aws.js';
import { CommandContext, createDeps, type Deps } from '../../src/cli/context.js';
import { reapOptions, runReap, runStuck, stuckOptions } from '../../src/commands/executions.js';
import { checkOptions, runCheck } from '../../src/commands/check.js';
import { ExitCode } from '../../src/errors.js';
import type { SchedulerEmulator } from '../../src/emulator/scheduler-emulator.js';

/**
 * Run functions called directly, as the command line would, with their dependencies passed
 * in: a real PostgreSQL, the Scheduler emulator, a fixed clock, captured streams.
 */

let db: Awaited<ReturnType<typeof freshDatabase>>;
let emu: SchedulerEmulator;
let dir: string;

beforeAll(async () => {
  db = await freshDatabase('run');
  emu = await emulator();
  dir = mkdtempSync(join(tmpdir(), 'opsctl-run-'));
});
afterAll(async () => {
  await emu?.close();
  await db?.drop();
});

function context(env: NodeJS.ProcessEnv, config: Record<string, unknown>, deps: Partial<Deps> = {}, output = 'json') {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(config));
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (d) => (stdout += d));
  err.on('data', (d) => (stderr += d));
  const ctx = new CommandContext({ stdout: out, stderr: err, stdin: Readable.from([]), env: { PATH: process.env.PATH, XDG_STATE_HOME: process.env.XDG_STATE_HOME, ...env }, cwd: dir }, { output, config: file }, createDeps(deps));
  return { ctx, stdout: () => stdout, stderr: () => stderr };
}

async function seedStuck(): Promise<string[]> {
  await db.client.query('TRUNCATE purchase_executions, audit_log');
  const ids: string[] = [];
  for (const minutes of [30, 90])
    ids.push((await db.client.query(`INSERT INTO purchase_executions (status, updated_at, created_at) VALUES ('running', now() - make_interval(mins => $1), now()) RETURNING id::text`, [minutes])).rows[0].id);
  return ids;
}

describe('run functions with their dependencies passed in', () => {
  it('runReap: typed options in, the one result shape out; the engine wrote one audit row per reaped row in the same run', async () => {
    const ids = await seedStuck();
    let opened = 0;
    const { ctx, stdout, stderr } = context({ DATABASE_URL: db.url }, { audit: { table: 'audit_log' } }, {
      // The real opener, counted: the run function reaches the database only through deps.
      openDatabase: async (settings, env) => {
        opened += 1;
        return (await import('../../src/database/database.js')).Database.connect({ settings, env });
      },
    });
    const code = await runReap(ctx, reapOptions({ olderThan: '10m', apply: true, reason: 'INC-9' }));
    expect(stderr()).toBe('');
    expect(code).toBe(ExitCode.OK);
    expect(opened).toBe(1);
    const out = JSON.parse(stdout());
    expect(out.mode).toBe('apply');
    expect(out.items.map((i: any) => [i.outcome, i.outcomeClass])).toEqual([
      ['reaped', 'applied'],
      ['reaped', 'applied'],
    ]);
    expect(out.summary.outcomes.applied).toEqual({ label: 'reaped', count: 2 });
    expect(out.summary.outcomes.lost).toEqual({ label: 'race-lost', count: 0 });
    expect(out.summary.reaped).toBe(2);
    const audit = await db.client.query(`SELECT resource_id, kind FROM audit_log WHERE kind <> 'opsctl.run' ORDER BY resource_id`);
    expect(audit.rows).toEqual([...ids].sort().map((id) => ({ resource_id: id, kind: 'execution.reaped' })));
    expect((await db.client.query(`SELECT count(*)::int AS n FROM purchase_executions WHERE status = 'failed'`)).rows[0].n).toBe(2);
  });

  it('runStuck and a plan: mode read for the listing, mode plan with outcome class "planned" for the dry run, nothing written', async () => {
    await seedStuck();
    const list = context({ DATABASE_URL: db.url }, {});
    expect(await runStuck(list.ctx, stuckOptions({ olderThan: '1h' }))).toBe(0);
    const listed = JSON.parse(list.stdout());
    expect(listed).toMatchObject({ command: 'executions stuck', mode: 'read', summary: { stuck: 1 } });
    const plan = context({ DATABASE_URL: db.url }, {});
    expect(await runReap(plan.ctx, reapOptions({ olderThan: '10m' }))).toBe(0);
    const planned = JSON.parse(plan.stdout());
    expect(planned.mode).toBe('plan');
    expect(planned.items.every((i: any) => i.outcome === 'planned' && i.outcomeClass === 'planned')).toBe(true);
    expect(planned.summary.outcomes.planned).toEqual({ label: 'planned', count: 2 });
    expect((await db.client.query(`SELECT count(*)::int AS n FROM purchase_executions WHERE status = 'running'`)).rows[0].n).toBe(2);
  });

  it('runCheck against the emulator and PostgreSQL, with a fixed clock: the report is stamped with the clock it was given', async () => {
    await seedStuck();
    emu.seedGroup('billing-orphan', {});
    emu.seedGroup('billing-ours', owner('billing-ours'));
    const fixed = Date.UTC(2030, 0, 2, 3, 4, 5);
    const { ctx, stdout, stderr } = context({ DATABASE_URL: db.url, ...awsEnv(emu) }, { scheduleGroups: { ownerTags: OWNER, ownerKeyPrefix: 'alchemy::' } }, { now: () => fixed }, 'prometheus');
    const code = await runCheck(ctx, checkOptions({ only: 'executions,schedule-groups' }));
    expect(stderr()).toBe('');
    expect(code).toBe(ExitCode.FINDINGS);
    expect(stdout()).toContain(`opsctl_check_last_run_timestamp_seconds ${Math.floor(fixed / 1000)}`);
    expect(stdout()).toContain(`opsctl_check_findings{check="stuck-executions"} 2`);
    expect(stdout()).toContain(`opsctl_check_findings{check="schedule-groups"} 1`);
  });

  it('an unexpected error (a bug, not a dependency) fails with one sentence and exit 4', async () => {
    const { ctx, stderr } = context({}, {}, {
      openDatabase: async () => {
        throw new TypeError("Cannot read properties of undefined (reading 'rows')");
      },
    });
    let code: number;
    try {
      code = await runStuck(ctx, stuckOptions({}));
    } catch (e) {
      code = ctx.fail(e);
    }
    expect(code).toBe(ExitCode.INTERNAL);
    expect(code).toBe(4);
    expect(stderr()).toBe("opsctl: unexpected error: Cannot read properties of undefined (reading 'rows') (re-run with --debug for details)\n");
  });

  it('check.thresholds accepts the registered checks\' keys only: a misspelt one is exit 2 naming the key', async () => {
    const { ctx } = context({ DATABASE_URL: db.url }, { check: { thresholds: { stuckExecution: 5 } } });
    await expect(ctx.config()).rejects.toThrow(/check\.thresholds\.stuckExecution: unknown key/);
    const ok = context({ DATABASE_URL: db.url }, { check: { thresholds: { stuckExecutions: 5 } } });
    expect((await ok.ctx.config()).check.thresholds).toMatchObject({ stuckExecutions: 5, deadLetters: 1, discardedJobs: 1 });
  });
});
