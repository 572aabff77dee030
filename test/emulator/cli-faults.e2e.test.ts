// `opsctl emulator scheduler --fault ...` as a user runs it: the built CLI as a subprocess, the
// fault observed through the real SDK, then armed and read back through the admin endpoint.
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import {
  CreateScheduleGroupCommand,
  GetScheduleGroupCommand,
  ListScheduleGroupsCommand,
  SchedulerClient,
  TagResourceCommand,
} from '@aws-sdk/client-scheduler';
import { BIN, cliProcess } from '../support/cli.js';

const arnOf = (name: string): string => `arn:aws:scheduler:us-east-1:123456789012:schedule-group/${name}`;
const children: ChildProcess[] = [];

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** Starts the emulator and resolves once it has printed its endpoint line. */
function startCli(args: string[]): Promise<{ child: ChildProcess; endpoint: string; stderr: () => string; stdout: () => string }> {
  const child = spawn(process.execPath, [BIN, 'emulator', 'scheduler', '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, HOME: process.env.HOME, XDG_STATE_HOME: process.env.XDG_STATE_HOME },
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (d) => {
      out += d;
      // The secret's line is the last of the environment lines.
      const m = /AWS_ENDPOINT_URL_SCHEDULER=(\S+)\n/.exec(out);
      if (m && /AWS_SECRET_ACCESS_KEY=\S+\n/.test(out)) resolve({ child, endpoint: m[1] as string, stderr: () => err, stdout: () => out });
    });
    child.on('exit', (code) => reject(new Error(`emulator exited early (${code}): ${err}`)));
  });
}

describe('opsctl emulator scheduler', () => {
  it('prints its environment as export lines a shell can eval, reaching the commands it starts', async () => {
    const { endpoint, stdout } = await startCli([]);
    expect(stdout().split('\n').filter(Boolean).every((l) => l.startsWith('export '))).toBe(true);
    const shell = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      const child = spawn('bash', ['-c', 'eval "$EMULATOR_OUTPUT" && exec "$NODE" -e "console.log(JSON.stringify(Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith(\'AWS_\')))))"'], {
        env: { PATH: process.env.PATH, EMULATOR_OUTPUT: stdout(), NODE: process.execPath },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, out }));
    });
    expect(shell.code).toBe(0);
    const env = JSON.parse(shell.out);
    expect(env).toMatchObject({ AWS_ENDPOINT_URL_SCHEDULER: endpoint, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'emulator' });
    // Masked by value wherever it appears: a distinctive fake secret, not a word messages use.
    expect(env.AWS_SECRET_ACCESS_KEY).toBe('opsctl-emulator-not-a-secret');
  });
});

describe('opsctl emulator scheduler --fault', () => {
  it('a DELETING window armed from the command line is seen by the SDK; more faults arm over the admin endpoint; SIGTERM stops it with exit 0', async () => {
    const { child, endpoint, stderr } = await startCli([
      '--fault', 'deleting=orders-prod,on=TagResource,for=1h',
      '--fault', 'error=ConflictException,op=TagResource,group=billing,times=2',
    ]);
    const client = new SchedulerClient({ region: 'us-east-1', endpoint, credentials: { accessKeyId: 'emulator', secretAccessKey: 'emulator' }, maxAttempts: 1 });
    try {
      await client.send(new CreateScheduleGroupCommand({ Name: 'orders-prod' }));
      await client.send(new CreateScheduleGroupCommand({ Name: 'billing' }));
      expect((await client.send(new GetScheduleGroupCommand({ Name: 'orders-prod' }))).State).toBe('ACTIVE');
      const tag = (name: string) => client.send(new TagResourceCommand({ ResourceArn: arnOf(name), Tags: [{ Key: 'team', Value: 'ops' }] }));
      await expect(tag('orders-prod')).rejects.toMatchObject({ name: 'ConflictException', $metadata: { httpStatusCode: 409 } });
      expect((await client.send(new GetScheduleGroupCommand({ Name: 'orders-prod' }))).State).toBe('DELETING');
      await expect(client.send(new CreateScheduleGroupCommand({ Name: 'orders-prod' }))).rejects.toMatchObject({ name: 'ConflictException' });
      await expect(tag('billing')).rejects.toMatchObject({ name: 'ConflictException' });
      await expect(tag('billing')).rejects.toMatchObject({ name: 'ConflictException' });
      await tag('billing');

      const armed = await fetch(`${endpoint}/_emulator/faults`, { method: 'POST', body: 'html=502,op=ListScheduleGroups,times=1' });
      expect(armed.status).toBe(201);
      await expect(client.send(new ListScheduleGroupsCommand({}))).rejects.toMatchObject({ $metadata: { httpStatusCode: 502 } });
      expect((await client.send(new ListScheduleGroupsCommand({}))).ScheduleGroups?.map((g) => g.Name)).toEqual(['billing', 'default', 'orders-prod']);
      expect(await (await fetch(`${endpoint}/_emulator/calls`)).json()).toEqual({
        CreateScheduleGroup: 3,
        GetScheduleGroup: 2,
        TagResource: 4,
        ListScheduleGroups: 2,
      });
    } finally {
      client.destroy();
    }
    expect(stderr()).toContain('fault armed: deleting=orders-prod,on=TagResource,for=1h');
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('a malformed --fault is one sentence and exit 2, and nothing listens', async () => {
    const r = await cliProcess(['emulator', 'scheduler', '--port', '0', '--fault', 'deleting=orders,after-reads=two']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toEqual(['opsctl: --fault: after-reads must be a whole number of at least 1, got "two".']);
  });
});
