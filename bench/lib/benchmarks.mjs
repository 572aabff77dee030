// The five benchmarks. Each returns result rows: a baseline and opsctl measured in the same run,
// both summarized (median/min/max of the measured runs after a warm-up), and their ratio.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, ROOT, check, countLines, fmtInt, lastLine, log, rounds, summarize, timeAsync, timeSync } from './util.mjs';
import { PSQL, bulkReapAuditSql, bulkReapSql, seedSized } from './postgres.mjs';

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
  // target null: informational (shown beside the others, no goal).
  const met = target === null ? null : direction === 'speedup' ? ratio >= target : ratio <= target;
  return {
    id,
    benchmark,
    unit,
    baseline: { label: baseline.label, ...b },
    opsctl: { label: opsctl.label, ...o },
    ratio,
    ratioOf: direction === 'speedup' ? 'baseline median / opsctl median (speed-up)' : 'opsctl median / baseline median',
    target: target === null ? { text: '(info)', value: null, direction } : { text: direction === 'speedup' ? `≥ ${target}×` : `≤ ${target}×`, value: target, direction },
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

  // Every command's --help, against its own same-run `node -e 0` (fewer runs each: there are many).
  const commands = listCommands(opts);
  const m = Math.max(runs * 2, 10);
  log(`start-up: ${commands.length} commands' --help, ${m} runs each beside node -e 0`);
  const sub = await rounds({
    runs: m,
    warmup: 2,
    contenders: [
      { key: 'node', run: () => ({ value: timeSync(NODE, ['-e', '0'], opts).ms }) },
      ...commands.map((c) => ({
        key: c.join(' '),
        run: () => {
          const r = timeSync(NODE, [BIN, ...c, '--help'], opts);
          check(r.status === 0 && r.stdout.includes(`Usage: opsctl ${c.join(' ')}`), `opsctl ${c.join(' ')} --help exited ${r.status}: ${r.stderr}${r.stdout.slice(0, 200)}`);
          return { value: r.ms };
        },
      })),
    ],
  });
  const subBase = summarize(sub.samples.node);
  const perCommand = commands.map((c) => {
    const o = summarize(sub.samples[c.join(' ')]);
    return { command: `opsctl ${c.join(' ')} --help`, median: o.median, min: o.min, max: o.max, ratio: o.median / subBase.median };
  });
  const worst = perCommand.reduce((a, b) => (b.ratio > a.ratio ? b : a), perCommand[0]);

  // Where the time goes: each step adds one layer of what `opsctl --help` loads. The last but
  // one is the same --help from a copy of bin/ and dist/ without the code cache.
  const noCache = join(workDir, 'startup-no-code-cache');
  rmSync(noCache, { recursive: true, force: true });
  mkdirSync(noCache, { recursive: true });
  for (const part of ['bin', 'dist', 'package.json']) cpSync(join(ROOT, part), join(noCache, part), { recursive: true });
  rmSync(join(noCache, 'dist/opsctl.cjs.cache'), { force: true });
  symlinkSync(join(ROOT, 'node_modules'), join(noCache, 'node_modules'));
  const bundle = JSON.stringify(join(ROOT, 'dist/opsctl.cjs'));
  const steps = [
    { key: 'empty', label: 'node -e 0', args: ['-e', '0'] },
    { key: 'read', label: `+ read the bundle (${Math.round(statSync(join(ROOT, 'dist/opsctl.cjs')).size / 1000)} kB) and its code cache`, args: ['-e', `const fs=require('node:fs');fs.readFileSync(${bundle},'utf8');fs.readFileSync(${bundle}+'.cache')`] },
    { key: 'stdout', label: '+ write to stdout (loads the stream modules)', args: ['-e', `const fs=require('node:fs');fs.readFileSync(${bundle},'utf8');fs.readFileSync(${bundle}+'.cache');process.stdout.write('')`] },
    // commander, bundled as published, requires it as it loads (for executable subcommands).
    { key: 'child', label: "+ require('node:child_process') (commander does, as it loads)", args: ['-e', `const fs=require('node:fs');fs.readFileSync(${bundle},'utf8');fs.readFileSync(${bundle}+'.cache');process.stdout.write('');require('node:child_process')`] },
    { key: 'nocache', label: 'opsctl --help, bundle compiled from source (no code cache)', args: [join(noCache, 'bin/opsctl.cjs'), '--help'] },
    { key: 'help', label: 'opsctl --help, from the code cache (as shipped)', args: [BIN, '--help'] },
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
      ]
    : undefined;

  const base = { label: 'node -e 0', samples: samples.node };
  return [
    row({ id: 'startup-version', benchmark: 'start-up: opsctl --version', unit: 'ms', baseline: base, opsctl: { label: 'node bin/opsctl.cjs --version', samples: samples.version }, target: 1.3, ...(breakdown ? { notes: { breakdown } } : {}) }),
    row({ id: 'startup-help', benchmark: 'start-up: opsctl --help', unit: 'ms', baseline: base, opsctl: { label: 'node bin/opsctl.cjs --help', samples: samples.help }, target: 1.3 }),
    row({
      id: 'startup-commands',
      benchmark: `start-up: slowest of ${perCommand.length} commands' --help (${worst.command.replace(/^opsctl | --help$/g, '')})`,
      unit: 'ms',
      baseline: { label: 'node -e 0 (alternating with the commands)', samples: sub.samples.node },
      opsctl: { label: worst.command, samples: sub.samples[worst.command.replace(/^opsctl | --help$/g, '')] },
      target: 1.3,
      notes: { perCommand, allMet: perCommand.every((c) => c.ratio <= 1.3) },
    }),
  ];
}

