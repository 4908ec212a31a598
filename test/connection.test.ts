/**
 * Connections: settings, direct connections and their errors, the SSH tunnel through a real sshd
 * (TOFU host keys, changed keys, auth failures), advisory locks. Real servers only.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster, freePort, type TestCluster } from './support/pg.ts';
import { startSshd, type TestSshd } from './support/sshd.ts';
import { have, needs, startAll } from './support/prereq.ts';
import { connectionSettings, describeConnection } from '../src/env/connection.ts';
import { knownHostsPath } from '../src/env/ssh.ts';
import { openDatabase, type DbHandle } from '../src/pg/connect.ts';
import { advisoryLockKey, lockTarget, lockTargetSession, unlockTargetSession } from '../src/pg/lock.ts';
import { MigrateError } from '../src/errors.ts';
import type { Environment, EnvVar, ServerConfig } from '../src/env/types.ts';

const PASSWORD = 'S3cr3t-pw!';
const tmpDirs: string[] = [];

function projectDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'nself-conn-'));
  tmpDirs.push(d);
  return d;
}

/** An Environment built by hand: every var set in .environments/<name>/.env, one per line. */
function makeEnv(name: string, dir: string, vars: Record<string, string>, server?: ServerConfig): Environment {
  const file = join(dir, '.environments', name, '.env');
  const map = new Map<string, EnvVar>();
  Object.entries(vars).forEach(([key, value], i) => map.set(key, { key, value, file, line: i + 1 }));
  return {
    name,
    projectDir: dir,
    lookedFor: [file],
    files: [file],
    vars: map,
    ...(server ? { server } : {}),
    serverFile: join(dir, '.environments', name, 'server.json'),
    ownFile: file,
    production: name === 'prod',
  };
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<MigrateError> {
  try {
    const v = await p;
    // Do not leak an open handle (it would keep the test process alive).
    if (v && typeof (v as DbHandle).close === 'function') await (v as DbHandle).close();
  } catch (e) {
    assert.ok(e instanceof MigrateError, `expected MigrateError ${code}, got ${(e as Error)?.stack ?? e}`);
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    assert.ok(!e.message.includes('\n'), 'message is one line');
    assert.ok(e.hint && e.hint.length > 0, 'has a hint');
    return e;
  }
  assert.fail(`expected MigrateError ${code}, but it succeeded`);
}

let cluster: TestCluster;
let sshd: TestSshd;

before(async () => {
  // startAll: if one fails, the other is stopped before the error is thrown. sshd only where it is installed.
  let s: TestSshd | undefined;
  [cluster, s] = await startAll([startCluster({ password: PASSWORD }), have('sshd') ? startSshd() : undefined]);
  if (s) sshd = s;
  await cluster.createDatabase('app');
  await cluster.sql('CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2), (3);', 'app');
});

after(async () => {
  await Promise.allSettled([cluster?.stop(), sshd?.stop()]);
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

describe('connectionSettings', () => {
  test('defaults, the postgres service name, PROJECT_NAME', () => {
    const dir = projectDir();
    const s = connectionSettings(makeEnv('local', dir, {}));
    assert.deepEqual([s.host, s.port, s.database, s.user, s.password, s.via, s.ssh], ['127.0.0.1', 5432, 'postgres', 'postgres', undefined, 'POSTGRES_*', undefined]);
    const s2 = connectionSettings(makeEnv('local', dir, { POSTGRES_HOST: 'postgres', PROJECT_NAME: 'myapp', POSTGRES_PORT: '6543', POSTGRES_USER: 'app', POSTGRES_PASSWORD: 'pw' }));
    assert.deepEqual([s2.host, s2.port, s2.database, s2.user, s2.password], ['127.0.0.1', 6543, 'myapp', 'app', 'pw']);
    const s3 = connectionSettings(makeEnv('local', dir, { POSTGRES_DB: 'db1', PROJECT_NAME: 'myapp', POSTGRES_HOST: 'db.example.com' }));
    assert.deepEqual([s3.host, s3.database], ['db.example.com', 'db1']);
    assert.equal(describeConnection(s2), 'app@127.0.0.1:6543/myapp');
  });

  test('DATABASE_URL wins over POSTGRES_*; password decoded and never described', () => {
    const dir = projectDir();
    const env = makeEnv('staging', dir, { POSTGRES_HOST: 'other', POSTGRES_DB: 'other', DATABASE_URL: 'postgresql://u%40x:p%2Fw%3A@postgres:5433/app?sslmode=require' });
    const s = connectionSettings(env);
    assert.deepEqual([s.host, s.port, s.database, s.user, s.password, s.via], ['127.0.0.1', 5433, 'app', 'u@x', 'p/w:', 'DATABASE_URL']);
    assert.deepEqual(s.ssl, { rejectUnauthorized: false });
    assert.equal(describeConnection(s), 'u@x@127.0.0.1:5433/app');
    assert.ok(!JSON.stringify(s.sources).includes('p/w'));
  });

  test('malformed DATABASE_URL / POSTGRES_PORT → config_invalid with a hint', () => {
    const dir = projectDir();
    for (const bad of ['not a url', 'mysql://u:p@h/db', 'postgres://u:p@h:5432/a/b']) {
      assert.throws(
        () => connectionSettings(makeEnv('staging', dir, { DATABASE_URL: bad })),
        (e: unknown) => e instanceof MigrateError && e.code === 'config_invalid' && /DATABASE_URL/.test(e.message) && /\.environments\/staging\/\.env:1/.test(e.hint ?? ''),
      );
    }
    assert.throws(() => connectionSettings(makeEnv('staging', dir, { POSTGRES_PORT: 'abc' })), (e: unknown) => e instanceof MigrateError && e.code === 'config_invalid');
  });

  test('ssh settings from server.json', () => {
    const dir = projectDir();
    const s = connectionSettings(makeEnv('prod', dir, { POSTGRES_DB: 'app' }, { host: 'srv.example.com', key: 'keys/id' }));
    assert.deepEqual(s.ssh && [s.ssh.host, s.ssh.port, s.ssh.user, s.ssh.key], ['srv.example.com', 22, 'root', join(dir, 'keys/id')]);
    assert.equal(describeConnection(s), 'postgres@127.0.0.1:5432/app via ssh root@srv.example.com:22');
    const s2 = connectionSettings(makeEnv('prod', dir, {}, { host: 'h', port: 2222, user: 'deploy', key: '~/.ssh/k' }));
    assert.deepEqual(s2.ssh && [s2.ssh.port, s2.ssh.user, s2.ssh.key], [2222, 'deploy', join(homedir(), '.ssh/k')]);
    assert.equal(connectionSettings(makeEnv('prod', dir, {}, { host: '' })).ssh, undefined);
  });
});

describe('direct connections', () => {
  test('connect, application_name, several clients, close ends them all', async () => {
    const env = makeEnv('local', projectDir(), { POSTGRES_HOST: 'postgres', POSTGRES_PORT: String(cluster.port), POSTGRES_DB: 'app', POSTGRES_PASSWORD: PASSWORD });
    const db = await openDatabase(env, { persistHostKeys: true });
    assert.equal(db.label, `postgres@127.0.0.1:${cluster.port}/app`);
    assert.equal(db.database, 'app');
    const a = await db.connect();
    const b = await db.connect();
    const r = await a.query(`SELECT current_database() AS db, current_setting('application_name') AS app, (SELECT count(*)::int FROM t) AS n`);
    assert.deepEqual(r.rows[0], { db: 'app', app: 'nself-migrate', n: 3 });
    assert.equal((await b.query('SELECT 1 AS x')).rows[0].x, 1);
    const count = async () => (await cluster.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'nself-migrate'`))[0]!.n;
    assert.equal(await count(), 2);
    await db.close();
    await db.close(); // idempotent
    for (let i = 0; i < 50 && (await count()) > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await count(), 0);
    await assert.rejects(db.connect(), MigrateError);
  });

  test('DATABASE_URL takes precedence over POSTGRES_*', async () => {
    const dead = await freePort();
    const env = makeEnv('staging', projectDir(), {
      POSTGRES_PORT: String(dead),
      POSTGRES_DB: 'nope',
      POSTGRES_PASSWORD: 'wrong',
      DATABASE_URL: cluster.url('app'),
    });
    const db = await openDatabase(env, { persistHostKeys: true });
    try {
      const c = await db.connect();
      assert.equal((await c.query('SELECT current_database() AS d')).rows[0].d, 'app');
    } finally {
      await db.close();
    }
  });

  test('wrong password → db_auth, password never shown, hint names the file', async () => {
    const dir = projectDir();
    const env = makeEnv('staging', dir, { POSTGRES_PORT: String(cluster.port), POSTGRES_PASSWORD: 'wrong-secret-123' });
    const e = await rejectsWith(openDatabase(env, { persistHostKeys: true }), 'db_auth');
    assert.equal(e.message, `cannot connect to staging database postgres@127.0.0.1:${cluster.port}/postgres: password authentication failed for user postgres`);
    assert.equal(e.hint, 'check POSTGRES_PASSWORD in .environments/staging/.env:2');
    const all = JSON.stringify({ m: e.message, h: e.hint, c: String((e.cause as Error)?.message) });
    assert.ok(!all.includes('wrong-secret-123') && !all.includes(PASSWORD));
    // Same through DATABASE_URL.
    const url = `postgres://postgres:wrong-secret-456@127.0.0.1:${cluster.port}/app`;
    const e2 = await rejectsWith(openDatabase(makeEnv('staging', dir, { DATABASE_URL: url }), { persistHostKeys: true }), 'db_auth');
    assert.ok(!e2.message.includes('wrong-secret-456') && !(e2.hint ?? '').includes('wrong-secret-456'));
    assert.match(e2.hint ?? '', /DATABASE_URL in \.environments\/staging\/\.env:1/);
  });

  test('unknown database → db_unknown_database', async () => {
    const env = makeEnv('local', projectDir(), { POSTGRES_PORT: String(cluster.port), POSTGRES_DB: 'missing_db', POSTGRES_PASSWORD: PASSWORD });
    const e = await rejectsWith(openDatabase(env, { persistHostKeys: true }), 'db_unknown_database');
    assert.match(e.message, /database missing_db does not exist/);
    assert.match(e.hint ?? '', /POSTGRES_DB in \.environments\/local\/\.env:2/);
  });

  test('closed port → db_refused', async () => {
    const env = makeEnv('local', projectDir(), { POSTGRES_PORT: String(await freePort()) });
    const e = await rejectsWith(openDatabase(env, { persistHostKeys: true }), 'db_refused');
    assert.match(e.message, /^cannot connect to local database postgres@127\.0\.0\.1:\d+\/postgres: connection refused/);
  });

  test('unknown host → db_unreachable', async () => {
    const env = makeEnv('staging', projectDir(), { POSTGRES_HOST: 'nonexistent.invalid' });
    const e = await rejectsWith(openDatabase(env, { persistHostKeys: true }), 'db_unreachable');
    assert.match(e.message, /host nonexistent\.invalid not found/);
    assert.match(e.hint ?? '', /POSTGRES_HOST in \.environments\/staging\/\.env:1/);
  });

  test('a server that never answers → db_timeout', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const env = makeEnv('local', projectDir(), { POSTGRES_PORT: String(port) });
      const t0 = Date.now();
      await rejectsWith(openDatabase(env, { persistHostKeys: true, connectTimeoutMs: 300 }), 'db_timeout');
      assert.ok(Date.now() - t0 < 3000);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });
});

describe('SSH tunnel (real sshd)', { skip: needs('sshd') }, () => {
  const sshEnv = (dir: string, server: Partial<ServerConfig> = {}, vars: Record<string, string> = {}) =>
    makeEnv('staging', dir, { POSTGRES_HOST: 'postgres', POSTGRES_PORT: String(cluster.port), POSTGRES_DB: 'app', POSTGRES_PASSWORD: PASSWORD, ...vars }, {
      host: sshd.host,
      port: sshd.port,
      user: sshd.user,
      key: sshd.clientKey,
      ...server,
    });

  test('queries through the tunnel, several clients; TOFU pins the host key once', async () => {
    const dir = projectDir();
    const env = sshEnv(dir);
    const db = await openDatabase(env, { persistHostKeys: true });
    let clients;
    try {
      assert.equal(db.label, `postgres@127.0.0.1:${cluster.port}/app via ssh ${sshd.user}@127.0.0.1:${sshd.port}`);
      clients = await Promise.all([db.connect(), db.connect(), db.connect()]);
      const rows = await Promise.all(clients.map((c, i) => c.query<{ n: number; i: number }>('SELECT count(*)::int AS n, $1::int AS i FROM t', [i])));
      assert.deepEqual(rows.map((r) => r.rows[0]), [{ n: 3, i: 0 }, { n: 3, i: 1 }, { n: 3, i: 2 }]);
      // A bigger transfer through one channel (flow control).
      const big = await clients[0]!.query<{ s: string }>(`SELECT string_agg(md5(g::text), '') AS s FROM generate_series(1, 50000) g`);
      assert.equal(big.rows[0]!.s.length, 50000 * 32);
      await clients[1]!.end();
    } finally {
      await db.close();
    }
    const kh = readFileSync(knownHostsPath(dir), 'utf8');
    const [type, key] = sshd.hostPublicKey().split(/\s+/);
    const lines = kh.split('\n').filter((l) => l && !l.startsWith('#'));
    assert.deepEqual(lines, [`[127.0.0.1]:${sshd.port} ${type} ${key}`]);
    // Second run: key known, nothing added.
    const db2 = await openDatabase(env, { persistHostKeys: true });
    await db2.close();
    assert.equal(readFileSync(knownHostsPath(dir), 'utf8'), kh);
  });

  test('persistHostKeys=false writes nothing (not even .nself/)', async () => {
    const dir = projectDir();
    const db = await openDatabase(sshEnv(dir), { persistHostKeys: false });
    try {
      const c = await db.connect();
      assert.equal((await c.query('SELECT 1 AS x')).rows[0].x, 1);
    } finally {
      await db.close();
    }
    assert.equal(existsSync(join(dir, '.nself')), false);
  });

  test('a different pinned key → ssh_host_key_changed', async () => {
    const dir = projectDir();
    mkdirSync(join(dir, '.nself'));
    const other = join(dir, 'other');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other], { stdio: 'ignore' });
    const [type, key] = readFileSync(other + '.pub', 'utf8').trim().split(/\s+/);
    writeFileSync(knownHostsPath(dir), `# pinned\n[127.0.0.1]:${sshd.port} ${type} ${key}\n`);
    const e = await rejectsWith(openDatabase(sshEnv(dir), { persistHostKeys: true }), 'ssh_host_key_changed');
    assert.match(e.message, /host key of staging .* has changed/);
    assert.match(e.hint ?? '', /remove line 2 of \.nself\/known_hosts/);
    assert.match(e.hint ?? '', /ssh-keygen -R/);
  });

  test('wrong key → ssh_auth; missing key file → ssh_key_unreadable', async () => {
    const e = await rejectsWith(openDatabase(sshEnv(projectDir(), { key: sshd.wrongKey }), { persistHostKeys: false }), 'ssh_auth');
    assert.match(e.message, /SSH authentication to staging .* failed/);
    const dir = projectDir();
    const e2 = await rejectsWith(openDatabase(sshEnv(dir, { key: 'keys/missing' }), { persistHostKeys: true }), 'ssh_key_unreadable');
    assert.ok(e2.message.includes(join(dir, 'keys/missing')));
    writeFileSync(join(dir, 'garbage'), 'not a key\n');
    await rejectsWith(openDatabase(sshEnv(dir, { key: 'garbage' }), { persistHostKeys: true }), 'ssh_key_unreadable');
    assert.equal(existsSync(join(dir, '.nself')), false);
  });

  test('nothing listening on the SSH port → ssh_unreachable; Postgres port closed on the server → db_refused', async () => {
    await rejectsWith(openDatabase(sshEnv(projectDir(), { port: await freePort() }), { persistHostKeys: false }), 'ssh_unreachable');
    await rejectsWith(openDatabase(sshEnv(projectDir(), { host: 'nonexistent.invalid' }), { persistHostKeys: false }), 'ssh_unreachable');
    const e = await rejectsWith(openDatabase(sshEnv(projectDir(), {}, { POSTGRES_PORT: String(await freePort()) }), { persistHostKeys: false }), 'db_refused');
    assert.match(e.message, /via ssh/);
    const e1 = await rejectsWith(openDatabase(sshEnv(projectDir(), {}, { POSTGRES_HOST: 'nonexistent.invalid' }), { persistHostKeys: false }), 'db_unreachable');
    assert.match(e1.message, /could not open a connection to nonexistent\.invalid:\d+/);
    const e2 = await rejectsWith(openDatabase(sshEnv(projectDir(), {}, { POSTGRES_PASSWORD: 'bad-pw-xyz' }), { persistHostKeys: false }), 'db_auth');
    assert.ok(!e2.message.includes('bad-pw-xyz'));
  });

  test('ssh-agent authentication (SSH_AUTH_SOCK)', async (t) => {
    const dir = projectDir();
    const sock = join(dir, 'agent.sock');
    try {
      execFileSync('sh', ['-c', 'command -v ssh-agent && command -v ssh-add'], { stdio: 'ignore' });
    } catch {
      t.skip('ssh-agent not installed (package openssh-client)');
      return;
    }
    const agent: ChildProcess = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    const saved = process.env.SSH_AUTH_SOCK;
    try {
      for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 20));
      execFileSync('ssh-add', [sshd.clientKey], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' });
      process.env.SSH_AUTH_SOCK = sock;
      const env = sshEnv(dir, { key: undefined });
      delete env.server!.key;
      const db = await openDatabase(env, { persistHostKeys: false });
      try {
        const c = await db.connect();
        assert.equal((await c.query('SELECT count(*)::int AS n FROM t')).rows[0].n, 3);
      } finally {
        await db.close();
      }
    } finally {
      if (saved === undefined) delete process.env.SSH_AUTH_SOCK;
      else process.env.SSH_AUTH_SOCK = saved;
      agent.kill();
    }
  });

  test('the server changes its host key → refused; a dry run trusts a first-seen key only for this run', async () => {
    const pinned = projectDir();
    const dry = projectDir();
    await (await openDatabase(sshEnv(pinned), { persistHostKeys: true })).close();
    await (await openDatabase(sshEnv(dry), { persistHostKeys: false })).close();
    await sshd.restart({ newHostKey: true });
    const e = await rejectsWith(openDatabase(sshEnv(pinned), { persistHostKeys: true }), 'ssh_host_key_changed');
    assert.match(e.hint ?? '', /remove line 2 of \.nself\/known_hosts/);
    // The key trusted in memory by the dry run earlier in this process is also enforced.
    await rejectsWith(openDatabase(sshEnv(dry), { persistHostKeys: false }), 'ssh_host_key_changed');
    assert.equal(existsSync(join(dry, '.nself')), false);
  });
});

