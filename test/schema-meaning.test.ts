/**
 * Meaning, not text (issue #8): PostgreSQL's deparser is not idempotent, so a definition recreated from the source's
 * rendering renders differently on the target. Definitions that differ as text are judged by the target server
 * (canonicalizeSource): migrations verify, diffs find nothing, nothing is left behind. And no collateral drops: an
 * enum recreated under a partitioned table converts it in place, partitions keep their oids and rows.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startCluster, type TestCluster } from './support/pg.ts';
import { makeProject } from './support/cli.ts';
import { applySchema, canonicalizeSource, inspectSchema, planSchema, type SchemaModel, type SchemaPlan } from '../src/schema/index.ts';

let cluster: TestCluster;
let dbn = 0;
before(async () => {
  cluster = await startCluster();
});
after(async () => {
  await cluster?.stop();
});

async function withDb<R>(db: string, f: (c: pg.Client) => Promise<R>): Promise<R> {
  const c = new pg.Client({ connectionString: cluster.url(db) });
  await c.connect();
  try {
    return await f(c);
  } finally {
    await c.end();
  }
}

async function db(sql: string): Promise<string> {
  const name = `m${++dbn}`;
  await cluster.createDatabase(name);
  if (sql) await cluster.sql(sql, name);
  return name;
}

const envFor = (name: string) => `POSTGRES_HOST=127.0.0.1\nPOSTGRES_PORT=${cluster.port}\nPOSTGRES_DB=${name}\nPOSTGRES_USER=${cluster.user}\nPOSTGRES_PASSWORD=${cluster.password}\n`;
const inspect = (name: string) => withDb(name, (c) => inspectSchema(c));
const sqls = (p: SchemaPlan) => p.statements.map((s) => s.sql);

/**
 * What migrate does: plan against the source as the target means it, apply in one transaction, verify inside it
 * (canonicalised in a savepoint) that nothing is left, commit. Returns the plan.
 */
async function migrate(source: SchemaModel, tgt: string): Promise<SchemaPlan> {
  return withDb(tgt, async (c) => {
    const canon = await canonicalizeSource(c, source, await inspectSchema(c), { inTransaction: false });
    const plan = planSchema(canon.model, await inspectSchema(c));
    assert.deepEqual(plan.errors, []);
    await c.query('BEGIN');
    try {
      await applySchema(c, plan);
      const now = await inspectSchema(c);
      const left = planSchema((await canonicalizeSource(c, source, now, { inTransaction: true })).model, now);
      assert.deepEqual(sqls(left), [], 'verify after apply must find nothing:\n' + sqls(plan).join(';\n'));
      await c.query('COMMIT');
    } catch (e) {
      await c.query('ROLLBACK');
      throw e;
    }
    return plan;
  });
}

/** source → (fresh) target, then compared both ways: as text they differ, as meaning they do not. */
async function roundTrip(sourceSql: string, targetSql = ''): Promise<void> {
  const src = await db(sourceSql);
  const tgt = await db(targetSql);
  const source = await inspect(src);
  await migrate(source, tgt);
  const target = await inspect(tgt);
  assert.notEqual(planSchema(source, target).changes.length, 0, 'the deparser changes the text of this definition (else the case tests nothing)');
  const canon = await withDb(tgt, (c) => canonicalizeSource(c, source, target, { inTransaction: false }));
  assert.ok(canon.compared > 0 && canon.same === canon.compared, JSON.stringify(canon));
  assert.deepEqual(sqls(planSchema(canon.model, target)), []);
  // and the other way round: the source's own text is the one that is "different" now
  const back = await withDb(src, (c) => canonicalizeSource(c, target, source, { inTransaction: false }));
  assert.deepEqual(sqls(planSchema(back.model, source)), []);
  // a second migration has nothing to do
  assert.deepEqual(sqls(await migrate(source, tgt)), []);
}

test('CHECK with an IN-list on varchar', () => roundTrip(`create table t(id int primary key, s varchar(20) check (s in ('a', 'b')))`));

test('partial index predicate with an IN-list', () =>
  roundTrip(`create table t(id int primary key, s varchar(20)); create index t_s on t(id) where s in ('a', 'b'); create unique index t_u on t(s) where s not in ('x')`));

