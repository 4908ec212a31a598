/**
 * Opening an environment's database: directly or through its SSH tunnel, with connection errors
 * turned into one clear MigrateError line + hint (never a stack trace, never the password).
 */
import './runtime.js'; // before pg: see there
import pg from 'pg';
import { relative } from 'node:path';
import { MigrateError } from '../errors.js';
import { connectionSettings, describeConnection, describeSource, type ConnectionSettings } from '../env/connection.js';
import { openTunnel, type SshTunnel } from '../env/ssh.js';
import type { Environment } from '../env/types.js';

export interface DbHandle {
  /** Masked description of the target: `postgres@127.0.0.1:5432/app via ssh root@host:22`. */
  label: string;
  /** Database name. */
  database: string;
  /**
   * A new connected client (through the same tunnel). The caller ends it, or close() does. The first call may
   * get the test connection that opening made, when it comes within a few seconds and that connection is still up.
   */
  connect(): Promise<pg.Client>;
  /** Ends every client this handle made, then the tunnel. Idempotent. */
  close(): Promise<void>;
}

export interface OpenOptions {
  /** false (dry-run): SSH host keys seen for the first time are not written to .nself/known_hosts. */
  persistHostKeys: boolean;
  /** Connect timeout for SSH and PostgreSQL, default 10000 ms. */
  connectTimeoutMs?: number;
  /**
   * lock_timeout of every session (plan, backup, migrate, verify, rollback): no statement waits longer than this
   * for a lock held by another session, so the tool never queues behind the application holding locks itself.
   */
  lockTimeoutMs?: number;
  /** Told what the user should know while connecting (a first-seen SSH host key and its fingerprint). */
  notice?: (message: string) => void;
}

export const APPLICATION_NAME = 'nself-migrate';

/** How long the test connection of openDatabase waits for the first connect() to take it over. */
const SPARE_MS = 5_000;

/**
 * Open the environment's database; one test connection is made so that errors surface now. It is handed to the
 * first connect() call that comes within SPARE_MS (one connection less to set up), else closed.
 */
export async function openDatabase(env: Environment, opts: OpenOptions): Promise<DbHandle> {
  const settings = connectionSettings(env);
  const label = describeConnection(settings);
  const timeoutMs = opts.connectTimeoutMs ?? 10_000;
  let tunnel: SshTunnel | undefined;
  if (settings.ssh) {
    tunnel = await openTunnel(settings.ssh, { projectDir: env.projectDir, envName: env.name, persistHostKeys: opts.persistHostKeys, timeoutMs, ...(opts.notice ? { notice: opts.notice } : {}) });
  }
  const clients = new Set<pg.Client>();
  let closed = false;
  /** the test connection, until the first connect() takes it or finds it too old */
  let spare: { client: pg.Client; at: number; up: boolean } | undefined;

  const connect = async (): Promise<pg.Client> => {
    if (closed) throw new MigrateError('internal', `the connection to ${env.name} (${label}) was already closed`);
    if (spare) {
      const s = spare;
      spare = undefined;
      if (s.up && Date.now() - s.at < SPARE_MS) return s.client;
      await s.client.end().catch(() => {});
    }
    const started = Date.now();
    let stream: import('node:stream').Duplex | undefined;
    if (tunnel) {
      try {
        stream = await tunnel.forward(settings.host, settings.port, timeoutMs);
      } catch (e) {
        throw connectError(env, settings, label, e, Date.now() - started, timeoutMs);
      }
    }
    const config: pg.ClientConfig = {
      host: settings.host,
      port: settings.port,
      database: settings.database,
      user: settings.user,
      ssl: settings.ssl,
      application_name: APPLICATION_NAME,
      connectionTimeoutMillis: Math.max(1, timeoutMs - (Date.now() - started)),
      keepAlive: !tunnel,
    };
    if (settings.password !== undefined) config.password = settings.password;
    if (stream) config.stream = () => asSocket(stream!);
    const client = new pg.Client(config);
    // An idle client whose server goes away emits 'error'; without a listener that would crash the process.
    // The next query on it fails with a clear error instead.
    client.on('error', () => {});
    try {
      await client.connect();
    } catch (e) {
      stream?.destroy();
      await client.end().catch(() => {});
      throw connectError(env, settings, label, e, Date.now() - started, timeoutMs);
    }
    if (opts.lockTimeoutMs !== undefined) await client.query(`SET lock_timeout = ${Math.max(1, Math.floor(opts.lockTimeoutMs))}`);
    clients.add(client);
    client.once('end', () => clients.delete(client));
    return client;
  };

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await Promise.allSettled([...clients].map((c) => c.end()));
    clients.clear();
    if (tunnel) await tunnel.close();
  };

  try {
    const first = await connect();
    const s = { client: first, at: Date.now(), up: true };
    // an error or the end of the connection while it waits: the first connect() makes a new one
    first.once('error', () => (s.up = false));
    first.once('end', () => (s.up = false));
    spare = s;
  } catch (e) {
    await close();
    throw e;
  }
  return { label, database: settings.database, connect, close };
}

