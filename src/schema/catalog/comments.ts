/** Comments (COMMENT ON …) on the objects with facts, a view's columns included. */
import { quoteIdent } from '../../pg/quote.js';
import { key, type Family } from './context.js';

const COMMENTABLE_TYPES = new Set(['enum', 'domain', 'composite', 'range']);

export const comments: Family = {
  steps: () => [
    {
      name: 'comments',
      sql: `select d.classoid::regclass::text cls, d.objoid, d.objsubid, d.description from pg_description d where d.objoid >= 16384`,
    },
  ],
  build(ctx, rows) {
    for (const r of rows('comments')) {
      const vc = r.cls === 'pg_class' && Number(r.objsubid) ? ctx.viewCols.get(`${r.objoid}.${r.objsubid}`) : undefined;
      if (vc) {
        // a view's (materialized view's) column: COMMENT ON COLUMN view.column
        const col = quoteIdent(vc.name);
        const f = ctx.mk('comment', `comment:${vc.rel.id}.${col}`, { text: r.description }, { on: `COLUMN ${vc.rel.meta.sql}.${col}` }, vc.rel.id);
        f.deps.push(vc.rel.id);
        continue;
      }
      const id = ctx.objMap.get(key(r.cls, r.objoid, r.objsubid));
      if (!id) continue;
      const target = ctx.facts.get(id)!;
      // a comment on a constraint-owned index is the constraint's index comment: keep it distinct
      if (r.cls === 'pg_class' && target.kind === 'constraint') continue;
      if (r.cls === 'pg_type' && !COMMENTABLE_TYPES.has(target.kind)) continue;
      if (r.cls === 'pg_class' && Number(r.objsubid) && target.kind !== 'column') continue;
      const f = ctx.mk('comment', `comment:${id}`, { text: r.description }, {}, id);
      f.deps.push(id);
    }
  },
};
