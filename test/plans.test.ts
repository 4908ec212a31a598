/**
 * Plans and prompts that say what will happen (issue #9): row counts of what goes, values of target-only
 * columns, materialized views, filters that match nothing, a diff with one database out of reach, step names.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, type TestCluster, envFor } from './support/pg.ts';
import { makeProject, type Project } from './support/cli.ts';

let local: TestCluster;
let staging: TestCluster;

before(async () => {
  [local, staging] = await Promise.all([startCluster(), startCluster()]);
});

after(async () => {
  await Promise.allSettled([local?.stop(), staging?.stop()]);
});

async function fresh(db: string, src: string, tgt: string): Promise<Project> {
  for (const [c, sql] of [[local, src], [staging, tgt]] as const) {
    await c.sql(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await c.createDatabase(db);
    if (sql) await c.sql(sql, db);
  }
  return makeProject({ '.env.local': envFor(local, db, 'APP_TITLE=Shop\n'), '.env.staging': envFor(staging, db, 'APP_TITLE=Shop (staging)\n') });
}

test('a data-only copy over target-only columns is a deletes_data hazard with counts; the prompt counts the rows that go', async () => {
  const p = await fresh(
    'own_cols',
    `CREATE TABLE t(id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 5) g;`,
    `CREATE TABLE t(id int PRIMARY KEY, v text, notes text); INSERT INTO t SELECT g, 'old', CASE WHEN g % 4 = 0 THEN NULL ELSE 'note' END FROM generate_series(1, 20) g;`,
  );
  try {
    const dry = await p.run(['migrate', 'local', 'staging', '--data-only', '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /~ public\.t {2}20 → 5 rows \(deletes 20, writes 5\)/);
    assert.match(dry.stdout, /! deletes_data: empties public\.t\.notes, which local lacks \(15 values\)/);
    const refused = await p.run(['migrate', 'local', 'staging', '--data-only']);
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(refused.stderr, /empties staging's own columns, which local lacks: public\.t\.notes \(15 values\)/);
    assert.equal((await staging.query(`SELECT count(notes)::int n FROM t`, [], 'own_cols'))[0].n, 15);
    const m = await p.run(['migrate', 'local', 'staging', '--data-only', '--force', '--json']);
    assert.equal(m.code, 0, m.stderr);
    const report = JSON.parse(m.stdout);
    assert.deepEqual(report.steps.map((s: { name: string }) => s.name), ['validate', 'connect', 'plan', 'safety', 'backup', 'checkpoint', 'migrate', 'verify']);
    assert.deepEqual(report.plan.data.plan.tables[0].targetOnly, [{ column: 'notes', values: 15 }]);
    assert.equal((await staging.query(`SELECT count(*)::int n, count(notes)::int v FROM t`, [], 'own_cols'))[0].n, 5);
  } finally {
    p.remove();
  }
});

test('materialized views over copied tables are refreshed in the same transaction', async () => {
  const ddl = `CREATE TABLE orders(id int PRIMARY KEY, total int); CREATE MATERIALIZED VIEW revenue AS SELECT sum(total) AS s, count(*) AS n FROM orders;
    CREATE MATERIALIZED VIEW revenue2 AS SELECT s * 2 AS s2 FROM revenue;`;
  const p = await fresh('matview', `${ddl} INSERT INTO orders SELECT g, g FROM generate_series(1, 10) g; REFRESH MATERIALIZED VIEW revenue; REFRESH MATERIALIZED VIEW revenue2;`, `${ddl} INSERT INTO orders VALUES (1, 1000); REFRESH MATERIALIZED VIEW revenue; REFRESH MATERIALIZED VIEW revenue2;`);
  try {
    const m = await p.run(['migrate', 'local', 'staging', '--data-only', '--force']);
    assert.equal(m.code, 0, m.stderr);
    assert.match(m.stderr, /refreshed 2 materialized view\(s\): public\.revenue, public\.revenue2/);
    assert.deepEqual(await staging.query(`SELECT s::int, n::int, (SELECT s2::int FROM revenue2) FROM revenue`, [], 'matview'), [{ s: 55, n: 10, s2: 110 }]);
  } finally {
    p.remove();
  }
});

test('a filter that matches nothing says so instead of "no differences"', async () => {
  const p = await fresh('filters', `CREATE TABLE t(id int PRIMARY KEY);`, `CREATE TABLE t(id int PRIMARY KEY);`);
  try {
    const d = await p.run(['migrate', 'diff', 'local', 'staging', '--data-only', '--table', 'nomatch*']);
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stderr, /note: --table "nomatch\*" matches no table in local or staging/);
    const s = await p.run(['migrate', 'diff', 'local', 'staging', '--schema-only', '--schema', 'nosuchschema']);
    assert.match(s.stderr, /note: --schema "nosuchschema" matches no schema in local or staging/);
    const m = await p.run(['migrate', 'local', 'staging', '--data-only', '--dry-run', '--table', 'public.nope']);
    assert.match(m.stderr, /note: --table "public\.nope" matches no table/);
  } finally {
    p.remove();
  }
});

test('diff with a database out of reach shows the config differences, marks the rest not compared, exit 1', async () => {
  const p = await fresh('unreachable', `CREATE TABLE t(id int);`, '');
  try {
    p.write('.env.staging', envFor(staging, 'unreachable', 'APP_TITLE=Shop (staging)\n').replace(`POSTGRES_PORT=${staging.port}`, 'POSTGRES_PORT=1'));
    const d = await p.run(['migrate', 'diff', 'local', 'staging']);
    assert.equal(d.code, 1, d.stderr);
    assert.match(d.stdout, /APP_TITLE/);
    assert.match(d.stdout, /Schema: not compared — cannot connect to staging/);
    assert.match(d.stdout, /Data: not compared/);
    assert.match(d.stderr, /^error: cannot connect to staging/m);
    const j = await p.run(['migrate', 'diff', 'local', 'staging', '--json']);
    assert.equal(j.code, 1);
    const plan = JSON.parse(j.stdout);
    assert.deepEqual(plan.notCompared.map((n: { component: string }) => n.component), ['schema', 'data']);
    assert.ok(plan.config.diff.changed.some((c: { key: string }) => c.key === 'APP_TITLE'));
  } finally {
    p.remove();
  }
});

test('a refused rollback says refused, not failed', async () => {
  const p = await fresh('refused_rb', `CREATE TABLE t(id int PRIMARY KEY);`, '');
  try {
    assert.equal((await p.run(['migrate', 'local', 'staging', '--force'])).code, 0);
    const r = await p.run(['migrate', 'rollback']);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stdout, /rollback refused: nothing was changed/);
    assert.doesNotMatch(r.stdout + r.stderr, /rollback failed/);
  } finally {
    p.remove();
  }
});

test('the plan says why an enum is recreated instead of extended', async () => {
  const ddl = (labels: string) => `CREATE TYPE mood AS ENUM (${labels}); CREATE TABLE people(id int PRIMARY KEY, m mood);`;
  const p = await fresh('enum_why', `${ddl("'ok', 'glad'")} INSERT INTO people VALUES (1, 'glad');`, `${ddl("'ok'")} INSERT INTO people VALUES (1, 'ok');`);
  try {
    const dry = await p.run(['migrate', 'local', 'staging', '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /~ enum "public"\."mood"\n\s+recreated instead of ALTER TYPE … ADD VALUE: the data step writes rows of a table with a column of this type in the same transaction/);
    const schemaOnly = await p.run(['migrate', 'local', 'staging', '--schema-only', '--dry-run', '--json']);
    const change = JSON.parse(schemaOnly.stdout).schema.changes.find((c: { kind: string }) => c.kind === 'enum');
    assert.equal(change.reason, undefined, 'alone, the value is added in place');
    assert.match(change.sql.join('\n'), /ADD VALUE 'glad'/);
  } finally {
    p.remove();
  }
});

test('tables found or made equal are compared by row versions next time: a write on either side is noticed; enum columns are always checksummed', async () => {
  const ddl = `CREATE TYPE mood AS ENUM ('ok', 'sad'); CREATE TABLE a(id int PRIMARY KEY, v text, at timestamptz); CREATE TABLE m(id int PRIMARY KEY, x mood);
    CREATE TABLE b(id int PRIMARY KEY); CREATE TABLE pt(id int, k int) PARTITION BY RANGE (id); CREATE TABLE pt1 PARTITION OF pt FOR VALUES FROM (0) TO (100);`;
  const p = await fresh(
    'known',
    `${ddl} INSERT INTO a SELECT g, 'v' || g, now() FROM generate_series(1, 1000) g; INSERT INTO m VALUES (1, 'ok'), (2, 'sad'); INSERT INTO b VALUES (1), (2); INSERT INTO pt VALUES (1, 1), (50, 2);`,
    ddl,
  );
  const reasons = async (args: string[]) => {
    const r = await p.run(['migrate', 'local', 'staging', '--data-only', '--force', '--json', ...args]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    const plan = out.kind === 'plan' ? out : out.plan; // --dry-run prints the plan, a run its report
    return Object.fromEntries(plan.data.plan.tables.map((t: { table: string; action: string; reason: string }) => [t.table, `${t.action}: ${t.reason}`]));
  };
  const NOT_WRITTEN = 'skip: identical: neither side was written since they were last found equal';
  try {
    assert.match((await reasons([]))['public.a'], /^copy: 1000 row\(s\) in the source, 0 in the target/);
    assert.deepEqual(
      await reasons([]),
      { 'public.a': NOT_WRITTEN, 'public.b': NOT_WRITTEN, 'public.pt': NOT_WRITTEN, 'public.m': 'skip: identical' },
      'the copies were recorded (the row versions taken after the load match a scan now); the enum table is checksummed',
    );

    // A write on the target: the recorded state no longer holds, the checksum finds the difference.
    await staging.sql(`UPDATE a SET v = 'changed' WHERE id = 5`, 'known');
    assert.match((await reasons([]))['public.a'], /^copy: same row count, different contents/);
    assert.equal((await staging.query(`SELECT v FROM a WHERE id = 5`, [], 'known'))[0].v, 'v5');
    // A write on the source that changes no value: compared by checksum, equal, and recorded again.
    await local.sql(`UPDATE a SET v = v WHERE id = 7`, 'known');
    assert.equal((await reasons(['--dry-run']))['public.a'], 'skip: identical');
    assert.equal((await reasons([]))['public.a'], 'skip: identical');
    assert.equal((await reasons([]))['public.a'], NOT_WRITTEN);
    // A row deleted and inserted again with the same values on the source: noticed, equal by checksum.
    await local.sql(`DELETE FROM a WHERE id = 9; INSERT INTO a SELECT 9, 'v9', at FROM a WHERE id = 8`, 'known');
    assert.equal((await reasons([]))['public.a'], 'skip: identical');
    // A damaged record only costs a checksum.
    p.write('.nself/data-versions.json', '{ not json');
    assert.equal((await reasons([]))['public.a'].startsWith('skip: identical'), true);
  } finally {
    p.remove();
  }
});

test('large objects are named in the plan and the diff: they are never copied or compared', async () => {
  const p = await fresh('lobs', `CREATE TABLE doc(id int PRIMARY KEY, body oid); INSERT INTO doc VALUES (1, lo_from_bytea(0, 'one')), (2, lo_from_bytea(0, 'two'));`, `CREATE TABLE doc(id int PRIMARY KEY, body oid);`);
  try {
    const dry = await p.run(['migrate', 'local', 'staging', '--data-only', '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /! large objects: local has 2, staging has none — not copied \(an oid column that refers to one is copied as a number\)/);
    const json = await p.run(['migrate', 'local', 'staging', '--data-only', '--dry-run', '--json']);
    assert.deepEqual(JSON.parse(json.stdout).data.plan.largeObjects, { source: 2, target: 0 });
    const diff = await p.run(['migrate', 'diff', 'local', 'staging', '--data-only']);
    assert.match(diff.stdout, /\? large objects: local has 2, staging has none — not compared/);
    const none = await fresh('no_lobs', `CREATE TABLE doc(id int PRIMARY KEY);`, `CREATE TABLE doc(id int PRIMARY KEY);`);
    try {
      const d = await none.run(['migrate', 'diff', 'local', 'staging', '--data-only', '--json']);
      assert.equal(JSON.parse(d.stdout).data.diff.largeObjects, undefined);
      assert.doesNotMatch((await none.run(['migrate', 'diff', 'local', 'staging', '--data-only'])).stdout, /large objects/);
    } finally {
      none.remove();
    }
  } finally {
    p.remove();
  }
});