/**
 * pg (8.x) drives its `stream` like a net.Socket: setNoDelay(), connect(port, host), then waits for 'connect'.
 * An SSH channel is already connected, so the socket calls are answered here.
 */
function asSocket(stream: import('node:stream').Duplex): import('node:stream').Duplex {
  const s = stream as import('node:stream').Duplex & Record<string, unknown>;
  s.setNoDelay = () => s;
  s.setKeepAlive = () => s;
  s.ref = () => s;
  s.unref = () => s;
  s.connect = () => {
    process.nextTick(() => s.emit('connect'));
    return s;
  };
  return s;
}

/** Errors that carry a PostgreSQL SQLSTATE or a Node socket code. */
type ConnErr = Error & { code?: string; reason?: number | string; errno?: number };

function hintFor(env: Environment, s: ConnectionSettings, field: keyof ConnectionSettings['sources'], fallback: string): string {
  const src = describeSource(env, s.sources[field]);
  return src ? `check ${src}` : fallback;
}

function redact(msg: string, s: ConnectionSettings): string {
  let out = msg;
  if (s.password && s.password.length > 0) out = out.split(s.password).join('***');
  return out;
}

/** Map a connection failure to one MigrateError. */
export function connectError(env: Environment, s: ConnectionSettings, label: string, e: unknown, elapsedMs: number, timeoutMs: number): MigrateError {
  if (e instanceof MigrateError) return e;
  const err = (e instanceof Error ? e : new Error(String(e))) as ConnErr;
  const code = typeof err.code === 'string' ? err.code : '';
  const raw = redact(err.message || String(e), s);
  const head = `cannot connect to ${env.name} database ${label}`;
  const where = s.ssh ? ` (as seen from ${s.ssh.host})` : '';
  const varName = (field: 'host' | 'port' | 'database' | 'user' | 'password') =>
    s.via === 'DATABASE_URL' ? 'DATABASE_URL' : { host: 'POSTGRES_HOST', port: 'POSTGRES_PORT', database: 'POSTGRES_DB', user: 'POSTGRES_USER', password: 'POSTGRES_PASSWORD' }[field];
  const own = relative(env.projectDir, env.ownFile) || env.ownFile;
  const mk = (c: string, why: string, hint: string) => new MigrateError(c, `${head}: ${why}`, { hint, cause: redactCause(err, s) });

  // SSH channel open failures (forwardOut): reason 1 = administratively prohibited, 2 = connect failed.
  if (err.reason !== undefined && /Channel open failure/i.test(err.message)) {
    if (err.reason === 1) {
      return mk('ssh_forward_denied', `the SSH server refused to forward the connection (${raw})`, `allow TCP forwarding for ${s.ssh?.user ?? 'the user'} in the server's sshd_config (AllowTcpForwarding yes)`);
    }
    const target = s.host.startsWith('/') ? `${s.host.replace(/\/$/, '')}/.s.PGSQL.${s.port}` : `${s.host}:${s.port}`;
    const hostSrc = describeSource(env, s.sources.host) ?? `${varName('host')} (default 127.0.0.1)`;
    const portSrc = describeSource(env, s.sources.port) ?? `${varName('port')} (default 5432)`;
    const unreachable = /not known|no address|no route|unreachable|name resolution|nodename/i.test(err.message);
    return mk(
      unreachable ? 'db_unreachable' : 'db_refused',
      `${s.ssh?.host ?? 'the SSH server'} could not open a connection to ${target} (${err.message.replace(/^\(SSH\) Channel open failure:\s*/, '') || 'open failed'})`,
      `${unreachable ? '' : `is PostgreSQL running on ${s.ssh?.host ?? 'the server'} and listening there? `}check ${hostSrc === portSrc ? hostSrc : `${hostSrc} and ${portSrc}`} (the address as seen from the server)`,
    );
  }

  switch (code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
      return mk('db_unreachable', `host ${s.host} not found${where}`, hintFor(env, s, 'host', `${varName('host')} is not set (default 127.0.0.1); set it in ${own}`));
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
    case 'EADDRNOTAVAIL':
      return mk('db_unreachable', `no route to host ${s.host}${where}`, hintFor(env, s, 'host', `${varName('host')} is not set (default 127.0.0.1)`));
    case 'ECONNREFUSED':
    case 'ENOENT': // Unix socket path without a server
      return mk('db_refused', `connection refused at ${s.host}:${s.port}${where}`, `is PostgreSQL running and listening there? ${hintFor(env, s, 'port', `${varName('port')} is not set (default 5432)`)}`);
    case 'ETIMEDOUT':
      return mk('db_timeout', `no answer within ${Math.round(timeoutMs / 1000)} s`, `check ${varName('host')}/${varName('port')}; a firewall may drop the connection`);
    case '28P01': // invalid_password
    {
      let hint = hintFor(env, s, 'password', `${varName('password')} is not set; set it in ${own}`);
      const userSrc = describeSource(env, s.sources.user);
      if (s.via === 'POSTGRES_*' && userSrc) hint += ` (and the user, ${userSrc})`;
      return mk('db_auth', `password authentication failed for user ${s.user}`, hint);
    }
    case '28000': {
      // invalid_authorization_specification: role does not exist, or no pg_hba.conf entry
      const roleMissing = /role .* does not exist/i.test(raw);
      return mk('db_auth', roleMissing ? `role ${s.user} does not exist` : raw, roleMissing ? hintFor(env, s, 'user', `${varName('user')} is not set (default postgres)`) : 'the server refuses this user/host combination (pg_hba.conf)');
    }
    case '3D000': // invalid_catalog_name
      return mk('db_unknown_database', `database ${s.database} does not exist`, `${hintFor(env, s, 'database', `${varName('database')} is not set (defaults: PROJECT_NAME, then postgres)`)}, or create the database`);
    case '57P03':
      return mk('db_unavailable', `the server is not accepting connections yet (${raw})`, 'wait until PostgreSQL has started and try again');
    case '53300':
      return mk('db_unavailable', 'too many connections', 'close other clients or raise max_connections');
  }
  if (/timeout expired|connection timeout/i.test(raw) || (elapsedMs >= timeoutMs - 50 && /terminated/i.test(raw))) {
    return mk('db_timeout', `no answer within ${Math.round(timeoutMs / 1000)} s`, `check ${varName('host')}/${varName('port')}${where}; a firewall may drop the connection`);
  }
  if (/password must be a string|client password must be a string|no password/i.test(raw)) {
    return mk('db_auth', 'the server asks for a password and none is set', `set ${varName('password')} in ${own}`);
  }
  if (/does not support SSL/i.test(raw)) {
    return mk('db_connect_failed', 'the server does not support SSL', 'remove sslmode=require from DATABASE_URL');
  }
  return mk('db_connect_failed', raw, `check the connection settings of ${env.name} (${s.via})`);
}

/** The cause kept on the MigrateError must not carry the password either. */
function redactCause(err: ConnErr, s: ConnectionSettings): ConnErr {
  if (!s.password || !err.message?.includes(s.password)) return err;
  const copy = new Error(redact(err.message, s)) as ConnErr;
  copy.code = err.code;
  return copy;
}
