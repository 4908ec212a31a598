/**
 * Undo and faults through the real CLI (issue #7): rollback restores exactly (foreign keys, NOT NULL columns,
 * triggers, primary keys, column order), full migrations do not trip over rows they replace, sequences and
 * files follow the transaction after Ctrl-C and kill -9, and lock waits are bounded.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startCluster, type TestCluster, envFor, freshDb, waitForCliQuery } from './support/pg.ts';
import { makeProject, startBin, type Project } from './support/cli.ts';
import { contents, schemaDump } from './support/dump.ts';
import { needs, startAll } from './support/prereq.ts';

/** Tests that compare pg_dump output (state()) need pg_dump: skipped without it (never in CI). */
const PG_DUMP = { skip: needs('pg_dump') };

let local: TestCluster;
let staging: TestCluster;

before(async () => {
  [local, staging] = await startAll([startCluster(), startCluster()]);
});

after(async () => {
  await Promise.allSettled([local?.stop(), staging?.stop()]);
});

function project(db: string, stagingExtra = 'APP_TITLE=Shop (staging)\n'): Project {
  return makeProject({ '.env.local': envFor(local, db, 'APP_TITLE=Shop\n'), '.env.staging': envFor(staging, db, stagingExtra) });
}

/** Everything a rollback must bring back: schema (pg_dump), rows and sequences, and the column order. */
async function state(c: TestCluster, db: string): Promise<{ schema: string; contents: Record<string, string>; columns: string[] }> {
  const cols = await c.query<{ t: string }>(
    `SELECT format('%s(%s)', a.attrelid::regclass, string_agg(a.attname, ',' ORDER BY a.attnum)) AS t
       FROM pg_attribute a JOIN pg_class r ON r.oid = a.attrelid JOIN pg_namespace n ON n.oid = r.relnamespace
      WHERE r.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
      GROUP BY a.attrelid ORDER BY 1`,
    [],
    db,
  );
  return { schema: schemaDump(c.url(db)), contents: await contents(c.url(db)), columns: cols.map((r) => r.t) };
}

/**
 * Wait until the CLI's session on the target database is in a phase: 'copy' (COPY … FROM STDIN running) or
 * 'verify' (a checksum query on the target after a COPY was seen: only tables not proven by their binary COPY,
 * e.g. with a column of a user type, are checksummed there).
 */
async function waitFor(watcher: pg.Client, db: string, phase: 'copy' | 'verify'): Promise<void> {
  let copied = false;
  await waitForCliQuery(
    watcher,
    db,
    (queries) => {
      const q = queries.join('\n');
      if (/COPY .*FROM STDIN/.test(q)) {
        if (phase === 'copy') return true;
        copied = true;
        return false;
      }
      return copied && /hashtextextended/.test(q);
    },
    `the ${phase} phase`,
  );
}

/** Migrate local → staging with `args`, then roll back: staging must be exactly as before. */
async function roundTrip(db: string, src: string, tgt: string, args: string[]): Promise<void> {
  await freshDb(local, db, src);
  await freshDb(staging, db, tgt);
  const before = await state(staging, db);
  const p = project(db);
  try {
    const m = await p.run(['migrate', 'local', 'staging', '--force', ...args]);
    assert.equal(m.code, 0, m.stderr);
    const after = await state(staging, db);
    assert.equal(after.schema, (await state(local, db)).schema, 'migrated');
    const rb = await p.run(['migrate', 'rollback', '--force']);
    assert.equal(rb.code, 0, rb.stderr);
    assert.match(rb.stdout + rb.stderr, /verified by count and checksum|config files restored/);
    assert.deepEqual(await state(staging, db), before);
  } finally {
    p.remove();
  }
}

test('rollback of a full migration that dropped FK-linked tables brings both back', PG_DUMP, async () => {
  await roundTrip('fk_drop', '', `CREATE TABLE parent(id int PRIMARY KEY); INSERT INTO parent VALUES (1);
    CREATE TABLE child(id int PRIMARY KEY, parent_id int REFERENCES parent); INSERT INTO child VALUES (10, 1);`, []);
});

