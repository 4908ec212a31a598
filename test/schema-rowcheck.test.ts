/**
 * Row checks for schema plans against a real PostgreSQL: for every kind of conflict, a source/target pair where the
 * target's rows make the plan fail (kind, table, column and exact count asserted) and a near-identical pair where
 * they do not. Each verdict is proved by applying the plan to the target inside BEGIN … ROLLBACK: it fails exactly
 * when a conflict was reported.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startCluster, type TestCluster } from './support/pg.ts';
import { inspectSchema, planSchema, applySchema, type SchemaPlan, type SchemaModel } from '../src/schema/index.ts';
import { checkPlanRows, findRowConflicts, parseCheck, parseForeignKey, parseUnique, parseUniqueIndex, type RowCheckOptions, type RowCheckResult } from '../src/schema/rowcheck.ts';

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

/** plan's outcome on the target: null when it applies, else the error message (always rolled back). */
async function applyOutcome(db: string, plan: SchemaPlan, prelude?: string): Promise<string | null> {
  const c = await connect(db);
  try {
    await c.query('BEGIN');
    if (prelude) await c.query(prelude);
    await applySchema(c, plan);
    return null;
  } catch (e) {
    return (e as Error).message;
  } finally {
    await c.query('ROLLBACK').catch(() => {});
    await c.end();
  }
}

interface Outcome { plan: SchemaPlan; result: RowCheckResult; failure: string | null; tgt: string; source: SchemaModel; targetModel: SchemaModel }

/**
 * Two databases, the plan source → target, the row checks (inside a READ ONLY transaction: they must not write), and
 * the proof: the plan fails on the target exactly when a conflict was reported (when every check could be made). `prelude` runs before the apply (what
 * the caller does to the tables it says it empties).
 */
async function check(sourceSql: string, targetSql: string, opts: RowCheckOptions & { prelude?: string } = {}): Promise<Outcome> {
  const i = ++dbn;
  const src = `src${i}`;
  const tgt = `tgt${i}`;
  await cluster.createDatabase(src);
  await cluster.createDatabase(tgt);
  await cluster.sql(sourceSql, src);
  await cluster.sql(targetSql, tgt);
  const s = await connect(src);
  const source = await inspectSchema(s).finally(() => s.end());
  const c = await connect(tgt);
  let plan: SchemaPlan;
  let result: RowCheckResult;
  let targetModel: SchemaModel;
  try {
    targetModel = await inspectSchema(c);
    plan = planSchema(source, targetModel);
    assert.deepEqual(plan.errors, []);
    await c.query('BEGIN TRANSACTION READ ONLY');
    result = await checkPlanRows(c, plan, source, targetModel, opts);
    // the transaction is still usable afterwards
    assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1);
    await c.query('ROLLBACK');
  } finally {
    await c.end();
  }
  const failure = await applyOutcome(tgt, plan, opts.prelude);
  const sql = plan.statements.map((x) => x.sql).join(';\n');
  // the proof: a conflict means the plan fails; no conflict and nothing unchecked means it applies
  if (result.conflicts.length > 0 || result.unchecked.length === 0) {
    assert.equal(failure !== null, result.conflicts.length > 0, `apply ${failure ? `failed (${failure})` : 'succeeded'} but conflicts were ${JSON.stringify(result.conflicts, null, 1)}\n--- plan:\n${sql}`);
  }
  return { plan, result, failure, tgt, source, targetModel };
}

const only = (o: Outcome) => {
  assert.equal(o.result.conflicts.length, 1, JSON.stringify(o.result.conflicts, null, 1));
  return o.result.conflicts[0]!;
};
const none = (o: Outcome) => {
  assert.deepEqual(o.result.conflicts, []);
  assert.deepEqual(o.result.unchecked, []);
  assert.equal(o.failure, null);
};

// ---------------------------------------------------------------- NOT NULL

const USERS = `create table users(id int primary key, name text);`;
const USERS_ROWS = `${USERS} insert into users select g, case when g % 3 = 0 then null else 'u' || g end from generate_series(1, 12) g;`;

