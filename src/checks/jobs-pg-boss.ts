import type { QueuePreset } from './queue-preset.js';
import { qualifiedName } from '../database/identifiers.js';
import { filterPredicates, limitClause, olderThan, type FilterColumns } from './jobs-sql.js';

/**
 * pg-boss 10.x (npm pg-boss, schema version 21+ of its `job` table, partitioned by queue
 * name). A job's name is its queue. Its own rules, which opsctl follows:
 * - stuck: state 'active' past its own expiration, started_on + expire_in < now() (its
 *   supervisor's failJobsByTimeout), or older than --older-than / jobs.rescueAfter if set;
 * - the timeout fails the job like any failure: state 'retry' while retry_count < retry_limit
 *   (with its retry_delay/backoff), else 'failed' with completed_on, copied to its dead_letter
 *   queue; a retry that would break a singleton/stately key becomes 'failed' instead;
 * - retry(name, id) of a failed job: state 'retry', retry_limit + 1; resume(name, id) of a
 *   cancelled job: state 'created', completed_on cleared.
 * - its maintenance moves failed jobs to `archive` (LIKE job, plus archived_on) once
 *   completed_on is older than archiveFailedAfterSeconds (default: archiveCompletedAfterSeconds,
 *   12 h): `jobs discarded` reads both tables; retry/resume only act on `job`, so does opsctl.
 * pg-boss 11+ replaced expire_in with expire_seconds: refused until supported.
 */

const COLS: FilterColumns = { kind: 'j.name', queue: null, id: 'j.id', idArrayType: 'uuid[]', finalizedAt: 'j.completed_on' };

const STUCK_TOKEN = `(j.started_on::text || '|' || j.retry_count::text)`;
const DISCARDED_TOKEN = `(j.state::text || '|' || coalesce(j.completed_on::text, ''))`;
/** pg-boss stores a failure as output: a serialized error ({message, stack}) or {value: …}. */
const LAST_ERROR = `coalesce(j.output ->> 'message', j.output -> 'value' ->> 'message', j.output #>> '{}')`;

const inStates = (states: string[]) => `j.state IN (${states.map((s) => `'${s}'`).join(', ')})`;
const discardedStates = (includeCancelled: boolean) => (includeCancelled ? ['failed', 'cancelled'] : ['failed']);

/** The columns pg-boss 10's failJobs copies when it re-inserts a failed job. */
const JOB_COLUMNS =
  'id, name, priority, data, state, retry_limit, retry_count, retry_delay, retry_backoff, start_after, started_on, singleton_key, singleton_on, expire_in, created_on, completed_on, keep_until, dead_letter, policy, output';

/** What the discarded listing reads, from the job table and the archive alike. */
const ARCHIVE_READ = 'id, name, state, retry_count, retry_limit, completed_on, output';

