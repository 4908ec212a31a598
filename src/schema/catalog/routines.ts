/** Functions, procedures and aggregates (CREATE AGGREGATE from pg_aggregate); not those internal to another object. */
import { qualify, quoteLiteral } from '../../pg/quote.js';
import { EXT, key, type Family } from './context.js';

/** `a integer, INOUT b text` → `IN a integer, INOUT b text` (the argument list split at top-level commas). */
function procedureArgs(list: string): string {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let cur = '';
  for (const ch of String(list)) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && (ch === '(' || ch === '[')) depth++;
    else if (!quoted && (ch === ')' || ch === ']')) depth--;
    if (ch === ',' && depth === 0 && !quoted) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur !== '') parts.push(cur);
  return parts.map((p) => (/^\s*(IN|OUT|INOUT|VARIADIC)\s/.test(p) ? p : p.replace(/^(\s*)/, '$1IN '))).join(',');
}

const MODIFY: Record<string, string> = { r: 'READ_ONLY', s: 'SHAREABLE', w: 'READ_WRITE' };

export const routines: Family = {
  steps: (env) => [
    {
      name: 'functions and procedures',
      sql: `select p.oid, p.pronamespace, p.proname, p.prokind, pg_get_function_identity_arguments(p.oid) idargs,
            pg_get_function_arguments(p.oid) args, pg_get_function_result(p.oid) result,
            case when p.prokind <> 'a' then pg_get_functiondef(p.oid) end def,
            p.proparallel, ag.aggkind, (select string_agg(format_type(x.t, null), ', ' order by x.o) from unnest(p.proargtypes) with ordinality x(t, o)) plainargs, nullif(ag.aggtransfn::text, '-') sfunc, format_type(ag.aggtranstype, null) stype, ag.aggtransspace,
            nullif(ag.aggfinalfn::text, '-') finalfunc, ag.aggfinalextra, ag.aggfinalmodify, nullif(ag.aggcombinefn::text, '-') combinefunc,
            nullif(ag.aggserialfn::text, '-') serialfunc, nullif(ag.aggdeserialfn::text, '-') deserialfunc, ag.agginitval,
            nullif(ag.aggmtransfn::text, '-') msfunc, nullif(ag.aggminvtransfn::text, '-') minvfunc, case when ag.aggmtranstype <> 0 then format_type(ag.aggmtranstype, null) end mstype,
            ag.aggmtransspace, nullif(ag.aggmfinalfn::text, '-') mfinalfunc, ag.aggmfinalextra, ag.aggmfinalmodify, ag.aggminitval,
            case when ag.aggsortop <> 0 then (select 'OPERATOR(' || quote_ident(on3.nspname) || '.' || o.oprname || ')' from pg_operator o join pg_namespace on3 on on3.oid = o.oprnamespace where o.oid = ag.aggsortop) end sortop
       from pg_proc p left join pg_aggregate ag on ag.aggfnoid = p.oid where p.pronamespace in (${env.ns}) and ${EXT('pg_proc', 'p.oid')}
        and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'i')`,
    },
  ],
  build(ctx, rows) {
    for (const r of rows('functions and procedures')) {
      const s = ctx.nsName.get(Number(r.pronamespace))!;
      if (r.prokind === 'p' && ctx.serverVersion < 140000) {
        // 14+ write a procedure's arguments with their mode, also the default one (`IN x integer`); 13 without it
        const args = procedureArgs(r.args);
        if (r.def) r.def = String(r.def).replace(`(${r.args})`, `(${args})`);
        r.args = args;
        r.idargs = procedureArgs(r.idargs);
      }
      const sql = `${qualify(s, r.proname)}(${r.idargs})`;
      if (r.prokind === 'a') {
        // CREATE AGGREGATE from pg_aggregate (support functions and types are names qualified by inspection's empty
        // search_path); its dependencies on them come from pg_depend like any function's
        const parts = [`SFUNC = ${r.sfunc}`, `STYPE = ${r.stype}`];
        if (Number(r.aggtransspace)) parts.push(`SSPACE = ${Number(r.aggtransspace)}`);
        if (r.finalfunc) parts.push(`FINALFUNC = ${r.finalfunc}`, ...(r.aggfinalextra ? ['FINALFUNC_EXTRA'] : []), `FINALFUNC_MODIFY = ${MODIFY[r.aggfinalmodify]}`);
        if (r.combinefunc) parts.push(`COMBINEFUNC = ${r.combinefunc}`);
        if (r.serialfunc) parts.push(`SERIALFUNC = ${r.serialfunc}`);
        if (r.deserialfunc) parts.push(`DESERIALFUNC = ${r.deserialfunc}`);
        if (r.agginitval !== null) parts.push(`INITCOND = ${quoteLiteral(r.agginitval)}`);
        if (r.msfunc) {
          parts.push(`MSFUNC = ${r.msfunc}`, `MINVFUNC = ${r.minvfunc}`, `MSTYPE = ${r.mstype}`);
          if (Number(r.aggmtransspace)) parts.push(`MSSPACE = ${Number(r.aggmtransspace)}`);
          if (r.mfinalfunc) parts.push(`MFINALFUNC = ${r.mfinalfunc}`, ...(r.aggmfinalextra ? ['MFINALFUNC_EXTRA'] : []), `MFINALFUNC_MODIFY = ${MODIFY[r.aggmfinalmodify]}`);
          if (r.aggminitval !== null) parts.push(`MINITCOND = ${quoteLiteral(r.aggminitval)}`);
        }
        if (r.sortop) parts.push(`SORTOP = ${r.sortop}`);
        if (r.proparallel !== 'u') parts.push(`PARALLEL = ${r.proparallel === 's' ? 'SAFE' : 'RESTRICTED'}`);
        if (r.aggkind === 'h') parts.push('HYPOTHETICAL');
        const f = ctx.mk('aggregate', `aggregate:${sql}`, { def: `CREATE AGGREGATE ${qualify(s, r.proname)}(${r.args}) (\n    ${parts.join(',\n    ')}\n)` }, { sql, schema: s, name: r.proname, fnSql: `${qualify(s, r.proname)}(${r.plainargs ?? ''})` });
        ctx.objMap.set(key('pg_proc', r.oid), f.id);
        // GRANT … ON FUNCTION names an ordered-set aggregate by its plain argument list (no ORDER BY)
        ctx.aclTargets.push({ cls: 'pg_proc', oid: Number(r.oid), sub: 0, factId: f.id, objType: 'FUNCTION', objSql: f.meta.fnSql as string });
        continue;
      }
      const kind = r.prokind === 'p' ? 'procedure' : 'function';
      const f = ctx.mk(kind, `${kind}:${sql}`, { def: r.def, args: r.args, result: r.result }, { sql, schema: s, name: r.proname });
      ctx.objMap.set(key('pg_proc', r.oid), f.id);
      ctx.aclTargets.push({ cls: 'pg_proc', oid: Number(r.oid), sub: 0, factId: f.id, objType: kind === 'procedure' ? 'PROCEDURE' : 'FUNCTION', objSql: sql });
    }
  },
};
