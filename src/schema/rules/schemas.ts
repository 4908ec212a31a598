/** Schemas and extensions: the containers everything else lives in. */
import { quoteIdent, quoteLiteral } from '../../pg/quote.js';
import { none, s, type Rule } from './core.js';

/** Is version `a` older than `b` (numeric parts compared in order: 1.10 > 1.9)? */
export function versionLess(a: string, b: string): boolean {
  const pa = a.split(/[^0-9]+/).filter(Boolean).map(Number);
  const pb = b.split(/[^0-9]+/).filter(Boolean).map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? 0;
    const y = pb[i] ?? 0;
    if (x !== y) return x < y;
  }
  return false;
}

export const schema: Rule = {
  create: (f) => none([`CREATE SCHEMA ${f.meta.sql}`]),
  drop: (f) => none([`DROP SCHEMA ${f.meta.sql}`]),
  alter: () => ({ sql: [], hazards: [] }),
};

export const extension: Rule = {
  create: (f) => none([`CREATE EXTENSION ${f.meta.sql} WITH SCHEMA ${quoteIdent(s(f.attrs.schema))} VERSION ${quoteLiteral(s(f.attrs.version))}`]),
  drop: (f) => none([`DROP EXTENSION ${f.meta.sql}`]),
  // a downgrade has no update script: recreated
  alter: (o, n) => {
    if (versionLess(s(n.attrs.version), s(o.attrs.version))) return null;
    const sql: string[] = [];
    if (o.attrs.schema !== n.attrs.schema) sql.push(`ALTER EXTENSION ${n.meta.sql} SET SCHEMA ${quoteIdent(s(n.attrs.schema))}`);
    if (o.attrs.version !== n.attrs.version) sql.push(`ALTER EXTENSION ${n.meta.sql} UPDATE TO ${quoteLiteral(s(n.attrs.version))}`);
    return { sql, hazards: [] };
  },
};
