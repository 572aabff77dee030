import type { ScheduleGroupsConfig } from '../config/config.js';
import type { Database } from '../database/database.js';

/**
 * The schedule groups that must exist: the config list, or the rows of
 * scheduleGroups.expectedQuery (first column, read-only); null when neither is set.
 */
export async function expectedGroupNames(sg: ScheduleGroupsConfig, withDatabase: <T>(fn: (db: Database) => Promise<T>) => Promise<T>): Promise<string[] | null> {
  if (sg.expected) return sg.expected;
  if (!sg.expectedQuery) return null;
  return withDatabase((db) =>
    db.readOnly(async (ro) => {
      const rows = await ro.query<Record<string, unknown>>(sg.expectedQuery as string);
      return rows.map((r) => String(Object.values(r)[0])).filter(Boolean);
    }),
  );
}
