import { readFileSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { userInfo } from 'node:os';
import { loadZod, z } from './zod.js';
import type { z as Z } from 'zod';
import { parseDuration } from './durations.js';
import { MAX_COUNT, usageError } from '../errors.js';
import { maskConnectionString } from '../output/masking.js';
import { lazy, targetsSchema } from '../targets/target-config.js';
import { QUEUE_NAMES } from '../checks/queue-presets.js';

// Every schema below is built on first use (lazy): a command validates only the sections its
// config layers set (validateLayer), and building zod's schema for all of them was ~20 ms of
// a listing's start-up.

/** A duration string in config, checked with the same parser as the flags. */
const duration = lazy(() =>
  z.string().superRefine((v, ctx) => {
    try {
      parseDuration(v, 'value');
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message.replace(/^value /, '').replace(/\.$/, '') }); // the sentence's full stop is added once, by validateConfig
    }
  }),
);
const ident = lazy(() =>
  z
    .string()
    .min(1, 'must be a non-empty name')
    // PostgreSQL's limit is 63 bytes, not characters: a longer name is silently truncated to another name.
    .refine((s) => Buffer.byteLength(s, 'utf8') <= 63, 'must be at most 63 bytes (PostgreSQL truncates longer names)')
    .refine((s) => !s.includes('\u0000'), 'must not contain NUL'),
);
const positiveInt = lazy(() => z.number().int().positive());
/** A cap: 0 = none; at most what PostgreSQL's integer holds. */
const count = lazy(() => z.number().int().min(0).max(MAX_COUNT));
/**
 * A value opsctl sends to the server or prints (a status, a kind, the actor): PostgreSQL refuses
 * a NUL in text (exit 3, naming nothing), and a newline or ESC would garble every line it is in.
 */
const plainText = lazy(() =>
  z
    .string()
    .min(1)
    .refine((s) => !/[\u0000-\u001f\u007f-\u009f]/.test(s), 'must not contain control characters (NUL, newline, tab, ESC, …)'),
);
/** Free text sent to the server (a reason template): a NUL is refused there, so here. */
const serverText = lazy(() =>
  z
    .string()
    .min(1)
    .refine((s) => !s.includes('\u0000'), 'must not contain NUL'),
);

const auditSchema = lazy(() =>
  z
    .object({
      /** Where audit rows go; null disables auditing. Shape of the reference `audit_log`. */
      table: ident().nullable(),
      schema: ident().nullable(),
    })
    .strict(),
);

const databaseSchema = lazy(() =>
  z
    .object({
      url: z.string().nullable(),
      applicationName: plainText().max(63),
      statementTimeout: duration(),
      lockTimeout: duration(),
      connectTimeout: duration(),
    })
    .strict(),
);

const executionsSchema = lazy(() =>
  z
    .object({
      schema: ident().nullable(),
      table: ident(),
      key: ident(),
      status: ident(),
      updatedAt: ident(),
      error: ident(),
      /** Optional reference columns; null when the table has no such column. */
      transitionedAt: ident().nullable(),
      stuckStatuses: z.array(plainText()).min(1),
      failedStatus: plainText(),
      threshold: duration(),
      reasonTemplate: serverText(),
      batchSize: positiveInt().max(10_000),
      max: count(),
    })
    .strict()
    // Reap writes failedStatus over a stuck row: were it also a stuck status, a reap would
    // overwrite the error a failed row already recorded.
    .refine((e) => !e.stuckStatuses.includes(e.failedStatus), { message: 'must not contain executions.failedStatus', path: ['stuckStatuses'] }),
);

const propagationsSchema = lazy(() =>
  z
    .object({
      schema: ident().nullable(),
      table: ident(),
      columns: z
        .object({
          id: ident(),
          kind: ident(),
          attempts: ident(),
          lastAttemptAt: ident(),
          lastError: ident(),
          nextAttemptAt: ident(),
          appliedAt: ident(),
          failedAt: ident(),
          createdAt: ident(),
          teamId: ident().nullable(),
        })
        .strict(),
      maxAttempts: positiveInt(),
      backoff: z.array(duration()).min(1),
      knownKinds: z.array(plainText()).nullable(),
      overdue: duration(),
      batchSize: positiveInt().max(10_000),
      max: count(),
    })
    .strict(),
);

