/**
 * The pure schema planner. Per-kind knowledge lives in the rule modules under ./rules/ and their registry
 * (./rules/registry.ts); the plan is built in four named phases:
 *
 *   diff (facts → changes) → expand replacements (recreate cascades) → order (one dependency graph, one
 *   deterministic topological sort) → emit (statements, hazards, plan errors)
 */
import { quoteIdent, quoteLiteral, relationKey } from '../pg/quote.js';
import { factSignature, fingerprintSchema, type Fact, type SchemaModel } from './model.js';
import { ruleContext, disp, s, splitName, type AlterResult, type Ctx, type Hazard } from './rules/core.js';
import { retypeSql, typeChangeHazards } from './rules/columns.js';
import { hasKind, holds, kindSpec } from './rules/registry.js';
import { emptyGuard, tableHasRowsMessage } from './rules/tables.js';
import { comparableModels, targetVersionErrors } from './versions.js';

export type { Hazard } from './rules/core.js';
export { tableHasRowsMessage };

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

export interface PlanOptions {
  /**
   * Tables (relationKey(schema, name) from pg/quote.ts) whose rows will be written in the same transaction after the schema step (the data
   * component), or true for every table. A value added with ALTER TYPE … ADD VALUE cannot be used before
   * COMMIT, so an enum that gains values and is the type of a column of such a table is recreated instead.
   */
  rowsFollow?: boolean | ReadonlySet<string>;
}

