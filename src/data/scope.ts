/**
 * Table selection by globs (pure). See DataScope in types.ts for the rules.
 */
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

export function matchesTable(pattern: string, schema: string, name: string): boolean {
  const dot = pattern.indexOf('.');
  if (dot < 0) return globToRegExp(pattern).test(name);
  return globToRegExp(pattern.slice(0, dot)).test(schema) && globToRegExp(pattern.slice(dot + 1)).test(name);
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
