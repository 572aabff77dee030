import type { CommandContext } from '../cli/context.js';
import type { ConfigFingerprint, PlanFile } from './plan-file.js';
import { usageError } from '../errors.js';

/** A fleet plan's targets, each checked (config, identity) before anything is written on any. */
export async function checkFleetPlan(
  _ctx: CommandContext,
  _plan: PlanFile,
  file: string,
  _checkConfig: (name: string, planned: ConfigFingerprint, now: ConfigFingerprint) => void,
): Promise<void> {
  throw usageError(`the plan ${file} is a fleet plan: not supported yet. Nothing was changed.`);
}
