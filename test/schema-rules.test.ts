/**
 * Each rule module on its own (no database): facts in, exact statements out. One table per module; a row is the
 * fact(s) and what the rule must render — statements and hazard kinds, or `null` where the change has no in-place
 * form and the object is recreated. Then the registry's own promises (every kind covered, hazards declared,
 * unknown kinds refused) and its properties as the planner's phases use them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Fact, SchemaModel } from '../src/schema/model.ts';
import { planSchema } from '../src/schema/plan.ts';
import { ruleContext, type Hazard } from '../src/schema/rules/core.ts';
import { retypeSql } from '../src/schema/rules/columns.ts';
import { KINDS, kindSpec } from '../src/schema/rules/registry.ts';

type Attrs = Fact['attrs'];
const T = '"public"."t"';
function fact(kind: string, id: string, attrs: Attrs, meta: Fact['meta'], parent?: string, deps: string[] = []): Fact {
  return { id, kind, attrs, meta, deps, ...(parent !== undefined ? { parent } : {}) };
}
const table = (name = 't', attrs: Attrs = {}): Fact =>
  fact('table', `table:"public"."${name}"`, { unlogged: false, partkey: null, options: [], rls: false, rlsForce: false, am: null, ...attrs }, { sql: `"public"."${name}"`, schema: 'public', name });
const column = (name: string, type: string, attrs: Attrs = {}, t = 't', pos = 1): Fact =>
  fact('column', `column:"public"."${t}"."${name}"`, { type, notnull: false, collation: null, identity: null, generated: null, ...attrs }, { sql: `"${name}"`, name, table: `"public"."${t}"`, pos }, `table:"public"."${t}"`);
const columnDefault = (col: string, expr: string, t = 't'): Fact =>
  fact('default', `default:"public"."${t}"."${col}"`, { expr }, { table: `"public"."${t}"`, column: `"${col}"` }, `column:"public"."${t}"."${col}"`);
const withAttrs = (f: Fact, attrs: Attrs, deps = f.deps): Fact => ({ ...f, attrs: { ...f.attrs, ...attrs }, deps });

interface Row {
  name: string;
  op: 'create' | 'drop' | 'alter';
  /** create/drop: the fact; alter: [target's, source's] */
  f: Fact | [Fact, Fact];
  /** other facts of the source model (and of the target, for drops) the rule may look at */
  source?: Fact[];
  target?: Fact[];
  /** facts created within this one's statement (create) */
  folded?: Fact[];
  /** statements, or null: recreated (no in-place form) */
  sql: string[] | null;
  hazards?: Hazard['kind'][];
  /** alter: the change includes an ALTER COLUMN … TYPE (rendered by the planner with retypeSql) */
  retype?: boolean;
}

function run(r: Row): { sql: string[]; hazards: Hazard[]; retype?: boolean } | null {
  const f = Array.isArray(r.f) ? r.f[1] : r.f;
  const rule = kindSpec(f.kind).rule;
  const src = [...(r.source ?? []), ...(r.op === 'drop' ? [] : [f])];
  const tgt = [...(r.target ?? []), ...(r.op === 'create' ? [] : [Array.isArray(r.f) ? r.f[0] : r.f])];
  const ctx = ruleContext(src, tgt);
  if (r.op === 'create') return rule.create(f, ctx, r.folded ?? []);
  if (r.op === 'drop') return rule.drop(f, ctx);
  const [o, n] = r.f as [Fact, Fact];
  return rule.alter ? rule.alter(o, n, ctx) : null;
}

const seen = new Set<string>();
function table_(module: string, rows: Row[]) {
  test(`rules: ${module}`, () => {
    for (const r of rows) {
      const f = Array.isArray(r.f) ? r.f[1] : r.f;
      seen.add(f.kind);
      const got = run(r);
      if (r.sql === null) {
        assert.equal(got, null, `${r.name}: expected a recreate, got ${JSON.stringify(got)}`);
        continue;
      }
      assert.ok(got, `${r.name}: expected an in-place change, got a recreate`);
      assert.deepEqual(got.sql, r.sql, r.name);
      const hz = got.hazards.map((h) => h.kind);
      assert.deepEqual(hz, r.hazards ?? [], `${r.name}: hazards`);
      for (const k of hz) assert.ok(kindSpec(f.kind).hazards.includes(k), `${r.name}: hazard ${k} is not declared in the registry line of ${f.kind}`);
      if (r.op === 'alter') assert.equal(!!got.retype, !!r.retype, `${r.name}: retype`);
    }
  });
}

// ---------------------------------------------------------------- schemas.ts
const ext = fact('extension', 'extension:"pg_trgm"', { schema: 'public', version: '1.5' }, { sql: '"pg_trgm"' });
table_('schemas', [
  { name: 'schema create', op: 'create', f: fact('schema', 'schema:"app"', {}, { sql: '"app"', name: 'app' }), sql: ['CREATE SCHEMA "app"'] },
  { name: 'schema drop', op: 'drop', f: fact('schema', 'schema:"app"', {}, { sql: '"app"', name: 'app' }), sql: ['DROP SCHEMA "app"'] },
  { name: 'extension create (version pinned)', op: 'create', f: ext, sql: [`CREATE EXTENSION "pg_trgm" WITH SCHEMA "public" VERSION '1.5'`] },
  { name: 'extension update and move, in place', op: 'alter', f: [ext, withAttrs(ext, { schema: 'ext', version: '1.10' })], sql: ['ALTER EXTENSION "pg_trgm" SET SCHEMA "ext"', `ALTER EXTENSION "pg_trgm" UPDATE TO '1.10'`] },
  { name: 'extension downgrade: recreated', op: 'alter', f: [withAttrs(ext, { version: '1.6' }), ext], sql: null },
]);

