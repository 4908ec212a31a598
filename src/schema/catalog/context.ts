/**
 * What the catalog families share: the SQL environment their queries are written for (server version, the
 * in-scope schemas as a subquery) and the state of one inspection that their builders fill in order.
 */
import { quoteLiteral } from '../../pg/quote.js';
import type { AttrValue, Fact, SchemaScope, UnsupportedObject } from '../model.js';

/** One catalog query of a family, named for error messages ("schema inspection failed reading <name>"). */
export interface Step {
  name: string;
  sql: string;
}

/** What a family's SQL depends on: no query reads another's results, so all of them go to the server at once. */
export interface SqlEnv {
  /** server_version_num */
  v: number;
  /** A subquery of the oids of the schemas in scope (not system schemas, not extension members). */
  ns: string;
  /** The oids of the relations in scope of the given relkinds (a superset of the ones with facts: builders skip the rest). */
  rels(kinds: string): string;
}

export type Row = Record<string, any>;

/** A catalog family: its queries, and what turns their rows into facts (run in the orchestrator's order). */
export interface Family {
  steps(env: SqlEnv): Step[];
  build(ctx: Inspection, rows: (step: string) => Row[]): void;
}

/** `not exists (…)`: the object is not a member of an extension (those are the extension's). */
export const EXT = (cls: string, col: string) =>
  `not exists (select 1 from pg_depend xd where xd.classid = '${cls}'::regclass and xd.objid = ${col} and xd.deptype = 'e')`;

export function sqlEnv(v: number, scope: SchemaScope): SqlEnv {
  const list = (xs: string[]) => `array[${xs.map(quoteLiteral).join(', ')}]::text[]`;
  const ns = `select n.oid from pg_namespace n
      where n.nspname !~ '^pg_' and n.nspname <> 'information_schema'${scope.schemas?.length ? `
        and n.nspname = any(${list(scope.schemas)})` : ''}${scope.excludeSchemas?.length ? `
        and not (n.nspname = any(${list(scope.excludeSchemas)}))` : ''}
        and ${EXT('pg_namespace', 'n.oid')}`;
  return {
    v,
    ns,
    rels: (kinds) => `select rc.oid from pg_class rc where rc.relnamespace in (${ns}) and rc.relkind in (${[...kinds].map(quoteLiteral).join(', ')})`,
  };
}

export function pgArray(v: unknown): string[] {
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

export const sortStr = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** A catalog object as a map key: see key(). */
export type ObjKey = number | string;

/** catalog name → a small number, for key() */
const classIds = new Map<string, number>();

/**
 * A catalog object (catalog name, oid, sub-id: a column's number) → map key. One number (catalog × 2^43 + oid ×
 * 2^11 + sub-id, below 2^53) where it fits — an inspection builds and looks up tens of thousands of keys, and a
 * number is cheaper to make and hash than a string — else a string (`pg_class:16384:2`). Every map of catalog
 * objects is keyed by key() only, so both forms never meet for one object.
 */
export function key(cls: string, oid: number | string, sub: number | string = 0): ObjKey {
  let c = classIds.get(cls);
  if (c === undefined) classIds.set(cls, (c = classIds.size));
  // what Number() would read as 0 keeps its own (string) key
  const o = oid === null || oid === '' ? NaN : Number(oid);
  const s = sub === null || sub === '' ? NaN : Number(sub);
  if (c < 1024 && o >= 0 && o < 2 ** 32 && Number.isInteger(o) && s >= 0 && s < 2048 && Number.isInteger(s)) return (c * 2 ** 32 + o) * 2048 + s;
  return `${cls}:${oid}:${sub}`;
}

export interface AclTarget {
  cls: string;
  oid: number;
  sub: number;
  factId: string;
  objType: string;
  objSql: string;
  column?: string;
}

/** The state of one inspection, filled by the families' builders in order. */
export class Inspection {
  readonly facts = new Map<string, Fact>();
  readonly unsupported: UnsupportedObject[] = [];
  /** catalog object → the unsupported object it is (for its dependencies on facts and facts' on it) */
  readonly unsMap = new Map<ObjKey, UnsupportedObject>();
  /** catalog object (`key()`) → fact id */
  readonly objMap = new Map<ObjKey, string>();
  /** objects whose grants are read (schemas, types, relations, columns with an ACL, routines) */
  readonly aclTargets: AclTarget[] = [];
  readonly nsName = new Map<number, string>();
  readonly roleName = new Map<number, string>();
  /** extension member (`key(cls, oid)`) → the extension's fact id */
  readonly extMembers = new Map<ObjKey, string>();
  readonly availableExtensions: Record<string, string[]> = {};
  /** composite type fact by its pg_class oid */
  readonly compositeByRel = new Map<number, Fact>();
  /** table, view, matview and sequence facts by oid */
  readonly relFact = new Map<number, Fact>();
  /** oids of the relations that are partitions */
  readonly relIsPartition = new Set<number>();
  /** a view's (materialized view's) columns by `relid.attnum`, for their comments */
  readonly viewCols = new Map<string, { rel: Fact; name: string }>();
  /** tables whose REPLICA IDENTITY is not DEFAULT (f, n, i), by oid */
  readonly replIdent = new Map<number, string>();
  /** partition bound by partition oid (for the partition facts) */
  readonly partBound = new Map<number, string>();
  roles: string[] = [];

  constructor(readonly serverVersion: number) {}

  add(f: Fact): Fact {
    this.facts.set(f.id, f);
    return f;
  }

  mk(kind: string, id: string, attrs: Record<string, AttrValue>, meta: Record<string, string | number>, parent?: string): Fact {
    return this.add({ id, kind, parent, attrs, deps: [], meta });
  }

  /** An object the engine does not handle: reported, and never created or dropped around. */
  unsupportedObject(u: UnsupportedObject, ...keys: ObjKey[]): void {
    this.unsupported.push(u);
    for (const k of keys) this.unsMap.set(k, u);
  }
}
