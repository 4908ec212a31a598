/**
 * Schema engine scenarios against a real PostgreSQL: data survives, blockers are recreated, enum values are safe in one
 * transaction, hazards are labelled and counted, checkpoints restore dropped values, errors and notHandled are reported.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startCluster, type TestCluster } from './support/pg.ts';
import { needs } from './support/prereq.ts';
import { backupTables, emptyBackedUpTables, restoreData } from '../src/data/index.ts';
import {
  inspectSchema, planSchema, applySchema, fingerprintSchema, countHazardRows, backupSchema, restoreSchemaStructure, restoreSchemaFinish, tablesAtRisk,
  type SchemaPlan, type SchemaModel,
} from '../src/schema/index.ts';

/** Tests that compare pg_dump output need pg_dump: skipped without it (never in CI). */
const PG_DUMP = { skip: needs('pg_dump') };

let cluster: TestCluster;
let dbn = 0;
before(async () => {
  cluster = await startCluster();
  await cluster.sql('CREATE ROLE nself_reader');
});
after(async () => {
  await cluster?.stop();
});

async function connect(db: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: cluster.url(db) });
  await c.connect();
  return c;
}

async function pair(sourceSql: string, targetSql: string): Promise<{ src: string; tgt: string }> {
  const i = ++dbn;
  const src = `src${i}`;
  const tgt = `tgt${i}`;
  await cluster.createDatabase(src);
  await cluster.createDatabase(tgt);
  if (sourceSql) await cluster.sql(sourceSql, src);
  if (targetSql) await cluster.sql(targetSql, tgt);
  return { src, tgt };
}

async function inspectDb(db: string): Promise<SchemaModel> {
  const c = await connect(db);
  try {
    return await inspectSchema(c);
  } finally {
    await c.end();
  }
}

/** plan source → target, apply in one transaction, check the re-plan is empty; returns the plan. */
async function migrate(src: string, tgt: string): Promise<SchemaPlan> {
  const source = await inspectDb(src);
  const c = await connect(tgt);
  try {
    const plan = planSchema(source, await inspectSchema(c));
    await c.query('BEGIN');
    try {
      await applySchema(c, plan);
      const again = planSchema(source, await inspectSchema(c));
      assert.deepEqual(again.statements.map((s) => s.sql), [], 'plan after apply must be empty:\n' + plan.statements.map((s) => s.sql).join(';\n'));
      await c.query('COMMIT');
    } catch (e) {
      await c.query('ROLLBACK');
      (e as Error).message += '\n--- plan:\n' + plan.statements.map((s) => s.sql).join(';\n');
      throw e;
    }
    return plan;
  } finally {
    await c.end();
  }
}

function normaliseDump(dump: string): string {
  const lines = dump.split('\n').filter((l) => !l.startsWith('--') && l.trim() !== '' && !/^SET |^SELECT pg_catalog.set_config|^\\(un)?restrict /.test(l));
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    out.push(lines[i]!);
    if (/^CREATE (UNLOGGED )?TABLE .*\($/.test(lines[i]!)) {
      const cols: string[] = [];
      let j = i + 1;
      while (j < lines.length && !/^\)/.test(lines[j]!)) cols.push(lines[j++]!.replace(/,$/, ''));
      out.push(...cols.sort());
      i = j - 1;
    }
  }
  return out.join('\n').split(/;\n/).map((b) => b.trim()).filter(Boolean).sort().join(';\n');
}
const dump = (db: string) => normaliseDump(execFileSync('pg_dump', ['--schema-only', '--no-owner', '-d', cluster.url(db)], { encoding: 'utf8' }));
const sqls = (p: SchemaPlan) => p.statements.map((s) => s.sql);

test('add a NOT NULL column with a default to a table with rows: rows survive', async () => {
  const { src, tgt } = await pair(
    `create table t(id int primary key, name text); `,
    `create table t(id int primary key, name text); insert into t select g, 'n' || g from generate_series(1, 50) g;`,
  );
  await cluster.sql(`alter table t add column flag boolean not null default true, add column n int not null default 7`, src);
  const plan = await migrate(src, tgt);
  assert.ok(sqls(plan).some((s) => /ADD COLUMN "flag" boolean NOT NULL DEFAULT true/.test(s)), sqls(plan).join('\n'));
  const rows = await cluster.query(`select count(*)::int n, bool_and(flag) f, min(n) m from t`, [], tgt);
  assert.deepEqual(rows[0], { n: 50, f: true, m: 7 });
});

