/**
 * Identifier quoting for names that come from config. A name is always quoted, so a
 * name containing quotes, semicolons or spaces is treated as (a strange) identifier and
 * can never become SQL. NUL cannot appear in a PostgreSQL identifier at all: refused.
 */
export function quoteIdent(name: string): string {
  if (typeof name !== 'string' || name.length === 0) throw new Error('identifier must be a non-empty string');
  if (name.includes('\u0000')) throw new Error('identifier must not contain NUL');
  return `"${name.replace(/"/g, '""')}"`;
}

/** `"schema"."table"` or just `"table"` when no schema is configured (search_path applies). */
export function qualifiedName(table: string, schema?: string | null): string {
  return schema ? `${quoteIdent(schema)}.${quoteIdent(table)}` : quoteIdent(table);
}

/** Human form for messages: schema.table. */
export function displayName(table: string, schema?: string | null): string {
  return schema ? `${schema}.${table}` : table;
}
