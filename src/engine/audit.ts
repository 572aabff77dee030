import type { Database } from '../database/database.js';
import type { Config } from '../config/config.js';
import { qualifiedName } from '../database/identifiers.js';

export interface AuditEntry {
  kind: string;
  resourceType: string;
  resourceId: string;
  summary: string;
  metadata: Record<string, unknown>;
  teamId?: string | null;
}

/**
 * Writes audit rows in the caller's transaction (so an audit row exists iff the change
 * committed). The table has the reference `audit_log` shape: id, team_id, user_id, actor,
 * kind, resource_type, resource_id, summary, metadata jsonb, created_at.
 */
export async function writeAudit(tx: Database, audit: Config['audit'], actor: string, entries: AuditEntry[]): Promise<void> {
  if (!audit.table || entries.length === 0) return;
  const table = qualifiedName(audit.table, audit.schema);
  // jsonb_populate_recordset casts each field to the table's own column types (uuid or text ids alike).
  await tx.queryRaw(
    `INSERT INTO ${table} (actor, kind, resource_type, resource_id, summary, metadata, team_id, created_at)
     SELECT e.actor, e.kind, e.resource_type, e.resource_id, e.summary, e.metadata, e.team_id, now()
       FROM jsonb_populate_recordset(NULL::${table}, $1::jsonb) AS e`,
    [
      JSON.stringify(
        entries.map((e) => ({
          actor,
          kind: e.kind,
          resource_type: e.resourceType,
          resource_id: e.resourceId,
          summary: e.summary,
          metadata: e.metadata,
          team_id: e.teamId ?? null,
        })),
      ),
    ],
  );
}
