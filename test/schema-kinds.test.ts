/**
 * Every kind a real schema uses (issue #8): column settings, replica identity, CLUSTER ON, view-column comments,
 * child-specific defaults and NOT NULL, aggregates, rules, statistics objects — each a round trip both ways on a real
 * PostgreSQL (plan → apply in a transaction → re-inspect → nothing left); and objects not handled are never created or
 * dropped around: a plan error naming both.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startCluster, type TestCluster } from './support/pg.ts';
import { inspectSchema, planSchema, applySchema, type SchemaModel, type SchemaPlan } from '../src/schema/index.ts';

let cluster: TestCluster;
let dbn = 0;
before(async () => {
  cluster = await startCluster();
});
after(async () => {
  await cluster?.stop();
});

async function connect(db: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: cluster.url(db) });
  await c.connect();
  return c;
}
async function db(sql: string): Promise<string> {
  const name = `k${++dbn}`;
  await cluster.createDatabase(name);
  if (sql) await cluster.sql(sql, name);
  return name;
}
async function inspectDb(name: string): Promise<SchemaModel> {
  const c = await connect(name);
  try {
    return await inspectSchema(c);
  } finally {
    await c.end();
  }
}
const sqls = (p: SchemaPlan) => p.statements.map((s) => s.sql);

/** source → target: the plan holds every expected statement, applies in a transaction (rolled back) and leaves nothing. */
async function converges(src: string, tgt: string, expect: (string | RegExp)[]): Promise<SchemaPlan> {
  const source = await inspectDb(src);
  const c = await connect(tgt);
  try {
    const plan = planSchema(source, await inspectSchema(c));
    const text = sqls(plan).join(';\n');
    assert.deepEqual(plan.errors, [], text);
    assert.deepEqual(plan.notHandled, [], text);
    for (const e of expect) assert.ok(sqls(plan).some((x) => (typeof e === 'string' ? x.includes(e) : e.test(x))), `expected ${String(e)} in:\n${text}`);
    await c.query('BEGIN');
    try {
      await applySchema(c, plan);
      const again = planSchema(source, await inspectSchema(c));
      assert.deepEqual(again.changes.map((x) => `${x.action} ${x.kind} ${x.identity}`), [], 'changes left after applying:\n' + text);
      assert.deepEqual(again.notHandled, []);
    } catch (e) {
      (e as Error).message += '\n--- plan:\n' + text;
      throw e;
    } finally {
      await c.query('ROLLBACK');
    }
    return plan;
  } finally {
    await c.end();
  }
}

test('column settings: attribute options (n_distinct), statistics target, storage, compression', async () => {
  const base = `create table t(a int, b text, c text, d text);`;
  const a = await db(`${base}
    alter table t alter column a set (n_distinct = -0.5); alter table t alter column a set statistics 500;
    alter table t alter column b set storage external; alter table t alter column c set compression pglz;
    alter table t alter column d set (n_distinct_inherited = 10);
    create table t2(x text, y int); alter table t2 alter column x set storage main; alter table t2 alter column y set statistics 0;`);
  const b = await db(`${base} alter table t alter column a set (n_distinct = 100); alter table t alter column d set statistics 20;`);
  const empty = await db('');
  await converges(a, b, [
    'ALTER TABLE "public"."t" ALTER COLUMN "a" SET (n_distinct=-0.5)', 'ALTER TABLE "public"."t" ALTER COLUMN "a" SET STATISTICS 500',
    'ALTER TABLE "public"."t" ALTER COLUMN "b" SET STORAGE EXTERNAL', 'ALTER TABLE "public"."t" ALTER COLUMN "c" SET COMPRESSION pglz',
    'ALTER TABLE "public"."t" ALTER COLUMN "d" SET STATISTICS -1', 'ALTER TABLE "public"."t2" ALTER COLUMN "x" SET STORAGE MAIN',
  ]);
  await converges(b, a, [
    'ALTER TABLE "public"."t" ALTER COLUMN "a" SET (n_distinct=100)', 'ALTER TABLE "public"."t" ALTER COLUMN "b" SET STORAGE EXTENDED',
    'ALTER TABLE "public"."t" ALTER COLUMN "c" SET COMPRESSION default', 'ALTER TABLE "public"."t" ALTER COLUMN "d" RESET (n_distinct_inherited)',
  ]);
  await converges(a, empty, ['ALTER TABLE "public"."t2" ALTER COLUMN "y" SET STATISTICS 0']);
  // a new column on an existing table takes its settings too
  const c = await db(`create table t(a int);`);
  const d = await db(`create table t(a int, z text); alter table t alter column z set storage main;`);
  await converges(d, c, ['ALTER TABLE "public"."t" ALTER COLUMN "z" SET STORAGE MAIN']);
});