export const pgBossPreset: QueuePreset = {
  queue: 'pg-boss',
  label: 'pg-boss',
  defaultSchema: 'pgboss',
  table: 'job',
  requiredColumns: {
    job: ['id', 'name', 'state', 'retry_limit', 'retry_count', 'retry_delay', 'retry_backoff', 'start_after', 'started_on', 'completed_on', 'keep_until', 'output', 'dead_letter', 'policy'],
  },
  missingHint: 'start pg-boss against it once (it creates its schema), or set jobs.schema to the schema pg-boss uses.',
  unsupportedShape: (columns) =>
    columns.get('job')?.has('expire_in')
      ? null
      : 'this pg-boss schema has no job.expire_in column (pg-boss 11 or later): opsctl supports pg-boss 10.x; nothing was read.',
  defaultRescueAfter: null,
  runningState: 'active',
  discardedStates,
  describeStuck: (t) => (t ? `active for longer than ${t}` : 'active past their own expiration (started_on + expire_in)'),
  retryEffect: "failed → retry with retry_limit + 1 (pg-boss's retry); cancelled → created (its resume)",
  rescueEffect: "failed by timeout as pg-boss's supervisor does: retry when retries remain, else failed (and its dead letter queue)",
  idPattern: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
  idType: 'uuid',
  // The rescue deletes and re-inserts the job (failJobs): the columns it changes are imaged; a dead-letter copy it inserts is not.
  writes: { retry: ['state', 'retry_limit', 'completed_on'], rescue: ['state', 'start_after', 'completed_on', 'output'] },
  normalizeId: (id) => id.toLowerCase(),
  // A job's name is its queue, and pg-boss does not record the worker.
  namedQueues: false,
  recordsWorker: false,

  stuckSql(schema, f, params, limit) {
    const age = f.thresholdMs === null ? 'j.started_on + j.expire_in < now()' : olderThan('j.started_on', f.thresholdMs, params);
    const where = ["j.state = 'active'", age, ...filterPredicates(COLS, f, params)];
    return `SELECT j.id::text AS id, j.name AS kind, j.name AS queue, j.state::text AS state, j.retry_count::int AS attempt, j.retry_limit::int AS max_attempts,
                   j.started_on AS attempted_at, extract(epoch FROM now() - j.started_on)::float8 AS age_seconds,
                   NULL::text AS worker, extract(epoch FROM j.expire_in)::float8 AS limit_seconds,
                   CASE WHEN j.retry_count < j.retry_limit THEN 'retryable' ELSE 'discarded' END AS next_state,
                   ${STUCK_TOKEN} AS token
              FROM ${qualifiedName('job', schema)} j
             WHERE ${where.join(' AND ')}
             ORDER BY j.started_on, j.id${limitClause(limit)}`;
  },

  discardedSql(schema, f, includeCancelled, params, order, limit) {
    const where = [inStates(discardedStates(includeCancelled)), ...filterPredicates(COLS, f, params)];
    // The archive is `LIKE job` plus archived_on: the same columns, read through one relation.
    const source = f.includeArchived
      ? `(SELECT ${ARCHIVE_READ}, false AS archived FROM ${qualifiedName('job', schema)} UNION ALL SELECT ${ARCHIVE_READ}, true FROM ${qualifiedName('archive', schema)})`
      : qualifiedName('job', schema);
    return `SELECT j.id::text AS id, j.name AS kind, j.name AS queue, j.state::text AS state, j.retry_count::int AS attempt, j.retry_limit::int AS max_attempts,
                   j.completed_on AS finalized_at, extract(epoch FROM now() - j.completed_on)::float8 AS age_seconds,
                   ${LAST_ERROR} AS last_error, ${DISCARDED_TOKEN} AS token${f.includeArchived ? ', j.archived' : ''}
              FROM ${source} j
             WHERE ${where.join(' AND ')}
             ORDER BY j.completed_on ${order === 'newest' ? 'DESC' : 'ASC'} NULLS LAST, j.id${limitClause(limit)}`;
  },

  archive: {
    table: 'archive',
    note: "pg-boss moves failed jobs there after archiveFailedAfterSeconds (12 h by default) and deletes them after deleteAfterDays (7); its own retry and resume do not reach them, so opsctl lists them and does not retry them (send the job again from its data)",
  },

  lockSql: (schema) => `SELECT j.id::text AS id, j.state::text AS state FROM ${qualifiedName('job', schema)} j WHERE j.id = ANY($1::uuid[]) FOR UPDATE SKIP LOCKED`,
  existsSql: (schema) => `SELECT j.id::text AS id FROM ${qualifiedName('job', schema)} j WHERE j.id = ANY($1::uuid[])`,

  // pg-boss 10's failJobs (delete and re-insert, so a singleton/stately conflict lands in
  // 'failed' instead of erroring), driven by the planned ids with the CAS in the DELETE.
  rescueSql: (schema) => {
    const job = qualifiedName('job', schema);
    const state = qualifiedName('job_state', schema);
    const output = `jsonb_build_object('value', jsonb_build_object('message', opsctl_reason))`;
    return `
    WITH input AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS u(id, token, reason)),
    deleted_jobs AS (
      DELETE FROM ${job} j USING input
       WHERE j.id = input.id::uuid AND j.state = 'active' AND ${STUCK_TOKEN} = input.token
   RETURNING j.*, input.reason AS opsctl_reason
    ),
    retried_jobs AS (
      INSERT INTO ${job} (${JOB_COLUMNS})
      SELECT id, name, priority, data,
             CASE WHEN retry_count < retry_limit THEN 'retry'::${state} ELSE 'failed'::${state} END,
             retry_limit, retry_count, retry_delay, retry_backoff,
             CASE WHEN retry_count = retry_limit THEN start_after
                  WHEN NOT retry_backoff THEN now() + retry_delay * interval '1'
                  ELSE now() + (retry_delay * 2 ^ LEAST(16, retry_count + 1) / 2 + retry_delay * 2 ^ LEAST(16, retry_count + 1) / 2 * random()) * interval '1'
             END,
             started_on, singleton_key, singleton_on, expire_in, created_on,
             CASE WHEN retry_count < retry_limit THEN NULL ELSE now() END,
             keep_until, dead_letter, policy, ${output}
        FROM deleted_jobs
      ON CONFLICT DO NOTHING
   RETURNING *
    ),
    failed_jobs AS (
      INSERT INTO ${job} (${JOB_COLUMNS})
      SELECT id, name, priority, data, 'failed'::${state}, retry_limit, retry_count, retry_delay, retry_backoff, start_after, started_on,
             singleton_key, singleton_on, expire_in, created_on, now(), keep_until, dead_letter, policy, ${output}
        FROM deleted_jobs
       WHERE id NOT IN (SELECT id FROM retried_jobs)
   RETURNING *
    ),
    results AS (SELECT * FROM retried_jobs UNION ALL SELECT * FROM failed_jobs),
    dlq_jobs AS (
      INSERT INTO ${job} (name, data, output, retry_limit, keep_until)
      SELECT dead_letter, data, output, retry_limit, keep_until + (keep_until - start_after)
        FROM results
       WHERE state = 'failed' AND dead_letter IS NOT NULL AND NOT name = dead_letter
    )
    SELECT id::text AS id, CASE WHEN state = 'retry' THEN 'retryable' ELSE 'discarded' END AS result FROM results`;
  },

  retrySql: (schema, includeCancelled) => {
    const state = qualifiedName('job_state', schema);
    return `
    WITH input AS (SELECT * FROM unnest($1::text[], $2::text[]) AS u(id, token))
    UPDATE ${qualifiedName('job', schema)} j
       SET state = (CASE WHEN j.state = 'failed' THEN 'retry' ELSE 'created' END)::${state},
           retry_limit = CASE WHEN j.state = 'failed' THEN j.retry_limit + 1 ELSE j.retry_limit END,
           completed_on = CASE WHEN j.state = 'cancelled' THEN NULL ELSE j.completed_on END
      FROM input
     WHERE j.id = input.id::uuid AND ${inStates(discardedStates(includeCancelled))} AND ${DISCARDED_TOKEN} = input.token
 RETURNING j.id::text AS id, j.state::text AS state`;
  },
};
