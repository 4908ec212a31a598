/**
 * Indexes (not those owned by constraints, not partition children of a parent index), and the table settings that
 * name one: REPLICA IDENTITY (when not DEFAULT) and CLUSTER ON.
 */
import { qualify } from '../../pg/quote.js';
import { key, type Family } from './context.js';

export const indexes: Family = {
  steps: (env) => [
    {
      name: 'indexes',
      sql: `select i.indexrelid, i.indrelid, ic.relname, pg_get_indexdef(i.indexrelid) def, ic.relnamespace,
            exists (select 1 from pg_inherits h where h.inhrelid = i.indexrelid) ischild
       from pg_index i join pg_class ic on ic.oid = i.indexrelid
      where i.indrelid in (${env.rels('rpvm')})
        and i.indexrelid not in (select co.conindid from pg_constraint co where co.contype in ('p','u','x') and co.conindid <> 0)`,
    },
    {
      name: 'replica identity and clustering',
      sql: `select i.indrelid, i.indexrelid, ic.relname, i.indisreplident, i.indisclustered from pg_index i join pg_class ic on ic.oid = i.indexrelid
      where i.indrelid in (${env.rels('rpvm')}) and (i.indisreplident or i.indisclustered)`,
    },
  ],
  build(ctx, rows) {
    for (const r of rows('indexes')) {
      if (ctx.objMap.has(key('pg_class', r.indexrelid))) continue; // constraint index
      if (r.ischild) continue;
      const rel = ctx.relFact.get(Number(r.indrelid));
      if (!rel || rel.kind === 'sequence') continue;
      const s = ctx.nsName.get(Number(r.relnamespace))!;
      const sql = qualify(s, r.relname);
      const f = ctx.mk('index', `index:${sql}`, { def: r.def }, { sql, table: rel.meta.sql as string }, rel.id);
      f.deps.push(rel.id);
      ctx.objMap.set(key('pg_class', r.indexrelid), f.id);
    }

    const idxRows = rows('replica identity and clustering');
    for (const [oid, ident] of ctx.replIdent) {
      const rel = ctx.relFact.get(oid)!;
      const ix = ident === 'i' ? idxRows.find((x) => Number(x.indrelid) === oid && x.indisreplident) : undefined;
      if (ident === 'i' && !ix) continue; // its index was dropped: PostgreSQL then behaves as NOTHING… but prints nothing to recreate
      const f = ctx.mk('replica_identity', `replica_identity:${rel.meta.sql}`, { identity: ident, index: ix ? ix.relname : null }, { table: rel.meta.sql as string }, rel.id);
      f.deps.push(rel.id);
      const ixFact = ix ? ctx.objMap.get(key('pg_class', ix.indexrelid)) : undefined;
      if (ixFact) f.deps.push(ixFact);
    }
    for (const ix of idxRows) {
      if (!ix.indisclustered) continue;
      const rel = ctx.relFact.get(Number(ix.indrelid));
      if (!rel || rel.kind !== 'table') continue;
      const f = ctx.mk('cluster', `cluster:${rel.meta.sql}`, { index: ix.relname }, { table: rel.meta.sql as string }, rel.id);
      f.deps.push(rel.id);
      const ixFact = ctx.objMap.get(key('pg_class', ix.indexrelid));
      if (ixFact) f.deps.push(ixFact);
    }
  },
};
