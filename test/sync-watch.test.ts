/**
 * `nself migrate sync --watch` (issue #10) through the real CLI: changes stream from a wal_level=logical source
 * (inserts, updates, deletes, TRUNCATE; a multi-row transaction never half-applied), a kill -9 and restart lose
 * and duplicate nothing, SIGINT exits 130 leaving no slot, a wal_level=replica source is polled, the output is NDJSON.
 * Schema changes on the source follow while streaming and while polling (a column added and used, a table created
 * with writes going on, a kill -9 across a schema change, a primary key dropped), env files follow (keys, never
 * values), and a schema change that deletes data stops the watch with exit 3 unless --force.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startCluster, type TestCluster, envFor, freshDb } from './support/pg.ts';
import { makeProject, runBin, startBin, startEvents, type Project } from './support/cli.ts';
import { contents, waitSameContents } from './support/dump.ts';

let local: TestCluster; // wal_level = logical: can stream
let staging: TestCluster; // wal_level = replica: polled when it is the source

before(async () => {
  [local, staging] = await Promise.all([startCluster({ flags: ['-c', 'wal_level=logical', '-c', 'max_replication_slots=4', '-c', 'max_wal_senders=4'] }), startCluster()]);
});

after(async () => {
  await Promise.allSettled([local?.stop(), staging?.stop()]);
});

const SCHEMA = `
  CREATE TABLE accounts(id serial PRIMARY KEY, owner text, balance int, note text);
  CREATE TABLE ledger(id bigint PRIMARY KEY, account_id int REFERENCES accounts, amount int);
  CREATE TABLE logs(line text);`;

/** Only on the target: a user trigger that must not fire when changes are applied. */
const TARGET_TRIGGER = `
  CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.note := 'trigger fired'; RETURN NEW; END $$;
  CREATE TRIGGER accounts_stamp BEFORE INSERT OR UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION stamp();`;

/** A watcher: its NDJSON events as they come. */
function watcher(p: Project, args: string[], { force = true } = {}) {
  return startEvents(['migrate', 'sync', ...args, '--watch', '--json', ...(force ? ['--force'] : [])], { cwd: p.dir, timeoutMs: 120_000 });
}

function waitEqual(db: string, ms = 20_000, from = local, to = staging): Promise<void> {
  return waitSameContents(from.url(db), to.url(db), { ms, except: ['public.logs'] });
}

async function slots(): Promise<string[]> {
  return (await local.query<{ s: string }>(`SELECT slot_name AS s FROM pg_replication_slots`)).map((r) => r.s);
}

