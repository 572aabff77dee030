/**
 * Oban's table shape (github.com/oban-bg/oban, Elixir), written by this project from Oban's
 * documented facts, for the tests: it models `oban_jobs` as Oban's PostgreSQL migrations
 * V1–V12 leave it (Oban 2.17 and later, Oban Web's shape).
 *
 * What the oban preset relies on, and so what this keeps exactly:
 * - the state enum (available, scheduled, executing, retryable, completed, discarded, cancelled);
 * - `timestamp without time zone` columns holding UTC (Oban writes DateTime.utc_now());
 * - `errors jsonb[]` of {attempt, at, error}, NOT NULL, default empty;
 * - attempt_range (0 ≤ attempt ≤ max_attempts): a retry must raise max_attempts, which Oban's
 *   retry_job does with GREATEST(max_attempts, attempt + 1);
 * - the fetch index (state, queue, priority, scheduled_at, id).
 */

export const OBAN_JOB_STATES = ['available', 'scheduled', 'executing', 'retryable', 'completed', 'discarded', 'cancelled'] as const;

/** The DDL, created in `schema` when given (Oban's prefix; default public). */
export function obanSchemaSql(schema?: string): string {
  return `
${schema ? `CREATE SCHEMA IF NOT EXISTS "${schema}"; SET search_path TO "${schema}";` : ''}
CREATE TYPE oban_job_state AS ENUM (${OBAN_JOB_STATES.map((s) => `'${s}'`).join(', ')});

CREATE TABLE oban_jobs (
  id           bigserial PRIMARY KEY,
  state        oban_job_state NOT NULL DEFAULT 'available',
  queue        text NOT NULL DEFAULT 'default',
  worker       text NOT NULL,
  args         jsonb NOT NULL DEFAULT '{}',
  errors       jsonb[] NOT NULL DEFAULT ARRAY[]::jsonb[],
  attempt      integer NOT NULL DEFAULT 0,
  max_attempts integer NOT NULL DEFAULT 20,
  inserted_at  timestamp NOT NULL DEFAULT timezone('UTC', now()),
  scheduled_at timestamp NOT NULL DEFAULT timezone('UTC', now()),
  attempted_at timestamp,
  completed_at timestamp,
  attempted_by text[],
  discarded_at timestamp,
  priority     integer NOT NULL DEFAULT 0,
  tags         text[] DEFAULT ARRAY[]::text[],
  meta         jsonb DEFAULT '{}',
  cancelled_at timestamp,
  CONSTRAINT attempt_range CHECK (attempt >= 0 AND attempt <= max_attempts),
  CONSTRAINT positive_max_attempts CHECK (max_attempts > 0),
  CONSTRAINT queue_length CHECK (char_length(queue) > 0 AND char_length(queue) < 128),
  CONSTRAINT worker_length CHECK (char_length(worker) > 0 AND char_length(worker) < 128),
  CONSTRAINT priority_range CHECK (priority BETWEEN 0 AND 9)
);

CREATE INDEX oban_jobs_state_queue_priority_scheduled_at_id_index ON oban_jobs (state, queue, priority, scheduled_at, id);
CREATE INDEX oban_jobs_args_index ON oban_jobs USING gin (args);
CREATE INDEX oban_jobs_meta_index ON oban_jobs USING gin (meta);

CREATE UNLOGGED TABLE oban_peers (
  name       text PRIMARY KEY,
  node       text NOT NULL,
  started_at timestamp NOT NULL,
  expires_at timestamp NOT NULL
);
${schema ? 'RESET search_path;' : ''}
`;
}

export const OBAN_SCHEMA_SQL = obanSchemaSql();
