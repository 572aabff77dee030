import type pg from 'pg';
import type { SchedulerEmulator } from '../emulator/scheduler-emulator.js';
import { REFERENCE_SCHEMA_SQL } from '../reference/schema.js';
import { RIVER_SCHEMA_SQL } from '../reference/queues/river.js';
import { SCHEDULER_SCHEMA_SQL } from '../reference/scheduler.js';

/** Kinds the demo's worker knows; `seat_sync_v2` is written by a newer writer than the worker. */
export const DEMO_KNOWN_KINDS = ['tier_elevation', 'seat_sync', 'plan_change'];

/** Realistic trouble on the reference schemas: what an on-call engineer meets at 3 a.m. */
export async function seedDatabase(client: pg.Client): Promise<void> {
  await client.query(REFERENCE_SCHEMA_SQL);
  await seedRiver(client);
  await seedWorkers(client);
  await client.query(`
    INSERT INTO purchase_executions (status, updated_at, created_at)
    SELECT s, now() - m * interval '1 minute', now() - (m + 5) * interval '1 minute'
      FROM (VALUES ('running', 47), ('running', 132), ('approved', 25), ('approved', 610), ('running', 3),
                   ('approved', 1), ('completed', 300), ('failed', 900), ('pending', 400), ('running', 6)) AS v(s, m);
  `);
  // Dead letters: one dominant error with varying ids, a few others, and unknown kinds.
  await client.query(`
    INSERT INTO pending_propagations (kind, team_id, attempts, last_attempt_at, last_error, next_attempt_at, failed_at, created_at)
    SELECT 'tier_elevation', gen_random_uuid(), 10, now() - i * interval '7 minutes',
           'billing-api: POST /v1/teams/' || gen_random_uuid() || '/tier: 503 Service Unavailable after ' || (28000 + i * 37) || 'ms',
           now() - i * interval '7 minutes', now() - i * interval '7 minutes', now() - interval '2 days'
      FROM generate_series(1, 18) i;
    INSERT INTO pending_propagations (kind, team_id, attempts, last_error, next_attempt_at, failed_at, created_at)
    VALUES ('plan_change', gen_random_uuid(), 10, 'pq: duplicate key value violates unique constraint "team_plans_team_id_key"', now() - interval '3 hours', now() - interval '3 hours', now() - interval '2 days'),
           ('seat_sync', gen_random_uuid(), 10, 'context deadline exceeded', now() - interval '50 minutes', now() - interval '50 minutes', now() - interval '1 day'),
           ('seat_sync_v2', gen_random_uuid(), 10, 'no handler registered for kind "seat_sync_v2"', now() - interval '20 minutes', now() - interval '20 minutes', now() - interval '33 hours'),
           ('seat_sync_v2', gen_random_uuid(), 10, 'no handler registered for kind "seat_sync_v2"', now() - interval '10 minutes', now() - interval '10 minutes', now() - interval '33 hours');
    -- Pending rows in trouble: overdue (nobody picks them up), near the dead-letter bound, unknown kind.
    INSERT INTO pending_propagations (kind, team_id, attempts, last_error, next_attempt_at, created_at)
    VALUES ('tier_elevation', gen_random_uuid(), 2, 'billing-api: 503', now() - interval '2 hours', now() - interval '3 hours'),
           ('plan_change', gen_random_uuid(), 9, 'context deadline exceeded', now() + interval '10 hours', now() - interval '30 hours'),
           ('seat_sync_v2', gen_random_uuid(), 4, 'no handler registered for kind "seat_sync_v2"', now() + interval '30 minutes', now() - interval '2 hours'),
           ('seat_sync', gen_random_uuid(), 0, NULL, now() + interval '1 minute', now());
    -- Healthy history.
    INSERT INTO pending_propagations (kind, team_id, attempts, applied_at, created_at)
    SELECT 'tier_elevation', gen_random_uuid(), 1, now() - i * interval '1 hour', now() - i * interval '1 hour' FROM generate_series(1, 25) i;
  `);
}

/** A River queue (our own DDL of River's table shape) with jobs stuck running, discarded and healthy. */
async function seedRiver(client: pg.Client): Promise<void> {
  await client.query(RIVER_SCHEMA_SQL);
  await client.query(`
    INSERT INTO river_job (state, kind, queue, args, attempt, max_attempts, attempted_at, attempted_by, finalized_at, scheduled_at, errors)
    VALUES
      ('running', 'import_csv', 'default', '{}', 1, 25, now() - interval '3 hours', ARRAY['web-7f9c'], NULL, now() - interval '3 hours', NULL),
      ('running', 'send_email', 'mailers', '{}', 3, 3, now() - interval '95 minutes', ARRAY['web-7f9c'], NULL, now() - interval '95 minutes', NULL),
      ('running', 'send_email', 'mailers', '{}', 1, 3, now() - interval '2 minutes', ARRAY['web-2a1b'], NULL, now() - interval '2 minutes', NULL),
      ('discarded', 'sync_invoice', 'default', '{}', 25, 25, now() - interval '40 minutes', ARRAY['web-2a1b'], now() - interval '40 minutes', now() - interval '2 days',
        ARRAY['{"at": "2026-11-25T10:00:00Z", "attempt": 25, "error": "stripe: invoice in_1Q2w3E4r5T6y not found (404)", "trace": ""}'::jsonb]),
      ('discarded', 'sync_invoice', 'default', '{}', 25, 25, now() - interval '25 minutes', ARRAY['web-2a1b'], now() - interval '25 minutes', now() - interval '2 days',
        ARRAY['{"at": "2026-11-25T11:00:00Z", "attempt": 25, "error": "stripe: invoice in_9Z8x7C6v5B4n not found (404)", "trace": ""}'::jsonb]),
      ('completed', 'send_email', 'mailers', '{}', 1, 3, now() - interval '1 hour', ARRAY['web-2a1b'], now() - interval '1 hour', now() - interval '1 hour', NULL);
  `);
}

