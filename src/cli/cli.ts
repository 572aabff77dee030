import { Command, CommanderError, Option } from 'commander';
import { CommandContext, createDeps, type Io, type GlobalOptions } from './context.js';
import { ExitCode } from '../errors.js';
import { environmentSecrets, maskSecrets, passwordsIn } from '../output/masking.js';
import { escapeControl } from '../output/terminal-text.js';
import { COMMAND_INDEX } from '../commands/index.js';
import { withValues } from './completion-values.js';
import type { Registrar } from '../commands/registrar.js';
import { VERSION } from './version.js';

export { VERSION };

/**
 * Builds the program. Only the modules of the commands in `load` are imported (the one being
 * run); every other command is a name and a description, enough for the root --help.
 * `load: 'all'` builds the whole tree (tests).
 */
export async function buildProgram(io: Io, setExit: (code: number) => void, load: 'all' | string[] = 'all', argv: string[] = []): Promise<Command> {
  const program = new Command();
  // Commander echoes what it could not use (`unknown option '--database-ur=postgres://u:PW@…'`):
  // masked with every password the command line and the environment hold.
  const secrets = () => [...environmentSecrets(io.env), ...argv.flatMap(passwordsIn)];
  program
    .name('opsctl')
    .description('Triage drift and stuck work in PostgreSQL-backed systems and AWS EventBridge Scheduler.\nEvery command that changes anything is a dry run unless --apply is given.')
    .version(VERSION, '-V, --version')
    .option('-c, --config <file>', 'config file (default: $OPSCTL_CONFIG, else ./opsctl.config.json)')
    .option('--database-url <url>', 'PostgreSQL connection string (default: $DATABASE_URL, else the PG* variables)')
    .addOption(
      withValues(
        new Option('-o, --output <format>', 'output format: table (fitted to a terminal), wide (every column in full), json, ndjson (check also: markdown, prometheus)').default('table'),
        ['table', 'wide', 'json', 'ndjson', 'markdown', 'prometheus'],
      ),
    )
    .option('-y, --yes', 'do not ask for confirmation on a TTY before --apply')
    .option('--confirm-timeout <duration>', 'on a TTY, an unanswered --apply question cancels after this (default 5m)')
    .option('--no-color', 'never colour output (NO_COLOR is honoured too)')
    .option('--debug', 'show stack traces for errors')
    .option('--target <name>', 'run on this target of the config (repeatable; globs: "prod-*")', (v: string, prev: string[] = []) => [...prev, v])
    .option('--all-targets', 'run on every target of the config')
    .option('--shard <i/n>', 'only shard I of N of the selected targets (0 ≤ I < N; e.g. $JOB_COMPLETION_INDEX/4)')
    .option('--concurrency <n>', 'targets worked on at once (default 4)')
    .option('--target-timeout <duration>', 'give up on one target after this long: it is reported unknown (default 5m)')
    .configureOutput({
      writeOut: (s) => (io.helpOut ? io.helpOut.write(s) : io.stdout.write(s)),
      writeErr: (s) => io.stderr.write(maskSecrets(s, secrets())),
      // Its error messages quote the user's words: control characters made visible, so a value
      // cannot forge a line (the newline commander puts before a suggestion is kept); and they
      // carry opsctl's one prefix.
      outputError: (s, write) => write(`${commanderMessage(s).replace(/^error: /, 'opsctl: ')}
`),
      // Not a terminal: 80 columns and no colour, as commander decides for a pipe, but
      // without asking process.stdout (which would build the stream).
      ...(io.helpOut ? { getOutHelpWidth: () => 80, getOutHasColors: () => false } : {}),
    })
    .addHelpText(
      'after',
      `
Examples:
  $ opsctl demo                                  # see it work: throwaway PostgreSQL + Scheduler emulator
  $ opsctl check                                 # every check, read-only; exit 0 clean, 1 findings, 3 broken
  $ opsctl reap --older-than 10m                 # the plan; add --apply to act
  $ opsctl propagations dead-letters
  $ opsctl adopt schedule-group --all-unowned --apply
  $ opsctl <command> --help                      # every command has examples

Exit codes: 0 ok, 1 findings or some items failed, 2 usage/config error, 3 a dependency unreachable or refused,
4 an internal error (a bug in opsctl), 5 --apply not confirmed (nothing changed), 130 interrupted (Ctrl-C).`,
    )
    .showSuggestionAfterError(true)
    .exitOverride();

  const registrar: Registrar = {
    wrap(action, over = {}) {
      return async (...args: any[]) => {
        const command = args[args.length - 1] as Command;
        const globals = command.optsWithGlobals() as GlobalOptions;
        const ctx = new CommandContext(io, globals, createDeps({ runCli }));
        try {
          const { assertFleetCapable, commandPath, targetKind } = await import('../targets/fleet.js');
          assertFleetCapable(command, globals);
          const path = commandPath(command);
          const reason = (command.opts() as { reason?: unknown }).reason;
          ctx.invocation = { argv, command: path, reason: typeof reason === 'string' ? reason : null };
          const fleet = Boolean(globals.target?.length || globals.allTargets || globals.shard !== undefined);
          const dispatch = async (c: CommandContext): Promise<number> => {
            if (!fleet || commandPath(command) === 'apply') return action(c, ...args);
            // One path for one target or many: the action itself, on each selected target
            // (commander hands the action its arguments, its options, then the command).
            const { onTargets } = await import('../targets/on-targets.js');
            const path = commandPath(command);
            const flags = command.opts() as { apply?: boolean; maxTotal?: string };
            const withFlags = (t: CommandContext, changed?: Record<string, unknown>) =>
              action(t, ...(changed ? [...args.slice(0, -2), { ...args[args.length - 2], ...changed }, command] : args));
            return onTargets(c, { command: path, kind: targetKind(path), merge: over.merge }, withFlags, { apply: Boolean(flags.apply), maxTotal: flags.maxTotal });
          };
          const planOut = (command.opts() as { planOut?: string }).planOut;
          if (planOut === undefined) setExit(await dispatch(ctx));
          else {
            // A dry run whose plan is written for review (src/plans/plan-out.ts).
            const { runPlanOut } = await import('../plans/plan-out.js');
            setExit(await runPlanOut(ctx, command, planOut, argv, dispatch));
          }
        } catch (e) {
          setExit(ctx.fail(e));
        }
      };
    },
  };
  // Modules first (a module may register a sibling too: executions + reap), then stubs for the rest.
  const loaded = new Set<unknown>();
  for (const entry of COMMAND_INDEX) {
    if (load !== 'all' && !load.includes(entry.name)) continue;
    const register = await entry.load();
    if (!loaded.has(register)) register(program, registrar);
    loaded.add(register);
  }
  for (const entry of COMMAND_INDEX) {
    if (!program.commands.some((c) => c.name() === entry.name)) program.command(entry.name).description(entry.description);
  }
  // --plan-out on every command that has --apply, in this one place (src/plans/plan-out.ts).
  if (loaded.size) (await import('../plans/plan-flags.js')).addPlanOutFlags(program);
  return program;
}

