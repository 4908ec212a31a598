/**
 * PostgreSQL 13–18 as source and target, same and across versions, through the real CLI. A film-rental schema
 * (test/fixtures/film.ts) goes empty ← S, S → empty and S(old) → S(new), each rolled back, on 15, 17 and 18 and
 * across 17→15, 16→15, 17↔18: `diff --exit-code` must find nothing after each migration, rows and sequences must
 * equal the source's, and a rollback must bring the target back exactly (its own fingerprint, rows; pg_dump where the
 * server is ≤ 15, the pg_dump here being 15). Identical DDL loaded on two versions must show no difference. 13, 14
 * and 16 must inspect it; what the target's version cannot hold is a plan error before anything runs.
 * Servers run one or two at a time.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startCluster, type PgVersion, type TestCluster, envFor } from './support/pg.ts';
import { makeProject, type Project } from './support/cli.ts';
import { contents, schemaDump } from './support/dump.ts';
import { FILM_NEW, FILM_OLD, FILM_SEED } from './fixtures/film.ts';
import { applySchema, fingerprintSchema, inspectSchema, planSchema, type SchemaModel } from '../src/schema/index.ts';

const clusters = new Map<PgVersion, TestCluster>();
async function start(...versions: PgVersion[]): Promise<void> {
  await Promise.all(versions.map(async (v) => {
    const c = await startCluster({ version: v });
    await c.sql('CREATE ROLE film_reader');
    clusters.set(v, c);
  }));
}
async function stop(...versions: PgVersion[]): Promise<void> {
  await Promise.allSettled(versions.map(async (v) => {
    const c = clusters.get(v);
    clusters.delete(v);
    await c?.stop();
  }));
}
const pgc = (v: PgVersion) => clusters.get(v)!;
after(() => stop(...clusters.keys()));

let dbn = 0;
async function freshDb(c: TestCluster, sql: string): Promise<string> {
  const db = `film${++dbn}`;
  await c.createDatabase(db);
  if (sql) await c.sql(sql, db);
  return db;
}

async function inspect(c: TestCluster, db: string): Promise<SchemaModel> {
  const client = new pg.Client({ connectionString: c.url(db) });
  await client.connect();
  try {
    return await inspectSchema(client);
  } finally {
    await client.end();
  }
}

/** What a rollback must bring back: the tool's own schema fingerprint, rows and sequences, and pg_dump where it can. */
async function state(c: TestCluster, db: string) {
  return {
    fingerprint: fingerprintSchema(await inspect(c, db)),
    contents: await contents(c.url(db)),
    dump: c.version <= 15 ? schemaDump(c.url(db)) : null,
  };
}

async function diffExit(p: Project, args: string[] = []): Promise<void> {
  const d = await p.run(['migrate', 'diff', 'local', 'staging', '--exit-code', ...args]);
  assert.equal(d.code, 0, `diff after migrate:\n${d.stdout}${d.stderr}`);
}

/** Migrate source → target through the CLI, check it converged and equals the source, roll back, check it is as before. */
async function roundTrip(title: string, from: PgVersion, to: PgVersion, sourceSql: string, targetSql: string): Promise<void> {
  const s = pgc(from);
  const t = pgc(to);
  const src = await freshDb(s, sourceSql);
  const tgt = await freshDb(t, targetSql);
  const before = await state(t, tgt);
  const p = makeProject({ '.env.local': envFor(s, src), '.env.staging': envFor(t, tgt) });
  let planned: string[] = [];
  try {
    const m = await p.run(['migrate', 'local', 'staging', '--force', '--json'], { timeoutMs: 120_000 });
    const report = JSON.parse(m.stdout || '{}');
    planned = (report.plan?.schema?.statements ?? []).map((st: { sql: string }) => st.sql);
    assert.equal(m.code, 0, `${title}: ${m.stderr}\n--- plan:\n${planned.join(';\n')}`);
    assert.equal(report.verified, true, title);
    assert.ok(!planned.some((x) => /ADD CONSTRAINT \S+ NOT NULL/.test(x)), `${title}: NOT NULL is never a constraint to add:\n${planned.join(';\n')}`);
    await diffExit(p);
    assert.deepEqual(await contents(t.url(tgt)), await contents(s.url(src)), `${title}: rows and sequences`);
    if (s.version <= 15 && t.version <= 15) assert.equal(schemaDump(t.url(tgt)), schemaDump(s.url(src)), `${title}: pg_dump`);
    const rb = await p.run(['migrate', 'rollback', '--force'], { timeoutMs: 120_000 });
    assert.equal(rb.code, 0, `${title}: rollback: ${rb.stderr}`);
    assert.deepEqual(await state(t, tgt), before, `${title}: rollback brings the target back`);
  } catch (e) {
    (e as Error).message += `\n--- plan (${title}):\n${planned.join(';\n')}`;
    throw e;
  } finally {
    p.remove();
  }
}