test('change the type of a column used by views: the views are dropped and recreated around it', PG_DUMP, async () => {
  const base = `create table t(id int primary key, v int);
    create view w as select id, v from t;
    create view w2 as select v + 1 as v1 from w;`;
  const { src, tgt } = await pair(base.replace('v int', 'v bigint'), base + ` insert into t select g, g from generate_series(1, 20) g;`);
  const plan = await migrate(src, tgt);
  const s = sqls(plan);
  const at = s.findIndex((x) => /ALTER COLUMN "v" TYPE bigint/.test(x));
  assert.ok(at > s.indexOf('DROP VIEW "public"."w2"') && at > s.indexOf('DROP VIEW "public"."w"'), s.join('\n'));
  assert.ok(s.findIndex((x) => x.startsWith('CREATE VIEW "public"."w2"')) > at);
  const hz = plan.statements.flatMap((x) => x.hazards);
  assert.ok(hz.some((h) => h.kind === 'rewrites_table' && h.table === 't' && h.column === 'v'));
  assert.ok(!hz.some((h) => h.kind === 'deletes_data'), 'int → bigint widens');
  assert.equal((await cluster.query(`select sum(v1)::int s from w2`, [], tgt))[0].s, 230);
  assert.equal(dump(tgt), dump(src));
});

test('add an enum value used by a default: the plan still applies in one transaction', PG_DUMP, async () => {
  const { src, tgt } = await pair(
    `create type st as enum('a', 'b', 'c'); create table t(id int primary key, s st default 'c'); create view v as select s from t;`,
    `create type st as enum('a', 'b'); create table t(id int primary key, s st default 'a'); create view v as select s from t;
     insert into t values (1, 'a'), (2, 'b'), (3, null);`,
  );
  const plan = await migrate(src, tgt);
  assert.ok(!sqls(plan).some((x) => /ADD VALUE/.test(x)), 'recreated, not ADD VALUE: ' + sqls(plan).join('\n'));
  assert.deepEqual((await cluster.query(`select id, s::text from t order by id`, [], tgt)).map((r) => r.s), ['a', 'b', null]);
  await cluster.sql(`insert into t(id) values (4)`, tgt);
  assert.equal((await cluster.query(`select s::text from t where id = 4`, [], tgt))[0].s, 'c');
  assert.equal(dump(tgt), dump(src));
});

test('add an unused enum value: ALTER TYPE ADD VALUE in place, BEFORE/AFTER keep the order', PG_DUMP, async () => {
  const { src, tgt } = await pair(
    `create type st as enum('x', 'a', 'm', 'b', 'z'); create table t(s st);`,
    `create type st as enum('a', 'b'); create table t(s st); insert into t values ('a'), ('b');`,
  );
  const plan = await migrate(src, tgt);
  assert.deepEqual(sqls(plan).filter((x) => /ADD VALUE/.test(x)).length, 3);
  assert.ok(!sqls(plan).some((x) => /ALTER COLUMN/.test(x)));
  assert.equal(dump(tgt), dump(src));
});

test('removing an enum value recreates the type, the column is converted in place', PG_DUMP, async () => {
  const { src, tgt } = await pair(
    `create type st as enum('b', 'a'); create table t(id int primary key, s st, arr st[]); create function f(x st) returns int language sql as 'select 1';`,
    `create type st as enum('a', 'b', 'c'); create table t(id int primary key, s st, arr st[]); insert into t values (1, 'a', '{a,b}'), (2, 'b', null);
     create function f(x st) returns int language sql as 'select 1';`,
  );
  await migrate(src, tgt);
  assert.deepEqual((await cluster.query(`select s::text, arr::text from t order by id`, [], tgt)), [{ s: 'a', arr: '{a,b}' }, { s: 'b', arr: null }]);
  assert.equal(dump(tgt), dump(src));
});