test('replica identity (full, nothing, using index) and CLUSTER ON', async () => {
  const base = `create table r(id int primary key, u int not null unique); create index r_i on r(u); create table r2(id int); create table r3(id int primary key);`;
  const a = await db(`${base} alter table r replica identity using index r_u_key; alter table r cluster on r_i; alter table r2 replica identity full;
    alter table r3 replica identity nothing; alter table r3 cluster on r3_pkey;
    create table r4(k int not null); create unique index r4_k on r4(k); alter table r4 replica identity using index r4_k; alter table r4 cluster on r4_k;`);
  const b = await db(`${base} alter table r cluster on r_pkey; alter table r3 replica identity full;`);
  const empty = await db('');
  await converges(a, b, [
    'ALTER TABLE "public"."r" REPLICA IDENTITY USING INDEX "r_u_key"', 'ALTER TABLE "public"."r" CLUSTER ON "r_i"',
    'ALTER TABLE "public"."r2" REPLICA IDENTITY FULL', 'ALTER TABLE "public"."r3" REPLICA IDENTITY NOTHING', 'ALTER TABLE "public"."r4" CLUSTER ON "r4_k"',
  ]);
  await converges(b, a, ['ALTER TABLE "public"."r" REPLICA IDENTITY DEFAULT', 'ALTER TABLE "public"."r3" SET WITHOUT CLUSTER', 'ALTER TABLE "public"."r" CLUSTER ON "r_pkey"']);
  await converges(a, empty, ['ALTER TABLE "public"."r4" REPLICA IDENTITY USING INDEX "r4_k"']);
});

test('comments on view and materialized view columns', async () => {
  const base = `create table t(a int, b text); create view v as select a, b from t; create materialized view mv as select a from t;`;
  const a = await db(`${base} comment on column v.a is 'the a'; comment on column mv.a is 'mv''s a'; comment on column v.b is 'b';`);
  const b = await db(`${base} comment on column v.a is 'old'; comment on column v.b is 'b';`);
  const empty = await db('');
  await converges(a, b, [`COMMENT ON COLUMN "public"."v"."a" IS 'the a'`, `COMMENT ON COLUMN "public"."mv"."a" IS 'mv''s a'`]);
  await converges(b, a, [`COMMENT ON COLUMN "public"."v"."a" IS 'old'`, `COMMENT ON COLUMN "public"."mv"."a" IS NULL`]);
  await converges(a, empty, [`COMMENT ON COLUMN "public"."v"."b" IS 'b'`]);
});

