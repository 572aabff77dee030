import type { Database } from '../database/database.js';
import type { Config, PropagationsConfig } from '../config/config.js';
import { qualifiedName, quoteIdent } from '../database/identifiers.js';

/**
 * The outbox table (`pending_propagations` by default) as configured: quoted names, the
 * schema check. A row is pending while applied_at and failed_at are both NULL, applied once
 * applied_at is set, a dead letter once failed_at is set.
 */
export function propagationNames(cfg: PropagationsConfig) {
  const c = cfg.columns;
  return {
    table: qualifiedName(cfg.table, cfg.schema),
    id: quoteIdent(c.id),
    kind: quoteIdent(c.kind),
    attempts: quoteIdent(c.attempts),
    lastAttemptAt: quoteIdent(c.lastAttemptAt),
    lastError: quoteIdent(c.lastError),
    nextAttemptAt: quoteIdent(c.nextAttemptAt),
    appliedAt: quoteIdent(c.appliedAt),
    failedAt: quoteIdent(c.failedAt),
    createdAt: quoteIdent(c.createdAt),
    /** An expression, not a column: NULL when the table has no tenant column. */
    teamId: c.teamId ? `${quoteIdent(c.teamId)}::text` : 'NULL::text',
  };
}
export type PropagationNames = ReturnType<typeof propagationNames>;

/** Fails with a sentence naming the config key (propagations.table, propagations.columns.*). */
export async function assertPropagationsSchema(db: Database, cfg: PropagationsConfig): Promise<void> {
  await db.assertColumns('propagations', cfg.table, cfg.schema, {});
  await db.assertColumns('propagations.columns', cfg.table, cfg.schema, cfg.columns, ['lastAttemptAt', 'nextAttemptAt', 'appliedAt', 'failedAt', 'createdAt']);
}

/** Before an --apply that writes audit rows: a misconfigured audit table would fail every batch. */
export async function assertAuditSchema(db: Database, audit: Config['audit']): Promise<void> {
  if (!audit.table) return;
  await db.assertColumns('audit', audit.table, audit.schema, {});
}

/**
 * Appends a condition with its bound parameter; returns the SQL. Keeps optional filters as
 * separate predicates (not `$1 IS NULL OR …`) so the partial indexes stay usable.
 */
export function bind(params: unknown[], value: unknown): string {
  params.push(value);
  return `$${params.length}`;
}
