/**
 * What PostgreSQL 13–18 render differently for the same object, brought to one form so that it never shows up as a
 * change. Pure functions over the server's own renderings; inspect.ts applies them to every server alike.
 */
import type { Fact, SchemaModel } from './model.js';

/** 170004 → "17.4", 90624 → "9.6.24". */
export function versionText(v: number): string {
  return v >= 100000 ? `${Math.floor(v / 10000)}.${v % 10000}` : `${Math.floor(v / 10000)}.${Math.floor(v / 100) % 100}.${v % 100}`;
}

// ---------------------------------------------------------------- ICU locale names

/** ICU's legacy keyword names (`de@collation=phonebook`) → BCP 47 -u- keys, as ICU's uloc_toLanguageTag maps them. */
const ICU_KEYS: Record<string, string> = {
  collation: 'co', colstrength: 'ks', colcasefirst: 'kf', colnumeric: 'kn', colbackwards: 'kb', colalternate: 'ka',
  colnormalization: 'kk', colreorder: 'kr', colcaselevel: 'kc', calendar: 'ca', numbers: 'nu', currency: 'cu',
  hours: 'hc', measure: 'ms', variabletop: 'vt',
};
const ICU_VALUES: Record<string, Record<string, string>> = {
  co: { phonebook: 'phonebk', traditional: 'trad', dictionary: 'dict', gb2312han: 'gb2312' },
  ks: { primary: 'level1', secondary: 'level2', tertiary: 'level3', quaternary: 'level4', identical: 'identic' },
  ka: { 'non-ignorable': 'noignore' },
  ca: { gregorian: 'gregory', ethiopic_amete_alem: 'ethioaa', 'islamic-civil': 'islamic-civil' },
};
const BOOL_KEYS = new Set(['kb', 'kc', 'kk', 'kn']);

/**
 * One spelling per ICU locale. PostgreSQL 16+ stores the BCP 47 language tag ICU makes of what CREATE COLLATION was
 * given (`de_DE` → `de-DE`, `und@colStrength=secondary` → `und-u-ks-level2`, `''` → `und`); 13–15 store the text as
 * given. Both sides are brought to the tag form, the way ICU does it for the spellings seen in practice; a spelling
 * this does not know stays as it is (and differs, rather than being guessed equal).
 */
export function canonicalIcuLocale(locale: string | null | undefined): string | null {
  if (locale === null || locale === undefined) return null;
  const raw = locale.trim();
  if (raw === '') return 'und';
  const at = raw.indexOf('@');
  const base = at < 0 ? raw : raw.slice(0, at);
  const kw = at < 0 ? '' : raw.slice(at + 1);
  // base: language[-script][-region][-variant…][-u-…/-x-…] with '_' or '-'
  const parts = base.replace(/_/g, '-').split('-').filter((p) => p !== '');
  const out: string[] = [];
  let i = 0;
  let ext = false;
  for (const p of parts) {
    const low = p.toLowerCase();
    if (ext || (low.length === 1 && i > 0)) {
      ext = true; // extensions and private use: lower case, as ICU writes them
      out.push(low);
    } else if (i === 0) out.push(low);
    else if (/^[a-z]{4}$/i.test(p) && out.length === 1) out.push(low[0]!.toUpperCase() + low.slice(1));
    else if (/^([a-z]{2}|\d{3})$/i.test(p)) out.push(p.toUpperCase());
    else out.push(low);
    i++;
  }
  if (kw) {
    const u: [string, string][] = [];
    for (const pair of kw.split(';')) {
      const eq = pair.indexOf('=');
      if (eq < 0) return raw;
      const k = ICU_KEYS[pair.slice(0, eq).trim().toLowerCase()];
      if (!k) return raw;
      let v = pair.slice(eq + 1).trim().toLowerCase();
      v = ICU_VALUES[k]?.[v] ?? v;
      if (BOOL_KEYS.has(k)) v = v === 'yes' || v === 'on' ? 'true' : v === 'no' || v === 'off' ? 'false' : v;
      u.push([k, v]);
    }
    if (out.includes('u')) return raw; // both forms at once: leave it
    u.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    out.push('u', ...u.flatMap(([k, v]) => [k, v]));
  }
  return out.join('-');
}

