/**
 * `nself migrate sync --watch --via subscription` (issue #10, "Beyond one machine") through the real CLI, on two
 * real servers on localhost (so the target's server reaches the source): the schema step runs first, rows follow
 * through a PostgreSQL subscription, a failed apply worker stops the watch, --keep-slot keeps and a rerun resumes,
 * SIGINT leaves nothing on either side, an unreachable conninfo leaves nothing, the password is never printed, a
 * production target is confirmed like a migration, and PostgreSQL 13 (no pg_stat_subscription_stats) works.
 * The pure parts (conninfo parsing and quoting) are unit-tested first.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, type TestCluster, envFor, freshDb } from './support/pg.ts';
import { makeProject, runBin, startEvents, type Project } from './support/cli.ts';
import { waitSameContents } from './support/dump.ts';
import { formatConninfo, parseConninfo, subscriptionConninfo } from '../src/sync/subscription.ts';

test('conninfo: libpq keywords and URLs parse; values are quoted; the password is masked and overridable key by key', () => {
  assert.deepEqual(parseConninfo(`host=db.internal port=5433 password='it\\'s' application_name='a b\\'c'`), { host: 'db.internal', port: '5433', password: "it's", application_name: "a b'c" });
  assert.deepEqual(parseConninfo('postgres://u:p%40ss@[::1]:6000/app?sslmode=require'), { host: '::1', port: '6000', user: 'u', password: 'p@ss', dbname: 'app', sslmode: 'require' });
  assert.throws(() => parseConninfo('host'), /expected key=value/);
  assert.throws(() => parseConninfo("host='open"), /unterminated/);
  assert.equal(formatConninfo({ host: 'h', password: "a'b\\c" }), `host='h' password='a\\'b\\\\c'`);
  assert.deepEqual(parseConninfo(formatConninfo({ host: 'h', password: "a'b\\c d" })), { host: 'h', password: "a'b\\c d" });
  assert.equal(formatConninfo({ host: 'h', password: 'secret' }, true), `host='h' password=****`);
  const s = { host: '127.0.0.1', port: 5432, database: 'app', user: 'postgres', password: 'pw', ssl: false as const, via: 'POSTGRES_*' as const, sources: {} };
  assert.deepEqual(subscriptionConninfo(s, undefined), { host: '127.0.0.1', port: '5432', dbname: 'app', user: 'postgres', password: 'pw', connect_timeout: '10' });
  assert.deepEqual(subscriptionConninfo(s, 'host=postgres'), { host: 'postgres', port: '5432', dbname: 'app', user: 'postgres', password: 'pw', connect_timeout: '10' });
});

test('usage: --via needs --watch, names a known mode, and excludes --poll; --source-conninfo needs --via subscription (exit 64)', async () => {
  const p = makeProject({ '.env.local': 'POSTGRES_PORT=1\n', '.env.staging': 'POSTGRES_PORT=2\n' });
  try {
    for (const [args, re] of [
      [['sync', 'local', 'staging', '--via', 'subscription'], /--via only applies to `nself migrate sync --watch`/],
      [['sync', 'local', 'staging', '--watch', '--via', 'pipes'], /--via: "pipes" is not a mode/],
      [['sync', 'local', 'staging', '--watch', '--via', 'subscription', '--poll'], /--poll cannot be combined with --via subscription/],
      [['sync', 'local', 'staging', '--watch', '--source-conninfo', 'host=x'], /--source-conninfo only applies to/],
    ] as const) {
      const r = await runBin(['migrate', ...args], { cwd: p.dir });
      assert.equal(r.code, 64, r.stderr);
      assert.match(r.stderr.split('\n')[0]!, re);
    }
  } finally {
    p.remove();
  }
});

const PASSWORD = 'sub-Secret-pw-4f9q2';
let local: TestCluster; // the source: wal_level = logical
let staging: TestCluster; // the target

before(async () => {
  [local, staging] = await Promise.all([
    startCluster({ password: PASSWORD, flags: ['-c', 'wal_level=logical', '-c', 'max_replication_slots=4', '-c', 'max_wal_senders=4'] }),
    startCluster({ password: PASSWORD }),
  ]);
});

after(async () => {
  await Promise.allSettled([local?.stop(), staging?.stop()]);
});

const SCHEMA = `
  CREATE TABLE accounts(id serial PRIMARY KEY, owner text, balance int);
  CREATE TABLE logs(line text);`;

function watcher(p: Project, args: string[]) {
  return startEvents(['migrate', 'sync', 'local', 'staging', '--watch', '--via', 'subscription', '--json', '--force', ...args], { cwd: p.dir, timeoutMs: 120_000 });
}

function waitEqual(db: string, ms = 20_000): Promise<void> {
  return waitSameContents(local.url(db), staging.url(db), { ms });
}

/** What this tool may leave behind: subscriptions on the target, publications and slots on the source. */
async function leftovers(db: string): Promise<string[]> {
  const subs = await staging.query<{ n: string }>(`SELECT 'subscription ' || subname AS n FROM pg_subscription`, [], db);
  const pubs = await local.query<{ n: string }>(`SELECT 'publication ' || pubname AS n FROM pg_publication`, [], db);
  const slots = await local.query<{ n: string }>(`SELECT 'slot ' || slot_name AS n FROM pg_replication_slots`);
  return [...subs, ...pubs, ...slots].map((r) => r.n);
}

