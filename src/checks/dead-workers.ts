import type { Database } from '../database/database.js';
import type { Config, WorkersConfig } from '../config/config.js';
import type { ItemOutcome, Remedy } from '../engine/remediation.js';
import { lockThenClassify } from '../engine/guarded-batch.js';
import { formatDuration } from '../config/durations.js';
import { displayName, qualifiedName, quoteIdent } from '../database/identifiers.js';

/**
 * Dead workers: registered workers whose heartbeat is older than a threshold on the database
 * clock, and the rows of the work table they still hold. Age alone is a poor signal for
 * "stuck" (a legitimately long run is reaped, a run whose worker died a minute ago waits the
 * full threshold); a stale heartbeat says the holder is gone.
 *
 * Liveness is re-checked at write time under a FOR SHARE lock on the worker's row: a
 * heartbeat (an UPDATE of that row) cannot commit between the check and the write, and a
 * worker whose heartbeat committed since the plan is seen alive and keeps its rows.
 */

export interface DeadWorker {
  id: string;
  host: string | null;
  status: string | null;
  /** ISO 8601, UTC. */
  heartbeatAt: string;
  /** How long since its last heartbeat, on the database clock. */
  silentSeconds: number;
  /** Rows of the work table it still holds (in a held status). */
  held: number;
}

export interface WorkerCounts {
  workers: number;
  dead: number;
  /** Registered but never heartbeated (NULL heartbeat): not judged dead. */
  neverHeartbeated: number;
  /** Rows held by dead workers. */
  heldRows: number;
  /** Rows in a held status naming a worker that is not in the worker table: reported, never reaped. */
  heldByUnknown: number;
}

export function workerNames(cfg: WorkersConfig) {
  const r = cfg.runs;
  return {
    workers: qualifiedName(cfg.table, cfg.schema),
    id: quoteIdent(cfg.columns.id),
    heartbeat: quoteIdent(cfg.columns.heartbeat),
    status: cfg.columns.status ? quoteIdent(cfg.columns.status) : null,
    host: cfg.columns.host ? quoteIdent(cfg.columns.host) : null,
    runs: qualifiedName(r.table, r.schema),
    key: quoteIdent(r.key),
    worker: quoteIdent(r.worker),
    runStatus: quoteIdent(r.status),
    error: r.error ? quoteIdent(r.error) : null,
    updatedAt: r.updatedAt ? quoteIdent(r.updatedAt) : null,
    finishedAt: r.finishedAt ? quoteIdent(r.finishedAt) : null,
  };
}

/** The worker table (config workers.*) is there with its columns; one sentence naming the key otherwise. */
export async function assertWorkerTable(db: Database, cfg: WorkersConfig): Promise<void> {
  await db.assertColumns('workers', cfg.table, cfg.schema, { 'columns.id': cfg.columns.id, 'columns.heartbeat': cfg.columns.heartbeat, 'columns.status': cfg.columns.status, 'columns.host': cfg.columns.host });
}

/** The worker table and the work table (workers.runs.*). */
export async function assertWorkersSchema(db: Database, cfg: WorkersConfig): Promise<void> {
  await assertWorkerTable(db, cfg);
  const r = cfg.runs;
  await db.assertColumns('workers.runs', r.table, r.schema, { key: r.key, worker: r.worker, status: r.status, error: r.error, updatedAt: r.updatedAt, finishedAt: r.finishedAt });
}

const ISO = (col: string) => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** `w.<heartbeat> < now() - stale` with the threshold bound as `$n` (seconds). */
export const staleHeartbeat = (n: ReturnType<typeof workerNames>, param: string) => `w.${n.heartbeat} < now() - make_interval(secs => ${param}::float8)`;