test('not_null: a new NOT NULL column without a default on a populated table', async () => {
  const o = await check(`create table users(id int primary key, name text, display_name text not null);`, USERS_ROWS);
  const c = only(o);
  assert.equal(c.kind, 'not_null');
  assert.equal(c.table, 'public.users');
  assert.deepEqual([c.schema, c.name, c.column, c.rows], ['public', 'users', 'display_name', 12]);
  assert.equal(c.message, '12 row(s) of public.users would have NULL in the new column display_name, which is NOT NULL without a default');
  assert.match(c.hint, /DEFAULT.*without --schema-only/);
  assert.match(o.failure!, /column "display_name" of relation "users" contains null values/);
});

test('not_null: no conflict with a default, a volatile default, a generated or identity column, an empty or emptied table', async () => {
  none(await check(`create table users(id int primary key, name text, display_name text not null default '');`, USERS_ROWS));
  none(await check(`create table users(id int primary key, name text, display_name text not null default md5(random()::text));`, USERS_ROWS));
  none(await check(`create table users(id int primary key, name text, display_name text not null generated always as ('u' || id) stored);`, USERS_ROWS));
  none(await check(`create table users(id int primary key, name text, n bigint generated always as identity);`, USERS_ROWS));
  none(await check(`create table users(id int primary key, name text, display_name text not null);`, USERS));
  none(await check(`create table users(id int primary key, name text, display_name text not null);`, USERS_ROWS, {
    emptied: (s, t) => s === 'public' && t === 'users',
    prelude: 'DELETE FROM users',
  }));
  // a table the plan creates has no rows
  none(await check(`create table users(id int primary key, name text); create table other(x int not null);`, USERS_ROWS));
});

test('not_null: a new column of a NOT NULL domain without a default', async () => {
  const o = await check(`create domain code as text not null; ${USERS.replace(')', ', code code)')}`, USERS_ROWS);
  const c = only(o);
  assert.deepEqual([c.kind, c.table, c.column, c.rows], ['not_null', 'public.users', 'code', 12]);
  assert.match(o.failure!, /does not allow null values/);
  none(await check(`create domain code as text not null default 'x'; ${USERS.replace(')', ', code code)')}`, USERS_ROWS));
});

test('not_null: SET NOT NULL on a column holding NULLs', async () => {
  const o = await check(`create table users(id int primary key, name text not null);`, USERS_ROWS);
  const c = only(o);
  assert.deepEqual([c.kind, c.table, c.column, c.rows], ['not_null', 'public.users', 'name', 4]);
  assert.equal(c.message, '4 row(s) of public.users have NULL in name, which becomes NOT NULL');
  assert.match(o.failure!, /column "name" of relation "users" contains null values/);
  // the same change over rows without NULLs; a default added at the same time does not fill existing NULLs
  none(await check(`create table users(id int primary key, name text not null);`, `${USERS} insert into users select g, 'u' || g from generate_series(1, 12) g;`));
  const d = await check(`create table users(id int primary key, name text not null default 'x');`, USERS_ROWS);
  assert.equal(only(d).rows, 4);
});

// ---------------------------------------------------------------- enum values

/** Modeled on pagila (github.com/devrimgunduz/pagila): the mpaa_rating enum, film.rating and a view over it. */
const PAGILA = (labels: string) => `
create type public.mpaa_rating as enum (${labels});
create table public.language (language_id serial primary key, name character(20) not null, last_update timestamptz default now() not null);
create table public.film (
  film_id serial primary key,
  title text not null,
  description text,
  release_year int,
  language_id int not null references public.language(language_id) on update cascade on delete restrict,
  rental_duration smallint default 3 not null,
  rental_rate numeric(4,2) default 4.99 not null,
  length smallint,
  rating public.mpaa_rating default 'G'::public.mpaa_rating,
  special_features text[],
  last_update timestamptz default now() not null
);
create view public.film_list as select film_id as fid, title, description, length, rating from public.film;
`;
const ALL_RATINGS = `'G', 'PG', 'PG-13', 'R', 'NC-17'`;
const NO_NC17 = `'G', 'PG', 'PG-13', 'R'`;
const FILMS = (ratings: string[]) => `insert into public.language(name) values ('English');
  insert into public.film(title, language_id, rating) select 'FILM ' || g, 1, (${`array[${ratings.map((r) => `'${r}'`).join(', ')}]`}::public.mpaa_rating[])[g] from generate_series(1, ${ratings.length}) g;`;

