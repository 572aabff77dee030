import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { freshDatabase } from './support/db.js';
import { cli, cliProcess } from './support/cli.js';
import { expectOneSentence } from './support/reliability.js';
import { OLDEST_SUPPORTED_MAJOR, serverMajor } from '../src/database/database.js';

/**
 * opsctl refuses a server older than the oldest major it supports, from the version the server
 * reports when the session starts. The run's real server (14 or 18, one per project) is
 * accepted; the same server behind a relay that reports its version as 13 is refused.
 */
let db: Awaited<ReturnType<typeof freshDatabase>>;
let relay: Server;
let relayUrl: string;
const sockets = new Set<Socket>();

/**
 * A TCP relay to the real server that passes every byte through, except that the startup
 * reply's server_version ParameterStatus says `13.x` (same length: a two-digit major).
 */
function startRelay(port: number, host: string): Promise<Server> {
  const s = createServer((client) => {
    const server = connect(port, host);
    sockets.add(client).add(server);
    for (const x of [client, server]) x.on('close', () => sockets.delete(x)).on('error', () => {});
    client.pipe(server);
    let pending = Buffer.alloc(0);
    let started = false;
    server.on('data', (chunk: Buffer) => {
      if (started) return void client.write(chunk);
      pending = Buffer.concat([pending, chunk]);
      // Whole messages only: type byte, int32 length (itself included), body.
      let at = 0;
      while (pending.length - at >= 5 && pending.length - at >= 1 + pending.readInt32BE(at + 1)) {
        const len = pending.readInt32BE(at + 1);
        const type = String.fromCharCode(pending[at]!);
        if (type === 'S') {
          const body = pending.subarray(at + 5, at + 1 + len);
          const [name, value] = body.toString('utf8').split('\0');
          if (name === 'server_version' && /^\d\d\./.test(value!)) body.write('13', name.length + 1, 'utf8');
        }
        at += 1 + len;
        if (type === 'Z') {
          started = true;
          break;
        }
      }
      if (started || at > 0) {
        client.write(pending.subarray(0, at));
        pending = pending.subarray(at);
        if (started && pending.length) client.write(pending);
      }
    });
    server.on('close', () => client.destroy());
    client.on('close', () => server.destroy());
  });
  return new Promise((ok) => s.listen(0, '127.0.0.1', () => ok(s)));
}

beforeAll(async () => {
  db = await freshDatabase('server_version');
  const u = new URL(db.url);
  relay = await startRelay(Number(u.port), u.hostname);
  u.host = `127.0.0.1:${(relay.address() as { port: number }).port}`;
  relayUrl = u.toString();
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((ok) => relay.close(ok));
  await db.drop();
});

describe('the PostgreSQL version', () => {
  it('a server_version is read as its major', () => {
    expect(serverMajor('14.23')).toBe(14);
    expect(serverMajor('18.4 (Debian 18.4-1.pgdg120+1)')).toBe(18);
    expect(serverMajor('9.6.24')).toBe(9);
    expect(serverMajor('19devel')).toBe(19);
    expect(serverMajor(undefined)).toBeNull();
    expect(serverMajor('')).toBeNull();
  });

  it(`the run's server (PostgreSQL ${inject('pgMajor')}) is supported: a listing works`, async () => {
    expect(inject('pgMajor')).toBeGreaterThanOrEqual(OLDEST_SUPPORTED_MAJOR);
    const r = await cli(['executions', 'stuck', '--older-than', '1m', '-o', 'json'], { DATABASE_URL: db.url });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json().items).toEqual([]);
  });

  it('a server older than 14 is refused: exit 3, one sentence naming its version and the oldest supported', async () => {
    const r = await cli(['executions', 'stuck', '--older-than', '1m', '-o', 'json'], { DATABASE_URL: relayUrl });
    expect(r.stdout).toBe('');
    expect(expectOneSentence(r.stderr)).toBeNull();
    expect(r.stderr).toMatch(/^opsctl: PostgreSQL at postgres:\/\/\S+ is version 13\.\d+, and opsctl needs 14 or newer\.\n$/);
    expect(r.stderr).not.toContain('test-pw');
    expect(r.code).toBe(3);
    // The same through the built CLI (its vendored pg), for a write too: nothing reaches the table.
    const p = await cliProcess(['reap', '--older-than', '1m', '--apply', '-o', 'json'], { DATABASE_URL: relayUrl });
    expect(p.code).toBe(3);
    expect(p.stderr).toMatch(/is version 13\.\d+, and opsctl needs 14 or newer\.\n$/);
  });
});
