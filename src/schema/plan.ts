/**
 * Pure planner: generic fact diff → rule table → one dependency graph → one deterministic topological sort.
 */
import { quoteIdent, quoteLiteral, relationKey } from '../pg/quote.js';
import { factSignature, fingerprintSchema, type Fact, type SchemaModel } from './model.js';
import { comparableModels, targetVersionErrors } from './versions.js';

export interface Hazard {
  kind: 'deletes_data' | 'rewrites_table' | 'exclusive_lock' | 'builds_index' | 'not_transactional';
  message: string;
  /** Unquoted relation name; `schema` holds its schema. */
  table?: string;
  column?: string;
  schema?: string;
  rows?: number;
}
export interface SchemaChange {
  kind: string;
  identity: string;
  action: 'create' | 'alter' | 'drop';
  hazards: Hazard[];
  sql: string[];
  /** Why the change takes this form when it is not the obvious one (an enum recreated instead of extended). */
  reason?: string;
}
export interface SchemaStatement { sql: string; hazards: Hazard[] }
export interface SchemaPlan {
  sourceFingerprint: string;
  targetFingerprint: string;
  changes: SchemaChange[];
  statements: SchemaStatement[];
  notHandled: { kind: string; identity: string; reason: string }[];
  errors: string[];
  /**
   * Tables that exist on both sides but must be dropped and recreated (no in-place path), and why. The plan only
   * does so while they hold no rows (it locks each one and stops if it has any); migrate refuses at plan time when
   * one has rows.
   */
  recreatedTables: { schema: string; name: string; reason: string }[];
}

type Op = 'drop' | 'alter' | 'create' | 'cleanup';
const OP_RANK: Record<Op, number> = { drop: 0, alter: 1, create: 2, cleanup: 3 };

interface Node {
  key: string;
  op: Op;
  fact: Fact;
  sql: string[];
  hazards: Hazard[];
  /** facts folded into this node (columns into CREATE TABLE...) */
  folded: Fact[];
}

const TYPE_LIKE = new Set(['enum', 'domain', 'composite', 'range', 'collation']);
/** Kinds whose drop is implied by dropping their parent. */
const CHILD_KINDS = new Set(['column', 'default', 'constraint', 'index', 'trigger', 'policy', 'acl', 'comment', 'seq_owned', 'inherit', 'partition', 'domain_constraint', 'child_column', 'replica_identity', 'cluster', 'rule', 'statistics']);
/** Kinds that block ALTER COLUMN TYPE and must be dropped and recreated around it. */
const RETYPE_BLOCKERS = new Set(['view', 'matview', 'policy', 'trigger', 'default', 'rule', 'statistics']);

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const s = (v: unknown) => String(v);

function splitName(sql: string): { schema: string; name: string } {
  // sql is `"schema"."name"` as produced by qualify()
  const m = /^"((?:[^"]|"")*)"\."((?:[^"]|"")*)"/.exec(sql);
  if (!m) return { schema: '', name: sql };
  return { schema: m[1]!.replace(/""/g, '"'), name: m[2]!.replace(/""/g, '"') };
}

/** `"s"."t"` / `"s"."t"."c"` → s.t / s.t.c for messages. */
function disp(sql: string): string {
  const parts: string[] = [];
  const re = /"((?:[^"]|"")*)"/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(sql))) parts.push(m[1]!.replace(/""/g, '"'));
  return parts.length ? parts.join('.') : sql;
}

function tableHazard(kind: Hazard['kind'], message: string, tableSql: string, column?: string): Hazard {
  const { schema, name } = splitName(tableSql);
  const h: Hazard = { kind, message, schema, table: name };
  if (column !== undefined) h.column = column;
  return h;
}

// ---------------------------------------------------------------- rendering helpers

function columnDef(col: Fact, def: Fact | undefined): string {
  const a = col.attrs;
  let sql = `${col.meta.sql} ${s(a.type)}`;
  if (a.collation) sql += ` COLLATE ${s(a.collation)}`;
  if (a.generated) sql += ` GENERATED ALWAYS AS (${s(a.generated)}) ${a.virtual ? 'VIRTUAL' : 'STORED'}`;
  if (a.identity) sql += ` GENERATED ${a.identity === 'a' ? 'ALWAYS' : 'BY DEFAULT'} AS IDENTITY${a.identityOptions ? ` (${s(a.identityOptions)})` : ''}`;
  if (a.notnull) sql += ' NOT NULL';
  if (def) sql += ` DEFAULT ${s(def.attrs.expr)}`;
  return sql;
}

const STORAGE: Record<string, string> = { p: 'PLAIN', e: 'EXTERNAL', x: 'EXTENDED', m: 'MAIN' };
const COMPRESSION: Record<string, string> = { p: 'pglz', l: 'lz4' };

/**
 * A column's own settings (attribute options such as n_distinct, statistics target, storage, compression): the
 * ALTERs that take the column from `o` (undefined: a new column with the defaults) to `n`.
 */
function columnSettings(n: Fact, o: Fact | undefined, retyped = false): string[] {
  const a = o?.attrs ?? {};
  const b = n.attrs;
  const pre = `ALTER TABLE ${n.meta.table} ALTER COLUMN ${n.meta.sql}`;
  const sql: string[] = [];
  const oOpts = (a.options as string[] | undefined) ?? [];
  const nOpts = (b.options as string[] | undefined) ?? [];
  if (JSON.stringify(oOpts) !== JSON.stringify(nOpts)) {
    const gone = optionKeys(oOpts).filter((k) => !optionKeys(nOpts).includes(k));
    if (gone.length) sql.push(`${pre} RESET (${gone.join(', ')})`);
    if (nOpts.length) sql.push(`${pre} SET (${nOpts.join(', ')})`);
  }
  if ((a.statistics ?? null) !== (b.statistics ?? null)) sql.push(`${pre} SET STATISTICS ${Number(b.statistics ?? -1)}`);
  // a type change resets the storage to the new type's
  if ((a.storage ?? null) !== (b.storage ?? null) || (retyped && b.storage !== undefined)) {
    const st = STORAGE[s(b.storage ?? n.meta.typstorage ?? 'x')];
    if (st) sql.push(`${pre} SET STORAGE ${st}`);
  }
  if ((a.compression ?? null) !== (b.compression ?? null)) sql.push(`${pre} SET COMPRESSION ${COMPRESSION[s(b.compression)] ?? 'default'}`);
  return sql;
}

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

/** The default a child column follows when it has none of its own: its parent's, in the source. */
function parentDefault(f: Fact, ctx: Ctx): string | null {
  const pt = s(f.meta.parentTable);
  const c = s(f.meta.column);
  const d = ctx.source.get(`default:${pt}.${c}`);
  if (d) return s(d.attrs.expr);
  const cc = ctx.source.get(`child_column:${pt}.${c}`);
  if (cc && cc.attrs.default !== undefined) return cc.attrs.default === null ? null : s(cc.attrs.default);
  return null;
}

/** What a child (partition, inheritance child) sets on an inherited column for itself: from `o` to `n`. */
function childColumnSql(n: Fact, o: Fact | undefined, ctx: Ctx): string[] {
  const pre = `ALTER TABLE ${n.meta.table} ALTER COLUMN ${n.meta.column}`;
  const sql: string[] = [];
  // always (re)set an own default: the parent's SET / DROP DEFAULT recurses to its children
  if (n.attrs.default !== undefined) sql.push(n.attrs.default === null ? `${pre} DROP DEFAULT` : `${pre} SET DEFAULT ${s(n.attrs.default)}`);
  else if (o && o.attrs.default !== undefined) {
    const pd = parentDefault(n, ctx);
    sql.push(pd === null ? `${pre} DROP DEFAULT` : `${pre} SET DEFAULT ${pd}`);
  }
  if (n.attrs.notnull && !o?.attrs.notnull) sql.push(`${pre} SET NOT NULL`);
  if (!n.attrs.notnull && o?.attrs.notnull && !ctx.source.get(`column:${s(n.meta.parentTable)}.${s(n.meta.column)}`)?.attrs.notnull) sql.push(`${pre} DROP NOT NULL`);
  return sql;
}

/** Is this table still a partition or inheritance child in the source? */
function stillChild(f: Fact, ctx: Ctx): boolean {
  return (ctx.childrenOf.get(`table:${s(f.meta.table)}`) ?? []).some((k) => k.kind === 'partition' || k.kind === 'inherit');
}

