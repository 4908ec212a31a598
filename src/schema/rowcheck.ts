/**
 * Row checks for a schema plan: which statements would fail on rows that already exist in the target.
 *
 * A schema plan can be valid DDL and still fail half-way through its transaction because of the target's rows:
 * a new NOT NULL column without a default on a populated table, SET NOT NULL over NULLs, an enum value removed
 * while rows use it, a new foreign key / CHECK / UNIQUE / PRIMARY KEY / unique index the rows violate. This module
 * finds those at plan time and counts the rows, from the facts of both models and the plan's changes.
 *
 * Every query is a read-only count (never a row is loaded). Nothing is SET: each count waits for locks at most the
 * caller's lock_timeout. Inside a transaction each batch of counts runs under a savepoint, so a check whose
 * expression cannot be evaluated on the target (reported in `unchecked`) never aborts the caller's transaction.
 */
import type pg from 'pg';
import { MigrateError } from '../errors.js';
import { quoteIdent, quoteLiteral } from '../pg/quote.js';
import type { Fact, SchemaModel } from './model.js';
import type { SchemaChange, SchemaPlan } from './plan.js';

export type RowConflictKind = 'not_null' | 'enum_value' | 'foreign_key' | 'check' | 'unique';

export interface RowConflict {
  kind: RowConflictKind;
  /** Display name "schema.name". */
  table: string;
  schema: string;
  name: string;
  /** The column concerned (for a constraint: set when it has exactly one column). */
  column?: string;
  /** Columns of the constraint / index (foreign_key, unique). */
  columns?: string[];
  /** Constraint or unique index name (foreign_key, check, unique). */
  constraint?: string;
  /** foreign_key: the referenced table ("schema.name"). */
  references?: string;
  /** enum_value: the enum ("schema.name") and the labels it loses, if any. */
  enum?: string;
  values?: string[];
  /** Rows that make the statement fail (for unique: rows beyond the first of each group of equal values). */
  rows: number;
  /** One line, with the number. */
  message: string;
  /** What the user can do about it. */
  hint: string;
}

/** A check that could not be made (the plan may still fail there). */
export interface RowCheckSkipped {
  kind: RowConflictKind;
  table: string;
  schema: string;
  name: string;
  column?: string;
  constraint?: string;
  reason: string;
}

export interface RowCheckResult {
  conflicts: RowConflict[];
  unchecked: RowCheckSkipped[];
}

export interface RowCheckOptions {
  /** Tables the caller empties before the schema step (a full migration reloads them): they have no rows. */
  emptied?: (schema: string, table: string) => boolean;
}

const TOGETHER = 'or migrate the data together (without --schema-only)';
const TYPE_LIKE = new Set(['enum', 'domain', 'composite', 'range', 'collation', 'extension']);
const BATCH = 16;

// ---------------------------------------------------------------- a tokenizer for server-rendered definitions

interface Tok {
  /** word: unquoted name or keyword; ident: "quoted" name; str: string literal; num; punct: ( ) , . [ ] ; op: anything else */
  t: 'word' | 'ident' | 'str' | 'num' | 'punct' | 'op';
  /** word: as written; ident: unescaped name */
  v: string;
  s: number;
  e: number;
}

