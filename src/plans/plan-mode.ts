import type { CommandContext } from '../cli/context.js';
import type { Database } from '../database/database.js';
import type { SchedulerApi } from '../aws/scheduler-api.js';
import type { GivenPlan, ItemOutcome, PlanCapture, PlannedItem, Remedy } from '../engine/remediation.js';
import { OpsctlError, usageError } from '../errors.js';
import { canonicalJson, configFingerprint, describeIdentity, sameIdentity, type PlanFile, type PlanIdentity, type PlanTarget } from './plan-file.js';

/**
 * How a run takes part in a reviewed plan (docs/plans.md), carried on the Io of the command
 * (and of every target's run under it):
 *   out:   a dry run with --plan-out: each remedy's plan is captured, with its before-images and
 *          its target's identity, for the file written once the command is done;
 *   given: `opsctl apply FILE` re-running the recorded command: the engine's plan is the file's
 *          items for this target, each re-checked against its recorded before-image.
 */
export type PlanMode = PlanOut | PlanGiven;

export interface PlanOut {
  kind: 'out';
  file: string;
  /** Each target's plan, keyed by its name ('' for the top-level config). */
  targets: Map<string, PlanTarget>;
  /** A plan over the --max cap: --apply would refuse it, so no file is written. */
  overMax: boolean;
}

export interface PlanGiven {
  kind: 'given';
  file: string;
  plan: PlanFile;
}

/** The detail of a planned row another transaction held at write time: not compared with its image, not written. */
export const LOCKED_SINCE_PLAN = 'locked by another transaction (a worker?); left alone';

/** The detail of an item whose row (or group) changed between the plan and the apply. */
export const CHANGED_SINCE_PLAN = 'changed since the plan was written';

const isActionable = (p: PlannedItem) => !p.refusal && !p.settled;

/** A database session (a remedy over PostgreSQL), or a Scheduler client (adopt, reconcile). */
const isDatabase = (target: unknown): target is Database => typeof (target as { readOnly?: unknown })?.readOnly === 'function';

/** The identity of the database a session is on: the cluster's system identifier and the database's name. */
export async function databaseIdentity(db: Database): Promise<PlanIdentity> {
  let rows: Array<{ sid: string; db: string }>;
  try {
    rows = await db.query<{ sid: string; db: string }>('SELECT system_identifier::text AS sid, current_database() AS db FROM pg_control_system()');
  } catch (e) {
    if ((e as { code?: string }).code === '42501')
      throw new OpsctlError('a reviewed plan names its database by pg_control_system()\'s system identifier, which this role may not read: GRANT EXECUTE ON FUNCTION pg_control_system() TO it (docs/privileges.md).', 3, e);
    throw e;
  }
  const r = rows[0] as { sid: string; db: string };
  return { kind: 'postgresql', systemIdentifier: r.sid, database: r.db };
}

/** The account and region a Scheduler client works on: the account from a group ARN (the plan's, else the default group's). */
export async function awsIdentity(api: SchedulerApi, arns: Array<string | null | undefined> = []): Promise<PlanIdentity> {
  const { accountOf, getGroup, listAllGroups } = await import('../aws/scheduler-gateway.js');
  let account = arns.map((a) => accountOf(a ?? undefined)).find((a) => a !== null) ?? null;
  if (!account) account = accountOf((await getGroup(api, 'default'))?.Arn);
  if (!account) account = (await listAllGroups(api)).map((g) => accountOf(g.Arn)).find((a) => a !== null) ?? null;
  return { kind: 'aws', account, region: api.region };
}

/** The identity of the target a remedy runs on (its session or client). */
export async function targetIdentity(target: unknown, items: PlannedItem[] = []): Promise<PlanIdentity> {
  if (isDatabase(target)) return databaseIdentity(target);
  return awsIdentity(target as SchedulerApi, items.map((p) => (p as { arn?: string | null }).arn));
}

/** Every string of a value with the secrets masked (nothing opsctl knows as a secret goes into a plan file). */
function masked<T>(value: T, mask: (s: string) => string): T {
  if (typeof value === 'string') return mask(value) as T;
  if (Array.isArray(value)) return value.map((v) => masked(v, mask)) as T;
  if (value !== null && typeof value === 'object' && !(value instanceof Date)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, masked(v, mask)])) as T;
  return value;
}

