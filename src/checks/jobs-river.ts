import type { QueuePreset } from './queue-preset.js';
import { qualifiedName } from '../database/identifiers.js';
import { filterPredicates, limitClause, olderThan, type FilterColumns } from './jobs-sql.js';

/**
 * River (github.com/riverqueue/river), `river_job` as of main migration 006/007 (River v0.12
 * and later; its rescue_count since v0.26; src/reference/queues/river.ts models the table).
 * Its own rules, which opsctl follows:
 * - stuck: state 'running' and attempted_at older than RescueStuckJobsAfter (default 1h);
 * - its rescuer (JobRescuer + JobRescueMany) makes a stuck job `cancelled` when a cancel was
 *   requested, else `retryable` when attempt < max_attempts, scheduled by the client retry
 *   policy, else `discarded`; cancelled and discarded get finalized_at and keep scheduled_at.
 *   Every rescued job gets an error entry {at, attempt, error, trace} and
 *   metadata."river:rescue_count" + 1 (a non-number counts as 0);
 * - DefaultClientRetryPolicy: (len(errors) + 1)^4 seconds from now, ±10% uniform jitter,
 *   capped at the longest Go time.Duration (~292 years). It counts errors, not attempts, so
 *   snoozes do not lengthen the backoff. opsctl cannot know a worker's own NextRetry: it uses
 *   the default policy, as River does for workers that do not override it;
 * - JobRetry makes a job `available` now, clears finalized_at and raises max_attempts by one
 *   only when attempt = max_attempts, keeping attempt, errors and metadata.
 */

const COLS: FilterColumns = { kind: 'j.kind', queue: 'j.queue', id: 'j.id', idArrayType: 'bigint[]', finalizedAt: 'j.finalized_at' };

/** River's own cancel request (JobCancel on a running job sets metadata.cancel_attempted_at). */
const CANCEL_REQUESTED = `j.metadata ? 'cancel_attempted_at'`;
/** DefaultClientRetryPolicy's NextRetry for the rescued job, in seconds (errors before the rescue's entry). */
const RETRY_SECONDS = `least(power(coalesce(array_length(j.errors, 1), 0) + 1, 4) * (1 + (random() * 0.2 - 0.1)), 9223372036.854775807)`;
/** JobRescueMany's metadata update. */
const RESCUE_COUNT = `j.metadata || jsonb_build_object('river:rescue_count', coalesce(CASE WHEN jsonb_typeof(j.metadata -> 'river:rescue_count') = 'number' THEN (j.metadata ->> 'river:rescue_count')::int END, 0) + 1)`;
const STUCK_TOKEN = `(j.attempted_at::text || '|' || j.attempt::text)`;
const DISCARDED_TOKEN = `(j.state::text || '|' || coalesce(j.finalized_at::text, ''))`;

const inStates = (states: string[]) => `j.state IN (${states.map((s) => `'${s}'`).join(', ')})`;
const discardedStates = (includeCancelled: boolean) => (includeCancelled ? ['discarded', 'cancelled'] : ['discarded']);