const INT_RANK: Record<string, number> = { smallint: 1, integer: 2, bigint: 3 };
function typeChangeHazards(tableSql: string, column: string, from: string, to: string): Hazard[] {
  const hz: Hazard[] = [];
  const parse = (t: string) => {
    const m = /^([^(]+?)(?:\(([\d, ]+)\))?(\[\])?$/.exec(t.trim());
    return m ? { base: m[1]!, args: m[2] ? m[2].split(',').map((x) => Number(x.trim())) : [], arr: !!m[3] } : { base: t, args: [], arr: false };
  };
  const a = parse(from);
  const b = parse(to);
  const isVarchar = (x: string) => x === 'character varying' || x === 'text';
  let narrowing = false;
  let noRewrite = false;
  if (a.base === b.base && a.arr === b.arr) {
    if (b.args.length && (!a.args.length || b.args.some((v, i) => v < (a.args[i] ?? Infinity)))) narrowing = true;
    if (a.base === 'character varying' && (!b.args.length || (a.args.length && b.args[0]! >= a.args[0]!))) noRewrite = true;
    // numeric(p,s) → numeric(p2,s) with p2 >= p keeps the on-disk format
    if (a.base === 'numeric' && a.args.length === 2 && b.args.length === 2 && b.args[0]! >= a.args[0]! && b.args[1] === a.args[1]) noRewrite = true;
    if (a.base === 'numeric' && a.args.length && !b.args.length) noRewrite = true;
  } else if (INT_RANK[a.base] && INT_RANK[b.base]) {
    narrowing = INT_RANK[b.base]! < INT_RANK[a.base]!;
  } else if (isVarchar(a.base) && (b.base === 'character varying' || b.base === 'character') && b.args.length) {
    narrowing = true;
  } else if (a.base === 'character varying' && b.base === 'text' && !a.arr && !b.arr) {
    noRewrite = true;
  }
  if (narrowing) hz.push(tableHazard('deletes_data', `narrows column ${disp(tableSql)}.${column} from ${from} to ${to} (values may be truncated or rejected)`, tableSql, column));
  if (!noRewrite) {
    const what = from === to ? `converts column ${disp(tableSql)}.${column} to the recreated type ${to}` : `changes the type of column ${disp(tableSql)}.${column} from ${from} to ${to}`;
    hz.push(tableHazard('rewrites_table', `${what} (table rewrite)`, tableSql, column));
    hz.push(tableHazard('exclusive_lock', `ACCESS EXCLUSIVE lock on ${disp(tableSql)} while it is rewritten`, tableSql));
  }
  return hz;
}

function objRef(f: Fact): string {
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
    case 'index': return `INDEX ${m.sql}`;
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

function grantee(g: string): string {
  return g === 'PUBLIC' ? 'PUBLIC' : quoteIdent(g);
}

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

function versionLess(a: string, b: string): boolean {
  const pa = a.split(/[^0-9]+/).filter(Boolean).map(Number);
  const pb = b.split(/[^0-9]+/).filter(Boolean).map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? 0;
    const y = pb[i] ?? 0;
    if (x !== y) return x < y;
  }
  return false;
}

const POLICY_CMD: Record<string, string> = { r: 'SELECT', a: 'INSERT', w: 'UPDATE', d: 'DELETE', '*': 'ALL' };
const TRIGGER_ENABLE: Record<string, string> = { O: 'ENABLE', D: 'DISABLE', R: 'ENABLE REPLICA', A: 'ENABLE ALWAYS' };

interface Ctx {
  source: Map<string, Fact>;
  target: Map<string, Fact>;
  /** children of a fact in the source model */
  childrenOf: Map<string, Fact[]>;
}

interface AlterResult { sql: string[]; hazards: Hazard[]; retype?: boolean }
interface Rule {
  create(f: Fact, ctx: Ctx): { sql: string[]; hazards: Hazard[] };
  drop(f: Fact, ctx: Ctx): { sql: string[]; hazards: Hazard[] };
  /** In-place change, or null when the object must be dropped and recreated. */
  alter?(o: Fact, n: Fact, ctx: Ctx): AlterResult | null;
}

const none = (sql: string[]): { sql: string[]; hazards: Hazard[] } => ({ sql, hazards: [] });

function revokeDefaultPublic(f: Fact, ctx: Ctx, objType: string): string[] {
  const has = ctx.source.has(`acl:${f.id}:PUBLIC`);
  return has ? [] : [`REVOKE ALL ON ${objType} ${f.meta.fnSql ?? f.meta.sql} FROM PUBLIC`];
}

function tableCreate(f: Fact, ctx: Ctx, folded: Fact[]): string[] {
  const a = f.attrs;
  const kids = ctx.childrenOf.get(f.id) ?? [];
  const part = kids.find((k) => k.kind === 'partition' && folded.includes(k));
  const inherits = kids.filter((k) => k.kind === 'inherit' && folded.includes(k)).sort((x, y) => Number(x.meta.seq) - Number(y.meta.seq));
  const cols = kids.filter((k) => k.kind === 'column' && folded.includes(k)).sort((x, y) => Number(x.meta.pos) - Number(y.meta.pos));
  const defs = new Map<string, Fact>();
  for (const c of cols) for (const d of ctx.childrenOf.get(c.id) ?? []) if (d.kind === 'default' && folded.includes(d)) defs.set(c.id, d);
  let sql = `CREATE ${a.unlogged ? 'UNLOGGED ' : ''}TABLE ${f.meta.sql}`;
  if (part) {
    sql += ` PARTITION OF ${part.meta.parent}`;
    if (cols.length) sql += ` (\n    ${cols.map((c) => columnDef(c, defs.get(c.id))).join(',\n    ')}\n)`;
    sql += ` ${s(part.attrs.bound)}`;
  } else {
    sql += ` (${cols.length ? '\n    ' + cols.map((c) => columnDef(c, defs.get(c.id))).join(',\n    ') + '\n' : ''})`;
    if (inherits.length) sql += ` INHERITS (${inherits.map((i) => i.meta.parent).join(', ')})`;
  }
  if (a.partkey) sql += ` PARTITION BY ${s(a.partkey)}`;
  if (a.am) sql += ` USING ${quoteIdent(s(a.am))}`;
  if ((a.options as string[]).length) sql += ` WITH (${(a.options as string[]).join(', ')})`;
  const out = [sql];
  for (const c of cols) out.push(...columnSettings(c, undefined));
  if (a.rls) out.push(`ALTER TABLE ${f.meta.sql} ENABLE ROW LEVEL SECURITY`);
  if (a.rlsForce) out.push(`ALTER TABLE ${f.meta.sql} FORCE ROW LEVEL SECURITY`);
  return out;
}

/** A view's query as its server printed it (attrs.def is the form compared across versions, see versions.ts). */
function viewText(f: Fact): string {
  return s(f.meta.def ?? f.attrs.def);
}

function optionKeys(opts: string[]): string[] {
  return opts.map((o) => o.split('=')[0]!);
}

const RULES: Record<string, Rule> = {
  schema: {
    create: (f) => none([`CREATE SCHEMA ${f.meta.sql}`]),
    drop: (f) => none([`DROP SCHEMA ${f.meta.sql}`]),
    alter: () => ({ sql: [], hazards: [] }),
  },
  extension: {
    create: (f) => none([`CREATE EXTENSION ${f.meta.sql} WITH SCHEMA ${quoteIdent(s(f.attrs.schema))} VERSION ${quoteLiteral(s(f.attrs.version))}`]),
    drop: (f) => none([`DROP EXTENSION ${f.meta.sql}`]),
    alter: (o, n) => {
      if (versionLess(s(n.attrs.version), s(o.attrs.version))) return null;
      const sql: string[] = [];
      if (o.attrs.schema !== n.attrs.schema) sql.push(`ALTER EXTENSION ${n.meta.sql} SET SCHEMA ${quoteIdent(s(n.attrs.schema))}`);
      if (o.attrs.version !== n.attrs.version) sql.push(`ALTER EXTENSION ${n.meta.sql} UPDATE TO ${quoteLiteral(s(n.attrs.version))}`);
      return { sql, hazards: [] };
    },
  },
  collation: {
    create: (f) => {
      const a = f.attrs;
      const parts: string[] = [];
      // the source's own spelling of the ICU locale (the compared attribute is its canonical form)
      if (a.provider === 'i') parts.push(`provider = icu`, `locale = ${quoteLiteral(s(f.meta.locale ?? a.icuLocale ?? a.collate))}`);
      else if (a.provider === 'b') parts.push(`provider = builtin`, `locale = ${quoteLiteral(s(a.locale))}`);
      else if (a.provider === 'c') parts.push(`provider = libc`, `lc_collate = ${quoteLiteral(s(a.collate))}`, `lc_ctype = ${quoteLiteral(s(a.ctype))}`);
      else parts.push(`provider = default`);
      if (a.deterministic === false) parts.push('deterministic = false');
      if (a.icuRules) parts.push(`rules = ${quoteLiteral(s(a.icuRules))}`);
      return none([`CREATE COLLATION ${f.meta.sql} (${parts.join(', ')})`]);
    },
    drop: (f) => none([`DROP COLLATION ${f.meta.sql}`]),
  },
  enum: {
    create: (f, ctx) => none([`CREATE TYPE ${f.meta.sql} AS ENUM (${(f.attrs.labels as string[]).map((l) => quoteLiteral(l)).join(', ')})`, ...revokeDefaultPublic(f, ctx, 'TYPE')]),
    drop: (f) => none([`DROP TYPE ${f.meta.sql}`]),
    alter: (o, n) => {
      const ol = o.attrs.labels as string[];
      const nl = n.attrs.labels as string[];
      // old labels must keep their relative order and all survive
      let j = 0;
      for (const l of nl) if (j < ol.length && l === ol[j]) j++;
      if (j !== ol.length) return null;
      const sql: string[] = [];
      const present = new Set(ol);
      nl.forEach((l, i) => {
        if (present.has(l)) return;
        if (i > 0) sql.push(`ALTER TYPE ${n.meta.sql} ADD VALUE ${quoteLiteral(l)} AFTER ${quoteLiteral(nl[i - 1]!)}`);
        else {
          const next = nl.slice(1).find((x) => present.has(x));
          sql.push(`ALTER TYPE ${n.meta.sql} ADD VALUE ${quoteLiteral(l)}${next !== undefined ? ` BEFORE ${quoteLiteral(next)}` : ''}`);
        }
        present.add(l);
      });
      return { sql, hazards: [] };
    },
  },
  domain: {
    create: (f, ctx) => {
      const a = f.attrs;
      let sql = `CREATE DOMAIN ${f.meta.sql} AS ${s(a.basetype)}`;
      if (a.collation) sql += ` COLLATE ${s(a.collation)}`;
      if (a.default !== null) sql += ` DEFAULT ${s(a.default)}`;
      if (a.notnull) sql += ' NOT NULL';
      return none([sql, ...revokeDefaultPublic(f, ctx, 'DOMAIN')]);
    },
    drop: (f) => none([`DROP DOMAIN ${f.meta.sql}`]),
    alter: (o, n) => {
      if (o.attrs.basetype !== n.attrs.basetype || o.attrs.collation !== n.attrs.collation) return null;
      const sql: string[] = [];
      if (o.attrs.default !== n.attrs.default) sql.push(n.attrs.default === null ? `ALTER DOMAIN ${n.meta.sql} DROP DEFAULT` : `ALTER DOMAIN ${n.meta.sql} SET DEFAULT ${s(n.attrs.default)}`);
      if (o.attrs.notnull !== n.attrs.notnull) sql.push(`ALTER DOMAIN ${n.meta.sql} ${n.attrs.notnull ? 'SET' : 'DROP'} NOT NULL`);
      if (sql.length === 0) return null; // only dependencies changed
      return { sql, hazards: [] };
    },
  },
  domain_constraint: {
    create: (f) => none([`ALTER DOMAIN ${f.meta.domain} ADD CONSTRAINT ${quoteIdent(s(f.meta.name))} ${s(f.attrs.def)}`]),
    drop: (f) => none([`ALTER DOMAIN ${f.meta.domain} DROP CONSTRAINT ${quoteIdent(s(f.meta.name))}`]),
  },
  composite: {
    create: (f, ctx) => none([`CREATE TYPE ${f.meta.sql} AS (${(f.attrs.attributes as string[]).join(', ')})`, ...revokeDefaultPublic(f, ctx, 'TYPE')]),
    drop: (f) => none([`DROP TYPE ${f.meta.sql}`]),
  },
  range: {
    create: (f, ctx) => {
      const a = f.attrs;
      const parts = [`SUBTYPE = ${s(a.subtype)}`];
      if (a.opclass) parts.push(`SUBTYPE_OPCLASS = ${s(a.opclass)}`);
      if (a.collation) parts.push(`COLLATION = ${s(a.collation)}`);
      if (a.canonical) parts.push(`CANONICAL = ${s(a.canonical)}`);
      if (a.subdiff) parts.push(`SUBTYPE_DIFF = ${s(a.subdiff)}`);
      return none([`CREATE TYPE ${f.meta.sql} AS RANGE (${parts.join(', ')})`, ...revokeDefaultPublic(f, ctx, 'TYPE')]);
    },
    drop: (f) => none([`DROP TYPE ${f.meta.sql}`]),
  },
  sequence: {
    create: (f) => {
      const a = f.attrs;
      return none([`CREATE SEQUENCE ${f.meta.sql} AS ${s(a.type)} INCREMENT BY ${s(a.increment)} MINVALUE ${s(a.min)} MAXVALUE ${s(a.max)} START WITH ${s(a.start)} CACHE ${s(a.cache)} ${a.cycle ? 'CYCLE' : 'NO CYCLE'}`]);
    },
    drop: (f) => ({ sql: [`DROP SEQUENCE IF EXISTS ${f.meta.sql}`], hazards: [{ kind: 'deletes_data', message: `drops sequence ${disp(s(f.meta.sql))} (its current value is lost)` }] }),
    alter: (o, n) => {
      const a = n.attrs;
      if (JSON.stringify(o.attrs) === JSON.stringify(n.attrs)) return null;
      return { sql: [`ALTER SEQUENCE ${n.meta.sql} AS ${s(a.type)} INCREMENT BY ${s(a.increment)} MINVALUE ${s(a.min)} MAXVALUE ${s(a.max)} START WITH ${s(a.start)} CACHE ${s(a.cache)} ${a.cycle ? 'CYCLE' : 'NO CYCLE'}`], hazards: [] };
    },
  },
  seq_owned: {
    create: (f) => none([`ALTER SEQUENCE ${f.meta.seq} OWNED BY ${s(f.attrs.column)}`]),
    drop: (f) => none([`ALTER SEQUENCE ${f.meta.seq} OWNED BY NONE`]),
    alter: (_o, n) => ({ sql: [`ALTER SEQUENCE ${n.meta.seq} OWNED BY ${s(n.attrs.column)}`], hazards: [] }),
  },
  table: {
    create: () => none([]), // rendered by tableCreate (needs folded children)
    drop: (f) => ({ sql: [`DROP TABLE ${f.meta.sql}`], hazards: [tableHazard('deletes_data', `drops table ${disp(s(f.meta.sql))}`, s(f.meta.sql))] }),
    alter: (o, n) => {
      const a = o.attrs;
      const b = n.attrs;
      if (a.partkey !== b.partkey) return null;
      const sql: string[] = [];
      const hazards: Hazard[] = [];
      const t = s(n.meta.sql);
      if (a.unlogged !== b.unlogged) {
        sql.push(`ALTER TABLE ${t} SET ${b.unlogged ? 'UNLOGGED' : 'LOGGED'}`);
        hazards.push(tableHazard('rewrites_table', `rewrites ${disp(t)} to make it ${b.unlogged ? 'unlogged' : 'logged'}`, t), tableHazard('exclusive_lock', `ACCESS EXCLUSIVE lock on ${disp(t)} during the rewrite`, t));
      }
      if (a.am !== b.am) {
        sql.push(`ALTER TABLE ${t} SET ACCESS METHOD ${quoteIdent(s(b.am ?? 'heap'))}`);
        hazards.push(tableHazard('rewrites_table', `rewrites ${disp(t)} into another access method`, t));
      }
      if (JSON.stringify(a.options) !== JSON.stringify(b.options)) {
        const oldKeys = optionKeys(a.options as string[]);
        const newKeys = optionKeys(b.options as string[]);
        const gone = oldKeys.filter((k) => !newKeys.includes(k));
        if (gone.length) sql.push(`ALTER TABLE ${t} RESET (${gone.join(', ')})`);
        if ((b.options as string[]).length) sql.push(`ALTER TABLE ${t} SET (${(b.options as string[]).join(', ')})`);
      }
      if (a.rls !== b.rls) sql.push(`ALTER TABLE ${t} ${b.rls ? 'ENABLE' : 'DISABLE'} ROW LEVEL SECURITY`);
      if (a.rlsForce !== b.rlsForce) sql.push(`ALTER TABLE ${t} ${b.rlsForce ? 'FORCE' : 'NO FORCE'} ROW LEVEL SECURITY`);
      return { sql, hazards };
    },
  },
  column: {
    create: (f, ctx) => {
      const def = (ctx.childrenOf.get(f.id) ?? []).find((d) => d.kind === 'default');
      const hazards: Hazard[] = [];
      if (f.attrs.generated || f.attrs.identity) hazards.push(tableHazard('rewrites_table', `adds ${f.attrs.generated ? 'generated' : 'identity'} column ${s(f.meta.name)} (table rewrite)`, s(f.meta.table), s(f.meta.name)));
      return { sql: [`ALTER TABLE ${f.meta.table} ADD COLUMN ${columnDef(f, def)}`, ...columnSettings(f, undefined)], hazards };
    },
    drop: (f) => ({ sql: [`ALTER TABLE ${f.meta.table} DROP COLUMN ${f.meta.sql}`], hazards: f.attrs.generated ? [] : [tableHazard('deletes_data', `drops column ${disp(`${s(f.meta.table)}.${s(f.meta.sql)}`)}`, s(f.meta.table), s(f.meta.name))] }),
    alter: (o, n) => {
      const a = o.attrs;
      const b = n.attrs;
      if (b.generated && a.generated !== b.generated) return null; // (re)generated: drop and add
      if (!!a.virtual !== !!b.virtual) return null; // stored ↔ virtual: drop and add
      if (a.virtual && !b.generated) return null; // DROP EXPRESSION does not take a virtual column
      const t = s(n.meta.table);
      const c = s(n.meta.sql);
      const pre = `ALTER TABLE ${t} ALTER COLUMN ${c}`;
      const sql: string[] = [];
      const hazards: Hazard[] = [];
      let retype = false;
      if (a.identity && a.identity !== b.identity && !b.identity) sql.push(`${pre} DROP IDENTITY`);
      if (a.generated && !b.generated) sql.push(`${pre} DROP EXPRESSION`);
      if (a.type !== b.type || a.collation !== b.collation) {
        retype = true;
        hazards.push(...typeChangeHazards(t, s(n.meta.name), s(a.type), s(b.type)));
      }
      if (a.notnull && !b.notnull) sql.push(`${pre} DROP NOT NULL`);
      if (!a.notnull && b.notnull) {
        sql.push(`${pre} SET NOT NULL`);
        hazards.push(tableHazard('exclusive_lock', `SET NOT NULL scans ${disp(t)} under an ACCESS EXCLUSIVE lock`, t));
      }
      if (b.identity && !a.identity) sql.push(`${pre} ADD GENERATED ${b.identity === 'a' ? 'ALWAYS' : 'BY DEFAULT'} AS IDENTITY${b.identityOptions ? ` (${s(b.identityOptions)})` : ''}`);
      if (b.identity && a.identity && a.identity !== b.identity) sql.push(`${pre} SET GENERATED ${b.identity === 'a' ? 'ALWAYS' : 'BY DEFAULT'}`);
      if (b.identity && a.identity && b.identityOptions && a.identityOptions !== b.identityOptions) {
        // START WITH 1 INCREMENT BY 1 MINVALUE 1 MAXVALUE 9 CACHE 1 NO CYCLE → SET START WITH 1 SET INCREMENT BY 1 ...
        const o = s(b.identityOptions).replace(/(START WITH|INCREMENT BY|MINVALUE|MAXVALUE|CACHE) (-?\d+)/g, 'SET $1 $2').replace(/(NO CYCLE|(?<!NO )CYCLE)$/, 'SET $1');
        sql.push(`${pre} ${o}`);
      }
      sql.push(...columnSettings(n, o, retype));
      if (!retype && sql.length === 0) retype = true; // only dependencies changed (type object replaced)
      return { sql, hazards, retype };
    },
  },
  default: {
    create: (f) => none([`ALTER TABLE ${f.meta.table} ALTER COLUMN ${f.meta.column} SET DEFAULT ${s(f.attrs.expr)}`]),
    drop: (f) => none([`ALTER TABLE ${f.meta.table} ALTER COLUMN ${f.meta.column} DROP DEFAULT`]),
    alter: (o, n) => (o.attrs.expr === n.attrs.expr ? null : { sql: [`ALTER TABLE ${n.meta.table} ALTER COLUMN ${n.meta.column} SET DEFAULT ${s(n.attrs.expr)}`], hazards: [] }),
  },
  child_column: {
    create: (f, ctx) => none(childColumnSql(f, undefined, ctx)),
    // the child follows its parent again (nothing to do when it is no longer a child: its columns are its own then)
    drop: (f, ctx) => none(stillChild(f, ctx) ? childColumnSql({ ...f, attrs: {} }, f, ctx) : []),
    alter: (o, n, ctx) => ({ sql: childColumnSql(n, o, ctx), hazards: [] }),
  },
  replica_identity: {
    create: (f) => none([`ALTER TABLE ${f.meta.table} REPLICA IDENTITY ${f.attrs.identity === 'f' ? 'FULL' : f.attrs.identity === 'n' ? 'NOTHING' : `USING INDEX ${quoteIdent(s(f.attrs.index))}`}`]),
    drop: (f) => none([`ALTER TABLE ${f.meta.table} REPLICA IDENTITY DEFAULT`]),
    alter: (_o, n) => ({ sql: [`ALTER TABLE ${n.meta.table} REPLICA IDENTITY ${n.attrs.identity === 'f' ? 'FULL' : n.attrs.identity === 'n' ? 'NOTHING' : `USING INDEX ${quoteIdent(s(n.attrs.index))}`}`], hazards: [] }),
  },
  cluster: {
    create: (f) => none([`ALTER TABLE ${f.meta.table} CLUSTER ON ${quoteIdent(s(f.attrs.index))}`]),
    drop: (f) => none([`ALTER TABLE ${f.meta.table} SET WITHOUT CLUSTER`]),
    alter: (_o, n) => ({ sql: [`ALTER TABLE ${n.meta.table} CLUSTER ON ${quoteIdent(s(n.attrs.index))}`], hazards: [] }),
  },
  rule: {
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
  },
  statistics: {
    create: (f) => none([s(f.attrs.def), ...(f.attrs.target !== undefined ? [`ALTER STATISTICS ${f.meta.sql} SET STATISTICS ${Number(f.attrs.target)}`] : [])]),
    drop: (f) => none([`DROP STATISTICS ${f.meta.sql}`]),
    alter: (o, n) =>
      o.attrs.def === n.attrs.def && JSON.stringify(o.deps) === JSON.stringify(n.deps)
        ? { sql: [`ALTER STATISTICS ${n.meta.sql} SET STATISTICS ${Number(n.attrs.target ?? -1)}`], hazards: [] }
        : null,
  },
  ts_dictionary: {
    create: (f) => none([`CREATE TEXT SEARCH DICTIONARY ${f.meta.sql} (TEMPLATE = ${s(f.attrs.template)}${f.attrs.options !== null ? `, ${s(f.attrs.options)}` : ''})`]),
    drop: (f) => none([`DROP TEXT SEARCH DICTIONARY ${f.meta.sql}`]),
    // other options or template: recreated, with the configurations using it
  },
  ts_config: {
    create: (f) => none([`CREATE TEXT SEARCH CONFIGURATION ${f.meta.sql} (PARSER = ${s(f.attrs.parser)})`, ...tsMappingSql(f, [], f.attrs.mappings as string[])]),
    drop: (f) => none([`DROP TEXT SEARCH CONFIGURATION ${f.meta.sql}`]),
    alter: (o, n) => (o.attrs.parser === n.attrs.parser ? { sql: tsMappingSql(n, o.attrs.mappings as string[], n.attrs.mappings as string[]), hazards: [] } : null),
  },
  default_acl: {
    create: (f) => none(defaultAclSql(f, f.attrs.privs as string[])),
    // back to the built-in defaults
    drop: (f) => none(defaultAclSql(f, s(f.meta.implicit) ? s(f.meta.implicit).split(',') : [])),
    alter: (_o, n) => ({ sql: defaultAclSql(n, n.attrs.privs as string[]), hazards: [] }),
  },
  aggregate: {
    // no in-place change: dropped and recreated, together with what uses it (views…)
    create: (f, ctx) => none([s(f.attrs.def), ...revokeDefaultPublic(f, ctx, 'FUNCTION')]),
    drop: (f) => none([`DROP AGGREGATE ${f.meta.sql}`]),
  },
  inherit: {
    create: (f) => none([`ALTER TABLE ${f.meta.child} INHERIT ${f.meta.parent}`]),
    drop: (f) => none([`ALTER TABLE ${f.meta.child} NO INHERIT ${f.meta.parent}`]),
  },
  partition: {
    create: (f) => ({ sql: [`ALTER TABLE ${f.meta.parent} ATTACH PARTITION ${f.meta.child} ${s(f.attrs.bound)}`], hazards: [tableHazard('exclusive_lock', `ATTACH PARTITION scans ${disp(s(f.meta.child))} to validate the bound`, s(f.meta.child))] }),
    drop: (f) => none([`ALTER TABLE ${f.meta.parent} DETACH PARTITION ${f.meta.child}`]),
  },
  constraint: {
    create: (f) => {
      const t = s(f.meta.table);
      // a PostgreSQL 18 NOT NULL constraint in a model from an older inspection: the column's notnull says it all
      // (SET / DROP NOT NULL, valid on every version); never ADD CONSTRAINT … NOT NULL, which 13–17 reject
      if (f.attrs.type === 'n') return none([]);
      const def = s(f.attrs.def);
      const hazards: Hazard[] = [];
      if ('pux'.includes(s(f.attrs.type))) hazards.push(tableHazard('builds_index', `builds an index for constraint ${s(f.meta.name)} on ${disp(t)}`, t));
      if (!/NOT VALID$/.test(def)) hazards.push(tableHazard('exclusive_lock', `validates constraint ${s(f.meta.name)} on ${disp(t)} while holding a lock`, t));
      return { sql: [`ALTER TABLE ${t} ADD CONSTRAINT ${quoteIdent(s(f.meta.name))} ${def}`], hazards };
    },
    drop: (f) => none(f.attrs.type === 'n' ? [] : [`ALTER TABLE ${f.meta.table} DROP CONSTRAINT ${quoteIdent(s(f.meta.name))}`]),
  },
  index: {
    create: (f) => ({ sql: [s(f.attrs.def)], hazards: [tableHazard('builds_index', `builds index ${disp(s(f.meta.sql))}`, s(f.meta.table))] }),
    drop: (f) => none([`DROP INDEX ${f.meta.sql}`]),
  },
  view: {
    create: (f) => none([`CREATE VIEW ${f.meta.sql}${(f.attrs.options as string[]).length ? ` WITH (${(f.attrs.options as string[]).join(', ')})` : ''} AS\n${viewText(f)}`]),
    drop: (f) => none([`DROP VIEW ${f.meta.sql}`]),
    alter: (o, n) => {
      const oc = o.attrs.columns as string[];
      const nc = n.attrs.columns as string[];
      if (nc.length < oc.length || oc.some((c, i) => nc[i] !== c)) return null;
      const sql: string[] = [];
      const gone = optionKeys(o.attrs.options as string[]).filter((k) => !optionKeys(n.attrs.options as string[]).includes(k));
      if (gone.length) sql.push(`ALTER VIEW ${n.meta.sql} RESET (${gone.join(', ')})`);
      sql.push(`CREATE OR REPLACE VIEW ${n.meta.sql}${(n.attrs.options as string[]).length ? ` WITH (${(n.attrs.options as string[]).join(', ')})` : ''} AS\n${viewText(n)}`);
      return { sql, hazards: [] };
    },
  },
  matview: {
    create: (f) => ({
      sql: [`CREATE MATERIALIZED VIEW ${f.meta.sql}${f.attrs.am ? ` USING ${quoteIdent(s(f.attrs.am))}` : ''}${(f.attrs.options as string[]).length ? ` WITH (${(f.attrs.options as string[]).join(', ')})` : ''} AS\n${viewText(f)}`],
      hazards: [tableHazard('exclusive_lock', `populates materialized view ${disp(s(f.meta.sql))}`, s(f.meta.sql))],
    }),
    drop: (f) => none([`DROP MATERIALIZED VIEW ${f.meta.sql}`]),
  },
  function: {
    create: (f, ctx) => none([s(f.attrs.def), ...revokeDefaultPublic(f, ctx, 'FUNCTION')]),
    drop: (f) => none([`DROP FUNCTION ${f.meta.sql}`]),
    alter: (o, n) => (o.attrs.args === n.attrs.args && o.attrs.result === n.attrs.result && o.attrs.def !== n.attrs.def ? { sql: [s(n.attrs.def)], hazards: [] } : null),
  },
  procedure: {
    create: (f, ctx) => none([s(f.attrs.def), ...revokeDefaultPublic(f, ctx, 'PROCEDURE')]),
    drop: (f) => none([`DROP PROCEDURE ${f.meta.sql}`]),
    alter: (o, n) => (o.attrs.args === n.attrs.args && o.attrs.def !== n.attrs.def ? { sql: [s(n.attrs.def)], hazards: [] } : null),
  },
  trigger: {
    create: (f) => {
      const sql = [s(f.attrs.def)];
      if (f.attrs.enabled !== 'O') sql.push(`ALTER TABLE ${f.meta.table} ${TRIGGER_ENABLE[s(f.attrs.enabled)]} TRIGGER ${quoteIdent(s(f.meta.name))}`);
      return none(sql);
    },
    drop: (f) => none([`DROP TRIGGER ${quoteIdent(s(f.meta.name))} ON ${f.meta.table}`]),
    alter: (o, n) =>
      o.attrs.def === n.attrs.def && o.attrs.enabled !== n.attrs.enabled && JSON.stringify(o.deps) === JSON.stringify(n.deps)
        ? { sql: [`ALTER TABLE ${n.meta.table} ${TRIGGER_ENABLE[s(n.attrs.enabled)]} TRIGGER ${quoteIdent(s(n.meta.name))}`], hazards: [] }
        : null,
  },
  policy: {
    create: (f) => {
      const a = f.attrs;
      let sql = `CREATE POLICY ${quoteIdent(s(f.meta.name))} ON ${f.meta.table} AS ${a.permissive ? 'PERMISSIVE' : 'RESTRICTIVE'} FOR ${POLICY_CMD[s(a.cmd)]} TO ${(a.roles as string[]).map(grantee).join(', ')}`;
      if (a.qual !== null) sql += ` USING (${s(a.qual)})`;
      if (a.check !== null) sql += ` WITH CHECK (${s(a.check)})`;
      return none([sql]);
    },
    drop: (f) => none([`DROP POLICY ${quoteIdent(s(f.meta.name))} ON ${f.meta.table}`]),
  },
  acl: {
    create: (f) => none(grantSql(f)),
    drop: (f) => none([revokeSql(f)]),
    alter: (_o, n) => ({ sql: [revokeSql(n), ...grantSql(n)], hazards: [] }),
  },
  comment: {
    // meta.on: a part of the parent with no fact of its own (a view's column)
    create: (f, ctx) => none([`COMMENT ON ${f.meta.on ?? objRef(ctx.source.get(f.parent!)!)} IS ${quoteLiteral(s(f.attrs.text))}`]),
    drop: (f, ctx) => none([`COMMENT ON ${f.meta.on ?? objRef(ctx.target.get(f.parent!)!)} IS NULL`]),
    alter: (_o, n, ctx) => ({ sql: [`COMMENT ON ${n.meta.on ?? objRef(ctx.source.get(n.parent!)!)} IS ${quoteLiteral(s(n.attrs.text))}`], hazards: [] }),
  },
};

/** Why a table with rows is not dropped (the plan's guard and migrate's plan error say the same). */
export function tableHasRowsMessage(tableSql: string, reason: string): string {
  return `table ${disp(tableSql)} has rows and would have to be dropped and recreated: ${reason}; a migration never drops a table with rows that exists on both sides (move the rows into a new table by hand, or empty it first, then migrate again)`;
}
/** Locks the table, then stops the plan (its transaction rolls back) if the table still has any row. */
function emptyGuard(f: Fact, reason: string): string[] {
  const t = s(f.meta.sql);
  const body = `BEGIN IF EXISTS (SELECT FROM ${t}) THEN RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = ${quoteLiteral(tableHasRowsMessage(t, reason))}; END IF; END`;
  return [`LOCK TABLE ${t} IN ACCESS EXCLUSIVE MODE`, `DO ${quoteLiteral(body)}`];
}

// ---------------------------------------------------------------- a small binary heap

class Heap<T> {
  private a: T[] = [];
  constructor(private less: (x: T, y: T) => boolean) {}
  get size() {
    return this.a.length;
  }
  push(v: T) {
    const a = this.a;
    a.push(v);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  pop(): T | undefined {
    const a = this.a;
    if (!a.length) return undefined;
    const top = a[0];
    const last = a.pop()!;
    if (a.length) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l]!, a[m]!)) m = l;
        if (r < a.length && this.less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

// ---------------------------------------------------------------- the planner

/** The name a fact occupies in the catalog (objects of different kinds can collide on it). */
function nameKey(f: Fact): string | undefined {
  switch (f.kind) {
    case 'table': case 'view': case 'matview': case 'sequence': case 'index':
    case 'enum': case 'domain': case 'composite': case 'range':
      return `rel:${f.meta.sql}`;
    case 'constraint':
      if ('pux'.includes(s(f.attrs.type))) return `rel:${quoteIdent(splitName(s(f.meta.table)).schema)}.${quoteIdent(s(f.meta.name))}`;
      return undefined;
    case 'function': case 'procedure': case 'aggregate':
      return `fn:${f.meta.sql}`;
    case 'statistics':
      return `stx:${f.meta.sql}`;
    default:
      return undefined;
  }
}

export interface PlanOptions {
  /**
   * Tables (relationKey(schema, name) from pg/quote.ts) whose rows will be written in the same transaction after the schema step (the data
   * component), or true for every table. A value added with ALTER TYPE … ADD VALUE cannot be used before
   * COMMIT, so an enum that gains values and is the type of a column of such a table is recreated instead.
   */
  rowsFollow?: boolean | ReadonlySet<string>;
}

export function planSchema(sourceModel: SchemaModel, targetModel: SchemaModel, opts: PlanOptions = {}): SchemaPlan {
  const [source, target] = comparableModels(sourceModel, targetModel);
  const S = new Map(source.facts.map((f) => [f.id, f]));
  const T = new Map(target.facts.map((f) => [f.id, f]));
  const childrenOf = new Map<string, Fact[]>();
  for (const f of source.facts) if (f.parent) (childrenOf.get(f.parent) ?? childrenOf.set(f.parent, []).get(f.parent)!).push(f);
  const ctx: Ctx = { source: S, target: T, childrenOf };
  const oldDependents = new Map<string, string[]>();
  for (const f of target.facts) for (const d of f.deps) (oldDependents.get(d) ?? oldDependents.set(d, []).get(d)!).push(f.id);

  const notHandled: SchemaPlan['notHandled'] = [];
  const errors: string[] = [];

  // unsupported objects: reported when the two sides disagree about them
  const unsT = new Map(target.unsupported.map((u) => [u.kind + '\u0000' + u.identity, u]));
  const unsS = new Map(source.unsupported.map((u) => [u.kind + '\u0000' + u.identity, u]));
  for (const [k, u] of [...unsS, ...unsT]) {
    const o = unsS.get(k);
    const t = unsT.get(k);
    if (o && t && o.def === t.def) continue;
    if (notHandled.some((n) => n.kind === u.kind && n.identity === u.identity)) continue;
    notHandled.push({ kind: u.kind, identity: u.identity, reason: `${u.reason}; it ${!t ? 'exists only in the source' : !o ? 'exists only in the target' : 'differs between source and target'} and will not be migrated` });
  }

  const added: Fact[] = [];
  const removed: Fact[] = [];
  const changed: [Fact, Fact][] = [];
  for (const f of source.facts) {
    const t = T.get(f.id);
    if (!t) added.push(f);
    else if (factSignature(f) !== factSignature(t)) changed.push([t, f]);
  }
  for (const f of target.facts) if (!S.has(f.id)) removed.push(f);

  // ATTACH PARTITION absorbs the table's own columns; DETACH PARTITION gives them back as local columns
  const absorbed = new Set<string>();
  const detachEdges: [string, string][] = [];
  for (const p of added) {
    if (p.kind !== 'partition' || !T.has(p.parent!)) continue;
    for (const f of removed) if (f.kind === 'column' && f.parent === p.parent) absorbed.add(f.id);
  }
  for (const f of removed) if (f.kind === 'default' && absorbed.has(f.parent!)) absorbed.add(f.id);
  const viaDetach = new Set<string>();
  for (const p of removed) {
    if (p.kind !== 'partition' || !S.has(p.parent!)) continue;
    for (const f of added) {
      if (f.kind !== 'column' || f.parent !== p.parent) continue;
      const old = T.get(`column:${p.meta.parent}.${f.meta.sql}`);
      if (!old) continue;
      viaDetach.add(f.id);
      const pseudo: Fact = { ...old, id: f.id, parent: f.parent, deps: f.deps, meta: f.meta };
      if (factSignature(pseudo) !== factSignature(f)) {
        changed.push([pseudo, f]);
        detachEdges.push([p.id, f.id]);
      }
    }
  }
  if (absorbed.size) removed.splice(0, removed.length, ...removed.filter((f) => !absorbed.has(f.id)));
  if (viaDetach.size) added.splice(0, added.length, ...added.filter((f) => !viaDetach.has(f.id)));

  // a parent's SET / DROP DEFAULT recurses to its partitions and children: their own defaults are set again after it
  const parentDefaults = new Set<string>();
  for (const f of [...added, ...removed, ...changed.map((c) => c[1])]) {
    if (f.kind === 'default') parentDefaults.add(`${s(f.meta.table)}.${s(f.meta.column)}`);
    if (f.kind === 'child_column') parentDefaults.add(`${s(f.meta.table)}.${s(f.meta.column)}`);
  }
  if (parentDefaults.size) {
    const isChanged = new Set(changed.map((c) => c[1].id));
    for (let grew = true; grew;) {
      grew = false;
      for (const f of source.facts) {
        if (f.kind !== 'child_column' || f.attrs.default === undefined || isChanged.has(f.id) || !T.has(f.id)) continue;
        if (!parentDefaults.has(`${s(f.meta.parentTable)}.${s(f.meta.column)}`)) continue;
        changed.push([T.get(f.id)!, f]);
        isChanged.add(f.id);
        parentDefaults.add(`${s(f.meta.table)}.${s(f.meta.column)}`);
        grew = true;
      }
    }
  }

  for (const f of [...added, ...removed, ...changed.map((c) => c[1])]) {
    if (!RULES[f.kind]) notHandled.push({ kind: f.kind, identity: f.id, reason: `no rule for ${f.kind} objects` });
  }

  // in-place alterations, decided once; the closure below may still turn them into recreations
  const inPlace = new Map<string, AlterResult>();
  const recreateSeed = new Set<string>();
  for (const [o, n] of changed) {
    const rule = RULES[n.kind];
    if (!rule) continue;
    const r = rule.alter ? rule.alter(o, n, ctx) : null;
    if (r) inPlace.set(n.id, r);
    else recreateSeed.add(n.id);
  }
  // SET LOGGED / UNLOGGED fails while a foreign key joins the table to one of the other persistence (a permanent
  // table may not reference an unlogged one; two tables may reference each other): such keys are dropped and added again
  const persistence = new Set(changed.filter(([o, n]) => n.kind === 'table' && !!o.attrs.unlogged !== !!n.attrs.unlogged).map(([, n]) => n.id));
  for (const c of persistence.size ? target.facts : []) {
    if (c.kind !== 'constraint' || c.attrs.type !== 'f' || !S.has(c.id)) continue;
    const tables = new Set([c.parent!, ...c.deps.map((d) => T.get(d)?.parent ?? d).filter((d) => T.get(d)?.kind === 'table')]);
    if (tables.size > 1 && [...tables].some((t) => persistence.has(t))) recreateSeed.add(c.id);
  }

  // partitions and inheritance children: their inherited columns are their parents' column facts
  const childTables = new Set(target.facts.filter((f) => f.kind === 'partition' || f.kind === 'inherit').map((f) => f.parent!));

  // closure: recreated objects drag their dependents along; type changes drag their blockers
  const computeClosure = (seed: Set<string>) => {
    const R = new Set<string>(seed);
    /** what dragged each dependent into R (for the error when that would drop a table) */
    const why = new Map<string, string>();
    const retype = new Set<string>();
    const work = [...seed];
    for (const [id, r] of inPlace) if (r.retype && !R.has(id)) {
      retype.add(id);
      work.push(id);
    }
    while (work.length) {
      const x = work.pop()!;
      const xf = T.get(x)!;
      const xRecreated = R.has(x);
      for (const y of oldDependents.get(x) ?? []) {
        if (!S.has(y) || R.has(y)) continue;
        const yf = T.get(y)!;
        if (xRecreated) {
          if (yf.kind === 'column' && (TYPE_LIKE.has(xf.kind))) {
            if (!retype.has(y)) {
              retype.add(y);
              work.push(y);
            }
            continue;
          }
          // a partition or inheritance child uses the type through its parent's columns: ALTER TABLE parent ALTER
          // COLUMN … TYPE converts it too (the partitions are never dropped for it)
          if (yf.kind === 'table' && TYPE_LIKE.has(xf.kind) && childTables.has(y)) continue;
          R.add(y);
          why.set(y, x);
          retype.delete(y);
          work.push(y);
        } else {
          // x is a retyped column
          if (RETYPE_BLOCKERS.has(yf.kind) || (yf.kind === 'column' && yf.attrs.generated)) {
            R.add(y);
            why.set(y, x);
            retype.delete(y);
            work.push(y);
          }
        }
      }
    }
    return { R, retype, why };
  };

  // does the data step write rows of a table with a column of this enum type?
  const rowsWritten = (enumId: string): boolean => {
    const rf = opts.rowsFollow;
    if (rf === undefined || rf === false) return false;
    if (rf === true) return true;
    return source.facts.some((f) => {
      if (f.kind !== 'column' || !f.deps.includes(enumId)) return false;
      const t = f.parent ? S.get(f.parent) : undefined;
      return t !== undefined && rf.has(relationKey(String(t.meta.schema), String(t.meta.name)));
    });
  };
  let seed = new Set(recreateSeed);
  let closure = computeClosure(seed);
  // ALTER TYPE ... ADD VALUE: a new value cannot be used in the same transaction → recreate the type instead
  const recreatedWhy = new Map<string, string>();
  for (let guard = 0; guard < 20; guard++) {
    let promoted = false;
    for (const [o, n] of changed) {
      if (n.kind !== 'enum' || closure.R.has(n.id)) continue;
      const newLabels = (n.attrs.labels as string[]).filter((l) => !(o.attrs.labels as string[]).includes(l));
      if (!newLabels.length) continue;
      const touched = source.facts.filter(
        (f) => f.deps.includes(n.id) && (!T.has(f.id) || closure.R.has(f.id) || inPlace.has(f.id) || closure.retype.has(f.id)),
      );
      const byRows = rowsWritten(n.id);
      const used = byRows || touched.some((f) => {
        const text = JSON.stringify(f.attrs);
        return newLabels.some((l) => text.includes(JSON.stringify(quoteLiteral(l)).slice(1, -1)));
      });
      if (used) {
        seed.add(n.id);
        promoted = true;
        recreatedWhy.set(n.id, `recreated instead of ALTER TYPE … ADD VALUE: ${byRows ? 'the data step writes rows of a table with a column of this type in the same transaction' : 'the plan uses a new value in the same transaction'}, and a value added in place cannot be used before COMMIT`);
      }
    }
    // an in-place replacement that must both release an old dependency and use a new one can deadlock on names
    // (a table replaced by a view of the same name): recreate it instead
    const droppedNow = new Set([...removed.map((f) => f.id), ...closure.R]);
    const createdNow = new Set([...added.map((f) => f.id), ...closure.R]);
    for (const [id] of inPlace) {
      if (closure.R.has(id) || seed.has(id)) continue;
      const o = T.get(id)!;
      const n = S.get(id)!;
      if (n.kind === 'column' || n.kind === 'table') continue;
      if (o.deps.some((d) => droppedNow.has(d)) && n.deps.some((d) => createdNow.has(d))) {
        seed.add(id);
        promoted = true;
      }
    }
    if (!promoted) break;
    closure = computeClosure(seed);
  }
  const { R, retype, why } = closure;

  // A table that exists on both sides and has no in-place path (a changed partition key, a dependency that must be
  // recreated) is recreated only while it holds no rows: the plan locks it and refuses to go on if it has any (the
  // transaction rolls back), and migrate makes a non-empty one a plan error before anything runs. Rows are never
  // dropped as a side effect.
  const recreatedTables: SchemaPlan['recreatedTables'] = [];
  for (const id of [...R].sort(cmp)) {
    const o = T.get(id)!;
    const n = S.get(id);
    if (o.kind !== 'table' || n?.kind !== 'table') continue;
    const by = why.get(id);
    const byFact = by === undefined ? undefined : T.get(by);
    const reason = byFact === undefined
      ? o.attrs.partkey !== n.attrs.partkey
        ? `its partition key differs (${o.attrs.partkey === null ? 'not partitioned' : `PARTITION BY ${s(o.attrs.partkey)}`} on the target, ${n.attrs.partkey === null ? 'not partitioned' : `PARTITION BY ${s(n.attrs.partkey)}`} in the source), which PostgreSQL cannot change in place`
        : 'it cannot be changed in place'
      : `${byFact.kind} ${byFact.meta.sql !== undefined ? disp(s(byFact.meta.sql)) : byFact.id} that it depends on is recreated`;
    recreatedTables.push({ schema: s(o.meta.schema), name: s(o.meta.name), reason });
  }

  // ------------------------------------------------ nodes
  const nodes = new Map<string, Node>();
  const node = (op: Op, f: Fact): Node => {
    const k = `${op}|${f.id}`;
    let n = nodes.get(k);
    if (!n) nodes.set(k, (n = { key: k, op, fact: f, sql: [], hazards: [], folded: [] }));
    return n;
  };
  const dropNode = new Map<string, Node>();
  const createNode = new Map<string, Node>(); // fact id → node that creates it (possibly its parent's)
  const alterNode = new Map<string, Node>();
  const cleanupNode = new Map<string, Node>();

  const dropped = new Set<string>([...removed.map((f) => f.id), ...R]);
  const created = new Set<string>([...added.map((f) => f.id), ...R]);

  // type-likes recreated while columns still use them: rename the old one away, retype the columns, then drop it
  const renameDance = new Set<string>();
  for (const id of R) {
    const f = T.get(id)!;
    if (!TYPE_LIKE.has(f.kind)) continue;
    if ((oldDependents.get(id) ?? []).some((y) => retype.has(y))) renameDance.add(id);
  }

  // drops
  const impliedBy = (f: Fact): string | undefined => {
    let cur = f;
    let host: string | undefined;
    // foreign keys are dropped explicitly: two tables referencing each other must lose their keys first
    if (f.kind === 'constraint' && f.attrs.type === 'f') return undefined;
    while (cur.parent !== undefined && dropped.has(cur.parent) && CHILD_KINDS.has(cur.kind) && !renameDanceKinds(T.get(cur.parent)!)) {
      host = cur.parent;
      cur = T.get(cur.parent)!;
    }
    return host;
  };
  const renameDanceKinds = (f: Fact) => renameDance.has(f.id);
  for (const id of [...dropped].sort(cmp)) {
    const f = T.get(id)!;
    if (impliedBy(f)) continue;
    dropNode.set(id, node('drop', f));
  }
  for (const id of dropped) {
    const f = T.get(id)!;
    const host = impliedBy(f);
    if (host) dropNode.set(id, dropNode.get(host)!); // implied by the parent's drop: ordered with it
  }
  for (const id of dropped) {
    const f = T.get(id)!;
    const rule = RULES[f.kind];
    if (impliedBy(f)) continue;
    const n = dropNode.get(id)!;
    if (!rule) continue;
    if (renameDance.has(id)) {
      const tmp = quoteIdent(`${s(f.meta.name)}__nself_old`);
      const kw = f.kind === 'domain' ? 'DOMAIN' : f.kind === 'collation' ? 'COLLATION' : 'TYPE';
      n.sql.push(`ALTER ${kw} ${f.meta.sql} RENAME TO ${tmp}`);
      const k = node('cleanup', f);
      k.sql.push(`DROP ${kw} ${quoteIdent(splitName(s(f.meta.sql)).schema)}.${tmp}`);
      cleanupNode.set(id, k);
      continue;
    }
    const r = rule.drop(f, ctx);
    const rt = f.kind === 'table' ? recreatedTables.find((x) => x.schema === f.meta.schema && x.name === f.meta.name) : undefined;
    if (rt) n.sql.push(...emptyGuard(f, rt.reason));
    n.sql.push(...r.sql);
    // a recreated column or table loses its data; a recreated view does not
    n.hazards.push(...r.hazards.filter((h) => !(R.has(id) && h.kind === 'deletes_data' && !['table', 'column'].includes(f.kind))));
  }

  // creates (folding children into their parent's CREATE where that is how PostgreSQL wants them)
  const foldInto = (f: Fact): string | undefined => {
    if (!f.parent || !created.has(f.parent)) return undefined;
    if (f.kind === 'column' || f.kind === 'inherit' || f.kind === 'partition') return S.get(f.parent)!.kind === 'table' ? f.parent : undefined;
    if (f.kind === 'default') return foldInto(S.get(f.parent)!) ?? f.parent;
    return undefined;
  };
  const createIds = [...created].sort(cmp);
  for (const id of createIds) {
    const f = S.get(id)!;
    const host = foldInto(f);
    if (host) continue;
    createNode.set(id, node('create', f));
  }
  for (const id of createIds) {
    const f = S.get(id)!;
    const host = foldInto(f);
    if (host) {
      let h = host;
      for (let hf = S.get(h)!; foldInto(hf); hf = S.get(h)!) h = foldInto(hf)!;
      const n = createNode.get(h)!;
      n.folded.push(f);
      createNode.set(id, n);
    }
  }
  for (const n of new Set(createNode.values())) {
    const f = n.fact;
    const rule = RULES[f.kind];
    if (!rule) continue;
    if (f.kind === 'table') n.sql.push(...tableCreate(f, ctx, n.folded));
    else {
      const r = rule.create(f, ctx);
      n.sql.push(...r.sql);
      n.hazards.push(...r.hazards);
    }
  }

  // in-place alters and retypes
  for (const [id, r] of inPlace) {
    if (R.has(id)) continue;
    if (!r.sql.length && !retype.has(id)) continue;
    const n = node('alter', S.get(id)!);
    n.sql.push(...r.sql);
    n.hazards.push(...r.hazards);
    alterNode.set(id, n);
  }
  for (const id of retype) {
    const f = S.get(id)!;
    const o = T.get(id)!;
    const n = alterNode.get(id) ?? node('alter', f);
    alterNode.set(id, n);
    const viaText = [...o.deps, ...f.deps].some((d) => TYPE_LIKE.has((T.get(d) ?? S.get(d))?.kind ?? '') || (T.get(d) ?? S.get(d))?.kind === 'extension');
    const c = s(f.meta.sql);
    const typ = `${s(f.attrs.type)}${f.attrs.collation ? ` COLLATE ${s(f.attrs.collation)}` : ''}`;
    const stmt = `ALTER TABLE ${f.meta.table} ALTER COLUMN ${c} TYPE ${typ} USING ${c}${viaText ? '::text' : ''}::${s(f.attrs.type)}`;
    // the type change goes after DROP IDENTITY / DROP EXPRESSION and before NOT NULL / identity changes
    const idx = n.sql.findIndex((x) => !/ (DROP IDENTITY|DROP EXPRESSION)$/.test(x));
    n.sql.splice(idx < 0 ? n.sql.length : idx, 0, stmt);
    if (!inPlace.get(id)?.hazards.length) n.hazards.push(...typeChangeHazards(s(f.meta.table), s(f.meta.name), s(o.attrs.type), s(f.attrs.type)).filter((h) => h.kind !== 'deletes_data'));
  }

  // ------------------------------------------------ edges
  const succ = new Map<Node, Set<Node>>();
  const indeg = new Map<Node, number>();
  const all = [...new Set([...nodes.values()])];
  for (const n of all) {
    succ.set(n, new Set());
    indeg.set(n, 0);
  }
  const edge = (a: Node | undefined, b: Node | undefined) => {
    if (!a || !b || a === b) return;
    const l = succ.get(a)!;
    if (l.has(b)) return;
    l.add(b);
    indeg.set(b, indeg.get(b)! + 1);
  };
  for (const id of dropped) edge(dropNode.get(id), createNode.get(id));
  for (const [p, c] of detachEdges) edge(dropNode.get(p), alterNode.get(c));
  for (const [id, k] of cleanupNode) {
    edge(createNode.get(id), k);
    for (const y of oldDependents.get(id) ?? []) {
      edge(alterNode.get(y), k);
      edge(dropNode.get(y), k);
      edge(cleanupNode.get(y), k);
    }
  }
  // old graph: dependents go first
  for (const y of target.facts) {
    const dy = dropNode.get(y.id);
    const ay = alterNode.get(y.id);
    for (const x of y.deps) {
      if (dy) {
        edge(dy, dropNode.get(x));
        edge(dy, alterNode.get(x));
      }
      if (ay && !renameDance.has(x)) edge(ay, dropNode.get(x)); // a renamed type lives on until its cleanup
    }
  }
  // new graph: dependencies go first
  for (const y of source.facts) {
    const cy = createNode.get(y.id);
    const ay = alterNode.get(y.id);
    for (const x of y.deps) {
      for (const t of [cy, ay]) {
        edge(createNode.get(x), t);
        edge(alterNode.get(x), t);
      }
    }
  }
  // a child's own column settings come after its parent's (SET / DROP DEFAULT and NOT NULL recurse to children)
  for (const f of source.facts) {
    if (f.kind !== 'child_column') continue;
    const pt = s(f.meta.parentTable);
    const c = s(f.meta.column);
    for (const n of [createNode.get(f.id), alterNode.get(f.id)]) {
      if (!n || n.fact.id !== f.id) continue;
      for (const x of [`default:${pt}.${c}`, `column:${pt}.${c}`, `child_column:${pt}.${c}`]) {
        edge(dropNode.get(x), n);
        edge(alterNode.get(x), n);
        edge(createNode.get(x), n);
      }
    }
  }

  // names: a drop frees a name a create may need
  const dropByName = new Map<string, Node[]>();
  for (const id of dropped) {
    const k = nameKey(T.get(id)!);
    if (k) (dropByName.get(k) ?? dropByName.set(k, []).get(k)!).push(dropNode.get(id)!);
  }
  for (const id of created) {
    const k = nameKey(S.get(id)!);
    if (!k) continue;
    for (const d of dropByName.get(k) ?? []) edge(d, createNode.get(id));
  }

  // ------------------------------------------------ deterministic topological sort
  const less = (a: Node, b: Node) => (OP_RANK[a.op] !== OP_RANK[b.op] ? OP_RANK[a.op] < OP_RANK[b.op] : a.key < b.key);
  const heap = new Heap<Node>(less);
  for (const n of all) if (indeg.get(n) === 0) heap.push(n);
  const order: Node[] = [];
  const done = new Set<Node>();
  while (order.length < all.length) {
    let n = heap.pop();
    if (!n) {
      // a cycle: break it at the smallest remaining node
      n = all.filter((x) => !done.has(x)).sort((a, b) => indeg.get(a)! - indeg.get(b)! || (less(a, b) ? -1 : 1))[0]!;
    }
    if (done.has(n)) continue;
    done.add(n);
    order.push(n);
    for (const m of succ.get(n)!) {
      const d = indeg.get(m)! - 1;
      indeg.set(m, d);
      if (d === 0 && !done.has(m)) heap.push(m);
    }
  }

  // ------------------------------------------------ errors: roles that do not exist on the target
  const roles = new Set(target.roles);
  for (const f of [...added, ...changed.map((c) => c[1]), ...[...R].map((id) => S.get(id)!)]) {
    if (f.kind === 'acl' && f.meta.grantee !== 'PUBLIC' && !roles.has(s(f.meta.grantee))) {
      errors.push(`grant on ${f.meta.objSql} to role ${quoteIdent(s(f.meta.grantee))}, which does not exist on the target (roles are never created by a migration)`);
    }
    if (f.kind === 'default_acl') {
      for (const r of [s(f.meta.role), s(f.meta.grantee)]) if (r !== 'PUBLIC' && !roles.has(r)) errors.push(`default privileges for role ${quoteIdent(s(f.meta.role))} on ${s(f.meta.objType).toLowerCase()} name role ${quoteIdent(r)}, which does not exist on the target (roles are never created by a migration)`);
    }
    if (f.kind === 'policy') {
      for (const r of f.attrs.roles as string[]) if (r !== 'PUBLIC' && !roles.has(r)) errors.push(`policy ${quoteIdent(s(f.meta.name))} on ${f.meta.table} names role ${quoteIdent(r)}, which does not exist on the target`);
    }
  }

  // ------------------------------------------------ errors: objects not handled are never created or dropped around
  const what = (f: Fact) => `${f.kind.replace('_', ' ')} ${disp(f.id.slice(f.id.indexOf(':') + 1))}`;
  for (const u of source.unsupported) {
    const t = unsT.get(u.kind + '\u0000' + u.identity);
    if (t && t.def === u.def) continue;
    for (const d of u.dependents ?? []) {
      const f = S.get(d);
      if (!f || !created.has(d)) continue;
      errors.push(`${what(f)} depends on ${u.kind} ${u.identity}, which is not handled and ${t ? 'differs on the target' : 'does not exist on the target'}: the plan cannot create ${what(f)}`);
    }
  }
  for (const u of target.unsupported) {
    for (const d of u.dependsOn ?? []) {
      const f = T.get(d);
      if (!f || !(dropped.has(d) || retype.has(d))) continue;
      errors.push(`${u.kind} ${u.identity} on the target depends on ${what(f)}, which the plan would ${dropped.has(d) ? 'drop' : 'change the type of'}; ${u.kind} objects are not handled, so the plan cannot go around it`);
    }
  }

  // ------------------------------------------------ errors: what the target's PostgreSQL version cannot hold
  errors.push(...targetVersionErrors([...added, ...changed.map((c) => c[1]), ...[...R].map((id) => S.get(id)!)], changed, target));

  // ------------------------------------------------ output
  const statements: SchemaStatement[] = [];
  const changes = new Map<string, SchemaChange>();
  for (const n of order) {
    if (!n.sql.length) continue;
    n.sql.forEach((sql, i) => statements.push({ sql, hazards: i === 0 ? n.hazards : [] }));
    const f = n.fact;
    const action: SchemaChange['action'] = R.has(f.id) || retype.has(f.id) || inPlace.has(f.id) ? 'alter' : n.op === 'drop' ? 'drop' : n.op === 'create' ? 'create' : 'alter';
    let c = changes.get(f.id);
    if (!c) changes.set(f.id, (c = { kind: f.kind, identity: f.id.slice(f.id.indexOf(':') + 1), action, hazards: [], sql: [], ...(recreatedWhy.has(f.id) ? { reason: recreatedWhy.get(f.id) } : {}) }));
    c.sql.push(...n.sql);
    c.hazards.push(...n.hazards);
  }
  if (statements.length) statements.unshift({ sql: 'SET LOCAL check_function_bodies = off', hazards: [] });
  return {
    sourceFingerprint: fingerprintSchema(sourceModel),
    targetFingerprint: fingerprintSchema(targetModel),
    changes: [...changes.values()],
    statements,
    notHandled,
    errors: [...new Set(errors)],
    recreatedTables,
  };
}
