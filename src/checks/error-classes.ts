/**
 * Error classes: a last-error message reduced to a short, stable prefix, so that 400 dead
 * letters failing with "timeout after 3012ms for team 6f1c…" and "timeout after 87ms for
 * team 9a2e…" are counted as one problem. Pure; reusable for any job table's errors.
 */

/** Longest class; the placeholders are fixed text, so cutting keeps a class stable. */
export const ERROR_CLASS_MAX_LENGTH = 80;
export const NO_ERROR_CLASS = '(no error)';
export const OTHER_CLASS = '(other)';

/** Messages are cut before normalising: the runner keeps 1000 characters, and regexes stay linear enough. */
const INPUT_MAX = 2000;

/** Applied in order: containers first (a url or a quoted string may hold a uuid or a number). */
const RULES: Array<[RegExp, string]> = [
  [/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'`<>]+/gi, '<url>'],
  [/(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+/g, '<email>'],
  [/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '<uuid>'],
  [/\d{4}-\d{2}-\d{2}[t ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:z|[+-]\d{2}(?::?\d{2})?)?/gi, '<time>'],
  // A single quote counts only when it is not an apostrophe ("can't").
  [/"[^"\n]*"|`[^`\n]*`|(?<!\w)'[^'\n]*'(?!\w)/g, '<str>'],
  [/\b0x[0-9a-f]+\b/gi, '<hex>'],
  // Hex ids (trace ids, hashes): 8+ hex characters with at least one letter and one digit.
  [/\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{8,}\b/gi, '<hex>'],
  [/\d+(?:\.\d+)?/g, '<n>'],
];

/** The class of one error message: placeholders for variable parts, whitespace collapsed, cut at 80. */
export function errorClass(message: string | null | undefined): string {
  if (message === null || message === undefined) return NO_ERROR_CLASS;
  let s = message.length > INPUT_MAX ? message.slice(0, INPUT_MAX) : message;
  for (const [re, placeholder] of RULES) s = s.replace(re, placeholder);
  s = s.replace(/\s+/g, ' ').trim();
  if (s === '') return NO_ERROR_CLASS;
  if (s.length <= ERROR_CLASS_MAX_LENGTH) return s;
  s = s.slice(0, ERROR_CLASS_MAX_LENGTH);
  // Do not end on half a placeholder or half a surrogate pair.
  const open = s.lastIndexOf('<');
  if (open > s.lastIndexOf('>') && /^<[a-z]*$/.test(s.slice(open))) s = s.slice(0, open);
  if (/[\ud800-\udbff]$/.test(s)) s = s.slice(0, -1);
  return s.trimEnd();
}

export interface TallyGroup {
  key: string;
  count: number;
  /** Distinct tags seen with this key (e.g. kinds), at most `maxTags`, sorted. */
  tags: string[];
  oldest: Date | null;
  newest: Date | null;
}

interface Entry {
  count: number;
  tags: Set<string>;
  oldest: Date | null;
  newest: Date | null;
}

/**
 * Counts rows per key as they stream by, in bounded memory: at most `maxTracked` keys are
 * kept (exact below that; later new keys go to "(other)"), and the result is the `top`
 * keys by count with the rest folded into "(other)".
 */
export class BoundedTally {
  private readonly entries = new Map<string, Entry>();
  private total = 0;

  constructor(private readonly opts: { top: number; maxTracked?: number; maxTags?: number }) {}

  add(key: string, at: Date | null, tag?: string): void {
    this.total += 1;
    let e = this.entries.get(key);
    if (!e) {
      const full = this.entries.size >= (this.opts.maxTracked ?? 10_000);
      key = full ? OTHER_CLASS : key;
      e = this.entries.get(key);
      if (!e) {
        e = { count: 0, tags: new Set(), oldest: null, newest: null };
        this.entries.set(key, e);
      }
    }
    merge(e, 1, at, at, tag === undefined ? [] : [tag], this.opts.maxTags ?? 20);
  }

  get count(): number {
    return this.total;
  }

  groups(): TallyGroup[] {
    const sorted = [...this.entries.entries()]
      .filter(([k]) => k !== OTHER_CLASS)
      .sort((a, b) => b[1].count - a[1].count || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const kept = sorted.slice(0, this.opts.top);
    const rest = sorted.slice(this.opts.top);
    const other = this.entries.get(OTHER_CLASS);
    const folded: Entry = { count: 0, tags: new Set(), oldest: null, newest: null };
    for (const [, e] of other ? [...rest, [OTHER_CLASS, other] as const] : rest) merge(folded, e.count, e.oldest, e.newest, e.tags, this.opts.maxTags ?? 20);
    const out = kept.map(([key, e]) => toGroup(key, e));
    if (folded.count > 0) out.push(toGroup(OTHER_CLASS, folded));
    return out;
  }
}

function merge(e: Entry, count: number, oldest: Date | null, newest: Date | null, tags: Iterable<string>, maxTags: number): void {
  e.count += count;
  if (oldest && (!e.oldest || oldest < e.oldest)) e.oldest = oldest;
  if (newest && (!e.newest || newest > e.newest)) e.newest = newest;
  for (const t of tags) if (e.tags.size < maxTags) e.tags.add(t);
}

const toGroup = (key: string, e: Entry): TallyGroup => ({ key, count: e.count, tags: [...e.tags].sort(), oldest: e.oldest, newest: e.newest });
