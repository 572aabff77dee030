// Prints the closing line CI recognises, from vitest's JSON reporter (honest counts, not guesses).
import { readFileSync, existsSync } from 'node:fs';

const file = process.argv[2];
if (!file || !existsSync(file)) {
  console.log('0 passed, 1 failed');
  console.error(`no vitest results at ${file}: the test run did not finish`);
  process.exit(1);
}
const r = JSON.parse(readFileSync(file, 'utf8'));
const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ''}`);
// Fail on failures even if the runner's own exit code said otherwise.
if (r.numTotalTests === 0 || r.numFailedTests > 0 || r.success === false) process.exit(1);
