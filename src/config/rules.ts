/**
 * Which configuration belongs to each environment — what a config migration copies, and what it never touches.
 *
 * Built in (defaults):
 * - Environment-specific keys, never copied, shown by `diff` as expected differences: keys naming where a service
 *   lives or how it is reached in that environment (DEFAULT_ENV_SPECIFIC). In server.json the same globs are matched
 *   against a field's own name (`backup.s3_bucket` → `S3_BUCKET` → `*_BUCKET`), and numeric service settings
 *   (`backup.retention_days: 30`) are environment-specific too.
 * - server.json identity fields (IDENTITY_FIELDS) are never copied, whatever the rules say.
 *
 * The project's rules: `nself-migrate.json` at the project root (committed with the project), per environment:
 *   { "config": { "staging": { "keep": ["SMTP_*"], "copy": ["APP_PORT", "server.json:backup.retention_days"] } } }
 * - `keep`: keys that belong to that environment: never copied into it, nor out of it into another environment.
 * - `copy`: keys copied into that environment even when a default calls them environment-specific.
 * - Globs: `*` any characters, `?` one; case-insensitive; server.json fields as `server.json:<dotted.path>`.
 * - When both match a key: a `copy` entry naming the key exactly (no wildcard) wins; otherwise `keep` wins.
 * - Secrets are never copied, and identity fields neither: `copy` does not change that.
 * Malformed → MigrateError 'config_rules_invalid' (exit 1), one line naming `nself-migrate.json: <field>`.
 *
 * `--key <glob>` / `--exclude-key <glob>` narrow one run to (away from) the keys they match: a narrowed-out key is
 * neither shown nor migrated. They never make an environment-specific key copied.
 */
import { EXIT, MigrateError, usageError } from '../errors.js';
import { canonicalEnvName, readIfExists } from '../env/resolve.js';
import { join } from 'node:path';

/** The project's rules file, at the project root. */
export const RULES_FILE = 'nself-migrate.json';

/** Built-in environment-specific keys (globs, case-insensitive). */
export const DEFAULT_ENV_SPECIFIC: readonly string[] = [
  'ENV',
  'NSELF_ENV',
  'PROJECT_NAME',
  'BASE_DOMAIN',
  'DATABASE_URL',
  'POSTGRES_DB',
  'POSTGRES_USER',
  'DEBUG',
  'LOG_LEVEL',
  // where a service lives, how it is reached
  'HOST',
  'HOSTNAME',
  'PORT',
  'REGION',
  'ENDPOINT',
  'BUCKET',
  'DOMAIN',
  'URL',
  'URI',
  'DSN',
  '*_HOST',
  '*_HOSTNAME',
  '*_HOSTS',
  '*_PORT',
  '*_ENDPOINT',
  '*_ENDPOINTS',
  '*_REGION',
  '*_BUCKET',
  '*_DOMAIN',
  '*_URL',
  '*_URI',
  '*_DSN',
  '*_ROUTE',
  '*_ORIGIN',
  '*_ORIGINS',
  '*_FROM',
  'SMTP_*',
  '*_SMTP_*',
  'SSL_*',
  '*_DEV_MODE',
  '*_ENABLE_CONSOLE',
];

/** server.json fields that identify a server and are never copied. */
export const IDENTITY_FIELDS: readonly string[] = ['name', 'type', 'host', 'port', 'user', 'key', 'deploy_path', 'project_subdir'];

export const SERVER_PREFIX = 'server.json:';

const regexCache = new Map<string, RegExp>();
/** `*` any characters (dots too), `?` one; case-insensitive. */
export function keyGlobMatch(glob: string, name: string): boolean {
  let re = regexCache.get(glob);
  if (!re) {
    re = new RegExp('^' + glob.replace(/[.+^${}()|[\]\\*?]/g, (c) => (c === '*' ? '.*' : c === '?' ? '.' : '\\' + c)) + '$', 'is');
    regexCache.set(glob, re);
  }
  return re.test(name);
}

const hasWildcard = (g: string) => /[*?]/.test(g);