test('policy USING and WITH CHECK', () =>
  roundTrip(`create table t(id int primary key, s varchar(20)); alter table t enable row level security;
    create policy p on t using (s in ('a', 'b')) with check (s in ('a', 'c'))`));

test('views with UNION and NULL columns (plain and materialized)', () =>
  roundTrip(`create table t(id int primary key, n int, s varchar(10));
    create view v as select id, n from (select id, n from t union all select id, null from t) q;
    create materialized view mv as select id, null as x from t union select id, n from t where s in ('a', 'b')`));

test('column default with casts, generated column', () =>
  roundTrip(`create table t(id int primary key, s varchar(20), tags text[] default array['a', 'b']::varchar[]::text[],
    g text generated always as (case when s in ('a', 'b') then s else null end) stored)`));

test('domain constraint and trigger WHEN', () =>
  roundTrip(`create domain code as varchar(20) check (value in ('a', 'b'));
    create table t(id int primary key, c code, s varchar(20));
    create function f() returns trigger language plpgsql as 'begin return new; end';
    create trigger tg before insert or update of s on t for each row when (new.s in ('a', 'b')) execute function f()`));

test('definitions that mean something else are still changes; what the target cannot create counts as different', async () => {
  const src = await db(`create table t(id int primary key, s varchar(20) check (s in ('a', 'b'))); create table u(id int, s varchar(20)); create index u_s on u(id) where s in ('a')`);
  const tgt = await db(`create table t(id int primary key, s varchar(20) check (s in ('a', 'c'))); create table u(id int, s varchar(20)); create index u_s on u(id) where s in ('a', 'z')`);
  const source = await inspect(src);
  const target = await inspect(tgt);
  const canon = await withDb(tgt, (c) => canonicalizeSource(c, source, target, { inTransaction: false }));
  assert.equal(canon.compared, 2);
  assert.equal(canon.same, 0);
  assert.deepEqual(planSchema(canon.model, target).changes.map((c) => c.identity).sort(), ['"public"."t"."t_s_check"', '"public"."u_s"']);
  // a view over a column the target lacks cannot be rendered there: different (and planned), never an error
  const a = await db(`create table t(id int, x int); create view v as select id, x from t`);
  const b = await db(`create table t(id int); create view v as select id, null::int as x from t`);
  const sa = await inspect(a);
  const tb = await inspect(b);
  const c2 = await withDb(b, (c) => canonicalizeSource(c, sa, tb, { inTransaction: false }));
  assert.equal(c2.same, 0);
  assert.ok(planSchema(c2.model, tb).changes.some((c) => c.identity === '"public"."v"'));
});

/** A catalog summary that any object left behind (a table, a type, a schema, a temp schema) would change. */
async function catalog(name: string): Promise<string> {
  return withDb(name, async (c) =>
    JSON.stringify(
      (
        await c.query(
          `select (select count(*) from pg_class) c, (select count(*) from pg_type) t, (select count(*) from pg_constraint) k,
                  (select count(*) from pg_attrdef) d, (select count(*) from pg_policy) p, (select count(*) from pg_trigger) g,
                  (select string_agg(nspname, ',' order by nspname) from pg_namespace) n`,
        )
      ).rows[0],
    ),
  );
}

test('canonicalisation leaves nothing behind; read-only transactions fall back to text', async () => {
  const src = await db(`create table t(id int primary key, s varchar(20) check (s in ('a', 'b'))); create view v as select id from (select id from t union all select null) q`);
  const tgt = await db(``);
  const source = await inspect(src);
  await migrate(source, tgt);
  const before = await catalog(tgt);
  await withDb(tgt, async (c) => {
    const target = await inspectSchema(c);
    assert.equal((await canonicalizeSource(c, source, target, { inTransaction: false })).same, 2);
    // inside a caller's transaction: its own work survives the savepoint's rollback
    await c.query('BEGIN');
    await c.query('create table keep(id int)');
    assert.equal((await canonicalizeSource(c, source, target, { inTransaction: true })).same, 2);
    assert.equal((await c.query(`select count(*)::int n from pg_class where relname = 'keep'`)).rows[0].n, 1);
    assert.equal((await c.query('show search_path')).rows[0].search_path, '"$user", public');
    await c.query('ROLLBACK');
    // a read-only transaction cannot create even temporary objects: compared as text, said why, nothing fails
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const ro = await canonicalizeSource(c, source, target, { inTransaction: true });
    assert.match(ro.unavailable ?? '', /read-only transaction/);
    assert.equal(ro.model, source);
    await c.query('COMMIT');
  });
  assert.equal(await catalog(tgt), before);
});