// ---------------------------------------------------------------- view definitions

interface Tok { t: string; kind: 'ws' | 'id' | 'qid' | 'str' | 'num' | 'op' | 'open' | 'close' | 'comma' | 'dot' | 'cast' | 'semi' }

function tokenize(sql: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    let j = i + 1;
    let kind: Tok['kind'];
    if (/\s/.test(c)) {
      while (j < n && /\s/.test(sql[j]!)) j++;
      kind = 'ws';
    } else if (c === '"') {
      while (j < n && !(sql[j] === '"' && sql[j + 1] !== '"')) j += sql[j] === '"' ? 2 : 1;
      j++;
      kind = 'qid';
    } else if (c === "'" || ((c === 'E' || c === 'e') && sql[i + 1] === "'")) {
      j = c === "'" ? i + 1 : i + 2;
      const esc = c !== "'";
      while (j < n && !(sql[j] === "'" && sql[j + 1] !== "'")) j += (esc && sql[j] === '\\') || sql[j] === "'" ? 2 : 1;
      j++;
      kind = 'str';
    } else if (c === '$' && /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.test(sql.slice(i))) {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i))![0];
      const end = sql.indexOf(tag, i + tag.length);
      j = end < 0 ? n : end + tag.length;
      kind = 'str';
    } else if (/[A-Za-z_\u0080-\uffff]/.test(c)) {
      while (j < n && /[A-Za-z0-9_$\u0080-\uffff]/.test(sql[j]!)) j++;
      kind = 'id';
    } else if (/[0-9]/.test(c)) {
      while (j < n && /[0-9.eE]/.test(sql[j]!)) j++;
      kind = 'num';
    } else if (c === '(' || c === '[') kind = 'open';
    else if (c === ')' || c === ']') kind = 'close';
    else if (c === ',') kind = 'comma';
    else if (c === ';') kind = 'semi';
    else if (c === '.') kind = 'dot';
    else if (c === ':' && sql[i + 1] === ':') {
      j = i + 2;
      kind = 'cast';
    } else {
      while (j < n && /[+\-*/<>=~!@#%^&|`?]/.test(sql[j]!) && /[+\-*/<>=~!@#%^&|`?]/.test(c)) j++;
      kind = 'op';
    }
    out.push({ t: sql.slice(i, j), kind });
    i = j;
  }
  return out;
}

const kw = (t: Tok | undefined, ...words: string[]) => t !== undefined && t.kind === 'id' && words.includes(t.t.toUpperCase());
const FROM_END = ['WHERE', 'GROUP', 'HAVING', 'WINDOW', 'ORDER', 'LIMIT', 'OFFSET', 'FETCH', 'FOR'];

/**
 * The form of a view's definition (pg_get_viewdef) that is compared. PostgreSQL 16+ prints the columns of a query whose
 * FROM has a single item without its name (`SELECT id FROM t`); 13–15 print `SELECT t.id FROM t`. Here, on every
 * version, the qualifier of that single item is removed wherever it appears (16+ keeps it in a few places, such as a
 * correlated subquery or an ORDER BY that an output name would capture): both sides then read the same. This is only
 * compared, never executed: DDL uses the server's own text.
 */
