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

const has = (re: RegExp) => (s: string) => re.test(s);
const hasDigit = has(/\d/);
const hasLetter = has(/[a-z]/i);

/** Letter↔digit switches: "1Q2w3E" has 5, "sha256" 1, "HTTP2Connection" 2. */
function transitions(s: string): number {
  let n = 0;
  for (let i = 1; i < s.length; i++) if (/\d/.test(s[i]) !== /\d/.test(s[i - 1])) n += 1;
  return n;
}

/** A candidate is an IPv6 address if its groups are hex and it has "::" or all eight groups. */
function ipv6(found: string): string {
  // "dial [::1]: refused" and "at fe80::1: refused": a colon after the address is the message's.
  const tail = found.endsWith(':::') || (found.endsWith(':') && !found.endsWith('::')) ? ':' : '';
  const m = tail ? found.slice(0, -1) : found;
  const v4 = /(?:^|:)\d{1,3}(?:\.\d{1,3}){3}$/.test(m);
  const groups = m.replace(/\d{1,3}(?:\.\d{1,3}){3}$/, 'x:x').split(':');
  const compressed = (m.match(/::/g) ?? []).length;
  if (compressed > 1 || (compressed === 0 && groups.length !== 8) || (compressed === 1 && groups.length > 9)) return found;
  if (!groups.every((g) => g === 'x' || /^[0-9a-f]{0,4}$/i.test(g))) return found;
  return v4 || /[0-9a-f]/i.test(m) ? `<ip>${tail}` : found;
}

/**
 * Applied in order: containers first (a url or a quoted string may hold a uuid or a number),
 * then the shapes whose parts the later, plainer rules would split ("1Q2w3E" is not
 * "<n>Q<n>w<n>E": the letters vary per id, so each id would be a class of its own).
 */
const RULES: Array<[RegExp, string | ((m: string, ...g: string[]) => string)]> = [
  [/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'`<>]+/gi, '<url>'],
  [/(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+/g, '<email>'],
  [/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '<uuid>'],
  [/\d{4}-\d{2}-\d{2}[t ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:z|[+-]\d{2}(?::?\d{2})?)?/gi, '<time>'],
  // A single quote counts only when it is not an apostrophe ("can't").
  [/"[^"\n]*"|`[^`\n]*`|(?<!\w)'[^'\n]*'(?!\w)/g, '<str>'],
  // Prefixed ids: in_1Q2w3E4r, cus_NffrFeUfNV2Hib, req-7f3a9c2e1b. The prefix says what it is: kept.
  [/(?<![\w-])([a-z]{2,10}[_-])([A-Za-z0-9]{6,})(?![\w-])/g, (m, prefix: string, tail: string) => (hasDigit(tail) && hasLetter(tail) ? `${prefix}<id>` : m)],
  // base64url tokens (api keys, JWT parts): long, with upper and lower case and a digit, which
  // identifiers ("tier_elevation_v2_handler", "ConditionalCheckFailedException") are not. Before
  // the shorter shapes, which would otherwise take a piece of one ("0x…", "5h-…").
  [/(?<![\w-])[A-Za-z0-9_-]{20,}(?![\w-])/g, (m) => (hasDigit(m) && /[a-z]/.test(m) && /[A-Z]/.test(m) ? '<id>' : m)],
  [/\b0x[0-9a-f]+\b/gi, '<hex>'],
  // IPv6 before IPv4: "::ffff:10.0.0.1" is one address. Not after a word ("std::io").
  [/(?<![\w:.])(?:[0-9a-f]{0,4}:){2,8}(?:[0-9a-f]{1,4}|\d{1,3}(?:\.\d{1,3}){3})?(?![\w.])/gi, ipv6],
  [/(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w.])/g, '<ip>'],
  // Hex ids (trace ids, hashes): 8+ hex characters with at least one letter and one digit. Before durations: "0d00000d" is hex, not days.
  [/\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{8,}\b/gi, '<hex>'],
  // 1.5s, 250ms, 3m, 1h30m (Go's time.Duration); "1st" and "2nd" are not.
  [/(?<![\w.])(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h|d))+(?!\w)/g, '<duration>'],
  // Mixed letter-digit tokens: ids, not words ("sha256", "utf8mb4" and "HTTP2Connection" stay).
  [/(?<![A-Za-z0-9])[A-Za-z0-9]{8,}(?![A-Za-z0-9])/g, (m) => (hasDigit(m) && hasLetter(m) && (transitions(m) >= 3 || m.length >= 16) ? '<id>' : m)],
  [/\d+(?:\.\d+)?/g, '<n>'],
];

/** The class of one error message: placeholders for variable parts, whitespace collapsed, cut at 80. */
export function errorClass(message: string | null | undefined): string {
  if (message === null || message === undefined) return NO_ERROR_CLASS;
  let s = message.length > INPUT_MAX ? message.slice(0, INPUT_MAX) : message;
  for (const [re, placeholder] of RULES) s = s.replace(re, placeholder as string);
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

/** --error-class as typed: whitespace collapsed as in a class, so a key pasted from a wrapped table still matches. */
export function errorClassKey(given: string): string {
  return given.replace(/\s+/g, ' ').trim();
}

/**
 * The sentence for a key that matches nothing in scope: usually a key mistyped, cut when
 * copied, or an error message pasted instead of its class.
 */
export function unknownClassMessage(key: string, noun: string, listCommand: string): string {
  const own = errorClass(key);
  const hint = own !== key ? ` It is not a class as listed: the class of that text is ${JSON.stringify(own)}.` : '';
  return `--error-class ${JSON.stringify(key)} matches no ${noun} in scope; the classes are listed by \`${listCommand}\` ("By error class").${hint} Nothing was changed.`;
}