/** Why `name` (an env key, or a server.json field's own name) is environment-specific by default, or undefined. */
export function environmentSpecific(name: string): string | undefined {
  const k = name.toUpperCase();
  for (const g of DEFAULT_ENV_SPECIFIC) if (!hasWildcard(g) && g === k) return `${k} is environment-specific`;
  for (const g of DEFAULT_ENV_SPECIFIC) if (hasWildcard(g) && keyGlobMatch(g, k)) return `${g} keys are environment-specific`;
  return undefined;
}

/** A key glob as written on the command line or in the rules file: why it is malformed, or undefined. */
export function keyGlobProblem(glob: string): string | undefined {
  if (glob.startsWith(SERVER_PREFIX)) {
    const rest = glob.slice(SERVER_PREFIX.length);
    if (!rest || /\s/.test(rest) || rest.startsWith('.') || rest.endsWith('.') || rest.includes('..')) return 'a server.json field is written server.json:<field>[.<field>…], e.g. server.json:backup.*';
    return undefined;
  }
  if (!/^[A-Za-z0-9_*?]+$/.test(glob)) return 'a key glob has only letters, digits, _ and the wildcards * and ? (server.json fields: server.json:backup.*)';
  return undefined;
}

/** One environment's section of the rules file. */
export interface EnvironmentRules {
  keep: string[];
  copy: string[];
}

export interface ConfigRules {
  /** Project-relative rules file when it exists (for messages). */
  file?: string;
  source: string;
  target: string;
  /** The sections of the source and the target (empty when absent). */
  sourceRules: EnvironmentRules;
  targetRules: EnvironmentRules;
  /** --key: only keys matching one of these (all when empty). */
  include: string[];
  /** --exclude-key: never keys matching one of these. */
  exclude: string[];
}

/** No project file, no narrowing: the built-in rules only. */
export function defaultRules(source = '', target = ''): ConfigRules {
  return { source, target, sourceRules: { keep: [], copy: [] }, targetRules: { keep: [], copy: [] }, include: [], exclude: [] };
}

/** What the rules say about one key (env key or `server.json:<path>`). */
export interface RuleMatch {
  list: 'keep' | 'copy';
  /** Environment whose section matched. */
  environment: string;
  pattern: string;
  /** Human reason, naming the file. */
  reason: string;
}

/** Is this key part of the run (`--key` / `--exclude-key`)? */
export function selected(rules: ConfigRules, name: string): boolean {
  if (rules.exclude.some((g) => keyGlobMatch(g, name))) return false;
  return rules.include.length === 0 || rules.include.some((g) => keyGlobMatch(g, name));
}

/** The project rule for `name`: `copy` (exact name) > `keep` (source or target) > `copy` (glob); undefined when none. */
export function projectRule(rules: ConfigRules, name: string): RuleMatch | undefined {
  const file = rules.file ?? RULES_FILE;
  const copy = (pattern: string): RuleMatch => ({ list: 'copy', environment: rules.target, pattern, reason: `copied into ${rules.target} by ${file} (copy: ${pattern})` });
  const exact = rules.targetRules.copy.find((g) => !hasWildcard(g) && g.toUpperCase() === name.toUpperCase());
  if (exact) return copy(exact);
  for (const [env, r] of [[rules.target, rules.targetRules], [rules.source, rules.sourceRules]] as const) {
    const g = r.keep.find((p) => keyGlobMatch(p, name));
    if (g) return { list: 'keep', environment: env, pattern: g, reason: `kept in ${env} by ${file} (keep: ${g})` };
  }
  const g = rules.targetRules.copy.find((p) => keyGlobMatch(p, name));
  return g ? copy(g) : undefined;
}

/**
 * The project's rules for a source → target run, with the run's --key / --exclude-key. Reads and validates the whole
 * rules file (every section: a typo in another environment's section is reported too).
 */
