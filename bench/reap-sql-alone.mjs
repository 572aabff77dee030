// Where reap's time goes: the same reap (default --older-than 10d of the bench's sized table:
// 100,000 rows; 10m: all of them) four ways, each on a fresh copy of the seeded database —
//   1. the one bulk UPDATE (the bench's baseline),
//   2. the SQL alone: reap's own compare-and-set statement (reapStatements, from dist/: the
//      CAS-first UPDATE on 18, the skip-locked CTE before, as reap picks them) in 8,500-row
//      batches in plan order, sent back to back from one session (no plan read, no report),
//   3. the same in key order (what the order of the batches costs the server),
//   4. opsctl reap --apply --max 0 --yes -o json.
// (2)/(1) is what batching costs the server; (4)/(2) is what opsctl adds around the SQL.
// Usage: npm run build && node bench/reap-sql-alone.mjs [--rows 1000000] [--batch 8500] [--older-than 10d] [--major 14|18]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPostgres, seedSized, bulkReapSql } from './lib/postgres.mjs';

const arg = (name, dflt) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : dflt; };
const rows = Number(arg('rows', 1_000_000));
const batch = Number(arg('batch', 8500));
// 10d: a tenth of the sized table; 50d a hundredth; 10m all of it.
const olderThan = arg('older-than', '10d');
const major = Number(arg('major', 18));
const { parseDuration } = await import(new URL('../dist/config/durations.js', import.meta.url).href);
const threshold = parseDuration(olderThan) / 1000;
// The statement reap sends per batch (CAS-first on 18, skip-locked before), from opsctl itself.
const { reapStatements, reapParams } = await import(new URL('../dist/checks/stuck-executions.js', import.meta.url).href);
const { defaultConfig } = await import(new URL('../dist/config/config.js', import.meta.url).href);
const cfg = defaultConfig().executions;
const statements = reapStatements(cfg);
const cas = major >= 18 ? statements.cas : statements.skipLocked;

// opsctl's journal (one line a reaped row) in a directory of its own, removed at the end.
const stateDir = mkdtempSync(join(tmpdir(), 'opsctl-bench-state-'));
const pgs = await startPostgres(major);
try {
  await seedSized(pgs, 'sized', rows);
  const onCopy = (fn) => pgs.onCopy('sized', fn);
  const stuck = `status IN ('approved','running') AND updated_at < now() - make_interval(secs => ${threshold})`;
  const bulk = () => onCopy((db) => pgs.withClient(db, async (c) => {
    const t0 = performance.now();
    await c.query(bulkReapSql(olderThan, threshold));
    return performance.now() - t0;
  }));
  let reaped = 0;
  // order: the plan's (oldest first, as reap applies it), or the key's (pkey pages in order).
  const batched = (order) => onCopy((db) => pgs.withClient(db, async (c) => {
    const ids = (await c.query(`SELECT id::text AS id FROM purchase_executions WHERE ${stuck} ORDER BY ${order}`)).rows.map((r) => r.id);
    reaped = ids.length;
    const t0 = performance.now();
    for (let i = 0; i < ids.length; i += batch) {
      await c.query(cas, reapParams(cfg, ids.slice(i, i + batch), `reaped after ${olderThan} in {status} state`, { statuses: ['approved', 'running'], thresholdMs: threshold * 1000 }));
    }
    return performance.now() - t0;
  }));
  const opsctl = () => onCopy(async (db) => {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, ['bin/opsctl.cjs', 'reap', '--apply', '--max', '0', '--yes', '-o', 'json', '--older-than', olderThan], {
      env: { ...process.env, DATABASE_URL: pgs.url(db), OPSCTL_STATEMENT_TIMEOUT: '10m', NO_COLOR: '1', OPSCTL_STATE_DIR: stateDir },
      maxBuffer: 1 << 30,
    });
    const ms = performance.now() - t0;
    if (r.status !== 0) throw new Error(`opsctl reap exited ${r.status}: ${r.stderr}`);
    return ms;
  });
  const times = { bulk: [], sql: [], sqlKey: [], opsctl: [] };
  for (let round = 0; round < 2; round++) {
    times.bulk.push(await bulk());
    times.sql.push(await batched('updated_at, id'));
    times.sqlKey.push(await batched('id'));
    times.opsctl.push(await opsctl());
  }
  const best = (a) => Math.min(...a);
  const [b, s, k, o] = [best(times.bulk), best(times.sql), best(times.sqlKey), best(times.opsctl)];
  console.log(`rows reaped: ${reaped.toLocaleString('en-US')} of ${rows.toLocaleString('en-US')} (--older-than ${olderThan}, best of 2 each)`);
  console.log(`bulk UPDATE            ${b.toFixed(0).padStart(6)} ms`);
  console.log(`SQL alone, ${batch}-row batches, plan order ${s.toFixed(0).padStart(6)} ms  ${(s / b).toFixed(2)}× the bulk UPDATE`);
  console.log(`SQL alone, ${batch}-row batches, key order  ${k.toFixed(0).padStart(6)} ms  ${(k / b).toFixed(2)}× the bulk UPDATE`);
  console.log(`opsctl reap            ${o.toFixed(0).padStart(6)} ms  ${(o / b).toFixed(2)}× the bulk UPDATE, ${(o / s).toFixed(2)}× the SQL alone`);
} finally {
  await pgs.stop();
  rmSync(stateDir, { recursive: true, force: true });
}
