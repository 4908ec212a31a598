/**
 * Many small tables (issue #11): read and loaded many per query (src/data/batch.ts), read ahead on a second
 * source connection, backed up many to a file, empty target tables neither backed up nor truncated. Through the
 * real CLI: the copy equals the source, rollback restores exactly, a kill during a batch load changes nothing;
 * and the engine's fallbacks (a batch too large for memory, a failing statement in a batch).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { migrateSession, startCluster, type TestCluster, envFor, freshDb, waitForCliQuery } from './support/pg.ts';
import { makeProject, startBin, type Project } from './support/cli.ts';
import { contents } from './support/dump.ts';
import { startAll } from './support/prereq.ts';
import { applyData, planData, verifyData, type DataProgress } from '../src/data/index.ts';
import { BATCH_MAX_BYTES, BatchStatementError, copyInMany, copyOutMany, SMALL_TABLE_BYTES } from '../src/data/batch.ts';

let local: TestCluster;
let staging: TestCluster;

before(async () => {
  [local, staging] = await startAll([startCluster(), startCluster()]);
});

after(async () => {
  await Promise.allSettled([local?.stop(), staging?.stop()]);
});

function project(db: string): Project {
  return makeProject({ '.env.local': envFor(local, db), '.env.staging': envFor(staging, db) });
}

const TABLES = 600;

/**
 * TABLES small tables t1..tN (serial key: sequences follow the copy), source rows i % 7 (so some are empty), a
 * table of about 1.5 MB between them (streamed, not batched), a table copied as text (array of an enum), and a
 * foreign key pair.
 */
const DDL = `
  CREATE TYPE mood AS ENUM ('calm', 'keen');
  DO $$ BEGIN FOR i IN 1..${TABLES} LOOP
    EXECUTE format('CREATE TABLE t%s (id serial PRIMARY KEY, v text, n int, at timestamptz)', i);
  END LOOP; END $$;
  CREATE TABLE t300_big (id int PRIMARY KEY, pad text);
  CREATE TABLE u_moods (id int PRIMARY KEY, m mood[]);
  CREATE TABLE parent (id int PRIMARY KEY);
  CREATE TABLE child (id int PRIMARY KEY, p int REFERENCES parent);`;

const SOURCE_ROWS = `
  DO $$ BEGIN FOR i IN 1..${TABLES} LOOP
    EXECUTE format('INSERT INTO t%s (v, n, at) SELECT md5((g * %s)::text), g, timestamptz ''2020-01-01'' + g * interval ''1 day'' FROM generate_series(1, %s) g', i, i, i % 7);
  END LOOP; END $$;
  INSERT INTO t300_big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 8000) g;
  INSERT INTO u_moods VALUES (1, '{calm,keen}'), (2, NULL);
  INSERT INTO parent VALUES (1), (2); INSERT INTO child VALUES (1, 2);`;

/** Every third small table has other rows (and a moved sequence) on the target; the rest are empty there. */
const TARGET_ROWS = `
  DO $$ BEGIN FOR i IN 3..${TABLES} BY 3 LOOP
    EXECUTE format('INSERT INTO t%s (v, n) SELECT ''old '' || g, -g FROM generate_series(1, 2) g', i);
  END LOOP; END $$;
  INSERT INTO t300_big VALUES (1, 'old');
  INSERT INTO u_moods VALUES (9, '{keen}');
  INSERT INTO parent VALUES (7); INSERT INTO child VALUES (7, 7);`;

