/**
 * The one place where identifiers and literals become SQL text.
 * Every name that reaches SQL goes through quoteIdent / qualify; every value through quoteLiteral
 * (or, better, a bind parameter).
 */

/** Quote an identifier always (never relies on the keyword list): "a""b". */
export function quoteIdent(name: string): string {
  if (name.includes('\u0000')) throw new Error('identifier contains a NUL byte');
  return '"' + (name.includes('"') ? name.replace(/"/g, '""') : name) + '"';
}

/** schema.name, both quoted. */
export function qualify(schema: string, name: string): string {
  return quoteIdent(schema) + '.' + quoteIdent(name);
}

/** Quote a string literal. Uses E'' only when a backslash is present, so output stays readable. */
export function quoteLiteral(value: string | number | boolean | null): string {
  if (value === null) return 'NULL';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error('non-finite number literal');
    return String(value);
  }
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (value.includes('\u0000')) throw new Error('string literal contains a NUL byte');
  const body = value.replace(/'/g, "''");
  if (body.includes('\\')) return "E'" + body.replace(/\\/g, '\\\\') + "'";
  return "'" + body + "'";
}

/**
 * The identity of a relation as a map key: schema and name joined by NUL (which no PostgreSQL name can hold),
 * so that schema "public.a" + table "b" and schema "public" + table "a.b" never meet.
 */
export function relationKey(schema: string, name: string): string {
  return schema + '\u0000' + name;
}

/** A name shown bare when it has only letters, digits, `_` and `$`; otherwise quoted like SQL (quoteIdent). */
function displayPart(name: string): string {
  return /^[\p{L}\p{N}_$]+$/u.test(name) ? name : quoteIdent(name);
}

/**
 * schema.name for people (plans, reports, messages): `public.users`, and the SQL-quoted form of a part that holds
 * anything else — `"public.a".b`, `public."a.b"`, `public."my table"` — so the display never makes two tables look alike.
 */
export function displayName(schema: string, name: string): string {
  return displayPart(schema) + '.' + displayPart(name);
}

/** A value in a libpq keyword/value connection string: always single-quoted, `\` and `'` backslash-escaped. */
export function quoteConninfoValue(value: string): string {
  if (value.includes('\u0000')) throw new Error('connection string value contains a NUL byte');
  return "'" + value.replace(/\\/g, '\\\\').replace(/'/g, "\\'") + "'";
}
