/**
 * The reference schemas of shared/reference/source-systems.md, as SQL. Used by the tests,
 * the demo and the benchmarks, so all three exercise the shapes opsctl's defaults target.
 */
export const PURCHASE_EXECUTIONS_SQL = `
CREATE TABLE IF NOT EXISTS purchase_executions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  execution_id uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
  status varchar(32) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','notified','approved','running','completed','partially_completed','failed','cancelled','canceled','expired','paused','revocation_requested','scheduled')),
  error text,
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_at timestamptz NOT NULL DEFAULT now(),
  transitioned_by uuid,
  transitioned_at timestamptz
);
CREATE INDEX IF NOT EXISTS purchase_executions_status_idx ON purchase_executions (status);
CREATE OR REPLACE FUNCTION purchase_executions_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
DROP TRIGGER IF EXISTS purchase_executions_touch ON purchase_executions;
CREATE TRIGGER purchase_executions_touch BEFORE UPDATE ON purchase_executions
  FOR EACH ROW EXECUTE FUNCTION purchase_executions_touch();
`;

export const PENDING_PROPAGATIONS_SQL = `
CREATE TABLE IF NOT EXISTS pending_propagations (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  kind text NOT NULL,
  team_id uuid NOT NULL,
  target_tier text,
  payload jsonb NOT NULL DEFAULT '{}',
  attempts int NOT NULL DEFAULT 0,
  last_attempt_at timestamptz,
  last_error text,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  applied_at timestamptz,
  failed_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS pending_propagations_due_idx ON pending_propagations (next_attempt_at) WHERE applied_at IS NULL AND failed_at IS NULL;
CREATE INDEX IF NOT EXISTS pending_propagations_dead_idx ON pending_propagations (failed_at) WHERE failed_at IS NOT NULL;
`;

export const AUDIT_LOG_SQL = `
CREATE TABLE IF NOT EXISTS audit_log (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  team_id uuid,
  user_id uuid,
  actor text NOT NULL,
  kind text NOT NULL,
  resource_type text NOT NULL,
  resource_id text NOT NULL,
  summary text NOT NULL,
  metadata jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now()
);
`;

export const REFERENCE_SCHEMA_SQL = PURCHASE_EXECUTIONS_SQL + PENDING_PROPAGATIONS_SQL + AUDIT_LOG_SQL;
