/** Triggers of tables and views (not internal ones, not the clones on partitions). */
import { quoteIdent } from '../../pg/quote.js';
import { key, type Family } from './context.js';

export const triggers: Family = {
  steps: (env) => [
    {
      // pg_trigger.tgparentid exists from 13 (MIN_SERVER_VERSION)
      name: 'triggers',
      sql: `select t.oid, t.tgrelid, t.tgname, pg_get_triggerdef(t.oid) def, t.tgenabled
       from pg_trigger t where t.tgrelid in (${env.rels('rpvm')}) and not t.tgisinternal and t.tgparentid = 0`,
    },
  ],
  build(ctx, rows) {
    for (const r of rows('triggers')) {
      const rel = ctx.relFact.get(Number(r.tgrelid));
      if (!rel || rel.kind === 'sequence') continue;
      const f = ctx.mk('trigger', `trigger:${rel.meta.sql}.${quoteIdent(r.tgname)}`, { def: r.def, enabled: r.tgenabled }, { table: rel.meta.sql as string, name: r.tgname }, rel.id);
      f.deps.push(rel.id);
      ctx.objMap.set(key('pg_trigger', r.oid), f.id);
    }
  },
};
