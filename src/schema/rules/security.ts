/**
 * Who may do what: grants (acl), row-level security policies and default privileges. Roles are never created by
 * a migration: naming a role the target lacks is a plan error.
 */
import { quoteIdent } from '../../pg/quote.js';
import type { Fact } from '../model.js';
import { grantee, none, s, type Rule } from './core.js';

const POLICY_CMD: Record<string, string> = { r: 'SELECT', a: 'INSERT', w: 'UPDATE', d: 'DELETE', '*': 'ALL' };

function grantSql(f: Fact): string[] {
  const privs = f.attrs.privs as string[];
  const plain = privs.filter((p) => !p.endsWith('*'));
  const withOpt = privs.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1));
  const col = f.meta.column ? ` (${f.meta.column})` : '';
  const on = `${f.meta.objType} ${f.meta.objSql}`;
  const out: string[] = [];
  const list = (l: string[]) => l.map((p) => p + col).join(', ');
  if (plain.length) out.push(`GRANT ${list(plain)} ON ${on} TO ${grantee(s(f.meta.grantee))}`);
  if (withOpt.length) out.push(`GRANT ${list(withOpt)} ON ${on} TO ${grantee(s(f.meta.grantee))} WITH GRANT OPTION`);
  return out;
}
function revokeSql(f: Fact): string {
  const col = f.meta.column ? ` (${f.meta.column})` : '';
  return `REVOKE ALL${col} ON ${f.meta.objType} ${f.meta.objSql} FROM ${grantee(s(f.meta.grantee))}`;
}

/** ALTER DEFAULT PRIVILEGES giving the grantee exactly `privs` (`*`: with grant option). */
function defaultAclSql(f: Fact, privs: string[]): string[] {
  const pre = `ALTER DEFAULT PRIVILEGES FOR ROLE ${quoteIdent(s(f.meta.role))}${f.meta.schema !== undefined ? ` IN SCHEMA ${quoteIdent(s(f.meta.schema))}` : ''}`;
  const on = `ON ${s(f.meta.objType)}`;
  const to = grantee(s(f.meta.grantee));
  const plain = privs.filter((p) => !p.endsWith('*'));
  const withOpt = privs.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1));
  const out = [`${pre} REVOKE ALL ${on} FROM ${to}`];
  if (plain.length) out.push(`${pre} GRANT ${plain.join(', ')} ${on} TO ${to}`);
  if (withOpt.length) out.push(`${pre} GRANT ${withOpt.join(', ')} ${on} TO ${to} WITH GRANT OPTION`);
  return out;
}

const missing = (r: string, roles: ReadonlySet<string>) => r !== 'PUBLIC' && !roles.has(r);

export const acl: Rule = {
  create: (f) => none(grantSql(f)),
  drop: (f) => none([revokeSql(f)]),
  alter: (_o, n) => ({ sql: [revokeSql(n), ...grantSql(n)], hazards: [] }),
  errors: (f, roles) =>
    missing(s(f.meta.grantee), roles) ? [`grant on ${f.meta.objSql} to role ${quoteIdent(s(f.meta.grantee))}, which does not exist on the target (roles are never created by a migration)`] : [],
};

export const policy: Rule = {
  create: (f) => {
    const a = f.attrs;
    let sql = `CREATE POLICY ${quoteIdent(s(f.meta.name))} ON ${f.meta.table} AS ${a.permissive ? 'PERMISSIVE' : 'RESTRICTIVE'} FOR ${POLICY_CMD[s(a.cmd)]} TO ${(a.roles as string[]).map(grantee).join(', ')}`;
    if (a.qual !== null) sql += ` USING (${s(a.qual)})`;
    if (a.check !== null) sql += ` WITH CHECK (${s(a.check)})`;
    return none([sql]);
  },
  drop: (f) => none([`DROP POLICY ${quoteIdent(s(f.meta.name))} ON ${f.meta.table}`]),
  errors: (f, roles) =>
    (f.attrs.roles as string[]).filter((r) => missing(r, roles)).map((r) => `policy ${quoteIdent(s(f.meta.name))} on ${f.meta.table} names role ${quoteIdent(r)}, which does not exist on the target`),
};

export const defaultAcl: Rule = {
  create: (f) => none(defaultAclSql(f, f.attrs.privs as string[])),
  // back to the built-in defaults
  drop: (f) => none(defaultAclSql(f, s(f.meta.implicit) ? s(f.meta.implicit).split(',') : [])),
  alter: (_o, n) => ({ sql: defaultAclSql(n, n.attrs.privs as string[]), hazards: [] }),
  errors: (f, roles) =>
    [s(f.meta.role), s(f.meta.grantee)].filter((r) => missing(r, roles)).map((r) => `default privileges for role ${quoteIdent(s(f.meta.role))} on ${s(f.meta.objType).toLowerCase()} name role ${quoteIdent(r)}, which does not exist on the target (roles are never created by a migration)`),
};
