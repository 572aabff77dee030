import { parseDockerRun, type DockerRun } from './image-shims.js';

/** Shell words, quotes stripped (enough for the examples: no nested quoting). */
const words = (s: string) => s.trim().split(/[ \t]+/).filter(Boolean).map((w) => w.replace(/^["']|["']$/g, ''));

/** Shell text without its comments (a # at a line's start or after a blank, to the line's end). */
const uncommented = (text: string) => text.replace(/(^|[ \t])#.*$/gm, '$1');

/**
 * Every `opsctl …` command in shell text, as argv (stops at ; | > & } and line ends): `opsctl` as a
 * command word, not inside a path or an image name (ghcr.io/OWNER/opsctl:…).
 */
export function opsctlInvocations(text: string): string[][] {
  const out: string[][] = [];
  for (const m of uncommented(text).matchAll(/(?<![\w./:$-])opsctl((?:[ \t]+[^\s;|>&}]+)+)/g)) out.push(words(m[1]));
  return out;
}

/** Every `docker run …` in shell text (stops at ; | > & } and line ends). */
export function dockerRuns(text: string): DockerRun[] {
  return [...uncommented(text).matchAll(/(?<![\w./-])docker((?:[ \t]+[^\s;|>&}]+)+)/g)].map((m) => parseDockerRun(words(m[1])));
}

/**
 * The opsctl invocations of a Kubernetes container of the image, whose entrypoint is opsctl: its
 * `args` when it keeps the entrypoint, else the opsctl commands of its `/bin/sh -c` script.
 */
export function containerInvocations(c: { command?: string[]; args?: string[] }): string[][] {
  if (!c.command) return [c.args ?? []];
  if (c.command.join(' ') !== '/bin/sh -c') throw new Error(`unexpected container command ${c.command.join(' ')}`);
  return opsctlInvocations((c.args ?? []).join('\n'));
}

/** The command path of an invocation: the words before the first flag. */
export const commandPath = (argv: string[]) => {
  const i = argv.findIndex((w) => w.startsWith('-'));
  return argv.slice(0, i === -1 ? argv.length : i);
};
