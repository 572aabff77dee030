import type { Reporter, TestModule, Vitest } from 'vitest/node';

/**
 * Prints one table at the end of the run: every scenario of test/reliability (the test's
 * full name), its outcome and duration. Registered beside the default reporter, so the
 * ordinary output is unchanged; it adds only this summary.
 */
export default class ScenarioReporter implements Reporter {
  private vitest?: Vitest;

  onInit(vitest: Vitest): void {
    this.vitest = vitest;
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const rows: Array<{ scenario: string; outcome: string; ms: number }> = [];
    const under = /(^|[\\/])test[\\/]reliability[\\/]/;
    const multi = new Set(testModules.map((m) => m.project.name)).size > 1;
    for (const mod of testModules) {
      if (!under.test(mod.moduleId)) continue;
      // With more than one project (one per PostgreSQL major), each scenario says which.
      const project = multi ? `[${mod.project.name}] ` : '';
      const file = project + mod.moduleId.replace(/^.*[\\/]test[\\/]reliability[\\/]/, '').replace(/\.test\.ts$/, '');
      for (const t of mod.children.allTests()) {
        const state = t.result().state;
        rows.push({
          scenario: `${file} › ${t.fullName.replace(/ > /g, ' › ')}`,
          outcome: state === 'pending' ? 'not run' : state,
          ms: t.diagnostic()?.duration ?? 0,
        });
      }
    }
    if (rows.length === 0) return;
    const log = (s: string) => (this.vitest ? this.vitest.logger.log(s) : process.stdout.write(`${s}\n`));
    const maxScenario = 110;
    const cut = (s: string) => (s.length > maxScenario ? `${s.slice(0, maxScenario - 1)}…` : s);
    const dur = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms)}ms`);
    const cells = rows.map((r) => [cut(r.scenario), r.outcome, dur(r.ms)]);
    const head = ['scenario', 'outcome', 'duration'];
    const width = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
    const line = (c: string[]) => `│ ${c.map((x, i) => (i === 2 ? x.padStart(width[i]) : x.padEnd(width[i]))).join(' │ ')} │`;
    const rule = (l: string, m: string, r: string) => `${l}${width.map((w) => '─'.repeat(w + 2)).join(m)}${r}`;
    const passed = rows.filter((r) => r.outcome === 'passed').length;
    const failed = rows.filter((r) => r.outcome === 'failed').length;
    log('');
    log('Reliability scenarios (test/reliability)');
    log(rule('┌', '┬', '┐'));
    log(line(head));
    log(rule('├', '┼', '┤'));
    for (const c of cells) log(line(c));
    log(rule('└', '┴', '┘'));
    log(`scenarios: ${rows.length}  passed: ${passed}  failed: ${failed}  other: ${rows.length - passed - failed}`);
  }
}