const scheduleGroupsSchema = lazy(() =>
  z
    .object({
      ownerTags: z.record(z.string().min(1).max(128), z.string().min(1).max(256)),
      ownerKeyPrefix: z.string().min(1).nullable(),
      desiredTags: z.record(z.string().min(1).max(128), z.string().min(1).max(256)),
      expected: z.array(z.string().regex(/^[0-9a-zA-Z\-_.]{1,64}$/, 'must be a valid schedule group name')).nullable(),
      expectedQuery: z.string().min(1).nullable(),
      ignore: z.array(z.string().min(1)),
      deletingThreshold: duration(),
      conflictRetries: positiveInt().max(100),
      conflictDelay: duration(),
      concurrency: positiveInt().max(64),
      /**
       * Where the listing reads tags: "per-group" (ListTagsForResource for each group, `concurrency`
       * at a time) or "tagging-api" (Resource Groups Tagging API GetResources, 100 groups a call;
       * groups it does not return are still read one by one).
       */
      tagSource: z.enum(['per-group', 'tagging-api']),
      region: z.string().min(1).nullable(),
      endpoint: z.string().url().nullable(),
      /** Give up on one Scheduler HTTP request after this long (the SDK then retries it). */
      requestTimeout: duration(),
    })
    .strict(),
);

/** The PostgreSQL job queues `opsctl jobs` knows: the registry's names (src/checks/queue-presets.ts). */
export const JOB_QUEUES = QUEUE_NAMES;

const jobsSchema = lazy(() =>
  z
    .object({
      /** Which queue's schema and semantics to use; null = the jobs commands and checks are off. */
      queue: z.enum(JOB_QUEUES).nullable(),
      /** null = the queue's own default schema (River: search_path, graphile-worker: graphile_worker, pg-boss: pgboss, Oban: public). */
      schema: ident().nullable(),
      /** null = the queue's own rule (River 1h, graphile-worker 4h, pg-boss each job's expire_in, Oban 1h). */
      rescueAfter: duration().nullable(),
      includeCancelled: z.boolean(),
      batchSize: positiveInt().max(10_000),
      max: count(),
    })
    .strict(),
);

/**
 * Workers that register and heartbeat (source-systems.md section 5: scheduler.workers), the
 * work table whose rows name the worker holding them (scheduler.runs), and a table-based lock
 * (scheduler.locks). Read by src/checks/dead-workers.ts and src/checks/expired-locks.ts.
 */
const workersSchema = lazy(() =>
  z
    .object({
      /** Whether `check` runs dead-workers; the workers and locks commands work either way. */
      enabled: z.boolean(),
      schema: ident().nullable(),
      table: ident(),
      columns: z.object({ id: ident(), heartbeat: ident(), status: ident().nullable(), host: ident().nullable() }).strict(),
      /** A worker whose heartbeat is older than this (database clock) is dead. */
      stale: duration(),
      runs: z
        .object({
          schema: ident().nullable(),
          table: ident(),
          key: ident(),
          /** The column naming the worker that holds the row. */
          worker: ident(),
          status: ident(),
          heldStatuses: z.array(plainText()).min(1),
          failedStatus: plainText(),
          error: ident().nullable(),
          updatedAt: ident().nullable(),
          finishedAt: ident().nullable(),
          reasonTemplate: serverText(),
        })
        .strict()
        .refine((r) => !r.heldStatuses.includes(r.failedStatus), { message: 'must not contain workers.runs.failedStatus', path: ['heldStatuses'] }),
      locks: z
        .object({
          schema: ident().nullable(),
          table: ident(),
          name: ident(),
          holder: ident().nullable(),
          expiresAt: ident().nullable(),
          acquiredAt: ident().nullable(),
        })
        .strict()
        .refine((l) => l.holder !== null || l.expiresAt !== null, 'needs at least one of holder and expiresAt'),
      /** Advisory locks held by a session idle (or idle in transaction) longer than this are listed. */
      advisoryIdle: duration(),
      batchSize: positiveInt().max(10_000),
      max: count(),
    })
    .strict(),
);

