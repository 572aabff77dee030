import type { Client, ClientConfig, QueryResultRow } from 'pg';
import { requirePackage } from './require-package.js';
import type { Config } from '../config/config.js';
import { parseDuration } from '../config/durations.js';
import { dependencyError, usageError, ExitCode, OpsctlError } from '../errors.js';
import { maskConnectionString } from '../output/masking.js';
import { qualifiedName, displayName } from './identifiers.js';

export interface ConnectOptions {
  settings: Config['database'];
  env: NodeJS.ProcessEnv;
  /** Aborted: a connection still handshaking is destroyed (a fleet target past its deadline). */
  signal?: AbortSignal;
}

/** Where we connect, for messages: never with a password. */
export function describeTarget(settings: Config['database'], env: NodeJS.ProcessEnv): string {
  if (settings.url) return maskConnectionString(settings.url);
  const user = env.PGUSER ?? env.USER ?? 'postgres';
  const host = env.PGHOST ?? 'localhost';
  const port = env.PGPORT ?? '5432';
  const db = env.PGDATABASE ?? user;
  return `postgres://${user}@${host}:${port}/${db}`;
}

/**
 * pg (pg-connection-string 2.x) reads sslmode prefer, require and verify-ca as verify-full, and
 * says so in a ten-line SECURITY WARNING on stderr, before any sentence of ours. Asking for
 * verify-full by name is the same connection (certificate and host name checked) without the
 * warning. With uselibpqcompat the modes have libpq's meaning and pg does not warn: unchanged.
 */