test('defaults and NOT NULL a partition or an inheritance child sets for itself', async () => {
  const tables = (vdef: number) => `create table p(id int, v int default ${vdef}, w text) partition by range (id);
    create table p1 partition of p for values from (0) to (10); create table p2 partition of p for values from (10) to (20);
    create table par(a int default 3, b int); create table ch () inherits (par);`;
  const a = await db(`${tables(1)} alter table p1 alter column v set default 7; alter table p1 alter column w set not null;
    alter table p2 alter column v drop default; alter table ch alter column a set default 9; alter table ch alter column b set not null;`);
  // the parent's default differs too: its SET DEFAULT recurses to the partitions, the child's own comes after it
  const b = await db(tables(2));
  const empty = await db('');
  await converges(a, b, [
    'ALTER TABLE "public"."p" ALTER COLUMN "v" SET DEFAULT 1', 'ALTER TABLE "public"."p1" ALTER COLUMN "v" SET DEFAULT 7',
    'ALTER TABLE "public"."p1" ALTER COLUMN "w" SET NOT NULL', 'ALTER TABLE "public"."p2" ALTER COLUMN "v" DROP DEFAULT',
    'ALTER TABLE "public"."ch" ALTER COLUMN "a" SET DEFAULT 9', 'ALTER TABLE "public"."ch" ALTER COLUMN "b" SET NOT NULL',
  ]);
  await converges(b, a, ['ALTER TABLE "public"."p1" ALTER COLUMN "w" DROP NOT NULL', 'ALTER TABLE "public"."ch" ALTER COLUMN "a" SET DEFAULT 3']);
  await converges(a, empty, ['ALTER TABLE "public"."p1" ALTER COLUMN "v" SET DEFAULT 7']);
  await converges(empty, a, ['DROP TABLE "public"."p1"']);
});

const AGG = `create function _group_concat(text, text) returns text language sql immutable as $$ select coalesce($1 || ',', '') || $2 $$;
  create aggregate group_concat(text) (sfunc = _group_concat, stype = text);
  create table t(w text); create view v as select public.group_concat(w) g from t;`;

test('aggregates: created with their support functions before the views using them; dropped after them', async () => {
  const a = await db(`${AGG}
    create function _fin(text) returns int language sql as $$ select length($1) $$;
    create aggregate agg_len(text) (sfunc = _group_concat, stype = text, finalfunc = _fin, initcond = '', parallel = safe);
    create aggregate pct(float8 order by float8) (sfunc = ordered_set_transition, stype = internal, finalfunc = percentile_disc_final, finalfunc_extra);
    comment on aggregate group_concat(text) is 'joins';
    revoke all on function agg_len(text) from public;`);
  const b = await db(`create table t(w text);`);
  const plan = await converges(a, b, ['CREATE VIEW "public"."v"', /^CREATE AGGREGATE "public"\."group_concat"\(text\)/, `COMMENT ON AGGREGATE "public"."group_concat"(text) IS 'joins'`]);
  const s = sqls(plan);
  assert.ok(s.findIndex((x) => x.includes('FUNCTION public._group_concat')) < s.findIndex((x) => x.startsWith('CREATE AGGREGATE "public"."group_concat"')));
  assert.ok(s.findIndex((x) => x.startsWith('CREATE AGGREGATE "public"."group_concat"')) < s.findIndex((x) => x.startsWith('CREATE VIEW "public"."v"')));
  // the reverse: the view, then the aggregate, then its function (no "other objects depend on it")
  const back = await converges(b, a, ['DROP AGGREGATE "public"."group_concat"(text)', 'DROP FUNCTION "public"."_group_concat"(text, text)']);
  const t = sqls(back);
  assert.ok(t.indexOf('DROP VIEW "public"."v"') < t.indexOf('DROP AGGREGATE "public"."group_concat"(text)'));
  assert.ok(t.indexOf('DROP AGGREGATE "public"."group_concat"(text)') < t.indexOf('DROP FUNCTION "public"."_group_concat"(text, text)'));
});

test('an aggregate whose definition changes is dropped and recreated with the view using it', async () => {
  const a = await db(AGG.replace('stype = text)', `stype = text, initcond = '')`));
  const b = await db(AGG);
  const plan = await converges(a, b, ['DROP VIEW "public"."v"', 'DROP AGGREGATE "public"."group_concat"(text)', /INITCOND = ''/]);
  const s = sqls(plan);
  assert.ok(s.indexOf('DROP VIEW "public"."v"') < s.indexOf('DROP AGGREGATE "public"."group_concat"(text)'));
  await converges(b, a, [/^CREATE AGGREGATE "public"\."group_concat"\(text\) \(\n {4}SFUNC = public\._group_concat,\n {4}STYPE = text\n\)$/]);
});

