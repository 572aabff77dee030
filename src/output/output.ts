import type { Writable } from 'node:stream';
import { usageError } from '../errors.js';

export type OutputFormat = 'table' | 'json' | 'ndjson' | 'markdown' | 'prometheus';
export const BASIC_FORMATS: OutputFormat[] = ['table', 'json', 'ndjson'];

export type Tone = 'good' | 'bad' | 'warn' | 'dim' | 'info' | undefined;

export interface Column<T = any> {
  header: string;
  /** Cell value for tables. */
  value: (row: T) => unknown;
  tone?: (row: T) => Tone;
  /** Longest cell before it is cut with "…" (tables only: json keeps the whole value). */
  maxWidth?: number;
}

export interface Section {
  title: string;
  columns: Column[];
  rows: unknown[];
}

/** The one result shape every command hands to the output layer. */
export interface CommandResult<T = Record<string, unknown>> {
  command: string;
  /** read: a listing or check; plan: a dry run of a remedy; apply: --apply (README, "Output shapes"). */
  mode: 'read' | 'plan' | 'apply';
  /** An array, or a stream for listings that must not hold every row in memory. */
  items: T[] | AsyncIterable<T>;
  columns: Column<T>[];
  /**
   * json/ndjson only, used instead of `items`: the items already serialized, one JSON object a
   * line, exactly as toJson would write them (e.g. by the server, through COPY). Chunks may end mid-line.
   */
  ndjson?: () => AsyncIterable<Buffer>;
  /** Computed after the items are consumed (streams count as they go). */
  summary: () => Record<string, unknown>;
  /** Table-mode only: a line above the table. */
  headline?: string;
  /** Table-mode only: extra tables below (e.g. grouping); json carries them in summary. */
  sections?: () => Section[];
  /** Table-mode only: lines below everything. */
  notes?: () => string[];
  emptyMessage?: string;
  exitCode?: () => number;
  /** Printed on stderr after the result (e.g. why an --apply stopped part-way). */
  warnings?: () => string[];
}

export interface OutputTarget {
  stream: Writable & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  noColor?: boolean;
}

/** Colour only on a TTY, never with NO_COLOR (any non-empty value) or --no-color. */
export function useColor(t: OutputTarget): boolean {
  if (t.noColor) return false;
  if (t.env.NO_COLOR !== undefined && t.env.NO_COLOR !== '') return false;
  return Boolean(t.stream.isTTY);
}

export function parseFormat(value: string, allowed: OutputFormat[] = BASIC_FORMATS): OutputFormat {
  if (!(allowed as string[]).includes(value)) {
    throw usageError(`-o ${value} is not a known output format: use one of ${allowed.join(', ')}.`);
  }
  return value as OutputFormat;
}

/** bigint as strings: JSON that every consumer can read. */
function jsonReplacer(_k: string, v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  return v;
}
/** Without a replacer JSON.stringify stays on V8's fast path; bigint (rare) takes the slow one. */
export const toJson = (v: unknown): string => {
  try {
    return JSON.stringify(v);
  } catch {
    return JSON.stringify(v, jsonReplacer);
  }
};

/** Collects output into ~64 KiB writes: one write(2) per row costs more than the row itself. */
class ChunkedWriter {
  // Pieces joined once per write: `+=` built a rope of them that each write flattened again.
  private parts: string[] = [];
  private size = 0;
  constructor(private readonly stream: Writable) {}
  async add(s: string): Promise<void> {
    this.parts.push(s);
    this.size += s.length;
    if (this.size >= 65_536) await this.flush();
  }
  async flush(): Promise<void> {
    if (this.size) {
      const chunk = this.parts.length === 1 ? (this.parts[0] as string) : this.parts.join('');
      this.parts = [];
      this.size = 0;
      await write(this.stream, chunk);
    }
  }
}

/** Writes with back-pressure so a million-row ndjson listing does not buffer in memory. */
async function write(stream: Writable, chunk: string | Uint8Array): Promise<void> {
  if (!stream.write(chunk)) {
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        stream.off('drain', done);
        stream.off('error', fail);
        resolve();
      };
      const fail = (e: Error) => {
        stream.off('drain', done);
        reject(e);
      };
      stream.once('drain', done);
      stream.once('error', fail);
    });
  }
}

export function cellText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (v instanceof Date) return v.toISOString().replace(/\.\d{3}Z$/, 'Z');
  if (Array.isArray(v)) return v.join(', ');
  if (typeof v === 'object') return toJson(v);
  return String(v);
}

export function truncate(s: string, max?: number): string {
  if (!max || s.length <= max) return s;
  return `${s.slice(0, Math.max(1, max - 1))}…`;
}

/** Renders a result; returns its exit code. */
export async function render<T>(result: CommandResult<T>, format: OutputFormat, target: OutputTarget): Promise<number> {
  const out = new ChunkedWriter(target.stream);
  if (result.ndjson && (format === 'json' || format === 'ndjson')) {
    await renderSerialized(result, result.ndjson(), format, out, target.stream);
  } else if (format === 'json') {
    // Streamed as it goes, but always one valid JSON object in the end.
    await out.add(`{"command":${toJson(result.command)},"mode":${toJson(result.mode)},"items":[`);
    let first = true;
    for await (const item of result.items) {
      await out.add(`${first ? '' : ','}\n${toJson(item)}`);
      first = false;
    }
    await out.add(`${first ? '' : '\n'}],"summary":${toJson(result.summary())}}\n`);
    await out.flush();
  } else if (format === 'ndjson') {
    for await (const item of result.items) await out.add(`${toJson(item)}\n`);
    await out.add(`${toJson({ type: 'summary', command: result.command, mode: result.mode, summary: result.summary() })}\n`);
    await out.flush();
  } else if (format === 'table') {
    await renderTable(result, target);
  } else {
    throw usageError(`-o ${format} is only available for opsctl check.`);
  }
  return result.exitCode ? result.exitCode() : 0;
}

