/**
 * What counts as a secret, and masking. Used by every output (JSON included): a value of a secret key is never
 * shown; a URL shows everything but its password.
 */

const SECRET_NAME = /PASSWORD|SECRET|TOKEN|KEY|CREDENTIAL|PRIVATE|SALT/i;
const MASK = '****';
/** Query parameters of a URL that carry credentials. */
const SECRET_PARAM = /([?&;](?:password|passwd|pass|pwd|secret|token|sslpassword|api_?key|access_?key)=)([^&;#]*)/gi;

/** The user-info password of a URL-looking value (`scheme://user:password@host…`), if any. */
function urlPassword(value: string): { start: number; end: number } | undefined {
  const m = /^\s*[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(value);
  if (!m) return undefined;
  const restStart = m[0].length;
  // The authority ends at '?' or '#'; a password may contain an unencoded '/' or '@', so take the LAST '@'.
  let stop = value.length;
  for (const c of ['?', '#']) {
    const k = value.indexOf(c, restStart);
    if (k >= 0 && k < stop) stop = k;
  }
  const at = value.lastIndexOf('@', stop - 1);
  if (at < restStart) return undefined;
  const colon = value.indexOf(':', restStart);
  if (colon < 0 || colon > at) return undefined;
  return { start: colon + 1, end: at };
}

/** true when `value` is a URL that embeds a password (user-info or a password-like query parameter). */
export function urlHasCredentials(value: string): boolean {
  const p = urlPassword(value);
  if (p && p.end > p.start) return true;
  if (/^\s*[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(value)) {
    SECRET_PARAM.lastIndex = 0;
    for (const m of value.matchAll(SECRET_PARAM)) if (m[2] !== '') return true;
  }
  return false;
}

/**
 * A key is secret when its name contains PASSWORD, SECRET, TOKEN, KEY, CREDENTIAL, PRIVATE or SALT, or when its
 * value is a URL embedding credentials (`DATABASE_URL=postgres://u:pw@h/db`, any other `*_URL` — or any key at
 * all: a credential URL is masked whatever its name).
 */
export function isSecretKey(key: string, value?: string): boolean {
  if (SECRET_NAME.test(key)) return true;
  return value !== undefined && urlHasCredentials(value);
}

/** A URL with its password (user-info and password-like query parameters) replaced by ****. */
export function maskUrl(url: string): string {
  let out = url;
  const p = urlPassword(out);
  if (p && p.end > p.start) out = out.slice(0, p.start) + MASK + out.slice(p.end);
  return out.replace(SECRET_PARAM, (_all, head: string, v: string) => (v === '' ? head : head + MASK));
}

/**
 * What may be shown of `value`: a credential URL with its password masked; '****' for any other secret
 * (an empty secret stays '' — it shows that a value is missing, not what it is); the value itself otherwise.
 */
export function maskValue(key: string, value: string): string {
  if (urlHasCredentials(value)) return maskUrl(value);
  if (SECRET_NAME.test(key)) return value === '' ? '' : MASK;
  return value;
}

/**
 * Scrub known secret values (and their percent-encoded forms) out of arbitrary text, and mask the password of
 * every URL in it. Longest first, so that a secret containing another is masked whole.
 */
export function maskText(text: string, secrets: string[]): string {
  const all = new Set<string>();
  for (const s of secrets) {
    if (!s) continue;
    all.add(s);
    const enc = encodeURIComponent(s);
    if (enc !== s) all.add(enc);
  }
  let out = text;
  for (const s of [...all].sort((a, b) => b.length - a.length)) out = out.split(s).join(MASK);
  return out.replace(/[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s'"<>`]+/g, (u) => maskUrl(u));
}

/** The secret values among `vars` (whole values of secret keys, passwords of credential URLs). */
export function secretValuesOf(vars: Iterable<{ key: string; value: string }>): string[] {
  const out = new Set<string>();
  for (const { key, value } of vars) {
    if (value === '') continue;
    const p = urlPassword(value);
    if (p && p.end > p.start) {
      const pw = value.slice(p.start, p.end);
      out.add(pw);
      try {
        out.add(decodeURIComponent(pw));
      } catch {
        /* not %-encoded */
      }
    }
    if (SECRET_NAME.test(key)) out.add(value);
  }
  return [...out];
}

/**
 * A JSON value with secrets masked: values under secret-named keys become '****', strings that are credential
 * URLs lose their password. For server.json fields in diffs and plans.
 */
export function maskJson(value: unknown, key = ''): unknown {
  if (key && SECRET_NAME.test(key) && value !== null && value !== undefined && value !== '') return MASK;
  if (typeof value === 'string') return urlHasCredentials(value) ? maskUrl(value) : value;
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => maskJson(v, key));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = maskJson(v, k);
  return out;
}

/** true when a JSON value holds anything secret (a secret-named key with a value, or a credential URL). */
export function jsonHasSecrets(value: unknown, key = ''): boolean {
  if (value === null || value === undefined) return false;
  if (key && SECRET_NAME.test(key) && value !== '') return true;
  if (typeof value !== 'object') return typeof value === 'string' && urlHasCredentials(value);
  if (Array.isArray(value)) return value.some((v) => jsonHasSecrets(v, key));
  return Object.entries(value).some(([k, v]) => jsonHasSecrets(v, k));
}