test('rules: created, replaced, enabled state, dropped', async () => {
  const base = `create table t(id int); create table log(id int);`;
  const a = await db(`${base} create rule r as on insert to t do also insert into log values (new.id);
    create rule r2 as on delete to t do instead nothing; alter table t disable rule r2; comment on rule r on t is 'logs';`);
  const b = await db(`${base} create rule r as on insert to t do also insert into log values (new.id + 1); create rule r2 as on delete to t do instead nothing;`);
  const empty = await db('');
  await converges(a, b, [/^CREATE OR REPLACE RULE r AS/, 'ALTER TABLE "public"."t" DISABLE RULE "r2"', `COMMENT ON RULE "r" ON "public"."t" IS 'logs'`]);
  await converges(b, a, ['ALTER TABLE "public"."t" ENABLE RULE "r2"']);
  await converges(a, empty, [/^CREATE RULE r2 AS/]);
  await converges(empty, a, ['DROP TABLE "public"."t"']);
});

test('statistics objects: created, target set, recreated, dropped', async () => {
  const base = `create table t(a int, b int, c int);`;
  const a = await db(`${base} create statistics s1 (ndistinct, dependencies) on a, b from t; create statistics s2 on a, c from t; alter statistics s2 set statistics 200;`);
  const b = await db(`${base} create statistics s1 (ndistinct) on a, b from t; create statistics s2 on a, c from t; create statistics s3 on b, c from t;`);
  const empty = await db('');
  await converges(a, b, ['DROP STATISTICS "public"."s1"', 'CREATE STATISTICS public.s1 (ndistinct, dependencies) ON a, b FROM public.t', 'ALTER STATISTICS "public"."s2" SET STATISTICS 200', 'DROP STATISTICS "public"."s3"']);
  await converges(b, a, ['ALTER STATISTICS "public"."s2" SET STATISTICS -1', 'CREATE STATISTICS public.s3 ON b, c FROM public.t']);
  await converges(a, empty, ['ALTER STATISTICS "public"."s2" SET STATISTICS 200']);
  // a column type change goes around the statistics object on it
  const c = await db(`create table t(a int, b int, c bigint); create statistics s2 on a, c from t;`);
  const d = await db(`create table t(a int, b int, c int); create statistics s2 on a, c from t;`);
  await converges(c, d, ['DROP STATISTICS "public"."s2"', /ALTER COLUMN "c" TYPE bigint/]);
});

test('objects not handled: nothing is created or dropped around them, a plan error names both', async () => {
  // the source's view uses an operator (not handled) the target lacks
  const OP = `create function public.f_eq(int, int) returns bool language sql immutable as 'select $1 = $2';
    create operator public.=== (leftarg = int, rightarg = int, function = public.f_eq);`;
  const a = await db(`${OP} create table d(n int); create view v as select n from d where n operator(public.===) 1;`);
  const b = await db(`create table d(n int);`);
  const plan = planSchema(await inspectDb(a), await inspectDb(b));
  assert.ok(plan.notHandled.some((n) => n.kind === 'operator'));
  assert.ok(plan.errors.some((e) => e.includes('view public.v') && e.includes('operator public.===(integer,integer)')), plan.errors.join('\n'));
  // the target's event trigger uses a function the source lacks: dropping it would fail
  const c = await db(`create function public.evt() returns event_trigger language plpgsql as $$ begin end $$;
    create event trigger nself_kinds_evt on ddl_command_start execute function public.evt();`);
  const empty = await db('');
  const p2 = planSchema(await inspectDb(empty), await inspectDb(c));
  assert.ok(p2.errors.some((e) => e.includes('event trigger nself_kinds_evt') && e.includes('function public.evt')), p2.errors.join('\n'));
  // the same operator on both sides: the view is created
  const e = await db(`${OP} create table d(n int);`);
  await converges(a, e, ['CREATE VIEW "public"."v"']);
});

