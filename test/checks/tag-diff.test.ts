import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { adoptChanges, applyChanges, classify, reconcileChanges, isIgnored, type OwnershipConfig } from '../../src/checks/tag-diff.js';

const cfg: OwnershipConfig = {
  ownerTags: { 'alchemy::stack': 'billing', 'alchemy::stage': 'prod', 'alchemy::id': '{name}' },
  ownerKeyPrefix: 'alchemy::',
  desiredTags: { team: 'payments', cost: 'cc-42' },
  ignore: ['tmp-*'],
};
const opts = { nowMs: Date.parse('2026-11-25T12:00:00Z'), deletingThresholdMs: 3_600_000 };
const ours = (name: string) => ({ 'alchemy::stack': 'billing', 'alchemy::stage': 'prod', 'alchemy::id': name, team: 'payments', cost: 'cc-42' });
const active = (name: string) => ({ name, state: 'ACTIVE' });

describe('classify', () => {
  it.each([
    ['owned', ours('g'), 'owned'],
    ['unowned: no tags', {}, 'unowned'],
    ['unowned: only user tags', { team: 'x', env: 'prod' }, 'unowned'],
    ['foreign: another stack', { ...ours('g'), 'alchemy::stack': 'other' }, 'foreign'],
    ['foreign: another id', { ...ours('g'), 'alchemy::id': 'other' }, 'foreign'],
    ['foreign: only unknown owner-prefix keys', { 'alchemy::tenant': 'x' }, 'foreign'],
    ['drifted: desired tag missing', { ...ours('g'), cost: undefined as unknown as string }, 'drifted'],
    ['drifted: desired tag different', { ...ours('g'), team: 'other' }, 'drifted'],
    ['drifted: stale owner-prefix key', { ...ours('g'), 'alchemy::old': 'x' }, 'drifted'],
    ['partial: one owner tag present, the others absent, none conflicting', { 'alchemy::stack': 'billing', team: 'payments', cost: 'cc-42' }, 'partial'],
    ['partial: two of three owner tags', { 'alchemy::stack': 'billing', 'alchemy::stage': 'prod', team: 'payments', cost: 'cc-42' }, 'partial'],
  ])('%s', (_label, tags, expected) => {
    const clean = Object.fromEntries(Object.entries(tags).filter(([, v]) => v !== undefined));
    expect(classify(cfg, active('g'), clean, opts).class).toBe(expected);
  });

  it('default and ignore patterns are ignored; DELETING is its own class whatever the tags, ownership kept', () => {
    expect(classify(cfg, active('default'), {}, opts).class).toBe('ignored');
    expect(classify(cfg, active('tmp-123'), {}, opts).class).toBe('ignored');
    expect(isIgnored(cfg, 'tmpx')).toBe(false);
    const old = { name: 'g', state: 'DELETING', lastModificationDate: new Date(opts.nowMs - 2 * 3_600_000) };
    const recent = { name: 'g', state: 'DELETING', lastModificationDate: new Date(opts.nowMs - 60_000) };
    expect(classify(cfg, old, ours('g'), opts)).toMatchObject({ class: 'deleting', ownership: 'owned', changes: [] });
    expect(classify(cfg, old, ours('g'), opts).reasons).toContain('longer than scheduleGroups.deletingThreshold');
    expect(classify(cfg, recent, ours('g'), opts)).toMatchObject({ class: 'deleting', ownership: 'owned' });
    expect(classify(cfg, recent, ours('g'), opts).reasons).not.toContain('longer than scheduleGroups.deletingThreshold');
    expect(classify(cfg, recent, { 'alchemy::stack': 'other' }, opts)).toMatchObject({ class: 'deleting', ownership: 'foreign' });
  });
});

const key = fc.stringMatching(/^[a-z:]{1,12}$/);
const value = fc.stringMatching(/^[a-z0-9]{1,8}$/);
const tagSet = fc.dictionary(fc.oneof(key, key.map((k) => `alchemy::${k}`), fc.constantFrom('alchemy::stack', 'alchemy::stage', 'alchemy::id', 'team')), value);

describe('tag diffing (properties)', () => {
  it('reconcile never removes a key outside the owner prefix, and converges in one step', () => {
    fc.assert(
      fc.property(tagSet, (tags) => {
        const changes = reconcileChanges(cfg, 'g', tags);
        for (const c of changes) if (c.to === null) expect(c.key.startsWith('alchemy::')).toBe(true);
        const after = applyChanges(tags, changes);
        for (const [k, v] of Object.entries(tags)) if (!k.startsWith('alchemy::') && !(k in cfg.desiredTags)) expect(after[k]).toBe(v);
        expect(reconcileChanges(cfg, 'g', after)).toEqual([]);
        expect(classify(cfg, active('g'), after, opts).class).toBe('owned');
      }),
    );
  });

  it('adopt never removes anything and leaves the group owned', () => {
    fc.assert(
      fc.property(tagSet, (tags) => {
        const changes = adoptChanges(cfg, 'g', tags);
        expect(changes.every((c) => c.to !== null)).toBe(true);
        const after = applyChanges(tags, changes);
        for (const k of Object.keys(tags)) expect(k in after).toBe(true);
        expect(['owned', 'drifted']).toContain(classify(cfg, active('g'), after, opts).class);
        expect(adoptChanges(cfg, 'g', after)).toEqual([]);
      }),
    );
  });
});