test("enum_value: pagila's mpaa_rating loses 'NC-17' while films use it", async () => {
  const o = await check(PAGILA(NO_NC17), PAGILA(ALL_RATINGS) + FILMS(['G', 'NC-17', 'PG', 'NC-17', 'R', 'NC-17', 'PG-13']));
  const c = only(o);
  assert.deepEqual([c.kind, c.table, c.column, c.rows, c.enum, c.values], ['enum_value', 'public.film', 'rating', 3, 'public.mpaa_rating', ['NC-17']]);
  assert.equal(c.message, "3 row(s) of public.film use a value in rating that enum public.mpaa_rating no longer has ('NC-17')");
  assert.match(o.failure!, /invalid input value for enum "?public\.mpaa_rating"?: "NC-17"|invalid input value for enum mpaa_rating: "NC-17"/);
  // nobody uses it: the type is recreated and the column converted without trouble
  none(await check(PAGILA(NO_NC17), PAGILA(ALL_RATINGS) + FILMS(['G', 'PG', 'R', 'PG-13'])));
  // the films table is reloaded by the data step
  none(await check(PAGILA(NO_NC17), PAGILA(ALL_RATINGS) + FILMS(['NC-17']), { emptied: (_s, t) => t === 'film', prelude: 'DELETE FROM public.film' }));
});

test('enum_value: arrays of the enum, and a text column converted to an enum', async () => {
  const arr = (labels: string) => `create type st as enum (${labels}); create table t(id int primary key, tags st[]);`;
  const o = await check(arr(`'a', 'b'`), `${arr(`'a', 'b', 'c'`)} insert into t values (1, '{a,b}'), (2, '{c}'), (3, '{a,NULL,c}'), (4, null), (5, '{}');`);
  const c = only(o);
  assert.deepEqual([c.kind, c.table, c.column, c.rows, c.values], ['enum_value', 'public.t', 'tags', 2, ['c']]);
  assert.match(o.failure!, /invalid input value for enum/);
  none(await check(arr(`'a', 'b'`), `${arr(`'a', 'b', 'c'`)} insert into t values (1, '{a,b}'), (2, '{NULL}');`));

  const conv = await check(
    `create type status as enum ('new', 'done'); create table job(id int primary key, status status);`,
    `create table job(id int primary key, status text); insert into job values (1, 'new'), (2, 'done'), (3, 'failed'), (4, null), (5, 'failed');`,
  );
  const k = only(conv);
  assert.deepEqual([k.kind, k.table, k.column, k.rows, k.values], ['enum_value', 'public.job', 'status', 2, undefined]);
  assert.equal(k.message, '2 row(s) of public.job have a value in status that is not a label of enum public.status');
  none(await check(
    `create type status as enum ('new', 'done'); create table job(id int primary key, status status);`,
    `create table job(id int primary key, status text); insert into job values (1, 'new'), (2, null);`,
  ));
});

// ---------------------------------------------------------------- foreign keys

const SHOP = (fk: string) => `create table customer(id int primary key, name text);
  create table orders(id int primary key, customer_id int ${fk});`;