const checkSchema = lazy(() =>
  z
    .object({
      /** A check is a finding when its count is at least this. */
      // Keyed by the registered checks (src/checks/check-registry.ts): loadConfig is given their
      // keys and defaults, so the config never imports the checks.
      thresholds: z.record(z.string(), positiveInt()),
      scheduleGroupClasses: z.array(z.enum(['owned', 'partial', 'unowned', 'foreign', 'drifted', 'deleting', 'missing', 'ignored'])),
    })
    .strict(),
);

/** The config's top-level keys and their schemas, in the order zod reports problems. */
const sections = {
  $schema: lazy(() => z.string().optional()),
  actor: lazy(() => plainText().max(200)),
  database: databaseSchema,
  audit: auditSchema,
  executions: executionsSchema,
  propagations: propagationsSchema,
  scheduleGroups: scheduleGroupsSchema,
  jobs: jobsSchema,
  workers: workersSchema,
  check: checkSchema,
  /** Named targets for fleet runs (--target, --all-targets): src/target-config.ts. */
  targets: targetsSchema,
};
type Section = keyof typeof sections;
type Shape = { [K in Section]: ReturnType<(typeof sections)[K]> };

/** The whole config's schema (built on first use). */
export const configSchema = lazy(() =>
  z.object(Object.fromEntries(Object.entries(sections).map(([k, schema]) => [k, schema()])) as Shape).strict(),
);

export type Config = Z.infer<ReturnType<typeof configSchema>>;
export type ExecutionsConfig = Config['executions'];
export type PropagationsConfig = Config['propagations'];
export type ScheduleGroupsConfig = Config['scheduleGroups'];
export type JobsConfig = Config['jobs'];
export type WorkersConfig = Config['workers'];

function defaultActor(): string {
  try {
    return `opsctl:${userInfo().username}`;
  } catch {
    return 'opsctl';
  }
}

/** Built-in defaults: the reference systems in shared/reference/source-systems.md. */
export function defaultConfig(): Config {
  return {
    actor: defaultActor(),
    database: {
      url: null,
      applicationName: 'opsctl',
      statementTimeout: '30s',
      lockTimeout: '5s',
      connectTimeout: '10s',
    },
    audit: { table: null, schema: null },
    executions: {
      schema: null,
      table: 'purchase_executions',
      key: 'id',
      status: 'status',
      updatedAt: 'updated_at',
      error: 'error',
      transitionedAt: 'transitioned_at',
      stuckStatuses: ['approved', 'running'],
      failedStatus: 'failed',
      threshold: '10m',
      reasonTemplate: 'reaped after {threshold} in {status} state — executor did not complete',
      // The cap: reap sizes its batches by time, from 500 rows up to this.
      batchSize: 10_000,
      max: 1000,
    },
    propagations: {
      schema: null,
      table: 'pending_propagations',
      columns: {
        id: 'id',
        kind: 'kind',
        attempts: 'attempts',
        lastAttemptAt: 'last_attempt_at',
        lastError: 'last_error',
        nextAttemptAt: 'next_attempt_at',
        appliedAt: 'applied_at',
        failedAt: 'failed_at',
        createdAt: 'created_at',
        teamId: 'team_id',
      },
      maxAttempts: 10,
      backoff: ['1m', '5m', '15m', '30m', '1h', '2h', '4h', '8h', '16h', '24h'],
      knownKinds: null,
      overdue: '15m',
      batchSize: 500,
      max: 1000,
    },
    scheduleGroups: {
      ownerTags: {},
      ownerKeyPrefix: null,
      desiredTags: {},
      expected: null,
      expectedQuery: null,
      ignore: [],
      deletingThreshold: '1h',
      conflictRetries: 15,
      conflictDelay: '2s',
      // Tag reads in flight; halved while the service throttles (bench: 32 ≈ 20× the sequential loop).
      concurrency: 32,
      tagSource: 'per-group',
      region: null,
      endpoint: null,
      requestTimeout: '30s',
    },
    jobs: {
      queue: null,
      schema: null,
      rescueAfter: null,
      includeCancelled: false,
      batchSize: 500,
      max: 1000,
    },
    workers: {
      enabled: false,
      schema: 'scheduler',
      table: 'workers',
      columns: { id: 'id', heartbeat: 'last_heartbeat_at', status: 'status', host: 'host' },
      stale: '2m',
      runs: {
        schema: 'scheduler',
        table: 'runs',
        key: 'id',
        worker: 'worker_id',
        status: 'status',
        heldStatuses: ['running'],
        failedStatus: 'failed',
        error: 'error',
        updatedAt: 'updated_at',
        finishedAt: 'finished_at',
        reasonTemplate: 'reaped: worker {worker} stopped heartbeating (stale after {stale}) while it held this run in {status} state',
      },
      locks: { schema: 'scheduler', table: 'locks', name: 'name', holder: 'holder', expiresAt: 'expires_at', acquiredAt: 'acquired_at' },
      advisoryIdle: '5m',
      batchSize: 500,
      max: 1000,
    },
    check: {
      thresholds: {},
      scheduleGroupClasses: ['partial', 'unowned', 'foreign', 'drifted', 'deleting', 'missing'],
    },
    targets: {},
  };
}

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deep merge where arrays and scalars replace, objects merge; records like ownerTags replace whole. */
export function merge(base: Plain, over: Plain, path: string[] = []): Plain {
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const here = [...path, k].join('.');
    const replaceWhole = here === 'scheduleGroups.ownerTags' || here === 'scheduleGroups.desiredTags';
    out[k] = isPlain(v) && isPlain(base[k]) && !replaceWhole ? merge(base[k] as Plain, v, [...path, k]) : v;
  }
  return out;
}

