import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { parseAllDocuments } from 'yaml';
import parsePrometheus from 'parse-prometheus-text-format';
import { cli } from '../support/cli.js';
import { EXAMPLE_IMAGE, imageShims } from '../support/image-shims.js';
import { commandPath, containerInvocations, dockerRuns, opsctlInvocations } from '../support/examples.js';
import { freshDatabase, serverPassword } from '../support/db.js';

/**
 * The fleet examples: a Kubernetes Indexed Job CronJob and a GitHub Actions matrix. Parsed,
 * every opsctl command and flag checked against the CLI, and their shell commands run as
 * written (the image's `opsctl` and `docker run` → the built CLI) for every shard: the union of the shards' reports is
 * the whole fleet, and no target is in two shards.
 */
const read = (f: string) => readFileSync(new URL(`../../examples/${f}`, import.meta.url), 'utf8');
const K8S = 'kubernetes-fleet-indexed-job.yaml';
const GHA = 'github-actions-fleet-matrix.yml';

const k8s = () => {
  const docs = parseAllDocuments(read(K8S));
  expect(docs).toHaveLength(1);
  expect(docs[0].errors).toEqual([]);
  return docs[0].toJS();
};
const gha = () => {
  const docs = parseAllDocuments(read(GHA));
  expect(docs).toHaveLength(1);
  expect(docs[0].errors).toEqual([]);
  return docs[0].toJS();
};
const shellOf = (c: any) => (c.args ?? []).join('\n');
const ghaRun = (wf: any) => wf.jobs.check.steps.map((s: any) => s.run ?? '').join('\n');
const shardCount = (text: string) => {
  const ns = [...text.matchAll(/--shard (?:\$\{\{ matrix\.shard \}\}|\S+)\/(\d+)/g)].map((m) => Number(m[1]));
  expect(ns.length).toBeGreaterThan(0);
  expect(new Set(ns).size).toBe(1);
  return ns[0];
};

/**
 * Runs shell text as written, with the image's commands on PATH (test/support/image-shims.ts):
 * `opsctl` is the built CLI, `docker run` of the example image runs it with that command's -e
 * variables only.
 */
let shims: ReturnType<typeof imageShims> | undefined;
function sh(script: string, env: NodeJS.ProcessEnv, cwd: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', script], { env: { HOME: process.env.HOME, XDG_STATE_HOME: process.env.XDG_STATE_HOME, ...env, ...shims!.env }, cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stderr }));
  });
}

describe('fleet examples: structure', () => {
  it('the Kubernetes example is a CronJob of an Indexed Job, Forbid, with --shard $JOB_COMPLETION_INDEX/N and N = completions', () => {
    const job = k8s();
    expect(job).toMatchObject({ apiVersion: 'batch/v1', kind: 'CronJob', spec: { concurrencyPolicy: 'Forbid' } });
    expect(job.spec.schedule).toMatch(/^\S+ \S+ \S+ \S+ \S+$/);
    const spec = job.spec.jobTemplate.spec;
    expect(spec.completionMode).toBe('Indexed');
    expect(spec.parallelism).toBe(spec.completions);
    const c = spec.template.spec.containers[0];
    expect(c.image).toBe(EXAMPLE_IMAGE);
    expect(shellOf(c)).toContain('--shard $JOB_COMPLETION_INDEX/');
    expect(shardCount(shellOf(c))).toBe(spec.completions);
  });

  it('the GitHub Actions example is a matrix of shards 0..N-1 with --shard ${{ matrix.shard }}/N', () => {
    const wf = gha();
    expect(wf.on.schedule[0].cron).toMatch(/^\S+ \S+ \S+ \S+ \S+$/);
    const { strategy } = wf.jobs.check;
    expect(strategy['fail-fast']).toBe(false);
    const n = shardCount(ghaRun(wf));
    expect(strategy.matrix.shard).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(ghaRun(wf)).toContain('--shard ${{ matrix.shard }}/');
  });

  it('the GitHub Actions step runs opsctl from the example image, passing it every variable the step sets', () => {
    const wf = gha();
    expect(wf.jobs.check.env.OPSCTL_IMAGE).toBe(EXAMPLE_IMAGE);
    const step = wf.jobs.check.steps.find((s: any) => /--shard/.test(s.run ?? ''));
    const runs = dockerRuns(step.run);
    expect(runs).toHaveLength(1);
    const [d] = runs;
    expect(d.rm).toBe(true);
    expect(d.image).toBe('$OPSCTL_IMAGE');
    expect(d.args).toEqual(['$@']);
    const passed = d.env.map((e) => e.split('=')[0]);
    for (const name of Object.keys(step.env)) expect(passed, name).toContain(name);
    expect(d.volumes.some((v) => v.split(':')[1] === d.workdir)).toBe(true);
  });

  it('every opsctl command in them exists and accepts its flags', async () => {
    const calls = [...containerInvocations(k8s().spec.jobTemplate.spec.template.spec.containers[0]), ...opsctlInvocations(ghaRun(gha()))];
    expect(calls.length).toBeGreaterThanOrEqual(3);
    expect(calls.every((argv) => argv[0] === 'check')).toBe(true);
    for (const argv of calls) {
      const help = await cli([...commandPath(argv), '--help']);
      expect(help.code, argv.join(' ')).toBe(0);
      const root = await cli(['--help']);
      for (const flag of argv.filter((w) => w.startsWith('--') || /^-[a-z]$/.test(w))) {
        expect(`${help.stdout}\n${root.stdout}`, `${argv.join(' ')}: ${flag}`).toContain(flag);
      }
    }
  });
});

