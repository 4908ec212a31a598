/**
 * The registry: one line per fact kind (the kinds schema inspection emits). A line names the kind's rule
 * (its render functions: create, drop and, when the kind can change in place, alter) and declares how the planner
 * treats it. The planner's phases read only these properties; a kind missing here is reported by the plan as an
 * error naming it, and kindSpec() throws for it.
 */
import type { Fact } from '../model.js';
import * as columns from './columns.js';
import * as comments from './comments.js';
import type { Hazard, Rule } from './core.js';
import * as indexes from './indexes.js';
import * as routines from './routines.js';
import * as schemas from './schemas.js';
import * as security from './security.js';
import * as sequences from './sequences.js';
import * as tables from './tables.js';
import * as textsearch from './textsearch.js';
import * as triggers from './triggers.js';
import * as types from './types.js';
import * as views from './views.js';

type When = boolean | ((f: Fact) => boolean);

export interface KindSpec {
  /** Its rule: how it is created, dropped and (if it can be) altered in place. */
  rule: Rule;
  /** What forces a drop and recreate (its dependents are recreated with it); its rule's alter returns null then. */
  recreate: string;
  /** The hazard kinds its rule can raise (test/schema-rules.test.ts holds each rule to this). */
  hazards: readonly Hazard['kind'][];
  /** Dropped implicitly with its parent (DROP TABLE takes its columns): no statement of its own then. */
  droppedWithParent?: When;
  /** Written inside its parent's CREATE when the parent (of this kind) is created too (a table's columns). */
  foldsInto?: string;
  /** Must be dropped and recreated around a type change of a column it uses (ALTER COLUMN TYPE refuses it). */
  blocksRetype?: When;
  /**
   * A type: when it is recreated, the columns using it are converted in place (ALTER COLUMN TYPE … USING
   * col::text::type), never recreated, and a table using it is not recreated for it; while they are converted the
   * old type lives on renamed (`ALTER <typeLike> … RENAME`), dropped at the end.
   */
  typeLike?: 'TYPE' | 'DOMAIN' | 'COLLATION';
  /** A column converting from or to a type of this kind goes through text (USING col::text::type). */
  castViaText?: boolean;
  /** Holds rows or values: its drop's deletes_data hazard stands also when it is recreated, and it is never recreated only to free a name. */
  holdsData?: boolean;
  /** The name it occupies in the catalog, shared with other kinds: dropping it frees the name for a create. */
  name?: (f: Fact) => string | undefined;
}

const rel = (f: Fact) => `rel:${f.meta.sql}`;
const fn = (f: Fact) => `fn:${f.meta.sql}`;
const ANY = 'any change';
const NEVER = 'never: every change is made in place';