export interface LoadedConfig {
  config: Config;
  /** The file it came from, or null when only defaults apply. */
  file: string | null;
}

export interface ConfigSources {
  /** --config */
  configPath?: string;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Flag values that override config keys (flags > env > file > defaults). */
  overrides?: Plain;
  /** The registered checks' check.thresholds keys with their defaults; other keys are refused. */
  checkThresholds?: Record<string, number>;
}

/** The environment layer: a small, documented set of variables. */
function envOverrides(env: NodeJS.ProcessEnv): Plain {
  const db: Plain = {};
  if (env.DATABASE_URL) db.url = env.DATABASE_URL;
  if (env.OPSCTL_STATEMENT_TIMEOUT) db.statementTimeout = env.OPSCTL_STATEMENT_TIMEOUT;
  if (env.OPSCTL_LOCK_TIMEOUT) db.lockTimeout = env.OPSCTL_LOCK_TIMEOUT;
  if (env.OPSCTL_CONNECT_TIMEOUT) db.connectTimeout = env.OPSCTL_CONNECT_TIMEOUT;
  const out: Plain = {};
  if (Object.keys(db).length) out.database = db;
  if (env.OPSCTL_ACTOR) out.actor = env.OPSCTL_ACTOR;
  return out;
}

function formatPath(path: PropertyKey[]): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[');
}

export function validateConfig(raw: unknown, source: string, checkThresholds?: Record<string, number>): Config {
  loadZod();
  // jitless: zod otherwise compiles a fast path (new Function) per object schema on first use,
  // ~25 ms that a config parsed once per process never earns back.
  const parsed = configSchema().safeParse(raw, { jitless: true });
  if (parsed.success) {
    const unknown = checkThresholds && Object.keys(parsed.data.check.thresholds).find((k) => !(k in checkThresholds));
    if (unknown) throw usageError(`${source}: check.thresholds.${unknown}: unknown key (check the spelling against docs/configuration.md).`);
    return parsed.data;
  }
  const issue = parsed.error.issues[0];
  let key = formatPath(issue.path);
  let what = issue.message;
  if (issue.code === 'unrecognized_keys') {
    key = formatPath([...issue.path, issue.keys[0]]);
    what = 'unknown key (check the spelling against docs/configuration.md)';
  } else if (issue.code === 'invalid_key' && issue.issues[0]) {
    // A record key (a target name) that fails its own rule: say which rule.
    what = issue.issues[0].message;
  } else if (issue.code === 'invalid_type') {
    what = issue.message.replace(/^Invalid input: /, '');
  }
  const more = parsed.error.issues.length > 1 ? ` (and ${parsed.error.issues.length - 1} more problem(s))` : '';
  throw usageError(`${source}: ${key || '(top level)'}: ${what}${more}.`);
}

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const isPlainText = (v: unknown, max: number) => typeof v === 'string' && v.length >= 1 && v.length <= max && !CONTROL.test(v);
const isDuration = (v: unknown) => {
  if (typeof v !== 'string') return false;
  try {
    parseDuration(v, 'value');
    return true;
  } catch {
    return false;
  }
};
const DATABASE_KEYS = ['url', 'applicationName', 'statementTimeout', 'lockTimeout', 'connectTimeout'];
const CLASSES = new Set(['owned', 'partial', 'unowned', 'foreign', 'drifted', 'deleting', 'missing', 'ignored']);

