/**
 * Relations: tables (partitioned, unlogged, options, RLS, access method), views and materialized views (their
 * definitions and columns), sequences (identity sequences belong to their column), columns with their defaults,
 * generated expressions, identity and per-column settings, what a child table sets for itself, OWNED BY,
 * inheritance and partitions, constraints (of tables and domains). Foreign tables are reported, not handled.
 */
import { quoteIdent, qualify } from '../../pg/quote.js';
import type { AttrValue, Fact } from '../model.js';
import { viewDefForComparison } from '../versions.js';
import { EXT, key, pgArray, sortStr, type Family, type ObjKey } from './context.js';

export const relations: Family = {
  steps: (env) => [
    {
      name: 'tables, views and sequences',
      sql: `select c.oid, c.relnamespace, c.relname, c.relkind, c.relpersistence, c.reloptions, c.relrowsecurity, c.relforcerowsecurity,
            c.relispartition, c.reltype, t.typarray, c.relreplident,
            case when c.relkind = 'p' then pg_get_partkeydef(c.oid) end partkey,
            case when c.relispartition then pg_get_expr(c.relpartbound, c.oid) end partbound,
            case when c.relkind in ('v','m') then pg_get_viewdef(c.oid) end viewdef,
            case when c.relkind in ('r','p','m') and am.amname <> 'heap' then am.amname end am
       from pg_class c
       left join pg_am am on am.oid = c.relam
       left join pg_type t on t.oid = c.reltype
      where c.relnamespace in (${env.ns}) and c.relkind in ('r','p','v','m','S','f')
        and ${EXT('pg_class', 'c.oid')}
      order by c.oid`,
    },
    {
      name: 'sequence settings',
      sql: `select s.seqrelid, format_type(s.seqtypid, null) typ, s.seqstart::text, s.seqincrement::text, s.seqmax::text, s.seqmin::text, s.seqcache::text, s.seqcycle,
            (select d.deptype from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = s.seqrelid and d.refclassid = 'pg_class'::regclass and d.deptype in ('a','i') limit 1) owndep,
            (select d.refobjid from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = s.seqrelid and d.refclassid = 'pg_class'::regclass and d.deptype in ('a','i') limit 1) ownrel,
            (select d.refobjsubid from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = s.seqrelid and d.refclassid = 'pg_class'::regclass and d.deptype in ('a','i') limit 1) ownatt,
            (select a.attname from pg_depend d join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid where d.classid = 'pg_class'::regclass and d.objid = s.seqrelid and d.refclassid = 'pg_class'::regclass and d.deptype = 'a' limit 1) ownattname
       from pg_sequence s where s.seqrelid in (${env.rels('S')})`,
    },
    {
      // what a parent says about a column (pdef, pnotnull, pparent) is only read for inherited columns (attinhcount > 0)
      name: 'columns',
      sql: `select a.attrelid, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) typ, a.attnotnull, a.attidentity, a.attgenerated,
            a.attislocal, a.attoptions, nullif(a.attstattarget::int, -1) stattarget, a.attstorage, t.typstorage,
            ${env.v >= 140000 ? 'a.attcompression::text' : "''"} compression,
            case when a.attinhcount > 0 then (select pg_get_expr(pd.adbin, pd.adrelid) from pg_inherits h join pg_attribute pa on pa.attrelid = h.inhparent and pa.attname = a.attname
               left join pg_attrdef pd on pd.adrelid = pa.attrelid and pd.adnum = pa.attnum where h.inhrelid = a.attrelid order by h.inhseqno limit 1) end pdef,
            case when a.attinhcount > 0 then (select bool_or(pa.attnotnull) from pg_inherits h join pg_attribute pa on pa.attrelid = h.inhparent and pa.attname = a.attname where h.inhrelid = a.attrelid) end pnotnull,
            case when a.attinhcount > 0 then (select h.inhparent from pg_inherits h join pg_attribute pa on pa.attrelid = h.inhparent and pa.attname = a.attname where h.inhrelid = a.attrelid order by h.inhseqno limit 1) end pparent,
            case when a.attcollation <> t.typcollation then
              (select quote_ident(cn.nspname) || '.' || quote_ident(co.collname) from pg_collation co join pg_namespace cn on cn.oid = co.collnamespace where co.oid = a.attcollation) end coll,
            pg_get_expr(d.adbin, d.adrelid) defexpr, d.oid defoid, a.attacl is not null hasacl,
            case when a.attidentity <> '' then
              (select format('START WITH %s INCREMENT BY %s MINVALUE %s MAXVALUE %s CACHE %s %s', s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, case when s.seqcycle then 'CYCLE' else 'NO CYCLE' end)
                 from pg_depend sd join pg_sequence s on s.seqrelid = sd.objid
                where sd.classid = 'pg_class'::regclass and sd.refclassid = 'pg_class'::regclass and sd.refobjid = a.attrelid and sd.refobjsubid = a.attnum and sd.deptype = 'i' limit 1) end identopts
       from pg_attribute a
       join pg_type t on t.oid = a.atttypid
       left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
      where a.attrelid in (${env.rels('rpvmc')}) and a.attnum > 0 and not a.attisdropped
      order by a.attrelid, a.attnum`,
    },
    {
      name: 'inheritance and partitions',
      sql: `select h.inhrelid, h.inhparent, h.inhseqno from pg_inherits h where h.inhrelid in (${env.rels('rp')}) order by h.inhrelid, h.inhseqno`,
    },
    {
      // NOT NULL is the column's (domain's) notnull on every version; PostgreSQL 18 also records it as a constraint
      // (contype 'n', 17 for domains): those rows are left out, so their generated names are never compared.
      name: 'constraints',
      sql: `select co.oid, co.conname, co.contype, co.conrelid, co.contypid, co.conindid, co.conislocal, co.conparentid,
            pg_get_constraintdef(co.oid) def
       from pg_constraint co
      where co.connamespace in (${env.ns}) and co.contype not in ('t', 'n')`,
    },
  ],
  build(ctx, rows) {
    const { relFact } = ctx;
    // ---------- relations
    for (const r of rows('tables, views and sequences')) {
      const s = ctx.nsName.get(Number(r.relnamespace))!;
      const sql = qualify(s, r.relname);
      const meta = { sql, schema: s, name: r.relname };
      const opts = pgArray(r.reloptions).sort(sortStr);
      let f: Fact;
      if (r.relkind === 'r' || r.relkind === 'p') {
        // attrs in key order, here and below: their signature is then one JSON.stringify (model.ts)
        f = ctx.mk('table', `table:${sql}`, {
          am: r.am,
          options: opts,
          partkey: r.partkey,
          rls: r.relrowsecurity,
          rlsForce: r.relforcerowsecurity,
          unlogged: r.relpersistence === 'u',
        }, meta);
        ctx.aclTargets.push({ cls: 'pg_class', oid: Number(r.oid), sub: 0, factId: f.id, objType: 'TABLE', objSql: sql });
      } else if (r.relkind === 'v' || r.relkind === 'm') {
        // compared: a form that reads the same on 13–18 (16+ drops the table prefix in single-table views); executed:
        // the server's own text (meta.def)
        const text = String(r.viewdef).replace(/;\s*$/, '');
        const def = viewDefForComparison(text);
        f = ctx.mk(r.relkind === 'v' ? 'view' : 'matview', `${r.relkind === 'v' ? 'view' : 'matview'}:${sql}`, { am: r.am, columns: [], def, options: opts }, def === text ? meta : { ...meta, def: text });
        ctx.aclTargets.push({ cls: 'pg_class', oid: Number(r.oid), sub: 0, factId: f.id, objType: 'TABLE', objSql: sql });
      } else if (r.relkind === 'S') {
        f = ctx.mk('sequence', `sequence:${sql}`, {}, meta);
        ctx.aclTargets.push({ cls: 'pg_class', oid: Number(r.oid), sub: 0, factId: f.id, objType: 'SEQUENCE', objSql: sql });
      } else {
        ctx.unsupportedObject({ kind: 'foreign table', identity: sql, reason: 'foreign tables are not handled', def: sql }, key('pg_class', r.oid));
        continue;
      }
      relFact.set(Number(r.oid), f);
      if (f.kind === 'table' && r.relreplident !== 'd') ctx.replIdent.set(Number(r.oid), r.relreplident);
      ctx.objMap.set(key('pg_class', r.oid), f.id);
      if (r.reltype && Number(r.reltype)) ctx.objMap.set(key('pg_type', r.reltype), f.id);
      if (r.typarray && Number(r.typarray)) ctx.objMap.set(key('pg_type', r.typarray), f.id);
      if (r.relispartition) {
        ctx.relIsPartition.add(Number(r.oid));
        ctx.partBound.set(Number(r.oid), r.partbound);
      }
    }

    // ---------- sequences (identity sequences belong to their column and are skipped)
    /** sequence fact → what it is OWNED BY */
    const owned = new Map<Fact, { rel: number; att: number; attName: string }>();
    for (const r of rows('sequence settings')) {
      const f = relFact.get(Number(r.seqrelid));
      if (!f || f.kind !== 'sequence') continue;
      if (r.owndep === 'i') {
        ctx.facts.delete(f.id);
        relFact.delete(Number(r.seqrelid));
        ctx.objMap.delete(key('pg_class', r.seqrelid));
        const i = ctx.aclTargets.findIndex((a) => a.factId === f.id);
        if (i >= 0) ctx.aclTargets.splice(i, 1);
        continue;
      }
      f.attrs = { type: r.typ, start: r.seqstart, increment: r.seqincrement, min: r.seqmin, max: r.seqmax, cache: r.seqcache, cycle: r.seqcycle };
      if (r.owndep === 'a' && relFact.has(Number(r.ownrel))) owned.set(f, { rel: Number(r.ownrel), att: Number(r.ownatt), attName: r.ownattname });
    }

    // ---------- columns
    const colFact = new Map<ObjKey, Fact>();
    const childColumns: Fact[] = [];
    for (const r of rows('columns')) {
      const relid = Number(r.attrelid);
      const comp = ctx.compositeByRel.get(relid);
      if (comp) {
        (comp.attrs.attributes as string[]).push(`${quoteIdent(r.attname)} ${r.typ}${r.coll ? ' COLLATE ' + r.coll : ''}`);
        ctx.objMap.set(key('pg_class', relid, r.attnum), comp.id);
        continue;
      }
      const rel = relFact.get(relid);
      if (!rel || rel.kind === 'sequence') continue;
      if (rel.kind === 'view' || rel.kind === 'matview') {
        (rel.attrs.columns as string[]).push(`${quoteIdent(r.attname)} ${r.typ}`);
        ctx.objMap.set(key('pg_class', relid, r.attnum), rel.id);
        ctx.viewCols.set(`${relid}.${r.attnum}`, { rel, name: r.attname });
        continue;
      }
      if (!r.attislocal || ctx.relIsPartition.has(relid)) {
        // inherited from a parent: the parent's column fact covers it, except what the child sets for itself (a default
        // other than its parent's, NOT NULL where the parent has none): a child_column fact
        ctx.objMap.set(key('pg_class', relid, r.attnum), rel.id);
        const parentRel = relFact.get(Number(r.pparent));
        const ownDefault = !r.attgenerated && (r.defexpr ?? null) !== (r.pdef ?? null);
        const ownNotNull = r.attnotnull && !r.pnotnull;
        if (parentRel && (ownDefault || ownNotNull)) {
          const sql = quoteIdent(r.attname);
          const cf = ctx.mk('child_column', `child_column:${rel.meta.sql}.${sql}`, {
            ...(ownDefault ? { default: r.defexpr ?? null } : {}),
            ...(ownNotNull ? { notnull: true } : {}),
          }, { table: rel.meta.sql as string, column: sql, parentTable: parentRel.meta.sql as string }, rel.id);
          cf.deps.push(rel.id);
          childColumns.push(cf);
          if (ownDefault && r.defoid) ctx.objMap.set(key('pg_attrdef', r.defoid), cf.id);
        }
        continue;
      }
      const sql = quoteIdent(r.attname);
      const attrs: Record<string, AttrValue> = {
        collation: r.coll,
        generated: r.attgenerated === 's' || r.attgenerated === 'v' ? r.defexpr : null,
        identity: r.attidentity || null,
        identityOptions: r.attidentity ? r.identopts : null,
        notnull: r.attnotnull,
        type: r.typ,
      };
      // PostgreSQL 18's virtual generated columns (computed when read); stored ones carry no such attribute
      if (r.attgenerated === 'v') attrs.virtual = true;
      // per-column settings, only where they are not the default (models without them read the same)
      if (r.attoptions !== null) {
        const options = pgArray(r.attoptions);
        if (options.length) attrs.options = options.sort(sortStr);
      }
      if (r.stattarget !== null && r.stattarget !== undefined) attrs.statistics = Number(r.stattarget);
      if (r.attstorage !== r.typstorage) attrs.storage = r.attstorage;
      if (r.compression) attrs.compression = r.compression;
      const f = ctx.mk('column', `column:${rel.meta.sql}.${sql}`, attrs, { sql, name: r.attname, table: rel.meta.sql as string, pos: Number(r.attnum), typstorage: r.typstorage }, rel.id);
      f.deps.push(rel.id);
      const colKey = key('pg_class', relid, r.attnum);
      ctx.objMap.set(colKey, f.id);
      colFact.set(colKey, f);
      if (r.defoid) {
        if (r.attgenerated) ctx.objMap.set(key('pg_attrdef', r.defoid), f.id);
        else {
          const df = ctx.mk('default', `default:${rel.meta.sql}.${sql}`, { expr: r.defexpr }, { table: rel.meta.sql as string, column: sql }, f.id);
          df.deps.push(f.id);
          ctx.objMap.set(key('pg_attrdef', r.defoid), df.id);
        }
      }
      if (r.hasacl) ctx.aclTargets.push({ cls: 'pg_class', oid: relid, sub: Number(r.attnum), factId: f.id, objType: 'TABLE', objSql: rel.meta.sql as string, column: sql });
    }
    // sequences OWNED BY
    for (const [f, o] of owned) {
      const col = colFact.get(key('pg_class', o.rel, o.att));
      const rel = relFact.get(o.rel)!;
      const colSql = col ? col.meta.sql : quoteIdent(String(o.attName));
      const of = ctx.mk('seq_owned', `seq_owned:${f.meta.sql}`, { column: `${rel.meta.sql}.${colSql}` }, { seq: f.meta.sql as string }, col ? col.id : rel.id);
      of.deps.push(f.id, col ? col.id : rel.id);
    }

    // ---------- inheritance / partitions
    const links: Fact[] = [];
    for (const r of rows('inheritance and partitions')) {
      const child = relFact.get(Number(r.inhrelid));
      const parent = relFact.get(Number(r.inhparent));
      if (!child || !parent || child.kind !== 'table') continue;
      if (ctx.relIsPartition.has(Number(r.inhrelid))) {
        const f = ctx.mk('partition', `partition:${child.meta.sql}`, { parent: parent.id, bound: ctx.partBound.get(Number(r.inhrelid))! }, { child: child.meta.sql as string, parent: parent.meta.sql as string }, child.id);
        f.deps.push(child.id, parent.id);
        links.push(f);
      } else {
        const f = ctx.mk('inherit', `inherit:${child.meta.sql}:${parent.meta.sql}`, {}, { child: child.meta.sql as string, parent: parent.meta.sql as string, seq: Number(r.inhseqno) }, child.id);
        f.deps.push(child.id, parent.id);
        links.push(f);
      }
    }
    // a child's own setting comes after its link to the parent and after the parent's default (which recurses to it)
    for (const f of childColumns) {
      for (const x of links) if (x.parent === f.parent) f.deps.push(x.id);
      const pd = `default:${f.meta.parentTable}.${f.meta.column}`;
      if (ctx.facts.has(pd)) f.deps.push(pd);
    }

    // ---------- constraints
    for (const r of rows('constraints')) {
      const name = quoteIdent(r.conname);
      if (Number(r.conrelid)) {
        const rel = relFact.get(Number(r.conrelid));
        if (!rel || rel.kind !== 'table') continue;
        if (!r.conislocal || Number(r.conparentid)) continue; // inherited / cloned to a partition
        const f = ctx.mk('constraint', `constraint:${rel.meta.sql}.${name}`, { def: r.def, type: r.contype }, { table: rel.meta.sql as string, name: r.conname }, rel.id);
        f.deps.push(rel.id);
        ctx.objMap.set(key('pg_constraint', r.oid), f.id);
        if ('pux'.includes(r.contype) && Number(r.conindid)) ctx.objMap.set(key('pg_class', r.conindid), f.id);
      } else if (Number(r.contypid)) {
        const dom = ctx.objMap.get(key('pg_type', r.contypid));
        if (!dom || ctx.facts.get(dom)?.kind !== 'domain') continue;
        const d = ctx.facts.get(dom)!;
        const f = ctx.mk('domain_constraint', `domain_constraint:${d.meta.sql}.${name}`, { def: r.def }, { domain: d.meta.sql as string, name: r.conname }, d.id);
        f.deps.push(d.id);
        ctx.objMap.set(key('pg_constraint', r.oid), f.id);
      }
    }
  },
};
