/**
 * A small JSON Schema (draft 2020-12) validator for exactly the keywords docs/schemas uses:
 * type (one or several, "integer" included), const, enum, properties, required,
 * additionalProperties (boolean or schema), items, minimum, oneOf, anyOf, if/then/else and
 * $ref to a pointer in the same document ("#/$defs/…"). Any other keyword is an error, never
 * silently ignored: a schema that grows a keyword this validator does not know fails the test
 * instead of passing unchecked. (No validator is a dependency of opsctl; this is test code.)
 */
export type Schema = boolean | { [k: string]: unknown };

const ANNOTATIONS = new Set(['$schema', '$id', '$defs', '$comment', 'title', 'description', 'examples', 'default']);
const KNOWN = new Set([...ANNOTATIONS, 'type', 'const', 'enum', 'properties', 'required', 'additionalProperties', 'items', 'minimum', 'oneOf', 'anyOf', 'if', 'then', 'else', '$ref']);

const typeOf = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
const fits = (v: unknown, t: string): boolean => (t === 'integer' ? Number.isInteger(v) : t === 'number' ? typeof v === 'number' && Number.isFinite(v) : typeOf(v) === t);

/** Deep equality of JSON values (const and enum). */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeOf(a) !== typeOf(b) || typeof a !== 'object' || a === null) return false;
  if (Array.isArray(a)) return a.length === (b as unknown[]).length && a.every((x, i) => same(x, (b as unknown[])[i]));
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b as object, k) && same((a as any)[k], (b as any)[k]));
}

/** The schema a JSON pointer ("#/$defs/item") names in the root document. */
export function resolve(root: Schema, ref: string): Schema {
  if (!ref.startsWith('#')) throw new Error(`only same-document $ref is supported: ${ref}`);
  let at: any = root;
  for (const raw of ref.slice(1).split('/').filter(Boolean)) {
    const part = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (at === null || typeof at !== 'object' || !Object.hasOwn(at, part)) throw new Error(`$ref ${ref} names nothing`);
    at = at[part];
  }
  return at as Schema;
}

/** Every reason `value` does not fit `schema` (empty: it fits), each with its JSON pointer. */
export function validate(root: Schema, value: unknown, schema: Schema = root, path = ''): string[] {
  if (schema === true) return [];
  if (schema === false) return [`${path || '/'}: no value is allowed here`];
  for (const k of Object.keys(schema)) if (!KNOWN.has(k)) throw new Error(`keyword "${k}" at ${path || '/'} is not supported by this validator`);
  const errors: string[] = [];
  const at = path || '/';
  const s = schema as Record<string, any>;
  if (s.$ref !== undefined) errors.push(...validate(root, value, resolve(root, s.$ref), path));
  if (s.type !== undefined) {
    const types: string[] = Array.isArray(s.type) ? s.type : [s.type];
    if (!types.some((t) => fits(value, t))) errors.push(`${at}: ${JSON.stringify(value)} is not of type ${types.join('|')}`);
  }
  if (Object.hasOwn(s, 'const') && !same(value, s.const)) errors.push(`${at}: must be ${JSON.stringify(s.const)}`);
  if (s.enum !== undefined && !(s.enum as unknown[]).some((e) => same(value, e))) errors.push(`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(s.enum)}`);
  if (s.minimum !== undefined && typeof value === 'number' && value < s.minimum) errors.push(`${at}: ${value} is below ${s.minimum}`);
  if (typeOf(value) === 'object') {
    const obj = value as Record<string, unknown>;
    for (const r of (s.required as string[] | undefined) ?? []) if (!Object.hasOwn(obj, r)) errors.push(`${at}: "${r}" is required`);
    const props = (s.properties ?? {}) as Record<string, Schema>;
    for (const [k, v] of Object.entries(obj)) {
      if (Object.hasOwn(props, k)) errors.push(...validate(root, v, props[k] as Schema, `${path}/${k}`));
      else if (s.additionalProperties !== undefined) errors.push(...validate(root, v, s.additionalProperties as Schema, `${path}/${k}`));
    }
  }
  if (Array.isArray(value) && s.items !== undefined) value.forEach((v, i) => errors.push(...validate(root, v, s.items as Schema, `${path}/${i}`)));
  if (s.anyOf !== undefined) {
    const each = (s.anyOf as Schema[]).map((sub) => validate(root, value, sub, path));
    if (!each.some((e) => e.length === 0)) errors.push(`${at}: matches none of anyOf (${each.map((e) => e.join('; ')).join(' | ')})`);
  }
  if (s.oneOf !== undefined) {
    const each = (s.oneOf as Schema[]).map((sub) => validate(root, value, sub, path));
    const n = each.filter((e) => e.length === 0).length;
    if (n !== 1) errors.push(`${at}: matches ${n} of oneOf, not exactly one${n ? '' : ` (${each.map((e) => e.join('; ')).join(' | ')})`}`);
  }
  if (s.if !== undefined) {
    const branch = validate(root, value, s.if as Schema, path).length === 0 ? s.then : s.else;
    if (branch !== undefined) errors.push(...validate(root, value, branch as Schema, path));
  }
  return errors;
}
