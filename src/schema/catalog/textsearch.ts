/** Text search dictionaries and configurations (parsers and templates are C: reported with the other objects not handled). */
import { qualify } from '../../pg/quote.js';
import { EXT, key, pgArray, type Family } from './context.js';

export const textSearch: Family = {
  steps: (env) => [
    {
      name: 'text search dictionaries',
      sql: `select d.oid, d.dictnamespace, d.dictname, quote_ident(tn.nspname) || '.' || quote_ident(t.tmplname) tmpl, d.dictinitoption
       from pg_ts_dict d join pg_ts_template t on t.oid = d.dicttemplate join pg_namespace tn on tn.oid = t.tmplnamespace
      where d.dictnamespace in (${env.ns}) and ${EXT('pg_ts_dict', 'd.oid')}`,
    },
    {
      name: 'text search configurations',
      sql: `select c.oid, c.cfgnamespace, c.cfgname, quote_ident(pn.nspname) || '.' || quote_ident(p.prsname) as prs,
            array(select tt.alias || ':' || string_agg(m.mapdict::regdictionary::text, ',' order by m.mapseqno)
                    from pg_ts_config_map m join ts_token_type(c.cfgparser) tt on tt.tokid = m.maptokentype
                   where m.mapcfg = c.oid group by tt.alias order by tt.alias)::text[] mappings
       from pg_ts_config c join pg_ts_parser p on p.oid = c.cfgparser join pg_namespace pn on pn.oid = p.prsnamespace
      where c.cfgnamespace in (${env.ns}) and ${EXT('pg_ts_config', 'c.oid')}`,
    },
  ],
  build(ctx, rows) {
    for (const r of rows('text search dictionaries')) {
      const s = ctx.nsName.get(Number(r.dictnamespace))!;
      const sql = qualify(s, r.dictname);
      const f = ctx.mk('ts_dictionary', `ts_dictionary:${sql}`, { template: r.tmpl, options: r.dictinitoption ?? null }, { sql, schema: s, name: r.dictname });
      ctx.objMap.set(key('pg_ts_dict', r.oid), f.id);
    }
    for (const r of rows('text search configurations')) {
      const s = ctx.nsName.get(Number(r.cfgnamespace))!;
      const sql = qualify(s, r.cfgname);
      const f = ctx.mk('ts_config', `ts_config:${sql}`, { parser: r.prs, mappings: pgArray(r.mappings) }, { sql, schema: s, name: r.cfgname });
      ctx.objMap.set(key('pg_ts_config', r.oid), f.id);
    }
  },
};