test('rollback of a full migration that rewrote FK-linked tables (the referencing one first in name order)', PG_DUMP, async () => {
  const ddl = `CREATE TABLE authors(id int PRIMARY KEY, name text); CREATE TABLE posts(id int PRIMARY KEY, author_id int REFERENCES authors, title text);`;
  await roundTrip('fk_rewrite', `${ddl} ALTER TABLE posts ADD COLUMN body text; INSERT INTO authors VALUES (7, 'new'); INSERT INTO posts VALUES (70, 7, 'n', 'b');`,
    `${ddl} INSERT INTO authors SELECT g, 'a' || g FROM generate_series(1, 20) g; INSERT INTO posts SELECT g, 1 + g % 20, 't' || g FROM generate_series(1, 50) g;`, []);
});

test('rollback of a schema-only migration that dropped a NOT NULL column restores values and column order', PG_DUMP, async () => {
  await roundTrip('not_null_col', `CREATE TABLE t(id int PRIMARY KEY, name text);`,
    `CREATE TABLE t(id int PRIMARY KEY, legacy text NOT NULL, name text); INSERT INTO t SELECT g, 'l' || g, 'n' || g FROM generate_series(1, 30) g;`, ['--schema-only']);
});

test('rollback does not fire user triggers (updated_at stays), and the dropped column returns in place', PG_DUMP, async () => {
  const fn = `CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;`;
  await roundTrip('trig', `${fn} CREATE TABLE t(id int PRIMARY KEY, updated_at timestamptz); CREATE TRIGGER t_stamp BEFORE INSERT OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION stamp();`,
    `${fn} CREATE TABLE t(id int PRIMARY KEY, legacy int, updated_at timestamptz); INSERT INTO t SELECT g, g, '2001-01-01' FROM generate_series(1, 10) g;
     CREATE TRIGGER t_stamp BEFORE INSERT OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION stamp();`, ['--schema-only']);
});

test('rollback of a migration that dropped the primary-key column', PG_DUMP, async () => {
  await roundTrip('pkcol', `CREATE TABLE sessions(v int);`,
    `CREATE TABLE sessions(token text PRIMARY KEY, v int); INSERT INTO sessions SELECT md5(g::text), g FROM generate_series(1, 25) g;`, ['--schema-only']);
});

test('full migrations do not trip over rows they replace: new FK to a new lookup table, NOT NULL without default, enum value removed', PG_DUMP, async () => {
  const v1 = `CREATE TYPE rating AS ENUM ('G', 'PG', 'NC-17');
    CREATE TABLE refresh_tokens(id int PRIMARY KEY, token text, type text);
    CREATE TABLE films(id serial PRIMARY KEY, rating rating);
    INSERT INTO refresh_tokens SELECT g, md5(g::text), 'legacy' FROM generate_series(1, 40) g;
    INSERT INTO films(rating) SELECT (ARRAY['G','PG','NC-17'])[1 + g % 3]::rating FROM generate_series(1, 30) g;`;
  const v2 = `CREATE TYPE rating AS ENUM ('G', 'PG');
    CREATE TABLE refresh_token_types(value text PRIMARY KEY);
    CREATE TABLE refresh_tokens(id int PRIMARY KEY, token text, type text REFERENCES refresh_token_types, owner text NOT NULL);
    CREATE TABLE films(id serial PRIMARY KEY, rating rating);
    INSERT INTO refresh_token_types VALUES ('refresh'), ('pat');
    INSERT INTO refresh_tokens SELECT g, md5(g::text), 'pat', 'u' || g FROM generate_series(1, 5) g;
    INSERT INTO films(rating) SELECT 'PG' FROM generate_series(1, 3) g;`;
  await roundTrip('upgrade', v2, v1, []);
  await roundTrip('downgrade', v1, v2, []);
});

