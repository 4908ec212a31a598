/**
 * Errors by cause (error-cause.ts): real file-system and PostgreSQL failures are named for what they are —
 * never "this is a bug" — in the classifier, wrapped by the data engine, and through the CLI.
 * As root, permission bits are not enforced: a real EACCES comes from running the CLI as `nobody`; a real ENOSPC
 * and EROFS from a small tmpfs (skipped, with the reason, where mounting is not permitted).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { asMigrateError, MigrateError, wrapCause } from '../src/errors.ts';
import { classifyError } from '../src/error-cause.ts';
import { wrapError } from '../src/data/session.ts';
import { writeFileAtomic } from '../src/util/fs.ts';
import { startCluster, type TestCluster } from './support/pg.ts';
import { BIN, makeProject, runBin, type Project, type RunResult } from './support/cli.ts';
import { unsearchableAbove } from './support/prereq.ts';

const BUG = /bug/;
const cleanups: Array<() => void> = [];
after(() => {
  for (const f of cleanups.reverse()) f();
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'nself-err-'));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A tmpfs of `kb` KiB (undefined when this sandbox does not allow mounting); unmounted after the file. */
function tmpfs(kb: number): string | undefined {
  const d = mkdtempSync(join(tmpdir(), 'nself-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${kb}k,mode=0755`, 'tmpfs', d], { stdio: 'ignore' });
  } catch {
    rmSync(d, { recursive: true, force: true });
    return undefined;
  }
  cleanups.push(() => {
    try {
      execFileSync('umount', ['-l', d], { stdio: 'ignore' });
    } catch {
      /* already unmounted */
    }
    rmSync(d, { recursive: true, force: true });
  });
  return d;
}
const canMount = (() => {
  const d = tmpfs(4);
  return d !== undefined;
})();

/** Fill a file system with 4 KiB files until it is full; then free `pages` of them. */
function fill(dir: string, pages = 0): void {
  const filler = join(dir, 'filler');
  mkdirSync(filler);
  let n = 0;
  for (;;) {
    try {
      writeFileSync(join(filler, String(n)), Buffer.alloc(4096));
      n++;
    } catch (e) {
      assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
      rmSync(join(filler, String(n)), { force: true });
      break;
    }
  }
  for (let i = 0; i < pages; i++) rmSync(join(filler, String(--n)));
}

const caught = async (p: Promise<unknown>): Promise<unknown> => p.then(() => assert.fail('expected a failure'), (e: unknown) => e);

describe('classifier: real file-system errors', () => {
  it('EISDIR (reading a folder) → is_a_directory, naming it when the caller knows the path; found through a wrapper too', async () => {
    const d = tempDir();
    const err = await caught(readFile(d)); // the failing read(2) names no path
    assert.equal(classifyError(err)!.code, 'is_a_directory');
    const c = classifyError(err, { path: d })!;
    assert.equal(c.code, 'is_a_directory');
    assert.equal(c.message, `cannot read ${d}: it is a folder, not a file`);
    assert.match(c.hint, new RegExp(`move or rename the folder ${d}`));
    const wrapped = asMigrateError(new Error('loading the environment failed', { cause: new Error('reading', { cause: err }) }));
    assert.equal(wrapped.code, 'is_a_directory');
    assert.doesNotMatch(wrapped.hint!, BUG);
  });

  it('ENOTDIR (mkdir under a file) → not_a_directory naming the file in the way', async () => {
    const d = tempDir();
    writeFileSync(join(d, '.nself'), 'I am a file');
    const err = await caught(mkdir(join(d, '.nself', 'migrations', 'x'), { recursive: true }));
    const m = asMigrateError(err);
    assert.equal(m.code, 'not_a_directory');
    assert.match(m.message, new RegExp(`^cannot create the folder ${d}/\\.nself/migrations/x: ${d}/\\.nself is a file, not a folder$`));
    assert.equal(m.hint, `move or rename the file ${d}/.nself: a folder is needed there`);
  });

  it('ENOENT from a file operation → file_missing; an unknown error stays internal ("bug")', async () => {
    const d = tempDir();
    const m = asMigrateError(await caught(readFile(join(d, 'gone.json'))));
    assert.equal(m.code, 'file_missing');
    assert.match(m.message, /gone\.json: no such file or folder$/);
    const odd = asMigrateError(new TypeError('x is not a function'));
    assert.equal(odd.code, 'internal');
    assert.match(odd.hint!, BUG);
  });

  it('the data engine wrapper keeps the cause: code and hint of the cause, message naming what it was doing', async () => {
    const d = tempDir();
    writeFileSync(join(d, 'f'), '');
    const err = await caught(mkdir(join(d, 'f', 'g')));
    const w = wrapError('data_backup_failed', 'backing up the rows of public.t', err, 'generic hint');
    assert.equal(w.code, 'not_a_directory');
    assert.equal(w.message, `backing up the rows of public.t: cannot create the folder ${d}/f/g: ${d}/f is a file, not a folder`);
    assert.notEqual(w.hint, 'generic hint');
    const plain = wrapCause('data_backup_failed', 'backing up', new Error('something else'), 'generic hint');
    assert.deepEqual([plain.code, plain.message, plain.hint], ['data_backup_failed', 'backing up: something else', 'generic hint']);
  });

  it(canMount ? 'ENOSPC on a full tmpfs → disk_full naming the file written' : 'ENOSPC → disk_full (synthetic errno error: mounting a tmpfs is not permitted here)', async () => {
    let err: unknown;
    let file: string;
    if (canMount) {
      const d = tmpfs(64)!;
      fill(d);
      file = join(d, 'out.txt');
      err = await caught(writeFileAtomic(file, 'x'.repeat(5000), 0o644));
    } else {
      file = join(tempDir(), 'out.txt');
      err = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write', path: file });
    }
    const m = asMigrateError(err);
    assert.equal(m.code, 'disk_full');
    assert.equal(m.message, `cannot write ${file}: no space left on the disk`);
    assert.match(m.hint!, /^free space on the disk holding /);
    assert.doesNotMatch(m.hint!, BUG);
  });

  it('EROFS on a read-only tmpfs → read_only', { skip: canMount ? false : 'mounting a tmpfs is not permitted here' }, async () => {
    const d = tmpfs(64)!;
    execFileSync('mount', ['-o', 'remount,ro', d]);
    const m = asMigrateError(await caught(writeFile(join(d, 'x'), 'y')));
    assert.equal(m.code, 'read_only');
    assert.equal(m.message, `cannot open ${d}/x: the file system is read-only`);
  });
});

describe('classifier: real PostgreSQL failures', () => {
  let cluster: TestCluster;
  before(async () => {
    cluster = await startCluster();
  });
  after(async () => {
    await cluster?.stop();
  });
  const client = async (c: TestCluster = cluster): Promise<pg.Client> => {
    const x = new pg.Client({ connectionString: c.url() });
    x.on('error', () => {}); // as src/pg/connect.ts does
    await x.connect();
    return x;
  };
  const pid = async (x: pg.Client): Promise<number> => (await x.query('SELECT pg_backend_pid() AS p')).rows[0].p;

  it('pg_terminate_backend of a busy backend: 57P01 → connection_lost "terminated by an administrator"; the next query too', async () => {
    const x = await client();
    const backend = await pid(x);
    const q = caught(x.query('SELECT pg_sleep(10)'));
    await new Promise((r) => setTimeout(r, 200));
    await cluster.query('SELECT pg_terminate_backend($1)', [backend]);
    const first = asMigrateError(await q);
    assert.equal(first.code, 'connection_lost');
    assert.match(first.message, /terminated by an administrator/);
    assert.match(first.hint!, /PostgreSQL rolls back a transaction left open by a lost connection/);
    const next = asMigrateError(await caught(x.query('SELECT 1')));
    assert.equal(next.code, 'connection_lost');
    assert.match(next.message, /Connection terminated unexpectedly|not queryable/);
    await x.end().catch(() => {});
  });

  it('an idle backend terminated: the next query → connection_lost; wrapped by the data engine too', async () => {
    const x = await client();
    await cluster.query('SELECT pg_terminate_backend($1)', [await pid(x)]);
    await new Promise((r) => setTimeout(r, 200));
    const err = await caught(x.query('SELECT 1'));
    const w = wrapError('data_checksum_failed', 'reading public.t in the target', err);
    assert.equal(w.code, 'connection_lost');
    assert.match(w.message, /^reading public\.t in the target: the connection to the database server ended unexpectedly/);
    await x.end().catch(() => {});
  });

  it('statement_timeout → statement_timeout; lock_timeout → lock_timeout naming --lock-timeout', async () => {
    const x = await client();
    const y = await client();
    try {
      await x.query(`SET statement_timeout = '50ms'`);
      const st = asMigrateError(await caught(x.query('SELECT pg_sleep(2)')));
      assert.equal(st.code, 'statement_timeout');
      await x.query(`SET statement_timeout = 0`);
      await x.query('CREATE TABLE IF NOT EXISTS lk (x int)');
      await y.query('BEGIN');
      await y.query('LOCK lk');
      await x.query('BEGIN');
      await x.query(`SET LOCAL lock_timeout = '50ms'`);
      const lk = asMigrateError(await caught(x.query('LOCK lk')));
      assert.equal(lk.code, 'lock_timeout');
      assert.match(lk.hint!, /--lock-timeout/);
      assert.match(lk.hint!, /blocker/);
      await x.query('ROLLBACK');
      await y.query('ROLLBACK');
    } finally {
      await Promise.allSettled([x.end(), y.end()]);
    }
  });

  it('the server runs out of disk space (a tablespace on a full tmpfs) → server_disk_full', { skip: canMount ? false : 'mounting a tmpfs is not permitted here' }, async () => {
    const d = tmpfs(256)!;
    const [uid, gid] = ['-u', '-g'].map((f) => Number(execFileSync('id', [f, 'postgres']).toString().trim()));
    chownSync(d, uid, gid);
    chmodSync(d, 0o700);
    await cluster.sql(`CREATE TABLESPACE small LOCATION '${d}'`);
    try {
      await cluster.sql(`CREATE TABLE big (x text) TABLESPACE small`);
      const m = asMigrateError(await caught(cluster.sql(`INSERT INTO big SELECT repeat('x', 1000) FROM generate_series(1, 10000)`)));
      assert.equal(m.code, 'server_disk_full');
      assert.match(m.message, /^the database server ran out of disk space \(could not extend file/);
      assert.match(m.hint!, /free disk space on the database server/);
    } finally {
      await cluster.sql(`DROP TABLE IF EXISTS big`);
      await cluster.sql(`DROP TABLESPACE small`);
    }
  });

  it('a crashed backend (SIGKILL) and a server stopped mid-query → connection_lost', async () => {
    const other = await startCluster();
    try {
      const x = await client(other);
      const backend = await pid(x);
      const q = caught(x.query('SELECT pg_sleep(10)'));
      await new Promise((r) => setTimeout(r, 200));
      process.kill(backend, 'SIGKILL');
      const crashed = asMigrateError(await q);
      assert.ok(['connection_lost', 'server_crashed'].includes(crashed.code), crashed.code);
      assert.doesNotMatch(crashed.hint!, BUG);
      // crash recovery: wait until it accepts connections again, then stop it while a query runs
      let y: pg.Client | undefined;
      for (let i = 0; i < 100 && !y; i++) y = await client(other).catch(() => new Promise<undefined>((r) => setTimeout(() => r(undefined), 100)));
      assert.ok(y, 'the server came back after the crash');
      const q2 = caught(y.query('SELECT pg_sleep(10)'));
      await new Promise((r) => setTimeout(r, 200));
      await other.stop();
      const stopped = asMigrateError(await q2);
      assert.equal(stopped.code, 'connection_lost');
      assert.match(stopped.message, /terminated by an administrator|ended unexpectedly/);
    } finally {
      await other.stop();
    }
  });
});

// ── through the CLI ─────────────────────────────────────────────────────────────────────────────

const LOCAL = 'A=1\nB=from local\n';
const STAGING = '# staging\nA=1\n';

function project(): Project {
  const p = makeProject({ '.env.local': LOCAL, '.env.staging': STAGING });
  cleanups.push(() => p.remove());
  return p;
}

/** The CLI as another user (root ignores permission bits). */
function runAs(uid: number, args: string[], cwd: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, uid, gid: uid, env: { PATH: process.env.PATH ?? '', NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** No checkpoint and no draft left behind. */
function noCheckpoint(p: Project): void {
  const d = join(p.dir, '.nself', 'migrations');
  assert.deepEqual(existsSync(d) ? readdirSync(d) : [], []);
}

describe('through the CLI: a failure is named by its cause and changes nothing', () => {
  it('.nself is a regular file → exit 1, not_a_directory naming .nself, env file unchanged', async () => {
    const p = project();
    writeFileSync(join(p.dir, '.nself'), 'not a folder');
    const r = await p.run(['migrate', 'local', 'staging', '--config-only', '--force']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^error: cannot create the folder \.nself: \.nself is a file, not a folder$/m);
    assert.match(r.stderr, /^hint: move or rename the file \.nself: a folder is needed there$/m);
    assert.doesNotMatch(r.stderr, BUG);
    assert.equal(p.read('.env.staging'), STAGING);
    assert.equal(readFileSync(join(p.dir, '.nself'), 'utf8'), 'not a folder');
    const j = await p.run(['migrate', 'local', 'staging', '--config-only', '--force', '--json']);
    assert.equal(j.code, 1);
    const report = JSON.parse(j.stdout);
    assert.equal(report.status, 'failed');
    assert.equal(report.error.code, 'not_a_directory');
    assert.equal(p.read('.env.staging'), STAGING);
  });

  const blocked = unsearchableAbove(BIN);
  const NOBODY = { skip: blocked ? `the user nobody cannot reach the checkout: ${blocked.dir} (mode ${blocked.mode.toString(8)}) is not searchable by others; chmod o+x ${blocked.dir}` : false };
  it('a project the user may not write to → exit 1, permission_denied (run as nobody)', NOBODY, async () => {
    const p = project();
    chmodSync(p.dir, 0o755);
    const r = await runAs(65534, ['migrate', 'local', 'staging', '--config-only', '--force'], p.dir);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^error: cannot create the folder \.nself: permission denied$/m);
    assert.match(r.stderr, new RegExp(`^hint: fix the permissions of ${p.dir} \\(ls -ld\\)`, 'm'));
    assert.equal(p.read('.env.staging'), STAGING);
    assert.equal(p.exists('.nself'), false);
  });

  it('a full disk before the checkpoint → exit 1, disk_full, nothing written', { skip: canMount ? false : 'mounting a tmpfs is not permitted here' }, async () => {
    const d = tmpfs(64)!;
    writeFileSync(join(d, '.env.local'), LOCAL);
    writeFileSync(join(d, '.env.staging'), STAGING);
    fill(d);
    const r = await runBin(['migrate', 'local', 'staging', '--config-only', '--force'], { cwd: d });
    assert.equal(r.code, 1, r.stderr);
    // the first file of the checkpoint draft that does not fit is named (its owner record, or the copy of .env.staging)
    // the first file of the checkpoint that does not fit is named (.nself/.gitignore on an empty project)
    assert.match(r.stderr, /^error: cannot (write|copy \.env\.staging to) \.nself\/[^:]+: no space left on the disk$/m);
    assert.match(r.stderr, /^hint: free space on the disk holding \.nself\S* \(df -h shows it\)/m);
    assert.equal(readFileSync(join(d, '.env.staging'), 'utf8'), STAGING);
    assert.deepEqual(existsSync(join(d, '.nself', 'migrations')) ? readdirSync(join(d, '.nself', 'migrations')) : [], []);
  });

  it('a disk that fills while the env file is written → exit 1, disk_full naming it; the file and no checkpoint left', { skip: canMount ? false : 'mounting a tmpfs is not permitted here' }, async () => {
    // A value of more than one page: the new .env.staging needs 2 pages. The free pages are raised one at a time
    // until the checkpoint fits: then exactly the env file does not.
    let d = '';
    let r: Awaited<ReturnType<typeof runBin>> | undefined;
    for (let pages = 4; pages <= 16 && !/✓ checkpoint/.test(r?.stderr ?? ''); pages++) {
      d = tmpfs(64)!;
      writeFileSync(join(d, '.env.local'), `${LOCAL}BIG=${'x'.repeat(5000)}\n`);
      writeFileSync(join(d, '.env.staging'), STAGING);
      fill(d, pages);
      r = await runBin(['migrate', 'local', 'staging', '--config-only', '--force'], { cwd: d });
    }
    r = r!;
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /✓ checkpoint/);
    assert.match(r.stderr, /^error: cannot write \.env\.staging: no space left on the disk$/m);
    assert.equal(readFileSync(join(d, '.env.staging'), 'utf8'), STAGING);
    assert.deepEqual(readdirSync(join(d, '.nself', 'migrations')), [], 'the checkpoint was removed (putting back a file that never changed needs no space)');
    assert.deepEqual(readdirSync(d).filter((f) => f.includes('.tmp')), []);
  });

  it('a read-only project → exit 1, read_only', { skip: canMount ? false : 'mounting a tmpfs is not permitted here' }, async () => {
    const d = tmpfs(64)!;
    writeFileSync(join(d, '.env.local'), LOCAL);
    writeFileSync(join(d, '.env.staging'), STAGING);
    execFileSync('mount', ['-o', 'remount,ro', d]);
    const r = await runBin(['migrate', 'local', 'staging', '--config-only', '--force'], { cwd: d });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^error: cannot create the folder \.nself: the file system is read-only$/m);
    assert.doesNotMatch(r.stderr, BUG);
    assert.equal(existsSync(join(d, '.nself')), false);
  });

  it('the env file to write is a folder → exit 1, is_a_directory naming it', async () => {
    const p = makeProject({ '.env.local': LOCAL, '.environments/staging/.env.secrets': 'S_TOKEN=x\n' });
    cleanups.push(() => p.remove());
    mkdirSync(join(p.dir, '.env.staging'));
    const r = await p.run(['migrate', 'local', 'staging', '--config-only', '--force']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^error: cannot read \.env\.staging: it is a folder, not a file$/m);
    assert.match(r.stderr, /^hint: move or rename the folder \.env\.staging: a file is needed there$/m);
    assert.equal(p.exists('.nself'), false);
  });
});

// ── a lost target connection inside the migrate pipeline, and data identity through the CLI ─────────

describe('through the CLI with a database', () => {
  let cluster: TestCluster;
  let n = 0;
  before(async () => {
    cluster = await startCluster();
  });
  after(async () => {
    await cluster?.stop();
  });
  const envFor = (db: string) => `POSTGRES_HOST=127.0.0.1\nPOSTGRES_PORT=${cluster.port}\nPOSTGRES_DB=${db}\nPOSTGRES_USER=${cluster.user}\nPOSTGRES_PASSWORD=${cluster.password}\n`;
  async function dbProject(srcSql: string, tgtSql: string): Promise<{ p: Project; src: string; tgt: string }> {
    n++;
    const src = `esrc${n}`;
    const tgt = `etgt${n}`;
    await cluster.createDatabase(src);
    await cluster.createDatabase(tgt);
    await cluster.sql(srcSql, src);
    await cluster.sql(tgtSql, tgt);
    const p = makeProject({ '.env.local': envFor(src), '.env.staging': envFor(tgt) });
    cleanups.push(() => p.remove());
    return { p, src, tgt };
  }
  const rows = async (db: string, sql: string) => JSON.stringify(await cluster.query(sql, [], db));

  it('the target backend is terminated mid-copy → exit 1, connection_lost, "nothing was committed", target unchanged, no checkpoint', async () => {
    const die = `CREATE FUNCTION die(v text) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN IF v = 'boom' THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF; RETURN true; END $$;`;
    const { p, tgt } = await dbProject(
      `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'new'), (2, 'boom'), (3, 'later');`,
      `${die} CREATE TABLE t (id int PRIMARY KEY, v text CHECK (die(v))); INSERT INTO t VALUES (1, 'old');`,
    );
    const r = await p.run(['migrate', 'local', 'staging', '--data-only', '--force']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^error: copying public\.t failed: the database server ended the connection: terminated by an administrator/m);
    assert.match(r.stderr, /^hint: nothing was committed: the staging transaction was rolled back/m);
    assert.equal(await rows(tgt, 'SELECT * FROM t ORDER BY id'), JSON.stringify([{ id: 1, v: 'old' }]));
    noCheckpoint(p);
    const j = await p.run(['migrate', 'local', 'staging', '--data-only', '--force', '--json']);
    assert.equal(JSON.parse(j.stdout).error.code, 'connection_lost');
  });

  it('"public.a".b and public."a.b": diff shows both exactly, migrate --data-only copies both, then they are equal', async () => {
    const ddl = `CREATE SCHEMA "public.a"; CREATE TABLE "public.a".b (id int PRIMARY KEY, v text); CREATE TABLE public."a.b" (id int PRIMARY KEY, v text);`;
    const { p, src, tgt } = await dbProject(
      `${ddl} INSERT INTO "public.a".b VALUES (1, 'schema dot'), (2, 's'); INSERT INTO public."a.b" VALUES (1, 'table dot'), (2, 't'), (3, 't');`,
      `${ddl} INSERT INTO "public.a".b VALUES (1, 'old'); INSERT INTO public."a.b" VALUES (2, 't'), (9, 'old');`,
    );
    const d = await p.run(['migrate', 'diff', 'local', 'staging', '--data-only', '--json']);
    assert.equal(d.code, 0, d.stderr);
    const tables = JSON.parse(d.stdout).data.diff.tables.map((t: Record<string, unknown>) => [t.table, t.schema, t.name, t.sourceRows, t.targetRows, t.onlyInSource, t.onlyInTarget, t.different]);
    assert.deepEqual(tables, [
      ['public."a.b"', 'public', 'a.b', 3, 2, 2, 1, 0],
      ['"public.a".b', 'public.a', 'b', 2, 1, 1, 0, 1],
    ]);
    const human = await p.run(['migrate', 'diff', 'local', 'staging', '--data-only']);
    assert.match(human.stdout, /~ "public\.a"\.b {2}2 \/ 1 row:/);
    assert.match(human.stdout, /~ public\."a\.b" {2}3 \/ 2 rows/);
    const m = await p.run(['migrate', 'local', 'staging', '--data-only', '--force', '--json']);
    assert.equal(m.code, 0, m.stderr);
    assert.deepEqual(JSON.parse(m.stdout).data.map((x: { table: string; rowsAfter: number }) => [x.table, x.rowsAfter]), [['public."a.b"', 3], ['"public.a".b', 2]]);
    for (const sql of ['SELECT * FROM "public.a".b ORDER BY id', 'SELECT * FROM public."a.b" ORDER BY id']) assert.equal(await rows(tgt, sql), await rows(src, sql));
    const again = await p.run(['migrate', 'diff', 'local', 'staging', '--data-only', '--exit-code']);
    assert.equal(again.code, 0, again.stdout);
    const only = await p.run(['migrate', 'diff', 'local', 'staging', '--data-only', '--json', '--table', '"public.a".b']);
    assert.deepEqual(JSON.parse(only.stdout).data.diff.tables.map((t: { table: string }) => t.table), ['"public.a".b']);
    const bad = await p.run(['migrate', 'diff', 'local', 'staging', '--data-only', '--table', '"public.a']);
    assert.equal(bad.code, 64);
    assert.match(bad.stderr, /unterminated double quote/);
  });

  it('the schema step knows exactly which of the two gets rows: an enum used only by the other one gains its value in place', async () => {
    const base = (values: string) => `CREATE TYPE mood AS ENUM (${values}); CREATE SCHEMA "public.a";
      CREATE TABLE "public.a".b (id int PRIMARY KEY, m mood); CREATE TABLE public."a.b" (id int PRIMARY KEY, v text);`;
    const { p } = await dbProject(
      `${base(`'ok', 'new'`)} INSERT INTO "public.a".b VALUES (1, 'ok'); INSERT INTO public."a.b" VALUES (1, 'copied');`,
      `${base(`'ok'`)} INSERT INTO "public.a".b VALUES (1, 'ok'); INSERT INTO public."a.b" VALUES (1, 'old');`,
    );
    const plan = async () => {
      const r = await p.run(['migrate', 'local', 'staging', '--dry-run', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const j = JSON.parse(r.stdout);
      return { sql: j.schema.statements.map((s: { sql: string }) => s.sql).join('\n'), copy: j.data.plan.tables.filter((t: { action: string }) => t.action === 'copy').map((t: { table: string }) => t.table) };
    };
    // only public."a.b" gets rows: "public.a".b (the enum's only user) is equal, so ADD VALUE in place
    const a = await plan();
    assert.deepEqual(a.copy, ['public."a.b"']);
    assert.match(a.sql, /ALTER TYPE "public"\."mood" ADD VALUE 'new'/);
    // "public.a".b gets rows too: the new value must be usable in this transaction, so the enum is recreated
    await cluster.sql(`UPDATE "public.a".b SET m = 'new'`, p.read('.env.local').match(/POSTGRES_DB=(\S+)/)![1]);
    const b = await plan();
    assert.deepEqual(b.copy, ['public."a.b"', '"public.a".b']);
    assert.doesNotMatch(b.sql, /ADD VALUE/);
  });
});