// ------------------------------------------------------------------ no collateral drops

const PARTITIONED = (labels: string, dflt: string) => `
  create type st as enum (${labels});
  create table p(id int primary key, s st default ${dflt}) partition by range (id);
  create table p1 partition of p for values from (0) to (10);
  create table p2 partition of p for values from (10) to (20);
  create table p3 partition of p for values from (20) to (30);
  create index p_s on p(s);
  create table base(id int, s st);
  create table child(extra int) inherits (base);`;
const ROWS = `insert into p select g, (case when g % 2 = 0 then 'a' else 'b' end)::st from generate_series(0, 29) g;
  insert into child select g, 'b', g from generate_series(1, 5) g;`;

async function relOids(name: string): Promise<Record<string, number>> {
  const rows = await withDb(name, (c) => c.query(`select relname, oid::int o from pg_class where relname in ('p', 'p1', 'p2', 'p3', 'base', 'child') order by 1`));
  return Object.fromEntries(rows.rows.map((r) => [r.relname, r.o]));
}
const rowsOf = (name: string) =>
  withDb(name, async (c) => (await c.query(`select tableoid::regclass::text t, id, s::text s from p union all select tableoid::regclass::text, id, s::text from base order by 1, 2`)).rows);

for (const [title, sourceLabels, sourceDefault, targetLabels] of [
  ['an enum losing a value', `'b', 'a'`, `'a'`, `'a', 'b', 'c'`],
  ['an enum gaining a value used by a default', `'a', 'b', 'c'`, `'c'`, `'a', 'b'`],
] as const) {
  test(`${title} under a partitioned table (3 partitions) and an inheritance child: converted in place, nothing dropped`, async () => {
    const src = await db(PARTITIONED(sourceLabels, sourceDefault));
    const tgt = await db(PARTITIONED(targetLabels, `'a'`) + ROWS);
    const oids = await relOids(tgt);
    const rows = await rowsOf(tgt);
    const plan = await migrate(await inspect(src), tgt);
    assert.ok(!sqls(plan).some((x) => /^DROP TABLE|DETACH/.test(x)), sqls(plan).join('\n'));
    assert.ok(sqls(plan).some((x) => /^ALTER TABLE "public"."p" ALTER COLUMN "s" TYPE public.st USING "s"::text::public.st$/.test(x)), sqls(plan).join('\n'));
    assert.deepEqual(await relOids(tgt), oids, 'the same tables, not new ones');
    assert.deepEqual(await rowsOf(tgt), rows);
    const labels = await withDb(tgt, async (c) => (await c.query(`select enum_range(null::st)::text r`)).rows[0].r);
    assert.equal(labels, `{${sourceLabels.replace(/'| /g, '')}}`);
  });
}

test('a changed partition key: the partitions are detached and attached again, their rows stay', async () => {
  const src = await db(`create table p(id int, at date) partition by list (id); create table p1 partition of p for values in (1, 2)`);
  const tgt = await db(`create table p(id int, at date) partition by range (at); create table p1 partition of p for values from ('2024-01-01') to ('2025-01-01');
    insert into p values (1, '2024-05-01'), (2, '2024-06-01')`);
  const p1 = (await cluster.query(`select 'p1'::regclass::oid::int o`, [], tgt))[0].o;
  await migrate(await inspect(src), tgt);
  assert.deepEqual(await cluster.query(`select tableoid::regclass::text t, id from p order by id`, [], tgt), [{ t: 'p1', id: 1 }, { t: 'p1', id: 2 }]);
  assert.equal((await cluster.query(`select 'p1'::regclass::oid::int o`, [], tgt))[0].o, p1);
});

