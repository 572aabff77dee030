import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SchedulerEmulator } from '../src/emulator/scheduler-emulator.js';
import { REFERENCE_SCHEMA_SQL } from '../src/reference/schema.js';
import { freshDatabase } from './support/db.js';
import { cli, type CliResult } from './support/cli.js';
import { awsEnv, emulator, owner, OWNER } from './support/aws.js';
import { SCHEDULER_SCHEMA_SQL } from './support/scheduler-schema.js';
import { resolve, validate, type Schema } from './support/json-schema.js';

// docs/schemas/*.schema.json against the real output of every kind of command: a real
// PostgreSQL with seeded rows, the Scheduler emulator, json and ndjson each.
const SCHEMAS = fileURLToPath(new URL('../docs/schemas/', import.meta.url));
const load = (name: string): Schema => JSON.parse(readFileSync(join(SCHEMAS, `${name}.schema.json`), 'utf8'));
const listing = load('listing');
const remediation = load('remediation-report');
const checkReport = load('check-report');
const show = load('show');
const planSchema = load('plan');
const runsSchema = load('runs');

let db: Awaited<ReturnType<typeof freshDatabase>>;
let emu: SchedulerEmulator;
let dir: string;
let cfg: string;
let env: NodeJS.ProcessEnv;
const q = (sql: string, params: unknown[] = []) => db.client.query(sql, params);

/** Rows every listing finds: stuck executions, dead and overdue propagations, a dead worker holding runs, expired locks. */
async function seed() {
  await q("INSERT INTO purchase_executions (status, updated_at) SELECT (ARRAY['approved','running'])[1 + i % 2], now() - make_interval(mins => 30 + i) FROM generate_series(1, 4) i");
  await q(
    `INSERT INTO pending_propagations (kind, team_id, attempts, last_error, failed_at, next_attempt_at, created_at)
     SELECT 'tier_elevation', gen_random_uuid(), 10, 'connection refused', now() - interval '5 minutes', now() - interval '1 hour', now() - interval '2 days' FROM generate_series(1, 3)`,
  );
  await q(
    `INSERT INTO pending_propagations (kind, team_id, attempts, last_error, next_attempt_at, created_at)
     SELECT 'quota_v2', gen_random_uuid(), 4, 'timeout', now() - interval '3 hours', now() - interval '1 day' FROM generate_series(1, 2)`,
  );
  await q("INSERT INTO scheduler.workers (id, host, last_heartbeat_at) VALUES ('w-alive', 'a.internal', now()), ('w-dead', 'b.internal', now() - interval '10 minutes') ON CONFLICT DO NOTHING");
  await q("INSERT INTO scheduler.runs (status, worker_id, started_at, updated_at) SELECT 'running', 'w-dead', now() - interval '30 minutes', now() - interval '30 minutes' FROM generate_series(1, 2)");
  await q(`INSERT INTO scheduler.locks (name, holder, acquired_at, expires_at) VALUES
    ('nightly-billing', 'w-alive', now() - interval '2 hours', now() - interval '1 hour'),
    ('hourly-sync', 'w-dead', now() - interval '5 minutes', now() + interval '1 hour') ON CONFLICT DO NOTHING`);
}

