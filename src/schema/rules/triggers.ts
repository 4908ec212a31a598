/** Triggers (constraint triggers too) and their enabled state. */
import { quoteIdent } from '../../pg/quote.js';
import { none, s, TRIGGER_ENABLE, type Rule } from './core.js';

export const trigger: Rule = {
  create: (f) => {
    const sql = [s(f.attrs.def)];
    if (f.attrs.enabled !== 'O') sql.push(`ALTER TABLE ${f.meta.table} ${TRIGGER_ENABLE[s(f.attrs.enabled)]} TRIGGER ${quoteIdent(s(f.meta.name))}`);
    return none(sql);
  },
  drop: (f) => none([`DROP TRIGGER ${quoteIdent(s(f.meta.name))} ON ${f.meta.table}`]),
  // only the enabled state changes in place; any other change recreates it
  alter: (o, n) =>
    o.attrs.def === n.attrs.def && o.attrs.enabled !== n.attrs.enabled && JSON.stringify(o.deps) === JSON.stringify(n.deps)
      ? { sql: [`ALTER TABLE ${n.meta.table} ${TRIGGER_ENABLE[s(n.attrs.enabled)]} TRIGGER ${quoteIdent(s(n.meta.name))}`], hazards: [] }
      : null,
};
