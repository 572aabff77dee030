/**
 * A streamed report's items as NDJSON bytes, written from the plan's own lines: the server
 * wrote each planned item's JSON (see stuckCopySql), so the reported item is that line with
 * the fields the remedy's parse added and the outcome appended. Byte for byte what
 * `JSON.stringify({ ...p, outcome, outcomeClass, detail })` writes, without building the object
 * or its string: at 100k rows the spread, the stringify and the UTF-16 text of an em dash in a
 * reason were ~0.6 s of CPU, on the two cores the database's batches need.
 */

const OPEN = 0x7b; // {
const CLOSE = 0x7d; // }
const NL = 0x0a;

/** The `,"outcome":…,"outcomeClass":…` bytes, one Buffer per label and class (a handful in a run). */
export class OutcomeTails {
  private readonly byClass = new Map<string, Map<string, Buffer>>();
  get(outcome: string, outcomeClass: string): Buffer {
    let byOutcome = this.byClass.get(outcomeClass);
    if (!byOutcome) this.byClass.set(outcomeClass, (byOutcome = new Map()));
    let t = byOutcome.get(outcome);
    if (!t) byOutcome.set(outcome, (t = Buffer.from(`,"outcome":${JSON.stringify(outcome)},"outcomeClass":${JSON.stringify(outcomeClass)}`)));
    return t;
  }
}

/**
 * One NDJSON chunk (each line ends in a newline) for the items `lines[from + k]`, k < n =
 * tails.length: each plan line (one JSON object, as JSON.stringify writes the parsed item)
 * with `added[k]` (what the remedy's parse added to its object, as `,"key":value` UTF-8 bytes
 * in the order added), `tails[k]` (OutcomeTails) and `details[k]` (the item's detail, if any).
 */
export function itemLines(lines: readonly string[], from: number, added: readonly Buffer[], tails: readonly Buffer[], details: readonly (string | undefined)[]): Buffer {
  const n = tails.length;
  const detailJson: (string | undefined)[] = new Array(n);
  let size = 0;
  for (let k = 0; k < n; k++) {
    const d = details[k] ? `,"detail":${JSON.stringify(details[k])}` : undefined;
    detailJson[k] = d;
    // The line less its closing brace, the added fields, the outcome, the detail, "}\n".
    size += Buffer.byteLength(lines[from + k] as string) + (added[k] as Buffer).length + (tails[k] as Buffer).length + (d ? Buffer.byteLength(d) : 0) + 1;
  }
  const out = Buffer.allocUnsafe(size);
  let off = 0;
  for (let k = 0; k < n; k++) {
    const line = lines[from + k] as string;
    const end = off + out.write(line, off);
    // An item always has its id: never `{}`, where the added fields' leading comma would not fit.
    if (out[end - 1] !== CLOSE || out[end - 2] === OPEN) throw new Error(`a plan line is not a JSON object: ${line.slice(0, 80)}`);
    off = end - 1;
    off += (added[k] as Buffer).copy(out, off);
    off += (tails[k] as Buffer).copy(out, off);
    const d = detailJson[k];
    if (d) off += out.write(d, off);
    out[off++] = CLOSE;
    out[off++] = NL;
  }
  return out;
}
