/** Indexes and extended statistics objects: built on a table from the server's own definition. */
import { disp, none, s, tableHazard, type Rule } from './core.js';

export const index: Rule = {
  create: (f) => ({ sql: [s(f.attrs.def)], hazards: [tableHazard('builds_index', `builds index ${disp(s(f.meta.sql))}`, s(f.meta.table))] }),
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