export function viewDefForComparison(def: string): string {
  const all = tokenize(def);
  const sig = all.map((t, i) => ({ t, i })).filter((x) => x.t.kind !== 'ws');
  // depth of each significant token
  const depth: number[] = [];
  let d = 0;
  for (const { t } of sig) {
    if (t.kind === 'close') d--;
    depth.push(d);
    if (t.kind === 'open') d++;
  }
  const top = (k: number) => depth[k] === 0;
  // the main query: past a WITH clause (CTE bodies are parenthesised), the first SELECT at depth 0
  let k = 0;
  if (kw(sig[0]?.t, 'WITH')) {
    while (k < sig.length && !(top(k) && kw(sig[k]!.t, 'SELECT'))) k++;
  }
  if (!kw(sig[k]?.t, 'SELECT')) return def;
  for (let m = k; m < sig.length; m++) if (top(m) && kw(sig[m]!.t, 'UNION', 'INTERSECT', 'EXCEPT')) return def;
  let from = -1;
  for (let m = k + 1; m < sig.length; m++) if (top(m) && kw(sig[m]!.t, 'FROM')) {
    from = m;
    break;
  }
  if (from < 0) return def;
  let end = from + 1;
  while (end < sig.length && !(top(end) && (kw(sig[end]!.t, ...FROM_END) || sig[end]!.t.kind === 'semi'))) end++;
  // exactly one FROM item: no comma or JOIN at depth 0; a parenthesised item must be a subquery, not a join
  for (let m = from + 1; m < end; m++) {
    if (!top(m)) continue;
    if (sig[m]!.t.kind === 'comma' || kw(sig[m]!.t, 'JOIN')) return def;
  }
  let m = from + 1;
  while (kw(sig[m]?.t, 'ONLY', 'LATERAL')) m++;
  let alias: string | undefined;
  if (sig[m]?.t.kind === 'open') {
    if (!kw(sig[m + 1]?.t, 'SELECT', 'WITH', 'VALUES')) return def; // (a JOIN b …)
    while (m < end && !(top(m) && sig[m]!.t.kind === 'close')) m++;
    m++;
    if (kw(sig[m]?.t, 'AS')) m++;
    if (sig[m]?.t.kind === 'id' || sig[m]?.t.kind === 'qid') alias = sig[m]!.t.t;
  } else {
    // [schema.]name, or a function call
    let last: string | undefined;
    while (m < end && (sig[m]!.t.kind === 'id' || sig[m]!.t.kind === 'qid')) {
      last = sig[m]!.t.t;
      if (sig[m + 1]?.t.kind !== 'dot') break;
      m += 2;
    }
    m++;
    if (sig[m]?.t.kind === 'open') {
      // function in FROM: its alias follows the argument list
      while (m < end && !(top(m) && sig[m]!.t.kind === 'close')) m++;
      m++;
      if (kw(sig[m]?.t, 'WITH')) m += 2; // WITH ORDINALITY
      last = undefined;
    }
    if (kw(sig[m]?.t, 'AS')) m++;
    if ((sig[m]?.t.kind === 'id' && !kw(sig[m]?.t, 'TABLESAMPLE', ...FROM_END)) || sig[m]?.t.kind === 'qid') alias = sig[m]!.t.t;
    else alias = last;
  }
  if (alias === undefined) return def;
  const drop = new Set<number>();
  for (let s = 0; s + 2 < sig.length; s++) {
    if (s > from && s < end) continue; // the FROM item itself
    const a = sig[s]!.t;
    if ((a.kind !== 'id' && a.kind !== 'qid') || a.t !== alias || sig[s + 1]!.t.kind !== 'dot') continue;
    const col = sig[s + 2]!.t;
    if (col.kind !== 'id' && col.kind !== 'qid') continue; // alias.* stays
    const prev = sig[s - 1]?.t;
    if (prev && (prev.kind === 'dot' || prev.kind === 'cast')) continue;
    const next = sig[s + 3]?.t;
    if (next && (next.kind === 'open' || next.kind === 'dot')) continue; // schema.function(…), schema.type.x
    drop.add(sig[s]!.i);
    drop.add(sig[s + 1]!.i);
  }
  if (!drop.size) return def;
  return all.filter((_, i) => !drop.has(i)).map((t) => t.t).join('');
}

// ---------------------------------------------------------------- what a target's version cannot hold

function unquote(sql: string): string {
  const m = /^"((?:[^"]|"")*)"$/.exec(sql);
  return m ? m[1]!.replace(/""/g, '"') : sql;
}

/**
 * Plan errors for objects the plan would create or change on the target that its PostgreSQL cannot hold: virtual
 * generated columns before 18, the builtin collation provider before 17, ICU tailoring rules before 16, a column's
 * compression method before 14, and extension
 * versions the target server has no scripts for (pg_available_extension_versions). Reported before anything runs.
 */