export const riverPreset: QueuePreset = {
  queue: 'river',
  label: 'River',
  defaultSchema: null,
  table: 'river_job',
  requiredColumns: {
    river_job: ['id', 'state', 'attempt', 'max_attempts', 'attempted_at', 'attempted_by', 'finalized_at', 'scheduled_at', 'kind', 'queue', 'errors', 'metadata'],
  },
  missingHint: "run River's migrations there (river migrate-up), or set jobs.schema to the schema that holds river_job.",
  defaultRescueAfter: '1h',
  runningState: 'running',
  discardedStates,
  describeStuck: (t) => `running for longer than ${t}`,
  retryEffect: "state → available, scheduled_at → now, finalized_at cleared, max_attempts + 1 when attempt = max_attempts (River's JobRetry)",
  rescueEffect:
    "state → retryable (attempts left; scheduled by River's default retry policy, (errors + 1)^4 s ±10%) or discarded, an error entry appended and metadata river:rescue_count + 1 (River's rescuer)",
  idPattern: /^\d{1,19}$/,
  idType: 'bigint',
  writes: { retry: ['state', 'finalized_at', 'scheduled_at', 'max_attempts'], rescue: ['state', 'finalized_at', 'scheduled_at', 'errors', 'metadata'] },

  stuckSql(schema, f, params, limit) {
    const where = ["j.state = 'running'", olderThan('j.attempted_at', f.thresholdMs ?? 3_600_000, params), ...filterPredicates(COLS, f, params)];
    return `SELECT j.id::text AS id, j.kind, j.queue, j.state::text AS state, j.attempt::int AS attempt, j.max_attempts::int AS max_attempts,
                   j.attempted_at, extract(epoch FROM now() - j.attempted_at)::float8 AS age_seconds,
                   j.attempted_by[array_upper(j.attempted_by, 1)] AS worker, NULL::float8 AS limit_seconds,
                   CASE WHEN ${CANCEL_REQUESTED} THEN 'cancelled' WHEN j.attempt < j.max_attempts THEN 'retryable' ELSE 'discarded' END AS next_state,
                   ${STUCK_TOKEN} AS token
              FROM ${qualifiedName('river_job', schema)} j
             WHERE ${where.join(' AND ')}
             ORDER BY j.attempted_at, j.id${limitClause(limit)}`;
  },

  discardedSql(schema, f, includeCancelled, params, order, limit) {
    const where = [inStates(discardedStates(includeCancelled)), ...filterPredicates(COLS, f, params)];
    return `SELECT j.id::text AS id, j.kind, j.queue, j.state::text AS state, j.attempt::int AS attempt, j.max_attempts::int AS max_attempts,
                   j.finalized_at, extract(epoch FROM now() - j.finalized_at)::float8 AS age_seconds,
                   (j.errors[array_upper(j.errors, 1)]) ->> 'error' AS last_error,
                   ${DISCARDED_TOKEN} AS token
              FROM ${qualifiedName('river_job', schema)} j
             WHERE ${where.join(' AND ')}
             ORDER BY j.finalized_at ${order === 'newest' ? 'DESC' : 'ASC'}, j.id${limitClause(limit)}`;
  },

  lockSql: (schema) => `SELECT j.id::text AS id, j.state::text AS state FROM ${qualifiedName('river_job', schema)} j WHERE j.id = ANY($1::bigint[]) FOR UPDATE SKIP LOCKED`,
  existsSql: (schema) => `SELECT j.id::text AS id FROM ${qualifiedName('river_job', schema)} j WHERE j.id = ANY($1::bigint[])`,

  // River's JobRescueMany, with the CAS: still running, same attempt and attempted_at as planned.
  rescueSql: (schema) => `
    WITH input AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS u(id, token, reason))
    UPDATE ${qualifiedName('river_job', schema)} j
       SET state = (CASE WHEN ${CANCEL_REQUESTED} THEN 'cancelled' WHEN j.attempt < j.max_attempts THEN 'retryable' ELSE 'discarded' END)::${qualifiedName('river_job_state', schema)},
           finalized_at = CASE WHEN ${CANCEL_REQUESTED} OR j.attempt >= j.max_attempts THEN now() END,
           scheduled_at = CASE WHEN NOT ${CANCEL_REQUESTED} AND j.attempt < j.max_attempts THEN now() + ${RETRY_SECONDS} * interval '1 second' ELSE j.scheduled_at END,
           errors = array_append(j.errors, jsonb_build_object('at', now(), 'attempt', greatest(j.attempt, 0), 'error', input.reason, 'trace', '')),
           metadata = ${RESCUE_COUNT}
      FROM input
     WHERE j.id = input.id::bigint AND j.state = 'running' AND ${STUCK_TOKEN} = input.token
 RETURNING j.id::text AS id, j.state::text AS result`,

  // River's JobRetry, with the CAS: same state and finalized_at as planned.
  retrySql: (schema, includeCancelled) => `
    WITH input AS (SELECT * FROM unnest($1::text[], $2::text[]) AS u(id, token))
    UPDATE ${qualifiedName('river_job', schema)} j
       SET state = 'available', finalized_at = NULL, scheduled_at = now(),
           max_attempts = CASE WHEN j.attempt = j.max_attempts THEN j.max_attempts + 1 ELSE j.max_attempts END
      FROM input
     WHERE j.id = input.id::bigint AND ${inStates(discardedStates(includeCancelled))} AND ${DISCARDED_TOKEN} = input.token
 RETURNING j.id::text AS id, j.state::text AS state`,
};