/**
 * The environment layer's sections (actor, database, check) and a file's audit section, checked by hand, without zod: true
 * only when each passes the very rules of its schema above (then zod would pass it too). Any
 * other layer, or a value these rules do not pass, goes to zod (the same sentence as ever).
 * What every database command's start-up validates: zod is no longer loaded for it.
 */
function plainLayer(merged: Plain, keys: string[], checkThresholds?: Record<string, number>): boolean {
  if (!keys.every((k) => k === 'actor' || k === 'database' || k === 'check' || k === 'audit')) return false;
  if (keys.includes('audit')) {
    const a = merged.audit;
    const isIdent = (v: unknown) => typeof v === 'string' && v.length >= 1 && Buffer.byteLength(v, 'utf8') <= 63 && !v.includes('\u0000');
    if (!isPlain(a) || Object.keys(a).some((k) => k !== 'table' && k !== 'schema')) return false;
    if ((a.table !== null && !isIdent(a.table)) || (a.schema !== null && !isIdent(a.schema))) return false;
  }
  if (keys.includes('actor') && !isPlainText(merged.actor, 200)) return false;
  if (keys.includes('database')) {
    const d = merged.database;
    if (!isPlain(d) || Object.keys(d).some((k) => !DATABASE_KEYS.includes(k)) || DATABASE_KEYS.some((k) => !(k in d))) return false;
    if (d.url !== null && typeof d.url !== 'string') return false;
    if (!isPlainText(d.applicationName, 63) || !isDuration(d.statementTimeout) || !isDuration(d.lockTimeout) || !isDuration(d.connectTimeout)) return false;
  }
  if (keys.includes('check')) {
    const c = merged.check;
    if (!isPlain(c) || Object.keys(c).some((k) => k !== 'thresholds' && k !== 'scheduleGroupClasses')) return false;
    const { thresholds, scheduleGroupClasses } = c;
    if (!isPlain(thresholds) || !Array.isArray(scheduleGroupClasses)) return false;
    for (const [k, v] of Object.entries(thresholds)) {
      if (!Number.isSafeInteger(v) || (v as number) <= 0) return false;
      if (checkThresholds && !(k in checkThresholds)) return false;
    }
    if (!scheduleGroupClasses.every((s) => typeof s === 'string' && CLASSES.has(s))) return false;
  }
  return true;
}

/**
 * Checks the config after one layer (file, environment, command line) was merged in, as if the
 * whole of it were validated: a section the layer did not set is the built-in default (valid:
 * test/config.test.ts parses them) or was checked with an earlier layer, so only the sections
 * this layer set are parsed. When one fails, the whole config is validated for the sentence.
 */
function validateLayer(merged: Plain, keys: string[], source: string, checkThresholds?: Record<string, number>): void {
  if (keys.length === 0) return;
  if (!keys.every((k): k is Section => Object.prototype.hasOwnProperty.call(sections, k))) {
    validateConfig(merged, source, checkThresholds); // an unknown top-level key: it throws
    return;
  }
  if (plainLayer(merged, keys, checkThresholds)) return;
  const shape = Object.fromEntries(keys.map((k) => [k, sections[k]()]));
  const parsed = z.object(shape).safeParse(Object.fromEntries(keys.map((k) => [k, merged[k]])), { jitless: true });
  const thresholds = (merged.check as { thresholds?: object } | undefined)?.thresholds;
  const unknownThreshold = checkThresholds && keys.includes('check') && thresholds && Object.keys(thresholds).some((k) => !(k in checkThresholds));
  if (!parsed.success || unknownThreshold) validateConfig(merged, source, checkThresholds);
}