test('foreign_key: a new foreign key that existing rows violate', async () => {
  const rows = `insert into customer values (1, 'a'), (2, 'b'), (3, 'c');
    insert into orders values (1, 1), (2, 2), (3, 7), (4, 9), (5, null), (6, 3);`;
  const o = await check(SHOP('references customer(id)'), SHOP('') + rows);
  const c = only(o);
  assert.deepEqual([c.kind, c.table, c.column, c.constraint, c.references, c.rows], ['foreign_key', 'public.orders', 'customer_id', 'orders_customer_id_fkey', 'public.customer', 2]);
  assert.equal(c.message, '2 row(s) of public.orders have (customer_id) with no match in public.customer (new foreign key orders_customer_id_fkey)');
  assert.match(o.failure!, /violates foreign key constraint "orders_customer_id_fkey"/);
  const deferred = await check(SHOP('references customer(id) deferrable initially deferred'), SHOP('') + rows);
  assert.equal(only(deferred).rows, 2);
  // every row has its customer; NOT VALID does not look at existing rows
  none(await check(SHOP('references customer(id)'), SHOP('') + `insert into customer values (1, 'a'); insert into orders values (1, 1), (2, null);`));
  const nv = await check(SHOP('') + `alter table orders add constraint o_fk foreign key (customer_id) references customer(id) not valid;`, SHOP('') + rows);
  none(nv);
  // the referenced table is emptied first: every referencing row violates
  const e = await check(SHOP('references customer(id)'), SHOP('') + `insert into customer values (1, 'a'); insert into orders values (1, 1), (2, 1), (3, null);`, {
    emptied: (_s, t) => t === 'customer',
    prelude: 'DELETE FROM customer',
  });
  assert.deepEqual([only(e).rows, only(e).references], [2, 'public.customer']);
  assert.match(only(e).message, /public\.customer is emptied first$/);
});

test('foreign_key: composite keys with MATCH FULL', async () => {
  const base = `create table p(a int, b int, primary key (a, b)); create table c(id int primary key, a int, b int);`;
  const rows = `insert into p values (1, 1), (1, 2);
    insert into c values (1, 1, 1), (2, 1, 3), (3, null, 2), (4, null, null), (5, 1, 2);`;
  const o = await check(`${base} alter table c add constraint c_fk foreign key (a, b) references p(a, b) match full;`, base + rows);
  const c = only(o);
  assert.deepEqual([c.kind, c.columns, c.column, c.rows], ['foreign_key', ['a', 'b'], undefined, 2]);
  // MATCH SIMPLE: a row with a NULL passes
  const s = await check(`${base} alter table c add constraint c_fk foreign key (a, b) references p(a, b);`, base + rows);
  assert.equal(only(s).rows, 1);
});

/**
 * Modeled on nhost's hasura-auth (github.com/nhost/hasura-auth, migrations/00014_alter_refresh_token_type.sql):
 * refresh_tokens.type goes from the enum auth.refresh_token_type to text referencing a new lookup table of the same
 * name, which a schema-only migration creates empty.
 */
const AUTH_BASE = `create schema auth;
  create table auth.users (id uuid primary key default gen_random_uuid(), created_at timestamptz default now() not null, display_name text default '' not null);`;
const AUTH_OLD = `${AUTH_BASE}
  create type auth.refresh_token_type as enum ('regular', 'pat');
  create table auth.refresh_tokens (
    id uuid primary key default gen_random_uuid(),
    created_at timestamptz default now() not null,
    expires_at timestamptz not null,
    user_id uuid not null references auth.users(id) on update cascade on delete cascade,
    type auth.refresh_token_type default 'regular' not null,
    refresh_token_hash varchar(255)
  );`;
const AUTH_NEW = `${AUTH_BASE}
  create table auth.refresh_token_type (value text primary key, comment text);
  create table auth.refresh_tokens (
    id uuid primary key default gen_random_uuid(),
    created_at timestamptz default now() not null,
    expires_at timestamptz not null,
    user_id uuid not null references auth.users(id) on update cascade on delete cascade,
    type text default 'regular' not null,
    refresh_token_hash varchar(255)
  );
  alter table auth.refresh_tokens add constraint refresh_tokens_type_fkey foreign key (type) references auth.refresh_token_type (value) on delete restrict on update restrict;`;