export function planSchema(sourceModel: SchemaModel, targetModel: SchemaModel, opts: PlanOptions = {}): SchemaPlan {
  const d = diff(sourceModel, targetModel);
  const x = expandReplacements(d, opts);
  const o = order(d, x);
  return emit(sourceModel, targetModel, d, x, o);
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

// ---------------------------------------------------------------- phase 1: diff

interface Diff {
  /** The models as compared (version-specific renderings made comparable, facts of unknown kinds left out). */
  source: SchemaModel;
  target: SchemaModel;
  ctx: Ctx;
  /** fact id → the ids of the target's facts that depend on it */
  oldDependents: Map<string, string[]>;
  added: Fact[];
  removed: Fact[];
  /** [target's fact, source's fact] */
  changed: [Fact, Fact][];
  /** partition → column: a column a DETACH gives back to the table is altered after the DETACH */
  detachEdges: [string, string][];
  notHandled: SchemaPlan['notHandled'];
  errors: string[];
}

/**
 * Facts → changes: which facts the source adds, which it removes and which differ (by signature), after the two
 * models are made comparable across server versions. Unsupported objects on which the sides disagree and facts
 * of a kind the registry lacks are reported (the latter also as plan errors) and left out. Two moves that are not
 * a plain fact diff are settled here: a table becoming a partition (ATTACH absorbs its columns) or no longer one
 * (DETACH gives them back), and a child's own column defaults, which must be set again when its parent's change.
 */
function diff(sourceModel: SchemaModel, targetModel: SchemaModel): Diff {
  const [comparableSource, comparableTarget] = comparableModels(sourceModel, targetModel);
  const notHandled: SchemaPlan['notHandled'] = [];
  const errors: string[] = [];

  // unsupported objects: reported when the two sides disagree about them
  const unsT = new Map(comparableTarget.unsupported.map((u) => [u.kind + '\u0000' + u.identity, u]));
  const unsS = new Map(comparableSource.unsupported.map((u) => [u.kind + '\u0000' + u.identity, u]));
  for (const [k, u] of [...unsS, ...unsT]) {
    const o = unsS.get(k);
    const t = unsT.get(k);
    if (o && t && o.def === t.def) continue;
    if (notHandled.some((n) => n.kind === u.kind && n.identity === u.identity)) continue;
    notHandled.push({ kind: u.kind, identity: u.identity, reason: `${u.reason}; it ${!t ? 'exists only in the source' : !o ? 'exists only in the target' : 'differs between source and target'} and will not be migrated` });
  }

  // facts of a kind without a registry line: reported loudly (not handled, and a plan error), then left out
  const source = withKnownKinds(comparableSource);
  const target = withKnownKinds(comparableTarget);
  if (source !== comparableSource || target !== comparableTarget) {
    const sAll = new Map(comparableSource.facts.map((f) => [f.id, f]));
    const tAll = new Map(comparableTarget.facts.map((f) => [f.id, f]));
    const unknown = [
      ...comparableSource.facts.filter((f) => !hasKind(f.kind) && !tAll.has(f.id)),
      ...comparableTarget.facts.filter((f) => !hasKind(f.kind) && !sAll.has(f.id)),
      ...comparableSource.facts.filter((f) => !hasKind(f.kind) && tAll.has(f.id) && factSignature(f) !== factSignature(tAll.get(f.id)!)),
    ];
    for (const f of unknown) {
      notHandled.push({ kind: f.kind, identity: f.id, reason: `no rule for ${f.kind} objects` });
      errors.push(`${f.id}: the schema planner has no rule for ${f.kind} objects, so it can neither create, change nor drop it`);
    }
  }

  const ctx = ruleContext(source.facts, target.facts);
  const S = ctx.source;
  const T = ctx.target;
  const oldDependents = new Map<string, string[]>();
  for (const f of target.facts) for (const dep of f.deps) (oldDependents.get(dep) ?? oldDependents.set(dep, []).get(dep)!).push(f.id);

  const added: Fact[] = [];
  const removed: Fact[] = [];
  const changed: [Fact, Fact][] = [];
  for (const f of source.facts) {
    const t = T.get(f.id);
    if (!t) {
      if (!impliedByOwnership(f, S, T, target.user)) added.push(f);
    } else if (factSignature(f) !== factSignature(t)) changed.push([t, f]);
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

  return { source, target, ctx, oldDependents, added, removed, changed, detachEdges, notHandled, errors };
}

/**
 * A grant the source has and the target lacks, to the role that owns the object on the target (or will own it: the
 * role the migration runs as, for an object it creates), with none of its privileges revoked by that owner from
 * itself: the owner holds them already. Inspection leaves an owner's entries out of the grants (ownership is not
 * modelled), so planning it would change nothing and it would be planned again on every run.
 */
function impliedByOwnership(f: Fact, S: ReadonlyMap<string, Fact>, T: ReadonlyMap<string, Fact>, user: string | undefined): boolean {
  if (f.kind !== 'acl' || f.parent === undefined) return false;
  // a column grant's object is its table
  const objectId = f.meta.column !== undefined ? (S.get(f.parent)?.parent ?? '') : f.parent;
  const existing = T.get(objectId);
  const owner = existing ? existing.meta.owner : user;
  if (owner === undefined || owner !== f.meta.grantee) return false;
  const ownerAcl = (existing ? T : S).get(`owner_acl:${objectId}`);
  const revoked = new Set(((ownerAcl?.attrs.privs as string[] | undefined) ?? []).filter((p) => p.startsWith('-')).map((p) => p.slice(1)));
  return (f.attrs.privs as string[]).every((p) => !revoked.has(p.replace(/\*$/, '')));
}

function withKnownKinds(m: SchemaModel): SchemaModel {
  return m.facts.every((f) => hasKind(f.kind)) ? m : { ...m, facts: m.facts.filter((f) => hasKind(f.kind)) };
}

// ---------------------------------------------------------------- phase 2: expand replacements

interface Expansion {
  /** in-place alterations (fact id → its rule's result) */
  inPlace: Map<string, AlterResult>;
  /** recreated: dropped and created again */
  R: Set<string>;
  /** columns converted with ALTER COLUMN … TYPE */
  retype: Set<string>;
  /** what dragged each dependent into R */
  why: Map<string, string>;
  /** enums recreated instead of extended, and why */
  recreatedWhy: Map<string, string>;
  recreatedTables: SchemaPlan['recreatedTables'];
  dropped: Set<string>;
  created: Set<string>;
  /** type-likes recreated while columns still use them: renamed away, dropped after the columns are converted */
  renameDance: Set<string>;
}

/**
 * Changes → what the plan really does: each changed fact's rule decides in place or recreate; a recreated fact
 * drags the target's facts depending on it along (a type-like one converts the columns using it instead), and a
 * retyped column drags what blocks ALTER COLUMN TYPE (registry: blocksRetype). An enum that gains values is
 * recreated instead when the plan or the data step would use a new value before COMMIT. A table on both sides that
 * ends up recreated is listed, with the reason, in recreatedTables.
 */
function expandReplacements(d: Diff, opts: PlanOptions): Expansion {
  const { source, target, ctx, oldDependents, added, removed, changed } = d;
  const S = ctx.source;
  const T = ctx.target;

  // in-place alterations, decided once; the closure below may still turn them into recreations
  const inPlace = new Map<string, AlterResult>();
  const recreateSeed = new Set<string>();
  for (const [o, n] of changed) {
    const rule = kindSpec(n.kind).rule;
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
      const xTypeLike = kindSpec(xf.kind).typeLike !== undefined;
      for (const y of oldDependents.get(x) ?? []) {
        if (!S.has(y) || R.has(y)) continue;
        const yf = T.get(y)!;
        if (xRecreated) {
          if (yf.kind === 'column' && xTypeLike) {
            if (!retype.has(y)) {
              retype.add(y);
              work.push(y);
            }
            continue;
          }
          // a partition or inheritance child uses the type through its parent's columns: ALTER TABLE parent ALTER
          // COLUMN … TYPE converts it too (the partitions are never dropped for it)
          if (yf.kind === 'table' && xTypeLike && childTables.has(y)) continue;
          R.add(y);
          why.set(y, x);
          retype.delete(y);
          work.push(y);
        } else {
          // x is a retyped column
          if (holds(kindSpec(yf.kind).blocksRetype, yf)) {
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
  const seed = new Set(recreateSeed);
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
    // (a table replaced by a view of the same name): recreate it instead — unless it holds data (tables, columns)
    const droppedNow = new Set([...removed.map((f) => f.id), ...closure.R]);
    const createdNow = new Set([...added.map((f) => f.id), ...closure.R]);
    for (const [id] of inPlace) {
      if (closure.R.has(id) || seed.has(id)) continue;
      const o = T.get(id)!;
      const n = S.get(id)!;
      if (kindSpec(n.kind).holdsData) continue;
      if (o.deps.some((dep) => droppedNow.has(dep)) && n.deps.some((dep) => createdNow.has(dep))) {
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

  const dropped = new Set<string>([...removed.map((f) => f.id), ...R]);
  const created = new Set<string>([...added.map((f) => f.id), ...R]);

  // type-likes recreated while columns still use them: rename the old one away, retype the columns, then drop it
  const renameDance = new Set<string>();
  for (const id of R) {
    const f = T.get(id)!;
    if (!kindSpec(f.kind).typeLike) continue;
    if ((oldDependents.get(id) ?? []).some((y) => retype.has(y))) renameDance.add(id);
  }

  return { inPlace, R, retype, why, recreatedWhy, recreatedTables, dropped, created, renameDance };
}

// ---------------------------------------------------------------- phase 3: order

type Op = 'drop' | 'alter' | 'create' | 'cleanup';
const OP_RANK: Record<Op, number> = { drop: 0, alter: 1, create: 2, cleanup: 3 };

/** One step of the plan: an operation on a fact (its statements are rendered by emit). */
interface Node {
  key: string;
  op: Op;
  fact: Fact;
  /** facts folded into this node (columns into CREATE TABLE...) */
  folded: Fact[];
}

/**
 * Expansion → steps in a safe order. One node per drop, create, in-place alter and cleanup (a renamed type's
 * final drop); children dropped with their parent (registry: droppedWithParent) share its drop node, children
 * written into their parent's CREATE (registry: foldsInto) share its create node. Edges: in the target's graph
 * dependents go first (drops), in the source's dependencies go first (creates, alters); a drop frees a name a create
 * needs (registry: name). Then one deterministic topological sort (drops, alters, creates, cleanups; by key), a
 * cycle broken at its smallest remaining node.
 */
function order(d: Diff, x: Expansion): Node[] {
  const { source, target, ctx, oldDependents, detachEdges } = d;
  const { inPlace, R, retype, dropped, created, renameDance } = x;
  const S = ctx.source;
  const T = ctx.target;

  const nodes = new Map<string, Node>();
  const node = (op: Op, f: Fact): Node => {
    const k = `${op}|${f.id}`;
    let n = nodes.get(k);
    if (!n) nodes.set(k, (n = { key: k, op, fact: f, folded: [] }));
    return n;
  };
  const dropNode = new Map<string, Node>();
  const createNode = new Map<string, Node>(); // fact id → node that creates it (possibly its parent's)
  const alterNode = new Map<string, Node>();
  const cleanupNode = new Map<string, Node>();

  // drops
  const impliedBy = (f: Fact): string | undefined => {
    let cur = f;
    let host: string | undefined;
    while (cur.parent !== undefined && dropped.has(cur.parent) && holds(kindSpec(cur.kind).droppedWithParent, cur) && !renameDance.has(cur.parent)) {
      host = cur.parent;
      cur = T.get(cur.parent)!;
    }
    return host;
  };
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
  for (const id of renameDance) cleanupNode.set(id, node('cleanup', T.get(id)!));

  // creates (folding children into their parent's CREATE where that is how PostgreSQL wants them)
  const foldInto = (f: Fact): string | undefined => {
    if (!f.parent || !created.has(f.parent)) return undefined;
    const into = kindSpec(f.kind).foldsInto;
    return into !== undefined && S.get(f.parent)!.kind === into ? f.parent : undefined;
  };
  const createIds = [...created].sort(cmp);
  for (const id of createIds) {
    const f = S.get(id)!;
    if (foldInto(f)) continue;
    createNode.set(id, node('create', f));
  }
  for (const id of createIds) {
    const f = S.get(id)!;
    let h = foldInto(f);
    if (h === undefined) continue;
    for (let hf = S.get(h)!; foldInto(hf); hf = S.get(h)!) h = foldInto(hf)!;
    const n = createNode.get(h)!;
    n.folded.push(f);
    createNode.set(id, n);
  }

  // in-place alters and retypes
  for (const [id, r] of inPlace) {
    if (R.has(id)) continue;
    if (!r.sql.length && !retype.has(id)) continue;
    alterNode.set(id, node('alter', S.get(id)!));
  }
  for (const id of retype) alterNode.set(id, alterNode.get(id) ?? node('alter', S.get(id)!));

  // edges
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
    for (const dep of y.deps) {
      if (dy) {
        edge(dy, dropNode.get(dep));
        edge(dy, alterNode.get(dep));
      }
      if (ay && !renameDance.has(dep)) edge(ay, dropNode.get(dep)); // a renamed type lives on until its cleanup
    }
  }
  // new graph: dependencies go first
  for (const y of source.facts) {
    const cy = createNode.get(y.id);
    const ay = alterNode.get(y.id);
    for (const dep of y.deps) {
      for (const t of [cy, ay]) {
        edge(createNode.get(dep), t);
        edge(alterNode.get(dep), t);
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
      for (const y of [`default:${pt}.${c}`, `column:${pt}.${c}`, `child_column:${pt}.${c}`]) {
        edge(dropNode.get(y), n);
        edge(alterNode.get(y), n);
        edge(createNode.get(y), n);
      }
    }
  }
  // names: a drop frees a name a create may need
  const dropByName = new Map<string, Node[]>();
  for (const id of dropped) {
    const f = T.get(id)!;
    const k = kindSpec(f.kind).name?.(f);
    if (k) (dropByName.get(k) ?? dropByName.set(k, []).get(k)!).push(dropNode.get(id)!);
  }
  for (const id of created) {
    const f = S.get(id)!;
    const k = kindSpec(f.kind).name?.(f);
    if (!k) continue;
    for (const dn of dropByName.get(k) ?? []) edge(dn, createNode.get(id));
  }

  // deterministic topological sort
  const less = (a: Node, b: Node) => (OP_RANK[a.op] !== OP_RANK[b.op] ? OP_RANK[a.op] < OP_RANK[b.op] : a.key < b.key);
  const heap = new Heap<Node>(less);
  for (const n of all) if (indeg.get(n) === 0) heap.push(n);
  const sorted: Node[] = [];
  const done = new Set<Node>();
  while (sorted.length < all.length) {
    let n = heap.pop();
    if (!n) {
      // a cycle: break it at the smallest remaining node
      n = all.filter((y) => !done.has(y)).sort((a, b) => indeg.get(a)! - indeg.get(b)! || (less(a, b) ? -1 : 1))[0]!;
    }
    if (done.has(n)) continue;
    done.add(n);
    sorted.push(n);
    for (const m of succ.get(n)!) {
      const dg = indeg.get(m)! - 1;
      indeg.set(m, dg);
      if (dg === 0 && !done.has(m)) heap.push(m);
    }
  }
  return sorted;
}

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

// ---------------------------------------------------------------- phase 4: emit

/** A node's statements and hazards, from the rules (the only place the plan's SQL is written). */
function render(n: Node, d: Diff, x: Expansion): { sql: string[]; hazards: Hazard[] } {
  const { ctx } = d;
  const f = n.fact;
  const id = f.id;
  const rule = kindSpec(f.kind).rule;
  const sql: string[] = [];
  const hazards: Hazard[] = [];
  if (n.op === 'cleanup' || (n.op === 'drop' && x.renameDance.has(id))) {
    const tmp = quoteIdent(`${s(f.meta.name)}__nself_old`);
    const kw = kindSpec(f.kind).typeLike!;
    sql.push(n.op === 'drop' ? `ALTER ${kw} ${f.meta.sql} RENAME TO ${tmp}` : `DROP ${kw} ${quoteIdent(splitName(s(f.meta.sql)).schema)}.${tmp}`);
  } else if (n.op === 'drop') {
    const r = rule.drop(f, ctx);
    const rt = f.kind === 'table' ? x.recreatedTables.find((t) => t.schema === f.meta.schema && t.name === f.meta.name) : undefined;
    if (rt) sql.push(...emptyGuard(f, rt.reason));
    sql.push(...r.sql);
    // a recreated column or table loses its data; a recreated view does not
    hazards.push(...r.hazards.filter((h) => !(x.R.has(id) && h.kind === 'deletes_data' && !kindSpec(f.kind).holdsData)));
  } else if (n.op === 'create') {
    const r = rule.create(f, ctx, n.folded);
    sql.push(...r.sql);
    hazards.push(...r.hazards);
  } else {
    const r = x.inPlace.get(id);
    if (r && !x.R.has(id)) {
      sql.push(...r.sql);
      hazards.push(...r.hazards);
    }
    if (x.retype.has(id)) {
      const o = ctx.target.get(id)!;
      const viaText = [...o.deps, ...f.deps].some((dep) => {
        const k = (ctx.target.get(dep) ?? ctx.source.get(dep))?.kind;
        return k !== undefined && kindSpec(k).castViaText === true;
      });
      // the type change goes after DROP IDENTITY / DROP EXPRESSION and before NOT NULL / identity changes
      const idx = sql.findIndex((q) => !/ (DROP IDENTITY|DROP EXPRESSION)$/.test(q));
      sql.splice(idx < 0 ? sql.length : idx, 0, retypeSql(f, viaText));
      if (!r?.hazards.length) hazards.push(...typeChangeHazards(s(f.meta.table), s(f.meta.name), s(o.attrs.type), s(f.attrs.type)).filter((h) => h.kind !== 'deletes_data'));
    }
  }
  return { sql, hazards };
}

/**
 * Ordered steps → the plan: each node's statements (rendered by its rule) with its hazards on the first one, the
 * changes grouped by fact, and the plan errors — roles the target lacks (rules' errors), objects the plan would
 * create or drop around something not handled, and what the target's PostgreSQL version cannot hold.
 */
function emit(sourceModel: SchemaModel, targetModel: SchemaModel, d: Diff, x: Expansion, sorted: Node[]): SchemaPlan {
  const { source, target, ctx, added, changed, notHandled } = d;
  const { R, retype, inPlace, created, dropped, recreatedWhy, recreatedTables } = x;
  const S = ctx.source;
  const T = ctx.target;
  const errors = [...d.errors];

  // roles that do not exist on the target
  const roles = new Set(target.roles);
  for (const f of [...added, ...changed.map((c) => c[1]), ...[...R].map((id) => S.get(id)!)]) {
    const check = kindSpec(f.kind).rule.errors;
    if (check) errors.push(...check(f, roles));
  }

  // objects not handled are never created or dropped around
  const unsT = new Map(target.unsupported.map((u) => [u.kind + '\u0000' + u.identity, u]));
  const what = (f: Fact) => `${f.kind.replace('_', ' ')} ${disp(f.id.slice(f.id.indexOf(':') + 1))}`;
  for (const u of source.unsupported) {
    const t = unsT.get(u.kind + '\u0000' + u.identity);
    if (t && t.def === u.def) continue;
    for (const dep of u.dependents ?? []) {
      const f = S.get(dep);
      if (!f || !created.has(dep)) continue;
      errors.push(`${what(f)} depends on ${u.kind} ${u.identity}, which is not handled and ${t ? 'differs on the target' : 'does not exist on the target'}: the plan cannot create ${what(f)}`);
    }
  }
  for (const u of target.unsupported) {
    for (const dep of u.dependsOn ?? []) {
      const f = T.get(dep);
      if (!f || !(dropped.has(dep) || retype.has(dep))) continue;
      errors.push(`${u.kind} ${u.identity} on the target depends on ${what(f)}, which the plan would ${dropped.has(dep) ? 'drop' : 'change the type of'}; ${u.kind} objects are not handled, so the plan cannot go around it`);
    }
  }

  // what the target's PostgreSQL version cannot hold
  errors.push(...targetVersionErrors([...added, ...changed.map((c) => c[1]), ...[...R].map((id) => S.get(id)!)], changed, target));

  const statements: SchemaStatement[] = [];
  const changes = new Map<string, SchemaChange>();
  for (const n of sorted) {
    const r = render(n, d, x);
    if (!r.sql.length) continue;
    r.sql.forEach((sql, i) => statements.push({ sql, hazards: i === 0 ? r.hazards : [] }));
    const f = n.fact;
    const action: SchemaChange['action'] = R.has(f.id) || retype.has(f.id) || inPlace.has(f.id) ? 'alter' : n.op === 'drop' ? 'drop' : n.op === 'create' ? 'create' : 'alter';
    let c = changes.get(f.id);
    if (!c) changes.set(f.id, (c = { kind: f.kind, identity: f.id.slice(f.id.indexOf(':') + 1), action, hazards: [], sql: [], ...(recreatedWhy.has(f.id) ? { reason: recreatedWhy.get(f.id) } : {}) }));
    c.sql.push(...r.sql);
    c.hazards.push(...r.hazards);
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
