import { loadZod, z } from '../config/zod.js';
import type { z as Z } from 'zod';

/**
 * The shape of one `targets.NAME` entry in the config. Kept apart from src/targets.ts (which
 * resolves and selects targets and needs src/config.ts) so that config.ts can import it
 * without an import cycle.
 */

/**
 * A schema built on first use, then kept: importing the config builds none of zod's schemas,
 * and a command builds only those it validates (src/config.ts, validateLayer).
 */
export function lazy<T>(build: () => T): () => T {
  let built: T | undefined;
  return () => {
    if (built === undefined) {
      // The schema's builder uses zod: required here, on first use (config/zod.ts).
      loadZod();
      built = build();
    }
    return built;
  };
}

/** Target names end up in globs, shell variables and Prometheus labels: keep them plain. */
export const TARGET_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

const envName = lazy(() =>
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name'),
);

/** Where a password may come from: never the config file itself. */
const PASSWORD_RULE = 'a password in the config file is not allowed: use passwordEnv (an environment variable) or passwordFile';

const urlWithoutPassword = lazy(() =>
  z.string().superRefine((v, ctx) => {
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be a postgres:// URL' });
      return;
    }
    if (!/^postgres(ql)?:$/.test(u.protocol)) ctx.addIssue({ code: 'custom', message: 'must be a postgres:// URL' });
    if (u.password) ctx.addIssue({ code: 'custom', message: `${PASSWORD_RULE} (or the whole URL from urlEnv)` });
    for (const k of u.searchParams.keys()) if (/pass/i.test(k)) ctx.addIssue({ code: 'custom', message: PASSWORD_RULE });
  }),
);

export const targetDatabaseSchema = lazy(() =>
  z
    .object({
      /** A URL without a password. */
      url: urlWithoutPassword().optional(),
      /** The whole URL (password included) from this environment variable. */
      urlEnv: envName().optional(),
      host: z.string().min(1).optional(),
      port: z.number().int().min(1).max(65535).optional(),
      user: z.string().min(1).optional(),
      dbname: z.string().min(1).optional(),
      sslmode: z.enum(['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']).optional(),
      passwordEnv: envName().optional(),
      /** A file holding the password (a mounted Kubernetes secret); one trailing newline is ignored. */
      passwordFile: z.string().min(1).optional(),
      /** Accepted by the schema only to refuse it with a clear sentence. */
      password: z.unknown().optional(),
    })
    .strict()
    .superRefine((d, ctx) => {
      if (d.password !== undefined) ctx.addIssue({ code: 'custom', path: ['password'], message: PASSWORD_RULE });
      const fields = d.host !== undefined || d.port !== undefined || d.user !== undefined || d.dbname !== undefined || d.sslmode !== undefined;
      const ways = [d.url !== undefined, d.urlEnv !== undefined, fields].filter(Boolean).length;
      if (ways !== 1) ctx.addIssue({ code: 'custom', message: 'give exactly one of url, urlEnv, or the fields host/port/user/dbname/sslmode' });
      if (d.urlEnv !== undefined && (d.passwordEnv !== undefined || d.passwordFile !== undefined))
        ctx.addIssue({ code: 'custom', message: 'urlEnv carries its own password: drop passwordEnv/passwordFile' });
      if (d.passwordEnv !== undefined && d.passwordFile !== undefined) ctx.addIssue({ code: 'custom', message: 'give passwordEnv or passwordFile, not both' });
    }),
);

const region = lazy(() =>
  z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'must be an AWS region name (like us-east-1)'),
);

export const targetAwsSchema = lazy(() =>
  z
    .object({
      /** A profile of ~/.aws/config (it may assume a role: role_arn + source_profile). */
      profile: z.string().min(1).optional(),
      /** Every schedule-group check runs once per region. */
      regions: z.array(region()).min(1),
      /** Per-region endpoint (VPC interface endpoints, an emulator); default: the region's own. */
      endpoints: z.record(region(), z.string().url()).optional(),
    })
    .strict(),
);

export const targetSchema = lazy(() =>
  z
    .object({
      database: targetDatabaseSchema().optional(),
      aws: targetAwsSchema().optional(),
      /** Any config section, deep-merged over the top-level config for this target only. */
      overrides: z.record(z.string(), z.unknown()).optional(),
    })
    .strict()
    .superRefine((t, ctx) => {
      if (!t.database && !t.aws) ctx.addIssue({ code: 'custom', message: 'a target needs a database, an aws section, or both' });
      const o = t.overrides ?? {};
      if ('targets' in o) ctx.addIssue({ code: 'custom', path: ['overrides', 'targets'], message: 'targets cannot be nested' });
      const db = o.database as Record<string, unknown> | undefined;
      if (db && typeof db === 'object' && 'url' in db)
        ctx.addIssue({ code: 'custom', path: ['overrides', 'database', 'url'], message: "set the target's connection in targets.NAME.database, not in overrides" });
    }),
);

export const targetsSchema = lazy(() =>
  z.record(z.string().regex(TARGET_NAME, 'target names are letters, digits, "_", "." and "-" (at most 63)'), targetSchema()),
);

export type TargetEntry = Z.infer<ReturnType<typeof targetSchema>>;
export type TargetDatabase = Z.infer<ReturnType<typeof targetDatabaseSchema>>;
export type TargetAws = Z.infer<ReturnType<typeof targetAwsSchema>>;
