#!/usr/bin/env node
// A stand-in for `docker run IMAGE ARGS` in the examples' tests (no Docker engine there): runs
// the built opsctl (OPSCTL_SHIM_BIN) with ARGS, as the image's `opsctl` entrypoint would, with
// only the variables the command passes with -e, in its -w directory mapped through its -v
// mounts. An image other than OPSCTL_SHIM_IMAGE (a regular expression) or an option it does not
// know is refused, exit 125 like docker.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** `docker run` argv (after `docker`): its options, image and the container's arguments. */
export function parseDockerRun(argv) {
  if (argv[0] !== 'run') throw new Error(`docker ${argv[0] ?? ''}: only docker run is emulated`);
  const out = { rm: false, env: [], volumes: [], workdir: undefined, image: '', args: [] };
  let i = 1;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--rm') out.rm = true;
    else if (a === '-e' || a === '--env') out.env.push(argv[++i]);
    else if (a === '-v' || a === '--volume') out.volumes.push(argv[++i]);
    else if (a === '-w' || a === '--workdir') out.workdir = argv[++i];
    else if (a.startsWith('-')) throw new Error(`docker run ${a}: not emulated`);
    else break;
  }
  out.image = argv[i] ?? '';
  out.args = argv.slice(i + 1);
  if (!out.image) throw new Error('docker run: no image');
  return out;
}

function main() {
  let r;
  try {
    r = parseDockerRun(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`docker shim: ${e.message}\n`);
    process.exit(125);
  }
  if (!new RegExp(process.env.OPSCTL_SHIM_IMAGE).test(r.image)) {
    process.stderr.write(`docker shim: unexpected image ${r.image}\n`);
    process.exit(125);
  }
  const mounts = r.volumes.map((v) => {
    const [host, ctr] = v.split(':');
    return { host, ctr };
  });
  const toHost = (p) => {
    for (const m of mounts) if (p === m.ctr || p.startsWith(`${m.ctr}/`)) return m.host + p.slice(m.ctr.length);
    return p;
  };
  const state = process.env.OPSCTL_SHIM_STATE;
  const env = { PATH: process.env.PATH, HOME: state, OPSCTL_STATE_DIR: state, NODE_ENV: 'production' };
  for (const e of r.env) {
    const eq = e.indexOf('=');
    if (eq > 0) env[e.slice(0, eq)] = toHost(e.slice(eq + 1));
    else if (process.env[e] !== undefined) env[e] = process.env[e];
  }
  const cwd = r.workdir ? toHost(r.workdir) : state;
  if (r.workdir && cwd === r.workdir) {
    process.stderr.write(`docker shim: the working directory ${r.workdir} is not a mounted volume\n`);
    process.exit(125);
  }
  const res = spawnSync(process.execPath, [process.env.OPSCTL_SHIM_BIN, ...r.args.map(toHost)], { stdio: 'inherit', env, cwd });
  process.exit(res.status ?? 1);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
