/**
 * Who may do what: grants (acl), row-level security policies and default privileges. Roles are never created by
 * a migration: naming a role the target lacks is a plan error.
 */
import { quoteIdent, quoteLiteral } from '../../pg/quote.js';
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

/** How the owner of an object of each grant type is found when the statement runs. */
const OWNER_OF: Record<string, (lit: string) => string> = {
  TABLE: (l) => `SELECT relowner FROM pg_class WHERE oid = ${l}::regclass`,
  SEQUENCE: (l) => `SELECT relowner FROM pg_class WHERE oid = ${l}::regclass`,
  FUNCTION: (l) => `SELECT proowner FROM pg_proc WHERE oid = ${l}::regprocedure`,
  PROCEDURE: (l) => `SELECT proowner FROM pg_proc WHERE oid = ${l}::regprocedure`,
  TYPE: (l) => `SELECT typowner FROM pg_type WHERE oid = ${l}::regtype`,
  DOMAIN: (l) => `SELECT typowner FROM pg_type WHERE oid = ${l}::regtype`,
  SCHEMA: (l) => `SELECT nspowner FROM pg_namespace WHERE oid = ${l}::regnamespace`,
};

/**
 * GRANT / REVOKE statements addressed to the object's owner on the target, whoever that is (ownership is not
 * modelled): one DO block that looks the owner up and runs them. A `*` on a privilege grants it with (or revokes
 * only) the grant option.
 */
function ownerSql(f: Fact, changes: { grant: boolean; priv: string }[]): string[] {
  if (!changes.length) return [];
  const on = `ON ${f.meta.objType} ${f.meta.objSql}`;
  const find = OWNER_OF[s(f.meta.objType)];
  if (!find) throw new Error(`the owner's own privileges on ${s(f.meta.objType).toLowerCase()} ${s(f.meta.objSql)} cannot be set: no way to find its owner`);
  const run = changes.map(({ grant, priv }) => {
    const p = priv.replace(/\*$/, '');
    const opt = priv.endsWith('*');
    const [head, tail] = grant ? [`GRANT ${p} ${on} TO `, opt ? ' WITH GRANT OPTION' : ''] : [`REVOKE ${opt ? 'GRANT OPTION FOR ' : ''}${p} ${on} FROM `, ''];
    return `EXECUTE ${quoteLiteral(head)} || o${tail ? ` || ${quoteLiteral(tail)}` : ''};`;
  });
  return [`DO ${quoteLiteral(`DECLARE o text := (${find(quoteLiteral(s(f.meta.objSql)))})::regrole::text; BEGIN ${run.join(' ')} END`)}`];
}
/** The owner's entry made to differ from its default as `privs` says (`P*`, `P`, `-P`). */
const ownerApply = (f: Fact) =>
  (f.attrs.privs as string[]).map((p) => (p.startsWith('-') ? { grant: false, priv: p.slice(1) } : { grant: true, priv: p }));
/** The owner's entry brought back to its default from `privs`: a grant option revoked, a privilege revoked or granted again. */
const ownerRevert = (f: Fact) =>
  (f.attrs.privs as string[]).map((p) => (p.startsWith('-') ? { grant: true, priv: p.slice(1) } : { grant: false, priv: p }));

export const ownerAcl: Rule = {
  create: (f) => none(ownerSql(f, ownerApply(f))),
  drop: (f) => none(ownerSql(f, ownerRevert(f))),
  alter: (o, n) => ({ sql: ownerSql(n, [...ownerRevert(o), ...ownerApply(n)]), hazards: [] }),
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
