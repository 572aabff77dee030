/**
 * No password or token is ever printed. Every message opsctl writes goes through maskSecrets
 * (src/context.ts, src/cli.ts): by shape (a URL's userinfo, password=…), and by value (the
 * passwords and keys the environment, the flags and the config hold).
 */

/**
 * Shorter secrets are masked only where their shape says they are one (a URL's userinfo):
 * replacing every "demo" or "test" in a message would garble it and tell the secret anyway.
 */
export const MIN_SECRET_LENGTH = 6;

/**
 * Anything URL-like, malformed too: a scheme (or a scheme that lost its colon, `postgres//`),
 * then everything up to a space or a quote. Its userinfo is what comes before the last `@`:
 * an unencoded `/`, `@`, `#` or `:` in a password must not end the masking early.
 */
const URL_LIKE = /([a-z][a-z0-9+.-]*:?\/\/)([^\s"'`<>]+)/gi;

/** key=value pairs that carry a secret (libpq keyword strings, URL query parameters, env dumps). */
const SECRET_PAIR = /((?:\b|_)(?:[a-z_]*pass(?:word|wd)?|pwd|[a-z_]*secret[a-z_]*|[a-z_]*session_?token)\s*=\s*)('[^']*'|"[^"]*"|[^\s&;,'"]+)/gi;

function maskUserinfo(_m: string, scheme: string, rest: string): string {
  const at = rest.lastIndexOf('@');
  if (at < 0) return scheme + rest;
  const colon = rest.indexOf(':');
  if (colon < 0 || colon > at) return scheme + rest; // a user name only
  return `${scheme}${rest.slice(0, colon + 1)}***${rest.slice(at)}`;
}

/** Masks URLs' passwords, secret key=value pairs and the given secret values in free text. */
export function maskSecrets(text: string, secrets: Array<string | undefined | null> = []): string {
  let out = text.replace(URL_LIKE, maskUserinfo).replace(SECRET_PAIR, '$1***');
  // Longest first: a secret that contains another is masked whole.
  const values = [...new Set(secrets.filter((s): s is string => typeof s === 'string' && s.length >= MIN_SECRET_LENGTH))].sort((a, b) => b.length - a.length);
  for (const s of values) if (out.includes(s)) out = out.split(s).join('***');
  return out;
}

const decode = (s: string): string => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

/**
 * The password in a connection string, parsed or not: what follows the first `:` of the
 * userinfo (after `//`, up to the last `@`). Both as written and percent-decoded.
 */
export function passwordsIn(text: string | undefined | null): string[] {
  if (!text) return [];
  const slashes = text.indexOf('//');
  if (slashes < 0) return [];
  const rest = text.slice(slashes + 2);
  const at = rest.lastIndexOf('@');
  const colon = rest.indexOf(':');
  if (at < 0 || colon < 0 || colon > at) return [];
  const pw = rest.slice(colon + 1, at);
  return pw ? [...new Set([pw, decode(pw)])] : [];
}

/** The secrets in the environment: the libpq password, AWS keys, and DATABASE_URL's password. */
export function environmentSecrets(env: NodeJS.ProcessEnv): string[] {
  const out = [env.PGPASSWORD, env.AWS_SECRET_ACCESS_KEY, env.AWS_SESSION_TOKEN, ...passwordsIn(env.DATABASE_URL)];
  return out.filter((s): s is string => Boolean(s));
}

/** A connection string for display: its password masked, whether or not it parses. */
export function maskConnectionString(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const key of [...u.searchParams.keys()]) {
      if (/pass|secret|token|key/i.test(key)) u.searchParams.set(key, '***');
    }
    return u.toString();
  } catch {
    // Not a URL (malformed, or a libpq keyword string): masked by shape and by its own password.
    return maskSecrets(url, passwordsIn(url)).replace(/(password\s*=\s*)('[^']*'|\S+)/gi, '$1***');
  }
}
