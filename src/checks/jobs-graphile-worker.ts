import type { QueuePreset } from './queue-preset.js';
import { qualifiedName } from '../database/identifiers.js';
import { filterPredicates, limitClause, olderThan, type FilterColumns } from './jobs-sql.js';

/**
 * graphile-worker (npm graphile-worker 0.16–0.17, migrations 000001–000019): jobs live in
 * `graphile_worker._private_jobs`, task names in `_private_tasks`, named queues in
 * `_private_job_queues`. Completed jobs are deleted, so what is left is waiting, locked or
 * permanently failed. Its own rules, which opsctl follows:
 * - stuck: locked_at older than 4 hours (its resetLockedAt and admin functions use 4h);
 * - permanently failed: not locked and attempts >= max_attempts;
 * - its resetLockedAt rescues a stale lock by clearing locked_at/locked_by (job and queue)
 *   with run_at = greatest(run_at, now()), and nothing else: last_error (the job's real error)
 *   and updated_at stay; the attempt was already counted at fetch, so a job with no attempts
 *   left stays permanently failed. It frees any queue lock older than 4h on its own, too;
 * - its failure path (failJobs) sets last_error and run_at = greatest(now(), run_at) +
 *   exp(least(attempts, 10)) seconds, never updated_at; permanently_fail_jobs and
 *   reschedule_jobs set updated_at. When a job failed is the later of the two;
 * - reschedule_jobs(ids, run_at, …, max_attempts) changes only rows not locked (or stale).
 *   opsctl's retry is that call with run_at now and max_attempts = attempts + 1: one more
 *   attempt, like River's retry, keeping attempts and last_error.
 */

/**
 * When the job last failed: its failure path's run_at minus the backoff it added, or updated_at
 * if later (permanently_fail_jobs). A job left exhausted by resetLockedAt (its pool died) has
 * no failure time of its own: it shows up to exp(min(attempts, 10)) s before its recovery.
 */
const FAILED_AT = `greatest(j.updated_at, j.run_at - exp(least(j.attempts, 10)) * interval '1 second')`;

const COLS: FilterColumns = { kind: 't.identifier', queue: 'q.queue_name', id: 'j.id', idArrayType: 'bigint[]', finalizedAt: FAILED_AT };

const STUCK_TOKEN = `(j.locked_at::text || '|' || coalesce(j.locked_by, ''))`;
const FAILED_TOKEN = `(j.attempts::text || '|' || j.max_attempts::text || '|' || j.updated_at::text || '|' || j.run_at::text)`;
const QUEUE_LOCK_TOKEN = `(q.locked_at::text || '|' || coalesce(q.locked_by, ''))`;
const PERMANENTLY_FAILED = 'j.locked_at IS NULL AND j.attempts >= j.max_attempts';

const names = (schema: string | null) => ({
  jobs: qualifiedName('_private_jobs', schema),
  tasks: qualifiedName('_private_tasks', schema),
  queues: qualifiedName('_private_job_queues', schema),
});

const from = (schema: string | null) => {
  const n = names(schema);
  return `${n.jobs} j JOIN ${n.tasks} t ON t.id = j.task_id LEFT JOIN ${n.queues} q ON q.id = j.job_queue_id`;
};