describe('fleet examples: every shard, run as written', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let dir: string;
  const names = Array.from({ length: 13 }, (_, i) => `tenant-${String(i).padStart(2, '0')}`);
  beforeAll(async () => {
    db = await freshDatabase('fleet_ex');
    dir = mkdtempSync(join(tmpdir(), 'opsctl-fleet-ex-'));
    shims = imageShims(dir);
    const u = new URL(db.url);
    u.password = '';
    // Thirteen tenants on one real database: cheap, and enough for every shard of 4 to get some.
    const targets = Object.fromEntries(names.map((n) => [n, { database: { url: u.toString(), passwordEnv: 'BILLING_EU_PASSWORD' } }]));
    writeFileSync(join(dir, 'opsctl.fleet.json'), JSON.stringify({ targets }));
  });
  afterAll(async () => {
    await db.drop();
  });

  const env = () => ({ OPSCTL_CONFIG: join(dir, 'opsctl.fleet.json'), BILLING_EU_PASSWORD: serverPassword(), NO_COLOR: '1' });
  const assertPartition = (shards: string[][]) => {
    const all = shards.flat();
    expect(all.length).toBe(names.length); // no target in two shards
    expect([...all].sort()).toEqual(names); // and none left out
    expect(shards.filter((s) => s.length > 0).length).toBeGreaterThanOrEqual(2);
  };

  it('Kubernetes: the container command for each JOB_COMPLETION_INDEX; the textfiles together cover the fleet once', async () => {
    const job = k8s();
    const n = job.spec.jobTemplate.spec.completions;
    const out = mkdtempSync(join(tmpdir(), 'opsctl-textfile-'));
    const script = shellOf(job.spec.jobTemplate.spec.template.spec.containers[0]).replaceAll('/textfile', out);
    const runs = await Promise.all(Array.from({ length: n }, (_, i) => sh(script, { ...env(), JOB_COMPLETION_INDEX: String(i) }, dir)));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const files = readdirSync(out).sort();
    expect(files).toEqual(Array.from({ length: n }, (_, i) => `opsctl-shard-${i}.prom`));
    const shards = files.map((f) => {
      const families = parsePrometheus(readFileSync(join(out, f), 'utf8')) as Array<{ name: string; metrics: Array<{ labels?: Record<string, string>; value: string }> }>;
      const up = families.find((x) => x.name === 'opsctl_target_up')?.metrics ?? [];
      for (const m of up) expect(m.value).toBe('1');
      return up.map((m) => m.labels!.target);
    });
    assertPartition(shards);
  });

  it('GitHub Actions: the step for each matrix.shard; the json reports together cover the fleet once', async () => {
    const wf = gha();
    const step = wf.jobs.check.steps.find((s: any) => /--shard/.test(s.run ?? ''));
    const shards: string[][] = [];
    for (const shard of wf.jobs.check.strategy.matrix.shard as number[]) {
      const cwd = mkdtempSync(join(tmpdir(), `opsctl-gha-${shard}-`));
      writeFileSync(join(cwd, 'opsctl.fleet.json'), readFileSync(join(dir, 'opsctl.fleet.json')));
      const script = step.run.replaceAll('${{ matrix.shard }}', String(shard));
      const r = await sh(script, { ...env(), ...wf.jobs.check.env, OPSCTL_CONFIG: step.env.OPSCTL_CONFIG, GITHUB_STEP_SUMMARY: join(cwd, 'summary.md') }, cwd);
      expect(r.code, r.stderr).toBe(0);
      const report = JSON.parse(readFileSync(join(cwd, `opsctl-check-${shard}.json`), 'utf8'));
      expect(report.summary.shard).toBe(`${shard}/${wf.jobs.check.strategy.matrix.shard.length}`);
      expect(readFileSync(join(cwd, 'summary.md'), 'utf8')).toMatch(/^## opsctl check: /);
      shards.push(Object.keys(report.summary.byTarget));
    }
    assertPartition(shards);
  });
});
