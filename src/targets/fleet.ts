import type { Command } from 'commander';
import type { GlobalOptions } from '../cli/context.js';
import { OpsctlError, usageError } from '../errors.js';
import { createLimiter } from '../engine/concurrency.js';
import { formatDuration, parseDuration } from '../config/durations.js';
import { parseShard, type Shard } from './shards.js';
import type { ResolvedTarget } from './targets.js';

/**
 * Fan-out over targets: at most `concurrency` targets at once, each with its own deadline.
 * A target that fails or times out is reported as such and never stops the others.
 */

export interface TargetSelection {
  /** --target, repeatable; each a name or a glob (* and ?). */
  patterns?: string[];
  /** --all-targets */
  all?: boolean;
  /** --shard I/N, already parsed. */
  shard?: Shard | null;
}

export const isFleetSelection = (s: TargetSelection): boolean => Boolean(s.all || (s.patterns && s.patterns.length));

export const DEFAULT_CONCURRENCY = 4;
export const DEFAULT_TARGET_TIMEOUT = '5m';

/** Commands about opsctl itself or this machine: they refuse fleet flags (exit 2). */
export const LOCAL_COMMANDS = ['demo', 'emulator', 'config', 'completion', 'help'];

/** What a command works on in a fleet run: the target whole (check: its database and each region), the Scheduler (each region of a target) or the database. */
export const targetKind = (path: string): 'target' | 'aws' | 'database' =>
  path === 'check' ? 'target' : path.startsWith('schedule-groups') || path === 'adopt schedule-group' ? 'aws' : 'database';


/** What a command works on in a fleet run: a target's database, or one region of a target's AWS account. */
export interface FleetUnit {
  /** "billing-eu", or "billing-eu/eu-west-1" for a region. */
  name: string;
  target: ResolvedTarget;
  region: string | null;
}

export interface FleetOptions {
  concurrency: number;
  timeoutMs: number;
}

export type TargetOutcome<R> =
  | { target: string; ok: true; value: R; durationMs: number }
  | { target: string; ok: false; error: string; exitCode: number; timedOut: boolean; durationMs: number };

export function fleetSelection(g: GlobalOptions): TargetSelection {
  return { patterns: g.target, all: Boolean(g.allTargets), shard: g.shard === undefined ? null : parseShard(g.shard) };
}

export function fleetOptions(g: GlobalOptions): FleetOptions {
  let concurrency = DEFAULT_CONCURRENCY;
  if (g.concurrency !== undefined) {
    if (!/^\d+$/.test(g.concurrency.trim()) || Number(g.concurrency) < 1 || Number(g.concurrency) > 256)
      throw usageError(`--concurrency must be a whole number from 1 to 256, got "${g.concurrency}".`);
    concurrency = Number(g.concurrency);
  }
  const timeoutMs = parseDuration(g.targetTimeout ?? DEFAULT_TARGET_TIMEOUT, g.targetTimeout === undefined ? 'the default target timeout' : '--target-timeout');
  return { concurrency, timeoutMs };
}

export const commandPath = (c: Command): string => {
  const words: string[] = [];
  for (let x: Command | null = c; x && x.parent; x = x.parent) words.unshift(x.name());
  return words.join(' ');
};

/** Fleet flags on a command that would ignore them are a usage error, not a silent single-target run. */
export function assertFleetCapable(command: Command, g: GlobalOptions): void {
  const fleetFlags = isFleetSelection({ patterns: g.target, all: g.allTargets }) || g.shard !== undefined;
  const tuning = g.concurrency !== undefined || g.targetTimeout !== undefined;
  if (!fleetFlags && !tuning) return;
  const path = commandPath(command);
  if (LOCAL_COMMANDS.includes(path.split(' ')[0] as string))
    throw usageError(`opsctl ${path} does not run on targets: --target, --all-targets, --shard, --concurrency and --target-timeout work with the commands that read or change a database or the Scheduler.`);
  if (tuning && !fleetFlags) throw usageError('--concurrency and --target-timeout need --target or --all-targets.');
}

const describeError = (e: unknown): string => (e instanceof OpsctlError ? e.message : ((e as Error)?.message ?? String(e)));

/**
 * Runs `work` on every target, `concurrency` at a time, results in input order. On timeout
 * the target's signal is aborted (so its work can close its connections) and the target is
 * reported as failed; its late result, if any, is ignored.
 */
export async function runFleet<T extends { name: string }, R>(
  targets: T[],
  opts: FleetOptions,
  work: (target: T, signal: AbortSignal) => Promise<R>,
  onDone?: (outcome: TargetOutcome<R>, finished: number, total: number) => void,
): Promise<TargetOutcome<R>[]> {
  const limit = createLimiter(Math.max(1, opts.concurrency));
  let finished = 0;
  return Promise.all(
    targets.map((t) =>
      limit(async (): Promise<TargetOutcome<R>> => {
        const started = performance.now();
        const ctl = new AbortController();
        let timer: NodeJS.Timeout | undefined;
        const deadline = new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            ctl.abort();
            reject(new FleetTimeout(`target ${t.name} did not finish within the target timeout of ${formatDuration(opts.timeoutMs)} (--target-timeout).`));
          }, opts.timeoutMs);
        });
        let outcome: TargetOutcome<R>;
        try {
          const value = await Promise.race([work(t, ctl.signal), deadline]);
          outcome = { target: t.name, ok: true, value, durationMs: Math.round(performance.now() - started) };
        } catch (e) {
          outcome = {
            target: t.name,
            ok: false,
            error: describeError(e),
            exitCode: e instanceof OpsctlError ? e.exitCode : 3,
            timedOut: e instanceof FleetTimeout,
            durationMs: Math.round(performance.now() - started),
          };
        } finally {
          clearTimeout(timer);
        }
        finished += 1;
        onDone?.(outcome, finished, targets.length);
        return outcome;
      }),
    ),
  );
}

class FleetTimeout extends OpsctlError {
  constructor(message: string) {
    super(message, 3);
  }
}

/**
 * Resources a target's work opened, closed when its deadline passes: a timed-out target must
 * not keep a connection (or a transaction) open while the others go on.
 */
export class TargetResources {
  private readonly closers: Array<() => Promise<void> | void> = [];
  constructor(readonly signal: AbortSignal) {
    signal.addEventListener('abort', () => void this.closeAll(), { once: true });
  }
  /** Registers a resource's close; if the deadline already passed, closes it and gives up. */
  track<X>(resource: X, close: (r: X) => Promise<void> | void): X {
    if (this.signal.aborted) {
      void Promise.resolve().then(() => close(resource)).catch(() => {});
      throw new OpsctlError('the target timed out', 3);
    }
    this.closers.push(() => close(resource));
    return resource;
  }
  /** Closes what is still open (a target's run is over). */
  close(): Promise<void> {
    return this.closeAll();
  }
  private async closeAll(): Promise<void> {
    const all = this.closers.splice(0);
    await Promise.all(all.map((c) => Promise.resolve().then(c).catch(() => {})));
  }
}
