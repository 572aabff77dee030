import pg from 'pg';
import { inject } from 'vitest';
import { REFERENCE_SCHEMA_SQL } from '../../src/reference/schema.js';

/** The run's PostgreSQL superuser URL. */
export const serverUrl = () => inject('pgUrl');

export function urlFor(database: string): string {
  const u = new URL(serverUrl());
  u.pathname = `/${database}`;
  return u.toString();
}

export const serverPassword = () => decodeURIComponent(new URL(serverUrl()).password);

/** A fresh database per test file (or test), with the reference schemas. Returns its URL and a pg client. */
export async function freshDatabase(prefix = 't', schema = REFERENCE_SCHEMA_SQL): Promise<{ url: string; name: string; client: pg.Client; drop: () => Promise<void> }> {
  const name = `${prefix}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = urlFor(name);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  if (schema) await client.query(schema);
  return {
    url,
    name,
    client,
    drop: async () => {
      await client.end().catch(() => {});
      const a = new pg.Client({ connectionString: serverUrl() });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await a.end();
    },
  };
}

/** A checksum of every row of a table: proves a dry run changed nothing. */
export async function tableChecksum(client: pg.Client, table: string): Promise<string> {
  const r = await client.query(`SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS sum, count(*)::int AS n FROM "${table}" t`);
  return `${r.rows[0].n}:${r.rows[0].sum}`;
}

export async function databaseChecksum(client: pg.Client): Promise<string> {
  const tables = await client.query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`);
  const parts: string[] = [];
  for (const { tablename } of tables.rows) parts.push(`${tablename}=${await tableChecksum(client, tablename)}`);
  return parts.join(';');
}

/** A connection URL with its password taken out (a target's password comes from passwordEnv). */
export function noPassword(url: string): string {
  const u = new URL(url);
  u.password = '';
  return u.toString();
}
