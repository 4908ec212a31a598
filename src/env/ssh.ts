/**
 * SSH tunnel (ssh2) to a server whose PostgreSQL listens on localhost only.
 *
 * One SSH connection per environment; every database client gets its own forwarded channel
 * (`forwardOut`, or a streamlocal channel for a Unix-socket host).
 *
 * Host keys, like OpenSSH: a key in the user's `~/.ssh/known_hosts` (plain, wildcard, hashed `|1|…` and `[host]:port`
 * entries) or pinned in `<projectDir>/.nself/known_hosts` is accepted; a key marked `@revoked` there is refused; a
 * host with known keys presenting another key is refused (changed key). A host with no known key is trusted on
 * first use: its fingerprint (`ED25519 key fingerprint is SHA256:…`, as ssh shows it) goes to `notice`, and it is
 * pinned in `.nself/known_hosts` (OpenSSH format: `host type base64` for port 22, `[host]:port type base64`
 * otherwise; ~/.ssh/known_hosts is never written). With `persistHostKeys: false` (dry-run, diff) a first-seen
 * key is trusted for this process only and nothing is written to disk.
 *
 * Authentication: the key file of server.json `key`; otherwise the ssh-agent (SSH_AUTH_SOCK), then the
 * `IdentityFile`s of ~/.ssh/config (or, with neither, the default ~/.ssh/id_*), in that order, like ssh(1).
 */
import type { ConnectConfig, ClientChannel } from 'ssh2';

/** ssh2 is loaded only when a tunnel is opened: most runs never need it, and it is slow to load. */
type Ssh2 = typeof import('ssh2');
const loadSsh2 = async (): Promise<Ssh2> => ((await import('ssh2')) as unknown as { default: Ssh2 }).default;
import { appendFileSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { join, relative } from 'node:path';
import type { Duplex } from 'node:stream';
import { MigrateError } from '../errors.js';
import { ensureStateDir } from '../util/fs.js';
import { sshLabel, type SshSettings } from './connection.js';
import { keyTypeLabel, knownHostKeys, userKnownHostsPath, type KnownHostKey } from './openssh.js';

export interface TunnelOptions {
  projectDir: string;
  /** Environment name, for messages. */
  envName: string;
  /** false (dry-run): a first-seen host key is trusted for this run only; nothing is written. */
  persistHostKeys: boolean;
  /** SSH handshake + authentication timeout (default 10000 ms). */
  timeoutMs?: number;
  /** Told when a host key is trusted for the first time (with its fingerprint). */
  notice?: (message: string) => void;
}

export interface SshTunnel {
  /** `root@host:22` */
  readonly label: string;
  /**
   * A byte stream to `host:port` as seen from the SSH server (a Unix socket when host starts with '/':
   * `<host>/.s.PGSQL.<port>`, like libpq). Rejects with the ssh2 error (it carries `reason` for channel failures).
   */
  forward(host: string, port: number, timeoutMs?: number): Promise<Duplex>;
  readonly closed: boolean;
  close(): Promise<void>;
}

export function knownHostsPath(projectDir: string): string {
  return join(projectDir, '.nself', 'known_hosts');
}

/** The host column of a known_hosts line, as OpenSSH writes it. */
export function hostPattern(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** Key type of an SSH wire-format public key blob (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, ...). */
function keyType(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const len = blob.readUInt32BE(0);
  if (len <= 0 || len > 64 || blob.length < 4 + len) return 'unknown';
  return blob.subarray(4, 4 + len).toString('latin1');
}

/** `SHA256:…` like ssh-keygen -l. */
export function fingerprint(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** A key known for the host: from a known_hosts file (line ≥ 1), or trusted earlier in this process (line 0). */
type KnownKey = Pick<KnownHostKey, 'type' | 'key' | 'line'> & { file?: string };

function readKnownHosts(file: string, host: string, port: number): KnownHostKey[] {
  try {
    return knownHostKeys(file, host, port);
  } catch (e) {
    if (e instanceof MigrateError) {
      throw new MigrateError(e.code, e.message, { hint: 'fix the file permissions or remove the file (host keys are then trusted again on first use)' });
    }
    throw e;
  }
}

/** Keys trusted during this process without being written (persistHostKeys: false), by known_hosts file + host pattern. */
const sessionKeys = new Map<string, KnownKey[]>();

/** `~/.ssh/known_hosts` for the user's file, project-relative for ours. */
function showPath(file: string, projectDir: string): string {
  const home = homedir();
  if (file.startsWith(home + '/')) return '~/' + relative(home, file);
  const r = relative(projectDir, file);
  return r && !r.startsWith('..') ? r : file;
}

const DEFAULT_HOST_KEY_ALGOS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];

/** Prefer the host key algorithms we already know for this host, so that a pinned key is the one the server shows. */
function hostKeyAlgorithms(known: KnownKey[]): string[] | undefined {
  if (known.length === 0) return undefined;
  const first: string[] = [];
  for (const k of known) {
    const algos = k.type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [k.type];
    for (const a of algos) if (DEFAULT_HOST_KEY_ALGOS.includes(a) && !first.includes(a)) first.push(a);
  }
  if (first.length === 0) return undefined;
  return first.concat(DEFAULT_HOST_KEY_ALGOS.filter((a) => !first.includes(a)));
}

function readPrivateKey(ssh2: Ssh2, file: string, label: string, envName: string, from: 'server.json' | '~/.ssh/config' | 'default' = 'server.json'): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (e as Error).message;
    throw new MigrateError('ssh_key_unreadable', `cannot read the SSH key ${file} for ${envName} (${label}): ${why}`, {
      hint: from === 'server.json' ? 'check "key" in server.json (a path relative to the project directory, or ~/...)' : `check the IdentityFile lines of ~/.ssh/config, or set "key" in server.json`,
    });
  }
  const parsed = ssh2.utils.parseKey(data);
  const first = Array.isArray(parsed) ? parsed[0] : parsed;
  if (first instanceof Error || !first) {
    const msg = first instanceof Error ? first.message : 'no key found';
    const encrypted = /passphrase|encrypted/i.test(msg);
    throw new MigrateError('ssh_key_unreadable', `cannot use the SSH key ${file} for ${envName} (${label}): ${encrypted ? 'it is protected by a passphrase' : msg}`, {
      hint: encrypted
        ? from === 'server.json'
          ? 'load it into ssh-agent (ssh-add) and remove "key" from server.json so that the agent (SSH_AUTH_SOCK) is used'
          : 'load it into ssh-agent (ssh-add) and make sure SSH_AUTH_SOCK is set, so that the agent is used'
        : 'point "key" in server.json at an OpenSSH or PEM private key file',
    });
  }
  if (!first.isPrivateKey()) {
    throw new MigrateError('ssh_key_unreadable', `the SSH key ${file} for ${envName} (${label}) is a public key`, { hint: 'point "key" in server.json at the private key (the file without .pub)' });
  }
  return data;
}

