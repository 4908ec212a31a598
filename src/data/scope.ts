/**
 * Table selection by globs (pure). See DataScope in types.ts for the rules.
 */
import { usageError } from '../errors.js';
import type { DataScope } from './types.js';

const cache = new Map<string, RegExp>();

/** `*` = any run of characters, `?` = one character; everything else literal; whole-string match. */
export function globToRegExp(glob: string): RegExp {
  let re = cache.get(glob);
  if (!re) {
    const body = glob.replace(/[.+^${}()|[\]\\*?]/g, (ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : '\\' + ch));
    re = new RegExp('^' + body + '$', 's');
    cache.set(glob, re);
  }
  return re;
}

function literal(name: string): RegExp {
  return new RegExp('^' + name.replace(/[.+^${}()|[\]\\*?]/g, '\\$&') + '$', 's');
}

/** A parsed --table pattern: a schema matcher (absent: any schema) and a table-name matcher. */
export interface TablePattern {
  schema?: RegExp;
  name: RegExp;
}

const parsed = new Map<string, TablePattern>();

/**
 * `glob`, `schemaGlob.tableGlob` (split at the first dot outside double quotes; the table part may hold more
 * dots), and either part may be a double-quoted literal name (`""` inside is a quote): `"public.a".b`,
 * `public."a.b"`. A malformed pattern (unterminated quote, text right after a closing quote) is a usage error.
 */
export function parseTablePattern(pattern: string): TablePattern {
  const hit = parsed.get(pattern);
  if (hit) return hit;
  const bad = (why: string) => usageError(`table pattern ${JSON.stringify(pattern)}: ${why}`, 'write schema.table globs (public.user*, *.audit_*); quote a name holding a dot as in SQL: \'"public.a".b\', \'public."a.b"\'');
  /** One part from index i: [matcher, index after it]. `last`: an unquoted part runs to the end (dots included). */
  const part = (i: number, last: boolean): [RegExp, number] => {
    if (pattern[i] === '"') {
      let name = '';
      let j = i + 1;
      for (;;) {
        if (j >= pattern.length) throw bad('unterminated double quote');
        if (pattern[j] === '"') {
          if (pattern[j + 1] === '"') {
            name += '"';
            j += 2;
            continue;
          }
          break;
        }
        name += pattern[j++];
      }
      j++;
      if (j < pattern.length && (last || pattern[j] !== '.')) throw bad('unexpected text after a closing quote');
      return [literal(name), j];
    }
    const end = last ? pattern.length : pattern.indexOf('.', i) < 0 ? pattern.length : pattern.indexOf('.', i);
    const text = pattern.slice(i, end);
    if (text.includes('"')) throw bad('a double quote may only enclose a whole name');
    return [globToRegExp(text), end];
  };
  const [first, at] = part(0, false);
  const out: TablePattern = at >= pattern.length ? { name: first } : { schema: first, name: part(at + 1, true)[0] };
  parsed.set(pattern, out);
  return out;
}

export function matchesTable(pattern: string, schema: string, name: string): boolean {
  const p = parseTablePattern(pattern);
  return (p.schema === undefined || p.schema.test(schema)) && p.name.test(name);
}

export function inScope(scope: DataScope | undefined, schema: string, name: string): boolean {
  if (!scope) return true;
  const any = (list: string[] | undefined, f: (p: string) => boolean) => (list ?? []).some(f);
  if (scope.schemas && scope.schemas.length > 0 && !any(scope.schemas, (p) => globToRegExp(p).test(schema))) return false;
  if (any(scope.excludeSchemas, (p) => globToRegExp(p).test(schema))) return false;
  if (scope.tables && scope.tables.length > 0 && !any(scope.tables, (p) => matchesTable(p, schema, name))) return false;
  if (any(scope.excludeTables, (p) => matchesTable(p, schema, name))) return false;
  return true;
}

/**
 * The include filters (`--schema`, `--table`) that match none of the given tables and schemas (what the run found
 * in scope on either side): a typo must not read as "no differences".
 */
export function unmatchedFilters(scope: DataScope | undefined, tables: Array<{ schema: string; name: string }>, schemas: string[]): string[] {
  const out: string[] = [];
  const allSchemas = new Set([...schemas, ...tables.map((t) => t.schema)]);
  for (const p of scope?.schemas ?? []) if (![...allSchemas].some((s) => globToRegExp(p).test(s))) out.push(`--schema ${JSON.stringify(p)} matches no schema`);
  for (const p of scope?.tables ?? []) if (!tables.some((t) => matchesTable(p, t.schema, t.name))) out.push(`--table ${JSON.stringify(p)} matches no table`);
  return out;
}