test('SIGINT after the data step leaves rows, sequences and env files as they were', PG_DUMP, async () => {
  const db = 'sigint_seq';
  // A domain-typed column: verification checksums the target's rows (a binary COPY of built-in types only is
  // proven by its row count, leaving no verify phase to interrupt).
  const ddl = `CREATE DOMAIN payload_t AS text; CREATE TABLE events(id bigserial PRIMARY KEY, payload payload_t NOT NULL);`;
  await freshDb(local, db, `${ddl} INSERT INTO events(payload) SELECT repeat(md5(g::text), 4) FROM generate_series(1, 300000) g;`);
  await freshDb(staging, db, `${ddl} INSERT INTO events(payload) SELECT 'old ' || g FROM generate_series(1, 100) g;`);
  const before = await state(staging, db);
  const p = project(db);
  const envBefore = p.read('.env.staging');
  const watcher = new pg.Client({ connectionString: staging.url(db) });
  await watcher.connect();
  try {
    const run = startBin(['migrate', 'local', 'staging', '--data-only', '--force'], { cwd: p.dir });
    await waitFor(watcher, db, 'verify');
    run.child.kill('SIGINT');
    const r = await run.done;
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /interrupted/);
    assert.deepEqual(await state(staging, db), before);
    assert.equal(p.read('.env.staging'), envBefore);
    assert.deepEqual(p.checkpoints().filter((c) => !c.startsWith('.')), []);
  } finally {
    await watcher.end();
    p.remove();
  }
});

test('a data-only migration blocked by another session’s lock fails within --lock-timeout and leaves no backend waiting', async () => {
  const db = 'blocked';
  const ddl = `CREATE TABLE t(id int PRIMARY KEY, v text);`;
  await freshDb(local, db, `${ddl} INSERT INTO t VALUES (1, 'new');`);
  await freshDb(staging, db, `${ddl} INSERT INTO t VALUES (1, 'old');`);
  const p = project(db);
  const holder = new pg.Client({ connectionString: staging.url(db) });
  await holder.connect();
  try {
    await holder.query(`BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE`);
    const t0 = Date.now();
    const r = await p.run(['migrate', 'local', 'staging', '--data-only', '--force', '--lock-timeout', '2s'], { timeoutMs: 30_000 });
    const took = Date.now() - t0;
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /lock/i);
    assert.ok(took < 15_000, `took ${took} ms`);
    const waiting = await holder.query(`SELECT count(*)::int n FROM pg_stat_activity WHERE application_name = 'nself-migrate'`);
    assert.equal(waiting.rows[0].n, 0);
    await holder.query('ROLLBACK');
    assert.equal((await staging.query(`SELECT v FROM t`, [], db))[0].v, 'old');
  } finally {
    await holder.end();
    p.remove();
  }
  const empty = makeProject();
  try {
    const zero = await empty.run(['migrate', 'local', 'staging', '--lock-timeout', '0ms']);
    assert.equal(zero.code, 64, zero.stderr);
  } finally {
    empty.remove();
  }
});