/** Dead workers, longest silent first, with how many rows each still holds. `limit` 0 = all. */
export async function findDeadWorkers(db: Database, cfg: WorkersConfig, staleMs: number, limit: number, opts: { holdingOnly?: boolean } = {}): Promise<DeadWorker[]> {
  const n = workerNames(cfg);
  const holds = `EXISTS (SELECT 1 FROM ${n.runs} r WHERE r.${n.worker} = w.${n.id} AND r.${n.runStatus} = ANY($2::text[]))`;
  const rows = await db.query<{ id: string; host: string | null; status: string | null; heartbeat_at: string; silent_seconds: number; held: number }>(
    `SELECT w.${n.id}::text AS id, ${n.host ? `w.${n.host}::text` : 'NULL::text'} AS host, ${n.status ? `w.${n.status}::text` : 'NULL::text'} AS status,
            ${ISO(`w.${n.heartbeat}`)} AS heartbeat_at, extract(epoch FROM now() - w.${n.heartbeat})::float8 AS silent_seconds,
            (SELECT count(*) FROM ${n.runs} r WHERE r.${n.worker} = w.${n.id} AND r.${n.runStatus} = ANY($2::text[]))::int AS held
       FROM ${n.workers} w
      WHERE ${staleHeartbeat(n, '$1')}${opts.holdingOnly ? ` AND ${holds}` : ''}
      ORDER BY w.${n.heartbeat}, w.${n.id}${limit > 0 ? ` LIMIT ${Math.floor(limit)}` : ''}`,
    [staleMs / 1000, cfg.runs.heldStatuses],
  );
  return rows.map((r) => ({ id: r.id, host: r.host, status: r.status, heartbeatAt: r.heartbeat_at, silentSeconds: Math.floor(r.silent_seconds), held: r.held }));
}

export async function countWorkers(db: Database, cfg: WorkersConfig, staleMs: number): Promise<WorkerCounts> {
  const n = workerNames(cfg);
  const rows = await db.query<WorkerCounts>(
    `SELECT (SELECT count(*) FROM ${n.workers})::int AS workers,
            (SELECT count(*) FROM ${n.workers} w WHERE ${staleHeartbeat(n, '$1')})::int AS dead,
            (SELECT count(*) FROM ${n.workers} w WHERE w.${n.heartbeat} IS NULL)::int AS "neverHeartbeated",
            (SELECT count(*) FROM ${n.runs} r JOIN ${n.workers} w ON w.${n.id} = r.${n.worker}
              WHERE r.${n.runStatus} = ANY($2::text[]) AND ${staleHeartbeat(n, '$1')})::int AS "heldRows",
            (SELECT count(*) FROM ${n.runs} r
              WHERE r.${n.runStatus} = ANY($2::text[]) AND r.${n.worker} IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM ${n.workers} w WHERE w.${n.id} = r.${n.worker}))::int AS "heldByUnknown"`,
    [staleMs / 1000, cfg.runs.heldStatuses],
  );
  return rows[0];
}

/** A row of the work table held by a dead worker. */
export interface PlannedDeadWorkerReap {
  id: string;
  worker: string;
  status: string;
  /** The row's own age (updatedAt), when the table has that column: shown, never the criterion. */
  ageSeconds: number | null;
  /** How long its worker has been silent. */
  workerSilentSeconds: number;
  reason: string;
}

/** "reaped: worker w-7 stopped heartbeating (stale after 2m) while it held this run in running state". */
export function deadWorkerReason(template: string, vars: { worker: string; stale: string; status: string; reason?: string; actor: string }): string {
  let out = template
    .replaceAll('{worker}', vars.worker)
    .replaceAll('{stale}', vars.stale)
    .replaceAll('{status}', vars.status)
    .replaceAll('{actor}', vars.actor)
    .replaceAll('{reason}', vars.reason ?? '');
  if (vars.reason && !template.includes('{reason}')) out += ` (operator: ${vars.reason})`;
  return out;
}

export interface LiveWorkers {
  /** Worker id → dead now? (locked FOR SHARE: no heartbeat can commit until this transaction ends). */
  dead: Map<string, boolean>;
  /** Worker rows another transaction is writing right now (a heartbeat in progress?): not judged. */
  busy: Set<string>;
}

/**
 * Locks the holders' worker rows FOR SHARE, without waiting, and judges each on its newest
 * committed heartbeat. A heartbeat blocks behind the share lock until the batch commits, so
 * "still dead" holds for the rest of the transaction. Shared, so concurrent reapers don't
 * block each other; SKIP LOCKED, so a worker writing its heartbeat right now is never waited on.
 */
export async function lockHolders(tx: Database, cfg: WorkersConfig, staleMs: number, holders: string[]): Promise<LiveWorkers> {
  const n = workerNames(cfg);
  const unique = [...new Set(holders)];
  const rows = await tx.queryRaw<{ id: string; dead: boolean }>(
    `SELECT w.${n.id}::text AS id, coalesce(${staleHeartbeat(n, '$2')}, false) AS dead FROM ${n.workers} w WHERE w.${n.id}::text = ANY($1::text[]) FOR SHARE OF w SKIP LOCKED`,
    [unique, staleMs / 1000],
  );
  const dead = new Map(rows.map((r) => [r.id, r.dead]));
  const rest = unique.filter((h) => !dead.has(h));
  const busy = rest.length
    ? new Set((await tx.queryRaw<{ id: string }>(`SELECT w.${n.id}::text AS id FROM ${n.workers} w WHERE w.${n.id}::text = ANY($1::text[])`, [rest])).map((r) => r.id))
    : new Set<string>();
  return { dead, busy };
}