export function loadConfigRules(projectDir: string, source: string, target: string, narrow: { include?: string[]; exclude?: string[] } = {}): ConfigRules {
  const rules: ConfigRules = { ...defaultRules(source, target), include: narrow.include ?? [], exclude: narrow.exclude ?? [] };
  for (const g of [...rules.include, ...rules.exclude]) {
    const why = keyGlobProblem(g);
    if (why) throw usageError(`--key/--exclude-key: ${JSON.stringify(g)} is not a key glob`, why);
  }
  const text = readIfExists(join(projectDir, RULES_FILE), projectDir);
  if (text === undefined) return rules;
  const sections = parseRulesFile(projectDir, text);
  rules.file = RULES_FILE;
  rules.sourceRules = sections.get(source) ?? rules.sourceRules;
  rules.targetRules = sections.get(target) ?? rules.targetRules;
  return rules;
}

function invalid(field: string, what: string): MigrateError {
  return new MigrateError('config_rules_invalid', `${RULES_FILE}: ${field}${field ? ': ' : ''}${what}`, {
    hint: `${RULES_FILE} holds {"config": {"<environment>": {"keep": ["<key glob>", …], "copy": ["<key glob>", …]}}}; see "The configuration rules file" in the README`,
    exitCode: EXIT.failed,
  });
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Validate the rules file; its sections by canonical environment name. */
export function parseRulesFile(projectDir: string, text: string): Map<string, EnvironmentRules> {
  let data: unknown;
  try {
    data = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (e) {
    throw invalid('', `not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(data)) throw invalid('', 'must hold a JSON object');
  for (const k of Object.keys(data)) if (k !== 'config' && k !== '$schema') throw invalid(JSON.stringify(k), 'unknown field (expected "config")');
  const out = new Map<string, EnvironmentRules>();
  if (data.config === undefined) return out;
  if (!isObject(data.config)) throw invalid('config', 'must be an object of environments');
  const seen = new Map<string, string>();
  for (const [name, section] of Object.entries(data.config)) {
    const field = `config.${name}`;
    let env: string;
    try {
      env = canonicalEnvName(projectDir, name);
    } catch (e) {
      throw invalid(field, `unknown environment "${name}"${e instanceof MigrateError && e.hint ? ` (${e.hint})` : ''}`);
    }
    if (seen.has(env)) throw invalid(field, `${env} is already configured as config.${seen.get(env)}`);
    seen.set(env, name);
    if (!isObject(section)) throw invalid(field, 'must be an object with "keep" and/or "copy"');
    const r: EnvironmentRules = { keep: [], copy: [] };
    for (const [list, globs] of Object.entries(section)) {
      if (list !== 'keep' && list !== 'copy') throw invalid(`${field}.${list}`, 'unknown field (expected "keep" or "copy")');
      if (!Array.isArray(globs)) throw invalid(`${field}.${list}`, 'must be an array of key globs');
      globs.forEach((g, i) => {
        if (typeof g !== 'string') throw invalid(`${field}.${list}[${i}]`, 'must be a string');
        const why = keyGlobProblem(g);
        if (why) throw invalid(`${field}.${list}[${i}]`, `${JSON.stringify(g)} is not a key glob: ${why}`);
        r[list].push(g);
      });
    }
    for (const g of r.copy) {
      if (!hasWildcard(g) && r.keep.some((k) => !hasWildcard(k) && k.toUpperCase() === g.toUpperCase())) throw invalid(`${field}`, `${g} is listed in both "keep" and "copy"`);
    }
    out.set(env, r);
  }
  return out;
}

/**
 * A value that is not really set: empty, or a placeholder of the kind templates ship (`changeme`,
 * `change-this-secret`, `CHANGE_ME_…`, `replace-me`, `your-api-key-here`, `<your key>`, `xxx`, `TODO`, …).
 */
export function isPlaceholder(value: string): boolean {
  const v = value.trim().toLowerCase();
  if (v === '') return true;
  if (/^<[^<>]*>$/.test(v) || /^x{3,}$/.test(v) || /^\*{3,}$/.test(v) || v === '...' || v === '…') return true;
  const n = v.replace(/[\s_.-]+/g, '');
  if (['todo', 'tbd', 'fixme', 'placeholder', 'dummy', 'none', 'null', 'undefined', 'secret', 'password', 'changeit'].includes(n)) return true;
  return /^(changeme|changethis|replaceme|replacethis|replacewith|setme|setthis|fillme|fillin|your|enteryour|insertyour|putyour)/.test(n);
}