test('text search dictionaries and configurations: created with their mappings, changed in place, recreated, dropped', async () => {
  const a = await db(`create text search dictionary public.simple_en (template = pg_catalog.simple, stopwords = 'english');
    create text search configuration public.mycfg (copy = pg_catalog.english);
    alter text search configuration public.mycfg alter mapping for asciiword, word with public.simple_en, english_stem;
    alter text search configuration public.mycfg drop mapping for email;
    comment on text search configuration public.mycfg is 'mine';
    create table d(t text); create index d_i on d using gin (to_tsvector('public.mycfg'::regconfig, t));`);
  const b = await db(`create text search dictionary public.simple_en (template = pg_catalog.simple);
    create text search configuration public.mycfg (copy = pg_catalog.english);
    create table d(t text); create index d_i on d using gin (to_tsvector('public.mycfg'::regconfig, t));`);
  const empty = await db('');
  await converges(a, b, [
    'ALTER TEXT SEARCH CONFIGURATION "public"."mycfg" ALTER MAPPING FOR "asciiword" WITH public.simple_en,english_stem',
    `CREATE TEXT SEARCH DICTIONARY "public"."simple_en" (TEMPLATE = pg_catalog.simple, stopwords = 'english')`,
    'ALTER TEXT SEARCH CONFIGURATION "public"."mycfg" DROP MAPPING FOR "email"', `COMMENT ON TEXT SEARCH CONFIGURATION "public"."mycfg" IS 'mine'`,
  ]);
  // a dictionary whose options change is recreated, with the configuration using it (and that one's index)
  await converges(b, a, ['DROP TEXT SEARCH DICTIONARY "public"."simple_en"', 'DROP TEXT SEARCH CONFIGURATION "public"."mycfg"', 'ADD MAPPING FOR "email" WITH simple']);
  await converges(a, empty, ['CREATE TEXT SEARCH CONFIGURATION "public"."mycfg" (PARSER = pg_catalog."default")', 'CREATE INDEX d_i ON public.d USING gin']);
  await converges(empty, a, ['DROP TEXT SEARCH CONFIGURATION "public"."mycfg"']);
});

test('default privileges (ALTER DEFAULT PRIVILEGES): for one schema and for all, grant option, revoked built-in defaults', async () => {
  await cluster.sql(`do $$ begin if not exists (select from pg_roles where rolname = 'nself_kinds_r') then create role nself_kinds_r; end if; end $$`);
  const a = await db(`create schema app;
    alter default privileges in schema app grant select, insert on tables to nself_kinds_r;
    alter default privileges revoke execute on functions from public;
    alter default privileges grant usage on sequences to nself_kinds_r with grant option;
    alter default privileges for role nself_kinds_r in schema app grant usage on types to public;`);
  const b = await db(`create schema app; alter default privileges in schema app grant select on tables to nself_kinds_r; alter default privileges grant usage on schemas to nself_kinds_r;`);
  const empty = await db('');
  await converges(a, b, [
    'ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA "app" GRANT INSERT, SELECT ON TABLES TO "nself_kinds_r"',
    'ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" REVOKE ALL ON FUNCTIONS FROM PUBLIC',
    'ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" GRANT USAGE ON SEQUENCES TO "nself_kinds_r" WITH GRANT OPTION',
    'ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" REVOKE ALL ON SCHEMAS FROM "nself_kinds_r"',
  ]);
  await converges(b, a, ['ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" GRANT EXECUTE ON FUNCTIONS TO PUBLIC', 'ALTER DEFAULT PRIVILEGES FOR ROLE "nself_kinds_r" IN SCHEMA "app" REVOKE ALL ON TYPES FROM PUBLIC']);
  await converges(a, empty, ['CREATE SCHEMA "app"']);
  await converges(empty, a, ['DROP SCHEMA "app"']);
});

