/**
 * The OpenSSH client's own files, read the way ssh(1) reads them, for the few things this tool needs:
 *
 * ~/.ssh/config (ssh_config(5)): `Host` blocks (patterns with `*` and `?`, `!` negation, matched against the host
 * as written, case-sensitively like ssh; the first value obtained for a keyword wins), `HostName` (token `%h`), `User`, `Port`, `IdentityFile` (repeatable; `~` and the tokens
 * `%d %u %h %r %p %%`), `Include` (relative to ~/.ssh, `*`/`?` in the file name). `Match` blocks other than
 * `Match all` are not evaluated (their options are not applied). Other keywords are ignored.
 *
 * known_hosts (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT"): `host,pattern,… keytype base64 [comment]`, patterns with
 * `*`/`?` and `!` negation, `[host]:port` for a port other than 22, hashed names `|1|salt|hmac-sha1`, the markers
 * `@revoked` (that key is refused) and `@cert-authority` (certificates are not used: skipped).
 */
import { createHmac } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { asMigrateError, MigrateError } from '../errors.js';

/** `*` any run of characters, `?` one (ssh's match_pattern); `ignoreCase` for known_hosts names. */
export function globMatch(pattern: string, text: string, ignoreCase = false): boolean {
  const p = ignoreCase ? pattern.toLowerCase() : pattern;
  const t = ignoreCase ? text.toLowerCase() : text;
  // iterative wildcard match with backtracking on the last '*'
  let pi = 0;
  let ti = 0;
  let star = -1;
  let mark = 0;
  while (ti < t.length) {
    if (pi < p.length && (p[pi] === '?' || p[pi] === t[ti])) {
      pi++;
      ti++;
    } else if (pi < p.length && p[pi] === '*') {
      star = pi++;
      mark = ti;
    } else if (star >= 0) {
      pi = star + 1;
      ti = ++mark;
    } else return false;
  }
  while (pi < p.length && p[pi] === '*') pi++;
  return pi === p.length;
}

/** ssh's pattern lists: matches when some pattern matches and no negated (`!`) pattern does. */
export function matchPatternList(name: string, patterns: string[], ignoreCase = false): boolean {
  let matched = false;
  for (const raw of patterns) {
    if (!raw) continue;
    if (raw.startsWith('!')) {
      if (globMatch(raw.slice(1), name, ignoreCase)) return false;
    } else if (globMatch(raw, name, ignoreCase)) matched = true;
  }
  return matched;
}

export interface SshHostConfig {
  hostName?: string;
  user?: string;
  port?: number;
  /** Expanded absolute paths, in the order given (existing or not). */
  identityFiles: string[];
  /** Absolute path of the config file that was read (whether or not it set anything). */
  file: string;
  /** true when some option of the config applied to this host. */
  applied: boolean;
}

/** Tokens of a line: keyword and arguments (`Keyword arg`, `Keyword=arg`, double-quoted arguments). */
function tokenize(line: string): { keyword: string; args: string[] } | undefined {
  const t = line.trim();
  if (!t || t.startsWith('#')) return undefined;
  const m = /^([A-Za-z][A-Za-z0-9]*)(?:\s*=\s*|\s+)?(.*)$/.exec(t);
  if (!m) return undefined;
  const args: string[] = [];
  const rest = m[2] ?? '';
  let i = 0;
  while (i < rest.length) {
    while (i < rest.length && /\s/.test(rest[i])) i++;
    if (i >= rest.length) break;
    if (rest[i] === '#') break; // a comment after the arguments
    let arg = '';
    if (rest[i] === '"') {
      const close = rest.indexOf('"', i + 1);
      arg = close < 0 ? rest.slice(i + 1) : rest.slice(i + 1, close);
      i = close < 0 ? rest.length : close + 1;
    } else {
      while (i < rest.length && !/\s/.test(rest[i])) arg += rest[i++];
    }
    args.push(arg);
  }
  return { keyword: m[1].toLowerCase(), args };
}

function expandTilde(p: string, home: string): string {
  if (p === '~') return home;
  if (p.startsWith('~/')) return join(home, p.slice(2));
  return p;
}

function percentExpand(s: string, tokens: Record<string, string>): string {
  return s.replace(/%(.)/g, (all, c: string) => (c === '%' ? '%' : tokens[c] ?? all));
}

export interface ReadSshConfigOptions {
  /** Home directory (default: os.homedir(), i.e. $HOME). */
  home?: string;
  /** The config file (default ~/.ssh/config). */
  file?: string;
}

