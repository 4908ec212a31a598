/**
 * Where an environment's database is, as plain data: `DATABASE_URL` if set, else the POSTGRES_* variables;
 * plus the SSH hop when server.json names a host (the team's servers expose Postgres to localhost only).
 *
 * Pure apart from reading the user's home directory / SSH_AUTH_SOCK for the SSH defaults.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { MigrateError } from '../errors.js';
import { readSshConfig } from './openssh.js';
import type { EnvVar, Environment } from './types.js';

/** Where a setting came from (never its value: this object may end up in JSON). */
export interface SettingSource {
  key: string;
  /** Absolute path of the file that set it. */
  file: string;
  line: number;
}

export interface SshSettings {
  /** The host connected to: server.json `host`, or the `HostName` ~/.ssh/config gives it. */
  host: string;
  /** server.json `host` when ~/.ssh/config's `HostName` replaced it (a Host alias). */
  alias?: string;
  port: number;
  user: string;
  /** Absolute path of the private key file named by server.json `key` (then nothing else is tried). */
  key?: string;
  /** ssh-agent socket (SSH_AUTH_SOCK), used when server.json names no key. */
  agent?: string;
  /**
   * Without a server.json key: the existing `IdentityFile`s of ~/.ssh/config, tried after the agent; with neither
   * those nor an agent, the existing default ~/.ssh/id_* files.
   */
  identities?: { file: string; from: '~/.ssh/config' | 'default' }[];
  /** Absolute path of server.json, for hints. */
  serverFile?: string;
  /** Absolute path of ~/.ssh/config when some of its options applied to this host. */
  sshConfig?: string;
}

export type SslSetting = false | { rejectUnauthorized: boolean };

export interface ConnectionSettings {
  /** Postgres host as seen from the machine that connects (this one, or the SSH server when `ssh` is set). */
  host: string;
  port: number;
  database: string;
  user: string;
  password?: string;
  /** From DATABASE_URL's sslmode (POSTGRES_* connections do not use TLS). */
  ssl: SslSetting;
  ssh?: SshSettings;
  /** Which variables produced this (DATABASE_URL wins over POSTGRES_*). */
  via: 'DATABASE_URL' | 'POSTGRES_*';
  /** Provenance of each field that an env file set; a missing entry means "default". */
  sources: Partial<Record<'url' | 'host' | 'port' | 'database' | 'user' | 'password', SettingSource>>;
}

/** The Docker Compose service name of the database: from the machine running the stack it is localhost. */
const DOCKER_SERVICE_HOSTS = new Set(['postgres']);

function mapHost(host: string): string {
  return DOCKER_SERVICE_HOSTS.has(host) ? '127.0.0.1' : host;
}

function source(v: EnvVar): SettingSource {
  return { key: v.key, file: v.file, line: v.line };
}

function nonEmpty(env: Environment, key: string): EnvVar | undefined {
  const v = env.vars.get(key);
  return v && v.value.trim() !== '' ? v : undefined;
}

/** `KEY in .environments/staging/.env:3` (relative to the project), for hints. */
export function describeSource(env: Pick<Environment, 'projectDir'>, s: SettingSource | undefined): string | undefined {
  if (!s) return undefined;
  const rel = relative(env.projectDir, s.file) || s.file;
  return `${s.key} in ${rel.startsWith('..') ? s.file : rel}:${s.line}`;
}

function parsePort(raw: string, what: string, where: string): number {
  const t = raw.trim();
  const n = /^\d+$/.test(t) ? Number(t) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    throw new MigrateError('config_invalid', `${what} is not a valid port: "${raw}"`, { hint: `set a number between 1 and 65535 (${where})` });
  }
  return n;
}

function sslFromMode(mode: string | null, where: string): SslSetting {
  switch ((mode ?? '').toLowerCase()) {
    case '':
    case 'disable':
    case 'allow':
    case 'prefer':
      return false;
    case 'require':
    case 'no-verify':
      return { rejectUnauthorized: false };
    case 'verify-ca':
    case 'verify-full':
      return { rejectUnauthorized: true };
    default:
      throw new MigrateError('config_invalid', `DATABASE_URL has an unknown sslmode "${mode}"`, {
        hint: `use one of disable, require, verify-ca, verify-full (${where})`,
      });
  }
}

function fromUrl(env: Environment, v: EnvVar): ConnectionSettings {
  const where = describeSource(env, source(v)) ?? 'DATABASE_URL';
  const bad = (why: string) =>
    new MigrateError('config_invalid', `DATABASE_URL of ${env.name} is not a valid PostgreSQL URL: ${why}`, {
      hint: `expected postgres://user:password@host:5432/database (${where}); percent-encode special characters in the password`,
    });
  let url: URL;
  try {
    url = new URL(v.value.trim());
  } catch {
    throw bad('cannot parse it');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') throw bad(`scheme "${url.protocol.replace(/:$/, '')}" is not postgres:// or postgresql://`);
  const decode = (s: string, what: string): string => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw bad(`the ${what} has an invalid %-escape`);
    }
  };
  const hostParam = url.searchParams.get('host');
  let host = url.hostname ? decode(url.hostname, 'host') : hostParam ?? '';
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (!host) throw bad('no host');
  const port = url.port ? parsePort(url.port, 'DATABASE_URL port', where) : url.searchParams.get('port') ? parsePort(url.searchParams.get('port')!, 'DATABASE_URL port', where) : 5432;
  const user = url.username ? decode(url.username, 'user name') : url.searchParams.get('user') ?? 'postgres';
  const password = url.password ? decode(url.password, 'password') : url.searchParams.get('password') ?? undefined;
  const path = url.pathname.replace(/^\//, '');
  if (path.includes('/')) throw bad('the path must be just the database name');
  const database = path ? decode(path, 'database name') : url.searchParams.get('dbname') ?? user;
  const s = source(v);
  return {
    host: mapHost(host),
    port,
    database,
    user,
    ...(password !== undefined ? { password } : {}),
    ssl: sslFromMode(url.searchParams.get('sslmode'), where),
    via: 'DATABASE_URL',
    sources: { url: s, host: s, port: s, database: s, user: s, ...(password !== undefined ? { password: s } : {}) },
  };
}