export const KINDS: Readonly<Record<string, KindSpec>> = {
  // schemas.ts
  schema: { rule: schemas.schema, recreate: NEVER, hazards: [] },
  extension: { rule: schemas.extension, recreate: 'a version older than the target’s (no downgrade path)', hazards: [], castViaText: true },
  // types.ts
  collation: { rule: types.collation, recreate: ANY, hazards: [], typeLike: 'COLLATION', castViaText: true },
  enum: { rule: types.enumType, recreate: 'a value removed or the values reordered; a new value the same transaction uses', hazards: [], typeLike: 'TYPE', castViaText: true, name: rel },
  domain: { rule: types.domain, recreate: 'its base type or collation changes, or only what it depends on', hazards: [], typeLike: 'DOMAIN', castViaText: true, name: rel },
  domain_constraint: { rule: types.domainConstraint, recreate: ANY, hazards: [], droppedWithParent: true },
  composite: { rule: types.composite, recreate: ANY, hazards: [], typeLike: 'TYPE', castViaText: true, name: rel },
  range: { rule: types.range, recreate: ANY, hazards: [], typeLike: 'TYPE', castViaText: true, name: rel },
  // sequences.ts
  sequence: { rule: sequences.sequence, recreate: 'only what it depends on changes', hazards: ['deletes_data'], name: rel },
  seq_owned: { rule: sequences.seqOwned, recreate: NEVER, hazards: [], droppedWithParent: true },
  // tables.ts
  table: { rule: tables.table, recreate: 'its partition key changes (only while it holds no rows)', hazards: ['deletes_data', 'rewrites_table', 'exclusive_lock'], holdsData: true, name: rel },
  inherit: { rule: tables.inherit, recreate: ANY, hazards: [], droppedWithParent: true, foldsInto: 'table' },
  partition: { rule: tables.partition, recreate: ANY, hazards: ['exclusive_lock'], droppedWithParent: true, foldsInto: 'table' },
  replica_identity: { rule: tables.replicaIdentity, recreate: NEVER, hazards: [], droppedWithParent: true },
  cluster: { rule: tables.cluster, recreate: NEVER, hazards: [], droppedWithParent: true },
  // foreign keys are dropped explicitly: two tables referencing each other must lose their keys first
  constraint: {
    rule: tables.constraint, recreate: ANY, hazards: ['builds_index', 'exclusive_lock'], droppedWithParent: (f) => f.attrs.type !== 'f',
    name: (f) => ('pux'.includes(String(f.attrs.type)) ? `rel:${tables.constraintIndexName(f)}` : undefined),
  },
  // columns.ts (a column's type change is rendered by columns.retypeSql, its hazards by columns.typeChangeHazards)
  column: {
    rule: columns.column, recreate: 'it becomes generated, its generation expression changes, or stored ↔ virtual',
    hazards: ['deletes_data', 'rewrites_table', 'exclusive_lock'], droppedWithParent: true, foldsInto: 'table', blocksRetype: (f) => !!f.attrs.generated, holdsData: true,
  },
  default: { rule: columns.columnDefault, recreate: 'only what it depends on changes', hazards: [], droppedWithParent: true, foldsInto: 'column', blocksRetype: true },
  child_column: { rule: columns.childColumn, recreate: NEVER, hazards: [], droppedWithParent: true },
  // indexes.ts
  index: { rule: indexes.index, recreate: ANY, hazards: ['builds_index'], droppedWithParent: true, name: rel },
  partition_index: { rule: indexes.partitionIndex, recreate: NEVER, hazards: [], droppedWithParent: true, name: rel },
  statistics: { rule: indexes.statistics, recreate: 'its definition or what it depends on changes', hazards: [], droppedWithParent: true, blocksRetype: true, name: (f) => `stx:${f.meta.sql}` },
  // routines.ts
  function: { rule: routines.func, recreate: 'its arguments or result type change, or only what it depends on', hazards: [], name: fn },
  procedure: { rule: routines.procedure, recreate: 'its arguments change, or only what it depends on', hazards: [], name: fn },
  aggregate: { rule: routines.aggregate, recreate: ANY, hazards: [], name: fn },
  // views.ts
  view: { rule: views.view, recreate: 'a column removed, renamed or reordered', hazards: [], blocksRetype: true, name: rel },
  matview: { rule: views.matview, recreate: ANY, hazards: ['exclusive_lock'], blocksRetype: true, name: rel },
  rule: { rule: views.rule, recreate: 'what it depends on changes', hazards: [], droppedWithParent: true, blocksRetype: true },
  // triggers.ts
  trigger: { rule: triggers.trigger, recreate: 'anything but its enabled state', hazards: [], droppedWithParent: true, blocksRetype: true },
  // security.ts
  acl: { rule: security.acl, recreate: NEVER, hazards: [], droppedWithParent: true },
  owner_acl: { rule: security.ownerAcl, recreate: NEVER, hazards: [], droppedWithParent: true },
  policy: { rule: security.policy, recreate: ANY, hazards: [], droppedWithParent: true, blocksRetype: true },
  default_acl: { rule: security.defaultAcl, recreate: NEVER, hazards: [] },
  // textsearch.ts
  ts_dictionary: { rule: textsearch.tsDictionary, recreate: ANY, hazards: [] },
  ts_config: { rule: textsearch.tsConfig, recreate: 'its parser changes', hazards: [] },
  // comments.ts
  comment: { rule: comments.comment, recreate: NEVER, hazards: [], droppedWithParent: true },
};

export function hasKind(kind: string): boolean {
  return Object.hasOwn(KINDS, kind);
}

/** The registry line of a kind; throws for a kind without one. */
export function kindSpec(kind: string): KindSpec {
  if (!hasKind(kind)) throw new Error(`the schema planner has no rule for ${kind} objects (no line for "${kind}" in src/schema/rules/registry.ts)`);
  return KINDS[kind]!;
}

/** Does a boolean-or-predicate property hold for this fact? */
export const holds = (w: When | undefined, f: Fact): boolean => (typeof w === 'function' ? w(f) : w === true);