test('a DDL between a snapshot and its inspection: a clear error inside the caller\'s transaction, a new snapshot outside one', async () => {
  const name = await db(`create table t(id int primary key, v text, w text, constraint t_v unique (v)); create index t_v2 on t(v, id);`);
  const [a, b] = await Promise.all([connect(name), connect(name)]);
  try {
    // the caller's snapshot still lists the constraint; pg_get_constraintdef reads its index from the current
    // catalog, which no longer has it ("cache lookup failed for index …")
    await a.query('begin isolation level repeatable read read only');
    await a.query('select count(*) from pg_class');
    await b.query('alter table t drop constraint t_v');
    await assert.rejects(inspectSchema(a), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'schema_changed_during_inspection');
      assert.match(e.message, /^the schema changed while it was being read \(a DDL ran at the same time\): /);
      return true;
    });
    await a.query('rollback');
    // outside a transaction: inspections racing DDL on another connection (every ~20 ms) end with a consistent model
    let stop = false;
    const churn = (async () => {
      for (let i = 0; !stop; i++) {
        await b.query(i % 2 ? 'alter table t drop constraint t_w' : 'alter table t add constraint t_w unique (w)');
        await new Promise((res) => setTimeout(res, 20));
      }
    })();
    try {
      for (let i = 0; i < 40; i++) {
        const m = await inspectSchema(a);
        assert.ok(m.facts.some((f) => f.id === 'index:"public"."t_v2"'));
      }
    } finally {
      stop = true;
      await churn;
    }
  } finally {
    await Promise.allSettled([a.end(), b.end()]);
  }
});

test('inspection outside a transaction closes what it opened; a catalog it may not read is named, in or out of a transaction', async () => {
  const name = await db(`create table t(id int); create sequence s; revoke select on pg_catalog.pg_sequence from public;
    do $$ begin if not exists (select from pg_roles where rolname = 'nself_kinds_reader') then create role nself_kinds_reader login password 'pw'; end if; end $$;`);
  const ok = await connect(name);
  try {
    await ok.query('set search_path = public, pg_temp');
    const m = await inspectSchema(ok);
    assert.ok(m.facts.some((f) => f.id === 'sequence:"public"."s"'));
    assert.equal((await ok.query('show search_path')).rows[0].search_path, 'public, pg_temp');
    // no transaction left open: outside one, a statement's transaction starts with it
    assert.equal((await ok.query('select now() = statement_timestamp() v')).rows[0].v, true);
  } finally {
    await ok.end();
  }
  const c = new pg.Client({ connectionString: cluster.url(name).replace(`${cluster.user}:${encodeURIComponent(cluster.password)}@`, 'nself_kinds_reader:pw@') });
  await c.connect();
  try {
    for (const inTransaction of [false, true]) {
      if (inTransaction) await c.query('BEGIN');
      await assert.rejects(inspectSchema(c), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'schema_inspect_failed');
        assert.match(e.message, /^schema inspection failed reading sequence settings \(PostgreSQL \d+\.\d+\): permission denied for table pg_sequence$/);
        return true;
      });
      if (inTransaction) await c.query('ROLLBACK');
      assert.equal((await c.query('show search_path')).rows[0].search_path, '"$user", public', `the search_path is back (${inTransaction ? 'in' : 'outside'} a transaction)`);
    }
  } finally {
    await c.end();
  }
});

test('SET LOGGED / UNLOGGED of tables joined by foreign keys (both ways, circular): the foreign keys are dropped and added again around it', async () => {
  // Synapse's schema delta 80/02 makes two tables that reference each other unlogged: PostgreSQL refuses either
  // SET UNLOGGED while a logged table references the table, and SET LOGGED while the table references an unlogged one
  const base = (unlogged: boolean) => `create ${unlogged ? 'unlogged ' : ''}table locks(name text, token text, primary key (name), unique (name, token));
    create ${unlogged ? 'unlogged ' : ''}table locks_mode(name text primary key, token text, foreign key (name, token) references locks (name, token) deferrable initially deferred);
    alter table locks add foreign key (name) references locks_mode (name) deferrable initially deferred;
    create ${unlogged ? 'unlogged ' : ''}table other(id int primary key, lock text references locks (name));`;
  const logged = await db(base(false));
  const unlogged = await db(base(true));
  await converges(unlogged, logged, ['ALTER TABLE "public"."locks" SET UNLOGGED', 'ALTER TABLE "public"."locks_mode" SET UNLOGGED', 'ALTER TABLE "public"."other" SET UNLOGGED']);
  await converges(logged, unlogged, ['ALTER TABLE "public"."locks" SET LOGGED', 'ALTER TABLE "public"."locks_mode" SET LOGGED', 'ALTER TABLE "public"."other" SET LOGGED']);
});

