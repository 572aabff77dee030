import type { Database } from '../database/database.js';
import type { Config } from '../config/config.js';
import { displayName, qualifiedName } from '../database/identifiers.js';
import { dependencyError, usageError } from '../errors.js';

export interface AuditEntry {
  kind: string;
  resourceType: string;
  resourceId: string;
  summary: string;
  metadata: Record<string, unknown>;
  teamId?: string | null;
  /**
   * What the change overwrote (images.ts): the columns it wrote with their old values, the
   * whole row a purge deleted, an AWS group's tags (`{tags}`); null: there was nothing (a create).
   * Stored as metadata.before.
   */
  before?: Record<string, unknown> | null;
  /** The same columns as the row holds them after the write (after its BEFORE triggers); null: deleted. Stored as metadata.after. */
  after?: Record<string, unknown> | null;
}

/** The metadata an entry is stored with: its own, plus its before/after images when it has them. */
export function storedMetadata(e: AuditEntry): Record<string, unknown> {
  if (e.before === undefined && e.after === undefined) return e.metadata;
  return { ...e.metadata, ...(e.before !== undefined ? { before: e.before } : {}), ...(e.after !== undefined ? { after: e.after } : {}) };
}

/**
 * Writes audit rows in the caller's transaction (so an audit row exists iff the change
 * committed). The table has the reference `audit_log` shape: id, team_id, user_id, actor,
 * kind, resource_type, resource_id, summary, metadata jsonb, created_at.
 */
export async function writeAudit(tx: Database, audit: Config['audit'], actor: string, entries: AuditEntry[], shape?: AuditShape): Promise<void> {
  if (!audit.table || entries.length === 0) return;
  const table = qualifiedName(audit.table, audit.schema);
  // jsonb_populate_recordset casts each field to the table's own column types (uuid or text ids alike).
  await tx.queryRaw(
    `INSERT INTO ${table} (actor, kind, resource_type, resource_id, summary, metadata, team_id, created_at)
     SELECT e.actor, e.kind, e.resource_type, e.resource_id, e.summary, e.metadata, e.team_id, now()
       FROM jsonb_populate_recordset(NULL::${table}, $1::jsonb) AS e`,
    [
      JSON.stringify(
        entries.map((e) => {
          // An id the column cannot hold (a group name in a uuid column): NULL there, kept in metadata.
          const fits = !shape || shape.fits(e.resourceId);
          const metadata = storedMetadata(e);
          return {
            actor,
            kind: e.kind,
            resource_type: e.resourceType,
            resource_id: fits ? e.resourceId : null,
            summary: e.summary,
            metadata: fits ? metadata : { ...metadata, resource_id: e.resourceId },
            team_id: e.teamId ?? null,
          };
        }),
      ),
    ],
  );
}

/** How the audit table takes a resource id, read from the catalog (auditShape). */
export interface AuditShape {
  /** Whether resource_id can hold this id as it is; if not, it is written NULL and the id goes in metadata. */
  fits(resourceId: string): boolean;
}

/** The columns writeAudit names; with what it puts there, for changes with no tenant (AWS). */
const WRITTEN: Record<string, { category: string; what: string } | null> = {
  actor: { category: 'S', what: 'text' },
  kind: { category: 'S', what: 'text' },
  resource_type: { category: 'S', what: 'text' },
  resource_id: null,
  summary: { category: 'S', what: 'text' },
  metadata: null,
  team_id: null,
  created_at: null,
};
/** The longest resource id an AWS change carries: a schedule group name (1-64 characters). */
const MAX_ID = 64;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** How a resource_id column of this type takes an id: text up to its length (varchar(n)/char(n): atttypmod is n + 4), a uuid column a UUID. */
function idFits(rid: { category: string; type: string; typmod: number }): { maxLen: number; fits: (id: string) => boolean } {
  const maxLen = rid.category === 'S' && rid.typmod > 4 ? rid.typmod - 4 : Infinity;
  return { maxLen, fits: (id: string) => (rid.category === 'S' ? id.length <= maxLen : rid.type === 'uuid' && UUID.test(id)) };
}