/** Connect and authenticate. Errors are MigrateErrors: ssh_unreachable, ssh_auth, ssh_host_key_changed, ssh_key_unreadable. */
export async function openTunnel(ssh: SshSettings, opts: TunnelOptions): Promise<SshTunnel> {
  const label = sshLabel(ssh);
  const where = `${opts.envName} (${label})`;
  const pattern = hostPattern(ssh.host, ssh.port);
  const khFile = knownHostsPath(opts.projectDir);
  const khRel = relative(opts.projectDir, khFile);
  const sessionKey = `${khFile}\u0000${pattern}`;
  const userKnown = readKnownHosts(userKnownHostsPath(), ssh.host, ssh.port);
  const revoked = userKnown.filter((k) => k.revoked);
  const known: KnownKey[] = [...readKnownHosts(khFile, ssh.host, ssh.port), ...userKnown.filter((k) => !k.revoked), ...(sessionKeys.get(sessionKey) ?? [])];
  const timeoutMs = opts.timeoutMs ?? 10_000;

  const cfg: ConnectConfig = {
    host: ssh.host,
    port: ssh.port,
    username: ssh.user,
    readyTimeout: timeoutMs,
    keepaliveInterval: 15_000,
    keepaliveCountMax: 4,
  };
  const ssh2 = await loadSsh2();
  // Authentication methods in the order ssh(1) tries them (see the header).
  type Auth = { type: 'publickey'; username: string; key: Buffer } | { type: 'agent'; username: string; agent: string };
  const auths: Auth[] = [];
  const tried: string[] = [];
  if (ssh.key) {
    auths.push({ type: 'publickey', username: ssh.user, key: readPrivateKey(ssh2, ssh.key, label, opts.envName) });
    tried.push(`key ${ssh.key}`);
  }
  if (ssh.agent) {
    auths.push({ type: 'agent', username: ssh.user, agent: ssh.agent });
    tried.push(`the keys in ssh-agent (${ssh.agent})`);
  }
  let unusable: MigrateError | undefined;
  for (const id of ssh.identities ?? []) {
    try {
      auths.push({ type: 'publickey', username: ssh.user, key: readPrivateKey(ssh2, id.file, label, opts.envName, id.from) });
      tried.push(`key ${id.file}${id.from === '~/.ssh/config' ? ' (IdentityFile of ~/.ssh/config)' : ''}`);
    } catch (e) {
      unusable ??= e as MigrateError; // like ssh: a key it cannot use is passed over when there are others
    }
  }
  if (auths.length === 0) {
    throw (
      unusable ??
      new MigrateError('ssh_auth', `no SSH key for ${where}`, {
        hint: 'set "key" in server.json to a private key file, add an IdentityFile for the host to ~/.ssh/config, or start ssh-agent (SSH_AUTH_SOCK) with the key loaded',
      })
    );
  }
  cfg.authHandler = auths as unknown as ConnectConfig['authHandler'];
  const algos = hostKeyAlgorithms(known);
  if (algos) cfg.algorithms = { serverHostKey: algos as NonNullable<NonNullable<ConnectConfig['algorithms']>['serverHostKey']> };

  let hostKeyProblem: MigrateError | undefined;
  let firstSeen: KnownKey | undefined;
  cfg.hostVerifier = (blob: Buffer): boolean => {
    const type = keyType(blob);
    const key = blob.toString('base64');
    const bad = revoked.find((k) => k.type === type && k.key === key);
    if (bad) {
      const at = `${showPath(bad.file, opts.projectDir)}:${bad.line}`;
      hostKeyProblem = new MigrateError('ssh_host_key_revoked', `the SSH host key of ${where} (${keyTypeLabel(type)} ${fingerprint(blob)}) is marked @revoked in ${at} — refusing to connect`, {
        hint: 'the key was revoked on purpose: check the server with whoever administers it',
      });
      return false;
    }
    if (known.some((k) => k.type === type && k.key === key)) return true;
    if (known.length === 0) {
      firstSeen = { type, key, line: 0 };
      return true;
    }
    const stale = known.find((k) => k.type === type) ?? known[0]!;
    const staleFile = stale.file ?? khFile;
    const shown = showPath(staleFile, opts.projectDir);
    const lineRef = stale.line > 0 ? `${shown}:${stale.line}` : 'the key trusted earlier in this run';
    const removal = staleFile === khFile ? `ssh-keygen -R '${pattern}' -f ${khRel}` : staleFile === userKnownHostsPath() ? `ssh-keygen -R '${pattern}'` : `ssh-keygen -R '${pattern}' -f ${staleFile}`;
    hostKeyProblem = new MigrateError(
      'ssh_host_key_changed',
      `the SSH host key of ${where} has changed (now ${type} ${fingerprint(blob)}; ${lineRef} has a different key) — refusing to connect`,
      {
        hint:
          stale.line > 0
            ? `if the server was really reinstalled, remove line ${stale.line} of ${shown} (${removal}) and connect again; otherwise someone may be intercepting the connection`
            : 'the server presented two different keys during this run; check the server',
      },
    );
    return false;
  };

  const client = new ssh2.Client();
  await new Promise<void>((resolveReady, reject) => {
    let settled = false;
    const done = (err?: Error) => {
      if (settled) return;
      settled = true;
      client.removeListener('ready', onReady);
      if (err) {
        client.end();
        reject(err);
      } else resolveReady();
    };
    const onReady = () => done();
    client.once('ready', onReady);
    client.on('error', (err: Error & { level?: string; code?: string }) => {
      if (settled) return; // after ready: surfaces on the channels (pg sees the stream close)
      done(mapSshError(err, hostKeyProblem, where, ssh, timeoutMs, tried));
    });
    client.once('close', () => done(hostKeyProblem ?? new MigrateError('ssh_unreachable', `cannot connect to ${where}: connection closed during the handshake`, { hint: 'check "host" and "port" in server.json and that sshd runs there' })));
    try {
      client.connect(cfg);
    } catch (e) {
      done(new MigrateError('ssh_unreachable', `cannot connect to ${where}: ${(e as Error).message}`, { hint: 'check server.json' }));
    }
  });

  if (firstSeen) {
    const line = `${pattern} ${firstSeen.type} ${firstSeen.key}`;
    const print = `${keyTypeLabel(firstSeen.type)} key fingerprint is ${fingerprint(Buffer.from(firstSeen.key, 'base64'))}`;
    opts.notice?.(
      `trusted the SSH host key of ${where} on first use: ${print}; ${opts.persistHostKeys ? `recorded in ${khRel}` : 'for this run only (a diff or a dry run records nothing)'}`,
    );
    if (opts.persistHostKeys) {
      try {
        ensureStateDir(opts.projectDir); // private, git-ignored
        // Re-read: another environment on the same server may have pinned it meanwhile.
        const now = readKnownHosts(khFile, ssh.host, ssh.port);
        if (!now.some((k) => k.type === firstSeen!.type && k.key === firstSeen!.key)) {
          appendFileSync(khFile, `# ${opts.envName}, first seen ${new Date().toISOString()}\n${line}\n`, { mode: 0o600 });
        }
      } catch (e) {
        client.end();
        if (e instanceof MigrateError) throw e;
        throw new MigrateError('ssh_known_hosts_unwritable', `cannot record the SSH host key of ${where} in ${khFile}: ${(e as Error).message}`, { hint: 'check the permissions of the .nself/ directory' });
      }
    } else {
      const list = sessionKeys.get(sessionKey) ?? [];
      list.push(firstSeen);
      sessionKeys.set(sessionKey, list);
    }
  }

  let closed = false;
  const channels = new Set<ClientChannel>();
  client.on('close', () => {
    closed = true;
  });

  return {
    label,
    get closed() {
      return closed;
    },
    forward(host: string, port: number, fwdTimeoutMs = timeoutMs): Promise<Duplex> {
      return new Promise<Duplex>((res, rej) => {
        if (closed) {
          rej(new MigrateError('ssh_unreachable', `the SSH connection to ${where} is closed`, { hint: 'run the command again' }));
          return;
        }
        let finished = false;
        const timer = setTimeout(() => {
          if (finished) return;
          finished = true;
          rej(Object.assign(new Error(`forwarding through ${label} timed out after ${fwdTimeoutMs} ms`), { code: 'ETIMEDOUT' }));
        }, fwdTimeoutMs);
        timer.unref();
        const cb = (err: Error | undefined, ch: ClientChannel) => {
          clearTimeout(timer);
          if (finished) {
            if (!err) ch.destroy();
            return;
          }
          finished = true;
          if (err) return rej(err);
          channels.add(ch);
          ch.once('close', () => channels.delete(ch));
          res(ch);
        };
        try {
          if (host.startsWith('/')) client.openssh_forwardOutStreamLocal(`${host.replace(/\/$/, '')}/.s.PGSQL.${port}`, cb);
          else client.forwardOut('127.0.0.1', 0, host, port, cb);
        } catch (e) {
          clearTimeout(timer);
          finished = true;
          rej(e as Error);
        }
      });
    },
    close(): Promise<void> {
      if (closed) return Promise.resolve();
      return new Promise<void>((res) => {
        const t = setTimeout(() => {
          client.destroy();
          res();
        }, 2000);
        t.unref();
        client.once('close', () => {
          clearTimeout(t);
          res();
        });
        for (const ch of channels) ch.destroy();
        client.end();
      });
    },
  };
}

