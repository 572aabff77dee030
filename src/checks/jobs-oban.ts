import type { QueuePreset } from './queue-preset.js';
import { qualifiedName } from '../database/identifiers.js';
import { filterPredicates, limitClause, olderThan, type FilterColumns } from './jobs-sql.js';

/**
 * Oban (Elixir, github.com/oban-bg/oban) 2.17+, `oban_jobs` (migrations V1–V12;
 * src/reference/queues/oban.ts models it). Its timestamps are `timestamp` holding UTC, so
 * every comparison is against timezone('UTC', now()) and every timestamp read is turned into
 * a timestamptz. Its own rules, which opsctl follows:
 * - stuck: state 'executing' and attempted_at older than the Lifeline plugin's rescue_after
 *   (default 60 minutes);
 * - Lifeline's rescue: `available` when attempt < max_attempts, else `discarded` with
 *   discarded_at; nothing else is written (no error entry, scheduled_at kept);
 * - retry_job / retry_all_jobs: `available`, scheduled_at now, max_attempts =
 *   GREATEST(max_attempts, attempt + 1), completed_at, cancelled_at and discarded_at cleared;
 *   attempt and errors kept.
 */

const NOW = `timezone('UTC', now())`;
const utc = (column: string) => `(${column} AT TIME ZONE 'UTC')`;
const FINALIZED = `coalesce(j.discarded_at, j.cancelled_at)`;

const COLS: FilterColumns = { kind: 'j.worker', queue: 'j.queue', id: 'j.id', idArrayType: 'bigint[]', finalizedAt: utc(FINALIZED) };

const STUCK_TOKEN = `(j.attempted_at::text || '|' || j.attempt::text)`;
const DISCARDED_TOKEN = `(j.state::text || '|' || coalesce(${FINALIZED}::text, ''))`;

const inStates = (states: string[]) => `j.state IN (${states.map((s) => `'${s}'`).join(', ')})`;
const discardedStates = (includeCancelled: boolean) => (includeCancelled ? ['discarded', 'cancelled'] : ['discarded']);

export const obanPreset: QueuePreset = {
  queue: 'oban',
  label: 'Oban',
  defaultSchema: 'public',
  table: 'oban_jobs',
  requiredColumns: {
    oban_jobs: ['id', 'state', 'queue', 'worker', 'errors', 'attempt', 'max_attempts', 'scheduled_at', 'attempted_at', 'attempted_by', 'completed_at', 'discarded_at', 'cancelled_at'],
  },
  missingHint: "run Oban's migrations there (Oban.Migration up to V12), or set jobs.schema to Oban's prefix.",
  defaultRescueAfter: '1h',
  runningState: 'executing',
  discardedStates,
  describeStuck: (t) => `executing for longer than ${t}`,
  retryEffect: "state → available, scheduled_at → now, max_attempts → GREATEST(max_attempts, attempt + 1), completed/cancelled/discarded_at cleared (Oban's retry_job)",
  rescueEffect: "state → available (attempts left) or discarded with discarded_at, nothing else written (Oban's Lifeline plugin; the reason goes to the audit row)",
  reasonInAuditOnly: true,
  idPattern: /^\d{1,19}$/,
  idType: 'bigint',
  writes: { retry: ['state', 'max_attempts', 'scheduled_at', 'completed_at', 'cancelled_at', 'discarded_at'], rescue: ['state', 'discarded_at'] },

  stuckSql(schema, f, params, limit) {
    // attempted_at holds UTC: compared as a timestamptz against now().
    const where = ["j.state = 'executing'", olderThan(utc('j.attempted_at'), f.thresholdMs ?? 3_600_000, params), ...filterPredicates(COLS, f, params)];
    return `SELECT j.id::text AS id, j.worker AS kind, j.queue, j.state::text AS state, j.attempt::int AS attempt, j.max_attempts::int AS max_attempts,
                   ${utc('j.attempted_at')} AS attempted_at, extract(epoch FROM ${NOW} - j.attempted_at)::float8 AS age_seconds,
                   array_to_string(j.attempted_by, '/') AS worker, NULL::float8 AS limit_seconds,
                   CASE WHEN j.attempt < j.max_attempts THEN 'available' ELSE 'discarded' END AS next_state,
                   ${STUCK_TOKEN} AS token
              FROM ${qualifiedName('oban_jobs', schema)} j
             WHERE ${where.join(' AND ')}
             ORDER BY j.attempted_at, j.id${limitClause(limit)}`;
  },

  discardedSql(schema, f, includeCancelled, params, order, limit) {
    const where = [inStates(discardedStates(includeCancelled)), ...filterPredicates(COLS, f, params)];
    return `SELECT j.id::text AS id, j.worker AS kind, j.queue, j.state::text AS state, j.attempt::int AS attempt, j.max_attempts::int AS max_attempts,
                   ${utc(FINALIZED)} AS finalized_at, extract(epoch FROM ${NOW} - ${FINALIZED})::float8 AS age_seconds,
                   (j.errors[array_upper(j.errors, 1)]) ->> 'error' AS last_error,
                   ${DISCARDED_TOKEN} AS token
              FROM ${qualifiedName('oban_jobs', schema)} j
             WHERE ${where.join(' AND ')}
             ORDER BY ${FINALIZED} ${order === 'newest' ? 'DESC' : 'ASC'}, j.id${limitClause(limit)}`;
  },

  lockSql: (schema) => `SELECT j.id::text AS id, j.state::text AS state FROM ${qualifiedName('oban_jobs', schema)} j WHERE j.id = ANY($1::bigint[]) FOR UPDATE SKIP LOCKED`,
  existsSql: (schema) => `SELECT j.id::text AS id FROM ${qualifiedName('oban_jobs', schema)} j WHERE j.id = ANY($1::bigint[])`,

  // Lifeline's two updates in one, for the planned jobs, with the CAS: still executing, same attempt and attempted_at.
  rescueSql: (schema) => `
    WITH input AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS u(id, token, reason))
    UPDATE ${qualifiedName('oban_jobs', schema)} j
       SET state = (CASE WHEN j.attempt < j.max_attempts THEN 'available' ELSE 'discarded' END)::${qualifiedName('oban_job_state', schema)},
           discarded_at = CASE WHEN j.attempt < j.max_attempts THEN j.discarded_at ELSE ${NOW} END
      FROM input
     WHERE j.id = input.id::bigint AND j.state = 'executing' AND ${STUCK_TOKEN} = input.token
 RETURNING j.id::text AS id, j.state::text AS result`,

  // retry_all_jobs, with the CAS: same state and discarded/cancelled time as planned.
  retrySql: (schema, includeCancelled) => `
    WITH input AS (SELECT * FROM unnest($1::text[], $2::text[]) AS u(id, token))
    UPDATE ${qualifiedName('oban_jobs', schema)} j
       SET state = 'available', max_attempts = greatest(j.max_attempts, j.attempt + 1), scheduled_at = ${NOW},
           completed_at = NULL, cancelled_at = NULL, discarded_at = NULL
      FROM input
     WHERE j.id = input.id::bigint AND ${inStates(discardedStates(includeCancelled))} AND ${DISCARDED_TOKEN} = input.token
 RETURNING j.id::text AS id, j.state::text AS state`,
};
