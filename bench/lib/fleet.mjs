// The fleet benchmark: `opsctl check --all-targets` over 50 targets, each behind a loopback TCP
// proxy that delays every chunk (a far-away database), with the default --concurrency against
// --concurrency 1 (one target after another). The figure is the speed-up of the default.
import { createServer, connect } from 'node:net';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, check, fmtMs, log, rounds, summarize, timeAsync } from './util.mjs';
import { childEnv } from './benchmarks.mjs';
import { startPostgres } from './postgres.mjs';

const TARGETS = 50;
const DEFAULT_CONCURRENCY = 4;

/**
 * A proxy that holds every chunk `oneWayMs` before passing it on, in order, both ways: each
 * PostgreSQL round trip then costs 2 × oneWayMs more, like a database in another region.
 */
export function startDelayProxy(upstreamPort, oneWayMs) {
  const sockets = new Set();
  const pipeDelayed = (from, to) => {
    let chain = Promise.resolve();
    from.on('data', (chunk) => {
      const due = performance.now() + oneWayMs;
      chain = chain.then(
        () =>
          new Promise((resolve) => {
            setTimeout(() => {
              if (!to.destroyed) to.write(chunk);
              resolve();
            }, Math.max(0, due - performance.now()));
          }),
      );
    });
    from.on('end', () => void chain.then(() => to.end()));
    from.on('error', () => to.destroy());
  };
  const server = createServer((client) => {
    const upstream = connect(upstreamPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('close', () => sockets.delete(client));
    upstream.on('close', () => sockets.delete(upstream));
    pipeDelayed(client, upstream);
    pipeDelayed(upstream, client);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: server.address().port,
        close: () =>
          new Promise((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      }),
    );
  });
}

export async function benchFleet({ pg: shared, runs, warmup, latency, workDir }) {
  // The run's PostgreSQL when another benchmark started one, else our own.
  const own = shared ? null : await startPostgres();
  const pg = shared ?? own;
  try {
    return await measure({ pg, runs, warmup, latency, workDir });
  } finally {
    await own?.stop();
  }
}

async function measure({ pg, runs, warmup, latency, workDir }) {
  const { REFERENCE_SCHEMA_SQL } = await import(new URL('../../dist/reference/schema.js', import.meta.url).href);
  await pg.sql('postgres', 'DROP DATABASE IF EXISTS bench_fleet WITH (FORCE)');
  await pg.sql('postgres', 'CREATE DATABASE bench_fleet');
  await pg.withClient('bench_fleet', (c) => c.query(REFERENCE_SCHEMA_SQL));
  // A few stuck executions and dead letters, so every target has findings to report.
  await pg.sql('bench_fleet', "INSERT INTO purchase_executions (status, updated_at) SELECT 'running', now() - interval '2 hours' FROM generate_series(1, 5)");
  await pg.sql(
    'bench_fleet',
    "INSERT INTO pending_propagations (kind, team_id, attempts, last_error, failed_at) SELECT 'tier_elevation', gen_random_uuid(), 10, 'boom', now() FROM generate_series(1, 5)",
  );
  const oneWayMs = latency / 2;
  const proxy = await startDelayProxy(pg.port, oneWayMs);
  try {
    const u = new URL(pg.url('bench_fleet'));
    const password = decodeURIComponent(u.password);
    u.password = '';
    u.port = String(proxy.port);
    const targets = Object.fromEntries(
      Array.from({ length: TARGETS }, (_, i) => [`tenant-${String(i).padStart(2, '0')}`, { database: { url: u.toString(), passwordEnv: 'BENCH_FLEET_PASSWORD' } }]),
    );
    const dir = mkdtempSync(join(workDir, 'fleet-'));
    const config = join(dir, 'opsctl.fleet.json');
    writeFileSync(config, JSON.stringify({ targets }));
    const env = childEnv({ BENCH_FLEET_PASSWORD: password });
    const out = join(dir, 'out.json');
    const args = (extra) => [BIN, '--config', config, 'check', '--all-targets', '--only', 'executions,propagations', '-o', 'json', ...extra];
    const contender = (key, extra) => ({
      key,
      run: async () => {
        const r = await timeAsync(process.execPath, args(extra), { env, stdoutFile: out });
        // Findings on every target: exit 1; anything else (3: a target failed) spoils the figure.
        check(r.status === 1, `opsctl ${args(extra).slice(1).join(' ')} exited ${r.status}: ${r.stderr}`);
        const report = JSON.parse(readFileSync(out, 'utf8'));
        check(report.summary.targets === TARGETS && report.summary.targetsWithFindings === TARGETS, `expected ${TARGETS} targets with findings: ${JSON.stringify(report.summary).slice(0, 300)}`);
        return { value: r.ms };
      },
    });
    // The sequential contender takes ~concurrency× longer: fewer runs keep the benchmark short.
    const n = Math.max(1, Math.min(runs, 3));
    log(`fleet: ${TARGETS} targets behind a ${latency} ms round-trip proxy; ${n} runs (+${Math.min(warmup, 1)} warm-up) each`);
    const { samples } = await rounds({
      runs: n,
      warmup: Math.min(warmup, 1),
      contenders: [contender('sequential', ['--concurrency', '1']), contender('default', [])],
      onRound: (i) => i >= 0 && log(`fleet: round ${i + 1}/${n}`),
    });
    const b = summarize(samples.sequential);
    const o = summarize(samples.default);
    const ratio = b.median / o.median;
    // At most the concurrency (4×), less what both pay once (start-up, config) and the CPU: on
    // 2 shared cores the 4 targets in flight also compete for the processor.
    const target = 2.5;
    log(`fleet: sequential ${fmtMs(b.median)}, default concurrency ${fmtMs(o.median)}: ${ratio.toFixed(2)}×`);
    return [
      {
        id: 'fleet',
        benchmark: `fleet check, ${TARGETS} targets, ${latency} ms RTT`,
        unit: 'ms',
        baseline: { label: 'one target after another (--concurrency 1)', ...b },
        opsctl: { label: `default --concurrency (${DEFAULT_CONCURRENCY})`, ...o },
        ratio,
        ratioOf: 'baseline median / opsctl median (speed-up)',
        target: { text: `≥ ${target}×`, value: target, direction: 'speedup' },
        met: ratio >= target,
        notes: { targets: TARGETS, roundTripMs: latency, checks: 'executions,propagations (3 checks, 3 connections per target)' },
      },
    ];
  } finally {
    await proxy.close();
  }
}
