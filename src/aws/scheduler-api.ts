import type { SchedulerClient } from '@aws-sdk/client-scheduler';
import type { ResourceGroupsTaggingAPIClient } from '@aws-sdk/client-resource-groups-tagging-api';
import { setFlagsFromString } from 'node:v8';
import { dependencyError, OpsctlError, usageError } from '../errors.js';
import { delay } from '../engine/concurrency.js';
import type { Config } from '../config/config.js';
import { parseDuration } from '../config/durations.js';

/** Regions where EventBridge Scheduler is offered; anything else is refused unless an endpoint is set. */
const KNOWN_REGIONS = new Set([
  'us-east-1', 'us-east-2', 'us-west-1', 'us-west-2', 'af-south-1', 'ap-east-1', 'ap-east-2', 'ap-south-1', 'ap-south-2',
  'ap-southeast-1', 'ap-southeast-2', 'ap-southeast-3', 'ap-southeast-4', 'ap-southeast-5', 'ap-southeast-7',
  'ap-northeast-1', 'ap-northeast-2', 'ap-northeast-3', 'ca-central-1', 'ca-west-1', 'eu-central-1', 'eu-central-2',
  'eu-west-1', 'eu-west-2', 'eu-west-3', 'eu-south-1', 'eu-south-2', 'eu-north-1', 'il-central-1', 'me-south-1',
  'me-central-1', 'mx-central-1', 'sa-east-1', 'us-gov-east-1', 'us-gov-west-1', 'cn-north-1', 'cn-northwest-1',
]);

export interface SchedulerAccess {
  env: NodeJS.ProcessEnv;
  region?: string | null;
  profile?: string | null;
  /** --endpoint-url: always wins. */
  endpoint?: string | null;
  /** scheduleGroups.endpoint from the config file: below the environment (see resolveEndpoint). */
  configEndpoint?: string | null;
  requestTimeoutMs?: number;
}

export interface ApiStats {
  /** HTTP requests sent, retries included. */
  calls: number;
  byOperation: Record<string, number>;
  /** Throttling answers absorbed by the SDK's adaptive retry. */
  throttled: number;
  /** ConflictException answers absorbed by opsctl's bounded retry. */
  conflictsRetried: number;
  /** Told of every throttling answer (the tag-read limiter backs off on it). */
  onThrottle?: () => void;
  /** Set when the tag reads backed off below their configured concurrency. */
  concurrencyLowest?: number;
  /** Tag reads answered by a tag-read worker thread (aws/tag-read-pool.ts); not in the JSON summary. */
  readsByWorker?: number;
}

/** A Resource Groups Tagging API client with the same settings, sharing the Scheduler client's call accounting. */
export interface TaggingApi {
  client: ResourceGroupsTaggingAPIClient;
  sdk: typeof import('@aws-sdk/client-resource-groups-tagging-api');
  region: string;
  endpoint: string | null;
}

/** A Scheduler client with opsctl's settings and call accounting. */
export interface SchedulerApi {
  client: SchedulerClient;
  sdk: typeof import('@aws-sdk/client-scheduler');
  region: string;
  endpoint: string | null;
  stats: ApiStats;
  /** The client's settings as plain data (credentials aside): what a tag-read worker's client is built with (aws/tag-read-pool.ts). */
  workerSettings: Record<string, unknown>;
  /** The Tagging API client, created (and its SDK loaded) on first use only: `scheduleGroups.tagSource: "tagging-api"`. */
  tagging(): Promise<TaggingApi>;
}

/**
 * The Scheduler endpoint: --endpoint-url > AWS_ENDPOINT_URL_SCHEDULER > AWS_ENDPOINT_URL >
 * scheduleGroups.endpoint (the SDK's own order, and opsctl's "file < environment < flag").
 * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true drops the environment and the config file, as the
 * SDK drops its configured endpoints; the flag is an explicit endpoint and still wins.
 */
export function resolveEndpoint(access: SchedulerAccess): string | null {
  return resolveWithSource(access)?.url ?? null;
}

function resolveWithSource(access: SchedulerAccess): { url: string; source: string } | null {
  if (access.endpoint) return { url: access.endpoint, source: '--endpoint-url' };
  const env = access.env;
  if (env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS === 'true') return null;
  if (env.AWS_ENDPOINT_URL_SCHEDULER) return { url: env.AWS_ENDPOINT_URL_SCHEDULER, source: 'AWS_ENDPOINT_URL_SCHEDULER' };
  if (env.AWS_ENDPOINT_URL) return { url: env.AWS_ENDPOINT_URL, source: 'AWS_ENDPOINT_URL' };
  if (access.configEndpoint) return { url: access.configEndpoint, source: 'scheduleGroups.endpoint' };
  return null;
}