function tokenize(text: string): Tok[] | undefined {
  const out: Tok[] = [];
  let i = 0;
  const n = text.length;
  const isWordStart = (ch: string) => /[A-Za-z_\u0080-\uffff]/.test(ch);
  const isWord = (ch: string) => /[A-Za-z0-9_$\u0080-\uffff]/.test(ch);
  while (i < n) {
    const ch = text[i]!;
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    const s = i;
    if (ch === '"') {
      let v = '';
      i++;
      for (;;) {
        if (i >= n) return undefined;
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            v += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        v += text[i++];
      }
      out.push({ t: 'ident', v, s, e: i });
      continue;
    }
    if (ch === "'" || ((ch === 'E' || ch === 'e') && text[i + 1] === "'")) {
      const esc = ch !== "'";
      i += esc ? 2 : 1;
      for (;;) {
        if (i >= n) return undefined;
        if (esc && text[i] === '\\') {
          i += 2;
          continue;
        }
        if (text[i] === "'") {
          if (text[i + 1] === "'") {
            i += 2;
            continue;
          }
          i++;
          break;
        }
        i++;
      }
      out.push({ t: 'str', v: text.slice(s, i), s, e: i });
      continue;
    }
    if (ch === '$') {
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(text.slice(i));
      if (m) {
        const end = text.indexOf(m[0], i + m[0].length);
        if (end < 0) return undefined;
        i = end + m[0].length;
        out.push({ t: 'str', v: text.slice(s, i), s, e: i });
        continue;
      }
    }
    if (isWordStart(ch)) {
      while (i < n && isWord(text[i]!)) i++;
      out.push({ t: 'word', v: text.slice(s, i), s, e: i });
      continue;
    }
    if (/[0-9]/.test(ch) || (ch === '.' && /[0-9]/.test(text[i + 1] ?? ''))) {
      const m = /^(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/.exec(text.slice(i))!;
      i += m[0].length;
      out.push({ t: 'num', v: m[0], s, e: i });
      continue;
    }
    if ('(),.[];'.includes(ch)) {
      i++;
      out.push({ t: 'punct', v: ch, s, e: i });
      continue;
    }
    while (i < n && !/[\sA-Za-z0-9_"'(),.[\];$\u0080-\uffff]/.test(text[i]!)) i++;
    if (i === s) i++;
    out.push({ t: 'op', v: text.slice(s, i), s, e: i });
  }
  return out;
}

const isKw = (t: Tok | undefined, kw: string) => t !== undefined && t.t === 'word' && t.v.toUpperCase() === kw;
const isP = (t: Tok | undefined, p: string) => t !== undefined && t.t === 'punct' && t.v === p;
const nameOf = (t: Tok | undefined): string | undefined => (t && (t.t === 'ident' || t.t === 'word') ? t.v : undefined);

/** Index of the ')' closing the '(' at toks[i], or -1. */
function closing(toks: Tok[], i: number): number {
  let depth = 0;
  for (let j = i; j < toks.length; j++) {
    const t = toks[j]!;
    if (t.t !== 'punct') continue;
    if (t.v === '(' || t.v === '[') depth++;
    else if (t.v === ')' || t.v === ']') {
      depth--;
      if (depth === 0) return t.v === ')' ? j : -1;
    }
  }
  return -1;
}

/** `( name, name, ... )` at toks[i]: the names and the index after ')'. */
function nameList(toks: Tok[], i: number): { names: string[]; next: number } | undefined {
  if (!isP(toks[i], '(')) return undefined;
  const names: string[] = [];
  let j = i + 1;
  for (;;) {
    const n = nameOf(toks[j]);
    if (n === undefined) return undefined;
    names.push(n);
    j++;
    if (isP(toks[j], ',')) {
      j++;
      continue;
    }
    if (isP(toks[j], ')')) return { names, next: j + 1 };
    return undefined;
  }
}

/** name or schema.name at toks[i]. */
function qualName(toks: Tok[], i: number): { parts: string[]; next: number } | undefined {
  const parts: string[] = [];
  let j = i;
  for (;;) {
    const n = nameOf(toks[j]);
    if (n === undefined) return undefined;
    parts.push(n);
    j++;
    if (isP(toks[j], '.')) {
      j++;
      continue;
    }
    return { parts, next: j };
  }
}

function restHas(toks: Tok[], from: number, ...kws: string[]): boolean {
  for (let j = from; j + kws.length <= toks.length; j++) if (kws.every((k, x) => isKw(toks[j + x], k))) return true;
  return false;
}

interface FkDef { cols: string[]; ref: string[]; refCols: string[]; matchFull: boolean; validated: boolean }
/** pg_get_constraintdef of a foreign key: `FOREIGN KEY (a, b) REFERENCES s.t(x, y) [MATCH FULL] [ON ...] [NOT VALID]`. */
export function parseForeignKey(def: string): FkDef | undefined {
  const toks = tokenize(def);
  if (!toks || !isKw(toks[0], 'FOREIGN') || !isKw(toks[1], 'KEY')) return undefined;
  const cols = nameList(toks, 2);
  if (!cols || !isKw(toks[cols.next], 'REFERENCES')) return undefined;
  const ref = qualName(toks, cols.next + 1);
  if (!ref || ref.parts.length > 2) return undefined;
  const refCols = nameList(toks, ref.next);
  if (!refCols || refCols.names.length !== cols.names.length) return undefined;
  if (restHas(toks, refCols.next, 'MATCH', 'PARTIAL')) return undefined;
  const validated = !restHas(toks, refCols.next, 'NOT', 'VALID') && !restHas(toks, refCols.next, 'NOT', 'ENFORCED');
  return { cols: cols.names, ref: ref.parts, refCols: refCols.names, matchFull: restHas(toks, refCols.next, 'MATCH', 'FULL'), validated };
}

interface UniqueDef { cols: string[]; nullsNotDistinct: boolean }
/** `UNIQUE [NULLS NOT DISTINCT] (a, b) [INCLUDE (...)] ...` or `PRIMARY KEY (a) ...`. */
export function parseUnique(def: string): UniqueDef | undefined {
  const toks = tokenize(def);
  if (!toks) return undefined;
  let i: number;
  let nnd = false;
  if (isKw(toks[0], 'PRIMARY') && isKw(toks[1], 'KEY')) i = 2;
  else if (isKw(toks[0], 'UNIQUE')) {
    i = 1;
    if (isKw(toks[1], 'NULLS') && isKw(toks[2], 'NOT') && isKw(toks[3], 'DISTINCT')) {
      nnd = true;
      i = 4;
    }
  } else return undefined;
  const cols = nameList(toks, i);
  if (!cols) return undefined; // WITHOUT OVERLAPS and friends
  return { cols: cols.names, nullsNotDistinct: nnd };
}

interface CheckDef { expr: string; noInherit: boolean; validated: boolean }
/** `CHECK (expr) [NO INHERIT] [NOT VALID]`. */
export function parseCheck(def: string): CheckDef | undefined {
  const toks = tokenize(def);
  if (!toks || !isKw(toks[0], 'CHECK') || !isP(toks[1], '(')) return undefined;
  const end = closing(toks, 1);
  if (end < 0) return undefined;
  const rest = toks.slice(end + 1);
  for (let j = 0; j < rest.length; j++) {
    const ok = (isKw(rest[j], 'NO') && isKw(rest[j + 1], 'INHERIT')) || (isKw(rest[j], 'NOT') && (isKw(rest[j + 1], 'VALID') || isKw(rest[j + 1], 'ENFORCED')));
    if (!ok) return undefined;
    j++;
  }
  return {
    expr: def.slice(toks[1]!.e, toks[end]!.s),
    noInherit: restHas(toks, end + 1, 'NO', 'INHERIT'),
    validated: !restHas(toks, end + 1, 'NOT', 'VALID') && !restHas(toks, end + 1, 'NOT', 'ENFORCED'),
  };
}

interface UniqueIndexDef { keys: string[]; where?: string; nullsNotDistinct: boolean }
/**
 * pg_get_indexdef of a unique index: `CREATE UNIQUE INDEX n ON [ONLY] s.t USING am (key [COLLATE c] [opclass] [DESC]
 * [NULLS LAST], ...) [INCLUDE (...)] [NULLS NOT DISTINCT] [WITH (...)] [TABLESPACE x] [WHERE pred]`.
 * Keys are returned as SQL expressions (a column name, a function call or a parenthesized expression, with its COLLATE).
 */
export function parseUniqueIndex(def: string): UniqueIndexDef | undefined {
  const toks = tokenize(def);
  if (!toks || !isKw(toks[0], 'CREATE') || !isKw(toks[1], 'UNIQUE') || !isKw(toks[2], 'INDEX')) return undefined;
  let i = 3;
  while (i < toks.length && !isKw(toks[i], 'USING')) i++;
  if (!isKw(toks[i], 'USING') || !isKw(toks[i + 1], 'BTREE') || !isP(toks[i + 2], '(')) return undefined;
  const open = i + 2;
  const close = closing(toks, open);
  if (close < 0) return undefined;
  const keys: string[] = [];
  let j = open + 1;
  while (j < close) {
    const start = toks[j]!.s;
    // the key expression
    if (isP(toks[j], '(')) {
      const c = closing(toks, j);
      if (c < 0 || c > close) return undefined;
      j = c + 1;
    } else {
      const q = qualName(toks, j);
      if (!q) return undefined;
      j = q.next;
      if (isP(toks[j], '(')) {
        const c = closing(toks, j);
        if (c < 0 || c > close) return undefined;
        j = c + 1;
      } else if (q.parts.length !== 1) return undefined;
    }
    if (isKw(toks[j], 'COLLATE')) {
      const q = qualName(toks, j + 1);
      if (!q) return undefined;
      j = q.next;
    }
    keys.push(def.slice(start, toks[j - 1]!.e));
    // opclass [(options)], ordering: do not change what is equal
    if (nameOf(toks[j]) !== undefined && !isKw(toks[j], 'ASC') && !isKw(toks[j], 'DESC') && !isKw(toks[j], 'NULLS')) {
      const q = qualName(toks, j);
      if (!q) return undefined;
      j = q.next;
      if (isP(toks[j], '(')) {
        const c = closing(toks, j);
        if (c < 0 || c > close) return undefined;
        j = c + 1;
      }
    }
    if (isKw(toks[j], 'ASC') || isKw(toks[j], 'DESC')) j++;
    if (isKw(toks[j], 'NULLS') && (isKw(toks[j + 1], 'FIRST') || isKw(toks[j + 1], 'LAST'))) j += 2;
    if (isP(toks[j], ',')) j++;
    else if (j !== close) return undefined;
  }
  let k = close + 1;
  let nnd = false;
  let where: string | undefined;
  while (k < toks.length) {
    if (isKw(toks[k], 'INCLUDE') || isKw(toks[k], 'WITH')) {
      const c = closing(toks, k + 1);
      if (!isP(toks[k + 1], '(') || c < 0) return undefined;
      k = c + 1;
    } else if (isKw(toks[k], 'NULLS') && isKw(toks[k + 1], 'NOT') && isKw(toks[k + 2], 'DISTINCT')) {
      nnd = true;
      k += 3;
    } else if (isKw(toks[k], 'TABLESPACE') && nameOf(toks[k + 1]) !== undefined) {
      k += 2;
    } else if (isKw(toks[k], 'WHERE') && k + 1 < toks.length) {
      where = def.slice(toks[k + 1]!.s);
      break;
    } else return undefined;
  }
  return { keys, where, nullsNotDistinct: nnd };
}

// ---------------------------------------------------------------- what the plan does to each fact

type TableState = 'new' | 'recreated' | 'emptied' | 'rows';
type ColFate = 'new' | 'same' | 'retyped';
type Value = { sql: string } | { unknown: string };

interface Probe {
  sql: string;
  done(n: number): void;
  failed(reason: string): void;
}

class Facts {
  readonly S: Map<string, Fact>;
  readonly T: Map<string, Fact>;
  readonly change = new Map<string, SchemaChange>();
  readonly childrenS = new Map<string, Fact[]>();
  private parentsS = new Map<string, string[]>();

  constructor(plan: SchemaPlan, source: SchemaModel, target: SchemaModel, private emptiedFn?: (schema: string, table: string) => boolean) {
    this.S = new Map(source.facts.map((f) => [f.id, f]));
    this.T = new Map(target.facts.map((f) => [f.id, f]));
    // a change names its fact by kind + identity (the id without its prefix)
    const byIdentity = new Map<string, string>();
    for (const f of [...source.facts, ...target.facts]) byIdentity.set(`${f.kind}\u0000${f.id.slice(f.id.indexOf(':') + 1)}`, f.id);
    for (const c of plan.changes) {
      const id = byIdentity.get(`${c.kind}\u0000${c.identity}`);
      if (id !== undefined) this.change.set(id, c);
    }
    for (const f of source.facts) {
      if (f.parent) (this.childrenS.get(f.parent) ?? this.childrenS.set(f.parent, []).get(f.parent)!).push(f);
      if (f.kind === 'inherit') {
        const child = `table:${f.meta.child}`;
        (this.parentsS.get(child) ?? this.parentsS.set(child, []).get(child)!).push(`table:${f.meta.parent}`);
      }
    }
  }

  private sqlOf(id: string): string[] {
    return this.change.get(id)?.sql ?? [];
  }

  tableState(id: string): TableState {
    const t = this.T.get(id);
    if (!t || t.kind !== 'table') return 'new';
    if (this.sqlOf(id).includes(`DROP TABLE ${t.meta.sql}`)) return 'recreated';
    if (this.emptiedFn?.(String(t.meta.schema), String(t.meta.name))) return 'emptied';
    return 'rows';
  }

  colFate(c: Fact): ColFate {
    const o = this.T.get(c.id);
    if (!o) return 'new';
    const sql = this.sqlOf(c.id);
    if (sql.includes(`ALTER TABLE ${o.meta.table} DROP COLUMN ${o.meta.sql}`)) return 'new';
    if (sql.some((x) => x.startsWith(`ALTER TABLE ${c.meta.table} ALTER COLUMN ${c.meta.sql} TYPE `))) return 'retyped';
    return 'same';
  }

  /** A table that is partitioned (its rows live in its partitions; ONLY would see none). */
  partitioned(t: Fact): boolean {
    return t.attrs.partkey !== null && t.attrs.partkey !== undefined;
  }

  /** An inheritance parent (in the source) has a column of that name: its count covers this table's rows. */
  coveredByParent(tableId: string, name: string, seen = new Set<string>()): boolean {
    for (const p of this.parentsS.get(tableId) ?? []) {
      if (seen.has(p)) continue;
      seen.add(p);
      const pt = this.S.get(p);
      if (pt && this.S.has(`column:${pt.meta.sql}.${quoteIdent(name)}`)) return true;
      if (this.coveredByParent(p, name, seen)) return true;
    }
    return false;
  }

  defaultOf(c: Fact): Fact | undefined {
    return (this.childrenS.get(c.id) ?? []).find((d) => d.kind === 'default');
  }

  /** The domains a column's type goes through in model m, outermost first. */
  domainsOf(c: Fact, m: Map<string, Fact>): Fact[] {
    const out: Fact[] = [];
    let cur: Fact | undefined = c;
    for (let guard = 0; cur && guard < 20; guard++) {
      const d: Fact | undefined = cur.deps.map((x) => m.get(x)).find((x) => x?.kind === 'domain' && !out.includes(x));
      if (!d) break;
      out.push(d);
      cur = d;
    }
    return out;
  }

  /** The type-like objects (enum, domain, collation, extension...) a source column needs all exist in the target. */
  typeAvailable(c: Fact): boolean {
    return c.deps.every((d) => {
      if (d === c.parent) return true;
      const f = this.S.get(d);
      if (!f || f.kind === 'column' || f.kind === 'function' || f.kind === 'sequence') return true;
      return this.T.has(d);
    });
  }

  /** SQL for a source column's value right after the schema step, for a row of `alias` (the target table). */
  value(c: Fact, alias: string): Value {
    const fate = this.colFate(c);
    const col = `${alias}.${c.meta.sql}`;
    if (fate === 'same') return { sql: col };
    const coll = c.attrs.collation ? ` COLLATE ${String(c.attrs.collation)}` : '';
    if (!this.typeAvailable(c)) return { unknown: `the new type of column ${c.meta.name} is created by this migration` };
    if (fate === 'retyped') {
      const o = this.T.get(c.id)!;
      const viaText = [...o.deps, ...c.deps].some((d) => TYPE_LIKE.has((this.T.get(d) ?? this.S.get(d))?.kind ?? ''));
      return { sql: `(${col})${viaText ? '::text' : ''}::${String(c.attrs.type)}${coll}` };
    }
    if (c.attrs.generated) return { unknown: `column ${c.meta.name} is a new generated column` };
    if (c.attrs.identity) return { unknown: `column ${c.meta.name} is a new identity column` };
    const def = this.defaultOf(c);
    if (def) {
      if (def.deps.some((d) => d !== c.id)) return { unknown: `the default of the new column ${c.meta.name} depends on other objects` };
      return { sql: `(${String(def.attrs.expr)})::${String(c.attrs.type)}${coll}` };
    }
    if (this.domainsOf(c, this.S).some((d) => d.attrs.default !== null && d.attrs.default !== undefined)) return { unknown: `the new column ${c.meta.name} takes its domain's default` };
    return { sql: `NULL::${String(c.attrs.type)}${coll}` };
  }

  /**
   * FROM item giving the post-schema-step values of `cols` under `alias`: the table itself when nothing changes
   * them, else a projection of the target table.
   */
  rows(table: Fact, only: boolean, cols: Fact[], alias: string): { from: string; col: (c: Fact) => string } | { unknown: string } {
    const rel = `${only ? 'ONLY ' : ''}${table.meta.sql}`;
    const a = quoteIdent(alias);
    if (cols.every((c) => this.colFate(c) === 'same')) return { from: `${rel} AS ${a}`, col: (c) => `${a}.${c.meta.sql}` };
    const inner = quoteIdent(`${alias}_0`);
    const items: string[] = [];
    for (const c of cols) {
      const v = this.value(c, inner);
      if ('unknown' in v) return v;
      items.push(`${v.sql} AS ${c.meta.sql}`);
    }
    return { from: `(SELECT ${items.join(', ')} FROM ${rel} AS ${inner}) AS ${a}`, col: (c) => `${a}.${c.meta.sql}` };
  }
}

/** The last part of `"s"."n"` (or of a plain name). */
function lastName(sql: string): string {
  const toks = tokenize(sql);
  const q = toks ? qualName(toks, 0) : undefined;
  return q && q.next === toks!.length ? q.parts[q.parts.length - 1]! : sql;
}

/** A domain CHECK expression with VALUE replaced by `replacement` (undefined if it cannot be read). */
function substituteValue(expr: string, replacement: string): string | undefined {
  const toks = tokenize(expr);
  if (!toks) return undefined;
  let out = '';
  let at = 0;
  toks.forEach((t, i) => {
    if (!isKw(t, 'VALUE') || isP(toks[i - 1], '.') || isP(toks[i + 1], '(')) return;
    out += expr.slice(at, t.s) + replacement;
    at = t.e;
  });
  return out + expr.slice(at);
}

/** A key expression that is just a column name: that name. */
function plainName(expr: string): string | undefined {
  const toks = tokenize(expr);
  return toks && toks.length === 1 ? nameOf(toks[0]) : undefined;
}

/** `function:"public"."f"(integer)` → `function "public"."f"(integer)`. */
function factName(id: string): string {
  const i = id.indexOf(':');
  return i < 0 ? id : `${id.slice(0, i)} ${id.slice(i + 1)}`;
}

function display(t: Fact): string {
  return `${String(t.meta.schema)}.${String(t.meta.name)}`;
}
const fmt = (n: number) => n.toLocaleString('en-US');
const flat = (s: string) => s.replace(/\s*\n\s*/g, ' ');

// ---------------------------------------------------------------- the checks

/**
 * Rows of the target that would make the plan's statements fail, counted, and the checks that could not be made.
 * `source`/`targetModel` are the models the plan was computed from.
 */
export async function checkPlanRows(
  target: pg.ClientBase,
  plan: SchemaPlan,
  source: SchemaModel,
  targetModel: SchemaModel,
  opts: RowCheckOptions = {},
): Promise<RowCheckResult> {
  const F = new Facts(plan, source, targetModel, opts.emptied);
  const conflicts: RowConflict[] = [];
  const unchecked: RowCheckSkipped[] = [];
  const probes: Probe[] = [];

  const where = (t: Fact) => ({ table: display(t), schema: String(t.meta.schema), name: String(t.meta.name) });
  const skip = (kind: RowConflictKind, t: Fact, reason: string, extra: { column?: string; constraint?: string } = {}) =>
    unchecked.push({ kind, ...where(t), ...extra, reason });
  const probe = (sql: string, kind: RowConflictKind, t: Fact, extra: { column?: string; constraint?: string }, found: (n: number) => RowConflict | undefined) =>
    probes.push({
      sql,
      done: (n) => {
        if (n <= 0) return;
        const c = found(n);
        if (c) conflicts.push(c);
      },
      failed: (reason) => skip(kind, t, `the count failed on the target: ${reason}`, extra),
    });

  // ---- NOT NULL: new columns without a value, SET NOT NULL (also through a NOT NULL domain) over NULLs
  const notNullS = (c: Fact) => c.attrs.notnull === true || F.domainsOf(c, F.S).some((d) => d.attrs.notnull === true);
  const notNullT = (c: Fact) => c.attrs.notnull === true || F.domainsOf(c, F.T).some((d) => d.attrs.notnull === true);
  for (const c of source.facts) {
    if (c.kind !== 'column' || !c.parent) continue;
    const t = F.S.get(c.parent);
    if (!t || t.kind !== 'table' || F.tableState(t.id) !== 'rows' || !notNullS(c)) continue;
    if (F.coveredByParent(t.id, String(c.meta.name))) continue;
    const col = String(c.meta.name);
    const fate = F.colFate(c);
    if (fate === 'new') {
      if (c.attrs.generated || c.attrs.identity) continue;
      const def = F.defaultOf(c);
      if (def && !/^NULL(::[^()]+)?$/i.test(String(def.attrs.expr).trim())) continue;
      if (!def && F.domainsOf(c, F.S).some((d) => d.attrs.default !== null && d.attrs.default !== undefined)) continue;
      probe(`SELECT count(*) FROM ${t.meta.sql}`, 'not_null', t, { column: col }, (n) => ({
        kind: 'not_null', ...where(t), column: col, rows: n,
        message: `${fmt(n)} row(s) of ${display(t)} would have NULL in the new column ${col}, which is NOT NULL without a default`,
        hint: `add a DEFAULT to ${col} in the source, or empty ${display(t)} first, ${TOGETHER}`,
      }));
    } else {
      const o = F.T.get(c.id)!;
      if (notNullT(o)) continue;
      probe(`SELECT count(*) FROM ${t.meta.sql} WHERE ${c.meta.sql} IS NULL`, 'not_null', t, { column: col }, (n) => ({
        kind: 'not_null', ...where(t), column: col, rows: n,
        message: `${fmt(n)} row(s) of ${display(t)} have NULL in ${col}, which becomes NOT NULL`,
        hint: `fill ${col} in the target first (UPDATE ... WHERE ${col} IS NULL), ${TOGETHER}`,
      }));
    }
  }

  // ---- enum values: a column converted to an enum (the same one recreated without some labels, or another type)
  for (const c of source.facts) {
    if (c.kind !== 'column' || !c.parent || F.colFate(c) !== 'retyped') continue;
    const t = F.S.get(c.parent);
    if (!t || t.kind !== 'table' || F.tableState(t.id) !== 'rows') continue;
    const e = c.deps.map((d) => F.S.get(d)).find((x) => x?.kind === 'enum');
    if (!e) continue;
    if (F.coveredByParent(t.id, String(c.meta.name))) continue;
    const o = F.T.get(c.id)!;
    const labels = e.attrs.labels as string[];
    const te = F.T.get(e.id);
    const wasE = te !== undefined && o.deps.includes(e.id);
    const removed = wasE ? (te.attrs.labels as string[]).filter((l) => !labels.includes(l)) : [];
    if (wasE && removed.length === 0) continue; // recreated with every old label: every value converts
    const isArray = String(c.attrs.type).endsWith('[]');
    const arr = `ARRAY[${labels.map((l) => quoteLiteral(l)).join(', ')}]::text[]`;
    const col = String(c.meta.name);
    const cond = isArray
      ? `EXISTS (SELECT FROM unnest((${c.meta.sql})::text[]) AS ${quoteIdent('v')}(${quoteIdent('x')}) WHERE ${quoteIdent('v')}.${quoteIdent('x')} <> ALL (${arr}))`
      : `(${c.meta.sql})::text <> ALL (${arr})`;
    const ename = display(e);
    probe(`SELECT count(*) FROM ${t.meta.sql} WHERE ${cond}`, 'enum_value', t, { column: col }, (n) => ({
      kind: 'enum_value', ...where(t), column: col, enum: ename, ...(removed.length ? { values: removed } : {}), rows: n,
      message: removed.length
        ? `${fmt(n)} row(s) of ${display(t)} use a value in ${col} that enum ${ename} no longer has (${removed.map((l) => quoteLiteral(l)).join(', ')})`
        : `${fmt(n)} row(s) of ${display(t)} have a value in ${col} that is not a label of enum ${ename}`,
      hint: `change those rows to a value ${ename} keeps first, ${TOGETHER}`,
    }));
  }

  // ---- constraints added (or recreated) by the plan and unique indexes it builds
  const added = (id: string) => {
    const c = F.change.get(id);
    return c !== undefined && (c.action === 'create' || c.action === 'alter');
  };
  for (const k of source.facts) {
    if (k.kind !== 'constraint' && k.kind !== 'index') continue;
    if (!k.parent || !added(k.id)) continue;
    const t = F.S.get(k.parent);
    if (!t || t.kind !== 'table' || F.tableState(t.id) !== 'rows') continue;
    const def = String(k.attrs.def);
    const type = k.kind === 'index' ? 'i' : String(k.attrs.type);
    const cname = k.kind === 'index' ? lastName(String(k.meta.sql)) : String(k.meta.name);
    const colDeps = k.deps.map((d) => F.S.get(d)).filter((f): f is Fact => f?.kind === 'column' && f.parent === t.id);
    const colNamed = (n: string) => F.S.get(`column:${t.meta.sql}.${quoteIdent(n)}`);
    // another object it uses (a function, a type...) that the target lacks or this migration changes
    const touchedDep = k.deps.find((d) => {
      const f = F.S.get(d);
      return d !== t.id && f !== undefined && f.kind !== 'column' && (!F.T.has(d) || F.change.has(d));
    });
    // unchanged and already holding on the target: nothing to count
    const old = F.T.get(k.id);
    const holds = old !== undefined && old.attrs.def === def && touchedDep === undefined && colDeps.every((c) => F.colFate(c) === 'same');

    if (type === 'c') {
      const chk = parseCheck(def);
      if (!chk) {
        skip('check', t, `cannot read the definition ${flat(def)}`, { constraint: cname });
        continue;
      }
      if (!chk.validated) continue;
      if (holds) continue;
      if (touchedDep) {
        skip('check', t, `it uses ${factName(touchedDep)}, which this migration creates or changes`, { constraint: cname });
        continue;
      }
      const src = F.rows(t, chk.noInherit && !F.partitioned(t), colDeps, 'nself_r');
      if ('unknown' in src) {
        skip('check', t, src.unknown, { constraint: cname });
        continue;
      }
      probe(`SELECT count(*) FROM ${src.from} WHERE NOT (${chk.expr})`, 'check', t, { constraint: cname }, (n) => ({
        kind: 'check', ...where(t), ...(colDeps.length === 1 ? { column: String(colDeps[0]!.meta.name) } : {}), constraint: cname, rows: n,
        message: `${fmt(n)} row(s) of ${display(t)} violate the new check constraint ${cname}: ${flat(def)}`,
        hint: `fix or delete those rows in the target first, ${TOGETHER}`,
      }));
    } else if (type === 'f') {
      const fk = parseForeignKey(def);
      if (!fk) {
        skip('foreign_key', t, `cannot read the definition ${flat(def)}`, { constraint: cname });
        continue;
      }
      if (!fk.validated) continue;
      const refId = fk.ref.length === 2 ? `table:${quoteIdent(fk.ref[0]!)}.${quoteIdent(fk.ref[1]!)}` : [...F.S.values()].find((f) => f.kind === 'table' && f.meta.name === fk.ref[0])?.id;
      const rt = refId ? F.S.get(refId) : undefined;
      const cols = fk.cols.map(colNamed);
      const rcols = rt ? fk.refCols.map((n) => F.S.get(`column:${rt.meta.sql}.${quoteIdent(n)}`)) : [];
      if (!rt || rt.kind !== 'table' || cols.some((c) => !c) || rcols.some((c) => !c)) {
        skip('foreign_key', t, `cannot resolve the columns of ${flat(def)}`, { constraint: cname });
        continue;
      }
      const cs = cols as Fact[];
      const rs = rcols as Fact[];
      const refState = F.tableState(rt.id);
      const refEmpty = refState !== 'rows';
      if (holds && !refEmpty && rs.every((c) => F.colFate(c) === 'same')) continue;
      const src = F.rows(t, !F.partitioned(t), cs, 'nself_r');
      if ('unknown' in src) {
        skip('foreign_key', t, src.unknown, { constraint: cname });
        continue;
      }
      const all = cs.map((c) => `${src.col(c)} IS NOT NULL`).join(' AND ');
      const any = cs.map((c) => `${src.col(c)} IS NOT NULL`).join(' OR ');
      let sql: string;
      if (refEmpty) sql = `SELECT count(*) FROM ${src.from} WHERE ${fk.matchFull ? any : all}`;
      else {
        const ref = F.rows(rt, !F.partitioned(rt), rs, 'nself_p');
        if ('unknown' in ref) {
          skip('foreign_key', t, ref.unknown, { constraint: cname });
          continue;
        }
        const match = `EXISTS (SELECT 1 FROM ${ref.from} WHERE ${cs.map((c, i) => `${ref.col(rs[i]!)} = ${src.col(c)}`).join(' AND ')})`;
        sql = fk.matchFull
          ? `SELECT count(*) FROM ${src.from} WHERE (${any}) AND (NOT (${all}) OR NOT ${match})`
          : `SELECT count(*) FROM ${src.from} WHERE ${all} AND NOT ${match}`;
      }
      const names = cs.map((c) => String(c.meta.name));
      const why = refState === 'new' || refState === 'recreated' ? `; ${display(rt)} is ${refState === 'new' ? 'created' : 'recreated'} by this migration and starts empty` : refState === 'emptied' ? `; ${display(rt)} is emptied first` : '';
      probe(sql, 'foreign_key', t, { constraint: cname }, (n) => ({
        kind: 'foreign_key', ...where(t), ...(names.length === 1 ? { column: names[0] } : {}), columns: names, constraint: cname, references: display(rt), rows: n,
        message: `${fmt(n)} row(s) of ${display(t)} have (${names.join(', ')}) with no match in ${display(rt)} (new foreign key ${cname})${why}`,
        hint: refEmpty
          ? `migrate the data together (without --schema-only), or empty ${display(t)} first`
          : `add the missing ${display(rt)} rows or fix those ${display(t)} rows first, ${TOGETHER}`,
      }));
    } else if (type === 'x') {
      if (!holds) skip('unique', t, 'exclusion constraints are not checked', { constraint: cname });
    } else if (type === 'u' || type === 'p' || type === 'i') {
      let keys: string[];
      let pred: string | undefined;
      let nnd: boolean;
      let names: string[] | undefined;
      let cols: Fact[];
      const what = type === 'p' ? 'primary key' : type === 'u' ? 'unique constraint' : 'unique index';
      if (type === 'i') {
        if (!/^CREATE UNIQUE INDEX /.test(def)) continue;
        const ix = parseUniqueIndex(def);
        if (!ix) {
          skip('unique', t, `cannot read the definition ${flat(def)}`, { constraint: cname });
          continue;
        }
        if (touchedDep && !holds) {
          skip('unique', t, `it uses ${factName(touchedDep)}, which this migration creates or changes`, { constraint: cname });
          continue;
        }
        cols = colDeps;
        keys = ix.keys;
        pred = ix.where;
        nnd = ix.nullsNotDistinct;
        const plain = ix.keys.map(plainName);
        if (plain.every((x) => x !== undefined && colNamed(x) !== undefined)) names = plain as string[];
      } else {
        const u = parseUnique(def);
        if (!u || u.cols.some((n) => !colNamed(n))) {
          skip('unique', t, `cannot read the definition ${flat(def)}`, { constraint: cname });
          continue;
        }
        cols = u.cols.map((n) => colNamed(n)!);
        keys = cols.map((c) => String(c.meta.sql));
        nnd = u.nullsNotDistinct;
        names = u.cols;
      }
      if (holds) continue;
      const src = F.rows(t, !F.partitioned(t), cols, 'nself_r');
      if ('unknown' in src) {
        skip('unique', t, src.unknown, { constraint: cname });
        continue;
      }
      const conds = [...(nnd ? [] : keys.map((x) => `(${x}) IS NOT NULL`)), ...(pred ? [`(${pred})`] : [])];
      const sql = `SELECT count(*) - count(DISTINCT ROW(${keys.join(', ')})) FROM ${src.from}${conds.length ? ` WHERE ${conds.join(' AND ')}` : ''}`;
      probe(sql, 'unique', t, { constraint: cname }, (n) => ({
        kind: 'unique', ...where(t), ...(names?.length === 1 ? { column: names[0] } : {}), ...(names ? { columns: names } : {}), constraint: cname, rows: n,
        message: `${fmt(n)} row(s) of ${display(t)} repeat values of (${names ? names.join(', ') : keys.join(', ')}) under the new ${what} ${cname}`,
        hint: `remove the duplicates in the target first, ${TOGETHER}`,
      }));
    }
  }

  // ---- a CHECK added to a domain: every column of the domain (or of a domain over it) is checked
  for (const k of source.facts) {
    if (k.kind !== 'domain_constraint' || !k.parent || !added(k.id)) continue;
    const dom = F.S.get(k.parent);
    if (!dom) continue;
    const def = String(k.attrs.def);
    const cname = String(k.meta.name);
    const chk = parseCheck(def);
    if (chk && !chk.validated) continue;
    const cols = source.facts.filter((c) => c.kind === 'column' && c.parent && F.domainsOf(c, F.S).includes(dom));
    for (const c of cols) {
      const t = F.S.get(c.parent!);
      if (!t || t.kind !== 'table' || F.tableState(t.id) !== 'rows' || F.colFate(c) !== 'same') continue;
      if (F.coveredByParent(t.id, String(c.meta.name))) continue;
      const col = String(c.meta.name);
      const expr = chk ? substituteValue(chk.expr, `(${c.meta.sql})`) : undefined;
      if (expr === undefined) {
        skip('check', t, `cannot read the definition ${flat(def)}`, { column: col, constraint: cname });
        continue;
      }
      if (String(c.attrs.type).endsWith('[]')) {
        skip('check', t, `column ${col} is an array of domain ${display(dom)}`, { column: col, constraint: cname });
        continue;
      }
      probe(`SELECT count(*) FROM ${t.meta.sql} WHERE NOT (${expr})`, 'check', t, { column: col, constraint: cname }, (n) => ({
        kind: 'check', ...where(t), column: col, constraint: cname, rows: n,
        message: `${fmt(n)} row(s) of ${display(t)} have a value in ${col} that violates the new constraint ${cname} of domain ${display(dom)}: ${flat(def)}`,
        hint: `fix or delete those rows in the target first, ${TOGETHER}`,
      }));
    }
  }

  await runProbes(target, probes);
  const key = (x: { table: string; kind: string; column?: string; constraint?: string }) => `${x.table}\u0000${x.kind}\u0000${x.constraint ?? ''}\u0000${x.column ?? ''}`;
  const order = <T extends { table: string; kind: string; column?: string; constraint?: string }>(l: T[]) => l.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  return { conflicts: order(conflicts), unchecked: order(unchecked) };
}

/** The rows of the target that would make the plan fail (see checkPlanRows; checks that could not be made are left out). */
export async function findRowConflicts(
  target: pg.ClientBase,
  plan: SchemaPlan,
  source: SchemaModel,
  targetModel: SchemaModel,
  opts: RowCheckOptions = {},
): Promise<RowConflict[]> {
  return (await checkPlanRows(target, plan, source, targetModel, opts)).conflicts;
}

// ---------------------------------------------------------------- running the counts

/** Errors that end the check (the caller must know): locks, cancellation, a broken connection or transaction. */
function fatal(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  if (typeof code !== 'string' || code.length !== 5) return true;
  return !/^(22|42|0A|2F|38|39|P0|23|44)/.test(code);
}

function asError(e: unknown): MigrateError {
  const err = e as Error & { code?: string };
  if (err.code === '55P03') {
    return new MigrateError('lock_timeout', `checking the target's rows timed out waiting for a lock: ${err.message}`, {
      hint: 'another session holds a lock on a table; retry later or raise the lock timeout',
      cause: e,
    });
  }
  return new MigrateError('row_check_failed', `checking the target's rows failed: ${err.message}`, { details: { pgcode: err.code }, cause: e });
}

async function runProbes(client: pg.ClientBase, probes: Probe[]): Promise<void> {
  if (!probes.length) return;
  let inTx: boolean;
  try {
    // the first statement of a transaction shares its timestamp: equal means no transaction block is open
    inTx = (await client.query<{ t: boolean }>('SELECT transaction_timestamp() <> statement_timestamp() AS t')).rows[0]!.t;
  } catch (e) {
    throw asError(e);
  }
  const sp = quoteIdent('nself_rowcheck');
  const run = async (sql: string): Promise<pg.QueryResult> => {
    if (!inTx) return client.query(sql);
    await client.query(`SAVEPOINT ${sp}`);
    try {
      const r = await client.query(sql);
      await client.query(`RELEASE SAVEPOINT ${sp}`);
      return r;
    } catch (e) {
      await client.query(`ROLLBACK TO SAVEPOINT ${sp}`);
      await client.query(`RELEASE SAVEPOINT ${sp}`);
      throw e;
    }
  };
  const batch = (l: Probe[]) => `SELECT ${l.map((p, i) => `(${p.sql}) AS ${quoteIdent(`c${i}`)}`).join(', ')}`;
  for (let i = 0; i < probes.length; i += BATCH) {
    const chunk = probes.slice(i, i + BATCH);
    try {
      const row = (await run(batch(chunk))).rows[0] as Record<string, string>;
      chunk.forEach((p, j) => p.done(Number(row[`c${j}`])));
    } catch (e) {
      if (fatal(e)) throw asError(e);
      // one of them cannot be evaluated here: find which, keep the others
      for (const p of chunk) {
        try {
          const row = (await run(batch([p]))).rows[0] as Record<string, string>;
          p.done(Number(row.c0));
        } catch (e2) {
          if (fatal(e2)) throw asError(e2);
          p.failed((e2 as Error).message);
        }
      }
    }
  }
}
