/**
 * Text from a database or an API shown on a terminal: its control characters in a visible form,
 * so a value can neither move the cursor, retitle the window nor recolour what follows
 * (the class of kubectl's CVE-2021-25743). C0 (with \n \r \t by name), DEL and C1 become
 * `\n`, `\xNN`; everything else is kept as it is.
 */
const CONTROL = /[\x00-\x1f\x7f-\x9f]/g;
const HAS_CONTROL = /[\x00-\x1f\x7f-\x9f]/;
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
const visible = (c: string): string => NAMED[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

export function escapeControl(s: string): string {
  // Nearly every value has none: a test instead of a replace keeps the string as it is.
  return HAS_CONTROL.test(s) ? s.replace(CONTROL, visible) : s;
}
