import type { Readable, Writable } from 'node:stream';
import type { Config } from '../config/config.js';
import type { Database } from '../database/database.js';
import type { CommandResult, OutputFormat } from '../output/output.js';
import type { AwsFlags, SchedulerAccess, SchedulerApi } from '../aws/scheduler-api.js';
import type { FleetUnit } from '../targets/fleet.js';
import { ExitCode, OpsctlError } from '../errors.js';
import { environmentSecrets, maskSecrets, passwordsIn } from '../output/masking.js';
import { escapeControl } from '../output/terminal-text.js';

/** The process surroundings a command needs; tests pass their own. */
export interface Io {
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable & { isTTY?: boolean };
  stdin: Readable & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  cwd: string;
  /**
   * Where commander writes help when stdout is known not to be a terminal: synchronously, no
   * wrapping, no colour, without building the stdout stream (start-up). Absent: io.stdout.
   */
  helpOut?: { write(text: string): void };
  /** A reviewed plan this run writes (--plan-out) or applies (`opsctl apply FILE`): src/plans/plan-mode.ts. */
  plan?: import('../plans/plan-mode.js').PlanMode;
}

/** How opsctl was invoked: what a run record keeps of it. */
export interface Invocation {
  argv: string[];
  /** "reap", "propagations retry" */
  command: string;
  reason: string | null;
}

/** Flags every command understands (program-level options). */
export interface GlobalOptions {
  config?: string;
  databaseUrl?: string;
  output: string;
  debug?: boolean;
  yes?: boolean;
  color?: boolean;
  region?: string;
  profile?: string;
  endpointUrl?: string;
  /** Fleet runs (src/targets.ts, src/fleet.ts): --target (repeatable), --all-targets, --shard, --concurrency, --target-timeout. */
  target?: string[];
  allTargets?: boolean;
  shard?: string;
  concurrency?: string;
  targetTimeout?: string;
  /** How long a confirmation prompt waits for an answer before it cancels (default DEFAULT_CONFIRM_TIMEOUT). */
  confirmTimeout?: string;
}

/** An unanswered prompt cancels after this: a forgotten terminal must not leave a run pending. */
export const DEFAULT_CONFIRM_TIMEOUT = '5m';

/**
 * The outside world a run function reaches, passed in: how to open a database session and a
 * Scheduler client, the clock, and (for the demo) how to run opsctl itself. The streams are
 * in Io. Each opener loads its driver only when called (start-up never imports pg or the SDK).
 */
export interface Deps {
  /** `signal` aborted: a connection still being made is given up (a fleet target's deadline). */
  openDatabase(settings: Config['database'], env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<Database>;
  openScheduler(access: SchedulerAccess): Promise<SchedulerApi>;
  now(): number;
  /** Runs an opsctl command line with the given io (the demo replays commands); set by the program. */
  runCli?: (argv: string[], io: Io) => Promise<number>;
}

/** The real dependencies: PostgreSQL through pg, Scheduler through the AWS SDK, the system clock. */
export function createDeps(overrides: Partial<Deps> = {}): Deps {
  return {
    openDatabase: async (settings, env, signal) => (await import('../database/database.js')).Database.connect({ settings, env, signal }),
    openScheduler: async (access) => (await import('../aws/scheduler-api.js')).createSchedulerApi(access),
    now: () => Date.now(),
    ...overrides,
  };
}

/**
 * What a command's run function receives: its dependencies, not globals. Tests build one
 * around a real PostgreSQL and the Scheduler emulator and call the run function directly.
 */
export class CommandContext {
  constructor(
    readonly io: Io,
    readonly globals: GlobalOptions,
    readonly deps: Deps = createDeps(),
  ) {}

  private loaded?: Config;

  /** How opsctl was invoked (set by the program): the command line, the command's path, its --reason. */
  invocation: Invocation = { argv: [], command: '', reason: null };
  /** The run of this invocation: one id for every apply it makes (a fleet's targets share their parent's). */
  runState: { id?: string } = {};
  /** The config's target this context works on (a fleet run's TargetContext); null: the config's own. */
  get targetName(): string | null {
    return null;
  }