// ---------------------------------------------------------------- types.ts
const st = fact('enum', 'type:"public"."st"', { labels: ['a', 'b'] }, { sql: '"public"."st"', schema: 'public', name: 'st' });
const pos = fact('domain', 'type:"public"."pos"', { basetype: 'integer', collation: null, default: '0', notnull: true }, { sql: '"public"."pos"', schema: 'public', name: 'pos' });
table_('types', [
  { name: 'icu collation', op: 'create', f: fact('collation', 'collation:"public"."ci"', { provider: 'i', collate: 'und-u-ks-level2', deterministic: false }, { sql: '"public"."ci"', locale: 'und-u-ks-level2' }), sql: [`CREATE COLLATION "public"."ci" (provider = icu, locale = 'und-u-ks-level2', deterministic = false)`] },
  { name: 'libc collation', op: 'create', f: fact('collation', 'collation:"public"."c"', { provider: 'c', collate: 'C', ctype: 'C', deterministic: true }, { sql: '"public"."c"' }), sql: [`CREATE COLLATION "public"."c" (provider = libc, lc_collate = 'C', lc_ctype = 'C')`] },
  { name: 'collation change: recreated', op: 'alter', f: [fact('collation', 'collation:"public"."c"', { provider: 'c', collate: 'C', ctype: 'C' }, { sql: '"public"."c"' }), fact('collation', 'collation:"public"."c"', { provider: 'c', collate: 'POSIX', ctype: 'C' }, { sql: '"public"."c"' })], sql: null },
  { name: 'enum create revokes the default PUBLIC usage', op: 'create', f: st, sql: [`CREATE TYPE "public"."st" AS ENUM ('a', 'b')`, 'REVOKE ALL ON TYPE "public"."st" FROM PUBLIC'] },
  { name: 'enum create keeps a PUBLIC grant of the source', op: 'create', f: st, source: [fact('acl', 'acl:type:"public"."st":PUBLIC', { privs: ['USAGE'] }, {}, st.id)], sql: [`CREATE TYPE "public"."st" AS ENUM ('a', 'b')`] },
  { name: 'enum value appended: ADD VALUE in place', op: 'alter', f: [st, withAttrs(st, { labels: ['a', 'b', 'c'] })], sql: [`ALTER TYPE "public"."st" ADD VALUE 'c' AFTER 'b'`] },
  { name: 'enum value prepended', op: 'alter', f: [st, withAttrs(st, { labels: ['z', 'a', 'b'] })], sql: [`ALTER TYPE "public"."st" ADD VALUE 'z' BEFORE 'a'`] },
  { name: 'enum value removed: recreated', op: 'alter', f: [st, withAttrs(st, { labels: ['a'] })], sql: null },
  { name: 'enum values reordered: recreated', op: 'alter', f: [st, withAttrs(st, { labels: ['b', 'a'] })], sql: null },
  { name: 'domain create', op: 'create', f: pos, sql: ['CREATE DOMAIN "public"."pos" AS integer DEFAULT 0 NOT NULL', 'REVOKE ALL ON DOMAIN "public"."pos" FROM PUBLIC'] },
  { name: 'domain default and NOT NULL in place', op: 'alter', f: [pos, withAttrs(pos, { default: null, notnull: false })], sql: ['ALTER DOMAIN "public"."pos" DROP DEFAULT', 'ALTER DOMAIN "public"."pos" DROP NOT NULL'] },
  { name: 'domain base type: recreated', op: 'alter', f: [pos, withAttrs(pos, { basetype: 'bigint' })], sql: null },
  { name: 'domain, only a dependency changed: recreated', op: 'alter', f: [pos, withAttrs(pos, {}, ['schema:"public"'])], sql: null },
  { name: 'domain constraint create', op: 'create', f: fact('domain_constraint', 'domain_constraint:"public"."pos"."pos_check"', { def: 'CHECK (VALUE > 0)' }, { domain: '"public"."pos"', name: 'pos_check' }, pos.id), sql: ['ALTER DOMAIN "public"."pos" ADD CONSTRAINT "pos_check" CHECK (VALUE > 0)'] },
  { name: 'domain constraint drop', op: 'drop', f: fact('domain_constraint', 'domain_constraint:"public"."pos"."pos_check"', { def: 'CHECK (VALUE > 0)' }, { domain: '"public"."pos"', name: 'pos_check' }, pos.id), sql: ['ALTER DOMAIN "public"."pos" DROP CONSTRAINT "pos_check"'] },
  { name: 'composite create', op: 'create', f: fact('composite', 'type:"public"."pt"', { attributes: ['x integer', 'y text'] }, { sql: '"public"."pt"' }), sql: ['CREATE TYPE "public"."pt" AS (x integer, y text)', 'REVOKE ALL ON TYPE "public"."pt" FROM PUBLIC'] },
  { name: 'composite change: recreated', op: 'alter', f: [fact('composite', 'type:"public"."pt"', { attributes: ['x integer'] }, { sql: '"public"."pt"' }), fact('composite', 'type:"public"."pt"', { attributes: ['x bigint'] }, { sql: '"public"."pt"' })], sql: null },
  { name: 'range create', op: 'create', f: fact('range', 'type:"public"."nr"', { subtype: 'numeric', opclass: null, collation: null, canonical: null, subdiff: 'public.nd' }, { sql: '"public"."nr"' }), sql: ['CREATE TYPE "public"."nr" AS RANGE (SUBTYPE = numeric, SUBTYPE_DIFF = public.nd)', 'REVOKE ALL ON TYPE "public"."nr" FROM PUBLIC'] },
  { name: 'range drop', op: 'drop', f: fact('range', 'type:"public"."nr"', { subtype: 'numeric' }, { sql: '"public"."nr"' }), sql: ['DROP TYPE "public"."nr"'] },
]);

// ---------------------------------------------------------------- sequences.ts
const seq = fact('sequence', 'sequence:"public"."s"', { type: 'bigint', increment: 1, min: 1, max: '9223372036854775807', start: 1, cache: 1, cycle: false }, { sql: '"public"."s"' });
const owned = fact('seq_owned', 'seq_owned:"public"."s"', { column: '"public"."t"."id"' }, { seq: '"public"."s"' }, seq.id);
table_('sequences', [
  { name: 'sequence create', op: 'create', f: seq, sql: ['CREATE SEQUENCE "public"."s" AS bigint INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1 NO CYCLE'] },
  { name: 'sequence drop loses its value', op: 'drop', f: seq, sql: ['DROP SEQUENCE IF EXISTS "public"."s"'], hazards: ['deletes_data'] },
  { name: 'sequence settings in place', op: 'alter', f: [seq, withAttrs(seq, { increment: 5, cycle: true })], sql: ['ALTER SEQUENCE "public"."s" AS bigint INCREMENT BY 5 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1 CYCLE'] },
  { name: 'sequence, only a dependency changed: recreated', op: 'alter', f: [seq, withAttrs(seq, {}, ['schema:"public"'])], sql: null },
  { name: 'OWNED BY', op: 'create', f: owned, sql: ['ALTER SEQUENCE "public"."s" OWNED BY "public"."t"."id"'] },
  { name: 'OWNED BY NONE', op: 'drop', f: owned, sql: ['ALTER SEQUENCE "public"."s" OWNED BY NONE'] },
  { name: 'OWNED BY another column, in place', op: 'alter', f: [owned, withAttrs(owned, { column: '"public"."t"."n"' })], sql: ['ALTER SEQUENCE "public"."s" OWNED BY "public"."t"."n"'] },
]);