test('many small tables, some empty on the target: migrate copies them exactly, rollback restores exactly', async () => {
  const db = 'many_small';
  await freshDb(local, db, DDL + SOURCE_ROWS);
  await freshDb(staging, db, DDL + TARGET_ROWS);
  const before = await contents(staging.url(db));
  const want = await contents(local.url(db));
  const p = project(db);
  try {
    const m = await p.run(['migrate', 'local', 'staging', '--data-only', '--force', '--json']);
    assert.equal(m.code, 0, m.stderr + m.stdout);
    const report = JSON.parse(m.stdout);
    assert.equal(report.verified, true);
    assert.deepEqual(await contents(staging.url(db)), want, 'the target equals the source');

    // The checkpoint: no file for the tables that were empty, the small ones with rows many to a file.
    const [id] = p.checkpoints().filter((c) => !c.startsWith('.'));
    const manifest = JSON.parse(readFileSync(join(p.dir, '.nself/migrations', id!, 'manifest.json'), 'utf8'));
    const saved = manifest.backup.data.tables as Array<{ table: string; rows: number; file?: string; offset?: number }>;
    const empty = saved.filter((t) => t.rows === 0);
    assert.ok(empty.length > 300, `empty target tables in the backup: ${empty.length}`);
    assert.ok(empty.every((t) => t.file === undefined), 'no file for an empty table');
    const small = saved.filter((t) => /^public\.t\d+$/.test(t.table) && t.rows > 0);
    assert.equal(small.length, TABLES / 3);
    assert.ok(small.every((t) => t.offset !== undefined && /^many-\d+\.copy\.gz$/.test(t.file!)), 'small tables saved many to a file');
    const files = readdirSync(join(p.dir, '.nself/migrations', id!, 'backup/data'));
    assert.ok(files.length <= 5, `backup files: ${files.join(', ')}`);
    assert.ok(saved.some((t) => t.table === 'public.t300_big' && t.rows === 1 && t.file !== undefined));

    const rb = await p.run(['migrate', 'rollback', '--force']);
    assert.equal(rb.code, 0, rb.stderr);
    assert.deepEqual(await contents(staging.url(db)), before, 'rollback restores rows and sequences exactly');
  } finally {
    p.remove();
  }
});

test('kill -9 while a batch of small tables loads: after the next command the target is unchanged', async () => {
  const db = 'many_small_kill';
  // On the target only: a CHECK that sleeps per row, so that the batch load takes long enough to be seen.
  const slow = `CREATE FUNCTION slow_ok(int) RETURNS boolean LANGUAGE sql AS 'SELECT pg_sleep(0.3) IS NOT NULL';
    ALTER TABLE t5 ADD CONSTRAINT t5_slow CHECK (slow_ok(n));`;
  await freshDb(local, db, DDL + SOURCE_ROWS);
  await freshDb(staging, db, DDL + slow + TARGET_ROWS);
  const before = await contents(staging.url(db));
  const p = project(db);
  const watcher = new pg.Client({ connectionString: staging.url(db) });
  await watcher.connect();
  try {
    const run = startBin(['migrate', 'local', 'staging', '--data-only', '--force'], { cwd: p.dir });
    await waitForCliQuery(watcher, db, (queries) => queries.some((q) => /COPY .*FROM STDIN.*;\s*COPY /s.test(q)), 'a batch load');
    run.child.kill('SIGKILL');
    await run.done;
    const next = await p.run(['migrate', 'diff', 'local', 'staging', '--config-only']);
    assert.equal(next.code, 0, next.stderr);
    assert.deepEqual(await contents(staging.url(db)), before);
  } finally {
    await watcher.end();
    p.remove();
  }
});

/** Source in one snapshot, target in a transaction (what migrate does); the target is rolled back unless `commit`. */
function session<R>(db: string, fn: (s: pg.Client, t: pg.Client) => Promise<R>, commit = false): Promise<R> {
  return migrateSession(local.url(db), staging.url(db), fn, commit);
}

