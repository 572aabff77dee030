import { runCli } from './cli.js';

// `opsctl ... | head` closes the pipe early: that is not an error worth a message.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
});

// The process-level entry: everything else takes its io as a parameter. No top-level await:
// the bundle is CommonJS, which starts faster than an ESM graph.
void runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  cwd: process.cwd(),
}).then((code) => {
  // Let stdout drain (large ndjson) before exiting with the code.
  process.exitCode = code;
});
