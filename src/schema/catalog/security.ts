/**
 * Who may do what: row-level security policies, grants (on schemas, types, relations, columns, routines) to roles
 * other than the object's owner, the owner's own entry where it differs from PostgreSQL's default for the owner
 * (owner_acl: compared as "the owner's", whoever owns the object on each side) and default privileges
 * (ALTER DEFAULT PRIVILEGES).
 */
import { quoteIdent } from '../../pg/quote.js';
import { key, pgArray, sortStr, type Family, type ObjKey } from './context.js';

interface AclRow {
  grantee: string;
  privs: string[];
}

function aclRows(rows: { grantee: string; privilege_type: string; is_grantable: boolean }[]): AclRow[] {
  const by = new Map<string, string[]>();
  for (const r of rows) {
    const l = by.get(r.grantee) ?? [];
    l.push(r.privilege_type + (r.is_grantable ? '*' : ''));
    by.set(r.grantee, l);
  }
  return [...by.entries()].map(([grantee, privs]) => ({ grantee, privs: privs.sort(sortStr) }));
}

/** privilege → 1 (held) or 2 (held with grant option), from `P` / `P*` entries. */
function privState(l: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const p of l) {
    const name = p.replace(/\*$/, '');
    m.set(name, Math.max(m.get(name) ?? 0, p.endsWith('*') ? 2 : 1));
  }
  return m;
}

const DEFACL_TYPE: Record<string, string> = { r: 'TABLES', S: 'SEQUENCES', f: 'FUNCTIONS', T: 'TYPES', n: 'SCHEMAS' };