const TOKENS = `insert into auth.users(display_name) select 'u' || g from generate_series(1, 3) g;
  insert into auth.refresh_tokens(expires_at, user_id, type) select now() + interval '30 days', (select id from auth.users order by display_name limit 1), case when g = 5 then 'pat' else 'regular' end::auth.refresh_token_type from generate_series(1, 5) g;`;

test('foreign_key: hasura-auth refresh_tokens.type → a new lookup table the plan creates empty', async () => {
  const o = await check(AUTH_NEW, AUTH_OLD + TOKENS);
  const c = only(o);
  assert.deepEqual([c.kind, c.table, c.column, c.constraint, c.references, c.rows], ['foreign_key', 'auth.refresh_tokens', 'type', 'refresh_tokens_type_fkey', 'auth.refresh_token_type', 5]);
  assert.equal(c.message, '5 row(s) of auth.refresh_tokens have (type) with no match in auth.refresh_token_type (new foreign key refresh_tokens_type_fkey); auth.refresh_token_type is created by this migration and starts empty');
  assert.match(c.hint, /without --schema-only/);
  assert.match(o.failure!, /violates foreign key constraint "refresh_tokens_type_fkey"/);
  // a full migration empties refresh_tokens before the schema step (it reloads it afterwards)
  none(await check(AUTH_NEW, AUTH_OLD + TOKENS, { emptied: (s, t) => s === 'auth' && t === 'refresh_tokens', prelude: 'DELETE FROM auth.refresh_tokens' }));
  // no tokens yet
  none(await check(AUTH_NEW, AUTH_OLD));
});

// ---------------------------------------------------------------- CHECK

const PRODUCTS = (extra = '') => `create table product(id int primary key, price numeric${extra});`;
const PRICES = `insert into product values (1, -1), (2, 0), (3, 5), (4, null), (5, -3), (6, 12);`;

test('check: a new CHECK constraint that existing rows violate (NULL passes a CHECK)', async () => {
  const o = await check(PRODUCTS(' check (price > 0)'), PRODUCTS() + PRICES);
  const c = only(o);
  assert.deepEqual([c.kind, c.table, c.column, c.constraint, c.rows], ['check', 'public.product', 'price', 'product_price_check', 3]);
  assert.equal(c.message, '3 row(s) of public.product violate the new check constraint product_price_check: CHECK ((price > (0)::numeric))');
  assert.match(o.failure!, /violated by some row/);
  none(await check(PRODUCTS(' check (price > 0)'), PRODUCTS() + `insert into product values (1, 1), (2, null);`));
  none(await check(PRODUCTS() + `alter table product add constraint p_pos check (price > 0) not valid;`, PRODUCTS() + PRICES));
  // quoted identifiers in the expression
  const q = await check(`create table "Odd ""T"""("Weird Col" int check ("Weird Col" between 1 and 9));`, `create table "Odd ""T"""("Weird Col" int); insert into "Odd ""T""" values (0), (5), (10), (null);`);
  assert.deepEqual([only(q).table, only(q).column, only(q).rows], ['public.Odd "T"', 'Weird Col', 2]);
});

test('check: over a new column, its default is what the rows get', async () => {
  const o = await check(PRODUCTS(', qty int not null default 0 check (qty > 0)'), PRODUCTS() + PRICES);
  const c = only(o);
  assert.deepEqual([c.kind, c.column, c.rows], ['check', 'qty', 6]);
  none(await check(PRODUCTS(', qty int not null default 1 check (qty > 0)'), PRODUCTS() + PRICES));
  // a new column without a default is NULL: the check passes
  none(await check(PRODUCTS(', qty int check (qty > 0)'), PRODUCTS() + PRICES));
});