function mapSshError(err: Error & { level?: string; code?: string }, hostKeyProblem: MigrateError | undefined, where: string, ssh: SshSettings, timeoutMs: number, tried: string[]): MigrateError {
  if (hostKeyProblem) return hostKeyProblem;
  const serverJson = ssh.alias ? `check "host" and "port" in server.json and the Host ${ssh.alias} entry of ~/.ssh/config` : 'check "host" and "port" in server.json';
  switch (err.level) {
    case 'client-authentication':
    case 'agent': {
      const how = tried.join(', then ');
      return new MigrateError('ssh_auth', `SSH authentication to ${where} failed with ${how}`, {
        hint: `make sure the public key is in ~/.ssh/authorized_keys of ${ssh.user} on ${ssh.host}, and that "user" and "key" in server.json${ssh.sshConfig ? ' (or User and IdentityFile in ~/.ssh/config)' : ''} are right`,
        cause: err,
      });
    }
    case 'client-timeout':
      return new MigrateError('ssh_unreachable', `cannot connect to ${where}: no SSH handshake within ${Math.round(timeoutMs / 1000)} s`, { hint: `${serverJson}; a firewall may drop the connection`, cause: err });
    case 'client-dns':
      return new MigrateError('ssh_unreachable', `cannot connect to ${where}: host ${ssh.host} not found`, { hint: serverJson, cause: err });
  }
  const code = err.code ?? '';
  const why =
    code === 'ECONNREFUSED'
      ? `connection refused on port ${ssh.port}`
      : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
        ? `host ${ssh.host} not found`
        : code === 'EHOSTUNREACH' || code === 'ENETUNREACH'
          ? 'no route to host'
          : code === 'ETIMEDOUT'
            ? 'connection timed out'
            : err.message;
  return new MigrateError('ssh_unreachable', `cannot connect to ${where}: ${why}`, { hint: `${serverJson} and that sshd runs there`, cause: err });
}
