import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, defaultConfig, configSchema } from '../src/config/config.js';
import { OpsctlError } from '../src/errors.js';
import { cli } from './support/cli.js';

const dir = () => mkdtempSync(join(tmpdir(), 'opsctl-cfg-'));
const write = (d: string, name: string, body: unknown) => {
  const f = join(d, name);
  writeFileSync(f, typeof body === 'string' ? body : JSON.stringify(body));
  return f;
};

function loadError(fn: () => unknown): OpsctlError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(OpsctlError);
    return e as OpsctlError;
  }
  throw new Error('expected an error');
}

describe('config loading', () => {
  it('defaults to the reference schemas', () => {
    const { config, file } = loadConfig({ env: {}, cwd: dir() });
    expect(file).toBeNull();
    expect(config.executions).toMatchObject({ table: 'purchase_executions', key: 'id', stuckStatuses: ['approved', 'running'], failedStatus: 'failed', threshold: '10m' });
    expect(config.propagations.table).toBe('pending_propagations');
    expect(config.database.applicationName).toBe('opsctl');
  });

  it('finds ./opsctl.config.json, then OPSCTL_CONFIG, then --config, and layers flags > env > file > defaults', () => {
    const d = dir();
    write(d, 'opsctl.config.json', { executions: { threshold: '20m' }, database: { statementTimeout: '11s', url: 'postgres://file@h/db' } });
    const other = write(d, 'other.json', { executions: { threshold: '30m' } });
    const third = write(d, 'third.json', { executions: { threshold: '40m' } });
    expect(loadConfig({ env: {}, cwd: d }).config.executions.threshold).toBe('20m');
    expect(loadConfig({ env: { OPSCTL_CONFIG: other }, cwd: d }).config.executions.threshold).toBe('30m');
    expect(loadConfig({ env: { OPSCTL_CONFIG: other }, cwd: d, configPath: third }).config.executions.threshold).toBe('40m');
    const layered = loadConfig({
      env: { DATABASE_URL: 'postgres://env@h/db', OPSCTL_STATEMENT_TIMEOUT: '12s' },
      cwd: d,
      overrides: { database: { url: 'postgres://flag@h/db' } },
    }).config;
    expect(layered.database.url).toBe('postgres://flag@h/db');
    expect(layered.database.statementTimeout).toBe('12s');
    expect(layered.executions.key).toBe(defaultConfig().executions.key);
  });

  it('names the file, the key path and the problem for an unknown key', () => {
    const d = dir();
    const f = write(d, 'bad.json', { executions: { tabel: 'x' } });
    const e = loadError(() => loadConfig({ env: {}, cwd: d, configPath: f }));
    expect(e.exitCode).toBe(2);
    expect(e.message).toContain(f);
    expect(e.message).toContain('executions.tabel');
    expect(e.message).toMatch(/unknown key/);
  });

  it('names the key path for a wrong type and for a bad duration', () => {
    const d = dir();
    let e = loadError(() => loadConfig({ env: {}, cwd: d, configPath: write(d, 'a.json', { executions: { batchSize: 'many' } }) }));
    expect(e.message).toMatch(/executions\.batchSize: expected number/);
    e = loadError(() => loadConfig({ env: {}, cwd: d, configPath: write(d, 'b.json', { executions: { threshold: '-5m' } }) }));
    expect(e.message).toMatch(/executions\.threshold: must be positive/);
    e = loadError(() => loadConfig({ env: {}, cwd: d, configPath: write(d, 'c.json', { executions: { stuckStatuses: [] } }) }));
    expect(e.message).toMatch(/executions\.stuckStatuses/);
    e = loadError(() => loadConfig({ env: {}, cwd: d, configPath: write(d, 'd.json', '{ not json') }));
    expect(e.message).toMatch(/not valid JSON/);
    e = loadError(() => loadConfig({ env: {}, cwd: d, configPath: join(d, 'missing.json') }));
    expect(e.message).toMatch(/does not exist/);
  });

  it('config show honours -o: a line per setting (table), the document (json, ndjson); an unknown format is exit 2', async () => {
    const d = dir();
    write(d, 'opsctl.config.json', { executions: { table: 'runs' } });
    const table = await cli(['config', 'show'], {}, { cwd: d });
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^# source: .*opsctl\.config\.json$/m);
    expect(table.stdout).toMatch(/^executions\.table\s+runs$/m);
    expect(table.stdout).toMatch(/^executions\.stuckStatuses\s+\["approved","running"\]$/m);
    const json = await cli(['config', 'show', '-o', 'json'], {}, { cwd: d });
    expect(json.code).toBe(0);
    expect(json.json().config.executions.table).toBe('runs');
    expect(json.stdout.split('\n').length).toBeGreaterThan(10);
    const ndjson = await cli(['config', 'show', '-o', 'ndjson'], {}, { cwd: d });
    expect(ndjson.stdout.trim().split('\n')).toHaveLength(1);
    expect(JSON.parse(ndjson.stdout).config).toEqual(json.json().config);
    const bad = await cli(['config', 'show', '-o', 'yaml'], {}, { cwd: d });
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe('');
    expect(bad.stderr.trim()).toBe('opsctl: -o yaml is not a known output format: use one of table, wide, json, ndjson.');
  });

  it('config show masks the password and exits 0; a bad file exits 2 with one line', async () => {
    const d = dir();
    write(d, 'opsctl.config.json', { database: { url: 'postgres://app:s3cr3t-pw@db.internal:5432/app' } });
    const ok = await cli(['config', 'show', '-o', 'json'], {}, { cwd: d });
    expect(ok.code).toBe(0);
    expect(ok.stdout).not.toContain('s3cr3t-pw');
    expect(ok.json().config.database.url).toBe('postgres://app:***@db.internal:5432/app');
    const flagged = await cli(['config', 'show', '--database-url', 'postgres://u:flagpw123@h/db'], {}, { cwd: d });
    expect(flagged.stdout).not.toContain('flagpw123');
    write(d, 'opsctl.config.json', { executions: { threshold: 5 } });
    const bad = await cli(['config', 'show'], {}, { cwd: d });
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/executions\.threshold: expected string/);
  });
});

