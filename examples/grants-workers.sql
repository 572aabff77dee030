-- Least-privilege grants for the dead-worker commands on the reference scheduler schema
-- (workers.* config keys: scheduler.workers, scheduler.runs, scheduler.locks). Run after
-- grants.sql, as the schema owner: it extends the same two roles.

-- Read-only: `workers dead`, `locks expired`, `reap --dead-workers` (dry run), the
-- dead-workers check of `opsctl check`.
GRANT USAGE ON SCHEMA scheduler TO opsctl_readonly;
GRANT SELECT ON scheduler.workers, scheduler.runs, scheduler.locks TO opsctl_readonly;

-- Operator: `reap --dead-workers --apply`. The FOR SHARE lock that keeps heartbeats out
-- during the write needs UPDATE on one column of the worker table; opsctl never writes it.
GRANT UPDATE (status, error, updated_at, finished_at) ON scheduler.runs TO opsctl_operator;
GRANT UPDATE (host) ON scheduler.workers TO opsctl_operator;
