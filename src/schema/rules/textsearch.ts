/** Text search dictionaries and configurations. */
import { quoteIdent } from '../../pg/quote.js';
import type { Fact } from '../model.js';
import { none, s, type Rule } from './core.js';

/** A text search configuration's mappings (`token:dict1,dict2`) from `from` to `to`. */
function tsMappingSql(f: Fact, from: string[], to: string[]): string[] {
  const split = (m: string) => [m.slice(0, m.indexOf(':')), m.slice(m.indexOf(':') + 1)] as const;
  const old = new Map(from.map(split));
  const neu = new Map(to.map(split));
  const pre = `ALTER TEXT SEARCH CONFIGURATION ${f.meta.sql}`;
  const out: string[] = [];
  for (const [tok] of old) if (!neu.has(tok)) out.push(`${pre} DROP MAPPING FOR ${quoteIdent(tok)}`);
  for (const [tok, dicts] of neu) {
    if (old.get(tok) === dicts) continue;
    out.push(`${pre} ${old.has(tok) ? 'ALTER' : 'ADD'} MAPPING FOR ${quoteIdent(tok)} WITH ${dicts}`);
  }
  return out;
}

export const tsDictionary: Rule = {
  create: (f) => none([`CREATE TEXT SEARCH DICTIONARY ${f.meta.sql} (TEMPLATE = ${s(f.attrs.template)}${f.attrs.options !== null ? `, ${s(f.attrs.options)}` : ''})`]),
  drop: (f) => none([`DROP TEXT SEARCH DICTIONARY ${f.meta.sql}`]),
  // other options or template: recreated, with the configurations using it
};

export const tsConfig: Rule = {
  create: (f) => none([`CREATE TEXT SEARCH CONFIGURATION ${f.meta.sql} (PARSER = ${s(f.attrs.parser)})`, ...tsMappingSql(f, [], f.attrs.mappings as string[])]),
  drop: (f) => none([`DROP TEXT SEARCH CONFIGURATION ${f.meta.sql}`]),
  alter: (o, n) => (o.attrs.parser === n.attrs.parser ? { sql: tsMappingSql(n, o.attrs.mappings as string[], n.attrs.mappings as string[]), hazards: [] } : null),
};