/** An endpoint must be an http(s) URL: anything else is a usage error (exit 2) naming where it came from. */
function checkEndpoint(e: { url: string; source: string } | null): void {
  if (!e) return;
  let ok = false;
  try {
    ok = /^https?:$/.test(new URL(e.url).protocol);
  } catch {
    ok = false;
  }
  if (!ok) throw usageError(`${e.source} "${e.url}" is not an http(s) URL (like http://127.0.0.1:4599 or https://scheduler.us-east-1.amazonaws.com).`);
}

/**
 * The Tagging API's endpoint: AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API, else the Scheduler's
 * own endpoint when one is set (flag, environment, config: the emulator serves both).
 */
export function resolveTaggingEndpoint(access: SchedulerAccess): string | null {
  const env = access.env;
  if (env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS !== 'true' && env.AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API) return env.AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API;
  return resolveEndpoint(access);
}

type StatsMiddlewareTarget = { middlewareStack: { add: (mw: any, opts: any) => void } };

/** Counts every HTTP attempt (retries included) into `stats`. */
function countCalls(client: StatsMiddlewareTarget, stats: ApiStats): void {
  client.middlewareStack.add(
    (next: (args: unknown) => Promise<{ response?: unknown }>, context: { commandName?: string }) => async (args: unknown) => {
      stats.calls += 1;
      const op = String(context.commandName ?? 'unknown').replace(/Command$/, '');
      stats.byOperation[op] = (stats.byOperation[op] ?? 0) + 1;
      try {
        const out = await next(args);
        if ((out.response as { statusCode?: number } | undefined)?.statusCode === 429) {
          stats.throttled += 1;
          stats.onThrottle?.();
        }
        return out;
      } catch (e) {
        if (/^Throttl(ing|ed)Exception$/.test((e as { name?: string }).name ?? '')) {
          stats.throttled += 1;
          stats.onThrottle?.();
        }
        throw e;
      }
    },
    // Below the retry middleware and right around the HTTP exchange: one count per attempt.
    { step: 'deserialize', name: 'opsctlCallStats', priority: 'low' },
  );
}

/** The AWS flags a command may take; each falls back to the environment, then the config. */
export interface AwsFlags {
  region?: string;
  profile?: string;
  endpointUrl?: string;
}

/**
 * Where and how to reach Scheduler: --region > AWS_REGION > AWS_DEFAULT_REGION > config;
 * likewise the profile; the endpoint: flag > environment > config (resolveEndpoint).
 */
export function schedulerAccess(env: NodeJS.ProcessEnv, flags: AwsFlags, config: Config): SchedulerAccess {
  return {
    env,
    region: flags.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? config.scheduleGroups.region,
    profile: flags.profile ?? env.AWS_PROFILE ?? null,
    endpoint: flags.endpointUrl ?? null,
    configEndpoint: config.scheduleGroups.endpoint,
    requestTimeoutMs: parseDuration(config.scheduleGroups.requestTimeout, 'scheduleGroups.requestTimeout'),
  };
}

// V8 considers a function for TurboFan after it has run this much bytecode (Node 20's default).
export const DEFAULT_INTERRUPT_BUDGET = 67584;
let laterTierUps = 0;
let interruptBudget = DEFAULT_INTERRUPT_BUDGET;
const setInterruptBudget = (budget: number) => {
  interruptBudget = budget;
  setFlagsFromString(`--interrupt-budget=${budget}`);
};
/** The interrupt budget opsctl last gave V8 (V8 has no getter). */
export const currentInterruptBudget = () => interruptBudget;

/**
 * While a listing runs, functions tier up to TurboFan 4× later. A listing of 1,001 groups is a
 * second or two of the same SDK code over and over: V8's background threads spent 0.8–1.0 s of
 * CPU optimising it, which the run never earned back (main-thread CPU the same, 2.2–2.3 s; total
 * CPU 15–20% lower). Undone when the listing ends: what runs after it (writes, audits) is not
 * that loop.
 */