export const security: Family = {
  steps: (env) => [
    {
      name: 'policies',
      sql: `select p.oid, p.polrelid, p.polname, p.polpermissive, p.polcmd,
            array(select case when x = 0 then 'PUBLIC' else pg_get_userbyid(x) end from unnest(p.polroles) x order by 1)::text[] roles,
            pg_get_expr(p.polqual, p.polrelid) qual, pg_get_expr(p.polwithcheck, p.polrelid) chk
       from pg_policy p where p.polrelid in (${env.rels('rpvm')})`,
    },
    {
      // every object of the kinds with grant targets in scope (the builder keeps those with facts)
      name: 'grants',
      sql: `select 'pg_namespace' cls, n.oid, 0 sub, x.grantee, x.privilege_type, x.is_grantable from pg_namespace n cross join lateral aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) x where n.oid in (${env.ns}) and x.grantee <> n.nspowner
       union all
       select 'pg_type', t.oid, 0, x.grantee, x.privilege_type, x.is_grantable from pg_type t cross join lateral aclexplode(coalesce(t.typacl, acldefault('T', t.typowner))) x
        where t.typnamespace in (${env.ns}) and t.typtype in ('e','d','r','c') and not exists (select 1 from pg_class tc where tc.oid = t.typrelid and tc.relkind <> 'c') and x.grantee <> t.typowner
       union all
       select 'pg_proc', p.oid, 0, x.grantee, x.privilege_type, x.is_grantable from pg_proc p cross join lateral aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) x where p.pronamespace in (${env.ns}) and x.grantee <> p.proowner
       union all
       select 'pg_class', c.oid, 0, x.grantee, x.privilege_type, x.is_grantable from pg_class c cross join lateral aclexplode(coalesce(c.relacl, acldefault((case when c.relkind = 'S' then 's' else 'r' end)::"char", c.relowner))) x
        where c.relnamespace in (${env.ns}) and c.relkind in ('r','p','v','m','S') and x.grantee <> c.relowner
       union all
       select 'pg_class', a.attrelid, a.attnum, x.grantee, x.privilege_type, x.is_grantable from pg_attribute a join pg_class c on c.oid = a.attrelid cross join lateral aclexplode(a.attacl) x
        where c.relnamespace in (${env.ns}) and c.relkind in ('r','p') and a.attnum > 0 and a.attacl is not null and x.grantee <> c.relowner`,
    },
    {
      // who owns each object with grants (`meta.owner` of its fact: not compared, ownership is not modelled)
      name: 'owners',
      sql: `select 'pg_namespace' cls, n.oid, n.nspowner as owner from pg_namespace n where n.oid in (${env.ns})
       union all
       select 'pg_type', t.oid, t.typowner from pg_type t where t.typnamespace in (${env.ns}) and t.typtype in ('e','d','r','c')
       union all
       select 'pg_proc', p.oid, p.proowner from pg_proc p where p.pronamespace in (${env.ns})
       union all
       select 'pg_class', c.oid, c.relowner from pg_class c where c.relnamespace in (${env.ns}) and c.relkind in ('r','p','v','m','S')`,
    },
    {
      // the owner's own entry and the owner's entry in the default ACL, where the ACL is not the default (null)
      name: 'owner grants',
      sql: `with o(cls, oid, acl, dflt, owner) as (
         select 'pg_namespace', n.oid, n.nspacl, acldefault('n', n.nspowner), n.nspowner from pg_namespace n where n.oid in (${env.ns}) and n.nspacl is not null
         union all
         select 'pg_type', t.oid, t.typacl, acldefault('T', t.typowner), t.typowner from pg_type t where t.typnamespace in (${env.ns}) and t.typacl is not null
         union all
         select 'pg_proc', p.oid, p.proacl, acldefault('f', p.proowner), p.proowner from pg_proc p where p.pronamespace in (${env.ns}) and p.proacl is not null
         union all
         select 'pg_class', c.oid, c.relacl, acldefault((case when c.relkind = 'S' then 's' else 'r' end)::"char", c.relowner), c.relowner from pg_class c
          where c.relnamespace in (${env.ns}) and c.relkind in ('r','p','v','m','S') and c.relacl is not null)
       select o.cls, o.oid,
              array(select distinct x.privilege_type || case when x.is_grantable then '*' else '' end from aclexplode(o.acl) x where x.grantee = o.owner)::text[] act,
              array(select distinct x.privilege_type || case when x.is_grantable then '*' else '' end from aclexplode(o.dflt) x where x.grantee = o.owner)::text[] dflt
         from o`,
    },
    {
      // per role, schema (or all schemas), object type and grantee, what differs from the built-in defaults (which apply
      // where no entry exists: the owner's privileges and PUBLIC's EXECUTE / USAGE for all schemas, nothing for one
      // schema). Entries for all schemas are read whatever the scope.
      name: 'default privileges',
      sql: `select d.oid, d.defaclrole, n.nspname, d.defaclobjtype::text t, 'c' src, x.grantee, x.privilege_type, x.is_grantable
       from pg_default_acl d left join pg_namespace n on n.oid = d.defaclnamespace cross join lateral aclexplode(d.defaclacl) x
      where d.defaclnamespace = 0 or d.defaclnamespace in (${env.ns})
     union all
     select d.oid, d.defaclrole, null, d.defaclobjtype::text, 'i', x.grantee, x.privilege_type, x.is_grantable
       from pg_default_acl d cross join lateral aclexplode(acldefault((case d.defaclobjtype when 'S' then 's' else d.defaclobjtype end)::"char", d.defaclrole)) x
      where d.defaclnamespace = 0`,
    },
  ],
  build(ctx, rows) {
    // ---------- policies
    for (const r of rows('policies')) {
      const rel = ctx.relFact.get(Number(r.polrelid));
      if (!rel || rel.kind === 'sequence') continue;
      const f = ctx.mk('policy', `policy:${rel.meta.sql}.${quoteIdent(r.polname)}`, {
        permissive: r.polpermissive, cmd: r.polcmd, roles: pgArray(r.roles), qual: r.qual, check: r.chk,
      }, { table: rel.meta.sql as string, name: r.polname }, rel.id);
      f.deps.push(rel.id);
      ctx.objMap.set(key('pg_policy', r.oid), f.id);
    }

    // ---------- grants
    const role = (oid: unknown) => (Number(oid) === 0 ? 'PUBLIC' : ctx.roleName.get(Number(oid)) ?? String(oid));
    const targets = new Map(ctx.aclTargets.map((a) => [key(a.cls, a.oid, a.sub), a]));
    const grouped = new Map<ObjKey, { grantee: string; privilege_type: string; is_grantable: boolean }[]>();
    for (const r of rows('grants')) {
      const k = key(r.cls, r.oid, r.sub);
      if (!targets.has(k)) continue;
      const l = grouped.get(k) ?? [];
      l.push({ grantee: role(r.grantee), privilege_type: r.privilege_type, is_grantable: r.is_grantable });
      grouped.set(k, l);
    }
    for (const [k, l] of grouped) {
      const t = targets.get(k)!;
      for (const a of aclRows(l)) {
        const f = ctx.mk('acl', `acl:${t.factId}:${a.grantee === 'PUBLIC' ? 'PUBLIC' : quoteIdent(a.grantee)}`, { privs: a.privs }, {
          objType: t.objType, objSql: t.objSql, grantee: a.grantee, ...(t.column ? { column: t.column } : {}),
        }, t.factId);
        f.deps.push(t.factId);
      }
    }

    // ---------- owners: a grant to the role that owns the object on the other side is implied there (plan.ts)
    for (const r of rows('owners')) {
      const t = targets.get(key(r.cls, r.oid, 0));
      const f = t && ctx.facts.get(t.factId);
      if (f) f.meta.owner = role(r.owner);
    }

    // ---------- the owner's own entry: what differs from its default, per privilege (`P*`: with grant option, `P`:
    // granted where the default has nothing, `-P`: revoked)
    for (const r of rows('owner grants')) {
      const t = targets.get(key(r.cls, r.oid, 0));
      if (!t) continue;
      const act = privState(pgArray(r.act));
      const dflt = privState(pgArray(r.dflt));
      const privs: string[] = [];
      for (const p of new Set([...act.keys(), ...dflt.keys()])) {
        const a = act.get(p) ?? 0;
        if (a !== (dflt.get(p) ?? 0)) privs.push(a === 2 ? `${p}*` : a === 1 ? p : `-${p}`);
      }
      if (!privs.length) continue;
      const f = ctx.mk('owner_acl', `owner_acl:${t.factId}`, { privs: privs.sort(sortStr) }, { objType: t.objType, objSql: t.objSql }, t.factId);
      f.deps.push(t.factId);
    }

    // ---------- default privileges
    const defacl = new Map<string, { role: string; schema: string | null; type: string; cur: Map<string, string[]>; imp: Map<string, string[]> }>();
    for (const r of rows('default privileges')) {
      const k = String(r.oid);
      let e = defacl.get(k);
      if (!e) defacl.set(k, (e = { role: role(r.defaclrole), schema: r.nspname ?? null, type: DEFACL_TYPE[r.t] ?? r.t, cur: new Map(), imp: new Map() }));
      if (r.src === 'c' && r.nspname) e.schema = r.nspname;
      const g = role(r.grantee);
      const m = r.src === 'c' ? e.cur : e.imp;
      m.set(g, [...(m.get(g) ?? []), r.privilege_type + (r.is_grantable ? '*' : '')]);
    }
    for (const e of defacl.values()) {
      for (const g of [...new Set([...e.cur.keys(), ...e.imp.keys()])].sort(sortStr)) {
        const privs = (e.cur.get(g) ?? []).sort(sortStr);
        const implicit = (e.imp.get(g) ?? []).sort(sortStr);
        if (JSON.stringify(privs) === JSON.stringify(implicit)) continue;
        const f = ctx.mk('default_acl', `default_acl:${quoteIdent(e.role)}:${e.schema === null ? '*' : quoteIdent(e.schema)}:${e.type}:${g === 'PUBLIC' ? 'PUBLIC' : quoteIdent(g)}`, { privs }, {
          role: e.role, objType: e.type, grantee: g, implicit: implicit.join(','), ...(e.schema !== null ? { schema: e.schema } : {}),
        });
        if (e.schema !== null) f.deps.push(`schema:${quoteIdent(e.schema)}`);
      }
    }
  },
};
