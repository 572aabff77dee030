import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Config } from '../config/config.js';
import { isConnectionString, merge, validateConfig } from '../config/config.js';
import type { TargetEntry } from './target-config.js';
import { dependencyError, usageError } from '../errors.js';
import { maskConnectionString, passwordsIn } from '../output/masking.js';
import { pickShard } from './shards.js';
import { isFleetSelection, type TargetSelection } from './fleet.js';

/**
 * Targets: the named entries of `targets` in the config, each a database and/or an AWS
 * profile with regions, each with its own effective config (overrides deep-merged over the
 * top-level config). Selection (--target, --all-targets, --shard) happens here; connecting
 * in open-target.ts, fan-out in fleet.ts and on-targets.ts.
 */

export interface ResolvedTarget {
  name: string;
  /** The top-level config with this target's overrides merged in. */
  config: Config;
  entry: TargetEntry;
  /** Where its database is, for messages: never with a password. */
  describe: string | null;
}

const GLOB = /[*?]/;

export function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/**
 * The selected target names, sorted. An unknown name, or a glob that matches nothing, is a
 * usage error: a typo must not silently check fewer targets than intended.
 */
export function selectTargetNames(available: string[], sel: TargetSelection): string[] {
  if (!isFleetSelection(sel)) {
    if (sel.shard) throw usageError('--shard needs --all-targets or --target: it picks a slice of the selected targets.');
    return [];
  }
  if (available.length === 0) throw usageError('no targets are configured: add a "targets" section to the config (see docs/fleets.md) to use --target or --all-targets.');
  if (sel.all && sel.patterns?.length) throw usageError('give --all-targets or --target, not both.');
  let names: string[];
  if (sel.all) names = [...available];
  else {
    const chosen = new Set<string>();
    for (const p of sel.patterns ?? []) {
      if (GLOB.test(p)) {
        const re = globToRegExp(p);
        const hits = available.filter((n) => re.test(n));
        if (hits.length === 0) throw usageError(`--target ${p} matches no configured target (configured: ${preview(available)}).`);
        hits.forEach((h) => chosen.add(h));
      } else {
        if (!available.includes(p)) throw usageError(`--target ${p} is not a configured target (configured: ${preview(available)}).`);
        chosen.add(p);
      }
    }
    names = [...chosen];
  }
  names.sort();
  return sel.shard ? pickShard(names, sel.shard) : names;
}

const preview = (names: string[]) => {
  const sorted = [...names].sort();
  return sorted.length > 8 ? `${sorted.slice(0, 8).join(', ')}, … ${sorted.length - 8} more` : sorted.join(', ');
};

/**
 * Each selected target's effective config; an override that is not valid config is a config
 * error (exit 2). `checkThresholds`: the registered check.thresholds keys, as for the top level.
 */
export function resolveTargets(config: Config, names: string[], checkThresholds?: Record<string, number>): ResolvedTarget[] {
  return names.map((name) => {
    const entry = config.targets[name];
    const { targets: _all, ...base } = config;
    let merged = merge(base as Record<string, unknown>, (entry.overrides ?? {}) as Record<string, unknown>);
    // The connection is the target's own: never the top-level DATABASE_URL or --database-url.
    merged = merge(merged, { database: { url: null } });
    const effective = validateConfig({ ...merged, targets: {} }, `targets.${name}.overrides`, checkThresholds);
    return { name, config: effective, entry, describe: describeDatabase(entry) };
  });
}

function describeDatabase(entry: TargetEntry): string | null {
  const d = entry.database;
  if (!d) return null;
  if (d.url) return maskConnectionString(d.url);
  if (d.urlEnv) return `$${d.urlEnv}`;
  return `postgres://${d.user ?? 'postgres'}@${d.host ?? 'localhost'}:${d.port ?? 5432}/${d.dbname ?? d.user ?? 'postgres'}`;
}

export interface TargetConnection {
  /** A connection string, password included: for Database.connect only, never printed. */
  url: string;
  /** Values to mask out of every message about this target. */
  secrets: string[];
}

/**
 * The target's connection string with its secret read now (from the environment or a file).
 * A missing secret fails this target only (exit 3 for the run, like an unreachable database),
 * so one unmounted secret does not blind the rest of the fleet.
 */
export function targetConnection(t: ResolvedTarget, env: NodeJS.ProcessEnv, cwd: string): TargetConnection {
  const d = t.entry.database;
  if (!d) throw usageError(`target ${t.name} has no database.`);
  if (d.urlEnv) {
    const url = env[d.urlEnv];
    if (!url) throw dependencyError(`target ${t.name}: the environment variable ${d.urlEnv} (targets.${t.name}.database.urlEnv) is not set.`);
    // Like a missing one, a secret that does not parse fails this target only; said, masked, not "Invalid URL".
    if (!isConnectionString(url))
      throw dependencyError(`target ${t.name}: the environment variable ${d.urlEnv} (targets.${t.name}.database.urlEnv) is not a valid connection URL: ${maskConnectionString(url)}.`);
    return { url, secrets: passwordsIn(url) };
  }
  let password: string | null = null;
  if (d.passwordEnv) {
    password = env[d.passwordEnv] ?? null;
    if (password === null || password === '')
      throw dependencyError(`target ${t.name}: the environment variable ${d.passwordEnv} (targets.${t.name}.database.passwordEnv) is not set.`);
  } else if (d.passwordFile) {
    const file = resolve(cwd, d.passwordFile);
    try {
      password = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw dependencyError(`target ${t.name}: the password file ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'}).`);
    }
  }
  let u: URL;
  if (d.url) u = new URL(d.url);
  else {
    u = new URL('postgres://localhost');
    u.hostname = d.host ?? 'localhost';
    if (d.port) u.port = String(d.port);
    u.username = encodeURIComponent(d.user ?? 'postgres');
    u.pathname = `/${encodeURIComponent(d.dbname ?? d.user ?? 'postgres')}`;
    if (d.sslmode) u.searchParams.set('sslmode', d.sslmode);
  }
  if (password !== null) u.password = encodeURIComponent(password);
  return { url: u.toString(), secrets: password ? [password, encodeURIComponent(password)] : [] };
}