test('names of the indexes partitions hold under a partitioned index: renamed to the source’s (also a level down), never rebuilt', async () => {
  const base = `create table p(id int, k int) partition by range (id);
    create table p1 partition of p for values from (0) to (10); create table p2 partition of p for values from (10) to (20);
    create table p3 partition of p for values from (20) to (30) partition by range (id); create table p3a partition of p3 for values from (20) to (30);
    insert into p values (1, 1), (11, 2), (21, 3);`;
  // a: p1's and p3's (and p3a's) indexes made under their own names before the parent's CREATE INDEX attached them
  const a = await db(`${base} create index p1_own on p1(k); create index p3a_own on p3a(k); create index p3_own on p3(k); create index p_k on p(k);`);
  const b = await db(`${base} create index p_k on p(k);`);
  const empty = await db('');
  const ab = await converges(a, b, ['ALTER INDEX "public"."p1_k_idx" RENAME TO "p1_own"', 'ALTER INDEX "public"."p3_k_idx" RENAME TO "p3_own"', 'ALTER INDEX "public"."p3a_k_idx" RENAME TO "p3a_own"']);
  assert.deepEqual(sqls(ab).filter((x) => /INDEX/.test(x) && !/RENAME/.test(x)), [], 'renamed, not rebuilt');
  await converges(b, a, ['ALTER INDEX "public"."p1_own" RENAME TO "p1_k_idx"', 'ALTER INDEX "public"."p3a_own" RENAME TO "p3a_k_idx"']);
  await converges(a, empty, ['CREATE INDEX p_k ON public.p USING btree (k)', /p1_own/, /p3a_own/]);
  // the partitioned index made on partitions that exist (not ON ONLY: that would leave it invalid, the partitions without)
  await converges(a, await db(base), ['CREATE INDEX p_k ON public.p USING btree (k)', /p1_own/, /p3_own/, /p3a_own/]);
  await converges(empty, a, ['DROP TABLE "public"."p"']);
  // a partition attached (and one created) under an existing partitioned index gets the source's name too
  const c = await db(`${base} alter table p detach partition p1; create index p_k on p(k);`);
  await converges(a, c, [/ATTACH PARTITION/, /p1_own/]);
});