export function quietSslMode(url: string): string {
  if (/[?&]uselibpqcompat=/i.test(url)) return url;
  return url.replace(/([?&]sslmode=)(prefer|require|verify-ca)(?=&|#|$)/, '$1verify-full');
}

/** Column types opsctl compares with now() and intervals. */
const TIMESTAMP_TYPES = new Set(['timestamp with time zone', 'timestamp without time zone', 'date']);

/**
 * The server could not apply an operator or function to a column's type (42883 undefined
 * function, 42804 datatype mismatch): for a query built from configured columns, a configured
 * column of the wrong type. The catalog is then asked which one (assertColumns).
 */
export function isTypeMismatch(e: unknown): boolean {
  const code = (e instanceof OpsctlError ? (e.cause as { code?: string } | undefined) : (e as { code?: string } | undefined))?.code;
  return code === '42883' || code === '42804';
}

/** pg errors that mean "the server is gone or refused us": exit 3, not a row-level error. */
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);

/**
 * A string[] parameter as the array literal pg itself would send for it ('{"a","b"}'), made in
 * one join: pg builds it an element at a time, with two regular expressions each (~250 bytes
 * of garbage per key in a reap batch). Elements with a quote or a backslash go pg's way.
 */
export function textArrayParam(values: string[]): string | string[] {
  for (const v of values) if (v.includes('"') || v.includes('\\')) return values;
  return values.length ? `{"${values.join('","')}"}` : '{}';
}

export function isConnectionError(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  if (!err) return false;
  if (err.code && CONNECTION_CODES.has(err.code)) return true;
  if (err.code && /^(08|57P0)/.test(err.code)) return true; // connection_exception, admin/crash shutdown
  return /Connection terminated|connection timeout|Client has encountered a connection error|not queryable/i.test(err.message ?? '');
}

/**
 * The server did not know a table, column or schema the query named (42P01, 42703, 3F000):
 * for a query built from configured names, a config that does not match the database.
 */
export function isUndefinedName(e: unknown): boolean {
  const code = (e instanceof OpsctlError ? (e.cause as { code?: string } | undefined) : (e as { code?: string } | undefined))?.code;
  return code === '42P01' || code === '42703' || code === '3F000';
}

/** Turns a driver error into one clear sentence with the documented exit code. */
export function translatePgError(e: unknown, target: string, timeouts?: Config['database']): OpsctlError {
  if (e instanceof OpsctlError) return e;
  const err = e as { code?: string; message?: string; column?: string; table?: string };
  const code = err?.code ?? '';
  const msg = err?.message ?? String(e);
  switch (code) {
    case 'ECONNREFUSED':
      return dependencyError(`cannot connect to PostgreSQL at ${target}: connection refused (is the server running and the port right?).`, e);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return dependencyError(`cannot connect to PostgreSQL at ${target}: host not found.`, e);
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return dependencyError(`cannot connect to PostgreSQL at ${target}: host unreachable.`, e);
    case '28P01':
    case '28000':
      return dependencyError(`PostgreSQL at ${target} refused the login: ${msg.replace(/"[^"]*"/, (m) => m)}.`, e);
    case '3D000':
      return dependencyError(`PostgreSQL at ${target}: ${msg}.`, e);
    case '57014':
      return dependencyError(
        `a query was cancelled after the statement_timeout${timeouts ? ` of ${timeouts.statementTimeout}` : ''} (database.statementTimeout); nothing from the unfinished statement was written.`,
        e,
      );
    case '55P03':
      return dependencyError(
        `a lock could not be taken within the lock_timeout${timeouts ? ` of ${timeouts.lockTimeout}` : ''} (database.lockTimeout): another session holds it.`,
        e,
      );
    case '25P03':
      return dependencyError('the database ended an idle transaction (idle_in_transaction_session_timeout).', e);
    // The driver error kept as the cause: isUndefinedName asks for its SQLSTATE.
    case '42P01':
      return new OpsctlError(`${msg} in ${target}: check the table names in the config.`, ExitCode.USAGE, e);
    case '42703':
      return new OpsctlError(`${msg}: check the column names in the config.`, ExitCode.USAGE, e);
    // A query built from configured columns the server cannot compare or assign (a text column
    // as a time): the config does not match the database. Callers that can name the key do (assertColumns).
    case '42883':
    case '42804':
      return new OpsctlError(`${msg}: a configured column has a type opsctl cannot use; check the column types in the config.`, ExitCode.USAGE, e);
    case '42501':
      return dependencyError(`PostgreSQL refused the operation: ${msg} (see docs/privileges.md for the privileges each command needs).`, e);
  }
  if (/^57P0/.test(code) || /terminat/i.test(msg)) {
    return dependencyError(`the connection to PostgreSQL at ${target} was terminated (${msg}).`, e);
  }
  if (/connection timeout|timeout expired/i.test(msg)) {
    return dependencyError(`cannot connect to PostgreSQL at ${target}: no answer within the connect timeout.`, e);
  }
  if (isConnectionError(e)) return dependencyError(`lost the connection to PostgreSQL at ${target}: ${msg}.`, e);
  return dependencyError(`PostgreSQL at ${target} returned an error: ${msg}${code ? ` (SQLSTATE ${code})` : ''}.`, e);
}

/**
 * pg, loaded once. At load, pg asks whether it runs in a Cloudflare Worker: without a
 * `navigator` global (Node 20; Node 21+ has one) it constructs a `Response`, which makes Node
 * load its whole fetch stack (undici, http2): ~40 ms of CPU for nothing. A `navigator` that says
 * Node.js, as Node 21+ defines it, answers the question; it exists only while pg loads.
 */
let pgModule: Promise<typeof import('pg').default> | undefined;
export function loadPg(): Promise<typeof import('pg').default> {
  pgModule ??= (async () => {
    const g = globalThis as { navigator?: unknown };
    const stub = g.navigator === undefined && !Object.prototype.hasOwnProperty.call(globalThis, 'navigator');
    if (stub) Object.defineProperty(globalThis, 'navigator', { value: { userAgent: 'Node.js' }, configurable: true, writable: true });
    try {
      return requirePackage<typeof import('pg').default>('pg');
    } finally {
      if (stub) delete g.navigator;
    }
  })();
  return pgModule;
}

/** The oldest PostgreSQL major opsctl supports (and tests on, beside the newest: 18). */
export const OLDEST_SUPPORTED_MAJOR = 14;

/** The major of a server_version ("14.23", "18.4 (Debian 18.4-1)", "10.5"); null if unknown. */
export function serverMajor(version: string | undefined): number | null {
  const m = version ? /^(\d+)/.exec(version) : null;
  return m ? Number(m[1]) : null;
}

/**
 * One PostgreSQL session with opsctl's settings. Everything goes through it so the
 * session settings, READ ONLY transactions and error translation cannot be forgotten.
 */
export class Database {
  private constructor(
    private readonly client: Client,
    readonly target: string,
    private readonly settings: Config['database'],
  ) {}

  static async connect({ settings, env, signal }: ConnectOptions): Promise<Database> {
    const target = describeTarget(settings, env);
    // pg is imported here, not at the top: `opsctl --help` must not pay for it.
    const pg = await loadPg();
    const config: ClientConfig = {
      application_name: settings.applicationName,
      statement_timeout: parseDuration(settings.statementTimeout, 'database.statementTimeout'),
      lock_timeout: parseDuration(settings.lockTimeout, 'database.lockTimeout'),
      // A crashed or stuck opsctl must never sit on row locks.
      idle_in_transaction_session_timeout: Math.max(60_000, parseDuration(settings.statementTimeout) * 2),
      connectionTimeoutMillis: parseDuration(settings.connectTimeout, 'database.connectTimeout'),
    };
    if (settings.url) {
      config.connectionString = quietSslMode(settings.url);
    } else {
      // The standard libpq variables, read from our io.env (pg itself would read process.env).
      if (env.PGHOST) config.host = env.PGHOST;
      if (env.PGPORT) config.port = Number(env.PGPORT);
      if (env.PGUSER) config.user = env.PGUSER;
      if (env.PGPASSWORD) config.password = env.PGPASSWORD;
      if (env.PGDATABASE) config.database = env.PGDATABASE;
      if (env.PGSSLMODE && env.PGSSLMODE !== 'disable' && env.PGSSLMODE !== 'prefer' && env.PGSSLMODE !== 'allow') {
        config.ssl = env.PGSSLMODE.startsWith('verify') ? { rejectUnauthorized: true } : { rejectUnauthorized: false };
      }
    }
    const client = new pg.Client(config);
    // An error on an idle client (server restart) must not crash the process with a stack trace.
    client.on('error', () => {});
    // A server that accepts TCP and never answers would hold the socket (and the process) until
    // the connect timeout; on abort the socket goes at once and connect() rejects.
    const onAbort = () => (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
    signal?.addEventListener('abort', onAbort, { once: true });
    // The server says its version in the startup reply (ParameterStatus): no query needed.
    let serverVersion: string | undefined;
    (client as unknown as { connection: import('node:events').EventEmitter }).connection.on('parameterStatus', (m: { parameterName: string; parameterValue: string }) => {
      if (m.parameterName === 'server_version') serverVersion = m.parameterValue;
    });
    try {
      if (signal?.aborted) throw new OpsctlError(`cannot connect to PostgreSQL at ${target}: the target timed out.`, ExitCode.DEPENDENCY);
      await client.connect();
    } catch (e) {
      await client.end().catch(() => {});
      if (signal?.aborted) throw new OpsctlError(`cannot connect to PostgreSQL at ${target}: the target timed out before the server answered.`, ExitCode.DEPENDENCY);
      throw translatePgError(e, target, settings);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    const major = serverMajor(serverVersion);
    if (major !== null && major < OLDEST_SUPPORTED_MAJOR) {
      await client.end().catch(() => {});
      throw dependencyError(`PostgreSQL at ${target} is version ${serverVersion!.split(' ')[0]}, and opsctl needs ${OLDEST_SUPPORTED_MAJOR} or newer.`);
    }
    return new Database(client, target, settings);
  }

  async query<R extends QueryResultRow = QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    try {
      const res = await this.client.query<R>(sql, params);
      return res.rows;
    } catch (e) {
      throw this.translate(e);
    }
  }

  /** Raw driver errors, untranslated: for per-row error capture inside a remediation batch. */
  async queryRaw<R extends QueryResultRow = QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    return (await this.client.query<R>(sql, params)).rows;
  }

  translate(e: unknown): OpsctlError {
    return translatePgError(e, this.target, this.settings);
  }

  /** Reads and dry runs: the server itself refuses any write inside. */
  async readOnly<T>(fn: (db: Database) => Promise<T>): Promise<T> {
    await this.query('BEGIN TRANSACTION READ ONLY');
    try {
      return await fn(this);
    } finally {
      await this.client.query('ROLLBACK').catch(() => {});
    }
  }

  /** A short read-write transaction; rolled back on any error. */
  async transaction<T>(fn: (db: Database) => Promise<T>): Promise<T> {
    await this.client.query('BEGIN');
    try {
      const out = await fn(this);
      await this.client.query('COMMIT');
      return out;
    } catch (e) {
      await this.client.query('ROLLBACK').catch(() => {});
      throw e;
    }
  }

  /**
   * Streams a query's rows through a server-side cursor so memory stays flat however many
   * rows match. Must run inside a transaction (readOnly).
   */
  async *stream<R extends QueryResultRow = QueryResultRow>(sql: string, params: unknown[] = [], fetchSize = 2000): AsyncGenerator<R> {
    const name = `opsctl_cursor_${Math.random().toString(36).slice(2, 10)}`;
    await this.query(`DECLARE ${name} NO SCROLL CURSOR FOR ${sql}`, params);
    try {
      for (;;) {
        const rows = await this.query<R>(`FETCH ${fetchSize} FROM ${name}`);
        for (const r of rows) yield r;
        if (rows.length < fetchSize) break;
      }
    } finally {
      await this.client.query(`CLOSE ${name}`).catch(() => {});
    }
  }

  /**
   * `COPY (…) TO STDOUT` as a stream of byte chunks, as the server wrote them (what psql's
   * `\copy` reads), through pg-copy-streams. Back-pressure: the socket is paused while the
   * consumer has not asked for the next chunk, so memory stays flat. COPY takes no bind
   * parameters: values reach the query through `set_config(…, true)` in the same transaction
   * (see stuck-executions.ts). `done.rows` is the number of rows once the stream has ended.
   */
  async *copyOut(sql: string, done?: { rows: number }): AsyncGenerator<Buffer> {
    // Loaded here, like pg: only listings that stream need it.
    const { to } = requirePackage<typeof import('pg-copy-streams')>('pg-copy-streams');
    const stream = this.client.query(to(sql));
    try {
      // destroyOnReturn false: an early stop drains below instead of destroying mid-COPY.
      // Rows counted by their newlines (COPY's text format escapes any inside a value):
      // pg-copy-streams' rowCount comes from CommandComplete, which may arrive after the end.
      let rows = 0;
      for await (const chunk of stream.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
        if (done) for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) rows += 1;
        yield chunk;
      }
      if (done) done.rows = rows;
    } catch (e) {
      throw this.translate(e);
    } finally {
      // A consumer that stopped early: the server keeps sending until the COPY ends, and the
      // session is unusable until then; discard the rest so the ROLLBACK that follows runs.
      if (!stream.readableEnded && !stream.errored) {
        const { finished } = await import('node:stream/promises');
        stream.resume();
        await finished(stream).catch(() => {});
      }
    }
  }

  /**
   * Fails with a config-naming sentence when the table or a configured column is absent, or when
   * a column named in `timestamps` (keys of `columns`) is not a point in time: compared with
   * now(), a text column otherwise fails in the server as "operator does not exist" (exit 3).
   */
  async assertColumns(section: string, table: string, schema: string | null, columns: Record<string, string | null>, timestamps: string[] = []): Promise<void> {
    // The base type of a domain: a domain over timestamptz compares as one.
    const rows = await this.query<{ attname: string; type: string }>(
      `SELECT a.attname, format_type(coalesce(nullif(t.typbasetype, 0), a.atttypid), NULL) AS type
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`,
      [qualifiedName(table, schema)],
    );
    if (rows.length === 0) {
      const found = await this.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [qualifiedName(table, schema)]);
      if (!found[0]?.ok) {
        throw usageError(`table ${displayName(table, schema)} (config ${section}.table) does not exist in ${this.target}.`);
      }
    }
    const have = new Map(rows.map((r) => [r.attname, r.type]));
    for (const [key, column] of Object.entries(columns)) {
      if (column && !have.has(column)) {
        throw usageError(`column "${column}" (config ${section}.${key}) does not exist in table ${displayName(table, schema)}.`);
      }
    }
    for (const key of timestamps) {
      const column = columns[key];
      const type = column ? have.get(column) : undefined;
      if (type !== undefined && !TIMESTAMP_TYPES.has(type)) {
        throw usageError(`column "${column}" (config ${section}.${key}) in table ${displayName(table, schema)} is of type ${type}: it must be a timestamptz (or timestamp, date).`);
      }
    }
  }

  async close(): Promise<void> {
    // pg sends Terminate, half-closes, then waits for the server to close its side: ~10 ms of
    // the server ending its session, on every command's way out. Once Terminate and the FIN are
    // written the session is over for the server too; psql closes its socket then as well.
    const stream = (this.client as unknown as { connection?: { stream?: import('node:net').Socket } }).connection?.stream;
    const ended = this.client.end().catch(() => {});
    stream?.once('finish', () => stream.destroy());
    await ended;
  }
}
