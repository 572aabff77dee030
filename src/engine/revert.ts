import type { Database } from '../database/database.js';
import type { Config } from '../config/config.js';
import type { AuditEntry } from './audit.js';
import type { ItemOutcome, PlannedItem, Remedy } from './remediation.js';
import { displayName, qualifiedName, quoteIdent } from '../database/identifiers.js';
import { imageSql, type Image, type ImageRef } from './images.js';
import { itemKey, type RunEntry } from './runs.js';

/**
 * `revert RUN` over a database: puts back each item's before-image, only where the row still
 * holds the run's after-image (a compare-and-set typed by the table's own row type, through
 * jsonb_populate_recordset). Column images are written back with an UPDATE; a purged row (a
 * whole-row image, no after) is inserted again where its key is still free; a row a revert
 * inserted (no before) is deleted only while it is exactly as inserted. A revert is a run of
 * the one engine: batches, row locks (SKIP LOCKED), outcomes, audit with its own before/after.
 */

export interface PlannedRevert extends PlannedItem {
  /** The item's key value. */
  key: string;
  table: string;
  /** The kind of the change reverted (execution.reaped, propagation.operator_purged, ...). */
  kind: string;
  /** What a revert would write: `column: now → back`, or the row inserted/deleted. */
  change: string;
}

interface RevertItem {
  plan: PlannedRevert;
  entry: RunEntry;
  image: ImageRef & { id: string };
  before: Image | null;
  after: Image | null;
  /** What earlier reverts of the run left this row as (their after-images): the row still so is already reverted. */
  revertedTo: Array<Image | null>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** JSON values equal whatever their key order. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) || Array.isArray(b)) return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  if (isObject(a) || isObject(b)) {
    if (!isObject(a) || !isObject(b)) return false;
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && sameJson(a[k], b[k]));
  }
  return a === b;
}

