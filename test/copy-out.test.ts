// Database.copyOut (pg-copy-streams) as the listing relies on it: every row's bytes, whatever the
// socket's chunk boundaries; notices in between are not data; the row count; an
// error mid-COPY and an early stop leave a usable session.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { freshDatabase } from './support/db.js';
import { Database } from '../src/database/database.js';
import { defaultConfig } from '../src/config/config.js';
import { OpsctlError } from '../src/errors.js';

let db: Awaited<ReturnType<typeof freshDatabase>>;
let conn: Database;

beforeAll(async () => {
  db = await freshDatabase('copyout', '');
  // Row lengths from 1 to ~3,000 bytes in an irregular order, multi-byte text: message headers
  // and payloads fall across the socket's reads at every offset somewhere in 20,000 rows.
  await db.client.query(`CREATE TABLE t AS SELECT g, repeat(chr(97 + g % 26) || CASE WHEN g % 7 = 0 THEN 'é🚀' ELSE '' END, ((g::bigint * 7919) % 600)::int) AS v FROM generate_series(1, 20000) g`);
  await db.client.query(`CREATE FUNCTION noisy(i int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN IF i % 500 = 0 THEN RAISE NOTICE 'row %', i; END IF; RETURN i; END $$`);
  conn = await Database.connect({ settings: { ...defaultConfig().database, url: db.url }, env: {} });
});
afterAll(async () => {
  await conn?.close();
  await db.drop();
});

async function copyAll(sql: string): Promise<{ bytes: Buffer; rows: number; chunks: number }> {
  const done = { rows: -1 };
  const parts: Buffer[] = [];
  for await (const chunk of conn.copyOut(sql, done)) parts.push(Buffer.from(chunk));
  return { bytes: Buffer.concat(parts), rows: done.rows, chunks: parts.length };
}

/**
 * A TCP relay in front of the real server that hands the server's bytes on in pieces of 1 to 13
 * bytes, one piece per turn of the event loop: every message header and payload gets split
 * across the client's socket reads at every offset.
 */
function splittingRelay(target: URL): Promise<{ url: string; pieces: () => number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  let pieces = 0;
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    client.pipe(upstream);
    let queue: Buffer[] = [];
    let sending = false;
    let seed = 7;
    const send = () => {
      const head = queue[0];
      if (!head) {
        sending = false;
        return;
      }
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      const n = Math.min(head.length, 1 + (seed % 13));
      client.write(head.subarray(0, n));
      pieces += 1;
      if (n === head.length) queue.shift();
      else queue[0] = head.subarray(n);
      setImmediate(send);
    };
    upstream.on('data', (b: Buffer) => {
      queue.push(b);
      if (!sending) {
        sending = true;
        send();
      }
    });
    const end = () => {
      queue = [];
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      const url = new URL(target.href);
      url.hostname = '127.0.0.1';
      url.port = String(port);
      resolve({
        url: url.href,
        pieces: () => pieces,
        close: () => {
          for (const s of sockets) s.destroy();
          return new Promise<void>((r) => server.close(() => r()));
        },
      });
    });
  });
}

describe('Database.copyOut', () => {
  it('reassembles messages split at every offset across socket reads (a relay cutting the bytes in 1–13 byte pieces)', async () => {
    const relay = await splittingRelay(new URL(db.url));
    const split = await Database.connect({ settings: { ...defaultConfig().database, url: relay.url }, env: {} });
    try {
      const sql = `SELECT g, v FROM t WHERE g <= 400 ORDER BY g`;
      const expected = (await conn.query<{ line: string }>(`SELECT g || E'\\t' || v AS line FROM (${sql}) s`)).map((r) => `${r.line}\n`).join('');
      const done = { rows: -1 };
      const parts: Buffer[] = [];
      const before = relay.pieces();
      await split.readOnly(async (ro) => {
        for await (const chunk of ro.copyOut(`COPY (${sql}) TO STDOUT`, done)) parts.push(Buffer.from(chunk));
      });
      const bytes = Buffer.concat(parts);
      expect(relay.pieces() - before).toBeGreaterThan(bytes.length / 13);
      expect(bytes.toString('utf8')).toBe(expected);
      expect(done.rows).toBe(400);
      expect((await split.query<{ one: number }>('SELECT 1 AS one'))[0]?.one).toBe(1);
    } finally {
      await split.close();
      await relay.close();
    }
  });

  it('yields exactly the bytes the server sent, and the server\'s row count', async () => {
    const expected = (await conn.query<{ line: string }>(`SELECT g || E'\\t' || v AS line FROM t ORDER BY g`)).map((r) => `${r.line}\n`).join('');
    const got = await conn.readOnly(() => copyAll(`COPY (SELECT g, v FROM t ORDER BY g) TO STDOUT`));
    expect(got.rows).toBe(20000);
    expect(got.chunks).toBeGreaterThan(10);
    expect(got.bytes.toString('utf8')).toBe(expected);
    // The session goes on as usual.
    expect((await conn.query<{ one: number }>('SELECT 1 AS one'))[0]?.one).toBe(1);
  });

  it('passes over notices sent in the middle of the data', async () => {
    const got = await conn.readOnly(() => copyAll(`COPY (SELECT noisy(g) FROM t ORDER BY g) TO STDOUT`));
    expect(got.rows).toBe(20000);
    expect(got.bytes.toString('utf8')).toBe(`${Array.from({ length: 20000 }, (_, i) => i + 1).join('\n')}\n`);
  });

  it('an empty result: no chunk, a count of 0', async () => {
    const got = await conn.readOnly(() => copyAll(`COPY (SELECT g FROM t WHERE false) TO STDOUT`));
    expect(got).toEqual({ bytes: Buffer.alloc(0), rows: 0, chunks: 0 });
  });

  it('an error after rows were sent rejects with one translated sentence; the session is usable after', async () => {
    const err = await conn
      .readOnly(() => copyAll(`COPY (SELECT CASE WHEN g = 15000 THEN 1 / (g - 15000) ELSE g END FROM t ORDER BY g) TO STDOUT`))
      .then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(OpsctlError);
    expect((err as OpsctlError).message).toMatch(/division by zero \(SQLSTATE 22012\)/);
    expect((await conn.query<{ n: string }>('SELECT count(*) AS n FROM t'))[0]?.n).toBe('20000');
  });

  it('a query the server rejects up front (unknown column) rejects before any chunk', async () => {
    let chunks = 0;
    const err = await conn
      .readOnly(async () => {
        for await (const _ of conn.copyOut(`COPY (SELECT nope FROM t) TO STDOUT`)) chunks += 1;
      })
      .then(() => null, (e: unknown) => e);
    expect(chunks).toBe(0);
    expect((err as OpsctlError).message).toMatch(/column "nope" does not exist: check the column names in the config/);
    expect((await conn.query<{ one: number }>('SELECT 1 AS one'))[0]?.one).toBe(1);
  });

  it('a consumer that stops after the first chunk: the rest is drained and the session is usable', async () => {
    const first = await conn.readOnly(async (ro) => {
      for await (const chunk of ro.copyOut(`COPY (SELECT g, v FROM t ORDER BY g) TO STDOUT`)) return chunk.toString('utf8').split('\n')[0];
      return null;
    });
    expect(first).toMatch(/^1\t/);
    expect((await conn.query<{ one: number }>('SELECT 1 AS one'))[0]?.one).toBe(1);
  });
});
