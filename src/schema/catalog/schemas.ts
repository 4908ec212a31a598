/** Schemas, extensions (with the versions this server could install) and what belongs to each extension. */
import { quoteIdent } from '../../pg/quote.js';
import { key, pgArray, type Family } from './context.js';

export const schemas: Family = {
  steps: (env) => [
    {
      name: 'schemas',
      sql: `select n.oid, n.nspname from pg_namespace n where n.oid in (${env.ns}) order by n.nspname`,
    },
    {
      name: 'extensions',
      sql: `select e.oid, e.extname, e.extversion, e.extnamespace from pg_extension e where e.extnamespace in (${env.ns}) order by e.extname`,
    },
    {
      name: 'available extension versions',
      sql: `select name, array_agg(version::text order by version)::text[] versions from pg_available_extension_versions group by name order by name`,
    },
    {
      name: 'extension members',
      sql: `select d.classid::regclass::text cls, d.objid, d.refobjid from pg_depend d where d.refclassid = 'pg_extension'::regclass and d.deptype = 'e'`,
    },
  ],
  build(ctx, rows) {
    for (const r of rows('schemas')) {
      ctx.nsName.set(Number(r.oid), r.nspname);
      const f = ctx.mk('schema', `schema:${quoteIdent(r.nspname)}`, {}, { sql: quoteIdent(r.nspname), name: r.nspname });
      ctx.objMap.set(key('pg_namespace', r.oid), f.id);
      ctx.aclTargets.push({ cls: 'pg_namespace', oid: Number(r.oid), sub: 0, factId: f.id, objType: 'SCHEMA', objSql: f.meta.sql as string });
    }
    for (const r of rows('extensions')) {
      const s = ctx.nsName.get(Number(r.extnamespace))!;
      const f = ctx.mk('extension', `extension:${quoteIdent(r.extname)}`, { schema: s, version: r.extversion }, { sql: quoteIdent(r.extname) });
      f.deps.push(`schema:${quoteIdent(s)}`);
      ctx.objMap.set(key('pg_extension', r.oid), f.id);
    }
    // what CREATE/ALTER EXTENSION … VERSION could reach here (the planner refuses a version the target lacks)
    for (const r of rows('available extension versions')) ctx.availableExtensions[r.name] = pgArray(r.versions);
    for (const r of rows('extension members')) {
      const ext = ctx.objMap.get(key('pg_extension', r.refobjid));
      if (ext) ctx.extMembers.set(key(r.cls, r.objid), ext);
    }
  },
};
