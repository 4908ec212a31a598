/**
 * Environment names and the env-file cascade.
 *
 * Names: `local` (alias `dev`), `staging`, `prod` (alias `production`) — the built-in names are also accepted in
 * any letter case — and any `<name>` with a folder `.environments/<name>/` (exact spelling).
 *
 * Files, lowest precedence first (a missing file is skipped; later files win). The root files are nself's own
 * cascade (nself CLI, src/lib/utils/env-detection.sh get_env_file_cascade), in its order; the folder files
 * `.environments/<folder>/` (what is deployed to that environment's server) come last:
 *   local    .env.dev, .env.local, .env
 *   staging  .env.dev, .env.staging, .environments/staging/.env, .environments/staging/.env.secrets
 *   prod     .env.dev, .env.staging, .env.prod, .env.production, .env.secrets, .environments/prod/.env,
 *            .environments/prod/.env.secrets
 *            (folder `.environments/prod/`, or `.environments/production/` when only that one exists)
 *   <name>   .env.dev, .env.<name>, .environments/<name>/.env, .environments/<name>/.env.secrets
 * plus `.environments/<folder>/server.json` (kept as read; connection.ts applies the SSH defaults port 22, user root).
 * nself also reads `.env` last for every environment, as the override of the machine it runs on: in a project
 * checkout that machine is the developer's, so `.env` belongs to local only. `.env.production` is not nself's
 * (accepted here as a second name of `.env.prod`); `.env.<name>` of another environment is ours as well.
 *
 * "Configured" = at least one of the environment's OWN env files exists. `.env.dev` is shared by every
 * environment, so it only counts for local (it IS the dev environment); `.env.staging` is shared by staging and
 * prod, so it only counts for staging. The root `.env.secrets` holds production's secrets: it counts for prod.
 * server.json alone does not count: without its own env file an environment would silently use the dev
 * database settings.
 *
 * Own file (what a config migration writes): local → `.env.local`; otherwise the first existing of
 * `.environments/<folder>/.env`, `.env.<name>` (for prod: `.env.production`, then `.env.prod` — the higher-precedence
 * one first, so that a write is not overridden by its sibling); when none exists, `.env.<name>` (`.env.prod`).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { asMigrateError, EXIT, MigrateError } from '../errors.js';
import { decodeEnvBytes, hasInvalidUtf8, parseEnvDocument, type EnvDocument, type EnvEntry } from './envfile.js';
import { isSecretKey } from './secrets.js';
import type { EnvVar, Environment, ServerConfig } from './types.js';

const ALIASES: Record<string, string> = { local: 'local', dev: 'local', staging: 'staging', prod: 'prod', production: 'prod' };
const BUILTIN = ['local', 'staging', 'prod'];
const FOLDER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function environmentFolders(projectDir: string): string[] {
  try {
    return readdirSync(join(projectDir, '.environments'), { withFileTypes: true })
      .filter((d) => (d.isDirectory() || (d.isSymbolicLink() && isDir(join(projectDir, '.environments', d.name)))) && FOLDER_NAME.test(d.name))
      .map((d) => d.name)
      .sort();
  } catch {
    return [];
  }
}

/** The environments this project knows: the built-ins and every folder of `.environments/`. */
export function knownEnvironments(projectDir: string): string[] {
  const out = [...BUILTIN];
  for (const f of environmentFolders(projectDir)) {
    const c = ALIASES[f.toLowerCase()] ?? f;
    if (!out.includes(c)) out.push(c);
  }
  return out;
}

/** Canonical name of `name` (aliases resolved). Unknown → MigrateError 'unknown_env', exit 64. */
export function canonicalEnvName(projectDir: string, name: string): string {
  const alias = ALIASES[name.toLowerCase()];
  if (alias) return alias;
  if (FOLDER_NAME.test(name) && !name.includes('..') && isDir(join(projectDir, '.environments', name))) return name;
  const known = knownEnvironments(projectDir).map((n) => (n === 'local' ? 'local (dev)' : n === 'prod' ? 'prod (production)' : n));
  throw new MigrateError('unknown_env', `unknown environment "${name}"`, {
    hint: `known environments: ${known.join(', ')}; another name needs a folder .environments/<name>/`,
    exitCode: EXIT.usage,
  });
}