test('streaming: changes follow, a transaction is applied whole, kill -9 and restart lose and duplicate nothing, SIGINT leaves no slot', async () => {
  const db = 'watch';
  await freshDb(local, db, SCHEMA + `INSERT INTO accounts(owner, balance) SELECT 'o' || g, g FROM generate_series(1, 100) g; INSERT INTO logs VALUES ('a');`);
  await freshDb(staging, db, SCHEMA + `INSERT INTO accounts(owner, balance) SELECT 'o' || g, g FROM generate_series(1, 90) g;` + TARGET_TRIGGER);
  const p = makeProject({ '.env.local': envFor(local, db), '.env.staging': envFor(staging, db) });
  try {
    let w = watcher(p, ['local', 'staging', '--data-only']);
    await w.until((e) => e.some((x) => x.event === 'synced' && x.initial), 'the initial sync');
    const started = w.events().find((x) => x.event === 'started')!;
    assert.equal(started.mode, 'stream');
    assert.deepEqual(started.compared, ['public.logs'], 'a table without a replica identity is compared, not streamed');
    assert.deepEqual(await slots(), [started.slot]);
    await waitEqual(db);

    // Inserts, updates, deletes; a multi-row transaction; user triggers do not fire on the target.
    await local.sql(`INSERT INTO accounts(owner, balance) VALUES ('new', 1); UPDATE accounts SET balance = balance + 1000 WHERE id <= 10; DELETE FROM accounts WHERE id = 50;`, db);
    await local.sql(`BEGIN; INSERT INTO ledger SELECT g, 1 + g % 40, g FROM generate_series(1, 3000) g; COMMIT;`, db);
    const seen = new Set<number>();
    const end = Date.now() + 20_000;
    while (Date.now() < end) {
      const n = Number((await staging.query<{ n: string }>(`SELECT count(*) AS n FROM ledger`, [], db))[0]!.n);
      seen.add(n);
      if (n === 3000) break;
    }
    assert.deepEqual([...seen].filter((n) => n !== 0 && n !== 3000), [], 'never half a transaction');
    await waitEqual(db); // equal rows: the target's trigger (which would stamp note) did not fire
    assert.equal((await staging.query(`SELECT 1 FROM accounts WHERE note = 'trigger fired'`, [], db)).length, 0, 'target triggers did not fire');
    await local.sql(`SELECT nextval('accounts_id_seq') FROM generate_series(1, 5)`, db);
    await local.sql(`TRUNCATE ledger`, db);
    await waitEqual(db);

    // kill -9, more writes, restart: resumes from the last applied transaction.
    w.child.kill('SIGKILL');
    await w.done;
    await local.sql(`INSERT INTO ledger SELECT g, 1, g FROM generate_series(1, 200) g; UPDATE accounts SET owner = 'after kill' WHERE id = 3; DELETE FROM accounts WHERE id = 4;`, db);
    w = watcher(p, ['local', 'staging', '--data-only']);
    await w.until((e) => e.some((x) => x.event === 'started'), 'the restart');
    assert.equal(w.events().find((x) => x.event === 'started')!.resumed, true);
    await waitEqual(db);
    await local.sql(`INSERT INTO ledger VALUES (9999, 1, 1)`, db);
    await waitEqual(db);
    assert.equal(Number((await staging.query<{ n: string }>(`SELECT count(*) AS n FROM ledger`, [], db))[0]!.n), 201, 'no duplicates, nothing lost');
    // Status every 2 s: rows and transactions applied, lag percentiles of the last minute, WAL the slot keeps.
    await w.until((e) => e.some((x) => x.event === 'status' && x.lagMs), 'a status with lag percentiles');
    const status = w.events().filter((x) => x.event === 'status' && x.lagMs).at(-1)!;
    assert.ok(status.transactions >= 2 && status.changes >= 201, JSON.stringify(status));
    assert.ok(status.lagMs.p50 >= 0 && status.lagMs.p99 >= status.lagMs.p50 && status.lagMs.p99 < 60_000, JSON.stringify(status));
    assert.ok(Number.isInteger(status.retainedBytes) && status.retainedBytes >= 0, JSON.stringify(status));

    // A second watcher on the same target is refused.
    const second = await startBin(['migrate', 'sync', 'local', 'staging', '--watch', '--force'], { cwd: p.dir }).done;
    assert.equal(second.code, 1, second.stderr);
    assert.match(second.stderr, /already following into staging/);

    w.child.kill('SIGINT');
    const r = await w.done;
    assert.equal(r.code, 130, r.stderr);
    const stopped = w.events().find((x) => x.event === 'stopped')!;
    assert.equal(stopped.signal, 'SIGINT');
    assert.deepEqual(await slots(), [], 'no slot left on the source');
    assert.equal((await local.query(`SELECT 1 FROM pg_publication`, [], db)).length, 0, 'no publication left');
    for (const l of r.stdout.trim().split('\n')) JSON.parse(l); // NDJSON: every line parses
  } finally {
    p.remove();
  }
});

test('polling: a wal_level=replica source is polled, and the watcher says why; SIGTERM exits 0', async () => {
  const db = 'poll';
  await freshDb(staging, db, SCHEMA + `INSERT INTO accounts(owner, balance) SELECT 'o' || g, g FROM generate_series(1, 20) g;`);
  await freshDb(local, db, SCHEMA);
  const p = makeProject({ '.env.local': envFor(local, db), '.env.staging': envFor(staging, db) });
  try {
    const w = watcher(p, ['staging', 'local', '--interval', '300ms']);
    await w.until((e) => e.some((x) => x.event === 'synced' && x.initial), 'the initial sync');
    const started = w.events().find((x) => x.event === 'started')!;
    assert.equal(started.mode, 'poll');
    assert.match(started.reason, /wal_level is replica/);
    assert.match(started.enable, /wal_level = logical/);
    await staging.sql(`UPDATE accounts SET balance = -1 WHERE id = 7; INSERT INTO logs VALUES ('x')`, db);
    await w.until((e) => e.some((x) => x.event === 'synced' && !x.initial), 'a later sync');
    assert.deepEqual(await contents(local.url(db)), await contents(staging.url(db)));

    // A schema change while polling: the column and the new table follow, then their rows.
    await staging.sql(`ALTER TABLE accounts ADD COLUMN tier int; UPDATE accounts SET tier = id % 3; CREATE TABLE extra(id int PRIMARY KEY, v text); INSERT INTO extra SELECT g, 'v' || g FROM generate_series(1, 20) g;`, db);
    await w.until((e) => e.some((x) => x.event === 'schema_change'), 'the schema change');
    const change = w.events().find((x) => x.event === 'schema_change')!;
    assert.equal(change.applied, true);
    assert.equal(change.trigger, 'fingerprint');
    assert.ok(change.checkpoint, 'the schema step made a checkpoint');
    const what = change.changes.map((c: any) => `${c.action} ${c.kind} ${c.identity}`);
    assert.ok(what.includes('create column "public"."accounts"."tier"') && what.includes('create table "public"."extra"'), what.join('\n'));
    await waitEqual(db, 20_000, staging, local);
    w.child.kill('SIGTERM');
    const r = await w.done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(w.events().at(-1)!.event, 'stopped');
  } finally {
    p.remove();
  }
});

