import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { cli } from '../support/cli.js';
import { commandPath, containerInvocations, dockerRuns, opsctlInvocations } from '../support/examples.js';
import { EXAMPLE_IMAGE } from '../support/image-shims.js';
import { envOf, readDockerfile } from '../support/dockerfile.js';

const read = (f: string) => readFileSync(new URL(`../../examples/${f}`, import.meta.url), 'utf8');

/** The opsctl invocations of the examples: the image's container args, the workflow's `run` steps. */
function exampleInvocations(): string[][] {
  const wf = parseAllDocuments(read('github-actions-opsctl-check.yml'))[0].toJS();
  const runs = wf.jobs.check.steps.map((s: any) => s.run ?? '').join('\n');
  return [...k8sContainers().flatMap((c) => containerInvocations(c)), ...opsctlInvocations(runs)];
}
const k8sContainers = (): any[] =>
  parseAllDocuments(read('kubernetes-cronjob.yaml'))
    .map((d) => d.toJS())
    .flatMap((j: any) => j.spec.jobTemplate.spec.template.spec.containers);

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
      expect(job.spec.jobTemplate.spec.template.spec.containers[0].image).toBe(EXAMPLE_IMAGE);
    }
  });

  it('every opsctl command in the examples exists and accepts its flags', async () => {
    const calls = exampleInvocations();
    expect(calls.length).toBeGreaterThanOrEqual(4);
    // The reap CronJob keeps the image's entrypoint: its args are opsctl's argv, exactly.
    expect(calls).toContainEqual(['reap', '--older-than', '2h', '--apply', '--max', '500', '--reason', 'nightly sweep', '-o', 'json']);
    for (const argv of calls) {
      const help = await cli([...commandPath(argv), '--help']);
      expect(help.code, argv.join(' ')).toBe(0);
      for (const flag of argv.filter((w) => w.startsWith('--') || /^-[a-z]$/.test(w))) {
        expect(help.stdout, `${argv.join(' ')}: ${flag}`).toContain(flag);
      }
    }
  });
});

describe('examples run the image (the Dockerfile), not a checkout', () => {
  const runtime = readDockerfile().at(-1)!;
  const [uid] = runtime.instructions.filter((i) => i.keyword === 'USER').at(-1)!.args.split(':');
  const stateDir = envOf(runtime).OPSCTL_STATE_DIR;
  const files = ['kubernetes-cronjob.yaml', 'kubernetes-fleet-indexed-job.yaml', 'github-actions-opsctl-check.yml', 'github-actions-fleet-matrix.yml'];

  it('no example uses npx, npm or a checkout of opsctl', () => {
    for (const f of files) {
      const text = read(f);
      expect(text, f).not.toMatch(/\bnpx\b|\bnpm (ci|install|run)\b|setup-node|persistentVolumeClaim|workingDir|repository: your-org\/opsctl/);
    }
  });

  it('every Kubernetes pod runs the image as its non-root user, read-only, with emptyDirs for the state directory and /tmp, secrets from env or secret volumes', () => {
    for (const f of ['kubernetes-cronjob.yaml', 'kubernetes-fleet-indexed-job.yaml']) {
      for (const job of parseAllDocuments(read(f)).map((d) => d.toJS())) {
        const pod = job.spec.jobTemplate.spec.template.spec;
        expect(pod.securityContext, f).toMatchObject({ runAsNonRoot: true, runAsUser: Number(uid) });
        const emptyDirs = pod.volumes.filter((v: any) => v.emptyDir).map((v: any) => v.name);
        for (const c of pod.containers) {
          expect(c.image, f).toBe(EXAMPLE_IMAGE);
          expect(c.securityContext, f).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
          const at = (path: string) => c.volumeMounts.find((m: any) => m.mountPath === path)?.name;
          expect(emptyDirs, `${f}: ${stateDir}`).toContain(at(stateDir));
          expect(emptyDirs, `${f}: /tmp`).toContain(at('/tmp'));
          for (const e of c.env ?? []) {
            if (/DATABASE_URL|PASSWORD|SECRET|TOKEN/.test(e.name)) expect(e.valueFrom?.secretKeyRef, `${f}: ${e.name}`).toBeDefined();
          }
        }
      }
    }
  });

  it('the check workflow runs opsctl with docker run of the example image, passing every variable the step sets', () => {
    const wf = parseAllDocuments(read('github-actions-opsctl-check.yml'))[0].toJS();
    expect(wf.jobs.check.env.OPSCTL_IMAGE).toBe(EXAMPLE_IMAGE);
    expect(wf.permissions.packages).toBe('read');
    const step = wf.jobs.check.steps.find((s: any) => /opsctl check/.test(s.run ?? ''));
    const runs = dockerRuns(step.run);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ rm: true, image: '$OPSCTL_IMAGE', args: ['$@'] });
    const passed = runs[0].env.map((e) => e.split('=')[0]);
    for (const name of [...Object.keys(step.env), 'AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']) expect(passed, name).toContain(name);
    // The config is read from the workspace: the working directory is a mounted volume.
    expect(runs[0].volumes.some((v) => v.split(':')[1] === runs[0].workdir)).toBe(true);
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