  /** The command line as a run record keeps it: secrets masked. */
  commandLine(): string {
    const quote = (a: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
    return maskSecrets(['opsctl', ...this.invocation.argv].map(quote).join(' '), [...this.secrets(), ...this.invocation.argv.flatMap(passwordsIn)]);
  }
  /** The config file the effective config came from (null: defaults only); set by config(). */
  configFile: string | null = null;

  /** Loads config once: --config > OPSCTL_CONFIG > ./opsctl.config.json, then env and flags on top. */
  async config(overrides: Record<string, unknown> = {}): Promise<Config> {
    if (this.loaded) return this.loaded;
    const { loadConfig } = await import('../config/config.js');
    const { CHECK_THRESHOLDS } = await import('../checks/check-registry.js');
    const flagLayer: Record<string, unknown> = { ...overrides };
    if (this.globals.databaseUrl) flagLayer.database = { ...((flagLayer.database as object) ?? {}), url: this.globals.databaseUrl };
    const { config, file } = loadConfig({ configPath: this.globals.config, env: this.io.env, cwd: this.io.cwd, overrides: flagLayer, checkThresholds: CHECK_THRESHOLDS });
    this.loaded = config;
    this.configFile = file;
    return config;
  }

  /** Opens a session, runs fn, always closes it. */
  async withDatabase<T>(fn: (db: Database) => Promise<T>): Promise<T> {
    const db = await this.openDatabase();
    try {
      return await fn(db);
    } finally {
      await db.close();
    }
  }

  /** A session with the effective config's settings; the caller closes it. */
  async openDatabase(): Promise<Database> {
    const cfg = await this.config();
    return this.deps.openDatabase(cfg.database, this.io.env);
  }

  /** A Scheduler client from the AWS flags, the environment and the config; the caller destroys it. */
  async openScheduler(flags: AwsFlags): Promise<SchedulerApi> {
    const cfg = await this.config();
    const { schedulerAccess } = await import('../aws/scheduler-api.js');
    return this.deps.openScheduler(schedulerAccess(this.io.env, flags, cfg));
  }

  /** The target (and region) this run is bound to when it is one target's of a run over targets (TargetContext); null otherwise. */
  boundTarget(): FleetUnit | null {
    return null;
  }

  /** Whether the run has a database to open (a target may have only an AWS account). */
  hasDatabase(): boolean {
    return true;
  }

  /**
   * The cap a remedy applies with: its own --max (0: none). Over targets, an apply's cap is
   * also what is left of --max-total (TargetContext).
   */
  capMax(max: number): number {
    return max;
  }

  get format(): OutputFormat {
    return this.globals.output as OutputFormat;
  }

  async emit<T>(result: CommandResult<T>): Promise<number> {
    const { render, RenderFailure } = await import('../output/output.js');
    // The lines around a table are messages too, often quoting a flag (--status, --kind): one
    // line each, masked. (The table's cells are the renderer's.) escapeControl is idempotent.
    const notes = result.notes;
    const shown: CommandResult<T> = {
      ...result,
      ...(result.headline !== undefined ? { headline: this.printable(result.headline) } : {}),
      ...(result.emptyMessage !== undefined ? { emptyMessage: this.printable(result.emptyMessage) } : {}),
      ...(notes ? { notes: () => notes().map((n) => this.printable(n)) } : {}),
    };
    let code: number;
    try {
      code = await render(shown, this.format, { stream: this.io.stdout, env: this.io.env, noColor: this.globals.color === false });
    } catch (e) {
      // An --apply whose table cannot be printed still did its work: its exit code stands.
      if (!(e instanceof RenderFailure) || result.mode !== 'apply') throw e;
      this.say(`opsctl: ${result.command} --apply did its work, but ${e.message}.`);
      code = result.exitCode ? result.exitCode() : 0;
    }
    for (const w of result.warnings?.() ?? []) this.say(`opsctl: ${w}`);
    return code;
  }

  /** Secrets that must never be printed: masked out of every message opsctl writes to stderr. */
  secrets(): string[] {
    // Passwords of URLs that do not parse too: those are the ones printed in error messages.
    return [...environmentSecrets(this.io.env), ...passwordsIn(this.globals.databaseUrl), ...passwordsIn(this.loaded?.database.url)];
  }

  /** Text as it may be shown: secrets masked, control characters made visible (one line). */
  printable(message: string): string {
    return escapeControl(maskSecrets(message, this.secrets()));
  }

  /** A message for humans on stderr: one line, masked, no control character from a value. */
  say(message: string): void {
    this.io.stderr.write(`${this.printable(message)}\n`);
  }

  /** Progress for long runs: stderr, and only when someone is watching. */
  progress(message: string): void {
    if (this.io.stderr.isTTY) this.io.stderr.write(`\r\x1b[K${this.printable(message)}`);
  }
  progressDone(): void {
    if (this.io.stderr.isTTY) this.io.stderr.write('\r\x1b[K');
  }

  /** Whether --apply asks a person before acting: a terminal on stdin and stderr, and no --yes. */
  get asksPerson(): boolean {
    return !this.globals.yes && Boolean(this.io.stdin.isTTY) && Boolean(this.io.stderr.isTTY);
  }

  /**
   * On a TTY, --apply shows what it will do (`preview`, on stderr) and asks before acting unless
   * --yes. Without a TTY (cron, CI) there is nobody to ask: the flags are the consent. Ctrl-C or
   * Ctrl-D at the prompt is exit 130 with nothing changed; no answer within --confirm-timeout is
   * a no.
   */
  async confirm(question: string, preview?: () => Promise<void>): Promise<boolean> {
    if (!this.asksPerson) return true;
    const { parseDuration } = await import('../config/durations.js');
    const timeoutMs = parseDuration(this.globals.confirmTimeout ?? DEFAULT_CONFIRM_TIMEOUT, this.globals.confirmTimeout === undefined ? 'the default confirm timeout' : '--confirm-timeout');
    await preview?.();
    const { createInterface } = await import('node:readline');
    const { interruptedAtPrompt } = await import('../errors.js');
    const rl = createInterface({ input: this.io.stdin, output: this.io.stderr, terminal: true });
    try {
      return await new Promise<boolean>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.io.stderr.write('\n');
          this.say(`opsctl: no answer within ${this.globals.confirmTimeout ?? DEFAULT_CONFIRM_TIMEOUT} (--confirm-timeout).`);
          resolve(false);
        }, timeoutMs);
        const done = () => clearTimeout(timer);
        rl.on('SIGINT', () => {
          done();
          this.io.stderr.write('\n');
          reject(interruptedAtPrompt());
        });
        // Ctrl-D: the input ended without an answer.
        rl.on('close', () => {
          done();
          reject(interruptedAtPrompt());
        });
        rl.question(`${question} [y/N] `, (answer) => {
          done();
          resolve(/^y(es)?$/i.test(answer.trim()));
        });
      });
    } finally {
      rl.removeAllListeners('close');
      rl.close();
    }
  }

  /**
   * While an --apply runs: the first Ctrl-C (SIGINT) asks it to stop after the batch in flight
   * (`interrupted` turns true; the report then says what was applied, exit 130); a second one
   * ends the process at once (the server rolls back the batch in flight: no torn row). Returns
   * the function that removes the handler.
   */
  trapInterrupts(): () => void {
    const onSignal = () => {
      if (this.interrupted) process.exit(130);
      this.interrupted = true;
      this.say('opsctl: stopping after the batch in flight (Ctrl-C again to stop at once).');
    };
    process.on('SIGINT', onSignal);
    return () => process.off('SIGINT', onSignal);
  }
  interrupted = false;

  /** A stack trace (--debug): its own lines kept, each one escaped and masked. */
  private sayLines(text: string): void {
    for (const line of text.split('\n')) this.say(line);
  }

  /** One sentence on stderr and the documented exit code; a stack only with --debug. */
  fail(e: unknown): number {
    if (e instanceof OpsctlError) {
      this.say(`opsctl: ${e.message}`);
      if (this.globals.debug && e.cause instanceof Error && e.cause.stack) this.sayLines(e.cause.stack);
      return e.exitCode;
    }
    const err = e as Error;
    this.say(`opsctl: unexpected error: ${err?.message ?? String(e)}${this.globals.debug ? '' : ' (re-run with --debug for details)'}`);
    if (this.globals.debug && err?.stack) this.sayLines(err.stack);
    // Not a dependency's fault: a code of its own, so scripts never retry a bug as an outage.
    return ExitCode.INTERNAL;
  }
}
