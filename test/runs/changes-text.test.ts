import { describe, expect, it } from 'vitest';
import { changesText } from '../../src/commands/runs.js';

describe('runs show: what each change did, for a person', () => {
  it('only the columns that differ, before → after', () => {
    const before = { status: 'running', error: null, updated_at: '2026-12-07T10:00:00+00:00' };
    const after = { status: 'failed', error: 'reaped after 10m in running state', updated_at: '2026-12-07T10:00:00+00:00' };
    expect(changesText(before, after)).toBe('status: running → failed; error: null → reaped after 10m in running state');
  });
  it("one level into a nested object (an adopt's tags): keys added, changed and removed", () => {
    expect(changesText({ tags: { team: 'a', old: 'x' } }, { tags: { team: 'b', owner: 'opsctl' } })).toBe('tags.team: a → b; tags.old: x → (none); tags.owner: (none) → opsctl');
  });
  it('a purge (the whole row, nothing after) and a create', () => {
    expect(changesText({ id: 1, kind: 'x' }, null)).toBe('deleted (the whole row is its before-image)');
    expect(changesText(null, { tags: {} })).toBe('created');
    expect(changesText(undefined, undefined)).toBe('');
  });
});