test('check: an expression the target cannot evaluate is reported unchecked; the other counts and the transaction survive', async () => {
  const o = await check(
    PRODUCTS(', label text not null') + `alter table product add constraint p_div check (100 / (price - 5) > 0);`,
    PRODUCTS() + `insert into product values (1, 6), (2, 5);`,
  );
  assert.deepEqual(o.result.conflicts.map((c) => [c.kind, c.column, c.rows]), [['not_null', 'label', 2]]);
  assert.equal(o.result.unchecked.length, 1);
  assert.deepEqual([o.result.unchecked[0]!.kind, o.result.unchecked[0]!.table, o.result.unchecked[0]!.constraint], ['check', 'public.product', 'p_div']);
  assert.match(o.result.unchecked[0]!.reason, /division by zero/);
  // outside a transaction block too
  const c = await connect(o.tgt);
  try {
    assert.deepEqual(await checkPlanRows(c, o.plan, o.source, o.targetModel), o.result);
  } finally {
    await c.end();
  }
  // and the check alone does fail the plan
  const d = await check(PRODUCTS() + `alter table product add constraint p_div check (100 / (price - 5) > 0);`, PRODUCTS() + `insert into product values (1, 6), (2, 5);`);
  assert.deepEqual(d.result.conflicts, []);
  assert.match(d.failure!, /division by zero/);
});

test('check: a CHECK added to a domain is checked on every column of the domain', async () => {
  const base = (chk: string) => `create domain posint as int${chk}; create domain small as posint;
    create table t(id int primary key, n posint, value small);`;
  const rows = `insert into t values (1, -1, 3), (2, 0, 0), (3, 5, null), (4, null, 2), (5, 7, -4);`;
  const o = await check(base(' constraint posint_check check (value > 0)'), base('') + rows);
  assert.deepEqual(o.result.conflicts.map((c) => [c.kind, c.table, c.column, c.constraint, c.rows]), [
    ['check', 'public.t', 'n', 'posint_check', 2],
    ['check', 'public.t', 'value', 'posint_check', 2],
  ]);
  assert.equal(o.result.conflicts[0]!.message, '2 row(s) of public.t have a value in n that violates the new constraint posint_check of domain public.posint: CHECK ((VALUE > 0))');
  assert.match(o.failure!, /contains values that violate the new constraint/);
  none(await check(base(' constraint posint_check check (value > 0)'), base('') + `insert into t values (1, 1, 3), (2, null, null);`));
});

test('check: a CHECK calling a function this migration changes is reported unchecked, not guessed', async () => {
  const fn = (body: string) => `create function lim() returns int language sql immutable as 'select ${body}';`;
  const o = await check(fn('10') + PRODUCTS(' constraint p_lim check (price < lim())'), fn('100') + PRODUCTS() + PRICES);
  assert.deepEqual(o.result.conflicts, []);
  assert.deepEqual(o.result.unchecked.map((u) => [u.kind, u.constraint, u.reason]), [['check', 'p_lim', 'it uses function "public"."lim"(), which this migration creates or changes']]);
  assert.match(o.failure!, /violated by some row/);
});

// ---------------------------------------------------------------- UNIQUE / PRIMARY KEY / unique index

const EMAILS = `create table account(id int, email text, active boolean default true);
  insert into account values (1, 'a@x', true), (2, 'a@x', true), (3, 'a@x', false), (4, 'b@x', true), (5, 'B@x', true), (6, 'c@x', true), (7, null, true), (8, null, true);`;

test('unique: a new UNIQUE constraint over duplicate values (NULLs are distinct unless NULLS NOT DISTINCT)', async () => {
  const o = await check(`create table account(id int, email text unique, active boolean default true);`, EMAILS);
  const c = only(o);
  assert.deepEqual([c.kind, c.table, c.column, c.constraint, c.rows], ['unique', 'public.account', 'email', 'account_email_key', 2]);
  assert.equal(c.message, '2 row(s) of public.account repeat values of (email) under the new unique constraint account_email_key');
  assert.match(o.failure!, /could not create unique index "account_email_key"/);
  // a deferrable constraint is checked when it is added all the same
  const def = await check(`create table account(id int, email text unique deferrable initially deferred, active boolean default true);`, EMAILS);
  assert.deepEqual([only(def).kind, only(def).rows], ['unique', 2]);
  const nnd = await check(`create table account(id int, email text, active boolean default true, constraint account_email_key unique nulls not distinct (email));`, EMAILS);
  assert.equal(only(nnd).rows, 3);
  none(await check(`create table account(id int, email text unique, active boolean default true);`, `create table account(id int, email text, active boolean default true);
    insert into account values (1, 'a@x'), (2, 'b@x'), (3, null), (4, null);`));
});