describe('advisory lock', () => {
  let db: DbHandle;
  before(async () => {
    db = await openDatabase(makeEnv('staging', projectDir(), { DATABASE_URL: cluster.url('app') }), { persistHostKeys: false });
  });
  after(async () => {
    await db?.close();
  });

  test('the key is stable and the same in SQL and JS', async () => {
    const c = await db.connect();
    try {
      await c.query('BEGIN');
      await lockTarget(c, 'staging');
      const r = await c.query<{ k: string }>(
        `SELECT ((classid::text::bigint << 32) | objid::text::bigint)::text AS k FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()`,
      );
      assert.equal(r.rows.length, 1);
      assert.equal(BigInt.asIntN(64, BigInt(r.rows[0]!.k)).toString(), advisoryLockKey('app'));
      await c.query('COMMIT');
      assert.equal(advisoryLockKey('app'), advisoryLockKey('app'));
      assert.notEqual(advisoryLockKey('app'), advisoryLockKey('app2'));
    } finally {
      await c.end();
    }
  });

  test('held by one client → the second fails at once with target_locked', async () => {
    const [a, b] = await Promise.all([db.connect(), db.connect()]);
    try {
      await a.query('BEGIN');
      await lockTarget(a, 'staging');
      await b.query('BEGIN');
      const t0 = Date.now();
      const e = await rejectsWith(lockTarget(b, 'staging'), 'target_locked');
      assert.ok(Date.now() - t0 < 2000);
      assert.match(e.message, /^another nself migrate is already changing staging/);
      assert.match(e.message, /nself-migrate/); // names the holder
      await b.query('ROLLBACK');
      // Session lock conflicts too.
      await rejectsWith(lockTargetSession(b, 'staging'), 'target_locked');
      await a.query('COMMIT'); // releases
      await b.query('BEGIN');
      await lockTarget(b, 'staging');
      await b.query('COMMIT');
      // Session lock held by a → b's transaction lock refused; released by unlockTargetSession.
      await lockTargetSession(a, 'staging');
      await b.query('BEGIN');
      await rejectsWith(lockTarget(b, 'staging'), 'target_locked');
      await b.query('ROLLBACK');
      await unlockTargetSession(a, 'staging');
      await b.query('BEGIN');
      await lockTarget(b, 'staging');
      await b.query('COMMIT');
      // Outside a transaction lockTarget refuses (the lock would vanish at once).
      await assert.rejects(lockTarget(b, 'staging'), (e: unknown) => e instanceof MigrateError && e.code === 'internal');
    } finally {
      await Promise.allSettled([a.end(), b.end()]);
    }
  });
});
