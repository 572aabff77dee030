import type { Writable } from 'node:stream';
import { usageError } from '../errors.js';
import { escapeControl } from './terminal-text.js';

/** wide: the table with every cell in full, even on a terminal narrower than it. */
export type OutputFormat = 'table' | 'wide' | 'json' | 'ndjson' | 'markdown' | 'prometheus';
export const BASIC_FORMATS: OutputFormat[] = ['table', 'wide', 'json', 'ndjson'];
/** Item fields shown as a check's detail columns that are free text (cut to fit a terminal); the rest (ids) never are. */
export const FREE_TEXT_KEY = /error|reason|detail|message|note|diff/i;
export const isTable = (f: OutputFormat): boolean => f === 'table' || f === 'wide';

export type Tone = 'good' | 'bad' | 'warn' | 'dim' | 'info' | undefined;

export interface Column<T = any> {
  header: string;
  /** Cell value for tables. */
  value: (row: T) => unknown;
  tone?: (row: T) => Tone;
  /**
   * Free text (an error, a reason) that may be cut with "…" to fit a terminal; ids, statuses,
   * counts and times are never cut. Only a table on a TTY is fitted: piped, -o wide and json keep every value whole.
   */
  shrink?: boolean;
  /** Said elsewhere too (a threshold in the headline, a time beside its age): left out when a terminal is too narrow for the table, shown by -o wide and when piped. */
  wideOnly?: boolean;
}

export interface Section {
  title: string;
  columns: Column[];
  rows: unknown[];
}

/** The one result shape every command hands to the output layer. */
export interface CommandResult<T = Record<string, unknown>> {
  command: string;
  /** read: a listing or check; plan: a dry run of a remedy; apply: --apply (docs/output-and-exit-codes.md). */
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
  /** A remedy's words for a run over targets, which plans every target and asks once (src/targets/plan-then-apply.ts). */
  remedy?: RemedyWords;
}

