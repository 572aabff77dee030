/** A word for a POSIX shell: as is when it holds only safe characters, otherwise single-quoted. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** `export NAME=value` lines, so `eval "$(…)"` or a paste into a shell sets them. */
export function exportLines(vars: Record<string, string>): string {
  return Object.entries(vars).map(([k, v]) => `export ${k}=${shellQuote(v)}\n`).join('');
}