// loadConfig parses only the sections a layer sets (src/config.ts, validateLayer): what it
// skips must be valid, and what it reports must be what validating the whole config says.
describe('config validation by layer', () => {
  const thresholds = async () => (await import('../src/checks/check-registry.js')).CHECK_THRESHOLDS;

  it('the built-in defaults, with every registered check threshold, pass the whole schema', async () => {
    const th = await thresholds();
    const defaults = { ...defaultConfig(), check: { ...defaultConfig().check, thresholds: { ...th } } };
    const parsed = configSchema().safeParse(defaults);
    expect(parsed.success ? [] : parsed.error.issues).toEqual([]);
    expect(Object.keys(th).length).toBeGreaterThan(0);
    // What loadConfig returns without a file, env or flags is those defaults, unchanged.
    expect(loadConfig({ env: {}, cwd: dir(), checkThresholds: th }).config).toEqual(parsed.data);
  });

  it('a bad value in the file is reported against the file even when the environment or a flag replaces it', async () => {
    const d = dir();
    const f = write(d, 'c.json', { database: { statementTimeout: 'soon' }, executions: { threshold: '20m' } });
    const e = loadError(() => loadConfig({ env: { OPSCTL_STATEMENT_TIMEOUT: '5s' }, cwd: d, configPath: f, overrides: { database: { statementTimeout: '6s' } } }));
    expect(e.message).toBe(`${f}: database.statementTimeout: "soon" is not a duration: use a number with a unit, like 90s, 10m, 2h30m or 1d.`);
  });

  it('names the layer at fault, with the count of problems the whole config has', async () => {
    const d = dir();
    const th = await thresholds();
    let e = loadError(() => loadConfig({ env: { OPSCTL_LOCK_TIMEOUT: 'later' }, cwd: d, checkThresholds: th }));
    expect(e.message).toBe('environment: database.lockTimeout: "later" is not a duration: use a number with a unit, like 90s, 10m, 2h30m or 1d.');
    e = loadError(() => loadConfig({ env: {}, cwd: d, overrides: { executions: { batchSize: 'many', threshold: 'x' }, workers: { stale: 3 } }, checkThresholds: th }));
    expect(e.message).toBe('command line: executions.threshold: "x" is not a duration: use a number with a unit, like 90s, 10m, 2h30m or 1d (and 2 more problem(s)).');
    e = loadError(() => loadConfig({ env: {}, cwd: d, configPath: write(d, 't.json', { check: { thresholds: { nosuch: 2 } } }), checkThresholds: th }));
    expect(e.message).toMatch(/t\.json: check\.thresholds\.nosuch: unknown key/);
    e = loadError(() => loadConfig({ env: {}, cwd: d, configPath: write(d, 'k.json', { executionz: {} }), checkThresholds: th }));
    expect(e.message).toMatch(/k\.json: executionz: unknown key/);
    e = loadError(() => loadConfig({ env: {}, cwd: d, configPath: write(d, 'g.json', { targets: { 'a b': { database: { url: 'postgres://h/db' } } } }), checkThresholds: th }));
    expect(e.message).toMatch(/g\.json: targets\.a b: target names are letters/);
    // A file that is valid, then flags on top: the flags' values win.
    const ok = loadConfig({ env: { DATABASE_URL: 'postgres://e@h/db' }, cwd: d, configPath: write(d, 'ok.json', { workers: { stale: '3m' } }), overrides: { executions: { threshold: '2h' } }, checkThresholds: th });
    expect(ok.config.workers.stale).toBe('3m');
    expect(ok.config.executions.threshold).toBe('2h');
    expect(ok.config.database.url).toBe('postgres://e@h/db');
  });
});