beforeAll(async () => {
  db = await freshDatabase('schemas', REFERENCE_SCHEMA_SQL + SCHEDULER_SCHEMA_SQL);
  emu = await emulator();
  emu.seedGroup('owned-a', { ...owner('owned-a'), team: 'payments' });
  emu.seedGroup('drifted', { ...owner('drifted'), team: 'wrong' });
  emu.seedGroup('theirs', { ...owner('theirs'), 'alchemy::stack': 'other' });
  dir = mkdtempSync(join(tmpdir(), 'opsctl-schemas-'));
  cfg = join(dir, 'opsctl.json');
  writeFileSync(
    cfg,
    JSON.stringify({
      actor: 'test-operator',
      audit: { table: 'audit_log' },
      scheduleGroups: { ownerTags: OWNER, ownerKeyPrefix: 'alchemy::', desiredTags: { team: 'payments' }, conflictRetries: 5, conflictDelay: '10ms' },
    }),
  );
  env = { DATABASE_URL: db.url, ...awsEnv(emu) };
  await seed();
});
afterAll(async () => {
  await emu?.close();
  await db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const run = (args: string[]) => cli(['--config', cfg, ...args], env);

/** Fails with every reason the value does not fit, so a failing run says which field and why. */
function expectValid(root: Schema, value: unknown, at = '#', what = ''): void {
  const errors = validate(root, value, resolve(root, at));
  expect(errors, `${what} against ${at}:\n${JSON.stringify(value).slice(0, 2000)}`).toEqual([]);
}

/** The real document passes; the mutated copy fails, naming the field. */
function rejects(root: Schema, doc: unknown, mutate: (d: any) => void, path: RegExp, at = '#'): void {
  expectValid(root, doc, at, 'the real document');
  const bad = structuredClone(doc);
  mutate(bad);
  const errors = validate(root, bad, resolve(root, at));
  expect(errors.join('\n')).toMatch(path);
}

/** The json document and every ndjson line of a result, each against its schema; returns the json document. */
async function checkBoth(root: Schema, args: string[], codes: number[] = [0], before?: (format: 'json' | 'ndjson') => Promise<void>): Promise<any> {
  await before?.('json');
  const json = await run([...args, '-o', 'json']);
  expectResult(json, codes, args);
  const doc = json.json();
  expectValid(root, doc, '#', `${args.join(' ')} -o json`);

  await before?.('ndjson');
  const nd = await run([...args, '-o', 'ndjson']);
  expectResult(nd, codes, args);
  const lines = nd.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
  expect(lines.at(-1).type).toBe('summary');
  for (const line of lines) expectValid(root, line, '#/$defs/ndjsonLine', `${args.join(' ')} -o ndjson`);
  // The dispatch a consumer makes (by "type"), each part against its own definition.
  expectValid(root, lines.at(-1), '#/$defs/summaryLine', `${args.join(' ')} -o ndjson summary line`);
  for (const line of lines.slice(0, -1)) expectValid(root, line, '#/$defs/item', `${args.join(' ')} -o ndjson item`);
  return doc;
}
function expectResult(r: CliResult, codes: number[], args: string[]): void {
  expect(codes, `${args.join(' ')} exited ${r.code}: ${r.stderr}`).toContain(r.code);
}

describe('listings (mode read) fit listing.schema.json', () => {
  it.each([
    [['executions', 'stuck', '--older-than', '10m']],
    [['propagations', 'dead-letters']],
    [['propagations', 'pending']],
    [['workers', 'dead']],
    [['locks', 'expired']],
    [['schedule-groups', 'list']],
  ])('%j', async (args) => {
    const doc = await checkBoth(listing, args);
    expect(doc.mode).toBe('read');
    expect(doc.items.length, 'the seed gives every listing something to list').toBeGreaterThan(0);
  });
});

describe('remedies (plan and apply) fit remediation-report.schema.json', () => {
  it('reap: dry run, then --apply --yes (fresh rows before each format)', async () => {
    const plan = await checkBoth(remediation, ['reap', '--older-than', '10m']);
    expect(plan.mode).toBe('plan');
    expect(plan.items.map((i: any) => i.outcomeClass)).toContain('planned');
    const apply = await checkBoth(remediation, ['reap', '--older-than', '10m', '--apply', '--yes'], [0], seed);
    expect(apply.mode).toBe('apply');
    expect(apply.items.map((i: any) => i.outcomeClass)).toContain('applied');
    expect(apply.summary.outcomes.applied.count).toBeGreaterThan(0);
  });

  it('propagations retry: dry run and --apply --yes', async () => {
    const plan = await checkBoth(remediation, ['propagations', 'retry', '--kind', 'tier_elevation']);
    expect(plan.items.length).toBeGreaterThan(0);
    const apply = await checkBoth(remediation, ['propagations', 'retry', '--kind', 'tier_elevation', '--apply', '--yes'], [0], seed);
    expect(apply.items.map((i: any) => i.outcomeClass)).toContain('applied');
  });

  it('adopt schedule-group (emulator): dry run and --apply --yes, a refused group among them', async () => {
    const plan = await checkBoth(remediation, ['adopt', 'schedule-group', '--all-unowned'], [0], async (f) => emu.seedGroup(`bare-plan-${f}`));
    expect(plan.items.length).toBeGreaterThan(0);
    const apply = await checkBoth(remediation, ['adopt', 'schedule-group', '--all-unowned', '--apply', '--yes'], [0], async (f) => emu.seedGroup(`bare-${f}`));
    expect(apply.items.map((i: any) => i.outcome)).toContain('adopted');
    // A named group of another owner: refused, with its detail (exit 1).
    const refused = await checkBoth(remediation, ['adopt', 'schedule-group', 'theirs', '--apply', '--yes'], [1]);
    expect(refused.items[0].outcomeClass).toBe('refused');
  });
});

describe('check fits check-report.schema.json', () => {
  it('database and schedule-group checks, with findings (exit 1)', async () => {
    await seed();
    const doc = await checkBoth(checkReport, ['check'], [1]);
    expect(doc.summary.status).toBe('findings');
    expect(doc.items.map((i: any) => i.status)).toContain('finding');
  });
  it('--all-targets: items name their target and region; a down target is unknown (exit 3)', async () => {
    const fleet = join(dir, 'fleet.json');
    writeFileSync(
      fleet,
      JSON.stringify({
        scheduleGroups: { ownerTags: OWNER, ownerKeyPrefix: 'alchemy::', desiredTags: { team: 'payments' } },
        targets: {
          one: { database: { urlEnv: 'ONE_URL' }, aws: { regions: ['us-east-1'], endpoints: { 'us-east-1': emu.url } } },
          down: { database: { host: '127.0.0.1', port: 1, user: 'nobody', dbname: 'nothing' } },
        },
      }),
    );
    const fleetEnv = { ...awsEnv(emu), AWS_ENDPOINT_URL_SCHEDULER: '', ONE_URL: db.url };
    const json = await cli(['--config', fleet, 'check', '--all-targets', '-o', 'json'], fleetEnv);
    expect(json.code, json.stderr).toBe(3);
    const doc = json.json();
    expectValid(checkReport, doc, '#', 'check --all-targets -o json');
    expect(new Set(doc.items.map((i: any) => i.target))).toEqual(new Set(['one', 'down']));
    expect(doc.items.some((i: any) => i.region === 'us-east-1')).toBe(true);
    const nd = await cli(['--config', fleet, 'check', '--all-targets', '-o', 'ndjson'], fleetEnv);
    for (const line of nd.stdout.trimEnd().split('\n')) expectValid(checkReport, JSON.parse(line), '#/$defs/ndjsonLine', 'check --all-targets -o ndjson');
    // A remedy on targets: the single-target item plus its target, the counts summed.
    await seed();
    const reap = await cli(['--config', fleet, 'reap', '--older-than', '10m', '--target', 'one', '-o', 'json'], fleetEnv);
    expect(reap.code, reap.stderr).toBe(0);
    expect(reap.json().items.length).toBeGreaterThan(0);
    expect(reap.json().items[0].target).toBe('one');
    expectValid(remediation, reap.json(), '#', 'reap --target one -o json');
    expect(reap.json().summary.byTarget.one.outcomes.planned.count).toBeGreaterThan(0);
    rejects(remediation, reap.json(), (d) => delete d.summary.byTarget.one.exitCode, /^\/summary\/byTarget\/one: "exitCode" is required/);
  });
  it('a check that cannot run (unknown, with its error)', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ propagations: { table: 'no_such_outbox' } }));
    const json = await cli(['--config', bad, 'check', '--only', 'propagations', '-o', 'json'], env);
    expect(json.code).toBe(3);
    const doc = json.json();
    expect(doc.summary.status).toBe('unknown');
    expectValid(checkReport, doc, '#', 'check (unknown)');
  });
});

