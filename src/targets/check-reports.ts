import type { CommandContext } from '../cli/context.js';
import type { Column, OutputFormat, Tone } from '../output/output.js';
import type { CheckResult } from '../checks/all-checks.js';
import type { ResolvedTarget } from './targets.js';
import type { FleetUnit, TargetOutcome } from './fleet.js';
import type { Captured } from './target-context.js';
import { maskSecrets } from '../output/masking.js';

/**
 * `check` over targets: each target's own check report (the check command's run function on
 * the target: its database checks once, its schedule-group check once per region) merged into
 * one report. A target that cannot be reached or times out is "unknown" for its checks, never
 * clean, and the other targets go on.
 */

export interface FleetCheckResult extends CheckResult {
  target: string;
  /** The AWS region of a schedule-group check; null for the database checks. */
  region: string | null;
}

export type TargetStatus = 'clean' | 'findings' | 'unknown';

export const CHECK_FORMATS: OutputFormat[] = ['table', 'wide', 'json', 'ndjson', 'markdown', 'prometheus'];

/** The check groups of a target's database, and of each region of its account. */
export const DATABASE_CHECK_GROUPS = ['executions', 'propagations', 'jobs', 'workers'];
export const AWS_CHECK_GROUPS = ['schedule-groups'];

/** The rows of these groups' checks for a target (or one region of it), all with one status: for parts skipped or a target that failed. */
export async function checkRowsFor(t: ResolvedTarget, status: 'skipped' | 'unknown', error: string, groups: string[], region: string | null, only: string[] | null): Promise<FleetCheckResult[]> {
  const { thresholdOf } = await import('../checks/all-checks.js');
  const { CHECKS } = await import('../checks/check-registry.js');
  return CHECKS.filter((d) => groups.includes(d.group) && (!only || only.includes(d.group))).map((d) => ({
    target: t.name,
    region,
    check: d.check,
    group: d.group,
    status,
    count: 0,
    threshold: thresholdOf(t.config, d.threshold),
    worst: null,
    items: [],
    breakdown: {},
    error,
    durationMs: 0,
  }));
}

/** The rows a target that failed as a whole would have had: every check it runs, unknown. */
async function unknownRows(t: ResolvedTarget, error: string, only: string[] | null): Promise<FleetCheckResult[]> {
  const dbGroups = t.config.workers.enabled ? DATABASE_CHECK_GROUPS : DATABASE_CHECK_GROUPS.filter((g) => g !== 'workers');
  return [
    ...(t.entry.database ? await checkRowsFor(t, 'unknown', error, dbGroups, null, only) : []),
    ...(await Promise.all((t.entry.aws?.regions ?? []).map((r) => checkRowsFor(t, 'unknown', error, AWS_CHECK_GROUPS, r, only)))).flat(),
  ];
}

export function targetStatuses(results: FleetCheckResult[], targets: string[]): Record<string, TargetStatus> {
  const out: Record<string, TargetStatus> = {};
  for (const t of targets) {
    const mine = results.filter((r) => r.target === t);
    out[t] = mine.some((r) => r.status === 'unknown') ? 'unknown' : mine.some((r) => r.status === 'finding') ? 'findings' : 'clean';
  }
  return out;
}

const statusTone = (s: string): Tone => (s === 'ok' || s === 'clean' ? 'good' : s === 'finding' || s === 'findings' ? 'bad' : s === 'unknown' ? 'warn' : 'dim');

