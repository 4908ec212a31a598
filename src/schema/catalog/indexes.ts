/**
 * Indexes (not those owned by constraints), and the table settings that name one: REPLICA IDENTITY (when not DEFAULT)
 * and CLUSTER ON. An index a partition holds under its parent's partitioned index (PostgreSQL creates or attaches it)
 * is not an index of its own: its name is a partition_index fact, identified by the partition and the top-level
 * index (a partition holds one index per partitioned index above it).
 */
import { qualify } from '../../pg/quote.js';
import type { Fact } from '../model.js';
import { key, type Family } from './context.js';

export const indexes: Family = {
  steps: (env) => [
    {
      name: 'indexes',
      sql: `select i.indexrelid, i.indrelid, ic.relname, pg_get_indexdef(i.indexrelid) def, ic.relnamespace,
            (select h.inhparent from pg_inherits h where h.inhrelid = i.indexrelid) parentidx
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
    const ixRows = rows('indexes');
    /** partition children, by the oid of the index they are attached to */
    const children = new Map<number, typeof ixRows>();
    /** index oid → its fact and the top-level index's qualified name */
    const made = new Map<number, { fact: Fact; top: string }>();
    for (const r of ixRows) {
      if (ctx.objMap.has(key('pg_class', r.indexrelid))) continue; // constraint index
      if (r.parentidx !== null) {
        const l = children.get(Number(r.parentidx)) ?? [];
        l.push(r);
        children.set(Number(r.parentidx), l);
        continue;
      }
      const rel = ctx.relFact.get(Number(r.indrelid));
      if (!rel || rel.kind === 'sequence') continue;
      const s = ctx.nsName.get(Number(r.relnamespace))!;
      const sql = qualify(s, r.relname);
      const f = ctx.mk('index', `index:${sql}`, { def: r.def }, { sql, table: rel.meta.sql as string }, rel.id);
      f.deps.push(rel.id);
      ctx.objMap.set(key('pg_class', r.indexrelid), f.id);
      made.set(Number(r.indexrelid), { fact: f, top: sql });
    }
    // partition children, a level at a time from the top-level indexes down
    let level = [...made.keys()];
    while (level.length) {
      const next: number[] = [];
      for (const p of level) {
        const parent = made.get(p)!;
        for (const r of children.get(p) ?? []) {
          const rel = ctx.relFact.get(Number(r.indrelid));
          if (!rel || rel.kind !== 'table') continue;
          const sql = qualify(ctx.nsName.get(Number(r.relnamespace))!, r.relname);
          const f = ctx.mk('partition_index', `partition_index:${rel.meta.sql}:${parent.top}`, { name: r.relname }, {
            sql, table: rel.meta.sql as string, parentIndex: parent.fact.meta.sql as string,
          }, rel.id);
          f.deps.push(rel.id, parent.fact.id);
          if (ctx.facts.has(`partition:${rel.meta.sql}`)) f.deps.push(`partition:${rel.meta.sql}`);
          ctx.objMap.set(key('pg_class', r.indexrelid), f.id);
          made.set(Number(r.indexrelid), { fact: f, top: parent.top });
          next.push(Number(r.indexrelid));
        }
      }
      level = next;
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