/** Why a planned holder is not (provably) dead at write time, or null when it is. */
export function holderVerdict(live: LiveWorkers, worker: string): string | null {
  const d = live.dead.get(worker);
  if (d === true) return null;
  if (d === false) return `worker ${worker} heartbeated again since the plan: it keeps the row`;
  if (live.busy.has(worker)) return `worker ${worker} is writing its heartbeat right now: left alone`;
  return `worker ${worker} is no longer registered: left alone`;
}

export interface DeadWorkerReapOptions {
  staleMs: number;
  reason?: string;
  actor: string;
  audit: Config['audit'];
}

/**
 * `reap --dead-workers`: rows held by dead workers, whatever their age, moved to the failed
 * status. The compare-and-set re-checks at write time that the row is still in a held status,
 * still names the planned worker, and that the worker is still dead (under its share lock).
 */
export function deadWorkerReapRemedy(cfg: WorkersConfig, opts: DeadWorkerReapOptions): Remedy<PlannedDeadWorkerReap> {
  const n = workerNames(cfg);
  const r = cfg.runs;
  const stale = formatDuration(opts.staleMs);
  const reasonFor = (worker: string, status: string) => deadWorkerReason(r.reasonTemplate, { worker, stale, status, reason: opts.reason, actor: opts.actor });
  return {
    action: 'reap',
    table: r.table,
    schema: r.schema,
    labels: { applied: 'reaped', lost: 'race-lost' },
    audit: { audit: opts.audit, actor: opts.actor },
    image: { table: r.table, schema: r.schema, key: r.key, columns: [r.status, r.updatedAt, r.finishedAt, r.error].filter((c): c is string => Boolean(c)) },
    async plan(db, limit) {
      const rows = await db.query<{ id: string; worker: string; status: string; age_seconds: number | null; silent_seconds: number }>(
        `SELECT r.${n.key}::text AS id, r.${n.worker}::text AS worker, r.${n.runStatus}::text AS status,
                ${n.updatedAt ? `extract(epoch FROM now() - r.${n.updatedAt})::float8` : 'NULL::float8'} AS age_seconds,
                extract(epoch FROM now() - w.${n.heartbeat})::float8 AS silent_seconds
           FROM ${n.runs} r JOIN ${n.workers} w ON w.${n.id} = r.${n.worker}
          WHERE r.${n.runStatus} = ANY($1::text[]) AND ${staleHeartbeat(n, '$2')}
          ORDER BY w.${n.heartbeat}, r.${n.key}${limit > 0 ? ` LIMIT ${Math.floor(limit)}` : ''}`,
        [r.heldStatuses, opts.staleMs / 1000],
      );
      return rows.map((x) => ({
        id: x.id,
        worker: x.worker,
        status: x.status,
        ageSeconds: x.age_seconds === null ? null : Math.floor(x.age_seconds),
        workerSilentSeconds: Math.floor(x.silent_seconds),
        reason: reasonFor(x.worker, x.status),
      }));
    },
    async applyBatch(tx, batch): Promise<ItemOutcome[]> {
      const live = await lockHolders(tx, cfg, opts.staleMs, batch.map((b) => b.worker));
      const verdict = new Map(batch.map((b) => [b.id, holderVerdict(live, b.worker)]));
      const eligible = batch.filter((b) => verdict.get(b.id) === null);
      const template = deadWorkerReason(r.reasonTemplate, { worker: '{worker}', stale, status: '{status}', reason: opts.reason, actor: opts.actor });
      const workerOf = new Map(eligible.map((b) => [b.id, b.worker]));
      const classified = eligible.length
        ? await lockThenClassify(tx, eligible, {
            async lockAndApply(t, ids) {
              const params: unknown[] = [ids, ids.map((id) => workerOf.get(id) ?? ''), ids, r.failedStatus, r.heldStatuses, opts.staleMs / 1000];
              const sets = [`${n.runStatus} = $4`, n.updatedAt ? `${n.updatedAt} = now()` : null, n.finishedAt ? `${n.finishedAt} = now()` : null];
              if (n.error) {
                params.push(template);
                sets.push(`${n.error} = replace(replace($${params.length}::text, '{status}', t.${n.runStatus}::text), '{worker}', t.${n.worker}::text)`);
              }
              // Lock what can be locked without waiting (a row its worker is writing is skipped),
              // then the compare-and-set: same holder as planned, still held, holder still dead
              // (re-read here too, on the snapshot taken after the share lock).
              const rows = await t.queryRaw<{ id: string; status: string; worker: string | null; updated: boolean }>(
                `WITH input AS (SELECT * FROM unnest($1::text[], $2::text[]) AS u(id, worker)),
                 locked AS (
                   SELECT t.${n.key} AS k, t.${n.runStatus}::text AS status, t.${n.worker}::text AS worker
                     FROM ${n.runs} t WHERE t.${n.key} = ANY($3) FOR UPDATE SKIP LOCKED
                 ), upd AS (
                   UPDATE ${n.runs} t SET ${sets.filter(Boolean).join(', ')}
                     FROM locked JOIN input ON input.id = locked.k::text
                    WHERE t.${n.key} = locked.k AND t.${n.runStatus} = ANY($5::text[]) AND t.${n.worker}::text = input.worker
                      AND EXISTS (SELECT 1 FROM ${n.workers} w WHERE w.${n.id} = t.${n.worker} AND ${staleHeartbeat(n, '$6')})
                RETURNING t.${n.key} AS k
                 )
                 SELECT locked.k::text AS id, locked.status, locked.worker, upd.k IS NOT NULL AS updated FROM locked LEFT JOIN upd ON upd.k = locked.k`,
                params,
              );
              return { locked: new Map(rows.map((x) => [x.id, x])), changed: new Map(rows.filter((x) => x.updated).map((x) => [x.id, true])) };
            },
            existsSql: `SELECT ${n.key}::text AS id FROM ${n.runs} WHERE ${n.key} = ANY($1)`,
            applied: (b) => ({
              audit: {
                kind: 'run.reaped_dead_worker',
                resourceType: r.table,
                resourceId: b.id,
                summary: b.reason,
                metadata: { run_id: b.id, worker: b.worker, from_status: b.status, to_status: r.failedStatus, stale, worker_silent_seconds: b.workerSilentSeconds, age_seconds: b.ageSeconds, reason: opts.reason ?? null },
              },
            }),
            lost: (_b, now) => `changed since the plan (now ${now.status}, worker ${now.worker ?? 'none'}): left alone`,
            skipped: 'locked by another transaction (its worker?); left alone',
            gone: 'row no longer exists',
          })
        : [];
      const done = new Map(classified.map((o) => [o.id, o]));
      return batch.map((b): ItemOutcome => {
        const why = verdict.get(b.id);
        if (why) return { id: b.id, outcome: live.busy.has(b.worker) ? 'skipped' : 'lost', detail: why };
        return done.get(b.id) ?? { id: b.id, outcome: 'errored', detail: 'no outcome reported' };
      });
    },
  };
}

