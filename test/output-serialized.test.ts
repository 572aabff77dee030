import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { render, type CommandResult } from '../src/output/output.js';
import { Collect } from './support/collect.js';

/** A result whose items come as JSON text (as a streamed remedy's and the COPY listing's do). */
const serialized = (chunks: () => AsyncGenerator<Buffer>): CommandResult<{ id: string }> => ({
  command: 'reap',
  mode: 'apply',
  items: [],
  columns: [{ header: 'id', value: (r) => r.id }],
  ndjson: chunks,
  summary: () => ({ planned: 2 }),
});

describe('render with pre-serialized items', () => {
  for (const format of ['json', 'ndjson'] as const) {
    it(`${format}: a source that fails before its first chunk leaves nothing written (no partial document)`, async () => {
      const out = new Collect();
      let cleaned = false;
      const r = serialized(async function* () {
        try {
          throw new Error('the run failed as a whole');
        } finally {
          cleaned = true;
        }
      });
      await expect(render(r, format, { stream: out, env: {} })).rejects.toThrow('the run failed as a whole');
      expect(out.text).toBe('');
      expect(cleaned).toBe(true);
    });

    it(`${format}: chunks that end mid-line are written as whole items, then the summary`, async () => {
      const out = new Collect();
      const r = serialized(async function* () {
        yield Buffer.from('{"id":"a"}\n{"id"');
        yield Buffer.from(':"b — é"}\n');
      });
      await render(r, format, { stream: out, env: {} });
      if (format === 'json') {
        expect(out.text).toBe('{"command":"reap","mode":"apply","items":[\n{"id":"a"},\n{"id":"b — é"}\n],"summary":{"planned":2}}\n');
      } else {
        expect(out.text).toBe('{"id":"a"}\n{"id":"b — é"}\n{"type":"summary","command":"reap","mode":"apply","summary":{"planned":2}}\n');
      }
    });
  }

  it('a write that fails part-way still lets the source clean up (its lock and spool)', async () => {
    let cleaned = false;
    const broken = new Writable({
      write(_c, _e, cb) {
        cb(new Error('EPIPE'));
      },
    });
    broken.on('error', () => {});
    const r = serialized(async function* () {
      try {
        for (let i = 0; ; i++) yield Buffer.from(`{"id":"${i}"}\n`);
      } finally {
        cleaned = true;
      }
    });
    await expect(render(r, 'ndjson', { stream: broken, env: {} })).rejects.toThrow('EPIPE');
    expect(cleaned).toBe(true);
  });
});
