/**
 * What counts as a secret, and masking. Secrets are classified where values are produced (the cascade, the config
 * diff and plan, connection descriptions): a value of a secret is never put into an output. The CLI's last-line
 * scrubber (scrubText, scrubJson) is only a backstop for text the tool did not write itself (a server's error):
 * it replaces values long enough to be unique, never the words the output itself is made of, and works on the
 * string leaves of a JSON document, never on its serialised text.
 */

const SECRET_NAME = /PASSWORD|SECRET|TOKEN|KEY|CREDENTIAL|PRIVATE|SALT/i;
export const MASK = '****';
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

const DURATION_UNITS = 'ms|us|µs|ns|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|wks?|weeks?|mo|months?|y|yrs?|years?';
const SIZE_UNITS = 'b|bytes?|k|kb|kib|m|mb|mib|g|gb|gib|t|tb|tib';
const DURATION = new RegExp(`^(\\d+(\\.\\d+)?\\s*(${DURATION_UNITS}))+$`, 'i');
const SIZE = new RegExp(`^\\d+(\\.\\d+)?\\s*(${SIZE_UNITS})$`, 'i');
const ISO_DURATION = /^P(?=\d|T\d)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$/i;

/**
 * Values that configure rather than authenticate, whatever the key is called: numbers (up to 15 digits — a longer
 * run of digits may be a generated token), booleans, durations (`15m`, `1h30m`, `PT15M`) and sizes (`4kb`).
 * `AUTH_ACCESS_TOKEN_EXPIRES_IN=900`, `AUTH_REFRESH_TOKEN_ROTATION=false`, `NEW_KEY_AFTER=1` are settings.
 */
export function looksLikeSetting(value: string): boolean {
  const v = value.trim();
  if (v === '') return false;
  if (/^[+-]?\d{1,15}(\.\d+)?$/.test(v) || /^[+-]?\d{0,15}\.\d+$/.test(v)) return true;
  if (/^(true|false|yes|no|on|off|enabled|disabled|none|null)$/i.test(v)) return true;
  return DURATION.test(v) || SIZE.test(v) || ISO_DURATION.test(v);
}

/** Names of settings about secrets (lifetimes, limits, rotation, algorithms): `*_EXPIRES_IN`, `*_MIN_*`, `*_ROTATION`. */
const SETTING_NAME =
  /(_EXPIRES(_IN|_AT)?|_EXPIRY|_EXPIRATION|_TTL|_LIFETIME|_MAX_AGE|_TIMEOUT|_INTERVAL|_ROTATION|_LENGTH|_SIZE|_BITS|_COUNT|_LIMIT|_ALGORITHM|_ALG|_ENABLED|_DISABLED|_REQUIRED)$|_(MIN|MAX)(_|$)/i;

/** true when a secret-sounding name is a setting about secrets (`AUTH_PASSWORD_MIN_LENGTH`, `JWT_KEY_ROTATION`). */
export function isSettingName(key: string): boolean {
  return SETTING_NAME.test(key);
}

/** The name says "secret" (PASSWORD, SECRET, TOKEN, KEY, CREDENTIAL, PRIVATE, SALT) and is not a setting about one. */
export function hasSecretName(key: string): boolean {
  return SECRET_NAME.test(key) && !isSettingName(key);
}

/**
 * Is this key/value a secret (leaving taint aside)? By value: a URL embedding credentials is a secret whatever
 * its key. By name: a key containing PASSWORD, SECRET, TOKEN, KEY, CREDENTIAL, PRIVATE or SALT — unless the name
 * is a setting about secrets (`*_EXPIRES_IN`, `*_MIN_*`, `*_ROTATION`, …, see isSettingName) or the value only
 * configures (a number, boolean, duration or size, see looksLikeSetting). An empty value of a secret name stays
 * secret (a secret not set yet). Without a value: by name only.
 * A value that expands a secret is a secret too (taint): the cascade reader marks it (EnvVar.secret, EnvVar.taint).
 */
export function isSecretKey(key: string, value?: string): boolean {
  if (value !== undefined && urlHasCredentials(value)) return true;
  if (!hasSecretName(key)) return false;
  return value === undefined || !looksLikeSetting(value);
}

/** A resolved variable's classification: the cascade's (taint included), or by key and value for one made by hand. */
export function isSecretVar(v: { key: string; value: string; secret?: boolean }): boolean {
  return v.secret ?? isSecretKey(v.key, v.value);
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
  if (isSecretKey(key, value)) return value === '' ? '' : MASK;
  return value;
}

/**
 * What may be shown of a resolved variable: as maskValue, except that a tainted value (one that expands a secret)
 * is masked whole — even a URL, as the secret may sit anywhere in it.
 */
export function maskVar(v: { key: string; value: string; secret?: boolean; taint?: string[] }): string {
  if (v.taint && v.taint.length > 0) return v.value === '' ? '' : MASK;
  if (urlHasCredentials(v.value)) return maskUrl(v.value);
  if (isSecretVar(v)) return v.value === '' ? '' : MASK;
  return v.value;
}

/** The secret values among `vars` (whole values of secret variables, tainted ones included; passwords of credential URLs). */
export function secretValuesOf(vars: Iterable<{ key: string; value: string; secret?: boolean; taint?: string[] }>): string[] {
  const out = new Set<string>();
  for (const v of vars) {
    const { value } = v;
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
    // A credential URL is masked by its password (scrubText masks every URL's password); a tainted one whole.
    const urlOnly = p && p.end > p.start && !v.taint?.length && !hasSecretName(v.key);
    if (isSecretVar(v) && !urlOnly) out.add(value);
  }
  return [...out];
}

