/**
 * Catalog → facts. One query per object kind (batched over the whole scope), then one pass over
 * pg_depend to turn catalog references into fact-id dependencies.
 */
import type pg from 'pg';
import { quoteIdent, qualify } from '../pg/quote.js';
import { MigrateError } from '../errors.js';
import type { Fact, SchemaModel, SchemaScope, UnsupportedObject, AttrValue } from './model.js';
import { canonicalIcuLocale, versionText, viewDefForComparison } from './versions.js';

const EXT = (cls: string, col: string) =>
  `not exists (select 1 from pg_depend xd where xd.classid = '${cls}'::regclass and xd.objid = ${col} and xd.deptype = 'e')`;

function pgArray(v: unknown): string[] {
  if (v === null || v === undefined) return [];
  if (Array.isArray(v)) return v.map(String);
  const s = String(v);
  if (s === '{}') return [];
  // simple text[] literal parser (node-pg leaves some array types unparsed)
  const out: string[] = [];
  let i = 1;
  while (i < s.length - 1) {
    if (s[i] === '"') {
      let j = i + 1;
      let cur = '';
      while (s[j] !== '"') {
        if (s[j] === '\\') j++;
        cur += s[j];
        j++;
      }
      out.push(cur);
      i = j + 2;
    } else {
      let j = i;
      while (j < s.length - 1 && s[j] !== ',') j++;
      out.push(s.slice(i, j));
      i = j + 1;
    }
  }
  return out;
}

/** `a integer, INOUT b text` → `IN a integer, INOUT b text` (the argument list split at top-level commas). */
function procedureArgs(list: string): string {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let cur = '';
  for (const ch of String(list)) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && (ch === '(' || ch === '[')) depth++;
    else if (!quoted && (ch === ')' || ch === ']')) depth--;
    if (ch === ',' && depth === 0 && !quoted) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur !== '') parts.push(cur);
  return parts.map((p) => (/^\s*(IN|OUT|INOUT|VARIADIC)\s/.test(p) ? p : p.replace(/^(\s*)/, '$1IN '))).join(',');
}

const sortStr = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

interface AclRow { grantee: string; privs: string[] }

function aclRows(rows: { grantee: string; privilege_type: string; is_grantable: boolean }[]): AclRow[] {
  const by = new Map<string, string[]>();
  for (const r of rows) {
    const l = by.get(r.grantee) ?? [];
    l.push(r.privilege_type + (r.is_grantable ? '*' : ''));
    by.set(r.grantee, l);
  }
  return [...by.entries()].map(([grantee, privs]) => ({ grantee, privs: privs.sort(sortStr) }));
}

/** The oldest PostgreSQL the schema engine reads (13: pg_trigger.tgparentid; every later catalog change is gated). */
export const MIN_SERVER_VERSION = 130000;

export async function inspectSchema(client: pg.ClientBase, scope: SchemaScope = {}): Promise<SchemaModel> {
  const prevPath = (await client.query<{ search_path: string }>('show search_path')).rows[0]!.search_path;
  await client.query(`select set_config('search_path', '', false)`);
  let failed = false;
  try {
    return await inspectInner(client, scope);
  } catch (e) {
    failed = true;
    throw e;
  } finally {
    // After a failed query inside a transaction this would only say "current transaction is aborted" and hide the
    // real error; the caller's ROLLBACK restores the setting then.
    await client.query(`select set_config('search_path', $1, false)`, [prevPath]).catch((e) => {
      if (!failed) throw e;
    });
  }
}