const S = FILM_NEW + FILM_SEED;
const S_OLD = FILM_OLD + FILM_SEED;

/** empty ← S, S → empty, S(old) → S(new), each rolled back. */
async function allRoundTrips(from: PgVersion, to: PgVersion): Promise<void> {
  await roundTrip(`${from} → ${to}: S into an empty database`, from, to, S, '');
  await roundTrip(`${from} → ${to}: an empty database over S`, from, to, '', S);
  await roundTrip(`${from} → ${to}: S(new) over S(old)`, from, to, S, S_OLD);
}

/** The same DDL loaded on both: the tool's diff finds nothing. */
async function identical(a: PgVersion, b: PgVersion, sql = FILM_NEW): Promise<void> {
  const da = await freshDb(pgc(a), sql);
  const db = await freshDb(pgc(b), sql);
  const p = makeProject({ '.env.local': envFor(pgc(a), da), '.env.staging': envFor(pgc(b), db) });
  try {
    await diffExit(p, ['--schema-only']);
    const back = await p.run(['migrate', 'diff', 'staging', 'local', '--schema-only', '--exit-code']);
    assert.equal(back.code, 0, back.stdout + back.stderr);
  } finally {
    p.remove();
  }
}

describe('PostgreSQL 15 and 17', () => {
  before(() => start(15, 17));
  after(() => stop(17));
  test('identical DDL on 15 and 17: no difference either way (view prefixes, ICU locale spellings)', () => identical(15, 17));
  test('a failing catalog read inside a transaction reports its real cause, not "current transaction is aborted"', async () => {
    // a hardened server: the catalog of sequence settings is not readable by the migration's role
    const db = await freshDb(pgc(15), `CREATE SEQUENCE s; REVOKE SELECT ON pg_catalog.pg_sequence FROM PUBLIC;
      DO $$ BEGIN CREATE ROLE film_migrator LOGIN PASSWORD 'pw'; EXCEPTION WHEN duplicate_object THEN NULL; END $$;`);
    const c = new pg.Client({ connectionString: pgc(15).url(db).replace(`${pgc(15).user}:${encodeURIComponent(pgc(15).password)}@`, 'film_migrator:pw@') });
    await c.connect();
    try {
      await c.query('BEGIN');
      await assert.rejects(inspectSchema(c), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'schema_inspect_failed');
        assert.match(e.message, /^schema inspection failed reading sequence settings \(PostgreSQL 15\.\d+\): permission denied for table pg_sequence$/);
        return true;
      });
      await c.query('ROLLBACK');
      assert.equal((await c.query('show search_path')).rows[0].search_path, '"$user", public', 'the search_path is back');
    } finally {
      await c.end();
    }
  });
  test('15 → 15 round trips', () => allRoundTrips(15, 15));
  test('17 → 17 round trips', () => allRoundTrips(17, 17));
  test('17 → 15 round trips', () => allRoundTrips(17, 15));
});

describe('PostgreSQL 16 and 15', () => {
  before(() => start(16));
  after(() => stop(16));
  test('identical DDL on 16 and 15: no difference', () => identical(16, 15));
  test('16 → 15 round trips', () => allRoundTrips(16, 15));
});