test('drop a column → backup → apply → restore: the values come back; hazards carry row counts', async () => {
  const { src, tgt } = await pair(
    `create table users(id int primary key, name text, code varchar(3)); create table keep(id int);`,
    `create table users(id int primary key, name text, legacy_id int, code text);
     insert into users select g, 'u' || g, case when g % 4 = 0 then null else g * 10 end, 'abcdef' from generate_series(1, 40) g;
     create table gone(id int primary key, payload text); insert into gone select g, repeat('x', g) from generate_series(1, 25) g;
     create table keep(id int);`,
  );
  const source = await inspectDb(src);
  const c = await connect(tgt);
  const dir = mkdtempSync(join(tmpdir(), 'nself-schema-backup-'));
  try {
    const targetModel = await inspectSchema(c);
    const before = fingerprintSchema(targetModel);
    const plan = planSchema(source, targetModel);
    await countHazardRows(c, plan);
    const hz = plan.statements.flatMap((s) => s.hazards).filter((h) => h.kind === 'deletes_data');
    const col = hz.find((h) => h.table === 'users' && h.column === 'legacy_id');
    assert.equal(col?.rows, 30);
    assert.match(col!.message, /30 rows with values/);
    assert.equal(hz.find((h) => h.table === 'gone' && !h.column)?.rows, 25);
    assert.ok(hz.some((h) => h.table === 'users' && h.column === 'code'), 'text → varchar(3) narrows');

    // the rollback's sequence (src/migrate/rollback.ts): whole tables at risk backed up, emptied, schema back, rows back
    const meta = backupSchema(plan, targetModel);
    JSON.parse(JSON.stringify(meta)); // JSON-serialisable
    assert.deepEqual(tablesAtRisk(plan), [{ schema: 'public', name: 'gone' }, { schema: 'public', name: 'users' }]);
    const rows = await backupTables(c, tablesAtRisk(plan), dir);
    await c.query('BEGIN');
    await applySchema(c, plan);
    await c.query('COMMIT');
    assert.equal((await c.query(`select count(*)::int n from information_schema.columns where table_name = 'users' and column_name = 'legacy_id'`)).rows[0].n, 0);
    assert.equal((await c.query(`select count(*)::int n from users where code = 'abc'`)).rows[0].n, 40, 'the cast truncated the values');
    await c.query(`insert into users values (41, 'new')`);

    await c.query('BEGIN');
    await emptyBackedUpTables(c, rows);
    await restoreSchemaStructure(c, meta, () => true);
    await restoreData(c, dir, rows);
    await restoreSchemaFinish(c, meta);
    await c.query('COMMIT');
    assert.equal(fingerprintSchema(await inspectSchema(c)), before);
    const r = await c.query(`select count(legacy_id)::int n, sum(legacy_id)::int s from users`);
    assert.deepEqual(r.rows[0], { n: 30, s: 6000 });
    assert.equal((await c.query(`select count(*)::int n from users where code = 'abcdef'`)).rows[0].n, 40, 'the rewritten values came back');
    const g = await c.query(`select count(*)::int n, sum(length(payload))::int l from gone`);
    assert.deepEqual(g.rows[0], { n: 25, l: 325 });
  } finally {
    await c.end();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a grant to a role missing on the target is a plan error, and applySchema refuses it', async () => {
  const { src, tgt } = await pair(`create table t(id int); grant select on t to nself_reader;`, `create table t(id int);`);
  const source = await inspectDb(src);
  const target = await inspectDb(tgt);
  const plan = planSchema(source, { ...target, roles: target.roles.filter((r) => r !== 'nself_reader') });
  assert.equal(plan.errors.length, 1);
  assert.match(plan.errors[0]!, /nself_reader/);
  const c = await connect(tgt);
  try {
    await assert.rejects(applySchema(c, plan), (e: any) => e.code === 'schema_plan_has_errors');
  } finally {
    await c.end();
  }
  // with the role present the grant is planned and applied
  const ok = await migrate(src, tgt);
  assert.deepEqual(ok.errors, []);
  assert.ok(sqls(ok).includes('GRANT SELECT ON TABLE "public"."t" TO "nself_reader"'));
});

test('unsupported objects are reported in notHandled, never silently dropped', async () => {
  const { src, tgt } = await pair(
    `create table t(id int); create operator public.=== (leftarg = int, rightarg = int, function = int4eq); create publication nself_pub for table t;`,
    `create table t(id int);`,
  );
  const plan = planSchema(await inspectDb(src), await inspectDb(tgt));
  const kinds = plan.notHandled.map((n) => n.kind).sort();
  assert.deepEqual(kinds, ['operator', 'publication']);
  assert.equal(plan.statements.length, 0);
});

test('column order never causes churn; planSchema(x, x) is empty and deterministic', async () => {
  const { src, tgt } = await pair(`create table t(a int, b text, c date);`, `create table t(c date, a int, b text);`);
  const s = await inspectDb(src);
  const t = await inspectDb(tgt);
  assert.equal(fingerprintSchema(s), fingerprintSchema(t));
  assert.equal(planSchema(s, t).statements.length, 0);
  assert.deepEqual(planSchema(s, t), planSchema(s, t));
  const p1 = planSchema(t, { ...s, facts: [...s.facts].reverse() });
  assert.equal(p1.changes.length, 0);
});

const KITCHEN_A = `
create extension if not exists citext;
create schema app;
create collation app.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
create type app.mood as enum ('sad', 'ok', 'happy');
create domain app.posint as int check (value > 0) not null default 1;
create type app.pair as (x int, y text);
create type app.floatrange as range (subtype = float8, subtype_diff = float8mi);
create sequence app.counter as bigint increment by 5 minvalue 10 maxvalue 100000 start with 20 cache 3 cycle;
create table app.account (
  id bigint generated always as identity primary key,
  email citext not null unique,
  nick text collate app.ci,
  mood app.mood default 'ok',
  qty app.posint,
  p app.pair,
  r app.floatrange,
  n numeric(10,2) check (n >= 0),
  total numeric generated always as (n * 2) stored,
  created timestamptz not null default now()
);
comment on table app.account is 'accounts';
comment on column app.account.email is 'login';
create unlogged table app.scratch (id int);
create table app.entry (
  id serial primary key,
  account_id bigint not null references app.account(id) on delete cascade deferrable initially deferred,
  during tstzrange,
  note text,
  exclude using gist (during with &&)
);
alter table app.entry add constraint note_len check (length(note) < 100) not valid;
create index entry_note_idx on app.entry (lower(note)) where note is not null;
create index entry_brin on app.entry using brin (id);
create table app.a_to_b (id int primary key, b_id int);
create table app.b_to_a (id int primary key, a_id int references app.a_to_b(id));
alter table app.a_to_b add constraint a_b_fk foreign key (b_id) references app.b_to_a(id);
create table app.events (id int, at date not null) partition by range (at);
create table app.events_2024 partition of app.events for values from ('2024-01-01') to ('2025-01-01');
create table app.base (id int, tag text default 'x');
create table app.child (extra int) inherits (app.base);
create view app.v_account with (security_invoker = true) as select id, email, mood from app.account;
create materialized view app.mv as select mood, count(*) c from app.account group by mood;
create unique index mv_mood on app.mv (mood);
create function app.add(a int, b int) returns int language sql immutable as 'select a + b';
create function app.add(a text, b text) returns text language sql as $$ select a || b $$;
create procedure app.touch(x int) language plpgsql as $$ begin perform x; end $$;
create function app.tg() returns trigger language plpgsql as $$ begin return new; end $$;
create trigger tg_entry before insert on app.entry for each row execute function app.tg();
create constraint trigger ctg after insert on app.entry deferrable initially deferred for each row execute function app.tg();
alter table app.entry disable trigger tg_entry;
alter table app.account enable row level security;
alter table app.account force row level security;
create policy own on app.account for select to nself_reader using (email = current_user);
grant usage on schema app to nself_reader;
grant select (id, email) on app.account to nself_reader;
grant select, insert on app.entry to nself_reader with grant option;
grant usage on sequence app.counter to nself_reader;
revoke execute on function app.add(int, int) from public;
grant execute on function app.add(int, int) to nself_reader;
grant usage on type app.mood to nself_reader;
comment on function app.add(int, int) is 'adds';
comment on type app.mood is 'feelings';
comment on index app.entry_note_idx is 'partial';
comment on constraint note_len on app.entry is 'short notes';
`;
const KITCHEN_EDITS: [string, string][] = [
  [`'sad', 'ok', 'happy'`, `'sad', 'meh', 'ok', 'happy'`],
  [`id bigint generated always as identity primary key`, `id bigint generated always as identity (start with 100 increment by 2 cache 5) primary key`],
  ['check (value > 0) not null default 1', 'check (value > 0) check (value < 1000) default 2'],
  [`nick text collate app.ci,`, `nick varchar(40),`],
  [`n numeric(10,2) check (n >= 0),`, `n numeric(12,2) check (n >= 0), extra jsonb,`],
  [`create unlogged table app.scratch (id int);`, `create table app.scratch (id int, v text);`],
  [`where note is not null`, `where note is not null and note <> ''`],
  [`select id, email, mood from app.account`, `select id, email, mood, nick from app.account`],
  [`returns text language sql as $$ select a || b $$`, `returns text language sql as $$ select b || a $$`],
  [`alter table app.entry disable trigger tg_entry;`, ``],
  [`for select to nself_reader`, `as restrictive for all to nself_reader, public`],
  [`grant select (id, email) on app.account to nself_reader;`, `grant select (id) on app.account to nself_reader;`],
  [`comment on type app.mood is 'feelings';`, `comment on type app.mood is 'moods';`],
  [`create table app.events_2024 partition of app.events for values from ('2024-01-01') to ('2025-01-01');`,
    `create table app.events_2024 partition of app.events for values from ('2024-01-01') to ('2025-01-01');
     create table app.events_2025 partition of app.events for values from ('2025-01-01') to ('2026-01-01');`],
];
const KITCHEN_B = KITCHEN_EDITS.reduce((sql, [a, b]) => {
  assert.ok(sql.includes(a), a);
  return sql.split(a).join(b);
}, KITCHEN_A);

test('kitchen sink: create from empty, migrate A ↔ B both ways, pg_dump identical each time', PG_DUMP, async () => {
  const { src, tgt } = await pair(KITCHEN_A, '');
  await migrate(src, tgt);
  assert.equal(dump(tgt), dump(src));
  const b = `kb${++dbn}`;
  await cluster.createDatabase(b);
  await cluster.sql(KITCHEN_B, b);
  await cluster.sql(`insert into app.account(email, mood, n) values ('a@x', 'happy', 1), ('b@x', 'sad', 2)`, tgt);
  const p = await migrate(b, tgt);
  assert.ok(sqls(p).some((x) => /ADD VALUE 'meh'/.test(x)), sqls(p).join('\n'));
  assert.equal(dump(tgt), dump(b));
  assert.equal((await cluster.query(`select count(*)::int n from app.account`, [], tgt))[0].n, 2);
  await migrate(src, tgt);
  assert.equal(dump(tgt), dump(src));
  // and back down to nothing
  const empty = `e${++dbn}`;
  await cluster.createDatabase(empty);
  await migrate(empty, tgt);
  assert.equal(dump(tgt), dump(empty));
});

test('scope: schemas / excludeSchemas narrow inspection; extension members are never facts', async () => {
  const { src, tgt } = await pair(
    `create extension if not exists hstore; create schema a; create schema b; create table a.t(id int, h hstore); create table b.t(id int);`,
    `create schema a; create schema b; create table b.t(id int, keep text);`,
  );
  const c = await connect(src);
  try {
    const all = await inspectSchema(c);
    assert.ok(all.facts.some((f) => f.id === 'extension:"hstore"'));
    assert.ok(!all.facts.some((f) => f.kind === 'function' && /hstore/.test(f.id)), 'extension functions are not facts');
    assert.ok(all.facts.find((f) => f.id === 'column:"a"."t"."h"')!.deps.includes('extension:"hstore"'));
    const onlyA = await inspectSchema(c, { schemas: ['a'] });
    assert.ok(onlyA.facts.every((f) => !f.id.includes('"b"')));
    const noB = await inspectSchema(c, { excludeSchemas: ['b'] });
    assert.ok(noB.facts.some((f) => f.id === 'table:"a"."t"') && noB.facts.every((f) => !f.id.includes('"b"')));
  } finally {
    await c.end();
  }
  // migrating with a scope leaves the rest alone (the extension lives in public, outside the scope: created by hand)
  await cluster.sql(`create extension hstore`, tgt);
  const s = await connect(src);
  const t = await connect(tgt);
  try {
    const plan = planSchema(await inspectSchema(s, { schemas: ['a'] }), await inspectSchema(t, { schemas: ['a'] }));
    assert.ok(!sqls(plan).some((x) => /"b"/.test(x)));
    await t.query('BEGIN');
    await applySchema(t, plan);
    await t.query('COMMIT');
    assert.equal(planSchema(await inspectSchema(s, { schemas: ['a'] }), await inspectSchema(t, { schemas: ['a'] })).changes.length, 0);
    assert.equal((await t.query(`select count(*)::int n from information_schema.columns where table_schema = 'b' and column_name = 'keep'`)).rows[0].n, 1);
  } finally {
    await s.end();
    await t.end();
  }
});

test('inspect works inside a REPEATABLE READ READ ONLY transaction and leaves search_path as it was', async () => {
  const { src } = await pair(`create schema s1; create table s1.t(id int primary key); create view s1.v as select id from s1.t;`, '');
  const c = await connect(src);
  try {
    await c.query(`set search_path = s1, public`);
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const m = await inspectSchema(c);
    await c.query('COMMIT');
    assert.equal((await c.query('show search_path')).rows[0].search_path, 's1, public');
    // definitions are rendered schema-qualified whatever the caller's search_path
    assert.match(String(m.facts.find((f) => f.id === 'view:"s1"."v"')!.attrs.def), /FROM s1\.t/);
    const again = await inspectSchema(c);
    assert.equal(fingerprintSchema(again), fingerprintSchema(m));
  } finally {
    await c.end();
  }
});