describe('runs, runs show and revert fit runs.schema.json and remediation-report.schema.json', () => {
  it('after a reap: the run listed, shown with its before/after, and its revert planned and applied', async () => {
    await seed();
    const reap = await run(['reap', '--older-than', '10m', '--apply', '--yes', '-o', 'json']);
    expect(reap.code, reap.stderr).toBe(0);
    const runId = reap.json().summary.runId;
    const list = await checkBoth(runsSchema, ['runs']);
    expect(list.items.map((r: any) => r.runId)).toContain(runId);
    rejects(runsSchema, list, (d) => delete d.items[0].recorded, /"recorded" is required/);
    const one = await checkBoth(runsSchema, ['runs', 'show', runId]);
    expect(one.items.length).toBeGreaterThan(0);
    expect(one.items[0].before).toBeTypeOf('object');
    const plan = await checkBoth(remediation, ['revert', runId]);
    expect(plan.mode).toBe('plan');
    const apply = await run(['revert', runId, '--apply', '--yes', '-o', 'json']);
    expect(apply.code, apply.stderr).toBe(0);
    expectValid(remediation, apply.json(), '#', 'revert --apply -o json');
    expect(apply.json().summary.outcomes.applied.count).toBeGreaterThan(0);
  });
});

describe('show fits show.schema.json', () => {
  it('executions show ID after a reap: the item and its audit row (json, ndjson)', async () => {
    const id = (await q("INSERT INTO purchase_executions (status, updated_at) VALUES ('running', now() - interval '2 hours') RETURNING id::text")).rows[0].id as string;
    expect((await run(['reap', '--older-than', '1h', '--apply', '--yes', '--reason', 'INC-30'])).code).toBe(0);
    const json = await run(['executions', 'show', id, '-o', 'json']);
    expect(json.code).toBe(0);
    const doc = json.json();
    expect(doc.audit.length).toBeGreaterThan(0);
    expectValid(show, doc, '#', 'executions show -o json');
    const nd = await run(['executions', 'show', id, '-o', 'ndjson']);
    expect(nd.code).toBe(0);
    expect(nd.stdout.trimEnd().split('\n')).toHaveLength(1);
    expectValid(show, JSON.parse(nd.stdout), '#', 'executions show -o ndjson');
  });
});