// ---------------------------------------------------------------- tables.ts
const t = table();
const id = column('id', 'integer', { notnull: true }, 't', 1);
const nameCol = column('name', 'text', {}, 't', 2);
const nameDef = columnDefault('name', `'x'::text`);
const m = table('m', { partkey: 'RANGE (id)', rls: true });
const p = table('p');
const part = fact('partition', 'partition:"public"."p"', { bound: 'FOR VALUES FROM (1) TO (10)' }, { parent: '"public"."m"', child: '"public"."p"' }, p.id);
const pk = fact('constraint', `constraint:${T}."t_pkey"`, { type: 'p', def: 'PRIMARY KEY (id)' }, { table: T, name: 't_pkey' }, t.id);
table_('tables', [
  { name: 'table with its columns and a default folded in', op: 'create', f: t, source: [id, nameCol, nameDef], folded: [id, nameCol, nameDef], sql: [`CREATE TABLE "public"."t" (\n    "id" integer NOT NULL,\n    "name" text DEFAULT 'x'::text\n)`] },
  { name: 'table without folded columns (they are added on their own)', op: 'create', f: t, source: [id], sql: ['CREATE TABLE "public"."t" ()'] },
  { name: 'partitioned table with row-level security', op: 'create', f: m, sql: ['CREATE TABLE "public"."m" () PARTITION BY RANGE (id)', 'ALTER TABLE "public"."m" ENABLE ROW LEVEL SECURITY'] },
  { name: 'partition created as one', op: 'create', f: p, source: [part], folded: [part], sql: ['CREATE TABLE "public"."p" PARTITION OF "public"."m" FOR VALUES FROM (1) TO (10)'] },
  { name: 'table drop', op: 'drop', f: t, sql: ['DROP TABLE "public"."t"'], hazards: ['deletes_data'] },
  { name: 'unlogged in place (rewrite)', op: 'alter', f: [t, withAttrs(t, { unlogged: true })], sql: ['ALTER TABLE "public"."t" SET UNLOGGED'], hazards: ['rewrites_table', 'exclusive_lock'] },
  { name: 'storage options in place', op: 'alter', f: [withAttrs(t, { options: ['fillfactor=70'] }), withAttrs(t, { options: ['autovacuum_enabled=false'] })], sql: ['ALTER TABLE "public"."t" RESET (fillfactor)', 'ALTER TABLE "public"."t" SET (autovacuum_enabled=false)'] },
  { name: 'row-level security forced in place', op: 'alter', f: [t, withAttrs(t, { rls: true, rlsForce: true })], sql: ['ALTER TABLE "public"."t" ENABLE ROW LEVEL SECURITY', 'ALTER TABLE "public"."t" FORCE ROW LEVEL SECURITY'] },
  { name: 'partition key changed: recreated', op: 'alter', f: [m, withAttrs(m, { partkey: 'LIST (id)' })], sql: null },
  { name: 'INHERIT', op: 'create', f: fact('inherit', 'inherit:"public"."c":"public"."t"', {}, { child: '"public"."c"', parent: T, seq: 1 }, 'table:"public"."c"'), sql: ['ALTER TABLE "public"."c" INHERIT "public"."t"'] },
  { name: 'NO INHERIT', op: 'drop', f: fact('inherit', 'inherit:"public"."c":"public"."t"', {}, { child: '"public"."c"', parent: T, seq: 1 }, 'table:"public"."c"'), sql: ['ALTER TABLE "public"."c" NO INHERIT "public"."t"'] },
  { name: 'ATTACH PARTITION scans the table', op: 'create', f: part, sql: ['ALTER TABLE "public"."m" ATTACH PARTITION "public"."p" FOR VALUES FROM (1) TO (10)'], hazards: ['exclusive_lock'] },
  { name: 'DETACH PARTITION', op: 'drop', f: part, sql: ['ALTER TABLE "public"."m" DETACH PARTITION "public"."p"'] },
  { name: 'partition bound changed: recreated (detach, attach)', op: 'alter', f: [part, withAttrs(part, { bound: 'FOR VALUES FROM (1) TO (20)' })], sql: null },
  { name: 'REPLICA IDENTITY FULL', op: 'create', f: fact('replica_identity', `replica_identity:${T}`, { identity: 'f' }, { table: T }, t.id), sql: ['ALTER TABLE "public"."t" REPLICA IDENTITY FULL'] },
  { name: 'REPLICA IDENTITY USING INDEX, in place', op: 'alter', f: [fact('replica_identity', `replica_identity:${T}`, { identity: 'n' }, { table: T }, t.id), fact('replica_identity', `replica_identity:${T}`, { identity: 'i', index: 't_pkey' }, { table: T }, t.id)], sql: ['ALTER TABLE "public"."t" REPLICA IDENTITY USING INDEX "t_pkey"'] },
  { name: 'REPLICA IDENTITY DEFAULT', op: 'drop', f: fact('replica_identity', `replica_identity:${T}`, { identity: 'f' }, { table: T }, t.id), sql: ['ALTER TABLE "public"."t" REPLICA IDENTITY DEFAULT'] },
  { name: 'CLUSTER ON', op: 'create', f: fact('cluster', `cluster:${T}`, { index: 't_pkey' }, { table: T }, t.id), sql: ['ALTER TABLE "public"."t" CLUSTER ON "t_pkey"'] },
  { name: 'SET WITHOUT CLUSTER', op: 'drop', f: fact('cluster', `cluster:${T}`, { index: 't_pkey' }, { table: T }, t.id), sql: ['ALTER TABLE "public"."t" SET WITHOUT CLUSTER'] },
  { name: 'primary key builds an index and validates', op: 'create', f: pk, sql: ['ALTER TABLE "public"."t" ADD CONSTRAINT "t_pkey" PRIMARY KEY (id)'], hazards: ['builds_index', 'exclusive_lock'] },
  { name: 'a NOT VALID foreign key validates nothing', op: 'create', f: fact('constraint', `constraint:${T}."t_fk"`, { type: 'f', def: 'FOREIGN KEY (a) REFERENCES public.u(id) NOT VALID' }, { table: T, name: 't_fk' }, t.id), sql: ['ALTER TABLE "public"."t" ADD CONSTRAINT "t_fk" FOREIGN KEY (a) REFERENCES public.u(id) NOT VALID'] },
  { name: 'a PostgreSQL 18 NOT NULL constraint is the column\'s notnull: no statement', op: 'create', f: fact('constraint', `constraint:${T}."t_id_not_null"`, { type: 'n', def: 'NOT NULL id' }, { table: T, name: 't_id_not_null' }, t.id), sql: [] },
  { name: 'constraint drop', op: 'drop', f: pk, sql: ['ALTER TABLE "public"."t" DROP CONSTRAINT "t_pkey"'] },
  { name: 'constraint changed: recreated', op: 'alter', f: [pk, withAttrs(pk, { def: 'PRIMARY KEY (id, name)' })], sql: null },
]);