test('subscription: schema first, rows follow (a table without a replica identity by comparing every --interval), a failed apply worker stops the watch, --keep-slot then resume, SIGINT leaves nothing, no password printed', async () => {
  const db = 'viasub';
  await freshDb(local, db, SCHEMA + `CREATE TABLE ledger(id bigint PRIMARY KEY, amount int); INSERT INTO accounts(owner, balance) SELECT 'o' || g, g FROM generate_series(1, 50) g; INSERT INTO ledger VALUES (1, 10); INSERT INTO logs VALUES ('a');`);
  // The target lacks a table (the schema step creates it) and holds rows that differ: the sync makes it exact.
  await freshDb(staging, db, SCHEMA + `INSERT INTO accounts(owner, balance) SELECT 'x' || g, -g FROM generate_series(1, 60) g;`);
  const p = makeProject({ '.env.local': envFor(local, db), '.env.staging': envFor(staging, db) });
  let w: ReturnType<typeof watcher> | undefined;
  try {
    w = watcher(p, ['--interval', '1s']);
    await w.until((e) => e.some((x) => x.event === 'status'), 'a status event');
    const started = w.events().find((x) => x.event === 'started')!;
    assert.equal(started.mode, 'subscription');
    assert.equal(started.resumed, false);
    assert.deepEqual(started.tables, ['public.accounts', 'public.ledger']);
    assert.deepEqual(started.leftOut.map((x: any) => x.table), ['public.logs']);
    assert.match(started.leftOut[0].reason, /no replica identity .*compared and synced every --interval/);
    assert.match(started.conninfo, /password=\*\*\*\*/);
    assert.ok(w.events().some((x) => x.event === 'synced' && x.initial && x.status === 'ok'));
    assert.deepEqual((await leftovers(db)).sort(), [`publication ${started.publication}`, `slot ${started.slot}`, `subscription ${started.subscription}`].sort());
    await waitEqual(db);

    await local.sql(`INSERT INTO accounts(owner, balance) VALUES ('new', 1); UPDATE accounts SET balance = balance + 1000 WHERE id <= 10; DELETE FROM accounts WHERE id = 20; INSERT INTO ledger SELECT g, g FROM generate_series(2, 500) g;
      INSERT INTO logs VALUES ('b'), ('c'); UPDATE logs SET line = 'A' WHERE line = 'a';`, db);
    await waitEqual(db);
    await w.until((e) => e.some((x) => x.event === 'synced' && !x.initial && x.status === 'ok'), 'a synced event for public.logs');
    await w.until((e) => e.filter((x) => x.event === 'status').some((x) => x.worker === true && typeof x.lagBytes === 'number' && typeof x.applyErrors === 'number'), 'a status with the worker, lag and error counts');

    // A row only the target has, then the same key on the source: the apply worker fails, the watch says so.
    await staging.sql(`INSERT INTO ledger VALUES (9000, 0)`, db);
    await local.sql(`INSERT INTO ledger VALUES (9000, 1)`, db);
    let r = await w.done;
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /apply worker on staging failed/);
    assert.deepEqual(await leftovers(db), [], 'a failed watch removes what it created');
    for (const l of r.stdout.trim().split('\n')) JSON.parse(l);
    assert.ok(!r.stdout.includes(PASSWORD) && !r.stderr.includes(PASSWORD), 'the password is never printed');

    // Fix the conflict, watch again with --keep-slot: SIGTERM keeps the subscription (disabled), a rerun resumes.
    await staging.sql(`DELETE FROM ledger WHERE id = 9000`, db);
    w = watcher(p, ['--keep-slot']);
    await w.until((e) => e.some((x) => x.event === 'status'), 'the second watch');
    w.child.kill('SIGTERM');
    r = await w.done;
    assert.equal(r.code, 0, r.stderr);
    const stop = w.events().find((x) => x.event === 'stopped')!;
    assert.equal(stop.kept.length, 3);
    assert.match(stop.resume, /ALTER SUBSCRIPTION/);
    assert.equal((await staging.query<{ e: boolean }>(`SELECT subenabled AS e FROM pg_subscription`, [], db))[0]!.e, false);
    await local.sql(`INSERT INTO ledger VALUES (9001, 1); UPDATE accounts SET owner = 'while stopped' WHERE id = 3; DELETE FROM logs WHERE line = 'b'`, db);

    w = watcher(p, ['--interval', '1s']);
    await w.until((e) => e.some((x) => x.event === 'started'), 'the resumed watch');
    assert.equal(w.events().find((x) => x.event === 'started')!.resumed, true);
    assert.deepEqual(w.events().find((x) => x.event === 'started')!.leftOut.map((x: any) => x.table), ['public.logs']);
    await waitEqual(db);
    w.child.kill('SIGINT');
    r = await w.done;
    assert.equal(r.code, 130, r.stderr);
    assert.equal(w.events().at(-1)!.event, 'stopped');
    assert.deepEqual(await leftovers(db), [], 'no subscription, publication or slot left on either side');
    for (const l of r.stdout.trim().split('\n')) JSON.parse(l); // NDJSON: every line parses
    assert.ok(!r.stdout.includes(PASSWORD) && !r.stderr.includes(PASSWORD), 'the password is never printed');
  } finally {
    if (w && w.child.exitCode === null) {
      w.child.kill('SIGINT');
      await w.done;
    }
    p.remove();
  }
});