/** Merges the targets' check reports and renders them as one. */
export async function emitCheckReports(ctx: CommandContext, format: OutputFormat, units: FleetUnit[], outcomes: TargetOutcome<Captured>[]): Promise<number> {
  const { checkExitCode } = await import('../checks/all-checks.js');
  const byName = new Map(units.map((u) => [u.name, u.target]));
  // check's own --only (the globals carry the command's options too): the checks a failed target would have run.
  const { splitList } = await import('../commands/shared-flags.js');
  const only = splitList((ctx.globals as { only?: string }).only) ?? null;
  const results: FleetCheckResult[] = [];
  for (const o of outcomes) {
    if (o.ok) results.push(...(o.value.items as unknown as FleetCheckResult[]));
    else results.push(...(await unknownRows(byName.get(o.target) as ResolvedTarget, maskSecrets(o.error, ctx.secrets()), only)));
  }
  const names = outcomes.map((o) => o.target);
  const byTarget = targetStatuses(results, names);
  // A target that failed as a whole with no checks to show still makes the run unknown.
  const failedEmpty = outcomes.some((o) => !o.ok && !results.some((r) => r.target === o.target));
  const exitCode = failedEmpty ? 3 : checkExitCode(results);
  const shard = ctx.globals.shard;
  if (format === 'markdown' || format === 'prometheus') {
    const { renderMarkdown, renderPrometheus } = await import('../output/check-report.js');
    ctx.io.stdout.write(format === 'markdown' ? renderMarkdown(results, exitCode, { targets: byTarget }) : renderPrometheus(results, ctx.deps.now(), { targets: byTarget }));
    return exitCode;
  }
  const count = (s: TargetStatus) => Object.values(byTarget).filter((x) => x === s).length;
  const summary = () => ({
    status: exitCode === 0 ? 'clean' : exitCode === 1 ? 'findings' : 'unknown',
    targets: names.length,
    ...(shard ? { shard: shard.replace(/\s/g, '') } : {}),
    targetsClean: count('clean'),
    targetsWithFindings: count('findings'),
    targetsUnknown: count('unknown'),
    findings: results.filter((r) => r.status === 'finding').length,
    unknown: results.filter((r) => r.status === 'unknown').length,
    byTarget,
  });
  const { cellText, FREE_TEXT_KEY, isTable } = await import('../output/output.js');
  const columns: Column<FleetCheckResult>[] = [
    { header: 'target', value: (r) => r.target },
    { header: 'region', value: (r) => r.region ?? '' },
    { header: 'check', value: (r) => r.check },
    { header: 'status', value: (r) => r.status, tone: (r) => statusTone(r.status) },
    { header: 'count', value: (r) => (r.status === 'unknown' || r.status === 'skipped' ? '-' : r.count) },
    { header: 'threshold', value: (r) => r.threshold, tone: () => 'dim' },
    { header: 'worst example', value: (r) => (r.status === 'unknown' || r.status === 'skipped' ? r.error : r.worst) ?? '', shrink: true },
  ];
  const durations = new Map(outcomes.map((o) => [o.target, o.durationMs]));
  // A table of 50 targets is read by a person: the skipped rows (unconfigured checks) only in json.
  const skipped = results.filter((r) => r.status === 'skipped').length;
  return ctx.emit({
    command: 'check',
    mode: 'read',
    items: isTable(format) ? results.filter((r) => r.status !== 'skipped') : results,
    notes: () => (isTable(format) && skipped ? [`${skipped} skipped check(s) not shown (not configured for their target; -o json lists them).`] : []),
    columns,
    headline: `opsctl check (read-only) on ${names.length} target(s)${shard ? `, shard ${shard}` : ''}`,
    emptyMessage: 'No target selected (the shard is empty).',
    sections: () => [
      {
        title: 'Per target',
        columns: [
          { header: 'target', value: (t: string) => t },
          { header: 'status', value: (t: string) => byTarget[t], tone: (t: string) => statusTone(byTarget[t]) },
          { header: 'findings', value: (t: string) => results.filter((r) => r.target === t && r.status === 'finding').length },
          { header: 'unknown', value: (t: string) => results.filter((r) => r.target === t && r.status === 'unknown').length },
          { header: 'took', value: (t: string) => `${durations.get(t) ?? 0} ms`, tone: () => 'dim' },
        ],
        rows: names,
      },
      ...results
        .filter((r) => r.items.length)
        .map((r) => {
          const keys = Object.keys(r.items[0]).filter((k) => k !== 'payload').slice(0, 6);
          return {
            title: `${r.target}${r.region ? ` (${r.region})` : ''} ${r.check}: ${r.count}${r.count > r.items.length ? ` (first ${r.items.length} shown)` : ''}`,
            columns: keys.map((k) => ({ header: k, value: (row: Record<string, unknown>) => cellText(row[k]), shrink: FREE_TEXT_KEY.test(k) })),
            rows: r.items,
          };
        }),
    ],
    summary,
    exitCode: () => exitCode,
  });
}
