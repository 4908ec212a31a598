/**
 * Objects the engine does not handle (operators, text search parsers and templates, event triggers, publications:
 * reported, never silently dropped), and pg_depend turned into dependencies between facts (and between facts and
 * the objects not handled, so the planner never creates or drops around them).
 */
import { EXT, key, type Family } from './context.js';

export const dependencies: Family = {
  steps: (env) => [
    {
      name: 'objects it does not handle',
      sql: `select 'operator' k, o.oid::regoperator::text ident, o.oprcode::text def, 'pg_operator' cls, o.oid from pg_operator o where o.oprnamespace in (${env.ns}) and ${EXT('pg_operator', 'o.oid')}
     union all select 'text search parser', p.oid::text, p.prsname::text, 'pg_ts_parser', p.oid from pg_ts_parser p where p.prsnamespace in (${env.ns}) and ${EXT('pg_ts_parser', 'p.oid')}
     union all select 'text search template', t.oid::text, t.tmplname::text, 'pg_ts_template', t.oid from pg_ts_template t where t.tmplnamespace in (${env.ns}) and ${EXT('pg_ts_template', 't.oid')}
     union all select 'event trigger', quote_ident(e.evtname), e.evtevent::text || ':' || e.evtfoid::regproc::text, 'pg_event_trigger', e.oid from pg_event_trigger e where ${EXT('pg_event_trigger', 'e.oid')}
     union all select 'publication', quote_ident(p.pubname), p.pubname, 'pg_publication', p.oid from pg_publication p`,
    },
    {
      name: 'dependencies',
      // thousands of rows: one text of space-separated fields, 7 a row (no row objects to build; none holds a space)
      sql: `select string_agg(concat_ws(' ', d.classid, d.objid, d.objsubid, d.refclassid, d.refobjid, d.refobjsubid, d.deptype), ' ') deps
         from pg_depend d where d.objid >= 16384 and d.refobjid >= 16384 and d.deptype in ('n','a')`,
    },
    {
      // pg_depend's class oids → catalog names (each sent once, not per row)
      name: 'catalog names',
      sql: `select c.oid, c.relname from pg_class c where c.relnamespace = 'pg_catalog'::regnamespace and c.relkind = 'r'`,
    },
  ],
  build(ctx, rows) {
    for (const r of rows('objects it does not handle')) {
      ctx.unsupportedObject({ kind: r.k, identity: r.ident, reason: `${r.k} objects are not handled by the schema engine`, def: r.def ?? '' }, key(r.cls, r.oid));
    }

    const classNames = new Map<number, string>();
    for (const r of rows('catalog names')) classNames.set(Number(r.oid), r.relname);
    const clsName = (oid: unknown) => classNames.get(Number(oid)) ?? String(oid);
    const { objMap, unsMap, extMembers, facts } = ctx;
    const resolve = (cls: string, oid: number, sub: number): string | undefined =>
      objMap.get(key(cls, oid, sub)) ?? (sub ? objMap.get(key(cls, oid, 0)) : undefined) ?? extMembers.get(key(cls, oid));
    const text: string = rows('dependencies')[0]?.deps ?? '';
    const fields = text ? text.split(' ') : [];
    for (let i = 0; i + 6 < fields.length; i += 7) {
      const cls = clsName(fields[i]);
      const objid = fields[i + 1]!;
      const objsubid = Number(fields[i + 2]);
      const refcls = clsName(fields[i + 3]);
      const refobjid = Number(fields[i + 4]);
      const refobjsubid = Number(fields[i + 5]);
      const deptype = fields[i + 6];
      const src = objMap.get(key(cls, objid, objsubid)) ?? (objsubid ? objMap.get(key(cls, objid, 0)) : undefined);
      // objects not handled: what depends on them and what they depend on (the planner never creates or drops around them)
      const srcU = unsMap.size ? unsMap.get(key(cls, objid)) : undefined;
      const refU = unsMap.size ? unsMap.get(key(refcls, refobjid)) : undefined;
      if (srcU && srcU !== refU) {
        const ref = resolve(refcls, refobjid, refobjsubid);
        if (ref) (srcU.dependsOn ??= []).push(ref);
      }
      if (src && refU && refU !== srcU) (refU.dependents ??= []).push(src);
      if (!src) continue;
      const ref = resolve(refcls, refobjid, refobjsubid);
      if (!ref || ref === src) continue;
      const sf = facts.get(src)!;
      const rf = facts.get(ref);
      if (sf.kind === 'table' && rf?.kind === 'table') continue; // inheritance / partitions: own facts
      if (sf.kind === 'sequence' && deptype === 'a') continue; // OWNED BY: seq_owned fact
      if (sf.kind === 'column' && rf?.kind === 'table' && sf.parent !== ref) continue;
      sf.deps.push(ref);
    }
  },
};