/**
 * Words the tool's own output is made of: environment names, PostgreSQL's default names, words of its messages
 * and JSON documents. A secret equal to one of them (`POSTGRES_PASSWORD=postgres`) is not scrubbed from text:
 * replacing the word everywhere would garble the output and show which word the secret is.
 */
const VOCABULARY = new Set(
  [
    'local', 'dev', 'development', 'staging', 'prod', 'production', 'postgres', 'postgresql', 'public', 'template0', 'template1',
    'localhost', '127.0.0.1', 'information_schema', 'pg_catalog', 'password', 'database', 'nself-migrate', 'migrate',
    'migration', 'rollback', 'checkpoint', 'checkpoints', 'configuration', 'environment', 'environments', 'secret',
    'differences', 'components', 'statements', 'created_at', 'applied_at', 'rolled_back', 'rolled_back_at', 'placeholder',
    'only_in_source', 'only_in_target', 'environment_specific', 'same_definition', 'interrupted', 'sourceRows',
    'targetRows', 'rowsBefore', 'rowsAfter', 'perComponent', 'confirmation', 'notHandled', 'deletes_data', 'identical',
    'undefined', 'nself-migrate-bin',
  ].map((w) => w.toLowerCase()),
);

/** Shortest secret the last-line scrubber replaces: shorter values are not unique enough to find by search. */
export const SCRUB_MIN_LENGTH = 8;

/**
 * May the last-line scrubber search for `value` and replace it? Only when it is long enough to be unique
 * (≥ 8 characters), is not a JSON literal (number, true, false, null) and is not a word of the output's own
 * vocabulary — the words above and `shown`: values the output shows legitimately (the non-secret values of the
 * loaded environments, e.g. POSTGRES_USER=postgres beside POSTGRES_PASSWORD=postgres).
 */
export function isScrubbable(value: string, shown: ReadonlySet<string> = new Set()): boolean {
  if (value.length < SCRUB_MIN_LENGTH) return false;
  const t = value.trim();
  if (t.length < SCRUB_MIN_LENGTH) return false;
  if (/^(true|false|null)$/i.test(t) || /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(t)) return false;
  if (VOCABULARY.has(t.toLowerCase())) return false;
  return !shown.has(value);
}

/**
 * What the last-line scrubber should look for, given the variables of the loaded environments: their secret values
 * (and %-encoded forms) that isScrubbable allows, the non-secret values counting as vocabulary.
 */
export function scrubListOf(vars: Iterable<{ key: string; value: string; secret?: boolean; taint?: string[] }>): string[] {
  const all = [...vars];
  const shown = new Set(all.filter((v) => !isSecretVar(v) && !urlHasCredentials(v.value)).map((v) => v.value));
  const out = new Set<string>();
  for (const s of secretValuesOf(all)) {
    for (const form of [s, encodeURIComponent(s)]) if (isScrubbable(form, shown)) out.add(form);
  }
  return [...out];
}

/**
 * Scrub text: every occurrence of a listed secret (longest first, so that a secret containing another is masked
 * whole) that isScrubbable allows, and the password of every URL in it.
 */
export function scrubText(text: string, secrets: readonly string[]): string {
  let out = text;
  const list = secrets.filter((s) => isScrubbable(s)).sort((a, b) => b.length - a.length);
  for (const s of list) if (out.includes(s)) out = out.split(s).join(MASK);
  return out.replace(/[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s'"<>`]+/g, (u) => maskUrl(u));
}

/**
 * A JSON value with scrubText applied to every string leaf (and object key); numbers, booleans and null are left
 * alone. The result serialises to valid JSON of the same shape.
 */
export function scrubJson(value: unknown, secrets: readonly string[]): unknown {
  if (typeof value === 'string') return scrubText(value, secrets);
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => scrubJson(v, secrets));
  const withJson = value as { toJSON?: () => unknown };
  if (typeof withJson.toJSON === 'function') return scrubJson(withJson.toJSON(), secrets);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[scrubText(k, secrets)] = scrubJson(v, secrets);
  return out;
}

/** A secret by name in a JSON object (server.json): a non-empty string that is not a setting, or an object/array. */
function secretJsonField(key: string, value: unknown): boolean {
  if (!key || !hasSecretName(key) || value === null || value === undefined) return false;
  if (typeof value === 'string') return value !== '' && !looksLikeSetting(value);
  return typeof value === 'object';
}

/**
 * A JSON value with secrets masked: values under secret-named keys become '****' (not numbers, booleans or settings),
 * strings that are credential URLs lose their password. For server.json fields in diffs and plans.
 */
export function maskJson(value: unknown, key = ''): unknown {
  if (secretJsonField(key, value)) return MASK;
  if (typeof value === 'string') return urlHasCredentials(value) ? maskUrl(value) : value;
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => maskJson(v, key));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = maskJson(v, k);
  return out;
}

/** true when a JSON value holds anything secret (a secret-named key with a secret value, or a credential URL). */
export function jsonHasSecrets(value: unknown, key = ''): boolean {
  if (value === null || value === undefined) return false;
  if (secretJsonField(key, value)) return true;
  if (typeof value !== 'object') return typeof value === 'string' && urlHasCredentials(value);
  if (Array.isArray(value)) return value.some((v) => jsonHasSecrets(v, key));
  return Object.entries(value).some(([k, v]) => jsonHasSecrets(v, k));
}
