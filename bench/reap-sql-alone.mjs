// Where reap's time goes: the same 100,000-row reap (--older-than 10d of the bench's sized
// table) three ways, each on a fresh copy of the seeded database —
//   1. the one bulk UPDATE (the bench's baseline),
//   2. the SQL alone: reap's own compare-and-set statement in 8,500-row batches in plan order,
//      sent back to back from one session (no plan read, no report),
//   3. opsctl reap --apply --max 0 --yes -o json.
// (2)/(1) is what batching costs the server; (3)/(2) is what opsctl adds around the SQL.
// Usage: npm run build && node bench/reap-sql-alone.mjs [--rows 1000000] [--batch 8500]
import { spawnSync } from 'node:child_process';
import { startPostgres, seedSized } from './lib/postgres.mjs';

const arg = (name, dflt) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? Number(process.argv[i + 1]) : dflt; };
const rows = arg('rows', 1_000_000);
const batch = arg('batch', 8500);
const threshold = 10 * 86400; // 10d: a tenth of the table

const pgs = await startPostgres();
try {
  await seedSized(pgs, 'sized', rows);
  const onCopy = (fn) => pgs.onCopy('sized', fn);
  const stuck = `status IN ('approved','running') AND updated_at < now() - make_interval(secs => ${threshold})`;
  const bulk = () => onCopy((db) => pgs.withClient(db, async (c) => {
    const t0 = performance.now();
    await c.query(`UPDATE purchase_executions SET status = 'failed', error = 'reaped after 10d in ' || status || ' state', updated_at = now(), transitioned_at = now() WHERE ${stuck}`);
    return performance.now() - t0;
  }));
  // The statement src/checks/stuck-executions.ts sends per batch on PostgreSQL 18 (CAS-first).
  const batched = () => onCopy((db) => pgs.withClient(db, async (c) => {
    const ids = (await c.query(`SELECT id::text AS id FROM purchase_executions WHERE ${stuck} ORDER BY updated_at, id`)).rows.map((r) => r.id);
    const t0 = performance.now();
    for (let i = 0; i < ids.length; i += batch) {
      await c.query(
        `UPDATE purchase_executions t SET status = $2, error = replace($3::text, '{status}', t.status::text), updated_at = now(), transitioned_at = now()
          WHERE t.id = ANY($1) AND t.status = ANY($4::text[]) AND t.updated_at < now() - make_interval(secs => $5::float8)
         RETURNING t.id::text AS id, old.status::text AS status`,
        [ids.slice(i, i + batch), 'failed', 'reaped after 10d in {status} state', ['approved', 'running'], threshold],
      );
    }
    return performance.now() - t0;
  }));
  const opsctl = () => onCopy(async (db) => {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, ['bin/opsctl.cjs', 'reap', '--apply', '--max', '0', '--yes', '-o', 'json', '--older-than', '10d'], {
      env: { ...process.env, DATABASE_URL: pgs.url(db), OPSCTL_STATEMENT_TIMEOUT: '10m', NO_COLOR: '1' },
      maxBuffer: 1 << 30,
    });
    const ms = performance.now() - t0;
    if (r.status !== 0) throw new Error(`opsctl reap exited ${r.status}: ${r.stderr}`);
    return ms;
  });
  const times = { bulk: [], sql: [], opsctl: [] };
  for (let round = 0; round < 2; round++) {
    times.bulk.push(await bulk());
    times.sql.push(await batched());
    times.opsctl.push(await opsctl());
  }
  const best = (a) => Math.min(...a);
  const [b, s, o] = [best(times.bulk), best(times.sql), best(times.opsctl)];
  console.log(`rows reaped: ${(rows / 10).toLocaleString('en-US')} of ${rows.toLocaleString('en-US')} (best of 2 each)`);
  console.log(`bulk UPDATE            ${b.toFixed(0).padStart(6)} ms`);
  console.log(`SQL alone, ${batch}-row batches ${s.toFixed(0).padStart(6)} ms  ${(s / b).toFixed(2)}× the bulk UPDATE`);
  console.log(`opsctl reap            ${o.toFixed(0).padStart(6)} ms  ${(o / b).toFixed(2)}× the bulk UPDATE, ${(o / s).toFixed(2)}× the SQL alone`);
} finally {
  await pgs.stop();
}
