/** Comments on any object (and on a part of one with no fact of its own, such as a view's column). */
import { quoteIdent, quoteLiteral } from '../../pg/quote.js';
import type { Fact } from '../model.js';
import { none, s, type Rule } from './core.js';

/** How COMMENT ON names an object. */
export function objRef(f: Fact): string {
  const m = f.meta;
  switch (f.kind) {
    case 'schema': return `SCHEMA ${m.sql}`;
    case 'extension': return `EXTENSION ${m.sql}`;
    case 'collation': return `COLLATION ${m.sql}`;
    case 'enum': case 'composite': case 'range': return `TYPE ${m.sql}`;
    case 'domain': return `DOMAIN ${m.sql}`;
    case 'table': return `TABLE ${m.sql}`;
    case 'view': return `VIEW ${m.sql}`;
    case 'matview': return `MATERIALIZED VIEW ${m.sql}`;
    case 'sequence': return `SEQUENCE ${m.sql}`;
    case 'index': case 'partition_index': return `INDEX ${m.sql}`;
    case 'column': return `COLUMN ${m.table}.${m.sql}`;
    case 'constraint': return `CONSTRAINT ${quoteIdent(s(m.name))} ON ${m.table}`;
    case 'domain_constraint': return `CONSTRAINT ${quoteIdent(s(m.name))} ON DOMAIN ${m.domain}`;
    case 'trigger': return `TRIGGER ${quoteIdent(s(m.name))} ON ${m.table}`;
    case 'policy': return `POLICY ${quoteIdent(s(m.name))} ON ${m.table}`;
    case 'function': return `FUNCTION ${m.sql}`;
    case 'procedure': return `PROCEDURE ${m.sql}`;
    case 'rule': return `RULE ${quoteIdent(s(m.name))} ON ${m.table}`;
    case 'ts_dictionary': return `TEXT SEARCH DICTIONARY ${m.sql}`;
    case 'ts_config': return `TEXT SEARCH CONFIGURATION ${m.sql}`;
    default: return `${f.kind.toUpperCase()} ${m.sql}`;
  }
}

export const comment: Rule = {
  // meta.on: a part of the parent with no fact of its own (a view's column)
  create: (f, ctx) => none([`COMMENT ON ${f.meta.on ?? objRef(ctx.source.get(f.parent!)!)} IS ${quoteLiteral(s(f.attrs.text))}`]),
  drop: (f, ctx) => none([`COMMENT ON ${f.meta.on ?? objRef(ctx.target.get(f.parent!)!)} IS NULL`]),
  alter: (_o, n, ctx) => ({ sql: [`COMMENT ON ${n.meta.on ?? objRef(ctx.source.get(n.parent!)!)} IS ${quoteLiteral(s(n.attrs.text))}`], hazards: [] }),
};
