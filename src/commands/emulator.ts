import type { Command } from 'commander';
import { describe } from './descriptions.js';
import type { Registrar } from './registrar.js';
import type { CommandContext } from '../cli/context.js';
import { parseCount } from './shared-flags.js';
import { exportLines } from './shell-quote.js';

interface EmulatorFlags {
  port?: string;
  host?: string;
  deleting?: string;
  latency?: string;
  fault?: string[];
}

/** Runs the Scheduler emulator in the foreground until SIGINT/SIGTERM. */
export async function runEmulator(ctx: CommandContext, flags: EmulatorFlags, waitForStop: () => Promise<void>): Promise<number> {
  const { startSchedulerEmulator, parseFault, formatFault, ADMIN_PREFIX } = await import('../emulator/scheduler-emulator.js');
  const { parseDuration } = await import('../config/durations.js');
  // Parsed before listening, so a bad --fault is a usage error (exit 2) and nothing starts.
  const faults = (flags.fault ?? []).map((f) => parseFault(f));
  const emu = await startSchedulerEmulator({
    port: flags.port === undefined ? 4599 : parseCount(flags.port, '--port'),
    host: flags.host ?? '127.0.0.1',
    deletingMs: flags.deleting ? parseDuration(flags.deleting, '--deleting') : 1000,
    latencyMs: flags.latency ? parseDuration(flags.latency, '--latency') : 0,
    faults,
  });
  ctx.say(`Scheduler emulator listening on ${emu.url} (Ctrl-C to stop). Use it with:`);
  // export lines: pasted into a shell (or eval'd) they reach the commands it starts.
  ctx.io.stdout.write(
    exportLines({
      AWS_ENDPOINT_URL_SCHEDULER: emu.url,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'emulator',
      // Masked by value in every message of a shell that exports it: "emulator" would blank the word.
      AWS_SECRET_ACCESS_KEY: 'opsctl-emulator-not-a-secret',
    }),
  );
  for (const f of faults) ctx.say(`fault armed: ${formatFault(f)}`);
  ctx.say(`Faults and call counts: ${emu.url}${ADMIN_PREFIX}/faults, ${emu.url}${ADMIN_PREFIX}/calls`);
  await waitForStop();
  await emu.close();
  return 0;
}

const EXAMPLES = `
Faults (--fault SPEC, repeatable; SPEC is KIND=SUBJECT[,KEY=VALUE]...):
  error=ERROR[,op=OP][,group=NAME][,times=N]   the next N calls (default 1) fail with ERROR
  deleting=GROUP[,TRIGGER][,for=DURATION]      GROUP turns DELETING, gone after for= (default --deleting)
  vanish=GROUP[,TRIGGER]                       GROUP and its schedules disappear
  expire-token=OP[,page=N][,times=N]           the token fetching page N (default 2) dies: ValidationException
  html=STATUS[,op=OP][,group=NAME][,times=N]   answer an HTML page with STATUS (default: every call)
  TRIGGER: after-reads=N | on=OP | at=DURATION (none: as soon as GROUP exists)
  ERROR: ConflictException ThrottlingException InternalServerException ValidationException
         ServiceQuotaExceededException AccessDeniedException
  OP: an operation name (TagResource, ListScheduleGroups, ...) or * for any

Examples:
  $ opsctl emulator scheduler                     # http://127.0.0.1:4599
  $ opsctl emulator scheduler --port 0 --latency 20ms --deleting 5s
  $ opsctl emulator scheduler --fault deleting=orders-prod,on=TagResource,for=30s
  $ opsctl emulator scheduler --fault error=ConflictException,op=TagResource,times=3 \\
      --fault expire-token=ListScheduleGroups --fault html=502,op=ListTagsForResource,times=1
  $ curl -d 'vanish=orders-prod,after-reads=2' http://127.0.0.1:4599/_emulator/faults
  $ curl http://127.0.0.1:4599/_emulator/calls     # calls per operation
  $ aws scheduler list-schedule-groups --endpoint-url http://127.0.0.1:4599 --region us-east-1
`;

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function registerEmulatorCommands(program: Command, r: Registrar): void {
  const emulator = program
    .command('emulator')
    .description(describe('emulator'))
    .addHelpText('after', '\nExamples:\n  $ opsctl emulator scheduler                    # http://127.0.0.1:4599\n  $ opsctl emulator scheduler --port 0 --latency 20ms\n');
  emulator
    .command('scheduler')
    .description('Run a stateful EventBridge Scheduler emulator (REST-JSON, works with the AWS SDK and CLI)')
    .option('--port <n>', 'port to listen on (0 = any free port)', undefined)
    .option('--host <addr>', 'address to bind (default 127.0.0.1)')
    .option('--deleting <duration>', 'how long a deleted group stays DELETING (default 1s)')
    .option('--latency <duration>', 'latency added to every call')
    .option('--fault <spec>', 'arm a fault (repeatable; grammar below)', collect)
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
