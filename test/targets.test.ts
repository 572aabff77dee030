import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig, loadConfig, validateConfig } from '../src/config/config.js';
import { resolveTargets, selectTargetNames, targetConnection } from '../src/targets/targets.js';
import { CHECK_THRESHOLDS } from '../src/checks/check-registry.js';
import { OpsctlError } from '../src/errors.js';

const fail = (f: () => unknown): OpsctlError => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(OpsctlError);
    return e as OpsctlError;
  }
  throw new Error('expected an OpsctlError');
};

function fileConfig(body: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'opsctl-targets-'));
  const f = join(dir, 'opsctl.json');
  writeFileSync(f, JSON.stringify(body));
  return f;
}
const load = (body: unknown, env: NodeJS.ProcessEnv = {}) => loadConfig({ configPath: fileConfig(body), env, cwd: '/', checkThresholds: CHECK_THRESHOLDS }).config;

const TARGETS = {
  'prod-eu': { database: { host: 'db-eu', port: 5433, user: 'opsctl', dbname: 'billing', passwordEnv: 'EU_PW' } },
  'prod-us': { database: { url: 'postgres://opsctl@db-us:5432/billing' }, aws: { regions: ['us-east-1', 'us-west-2'] } },
  'staging': { database: { urlEnv: 'STAGING_URL' }, overrides: { executions: { threshold: '1h' }, check: { thresholds: { stuckExecutions: 5 } } } },
  'aws-only': { aws: { profile: 'ops', regions: ['eu-west-1'] } },
};

describe('targets in the config', () => {
  it('loads named targets; the default config has none', () => {
    expect(defaultConfig().targets).toEqual({});
    expect(Object.keys(load({ targets: TARGETS }).targets).sort()).toEqual(['aws-only', 'prod-eu', 'prod-us', 'staging']);
  });

  it('a password in the config file is a config error (exit 2), in a field or in a URL', () => {
    const inField = fail(() => load({ targets: { a: { database: { host: 'h', password: 'hunter2' } } } }));
    expect(inField.exitCode).toBe(2);
    expect(inField.message).toMatch(/targets\.a\.database\.password: a password in the config file is not allowed/);
    expect(inField.message).not.toContain('hunter2');
    const inUrl = fail(() => load({ targets: { a: { database: { url: 'postgres://u:hunter2@h/db' } } } }));
    expect(inUrl.exitCode).toBe(2);
    expect(inUrl.message).toMatch(/password in the config file is not allowed/);
    expect(inUrl.message).not.toContain('hunter2');
    const inQuery = fail(() => load({ targets: { a: { database: { url: 'postgres://u@h/db?password=x' } } } }));
    expect(inQuery.exitCode).toBe(2);
  });

  it('refuses malformed targets with the key that is wrong', () => {
    expect(fail(() => load({ targets: { a: {} } })).message).toMatch(/targets\.a.*needs a database, an aws section, or both/);
    expect(fail(() => load({ targets: { 'bad name!': { aws: { regions: ['us-east-1'] } } } })).message).toMatch(/target names/);
    expect(fail(() => load({ targets: { a: { aws: { regions: [] } } } })).message).toMatch(/targets\.a\.aws\.regions/);
    expect(fail(() => load({ targets: { a: { aws: { regions: ['mars-1'] } } } })).message).toMatch(/AWS region/);
    expect(fail(() => load({ targets: { a: { database: { url: 'postgres://h/db', host: 'h' } } } })).message).toMatch(/exactly one of/);
    expect(fail(() => load({ targets: { a: { database: { host: 'h', passwordEnv: 'not valid' } } } })).message).toMatch(/environment variable name/);
    expect(fail(() => load({ targets: { a: { database: { host: 'h' }, overrides: { database: { url: 'postgres://x' } } } } })).message).toMatch(
      /overrides\.database\.url/,
    );
  });

  it('overrides deep-merge over the top-level config for that target only', () => {
    const config = load({ executions: { threshold: '20m', batchSize: 50 }, targets: TARGETS });
    const [staging, eu] = resolveTargets(config, ['staging', 'prod-eu']);
    expect(staging.config.executions.threshold).toBe('1h');
    expect(staging.config.executions.batchSize).toBe(50); // from the top level, not replaced
    expect(staging.config.check.thresholds).toMatchObject({ stuckExecutions: 5, deadLetters: 1 });
    expect(eu.config.executions.threshold).toBe('20m');
    expect(staging.config.database.url).toBeNull();
  });

  it('an override that is not valid config is a config error naming the target', () => {
    const config = load({ targets: { a: { aws: { regions: ['us-east-1'] }, overrides: { executions: { threshold: 'soon' } } } } });
    const e = fail(() => resolveTargets(config, ['a'], CHECK_THRESHOLDS));
    expect(e.exitCode).toBe(2);
    expect(e.message).toMatch(/^targets\.a\.overrides: executions\.threshold/);
    const typo = load({ targets: { a: { aws: { regions: ['us-east-1'] }, overrides: { check: { thresholds: { stuckExecution: 3 } } } } } });
    expect(fail(() => resolveTargets(typo, ['a'], CHECK_THRESHOLDS)).exitCode).toBe(2);
  });
});

