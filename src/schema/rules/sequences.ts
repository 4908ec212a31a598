/** Sequences (their settings; their values are data) and their OWNED BY link to a column. */
import { disp, none, s, type Rule } from './core.js';

const settings = (a: Record<string, unknown>) =>
  `AS ${s(a.type)} INCREMENT BY ${s(a.increment)} MINVALUE ${s(a.min)} MAXVALUE ${s(a.max)} START WITH ${s(a.start)} CACHE ${s(a.cache)} ${a.cycle ? 'CYCLE' : 'NO CYCLE'}`;

export const sequence: Rule = {
  create: (f) => none([`CREATE SEQUENCE ${f.meta.sql} ${settings(f.attrs)}`]),
  drop: (f) => ({ sql: [`DROP SEQUENCE IF EXISTS ${f.meta.sql}`], hazards: [{ kind: 'deletes_data', message: `drops sequence ${disp(s(f.meta.sql))} (its current value is lost)` }] }),
  alter: (o, n) => {
    if (JSON.stringify(o.attrs) === JSON.stringify(n.attrs)) return null;
    return { sql: [`ALTER SEQUENCE ${n.meta.sql} ${settings(n.attrs)}`], hazards: [] };
  },
};

export const seqOwned: Rule = {
  create: (f) => none([`ALTER SEQUENCE ${f.meta.seq} OWNED BY ${s(f.attrs.column)}`]),
  drop: (f) => none([`ALTER SEQUENCE ${f.meta.seq} OWNED BY NONE`]),
  alter: (_o, n) => ({ sql: [`ALTER SEQUENCE ${n.meta.seq} OWNED BY ${s(n.attrs.column)}`], hazards: [] }),
};