describe('schedule-groups show fits show.schema.json, with its journal', () => {
  it('after adopt --apply without an audit table: the journal line (json, ndjson)', async () => {
    const journalCfg = join(dir, 'journal.json');
    writeFileSync(journalCfg, JSON.stringify({ scheduleGroups: { ownerTags: OWNER, ownerKeyPrefix: 'alchemy::', desiredTags: { team: 'payments' } } }));
    emu.seedGroup('show-journal', { env: 'prod' });
    const awsOnly = awsEnv(emu);
    expect((await cli(['--config', journalCfg, 'adopt', 'schedule-group', 'show-journal', '--apply', '--yes', '--reason', 'INC-30'], awsOnly)).code).toBe(0);
    const json = await cli(['--config', journalCfg, 'schedule-groups', 'show', 'show-journal', '-o', 'json'], awsOnly);
    expect(json.code, json.stderr).toBe(0);
    const doc = json.json();
    expect(doc.journal.length).toBeGreaterThan(0);
    expectValid(show, doc, '#', 'schedule-groups show -o json');
    rejects(show, doc, (d) => (d.journal[0].at = null), /^\/journal\/0\/at: null is not of type string/);
    const nd = await cli(['--config', journalCfg, 'schedule-groups', 'show', 'show-journal', '-o', 'ndjson'], awsOnly);
    expect(nd.stdout.trimEnd().split('\n')).toHaveLength(1);
    expectValid(show, JSON.parse(nd.stdout), '#', 'schedule-groups show -o ndjson');
  });
});

