import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Database } from '../../src/database/database.js';
import { defaultConfig, validateConfig, type Config } from '../../src/config/config.js';
import { resolveQueue, type ResolvedQueue } from '../../src/checks/jobs-presets.js';

/** A config file for `opsctl jobs` tests: the queue, an audit table, any extra jobs keys. */
export function jobsConfig(queue: string | null, jobs: Record<string, unknown> = {}, top: Record<string, unknown> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'opsctl-jobs-'));
  const file = join(dir, 'opsctl.json');
  writeFileSync(file, JSON.stringify({ actor: 'test-operator', audit: { table: 'audit_log' }, jobs: { queue, ...jobs }, ...top }));
  return file;
}

/** The effective config and resolved queue, for tests that call the checks and the engine directly. */
export function queueFor(queue: 'river' | 'graphile-worker' | 'pg-boss' | 'oban', jobs: Record<string, unknown> = {}): { config: Config; q: ResolvedQueue } {
  const base = defaultConfig();
  const config = validateConfig({ ...base, actor: 'test-operator', audit: { table: 'audit_log', schema: null }, jobs: { ...base.jobs, queue, ...jobs } }, 'test');
  return { config, q: resolveQueue(config) };
}

export function connect(url: string): Promise<Database> {
  return Database.connect({ settings: { ...defaultConfig().database, url }, env: {} });
}

/** Polls until fn is true (or fails after `ms`). */
export async function until(fn: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