/** Every leaf command (and group) from `opsctl --help` and each group's own --help. */
function listCommands(opts) {
  const names = (text) => {
    const sec = text.split(/\nCommands:\n/)[1] ?? '';
    return [...sec.matchAll(/^  ([a-z][a-z-]*)\b/gm)].map((m) => m[1]).filter((n) => n !== 'help');
  };
  const top = names(timeSync(NODE, [BIN, '--help'], opts).stdout);
  const out = [];
  for (const t of top) {
    out.push([t]);
    for (const s of names(timeSync(NODE, [BIN, t, '--help'], opts).stdout)) out.push([t, s]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// 2. Bulk listing, 3. reap, 5. memory: at three sizes (a hundredth, a tenth and all of --rows)
// ---------------------------------------------------------------------------------------------

/** The sizes: rows listed / reaped, each selected from the same table by its threshold. */
export function sizes(rows) {
  return [
    { key: 'small', rows: Math.floor(rows / 100), olderThan: '50d', seconds: 50 * 86400 },
    { key: 'medium', rows: Math.floor(rows / 10), olderThan: '10d', seconds: 10 * 86400 },
    { key: 'large', rows, olderThan: '10m', seconds: 600 },
  ];
}

/** The COPY query opsctl runs (built by its own code, default config), for psql to run as is. */
async function opsctlCopySql() {
  const { stuckCopySql } = await import(new URL('../../dist/checks/stuck-executions.js', import.meta.url).href);
  const { defaultConfig } = await import(new URL('../../dist/config/config.js', import.meta.url).href);
  return stuckCopySql(defaultConfig().executions, 0);
}

/** Seeds (once) the sized table; shared by the listing, reap and memory benchmarks. */
export async function ensureSizedData(ctx) {
  if (ctx.sized) return ctx.sized;
  log(`seeding the sized table: ${fmtInt(ctx.rows)} rows, all in stuck statuses (one INSERT … SELECT generate_series)`);
  const counts = await seedSized(ctx.pg, 'sized', ctx.rows);
  for (const z of sizes(ctx.rows)) check(counts[z.key] === z.rows, `sized table: ${counts[z.key]} rows older than ${z.olderThan}, expected ${z.rows}`);
  const copySql = await opsctlCopySql();
  const plan = await ctx.pg.withClient('sized', async (c) => {
    await c.query('BEGIN READ ONLY');
    await c.query(`SELECT set_config('opsctl.stuck_statuses', '{approved,running}', true), set_config('opsctl.stuck_threshold_seconds', '${10 * 86400}', true)`);
    const inner = copySql.replace(/^COPY \(/, '').replace(/\)\s+TO STDOUT[\s\S]*$/, '');
    const rows = (await c.query(`EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) ${inner}`)).rows.map((r) => r['QUERY PLAN']);
    await c.query('ROLLBACK');
    return rows.join('\n');
  });
  ctx.sized = { copySql, plan };
  return ctx.sized;
}

/** psql running opsctl's own COPY, with the same two settings, in a READ ONLY transaction. */
/**
 * psql's own `\\copy` of the same rows as CSV (the same columns and order, no JSON): printed
 * beside the listing for information, the cheapest way psql has to write them out.
 */
function psqlCsvArgs(url, copySql, seconds) {
  const inner = copySql.replace(/^COPY \(SELECT row_to_json\(r\) FROM \(/, '').replace(/\) r\)\s+TO STDOUT[\s\S]*$/, '').replace(/\s+/g, ' ');
  return [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', 'BEGIN READ ONLY', '-c', "SET LOCAL opsctl.stuck_statuses = '{approved,running}'", '-c', `SET LOCAL opsctl.stuck_threshold_seconds = '${seconds}'`, '-c', `\\copy (${inner}) to stdout csv`, '-c', 'ROLLBACK'];
}

function psqlCopyArgs(url, copySql, seconds) {
  return [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', 'BEGIN READ ONLY', '-c', "SET LOCAL opsctl.stuck_statuses = '{approved,running}'", '-c', `SET LOCAL opsctl.stuck_threshold_seconds = '${seconds}'`, '-c', copySql, '-c', 'ROLLBACK'];
}

/** A child under /usr/bin/time: wall time (spawn to exit) and peak RSS (KiB). */
async function timed(cmd, args, { env, stdoutFile, cwd, rssFile }) {
  const r = await timeAsync('/usr/bin/time', ['-f', '%M', '-o', rssFile, cmd, ...args], { env, stdoutFile, cwd });
  const kib = Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop());
  return { ...r, kib };
}

const runsFor = (z, runs) => (z.key === 'large' ? Math.max(1, Math.min(runs, 3)) : runs);

export async function benchListing(ctx) {
  const { runs, warmup, pg, workDir } = ctx;
  check(existsSync('/usr/bin/time'), 'listing: /usr/bin/time (GNU time) is missing: apt-get install time');
  const { copySql, plan } = await ensureSizedData(ctx);
  // A loaded machine can stretch a 1M-row COPY past the default 30 s statement_timeout.
  const env = childEnv({ DATABASE_URL: pg.url('sized'), OPSCTL_STATEMENT_TIMEOUT: '10m' });
  const results = [];
  const rss = {};
  for (const z of sizes(ctx.rows)) {
    const psqlOut = join(workDir, `listing-${z.key}-psql.ndjson`);
    const opsOut = join(workDir, `listing-${z.key}-opsctl.ndjson`);
    const kib = { psql: [], opsctl: [] };
    const csvOut = join(workDir, `listing-${z.key}-psql.csv`);
    const n = runsFor(z, runs);
    log(`listing: ${fmtInt(z.rows)} rows (--older-than ${z.olderThan}); ${n} runs each after ${warmup} warm-up`);
    let sameBytes = true;
    const { samples } = await rounds({
      runs: n,
      warmup,
      contenders: [
        {
          key: 'psql',
          run: async (i) => {
            const r = await timed(PSQL, psqlCopyArgs(pg.url('sized'), copySql, z.seconds), { env: childEnv(), stdoutFile: psqlOut, cwd: workDir, rssFile: join(workDir, 'psql.time') });
            check(r.status === 0, `psql exited ${r.status}: ${r.stderr}`);
            const lines = await countLines(psqlOut);
            check(lines === z.rows, `psql printed ${lines} rows, expected ${z.rows}`);
            if (i >= 0) kib.psql.push(r.kib);
            return { value: r.ms };
          },
        },
        {
          key: 'csv',
          run: async () => {
            const r = await timed(PSQL, psqlCsvArgs(pg.url('sized'), copySql, z.seconds), { env: childEnv(), stdoutFile: csvOut, cwd: workDir, rssFile: join(workDir, 'psql.time') });
            check(r.status === 0, `psql \\copy exited ${r.status}: ${r.stderr}`);
            const lines = await countLines(csvOut);
            check(lines === z.rows, `psql \\copy printed ${lines} rows, expected ${z.rows}`);
            return { value: r.ms };
          },
        },
        {
          key: 'opsctl',
          run: async (i) => {
            const r = await timed(NODE, [BIN, 'executions', 'stuck', '--limit', '0', '-o', 'ndjson', '--older-than', z.olderThan], { env, stdoutFile: opsOut, cwd: workDir, rssFile: join(workDir, 'opsctl.time') });
            check(r.status === 0, `opsctl executions stuck exited ${r.status}: ${r.stderr}`);
            const lines = (await countLines(opsOut)) - 1; // minus the summary line
            const summary = JSON.parse(lastLine(opsOut));
            check(lines === z.rows && summary.summary?.stuck === z.rows, `opsctl printed ${lines} rows (summary says ${summary.summary?.stuck}), expected ${z.rows}`);
            if (i >= 0) kib.opsctl.push(r.kib);
            return { value: r.ms };
          },
        },
      ],
    });
    // Same rows, same order (ages may differ by the seconds between the two runs): compare ids.
    if (z.key === 'small') sameBytes = idsOf(readFileSync(psqlOut, 'utf8')) === idsOf(readFileSync(opsOut, 'utf8'), true);
    rss[z.key] = kib;
    results.push(
      row({
        id: `listing-${z.key}`,
        benchmark: `listing: ${fmtInt(z.rows)} rows, time`,
        unit: 'ms',
        baseline: { label: "psql -c '<opsctl's COPY … TO STDOUT>' (same query, same settings, READ ONLY)", samples: samples.psql },
        opsctl: { label: `opsctl executions stuck --limit 0 -o ndjson --older-than ${z.olderThan}`, samples: samples.opsctl },
        target: 1.3,
        notes: { rows: z.rows, tableRows: ctx.rows, ...(z.key === 'small' ? { sameIdsInOrder: sameBytes } : {}), ...(z.key === 'medium' ? { explainAnalyze: plan } : {}) },
      }),
      row({
        id: `listing-${z.key}-csv`,
        benchmark: `listing: ${fmtInt(z.rows)} rows, psql \\copy CSV (info)`,
        unit: 'ms',
        baseline: { label: "psql -c '<opsctl's COPY … TO STDOUT>' (row_to_json)", samples: samples.psql },
        opsctl: { label: 'psql \\copy (the same SELECT, columns not JSON) to stdout csv', samples: samples.csv },
        target: null,
      }),
      row({
        id: `listing-${z.key}-rss`,
        benchmark: `listing: ${fmtInt(z.rows)} rows, peak RSS`,
        unit: 'KiB',
        baseline: { label: 'psql (peak RSS, /usr/bin/time -f %M)', samples: kib.psql },
        opsctl: { label: 'opsctl (peak RSS)', samples: kib.opsctl },
        target: null,
      }),
    );
  }
  ctx.listingRss = rss;
  return results;
}

function idsOf(text, dropSummary = false) {
  const lines = text.trimEnd().split('\n');
  if (dropSummary) lines.pop();
  return lines.map((l) => JSON.parse(l).id).join(',');
}

/** Memory: opsctl's peak RSS listing the large size against the small size (from the listing runs). */
export async function benchMemory(ctx) {
  if (!ctx.listingRss) await benchListing(ctx);
  const [small, medium, large] = sizes(ctx.rows);
  const r = ctx.listingRss;
  const mk = (z) =>
    row({
      id: z.key === 'large' ? 'memory' : `memory-${z.key}`,
      benchmark: `memory: opsctl peak RSS, ${fmtInt(z.rows)} vs ${fmtInt(small.rows)} rows`,
      unit: 'KiB',
      baseline: { label: `opsctl listing ${fmtInt(small.rows)} rows`, samples: r.small.opsctl },
      opsctl: { label: `opsctl listing ${fmtInt(z.rows)} rows`, samples: r[z.key].opsctl },
      target: 1.2,
      notes: { how: 'peak RSS (max resident set, KiB) of the opsctl child from /usr/bin/time -f %M, the listing runs above', curveKiB: Object.fromEntries(sizes(ctx.rows).map((s) => [s.rows, summarize(r[s.key].opsctl).median])) },
    });
  return [mk(medium), mk(large)];
}

export async function benchReap(ctx) {
  const { runs, warmup, pg, workDir } = ctx;
  check(existsSync('/usr/bin/time'), 'reap: /usr/bin/time (GNU time) is missing: apt-get install time');
  await ensureSizedData(ctx);
  // A fresh identical copy for every run (reap changes the data), checked after the run.
  const withCopy = (z, fn) =>
    pg.onCopy('sized', async (db) => {
      const out = await fn(db);
      const [{ left, failed }] = await pg.sql(
        db,
        `SELECT count(*) FILTER (WHERE status IN ('approved','running') AND updated_at < now() - make_interval(secs => ${z.seconds}))::int AS left,
                count(*) FILTER (WHERE status = 'failed' AND error LIKE 'reaped after ${z.olderThan} in %')::int AS failed FROM purchase_executions`,
      );
      check(left === 0 && failed === z.rows, `after the run ${left} rows are still stuck and ${failed} were reaped (expected 0 and ${z.rows})`);
      return out;
    });
  const results = [];
  const longest = [];
  for (const z of sizes(ctx.rows)) {
    const updateSql = bulkReapSql(z.olderThan, z.seconds);
    const summaries = [];
    const summaries2 = [];
    const kib = { psql: [], opsctl: [], opsctl2: [] };
    // The largest size once each (a 1M-row reap is long, and repeats say little more).
    const n = z.key === 'large' ? 1 : runs;
    const w = z.key === 'large' ? 0 : warmup;
    log(`reap: ${fmtInt(z.rows)} rows (--older-than ${z.olderThan}); ${n} runs each after ${w} warm-up, a fresh database copy per run`);
    const { samples } = await rounds({
      runs: n,
      warmup: w,
      contenders: [
        {
          key: 'psql',
          run: (i) =>
            withCopy(z, async (db) => {
              const out = join(workDir, 'reap-psql.out');
              const r = await timed(PSQL, [pg.url(db), '-X', '-Atc', updateSql], { env: childEnv(), stdoutFile: out, cwd: workDir, rssFile: join(workDir, 'psql.time') });
              check(r.status === 0, `psql UPDATE exited ${r.status}: ${r.stderr}`);
              const tag = readFileSync(out, 'utf8').trim();
              check(tag === `UPDATE ${z.rows}`, `psql said "${tag}", expected "UPDATE ${z.rows}"`);
              if (i >= 0) kib.psql.push(r.kib);
              return { value: r.ms };
            }),
        },
        ...[['opsctl', []], ['opsctl2', ['--connections', '2']]].map(([key, extra]) => ({
          key,
          run: (i) =>
            withCopy(z, async (db) => {
              const out = join(workDir, 'reap-opsctl.json');
              const r = await timed(NODE, [BIN, 'reap', '--apply', '--max', '0', '--yes', '-o', 'json', '--older-than', z.olderThan, ...extra], {
                env: childEnv({ DATABASE_URL: pg.url(db), OPSCTL_STATEMENT_TIMEOUT: '10m' }),
                stdoutFile: out,
                cwd: workDir,
                rssFile: join(workDir, 'opsctl.time'),
              });
              check(r.status === 0, `opsctl reap exited ${r.status}: ${r.stderr}`);
              const report = JSON.parse(readFileSync(out, 'utf8'));
              const s = report.summary;
              check(s.reaped === z.rows && report.items.length === z.rows, `opsctl reaped ${s.reaped} of ${report.items.length} planned, expected ${z.rows}`);
              // Its journal (no audit table): written, then removed, so that hundreds of MB of
              // it are not flushed to disk under the runs that follow.
              const state = join(process.env.XDG_STATE_HOME, 'opsctl');
              check(existsSync(join(state, 'audit.jsonl')) && statSync(join(state, 'audit.jsonl')).size > 0, 'opsctl reap wrote no journal');
              rmSync(state, { recursive: true, force: true });
              if (i >= 0) {
                (key === 'opsctl' ? summaries : summaries2).push(s);
                kib[key].push(r.kib);
              }
              return { value: r.ms };
            }),
        })),
      ],
    });
    longest.push(...summaries.map((s) => s.longestBatchMs), ...summaries2.map((s) => s.longestBatchMs));
    results.push(
      row({
        id: `reap-${z.key}`,
        benchmark: `reap: ${fmtInt(z.rows)} rows, time`,
        unit: 'ms',
        baseline: { label: 'psql -c "UPDATE … WHERE status IN (…) AND updated_at < …" (one statement)', samples: samples.psql },
        opsctl: { label: `opsctl reap --apply --max 0 --yes -o json --older-than ${z.olderThan}`, samples: samples.opsctl },
        target: 1.5,
        notes: {
          rows: z.rows,
          batches: summaries.map((s) => s.batches),
          batchSizes: summaries.map((s) => s.batchSizes),
          longestBatchMs: summaries.map((s) => s.longestBatchMs),
          rowsPerSecond: { psql: Math.round(z.rows / (summarize(samples.psql).median / 1000)), opsctl: Math.round(z.rows / (summarize(samples.opsctl).median / 1000)) },
        },
      }),
      row({
        id: `reap-${z.key}-connections-2`,
        benchmark: `reap: ${fmtInt(z.rows)} rows, time, --connections 2`,
        unit: 'ms',
        baseline: { label: 'psql -c "UPDATE … WHERE status IN (…) AND updated_at < …" (one statement)', samples: samples.psql },
        opsctl: { label: `opsctl reap --apply --max 0 --yes -o json --older-than ${z.olderThan} --connections 2`, samples: samples.opsctl2 },
        target: 1.5,
        notes: { rows: z.rows, batches: summaries2.map((s) => s.batches), longestBatchMs: summaries2.map((s) => s.longestBatchMs) },
      }),
      row({
        id: `reap-${z.key}-rss`,
        benchmark: `reap: ${fmtInt(z.rows)} rows, peak RSS`,
        unit: 'KiB',
        baseline: { label: 'psql (peak RSS)', samples: kib.psql },
        opsctl: { label: 'opsctl (peak RSS; the plan spooled to a file, the report streamed)', samples: kib.opsctl },
        target: null,
      }),
    );
  }
  // Peak RSS of reap at the two larger sizes against the smallest (the runs above): flat means
  // neither the plan nor the report is held in memory.
  const [small] = sizes(ctx.rows);
  const smallRss = results.find((r) => r.id === 'reap-small-rss').opsctl.samples;
  for (const z of sizes(ctx.rows).slice(1)) {
    results.push(
      row({
        id: `reap-memory-${z.key}`,
        benchmark: `reap: opsctl peak RSS, ${fmtInt(z.rows)} vs ${fmtInt(small.rows)} rows`,
        unit: 'KiB',
        baseline: { label: `opsctl reap ${fmtInt(small.rows)} rows`, samples: smallRss },
        opsctl: { label: `opsctl reap ${fmtInt(z.rows)} rows`, samples: results.find((r) => r.id === `reap-${z.key}-rss`).opsctl.samples },
        target: 1.2,
        notes: { how: 'peak RSS (max resident set, KiB) of the opsctl child from /usr/bin/time -f %M, the reap runs above' },
      }),
    );
  }
  const lb = summarize(longest);
  results.push({
    id: 'reap-longest-batch',
    benchmark: 'reap: longest batch (row locks held), every size',
    unit: 'ms',
    baseline: { label: 'one UPDATE holds every row lock for its whole run', ...summarize(results.find((r) => r.id === 'reap-large').baseline.samples) },
    opsctl: { label: 'longestBatchMs of the reap summaries (one and two connections)', ...lb },
    ratio: null,
    ratioOf: 'absolute: the longest batch transaction of each run',
    target: { text: '≤ 1000 ms', value: 1000, direction: 'absolute' },
    met: lb.max <= 1000,
    notes: { longestBatchMsPerRun: longest },
  });
  return results;
}

/**
 * Reap with an audit table (the reference audit_log): opsctl's batches each insert their audit
 * rows in their own statement; the baseline is the same work by hand, one UPDATE … RETURNING whose
 * CTE inserts the audit rows (bulkReapAuditSql). At the medium size (a tenth of --rows: 100k of
 * 1M by default), and the small one.
 */
export async function benchReapAudit(ctx) {
  const { runs, warmup, pg, workDir } = ctx;
  check(existsSync('/usr/bin/time'), 'reap-audit: /usr/bin/time (GNU time) is missing: apt-get install time');
  await ensureSizedData(ctx);
  const cfgFile = join(workDir, 'audit-config.json');
  writeFileSync(cfgFile, JSON.stringify({ audit: { table: 'audit_log' } }));
  const withCopy = (z, fn) =>
    pg.onCopy('sized', async (db) => {
      const out = await fn(db);
      const [{ left, failed, audited }] = await pg.sql(
        db,
        `SELECT count(*) FILTER (WHERE status IN ('approved','running') AND updated_at < now() - make_interval(secs => ${z.seconds}))::int AS left,
                count(*) FILTER (WHERE status = 'failed' AND error LIKE 'reaped after ${z.olderThan} in %')::int AS failed,
                (SELECT count(*) FROM audit_log WHERE kind = 'execution.reaped' AND metadata ? 'before' AND metadata ? 'after')::int AS audited
           FROM purchase_executions`,
      );
      check(left === 0 && failed === z.rows && audited === z.rows, `after the run ${left} rows are still stuck, ${failed} were reaped, ${audited} audited (expected 0, ${z.rows}, ${z.rows})`);
      return out;
    });
  const results = [];
  for (const z of sizes(ctx.rows).slice(0, 2)) {
    const sql = bulkReapAuditSql(z.olderThan, z.seconds);
    const summaries = [];
    log(`reap-audit: ${fmtInt(z.rows)} rows (--older-than ${z.olderThan}) with audit.table audit_log; ${runs} runs each after ${warmup} warm-up, a fresh database copy per run`);
    const { samples } = await rounds({
      runs,
      warmup,
      contenders: [
        {
          key: 'psql',
          run: () =>
            withCopy(z, async (db) => {
              const out = join(workDir, 'reap-audit-psql.out');
              const r = await timed(PSQL, [pg.url(db), '-X', '-Atc', sql], { env: childEnv(), stdoutFile: out, cwd: workDir, rssFile: join(workDir, 'psql.time') });
              check(r.status === 0, `psql UPDATE … INSERT exited ${r.status}: ${r.stderr}`);
              const tag = readFileSync(out, 'utf8').trim();
              check(tag === `INSERT 0 ${z.rows}`, `psql said "${tag}", expected "INSERT 0 ${z.rows}"`);
              return { value: r.ms };
            }),
        },
        {
          key: 'opsctl',
          run: (i) =>
            withCopy(z, async (db) => {
              const out = join(workDir, 'reap-audit-opsctl.json');
              const r = await timed(NODE, [BIN, '--config', cfgFile, 'reap', '--apply', '--max', '0', '--yes', '-o', 'json', '--older-than', z.olderThan], {
                env: childEnv({ DATABASE_URL: pg.url(db), OPSCTL_STATEMENT_TIMEOUT: '10m' }),
                stdoutFile: out,
                cwd: workDir,
                rssFile: join(workDir, 'opsctl.time'),
              });
              check(r.status === 0, `opsctl reap (audit) exited ${r.status}: ${r.stderr}`);
              const report = JSON.parse(readFileSync(out, 'utf8'));
              check(report.summary.reaped === z.rows, `opsctl reaped ${report.summary.reaped}, expected ${z.rows}`);
              if (i >= 0) summaries.push(report.summary);
              return { value: r.ms };
            }),
        },
      ],
    });
    results.push(
      row({
        id: `reap-audit-${z.key}`,
        benchmark: `reap-audit: ${fmtInt(z.rows)} rows, time`,
        unit: 'ms',
        baseline: { label: 'psql -c "WITH upd AS (UPDATE … RETURNING …) INSERT INTO audit_log … FROM upd" (one statement)', samples: samples.psql },
        opsctl: { label: `opsctl --config {audit.table: audit_log} reap --apply --max 0 --yes -o json --older-than ${z.olderThan}`, samples: samples.opsctl },
        target: 1.5,
        notes: { rows: z.rows, batches: summaries.map((s) => s.batches), batchSizes: summaries.map((s) => s.batchSizes), longestBatchMs: summaries.map((s) => s.longestBatchMs) },
      }),
    );
  }
  return results;
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
    const calls = { baseline: [], opsctl: [], tagging: [], c8: [], c16: [], c24: [] };
    // The concurrency sweep: the default (32) against 8, 16 and 24, per-group tag reads.
    const sweep = [8, 16, 24].map((c) => {
      const file = join(workDir, `sg-config-c${c}.json`);
      writeFileSync(file, JSON.stringify({ scheduleGroups: { concurrency: c } }));
      return { key: `c${c}`, concurrency: c, file };
    });
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
    // Where the CPU goes, per run: the client's (user + system, every thread, from /usr/bin/time,
    // with its peak RSS) and the emulator's (this process, which does little else meanwhile). Both
    // run on the same cores: on a 2-core machine the emulator's CPU is not free, AWS's would be.
    const timeBin = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
    const cpu = {};
    const measure = (key, args, count) => async (i) => {
      const out = join(workDir, `sg-${key}.json`);
      const usageFile = join(workDir, `sg-${key}.usage`);
      emu.resetCallCounts();
      const cpu0 = process.cpuUsage();
      const r = timeBin
        ? await timeAsync(timeBin, ['-f', '%U %S %M', '-o', usageFile, NODE, ...args], { env, stdoutFile: out, cwd: workDir })
        : await timeAsync(NODE, args, { env, stdoutFile: out, cwd: workDir });
      const emuCpu = process.cpuUsage(cpu0);
      check(r.status === 0, `${key} exited ${r.status}: ${r.stderr.slice(0, 2000)}`);
      if (i >= 0) {
        const c = (cpu[key] ??= { clientCpuMs: [], emulatorCpuMs: [], peakRssMiB: [] });
        c.emulatorCpuMs.push(Math.round((emuCpu.user + emuCpu.system) / 1000));
        if (timeBin) {
          const [user, sys, rssKiB] = readFileSync(usageFile, 'utf8').trim().split('\n').pop().split(' ').map(Number);
          c.clientCpuMs.push(Math.round((user + sys) * 1000));
          c.peakRssMiB.push(Math.round(rssKiB / 1024));
        }
      }
      const c = emu.callCounts();
      const text = readFileSync(out, 'utf8');
      const seen = count(text);
      check(seen === undefined || seen === total, `${key} reported ${seen} groups, expected ${total}`);
      let throttled;
      try {
        throttled = JSON.parse(text).summary?.throttled;
      } catch {}
      if (i >= 0) calls[key].push({ total: Object.values(c).reduce((a, b) => a + b, 0), byOperation: c, groupsSeen: seen, throttled });
      return { value: r.ms };
    };
    // The sequential loop takes ~23 s a run and varies little: at most 3 runs of everything here.
    const sgRuns = Math.min(runs, 3);
    log(`schedule groups: ${fmtInt(total)} groups, ${latencyMs} ms latency per call; ${sgRuns} runs each (warm-up: one opsctl run)`);
    await measure('opsctl', [BIN, 'schedule-groups', '-o', 'json'], countItems)(-1);
    const started = performance.now();
    const { samples } = await rounds({
      runs: sgRuns,
      warmup: 0,
      contenders: [
        ...sweep.map((c) => ({ key: c.key, run: measure(c.key, [BIN, '--config', c.file, 'schedule-groups', '-o', 'json'], countItems) })),
        { key: 'baseline', run: measure('baseline', [join(ROOT, 'bench/lib/sg-baseline.mjs')], (s) => JSON.parse(s).groups) },
        { key: 'opsctl', run: measure('opsctl', [BIN, 'schedule-groups', '-o', 'json'], countItems) },
        { key: 'tagging', run: measure('tagging', [BIN, '--config', taggingConfig, 'schedule-groups', '-o', 'json'], countItems) },
      ],
    });
    const baselineLabel = 'SDK loop: ListScheduleGroups (100/page), then ListTagsForResource one group at a time';
    const callsPerSecond = (key) => Math.round((calls[key][0]?.total ?? 0) / (summarize(samples[key]).median / 1000));
    const concurrencySweep = [...sweep.map((c) => ({ concurrency: c.concurrency, key: c.key })), { concurrency: 32, key: 'opsctl' }].map((c) => ({
      concurrency: c.concurrency,
      medianMs: summarize(samples[c.key]).median,
      speedup: summarize(samples.baseline).median / summarize(samples[c.key]).median,
      callsPerSecond: callsPerSecond(c.key),
      throttled: calls[c.key][0]?.throttled ?? 0,
    }));
    log(`schedule groups measured in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const medianOf = (a) => (a.length ? summarize(a).median : null);
    const cpuPerRun = Object.fromEntries(
      Object.entries(cpu).map(([key, c]) => [
        key,
        { clientCpuMs: medianOf(c.clientCpuMs), emulatorCpuMs: medianOf(c.emulatorCpuMs), peakRssMiB: medianOf(c.peakRssMiB), calls: calls[key][0]?.total ?? null },
      ]),
    );
    for (const [key, c] of Object.entries(cpuPerRun)) log(`  ${key}: client CPU ${c.clientCpuMs} ms, emulator CPU ${c.emulatorCpuMs} ms, peak RSS ${c.peakRssMiB} MiB (medians), ${c.calls} calls`);
    return [
      row({
        id: 'schedule-groups',
        benchmark: `schedule groups: ${fmtInt(total)} groups, ${latencyMs} ms/call`,
        unit: 'ms',
        baseline: { label: baselineLabel, samples: samples.baseline },
        opsctl: { label: 'opsctl schedule-groups -o json (tagSource per-group, default concurrency 32)', samples: samples.opsctl },
        direction: 'speedup',
        target: 15,
        notes: { groups: total, neverTagged, latencyMs, concurrencySweep, cpuPerRun, apiCalls: { baseline: calls.baseline[0], opsctl: calls.opsctl[0] }, apiCallsPerRun: { baseline: calls.baseline, opsctl: calls.opsctl } },
      }),
      row({
        id: 'schedule-groups-tagging-api',
        benchmark: `schedule groups (tagging-api): ${fmtInt(total)} groups, ${fmtInt(neverTagged)} never tagged, ${latencyMs} ms/call`,
        unit: 'ms',
        baseline: { label: baselineLabel, samples: samples.baseline },
        opsctl: { label: 'opsctl (tagging-api): schedule-groups -o json with scheduleGroups.tagSource "tagging-api"', samples: samples.tagging },
        direction: 'speedup',
        target: 15,
        notes: { groups: total, neverTagged, latencyMs, apiCalls: { baseline: calls.baseline[0], opsctl: calls.tagging[0] }, apiCallsPerRun: { baseline: calls.baseline, opsctl: calls.tagging } },
      }),
    ];
  } finally {
    await emu.close();
  }
}
