/**
 * Indexes and extended statistics objects: built on a table from the server's own definition. The name of an index a
 * partition holds under a partitioned index: renamed, never rebuilt.
 */
import { quoteIdent, quoteLiteral } from '../../pg/quote.js';
import { disp, none, s, tableHazard, type Rule } from './core.js';

/**
 * pg_get_indexdef prints a partitioned table's index `ON ONLY` (pg_dump's form: the partitions' indexes are made and
 * attached one by one); created that way on a table that has partitions, it stays invalid and the partitions get no
 * index. Without ONLY, CREATE INDEX builds (or attaches a matching existing) index on every partition.
 */
const recursing = (def: string) => def.replace(/^(CREATE (?:UNIQUE )?INDEX (?:"(?:[^"]|"")*"|[^\s"]+) ON )ONLY /, '$1');

export const index: Rule = {
  create: (f) => ({ sql: [recursing(s(f.attrs.def))], hazards: [tableHazard('builds_index', `builds index ${disp(s(f.meta.sql))}`, s(f.meta.table))] }),
  drop: (f) => none([`DROP INDEX ${f.meta.sql}`]),
};

export const statistics: Rule = {
  create: (f) => none([s(f.attrs.def), ...(f.attrs.target !== undefined ? [`ALTER STATISTICS ${f.meta.sql} SET STATISTICS ${Number(f.attrs.target)}`] : [])]),
  drop: (f) => none([`DROP STATISTICS ${f.meta.sql}`]),
  alter: (o, n) =>
    o.attrs.def === n.attrs.def && JSON.stringify(o.deps) === JSON.stringify(n.deps)
      ? { sql: [`ALTER STATISTICS ${n.meta.sql} SET STATISTICS ${Number(n.attrs.target ?? -1)}`], hazards: [] }
      : null,
};

/**
 * PostgreSQL makes (or attaches) a partition's index when the partition or the partitioned index comes, under a name
 * of its own choosing: once both exist (the parent index under the source's name: it is created or renamed first),
 * the index of the partition attached to it is renamed to the source's name. Dropped with the partition or the
 * partitioned index: nothing of its own to drop.
 */
export const partitionIndex: Rule = {
  create: (f) => {
    const find = `SELECT h.inhrelid::regclass FROM pg_inherits h JOIN pg_index x ON x.indexrelid = h.inhrelid WHERE h.inhparent = ${quoteLiteral(s(f.meta.parentIndex))}::regclass AND x.indrelid = ${quoteLiteral(s(f.meta.table))}::regclass`;
    const missing = `no index of ${disp(s(f.meta.table))} is attached to ${disp(s(f.meta.parentIndex))}`;
    const body = `DECLARE i regclass := (${find}); BEGIN IF i IS NULL THEN RAISE EXCEPTION USING MESSAGE = ${quoteLiteral(missing)}; END IF; `
      + `IF (SELECT relname FROM pg_class WHERE oid = i) <> ${quoteLiteral(s(f.attrs.name))} THEN EXECUTE 'ALTER INDEX ' || i::text || ${quoteLiteral(` RENAME TO ${quoteIdent(s(f.attrs.name))}`)}; END IF; END`;
    return none([`DO ${quoteLiteral(body)}`]);
  },
  drop: () => none([]),
  alter: (o, n) => none([`ALTER INDEX ${o.meta.sql} RENAME TO ${quoteIdent(s(n.attrs.name))}`]),
};