const short = (v: unknown) => {
  const s = v === null || v === undefined ? 'NULL' : typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 39)}…` : s;
};

function describeChange(before: Image | null, after: Image | null, columns: ImageRef['columns']): string {
  if (!after) return 'row re-inserted';
  if (!before) return 'row deleted (inserted by the run)';
  // In the remedy's column order (status first), not jsonb's (shortest key first).
  const keys = Array.isArray(columns) ? [...columns.filter((c) => c in before), ...Object.keys(before).filter((k) => !columns.includes(k))] : Object.keys(before);
  const cols = keys.filter((k) => !sameJson(before[k], after[k]));
  return cols.length ? cols.map((c) => `${c}: ${short(after[c])} → ${short(before[c])}`).join('; ') : 'nothing differs';
}

/** The run's entries as revert items: refused where nothing can be put back. */
export function revertItems(entries: RunEntry[], earlier: RunEntry[] = []): RevertItem[] {
  const revertedTo = new Map<string, Array<Image | null>>();
  for (const e of earlier) revertedTo.set(itemKey(e), [...(revertedTo.get(itemKey(e)) ?? []), (e.metadata.after ?? null) as Image | null]);
  const tables = new Set(entries.map((e) => (e.metadata.image as ImageRef | undefined)?.table).filter(Boolean));
  return entries.map((entry): RevertItem => {
    const image = entry.metadata.image as (ImageRef & { id: string }) | undefined;
    const key = itemKey(entry);
    const table = image ? displayName(image.table, image.schema) : entry.resourceType;
    // Ids are keys; only a run over several tables (rescue and its queue locks) needs the table too.
    const id = tables.size > 1 ? `${table}:${key}` : key;
    const before = (entry.metadata.before ?? null) as Image | null;
    const after = (entry.metadata.after ?? null) as Image | null;
    const plan: PlannedRevert = { id, key, table, kind: entry.kind, change: '' };
    if (!image || !('before' in entry.metadata) || (before === null && after === null)) {
      plan.refusal = 'no before-image was recorded for this change: nothing to put back';
      return { plan, entry, image: image ?? { table: entry.resourceType, schema: null, key: '', columns: [], id: key }, before, after, revertedTo: [] };
    }
    plan.change = describeChange(before, after, image.columns);
    if (image.columns !== 'row' && (!before || !after)) plan.refusal = 'its before- or after-image is missing: nothing to compare against';
    return { plan, entry, image, before, after, revertedTo: revertedTo.get(key) ?? [] };
  });
}

export interface RevertOptions {
  runId: string;
  reason?: string;
  actor: string;
  audit: Config['audit'];
}

/** The group of items one statement reverts: same table, key and columns. */
const groupKey = (i: RevertItem) => JSON.stringify([i.image.table, i.image.schema, i.image.key, i.image.columns, i.before === null, i.after === null]);

export function revertRemedy(items: RevertItem[], opts: RevertOptions): Remedy<PlannedRevert> {
  const byId = new Map(items.map((i) => [i.plan.id, i]));
  const first = items.find((i) => !i.plan.refusal)?.image ?? items[0]?.image;
  const columnsOf = new Map<string, string[]>();
  return {
    action: 'revert',
    // The advisory lock of the run's table: no reap of it runs meanwhile.
    table: first?.table ?? 'runs',
    schema: first?.schema ?? null,
    labels: { applied: 'reverted', lost: 'changed-since' },
    audit: { audit: opts.audit, actor: opts.actor },
    // Its before/after are read by its own statements (the locked row, RETURNING).
    suppliesImages: true,
    async plan(_db, limit) {
      // Refused ones last, so the --max probe counts the actionable ones.
      const all = [...items.filter((i) => !i.plan.refusal), ...items.filter((i) => i.plan.refusal)].map((i) => i.plan);
      return limit > 0 ? all.slice(0, limit) : all;
    },
    async applyBatch(tx, batch): Promise<ItemOutcome[]> {
      const groups = new Map<string, RevertItem[]>();
      for (const p of batch) {
        const i = byId.get(p.id) as RevertItem;
        const k = groupKey(i);
        groups.set(k, [...(groups.get(k) ?? []), i]);
      }
      const out = new Map<string, ItemOutcome>();
      for (const group of groups.values()) for (const o of await revertGroup(tx, group, opts, columnsOf)) out.set(o.id, o);
      return batch.map((p) => out.get(p.id) ?? { id: p.id, outcome: 'errored', detail: 'no outcome reported' });
    },
  };
}

/** The audit entry of a reverted item: the revert of RUN, with its own before/after (so a revert can be reverted). */
function revertAudit(i: RevertItem, opts: RevertOptions, before: Image | null, after: Image | null): AuditEntry {
  return {
    kind: 'opsctl.reverted',
    resourceType: i.entry.resourceType,
    resourceId: i.entry.resourceId ?? i.image.id,
    summary: `revert of ${i.entry.kind} ${i.image.id} (run ${opts.runId})${opts.reason ? `: ${opts.reason}` : ''}`,
    metadata: { revertOf: opts.runId, revertedKind: i.entry.kind, reason: opts.reason ?? null, image: { ...i.image, columns: i.image.columns } },
    before,
    after,
  };
}

/** Columns an INSERT may name: not dropped, not generated (identity ones are given with OVERRIDING SYSTEM VALUE). */
async function insertableColumns(tx: Database, table: string, cache: Map<string, string[]>): Promise<string[]> {
  const hit = cache.get(table);
  if (hit) return hit;
  const rows = await tx.queryRaw<{ name: string }>(
    `SELECT attname AS name FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum`,
    [table],
  );
  const cols = rows.map((r) => r.name);
  cache.set(table, cols);
  return cols;
}

async function revertGroup(tx: Database, group: RevertItem[], opts: RevertOptions, cache: Map<string, string[]>): Promise<ItemOutcome[]> {
  const { image } = group[0] as RevertItem;
  const t = qualifiedName(image.table, image.schema);
  const k = quoteIdent(image.key);
  const byKey = new Map(group.map((i) => [i.image.id, i]));
  const keys = group.map((i) => i.image.id);
  // Each image with its key, as the table's own row type reads it.
  const withKey = (img: Image | null, i: RevertItem) => ({ ...(img ?? {}), [image.key]: i.image.id });
  const json = (pick: (i: RevertItem) => Image | null) => JSON.stringify(group.map((i) => withKey(pick(i), i)));
  type Row = { id: string; before: Image | null; after: Image | null; done: boolean };
  let rows: Row[];
  const first = group[0] as RevertItem;
  if (image.columns === 'row' && first.after === null) {
    // A deleted row (purge): inserted again where its key is still free.
    const cols = await insertableColumns(tx, t, cache);
    const list = cols.map(quoteIdent).join(', ');
    const inserted = await tx.queryRaw<{ id: string; after: Image }>(
      `WITH b AS (SELECT * FROM jsonb_populate_recordset(NULL::${t}, $1::jsonb))
       INSERT INTO ${t} AS t (${list}) OVERRIDING SYSTEM VALUE
       SELECT ${cols.map((c) => `b.${quoteIdent(c)}`).join(', ')} FROM b WHERE NOT EXISTS (SELECT 1 FROM ${t} x WHERE x.${k} = b.${k})
       ON CONFLICT DO NOTHING
       RETURNING t.${k}::text AS id, to_jsonb(t) AS after`,
      [json((i) => i.before)],
    );
    const done = new Map(inserted.map((r) => [r.id, r]));
    return keys.map((key): ItemOutcome => {
      const i = byKey.get(key) as RevertItem;
      const r = done.get(key);
      if (r) return { id: i.plan.id, outcome: 'applied', detail: 'row inserted again', audit: revertAudit(i, opts, null, r.after) };
      return { id: i.plan.id, outcome: 'lost', detail: 'a row with this key exists again since the run: left alone' };
    });
  }
  if (image.columns === 'row') {
    // A row a revert inserted: deleted only while it is exactly as inserted.
    rows = await tx.queryRaw<Row>(
      `WITH a AS (SELECT * FROM jsonb_populate_recordset(NULL::${t}, $1::jsonb)),
       locked AS (SELECT l.${k} AS k, to_jsonb(l) AS cur FROM ${t} l WHERE l.${k} = ANY(ARRAY(SELECT a.${k} FROM a)) FOR UPDATE OF l SKIP LOCKED),
       del AS (DELETE FROM ${t} t USING a WHERE t.${k} = a.${k} AND t.${k} = ANY(ARRAY(SELECT k FROM locked)) AND to_jsonb(t) = to_jsonb(a) RETURNING t.${k} AS k)
       SELECT locked.k::text AS id, locked.cur AS before, NULL::jsonb AS after, del.k IS NOT NULL AS done FROM locked LEFT JOIN del ON del.k = locked.k`,
      [json((i) => i.after)],
    );
  } else {
    const cols = image.columns;
    const set = `(${cols.map(quoteIdent).join(', ')}) = ROW(${cols.map((c) => `b.${quoteIdent(c)}`).join(', ')})`;
    // The compare-and-set: every imaged column still as the run left it (compared as jsonb, so
    // types without an equality operator compare too).
    const cas = cols.map((c) => `to_jsonb(t.${quoteIdent(c)}) IS NOT DISTINCT FROM to_jsonb(a.${quoteIdent(c)})`).join(' AND ');
    rows = await tx.queryRaw<Row>(
      `WITH b AS (SELECT * FROM jsonb_populate_recordset(NULL::${t}, $1::jsonb)),
       a AS (SELECT * FROM jsonb_populate_recordset(NULL::${t}, $2::jsonb)),
       locked AS (SELECT l.${k} AS k, ${imageSql('l', cols)} AS cur FROM ${t} l WHERE l.${k} = ANY(ARRAY(SELECT a.${k} FROM a)) FOR UPDATE OF l SKIP LOCKED),
       upd AS (
         UPDATE ${t} t SET ${set}
           FROM b JOIN a ON a.${k} = b.${k}
          WHERE t.${k} = b.${k} AND t.${k} = ANY(ARRAY(SELECT k FROM locked)) AND ${cas}
      RETURNING t.${k} AS k, ${imageSql('t', cols)} AS after
       )
       SELECT locked.k::text AS id, locked.cur AS before, upd.after, upd.k IS NOT NULL AS done FROM locked LEFT JOIN upd ON upd.k = locked.k`,
      [json((i) => i.before), json((i) => i.after)],
    );
  }
  const locked = new Map(rows.map((r) => [r.id, r]));
  const notLocked = keys.filter((key) => !locked.has(key));
  const present = notLocked.length ? new Set((await tx.queryRaw<{ id: string }>(`SELECT ${k}::text AS id FROM ${t} WHERE ${k} = ANY($1)`, [notLocked])).map((r) => r.id)) : new Set<string>();
  return keys.map((key): ItemOutcome => {
    const i = byKey.get(key) as RevertItem;
    const r = locked.get(key);
    if (r?.done) return { id: i.plan.id, outcome: 'applied', detail: i.plan.change, audit: revertAudit(i, opts, r.before, image.columns === 'row' ? null : r.after) };
    if (r) {
      // Still as its before-image, or as an earlier revert of the run left it (a column its
      // trigger stamps then differs from the before-image): already reverted.
      if ((i.before && sameJson(r.before, i.before)) || i.revertedTo.some((img) => img !== null && sameJson(r.before, img))) return { id: i.plan.id, outcome: 'lost', label: 'already-reverted', detail: 'the row already holds its before-image: nothing to do' };
      return { id: i.plan.id, outcome: 'lost', detail: 'changed since the run: left alone' };
    }
    if (present.has(key)) return { id: i.plan.id, outcome: 'skipped', detail: 'locked by another transaction; left alone' };
    return { id: i.plan.id, outcome: 'lost', detail: 'the row no longer exists' };
  });
}