export function targetVersionErrors(written: Fact[], changed: [Fact, Fact][], target: SchemaModel): string[] {
  const errors: string[] = [];
  const tv = target.serverVersion;
  const on = `the target runs PostgreSQL ${versionText(tv)}`;
  const old = new Map(changed.map(([o, n]) => [n.id, o]));
  for (const f of written) {
    if (f.kind === 'column' && f.attrs.virtual && tv < 180000) {
      errors.push(`column ${f.meta.table}.${f.meta.sql} is a virtual generated column (PostgreSQL 18+) and ${on}, which has only stored ones: make it GENERATED ALWAYS AS (…) STORED on the source to migrate it`);
    }
    if (f.kind === 'column' && f.attrs.compression && tv < 140000) {
      errors.push(`column ${f.meta.table}.${f.meta.sql} sets a compression method (PostgreSQL 14+) and ${on}: reset it on the source (ALTER COLUMN … SET COMPRESSION default) to migrate it`);
    }
    if (f.kind === 'collation' && f.attrs.provider === 'b' && tv < 170000) {
      errors.push(`collation ${f.meta.sql} uses the builtin locale provider (PostgreSQL 17+) and ${on}: use an ICU or libc collation on the source`);
    }
    if (f.kind === 'collation' && f.attrs.icuRules && tv < 160000) {
      errors.push(`collation ${f.meta.sql} has ICU tailoring rules (PostgreSQL 16+) and ${on}: drop the rules on the source to migrate it`);
    }
    if (f.kind === 'extension' && target.availableExtensions) {
      const o = old.get(f.id);
      if (o && o.attrs.version === f.attrs.version) continue;
      const name = unquote(String(f.meta.sql));
      const version = String(f.attrs.version);
      const have = target.availableExtensions[name];
      if (have?.includes(version)) continue;
      errors.push(
        have
          ? `extension ${f.meta.sql} version ${version} is not available on the target (${on}; it has ${have.join(', ')}): install the extension's ${version} files on the target server, or bring the source to a version both have`
          : `extension ${f.meta.sql} is not available on the target (${on} and has no ${name} extension files): install the extension on the target server`,
      );
    }
  }
  return errors;
}

// ---------------------------------------------------------------- privileges only some versions have

/** Privileges a version introduced: compared only when both sides have them. */
const NEW_PRIVILEGES: { since: number; privs: string[] }[] = [{ since: 170000, privs: ['MAINTAIN', 'MAINTAIN*', '-MAINTAIN'] }];

/**
 * The two models as the diff should see them. PostgreSQL 17 added the MAINTAIN table privilege, and `GRANT ALL`
 * includes it there: between 17+ and an older server it cannot be compared (the older one cannot hold it), so it is
 * left out of both sides' grants (and of an owner's own entry: `-MAINTAIN` where the owner revoked it). Fingerprints
 * are taken from the models as inspected, not from these.
 */
export function comparableModels(source: SchemaModel, target: SchemaModel): [SchemaModel, SchemaModel] {
  const lo = Math.min(source.serverVersion, target.serverVersion);
  const hi = Math.max(source.serverVersion, target.serverVersion);
  const drop = new Set(NEW_PRIVILEGES.filter((p) => lo < p.since && hi >= p.since).flatMap((p) => p.privs));
  if (!drop.size) return [source, target];
  const strip = (m: SchemaModel): SchemaModel => ({
    ...m,
    facts: m.facts.flatMap((f) => {
      if (f.kind !== 'acl' && f.kind !== 'default_acl' && f.kind !== 'owner_acl') return [f];
      const privs = (f.attrs.privs as string[]).filter((p) => !drop.has(p));
      if (privs.length === (f.attrs.privs as string[]).length) return [f];
      // default privileges with none left still say "none" (they differ from the built-in defaults)
      return privs.length || f.kind === 'default_acl' ? [{ ...f, attrs: { ...f.attrs, privs } }] : [];
    }),
  });
  return [strip(source), strip(target)];
}
