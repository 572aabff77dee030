/**
 * River's table shape (github.com/riverqueue/river), written by this project from River's
 * documented facts, for the tests and the demo: it models River v0.26 (main migration line
 * up to 007; `river_job` has not changed since 006 — 007 only adds a notification outbox).
 *
 * What the presets rely on, and so what this keeps exactly:
 * - the state enum with `pending` (since 004), in River's order;
 * - `finalized_at` set exactly when the state is cancelled, completed or discarded;
 * - `errors jsonb[]` of {at, attempt, error, trace}, `metadata jsonb` (cancel_attempted_at,
 *   river:rescue_count), `attempted_by text[]`;
 * - uniqueness: `unique_key bytea` with `unique_states bit(8)`, one bit per state
 *   (available is get_bit 7, the last character of the bit string … scheduled get_bit 0),
 *   enforced by a partial unique index, so a retry
 *   into a covered state can fail with 23505 as it does under River;
 * - the fetch index (state, queue, priority, scheduled_at, id) and the finalized index.
 * River's client and leader tables are left out: nothing in opsctl reads them.
 */

const STATES = ['available', 'cancelled', 'completed', 'discarded', 'pending', 'retryable', 'running', 'scheduled'] as const;
export const RIVER_JOB_STATES: readonly string[] = STATES;

/** River's version this models, recorded in river_migration as its migrator would. */
export const RIVER_MAIN_MIGRATION_VERSION = 7;

/** The DDL, created in `schema` when given (else the search_path's first schema). */
export function riverSchemaSql(schema?: string): string {
  const enumList = STATES.map((s) => `'${s}'`).join(', ');
  return `
${schema ? `CREATE SCHEMA IF NOT EXISTS "${schema}"; SET search_path TO "${schema}";` : ''}
CREATE TYPE river_job_state AS ENUM (${enumList});

-- True when the state's bit is set: get_bit 7 for the first state of the enum, get_bit 0 for the last.
-- No type or table names in the body: index maintenance runs it with a restricted search_path.
CREATE FUNCTION river_job_state_in_bitmask(bitmask bit(8), state river_job_state) RETURNS boolean
  LANGUAGE sql IMMUTABLE
  AS $fn$ SELECT coalesce(get_bit(bitmask, 8 - array_position(ARRAY[${enumList}]::text[], state::text)) = 1, false) $fn$;

CREATE TABLE river_job (
  id            bigserial PRIMARY KEY,
  state         river_job_state NOT NULL DEFAULT 'available',
  attempt       smallint NOT NULL DEFAULT 0,
  max_attempts  smallint NOT NULL CHECK (max_attempts > 0),
  attempted_at  timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now(),
  finalized_at  timestamptz,
  scheduled_at  timestamptz NOT NULL DEFAULT now(),
  priority      smallint NOT NULL DEFAULT 1 CHECK (priority BETWEEN 1 AND 4),
  args          jsonb NOT NULL,
  attempted_by  text[],
  errors        jsonb[],
  kind          text NOT NULL CHECK (char_length(kind) BETWEEN 1 AND 127),
  metadata      jsonb NOT NULL DEFAULT '{}',
  queue         text NOT NULL DEFAULT 'default' CHECK (char_length(queue) BETWEEN 1 AND 127),
  tags          varchar(255)[] NOT NULL DEFAULT '{}',
  unique_key    bytea,
  unique_states bit(8),
  CONSTRAINT finalized_or_finalized_at_null CHECK ((finalized_at IS NOT NULL) = (state IN ('cancelled', 'completed', 'discarded')))
);

CREATE INDEX river_job_kind ON river_job (kind);
CREATE INDEX river_job_state_and_finalized_at_index ON river_job (state, finalized_at) WHERE finalized_at IS NOT NULL;
CREATE INDEX river_job_prioritized_fetching_index ON river_job (state, queue, priority, scheduled_at, id);
CREATE INDEX river_job_args_index ON river_job USING gin (args);
CREATE INDEX river_job_metadata_index ON river_job USING gin (metadata);
CREATE UNIQUE INDEX river_job_unique_idx ON river_job (unique_key)
  WHERE unique_key IS NOT NULL AND unique_states IS NOT NULL AND river_job_state_in_bitmask(unique_states, state);

CREATE TABLE river_queue (
  name       text PRIMARY KEY,
  created_at timestamptz NOT NULL DEFAULT now(),
  metadata   jsonb NOT NULL DEFAULT '{}',
  paused_at  timestamptz,
  updated_at timestamptz NOT NULL
);

CREATE TABLE river_migration (
  line       text NOT NULL CHECK (char_length(line) BETWEEN 1 AND 127),
  version    bigint NOT NULL CHECK (version >= 1),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (line, version)
);
INSERT INTO river_migration (line, version) SELECT 'main', v FROM generate_series(1, ${RIVER_MAIN_MIGRATION_VERSION}) v;
${schema ? 'RESET search_path;' : ''}
`;
}

export const RIVER_SCHEMA_SQL = riverSchemaSql();
