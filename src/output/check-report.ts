import type { CheckResult } from '../checks/all-checks.js';
import { cellText, truncate } from './output.js';
import { escapeControl } from './terminal-text.js';

/** Renderers only `check` needs: markdown for CI job summaries, Prometheus text exposition. */

/** A table cell: line breaks as spaces, other control characters in a visible form (a CI log is a terminal too), `|` escaped. */
const mdEscape = (s: string) => escapeControl(s.replace(/\r?\n/g, ' ')).replace(/\|/g, '\\|');
const STATUS_ICON: Record<string, string> = { ok: '✅ ok', finding: '❌ finding', unknown: '⚠️ unknown', skipped: '⏭️ skipped' };

/** A run over targets (src/targets/check-reports.ts) tags each result with its target, and schedule-group checks with a region. */
type Tagged = CheckResult & { target?: string; region?: string | null };
export interface FleetReport {
  targets: Record<string, 'clean' | 'findings' | 'unknown'>;
}

export function renderMarkdown(results: Tagged[], exitCode: number, fleet?: FleetReport): string {
  const findings = results.filter((r) => r.status === 'finding').length;
  const unknown = results.filter((r) => r.status === 'unknown').length;
  const title = unknown ? `${unknown} check(s) could not run` : findings ? `${findings} check(s) with findings` : 'all clean';
  const where = (r: Tagged) => (fleet ? `${mdEscape(r.target ?? '')} | ${mdEscape(r.region ?? '')} | ` : '');
  const out: string[] = [
    `## opsctl check: ${title}${fleet ? ` (${Object.keys(fleet.targets).length} target(s))` : ''}`,
    '',
    `| ${fleet ? 'target | region | ' : ''}check | status | count | threshold | worst example |`,
    `|${fleet ? '---|---|' : ''}---|---|---:|---:|---|`,
  ];
  // A fleet's summary is read in a CI job summary: its skipped checks (not configured for their target) only in json.
  const shown = fleet ? results.filter((r) => r.status !== 'skipped') : results;
  for (const r of shown) {
    const worst = r.status === 'unknown' || r.status === 'skipped' ? (r.error ?? '') : (r.worst ?? '');
    out.push(`| ${where(r)}${r.check} | ${STATUS_ICON[r.status]} | ${r.count} | ${r.threshold} | ${mdEscape(truncate(worst, 120))} |`);
  }
  // The table cuts the worst example to 120 characters: the reason a check could not run is printed whole below it.
  const unknownReasons = shown.filter((r) => r.status === 'unknown');
  if (unknownReasons.length) {
    out.push('');
    for (const r of unknownReasons) out.push(`- ${fleet ? `${mdEscape(r.target ?? '')}${r.region ? ` (${mdEscape(r.region)})` : ''}: ` : ''}**${r.check}** could not run: ${mdEscape(r.error ?? 'no reason given')}`);
  }
  if (fleet) {
    const icon: Record<string, string> = { clean: '✅ clean', findings: '❌ findings', unknown: '⚠️ unknown' };
    out.push('', '### Per target', '', '| target | status | findings | unknown |', '|---|---|---:|---:|');
    for (const [t, status] of Object.entries(fleet.targets)) {
      const mine = results.filter((r) => r.target === t);
      out.push(`| ${mdEscape(t)} | ${icon[status]} | ${mine.filter((r) => r.status === 'finding').length} | ${mine.filter((r) => r.status === 'unknown').length} |`);
    }
  }
  for (const r of results) {
    if (r.items.length === 0) continue;
    const cols = Object.keys(r.items[0]).filter((k) => !['payload'].includes(k)).slice(0, 6);
    const scope = fleet ? `${mdEscape(r.target ?? '')}${r.region ? ` (${mdEscape(r.region)})` : ''}: ` : '';
    out.push('', `### ${scope}${r.check} (${r.count}${r.count > r.items.length ? `, first ${r.items.length} shown` : ''})`, '');
    out.push(`| ${cols.join(' | ')} |`, `|${cols.map(() => '---').join('|')}|`);
    for (const item of r.items) out.push(`| ${cols.map((c) => mdEscape(truncate(cellText(item[c]), 80))).join(' | ')} |`);
  }
  out.push('', `Exit code ${exitCode}.`, '');
  return out.join('\n');
}

/**
 * Label values escaped per the exposition format (backslash, double quote, newline); any other
 * control character as the text `\xNN` (its backslash escaped too), never raw: a scraped value is
 * shown on terminals and dashboards.
 */
const esc = (v: string) => v.replace(/[\\"\x00-\x1f\x7f-\x9f]/g, (c) => (c === '"' ? '\\"' : c === '\n' ? '\\n' : c === '\\' ? '\\\\' : escapeControl(c).replace('\\', '\\\\')));

export function renderPrometheus(results: Tagged[], nowMs: number, fleet?: FleetReport): string {
  const lines: string[] = [];
  const family = (name: string, help: string, samples: Array<[Record<string, string>, number]>) => {
    if (!samples.length) return;
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const [labels, value] of samples) {
      const l = Object.entries(labels).map(([k, v]) => `${k}="${esc(v)}"`).join(',');
      lines.push(`${name}${l ? `{${l}}` : ''} ${Number.isFinite(value) ? value : 0}`);
    }
  };
  const ran = results.filter((r) => r.status !== 'skipped');
  // Fleet runs: a `target` label on every sample, and `region` on the schedule-group ones.
  const id = (r: Tagged): Record<string, string> => ({ ...(r.target !== undefined ? { target: r.target } : {}), ...(r.region ? { region: r.region } : {}), check: r.check });
  family('opsctl_check_up', '1 if the check ran, 0 if it could not run.', ran.map((r) => [id(r), r.status === 'unknown' ? 0 : 1]));
  family('opsctl_check_failing', '1 if the check has findings at or above its threshold.', ran.map((r) => [id(r), r.status === 'finding' ? 1 : 0]));
  family('opsctl_check_findings', 'Number of findings of the check (0 when it could not run).', ran.map((r) => [id(r), r.count]));
  family('opsctl_check_threshold', 'Findings at or above this count fail the check.', ran.map((r) => [id(r), r.threshold]));
  family('opsctl_check_duration_seconds', 'Wall time of the check.', ran.map((r) => [id(r), r.durationMs / 1000]));
  if (fleet)
    family('opsctl_target_up', '1 if every check of the target ran, 0 if any could not run (unreachable, timed out).', Object.entries(fleet.targets).map(([t, s]) => [{ target: t }, s === 'unknown' ? 0 : 1]));
  const breakdown: Array<[Record<string, string>, number]> = [];
  for (const r of ran) for (const [k, v] of Object.entries(r.breakdown)) breakdown.push([{ ...id(r), key: k }, v]);
  family('opsctl_check_breakdown', 'Per-check detail: per class, problem or kind.', breakdown);
  family('opsctl_check_last_run_timestamp_seconds', 'When this report was written.', [[{}, Math.floor(nowMs / 1000)]]);
  return `${lines.join('\n')}\n`;
}