async function columns(c: TestCluster, db: string, table: string): Promise<string[]> {
  return (await c.query<{ n: string }>(`SELECT column_name AS n FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 ORDER BY 1`, [table], db)).map((r) => r.n);
}

test('streaming follows the schema (a column added, a table created), env files; a DROP COLUMN needs --force', async () => {
  const db = 'ddl';
  await freshDb(local, db, SCHEMA + `INSERT INTO accounts(owner, balance) SELECT 'o' || g, g FROM generate_series(1, 30) g;`);
  await freshDb(staging, db, SCHEMA);
  const p = makeProject({ '.env.local': envFor(local, db), '.env.staging': envFor(staging, db) });
  try {
    let w = watcher(p, ['local', 'staging', '--interval', '500ms']);
    await w.until((e) => e.some((x) => x.event === 'synced' && x.initial), 'the initial sync');
    assert.equal(w.events().find((x) => x.event === 'started')!.mode, 'stream');

    // A column added, then rows that use it: the schema follows first, the rows map by column name.
    await local.sql(`ALTER TABLE accounts ADD COLUMN tier int DEFAULT 1`, db);
    await local.sql(`INSERT INTO accounts(owner, balance, tier) VALUES ('tiered', 5, 7); UPDATE accounts SET tier = 3 WHERE id <= 5`, db);
    // A table created while watching, rows written right after it (before it can be published) and later.
    await local.sql(`CREATE TABLE extra(id int PRIMARY KEY, v text); INSERT INTO extra SELECT g, 'v' || g FROM generate_series(1, 50) g;`, db);
    await local.sql(`INSERT INTO extra VALUES (51, 'after'); UPDATE extra SET v = 'changed' WHERE id = 1; DELETE FROM extra WHERE id = 2`, db);
    // Writes go on while the watcher publishes the table and syncs it again: none lost, none twice.
    const writing = (async () => {
      for (let i = 52; i < 152; i++) await local.sql(`INSERT INTO extra VALUES (${i}, 'streamed'); UPDATE extra SET v = 'u${i}' WHERE id = ${i - 40}; UPDATE accounts SET balance = ${i} WHERE id = 1`, db);
    })();
    await w.until((e) => e.some((x) => x.event === 'schema_change' && x.published?.includes('public.extra')), 'the new table published');
    await writing;
    await waitEqual(db);
    const changes = w.events().filter((x) => x.event === 'schema_change');
    assert.ok(changes.every((x) => x.applied && x.checkpoint), JSON.stringify(changes));
    assert.ok(changes.some((x) => x.changes.some((c: any) => c.identity === '"public"."accounts"."tier"')), 'the column change is reported');
    assert.deepEqual((await staging.query(`SELECT tier FROM accounts WHERE owner = 'tiered'`, [], db)).map((r: any) => r.tier), [7]);

    // An env file of the source changes: the target's own file follows; keys are reported, values never.
    p.write('.env.local', envFor(local, db, 'FEATURE_FLAG=flag-value-7781\n'));
    await w.until((e) => e.some((x) => x.event === 'config' && x.keys.includes('FEATURE_FLAG')), 'the config change', 10_000);
    assert.match(p.read('.env.staging'), /^FEATURE_FLAG=flag-value-7781$/m);

    const slot = w.events().find((x) => x.event === 'started')!.slot;
    let r = await (w.child.kill('SIGKILL'), w.done);
    assert.doesNotMatch(r.stdout + r.stderr, /flag-value-7781/, 'no value printed');
    for (const l of r.stdout.trim().split('\n')) JSON.parse(l);
    // As a kill during a schema step leaves it: the state file says "sync every streamed table again" — and a row
    // only such a sync brings back.
    p.write(`.nself/watch-${slot}.json`, '{"all":true,"tables":[]}\n');
    await staging.sql(`DELETE FROM extra WHERE id = 3`, db);

    // kill -9, then a schema change and rows while nobody watches: the restart resumes and follows them.
    await local.sql(`ALTER TABLE accounts ADD COLUMN score numeric DEFAULT 0.5; UPDATE accounts SET score = id WHERE id <= 3; CREATE TABLE late(id int PRIMARY KEY, at text); INSERT INTO late SELECT g, 'x' FROM generate_series(1, 10) g;`, db);
    w = watcher(p, ['local', 'staging', '--interval', '500ms']);
    await w.until((e) => e.some((x) => x.event === 'started'), 'the restart');
    assert.equal(w.events().find((x) => x.event === 'started')!.resumed, true);
    await local.sql(`INSERT INTO late VALUES (11, 'y'); INSERT INTO accounts(owner, score) VALUES ('late', 9)`, db);
    await waitEqual(db);
    await w.until((e) => e.some((x) => x.event === 'schema_change' && x.applied), 'the schema change after the restart');
    // A table that loses its primary key leaves the publication (an UPDATE of a published table without a replica
    // identity would fail on the source) and is compared every interval instead.
    await local.sql(`ALTER TABLE late DROP CONSTRAINT late_pkey`, db);
    await w.until((e) => e.some((x) => x.event === 'schema_change' && x.changes.some((c: any) => c.action === 'drop' && c.identity.includes('late_pkey'))), 'the dropped key');
    assert.deepEqual(await local.query(`SELECT 1 FROM pg_publication_tables WHERE tablename = 'late'`, [], db), []);
    await local.sql(`UPDATE late SET at = 'z' WHERE id = 1`, db);
    await waitEqual(db);
    w.child.kill('SIGTERM');
    r = await w.done;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!existsSync(join(p.dir, `.nself/watch-${slot}.json`)), 'the state file goes with the slot');
    const diff = await runBin(['migrate', 'diff', 'local', 'staging', '--exit-code'], { cwd: p.dir });
    assert.equal(diff.code, 0, diff.stdout + diff.stderr);

    // A DROP COLUMN without --force: refused, exit 3, the target keeps the column (and says so on a terminal-less stderr).
    const plain = startBin(['migrate', 'sync', 'local', 'staging', '--watch', '--interval', '300ms'], { cwd: p.dir, timeoutMs: 60_000 });
    let stderr = '';
    plain.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    for (const end = Date.now() + 30_000; !/initial sync/.test(stderr); ) {
      if (Date.now() > end || plain.child.exitCode !== null) assert.fail(`no initial sync:\n${stderr}`);
      await new Promise((res) => setTimeout(res, 50));
    }
    await local.sql(`ALTER TABLE accounts DROP COLUMN note`, db);
    r = await plain.done;
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /schema change not applied.*drops column public\.accounts\.note/s);
    assert.match(r.stderr, /--force/);
    assert.ok((await columns(staging, db, 'accounts')).includes('note'), 'the target keeps the column');
    assert.deepEqual(await slots(), [], 'the refused watch dropped its slot');

    // With --force: the initial sync drops it, and a drop during the watch is applied.
    w = watcher(p, ['local', 'staging', '--interval', '300ms']);
    await w.until((e) => e.some((x) => x.event === 'synced' && x.initial), 'the initial sync with --force');
    assert.ok(!(await columns(staging, db, 'accounts')).includes('note'));
    await local.sql(`ALTER TABLE accounts DROP COLUMN tier`, db);
    await local.sql(`UPDATE accounts SET balance = 0 WHERE id = 2`, db);
    await w.until((e) => e.some((x) => x.event === 'schema_change' && x.applied && x.changes.some((c: any) => c.action === 'drop' && c.identity === '"public"."accounts"."tier"')), 'the forced drop');
    await waitEqual(db);
    assert.ok(!(await columns(staging, db, 'accounts')).includes('tier'));
    w.child.kill('SIGINT');
    r = await w.done;
    assert.equal(r.code, 130, r.stderr);

    // NDJSON: a DROP TABLE without --force is a schema_change with applied: false, then stopped; exit 3.
    w = watcher(p, ['local', 'staging', '--interval', '300ms'], { force: false });
    await w.until((e) => e.some((x) => x.event === 'synced' && x.initial), 'the initial sync');
    await local.sql(`DROP TABLE extra`, db);
    r = await w.done;
    assert.equal(r.code, 3, r.stderr);
    const events = w.events();
    const refusal = events.find((x) => x.event === 'schema_change')!;
    assert.equal(refusal.applied, false);
    assert.match(refusal.refused.join('\n'), /drops table public\.extra/);
    assert.deepEqual(events.at(-1)!.event, 'stopped');
    assert.equal(events.at(-1)!.refused, true);
    assert.equal(Number((await staging.query<{ n: string }>(`SELECT count(*) AS n FROM extra`, [], db))[0]!.n), 150, 'the target keeps the table and its rows');
  } finally {
    p.remove();
  }
});
