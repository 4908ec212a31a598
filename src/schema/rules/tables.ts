/**
 * Tables and what hangs on a table as a whole: partitioning and inheritance links, replica identity, CLUSTER ON,
 * and constraints (PK, UNIQUE, FK, CHECK, EXCLUDE).
 */
import { quoteIdent, quoteLiteral } from '../../pg/quote.js';
import type { Fact } from '../model.js';
import { columnDef, columnSettings } from './columns.js';
import { disp, none, optionKeys, s, splitName, tableHazard, type Hazard, type Rule } from './core.js';

/** Why a table with rows is not dropped (the plan's guard and migrate's plan error say the same). */
export function tableHasRowsMessage(tableSql: string, reason: string): string {
  return `table ${disp(tableSql)} has rows and would have to be dropped and recreated: ${reason}; a migration never drops a table with rows that exists on both sides (move the rows into a new table by hand, or empty it first, then migrate again)`;
}

/** Locks the table, then stops the plan (its transaction rolls back) if the table still has any row. */
export function emptyGuard(f: Fact, reason: string): string[] {
  const t = s(f.meta.sql);
  const body = `BEGIN IF EXISTS (SELECT FROM ${t}) THEN RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = ${quoteLiteral(tableHasRowsMessage(t, reason))}; END IF; END`;
  return [`LOCK TABLE ${t} IN ACCESS EXCLUSIVE MODE`, `DO ${quoteLiteral(body)}`];
}

/** CREATE TABLE with the children folded into it: columns (and their defaults), partition bound, parents. */
function tableCreate(f: Fact, kids: readonly Fact[], folded: readonly Fact[], childrenOf: Map<string, Fact[]>): string[] {
  const a = f.attrs;
  const part = kids.find((k) => k.kind === 'partition' && folded.includes(k));
  const inherits = kids.filter((k) => k.kind === 'inherit' && folded.includes(k)).sort((x, y) => Number(x.meta.seq) - Number(y.meta.seq));
  const cols = kids.filter((k) => k.kind === 'column' && folded.includes(k)).sort((x, y) => Number(x.meta.pos) - Number(y.meta.pos));
  const defs = new Map<string, Fact>();
  for (const c of cols) for (const d of childrenOf.get(c.id) ?? []) if (d.kind === 'default' && folded.includes(d)) defs.set(c.id, d);
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

export const table: Rule = {
  create: (f, ctx, folded) => none(tableCreate(f, ctx.childrenOf.get(f.id) ?? [], folded, ctx.childrenOf)),
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
};

export const inherit: Rule = {
  create: (f) => none([`ALTER TABLE ${f.meta.child} INHERIT ${f.meta.parent}`]),
  drop: (f) => none([`ALTER TABLE ${f.meta.child} NO INHERIT ${f.meta.parent}`]),
};

export const partition: Rule = {
  create: (f) => ({ sql: [`ALTER TABLE ${f.meta.parent} ATTACH PARTITION ${f.meta.child} ${s(f.attrs.bound)}`], hazards: [tableHazard('exclusive_lock', `ATTACH PARTITION scans ${disp(s(f.meta.child))} to validate the bound`, s(f.meta.child))] }),
  drop: (f) => none([`ALTER TABLE ${f.meta.parent} DETACH PARTITION ${f.meta.child}`]),
};

const replicaIdentitySql = (f: Fact) =>
  `ALTER TABLE ${f.meta.table} REPLICA IDENTITY ${f.attrs.identity === 'f' ? 'FULL' : f.attrs.identity === 'n' ? 'NOTHING' : `USING INDEX ${quoteIdent(s(f.attrs.index))}`}`;
export const replicaIdentity: Rule = {
  create: (f) => none([replicaIdentitySql(f)]),
  drop: (f) => none([`ALTER TABLE ${f.meta.table} REPLICA IDENTITY DEFAULT`]),
  alter: (_o, n) => ({ sql: [replicaIdentitySql(n)], hazards: [] }),
};

export const cluster: Rule = {
  create: (f) => none([`ALTER TABLE ${f.meta.table} CLUSTER ON ${quoteIdent(s(f.attrs.index))}`]),
  drop: (f) => none([`ALTER TABLE ${f.meta.table} SET WITHOUT CLUSTER`]),
  alter: (_o, n) => ({ sql: [`ALTER TABLE ${n.meta.table} CLUSTER ON ${quoteIdent(s(n.attrs.index))}`], hazards: [] }),
};

export const constraint: Rule = {
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
};

/** The index a PRIMARY KEY, UNIQUE or EXCLUDE constraint builds is named like the constraint, in the table's schema. */
export function constraintIndexName(f: Fact): string {
  return `${quoteIdent(splitName(s(f.meta.table)).schema)}.${quoteIdent(s(f.meta.name))}`;
}
