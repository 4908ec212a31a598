/** Collations and types: enum, domain, composite, range (base and pseudo types are C: reported, not handled). */
import { qualify } from '../../pg/quote.js';
import type { AttrValue, Fact } from '../model.js';
import { canonicalIcuLocale } from '../versions.js';
import { EXT, key, pgArray, type Family } from './context.js';

export const types: Family = {
  steps: (env) => [
    {
      // The locale columns moved: ICU locale in collcollate (13–14), colliculocale (15–16), colllocale (17+, also the
      // builtin provider's locale); ICU rules from 16. The row is read as jsonb, whatever its columns.
      name: 'collations',
      sql: `select c.oid, c.collnamespace, c.collname, c.collprovider, c.collisdeterministic, to_jsonb(c) j
       from pg_collation c where c.collnamespace in (${env.ns}) and ${EXT('pg_collation', 'c.oid')}`,
    },
    {
      name: 'types',
      sql: `select t.oid, t.typnamespace, t.typname, t.typtype, t.typrelid, t.typarray, t.typnotnull,
            format_type(t.typbasetype, t.typtypmod) basetype,
            pg_get_expr(t.typdefaultbin, 0) typdefault,
            case when t.typtype = 'd' and t.typcollation <> bt.typcollation then
              (select quote_ident(cn.nspname) || '.' || quote_ident(co.collname) from pg_collation co join pg_namespace cn on cn.oid = co.collnamespace where co.oid = t.typcollation) end as collation,
            case when t.typtype = 'e' then array(select e.enumlabel::text from pg_enum e where e.enumtypid = t.oid order by e.enumsortorder) end labels,
            format_type(r.rngsubtype, null) rsub,
            (select quote_ident(on2.nspname) || '.' || quote_ident(oc.opcname) from pg_opclass oc join pg_namespace on2 on on2.oid = oc.opcnamespace where oc.oid = r.rngsubopc and not oc.opcdefault) rngopc,
            (select quote_ident(cn.nspname) || '.' || quote_ident(co.collname) from pg_collation co join pg_namespace cn on cn.oid = co.collnamespace where co.oid = r.rngcollation and r.rngcollation <> sbt.typcollation) rngcoll,
            nullif(r.rngcanonical::regproc::text, '-') rngcanonical, nullif(r.rngsubdiff::regproc::text, '-') rngsubdiff,
            ${env.v >= 140000 ? '(select mt.typarray from pg_type mt where mt.oid = r.rngmultitypid) mrarray, r.rngmultitypid' : 'null mrarray, null rngmultitypid'}
       from pg_type t
       left join pg_type bt on bt.oid = t.typbasetype
       left join pg_range r on r.rngtypid = t.oid
       left join pg_type sbt on sbt.oid = r.rngsubtype
      where t.typnamespace in (${env.ns})
        and (t.typtype in ('e','d','r','b','p') or (t.typtype = 'c' and (select c.relkind from pg_class c where c.oid = t.typrelid) = 'c'))
        and t.oid not in (select e.typarray from pg_type e where e.typarray <> 0)
        and ${EXT('pg_type', 't.oid')}`,
    },
  ],
  build(ctx, rows) {
    for (const r of rows('collations')) {
      const s = ctx.nsName.get(Number(r.collnamespace))!;
      const j = r.j as Record<string, string | null | undefined>;
      const icu = r.collprovider === 'i';
      const libc = r.collprovider === 'c';
      const locale = j.colllocale ?? j.colliculocale ?? (icu ? j.collcollate : null) ?? null;
      const attrs: Record<string, AttrValue> = {
        provider: r.collprovider, deterministic: r.collisdeterministic,
        collate: libc ? j.collcollate ?? null : null, ctype: libc ? j.collctype ?? null : null,
        icuLocale: icu ? canonicalIcuLocale(locale) : null,
      };
      if (r.collprovider === 'b') attrs.locale = locale; // builtin provider (17+)
      if (j.collicurules) attrs.icuRules = j.collicurules; // 16+
      const f = ctx.mk('collation', `collation:${qualify(s, r.collname)}`, attrs, { sql: qualify(s, r.collname), schema: s, name: r.collname, ...(icu && locale !== null ? { locale } : {}) });
      ctx.objMap.set(key('pg_collation', r.oid), f.id);
    }

    for (const r of rows('types')) {
      const s = ctx.nsName.get(Number(r.typnamespace))!;
      const sql = qualify(s, r.typname);
      const meta = { sql, schema: s, name: r.typname };
      let f: Fact;
      if (r.typtype === 'e') f = ctx.mk('enum', `type:${sql}`, { labels: pgArray(r.labels) }, meta);
      else if (r.typtype === 'd') f = ctx.mk('domain', `type:${sql}`, { basetype: r.basetype, notnull: r.typnotnull, default: r.typdefault, collation: r.collation }, meta);
      else if (r.typtype === 'c') {
        f = ctx.mk('composite', `type:${sql}`, { attributes: [] }, meta);
        ctx.compositeByRel.set(Number(r.typrelid), f);
        ctx.objMap.set(key('pg_class', r.typrelid), f.id);
      } else if (r.typtype === 'r') {
        f = ctx.mk('range', `type:${sql}`, { subtype: r.rsub, opclass: r.rngopc, collation: r.rngcoll, canonical: r.rngcanonical, subdiff: r.rngsubdiff }, meta);
        if (r.rngmultitypid) ctx.objMap.set(key('pg_type', r.rngmultitypid), f.id);
        if (r.mrarray) ctx.objMap.set(key('pg_type', r.mrarray), f.id);
      } else {
        const keys = [key('pg_type', r.oid), ...(r.typarray && Number(r.typarray) ? [key('pg_type', r.typarray)] : [])];
        ctx.unsupportedObject({ kind: 'type', identity: sql, reason: `${r.typtype === 'b' ? 'base' : 'pseudo'} types (written in C) are not handled`, def: r.typname }, ...keys);
        continue;
      }
      ctx.objMap.set(key('pg_type', r.oid), f.id);
      if (r.typarray && Number(r.typarray)) ctx.objMap.set(key('pg_type', r.typarray), f.id);
      ctx.aclTargets.push({ cls: 'pg_type', oid: Number(r.oid), sub: 0, factId: f.id, objType: r.typtype === 'd' ? 'DOMAIN' : 'TYPE', objSql: sql });
    }
  },
};
