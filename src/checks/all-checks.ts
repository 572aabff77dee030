import type { Config } from '../config/config.js';
import { OpsctlError } from '../errors.js';
import { CHECKS } from './check-registry.js';
import type { CheckDeps, CheckFindings } from './check/definition.js';

/**
 * `opsctl check`: every registered check, read-only, concurrently. A check that cannot run is
 * "unknown" — never "ok" — and a check whose config is not set up is "skipped".
 */

export type { CheckDeps } from './check/definition.js';
export { CHECK_GROUPS } from './check-registry.js';
export type CheckGroup = string;
export type CheckStatus = 'ok' | 'finding' | 'unknown' | 'skipped';

export interface CheckResult extends CheckFindings {
  check: string;
  group: CheckGroup;
  status: CheckStatus;
  threshold: number;
  error?: string;
  durationMs: number;
}

/** A check's threshold: check.thresholds.<key> when set, else the check's own default. */
export const thresholdOf = (c: Config, t: { key: string; default: number }): number => c.check.thresholds[t.key] ?? t.default;

function describe(e: unknown): string {
  if (e instanceof OpsctlError) return e.message;
  return (e as Error)?.message ?? String(e);
}

/**
 * Runs the selected checks concurrently; never throws for a check's own failure. `restrictTo`
 * narrows further without making a check explicit (a fleet runs a target's database checks
 * and each region's schedule-group check apart; unconfigured ones stay "skipped").
 */
export async function runChecks(deps: CheckDeps, only: CheckGroup[] | null, restrictTo?: CheckGroup[]): Promise<CheckResult[]> {
  const selected = CHECKS.filter((c) => (!only || only.includes(c.group)) && (!restrictTo || restrictTo.includes(c.group)));
  return Promise.all(
    selected.map(async (def): Promise<CheckResult> => {
      const started = performance.now();
      const threshold = thresholdOf(deps.config, def.threshold);
      const base = { check: def.check, group: def.group, threshold };
      const skipped = def.skip?.(deps.config);
      if (skipped && !only?.includes(def.group)) {
        return { ...base, status: 'skipped', count: 0, worst: null, items: [], breakdown: {}, error: skipped, durationMs: 0 };
      }
      try {
        if (skipped) throw new Error(skipped);
        const r = await def.run(deps);
        return { ...base, ...r, status: r.count >= threshold ? 'finding' : 'ok', durationMs: Math.round(performance.now() - started) };
      } catch (e) {
        return { ...base, status: 'unknown', count: 0, worst: null, items: [], breakdown: {}, error: describe(e), durationMs: Math.round(performance.now() - started) };
      }
    }),
  );
}

/** 3 if any check could not run, else 1 if any finding crossed its threshold, else 0. */
export function checkExitCode(results: CheckResult[]): number {
  if (results.some((r) => r.status === 'unknown')) return 3;
  if (results.some((r) => r.status === 'finding')) return 1;
  return 0;
}
