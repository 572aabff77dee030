// Shared helpers for the bench harness: statistics, timed child processes, progress, formatting.
import { spawn, spawnSync } from 'node:child_process';
import { openSync, closeSync, readFileSync, createReadStream } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(ROOT, 'bin', 'opsctl.cjs');

/** Progress goes to stderr so stdout stays the result table. */
export function log(message) {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** median/min/max of the measured samples (the warm-up is never among them). */
export function summarize(samples) {
  return { median: median(samples), min: Math.min(...samples), max: Math.max(...samples), runs: samples.length, samples };
}

/** Wall time of a synchronous child (the bench process does nothing else meanwhile). */
export function timeSync(cmd, args, opts = {}) {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024, ...opts });
  const ms = performance.now() - t0;
  if (r.error) throw r.error;
  return { ms, status: r.status, stdout: r.stdout?.toString() ?? '', stderr: r.stderr?.toString() ?? '' };
}

/**
 * Wall time of an asynchronous child, stdout to a file (or /dev/null): from spawn to exit.
 * Async so an in-process server (the Scheduler emulator) keeps answering meanwhile.
 */
export function timeAsync(cmd, args, { env, stdoutFile = '/dev/null', cwd = ROOT } = {}) {
  return new Promise((resolve, reject) => {
    const fd = openSync(stdoutFile, 'w');
    const stderr = [];
    const t0 = performance.now();
    const child = spawn(cmd, args, { env, cwd, stdio: ['ignore', fd, 'pipe'] });
    child.stderr.on('data', (c) => stderr.push(c));
    child.on('error', (e) => {
      closeSync(fd);
      reject(e);
    });
    child.on('close', (status, signal) => {
      const ms = performance.now() - t0;
      closeSync(fd);
      resolve({ ms, status, signal, stderr: Buffer.concat(stderr).toString() });
    });
  });
}

/** Lines in a file, streamed (a million-row listing is ~150 MB). */
export function countLines(file) {
  return new Promise((resolve, reject) => {
    let n = 0;
    createReadStream(file)
      .on('data', (buf) => {
        for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) n += 1;
      })
      .on('end', () => resolve(n))
      .on('error', reject);
  });
}

export function lastLine(file) {
  const text = readFileSync(file, 'utf8').trimEnd();
  return text.slice(text.lastIndexOf('\n') + 1);
}

export function check(ok, message) {
  if (!ok) throw new Error(message);
}

export const fmtMs = (ms) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 100 ? 1 : 0)} ms`);
export const fmtMiB = (kib) => `${(kib / 1024).toFixed(1)} MiB`;
export const fmtInt = (n) => n.toLocaleString('en-US');

/**
 * Runs a warm-up, then `runs` measured rounds; each round runs every contender once, in a
 * rotating order so drift (caches, the other core) does not always favour the same one.
 */
export async function rounds({ runs, warmup = 1, contenders, onRound }) {
  const samples = Object.fromEntries(contenders.map((c) => [c.key, []]));
  const extras = Object.fromEntries(contenders.map((c) => [c.key, []]));
  for (let i = -warmup; i < runs; i++) {
    const order = contenders.map((_, j) => contenders[(j + Math.max(i, 0)) % contenders.length]);
    for (const c of order) {
      const r = await c.run(i);
      if (i >= 0) {
        samples[c.key].push(r.value);
        extras[c.key].push(r);
      }
    }
    onRound?.(i);
  }
  return { samples, extras };
}