export interface EnvLayout {
  name: string;
  /** Folder under .environments/ (may not exist). */
  folder: string;
  /** Cascade files, lowest precedence first (absolute). */
  lookedFor: string[];
  /** The files among lookedFor that belong to this environment (not the shared .env.dev, except for local, nor .env.staging for prod). */
  own: string[];
  ownFile: string;
  serverFile: string;
}

/** Where an environment's files are (nothing is read but directory existence). `name` must be canonical. */
export function envLayout(projectDir: string, name: string): EnvLayout {
  const p = (...s: string[]) => join(projectDir, ...s);
  if (name === 'local') {
    const lookedFor = [p('.env.dev'), p('.env.local'), p('.env')];
    return { name, folder: 'local', lookedFor, own: lookedFor, ownFile: p('.env.local'), serverFile: p('.environments', 'local', 'server.json') };
  }
  let folder = name;
  if (name === 'prod' && !isDir(p('.environments', 'prod')) && isDir(p('.environments', 'production'))) folder = 'production';
  const dotFiles = name === 'prod' ? [p('.env.prod'), p('.env.production')] : [p(`.env.${name}`)];
  const folderEnv = p('.environments', folder, '.env');
  // nself: production is built on staging's settings, and the root .env.secrets holds production's secrets.
  const shared = name === 'prod' ? [p('.env.dev'), p('.env.staging')] : [p('.env.dev')];
  const rootSecrets = name === 'prod' ? [p('.env.secrets')] : [];
  const own = [...dotFiles, ...rootSecrets, folderEnv, p('.environments', folder, '.env.secrets')];
  const candidates = [folderEnv, ...[...dotFiles].reverse()];
  const ownFile = candidates.find(isFile) ?? dotFiles[0];
  return { name, folder, lookedFor: [...shared, ...own], own, ownFile, serverFile: p('.environments', folder, 'server.json') };
}

function rel(projectDir: string, file: string): string {
  const r = relative(projectDir, file);
  return r && !r.startsWith('..') ? r : file;
}

/** Read a file as UTF-8 (an invalid byte escaped: decodeEnvBytes); undefined when it does not exist. */
export function readIfExists(file: string, projectDir: string): string | undefined {
  try {
    return decodeEnvBytes(readFileSync(file));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    const known = asMigrateError(e, { path: file }); // permission denied, a folder where the file should be, …
    if (known.code !== 'internal') throw known;
    throw new MigrateError('env_read', `cannot read ${rel(projectDir, file)}: ${(e as Error).message}`, { hint: 'check the file permissions', cause: e });
  }
}

export interface Cascade {
  /** Parsed documents of the existing files, lowest precedence first. */
  docs: EnvDocument[];
  /** Effective variables. */
  vars: Map<string, EnvVar>;
  /** The entry each effective variable comes from (raw value, quoting…). */
  entries: Map<string, EnvEntry>;
}

/**
 * Parse the existing files of a cascade, each expanding references against everything before it, and classify
 * every variable where its value is produced: a secret by name and value (isSecretKey), or by taint — its value
 * expands a variable that was a secret at that point (`JWT_CONF=${HASURA_GRAPHQL_JWT_SECRET}`, also through
 * another tainted variable). Entries are visited in the order the parser expanded them, so a reference sees the
 * classification of the value it took.
 */
