-- Least-privilege PostgreSQL roles for opsctl on the reference schemas.
-- Run as the schema owner; replace the passwords. Advisory locks need no privilege.

-- Read-only: `executions stuck`, `propagations dead-letters|pending`, `check`, and every dry run.
CREATE ROLE opsctl_readonly LOGIN PASSWORD 'change-me-readonly';
GRANT USAGE ON SCHEMA public TO opsctl_readonly;
GRANT SELECT ON purchase_executions, pending_propagations TO opsctl_readonly;

-- Operator: everything above plus `reap --apply`, `propagations retry|purge --apply`.
-- SELECT … FOR UPDATE needs UPDATE on the table; the column lists keep writes to what opsctl sets.
CREATE ROLE opsctl_operator LOGIN PASSWORD 'change-me-operator';
GRANT opsctl_readonly TO opsctl_operator;
GRANT UPDATE (status, error, updated_at, transitioned_at) ON purchase_executions TO opsctl_operator;
GRANT UPDATE (failed_at, attempts, next_attempt_at) ON pending_propagations TO opsctl_operator;
GRANT DELETE ON pending_propagations TO opsctl_operator;          -- only for `propagations purge`
GRANT SELECT, INSERT ON audit_log TO opsctl_operator;              -- only when audit.table is set
