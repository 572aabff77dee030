import type { Command } from 'commander';
import type { CommandContext } from '../cli/context.js';

/**
 * What a command module gets from the program that mounts it. Commands depend on this
 * module, never on cli.ts, so the program and its commands do not import each other.
 */

/** A command action: gets the context, returns an exit code. */
export type Action = (ctx: CommandContext, ...args: any[]) => Promise<number>;

/** How a command's results merge over targets (src/targets/on-targets.ts); default: rows. */
export interface OverTargets {
  merge?: 'rows' | 'plan-then-apply' | 'check-reports';
}

export interface Registrar {
  /**
   * Wraps an action with context creation, error translation and the exit code; with
   * --target/--all-targets/--shard the action runs on each selected target (onTargets).
   */
  wrap(action: Action, over?: OverTargets): (...args: any[]) => Promise<void>;
}

/** A command module's entry point: adds its commands to the program. */
export type Register = (program: Command, r: Registrar) => void;