// ---------------------------------------------------------------- columns.ts
const a = column('a', 'integer');
const identityOpts = (inc: number) => `START WITH 1 INCREMENT BY ${inc} MINVALUE 1 MAXVALUE 100 CACHE 1 NO CYCLE`;
const p_a = fact('child_column', 'child_column:"public"."p"."a"', { default: '5', notnull: true }, { table: '"public"."p"', column: '"a"', parentTable: '"public"."m"' }, p.id);
table_('columns', [
  { name: 'add column with its default', op: 'create', f: nameCol, source: [nameDef], sql: [`ALTER TABLE "public"."t" ADD COLUMN "name" text DEFAULT 'x'::text`] },
  { name: 'add identity column (rewrite)', op: 'create', f: column('id', 'bigint', { notnull: true, identity: 'd' }), sql: ['ALTER TABLE "public"."t" ADD COLUMN "id" bigint GENERATED BY DEFAULT AS IDENTITY NOT NULL'], hazards: ['rewrites_table'] },
  { name: 'add column with its own settings', op: 'create', f: column('doc', 'text', { storage: 'm', statistics: 500, options: ['n_distinct=-1'] }), sql: ['ALTER TABLE "public"."t" ADD COLUMN "doc" text', 'ALTER TABLE "public"."t" ALTER COLUMN "doc" SET (n_distinct=-1)', 'ALTER TABLE "public"."t" ALTER COLUMN "doc" SET STATISTICS 500', 'ALTER TABLE "public"."t" ALTER COLUMN "doc" SET STORAGE MAIN'] },
  { name: 'drop column deletes data', op: 'drop', f: a, sql: ['ALTER TABLE "public"."t" DROP COLUMN "a"'], hazards: ['deletes_data'] },
  { name: 'drop generated column: nothing lost', op: 'drop', f: column('g', 'integer', { generated: 'a * 2' }), sql: ['ALTER TABLE "public"."t" DROP COLUMN "g"'] },
  { name: 'widening integer → bigint: retype (rewrite)', op: 'alter', f: [a, withAttrs(a, { type: 'bigint' })], sql: [], hazards: ['rewrites_table', 'exclusive_lock'], retype: true },
  { name: 'narrowing bigint → integer deletes data', op: 'alter', f: [withAttrs(a, { type: 'bigint' }), a], sql: [], hazards: ['deletes_data', 'rewrites_table', 'exclusive_lock'], retype: true },
  { name: 'varchar(10) → varchar(20): no rewrite', op: 'alter', f: [withAttrs(a, { type: 'character varying(10)' }), withAttrs(a, { type: 'character varying(20)' })], sql: [], retype: true },
  { name: 'SET NOT NULL scans under a lock', op: 'alter', f: [a, withAttrs(a, { notnull: true })], sql: ['ALTER TABLE "public"."t" ALTER COLUMN "a" SET NOT NULL'], hazards: ['exclusive_lock'] },
  { name: 'identity options in place', op: 'alter', f: [withAttrs(a, { identity: 'd', identityOptions: identityOpts(1) }), withAttrs(a, { identity: 'd', identityOptions: identityOpts(2) })], sql: ['ALTER TABLE "public"."t" ALTER COLUMN "a" SET START WITH 1 SET INCREMENT BY 2 SET MINVALUE 1 SET MAXVALUE 100 SET CACHE 1 SET NO CYCLE'] },
  { name: 'identity dropped', op: 'alter', f: [withAttrs(a, { identity: 'a' }), a], sql: ['ALTER TABLE "public"."t" ALTER COLUMN "a" DROP IDENTITY'] },
  { name: 'storage and compression in place', op: 'alter', f: [withAttrs(a, { storage: 'x' }), withAttrs(a, { storage: 'e', compression: 'l' })], sql: ['ALTER TABLE "public"."t" ALTER COLUMN "a" SET STORAGE EXTERNAL', 'ALTER TABLE "public"."t" ALTER COLUMN "a" SET COMPRESSION lz4'] },
  { name: 'becomes generated: recreated', op: 'alter', f: [a, withAttrs(a, { generated: 'b * 2' })], sql: null },
  { name: 'stored → virtual: recreated', op: 'alter', f: [withAttrs(a, { generated: 'b * 2' }), withAttrs(a, { generated: 'b * 2', virtual: true })], sql: null },
  { name: 'only its type object was replaced: converted (retype)', op: 'alter', f: [a, withAttrs(a, {}, ['type:"public"."x"'])], sql: [], retype: true },
  { name: 'SET DEFAULT', op: 'create', f: nameDef, sql: [`ALTER TABLE "public"."t" ALTER COLUMN "name" SET DEFAULT 'x'::text`] },
  { name: 'DROP DEFAULT', op: 'drop', f: nameDef, sql: ['ALTER TABLE "public"."t" ALTER COLUMN "name" DROP DEFAULT'] },
  { name: 'another default, in place', op: 'alter', f: [nameDef, withAttrs(nameDef, { expr: `'y'::text` })], sql: [`ALTER TABLE "public"."t" ALTER COLUMN "name" SET DEFAULT 'y'::text`] },
  { name: 'default, only a dependency changed: recreated', op: 'alter', f: [nameDef, withAttrs(nameDef, {}, ['function:"public"."f"()'])], sql: null },
  { name: 'a partition sets its own default and NOT NULL', op: 'create', f: p_a, sql: ['ALTER TABLE "public"."p" ALTER COLUMN "a" SET DEFAULT 5', 'ALTER TABLE "public"."p" ALTER COLUMN "a" SET NOT NULL'] },
  {
    name: 'a partition follows its parent\'s default again', op: 'drop', f: p_a, source: [p, part, columnDefault('a', '1', 'm'), column('a', 'integer', {}, 'm')],
    sql: ['ALTER TABLE "public"."p" ALTER COLUMN "a" SET DEFAULT 1', 'ALTER TABLE "public"."p" ALTER COLUMN "a" DROP NOT NULL'],
  },
  { name: 'no longer a partition: its columns are its own, nothing to do', op: 'drop', f: p_a, source: [p], sql: [] },
  { name: 'own default changed, in place', op: 'alter', f: [p_a, withAttrs(p_a, { default: '6' })], sql: ['ALTER TABLE "public"."p" ALTER COLUMN "a" SET DEFAULT 6'] },
]);