test('unique: a new PRIMARY KEY over duplicate ids', async () => {
  const o = await check(`create table account(id int primary key, email text, active boolean default true);`, EMAILS.replace("(2, 'a@x'", "(1, 'a@x'").replace("(5, 'B@x'", "(4, 'B@x'"));
  const c = only(o);
  assert.deepEqual([c.kind, c.column, c.constraint, c.rows], ['unique', 'id', 'account_pkey', 2]);
  assert.match(c.message, /under the new primary key account_pkey$/);
  assert.match(o.failure!, /could not create unique index "account_pkey"/);
  none(await check(`create table account(id int primary key, email text, active boolean default true);`, EMAILS));
});

test('unique: a new unique index on an expression, partial', async () => {
  const ix = `create unique index account_email_lower on account (lower(email)) where active;`;
  const o = await check(`create table account(id int, email text, active boolean default true); ${ix}`, EMAILS);
  const c = only(o);
  assert.deepEqual([c.kind, c.column, c.constraint, c.rows], ['unique', undefined, 'account_email_lower', 2]);
  assert.match(o.failure!, /could not create unique index "account_email_lower"/);
  none(await check(`create table account(id int, email text, active boolean default true); create unique index account_email_lower on account (lower(email)) where id > 5;`, EMAILS));
});

test('a partitioned table: the counts cover every partition', async () => {
  const ev = (cols: string) => `create table ev(id int, at date not null, n int${cols}) partition by range (at);
    create table ev_2023 partition of ev for values from ('2023-01-01') to ('2024-01-01');
    create table ev_2024 partition of ev for values from ('2024-01-01') to ('2025-01-01');`;
  const rows = `insert into ev values (1, '2023-05-01', -1), (2, '2024-05-01', -2), (3, '2024-06-01', 3), (4, '2023-06-01', null);`;
  const o = await check(ev(', check (n > 0)') + ` alter table ev alter column n set not null;`, ev('') + rows);
  assert.deepEqual(o.result.conflicts.map((c) => [c.kind, c.table, c.column, c.rows]), [
    ['check', 'public.ev', 'n', 2],
    ['not_null', 'public.ev', 'n', 1],
  ]);
  none(await check(ev(', check (n > 0)'), ev('') + `insert into ev values (1, '2023-05-01', 1), (2, '2024-05-01', null);`));
});

test('inheritance: rows of child tables count where the change reaches them', async () => {
  const fam = (cols: string, extra = '') => `create table base(id int${cols}); create table kid(k text) inherits (base); ${extra}`;
  const rows = `insert into base values (1); insert into kid values (2, 'a'), (3, 'b');`;
  // ADD COLUMN … NOT NULL and SET NOT NULL reach the children
  const o = await check(fam(', x int not null'), fam('') + rows);
  assert.deepEqual(o.result.conflicts.map((c) => [c.kind, c.table, c.column, c.rows]), [['not_null', 'public.base', 'x', 3]]);
  // a CHECK reaches them too, unless NO INHERIT
  const c = await check(fam('', 'alter table base add constraint pos check (id > 1);'), fam('') + rows);
  assert.deepEqual(c.result.conflicts.map((x) => [x.kind, x.constraint, x.rows]), [['check', 'pos', 1]]);
  none(await check(fam('', 'alter table base add constraint pos check (id > 1) no inherit;'), fam('') + `insert into base values (2); insert into kid values (1, 'a');`));
  // a UNIQUE constraint of the parent does not look at the children's rows
  none(await check(fam(' unique'), fam('') + `insert into base values (1); insert into kid values (1, 'a');`));
});

// ---------------------------------------------------------------- the caller's lock_timeout, several at once

