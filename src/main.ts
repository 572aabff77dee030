import { fstatSync, writeSync } from 'node:fs';
import { buildProgram, runCli } from './cli/cli.js';
import type { Io } from './cli/context.js';

// The process-level entry: everything else takes its io as a parameter. No top-level await:
// the bundle is CommonJS, which starts faster than an ESM graph.

// process.stdout/stderr/stdin are getters that build a stream on first use; for a pipe that
// is ~15 ms of start-up (bench/). They are taken only when a command uses them.
let stdout: NodeJS.WriteStream | undefined;
const takeStdout = (): NodeJS.WriteStream => {
  if (!stdout) {
    stdout = process.stdout;
    // `opsctl ... | head` closes the pipe early: that is not an error worth a message.
    stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    });
  }
  return stdout;
};

/** A pipe or a file, certainly not a terminal (telling a terminal apart needs node:tty, which loads net). */
const plainFd = (fd: number): boolean => {
  try {
    const s = fstatSync(fd);
    return s.isFIFO() || s.isFile() || s.isSocket();
  } catch {
    return false;
  }
};

/** Writes help text to stdout without its stream; the stream takes over if the pipe is full. */
const writeHelp = (text: string): void => {
  const bytes = Buffer.from(text);
  let at = 0;
  try {
    while (at < bytes.length) at += writeSync(1, bytes, at);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EPIPE') process.exit(process.exitCode ?? 0);
    if (code !== 'EAGAIN') throw e;
    takeStdout().write(bytes.subarray(at));
  }
};

const io: Io = {
  get stdout() {
    return takeStdout();
  },
  get stderr() {
    return process.stderr;
  },
  get stdin() {
    return process.stdin;
  },
  env: process.env,
  cwd: process.cwd(),
  ...(plainFd(1) ? { helpOut: { write: writeHelp } } : {}),
};

// The build writes V8's code caches from one run of the launcher (scripts/bundle.mjs): that run
// first builds every command's tree and loads the built-in config (zod's schema and parser),
// so the caches hold that code too, not just what `--help` runs.
const warmUp = async (): Promise<void> => {
  await buildProgram(io, () => {}, 'all');
  const { loadConfig } = await import('./config/config.js');
  const { CHECK_THRESHOLDS } = await import('./checks/check-registry.js');
  loadConfig({ env: { DATABASE_URL: 'postgres://localhost/warm-up' }, cwd: '/', overrides: { database: { url: 'postgres://localhost/warm-up' } }, checkThresholds: CHECK_THRESHOLDS });
};
const warm = process.env.OPSCTL_WRITE_CODE_CACHE ? warmUp() : Promise.resolve();

void warm
  .then(() => runCli(process.argv.slice(2), io))
  .then((code) => {
    // Let stdout drain (large ndjson) before exiting with the code.
    process.exitCode = code;
  })
  .catch((e: unknown) => {
    // Whatever escaped the commands' own error handling: the same prefix and exit code as theirs.
    process.stderr.write(`opsctl: unexpected error: ${(e as Error)?.message ?? String(e)} (a bug in opsctl; please report it)\n`);
    process.exitCode = 4;
  });
