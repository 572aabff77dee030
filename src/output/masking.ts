/**
 * No password or token is ever printed. Every message that may carry a connection string
 * or an error text from a driver goes through maskSecrets.
 */
export function maskConnectionString(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const key of [...u.searchParams.keys()]) {
      if (/pass|secret|token|key/i.test(key)) u.searchParams.set(key, '***');
    }
    return u.toString();
  } catch {
    // Not a URL (a libpq keyword string?): mask password=... pairs.
    return url.replace(/(password\s*=\s*)('[^']*'|\S+)/gi, '$1***');
  }
}

const URL_WITH_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)([^\s@/]+)(@)/gi;

/** Masks URLs with passwords and any known secret values in free text. */
export function maskSecrets(text: string, secrets: Array<string | undefined | null> = []): string {
  let out = text.replace(URL_WITH_PASSWORD, '$1***$3');
  for (const s of secrets) {
    if (s && s.length >= 3) out = out.split(s).join('***');
  }
  return out;
}