function fromVars(env: Environment): ConnectionSettings {
  const host = nonEmpty(env, 'POSTGRES_HOST');
  const port = nonEmpty(env, 'POSTGRES_PORT');
  const db = nonEmpty(env, 'POSTGRES_DB') ?? nonEmpty(env, 'PROJECT_NAME');
  const user = nonEmpty(env, 'POSTGRES_USER');
  const password = env.vars.get('POSTGRES_PASSWORD');
  const sources: ConnectionSettings['sources'] = {};
  if (host) sources.host = source(host);
  if (port) sources.port = source(port);
  if (db) sources.database = source(db);
  if (user) sources.user = source(user);
  if (password) sources.password = source(password);
  return {
    host: host ? mapHost(host.value.trim()) : '127.0.0.1',
    port: port ? parsePort(port.value, 'POSTGRES_PORT', describeSource(env, source(port))!) : 5432,
    database: db ? db.value.trim() : 'postgres',
    user: user ? user.value.trim() : 'postgres',
    ...(password ? { password: password.value } : {}),
    ssl: false,
    via: 'POSTGRES_*',
    sources,
  };
}

function expandKeyPath(raw: string, projectDir: string): string {
  let p = raw.trim();
  if (p === '~') p = homedir();
  else if (p.startsWith('~/')) p = join(homedir(), p.slice(2));
  return isAbsolute(p) ? p : resolve(projectDir, p);
}

const DEFAULT_IDENTITIES = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

/**
 * server.json fields win over ~/.ssh/config, as ssh(1)'s command-line options win over its config: `host` is looked
 * up in the config's `Host` patterns; its `HostName`, `Port`, `User` and `IdentityFile` apply where server.json
 * sets nothing. Defaults: port 22, user root (nself's default).
 */
function sshSettings(env: Environment): SshSettings | undefined {
  const server = env.server;
  const given = typeof server?.host === 'string' ? server.host.trim() : '';
  if (!server || !given) return undefined;
  const where = env.serverFile ? relative(env.projectDir, env.serverFile) || env.serverFile : 'server.json';
  const cfg = readSshConfig(given);
  const host = cfg.hostName?.trim() || given;
  let port = cfg.port ?? 22;
  if (server.port !== undefined && server.port !== null && String(server.port) !== '') {
    port = parsePort(String(server.port), `"port" of ${where}`, where);
  }
  const user = typeof server.user === 'string' && server.user.trim() ? server.user.trim() : cfg.user?.trim() || 'root';
  const out: SshSettings = {
    host,
    ...(host !== given ? { alias: given } : {}),
    port,
    user,
    ...(env.serverFile ? { serverFile: env.serverFile } : {}),
    ...(cfg.applied ? { sshConfig: cfg.file } : {}),
  };
  if (typeof server.key === 'string' && server.key.trim()) {
    out.key = expandKeyPath(server.key, env.projectDir);
    return out;
  }
  if (process.env.SSH_AUTH_SOCK) out.agent = process.env.SSH_AUTH_SOCK;
  // Like ssh(1): a missing IdentityFile is passed over; the default identities only when nothing else is given.
  const fromConfig = cfg.identityFiles.filter((f) => existsSync(f));
  if (fromConfig.length > 0) out.identities = fromConfig.map((file) => ({ file, from: '~/.ssh/config' as const }));
  else if (!out.agent) {
    const found = DEFAULT_IDENTITIES.map((f) => join(homedir(), '.ssh', f)).filter((f) => existsSync(f));
    if (found.length > 0) out.identities = found.map((file) => ({ file, from: 'default' as const }));
  }
  return out;
}

/** `deploy@203.0.113.5:22`, with the Host alias when ~/.ssh/config's HostName replaced it: `… (Host prod-db)`. */
export function sshLabel(ssh: Pick<SshSettings, 'host' | 'port' | 'user' | 'alias'>): string {
  const h = ssh.host.includes(':') ? `[${ssh.host}]` : ssh.host;
  return `${ssh.user}@${h}:${ssh.port}${ssh.alias ? ` (Host ${ssh.alias})` : ''}`;
}

/** How to reach the environment's database. Throws MigrateError('config_invalid') for malformed settings. */
export function connectionSettings(env: Environment): ConnectionSettings {
  const url = nonEmpty(env, 'DATABASE_URL');
  const s = url ? fromUrl(env, url) : fromVars(env);
  const ssh = sshSettings(env);
  if (ssh) s.ssh = ssh;
  return s;
}

/** `postgres@127.0.0.1:5432/app via ssh root@host:22` — never the password. */
export function describeConnection(s: ConnectionSettings): string {
  const host = s.host.includes(':') && !s.host.startsWith('/') ? `[${s.host}]` : s.host;
  let out = `${s.user}@${host}:${s.port}/${s.database}`;
  if (s.ssh) out += ` via ssh ${sshLabel(s.ssh)}`;
  return out;
}