export function readCascade(projectDir: string, files: string[]): Cascade {
  const docs: EnvDocument[] = [];
  const vars = new Map<string, EnvVar>();
  const entries = new Map<string, EnvEntry>();
  const values = new Map<string, string>();
  const secretNow = new Map<string, boolean>();
  for (const file of files) {
    const text = readIfExists(file, projectDir);
    if (text === undefined) continue;
    const doc = parseEnvDocument(text, file, { inherited: new Map(values), display: rel(projectDir, file) });
    docs.push(doc);
    for (const e of doc.entries) {
      const taint = [...new Set(e.references.filter((r) => secretNow.get(r)))];
      const secret = taint.length > 0 || isSecretKey(e.key, e.value);
      vars.set(e.key, { key: e.key, value: e.value, file, line: e.line, secret, ...(taint.length > 0 ? { taint } : {}) });
      entries.set(e.key, e);
      values.set(e.key, e.value);
      secretNow.set(e.key, secret);
    }
  }
  return { docs, vars, entries };
}

/** server.json as read; undefined when absent. Malformed → MigrateError 'server_config_invalid'. */
export function readServerConfig(projectDir: string, file: string): ServerConfig | undefined {
  const text = readIfExists(file, projectDir);
  if (text === undefined) return undefined;
  const where = rel(projectDir, file);
  if (hasInvalidUtf8(text)) {
    // JSON is UTF-8; rewriting it would turn the bytes into U+FFFD
    throw new MigrateError('server_config_invalid', `${where} is not valid UTF-8`, { hint: `save ${where} as UTF-8` });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new MigrateError('server_config_invalid', `${where} is not valid JSON: ${(e as Error).message}`, { hint: `fix the JSON syntax of ${where}` });
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new MigrateError('server_config_invalid', `${where} must hold a JSON object`, { hint: 'e.g. {"host": "203.0.113.5", "port": 22, "user": "deploy"}' });
  }
  const obj = data as Record<string, unknown>;
  for (const f of ['host', 'user', 'key', 'deploy_path']) {
    if (obj[f] !== undefined && obj[f] !== null && typeof obj[f] !== 'string') {
      throw new MigrateError('server_config_invalid', `${where}: "${f}" must be a string`, { hint: `write "${f}" as a JSON string in ${where}` });
    }
  }
  const port = obj.port;
  if (port !== undefined && port !== null && port !== '') {
    const n = typeof port === 'number' ? port : typeof port === 'string' && /^\d+$/.test(port.trim()) ? Number(port) : NaN;
    if (!Number.isInteger(n) || n < 1 || n > 65535) {
      throw new MigrateError('server_config_invalid', `${where}: "port" must be a number between 1 and 65535`, { hint: `e.g. "port": 22 in ${where}` });
    }
  }
  return obj as ServerConfig;
}

/** Resolve an environment: its files, effective variables (with provenance), server.json and own file. */
export function loadEnvironment(projectDir: string, name: string): Environment {
  const dir = resolve(projectDir);
  const canonical = canonicalEnvName(dir, name);
  const layout = envLayout(dir, canonical);
  const files = layout.lookedFor.filter(isFile);
  if (!layout.own.some((f) => files.includes(f))) {
    const list = layout.own.map((f) => rel(dir, f)).join(', ');
    throw new MigrateError('env_not_configured', `environment "${canonical}" is not configured: none of ${list} exists`, {
      hint: `create ${canonical === 'local' ? '.env.local' : `.environments/${layout.folder}/.env`} with its settings (e.g. DATABASE_URL=postgres://user:password@host:5432/db)`,
      exitCode: EXIT.failed,
      details: { lookedFor: layout.lookedFor.map((f) => rel(dir, f)) },
    });
  }
  const { vars } = readCascade(dir, files);
  const server = readServerConfig(dir, layout.serverFile);
  return {
    name: canonical,
    projectDir: dir,
    lookedFor: layout.lookedFor,
    files,
    vars,
    ...(server ? { server } : {}),
    serverFile: layout.serverFile,
    ownFile: layout.ownFile,
    production: canonical === 'prod',
  };
}
