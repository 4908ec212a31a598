/** Extended statistics objects (CREATE STATISTICS); one on a relation outside the scope is reported, not handled. */
import { qualify } from '../../pg/quote.js';
import { EXT, key, type Family } from './context.js';

export const statistics: Family = {
  steps: (env) => [
    {
      name: 'statistics objects',
      sql: `select s.oid, s.stxnamespace, s.stxname, s.stxrelid, pg_get_statisticsobjdef(s.oid) def, nullif(s.stxstattarget::int, -1) target
       from pg_statistic_ext s where s.stxnamespace in (${env.ns}) and ${EXT('pg_statistic_ext', 's.oid')}`,
    },
  ],
  build(ctx, rows) {
    for (const r of rows('statistics objects')) {
      const rel = ctx.relFact.get(Number(r.stxrelid));
      const sql = qualify(ctx.nsName.get(Number(r.stxnamespace))!, r.stxname);
      if (!rel || rel.kind !== 'table') {
        ctx.unsupportedObject({ kind: 'statistics', identity: sql, reason: 'statistics objects on a relation outside the scope are not handled', def: r.def }, key('pg_statistic_ext', r.oid));
        continue;
      }
      const f = ctx.mk('statistics', `statistics:${sql}`, { def: r.def, ...(r.target !== null && r.target !== undefined ? { target: Number(r.target) } : {}) }, { sql, table: rel.meta.sql as string }, rel.id);
      f.deps.push(rel.id);
      ctx.objMap.set(key('pg_statistic_ext', r.oid), f.id);
    }
  },
};