test('kill -9 at 24 points of a schema + data + config migration: after the next command, all-old or all-new', PG_DUMP, async () => {
  const db = 'kill9';
  // posts.body has a domain type, so that verification checksums posts on the target: the 'verify' kill point.
  const src = `CREATE DOMAIN body_t AS text; CREATE TABLE users(id bigserial PRIMARY KEY, email text NOT NULL, name text);
    CREATE TABLE posts(id bigserial PRIMARY KEY, user_id bigint REFERENCES users, body body_t);
    INSERT INTO users(email, name) SELECT 'u' || g || '@x', 'n' || g FROM generate_series(1, 20000) g;
    INSERT INTO posts(user_id, body) SELECT 1 + g % 20000, repeat('b', 50) FROM generate_series(1, 60000) g;`;
  const tgt = `CREATE DOMAIN body_t AS text; CREATE TABLE users(id bigserial PRIMARY KEY, email text NOT NULL, legacy int);
    CREATE TABLE posts(id bigserial PRIMARY KEY, user_id bigint REFERENCES users, body body_t);
    INSERT INTO users(email, legacy) SELECT 'old' || g, g FROM generate_series(1, 500) g;
    INSERT INTO posts(user_id, body) SELECT 1 + g % 500, 'old' FROM generate_series(1, 800) g;`;
  await freshDb(local, db, src);
  const want = await state(local, db);
  // how long a whole run takes, to spread the kill points over it
  await freshDb(staging, db, tgt);
  let p = project(db);
  const t0 = Date.now();
  const full = await p.run(['migrate', 'local', 'staging', '--force']);
  assert.equal(full.code, 0, full.stderr);
  const span = Date.now() - t0;
  const newEnv = p.read('.env.staging');
  p.remove();
  const seen = { old: 0, new: 0 };
  // 19 kill points spread over the run and a little past its end, one after it exited (a kill then changes nothing:
  // the target must be new — the timed points alone may all fall before COMMIT when a busy machine slows the
  // run down), and four at named moments: during the copy, during verify (after the data step), right after the
  // env file changed (before COMMIT: all-old), and right after the checkpoint was marked applied (after COMMIT: all-new)
  const points: Array<number | 'exit' | 'copy' | 'verify' | 'config' | 'applied'> = [
    ...Array.from({ length: 19 }, (_, i) => Math.round((span * 1.15 * (i + 0.5)) / 20)),
    'exit',
    'copy',
    'verify',
    'config',
    'applied',
  ];
  for (const [i, point] of points.entries()) {
    await freshDb(staging, db, tgt);
    const old = await state(staging, db);
    p = project(db);
    const oldEnv = p.read('.env.staging');
    const watcher = new pg.Client({ connectionString: staging.url(db) });
    await watcher.connect();
    try {
      const run = startBin(['migrate', 'local', 'staging', '--force'], { cwd: p.dir });
      if (typeof point === 'number') await new Promise((res) => setTimeout(res, point));
      else if (point === 'exit') assert.equal((await run.done).code, 0);
      else if (point === 'applied') {
        const deadline = Date.now() + 60_000;
        const applied = () => p.checkpoints().some((c) => !c.startsWith('.') && p.exists(`.nself/migrations/${c}/manifest.json`) && /"status": "applied"/.test(p.read(`.nself/migrations/${c}/manifest.json`)));
        while (!applied()) {
          assert.ok(Date.now() < deadline, 'the checkpoint was never marked applied');
          await new Promise((res) => setTimeout(res, 1));
        }
      } else if (point === 'config') {
        const deadline = Date.now() + 60_000;
        while (p.read('.env.staging') === oldEnv) {
          assert.ok(Date.now() < deadline, 'the env file never changed');
          await new Promise((res) => setTimeout(res, 1));
        }
      } else await waitFor(watcher, db, point);
      run.child.kill('SIGKILL');
      await run.done;
      // the next command (a diff of another pair would do too) finishes what the killed run left
      const next = await p.run(['migrate', 'diff', 'local', 'staging', '--config-only']);
      assert.equal(next.code, 0, next.stderr);
      if (process.env.NSELF_TEST_VERBOSE) console.error(`kill point ${i}: ${next.stderr.trim()}`);
      const now = await state(staging, db);
      const env = p.read('.env.staging');
      if (now.schema === old.schema) {
        assert.deepEqual(now, old, `kill point ${i}: schema old but rows/sequences not`);
        assert.equal(env, oldEnv, `kill point ${i}: database old but env file migrated`);
        seen.old++;
      } else {
        assert.deepEqual({ ...now, columns: [] }, { ...want, columns: [] }, `kill point ${i}: neither old nor new`);
        assert.equal(env, newEnv, `kill point ${i}: database new but env file old`);
        const list = p.checkpoints().filter((c) => !c.startsWith('.'));
        assert.equal(list.length, 1, `kill point ${i}: one checkpoint`);
        assert.equal(p.exists(`.nself/migrations/${list[0]}/journal.json`), false, `kill point ${i}: the journal is gone`);
        assert.match(p.read(`.nself/migrations/${list[0]}/manifest.json`), /"status": "applied"/);
        seen.new++;
        assert.ok(typeof point === 'number' || point === 'exit' || point === 'applied', `kill point ${point}: the run was killed before COMMIT, yet the target is new`);
      }
    } finally {
      await watcher.end();
      p.remove();
    }
  }
  assert.ok(seen.old >= 3 && seen.new >= 1, `the named kill points hit both sides: ${JSON.stringify(seen)}`);
});

