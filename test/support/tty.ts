import { spawn, type ChildProcess } from 'node:child_process';
import { BIN } from './cli.js';

/**
 * The CLI on a real terminal: util-linux `script` gives it a pseudo-TTY, so isTTY, the
 * confirmation prompt, colour and progress behave exactly as for a person at a shell.
 * The environment is PATH, HOME and TERM=xterm-256color, then the caller's `env` (which may
 * override them); nothing else of the test's own environment reaches the CLI.
 */
export interface TtyOptions {
  /** The terminal's width, set by `stty cols` inside the pseudo-terminal before the CLI starts. */
  columns?: number;
  /** 'ignore': nothing can be typed (script reads end-of-file at once); default 'pipe'. */
  stdin?: 'pipe' | 'ignore';
}

export interface Tty {
  child: ChildProcess;
  /** Types `text` at the terminal. */
  type: (text: string) => void;
  output: () => string;
  /** Resolves when the output matches. */
  seen: (re: RegExp) => Promise<void>;
  /** The exit code (-1 when killed). */
  done: Promise<number>;
}

/** Starts the CLI on a pseudo-terminal; `timeoutMs` kills a run that never ends (its `done` then resolves -1). */
export function spawnOnTty(args: string[], env: NodeJS.ProcessEnv, opts: TtyOptions & { timeoutMs?: number } = {}): Tty {
  const cmd = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const child = spawn('script', ['-qefc', opts.columns ? `stty cols ${opts.columns}; ${cmd}` : cmd, '/dev/null'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, XDG_STATE_HOME: process.env.XDG_STATE_HOME, TERM: 'xterm-256color', ...env },
    stdio: [opts.stdin ?? 'pipe', 'pipe', 'pipe'],
  });
  let output = '';
  const waiters: Array<{ re: RegExp; resolve: () => void }> = [];
  // stdout is a pipe (stdio above), never null.
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    output += d;
    for (const w of waiters.splice(0)) (w.re.test(output) ? w.resolve() : waiters.push(w));
  });
  // A guard, not synchronisation: a run that never ends must not outlive the test.
  const guard = opts.timeoutMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
  const done = new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(guard);
      resolve(code ?? -1);
    });
  });
  return {
    child,
    type: (text) => {
      if (!child.stdin) throw new Error('spawnOnTty: started with stdin "ignore", nothing can be typed');
      child.stdin.write(text);
    },
    output: () => output,
    seen: (re) => (re.test(output) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ re, resolve }))),
    done,
  };
}

/**
 * Runs the CLI on a pseudo-terminal to its end: `answer` types `type` once the output matches
 * `when`; `timeoutMs` kills a run that never ends and rejects with the output so far.
 */
export function runOnTty(
  args: string[],
  env: NodeJS.ProcessEnv,
  opts: TtyOptions & { answer?: { when: RegExp; type: string }; timeoutMs?: number } = {},
): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const t = spawnOnTty(args, env, { columns: opts.columns, stdin: opts.stdin });
    const { answer, timeoutMs } = opts;
    if (answer) void t.seen(answer.when).then(() => t.type(answer.type));
    // A guard, not synchronisation: a prompt that never comes must not leave the child holding a lock.
    const guard =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            t.child.kill('SIGKILL');
            reject(new Error(`no exit within ${timeoutMs / 1000} s; output so far: ${t.output()}`));
          }, timeoutMs);
    t.done.then(
      (code) => {
        clearTimeout(guard);
        resolve({ code, output: t.output() });
      },
      reject,
    );
  });
}
