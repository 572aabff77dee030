import type { Command } from 'commander';
import { describe } from './descriptions.js';
import type { Registrar } from './registrar.js';
import type { CommandContext } from '../context.js';
import { parseCount } from './shared-flags.js';

interface EmulatorFlags {
  port?: string;
  host?: string;
  deleting?: string;
  latency?: string;
}

/** Runs the Scheduler emulator in the foreground until SIGINT/SIGTERM. */
export async function runEmulator(ctx: CommandContext, flags: EmulatorFlags, waitForStop: () => Promise<void>): Promise<number> {
  const { startSchedulerEmulator } = await import('../emulator/scheduler-emulator.js');
  const { parseDuration } = await import('../durations.js');
  const emu = await startSchedulerEmulator({
    port: flags.port === undefined ? 4599 : parseCount(flags.port, '--port'),
    host: flags.host ?? '127.0.0.1',
    deletingMs: flags.deleting ? parseDuration(flags.deleting, '--deleting') : 1000,
    latencyMs: flags.latency ? parseDuration(flags.latency, '--latency') : 0,
  });
  ctx.say(`Scheduler emulator listening on ${emu.url} (Ctrl-C to stop). Use it with:`);
  ctx.io.stdout.write(`AWS_ENDPOINT_URL_SCHEDULER=${emu.url}\nAWS_REGION=us-east-1\nAWS_ACCESS_KEY_ID=emulator\nAWS_SECRET_ACCESS_KEY=emulator\n`);
  await waitForStop();
  await emu.close();
  return 0;
}

const EXAMPLES = `
Examples:
  $ opsctl emulator scheduler                     # http://127.0.0.1:4599
  $ opsctl emulator scheduler --port 0 --latency 20ms --deleting 5s
  $ aws scheduler list-schedule-groups --endpoint-url http://127.0.0.1:4599 --region us-east-1
`;

export function registerEmulatorCommands(program: Command, r: Registrar): void {
  const emulator = program.command('emulator').description(describe('emulator'));
  emulator
    .command('scheduler')
    .description('Run a stateful EventBridge Scheduler emulator (REST-JSON, works with the AWS SDK and CLI)')
    .option('--port <n>', 'port to listen on (0 = any free port)', undefined)
    .option('--host <addr>', 'address to bind (default 127.0.0.1)')
    .option('--deleting <duration>', 'how long a deleted group stays DELETING (default 1s)')
    .option('--latency <duration>', 'latency added to every call')
    .addHelpText('after', EXAMPLES)
    .action(
      r.wrap((ctx, flags: EmulatorFlags) =>
        runEmulator(ctx, flags, () => new Promise<void>((resolve) => {
          process.once('SIGINT', () => resolve());
          process.once('SIGTERM', () => resolve());
        })),
      ),
    );
}