/**
 * How the audit table's resource_id takes an id, read from the catalog (one query, no other
 * check): for a run record, written at the end of a run whose changes the table already took.
 * A missing column or table is left to the INSERT to refuse.
 */
export async function auditIdShape(db: Database, audit: Config['audit']): Promise<AuditShape> {
  const rows = await db.query<{ category: string; type: string; typmod: number }>(
    `SELECT t.typcategory AS category, format_type(a.atttypid, NULL) AS type, a.atttypmod AS typmod
       FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
      WHERE a.attrelid = to_regclass($1) AND a.attname = 'resource_id' AND NOT a.attisdropped`,
    [qualifiedName(audit.table as string, audit.schema)],
  );
  const rid = rows[0];
  return { fits: rid ? idFits(rid).fits : () => true };
}

/**
 * Before the first change of a run whose changes cannot be rolled back (AWS): can every audit
 * entry it makes be recorded in audit.table? Read from the catalog: the table, the columns
 * writeAudit names, their types, NOT NULL columns it leaves empty, and the INSERT privilege.
 * A table that does not take what opsctl writes is a config that does not match the database
 * (exit 2); a missing privilege is PostgreSQL refusing us (exit 3), as for any other statement.
 */
export async function auditShape(db: Database, audit: Config['audit']): Promise<AuditShape | undefined> {
  if (!audit.table) return undefined;
  const name = displayName(audit.table, audit.schema);
  const cols = await db.query<{ name: string; category: string; type: string; typmod: number; notnull: boolean; filled: boolean; insert: boolean }>(
    `SELECT a.attname AS name, t.typcategory AS category, format_type(a.atttypid, NULL) AS type, a.atttypmod AS typmod, a.attnotnull AS notnull,
            (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '') AS filled, has_column_privilege(a.attrelid, a.attnum, 'INSERT') AS insert
       FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
      WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`,
    [qualifiedName(audit.table, audit.schema)],
  );
  const nothing = 'Nothing was changed.';
  if (cols.length === 0) throw usageError(`audit table ${name} (config audit.table) does not exist in ${db.target}. ${nothing}`);
  const byName = new Map(cols.map((c) => [c.name, c]));
  for (const [col, want] of Object.entries(WRITTEN)) {
    const c = byName.get(col);
    if (!c) throw usageError(`audit table ${name} has no column "${col}", which opsctl writes (the reference audit_log shape). ${nothing}`);
    if (want && c.category !== want.category) throw usageError(`column "${col}" of audit table ${name} is ${c.type}, not ${want.what}. ${nothing}`);
  }
  const metadata = byName.get('metadata')!;
  if (metadata.type !== 'jsonb' && metadata.type !== 'json') throw usageError(`column "metadata" of audit table ${name} is ${metadata.type}, not jsonb. ${nothing}`);
  const denied = Object.keys(WRITTEN).filter((col) => !byName.get(col)!.insert);
  if (denied.length) {
    throw dependencyError(`PostgreSQL does not allow ${db.target}'s user to INSERT into the audit table ${name} (${denied.join(', ')}): grant it, or unset audit.table to use the local journal. ${nothing}`);
  }
  const rid = byName.get('resource_id')!;
  const { maxLen, fits } = idFits(rid);
  // Left NULL by opsctl: team_id (no tenant), resource_id when an id does not fit (a schedule
  // group name is up to 64 characters); the columns it does not name get their defaults.
  const empty = [
    ...cols.filter((c) => c.notnull && !c.filled && !(c.name in WRITTEN)).map((c) => c.name),
    ...(byName.get('team_id')!.notnull ? ['team_id'] : []),
    ...(rid.notnull && !(rid.category === 'S' && maxLen >= MAX_ID) ? ['resource_id'] : []),
  ];
  if (empty.length) {
    throw usageError(
      `audit table ${name} requires ${empty.map((c) => `"${c}"`).join(', ')} (NOT NULL), which opsctl cannot fill for these changes${empty.includes('resource_id') ? ` (resource_id is ${rid.type}; a schedule group name goes there only into text, or NULL with the name in metadata)` : ''}. ${nothing}`,
    );
  }
  return { fits };
}
