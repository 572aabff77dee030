import { createRequire } from 'node:module';

let req: NodeJS.Require | undefined;

/**
 * A CommonJS dependency (pg, pg-copy-streams) required directly, on first use. `import()` of
 * one goes through Node's ESM loader (its resolver, then a scan of the CommonJS source for
 * named exports to build the wrapper module): ~15–20 ms of CPU a listing spent before its first
 * row, for the same `module.exports` object.
 */
export function requirePackage<T>(name: string): T {
  req ??= createRequire(import.meta.url);
  return req(name) as T;
}
