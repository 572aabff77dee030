import type { RemediationReport } from '../engine/remediation.js';
import type { PlannedItem } from '../engine/remediation.js';
import { ExitCode } from '../errors.js';

/** At most this many missing ids are named in the note; the summary has the count. */
const SHOWN = 20;

/** "1 named id does not exist: 999" / "2 named ids do not exist: 998, 999". */
export function missingIdsNote(missing: string[]): string[] {
  const n = missing.length;
  if (n === 0) return [];
  const list = missing.slice(0, SHOWN).join(', ') + (n > SHOWN ? `, … (${n - SHOWN} more)` : '');
  return [`${n} named ${n === 1 ? 'id does' : 'ids do'} not exist: ${list} (exit 1).`];
}

/**
 * A named id that does not exist is a finding (exit 1), as a named schedule group is for
 * adopt: a script that retries "these ids" must learn that some were never there.
 */
export function failOnMissing<P extends PlannedItem>(missing: string[]): (report: RemediationReport<P>) => void {
  return (report) => {
    if (missing.length && report.exitCode === ExitCode.OK) report.exitCode = ExitCode.FINDINGS;
  };
}
