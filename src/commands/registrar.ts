import type { Command } from 'commander';
import type { CommandContext } from '../cli/context.js';

/**
 * What a command module gets from the program that mounts it. Commands depend on this
 * module, never on cli.ts, so the program and its commands do not import each other.
 */

/** A command action: gets the context, returns an exit code. */
export type Action = (ctx: CommandContext, ...args: any[]) => Promise<number>;

export interface Registrar {
  /** Wraps an action with context creation, error translation and the exit code. */
  wrap(action: Action): (...args: any[]) => Promise<void>;
}

/** A command module's entry point: adds its commands to the program. */
export type Register = (program: Command, r: Registrar) => void;
