import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { cli } from '../support/cli.js';

const read = (f: string) => readFileSync(new URL(`../../examples/${f}`, import.meta.url), 'utf8');

/** Every `npx opsctl …` invocation in shell text, as argv (stops at ; | > & and line ends). */
function opsctlInvocations(text: string): string[][] {
  const out: string[][] = [];
  for (const m of text.matchAll(/npx opsctl((?:[ \t]+[^\s;|>&]+)+)/g)) out.push(m[1].trim().split(/[ \t]+/).map((w) => w.replace(/^["']|["']$/g, '')));
  return out;
}

/** The shell text of the examples: workflow `run` steps and container command + args. */
function exampleCommands(): string {
  const wf = parseAllDocuments(read('github-actions-opsctl-check.yml'))[0].toJS();
  const runs = wf.jobs.check.steps.map((s: any) => s.run ?? '').join('\n');
  const k8s = parseAllDocuments(read('kubernetes-cronjob.yaml')).map((d) => d.toJS());
  const containers = k8s.flatMap((j: any) => j.spec.jobTemplate.spec.template.spec.containers);
  const cmds = containers.map((c: any) => [...(c.command ?? []), ...(c.args ?? [])].join(' ')).join('\n');
  return `${runs}\n${cmds}`;
}

/** The command path of an invocation: the words before the first flag. */
const commandPath = (argv: string[]) => argv.slice(0, argv.findIndex((w) => w.startsWith('-')) === -1 ? argv.length : argv.findIndex((w) => w.startsWith('-')));

describe('examples', () => {
  it('the GitHub Actions workflow parses and is scheduled', () => {
    const docs = parseAllDocuments(read('github-actions-opsctl-check.yml'));
    expect(docs).toHaveLength(1);
    expect(docs[0].errors).toEqual([]);
    const wf = docs[0].toJS();
    expect(wf.on.schedule[0].cron).toMatch(/^\S+ \S+ \S+ \S+ \S+$/);
    expect(wf.jobs.check.steps.some((s: any) => /opsctl check/.test(s.run ?? ''))).toBe(true);
  });

  it('the Kubernetes CronJobs parse and are valid batch/v1 CronJobs', () => {
    const docs = parseAllDocuments(read('kubernetes-cronjob.yaml'));
    expect(docs.length).toBe(2);
    for (const d of docs) {
      expect(d.errors).toEqual([]);
      const job = d.toJS();
      expect(job).toMatchObject({ apiVersion: 'batch/v1', kind: 'CronJob' });
      expect(job.spec.schedule).toMatch(/^\S+ \S+ \S+ \S+ \S+$/);
      expect(job.spec.jobTemplate.spec.template.spec.containers[0].image).toMatch(/^node:20/);
    }
  });

  it('every opsctl command in the examples exists and accepts its flags', async () => {
    const calls = opsctlInvocations(exampleCommands());
    expect(calls.length).toBeGreaterThanOrEqual(4);
    for (const argv of calls) {
      const help = await cli([...commandPath(argv), '--help']);
      expect(help.code, argv.join(' ')).toBe(0);
      for (const flag of argv.filter((w) => w.startsWith('--') || /^-[a-z]$/.test(w))) {
        expect(help.stdout, `${argv.join(' ')}: ${flag}`).toContain(flag);
      }
    }
  });
});

describe('README and docs/configuration.md', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const configDoc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');

  it('the complete example config is valid for opsctl', async () => {
    const { validateConfig, defaultConfig } = await import('../../src/config/config.js');
    const section = configDoc.slice(configDoc.indexOf('## A complete example'));
    const json = /```json\n([\s\S]*?)\n```/.exec(section)![1];
    const example = JSON.parse(json);
    // Every top-level section is shown, and the merged result validates.
    for (const key of Object.keys(defaultConfig()).filter((k) => k !== 'actor')) expect(Object.keys(example)).toContain(key);
    const merged = { ...defaultConfig(), ...Object.fromEntries(Object.entries(example).map(([k, v]) => [k, typeof v === 'object' && v ? { ...(defaultConfig() as any)[k], ...v } : v])) };
    expect(() => validateConfig(merged, 'docs/configuration.md')).not.toThrow();
  });

  it('the first screen gives the demo and the test command', () => {
    const firstScreen = readme.split('\n').slice(0, 15).join('\n');
    expect(firstScreen).toContain('npm install && npx opsctl demo');
    expect(firstScreen).toContain('npm test');
  });

  it('documents every config key the code accepts', async () => {
    const { defaultConfig } = await import('../../src/config/config.js');
    const keys: string[] = [];
    const walk = (o: Record<string, unknown>, path: string[]) => {
      for (const [k, v] of Object.entries(o)) {
        const here = [...path, k];
        if (v && typeof v === 'object' && !Array.isArray(v) && !['ownerTags', 'desiredTags', 'columns', 'thresholds'].includes(k)) walk(v as Record<string, unknown>, here);
        else keys.push(here.join('.'));
      }
    };
    walk(defaultConfig() as unknown as Record<string, unknown>, []);
    // The keys of each problem family are documented on its own page.
    const { readdirSync } = await import('node:fs');
    const docs = readdirSync(new URL('../../docs/', import.meta.url)).filter((f) => f.endsWith('.md'));
    const all = docs.map((f) => readFileSync(new URL(`../../docs/${f}`, import.meta.url), 'utf8')).join('\n');
    for (const k of keys) expect(all, k).toContain(`\`${k}`);
  });
});
