import { createRequire } from 'node:module';
import type * as Zod from 'zod';

/**
 * zod, required on first use: a config layer that needs no schema (the environment's few
 * values, checked by hand in config.ts) never loads it. zod's CommonJS build is ~95 files,
 * 60–100 ms of a listing's start-up on a loaded machine. Every schema is built in a `lazy`
 * builder (target-config.ts), which loads it first.
 */
// eslint-disable-next-line import/no-mutable-exports
export let z: typeof Zod.z;

export function loadZod(): typeof Zod.z {
  z ??= (createRequire(import.meta.url)('zod') as typeof Zod).z;
  return z;
}