test('rules: columns — the type conversion the planner adds (retypeSql)', () => {
  assert.equal(retypeSql(withAttrs(a, { type: 'bigint' }), false), 'ALTER TABLE "public"."t" ALTER COLUMN "a" TYPE bigint USING "a"::bigint');
  assert.equal(retypeSql(withAttrs(a, { type: 'public.st', collation: null }), true), 'ALTER TABLE "public"."t" ALTER COLUMN "a" TYPE public.st USING "a"::text::public.st');
  assert.equal(retypeSql(withAttrs(a, { type: 'text', collation: '"C"' }), false), 'ALTER TABLE "public"."t" ALTER COLUMN "a" TYPE text COLLATE "C" USING "a"::text');
});

// ---------------------------------------------------------------- indexes.ts
const idx = fact('index', 'index:"public"."t_a_idx"', { def: 'CREATE INDEX t_a_idx ON public.t USING btree (a)' }, { sql: '"public"."t_a_idx"', table: T }, t.id);
const stx = fact('statistics', 'statistics:"public"."t_st"', { def: 'CREATE STATISTICS public.t_st (ndistinct) ON a, b FROM public.t', target: 500 }, { sql: '"public"."t_st"', table: T }, t.id);
const pidx = fact('partition_index', 'partition_index:"public"."t":"public"."p_k"', { name: 't_own' }, { sql: '"public"."t_own"', table: T, parentIndex: '"public"."p_k"' }, t.id);
table_('indexes', [
  { name: 'index create builds it', op: 'create', f: idx, sql: ['CREATE INDEX t_a_idx ON public.t USING btree (a)'], hazards: ['builds_index'] },
  {
    name: 'a partitioned table’s index is made on its partitions too (not ON ONLY)', op: 'create', f: withAttrs(idx, { def: 'CREATE UNIQUE INDEX "p k" ON ONLY public.p USING btree (a)' }),
    sql: ['CREATE UNIQUE INDEX "p k" ON public.p USING btree (a)'], hazards: ['builds_index'],
  },
  { name: 'index drop', op: 'drop', f: idx, sql: ['DROP INDEX "public"."t_a_idx"'] },
  { name: 'index changed: recreated', op: 'alter', f: [idx, withAttrs(idx, { def: 'CREATE INDEX t_a_idx ON public.t USING hash (a)' })], sql: null },
  { name: 'statistics with its target', op: 'create', f: stx, sql: ['CREATE STATISTICS public.t_st (ndistinct) ON a, b FROM public.t', 'ALTER STATISTICS "public"."t_st" SET STATISTICS 500'] },
  { name: 'statistics target in place', op: 'alter', f: [stx, { ...stx, attrs: { def: stx.attrs.def } }], sql: ['ALTER STATISTICS "public"."t_st" SET STATISTICS -1'] },
  { name: 'statistics definition changed: recreated', op: 'alter', f: [stx, withAttrs(stx, { def: 'CREATE STATISTICS public.t_st (mcv) ON a, b FROM public.t' })], sql: null },
  { name: 'statistics drop', op: 'drop', f: stx, sql: ['DROP STATISTICS "public"."t_st"'] },
  {
    name: 'a partition’s index under a partitioned index: the one attached is renamed (found when it runs)', op: 'create', f: pidx,
    sql: [`DO 'DECLARE i regclass := (SELECT h.inhrelid::regclass FROM pg_inherits h JOIN pg_index x ON x.indexrelid = h.inhrelid WHERE h.inhparent = ''"public"."p_k"''::regclass AND x.indrelid = ''"public"."t"''::regclass); `
      + `BEGIN IF i IS NULL THEN RAISE EXCEPTION USING MESSAGE = ''no index of public.t is attached to public.p_k''; END IF; `
      + `IF (SELECT relname FROM pg_class WHERE oid = i) <> ''t_own'' THEN EXECUTE ''ALTER INDEX '' || i::text || '' RENAME TO "t_own"''; END IF; END'`],
  },
  { name: 'a partition’s index renamed in place', op: 'alter', f: [withAttrs({ ...pidx, meta: { ...pidx.meta, sql: '"public"."t_k_idx"' } }, { name: 't_k_idx' }), pidx], sql: ['ALTER INDEX "public"."t_k_idx" RENAME TO "t_own"'] },
  { name: 'a partition’s index goes with its partition or partitioned index', op: 'drop', f: pidx, sql: [] },
]);

// ---------------------------------------------------------------- routines.ts
const fnDef = (body: string) => `CREATE OR REPLACE FUNCTION public.f(a integer)\n RETURNS integer\n LANGUAGE sql\nAS $function$${body}$function$\n`;
const fn = fact('function', 'function:"public"."f"(integer)', { def: fnDef('select a'), args: 'a integer', result: 'integer' }, { sql: '"public"."f"(integer)' });
const proc = fact('procedure', 'procedure:"public"."pr"()', { def: 'CREATE OR REPLACE PROCEDURE public.pr()\n LANGUAGE sql\nAS $procedure$select 1$procedure$\n', args: '' }, { sql: '"public"."pr"()' });
const agg = fact('aggregate', 'aggregate:"public"."agg"(text)', { def: 'CREATE AGGREGATE public.agg(text) (SFUNC = public.f2, STYPE = text)' }, { sql: '"public"."agg"(text)', fnSql: '"public"."agg"(text)' });
table_('routines', [
  { name: 'function create revokes the default PUBLIC execute', op: 'create', f: fn, sql: [fnDef('select a'), 'REVOKE ALL ON FUNCTION "public"."f"(integer) FROM PUBLIC'] },
  { name: 'function body: CREATE OR REPLACE in place', op: 'alter', f: [fn, withAttrs(fn, { def: fnDef('select a + 1') })], sql: [fnDef('select a + 1')] },
  { name: 'function result type: recreated', op: 'alter', f: [fn, withAttrs(fn, { result: 'bigint' })], sql: null },
  { name: 'function drop', op: 'drop', f: fn, sql: ['DROP FUNCTION "public"."f"(integer)'] },
  { name: 'procedure create', op: 'create', f: proc, sql: [String(proc.attrs.def), 'REVOKE ALL ON PROCEDURE "public"."pr"() FROM PUBLIC'] },
  { name: 'procedure arguments: recreated', op: 'alter', f: [proc, withAttrs(proc, { args: 'a integer' })], sql: null },
  { name: 'aggregate create', op: 'create', f: agg, sql: [String(agg.attrs.def), 'REVOKE ALL ON FUNCTION "public"."agg"(text) FROM PUBLIC'] },
  { name: 'aggregate changed: recreated', op: 'alter', f: [agg, withAttrs(agg, { def: 'CREATE AGGREGATE public.agg(text) (SFUNC = public.f3, STYPE = text)' })], sql: null },
  { name: 'aggregate drop', op: 'drop', f: agg, sql: ['DROP AGGREGATE "public"."agg"(text)'] },
]);