/**
 * Whether pg can read a connection string: a socket directory (`/var/run/postgresql`) or an
 * absolute URL, tried as pg-connection-string does (spaces and stray `%` encoded, an empty host
 * allowed). Without this, a URL that does not parse reached pg as "Invalid URL" (exit 4), or a
 * scheme missing its colon (`postgres//…`) was read as a relative path to a host named "base".
 */
export function isConnectionString(url: string): boolean {
  if (url.startsWith('/')) return true;
  const str = / |%[^a-f0-9]|%[a-f0-9][^a-f0-9]/i.test(url) ? encodeURI(url).replace(/%25(\d\d)/g, '%$1') : url;
  for (const candidate of [str, str.replace('@/', '@___DUMMY___/')]) {
    try {
      new URL(candidate);
      return true;
    } catch {
      // the next form, then give up
    }
  }
  return false;
}

/** A connection string that does not parse: one sentence naming where it came from, its password masked. */
function checkConnectionString(url: unknown, where: string): void {
  if (typeof url !== 'string' || url === '' || isConnectionString(url)) return;
  throw usageError(
    `${where} is not a valid connection URL: ${maskConnectionString(url)} (a URL such as postgres://host:5432/database; in the user name and password, percent-encode "/", "@", "#", ":" and "%" as %2F, %40, %23, %3A and %25).`,
  );
}

export function loadConfig(src: ConfigSources): LoadedConfig {
  const defaults = merge(defaultConfig() as unknown as Plain, { check: { thresholds: { ...src.checkThresholds } } });
  let file: string | null = null;
  let fromFile: Plain = {};
  const candidate = src.configPath ?? src.env.OPSCTL_CONFIG;
  if (candidate) {
    file = resolve(src.cwd, candidate);
    if (!existsSync(file)) {
      const via = src.configPath ? '--config' : 'OPSCTL_CONFIG';
      throw usageError(`config file ${file} (from ${via}) does not exist.`);
    }
  } else if (existsSync(resolve(src.cwd, 'opsctl.config.json'))) {
    file = resolve(src.cwd, 'opsctl.config.json');
  }
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw usageError(`config file ${file} cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}.`);
    }
    try {
      fromFile = JSON.parse(text);
    } catch (e) {
      throw usageError(`${file}: not valid JSON: ${(e as Error).message}.`);
    }
    if (!isPlain(fromFile)) throw usageError(`${file}: (top level): expected a JSON object.`);
    // Validate the file on its own first so errors name the file, not the merged result.
    validateLayer(merge(defaults, fromFile), Object.keys(fromFile), file, src.checkThresholds);
    checkConnectionString((fromFile.database as Plain | undefined)?.url, `${file}: database.url`);
  }
  let merged = merge(defaults, fromFile);
  const env = envOverrides(src.env);
  merged = merge(merged, env);
  // actor and check come from the system and the caller (user name, the checks' thresholds):
  // checked with the environment layer, as the whole defaults were.
  validateLayer(merged, [...new Set([...Object.keys(env), 'actor', 'check'])], 'environment', src.checkThresholds);
  checkConnectionString(src.env.DATABASE_URL, 'DATABASE_URL (environment)');
  const overrides = src.overrides ?? {};
  merged = merge(merged, overrides);
  validateLayer(merged, Object.keys(overrides), 'command line', src.checkThresholds);
  checkConnectionString((overrides.database as Plain | undefined)?.url, '--database-url');
  // Equal to what zod's parse returns (no defaults, transforms or stripped keys in the schema).
  return { config: merged as unknown as Config, file };
}

/** The effective config with every secret masked, for `opsctl config show`. */
export function maskedConfig(config: Config): Config {
  const copy = structuredClone(config);
  if (copy.database.url) copy.database.url = maskConnectionString(copy.database.url);
  return copy;
}