/** Pre-serialized NDJSON passed through as bytes; for json each newline becomes the array's ",\n". */
async function renderSerialized<T>(result: CommandResult<T>, chunks: AsyncIterable<Buffer>, format: OutputFormat, out: ChunkedWriter, stream: Writable): Promise<void> {
  const json = format === 'json';
  // Nothing is written before the first chunk: a source that fails at once (a streamed remedy
  // with nothing applied) leaves no partial document behind, as the item path's buffer does.
  const it = chunks[Symbol.asyncIterator]();
  let next = await it.next();
  if (json) await out.add(`{"command":${toJson(result.command)},"mode":${toJson(result.mode)},"items":[`);
  await out.flush();
  // Small chunks are gathered into ~64 KiB writes, as ChunkedWriter does for strings.
  let pending: Buffer[] = [];
  let size = 0;
  let any = false;
  let owedNewline = false; // json: the previous chunk ended a line; "," or "\n]" follows
  const flush = async () => {
    if (size) await write(stream, pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending, size));
    pending = [];
    size = 0;
  };
  const push = async (b: Buffer) => {
    pending.push(b);
    size += b.length;
    if (size >= 65_536) await flush();
  };
  try {
    for (; !next.done; next = await it.next()) {
      const chunk = next.value;
      if (!chunk.length) continue;
      if (!json) {
        // Each chunk as it came (one socket read of the server's rows): gathering them meant a
        // fresh 64 KiB buffer per write, dead garbage that grew RSS with the listing's size.
        await write(stream, chunk);
        continue;
      }
      if (!any) await push(NEWLINE);
      else if (owedNewline) await push(COMMA_NEWLINE);
      any = true;
      owedNewline = chunk[chunk.length - 1] === 10;
      const body = owedNewline ? chunk.subarray(0, chunk.length - 1) : chunk;
      await push(commaLines(body));
    }
  } finally {
    // Stopped early (a failed write): the source still gets to clean up, as for-await does.
    if (!next.done) await it.return?.();
  }
  await flush();
  if (json) await out.add(`${any ? '\n' : ''}],"summary":${toJson(result.summary())}}\n`);
  else await out.add(`${toJson({ type: 'summary', command: result.command, mode: result.mode, summary: result.summary() })}\n`);
  await out.flush();
}
/**
 * The chunk with each newline written as ",\n" (the array's separator), in one copy: a
 * Buffer per line and two pushes per line were most of a 100k-row JSON report's output cost.
 */
function commaLines(body: Buffer): Buffer {
  let n = 0;
  for (let i = body.indexOf(10); i !== -1; i = body.indexOf(10, i + 1)) n += 1;
  if (!n) return body;
  const out = Buffer.allocUnsafe(body.length + n);
  let from = 0;
  let to = 0;
  for (let i = body.indexOf(10); i !== -1; i = body.indexOf(10, from)) {
    to += body.copy(out, to, from, i);
    out[to++] = 0x2c; // ,
    out[to++] = 0x0a;
    from = i + 1;
  }
  body.copy(out, to, from);
  return out;
}
const NEWLINE = Buffer.from('\n');
const COMMA_NEWLINE = Buffer.from(',\n');

async function renderTable<T>(result: CommandResult<T>, target: OutputTarget): Promise<void> {
  const { Chalk } = await import('chalk');
  const Table = (await import('cli-table3')).default;
  const color = useColor(target);
  const chalk = new Chalk({ level: color ? 1 : 0 });
  const paint = (tone: Tone, s: string) => {
    switch (tone) {
      case 'good':
        return chalk.green(s);
      case 'bad':
        return chalk.red(s);
      case 'warn':
        return chalk.yellow(s);
      case 'dim':
        return chalk.dim(s);
      case 'info':
        return chalk.cyan(s);
      default:
        return s;
    }
  };
  const makeTable = (columns: Column[], rows: unknown[]) => {
    const table = new Table({
      head: columns.map((c) => (color ? chalk.bold(c.header) : c.header)),
      style: { head: [], border: [], compact: true },
      wordWrap: false,
    });
    for (const row of rows) {
      table.push(columns.map((c) => paint(c.tone?.(row), truncate(cellText(c.value(row)), c.maxWidth))));
    }
    return table.toString();
  };
  const lines: string[] = [];
  if (result.headline) lines.push(color ? chalk.bold(result.headline) : result.headline);
  const rows: T[] = [];
  for await (const item of result.items) rows.push(item);
  if (rows.length === 0) lines.push(result.emptyMessage ?? 'Nothing found.');
  else lines.push(makeTable(result.columns, rows));
  for (const s of result.sections?.() ?? []) {
    if (s.rows.length === 0) continue;
    lines.push('', color ? chalk.bold(s.title) : s.title, makeTable(s.columns, s.rows));
  }
  const summary = result.summary();
  const parts = Object.entries(summary)
    .filter(([, v]) => typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean')
    .map(([k, v]) => `${k}: ${v}`);
  if (parts.length) lines.push('', parts.join('  '));
  for (const n of result.notes?.() ?? []) lines.push(color ? chalk.dim(n) : n);
  await write(target.stream, `${lines.join('\n')}\n`);
}
