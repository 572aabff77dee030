/** Exit codes are part of opsctl's contract with cron jobs and CI: documented in the README. */
export const ExitCode = {
  OK: 0,
  /** `check` found something, or some items of an `--apply` failed. */
  FINDINGS: 1,
  /** Bad flags, bad config, config that does not match the database. */
  USAGE: 2,
  /** A dependency (PostgreSQL, AWS) cannot be reached, refused us, or is busy (lock held). */
  DEPENDENCY: 3,
  /** A bug in opsctl: an error nobody expected (not a dependency's fault); report it. */
  INTERNAL: 4,
  /** On a terminal, --apply was not confirmed (answered no, or no answer within --confirm-timeout): nothing was changed. */
  NOT_CONFIRMED: 5,
  /** Interrupted (Ctrl-C, SIGINT): at the prompt nothing was changed; during an apply, the batch in flight finished and the report says what was applied. */
  INTERRUPTED: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** An expected failure: printed as one sentence, never with a stack trace (unless --debug). */
export class OpsctlError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue,
    readonly cause?: unknown,
  ) {
    super(message);
    this.name = 'OpsctlError';
  }
}

export const usageError = (message: string) => new OpsctlError(message, ExitCode.USAGE);
export const dependencyError = (message: string, cause?: unknown) =>
  new OpsctlError(message, ExitCode.DEPENDENCY, cause);

/**
 * The largest count (--max, --limit, a config's max) opsctl takes: PostgreSQL's integer, far
 * above any real cap. A larger one reached the server as an out-of-range bigint (exit 3).
 */
export const MAX_COUNT = 2_147_483_647;

/** Ctrl-C or Ctrl-D at a confirmation prompt: nothing was changed (exit 130, as a shell reports SIGINT). */
export const interruptedAtPrompt = () => new OpsctlError('Interrupted at the prompt; nothing was changed.', ExitCode.INTERRUPTED);