// ---------------------------------------------------------------- views.ts
const v = fact('view', 'view:"public"."v"', { def: ' SELECT t.id\n   FROM public.t;', options: ['security_invoker=true'], columns: ['id'] }, { sql: '"public"."v"' });
const mv = fact('matview', 'matview:"public"."mv"', { def: ' SELECT 1 AS one;', options: [], columns: ['one'], am: null }, { sql: '"public"."mv"' });
const rule = fact('rule', `rule:${T}."r"`, { def: 'CREATE RULE r AS ON DELETE TO public.t DO INSTEAD NOTHING;', enabled: 'O' }, { table: T, name: 'r' }, t.id, [t.id]);
table_('views', [
  { name: 'view create with options', op: 'create', f: v, sql: ['CREATE VIEW "public"."v" WITH (security_invoker=true) AS\n SELECT t.id\n   FROM public.t;'] },
  { name: 'view create from the server\'s own text (meta.def)', op: 'create', f: { ...v, meta: { ...v.meta, def: ' SELECT id\n   FROM public.t;' } }, sql: ['CREATE VIEW "public"."v" WITH (security_invoker=true) AS\n SELECT id\n   FROM public.t;'] },
  {
    name: 'view: a column appended and an option dropped, in place', op: 'alter', f: [v, withAttrs(v, { def: ' SELECT t.id, t.n\n   FROM public.t;', options: [], columns: ['id', 'n'] })],
    sql: ['ALTER VIEW "public"."v" RESET (security_invoker)', 'CREATE OR REPLACE VIEW "public"."v" AS\n SELECT t.id, t.n\n   FROM public.t;'],
  },
  { name: 'view: a column removed: recreated', op: 'alter', f: [withAttrs(v, { columns: ['id', 'n'] }), v], sql: null },
  { name: 'view drop', op: 'drop', f: v, sql: ['DROP VIEW "public"."v"'] },
  { name: 'materialized view create populates it', op: 'create', f: mv, sql: ['CREATE MATERIALIZED VIEW "public"."mv" AS\n SELECT 1 AS one;'], hazards: ['exclusive_lock'] },
  { name: 'materialized view changed: recreated', op: 'alter', f: [mv, withAttrs(mv, { def: ' SELECT 2 AS one;' })], sql: null },
  { name: 'materialized view drop', op: 'drop', f: mv, sql: ['DROP MATERIALIZED VIEW "public"."mv"'] },
  { name: 'rule create, disabled', op: 'create', f: withAttrs(rule, { enabled: 'D' }), sql: ['CREATE RULE r AS ON DELETE TO public.t DO INSTEAD NOTHING;', 'ALTER TABLE "public"."t" DISABLE RULE "r"'] },
  { name: 'rule replaced in place', op: 'alter', f: [rule, withAttrs(rule, { def: 'CREATE RULE r AS ON UPDATE TO public.t DO INSTEAD NOTHING;' })], sql: ['CREATE OR REPLACE RULE r AS ON UPDATE TO public.t DO INSTEAD NOTHING;'] },
  { name: 'rule with other dependencies: recreated', op: 'alter', f: [rule, withAttrs(rule, {}, [t.id, 'table:"public"."u"'])], sql: null },
  { name: 'rule drop', op: 'drop', f: rule, sql: ['DROP RULE "r" ON "public"."t"'] },
]);

// ---------------------------------------------------------------- triggers.ts
const trg = fact('trigger', `trigger:${T}."trg"`, { def: 'CREATE TRIGGER trg BEFORE INSERT ON public.t FOR EACH ROW EXECUTE FUNCTION public.tf()', enabled: 'O' }, { table: T, name: 'trg' }, t.id);
table_('triggers', [
  { name: 'trigger create, disabled', op: 'create', f: withAttrs(trg, { enabled: 'D' }), sql: [String(trg.attrs.def), 'ALTER TABLE "public"."t" DISABLE TRIGGER "trg"'] },
  { name: 'enabled state in place', op: 'alter', f: [trg, withAttrs(trg, { enabled: 'A' })], sql: ['ALTER TABLE "public"."t" ENABLE ALWAYS TRIGGER "trg"'] },
  { name: 'definition changed: recreated', op: 'alter', f: [trg, withAttrs(trg, { def: 'CREATE TRIGGER trg AFTER INSERT ON public.t FOR EACH ROW EXECUTE FUNCTION public.tf()' })], sql: null },
  { name: 'trigger drop', op: 'drop', f: trg, sql: ['DROP TRIGGER "trg" ON "public"."t"'] },
]);

