/** Rewrite rules (a view's or materialized view's _RETURN rule is the view itself). */
import { quoteIdent } from '../../pg/quote.js';
import { key, type Family } from './context.js';

export const rules: Family = {
  steps: (env) => [
    {
      name: 'rules',
      sql: `select rw.oid, rw.ev_class, rw.rulename, rw.ev_enabled, case when rw.rulename <> '_RETURN' then pg_get_ruledef(rw.oid) end def from pg_rewrite rw where rw.ev_class in (${env.rels('rpvm')})`,
    },
  ],
  build(ctx, rows) {
    for (const r of rows('rules')) {
      const rel = ctx.relFact.get(Number(r.ev_class));
      if (!rel || rel.kind === 'sequence') continue;
      if (r.rulename === '_RETURN' && (rel.kind === 'view' || rel.kind === 'matview')) {
        ctx.objMap.set(key('pg_rewrite', r.oid), rel.id);
        continue;
      }
      const f = ctx.mk('rule', `rule:${rel.meta.sql}.${quoteIdent(r.rulename)}`, { def: String(r.def).replace(/;\s*$/, ''), enabled: r.ev_enabled }, { table: rel.meta.sql as string, name: r.rulename }, rel.id);
      f.deps.push(rel.id);
      ctx.objMap.set(key('pg_rewrite', r.oid), f.id);
    }
  },
};