export function tierUpLater(): () => void {
  if (laterTierUps++ === 0) setInterruptBudget(DEFAULT_INTERRUPT_BUDGET * 4);
  let done = false;
  return () => {
    if (done) return;
    done = true;
    if (--laterTierUps === 0) setInterruptBudget(DEFAULT_INTERRUPT_BUDGET);
  };
}

/** Loads the SDK (only now: `opsctl --help` must not pay for it) and builds a client. */
export async function createSchedulerApi(access: SchedulerAccess): Promise<SchedulerApi> {
  const env = access.env;
  const resolved = resolveWithSource(access);
  checkEndpoint(resolved);
  const endpoint = resolved?.url ?? null;
  const region = access.region || env.AWS_REGION || env.AWS_DEFAULT_REGION || null;
  if (!region) {
    throw dependencyError('no AWS region is set: pass --region, set AWS_REGION, or set scheduleGroups.region in the config.');
  }
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) throw dependencyError(`"${region}" is not an AWS region name (like us-east-1).`);
  if (!endpoint && !KNOWN_REGIONS.has(region)) {
    throw dependencyError(`unknown AWS region "${region}": EventBridge Scheduler is not offered there (pass --endpoint-url to use a custom endpoint).`);
  }
  // The SDK warns on Node 20 about releases after early 2027; keep it out of opsctl's output (engines says >=20.19).
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  // The launcher keeps V8's young generation at its initial size (bin/opsctl.cjs: flat RSS for
  // million-row listings). Every SDK call allocates and up to 32 are in flight, so a young
  // generation that cannot grow is scavenged over and over: CPU profiles of 1,001 tag reads
  // showed 330–620 ms of GC against 100–200 ms with V8's default growth (2). AWS commands hold little
  // (a page of groups and their tags), so they give the growth back; V8 reads it at each resize.
  // After the import: the launcher compiles the SDK from its code cache, which V8 accepts only
  // under the flags it was written with.
  const sdk = await import('@aws-sdk/client-scheduler');
  (await import('node:v8')).setFlagsFromString('--semi-space-growth-factor=2');
  const credentials =
    env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, sessionToken: env.AWS_SESSION_TOKEN }
      : undefined;
  // Shared by the Scheduler client and the (lazily created) Tagging API client.
  const clientSettings = {
    region,
    ...(credentials ? { credentials } : {}),
    ...(access.profile ? { profile: access.profile } : {}),
    // Throttling and 5xx are absorbed by the SDK; adaptive mode also slows the client down.
    retryMode: 'adaptive',
    maxAttempts: 6,
    // Resolve each command's middleware stack once, not on every call (~0.3 ms of CPU a call):
    // opsctl adds its only middleware (countCalls) before the first call and never after.
    cacheMiddleware: true,
    // throwOnRequestTimeout: without it the SDK only logs a warning and waits for ever.
    requestHandler: { requestTimeout: access.requestTimeoutMs ?? 30_000, throwOnRequestTimeout: true, connectionTimeout: 5_000 },
  } as const;
  const client = new sdk.SchedulerClient({ ...clientSettings, ...(endpoint ? { endpoint } : {}) });
  const stats: ApiStats = { calls: 0, byOperation: {}, throttled: 0, conflictsRetried: 0 };
  // Inside the retry loop, so every attempt is counted.
  countCalls(client as unknown as StatsMiddlewareTarget, stats);
  let tagging: Promise<TaggingApi> | undefined;
  const taggingApi = (): Promise<TaggingApi> =>
    (tagging ??= (async () => {
      const taggingEndpoint = resolveTaggingEndpoint(access);
      // Compiled under the default flags: Node 20's V8 fixes the flag hash that code caches are
      // checked against at start-up, a later V8 may not (the launcher's import is synchronous).
      if (laterTierUps > 0) setInterruptBudget(DEFAULT_INTERRUPT_BUDGET);
      const loading = import('@aws-sdk/client-resource-groups-tagging-api');
      if (laterTierUps > 0) setInterruptBudget(DEFAULT_INTERRUPT_BUDGET * 4);
      const tsdk = await loading;
      const tclient = new tsdk.ResourceGroupsTaggingAPIClient({ ...clientSettings, ...(taggingEndpoint ? { endpoint: taggingEndpoint } : {}) });
      countCalls(tclient as unknown as StatsMiddlewareTarget, stats);
      return { client: tclient, sdk: tsdk, region, endpoint: taggingEndpoint };
    })());
  const workerSettings = { ...clientSettings, requestHandler: { ...clientSettings.requestHandler }, ...(endpoint ? { endpoint } : {}) };
  delete (workerSettings as { credentials?: unknown }).credentials; // the worker asks this client's provider
  return { client, sdk, region, endpoint, stats, workerSettings, tagging: taggingApi };
}