async function inspectInner(client: pg.ClientBase, scope: SchemaScope): Promise<SchemaModel> {
  let serverVersion = 0;
  let reading = 'the server version';
  const q = async <T extends pg.QueryResultRow = any>(text: string, params: unknown[] = []): Promise<T[]> => {
    try {
      return (await client.query<T>(text, params as any[])).rows;
    } catch (e) {
      const err = e as Error & { code?: string };
      throw new MigrateError('schema_inspect_failed', `schema inspection failed reading ${reading}${serverVersion ? ` (PostgreSQL ${versionText(serverVersion)})` : ''}: ${err.message}`, {
        cause: e,
        hint: err.code === '42703' || err.code === '42P01' ? 'a catalog column or table this PostgreSQL version lacks: please report it with the version' : 'inspection only reads catalogs: check the role\'s privileges and the server log',
      });
    }
  };
  /** Sets what the next queries read, for error messages. */
  const step = (what: string) => {
    reading = what;
  };
  serverVersion = Number((await q(`select current_setting('server_version_num') v`))[0].v);
  if (serverVersion < MIN_SERVER_VERSION) {
    throw new MigrateError('unsupported_server', `PostgreSQL ${versionText(serverVersion)} is not supported by the schema engine`, { hint: 'PostgreSQL 13 to 18 are supported' });
  }
  step('roles');
  const roleRows = await q<{ oid: number; rolname: string }>(`select oid, rolname from pg_roles order by rolname`);
  const roles = roleRows.map((r) => r.rolname);

  const facts = new Map<string, Fact>();
  const unsupported: UnsupportedObject[] = [];
  const add = (f: Fact) => {
    facts.set(f.id, f);
    return f;
  };
  const mk = (kind: string, id: string, attrs: Record<string, AttrValue>, meta: Record<string, string | number>, parent?: string): Fact =>
    add({ id, kind, parent, attrs, deps: [], meta });

  // catalog object -> fact id
  const objMap = new Map<string, string>(); // `${cls}:${oid}:${sub}`
  const key = (cls: string, oid: number | string, sub: number | string = 0) => `${cls}:${oid}:${sub}`;

  // ---------- schemas
  step('schemas');
  const nsRows = await q(
    `select n.oid, n.nspname, n.nspowner, coalesce(n.nspacl, acldefault('n', n.nspowner)) is not null as x
       from pg_namespace n
      where n.nspname !~ '^pg_' and n.nspname <> 'information_schema'
        and ($1::text[] is null or n.nspname = any($1::text[]))
        and not (n.nspname = any($2::text[]))
        and ${EXT('pg_namespace', 'n.oid')}
      order by n.nspname`,
    [scope.schemas && scope.schemas.length ? scope.schemas : null, scope.excludeSchemas ?? []],
  );
  const aclTargets: { cls: string; oid: number; sub: number; factId: string; objType: string; objSql: string; column?: string }[] = [];
  const nsOids = nsRows.map((r) => Number(r.oid));
  const nsName = new Map<number, string>();
  for (const r of nsRows) {
    nsName.set(Number(r.oid), r.nspname);
    const f = mk('schema', `schema:${quoteIdent(r.nspname)}`, {}, { sql: quoteIdent(r.nspname), name: r.nspname });
    objMap.set(key('pg_namespace', r.oid), f.id);
    aclTargets.push({ cls: 'pg_namespace', oid: Number(r.oid), sub: 0, factId: f.id, objType: 'SCHEMA', objSql: f.meta.sql as string });
  }

  // ---------- extensions
  step('extensions');
  for (const r of await q(
    `select e.oid, e.extname, e.extversion, e.extnamespace from pg_extension e where e.extnamespace = any($1::oid[]) order by e.extname`,
    [nsOids],
  )) {
    const f = mk('extension', `extension:${quoteIdent(r.extname)}`, { schema: nsName.get(Number(r.extnamespace))!, version: r.extversion }, { sql: quoteIdent(r.extname) });
    f.deps.push(`schema:${quoteIdent(nsName.get(Number(r.extnamespace))!)}`);
    objMap.set(key('pg_extension', r.oid), f.id);
  }
  // what CREATE/ALTER EXTENSION … VERSION could reach here (the planner refuses a version the target lacks)
  step('available extension versions');
  const availableExtensions: Record<string, string[]> = {};
  for (const r of await q(`select name, array_agg(version::text order by version)::text[] versions from pg_available_extension_versions group by name order by name`)) {
    availableExtensions[r.name] = pgArray(r.versions);
  }
  step('extension members');
  const extMembers = new Map<string, string>();
  for (const r of await q(
    `select d.classid::regclass::text cls, d.objid, d.refobjid from pg_depend d where d.refclassid = 'pg_extension'::regclass and d.deptype = 'e'`,
  )) {
    const ext = objMap.get(key('pg_extension', r.refobjid));
    if (ext) extMembers.set(key(r.cls, r.objid), ext);
  }

  // ---------- collations
  step('collations');
  // The locale columns moved: ICU locale in collcollate (13–14), colliculocale (15–16), colllocale (17+, also the
  // builtin provider's locale); ICU rules from 16. The row is read as jsonb, whatever its columns.
  for (const r of await q(
    `select c.oid, c.collnamespace, c.collname, c.collprovider, c.collisdeterministic, to_jsonb(c) j
       from pg_collation c where c.collnamespace = any($1::oid[]) and ${EXT('pg_collation', 'c.oid')}`,
    [nsOids],
  )) {
    const s = nsName.get(Number(r.collnamespace))!;
    const j = r.j as Record<string, string | null | undefined>;
    const icu = r.collprovider === 'i';
    const libc = r.collprovider === 'c';
    const locale = j.colllocale ?? j.colliculocale ?? (icu ? j.collcollate : null) ?? null;
    const attrs: Record<string, AttrValue> = {
      provider: r.collprovider, deterministic: r.collisdeterministic,
      collate: libc ? j.collcollate ?? null : null, ctype: libc ? j.collctype ?? null : null,
      icuLocale: icu ? canonicalIcuLocale(locale) : null,
    };
    if (r.collprovider === 'b') attrs.locale = locale; // builtin provider (17+)
    if (j.collicurules) attrs.icuRules = j.collicurules; // 16+
    const f = mk('collation', `collation:${qualify(s, r.collname)}`, attrs, { sql: qualify(s, r.collname), schema: s, name: r.collname, ...(icu && locale !== null ? { locale } : {}) });
    objMap.set(key('pg_collation', r.oid), f.id);
  }

  // ---------- types (enum, domain, composite, range)
  step('types');
  const compositeByRel = new Map<number, Fact>();
  const typeRows = await q(
    `select t.oid, t.typnamespace, t.typname, t.typtype, t.typrelid, t.typarray, t.typnotnull, t.typowner,
            format_type(t.typbasetype, t.typtypmod) basetype,
            pg_get_expr(t.typdefaultbin, 0) typdefault,
            case when t.typtype = 'd' and t.typcollation <> bt.typcollation then
              (select quote_ident(cn.nspname) || '.' || quote_ident(co.collname) from pg_collation co join pg_namespace cn on cn.oid = co.collnamespace where co.oid = t.typcollation) end as collation,
            case when t.typtype = 'e' then array(select e.enumlabel::text from pg_enum e where e.enumtypid = t.oid order by e.enumsortorder) end labels,
            r.rngsubtype, format_type(r.rngsubtype, null) rsub,
            (select quote_ident(on2.nspname) || '.' || quote_ident(oc.opcname) from pg_opclass oc join pg_namespace on2 on on2.oid = oc.opcnamespace where oc.oid = r.rngsubopc and not oc.opcdefault) rngopc,
            (select quote_ident(cn.nspname) || '.' || quote_ident(co.collname) from pg_collation co join pg_namespace cn on cn.oid = co.collnamespace where co.oid = r.rngcollation and r.rngcollation <> sbt.typcollation) rngcoll,
            nullif(r.rngcanonical::regproc::text, '-') rngcanonical, nullif(r.rngsubdiff::regproc::text, '-') rngsubdiff,
            ${serverVersion >= 140000 ? '(select mt.typarray from pg_type mt where mt.oid = r.rngmultitypid) mrarray, r.rngmultitypid' : 'null mrarray, null rngmultitypid'}
       from pg_type t
       left join pg_type bt on bt.oid = t.typbasetype
       left join pg_range r on r.rngtypid = t.oid
       left join pg_type sbt on sbt.oid = r.rngsubtype
      where t.typnamespace = any($1::oid[])
        and (t.typtype in ('e','d','r','b','p') or (t.typtype = 'c' and (select c.relkind from pg_class c where c.oid = t.typrelid) = 'c'))
        and t.oid not in (select e.typarray from pg_type e where e.typarray <> 0)
        and ${EXT('pg_type', 't.oid')}`,
    [nsOids],
  );
  for (const r of typeRows) {
    const s = nsName.get(Number(r.typnamespace))!;
    const sql = qualify(s, r.typname);
    const meta = { sql, schema: s, name: r.typname };
    let f: Fact;
    if (r.typtype === 'e') f = mk('enum', `type:${sql}`, { labels: pgArray(r.labels) }, meta);
    else if (r.typtype === 'd') f = mk('domain', `type:${sql}`, { basetype: r.basetype, notnull: r.typnotnull, default: r.typdefault, collation: r.collation }, meta);
    else if (r.typtype === 'c') {
      f = mk('composite', `type:${sql}`, { attributes: [] }, meta);
      compositeByRel.set(Number(r.typrelid), f);
      objMap.set(key('pg_class', r.typrelid), f.id);
    } else if (r.typtype === 'r') {
      f = mk('range', `type:${sql}`, { subtype: r.rsub, opclass: r.rngopc, collation: r.rngcoll, canonical: r.rngcanonical, subdiff: r.rngsubdiff }, meta);
      if (r.rngmultitypid) objMap.set(key('pg_type', r.rngmultitypid), f.id);
      if (r.mrarray) objMap.set(key('pg_type', r.mrarray), f.id);
    } else {
      unsupported.push({ kind: 'type', identity: sql, reason: `${r.typtype === 'b' ? 'base' : 'pseudo'} types (written in C) are not handled`, def: r.typname });
      continue;
    }
    objMap.set(key('pg_type', r.oid), f.id);
    if (r.typarray && Number(r.typarray)) objMap.set(key('pg_type', r.typarray), f.id);
    aclTargets.push({ cls: 'pg_type', oid: Number(r.oid), sub: 0, factId: f.id, objType: r.typtype === 'd' ? 'DOMAIN' : 'TYPE', objSql: sql });
  }

  // ---------- relations
  step('tables, views and sequences');
  const relRows = await q(
    `select c.oid, c.relnamespace, c.relname, c.relkind, c.relpersistence, c.reloptions, c.relrowsecurity, c.relforcerowsecurity,
            c.relispartition, c.reltype, c.relowner, t.typarray,
            case when c.relkind = 'p' then pg_get_partkeydef(c.oid) end partkey,
            case when c.relispartition then pg_get_expr(c.relpartbound, c.oid) end partbound,
            case when c.relkind in ('v','m') then pg_get_viewdef(c.oid) end viewdef,
            case when c.relkind in ('r','p','m') and am.amname <> 'heap' then am.amname end am
       from pg_class c
       left join pg_am am on am.oid = c.relam
       left join pg_type t on t.oid = c.reltype
      where c.relnamespace = any($1::oid[]) and c.relkind in ('r','p','v','m','S','f')
        and ${EXT('pg_class', 'c.oid')}
      order by c.oid`,
    [nsOids],
  );
  const relFact = new Map<number, Fact>();
  const tableOids: number[] = [];
  const colRelOids: number[] = [...compositeByRel.keys()];
  for (const r of relRows) {
    const s = nsName.get(Number(r.relnamespace))!;
    const sql = qualify(s, r.relname);
    const meta = { sql, schema: s, name: r.relname };
    const opts = pgArray(r.reloptions).sort(sortStr);
    let f: Fact;
    if (r.relkind === 'r' || r.relkind === 'p') {
      f = mk('table', `table:${sql}`, {
        unlogged: r.relpersistence === 'u',
        partkey: r.partkey,
        options: opts,
        rls: r.relrowsecurity,
        rlsForce: r.relforcerowsecurity,
        am: r.am,
      }, meta);
      tableOids.push(Number(r.oid));
      colRelOids.push(Number(r.oid));
      aclTargets.push({ cls: 'pg_class', oid: Number(r.oid), sub: 0, factId: f.id, objType: 'TABLE', objSql: sql });
    } else if (r.relkind === 'v' || r.relkind === 'm') {
      // compared: a form that reads the same on 13–18 (16+ drops the table prefix in single-table views); executed:
      // the server's own text (meta.def)
      const text = String(r.viewdef).replace(/;\s*$/, '');
      const def = viewDefForComparison(text);
      f = mk(r.relkind === 'v' ? 'view' : 'matview', `${r.relkind === 'v' ? 'view' : 'matview'}:${sql}`, { def, options: opts, columns: [], am: r.am }, def === text ? meta : { ...meta, def: text });
      colRelOids.push(Number(r.oid));
      if (r.relkind === 'm') tableOids.push(Number(r.oid));
      else tableOids.push(Number(r.oid)); // views can carry INSTEAD OF triggers
      aclTargets.push({ cls: 'pg_class', oid: Number(r.oid), sub: 0, factId: f.id, objType: 'TABLE', objSql: sql });
    } else if (r.relkind === 'S') {
      f = mk('sequence', `sequence:${sql}`, {}, meta);
      aclTargets.push({ cls: 'pg_class', oid: Number(r.oid), sub: 0, factId: f.id, objType: 'SEQUENCE', objSql: sql });
    } else {
      unsupported.push({ kind: 'foreign table', identity: sql, reason: 'foreign tables are not handled', def: sql });
      continue;
    }
    relFact.set(Number(r.oid), f);
    objMap.set(key('pg_class', r.oid), f.id);
    if (r.reltype && Number(r.reltype)) objMap.set(key('pg_type', r.reltype), f.id);
    if (r.typarray && Number(r.typarray)) objMap.set(key('pg_type', r.typarray), f.id);
    if (r.relispartition) {
      // parent filled from pg_inherits below
      f.meta.partbound = r.partbound;
    }
  }

  // ---------- sequences (identity sequences belong to their column and are skipped)
  step('sequence settings');
  const identitySeqs = new Set<number>();
  for (const r of await q(
    `select s.seqrelid, format_type(s.seqtypid, null) typ, s.seqstart::text, s.seqincrement::text, s.seqmax::text, s.seqmin::text, s.seqcache::text, s.seqcycle,
            (select d.deptype from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = s.seqrelid and d.refclassid = 'pg_class'::regclass and d.deptype in ('a','i') limit 1) owndep,
            (select d.refobjid from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = s.seqrelid and d.refclassid = 'pg_class'::regclass and d.deptype in ('a','i') limit 1) ownrel,
            (select d.refobjsubid from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = s.seqrelid and d.refclassid = 'pg_class'::regclass and d.deptype in ('a','i') limit 1) ownatt,
            (select a.attname from pg_depend d join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid where d.classid = 'pg_class'::regclass and d.objid = s.seqrelid and d.refclassid = 'pg_class'::regclass and d.deptype = 'a' limit 1) ownattname
       from pg_sequence s where s.seqrelid = any($1::oid[])`,
    [relRows.filter((r) => r.relkind === 'S').map((r) => Number(r.oid))],
  )) {
    const f = relFact.get(Number(r.seqrelid));
    if (!f) continue;
    if (r.owndep === 'i') {
      identitySeqs.add(Number(r.seqrelid));
      facts.delete(f.id);
      relFact.delete(Number(r.seqrelid));
      objMap.delete(key('pg_class', r.seqrelid));
      const i = aclTargets.findIndex((a) => a.factId === f.id);
      if (i >= 0) aclTargets.splice(i, 1);
      continue;
    }
    f.attrs = { type: r.typ, start: r.seqstart, increment: r.seqincrement, min: r.seqmin, max: r.seqmax, cache: r.seqcache, cycle: r.seqcycle };
    if (r.owndep === 'a') {
      const t = relFact.get(Number(r.ownrel));
      if (t) {
        f.meta.ownedRel = Number(r.ownrel);
        f.meta.ownedAtt = Number(r.ownatt);
        f.meta.ownedAttName = r.ownattname;
      }
    }
  }

  // ---------- columns
  step('columns');
  const colRows = await q(
    `select a.attrelid, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) typ, a.attnotnull, a.attidentity, a.attgenerated,
            a.attislocal, a.attinhcount,
            case when a.attcollation <> t.typcollation then
              (select quote_ident(cn.nspname) || '.' || quote_ident(co.collname) from pg_collation co join pg_namespace cn on cn.oid = co.collnamespace where co.oid = a.attcollation) end coll,
            pg_get_expr(d.adbin, d.adrelid) defexpr, d.oid defoid, a.attacl is not null hasacl,
            case when a.attidentity <> '' then
              (select format('START WITH %s INCREMENT BY %s MINVALUE %s MAXVALUE %s CACHE %s %s', s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, case when s.seqcycle then 'CYCLE' else 'NO CYCLE' end)
                 from pg_depend sd join pg_sequence s on s.seqrelid = sd.objid
                where sd.classid = 'pg_class'::regclass and sd.refclassid = 'pg_class'::regclass and sd.refobjid = a.attrelid and sd.refobjsubid = a.attnum and sd.deptype = 'i' limit 1) end identopts
       from pg_attribute a
       join pg_type t on t.oid = a.atttypid
       left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
      where a.attrelid = any($1::oid[]) and a.attnum > 0 and not a.attisdropped
      order by a.attrelid, a.attnum`,
    [colRelOids],
  );
  const relIsPartition = new Set(relRows.filter((r) => r.relispartition).map((r) => Number(r.oid)));
  const colFact = new Map<string, Fact>();
  for (const r of colRows) {
    const relid = Number(r.attrelid);
    const comp = compositeByRel.get(relid);
    if (comp) {
      (comp.attrs.attributes as string[]).push(`${quoteIdent(r.attname)} ${r.typ}${r.coll ? ' COLLATE ' + r.coll : ''}`);
      objMap.set(key('pg_class', relid, r.attnum), comp.id);
      continue;
    }
    const rel = relFact.get(relid);
    if (!rel) continue;
    if (rel.kind === 'view' || rel.kind === 'matview') {
      (rel.attrs.columns as string[]).push(`${quoteIdent(r.attname)} ${r.typ}`);
      objMap.set(key('pg_class', relid, r.attnum), rel.id);
      continue;
    }
    if (!r.attislocal || relIsPartition.has(relid)) {
      // inherited from a parent: the parent's column fact covers it
      objMap.set(key('pg_class', relid, r.attnum), rel.id);
      continue;
    }
    const sql = quoteIdent(r.attname);
    const id = `column:${rel.meta.sql}.${sql}`;
    const f = mk('column', id, {
      type: r.typ,
      notnull: r.attnotnull,
      collation: r.coll,
      identity: r.attidentity || null,
      identityOptions: r.attidentity ? r.identopts : null,
      generated: r.attgenerated === 's' || r.attgenerated === 'v' ? r.defexpr : null,
      // PostgreSQL 18's virtual generated columns (computed when read); stored ones carry no such attribute
      ...(r.attgenerated === 'v' ? { virtual: true } : {}),
    }, { sql, name: r.attname, table: rel.meta.sql as string, pos: Number(r.attnum) }, rel.id);
    f.deps.push(rel.id);
    objMap.set(key('pg_class', relid, r.attnum), f.id);
    colFact.set(`${relid}.${r.attnum}`, f);
    if (r.defoid) {
      if (r.attgenerated) objMap.set(key('pg_attrdef', r.defoid), f.id);
      else {
        const df = mk('default', `default:${rel.meta.sql}.${sql}`, { expr: r.defexpr }, { table: rel.meta.sql as string, column: sql }, f.id);
        df.deps.push(f.id);
        objMap.set(key('pg_attrdef', r.defoid), df.id);
      }
    }
    if (r.hasacl) aclTargets.push({ cls: 'pg_class', oid: relid, sub: Number(r.attnum), factId: f.id, objType: 'TABLE', objSql: rel.meta.sql as string, column: sql });
  }
  // sequences OWNED BY
  for (const f of [...facts.values()]) {
    if (f.kind !== 'sequence' || f.meta.ownedRel === undefined) continue;
    const col = colFact.get(`${f.meta.ownedRel}.${f.meta.ownedAtt}`);
    const rel = relFact.get(Number(f.meta.ownedRel))!;
    const colSql = col ? col.meta.sql : quoteIdent(String(f.meta.ownedAttName));
    const o = mk('seq_owned', `seq_owned:${f.meta.sql}`, { column: `${rel.meta.sql}.${colSql}` }, { seq: f.meta.sql as string }, col ? col.id : rel.id);
    o.deps.push(f.id, col ? col.id : rel.id);
    delete f.meta.ownedRel;
    delete f.meta.ownedAtt;
    delete f.meta.ownedAttName;
  }

  // ---------- inheritance / partitions
  step('inheritance and partitions');
  for (const r of await q(
    `select h.inhrelid, h.inhparent, h.inhseqno from pg_inherits h where h.inhrelid = any($1::oid[]) order by h.inhrelid, h.inhseqno`,
    [tableOids],
  )) {
    const child = relFact.get(Number(r.inhrelid));
    const parent = relFact.get(Number(r.inhparent));
    if (!child || !parent || child.kind !== 'table') continue;
    if (relIsPartition.has(Number(r.inhrelid))) {
      const f = mk('partition', `partition:${child.meta.sql}`, { parent: parent.id, bound: child.meta.partbound as string }, { child: child.meta.sql as string, parent: parent.meta.sql as string }, child.id);
      f.deps.push(child.id, parent.id);
    } else {
      const f = mk('inherit', `inherit:${child.meta.sql}:${parent.meta.sql}`, {}, { child: child.meta.sql as string, parent: parent.meta.sql as string, seq: Number(r.inhseqno) }, child.id);
      f.deps.push(child.id, parent.id);
    }
  }
  for (const f of relFact.values()) delete f.meta.partbound;

  // ---------- constraints
  // NOT NULL is the column's (domain's) notnull on every version; PostgreSQL 18 also records it as a constraint
  // (contype 'n', 17 for domains): those rows are left out, so their generated names are never compared.
  step('constraints');
  for (const r of await q(
    `select co.oid, co.conname, co.contype, co.conrelid, co.contypid, co.conindid, co.conislocal, co.conparentid,
            pg_get_constraintdef(co.oid) def
       from pg_constraint co
      where co.connamespace = any($1::oid[]) and co.contype not in ('t', 'n')`,
    [nsOids],
  )) {
    const name = quoteIdent(r.conname);
    if (Number(r.conrelid)) {
      const rel = relFact.get(Number(r.conrelid));
      if (!rel || rel.kind !== 'table') continue;
      if (!r.conislocal || Number(r.conparentid)) continue; // inherited / cloned to a partition
      const f = mk('constraint', `constraint:${rel.meta.sql}.${name}`, { type: r.contype, def: r.def }, { table: rel.meta.sql as string, name: r.conname }, rel.id);
      f.deps.push(rel.id);
      objMap.set(key('pg_constraint', r.oid), f.id);
      if ('pux'.includes(r.contype) && Number(r.conindid)) objMap.set(key('pg_class', r.conindid), f.id);
    } else if (Number(r.contypid)) {
      const dom = objMap.get(key('pg_type', r.contypid));
      if (!dom || facts.get(dom)?.kind !== 'domain') continue;
      const d = facts.get(dom)!;
      const f = mk('domain_constraint', `domain_constraint:${d.meta.sql}.${name}`, { def: r.def }, { domain: d.meta.sql as string, name: r.conname }, d.id);
      f.deps.push(d.id);
      objMap.set(key('pg_constraint', r.oid), f.id);
    }
  }

  // ---------- indexes (not those owned by constraints; not partition children of a parent index)
  step('indexes');
  for (const r of await q(
    `select i.indexrelid, i.indrelid, ic.relname, pg_get_indexdef(i.indexrelid) def, ic.relnamespace,
            exists (select 1 from pg_inherits h where h.inhrelid = i.indexrelid) ischild
       from pg_index i join pg_class ic on ic.oid = i.indexrelid
      where i.indrelid = any($1::oid[])
        and i.indexrelid not in (select co.conindid from pg_constraint co where co.contype in ('p','u','x') and co.conindid <> 0)`,
    [tableOids],
  )) {
    if (objMap.has(key('pg_class', r.indexrelid))) continue; // constraint index
    if (r.ischild) continue;
    const rel = relFact.get(Number(r.indrelid));
    if (!rel) continue;
    const s = nsName.get(Number(r.relnamespace))!;
    const sql = qualify(s, r.relname);
    const f = mk('index', `index:${sql}`, { def: r.def }, { sql, table: rel.meta.sql as string }, rel.id);
    f.deps.push(rel.id);
    objMap.set(key('pg_class', r.indexrelid), f.id);
  }

  // ---------- rewrite rules (views' _RETURN rules map to the view; others are unsupported)
  step('rules');
  for (const r of await q(
    `select rw.oid, rw.ev_class, rw.rulename, case when rw.rulename <> '_RETURN' then pg_get_ruledef(rw.oid) end def from pg_rewrite rw where rw.ev_class = any($1::oid[])`,
    [tableOids],
  )) {
    const rel = relFact.get(Number(r.ev_class));
    if (!rel) continue;
    if (r.rulename === '_RETURN' && (rel.kind === 'view' || rel.kind === 'matview')) objMap.set(key('pg_rewrite', r.oid), rel.id);
    else unsupported.push({ kind: 'rule', identity: `${quoteIdent(r.rulename)} ON ${rel.meta.sql}`, reason: 'rewrite rules are not handled', def: r.def });
  }

  // ---------- triggers
  step('triggers');
  for (const r of await q(
    `select t.oid, t.tgrelid, t.tgname, pg_get_triggerdef(t.oid) def, t.tgenabled
       from pg_trigger t where t.tgrelid = any($1::oid[]) and not t.tgisinternal and t.tgparentid = 0`,
    [tableOids],
  )) {
    const rel = relFact.get(Number(r.tgrelid));
    if (!rel) continue;
    const f = mk('trigger', `trigger:${rel.meta.sql}.${quoteIdent(r.tgname)}`, { def: r.def, enabled: r.tgenabled }, { table: rel.meta.sql as string, name: r.tgname }, rel.id);
    f.deps.push(rel.id);
    objMap.set(key('pg_trigger', r.oid), f.id);
  }

  // ---------- policies
  step('policies');
  for (const r of await q(
    `select p.oid, p.polrelid, p.polname, p.polpermissive, p.polcmd,
            array(select case when x = 0 then 'PUBLIC' else pg_get_userbyid(x) end from unnest(p.polroles) x order by 1)::text[] roles,
            pg_get_expr(p.polqual, p.polrelid) qual, pg_get_expr(p.polwithcheck, p.polrelid) chk
       from pg_policy p where p.polrelid = any($1::oid[])`,
    [tableOids],
  )) {
    const rel = relFact.get(Number(r.polrelid));
    if (!rel) continue;
    const f = mk('policy', `policy:${rel.meta.sql}.${quoteIdent(r.polname)}`, {
      permissive: r.polpermissive, cmd: r.polcmd, roles: pgArray(r.roles), qual: r.qual, check: r.chk,
    }, { table: rel.meta.sql as string, name: r.polname }, rel.id);
    f.deps.push(rel.id);
    objMap.set(key('pg_policy', r.oid), f.id);
  }

  // ---------- functions & procedures
  step('functions and procedures');
  for (const r of await q(
    `select p.oid, p.pronamespace, p.proname, p.prokind, pg_get_function_identity_arguments(p.oid) idargs,
            pg_get_function_arguments(p.oid) args, pg_get_function_result(p.oid) result,
            case when p.prokind <> 'a' then pg_get_functiondef(p.oid) end def
       from pg_proc p where p.pronamespace = any($1::oid[]) and ${EXT('pg_proc', 'p.oid')}
        and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'i')`,
    [nsOids],
  )) {
    const s = nsName.get(Number(r.pronamespace))!;
    if (r.prokind === 'p' && serverVersion < 140000) {
      // 14+ write a procedure's arguments with their mode, also the default one (`IN x integer`); 13 without it
      const args = procedureArgs(r.args);
      if (r.def) r.def = String(r.def).replace(`(${r.args})`, `(${args})`);
      r.args = args;
      r.idargs = procedureArgs(r.idargs);
    }
    const sql = `${qualify(s, r.proname)}(${r.idargs})`;
    if (r.prokind === 'a') {
      unsupported.push({ kind: 'aggregate', identity: sql, reason: 'aggregates are not handled', def: sql });
      continue;
    }
    const kind = r.prokind === 'p' ? 'procedure' : 'function';
    const f = mk(kind, `${kind}:${sql}`, { def: r.def, args: r.args, result: r.result }, { sql, schema: s, name: r.proname });
    objMap.set(key('pg_proc', r.oid), f.id);
    aclTargets.push({ cls: 'pg_proc', oid: Number(r.oid), sub: 0, factId: f.id, objType: kind === 'procedure' ? 'PROCEDURE' : 'FUNCTION', objSql: sql });
  }

  // ---------- other unsupported objects (reported, never silently dropped)
  step('objects it does not handle');
  for (const r of await q(
    `select 'operator' k, o.oid::regoperator::text ident, o.oprcode::text def from pg_operator o where o.oprnamespace = any($1::oid[]) and ${EXT('pg_operator', 'o.oid')}
     union all select 'statistics', quote_ident(n.nspname) || '.' || quote_ident(s.stxname), pg_get_statisticsobjdef(s.oid) from pg_statistic_ext s join pg_namespace n on n.oid = s.stxnamespace where s.stxnamespace = any($1::oid[]) and ${EXT('pg_statistic_ext', 's.oid')}
     union all select 'text search configuration', c.oid::regconfig::text, c.cfgparser::text from pg_ts_config c where c.cfgnamespace = any($1::oid[]) and ${EXT('pg_ts_config', 'c.oid')}
     union all select 'default privileges', coalesce(n.nspname, '') || ':' || pg_get_userbyid(d.defaclrole) || ':' || d.defaclobjtype::text, d.defaclacl::text from pg_default_acl d left join pg_namespace n on n.oid = d.defaclnamespace where d.defaclnamespace = 0 or d.defaclnamespace = any($1::oid[])
     union all select 'event trigger', quote_ident(e.evtname), e.evtevent::text || ':' || e.evtfoid::regproc::text from pg_event_trigger e where ${EXT('pg_event_trigger', 'e.oid')}
     union all select 'publication', quote_ident(p.pubname), p.pubname from pg_publication p`,
    [nsOids],
  )) {
    unsupported.push({ kind: r.k, identity: r.ident, reason: `${r.k} objects are not handled by the schema engine`, def: r.def ?? '' });
  }

  // ---------- grants
  step('grants');
  const aclByCls = new Map<string, { oids: number[] }>();
  for (const a of aclTargets) {
    const g = aclByCls.get(a.cls) ?? { oids: [] };
    g.oids.push(a.oid);
    aclByCls.set(a.cls, g);
  }
  const aclQueries: Record<string, string> = {
    pg_namespace: `select n.oid, 0 sub, x.grantee, x.privilege_type, x.is_grantable from pg_namespace n cross join lateral aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) x where n.oid = any($1::oid[]) and x.grantee <> n.nspowner`,
    pg_type: `select t.oid, 0 sub, x.grantee, x.privilege_type, x.is_grantable from pg_type t cross join lateral aclexplode(coalesce(t.typacl, acldefault('T', t.typowner))) x where t.oid = any($1::oid[]) and x.grantee <> t.typowner`,
    pg_proc: `select p.oid, 0 sub, x.grantee, x.privilege_type, x.is_grantable from pg_proc p cross join lateral aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) x where p.oid = any($1::oid[]) and x.grantee <> p.proowner`,
    pg_class: `select c.oid, 0 sub, x.grantee, x.privilege_type, x.is_grantable from pg_class c cross join lateral aclexplode(coalesce(c.relacl, acldefault((case when c.relkind = 'S' then 's' else 'r' end)::"char", c.relowner))) x where c.oid = any($1::oid[]) and x.grantee <> c.relowner
               union all
               select a.attrelid, a.attnum, x.grantee, x.privilege_type, x.is_grantable from pg_attribute a join pg_class c on c.oid = a.attrelid cross join lateral aclexplode(a.attacl) x where a.attrelid = any($1::oid[]) and a.attnum > 0 and a.attacl is not null and x.grantee <> c.relowner`,
  };
  const roleName = new Map<number, string>();
  for (const r of roleRows) roleName.set(Number(r.oid), r.rolname);
  const targetsByKey = new Map<string, (typeof aclTargets)[number]>();
  for (const a of aclTargets) targetsByKey.set(`${a.cls}:${a.oid}:${a.sub}`, a);
  for (const [cls, g] of aclByCls) {
    const rows = await q(aclQueries[cls]!, [[...new Set(g.oids)]]);
    const grouped = new Map<string, { grantee: string; privilege_type: string; is_grantable: boolean }[]>();
    for (const r of rows) {
      const k = `${cls}:${r.oid}:${r.sub}`;
      if (!targetsByKey.has(k)) continue;
      const l = grouped.get(k) ?? [];
      l.push({ grantee: Number(r.grantee) === 0 ? 'PUBLIC' : roleName.get(Number(r.grantee)) ?? String(r.grantee), privilege_type: r.privilege_type, is_grantable: r.is_grantable });
      grouped.set(k, l);
    }
    for (const [k, l] of grouped) {
      const t = targetsByKey.get(k)!;
      for (const a of aclRows(l)) {
        const f = mk('acl', `acl:${t.factId}:${a.grantee === 'PUBLIC' ? 'PUBLIC' : quoteIdent(a.grantee)}`, { privs: a.privs }, {
          objType: t.objType, objSql: t.objSql, grantee: a.grantee, ...(t.column ? { column: t.column } : {}),
        }, t.factId);
        f.deps.push(t.factId);
      }
    }
  }

  // ---------- comments
  step('comments');
  for (const r of await q(
    `select d.classoid::regclass::text cls, d.objoid, d.objsubid, d.description from pg_description d where d.objoid >= 16384`,
  )) {
    const id = objMap.get(key(r.cls, r.objoid, r.objsubid));
    if (!id) continue;
    const target = facts.get(id)!;
    // a comment on a constraint-owned index is the constraint's index comment: keep it distinct
    if (r.cls === 'pg_class' && target.kind === 'constraint') continue;
    if (r.cls === 'pg_type' && target.kind !== 'enum' && target.kind !== 'domain' && target.kind !== 'composite' && target.kind !== 'range') continue;
    if (r.cls === 'pg_class' && Number(r.objsubid) && target.kind !== 'column') continue;
    const f = mk('comment', `comment:${id}`, { text: r.description }, {}, id);
    f.deps.push(id);
  }

  // ---------- dependencies
  step('dependencies');
  const classNames = new Map<number, string>();
  for (const r of await q(`select c.oid, c.relname from pg_class c where c.relnamespace = 'pg_catalog'::regnamespace and c.relkind = 'r'`)) classNames.set(Number(r.oid), r.relname);
  const depRows = (
    await q(
      `select d.classid, d.objid, d.objsubid, d.refclassid, d.refobjid, d.refobjsubid, d.deptype
         from pg_depend d where d.objid >= 16384 and d.refobjid >= 16384 and d.deptype in ('n','a')`,
    )
  ).map((r) => ({ ...r, cls: classNames.get(Number(r.classid)) ?? String(r.classid), refcls: classNames.get(Number(r.refclassid)) ?? String(r.refclassid) }));
  const resolve = (cls: string, oid: number, sub: number): string | undefined => {
    return objMap.get(key(cls, oid, sub)) ?? (sub ? objMap.get(key(cls, oid, 0)) : undefined) ?? extMembers.get(key(cls, oid));
  };
  for (const r of depRows) {
    const src = objMap.get(key(r.cls, r.objid, r.objsubid)) ?? (Number(r.objsubid) ? objMap.get(key(r.cls, r.objid, 0)) : undefined);
    if (!src) continue;
    const ref = resolve(r.refcls, Number(r.refobjid), Number(r.refobjsubid));
    if (!ref || ref === src) continue;
    const sf = facts.get(src)!;
    const rf = facts.get(ref);
    if (sf.kind === 'table' && rf?.kind === 'table') continue; // inheritance / partitions: own facts
    if (sf.kind === 'sequence' && r.deptype === 'a') continue; // OWNED BY: seq_owned fact
    if (sf.kind === 'column' && rf?.kind === 'table' && sf.parent !== ref) continue;
    sf.deps.push(ref);
  }
  // objects in a schema depend on it (pg_depend has it, but keep it explicit for every named object)
  const list = [...facts.values()];
  for (const f of list) {
    f.deps = [...new Set(f.deps)].filter((d) => d !== f.id).sort(sortStr);
  }
  list.sort((a, b) => sortStr(a.id, b.id));
  unsupported.sort((a, b) => sortStr(a.kind + a.identity, b.kind + b.identity));
  return { format: 'nself-schema/1', serverVersion, roles, facts: list, unsupported, availableExtensions };
}
