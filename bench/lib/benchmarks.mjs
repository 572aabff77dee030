// The five benchmarks. Each returns result rows: a baseline and opsctl measured in the same run,
// both summarized (median/min/max of the measured runs after a warm-up), and their ratio.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, ROOT, check, countLines, fmtInt, lastLine, log, rounds, summarize, timeAsync, timeSync } from './util.mjs';
import { PSQL, seedListing, seedMemory } from './postgres.mjs';

const NODE = process.execPath;

/** A clean environment for the children: no config file, no PG* or OPSCTL_* from the caller. */
export function childEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(PG|OPSCTL_|DATABASE_URL$|AWS_|NODE_OPTIONS$)/.test(k)) continue;
    env[k] = v;
  }
  return { ...env, NO_COLOR: '1', ...extra };
}

function row({ id, benchmark, unit, baseline, opsctl, direction = 'lower', target, notes }) {
  const b = summarize(baseline.samples);
  const o = summarize(opsctl.samples);
  // "lower": opsctl / baseline must stay under the target; "speedup": baseline / opsctl must reach it.
  const ratio = direction === 'speedup' ? b.median / o.median : o.median / b.median;
  const met = direction === 'speedup' ? ratio >= target : ratio <= target;
  return {
    id,
    benchmark,
    unit,
    baseline: { label: baseline.label, ...b },
    opsctl: { label: opsctl.label, ...o },
    ratio,
    ratioOf: direction === 'speedup' ? 'baseline median / opsctl median (speed-up)' : 'opsctl median / baseline median',
    target: { text: direction === 'speedup' ? `≥ ${target}×` : `≤ ${target}×`, value: target, direction },
    met,
    ...(notes ? { notes } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// 1. Start-up
// ---------------------------------------------------------------------------------------------

export async function benchStartup({ runs, warmup, workDir }) {
  const n = Math.max(runs * 6, 30);
  const env = childEnv();
  const opts = { env, cwd: workDir };
  const contenders = [
    { key: 'node', args: ['-e', '0'] },
    { key: 'version', args: [BIN, '--version'], expect: (r) => r.stdout.trim() === JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version },
    { key: 'help', args: [BIN, '--help'], expect: (r) => r.stdout.includes('Usage: opsctl') },
  ].map((c) => ({
    key: c.key,
    run: () => {
      const r = timeSync(NODE, c.args, opts);
      check(r.status === 0, `node ${c.args.join(' ')} exited ${r.status}: ${r.stderr}`);
      if (c.expect) check(c.expect(r), `unexpected output of node ${c.args.join(' ')}: ${r.stdout.slice(0, 200)}`);
      return { value: r.ms };
    },
  }));
  log(`start-up: ${n} runs each of node -e 0, opsctl --version, opsctl --help (spawnSync wall time)`);
  const { samples } = await rounds({ runs: n, warmup: Math.max(warmup, 3), contenders });

  // Where the time goes: each step adds one layer of what `opsctl --version` loads.
  const steps = [
    { key: 'esm-empty', label: 'node --input-type=module -e ""', args: ['--input-type=module', '-e', ''] },
    { key: 'commander', label: "+ import('commander')", args: ['--input-type=module', '-e', `await import(${JSON.stringify(join(ROOT, 'node_modules/commander/index.js'))})`] },
    { key: 'cli-module', label: "+ import('dist/cli.js') (opsctl's start-up modules)", args: ['--input-type=module', '-e', `await import(${JSON.stringify(join(ROOT, 'dist/cli.js'))})`] },
    {
      key: 'build-program',
      label: '+ buildProgram() (commander tree, no parse)',
      args: ['--input-type=module', '-e', `const m = await import(${JSON.stringify(join(ROOT, 'dist/cli.js'))}); await m.buildProgram({stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, cwd: process.cwd()}, () => {});`],
    },
  ];
  log('start-up: breakdown (informational)');
  let bd;
  try {
    bd = await rounds({
    runs: Math.max(runs * 4, 20),
    warmup: 2,
    contenders: steps.map((s) => ({
      key: s.key,
      run: () => {
        const r = timeSync(NODE, s.args, opts);
        check(r.status === 0, `${s.label} exited ${r.status}: ${r.stderr}`);
        return { value: r.ms };
      },
    })),
    });
  } catch (e) {
    log(`start-up breakdown failed (informational only): ${e.message}`);
  }
  const breakdown = bd
    ? [
        ...steps.map((s) => ({ step: s.label, command: `node ${s.args.map((a) => (/\s|["'(]/.test(a) ? JSON.stringify(a) : a)).join(' ')}`, ...summarize(bd.samples[s.key]) })),
        { step: 'node bin/opsctl.cjs --version (launcher, parse, print)', ...summarize(samples.version) },
      ]
    : undefined;

  const base = { label: 'node -e 0', samples: samples.node };
  return [
    row({ id: 'startup-version', benchmark: 'start-up: opsctl --version', unit: 'ms', baseline: base, opsctl: { label: 'node bin/opsctl.cjs --version', samples: samples.version }, target: 1.3, ...(breakdown ? { notes: { breakdown } } : {}) }),
    row({ id: 'startup-help', benchmark: 'start-up: opsctl --help', unit: 'ms', baseline: base, opsctl: { label: 'node bin/opsctl.cjs --help', samples: samples.help }, target: 1.3 }),
  ];
}

// ---------------------------------------------------------------------------------------------
// 2. Bulk listing
// ---------------------------------------------------------------------------------------------

export const STUCK_JSON_SQL = `COPY (SELECT row_to_json(t) FROM (SELECT id, status, updated_at, extract(epoch from now()-updated_at) AS age FROM purchase_executions WHERE status IN ('approved','running') AND updated_at < now() - interval '10 minutes' ORDER BY updated_at, id) t) TO STDOUT`;

/** Seeds (once) the listing/reap database; shared by the listing and reap benchmarks. */
export async function ensureListingData(ctx) {
  if (ctx.listing) return ctx.listing;
  log(`seeding the listing table: ${fmtInt(ctx.rows)} rows (one INSERT … SELECT generate_series)`);
  const stuck = await seedListing(ctx.pg, 'seeded', ctx.rows);
  const plan = await ctx.pg.withClient('seeded', async (c) => {
    // The CLI's own query, built by the CLI's own code with the default config.
    const { stuckSql } = await import(new URL('../../dist/checks/stuck-executions.js', import.meta.url).href);
    const { defaultConfig } = await import(new URL('../../dist/config.js', import.meta.url).href);
    const q = stuckSql(defaultConfig().executions, 0);
    const explain = async (prefix) => (await c.query(`${prefix} ${q}`, [['approved', 'running'], 600])).rows.map((r) => r['QUERY PLAN']).join('\n');
    return { analyze: await explain('EXPLAIN (ANALYZE, BUFFERS, TIMING OFF)') };
  });
  ctx.listing = { stuck, plan };
  return ctx.listing;
}

export async function benchListing(ctx) {
  const { runs, warmup, pg, workDir } = ctx;
  const { stuck, plan } = await ensureListingData(ctx);
  const env = childEnv({ DATABASE_URL: pg.url('seeded') });
  const psqlOut = join(workDir, 'listing-psql.out');
  const opsOut = join(workDir, 'listing-opsctl.ndjson');
  const counts = { psql: [], opsctl: [] };
  log(`listing: ${fmtInt(stuck)} stuck rows; ${runs} runs each after ${warmup} warm-up`);
  const { samples } = await rounds({
    runs,
    warmup,
    contenders: [
      {
        key: 'psql',
        run: async () => {
          const r = await timeAsync(PSQL, [pg.url('seeded'), '-Atc', STUCK_JSON_SQL], { env, stdoutFile: psqlOut, cwd: workDir });
          check(r.status === 0, `psql exited ${r.status}: ${r.stderr}`);
          const n = await countLines(psqlOut);
          check(n === stuck, `psql printed ${n} rows, expected ${stuck}`);
          counts.psql.push(n);
          return { value: r.ms };
        },
      },
      {
        key: 'opsctl',
        run: async () => {
          const r = await timeAsync(NODE, [BIN, 'executions', 'stuck', '--limit', '0', '-o', 'ndjson', '--older-than', '10m'], { env, stdoutFile: opsOut, cwd: workDir });
          check(r.status === 0, `opsctl executions stuck exited ${r.status}: ${r.stderr}`);
          const n = (await countLines(opsOut)) - 1; // minus the summary line
          const summary = JSON.parse(lastLine(opsOut));
          check(n === stuck && summary.summary?.stuck === stuck, `opsctl printed ${n} rows (summary says ${summary.summary?.stuck}), expected ${stuck}`);
          counts.opsctl.push(n);
          return { value: r.ms };
        },
      },
    ],
  });
  return [
    row({
      id: 'listing',
      benchmark: `bulk listing: ${fmtInt(stuck)} stuck of ${fmtInt(ctx.rows)}`,
      unit: 'ms',
      baseline: { label: 'psql -Atc "COPY (… row_to_json …) TO STDOUT"', samples: samples.psql },
      opsctl: { label: 'opsctl executions stuck --limit 0 -o ndjson --older-than 10m', samples: samples.opsctl },
      target: 1.5,
      notes: { stuckRows: stuck, tableRows: ctx.rows, rowsPrinted: { psql: counts.psql[0], opsctl: counts.opsctl[0] }, sameRowCount: counts.psql.every((n) => n === stuck) && counts.opsctl.every((n) => n === stuck), explainAnalyze: plan.analyze },
    }),
  ];
}

// ---------------------------------------------------------------------------------------------
// 3. Reap throughput
// ---------------------------------------------------------------------------------------------

export async function benchReap(ctx) {
  const { runs, warmup, pg, workDir } = ctx;
  const { stuck } = await ensureListingData(ctx);
  const reason = `'reaped after 10m in ' || status || ' state — executor did not complete'`;
  const updateSql = `UPDATE purchase_executions SET status = 'failed', error = ${reason}, updated_at = now(), transitioned_at = now() WHERE status IN ('approved','running') AND updated_at < now() - interval '10 minutes'`;
  let copyNo = 0;
  // A fresh identical copy for every run: reap changes the data.
  const withCopy = async (fn) => {
    const db = `reap_copy_${++copyNo}`;
    await pg.sql('postgres', `CREATE DATABASE ${db} TEMPLATE seeded STRATEGY FILE_COPY`);
    try {
      const out = await fn(db);
      const [{ left, failed }] = await pg.sql(
        db,
        `SELECT count(*) FILTER (WHERE status IN ('approved','running') AND updated_at < now() - interval '10 minutes')::int AS left,
                count(*) FILTER (WHERE status = 'failed' AND error LIKE 'reaped after 10m%')::int AS failed FROM purchase_executions`,
      );
      check(left === 0 && failed === stuck, `after the run ${left} rows are still stuck and ${failed} were reaped (expected 0 and ${stuck})`);
      return out;
    } finally {
      await pg.sql('postgres', `DROP DATABASE ${db}`);
    }
  };
  const summaries = [];
  log(`reap: ${fmtInt(stuck)} stuck rows; ${runs} runs each after ${warmup} warm-up, a fresh database copy per run`);
  const { samples } = await rounds({
    runs,
    warmup,
    contenders: [
      {
        key: 'psql',
        run: () =>
          withCopy(async (db) => {
            const out = join(workDir, 'reap-psql.out');
            const r = await timeAsync(PSQL, [pg.url(db), '-Atc', updateSql], { env: childEnv(), stdoutFile: out, cwd: workDir });
            check(r.status === 0, `psql UPDATE exited ${r.status}: ${r.stderr}`);
            const tag = readFileSync(out, 'utf8').trim();
            check(tag === `UPDATE ${stuck}`, `psql said "${tag}", expected "UPDATE ${stuck}"`);
            return { value: r.ms };
          }),
      },
      {
        key: 'opsctl',
        run: (i) =>
          withCopy(async (db) => {
            const out = join(workDir, 'reap-opsctl.json');
            const r = await timeAsync(NODE, [BIN, 'reap', '--apply', '--max', '0', '--yes', '-o', 'json', '--older-than', '10m'], {
              env: childEnv({ DATABASE_URL: pg.url(db) }),
              stdoutFile: out,
              cwd: workDir,
            });
            check(r.status === 0, `opsctl reap exited ${r.status}: ${r.stderr}`);
            const report = JSON.parse(readFileSync(out, 'utf8'));
            const s = report.summary;
            check(s.reaped === stuck && report.items.length === stuck, `opsctl reaped ${s.reaped} of ${report.items.length} planned, expected ${stuck}`);
            if (i >= 0) summaries.push(s);
            return { value: r.ms };
          }),
      },
    ],
  });
  const longest = summaries.map((s) => s.longestBatchMs);
  const result = row({
    id: 'reap',
    benchmark: `reap throughput: ${fmtInt(stuck)} rows`,
    unit: 'ms',
    baseline: { label: 'psql -c "UPDATE … WHERE status IN (…) AND updated_at < …"', samples: samples.psql },
    opsctl: { label: 'opsctl reap --apply --max 0 --yes -o json --older-than 10m', samples: samples.opsctl },
    target: 2,
    notes: {
      rows: stuck,
      batches: summaries[0]?.batches,
      batchSize: 500,
      rowsPerSecond: { psql: Math.round(stuck / (summarize(samples.psql).median / 1000)), opsctl: Math.round(stuck / (summarize(samples.opsctl).median / 1000)) },
      summaries,
    },
  });
  const lb = summarize(longest);
  return [
    result,
    {
      id: 'reap-longest-batch',
      benchmark: 'reap: longest batch (row locks held)',
      unit: 'ms',
      baseline: { label: 'one UPDATE holds every row lock for its whole run', ...summarize(samples.psql) },
      opsctl: { label: 'longestBatchMs of the reap summary', ...lb },
      ratio: null,
      ratioOf: 'absolute: the longest batch transaction of each run',
      target: { text: '≤ 1000 ms', value: 1000, direction: 'absolute' },
      met: lb.max <= 1000,
      notes: { batches: summaries[0]?.batches, longestBatchMsPerRun: longest },
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// 5. Memory
// ---------------------------------------------------------------------------------------------

export async function benchMemory(ctx) {
  const { runs, warmup, pg, workDir, rows } = ctx;
  check(existsSync('/usr/bin/time'), 'memory: /usr/bin/time (GNU time) is missing: apt-get install time');
  log(`seeding the memory table: ${fmtInt(rows)} rows, all stuck`);
  const { small, large } = await seedMemory(pg, 'memdb', rows);
  check(large === rows, `memory table: ${large} stuck rows, expected ${rows}`);
  const env = childEnv({ DATABASE_URL: pg.url('memdb') });
  const wall = { small: [], large: [] };
  const measure = (key, olderThan, expected) => async (i) => {
    const out = join(workDir, `memory-${key}.ndjson`);
    const rss = join(workDir, `memory-${key}.time`);
    const r = await timeAsync('/usr/bin/time', ['-f', '%M %e', '-o', rss, NODE, BIN, 'executions', 'stuck', '--limit', '0', '-o', 'ndjson', '--older-than', olderThan], { env, stdoutFile: out, cwd: workDir });
    check(r.status === 0, `opsctl executions stuck --older-than ${olderThan} exited ${r.status}: ${r.stderr}`);
    const n = (await countLines(out)) - 1;
    check(n === expected, `listed ${n} rows, expected ${expected}`);
    const [kib] = readFileSync(rss, 'utf8').trim().split('\n').pop().split(/\s+/).map(Number);
    if (i >= 0) wall[key].push(r.ms);
    return { value: kib };
  };
  log(`memory: peak RSS of ${fmtInt(small)} vs ${fmtInt(large)} rows listed; ${runs} runs each after ${warmup} warm-up`);
  const { samples } = await rounds({
    runs,
    warmup,
    contenders: [
      { key: 'small', run: measure('small', '50d', small) },
      { key: 'large', run: measure('large', '10m', large) },
    ],
  });
  return [
    row({
      id: 'memory',
      benchmark: `memory: peak RSS, ${fmtInt(large)} vs ${fmtInt(small)} rows`,
      unit: 'KiB',
      baseline: { label: `opsctl executions stuck --limit 0 -o ndjson --older-than 50d (${fmtInt(small)} rows)`, samples: samples.small },
      opsctl: { label: `opsctl executions stuck --limit 0 -o ndjson --older-than 10m (${fmtInt(large)} rows)`, samples: samples.large },
      target: 1.2,
      notes: {
        how: 'peak RSS (max resident set, KiB) of the opsctl child from /usr/bin/time -f %M (getrusage of the waited child)',
        rows: { small, large },
        wallMs: { small: summarize(wall.small), large: summarize(wall.large) },
      },
    }),
  ];
}

// ---------------------------------------------------------------------------------------------
// 4. Schedule groups
// ---------------------------------------------------------------------------------------------

/** The command may not exist yet: `opsctl <unknown> --help` prints the root help with exit 0, so look for its own usage line. */
export function scheduleGroupsAvailable(workDir) {
  const r = timeSync(NODE, [BIN, 'schedule-groups', '--help'], { env: childEnv(), cwd: workDir });
  return r.status === 0 && /Usage: opsctl schedule-groups\b/.test(r.stdout);
}

const TEAMS = ['payments', 'search', 'growth', 'identity', 'billing', 'platform', 'data'];
const ENVS = ['prod', 'staging', 'dev'];

function groupTags(i) {
  if (i % 10 === 0) return {}; // never tagged (10%): the Tagging API's GetResources does not return these
  const tags = { team: TEAMS[i % TEAMS.length], env: ENVS[i % ENVS.length] };
  if (i % 3 === 0) tags.owner = `oncall-${TEAMS[(i * 7) % TEAMS.length]}`;
  if (i % 7 === 0) tags['cost-center'] = `cc-${1000 + (i % 50)}`;
  if (i % 25 === 0) for (let k = 0; k < 20; k++) tags[`label-${k}`] = `value-${i}-${k}`; // a few heavily tagged
  if (i % 50 === 5) tags['aws:cloudformation:stack-name'] = `stack-${i}`;
  return tags;
}

export async function benchScheduleGroups(ctx) {
  const { runs, warmup, workDir, groups, latencyMs } = ctx;
  if (!scheduleGroupsAvailable(workDir)) {
    log('skipped: schedule-groups command not available');
    return [{ id: 'schedule-groups', benchmark: 'schedule groups', skipped: 'schedule-groups command not available' }];
  }
  const { startSchedulerEmulator } = await import(new URL('../../dist/emulator/scheduler-emulator.js', import.meta.url).href);
  const emu = await startSchedulerEmulator({ maxGroups: groups + 10 });
  try {
    for (let i = 1; i <= groups; i++) emu.seedGroup(`bench-group-${String(i).padStart(5, '0')}`, groupTags(i));
    const total = emu.groups().length; // includes `default`
    emu.setLatency(latencyMs);
    const env = childEnv({
      AWS_ENDPOINT_URL_SCHEDULER: emu.url,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'AKIDBENCH',
      AWS_SECRET_ACCESS_KEY: 'benchsecret',
      AWS_EC2_METADATA_DISABLED: 'true',
    });
    const calls = { baseline: [], opsctl: [], tagging: [] };
    const neverTagged = emu.groups().filter((g) => Object.keys(g.tags).length === 0).length; // seeded untagged: never tagged
    // The third contender: the same command with scheduleGroups.tagSource "tagging-api".
    const taggingConfig = join(workDir, 'sg-tagging-api.json');
    writeFileSync(taggingConfig, JSON.stringify({ scheduleGroups: { tagSource: 'tagging-api' } }));
    const countItems = (s) => {
      try {
        const items = JSON.parse(s).items;
        return Array.isArray(items) ? items.length : undefined;
      } catch {
        return undefined;
      }
    };
    const measure = (key, args, count) => async (i) => {
      const out = join(workDir, `sg-${key}.json`);
      emu.resetCallCounts();
      const r = await timeAsync(NODE, args, { env, stdoutFile: out, cwd: workDir });
      check(r.status === 0, `${key} exited ${r.status}: ${r.stderr.slice(0, 2000)}`);
      const c = emu.callCounts();
      const seen = count(readFileSync(out, 'utf8'));
      check(seen === undefined || seen === total, `${key} reported ${seen} groups, expected ${total}`);
      if (i >= 0) calls[key].push({ total: Object.values(c).reduce((a, b) => a + b, 0), byOperation: c, groupsSeen: seen });
      return { value: r.ms };
    };
    log(`schedule groups: ${fmtInt(total)} groups, ${latencyMs} ms latency per call; ${runs} runs each after ${warmup} warm-up`);
    const { samples } = await rounds({
      runs,
      warmup,
      contenders: [
        { key: 'baseline', run: measure('baseline', [join(ROOT, 'bench/lib/sg-baseline.mjs')], (s) => JSON.parse(s).groups) },
        { key: 'opsctl', run: measure('opsctl', [BIN, 'schedule-groups', '-o', 'json'], countItems) },
        { key: 'tagging', run: measure('tagging', [BIN, '--config', taggingConfig, 'schedule-groups', '-o', 'json'], countItems) },
      ],
    });
    const baselineLabel = 'SDK loop: ListScheduleGroups (100/page), then ListTagsForResource one group at a time';
    return [
      row({
        id: 'schedule-groups',
        benchmark: `schedule groups: ${fmtInt(total)} groups, ${latencyMs} ms/call`,
        unit: 'ms',
        baseline: { label: baselineLabel, samples: samples.baseline },
        opsctl: { label: 'opsctl schedule-groups -o json (tagSource per-group, concurrency 8)', samples: samples.opsctl },
        direction: 'speedup',
        target: 10,
        notes: { groups: total, neverTagged, latencyMs, apiCalls: { baseline: calls.baseline[0], opsctl: calls.opsctl[0] }, apiCallsPerRun: { baseline: calls.baseline, opsctl: calls.opsctl } },
      }),
      row({
        id: 'schedule-groups-tagging-api',
        benchmark: `schedule groups (tagging-api): ${fmtInt(total)} groups, ${fmtInt(neverTagged)} never tagged, ${latencyMs} ms/call`,
        unit: 'ms',
        baseline: { label: baselineLabel, samples: samples.baseline },
        opsctl: { label: 'opsctl (tagging-api): schedule-groups -o json with scheduleGroups.tagSource "tagging-api"', samples: samples.tagging },
        direction: 'speedup',
        target: 10,
        notes: { groups: total, neverTagged, latencyMs, apiCalls: { baseline: calls.baseline[0], opsctl: calls.tagging[0] }, apiCallsPerRun: { baseline: calls.baseline, opsctl: calls.tagging } },
      }),
    ];
  } finally {
    await emu.close();
  }
}