/** A commander error message as one line (plus its "Did you mean" line), without its final newline. */
function commanderMessage(s: string): string {
  return escapeControl(s.replace(/\n$/, '')).replace(/\\n\((Did you mean )/g, '\n($1');
}

/** Global options that take a value: their value is not a command word. */
const VALUE_OPTIONS = new Set(['-c', '--config', '--database-url', '-o', '--output', '--target', '--shard', '--concurrency', '--target-timeout', '--confirm-timeout']);

function firstCommandWord(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') return argv[i + 1];
    if (VALUE_OPTIONS.has(a)) {
      i += 1;
      continue;
    }
    if (!a.startsWith('-')) return a;
  }
  return undefined;
}

/** Runs the CLI; resolves to the exit code instead of exiting, so tests can call it in-process. */
export async function runCli(argv: string[], io: Io): Promise<number> {
  let code: number = ExitCode.OK;
  const first = firstCommandWord(argv);
  // `opsctl help reap` needs reap's module too.
  const target = first === 'help' ? argv[argv.indexOf('help') + 1] : first;
  const program = await buildProgram(
    io,
    (c) => {
      code = c;
    },
    target ? [target] : [],
    argv,
  );
  // Commander answers `opsctl nosuch --help` with the root help and exit 0; scripts probing
  // whether a command exists must get the same exit 2 as `opsctl nosuch`.
  if (first !== undefined && !program.commands.some((c) => c.name() === first || c.aliases().includes(first)) && first !== 'help') {
    const { suggestSimilar } = await import('./suggest.js');
    const near = suggestSimilar(first, COMMAND_INDEX.map((c) => c.name));
    io.stderr.write(`${maskSecrets(escapeControl(`opsctl: unknown command '${first}'`), [...environmentSecrets(io.env), ...argv.flatMap(passwordsIn)])}${near ? `
(Did you mean ${near}?)` : ''}
`);
    return ExitCode.USAGE;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return ExitCode.OK;
      // Commander already printed its one-line message.
      return ExitCode.USAGE;
    }
    throw e;
  }
  return code;
}
