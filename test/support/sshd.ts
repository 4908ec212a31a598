/**
 * A real OpenSSH sshd for tests (package openssh-server), on 127.0.0.1 and a free port, key-only auth,
 * in its own temp dir. stop() kills only this sshd and removes the dir.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from './pg.ts';
import { missing, sshdPath } from './prereq.ts';

export interface TestSshd {
  host: string;
  port: number;
  /** Login user (the user running the tests). */
  user: string;
  dir: string;
  /** Private key accepted by the server (OpenSSH format, ed25519). */
  clientKey: string;
  /** A private key the server does not accept. */
  wrongKey: string;
  /** Host public key line (`ssh-ed25519 AAAA… comment`). */
  hostPublicKey(): string;
  /** Stop and start again on the same port; with newHostKey, the server presents a freshly generated host key. */
  restart(opts?: { newHostKey?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

function findSshd(): string {
  const p = sshdPath();
  if (!p) throw new Error(missing('sshd')!);
  return p;
}

function keygen(file: string, comment: string): void {
  rmSync(file, { force: true });
  rmSync(file + '.pub', { force: true });
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], { stdio: 'ignore' });
}

const running = new Set<ChildProcess>();
/** Directories of servers not stopped yet. */
const dirs = new Set<string>();
/** Last resort when the process ends without stop(): kill every sshd and remove its directory (synchronously). */
function killAll(): void {
  for (const p of running) p.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  running.clear();
  dirs.clear();
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    killAll();
    process.kill(process.pid, signal);
  });
}

export async function startSshd(): Promise<TestSshd> {
  const sshd = findSshd();
  // Privilege separation directory required by sshd when run as root.
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = mkdtempSync(join(tmpdir(), 'nself-sshd-'));
  dirs.add(dir);
  const port = await freePort();
  const user = userInfo().username;
  const hostKey = join(dir, 'host_ed25519');
  const clientKey = join(dir, 'client_ed25519');
  const wrongKey = join(dir, 'wrong_ed25519');
  keygen(hostKey, 'test-host');
  keygen(clientKey, 'test-client');
  keygen(wrongKey, 'test-wrong');
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(clientKey + '.pub'), { mode: 0o600 });
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'StrictModes no',
      'PermitRootLogin yes',
      'AllowTcpForwarding yes',
      'AllowStreamLocalForwarding yes',
      'UsePAM no',
      'LogLevel VERBOSE',
      '',
    ].join('\n'),
  );

  let proc: ChildProcess | undefined;
  let log = '';

  const start = () =>
    new Promise<void>((resolve, reject) => {
      log = '';
      const p = spawn(sshd, ['-f', config, '-D', '-e'], { stdio: ['ignore', 'ignore', 'pipe'] });
      proc = p;
      running.add(p);
      const timer = setTimeout(() => fail(new Error(`sshd did not start within 10 s:\n${log}`)), 10_000);
      const fail = (e: Error) => {
        clearTimeout(timer);
        p.kill('SIGKILL');
        reject(e);
      };
      p.stderr!.setEncoding('utf8');
      p.stderr!.on('data', (chunk: string) => {
        log += chunk;
        if (log.includes(`Server listening on 127.0.0.1 port ${port}`)) {
          clearTimeout(timer);
          resolve();
        }
      });
      p.once('exit', (code, signal) => {
        running.delete(p);
        fail(new Error(`sshd exited (${code ?? signal}):\n${log}`));
      });
      p.once('error', fail);
    });

  const halt = async () => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGTERM');
      setTimeout(() => p.kill('SIGKILL'), 3000).unref();
    });
    running.delete(p);
  };

  try {
    await start();
  } catch (e) {
    dirs.delete(dir);
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  let stopped = false;
  return {
    host: '127.0.0.1',
    port,
    user,
    dir,
    clientKey,
    wrongKey,
    hostPublicKey: () => readFileSync(hostKey + '.pub', 'utf8').trim(),
    async restart(opts = {}) {
      await halt();
      if (opts.newHostKey) keygen(hostKey, 'test-host-2');
      await start();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        await halt();
      } finally {
        dirs.delete(dir);
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
