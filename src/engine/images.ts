import type { Database } from '../database/database.js';
import { qualifiedName, quoteIdent } from '../database/identifiers.js';

/**
 * Before- and after-images: what an applied change overwrote, and what the row holds after
 * the write (after the table's own BEFORE triggers). They go with the change's audit entry
 * (AuditEntry.before/after, stored as metadata.before/metadata.after): the audit table when
 * configured, else the local journal. `revert` puts a before-image back only where the row
 * still holds the after-image (docs/runs-plans-undo.md).
 *
 * An image is a JSON object keyed by the configured column names, each value as `to_jsonb`
 * gives it, so it can be turned back into the table's own types with jsonb_populate_record.
 * An AWS change's image is `{ tags: { key: value } }`.
 */

/** What a database remedy writes: the table, its key column, and the columns it sets (`row`: it deletes the whole row). */
export interface RemedyImage {
  table: string;
  schema: string | null;
  /** The key column (configured name, unquoted): what the remedy's items are identified by. */
  key: string;
  /** The columns the remedy writes (configured names, unquoted), or 'row' for a remedy that deletes rows (purge). */
  columns: string[] | 'row';
}

/** An image: column → value as to_jsonb gives it (null: the row did not exist / no longer exists). */
export type Image = Record<string, unknown>;

/** A string literal for SQL text (an E'' literal: the same whatever standard_conforming_strings says). */
export const sqlLiteral = (s: string): string => `E'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;

/**
 * The SQL expression of a row's image: `alias` the row's alias (t, old, ...); `columns` the
 * configured column names, or 'row' for the whole row. Values are as to_jsonb gives them
 * (jsonb_build_object converts the same way): every column type has one, and
 * jsonb_populate_record reads it back into the table's own types.
 */
export function imageSql(alias: string, columns: string[] | 'row'): string {
  if (columns === 'row') return `to_jsonb(${alias})`;
  return `jsonb_build_object(${columns.map((c) => `${sqlLiteral(c)}, ${alias}.${quoteIdent(c)}`).join(', ')})`;
}

/**
 * The images of `ids` in image.table (keyed by the key as text). `lock`: read FOR UPDATE SKIP
 * LOCKED, so the image is the row the batch's write will replace (a row another transaction
 * holds is left out, as the remedy's own SKIP LOCKED leaves it out). Call inside the batch's
 * transaction.
 */
export async function readImages(tx: Database, image: RemedyImage, ids: string[], opts: { lock?: boolean } = {}): Promise<Map<string, Image>> {
  if (ids.length === 0) return new Map();
  const key = quoteIdent(image.key);
  const rows = await tx.queryRaw<{ id: string; image: Image }>(
    `SELECT t.${key}::text AS id, ${imageSql('t', image.columns)} AS image
       FROM ${qualifiedName(image.table, image.schema)} t
      WHERE t.${key} = ANY($1)${opts.lock ? ' FOR UPDATE OF t SKIP LOCKED' : ''}`,
    [ids],
  );
  return new Map(rows.map((r) => [r.id, r.image]));
}

/** Where an image belongs: stamped on every audit entry that carries one (metadata.image), so revert finds the table. */
export interface ImageRef {
  table: string;
  schema: string | null;
  key: string;
  /** 'row' for a whole-row image (purge); else the columns. */
  columns: string[] | 'row';
}

export const imageRef = (i: RemedyImage): ImageRef => ({ table: i.table, schema: i.schema, key: i.key, columns: i.columns });
