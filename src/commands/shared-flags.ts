import { Option, type Command } from 'commander';
import { MAX_COUNT, usageError } from '../errors.js';

/** --limit / --max style non-negative integers; 0 means "no limit". */
export function parseCount(value: string, flag: string): number {
  if (!/^\d+$/.test(value.trim())) throw usageError(`${flag} must be a whole number (0 means no limit), got "${value}".`);
  const n = Number(value);
  if (n > MAX_COUNT) throw usageError(`${flag} must be at most ${MAX_COUNT} (0 means no limit), got "${value}".`);
  return n;
}

export function parsePositive(value: string, flag: string): number {
  const n = parseCount(value, flag);
  if (n <= 0) throw usageError(`${flag} must be at least 1, got "${value}".`);
  return n;
}

export function splitList(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw usageError('a list flag was given an empty value.');
  return items;
}

/** The flags every remediation shares, so reap, retry, purge, adopt and reconcile read alike. */
export function addApplyFlags(cmd: Command, defaults: { max: string; batch?: boolean; batchHelp?: string }): Command {
  cmd
    .option('--apply', 'make the changes (without it: dry run, print the plan, change nothing)')
    .option('--max <n>', `refuse to change more than this many items (0 = no cap; default from config, ${defaults.max})`)
    .option('--reason <text>', 'why: recorded in the change and the audit row')
    .option('--wait', 'wait for another opsctl working on the same target instead of exiting 3');
  if (defaults.batch !== false) cmd.addOption(new Option('--batch-size <n>', defaults.batchHelp ?? 'rows per short transaction (default from config, 500)'));
  return cmd;
}

/** The flags addApplyFlags adds, as commander hands them over. */
export interface ApplyFlags {
  apply?: boolean;
  max?: string;
  /** Only the remedies that plan every target before one question register --max-total (src/targets/plan-then-apply.ts). */
  maxTotal?: string;
  batchSize?: string;
  reason?: string;
  wait?: boolean;
}

/** The same, checked and parsed; an unset max or batch size takes the config's default. */
export interface ApplyOptions {
  apply: boolean;
  max?: number;
  /** With --target/--all-targets: the cap over every target; undefined: none. */
  maxTotal?: number;
  batchSize?: number;
  reason?: string;
  wait: boolean;
}

export function applyOptions(f: ApplyFlags): ApplyOptions {
  return {
    apply: Boolean(f.apply),
    max: f.max === undefined ? undefined : parseCount(f.max, '--max'),
    maxTotal: f.maxTotal === undefined ? undefined : parseCount(f.maxTotal, '--max-total'),
    batchSize: f.batchSize === undefined ? undefined : parsePositive(f.batchSize, '--batch-size'),
    reason: f.reason,
    wait: Boolean(f.wait),
  };
}

/**
 * --max-total caps a run over several targets, and onTargets takes it before any target runs
 * (each target's own run never sees it): here, it was given to a run on one database.
 */
export function assertMaxTotal(o: { maxTotal?: unknown }): void {
  if (o.maxTotal !== undefined) throw usageError('--max-total caps a run over several targets: use it with --target or --all-targets (one target: --max).');
}