/** Workers that heartbeat (the scheduler schema): one gone silent while it holds two runs, its lock expired. */
async function seedWorkers(client: pg.Client): Promise<void> {
  await client.query(SCHEDULER_SCHEMA_SQL);
  await client.query(`
    INSERT INTO scheduler.workers (id, host, status, last_heartbeat_at)
    VALUES ('worker-a1', 'ip-10-0-3-17', 'active', now() - interval '25 minutes'),
           ('worker-b2', 'ip-10-0-4-42', 'active', now() - interval '4 seconds');
    INSERT INTO scheduler.runs (status, worker_id, started_at, updated_at)
    VALUES ('running', 'worker-a1', now() - interval '31 minutes', now() - interval '26 minutes'),
           ('running', 'worker-a1', now() - interval '28 minutes', now() - interval '26 minutes'),
           ('running', 'worker-b2', now() - interval '3 minutes', now() - interval '5 seconds'),
           ('succeeded', 'worker-a1', now() - interval '2 hours', now() - interval '110 minutes');
    INSERT INTO scheduler.locks (name, holder, acquired_at, expires_at)
    VALUES ('nightly-billing-run', 'worker-a1', now() - interval '30 minutes', now() - interval '20 minutes'),
           ('hourly-usage-rollup', 'worker-b2', now() - interval '1 minute', now() + interval '4 minutes');
  `);
}

export const DEMO_OWNER_TAGS = { 'alchemy::stack': 'billing', 'alchemy::stage': 'prod', 'alchemy::id': '{name}' };
export const DEMO_DESIRED_TAGS = { team: 'payments' };

const owner = (name: string) => ({ 'alchemy::stack': 'billing', 'alchemy::stage': 'prod', 'alchemy::id': name });

export function seedScheduler(emu: SchedulerEmulator): void {
  emu.seedGroup('billing-renewals', { ...owner('billing-renewals'), team: 'payments' });
  emu.seedGroup('billing-dunning', { ...owner('billing-dunning'), team: 'payments' });
  emu.seedSchedule('billing-renewals', 'nightly-renewals');
  emu.seedSchedule('billing-dunning', 'dunning-retry');
  emu.seedGroup('billing-invoices'); // created by hand in the console: unowned
  emu.seedGroup('billing-trials', { owner: 'alice' }); // a user's tag, no ownership tags: unowned
  emu.seedGroup('growth-campaigns', { 'alchemy::stack': 'growth', 'alchemy::stage': 'prod', 'alchemy::id': 'growth-campaigns' }); // foreign
  emu.seedGroup('billing-credits', { ...owner('billing-credits'), team: 'finance', 'alchemy::legacy-id': 'credits' }); // drifted
}

/** The demo's config: reference defaults plus ownership and known kinds. */
export function demoConfig(): Record<string, unknown> {
  return {
    actor: 'opsctl-demo',
    audit: { table: 'audit_log' },
    propagations: { knownKinds: DEMO_KNOWN_KINDS },
    jobs: { queue: 'river' },
    workers: { enabled: true },
    scheduleGroups: {
      ownerTags: DEMO_OWNER_TAGS,
      ownerKeyPrefix: 'alchemy::',
      desiredTags: DEMO_DESIRED_TAGS,
      expected: ['billing-renewals', 'billing-dunning', 'billing-refunds'],
      conflictDelay: '200ms',
    },
  };
}

/**
 * The demo's fake AWS secret. Every message masks the AWS secret by value: a short one such as
 * "demo" would blank the database, the actor and the directory named after the demo.
 */
export const DEMO_AWS_SECRET = 'opsctl-demo-not-a-secret';

/** How often the healthy worker heartbeats while `demo --keep` waits (its staleness bound is 2m). */
export const DEMO_HEARTBEAT_MS = 5000;

/**
 * What the healthy worker (worker-b2) does while it lives: heartbeat, touch its running run and
 * renew its lock. Without it, minutes into `demo --keep` it looks dead and its rows get reaped.
 */
export async function heartbeatHealthyWorker(client: pg.Client): Promise<void> {
  await client.query(`
    UPDATE scheduler.workers SET last_heartbeat_at = now() WHERE id = 'worker-b2';
    UPDATE scheduler.runs SET updated_at = now() WHERE worker_id = 'worker-b2' AND status = 'running';
    UPDATE scheduler.locks SET expires_at = now() + interval '4 minutes' WHERE holder = 'worker-b2';
  `);
}
