/**
 * Control characters made visible. A value from the outside (an id, a flag, a configured name,
 * a driver's message) printed raw could forge a line of output (a newline then "opsctl: done"),
 * move the cursor or recolour the terminal (ESC). Every message opsctl prints goes through
 * escapeControl; tables and reports use it too.
 */
// C0, DEL and C1: everything a terminal may act on rather than print.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

const visible = (c: string): string => {
  const named = NAMED[c];
  if (named) return named;
  const code = c.charCodeAt(0);
  // \xNN for C0 and DEL (what most tools print); \u{..} form for C1, which is not a byte in UTF-8.
  return code < 0x80 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
};

/** `\n` shown as `\n`, ESC as `\x1b`, NEL as `\u0085`: one line, nothing a terminal interprets. */
export function escapeControl(s: string): string {
  CONTROL.lastIndex = 0;
  return CONTROL.test(s) ? s.replace(CONTROL, visible) : s;
}
