/**
 * The schema model: every catalog object is a *fact* with a stable identity, flat attributes
 * (mostly server-rendered definitions) and the identities it depends on.
 * Everything here is plain JSON.
 */
import { createHash } from 'node:crypto';

export type AttrValue = string | number | boolean | null | string[];

export interface Fact {
  /** Stable identity: `<kind>:<qualified name>[signature]` (e.g. `column:"public"."t"."a"`). */
  id: string;
  kind: string;
  /** The object this one belongs to (a column's table, a grant's object...). */
  parent?: string;
  /** Compared by the diff. */
  attrs: Record<string, AttrValue>;
  /** Identities this fact depends on (sorted, unique). Part of the comparison. */
  deps: string[];
  /** Naming data for DDL rendering; not compared (derived from the identity). */
  meta: Record<string, string | number>;
}

export interface UnsupportedObject {
  kind: string;
  identity: string;
  reason: string;
  /** A rendering of its definition, to tell whether both sides agree. */
  def: string;
  /** Facts it depends on (pg_depend); not part of the fingerprint. */
  dependsOn?: string[];
  /** Facts that depend on it (pg_depend); not part of the fingerprint. */
  dependents?: string[];
}

export interface SchemaModel {
  format: 'nself-schema/1';
  serverVersion: number;
  /** Every role name existing in the cluster (grants/policies may only name these). */
  roles: string[];
  /**
   * The role that inspected it (current_user): the owner of whatever a migration creates there. Not part of the
   * fingerprint; absent in models written before it was read.
   */
  user?: string;
  /** Sorted by id. */
  facts: Fact[];
  unsupported: UnsupportedObject[];
  /**
   * Extension versions this server could install or update to (pg_available_extension_versions), by extension
   * name. Not part of the fingerprint; absent in models written before it was read.
   */
  availableExtensions?: Record<string, string[]>;
}

export interface SchemaScope {
  schemas?: string[];
  excludeSchemas?: string[];
}

function canonical(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v ?? null);
  if (Array.isArray(v)) return '[' + v.map(canonical).join(',') + ']';
  const o = v as Record<string, unknown>;
  return '{' + Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => JSON.stringify(k) + ':' + canonical(o[k])).join(',') + '}';
}

/** The part of a fact the diff compares: computed once per fact. */
const sigCache = new WeakMap<Fact, string>();
/** attribute name → its JSON and a colon (a few dozen names, tens of thousands of facts) */
const quotedKeys = new Map<string, string>();
export function factSignature(f: Fact): string {
  let sig = sigCache.get(f);
  if (sig === undefined) {
    sig = attrsSignature(f.attrs) + JSON.stringify(f.deps) + '|' + (f.parent ?? '');
    sigCache.set(f, sig);
  }
  return sig;
}

/** `{"a":1,"b":["x"],}`: sorted keys, JSON values, each followed by a comma (the form fingerprints were made with). */
function attrsSignature(a: Record<string, AttrValue>): string {
  // attrs are flat (primitives and string arrays); when their keys are already in order (the builders make them so
  // for the numerous kinds), JSON.stringify writes the same text in one native call
  let prev = '';
  let fast = true;
  for (const k in a) {
    const v = a[k];
    if (k < prev || (v !== null && typeof v === 'object' && !Array.isArray(v))) {
      fast = false;
      break;
    }
    prev = k;
  }
  if (fast) {
    const json = JSON.stringify(a);
    return json.length > 2 ? json.slice(0, -1) + ',}' : '{}';
  }
  const keys = Object.keys(a);
  if (keys.length > 1) keys.sort();
  let out = '{';
  for (const k of keys) {
    const v = a[k];
    if (v === undefined) continue;
    let qk = quotedKeys.get(k);
    if (qk === undefined) quotedKeys.set(k, (qk = JSON.stringify(k) + ':'));
    out += qk + (v !== null && typeof v === 'object' && !Array.isArray(v) ? canonical(v) : JSON.stringify(v)) + ',';
  }
  return out + '}';
}

export function fingerprintSchema(model: SchemaModel): string {
  const h = createHash('sha256');
  h.update('nself-schema/1\n');
  let sorted = true;
  for (let i = 1; i < model.facts.length && sorted; i++) if (model.facts[i - 1]!.id > model.facts[i]!.id) sorted = false;
  const facts = sorted ? model.facts : [...model.facts].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const parts: string[] = [];
  for (const f of facts) parts.push(f.id, '\u0000', factSignature(f), '\n');
  h.update(parts.join(''));
  const uns = [...model.unsupported].sort((a, b) => (a.identity < b.identity ? -1 : a.identity > b.identity ? 1 : 0));
  for (const u of uns) h.update('unsupported\u0000' + u.kind + '\u0000' + u.identity + '\u0000' + u.def + '\n');
  return h.digest('hex');
}