test('a batch whose COPY output is too large for memory is copied table by table (streamed)', async () => {
  const db = 'overflow';
  // Two values that compress well: small on disk (TOAST), together past BATCH_MAX_BYTES as COPY output.
  const half = Math.ceil(BATCH_MAX_BYTES / 2) + 1024;
  const ddl = `CREATE TABLE a1 (id int PRIMARY KEY, doc text); CREATE TABLE a2 (id int PRIMARY KEY, doc text); CREATE TABLE a3 (id int PRIMARY KEY)`;
  await freshDb(local, db, `${ddl}; INSERT INTO a1 VALUES (1, repeat('x', ${half})); INSERT INTO a2 VALUES (1, repeat('y', ${half})); INSERT INTO a3 VALUES (1), (2)`);
  await freshDb(staging, db, `${ddl}; INSERT INTO a3 VALUES (5)`);
  const sizes = await local.query<{ s: string }>(`SELECT pg_table_size(x::regclass)::text AS s FROM unnest(ARRAY['a1', 'a2']) AS x`, [], db);
  assert.ok(sizes.every((r) => Number(r.s) <= SMALL_TABLE_BYTES), `precondition: small on disk (${sizes.map((r) => r.s).join(', ')} bytes)`);
  const progress: DataProgress[] = [];
  await session(
    db,
    async (s, t) => {
      const plan = await planData(s, t);
      const loaded = await applyData(s, t, plan, { onProgress: (x) => progress.push(x) });
      assert.deepEqual(loaded.map((r) => [r.table, r.rowsAfter]), [['public.a1', 1], ['public.a2', 1], ['public.a3', 2]]);
      await verifyData(s, t, plan, { loaded });
    },
    true,
  );
  // A streamed table reports its start (done: false); a batch reports each table once it is loaded.
  assert.ok(progress.some((x) => x.table === 'public.a1' && !x.done), 'a1 was streamed');
  const [a, b] = await Promise.all([contents(local.url(db)), contents(staging.url(db))]);
  assert.deepEqual(b, a);
});

test('a failing statement in a batch names its table and leaves the connection usable', async () => {
  const db = 'batch_fail';
  const ddl = `CREATE TABLE b1 (id int PRIMARY KEY); CREATE TABLE b2 (id int PRIMARY KEY CHECK (id < 10)); CREATE TABLE b3 (id int PRIMARY KEY)`;
  await freshDb(local, db, `${ddl}; INSERT INTO b1 VALUES (1); INSERT INTO b2 VALUES (2); INSERT INTO b3 VALUES (3)`);
  await freshDb(staging, db, ddl);
  const c = new pg.Client({ connectionString: staging.url(db) });
  await c.connect();
  try {
    // Read on the source: three COPY outputs in one query, with their row counts.
    const s = new pg.Client({ connectionString: local.url(db) });
    await s.connect();
    const read = await copyOutMany(s, ['b1', 'b2', 'b3'].map((x) => `COPY ${x} TO STDOUT (FORMAT binary)`), BATCH_MAX_BYTES).finally(() => s.end());
    assert.deepEqual(read.rows, [1, 1, 1]);
    assert.equal(read.overflow, false);
    // b2's data into a table whose CHECK rejects it: statement 1 fails, the one after it never runs.
    await c.query('BEGIN');
    await c.query('ALTER TABLE b2 DROP CONSTRAINT b2_id_check, ADD CHECK (id > 5)');
    const e = await copyInMany(c, ['b1', 'b2', 'b3'].map((x) => `COPY ${x} FROM STDIN (FORMAT binary)`), read.data).then(
      () => assert.fail('the batch should fail'),
      (x: unknown) => x,
    );
    assert.ok(e instanceof BatchStatementError && e.index === 1 && /check constraint/.test(e.message), String(e));
    await c.query('ROLLBACK');
    assert.deepEqual((await c.query('SELECT (SELECT count(*) FROM b1)::int AS n')).rows, [{ n: 0 }]);
    // The same batch loads once the data fits.
    await c.query('BEGIN');
    assert.deepEqual(await copyInMany(c, ['b1', 'b2', 'b3'].map((x) => `COPY ${x} FROM STDIN (FORMAT binary)`), read.data), [1, 1, 1]);
    await c.query('COMMIT');
    assert.deepEqual((await c.query('SELECT (SELECT count(*) FROM b1) + (SELECT count(*) FROM b2) + (SELECT count(*) FROM b3) AS n')).rows, [{ n: '3' }]);
  } finally {
    await c.end();
  }
});
