// Where reap's time goes: the same reap (default --older-than 10d of the bench's sized table:
// 100,000 rows; 10m: all of them) four ways, each on a fresh copy of the seeded database —
//   1. the one bulk UPDATE (the bench's baseline),
//   2. the SQL alone: reap's own compare-and-set statement (reapStatements, from dist/: the
//      CAS-first UPDATE on 18, the skip-locked CTE before, as reap picks them) in 8,500-row
//      batches in plan order, sent back to back from one session (no plan read, no report),
//   3. the same in key order (what the order of the batches costs the server),
//   4. the statement as reap sends it with no audit table: returning the images and building
//      the journal lines (the SQL alone of 2, plus what the journal costs the server),
//   5. opsctl reap --apply --max 0 --yes -o json.
// (2)/(1) is what batching costs the server; (5)/(4) is what opsctl adds around its SQL.
// Usage: npm run build && node bench/reap-sql-alone.mjs [--rows 1000000] [--batch 8500] [--older-than 10d] [--major 14|18] [--prof DIR]
// --prof DIR: opsctl's runs write a V8 CPU profile there (node --cpu-prof).
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
const { reapStatements, reapParams, reapJournalParams, reapJournalHead } = await import(new URL('../dist/checks/stuck-executions.js', import.meta.url).href);
const { defaultConfig } = await import(new URL('../dist/config/config.js', import.meta.url).href);
const cfg = defaultConfig().executions;
const statements = reapStatements(cfg);
const cas = major >= 18 ? statements.cas : statements.skipLocked;
const journaled = reapStatements(cfg, { images: true, journal: true });
const journalCas = major >= 18 ? journaled.cas : journaled.skipLocked;
const prof = arg('prof', null);

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
  const batched = (order, journal = false) => onCopy((db) => pgs.withClient(db, async (c) => {
    const planned = (await c.query(`SELECT id::text AS id, extract(epoch FROM now() - updated_at)::bigint AS "ageSeconds" FROM purchase_executions WHERE ${stuck} ORDER BY ${order}`)).rows;
    const ids = planned.map((r) => r.id);
    reaped = ids.length;
    const head = reapJournalHead(
      { summaries: JSON.stringify({ approved: `reaped after ${olderThan} in approved state`, running: `reaped after ${olderThan} in running state` }), metadata: JSON.stringify({ to_status: 'failed', threshold: olderThan, reason: null, image: { table: cfg.table, schema: null, key: 'id', columns: ['status', 'error', 'updated_at', 'transitioned_at'] } }) },
      { at: new Date().toISOString(), actor: 'bench', kind: 'execution.reaped', resourceType: cfg.table, target: { kind: 'postgres', name: null, database: db } },
    );
    let bytes = 0;
    const t0 = performance.now();
    for (let i = 0; i < ids.length; i += batch) {
      const p = reapParams(cfg, ids.slice(i, i + batch), `reaped after ${olderThan} in {status} state`, { statuses: ['approved', 'running'], thresholdMs: threshold * 1000 });
      if (!journal) await c.query(cas, p);
      else for (const r of (await c.query(journalCas, [...p, ...reapJournalParams(planned.slice(i, i + batch), ids.slice(i, i + batch), head)])).rows) bytes += r.journal?.length ?? 0;
    }
    if (journal && bytes === 0) throw new Error('the journal statement built no lines');
    return performance.now() - t0;
  }));
  const opsctl = () => onCopy(async (db) => {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [...(prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : []), 'bin/opsctl.cjs', 'reap', '--apply', '--max', '0', '--yes', '-o', 'json', '--older-than', olderThan], {
      env: { ...process.env, DATABASE_URL: pgs.url(db), OPSCTL_STATEMENT_TIMEOUT: '10m', NO_COLOR: '1', OPSCTL_STATE_DIR: stateDir },
      maxBuffer: 1 << 30,
    });
    const ms = performance.now() - t0;
    if (r.status !== 0) throw new Error(`opsctl reap exited ${r.status}: ${r.stderr}`);
    return ms;
  });
  const times = { bulk: [], sql: [], sqlKey: [], sqlJournal: [], opsctl: [] };
  for (let round = 0; round < 2; round++) {
    times.bulk.push(await bulk());
    times.sql.push(await batched('updated_at, id'));
    times.sqlKey.push(await batched('id'));
    times.sqlJournal.push(await batched('updated_at, id', true));
    times.opsctl.push(await opsctl());
  }
  const best = (a) => Math.min(...a);
  const [b, s, k, j, o] = [best(times.bulk), best(times.sql), best(times.sqlKey), best(times.sqlJournal), best(times.opsctl)];
  console.log(`rows reaped: ${reaped.toLocaleString('en-US')} of ${rows.toLocaleString('en-US')} (--older-than ${olderThan}, best of 2 each)`);
  console.log(`bulk UPDATE            ${b.toFixed(0).padStart(6)} ms`);
  console.log(`SQL alone, ${batch}-row batches, plan order ${s.toFixed(0).padStart(6)} ms  ${(s / b).toFixed(2)}× the bulk UPDATE`);
  console.log(`SQL alone, ${batch}-row batches, key order  ${k.toFixed(0).padStart(6)} ms  ${(k / b).toFixed(2)}× the bulk UPDATE`);
  console.log(`SQL alone with images and journal lines   ${j.toFixed(0).padStart(6)} ms  ${(j / b).toFixed(2)}× the bulk UPDATE`);
  console.log(`opsctl reap            ${o.toFixed(0).padStart(6)} ms  ${(o / b).toFixed(2)}× the bulk UPDATE, ${(o / j).toFixed(2)}× its SQL alone`);
} finally {
  await pgs.stop();
  rmSync(stateDir, { recursive: true, force: true });
}