test('subscription: a conninfo the target cannot use → one clear line, exit 1, nothing created, target unchanged', async () => {
  const db = 'viasub_unreachable';
  await freshDb(local, db, SCHEMA + `INSERT INTO accounts(owner, balance) VALUES ('a', 1);`);
  await freshDb(staging, db, SCHEMA);
  const p = makeProject({ '.env.local': envFor(local, db), '.env.staging': envFor(staging, db) });
  try {
    const r = await runBin(['migrate', 'sync', 'local', 'staging', '--watch', '--via', 'subscription', '--force', '--source-conninfo', 'host=127.0.0.1 port=1'], { cwd: p.dir, timeoutMs: 60_000 });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^error: staging's server cannot reach local at .*port='1'.*password=\*\*\*\*/m);
    assert.match(r.stderr, /hint: .*--source-conninfo/);
    assert.ok(!r.stderr.includes(PASSWORD) && !r.stdout.includes(PASSWORD));
    assert.deepEqual(await leftovers(db), []);
    assert.equal((await staging.query(`SELECT 1 FROM accounts`, [], db)).length, 0, 'the target is unchanged');
  } finally {
    p.remove();
  }
});

test('subscription: a production target without --force and without a terminal is refused (exit 3), nothing left behind', async () => {
  const db = 'viasub_prod';
  await freshDb(local, db, SCHEMA + `INSERT INTO accounts(owner, balance) VALUES ('a', 1);`);
  await freshDb(staging, db, SCHEMA);
  const p = makeProject({ '.env.local': envFor(local, db), '.env.prod': envFor(staging, db) });
  try {
    const r = await runBin(['migrate', 'sync', 'local', 'prod', '--watch', '--via', 'subscription'], { cwd: p.dir, timeoutMs: 60_000 });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /confirmation needed/);
    assert.deepEqual(await leftovers(db), []);
    assert.equal((await staging.query(`SELECT 1 FROM accounts`, [], db)).length, 0, 'the target is unchanged');
  } finally {
    p.remove();
  }
});

test('subscription on PostgreSQL 13 (the oldest supported; no pg_stat_subscription_stats): rows follow, SIGINT leaves nothing', async () => {
  const flags = ['-c', 'wal_level=logical', '-c', 'max_replication_slots=4', '-c', 'max_wal_senders=4'];
  const [src, tgt] = await Promise.all([startCluster({ version: 13, password: PASSWORD, flags }), startCluster({ version: 13, password: PASSWORD })]);
  const db = 'viasub13';
  const p = makeProject({ '.env.local': envFor(src, db), '.env.staging': envFor(tgt, db) });
  let w: ReturnType<typeof watcher> | undefined;
  try {
    await freshDb(src, db, SCHEMA + `INSERT INTO accounts(owner, balance) VALUES ('a', 1);`);
    await freshDb(tgt, db, SCHEMA);
    w = watcher(p, []);
    await w.until((e) => e.some((x) => x.event === 'status' && x.worker === true), 'a running apply worker');
    assert.equal(w.events().find((x) => x.event === 'status')!.applyErrors, undefined, 'no error counts before PostgreSQL 15');
    await src.sql(`INSERT INTO accounts(owner, balance) VALUES ('b', 2); UPDATE accounts SET balance = 10 WHERE owner = 'a'`, db);
    await waitSameContents(src.url(db), tgt.url(db));
    w.child.kill('SIGINT');
    const r = await w.done;
    assert.equal(r.code, 130, r.stderr);
    assert.equal((await tgt.query(`SELECT 1 FROM pg_subscription`)).length, 0);
    assert.equal((await src.query(`SELECT 1 FROM pg_replication_slots UNION ALL SELECT 1 FROM pg_publication`, [], db)).length, 0);
  } finally {
    if (w && w.child.exitCode === null) {
      w.child.kill('SIGINT');
      await w.done;
    }
    p.remove();
    await Promise.allSettled([src.stop(), tgt.stop()]);
  }
});
