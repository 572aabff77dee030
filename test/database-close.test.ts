// Database.close closes its socket as soon as Terminate is written (src/database.ts), without
// waiting for the server to end the session: the server must still see a session that ended
// normally, never one whose client vanished.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase } from './support/db.js';
import { Database } from '../src/database/database.js';
import { defaultConfig } from '../src/config/config.js';

let db: Awaited<ReturnType<typeof freshDatabase>>;

beforeAll(async () => {
  db = await freshDatabase('dbclose', '');
});
afterAll(async () => {
  await db.drop();
});

/** The database's session counters, as the server's statistics hold them now. */
async function sessions(): Promise<{ sessions: number; abandoned: number }> {
  await db.client.query('SELECT pg_stat_clear_snapshot()');
  const r = await db.client.query<{ sessions: number; abandoned: number }>(
    'SELECT sessions::int, sessions_abandoned::int AS abandoned FROM pg_stat_database WHERE datname = current_database()',
  );
  return r.rows[0];
}

/** Waits (polling the server) until the backend with this pid has exited. */
async function backendGone(pid: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const r = await db.client.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [pid]);
    if (r.rows[0].n === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`backend ${pid} still there`);
}

describe('Database.close', () => {
  it('ends sessions the server counts as ended by the client, after a query and after a COPY', async () => {
    const before = await sessions();
    for (const mode of ['query', 'copy', 'readOnly']) {
      const conn = await Database.connect({ settings: { ...defaultConfig().database, url: db.url }, env: {} });
      const [{ pid }] = await conn.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      if (mode === 'copy') {
        const done = { rows: 0 };
        for await (const chunk of conn.copyOut('COPY (SELECT g FROM generate_series(1, 5000) g) TO STDOUT', done)) expect(chunk.length).toBeGreaterThan(0);
        expect(done.rows).toBe(5000);
      }
      if (mode === 'readOnly') await conn.readOnly(async (ro) => expect(await ro.query('SELECT 1 AS one')).toEqual([{ one: 1 }]));
      await conn.close();
      await backendGone(pid);
      // A second close is harmless.
      await conn.close();
    }
    // PostgreSQL 14's statistics collector counts an ended session a moment later (15+ at exit):
    // polled until the three are counted, or the polls run out.
    let after = await sessions();
    for (let i = 0; i < 300 && after.sessions - before.sessions < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      after = await sessions();
    }
    expect(after.sessions - before.sessions).toBeGreaterThanOrEqual(3);
    expect(after.abandoned).toBe(before.abandoned);
  });
});