/** The capture of a dry run with --plan-out: the plan's items, their before-images and the target's identity, read in the plan's READ ONLY unit. */
export function planCapture(ctx: CommandContext, out: PlanOut): PlanCapture<PlannedItem, unknown> {
  return async (target, remedy, items, limit?: number) => {
    const actionable = items.filter(isActionable);
    if (limit !== undefined && limit > 0 && actionable.length >= limit) out.overMax = true;
    let images = new Map<string, unknown>();
    if (isDatabase(target)) {
      // A remedy over several tables (revert) declares no one image: its own guard is the check.
      if (remedy.image) {
        const { readImages } = await import('../engine/images.js');
        images = await readImages(target, remedy.image, actionable.map((p) => p.id));
      }
    } else {
      images = await groupImages(target as SchedulerApi, actionable);
    }
    const identity = await targetIdentity(target, items);
    const { maskSecrets } = await import('../output/masking.js');
    const secrets = ctx.secrets();
    const name = ctx.boundTarget()?.name ?? '';
    if (out.targets.has(name)) throw new Error(`two plans were made for ${name || 'one target'} in one run`);
    const entry: PlanTarget = {
      name: ctx.boundTarget()?.name ?? null,
      identity,
      remedy: remedy.action,
      config: configFingerprint(await ctx.config()),
      items: items.map((p) => {
        const token = remedy.planState?.get(p.id);
        return {
          item: masked({ ...p }, (s) => maskSecrets(s, secrets)) as PlanTarget['items'][number]['item'],
          image: masked(images.get(p.id) ?? null, (s) => maskSecrets(s, secrets)),
          ...(token !== undefined ? { token } : {}),
        };
      }),
    };
    out.targets.set(name, entry);
  };
}

/** The image of a schedule group: its tags (`{tags: {…}}`); absent groups (to create) have none. */
async function groupImages(api: SchedulerApi, items: PlannedItem[]): Promise<Map<string, unknown>> {
  const { readGroupNow } = await import('../aws/scheduler-gateway.js');
  const { mapWithConcurrency } = await import('../engine/concurrency.js');
  const read = await mapWithConcurrency(items, 8, async (p) => {
    const name = (p as { name?: string }).name ?? p.id;
    const now = await readGroupNow(api, name);
    return [p.id, now ? { tags: now.tags } : null] as const;
  });
  return new Map(read.filter(([, v]) => v !== null));
}

/** This run's part of a plan file (its target's items); null when the plan has nothing for it (a region of a fleet plan's target it did not plan). */
export function planTargetFor(ctx: CommandContext, given: PlanGiven): PlanTarget | null {
  const name = ctx.boundTarget()?.name ?? null;
  return given.plan.targets.find((x) => (x.name ?? null) === (name ?? null)) ?? null;
}

/** Refuses (exit 2) a target whose identity is not the plan's: "this plan was made for …, not …". */
export function assertIdentity(file: string, planned: PlanIdentity, actual: PlanIdentity, target: string | null): void {
  if (sameIdentity(planned, actual)) return;
  throw usageError(
    `${target ? `${target}: ` : ''}this plan was made for ${describeIdentity(planned)}, not ${describeIdentity(actual)} (${file}). Nothing was changed.`,
  );
}

/** The engine's view of a plan file for this run: its items, the identity check before any write, and the write-time before-image check. */
export function givenPlanFor(ctx: CommandContext, given: PlanGiven): GivenPlan<PlannedItem, unknown> {
  const t = planTargetFor(ctx, given);
  // Nothing planned here: nothing to apply (a fleet plan's targets are checked before any run).
  if (!t) return { items: [], recheck: async () => [] };
  const recorded = new Map(t.items.map((i) => [i.item.id, i.image]));
  const changed = (remedy: Remedy<PlannedItem, unknown>, id: string): ItemOutcome => ({
    id,
    outcome: 'lost',
    // The remedy's own word for "the row changed since the plan" where it has that meaning.
    ...(remedy.labels.lost === 'race-lost' ? {} : { label: 'race-lost' }),
    detail: CHANGED_SINCE_PLAN,
  });
  return {
    items: t.items.map((i) => i.item as PlannedItem),
    prepare(remedy) {
      remedy.planState?.restore(
        t.items.map((i) => i.item as PlannedItem),
        new Map(t.items.flatMap((i) => (typeof i.token === 'string' ? [[i.item.id, i.token] as [string, string]] : []))),
      );
    },
    async verify(target) {
      // The remedy is not known here: the plan's kind says what the target is.
      const actual = t.identity.kind === 'postgresql' ? await databaseIdentity(target as Database) : await awsIdentity(target as SchedulerApi);
      assertIdentity(given.file, t.identity, actual, t.name);
    },
    async recheck(tx, remedy, batch) {
      const withImage = batch.filter((p) => recorded.get(p.id) != null);
      if (!withImage.length) return [];
      let now: Map<string, unknown>;
      const held: ItemOutcome[] = [];
      if (isDatabase(tx)) {
        if (!remedy.image) return [];
        const { readImages } = await import('../engine/images.js');
        // Under the row lock, in the batch's transaction: what the write will replace.
        now = await readImages(tx, remedy.image, withImage.map((p) => p.id), { lock: true });
        // Left out: deleted (the remedy reports it gone), or held by another transaction — then
        // it cannot be compared with its image, so it is not written: skipped, as a locked row is.
        const missing = withImage.filter((p) => !now.has(p.id));
        if (missing.length) {
          const exists = await readImages(tx, remedy.image, missing.map((p) => p.id));
          for (const p of missing) if (exists.has(p.id)) held.push({ id: p.id, outcome: 'skipped', detail: LOCKED_SINCE_PLAN });
        }
      } else {
        now = await groupImages(tx as SchedulerApi, withImage);
      }
      return [...held, ...withImage.filter((p) => now.has(p.id) && canonicalJson(now.get(p.id)) !== canonicalJson(recorded.get(p.id))).map((p) => changed(remedy, p.id))];
    },
  };
}