test('each count waits for locks at most the lock_timeout of the caller', async () => {
  const db = `lock${++dbn}`;
  const srcDb = `lock${++dbn}`;
  await cluster.createDatabase(db);
  await cluster.createDatabase(srcDb);
  await cluster.sql(USERS_ROWS, db);
  await cluster.sql(`create table users(id int primary key, name text not null);`, srcDb);
  const s = await connect(srcDb);
  const source = await inspectSchema(s).finally(() => s.end());
  const holder = await connect(db);
  const c = await connect(db);
  try {
    const targetModel = await inspectSchema(c);
    const plan = planSchema(source, targetModel);
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE users IN ACCESS EXCLUSIVE MODE');
    await c.query(`SET lock_timeout = '200ms'`);
    const t0 = Date.now();
    await assert.rejects(findRowConflicts(c, plan, source, targetModel), (e: any) => e.code === 'lock_timeout');
    assert.ok(Date.now() - t0 < 5000);
    await holder.query('ROLLBACK');
    const r = await findRowConflicts(c, plan, source, targetModel);
    assert.deepEqual(r.map((x) => [x.kind, x.column, x.rows]), [['not_null', 'name', 4]]);
  } finally {
    await holder.end();
    await c.end();
  }
});

test('several conflicts in one plan are all found, in a stable order', async () => {
  const o = await check(
    `create table a(id int primary key, x int not null, y int unique); create table b(id int primary key, a_id int references a(id), z text not null);`,
    `create table a(id int primary key, x int, y int); create table b(id int primary key, a_id int);
     insert into a values (1, null, 1), (2, 2, 1); insert into b values (1, 1), (2, 3);`,
  );
  assert.deepEqual(o.result.conflicts.map((c) => [c.table, c.kind, c.column, c.rows]), [
    ['public.a', 'not_null', 'x', 1],
    ['public.a', 'unique', 'y', 1],
    ['public.b', 'foreign_key', 'a_id', 1],
    ['public.b', 'not_null', 'z', 2],
  ]);
});

// ---------------------------------------------------------------- reading server-rendered definitions

test('definitions are read with quoted identifiers, qualified names and options', () => {
  assert.deepEqual(parseForeignKey(`FOREIGN KEY ("a,b", c) REFERENCES "My ""S"".x"."T"(x, "Y Z") MATCH FULL ON DELETE SET NULL (c) DEFERRABLE`), {
    cols: ['a,b', 'c'], ref: ['My "S".x', 'T'], refCols: ['x', 'Y Z'], matchFull: true, validated: true,
  });
  assert.equal(parseForeignKey('FOREIGN KEY (a) REFERENCES public.t(b) NOT VALID')!.validated, false);
  assert.deepEqual(parseUnique('UNIQUE NULLS NOT DISTINCT (a, "B") INCLUDE (c) WITH (fillfactor=70)'), { cols: ['a', 'B'], nullsNotDistinct: true });
  assert.deepEqual(parseUnique('PRIMARY KEY (id)'), { cols: ['id'], nullsNotDistinct: false });
  assert.deepEqual(parseCheck(`CHECK (((a)::text <> 'x) NOT VALID'::text)) NO INHERIT`), { expr: `((a)::text <> 'x) NOT VALID'::text)`, noInherit: true, validated: true });
  assert.equal(parseCheck(`CHECK ((a > 0)) NOT VALID`)!.validated, false);
  assert.deepEqual(parseUniqueIndex(`CREATE UNIQUE INDEX i ON ONLY public.t USING btree (lower(email) text_pattern_ops DESC NULLS LAST, "Na me" COLLATE "C", ((a + b))) INCLUDE (z) NULLS NOT DISTINCT WHERE (active AND (note <> ')'::text))`), {
    keys: ['lower(email)', '"Na me" COLLATE "C"', '((a + b))'], where: `(active AND (note <> ')'::text))`, nullsNotDistinct: true,
  });
  assert.equal(parseUniqueIndex('CREATE UNIQUE INDEX i ON public.t USING hash (a)'), undefined);
});
