/**
 * Columns: a table's own columns (type, NOT NULL, identity, generated, collation and their own settings), their
 * defaults, and what a partition or inheritance child sets for itself on a column it inherits.
 */
import type { Fact } from '../model.js';
import { disp, none, optionKeys, s, tableHazard, type Ctx, type Hazard, type Rule } from './core.js';

/** A column as it is written in CREATE TABLE / ADD COLUMN, with its default. */
export function columnDef(col: Fact, def: Fact | undefined): string {
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
export function columnSettings(n: Fact, o: Fact | undefined, retyped = false): string[] {
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
/** What converting a column from type `from` to `to` risks (narrowing loses values; most conversions rewrite). */
export function typeChangeHazards(tableSql: string, column: string, from: string, to: string): Hazard[] {
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

/** ALTER COLUMN … TYPE to the source's type (`viaText`: through text, for a type recreated or from an extension). */
export function retypeSql(f: Fact, viaText: boolean): string {
  const c = s(f.meta.sql);
  const typ = `${s(f.attrs.type)}${f.attrs.collation ? ` COLLATE ${s(f.attrs.collation)}` : ''}`;
  return `ALTER TABLE ${f.meta.table} ALTER COLUMN ${c} TYPE ${typ} USING ${c}${viaText ? '::text' : ''}::${s(f.attrs.type)}`;
}

export const column: Rule = {
  create: (f, ctx) => {
    const def = (ctx.childrenOf.get(f.id) ?? []).find((d) => d.kind === 'default');
    const hazards: Hazard[] = [];
    if (f.attrs.generated || f.attrs.identity) hazards.push(tableHazard('rewrites_table', `adds ${f.attrs.generated ? 'generated' : 'identity'} column ${s(f.meta.name)} (table rewrite)`, s(f.meta.table), s(f.meta.name)));
    return { sql: [`ALTER TABLE ${f.meta.table} ADD COLUMN ${columnDef(f, def)}`, ...columnSettings(f, undefined)], hazards };
  },
  drop: (f) => ({ sql: [`ALTER TABLE ${f.meta.table} DROP COLUMN ${f.meta.sql}`], hazards: f.attrs.generated ? [] : [tableHazard('deletes_data', `drops column ${disp(`${s(f.meta.table)}.${s(f.meta.sql)}`)}`, s(f.meta.table), s(f.meta.name))] }),
  // the type change itself (ALTER COLUMN … TYPE) is rendered by retypeSql once the plan knows what it must recreate around it
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
};

export const columnDefault: Rule = {
  create: (f) => none([`ALTER TABLE ${f.meta.table} ALTER COLUMN ${f.meta.column} SET DEFAULT ${s(f.attrs.expr)}`]),
  drop: (f) => none([`ALTER TABLE ${f.meta.table} ALTER COLUMN ${f.meta.column} DROP DEFAULT`]),
  alter: (o, n) => (o.attrs.expr === n.attrs.expr ? null : { sql: [`ALTER TABLE ${n.meta.table} ALTER COLUMN ${n.meta.column} SET DEFAULT ${s(n.attrs.expr)}`], hazards: [] }),
};

export const childColumn: Rule = {
  create: (f, ctx) => none(childColumnSql(f, undefined, ctx)),
  // the child follows its parent again (nothing to do when it is no longer a child: its columns are its own then)
  drop: (f, ctx) => none(stillChild(f, ctx) ? childColumnSql({ ...f, attrs: {} }, f, ctx) : []),
  alter: (o, n, ctx) => ({ sql: childColumnSql(n, o, ctx), hazards: [] }),
};
