/**
 * The pure planner on hand-built models (no database): ordering, cycles, enum safety, errors, notHandled.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planSchema, fingerprintSchema, type SchemaModel, type Fact } from '../src/schema/index.ts';

const q = (n: string) => `"${n}"`;
function model(facts: Fact[], roles: string[] = ['postgres']): SchemaModel {
  return { format: 'nself-schema/1', serverVersion: 150000, roles, facts: [...facts].sort((a, b) => (a.id < b.id ? -1 : 1)), unsupported: [] };
}
const schema = (n = 'public'): Fact => ({ id: `schema:${q(n)}`, kind: 'schema', attrs: {}, deps: [], meta: { sql: q(n), name: n } });
function table(name: string, extra: Partial<Fact['attrs']> = {}): Fact {
  const sql = `${q('public')}.${q(name)}`;
  return { id: `table:${sql}`, kind: 'table', attrs: { unlogged: false, partkey: null, options: [], rls: false, rlsForce: false, am: null, ...extra }, deps: ['schema:"public"'], meta: { sql, schema: 'public', name } };
}
function column(t: string, name: string, type: string, pos: number, extra: Partial<Fact['attrs']> = {}, deps: string[] = []): Fact {
  const tsql = `${q('public')}.${q(t)}`;
  return {
    id: `column:${tsql}.${q(name)}`, kind: 'column', parent: `table:${tsql}`,
    attrs: { type, notnull: false, collation: null, identity: null, generated: null, ...extra },
    deps: [`table:${tsql}`, ...deps].sort(), meta: { sql: q(name), name, table: tsql, pos },
  };
}
function constraint(t: string, name: string, type: string, def: string, deps: string[] = []): Fact {
  const tsql = `${q('public')}.${q(t)}`;
  return { id: `constraint:${tsql}.${q(name)}`, kind: 'constraint', parent: `table:${tsql}`, attrs: { type, def }, deps: [`table:${tsql}`, ...deps].sort(), meta: { table: tsql, name } };
}
const enumType = (name: string, labels: string[]): Fact => ({
  id: `type:"public".${q(name)}`, kind: 'enum', attrs: { labels }, deps: ['schema:"public"'], meta: { sql: `"public".${q(name)}`, schema: 'public', name },
});
const sqls = (m: ReturnType<typeof planSchema>) => m.statements.map((s) => s.sql);

test('a plan from a model to itself is empty; fingerprints ignore fact order', () => {
  const m = model([schema(), table('a'), column('a', 'id', 'integer', 1)]);
  const p = planSchema(m, m);
  assert.equal(p.statements.length, 0);
  assert.equal(p.changes.length, 0);
  assert.equal(fingerprintSchema(m), fingerprintSchema({ ...m, facts: [...m.facts].reverse() }));
});

test('two new tables referencing each other: tables first, then keys (the PostgreSQL way)', () => {
  const pkA = constraint('a', 'a_pkey', 'p', 'PRIMARY KEY (id)', ['column:"public"."a"."id"']);
  const pkB = constraint('b', 'b_pkey', 'p', 'PRIMARY KEY (id)', ['column:"public"."b"."id"']);
  const fkA = constraint('a', 'a_b_fk', 'f', 'FOREIGN KEY (b_id) REFERENCES public.b(id)', ['column:"public"."a"."b_id"', pkB.id]);
  const fkB = constraint('b', 'b_a_fk', 'f', 'FOREIGN KEY (a_id) REFERENCES public.a(id)', ['column:"public"."b"."a_id"', pkA.id]);
  const src = model([
    schema(), table('a'), table('b'),
    column('a', 'id', 'integer', 1, { notnull: true }), column('a', 'b_id', 'integer', 2),
    column('b', 'id', 'integer', 1, { notnull: true }), column('b', 'a_id', 'integer', 2),
    pkA, pkB, fkA, fkB,
  ]);
  const p = planSchema(src, model([schema()]));
  const s = sqls(p);
  const lastCreate = Math.max(s.findIndex((x) => x.startsWith('CREATE TABLE "public"."a"')), s.findIndex((x) => x.startsWith('CREATE TABLE "public"."b"')));
  const firstFk = Math.min(...s.map((x, i) => (/FOREIGN KEY/.test(x) ? i : Infinity)));
  assert.ok(lastCreate < firstFk, s.join('\n'));
  assert.ok(s.findIndex((x) => /a_pkey/.test(x)) < s.findIndex((x) => /b_a_fk/.test(x)));
  // and dropping both: keys go first, explicitly
  const back = sqls(planSchema(model([schema()]), src));
  assert.deepEqual(back.slice(1, 3).map((x) => /DROP CONSTRAINT "(a_b_fk|b_a_fk)"/.test(x)), [true, true], back.join('\n'));
  assert.equal(back.filter((x) => x.startsWith('DROP TABLE')).length, 2);
});

test('an enum value used by a new default is not added with ADD VALUE (unsafe in one transaction)', () => {
  const t = table('t');
  const col = column('t', 's', 'public.st', 1, {}, ['type:"public"."st"']);
  const def: Fact = { id: 'default:"public"."t"."s"', kind: 'default', parent: col.id, attrs: { expr: "'c'::public.st" }, deps: [col.id, 'type:"public"."st"'].sort(), meta: { table: '"public"."t"', column: '"s"' } };
  const tgt = model([schema(), enumType('st', ['a', 'b']), t, col]);
  const src = model([schema(), enumType('st', ['a', 'b', 'c']), t, col, def]);
  const s = sqls(planSchema(src, tgt));
  assert.ok(!s.some((x) => /ADD VALUE/.test(x)), s.join('\n'));
  const rename = s.findIndex((x) => /RENAME TO "st__nself_old"/.test(x));
  const create = s.findIndex((x) => x.startsWith(`CREATE TYPE "public"."st" AS ENUM ('a', 'b', 'c')`));
  const retype = s.findIndex((x) => /ALTER COLUMN "s" TYPE public.st USING "s"::text::public.st/.test(x));
  const setDefault = s.findIndex((x) => /SET DEFAULT 'c'::public.st/.test(x));
  const cleanup = s.findIndex((x) => /DROP TYPE "public"."st__nself_old"/.test(x));
  assert.ok(rename >= 0 && rename < create && create < retype && retype < setDefault && setDefault < cleanup, s.join('\n'));
  // without the use, ADD VALUE it is
  const s2 = sqls(planSchema(model([schema(), enumType('st', ['a', 'b', 'c']), t, col]), tgt));
  assert.deepEqual(s2.slice(1), [`ALTER TYPE "public"."st" ADD VALUE 'c' AFTER 'b'`]);
});

test('grants to roles missing on the target are errors; unknown fact kinds are notHandled and plan errors', () => {
  const t = table('t');
  const acl: Fact = { id: `acl:${t.id}:"ghost"`, kind: 'acl', parent: t.id, attrs: { privs: ['SELECT'] }, deps: [t.id], meta: { objType: 'TABLE', objSql: '"public"."t"', grantee: 'ghost' } };
  const odd: Fact = { id: 'widget:"w"', kind: 'widget', attrs: { x: 1 }, deps: [], meta: {} };
  const p = planSchema(model([schema(), t, acl, odd]), model([schema(), t]));
  assert.equal(p.errors.length, 2, p.errors.join('\n'));
  assert.ok(p.errors.some((e) => /"ghost"/.test(e)));
  assert.ok(p.errors.some((e) => /^widget:"w": the schema planner has no rule for widget objects/.test(e)));
  assert.deepEqual(p.notHandled.map((n) => n.kind), ['widget']);
  assert.ok(!p.statements.some((s) => /widget|"w"/.test(s.sql)), 'a fact of an unknown kind is never rendered');
});

test('hazards: dropping a column deletes data, narrowing a type is flagged, widening varchar is not a rewrite', () => {
  const t = table('t');
  const tgt = model([schema(), t, column('t', 'a', 'character varying(10)', 1), column('t', 'b', 'bigint', 2), column('t', 'old', 'text', 3)]);
  const src = model([schema(), t, column('t', 'a', 'character varying(20)', 1), column('t', 'b', 'integer', 2)]);
  const p = planSchema(src, tgt);
  const hz = p.statements.flatMap((s) => s.hazards);
  assert.ok(hz.some((h) => h.kind === 'deletes_data' && h.column === 'old' && h.table === 't' && h.schema === 'public'));
  assert.ok(hz.some((h) => h.kind === 'deletes_data' && h.column === 'b'));
  assert.ok(!hz.some((h) => h.kind === 'rewrites_table' && h.column === 'a'));
  assert.ok(hz.some((h) => h.kind === 'rewrites_table' && h.column === 'b'));
  const drop = p.changes.find((c) => c.identity === '"public"."t"."old"');
  assert.equal(drop?.action, 'drop');
});