describe('--target / --all-targets', () => {
  const names = ['prod-eu', 'prod-us', 'staging', 'aws-only'];
  it('selects by name and glob, sorted, without duplicates', () => {
    expect(selectTargetNames(names, { all: true })).toEqual(['aws-only', 'prod-eu', 'prod-us', 'staging']);
    expect(selectTargetNames(names, { patterns: ['prod-*'] })).toEqual(['prod-eu', 'prod-us']);
    expect(selectTargetNames(names, { patterns: ['staging', 'prod-u?', 'prod-eu'] })).toEqual(['prod-eu', 'prod-us', 'staging']);
    expect(selectTargetNames(names, {})).toEqual([]);
  });
  it('an unknown name or a glob matching nothing is a usage error', () => {
    const e = fail(() => selectTargetNames(names, { patterns: ['prod-ap'] }));
    expect(e.exitCode).toBe(2);
    expect(e.message).toMatch(/--target prod-ap is not a configured target \(configured: aws-only, prod-eu, prod-us, staging\)/);
    expect(fail(() => selectTargetNames(names, { patterns: ['dev-*'] })).message).toMatch(/matches no configured target/);
    expect(fail(() => selectTargetNames([], { all: true })).message).toMatch(/no targets are configured/);
    expect(fail(() => selectTargetNames(names, { shard: { index: 0, count: 2 } })).message).toMatch(/--shard needs --all-targets or --target/);
    expect(fail(() => selectTargetNames(names, { all: true, patterns: ['x'] })).message).toMatch(/not both/);
  });
  it('a shard is a slice of the selection', () => {
    const many = Array.from({ length: 30 }, (_, i) => `t${i}`);
    const a = selectTargetNames(many, { all: true, shard: { index: 0, count: 2 } });
    const b = selectTargetNames(many, { all: true, shard: { index: 1, count: 2 } });
    expect([...a, ...b].sort()).toEqual([...many].sort());
    expect(a.filter((x) => b.includes(x))).toEqual([]);
  });
});

describe('target connections', () => {
  const config = () => load({ targets: TARGETS });
  it('builds the URL from PG-style fields and a password from the environment', () => {
    const [eu] = resolveTargets(config(), ['prod-eu']);
    const c = targetConnection(eu, { EU_PW: 'p@ss w/rd' }, '/');
    const u = new URL(c.url);
    expect([u.hostname, u.port, u.username, u.pathname, decodeURIComponent(u.password)]).toEqual(['db-eu', '5433', 'opsctl', '/billing', 'p@ss w/rd']);
    expect(c.secrets).toContain('p@ss w/rd');
    expect(eu.describe).toBe('postgres://opsctl@db-eu:5433/billing');
  });
  it('reads a password file (one trailing newline dropped) and a whole URL from the environment', () => {
    const dir = mkdtempSync(join(tmpdir(), 'opsctl-pw-'));
    writeFileSync(join(dir, 'pw'), 's3cret\n');
    const cfg = load({ targets: { f: { database: { url: 'postgres://u@h:1/d', passwordFile: 'pw' } }, e: { database: { urlEnv: 'E_URL' } } } });
    const [f, e] = resolveTargets(cfg, ['f', 'e']);
    expect(decodeURIComponent(new URL(targetConnection(f, {}, dir).url).password)).toBe('s3cret');
    expect(targetConnection(e, { E_URL: 'postgres://u:x9@h/d' }, '/').url).toBe('postgres://u:x9@h/d');
  });
  it('a missing secret fails that target (exit 3), naming the variable, not the value', () => {
    const [eu, staging] = resolveTargets(config(), ['prod-eu', 'staging']);
    const e = fail(() => targetConnection(eu, {}, '/'));
    expect(e.exitCode).toBe(3);
    expect(e.message).toMatch(/EU_PW \(targets\.prod-eu\.database\.passwordEnv\) is not set/);
    expect(fail(() => targetConnection(staging, {}, '/')).message).toMatch(/STAGING_URL/);
  });
  it('validateConfig still accepts a config without targets', () => {
    const { targets: _t, ...rest } = defaultConfig();
    expect(() => validateConfig({ ...rest, targets: {} }, 'x')).not.toThrow();
  });
});
