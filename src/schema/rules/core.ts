/**
 * What every rule module shares: the shape of a rule, the context it renders in, and small rendering helpers.
 * A rule is pure: facts in, SQL statements and hazards out.
 */
import { quoteIdent } from '../../pg/quote.js';
import type { Fact } from '../model.js';

export interface Hazard {
  kind: 'deletes_data' | 'rewrites_table' | 'exclusive_lock' | 'builds_index' | 'not_transactional';
  message: string;
  /** Unquoted relation name; `schema` holds its schema. */
  table?: string;
  column?: string;
  schema?: string;
  rows?: number;
}

/** The two models a rule renders between. */
export interface Ctx {
  source: Map<string, Fact>;
  target: Map<string, Fact>;
  /** children of a fact in the source model */
  childrenOf: Map<string, Fact[]>;
}

export interface Rendered { sql: string[]; hazards: Hazard[] }
/** `retype`: the change is (or includes) a column type conversion, which drags the objects blocking it along. */
export interface AlterResult extends Rendered { retype?: boolean }

export interface Rule {
  /** `folded`: the children created within this statement (a table's columns, defaults, partition bound…). */
  create(f: Fact, ctx: Ctx, folded: readonly Fact[]): Rendered;
  drop(f: Fact, ctx: Ctx): Rendered;
  /** In-place change, or null when the object must be dropped and recreated. Absent: every change recreates. */
  alter?(o: Fact, n: Fact, ctx: Ctx): AlterResult | null;
  /** Plan errors a fact the plan creates or changes raises on this target (roles it names that do not exist). */
  errors?(f: Fact, targetRoles: ReadonlySet<string>): string[];
}

/** The context for two lists of facts (the source's and the target's). */
export function ruleContext(source: readonly Fact[], target: readonly Fact[]): Ctx {
  const childrenOf = new Map<string, Fact[]>();
  for (const f of source) if (f.parent) (childrenOf.get(f.parent) ?? childrenOf.set(f.parent, []).get(f.parent)!).push(f);
  return { source: new Map(source.map((f) => [f.id, f])), target: new Map(target.map((f) => [f.id, f])), childrenOf };
}

export const s = (v: unknown) => String(v);
export const none = (sql: string[]): Rendered => ({ sql, hazards: [] });

export function splitName(sql: string): { schema: string; name: string } {
  // sql is `"schema"."name"` as produced by qualify()
  const m = /^"((?:[^"]|"")*)"\."((?:[^"]|"")*)"/.exec(sql);
  if (!m) return { schema: '', name: sql };
  return { schema: m[1]!.replace(/""/g, '"'), name: m[2]!.replace(/""/g, '"') };
}

/** `"s"."t"` / `"s"."t"."c"` → s.t / s.t.c for messages. */
export function disp(sql: string): string {
  const parts: string[] = [];
  const re = /"((?:[^"]|"")*)"/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(sql))) parts.push(m[1]!.replace(/""/g, '"'));
  return parts.length ? parts.join('.') : sql;
}

export function tableHazard(kind: Hazard['kind'], message: string, tableSql: string, column?: string): Hazard {
  const { schema, name } = splitName(tableSql);
  const h: Hazard = { kind, message, schema, table: name };
  if (column !== undefined) h.column = column;
  return h;
}

export function grantee(g: string): string {
  return g === 'PUBLIC' ? 'PUBLIC' : quoteIdent(g);
}

export function optionKeys(opts: string[]): string[] {
  return opts.map((o) => o.split('=')[0]!);
}

/** A new type or routine is usable by PUBLIC unless the source revoked that: say so explicitly. */
export function revokeDefaultPublic(f: Fact, ctx: Ctx, objType: string): string[] {
  const has = ctx.source.has(`acl:${f.id}:PUBLIC`);
  return has ? [] : [`REVOKE ALL ON ${objType} ${f.meta.fnSql ?? f.meta.sql} FROM PUBLIC`];
}

export const TRIGGER_ENABLE: Record<string, string> = { O: 'ENABLE', D: 'DISABLE', R: 'ENABLE REPLICA', A: 'ENABLE ALWAYS' };
