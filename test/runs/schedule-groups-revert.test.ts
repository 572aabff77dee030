import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SchedulerEmulator } from '../../src/emulator/scheduler-emulator.js';
import { cli } from '../support/cli.js';
import { awsEnv, emulator, owner, sgConfig } from '../support/aws.js';
import { freshDatabase } from '../support/db.js';

// Issue #28: adopt and reconcile record each group's tag set before and after; revert puts the
// tag set back exactly, only while the group still holds the run's after-image.

let emu: SchedulerEmulator;
beforeEach(async () => {
  emu = await emulator();
});
afterEach(async () => {
  await emu.close();
});
const tagsOf = (name: string) => emu.groups().find((g) => g.name === name)?.tags;

for (const audited of [false, true]) {
  describe(`adopt / reconcile → revert in the emulator (${audited ? 'audit table' : 'journal only'})`, () => {
    it('restores each tag set exactly (keys added removed, values put back); a group changed since is left alone; a created group is not deleted', async () => {
      const db = audited ? await freshDatabase('sgrevert') : null;
      try {
        emu.seedGroup('u1', { env: 'prod' });
        emu.seedGroup('u2', { env: 'dev', team: 'mine' });
        emu.seedGroup('d1', { ...owner('d1'), team: 'old', keep: 'me' });
        const state = mkdtempSync(join(tmpdir(), 'opsctl-state-'));
        const env = awsEnv(emu, { OPSCTL_STATE_DIR: state, ...(db ? { DATABASE_URL: db.url } : {}) });
        const cfg = sgConfig({ expected: ['newbie'] }, { actor: 'alice', ...(db ? { audit: { table: 'audit_log', schema: null }, database: { url: db.url } } : {}) });
        const run = async (args: string[]) => {
          const r = await cli(['--config', cfg, ...args, '-o', 'json'], env);
          expect(r.stderr, args.join(' ')).toBe('');
          expect(r.code, args.join(' ')).toBe(0);
          return r.json();
        };
        const adopt = await run(['adopt', 'schedule-group', '--all-unowned', '--apply', '--reason', 'INC-1']);
        expect(adopt.summary.adopted).toBe(2);
        const reconcile = await run(['schedule-groups', 'reconcile', '--create-missing', '--apply']);
        expect(reconcile.summary).toMatchObject({ reconciled: 1, created: 1 });
        expect(tagsOf('d1')).toEqual({ ...owner('d1'), team: 'payments', keep: 'me' });
        if (!db) {
          const lines = readFileSync(join(state, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
          const u1 = lines.find((l) => l.resourceId === 'u1');
          expect(u1.metadata.before).toEqual({ tags: { env: 'prod' } });
          expect(u1.metadata.after.tags).toMatchObject({ env: 'prod', ...owner('u1') });
          expect(u1.target).toMatchObject({ kind: 'aws', region: expect.any(String) });
        }

        // runs: both, newest first.
        const runs = await run(['runs']);
        expect(runs.items.map((r: any) => r.runId).slice(0, 2)).toEqual([reconcile.summary.runId, adopt.summary.runId]);
        expect(runs.items[1]).toMatchObject({ reason: 'INC-1', actor: 'alice' });

        // Someone retags u2 after the adopt: left alone.
        emu.seedGroup('u2', { ...(tagsOf('u2') as Record<string, string>), extra: 'x' });
        const undoAdopt = await run(['revert', adopt.summary.runId, '--apply', '--yes']);
        expect(undoAdopt.summary).toMatchObject({ reverted: 1, 'changed-since': 1 });
        expect(tagsOf('u1')).toEqual({ env: 'prod' });
        expect(tagsOf('u2')).toMatchObject({ extra: 'x' });

        const undoReconcile = await run(['revert', reconcile.summary.runId, '--apply', '--yes']);
        expect(undoReconcile.summary).toMatchObject({ reverted: 1, refused: 1 });
        expect(undoReconcile.items.find((i: any) => i.name === 'newbie').detail).toMatch(/created by the run/);
        expect(tagsOf('d1')).toEqual({ ...owner('d1'), team: 'old', keep: 'me' });
        expect(tagsOf('newbie')).toBeDefined();

        // Twice: nothing more changes.
        const again = await run(['revert', adopt.summary.runId, '--apply', '--yes']);
        expect(again.summary.reverted).toBe(0);
        expect(tagsOf('u1')).toEqual({ env: 'prod' });
        // The revert's own revert re-adopts u1.
        const redo = await run(['revert', undoAdopt.summary.runId, '--apply', '--yes']);
        expect(redo.summary.reverted).toBe(1);
        expect(tagsOf('u1')).toMatchObject(owner('u1'));
      } finally {
        await db?.drop();
      }
    });
  });
}
