import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { BIN, type CliResult } from './cli.js';

/** Polls `fn` at most `tries` times, `intervalMs` apart; fails the test if it never holds. */
export async function eventually<T>(what: string, fn: () => Promise<T | false | null | undefined>, tries = 400, intervalMs = 25): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`${what}: not reached after ${tries} polls ${intervalMs} ms apart`);
}

/** A config file in a fresh temporary directory. */
export function configFile(content: unknown, name = 'opsctl.json'): string {
  const dir = mkdtempSync(join(tmpdir(), 'opsctl-rel-'));
  const file = join(dir, name);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

/** The built CLI as a subprocess whose process the test can signal. */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; done: Promise<CliResult & { signal: NodeJS.Signals | null }> } {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, XDG_STATE_HOME: process.env.XDG_STATE_HOME, AWS_EC2_METADATA_DISABLED: 'true', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d) => (stderr += d));
  const done = new Promise<CliResult & { signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? -1, signal, stdout, stderr, json: () => JSON.parse(stdout) }));
  });
  return { child, done };
}

/** opsctl's sessions on one database (application_name 'opsctl'), with what they wait on. */
export async function opsctlBackends(client: pg.Client, database: string): Promise<Array<{ pid: number; wait_event_type: string | null; wait_event: string | null; state: string }>> {
  const r = await client.query(
    `SELECT pid, wait_event_type, wait_event, state FROM pg_stat_activity WHERE datname = $1 AND application_name = 'opsctl' AND pid <> pg_backend_pid()`,
    [database],
  );
  return r.rows;
}

/**
 * A gate on a table for opsctl's sessions only: its first `open` UPDATE statements pass, every
 * later one blocks on advisory lock `key` while the test holds it. Makes "mid-apply" exact:
 * with batch size B, exactly open × B rows are committed when the run is stopped at the gate.
 */
export async function installGate(client: pg.Client, table: string, open: number, key = 4242): Promise<void> {
  await client.query(`
    CREATE SEQUENCE IF NOT EXISTS rel_gate_seq;
    SELECT setval('rel_gate_seq', 1, false);
    CREATE OR REPLACE FUNCTION rel_gate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF current_setting('application_name') = 'opsctl' AND nextval('rel_gate_seq') > ${Math.floor(open)} THEN
        PERFORM pg_advisory_xact_lock_shared(${Math.floor(key)});
      END IF;
      RETURN NULL;
    END $$;
    DROP TRIGGER IF EXISTS rel_gate ON "${table}";
    CREATE TRIGGER rel_gate BEFORE UPDATE ON "${table}" FOR EACH STATEMENT EXECUTE FUNCTION rel_gate();
  `);
}

export async function removeGate(client: pg.Client, table: string): Promise<void> {
  await client.query(`DROP TRIGGER IF EXISTS rel_gate ON "${table}"`);
}

/** One line, no stack frame: the shape of every expected error opsctl prints. */
export function expectOneSentence(stderr: string): string | null {
  const lines = stderr.trim().split('\n');
  if (lines.length !== 1) return `expected one line on stderr, got ${lines.length}: ${stderr}`;
  if (!lines[0].startsWith('opsctl: ') && !lines[0].startsWith('error: ')) return `expected "opsctl: …" or commander's "error: …", got: ${lines[0]}`;
  if (/\n\s+at |\bat .*\.(js|ts):\d+/.test(stderr)) return `stack trace on stderr: ${stderr}`;
  return null;
}
