/** Types: collations, enums, domains (and their constraints), composite and range types. */
import { quoteIdent, quoteLiteral } from '../../pg/quote.js';
import { none, revokeDefaultPublic, s, type Rule } from './core.js';

export const collation: Rule = {
  create: (f) => {
    const a = f.attrs;
    const parts: string[] = [];
    // the source's own spelling of the ICU locale (the compared attribute is its canonical form)
    if (a.provider === 'i') parts.push(`provider = icu`, `locale = ${quoteLiteral(s(f.meta.locale ?? a.icuLocale ?? a.collate))}`);
    else if (a.provider === 'b') parts.push(`provider = builtin`, `locale = ${quoteLiteral(s(a.locale))}`);
    else if (a.provider === 'c') parts.push(`provider = libc`, `lc_collate = ${quoteLiteral(s(a.collate))}`, `lc_ctype = ${quoteLiteral(s(a.ctype))}`);
    else parts.push(`provider = default`);
    if (a.deterministic === false) parts.push('deterministic = false');
    if (a.icuRules) parts.push(`rules = ${quoteLiteral(s(a.icuRules))}`);
    return none([`CREATE COLLATION ${f.meta.sql} (${parts.join(', ')})`]);
  },
  drop: (f) => none([`DROP COLLATION ${f.meta.sql}`]),
};

export const enumType: Rule = {
  create: (f, ctx) => none([`CREATE TYPE ${f.meta.sql} AS ENUM (${(f.attrs.labels as string[]).map((l) => quoteLiteral(l)).join(', ')})`, ...revokeDefaultPublic(f, ctx, 'TYPE')]),
  drop: (f) => none([`DROP TYPE ${f.meta.sql}`]),
  alter: (o, n) => {
    const ol = o.attrs.labels as string[];
    const nl = n.attrs.labels as string[];
    // old labels must keep their relative order and all survive
    let j = 0;
    for (const l of nl) if (j < ol.length && l === ol[j]) j++;
    if (j !== ol.length) return null;
    const sql: string[] = [];
    const present = new Set(ol);
    nl.forEach((l, i) => {
      if (present.has(l)) return;
      if (i > 0) sql.push(`ALTER TYPE ${n.meta.sql} ADD VALUE ${quoteLiteral(l)} AFTER ${quoteLiteral(nl[i - 1]!)}`);
      else {
        const next = nl.slice(1).find((x) => present.has(x));
        sql.push(`ALTER TYPE ${n.meta.sql} ADD VALUE ${quoteLiteral(l)}${next !== undefined ? ` BEFORE ${quoteLiteral(next)}` : ''}`);
      }
      present.add(l);
    });
    return { sql, hazards: [] };
  },
};

export const domain: Rule = {
  create: (f, ctx) => {
    const a = f.attrs;
    let sql = `CREATE DOMAIN ${f.meta.sql} AS ${s(a.basetype)}`;
    if (a.collation) sql += ` COLLATE ${s(a.collation)}`;
    if (a.default !== null) sql += ` DEFAULT ${s(a.default)}`;
    if (a.notnull) sql += ' NOT NULL';
    return none([sql, ...revokeDefaultPublic(f, ctx, 'DOMAIN')]);
  },
  drop: (f) => none([`DROP DOMAIN ${f.meta.sql}`]),
  alter: (o, n) => {
    if (o.attrs.basetype !== n.attrs.basetype || o.attrs.collation !== n.attrs.collation) return null;
    const sql: string[] = [];
    if (o.attrs.default !== n.attrs.default) sql.push(n.attrs.default === null ? `ALTER DOMAIN ${n.meta.sql} DROP DEFAULT` : `ALTER DOMAIN ${n.meta.sql} SET DEFAULT ${s(n.attrs.default)}`);
    if (o.attrs.notnull !== n.attrs.notnull) sql.push(`ALTER DOMAIN ${n.meta.sql} ${n.attrs.notnull ? 'SET' : 'DROP'} NOT NULL`);
    if (sql.length === 0) return null; // only dependencies changed
    return { sql, hazards: [] };
  },
};

export const domainConstraint: Rule = {
  create: (f) => none([`ALTER DOMAIN ${f.meta.domain} ADD CONSTRAINT ${quoteIdent(s(f.meta.name))} ${s(f.attrs.def)}`]),
  drop: (f) => none([`ALTER DOMAIN ${f.meta.domain} DROP CONSTRAINT ${quoteIdent(s(f.meta.name))}`]),
};

export const composite: Rule = {
  create: (f, ctx) => none([`CREATE TYPE ${f.meta.sql} AS (${(f.attrs.attributes as string[]).join(', ')})`, ...revokeDefaultPublic(f, ctx, 'TYPE')]),
  drop: (f) => none([`DROP TYPE ${f.meta.sql}`]),
};

export const range: Rule = {
  create: (f, ctx) => {
    const a = f.attrs;
    const parts = [`SUBTYPE = ${s(a.subtype)}`];
    if (a.opclass) parts.push(`SUBTYPE_OPCLASS = ${s(a.opclass)}`);
    if (a.collation) parts.push(`COLLATION = ${s(a.collation)}`);
    if (a.canonical) parts.push(`CANONICAL = ${s(a.canonical)}`);
    if (a.subdiff) parts.push(`SUBTYPE_DIFF = ${s(a.subdiff)}`);
    return none([`CREATE TYPE ${f.meta.sql} AS RANGE (${parts.join(', ')})`, ...revokeDefaultPublic(f, ctx, 'TYPE')]);
  },
  drop: (f) => none([`DROP TYPE ${f.meta.sql}`]),
};
