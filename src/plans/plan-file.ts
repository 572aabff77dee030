import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Config } from '../config/config.js';
import { usageError } from '../errors.js';

/**
 * A reviewed plan (docs/plans.md): what a dry run would change, written by `--plan-out FILE`,
 * applied by `opsctl apply FILE`. The file holds the items with their before-images, the
 * command that made it (its arguments, secrets masked), each target's identity, the effective
 * config's fingerprint, when it was written, and a digest of all of that.
 */

/** The one format this build writes and reads; any other is refused (exit 2). */
export const PLAN_FORMAT = 'opsctl-plan/1';

/** What a plan was made on: a PostgreSQL database, or one AWS account and region. */
export type PlanIdentity =
  | { kind: 'postgresql'; systemIdentifier: string; database: string }
  | { kind: 'aws'; account: string | null; region: string };

/** The effective config's fingerprint: the hash of its canonical JSON (secrets and connection settings left out), and one per key to say which changed. */
export interface ConfigFingerprint {
  hash: string;
  keys: Record<string, string>;
}

export interface PlanItem {
  /** The planned item as the remedy made it (its id, its refusal or settled note, what the report shows). */
  item: Record<string, unknown> & { id: string };
  /** The row's (or the group's) state at plan time; null when the plan has none to record (a refused item, a group to create). */
  image: unknown;
  /** What the remedy's plan kept beside the item for its write-time guard (a compare-and-set token), when it keeps one. */
  token?: string;
}

export interface PlanTarget {
  /** The fleet target (`billing-eu`, `billing-eu/eu-west-1` for a region); null: the top-level config. */
  name: string | null;
  identity: PlanIdentity;
  /** The remedy's verb: "reap", "retry", "adopt". */
  remedy: string;
  config: ConfigFingerprint;
  items: PlanItem[];
}

export interface PlanFile {
  format: string;
  createdAt: string;
  /** The actor that made the plan (config actor). */
  createdBy: string;
  opsctlVersion: string;
  /** The command path: "reap", "propagations retry". */
  command: string;
  /** The command line as given, secrets masked: for people. */
  argv: string[];
  /** What `apply` runs (with --apply): the command's words, options and arguments, no global flag. */
  args: string[];
  kind: 'database' | 'aws';
  targets: PlanTarget[];
  /** sha256 over the canonical JSON of everything else. */
  digest: string;
}

/** JSON with every object's keys sorted and no whitespace: the same content gives the same text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined && typeof v !== 'function')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** The digest of a plan's content (every field but `digest`). */
export function planDigest(plan: Omit<PlanFile, 'digest'> & { digest?: string }): string {
  const { digest: _d, ...content } = plan;
  return `sha256:${sha256(canonicalJson(content))}`;
}

/**
 * Config sections left out of the fingerprint: how to reach the target (`database`: its URL,
 * password and timeouts; `targets`: the fleet's connection settings — the identity check covers
 * where the plan is applied), who runs it (`actor`: the applier is recorded in the audit), `$schema`.
 */
const NOT_FINGERPRINTED = new Set(['$schema', 'actor', 'database', 'targets']);

/** The fingerprint of the effective config: what a remedy writes depends on it. */
export function configFingerprint(config: Config): ConfigFingerprint {
  const kept = Object.fromEntries(Object.entries(config).filter(([k]) => !NOT_FINGERPRINTED.has(k)));
  const keys: Record<string, string> = {};
  const walk = (v: unknown, path: string) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length > 0) {
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) walk(x, path ? `${path}.${k}` : k);
      return;
    }
    keys[path] = sha256(canonicalJson(v ?? null)).slice(0, 16);
  };
  walk(kept, '');
  return { hash: `sha256:${sha256(canonicalJson(kept))}`, keys };
}

/** The keys whose values differ between two fingerprints (added and removed ones too), sorted. */
export function changedKeys(was: ConfigFingerprint, now: ConfigFingerprint): string[] {
  const all = new Set([...Object.keys(was.keys ?? {}), ...Object.keys(now.keys)]);
  return [...all].filter((k) => was.keys?.[k] !== now.keys[k]).sort();
}

/** Writes the plan with mode 0600, atomically: a temporary file in the same directory, synced, then renamed over FILE. */
export function writePlanFile(path: string, plan: PlanFile): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const text = `${JSON.stringify(plan, null, 2)}\n`;
  let fd: number;
  try {
    fd = openSync(tmp, 'wx', 0o600);
  } catch (e) {
    throw usageError(`cannot write the plan to ${path}: ${(e as Error).message}`);
  }
  try {
    writeSync(fd, text);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      /* closed already */
    }
    try {
      unlinkSync(tmp);
    } catch {
      /* renamed or never made */
    }
    throw usageError(`cannot write the plan to ${path}: ${(e as Error).message}`);
  }
}

/** Reads a plan file: refused (exit 2) when it cannot be read, is not a plan, has another format, or was edited since it was written. */
export function readPlanFile(path: string): PlanFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw usageError(`cannot read the plan ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}. Nothing was changed.`);
  }
  let plan: PlanFile;
  try {
    plan = JSON.parse(text) as PlanFile;
  } catch {
    throw usageError(`${path} is not a plan: it is not JSON (edited since it was written?). Nothing was changed.`);
  }
  if (plan === null || typeof plan !== 'object' || typeof plan.format !== 'string')
    throw usageError(`${path} is not an opsctl plan (no "format"). Nothing was changed.`);
  if (plan.format !== PLAN_FORMAT)
    throw usageError(`${path} is a plan of format "${plan.format}": this opsctl reads ${PLAN_FORMAT} only. Make the plan again with this opsctl. Nothing was changed.`);
  if (typeof plan.digest !== 'string' || planDigest(plan) !== plan.digest)
    throw usageError(`${path} was changed since it was written: its digest does not match its content. Make the plan again. Nothing was changed.`);
  const ok =
    typeof plan.createdAt === 'string' &&
    !Number.isNaN(Date.parse(plan.createdAt)) &&
    typeof plan.command === 'string' &&
    Array.isArray(plan.args) &&
    plan.args.every((a) => typeof a === 'string') &&
    (plan.kind === 'database' || plan.kind === 'aws') &&
    Array.isArray(plan.targets) &&
    plan.targets.every(
      (t) =>
        t &&
        typeof t === 'object' &&
        t.identity &&
        t.config &&
        typeof t.config.hash === 'string' &&
        Array.isArray(t.items) &&
        t.items.every((i) => i && typeof i === 'object' && i.item && typeof i.item.id === 'string'),
    );
  if (!ok) throw usageError(`${path} is not a complete ${PLAN_FORMAT} plan. Nothing was changed.`);
  return plan;
}

/** How an identity reads in a sentence: "database app (system identifier 7301…)", "AWS account 1234… in eu-west-1". */
export function describeIdentity(i: PlanIdentity): string {
  return i.kind === 'postgresql' ? `database ${i.database} (system identifier ${i.systemIdentifier})` : `AWS account ${i.account ?? 'unknown'} in ${i.region}`;
}

/** Whether two identities name the same target. */
export function sameIdentity(a: PlanIdentity, b: PlanIdentity): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'postgresql' && b.kind === 'postgresql') return a.systemIdentifier === b.systemIdentifier && a.database === b.database;
  if (a.kind === 'aws' && b.kind === 'aws') return a.region === b.region && a.account === b.account;
  return false;
}
