import { CommandContext } from '../cli/context.js';
import type { Column, Section } from '../output/output.js';
import type { AuditRecord, JournalRecord } from '../checks/show-item.js';
import type { Database } from '../database/database.js';

/** One line of the vertical layout: a field and its whole value (never cut). */
export interface Field {
  field: string;
  value: unknown;
}

export interface ShowResult {
  command: string;
  headline: string;
  fields: Field[];
  /** The json/ndjson `item`. */
  item: Record<string, unknown>;
  /** undefined: no audit table is configured. */
  audit: AuditRecord[] | undefined;
  /** AWS items: the local journal's lines for this item. */
  journal?: JournalRecord[];
  notes?: string[];
}

/** The fields of a row in its own column order, a configured role named beside its column ("state (status)"). */
export function rowFields(row: Record<string, unknown>, roles: Record<string, string>): Field[] {
  return Object.entries(row).map(([column, value]) => {
    const role = roles[column];
    // Objects and arrays (jsonb, errors arrays of jsonb) as the JSON they are, whole.
    return { field: role && role !== column ? `${column} (${role})` : column, value: value !== null && typeof value === 'object' ? JSON.stringify(value) : value };
  });
}

/**
 * One item whole. Table: a vertical "field  value" table (one row per field, values whole),
 * then an "Audit history" section (and "Local journal" for AWS items). json: one object
 * `{ item, audit }` (pretty); ndjson: the same object on one line.
 */
export async function emitShow(ctx: CommandContext, r: ShowResult): Promise<number> {
  const format = ctx.format;
  const doc = { item: r.item, audit: r.audit ?? [], ...(r.journal ? { journal: r.journal } : {}) };
  // A context that collects results instead of printing them (each target of a fleet run, see
  // on-targets.ts) gets the document as its one item: written here, it would bypass the collection.
  if (ctx.emit !== CommandContext.prototype.emit) {
    return ctx.emit({ command: r.command, mode: 'read', items: [doc], columns: [{ header: 'item', value: (d) => d.item }], summary: () => ({}) });
  }
  if (format === 'json' || format === 'ndjson') {
    const text = format === 'json' ? JSON.stringify(doc, bigintText, 2) : JSON.stringify(doc, bigintText);
    await new Promise<void>((resolve, reject) => ctx.io.stdout.write(`${text}\n`, (e) => (e ? reject(e) : resolve())));
    return 0;
  }
  const history: Column<AuditRecord>[] = [
    { header: 'at', value: (a) => a.createdAt },
    { header: 'kind', value: (a) => a.kind },
    { header: 'actor', value: (a) => a.actor },
    // Free text: cut to the terminal's width (a pipe, -o wide and json keep it whole).
    { header: 'summary', value: (a) => a.summary, shrink: true },
  ];
  const journal: Column<JournalRecord>[] = [
    { header: 'at', value: (j) => j.at },
    { header: 'kind', value: (j) => j.kind },
    { header: 'actor', value: (j) => j.actor },
    { header: 'summary', value: (j) => j.summary, shrink: true },
  ];
  const sections: Section[] = [];
  if (r.audit?.length) sections.push({ title: 'Audit history (newest first)', columns: history, rows: r.audit });
  if (r.journal?.length) sections.push({ title: 'Local journal (newest first)', columns: journal, rows: r.journal });
  const notes = [...(r.notes ?? [])];
  if (r.audit === undefined) {
    if (!r.journal) notes.push('No audit history: audit.table is not configured.');
    else if (r.journal.length === 0) notes.push('No audit history: audit.table is not configured, and no line of the local journal names this item.');
  } else if (r.audit.length === 0) notes.push('Audit history: none (no audit row names this item).');
  if (r.audit !== undefined && r.journal && r.journal.length === 0) notes.push('Local journal: no line names this item.');
  return ctx.emit<Field>({
    command: r.command,
    mode: 'read',
    items: r.fields,
    columns: [
      { header: 'field', value: (f) => f.field },
      { header: 'value', value: (f) => f.value },
    ],
    headline: r.headline,
    sections: () => sections,
    notes: () => notes,
    summary: () => ({}),
  });
}

function bigintText(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}

/**
 * One item (found by `find`) and its audit history, read in one READ ONLY transaction. With no
 * audit table, its history is the local journal's lines of this database instead.
 */
export async function readWithAudit<I extends { id: string }>(
  ctx: CommandContext,
  table: string,
  find: (ro: Database) => Promise<I>,
): Promise<{ item: I; audit: AuditRecord[] | undefined; journal?: JournalRecord[] }> {
  const config = await ctx.config();
  const { auditHistory, journalHistory } = await import('../checks/show-item.js');
  const { databaseIdentity } = await import('../engine/remediation.js');
  const read = await ctx.withDatabase((db) =>
    db.readOnly(async (ro) => {
      const item = await find(ro);
      const audit = await auditHistory(ro, config.audit, table, item.id);
      return { item, audit, where: audit === undefined ? await databaseIdentity(ro) : null };
    }),
  );
  const { item, audit, where } = read;
  if (!where) return { item, audit };
  // Read once the transaction is over: the journal is a local file.
  const { journalPath } = await import('../engine/local-state.js');
  return { item, audit, journal: await journalHistory(journalPath(ctx.io.env), table, item.id, { ...where, name: ctx.targetName }) };
}