/** Options of ~/.ssh/config that apply to `host` (as written in server.json). A missing file gives nothing. */
export function readSshConfig(host: string, opts: ReadSshConfigOptions = {}): SshHostConfig {
  const home = opts.home ?? homedir();
  const file = opts.file ?? join(home, '.ssh', 'config');
  const out: SshHostConfig = { identityFiles: [], file, applied: false };
  const raw: { hostName?: string; user?: string; port?: string; portAt?: string; identityFiles: string[] } = { identityFiles: [] };
  const name = host; // Host patterns are matched as written (ssh lowercases only the resulting HostName)

  const readOne = (path: string, depth: number, active: { on: boolean }): void => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      const known = asMigrateError(e, { path });
      if (known.code !== 'internal') throw known;
      throw new MigrateError('ssh_config_invalid', `cannot read ${path}: ${(e as Error).message}`, { hint: 'check the file permissions' });
    }
    text.split(/\r?\n/).forEach((line, i) => {
      const tok = tokenize(line);
      if (!tok) return;
      const at = `${path}:${i + 1}`;
      switch (tok.keyword) {
        case 'host':
          active.on = matchPatternList(name, tok.args);
          return;
        case 'match':
          active.on = tok.args.length === 1 && tok.args[0].toLowerCase() === 'all';
          return;
        case 'include': {
          if (depth >= 16) throw new MigrateError('ssh_config_invalid', `${at}: Include nested too deeply`, { hint: 'remove the Include loop' });
          if (!active.on) return;
          for (const arg of tok.args) {
            const p = expandTilde(arg, home);
            const abs = isAbsolute(p) ? p : join(home, '.ssh', p);
            const dir = dirname(abs);
            const base = basename(abs);
            let files: string[];
            if (/[*?]/.test(base)) {
              try {
                files = readdirSync(dir)
                  .filter((f) => globMatch(base, f) && (base.startsWith('.') || !f.startsWith('.')))
                  .sort()
                  .map((f) => join(dir, f));
              } catch {
                files = [];
              }
            } else files = [abs];
            for (const f of files) {
              const saved: boolean = active.on;
              readOne(f, depth + 1, active);
              active.on = saved;
            }
          }
          return;
        }
      }
      const v = tok.args[0];
      if (!active.on || v === undefined) return;
      switch (tok.keyword) {
        case 'hostname':
          raw.hostName ??= v;
          break;
        case 'user':
          raw.user ??= v;
          break;
        case 'port':
          if (raw.port === undefined) {
            raw.port = v;
            raw.portAt = at;
          }
          break;
        case 'identityfile':
          if (v.toLowerCase() !== 'none') raw.identityFiles.push(v);
          break;
        default:
          return; // other keywords are not used by this tool
      }
      out.applied = true;
    });
  };
  readOne(file, 0, { on: true });

  if (raw.hostName !== undefined) out.hostName = percentExpand(raw.hostName, { h: host }).toLowerCase();
  if (raw.user !== undefined) out.user = raw.user;
  if (raw.port !== undefined) {
    const n = /^\d+$/.test(raw.port) ? Number(raw.port) : NaN;
    if (!Number.isInteger(n) || n < 1 || n > 65535) {
      throw new MigrateError('ssh_config_invalid', `${raw.portAt}: Port "${raw.port}" is not a port number`, { hint: `fix the Port line of ${file} (a number between 1 and 65535)` });
    }
    out.port = n;
  }
  const localUser = (() => {
    try {
      return userInfo().username;
    } catch {
      return process.env.USER ?? '';
    }
  })();
  const tokens = { d: home, u: localUser, h: out.hostName ?? host, r: out.user ?? '', p: String(out.port ?? 22) };
  out.identityFiles = raw.identityFiles.map((f) => resolve(expandTilde(percentExpand(f, tokens), home)));
  return out;
}

export interface KnownHostKey {
  type: string;
  /** base64 of the key blob */
  key: string;
  /** 1-based line */
  line: number;
  file: string;
  revoked: boolean;
}

/** The host column of a known_hosts entry for host:port, as OpenSSH writes and looks it up. */
export function knownHostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function hashedMatch(entry: string, name: string): boolean {
  const parts = entry.split('|'); // ['', '1', salt, hash]
  if (parts.length !== 4 || parts[1] !== '1') return false;
  try {
    const salt = Buffer.from(parts[2], 'base64');
    const want = Buffer.from(parts[3], 'base64');
    const got = createHmac('sha1', salt).update(name).digest();
    return want.length === got.length && want.equals(got);
  } catch {
    return false;
  }
}

/**
 * The keys a known_hosts file holds for host:port (plain, wildcard and hashed entries; `@revoked` ones marked).
 * A missing file gives none.
 */
export function knownHostKeys(file: string, host: string, port: number): KnownHostKey[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw new MigrateError('ssh_known_hosts_unreadable', `cannot read ${file}: ${(e as Error).message}`, { hint: 'fix the permissions of the file' });
  }
  const name = knownHostName(host, port).toLowerCase();
  const out: KnownHostKey[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    let fields = line.split(/\s+/);
    let revoked = false;
    if (fields[0].startsWith('@')) {
      if (fields[0] === '@revoked') revoked = true;
      else return; // @cert-authority: host certificates are not used
      fields = fields.slice(1);
    }
    const [hosts, type, key] = fields;
    if (!hosts || !type || !key) return;
    const match = hosts.startsWith('|') ? hashedMatch(hosts, name) : matchPatternList(name, hosts.split(','), true);
    if (match) out.push({ type, key, line: i + 1, file, revoked });
  });
  return out;
}

/** ~/.ssh/known_hosts */
export function userKnownHostsPath(home = homedir()): string {
  return join(home, '.ssh', 'known_hosts');
}

/** How OpenSSH names a key type in "ED25519 key fingerprint is SHA256:…". */
export function keyTypeLabel(type: string): string {
  if (type === 'ssh-ed25519') return 'ED25519';
  if (type.startsWith('ecdsa-sha2-')) return 'ECDSA';
  if (type === 'ssh-rsa' || type.startsWith('rsa-sha2-')) return 'RSA';
  if (type === 'ssh-dss') return 'DSA';
  return type.toUpperCase();
}