/** How a remedy names what it does over targets: "Reap 8 execution(s) on 2 target(s)". */
export interface RemedyWords {
  /** "Reap" */
  verb: string;
  /** "execution(s)" */
  noun: string;
  /** The engine's applied label ("reaped"); more precise labels start with it ("rescued-retryable"). */
  applied: string;
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
  // A stream that failed (a full disk) emits neither 'drain' nor 'error' again: waiting would never end.
  if (stream.errored) throw stream.errored;
  if (!stream.write(chunk)) {
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        stream.off('drain', done);
        stream.off('error', fail);
        stream.off('close', closed);
        resolve();
      };
      const fail = (e: Error) => {
        stream.off('drain', done);
        stream.off('error', fail);
        stream.off('close', closed);
        reject(e);
      };
      const closed = () => fail(stream.errored ?? new Error('the output stream was closed'));
      stream.once('drain', done);
      stream.once('error', fail);
      stream.once('close', closed);
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

/** The columns a table is fitted to: only on a TTY (a pipe gets every value whole); 0 columns is a pty nobody sized. */
export function terminalWidth(t: OutputTarget): number | undefined {
  if (!t.stream.isTTY) return undefined;
  const columns = (t.stream as { columns?: number }).columns;
  if (columns && columns > 0) return columns;
  const env = Number(t.env.COLUMNS);
  return Number.isInteger(env) && env > 0 ? env : 80;
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
  } else if (isTable(format)) {
    await renderTable(result, target, format === 'table' ? terminalWidth(target) : undefined);
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

/** A table render that failed after its items were consumed: the work they did stands (see CommandContext.emit). */
export class RenderFailure extends Error {
  constructor(readonly reason: unknown) {
    super(`the table could not be printed: ${reason instanceof Error ? reason.message : String(reason)}`);
    this.name = 'RenderFailure';
  }
}

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
const ZERO_WIDTH = /^[\p{Mn}\p{Me}\u200b-\u200f\u2060\ufe00-\ufe0f]$/u;
const WIDE_EMOJI = /^\p{Emoji_Presentation}$/u;
/** East Asian wide and fullwidth ranges (as string-width, which cli-table3 used). */
const fullWidth = (c: number): boolean =>
  c >= 0x1100 &&
  (c <= 0x115f ||
    c === 0x2329 ||
    c === 0x232a ||
    (c >= 0x2e80 && c <= 0x3247 && c !== 0x303f) ||
    (c >= 0x3250 && c <= 0x4dbf) ||
    (c >= 0x4e00 && c <= 0xa4c6) ||
    (c >= 0xa960 && c <= 0xa97c) ||
    (c >= 0xac00 && c <= 0xd7a3) ||
    (c >= 0xf900 && c <= 0xfaff) ||
    (c >= 0xfe10 && c <= 0xfe19) ||
    (c >= 0xfe30 && c <= 0xfe6b) ||
    (c >= 0xff01 && c <= 0xff60) ||
    (c >= 0xffe0 && c <= 0xffe6) ||
    (c >= 0x1b000 && c <= 0x1b001) ||
    (c >= 0x1f200 && c <= 0x1f251) ||
    (c >= 0x20000 && c <= 0x3fffd));

/** Terminal columns of text without control characters (escaped before): wide CJK and emoji count 2, combining marks 0. */
function displayWidth(s: string): number {
  if (PRINTABLE_ASCII.test(s)) return s.length;
  let w = 0;
  for (const ch of s) {
    if (ZERO_WIDTH.test(ch)) continue;
    w += fullWidth(ch.codePointAt(0) as number) || WIDE_EMOJI.test(ch) ? 2 : 1;
  }
  return w;
}

const charWidth = (ch: string): number => (ZERO_WIDTH.test(ch) ? 0 : fullWidth(ch.codePointAt(0) as number) || WIDE_EMOJI.test(ch) ? 2 : 1);

/** The text cut to `width` display columns, its last one "…"; a wide character is never split. */
function cutTo(s: string, width: number): string {
  if (displayWidth(s) <= width) return s;
  if (PRINTABLE_ASCII.test(s)) return `${s.slice(0, width - 1)}…`;
  let w = 0;
  let out = '';
  for (const ch of s) {
    const c = charWidth(ch);
    if (w + c > width - 1) break;
    w += c;
    out += ch;
  }
  return `${out}…`;
}

/**
 * Narrowest a free-text column is cut to ("reap…"): narrower than that a cell says nothing. A
 * row cut short still reads on one line; a row the terminal wraps mid-cell does not (at 80
 * columns a reap's uuid, status, age and outcome leave 7 for its detail).
 */
const SHRINK_MIN = 5;

/**
 * Column widths for a table fitted to `width` terminal columns: the widest free-text columns
 * come down first (to a common level, never below SHRINK_MIN). When even that does not fit,
 * the natural widths: nothing is cut, and the terminal wraps.
 */
function fitWidths(natural: number[], shrink: boolean[], width: number): number[] {
  const room = width - (3 * natural.length + 1); // "│ " … " │ " … " │"
  if (natural.reduce((a, b) => a + b, 0) <= room) return natural;
  const flex = natural.flatMap((w, i) => (shrink[i] && w > SHRINK_MIN ? [i] : []));
  const fixed = natural.reduce((a, w, i) => (flex.includes(i) ? a : a + w), 0);
  const budget = room - fixed;
  if (!flex.length || budget < flex.length * SHRINK_MIN) return natural;
  const used = (level: number) => flex.reduce((a, i) => a + Math.min(natural[i] as number, level), 0);
  // The highest level at which the free-text columns fit, then its remainder to the widest.
  let lo = SHRINK_MIN;
  let hi = Math.max(...flex.map((i) => natural[i] as number));
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (used(mid) <= budget) lo = mid;
    else hi = mid - 1;
  }
  let spare = budget - used(lo);
  return natural.map((w, i) => {
    if (!flex.includes(i) || w <= lo) return w;
    const extra = spare > 0 ? 1 : 0;
    spare -= extra;
    return lo + extra;
  });
}

/** Prose (a headline, a note) broken between words to `width` columns; a word wider than that is split. */
function wrapText(words: string[], sep: string, width: number): string {
  const lines: string[] = [];
  let line = '';
  let w = 0;
  for (let word of words) {
    let ww = displayWidth(word);
    if (line && w + sep.length + ww <= width) {
      line += sep + word;
      w += sep.length + ww;
      continue;
    }
    if (line) lines.push(line);
    while (ww > width) {
      let head = '';
      let hw = 0;
      for (const ch of word) {
        if (hw + charWidth(ch) > width) break;
        head += ch;
        hw += charWidth(ch);
      }
      if (!head) break; // a width of one wide character: as it is
      lines.push(head);
      word = word.slice(head.length);
      ww -= hw;
    }
    line = word;
    w = ww;
  }
  lines.push(line);
  return lines.join('\n');
}

const TONES: Tone[] = [undefined, 'good', 'bad', 'warn', 'dim', 'info'];
const TONE_CODE = new Map<Tone, string>(TONES.map((t, i) => [t, String(i)]));
/** A formatted row: per cell, its tone's digit and its escaped text (no control characters, so \x1f and \n can frame it). */
type RowText = string[];
const CELL_SEP = '\x1f';

/** Rows kept in memory before the rest go to a temporary file: a small table never touches the disk. */
const TABLE_ROWS_IN_MEMORY = 1000;

/**
 * A table's rows, formatted once and kept for the second pass (widths first, then lines): the
 * first TABLE_ROWS_IN_MEMORY in memory, the rest in a spool file read back in batches, so a
 * table of any size renders in time linear in its rows with flat memory.
 */
class TableRows {
  private memory: RowText[] = [];
  private spool?: import('../engine/plan-spool.js').PlanSpool;
  private pending: string[] = [];
  private pendingSize = 0;
  count = 0;
  readonly widths: number[];
  constructor(headers: string[]) {
    this.widths = headers.map(displayWidth);
  }
  async add(row: RowText): Promise<void> {
    this.count += 1;
    for (let i = 0; i < row.length; i++) {
      const w = displayWidth((row[i] as string).slice(1));
      if (w > (this.widths[i] as number)) this.widths[i] = w;
    }
    if (!this.spool && this.memory.length < TABLE_ROWS_IN_MEMORY) {
      this.memory.push(row);
      return;
    }
    if (!this.spool) {
      const { PlanSpool } = await import('../engine/plan-spool.js');
      try {
        this.spool = await PlanSpool.create();
      } catch {
        // No temporary file to be had: the table is still printed, from memory.
        this.memory.push(row);
        return;
      }
    }
    const line = `${row.join(CELL_SEP)}\n`;
    this.pending.push(line);
    this.pendingSize += line.length;
    if (this.pendingSize >= 65_536) await this.flushSpool();
  }
  private async flushSpool(): Promise<void> {
    if (!this.spool || !this.pending.length) return;
    const chunk = Buffer.from(this.pending.join(''));
    this.pending = [];
    this.pendingSize = 0;
    await this.spool.write(chunk);
  }
  /** Every row in the order added. */
  async *rows(): AsyncGenerator<RowText> {
    yield* this.memory;
    if (!this.spool) return;
    await this.flushSpool();
    for (let batch = await this.spool.take(5000); batch.length; batch = await this.spool.take(5000)) {
      for (const line of batch) yield line.split(CELL_SEP);
    }
  }
  async close(): Promise<void> {
    await this.spool?.close();
  }
}

/** `width`: the terminal's columns, to fit the table and its prose to; undefined: everything in full. */
async function renderTable<T>(result: CommandResult<T>, target: OutputTarget, width?: number): Promise<void> {
  const { Chalk } = await import('chalk');
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
  // Data is escaped before opsctl adds its own colour: a value's control characters are shown, never obeyed.
  const prose = (s: string) => (width ? wrapText(escapeControl(s).split(' '), ' ', width) : escapeControl(s));
  const bold = (s: string) => (color ? chalk.bold(prose(s)) : prose(s));
  const format = (columns: Column[], row: unknown): RowText =>
    columns.map((c) => `${TONE_CODE.get(c.tone?.(row)) ?? '0'}${escapeControl(cellText(c.value(row)))}`);
  /** Formats every row; a row that cannot be formatted does not stop the items (an --apply's work) being consumed. */
  const collect = async (columns: Column[], items: Iterable<unknown> | AsyncIterable<unknown>): Promise<TableRows> => {
    const rows = new TableRows(columns.map((c) => escapeControl(c.header)));
    let failed: { e: unknown } | undefined;
    try {
      for await (const item of items) {
        if (failed) continue;
        try {
          await rows.add(format(columns, item));
        } catch (e) {
          failed = { e };
        }
      }
    } catch (e) {
      await rows.close();
      throw e;
    }
    if (failed) {
      await rows.close();
      throw new RenderFailure(failed.e);
    }
    return rows;
  };
  const out = new ChunkedWriter(target.stream);
  /** The box cli-table3 drew in its compact style, one line at a time. */
  const writeTable = async (all: Column[], rows: TableRows): Promise<void> => {
    // Too wide for the terminal: first the columns that repeat what is said elsewhere (wideOnly)
    // go, then the free-text ones are cut.
    const room = (ws: number[]) => ws.reduce((a, b) => a + b, 0) + 3 * ws.length + 1;
    const keep = all.map((c, i) => i).filter((i) => !width || room(rows.widths) <= width || !all[i]?.wideOnly);
    const columns = keep.map((i) => all[i] as Column);
    const natural = keep.length === all.length ? rows.widths : keep.map((i) => rows.widths[i] as number);
    const widths = width ? fitWidths(natural, columns.map((c) => Boolean(c.shrink)), width) : natural;
    // Cells are cut only when a column was narrowed: the full-width path stays as it was.
    const fit = widths === natural ? (s: string) => s : (s: string, i: number) => cutTo(s, widths[i] as number);
    const rule = (l: string, m: string, r: string) => `${l}${widths.map((w) => '─'.repeat(w + 2)).join(m)}${r}\n`;
    const line = (cells: string[], texts: string[]) => `│ ${cells.map((c, i) => `${c}${' '.repeat((widths[i] as number) - displayWidth(texts[i] as string))}`).join(' │ ')} │\n`;
    const heads = columns.map((c, i) => fit(escapeControl(c.header), i));
    await out.add(rule('┌', '┬', '┐'));
    await out.add(line(heads.map((h) => (color ? chalk.bold(h) : h)), heads));
    if (rows.count) await out.add(rule('├', '┼', '┤'));
    for await (const all of rows.rows()) {
      const row = keep.length === all.length ? all : keep.map((i) => all[i] as string);
      const texts = row.map((c, i) => fit(c.slice(1), i));
      await out.add(line(row.map((c, i) => paint(TONES[Number(c[0])], texts[i] as string)), texts));
    }
    await out.add(rule('└', '┴', '┘'));
  };

  if (result.headline) await out.add(`${bold(result.headline)}\n`);
  const main = await collect(result.columns, result.items);
  // The items are consumed (an --apply's work is done): from here a failure is the printing's alone.
  try {
    try {
      if (main.count === 0) await out.add(`${prose(result.emptyMessage ?? 'Nothing found.')}\n`);
      else await writeTable(result.columns, main);
    } finally {
      await main.close();
    }
    for (const s of result.sections?.() ?? []) {
      if (s.rows.length === 0) continue;
      await out.add(`\n${bold(s.title)}\n`);
      const rows = await collect(s.columns, s.rows);
      try {
        await writeTable(s.columns, rows);
      } finally {
        await rows.close();
      }
    }
    const summary = result.summary();
    const parts = Object.entries(summary)
      .filter(([, v]) => typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean')
      .map(([k, v]) => escapeControl(`${k}: ${v}`));
    if (parts.length) await out.add(`\n${width ? wrapText(parts, '  ', width) : parts.join('  ')}\n`);
    for (const n of result.notes?.() ?? []) await out.add(`${color ? chalk.dim(prose(n)) : prose(n)}\n`);
    await out.flush();
  } catch (e) {
    throw e instanceof RenderFailure ? e : new RenderFailure(e);
  }
}