test('rollback --dry-run lists what it drops, restores and reloads, and what changed since the migration', async () => {
  const db = 'drift';
  await freshDb(local, db, `CREATE TABLE users(id int PRIMARY KEY, email text); CREATE TABLE comments(id int PRIMARY KEY); INSERT INTO users VALUES (1, 'a'), (2, 'b');`);
  await freshDb(staging, db, `CREATE TABLE users(id int PRIMARY KEY, email text, legacy int); INSERT INTO users VALUES (9, 'old', 1);`);
  const p = project(db);
  try {
    const m = await p.run(['migrate', 'local', 'staging', '--force']);
    assert.equal(m.code, 0, m.stderr);
    const clean = await p.run(['migrate', 'rollback', '--dry-run', '--json']);
    assert.equal(clean.code, 0, clean.stderr);
    const r0 = JSON.parse(clean.stdout).rollback;
    assert.deepEqual(r0.drift, { schema: [], tables: [], files: [] });
    assert.ok(r0.drops.some((d: string) => /comments/.test(d)), JSON.stringify(r0));
    assert.ok(r0.restores.some((d: string) => /legacy/.test(d)), JSON.stringify(r0));
    assert.deepEqual(r0.reloads, [{ table: 'public.users', rows: 1, rowsNow: 2 }]);
    assert.deepEqual(r0.files, ['.env.staging']);

    // the application keeps working on staging after the migration
    await staging.sql(`INSERT INTO users VALUES (3, 'written after'); CREATE TABLE audit(id int);`, db);
    p.write('.env.staging', p.read('.env.staging') + 'NEW_FLAG=after-migration\n');
    const dry = await p.run(['migrate', 'rollback', '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /Changed since the migration, and lost by the rollback:/);
    assert.match(dry.stdout, /rows of public\.users changed since \(2 rows then, 3 now\)/);
    assert.match(dry.stdout, /table "public"\."audit" created since/);
    assert.match(dry.stdout, /\.env\.staging changed since: NEW_FLAG/);
    assert.match(dry.stdout, /Reloads rows:\n {2}public\.users: 1 row from the checkpoint \(3 now\)/);
    // without a terminal the rollback (and its losses) must be confirmed with --force
    const refused = await p.run(['migrate', 'rollback']);
    assert.equal(refused.code, 3, refused.stderr);
    assert.equal((await staging.query(`SELECT count(*)::int n FROM users`, [], db))[0].n, 3);
    const rb = await p.run(['migrate', 'rollback', '--force', '--json']);
    assert.equal(rb.code, 0, rb.stderr);
    assert.equal(JSON.parse(rb.stdout).rollback.drift.tables[0].rowsNow, 3);
    assert.deepEqual(await staging.query(`SELECT id, email, legacy FROM users`, [], db), [{ id: 9, email: 'old', legacy: 1 }]);
  } finally {
    p.remove();
  }
});

/** A journal as a run killed at the chosen moment leaves it: its pid is gone, its transaction committed or not. */
async function killedRun(p: Project, committed: boolean): Promise<string> {
  const c = new pg.Client({ connectionString: staging.url('journal') });
  await c.connect();
  let txid: string;
  try {
    await c.query('BEGIN');
    txid = (await c.query(`SELECT txid_current()::text AS x`)).rows[0].x;
    await c.query(committed ? 'COMMIT' : 'ROLLBACK');
  } finally {
    await c.end();
  }
  const dead = await startBin(['--version'], { cwd: p.dir }).done.then(() => 2 ** 22 + 12345); // beyond pid_max: never alive
  const [id] = p.checkpoints().filter((x) => !x.startsWith('.'));
  const dir = `.nself/migrations/${id}`;
  const manifest = JSON.parse(p.read(`${dir}/manifest.json`));
  const config = manifest.backup.config;
  p.write(`${dir}/journal.json`, JSON.stringify({ format: 'nself-journal/1', op: 'migrate', pid: dead, host: (await import('node:os')).hostname(), started_at: new Date().toISOString(), target: 'staging', txid, files: config, filesDir: 'backup', sequences: manifest.backup.data?.sequences ?? [] }));
  return id!;
}

test('after a kill: a committed run is completed (checkpoint applied), an aborted one is undone (files back, checkpoint gone)', async () => {
  await freshDb(local, 'journal', `CREATE TABLE t(id int PRIMARY KEY);`);
  await freshDb(staging, 'journal', `CREATE TABLE t(id int PRIMARY KEY, x int);`);
  for (const committed of [true, false]) {
    const p = project('journal');
    try {
      const m = await p.run(['migrate', 'local', 'staging', '--config-only', '--force']);
      assert.equal(m.code, 0, m.stderr);
      const migrated = p.read('.env.staging');
      const id = await killedRun(p, committed);
      // killed before marking the checkpoint applied: between COMMIT and that (committed), or before COMMIT
      const { readCheckpoint, updateStatus } = await import('../src/checkpoint/store.ts');
      await updateStatus(await readCheckpoint(p.dir, id), 'pending');
      const next = await p.run(['migrate', 'diff', 'local', 'staging', '--config-only']);
      assert.equal(next.code, 0, next.stderr);
      if (committed) {
        assert.match(next.stderr, /interrupted after it committed: completed, checkpoint marked applied/);
        assert.equal(p.read('.env.staging'), migrated);
        assert.match(p.read(`.nself/migrations/${id}/manifest.json`), /"status": "applied"/);
      } else {
        assert.match(next.stderr, /interrupted before it completed: PostgreSQL rolled the database back; restored \.env\.staging/);
        assert.match(p.read('.env.staging'), /APP_TITLE=Shop \(staging\)/);
        assert.equal(p.exists(`.nself/migrations/${id}`), false);
      }
      assert.equal(p.exists(`.nself/migrations/${id}/journal.json`), false);
    } finally {
      p.remove();
    }
  }
});

test('a schema-only migration that existing rows would break is refused at plan time, with the row count', PG_DUMP, async () => {
  const db = 'rowcheck';
  await freshDb(local, db, `CREATE TYPE rating AS ENUM ('G', 'PG'); CREATE TABLE films(id int PRIMARY KEY, rating rating, owner text NOT NULL);`);
  await freshDb(staging, db, `CREATE TYPE rating AS ENUM ('G', 'PG', 'NC-17'); CREATE TABLE films(id int PRIMARY KEY, rating rating);
    INSERT INTO films SELECT g, (ARRAY['G','PG','NC-17'])[1 + g % 3]::rating FROM generate_series(1, 30) g;`);
  const before = await state(staging, db);
  const p = project(db);
  try {
    const dry = await p.run(['migrate', 'local', 'staging', '--schema-only', '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /30 row\(s\) of public\.films .*owner/);
    assert.match(dry.stdout, /10 row\(s\) of public\.films .*NC-17/);
    const r = await p.run(['migrate', 'local', 'staging', '--schema-only', '--force']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /error: the schema plan cannot be applied: .*row\(s\) of public\.films/);
    assert.deepEqual(await state(staging, db), before);
    assert.deepEqual(p.checkpoints().filter((c) => !c.startsWith('.')), []);
  } finally {
    p.remove();
  }
});