// ---------------------------------------------------------------- security.ts
const grant = fact('acl', `acl:${t.id}:"app"`, { privs: ['SELECT', 'UPDATE*'] }, { objType: 'TABLE', objSql: T, grantee: 'app' }, t.id);
const colGrant = fact('acl', `acl:${a.id}:PUBLIC`, { privs: ['SELECT'] }, { objType: 'TABLE', objSql: T, grantee: 'PUBLIC', column: '"a"' }, a.id);
const pol = fact('policy', `policy:${T}."own"`, { permissive: true, cmd: 'r', roles: ['app'], qual: '(owner = CURRENT_USER)', check: null }, { table: T, name: 'own' }, t.id);
const dacl = fact('default_acl', 'default_acl:"owner":"app":TABLES:"reader"', { privs: ['SELECT'] }, { role: 'owner', schema: 'app', objType: 'TABLES', grantee: 'reader', implicit: '' });
const ownAcl = fact('owner_acl', `owner_acl:${t.id}`, { privs: ['-DELETE', 'SELECT*'] }, { objType: 'TABLE', objSql: T }, t.id);
const ownSchema = fact('owner_acl', 'owner_acl:schema:"app"', { privs: ['-USAGE'] }, { objType: 'SCHEMA', objSql: '"app"' }, 'schema:"app"');
table_('security', [
  { name: 'grant, one privilege with grant option', op: 'create', f: grant, sql: ['GRANT SELECT ON TABLE "public"."t" TO "app"', 'GRANT UPDATE ON TABLE "public"."t" TO "app" WITH GRANT OPTION'] },
  { name: 'column grant to PUBLIC', op: 'create', f: colGrant, sql: ['GRANT SELECT ("a") ON TABLE "public"."t" TO PUBLIC'] },
  { name: 'other privileges: revoked and granted again, in place', op: 'alter', f: [grant, withAttrs(grant, { privs: ['INSERT'] })], sql: ['REVOKE ALL ON TABLE "public"."t" FROM "app"', 'GRANT INSERT ON TABLE "public"."t" TO "app"'] },
  { name: 'revoke', op: 'drop', f: colGrant, sql: ['REVOKE ALL ("a") ON TABLE "public"."t" FROM PUBLIC'] },
  { name: 'policy create', op: 'create', f: pol, sql: ['CREATE POLICY "own" ON "public"."t" AS PERMISSIVE FOR SELECT TO "app" USING ((owner = CURRENT_USER))'] },
  { name: 'policy changed: recreated', op: 'alter', f: [pol, withAttrs(pol, { cmd: '*' })], sql: null },
  { name: 'policy drop', op: 'drop', f: pol, sql: ['DROP POLICY "own" ON "public"."t"'] },
  {
    name: 'the owner’s own entry, from the default: with the owner found when it runs', op: 'create', f: ownAcl,
    sql: [`DO 'DECLARE o text := (SELECT relowner FROM pg_class WHERE oid = ''"public"."t"''::regclass)::regrole::text; BEGIN EXECUTE ''REVOKE DELETE ON TABLE "public"."t" FROM '' || o; EXECUTE ''GRANT SELECT ON TABLE "public"."t" TO '' || o || '' WITH GRANT OPTION''; END'`],
  },
  {
    name: 'the owner’s own entry back to the default', op: 'drop', f: ownAcl,
    sql: [`DO 'DECLARE o text := (SELECT relowner FROM pg_class WHERE oid = ''"public"."t"''::regclass)::regrole::text; BEGIN EXECUTE ''GRANT DELETE ON TABLE "public"."t" TO '' || o; EXECUTE ''REVOKE GRANT OPTION FOR SELECT ON TABLE "public"."t" FROM '' || o; END'`],
  },
  {
    name: 'the owner’s own entry changed: back to the default, then the new one', op: 'alter', f: [withAttrs(ownSchema, { privs: ['-CREATE'] }), ownSchema],
    sql: [`DO 'DECLARE o text := (SELECT nspowner FROM pg_namespace WHERE oid = ''"app"''::regnamespace)::regrole::text; BEGIN EXECUTE ''GRANT CREATE ON SCHEMA "app" TO '' || o; EXECUTE ''REVOKE USAGE ON SCHEMA "app" FROM '' || o; END'`],
  },
  { name: 'default privileges', op: 'create', f: dacl, sql: ['ALTER DEFAULT PRIVILEGES FOR ROLE "owner" IN SCHEMA "app" REVOKE ALL ON TABLES FROM "reader"', 'ALTER DEFAULT PRIVILEGES FOR ROLE "owner" IN SCHEMA "app" GRANT SELECT ON TABLES TO "reader"'] },
  { name: 'default privileges back to the built-in ones', op: 'drop', f: dacl, sql: ['ALTER DEFAULT PRIVILEGES FOR ROLE "owner" IN SCHEMA "app" REVOKE ALL ON TABLES FROM "reader"'] },
]);

test('rules: security — roles the target lacks are plan errors', () => {
  const roles = new Set(['postgres', 'owner']);
  assert.deepEqual(kindSpec('acl').rule.errors!(grant, roles), ['grant on "public"."t" to role "app", which does not exist on the target (roles are never created by a migration)']);
  assert.deepEqual(kindSpec('acl').rule.errors!(colGrant, roles), []);
  assert.deepEqual(kindSpec('policy').rule.errors!(pol, roles), ['policy "own" on "public"."t" names role "app", which does not exist on the target']);
  assert.deepEqual(kindSpec('default_acl').rule.errors!(dacl, roles), ['default privileges for role "owner" on tables name role "reader", which does not exist on the target (roles are never created by a migration)']);
  assert.deepEqual(kindSpec('default_acl').rule.errors!(dacl, new Set(['owner', 'reader'])), []);
});

// ---------------------------------------------------------------- textsearch.ts
const dict = fact('ts_dictionary', 'ts_dictionary:"public"."d"', { template: 'pg_catalog.simple', options: `stopwords = 'english'` }, { sql: '"public"."d"' });
const cfg = fact('ts_config', 'ts_config:"public"."c"', { parser: 'pg_catalog."default"', mappings: ['asciiword:public.d', 'word:pg_catalog.simple'] }, { sql: '"public"."c"' });
table_('textsearch', [
  { name: 'dictionary create', op: 'create', f: dict, sql: [`CREATE TEXT SEARCH DICTIONARY "public"."d" (TEMPLATE = pg_catalog.simple, stopwords = 'english')`] },
  { name: 'dictionary options: recreated', op: 'alter', f: [dict, withAttrs(dict, { options: null })], sql: null },
  { name: 'configuration create with its mappings', op: 'create', f: cfg, sql: ['CREATE TEXT SEARCH CONFIGURATION "public"."c" (PARSER = pg_catalog."default")', 'ALTER TEXT SEARCH CONFIGURATION "public"."c" ADD MAPPING FOR "asciiword" WITH public.d', 'ALTER TEXT SEARCH CONFIGURATION "public"."c" ADD MAPPING FOR "word" WITH pg_catalog.simple'] },
  {
    name: 'mappings dropped, altered and added in place', op: 'alter', f: [cfg, withAttrs(cfg, { mappings: ['asciiword:pg_catalog.simple', 'email:pg_catalog.simple'] })],
    sql: ['ALTER TEXT SEARCH CONFIGURATION "public"."c" DROP MAPPING FOR "word"', 'ALTER TEXT SEARCH CONFIGURATION "public"."c" ALTER MAPPING FOR "asciiword" WITH pg_catalog.simple', 'ALTER TEXT SEARCH CONFIGURATION "public"."c" ADD MAPPING FOR "email" WITH pg_catalog.simple'],
  },
  { name: 'parser changed: recreated', op: 'alter', f: [cfg, withAttrs(cfg, { parser: 'public.p' })], sql: null },
  { name: 'configuration drop', op: 'drop', f: cfg, sql: ['DROP TEXT SEARCH CONFIGURATION "public"."c"'] },
]);

