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
import { globMatch, knownHostKeys, readSshConfig } from '../src/env/openssh.ts';
import { runBin, makeProject } from './support/cli.ts';
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

/** staging through the test sshd (server.json names host, port, user and key). */
const sshEnv = (dir: string, server: Partial<ServerConfig> = {}, vars: Record<string, string> = {}) =>
  makeEnv('staging', dir, { POSTGRES_HOST: 'postgres', POSTGRES_PORT: String(cluster.port), POSTGRES_DB: 'app', POSTGRES_PASSWORD: PASSWORD, ...vars }, {
    host: sshd.host,
    port: sshd.port,
    user: sshd.user,
    key: sshd.clientKey,
    ...server,
  });

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

// Every test runs with a HOME of its own: the user's ~/.ssh/config and ~/.ssh/known_hosts never take part.
const savedHome = process.env.HOME;
const savedAgent = process.env.SSH_AUTH_SOCK;
/** A fresh empty HOME (with .ssh/) made the current one. */
function freshHome(): string {
  const h = mkdtempSync(join(tmpdir(), 'nself-home-'));
  tmpDirs.push(h);
  mkdirSync(join(h, '.ssh'), { mode: 0o700 });
  process.env.HOME = h;
  return h;
}

before(async () => {
  freshHome();
  delete process.env.SSH_AUTH_SOCK;
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
  if (savedHome === undefined) delete process.env.HOME;
  else process.env.HOME = savedHome;
  if (savedAgent !== undefined) process.env.SSH_AUTH_SOCK = savedAgent;
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

describe('OpenSSH files: ~/.ssh/config and ~/.ssh/known_hosts (temp HOME)', () => {
  /** `SHA256:…` of the test server's host key as OpenSSH's ssh-keygen -l prints it. */
  const opensshFingerprint = (): string => {
    const f = join(projectDir(), 'host.pub');
    writeFileSync(f, sshd.hostPublicKey() + '\n');
    const out = execFileSync('ssh-keygen', ['-l', '-f', f], { encoding: 'utf8' }); // "256 SHA256:… test-host (ED25519)"
    return /(SHA256:\S+)/.exec(out)![1]!;
  };
  const hostLine = (hosts: string) => {
    const [type, key] = sshd.hostPublicKey().split(/\s+/);
    return `${hosts} ${type} ${key}`;
  };
  /** An environment whose server.json names only `host` (and what `server` adds): the rest comes from ~/.ssh/config. */
  const aliasEnv = (dir: string, server: Partial<ServerConfig> = {}) =>
    makeEnv('staging', dir, { POSTGRES_HOST: '127.0.0.1', POSTGRES_PORT: String(cluster.port), POSTGRES_DB: 'app', POSTGRES_PASSWORD: PASSWORD }, { host: 'stg-db', ...server });

  test('glob and Host patterns as ssh reads them (cross-checked with ssh -G)', () => {
    assert.ok(globMatch('*.example.com', 'db.EXAMPLE.com', true) && !globMatch('*.example.com', 'db.EXAMPLE.com'));
    assert.ok(globMatch('db?', 'db1') && !globMatch('db?', 'db12'));
    assert.ok(globMatch('[10.0.0.*]:2222', '[10.0.0.7]:2222') && !globMatch('[10.0.0.*]:2222', '[10.0.0.7]:22'));
    const home = freshHome();
    const cfg = join(home, '.ssh', 'config');
    writeFileSync(
      cfg,
      [
        '# comment',
        'Host stg-* !stg-skip',
        '  HostName 10.1.2.3',
        '  Port 2200',
        'Host stg-db',
        '  HostName 10.9.9.9          # not used: the first value wins',
        '  User deploy',
        'Host *.internal',
        '  HostName %h.example.net',
        'Host *',
        '  User=fallback',
        '  Port 22',
        '',
      ].join('\n'),
    );
    const cases: [string, { hostName?: string; user?: string; port?: number }][] = [
      ['stg-db', { hostName: '10.1.2.3', user: 'deploy', port: 2200 }],
      ['stg-other', { hostName: '10.1.2.3', user: 'fallback', port: 2200 }],
      ['STG-other', { user: 'fallback', port: 22 }], // Host patterns are case-sensitive in ssh
      ['stg-skip', { user: 'fallback', port: 22 }],
      ['a.internal', { hostName: 'a.internal.example.net', user: 'fallback', port: 22 }],
    ];
    for (const [host, want] of cases) {
      const got = readSshConfig(host);
      assert.deepEqual({ hostName: got.hostName, user: got.user, port: got.port }, { hostName: undefined, ...want }, host);
      // OpenSSH itself resolves the same file to the same values
      const g = execFileSync('ssh', ['-G', '-F', cfg, host], { encoding: 'utf8' });
      const field = (k: string) => new RegExp(`^${k} (.*)$`, 'm').exec(g)?.[1];
      assert.equal(field('hostname'), want.hostName ?? host.toLowerCase(), `ssh -G ${host} hostname`);
      assert.equal(field('user'), want.user, `ssh -G ${host} user`);
      assert.equal(field('port'), String(want.port), `ssh -G ${host} port`);
    }
  });

  test('IdentityFile (~, tokens, several), Include, Match all, quoted values; a bad Port names file:line', () => {
    const home = freshHome();
    mkdirSync(join(home, '.ssh', 'conf.d'));
    writeFileSync(join(home, '.ssh', 'conf.d', '10-stg'), 'Host stg-db\n  IdentityFile ~/.ssh/keys/%h_%r\n');
    writeFileSync(join(home, '.ssh', 'conf.d', '.hidden'), 'Host *\n  User hidden\n');
    writeFileSync(
      join(home, '.ssh', 'config'),
      'Include conf.d/*\nHost stg-db\n  User "deploy"\n  IdentityFile "%d/.ssh/second key"\n  IdentityFile none\nMatch host stg-db\n  Port 1111\nMatch all\n  Port 2222\n',
    );
    const got = readSshConfig('stg-db');
    assert.deepEqual(got.identityFiles, [join(home, '.ssh/keys/stg-db_deploy'), join(home, '.ssh/second key')]);
    assert.equal(got.user, 'deploy');
    assert.equal(got.port, 2222, 'Match other than "all" is not evaluated');
    assert.equal(got.applied, true);
    assert.equal(readSshConfig('other').applied, true); // Match all
    writeFileSync(join(home, '.ssh', 'config'), 'Host x\n  Port twenty\n');
    assert.throws(() => readSshConfig('x'), (e: unknown) => e instanceof MigrateError && e.code === 'ssh_config_invalid' && e.message.startsWith(`${join(home, '.ssh', 'config')}:2: Port "twenty"`));
    rmSync(join(home, '.ssh', 'config'));
    assert.deepEqual(readSshConfig('x'), { identityFiles: [], file: join(home, '.ssh', 'config'), applied: false });
  });

  test('known_hosts entries: plain, [host]:port, wildcards, negation, hashed by ssh-keygen -H, @revoked, @cert-authority', () => {
    const home = freshHome();
    const kh = join(home, '.ssh', 'known_hosts');
    writeFileSync(
      kh,
      [
        'db.example.com,10.0.0.5 ssh-ed25519 AAAAplain',
        '[db.example.com]:2222 ssh-ed25519 AAAAport',
        '*.example.com,!evil.example.com ecdsa-sha2-nistp256 AAAAwild',
        '@revoked old.example.net ssh-rsa AAAArevoked',
        '@cert-authority *.example.com ssh-ed25519 AAAAca',
        '[hashed.example.org]:2200 ssh-ed25519 AAAAhashed',
        '',
      ].join('\n'),
    );
    execFileSync('ssh-keygen', ['-H', '-f', kh], { stdio: 'ignore' }); // OpenSSH hashes every name
    assert.match(readFileSync(kh, 'utf8'), /^\|1\|/m);
    const keys = (host: string, port: number) => knownHostKeys(kh, host, port).map((k) => k.key);
    // after hashing, wildcard lines are kept as they were (ssh-keygen cannot hash patterns)
    assert.deepEqual(keys('db.example.com', 22), ['AAAAplain', 'AAAAwild']);
    assert.deepEqual(keys('10.0.0.5', 22), ['AAAAplain']);
    assert.deepEqual(keys('db.example.com', 2222), ['AAAAport']);
    assert.deepEqual(keys('evil.example.com', 22), []);
    assert.deepEqual(keys('HASHED.example.org', 2200), ['AAAAhashed']);
    assert.deepEqual(keys('hashed.example.org', 22), []);
    const revoked = knownHostKeys(kh, 'old.example.net', 22);
    assert.deepEqual(revoked.map((k) => [k.key, k.revoked]), [['AAAArevoked', true]]);
  });

  test('connectionSettings: a Host alias of ~/.ssh/config; server.json fields win', () => {
    const home = freshHome();
    writeFileSync(join(home, '.ssh', 'id_stg'), 'x');
    writeFileSync(join(home, '.ssh', 'config'), `Host stg-*\n  HostName 10.1.2.3\n  Port 2200\n  User deploy\n  IdentityFile ~/.ssh/id_missing\n  IdentityFile ~/.ssh/id_stg\n`);
    const dir = projectDir();
    const s = connectionSettings(aliasEnv(dir)).ssh!;
    assert.deepEqual(s, { host: '10.1.2.3', alias: 'stg-db', port: 2200, user: 'deploy', serverFile: join(dir, '.environments/staging/server.json'), sshConfig: join(home, '.ssh', 'config'), identities: [{ file: join(home, '.ssh/id_stg'), from: '~/.ssh/config' }] });
    assert.equal(describeConnection(connectionSettings(aliasEnv(dir))), `postgres@127.0.0.1:${cluster.port}/app via ssh deploy@10.1.2.3:2200 (Host stg-db)`);
    const t = connectionSettings(aliasEnv(dir, { port: 22, user: 'root', key: 'k' })).ssh!;
    assert.deepEqual([t.host, t.port, t.user, t.key, t.identities], ['10.1.2.3', 22, 'root', join(dir, 'k'), undefined]);
  });

  test('real sshd through a Host alias (HostName, Port, User, IdentityFile); the new key is pinned and its fingerprint told', { skip: needs('sshd') }, async () => {
    const home = freshHome();
    execFileSync('cp', [sshd.clientKey, join(home, '.ssh', 'id_test')]);
    writeFileSync(join(home, '.ssh', 'config'), `Host stg-*\n  HostName ${sshd.host}\n  Port ${sshd.port}\n  User ${sshd.user}\n  IdentityFile ~/.ssh/id_test\n`);
    const dir = projectDir();
    const notes: string[] = [];
    const db = await openDatabase(aliasEnv(dir), { persistHostKeys: true, notice: (m) => notes.push(m) });
    try {
      assert.equal(db.label, `postgres@127.0.0.1:${cluster.port}/app via ssh ${sshd.user}@127.0.0.1:${sshd.port} (Host stg-db)`);
      const c = await db.connect();
      assert.equal((await c.query('SELECT count(*)::int AS n FROM t')).rows[0].n, 3);
    } finally {
      await db.close();
    }
    assert.deepEqual(notes, [
      `trusted the SSH host key of staging (${sshd.user}@127.0.0.1:${sshd.port} (Host stg-db)) on first use: ED25519 key fingerprint is ${opensshFingerprint()}; recorded in .nself/known_hosts`,
    ]);
    // pinned under the real host name, as OpenSSH would
    assert.deepEqual(readFileSync(knownHostsPath(dir), 'utf8').split('\n').filter((l) => l && !l.startsWith('#')), [hostLine(`[127.0.0.1]:${sshd.port}`)]);
    // known now: no second note
    const again: string[] = [];
    await (await openDatabase(aliasEnv(dir), { persistHostKeys: true, notice: (m) => again.push(m) })).close();
    assert.deepEqual(again, []);
    // a dry run says the key is trusted for this run only
    const dry: string[] = [];
    await (await openDatabase(aliasEnv(projectDir()), { persistHostKeys: false, notice: (m) => dry.push(m) })).close();
    assert.match(dry[0] ?? '', /on first use: ED25519 key fingerprint is SHA256:\S+; for this run only/);
  });

  test('a key in ~/.ssh/known_hosts (hashed or [host]:port) is accepted silently; nothing is written to .nself', { skip: needs('sshd') }, async () => {
    for (const hash of [false, true]) {
      const home = freshHome();
      const kh = join(home, '.ssh', 'known_hosts');
      writeFileSync(kh, `other.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherOtherOtherOtherOtherOtherOtherOtherOth\n${hostLine(`[127.0.0.1]:${sshd.port}`)}\n`);
      if (hash) execFileSync('ssh-keygen', ['-H', '-f', kh], { stdio: 'ignore' });
      const dir = projectDir();
      const notes: string[] = [];
      await (await openDatabase(sshEnv(dir), { persistHostKeys: true, notice: (m) => notes.push(m) })).close();
      assert.deepEqual(notes, [], `hashed: ${hash}`);
      assert.equal(existsSync(join(dir, '.nself')), false);
    }
  });

  test('a different key for the host in ~/.ssh/known_hosts → ssh_host_key_changed; @revoked → ssh_host_key_revoked', { skip: needs('sshd') }, async () => {
    const home = freshHome();
    const other = join(home, 'other');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other], { stdio: 'ignore' });
    const [type, key] = readFileSync(other + '.pub', 'utf8').trim().split(/\s+/);
    writeFileSync(join(home, '.ssh', 'known_hosts'), `# mine\n[127.0.0.*]:${sshd.port} ${type} ${key}\n`);
    const dir = projectDir();
    const e = await rejectsWith(openDatabase(sshEnv(dir), { persistHostKeys: true }), 'ssh_host_key_changed');
    assert.match(e.message, /~\/\.ssh\/known_hosts:2 has a different key/);
    assert.match(e.hint ?? '', new RegExp(`remove line 2 of ~/\\.ssh/known_hosts \\(ssh-keygen -R '\\[127\\.0\\.0\\.1\\]:${sshd.port}'\\)`));
    assert.equal(existsSync(join(dir, '.nself')), false);
    writeFileSync(join(home, '.ssh', 'known_hosts'), `@revoked ${hostLine(`[127.0.0.1]:${sshd.port}`)}\n`);
    const r = await rejectsWith(openDatabase(sshEnv(dir), { persistHostKeys: true }), 'ssh_host_key_revoked');
    assert.match(r.message, /is marked @revoked in ~\/\.ssh\/known_hosts:1/);
  });

  test('an IdentityFile protected by a passphrase: refused without an agent, passed over when the agent has a key', { skip: needs('sshd') }, async (t) => {
    const home = freshHome();
    const locked = join(home, '.ssh', 'id_locked');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'pass phrase', '-f', locked], { stdio: 'ignore' });
    writeFileSync(join(home, '.ssh', 'config'), `Host stg-db\n  HostName ${sshd.host}\n  Port ${sshd.port}\n  User ${sshd.user}\n  IdentityFile ${locked}\n`);
    const e = await rejectsWith(openDatabase(aliasEnv(projectDir()), { persistHostKeys: false }), 'ssh_key_unreadable');
    assert.match(e.message, /protected by a passphrase/);
    assert.match(e.hint ?? '', /ssh-agent/);
    try {
      execFileSync('sh', ['-c', 'command -v ssh-agent && command -v ssh-add'], { stdio: 'ignore' });
    } catch {
      t.skip('ssh-agent not installed (package openssh-client)');
      return;
    }
    const sock = join(home, 'agent.sock');
    const agent: ChildProcess = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 20));
      execFileSync('ssh-add', [sshd.clientKey], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' });
      process.env.SSH_AUTH_SOCK = sock;
      const db = await openDatabase(aliasEnv(projectDir()), { persistHostKeys: false });
      await db.close();
    } finally {
      delete process.env.SSH_AUTH_SOCK;
      agent.kill();
    }
  });

  test('the CLI prints the fingerprint of a first-seen host key as a note (OpenSSH\'s SHA256 form)', { skip: needs('sshd') }, async () => {
    const home = freshHome();
    const p = makeProject({
      '.env.local': `DATABASE_URL=${cluster.url('app')}\n`,
      '.env.staging': `POSTGRES_HOST=127.0.0.1\nPOSTGRES_PORT=${cluster.port}\nPOSTGRES_DB=app\nPOSTGRES_PASSWORD=${PASSWORD}\n`,
      '.environments/staging/server.json': JSON.stringify({ host: 'stg-db' }),
    });
    tmpDirs.push(p.dir);
    execFileSync('cp', [sshd.clientKey, join(home, '.ssh', 'id_test')]);
    writeFileSync(join(home, '.ssh', 'config'), `Host stg-db\n  HostName ${sshd.host}\n  Port ${sshd.port}\n  User ${sshd.user}\n  IdentityFile ~/.ssh/id_test\n`);
    const r = await runBin(['migrate', 'diff', 'local', 'staging', '--schema-only'], { cwd: p.dir, env: { HOME: home } });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(
      r.stderr.includes(`note: trusted the SSH host key of staging (${sshd.user}@127.0.0.1:${sshd.port} (Host stg-db)) on first use: ED25519 key fingerprint is ${opensshFingerprint()}; for this run only`),
      r.stderr,
    );
    assert.equal(existsSync(join(p.dir, '.nself')), false);
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