export const graphileWorkerPreset: QueuePreset = {
  queue: 'graphile-worker',
  label: 'graphile-worker',
  defaultSchema: 'graphile_worker',
  table: '_private_jobs',
  requiredColumns: {
    _private_jobs: ['id', 'job_queue_id', 'task_id', 'run_at', 'attempts', 'max_attempts', 'last_error', 'updated_at', 'locked_at', 'locked_by'],
    _private_tasks: ['id', 'identifier'],
    _private_job_queues: ['id', 'queue_name', 'locked_at', 'locked_by'],
  },
  missingHint: "run graphile-worker's migrations there (graphile-worker 0.16 or later; e.g. `graphile-worker --schema-only`), or set jobs.schema to its schema.",
  defaultRescueAfter: '4h',
  runningState: 'locked',
  discardedStates: () => ['failed'],
  describeStuck: (t) => `locked for longer than ${t}`,
  retryEffect: 'run_at → now, max_attempts → attempts + 1 (graphile_worker.reschedule_jobs), attempts and last_error kept',
  rescueEffect:
    'locked_at/locked_by cleared on the job and its queue, run_at → now, last_error and updated_at kept (its resetLockedAt; the reason goes to the audit row); no attempts left → stays permanently failed; stale queue locks freed',
  reasonInAuditOnly: true,
  idPattern: /^\d{1,19}$/,
  idType: 'bigint',
  // The rescue also frees the job's named queue (its own lock row, not imaged: a revert does not take a dead worker's queue lock again).
  writes: { retry: ['run_at', 'max_attempts', 'updated_at'], rescue: ['locked_at', 'locked_by', 'run_at'] },

  stuckSql(schema, f, params, limit) {
    const where = ['j.locked_at IS NOT NULL', olderThan('j.locked_at', f.thresholdMs ?? 4 * 3_600_000, params), ...filterPredicates(COLS, f, params)];
    return `SELECT j.id::text AS id, t.identifier AS kind, q.queue_name AS queue, 'locked' AS state, j.attempts::int AS attempt, j.max_attempts::int AS max_attempts,
                   j.locked_at AS attempted_at, extract(epoch FROM now() - j.locked_at)::float8 AS age_seconds,
                   j.locked_by AS worker, NULL::float8 AS limit_seconds,
                   CASE WHEN j.attempts < j.max_attempts THEN 'retryable' ELSE 'discarded' END AS next_state,
                   ${STUCK_TOKEN} AS token
              FROM ${from(schema)}
             WHERE ${where.join(' AND ')}
             ORDER BY j.locked_at, j.id${limitClause(limit)}`;
  },

  discardedSql(schema, f, _includeCancelled, params, order, limit) {
    const where = [PERMANENTLY_FAILED, ...filterPredicates(COLS, f, params)];
    return `SELECT j.id::text AS id, t.identifier AS kind, q.queue_name AS queue, 'failed' AS state, j.attempts::int AS attempt, j.max_attempts::int AS max_attempts,
                   ${FAILED_AT} AS finalized_at, extract(epoch FROM now() - ${FAILED_AT})::float8 AS age_seconds,
                   j.last_error, ${FAILED_TOKEN} AS token
              FROM ${from(schema)}
             WHERE ${where.join(' AND ')}
             ORDER BY ${FAILED_AT} ${order === 'newest' ? 'DESC' : 'ASC'}, j.id${limitClause(limit)}`;
  },

  lockSql: (schema) =>
    `SELECT j.id::text AS id,
            CASE WHEN j.locked_at IS NOT NULL THEN 'locked' WHEN j.attempts >= j.max_attempts THEN 'failed' ELSE 'waiting' END AS state
       FROM ${names(schema).jobs} j WHERE j.id = ANY($1::bigint[]) FOR UPDATE SKIP LOCKED`,
  existsSql: (schema) => `SELECT j.id::text AS id FROM ${names(schema).jobs} j WHERE j.id = ANY($1::bigint[])`,

  // resetLockedAt for the planned jobs only, with the CAS: the same lock (locked_at, locked_by);
  // it writes nothing else, so neither does opsctl (input.reason is for the audit row only).
  // The job's named queue was locked by the same worker at the same time: it is released too.
  rescueSql: (schema) => {
    const n = names(schema);
    return `
    WITH input AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS u(id, token, reason)),
    rescued AS (
      UPDATE ${n.jobs} j
         SET locked_at = NULL, locked_by = NULL, run_at = greatest(j.run_at, now())
        FROM input
       WHERE j.id = input.id::bigint AND j.locked_at IS NOT NULL AND ${STUCK_TOKEN} = input.token
   RETURNING j.id, j.job_queue_id, j.attempts, j.max_attempts, substr(input.token, strpos(input.token, '|') + 1) AS old_worker
    ),
    released AS (
      UPDATE ${n.queues} q SET locked_at = NULL, locked_by = NULL
        FROM rescued r
       WHERE q.id = r.job_queue_id AND q.locked_by = r.old_worker
    )
    SELECT id::text AS id, CASE WHEN attempts < max_attempts THEN 'retryable' ELSE 'discarded' END AS result FROM rescued`;
  },

  retrySql: (schema) => `
    WITH input AS (SELECT * FROM unnest($1::text[], $2::text[]) AS u(id, token))
    UPDATE ${names(schema).jobs} j
       SET run_at = now(), max_attempts = (j.attempts + 1)::smallint, updated_at = now()
      FROM input
     WHERE j.id = input.id::bigint AND ${PERMANENTLY_FAILED} AND ${FAILED_TOKEN} = input.token
 RETURNING j.id::text AS id, 'waiting' AS state`,

  // A queue lock older than the threshold whose worker holds no job of that queue: resetLockedAt
  // frees it (locked_at/locked_by cleared, nothing else); a lock with a stuck job behind it is
  // freed with that job's rescue instead.
  queueLocks: {
    table: '_private_job_queues',
    staleSql(schema, thresholdMs, params, limit) {
      const n = names(schema);
      return `SELECT q.id::text AS id, q.queue_name AS queue, q.locked_at, q.locked_by,
                     extract(epoch FROM now() - q.locked_at)::float8 AS age_seconds, ${QUEUE_LOCK_TOKEN} AS token
                FROM ${n.queues} q
               WHERE q.locked_at IS NOT NULL AND ${olderThan('q.locked_at', thresholdMs ?? 4 * 3_600_000, params)}
                 AND NOT EXISTS (SELECT 1 FROM ${n.jobs} j WHERE j.job_queue_id = q.id AND j.locked_at IS NOT NULL AND j.locked_by IS NOT DISTINCT FROM q.locked_by)
               ORDER BY q.locked_at, q.id${limitClause(limit)}`;
    },
    writes: ['locked_at', 'locked_by'],
    releaseSql: (schema) => `
      WITH input AS (SELECT * FROM unnest($1::text[], $2::text[]) AS u(id, token))
      UPDATE ${names(schema).queues} q SET locked_at = NULL, locked_by = NULL
        FROM input
       WHERE q.id = input.id::int AND q.locked_at IS NOT NULL AND ${QUEUE_LOCK_TOKEN} = input.token
   RETURNING q.id::text AS id`,
  },
};