// ---------------------------------------------------------------- comments.ts
const onTable = fact('comment', `comment:${t.id}`, { text: "it's the table" }, {}, t.id);
const onViewColumn = fact('comment', 'comment:view:"public"."v"."id"', { text: 'the id' }, { on: 'COLUMN "public"."v"."id"' }, v.id);
table_('comments', [
  { name: 'comment on a table (the parent names it)', op: 'create', f: onTable, source: [t], sql: [`COMMENT ON TABLE "public"."t" IS 'it''s the table'`] },
  { name: 'comment on a view column (meta.on)', op: 'create', f: onViewColumn, source: [v], sql: [`COMMENT ON COLUMN "public"."v"."id" IS 'the id'`] },
  { name: 'comment on a constraint, in place', op: 'alter', f: [fact('comment', `comment:${pk.id}`, { text: 'a' }, {}, pk.id), fact('comment', `comment:${pk.id}`, { text: 'b' }, {}, pk.id)], source: [pk], sql: [`COMMENT ON CONSTRAINT "t_pkey" ON "public"."t" IS 'b'`] },
  { name: 'comment removed (the target\'s parent names it)', op: 'drop', f: fact('comment', `comment:${a.id}`, { text: 'x' }, {}, a.id), target: [a], sql: ['COMMENT ON COLUMN "public"."t"."a" IS NULL'] },
]);

// ---------------------------------------------------------------- the registry

test('registry: every kind has a row above, and every line is complete', () => {
  // node:test runs the tests of a file in order: the tables above have filled `seen`
  assert.deepEqual([...seen].sort(), Object.keys(KINDS).sort());
  for (const [kind, spec] of Object.entries(KINDS)) {
    assert.ok(spec.recreate.length > 0, kind);
    if (spec.typeLike) assert.ok(spec.castViaText, `${kind}: a type-like kind converts through text`);
  }
});

test('registry: an unknown kind fails loudly, naming it', () => {
  assert.throws(() => kindSpec('widget'), /no rule for widget objects.*"widget".*registry\.ts/);
  assert.throws(() => kindSpec('toString'), /toString/);
});

// The registry's properties as the phases use them: small plans, exact statements.
function model(facts: Fact[]): SchemaModel {
  return { format: 'nself-schema/1', serverVersion: 150000, roles: ['postgres'], facts: [...facts].sort((x, y) => (x.id < y.id ? -1 : 1)), unsupported: [] };
}
const pub = fact('schema', 'schema:"public"', {}, { sql: '"public"', name: 'public' });
const dep = (f: Fact, ...deps: string[]): Fact => ({ ...f, deps: [...new Set([...f.deps, ...deps])].sort() });
const plan = (src: Fact[], tgt: Fact[]) => planSchema(model([pub, ...src]), model([pub, ...tgt])).statements.map((x) => x.sql);

test('registry in the phases: foldsInto writes a new table\'s columns and defaults into its CREATE', () => {
  assert.deepEqual(plan([dep(t, pub.id), dep(id, t.id), dep(nameCol, t.id), dep(nameDef, nameCol.id)], []), [
    'SET LOCAL check_function_bodies = off',
    `CREATE TABLE "public"."t" (\n    "id" integer NOT NULL,\n    "name" text DEFAULT 'x'::text\n)`,
  ]);
});

test('registry in the phases: droppedWithParent goes with DROP TABLE, a foreign key (not) is dropped first', () => {
  const u = dep(table('u'), pub.id);
  const fk = fact('constraint', `constraint:${T}."t_u_fk"`, { type: 'f', def: 'FOREIGN KEY (a) REFERENCES public.u(id)' }, { table: T, name: 't_u_fk' }, t.id, [t.id, u.id]);
  assert.deepEqual(plan([u], [u, dep(t, pub.id), dep(a, t.id), dep(idx, a.id), fk]), [
    'SET LOCAL check_function_bodies = off',
    'ALTER TABLE "public"."t" DROP CONSTRAINT "t_u_fk"',
    'DROP TABLE "public"."t"',
  ]);
});

test('registry in the phases: blocksRetype drops a view around ALTER COLUMN TYPE', () => {
  const vt = fact('view', 'view:"public"."va"', { def: ' SELECT t.a\n   FROM public.t;', options: [], columns: ['a'] }, { sql: '"public"."va"' }, undefined, [a.id, t.id]);
  const base = [dep(t, pub.id), dep(a, t.id)];
  assert.deepEqual(plan([base[0]!, withAttrs(base[1]!, { type: 'bigint' }), vt], [...base, vt]), [
    'SET LOCAL check_function_bodies = off',
    'DROP VIEW "public"."va"',
    'ALTER TABLE "public"."t" ALTER COLUMN "a" TYPE bigint USING "a"::bigint',
    'CREATE VIEW "public"."va" AS\n SELECT t.a\n   FROM public.t;',
  ]);
});

test('registry in the phases: a typeLike kind recreated converts its columns, the old one renamed away meanwhile', () => {
  const en = dep(st, pub.id);
  const col = dep(column('s', 'public.st'), t.id, en.id);
  assert.deepEqual(plan([dep(t, pub.id), col, withAttrs(en, { labels: ['b', 'a'] })], [dep(t, pub.id), col, en]), [
    'SET LOCAL check_function_bodies = off',
    'ALTER TYPE "public"."st" RENAME TO "st__nself_old"',
    `CREATE TYPE "public"."st" AS ENUM ('b', 'a')`,
    'REVOKE ALL ON TYPE "public"."st" FROM PUBLIC',
    'ALTER TABLE "public"."t" ALTER COLUMN "s" TYPE public.st USING "s"::text::public.st',
    'DROP TYPE "public"."st__nself_old"',
  ]);
});