type AnyError = { name?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number } };

/** Errors after which no further call can succeed: stop the run rather than fail each item. */
export function isFatalAwsError(e: unknown): boolean {
  const err = e as AnyError;
  return (
    e instanceof OpsctlError ||
    /CredentialsProviderError|AccessDenied|UnrecognizedClient|InvalidSignature|ExpiredToken|InvalidClientTokenId|TimeoutError/.test(err?.name ?? '') ||
    /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH/.test(err?.code ?? err?.message ?? '') ||
    isNotAwsAnswer(e)
  );
}

/**
 * The endpoint answered something that is not an AWS answer (an HTML page from a proxy, a
 * captive portal, a wrong --endpoint-url): the SDK's "Deserialization error … $response".
 * Every later call would get the same page, so it is fatal.
 */
function isNotAwsAnswer(e: unknown): boolean {
  const err = e as AnyError;
  return /Deserialization error/.test(err?.message ?? '') || (err?.name === 'SyntaxError' && err.$metadata !== undefined);
}

/** One clear sentence for the errors an operator must act on; exit 3. */
export function translateAwsError(e: unknown, operation: string, api?: Pick<SchedulerApi, 'region' | 'endpoint'>): OpsctlError {
  if (e instanceof OpsctlError) return e;
  const err = e as AnyError;
  const name = err?.name ?? 'Error';
  const msg = (err?.message ?? String(e)).replace(/\s+/g, ' ').trim();
  const where = api ? ` (region ${api.region}${api.endpoint ? `, endpoint ${api.endpoint}` : ''})` : '';
  // `operation` is a Scheduler operation, or an action already qualified with its service (tag:GetResources).
  const action = operation.includes(':') ? operation : `scheduler:${operation}`;
  const service = action.startsWith('tag:') ? 'Resource Groups Tagging API' : 'Scheduler';
  if (isNotAwsAnswer(e)) {
    const status = err.$metadata?.httpStatusCode;
    return dependencyError(
      `the ${service} endpoint${where} answered ${action} with ${status ? `HTTP ${status} and ` : ''}a page that is not an AWS answer (HTML from a proxy, or a wrong endpoint URL?).`,
      e,
    );
  }
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(msg)) {
    return dependencyError('no AWS credentials found: set AWS_PROFILE or --profile, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or log in with SSO.', e);
  }
  if (/AccessDenied/.test(name) || err?.$metadata?.httpStatusCode === 403) {
    return dependencyError(`AWS denied ${action}${where}: ${msg} (see docs/privileges.md for the IAM actions each command needs).`, e);
  }
  if (/UnrecognizedClient|InvalidClientTokenId|InvalidSignature|ExpiredToken/.test(name)) {
    return dependencyError(`AWS rejected the credentials on ${action}: ${name}.`, e);
  }
  if (name === 'TimeoutError' || /timed? ?out/i.test(msg)) {
    return dependencyError(`${action} timed out${where}: no answer from the ${service} endpoint.`, e);
  }
  if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH/.test(`${err?.code ?? ''} ${msg}`)) {
    return dependencyError(`cannot reach the ${service} endpoint${where}: ${err?.code ?? msg}.`, e);
  }
  if (name === 'ThrottlingException' || name === 'ThrottledException') return dependencyError(`${action} kept being throttled after the SDK's retries.`, e);
  return dependencyError(`${action} failed: ${name}: ${msg}${where}.`, e);
}

export interface ConflictRetry {
  tries: number;
  delayMs: number;
}

/**
 * ConflictException is answered while a group is being created or deleted: retried a bounded
 * number of times, a fixed delay apart (the reference engine's 15 × 2 s). It can also mean a
 * genuine name clash, so after the bound it fails clearly instead of looping.
 */
export async function withConflictRetry<T>(api: SchedulerApi, retry: ConflictRetry, what: string, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if ((e as AnyError).name !== 'ConflictException') throw e;
      if (attempt >= retry.tries) {
        throw new Error(`${what}: still ConflictException after ${retry.tries} tries ${retry.delayMs} ms apart (group being created/deleted, or a name clash)`);
      }
      api.stats.conflictsRetried += 1;
      await delay(retry.delayMs);
    }
  }
}