describe('PostgreSQL 13 and 14 inspect the schema', () => {
  // Compared with 15's model: only what really differs between those versions.
  const expected: Record<number, string[]> = {
    // 15 revoked CREATE on schema public from PUBLIC
    14: ['acl:schema:"public":PUBLIC'],
    // and 13 ships pg_trgm 1.5 (15: 1.6)
    13: ['acl:schema:"public":PUBLIC', 'extension:"pg_trgm"'],
  };
  for (const v of [13, 14] as const) {
    test(`PostgreSQL ${v}`, async () => {
      await start(v);
      try {
        const model = await inspect(pgc(v), await freshDb(pgc(v), S));
        assert.equal(model.serverVersion >= v * 10000 && model.serverVersion < (v + 1) * 10000, true);
        const m15 = await inspect(pgc(15), await freshDb(pgc(15), S));
        const changes = planSchema(m15, model).changes.map((c) => `${c.kind}:${c.identity}`).sort();
        assert.deepEqual(changes, expected[v]);
        assert.equal(planSchema(model, model).statements.length, 0);
      } finally {
        await stop(v);
      }
    });
  }
  after(() => stop(15));
});

describe('PostgreSQL 17 and 18', () => {
  before(() => start(17, 18));
  after(() => stop(17, 18));
  test('identical DDL on 17 and 18: no difference (NOT NULL constraints)', () => identical(17, 18));
  test('18 → 18 round trips', () => allRoundTrips(18, 18));
  test('17 → 18 round trips', () => allRoundTrips(17, 18));
  test('18 → 17 round trips (no ADD CONSTRAINT … NOT NULL on 17)', () => allRoundTrips(18, 17));

  test("NOT NULL constraints in a model from an older inspection of 18 plan as the column's SET / DROP NOT NULL on 17", async () => {
    // what nself migrate inspected on 18 before NOT NULL constraints were folded into columns (a checkpoint may hold it)
    const legacy = (m: SchemaModel): SchemaModel => {
      const facts = [...m.facts];
      for (const f of m.facts.filter((x) => x.kind === 'column' && x.attrs.notnull)) {
        const name = `${f.meta.table.toString().split('.')[1]!.replace(/"/g, '')}_${f.meta.name}_not_null`;
        facts.push({ id: `constraint:${f.meta.table}."${name}"`, kind: 'constraint', parent: f.parent, attrs: { type: 'n', def: `NOT NULL ${f.meta.name}` }, deps: [f.parent!], meta: { table: f.meta.table, name } });
      }
      return { ...m, facts: facts.sort((a, b) => (a.id < b.id ? -1 : 1)) };
    };
    const src = legacy(await inspect(pgc(18), await freshDb(pgc(18), 'CREATE TABLE t (id int NOT NULL, name text NOT NULL, note text)')));
    const tgtDb = await freshDb(pgc(17), 'CREATE TABLE t (id int, name text, note text NOT NULL)');
    const c = new pg.Client({ connectionString: pgc(17).url(tgtDb) });
    await c.connect();
    try {
      const plan = planSchema(src, await inspectSchema(c));
      const sql = plan.statements.map((st) => st.sql);
      assert.deepEqual(sql.filter((x) => /NOT NULL/.test(x)).sort(), [
        'ALTER TABLE "public"."t" ALTER COLUMN "id" SET NOT NULL', 'ALTER TABLE "public"."t" ALTER COLUMN "name" SET NOT NULL', 'ALTER TABLE "public"."t" ALTER COLUMN "note" DROP NOT NULL',
      ]);
      assert.ok(!sql.some((x) => /ADD CONSTRAINT \S+ NOT NULL/.test(x)), sql.join('\n'));
      await c.query('BEGIN');
      await applySchema(c, plan);
      await c.query('COMMIT');
      const nn = await c.query(`SELECT string_agg(attname || '=' || attnotnull, ',' ORDER BY attnum) AS s FROM pg_attribute WHERE attrelid = 'public.t'::regclass AND attnum > 0`);
      assert.equal(nn.rows[0].s, 'id=true,name=true,note=false');
      // and back: the legacy model as the target, a plain 17 model as the source → DROP NOT NULL
      const back = planSchema(await inspect(pgc(17), await freshDb(pgc(17), 'CREATE TABLE t (id int, name text NOT NULL, note text)')), src).statements.map((st) => st.sql);
      // (name stays NOT NULL: the legacy constraint that is gone from the model drops nothing)
      assert.deepEqual(back.filter((x) => /NOT NULL|CONSTRAINT/.test(x)), ['ALTER TABLE "public"."t" ALTER COLUMN "id" DROP NOT NULL']);
    } finally {
      await c.end();
    }
  });

  const VIRTUAL = `CREATE TABLE sizes (id int PRIMARY KEY, w int NOT NULL, h int NOT NULL,
      area int GENERATED ALWAYS AS (w * h) VIRTUAL, perimeter int GENERATED ALWAYS AS (2 * (w + h)) STORED);
    INSERT INTO sizes (id, w, h) SELECT g, g, g + 1 FROM generate_series(1, 5) g;`;

  test('18 → 18: a virtual generated column is created virtual (not as a DEFAULT), values computed, rolled back', async () => {
    await roundTrip('virtual column', 18, 18, VIRTUAL, '');
    const db = await freshDb(pgc(18), VIRTUAL);
    const col = (await inspect(pgc(18), db)).facts.find((f) => f.id === 'column:"public"."sizes"."area"')!;
    assert.deepEqual([col.attrs.generated, col.attrs.virtual], ['(w * h)', true]);
    assert.ok(!(await inspect(pgc(18), db)).facts.some((f) => f.id === 'default:"public"."sizes"."area"'));
  });

  test('18 → 17: a virtual column and an extension version 17 lacks are plan errors; nothing is changed', async () => {
    const src = await freshDb(pgc(18), `${VIRTUAL} CREATE EXTENSION btree_gist;`);
    const tgt = await freshDb(pgc(17), '');
    const before = await state(pgc(17), tgt);
    const p = makeProject({ '.env.local': envFor(pgc(18), src), '.env.staging': envFor(pgc(17), tgt) });
    try {
      const dry = await p.run(['migrate', 'local', 'staging', '--dry-run']);
      assert.match(dry.stdout, /column "public"\."sizes"\."area" is a virtual generated column \(PostgreSQL 18\+\) and the target runs PostgreSQL 17\.\d+, which has only stored ones/);
      assert.match(dry.stdout, /extension "btree_gist" version 1\.8 is not available on the target \(the target runs PostgreSQL 17\.\d+; it has [\d., ]*1\.7\)/);
      const m = await p.run(['migrate', 'local', 'staging', '--force']);
      assert.notEqual(m.code, 0);
      assert.match(m.stderr, /the schema plan cannot be applied: .*virtual generated column/);
      assert.deepEqual(await state(pgc(17), tgt), before);
      assert.equal(p.checkpoints().length, 0, 'refused before a checkpoint was made');
    } finally {
      p.remove();
    }
  });

  test('extension versions: updated in place to a version the target has; an older one on 18 is created as the source has it', async () => {
    const BOOKING = `CREATE TABLE booking (room int NOT NULL, during tstzrange NOT NULL, EXCLUDE USING gist (room WITH =, during WITH &&));
      INSERT INTO booking VALUES (1, '[2024-01-01,2024-01-02)'), (2, '[2024-01-01,2024-01-03)');`;
    // 17's btree_gist (1.7) onto 18: created at 1.7 (18 can install it), converges, rolls back
    await roundTrip('btree_gist 1.7 from 17', 17, 18, `CREATE EXTENSION btree_gist; ${BOOKING}`, '');
    // 18 at 1.8 over 18 at 1.7: ALTER EXTENSION … UPDATE TO '1.8', the exclusion constraint and its rows untouched
    const src = await freshDb(pgc(18), `CREATE EXTENSION btree_gist; ${BOOKING}`);
    const tgt = await freshDb(pgc(18), `CREATE EXTENSION btree_gist VERSION '1.7'; ${BOOKING}`);
    const p = makeProject({ '.env.local': envFor(pgc(18), src), '.env.staging': envFor(pgc(18), tgt) });
    try {
      const d = await p.run(['migrate', 'diff', 'local', 'staging', '--schema-only', '--exit-code']);
      assert.equal(d.code, 2, 'an extension version is a difference');
      assert.match(d.stdout, /btree_gist/);
      const m = await p.run(['migrate', 'local', 'staging', '--schema-only', '--force', '--json']);
      assert.equal(m.code, 0, m.stderr);
      const sql = JSON.parse(m.stdout).plan.schema.statements.map((st: { sql: string }) => st.sql);
      assert.ok(sql.includes(`ALTER EXTENSION "btree_gist" UPDATE TO '1.8'`), sql.join('\n'));
      assert.ok(!sql.some((x: string) => /DROP|booking/.test(x)), sql.join('\n'));
      await diffExit(p, ['--schema-only']);
    } finally {
      p.remove();
    }
  });
});
