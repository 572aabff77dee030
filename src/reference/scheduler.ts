/**
 * The scheduler of shared/reference/source-systems.md section 5, as our own DDL: a `scheduler`
 * schema with schedules, triggers, runs, workers (registered, heartbeating), locks,
 * execution_logs and audit. Section 5 names the tables and the technique (stale heartbeats,
 * pg_try_advisory_lock), not the columns: the columns here are the shape opsctl's `workers`
 * defaults assume, written for opsctl's tests and its demo.
 */
export const SCHEDULER_SCHEMA_SQL = `
CREATE SCHEMA IF NOT EXISTS scheduler;

CREATE TABLE IF NOT EXISTS scheduler.workers (
  id text PRIMARY KEY,
  host text NOT NULL,
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'draining', 'stopped')),
  started_at timestamptz NOT NULL DEFAULT now(),
  -- Written by the worker every few seconds; a stale value means the worker is gone.
  last_heartbeat_at timestamptz
);

CREATE TABLE IF NOT EXISTS scheduler.schedules (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL UNIQUE,
  cron text NOT NULL,
  enabled boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS scheduler.triggers (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  schedule_id uuid NOT NULL REFERENCES scheduler.schedules(id),
  fire_at timestamptz NOT NULL,
  fired_at timestamptz
);

CREATE TABLE IF NOT EXISTS scheduler.runs (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  schedule_id uuid REFERENCES scheduler.schedules(id),
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
  -- The worker holding the run. No foreign key: workers are deregistered while their runs stay.
  worker_id text,
  error text,
  started_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS runs_worker_running_idx ON scheduler.runs (worker_id) WHERE status = 'running';

CREATE TABLE IF NOT EXISTS scheduler.locks (
  name text PRIMARY KEY,
  holder text NOT NULL,
  acquired_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS scheduler.execution_logs (
  id bigserial PRIMARY KEY,
  run_id uuid NOT NULL REFERENCES scheduler.runs(id),
  at timestamptz NOT NULL DEFAULT now(),
  line text NOT NULL
);

CREATE TABLE IF NOT EXISTS scheduler.audit (
  id bigserial PRIMARY KEY,
  actor text NOT NULL,
  action text NOT NULL,
  detail jsonb NOT NULL DEFAULT '{}',
  at timestamptz NOT NULL DEFAULT now()
);
`;
