import { describe, expect, it } from 'vitest';
import { tmpdir } from 'node:os';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

describe('config: zod only when a layer needs it', () => {
  it('the environment layer alone (what a database command starts with) is checked without loading zod; a value it does not pass gets zod\'s sentence', async () => {
    const zod = await import('../src/config/zod.js');
    const { loadConfig } = await import('../src/config/config.js');
    const { config } = loadConfig({
      env: { DATABASE_URL: 'postgres://u@localhost/db', OPSCTL_STATEMENT_TIMEOUT: '10m', OPSCTL_LOCK_TIMEOUT: '2s', OPSCTL_ACTOR: 'alice' },
      cwd: tmpdir(),
      checkThresholds: { 'executions.stuck': 1 },
    });
    expect(config.database).toMatchObject({ url: 'postgres://u@localhost/db', statementTimeout: '10m', lockTimeout: '2s' });
    expect(config.actor).toBe('alice');
    expect(zod.z).toBeUndefined();
    // A file that sets only the audit table: no zod either.
    const dir = mkdtempSync(join(tmpdir(), 'opsctl-zod-'));
    writeFileSync(join(dir, 'opsctl.config.json'), JSON.stringify({ audit: { table: 'audit_log' } }));
    expect(loadConfig({ env: {}, cwd: dir }).config.audit).toEqual({ table: 'audit_log', schema: null });
    expect(zod.z).toBeUndefined();
    writeFileSync(join(dir, 'opsctl.config.json'), JSON.stringify({ audit: { table: '' } }));
    expect(() => loadConfig({ env: {}, cwd: dir })).toThrow(/audit\.table: must be a non-empty name/);
    // The hand check only ever accepts: anything else is zod's to refuse, with its sentence.
    expect(() => loadConfig({ env: { OPSCTL_LOCK_TIMEOUT: 'soon' }, cwd: tmpdir() })).toThrow(/environment: database\.lockTimeout: "soon" is not a duration/);
    expect(() => loadConfig({ env: { OPSCTL_ACTOR: 'a\nb' }, cwd: tmpdir() })).toThrow(/environment: actor: must not contain control characters/);
    expect(zod.z).toBeDefined();
    rmSync(dir, { recursive: true, force: true });
  });
});
