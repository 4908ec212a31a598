/** Views, materialized views and rewrite rules. */
import { quoteIdent } from '../../pg/quote.js';
import type { Fact } from '../model.js';
import { disp, none, optionKeys, s, tableHazard, TRIGGER_ENABLE, type Rule } from './core.js';

/** A view's query as its server printed it (attrs.def is the form compared across versions, see versions.ts). */
function viewText(f: Fact): string {
  return s(f.meta.def ?? f.attrs.def);
}
const withOptions = (f: Fact) => ((f.attrs.options as string[]).length ? ` WITH (${(f.attrs.options as string[]).join(', ')})` : '');

export const view: Rule = {
  create: (f) => none([`CREATE VIEW ${f.meta.sql}${withOptions(f)} AS\n${viewText(f)}`]),
  drop: (f) => none([`DROP VIEW ${f.meta.sql}`]),
  // CREATE OR REPLACE VIEW while the old columns stay, in order (new ones only appended)
  alter: (o, n) => {
    const oc = o.attrs.columns as string[];
    const nc = n.attrs.columns as string[];
    if (nc.length < oc.length || oc.some((c, i) => nc[i] !== c)) return null;
    const sql: string[] = [];
    const gone = optionKeys(o.attrs.options as string[]).filter((k) => !optionKeys(n.attrs.options as string[]).includes(k));
    if (gone.length) sql.push(`ALTER VIEW ${n.meta.sql} RESET (${gone.join(', ')})`);
    sql.push(`CREATE OR REPLACE VIEW ${n.meta.sql}${withOptions(n)} AS\n${viewText(n)}`);
    return { sql, hazards: [] };
  },
};

export const matview: Rule = {
  create: (f) => ({
    sql: [`CREATE MATERIALIZED VIEW ${f.meta.sql}${f.attrs.am ? ` USING ${quoteIdent(s(f.attrs.am))}` : ''}${withOptions(f)} AS\n${viewText(f)}`],
    hazards: [tableHazard('exclusive_lock', `populates materialized view ${disp(s(f.meta.sql))}`, s(f.meta.sql))],
  }),
  drop: (f) => none([`DROP MATERIALIZED VIEW ${f.meta.sql}`]),
};

export const rule: Rule = {
  create: (f) => {
    const sql = [s(f.attrs.def)];
    if (f.attrs.enabled !== 'O') sql.push(`ALTER TABLE ${f.meta.table} ${TRIGGER_ENABLE[s(f.attrs.enabled)]} RULE ${quoteIdent(s(f.meta.name))}`);
    return none(sql);
  },
  drop: (f) => none([`DROP RULE ${quoteIdent(s(f.meta.name))} ON ${f.meta.table}`]),
  alter: (o, n) => {
    if (JSON.stringify(o.deps) !== JSON.stringify(n.deps)) return null;
    const sql: string[] = [];
    if (o.attrs.def !== n.attrs.def) sql.push(s(n.attrs.def).replace(/^CREATE RULE /, 'CREATE OR REPLACE RULE '));
    if (o.attrs.enabled !== n.attrs.enabled) sql.push(`ALTER TABLE ${n.meta.table} ${TRIGGER_ENABLE[s(n.attrs.enabled)]} RULE ${quoteIdent(s(n.meta.name))}`);
    return { sql, hazards: [] };
  },
};