test('a table that exists on both sides is never dropped with its rows: refused by migrate at plan time, and by the plan itself', async () => {
  const src = await db(`create table r(id int) partition by range (id); create table r1 partition of r for values from (0) to (10)`);
  const tgt = await db(`create table r(id int); insert into r values (1)`);
  const plan = planSchema(await inspect(src), await inspect(tgt));
  assert.deepEqual(plan.recreatedTables, [{ schema: 'public', name: 'r', reason: 'its partition key differs (not partitioned on the target, PARTITION BY RANGE (id) in the source), which PostgreSQL cannot change in place' }]);
  // the plan locks the table and stops before dropping it: its transaction rolls back, the row stays
  await withDb(tgt, async (c) => {
    await c.query('BEGIN');
    await assert.rejects(applySchema(c, plan), /table public\.r has rows and would have to be dropped and recreated: its partition key differs/);
    await c.query('ROLLBACK');
  });
  assert.equal((await cluster.query(`select count(*)::int n from r`, [], tgt))[0].n, 1);
  // migrate refuses at plan time, before anything runs
  const pr = makeProject({ '.env.local': envFor(src), '.env.staging': envFor(tgt) });
  try {
    const m = await pr.run(['migrate', 'local', 'staging', '--schema-only', '--force']);
    assert.equal(m.code, 1, m.stdout + m.stderr);
    assert.match(m.stderr, /the schema plan cannot be applied: table public\.r has rows and would have to be dropped and recreated: its partition key differs/);
    assert.deepEqual(pr.checkpoints(), []);
  } finally {
    pr.remove();
  }
  // an empty table has nothing to lose: recreated, and the round trip converges
  await cluster.sql(`delete from r`, tgt);
  await migrate(await inspect(src), tgt);
});

// ------------------------------------------------------------------ through the real CLI


test('CLI: migrate --schema-only verifies, diff --exit-code finds nothing and leaves the target as it was', async () => {
  const local = await db(`create table t(id int primary key, s varchar(20) check (s in ('a', 'b')));
    create view v as select id, n from (select id, s as n from t union all select id, null from t) q;` + PARTITIONED(`'b', 'a'`, `'a'`));
  const staging = await db(PARTITIONED(`'a', 'b', 'c'`, `'a'`) + ROWS);
  const oids = await relOids(staging);
  const rows = await rowsOf(staging);
  const p = makeProject({ '.env.local': envFor(local), '.env.staging': envFor(staging) });
  try {
    const m = await p.run(['migrate', 'local', 'staging', '--schema-only', '--force']);
    assert.equal(m.code, 0, m.stdout + m.stderr);
    assert.deepEqual(await relOids(staging), oids);
    assert.deepEqual(await rowsOf(staging), rows);
    const before = await catalog(staging);
    const d = await p.run(['migrate', 'diff', 'local', 'staging', '--schema-only', '--exit-code']);
    assert.equal(d.code, 0, d.stdout + d.stderr);
    assert.doesNotMatch(d.stderr, /compared as text/);
    assert.equal(await catalog(staging), before, 'diff left nothing behind on the target');
    // and the other way: staging (recreated from local's text) against local (created from the original SQL)
    const back = await p.run(['migrate', 'diff', 'staging', 'local', '--schema-only', '--exit-code']);
    assert.equal(back.code, 0, back.stdout + back.stderr);
  } finally {
    p.remove();
  }
});

test('CLI: rollback brings back a definition the deparser rewrites, and verifies it', async () => {
  const local = await db(`create table t(id int primary key, s varchar(20))`);
  const staging = await db(`create table t(id int primary key, s varchar(20) check (s in ('a', 'b'))); insert into t values (1, 'a')`);
  const p = makeProject({ '.env.local': envFor(local), '.env.staging': envFor(staging) });
  try {
    const m = await p.run(['migrate', 'local', 'staging', '--schema-only', '--force']);
    assert.equal(m.code, 0, m.stdout + m.stderr);
    const rb = await p.run(['migrate', 'rollback', '--force']);
    assert.equal(rb.code, 0, rb.stdout + rb.stderr);
    assert.match((await cluster.query(`select pg_get_constraintdef(oid) d from pg_constraint where conname = 't_s_check'`, [], staging))[0].d, /ARRAY/);
  } finally {
    p.remove();
  }
});