describe('the validator rejects what a schema does not allow (one mutated real document per schema)', () => {
  it('listing: a mode other than read; an ndjson summary line without its summary', async () => {
    const r = await run(['executions', 'stuck', '--older-than', '10m', '-o', 'json']);
    rejects(listing, r.json(), (d) => (d.mode = 'plan'), /^\/mode: must be "read"/);
    rejects(listing, r.json(), (d) => delete d.items, /^\/: "items" is required/);
    const nd = (await run(['executions', 'stuck', '--older-than', '10m', '-o', 'ndjson'])).stdout.trimEnd().split('\n');
    rejects(listing, JSON.parse(nd.at(-1) as string), (d) => delete d.summary, /"summary" is required/, '#/$defs/ndjsonLine');
  });

  it('remediation report: an outcomeClass outside the classes; an item without its outcome; a count that is not a count', async () => {
    await seed();
    const doc = (await run(['reap', '--older-than', '10m', '-o', 'json'])).json();
    expect(doc.items.length).toBeGreaterThan(0);
    rejects(remediation, doc, (d) => (d.items[0].outcomeClass = 'reaped'), /^\/items\/0\/outcomeClass: "reaped" is not one of/);
    rejects(remediation, doc, (d) => delete d.items[0].outcome, /^\/items\/0: "outcome" is required/);
    rejects(remediation, doc, (d) => (d.summary.outcomes.planned.count = '3'), /^\/summary\/outcomes\/planned\/count: "3" is not of type integer/);
    rejects(remediation, doc, (d) => (d.summary.outcomes.reaped = { label: 'reaped', count: 1 }), /^\/summary\/outcomes\/reaped: no value is allowed here/);
    rejects(remediation, doc, (d) => (d.mode = 'read'), /^\/mode: "read" is not one of/);
  });

  it('check report: a status outside ok/finding/unknown/skipped; a summary status outside clean/findings/unknown; a missing durationMs', async () => {
    const doc = (await run(['check', '-o', 'json'])).json();
    rejects(checkReport, doc, (d) => (d.items[0].status = 'fine'), /^\/items\/0\/status: "fine" is not one of/);
    rejects(checkReport, doc, (d) => (d.summary.status = 'ok'), /^\/summary\/status: "ok" is not one of/);
    rejects(checkReport, doc, (d) => delete d.items[0].durationMs, /^\/items\/0: "durationMs" is required/);
  });

  it('show: an audit row without its kind; a key beside item and audit', async () => {
    const id = (await q("SELECT resource_id FROM audit_log WHERE resource_type = 'purchase_executions' LIMIT 1")).rows[0].resource_id as string;
    const doc = (await run(['executions', 'show', id, '-o', 'json'])).json();
    expect(doc.audit.length).toBeGreaterThan(0);
    rejects(show, doc, (d) => delete d.audit[0].kind, /^\/audit\/0: "kind" is required/);
    rejects(show, doc, (d) => (d.summary = {}), /^\/summary: no value is allowed here/);
  });

  it('every schema in docs/schemas is one of those validated here, and ships in the package', () => {
    expect(readdirSync(SCHEMAS).filter((f) => f.endsWith('.json')).sort()).toEqual(['check-report.schema.json', 'listing.schema.json', 'plan.schema.json', 'remediation-report.schema.json', 'runs.schema.json', 'show.schema.json']);
    const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8'));
    expect(pkg.files).toContain('docs/schemas');
  });

  it('a keyword the validator does not know is an error, never ignored', () => {
    expect(() => validate({ type: 'string', pattern: '^a' }, 'b')).toThrow(/keyword "pattern"/);
    expect(() => validate({ $ref: 'other.json#/x' }, 1)).toThrow(/same-document/);
  });
});

describe('plan files fit plan.schema.json; apply FILE fits remediation-report.schema.json', () => {
  it('reap and adopt schedule-group: --plan-out files, then apply FILE --yes (json, ndjson)', async () => {
    await seed();
    const reapPlan = join(dir, 'reap-plan.json');
    const dry = await run(['reap', '--older-than', '10m', '--plan-out', reapPlan]);
    expect(dry.code, dry.stderr).toBe(0);
    expectValid(planSchema, JSON.parse(readFileSync(reapPlan, 'utf8')), '#', 'reap --plan-out');
    const adoptPlan = join(dir, 'adopt-plan.json');
    emu.seedGroup('plan-unowned', {});
    expect((await run(['adopt', 'schedule-group', 'plan-unowned', 'owned-a', '--plan-out', adoptPlan])).code).toBe(0);
    expectValid(planSchema, JSON.parse(readFileSync(adoptPlan, 'utf8')), '#', 'adopt --plan-out');
    const applied = await run(['apply', reapPlan, '--yes', '-o', 'json']);
    expect(applied.code, applied.stderr).toBe(0);
    expectValid(remediation, applied.json(), '#', 'apply FILE -o json');
    const nd = await run(['apply', adoptPlan, '--yes', '-o', 'ndjson']);
    for (const line of nd.stdout.trimEnd().split('\n')) expectValid(remediation, JSON.parse(line), '#/$defs/ndjsonLine', 'apply FILE -o ndjson');
  });

  it('the validator rejects a plan without its digest, and an identity of another kind', async () => {
    const file = join(dir, 'reap-plan.json');
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    rejects(planSchema, doc, (d) => delete d.digest, /"digest" is required/);
    rejects(planSchema, doc, (d) => (d.targets[0].identity = { kind: 'sqlite', file: 'x' }), /identity/);
  });
});
