import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN } from './cli.js';
// @ts-expect-error a plain .mjs (it also runs as the docker shim itself)
import { parseDockerRun as parse } from './docker-run-shim.mjs';

export interface DockerRun {
  rm: boolean;
  env: string[];
  volumes: string[];
  workdir?: string;
  image: string;
  args: string[];
}
export const parseDockerRun = parse as (argv: string[]) => DockerRun;

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
/** The image every example names: the placeholder registry, tagged with the package's version. */
export const EXAMPLE_IMAGE = `ghcr.io/OWNER/opsctl:${pkg.version}`;

/**
 * A directory for the front of PATH, in which the examples' commands run as they would with the
 * image: `opsctl` (the image's entrypoint, on its PATH) is the built CLI, and `docker run` of the
 * example image runs the built CLI with that command's -e variables, -v mounts and -w directory.
 */
export function imageShims(under: string = tmpdir()): { path: string; env: NodeJS.ProcessEnv } {
  const dir = mkdtempSync(join(under, 'opsctl-shims-'));
  const state = join(dir, 'state');
  mkdirSync(state);
  writeFileSync(join(dir, 'opsctl'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`, { mode: 0o755 });
  const shim = fileURLToPath(new URL('./docker-run-shim.mjs', import.meta.url));
  writeFileSync(join(dir, 'docker'), `#!/bin/sh\nexec "${process.execPath}" "${shim}" "$@"\n`, { mode: 0o755 });
  const image = `^${EXAMPLE_IMAGE.replace(/[.]/g, '\\.')}$`;
  return { path: dir, env: { PATH: `${dir}:${process.env.PATH}`, OPSCTL_SHIM_BIN: BIN, OPSCTL_SHIM_IMAGE: image, OPSCTL_SHIM_STATE: state } };
}