test('an owner’s own grants: what differs from its default privileges (grant option, revoked ones), applied to the target’s owner', async () => {
  await cluster.sql(`do $$ begin if not exists (select from pg_roles where rolname = 'nself_kinds_o') then create role nself_kinds_o; end if; end $$`);
  const base = `create schema s; create table s.t(a int); create table s.u(a int); create sequence s.q;
    create function s.f() returns int language sql as 'select 1'; create type s.e as enum ('x');`;
  // (the owner's grant option taken back while a role it granted to keeps its grant: PostgreSQL never cascades that)
  const a = await db(`${base} grant select on s.t to postgres with grant option; grant select on s.t to nself_kinds_o; revoke delete, truncate on s.u from postgres;
    revoke usage on sequence s.q from postgres; grant execute on function s.f() to postgres with grant option;
    revoke create on schema s from postgres; revoke usage on type s.e from postgres;`);
  const b = await db(`${base} grant update on s.t to postgres with grant option; revoke insert on s.t from postgres;`);
  const empty = await db('');
  await converges(a, b, [/GRANT SELECT ON TABLE "s"."t" TO .* WITH GRANT OPTION/, /REVOKE DELETE ON TABLE "s"."u" FROM /, /REVOKE USAGE ON SEQUENCE "s"."q" FROM /,
    /GRANT EXECUTE ON FUNCTION "s"."f"\(\) TO .* WITH GRANT OPTION/, /REVOKE CREATE ON SCHEMA "s" FROM /, /REVOKE USAGE ON TYPE "s"."e" FROM /,
    /REVOKE GRANT OPTION FOR UPDATE ON TABLE "s"."t" FROM /, /GRANT INSERT ON TABLE "s"."t" TO /]);
  await converges(b, a, [/REVOKE GRANT OPTION FOR SELECT ON TABLE "s"."t" FROM /, /GRANT UPDATE ON TABLE "s"."t" TO .* WITH GRANT OPTION/, /REVOKE INSERT ON TABLE "s"."t" FROM /, /GRANT DELETE ON TABLE "s"."u" TO /]);
  await converges(a, empty, [/GRANT SELECT ON TABLE "s"."t" TO .* WITH GRANT OPTION/]);
  await converges(empty, a, ['DROP SCHEMA "s"']);
  // owners differ, ACLs are the defaults: no difference
  const other = await db(`${base} alter schema s owner to nself_kinds_o; alter table s.t owner to nself_kinds_o; alter table s.u owner to nself_kinds_o;
    alter sequence s.q owner to nself_kinds_o; alter function s.f() owner to nself_kinds_o; alter type s.e owner to nself_kinds_o;`);
  const plain = await db(base);
  assert.deepEqual(planSchema(await inspectDb(other), await inspectDb(plain)).changes, []);
  assert.deepEqual(planSchema(await inspectDb(plain), await inspectDb(other)).changes, []);
  // the source's owner is another role: its own entries are applied to the target object's owner (postgres here)
  const byOther = await db(`${base} alter table s.t owner to nself_kinds_o; grant select on s.t to nself_kinds_o with grant option;`);
  await converges(byOther, b, [/GRANT SELECT ON TABLE "s"."t" TO .* WITH GRANT OPTION/]);
  const ob = await inspectDb(byOther);
  assert.ok(!ob.facts.some((f) => f.kind === 'acl' && f.meta.grantee === 'nself_kinds_o'), 'the owner’s entry is not a grant to a role');
});

test('a grant to the role that owns the object on the target (or will own it) is implied there: the plan converges instead of granting it on every run', async () => {
  await cluster.sql(`do $$ begin if not exists (select from pg_roles where rolname = 'nself_kinds_o') then create role nself_kinds_o; end if; end $$`);
  // the source grants to nself_kinds_o, which owns s.t on the target; s.n does not exist there (created by postgres,
  // so its grant is a real one); s.m is granted to postgres, who will own it once the migration (as postgres) creates it
  const src = await db(`create schema s; create table s.t(a int, b int); grant select, insert on s.t to nself_kinds_o; grant update (b) on s.t to nself_kinds_o;
    create table s.n(a int); grant select on s.n to nself_kinds_o;
    create table s.m(a int); alter table s.m owner to nself_kinds_o; grant select on s.m to postgres;`);
  const tgt = await db(`create schema s; create table s.t(a int, b int); alter table s.t owner to nself_kinds_o;`);
  const plan = await converges(src, tgt, [/GRANT SELECT ON TABLE "s"."n" TO "nself_kinds_o"/, 'CREATE TABLE "s"."m"']);
  assert.ok(!sqls(plan).some((x) => /GRANT .* ON TABLE "s"\."t"|GRANT SELECT ON TABLE "s"\."m"/.test(x)), sqls(plan).join('\n'));
  // an owner that revoked a privilege from itself does not hold it: the grant is planned (and then converges)
  const revoked = await db(`create schema s; create table s.t(a int, b int); alter table s.t owner to nself_kinds_o; revoke select on s.t from nself_kinds_o;
    create table s.n(a int); create table s.m(a int);`);
  await converges(src, revoked, [/GRANT INSERT, SELECT ON TABLE "s"."t" TO "nself_kinds_o"/]);
});