export const workTableName = (cfg: WorkersConfig) => displayName(cfg.runs.table, cfg.runs.schema);
export const workerTableName = (cfg: WorkersConfig) => displayName(cfg.table, cfg.schema);

/** For `check`: dead workers still holding rows (a dead worker holding nothing is only noise). */
export async function deadWorkersCheck(db: Database, cfg: WorkersConfig, staleMs: number, itemLimit: number) {
  await assertWorkersSchema(db, cfg);
  const counts = await countWorkers(db, cfg, staleMs);
  const n = workerNames(cfg);
  const holding = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM ${n.workers} w WHERE ${staleHeartbeat(n, '$1')}
        AND EXISTS (SELECT 1 FROM ${n.runs} r WHERE r.${n.worker} = w.${n.id} AND r.${n.runStatus} = ANY($2::text[]))`,
    [staleMs / 1000, cfg.runs.heldStatuses],
  );
  const count = holding[0]?.n ?? 0;
  const items = count ? await findDeadWorkers(db, cfg, staleMs, itemLimit, { holdingOnly: true }) : [];
  const w = items[0];
  return {
    count,
    worst: w ? `${w.id}${w.host ? ` on ${w.host}` : ''} silent for ${formatDuration(w.silentSeconds * 1000)} holds ${w.held} row(s) (stale after ${formatDuration(staleMs)})` : null,
    items: items as unknown as Record<string, unknown>[],
    breakdown: { deadWorkers: counts.dead, heldRows: counts.heldRows, heldByUnknown: counts.heldByUnknown },
  };
}
