/**
 * The one classifier of errors by cause: a Node file-system errno, a lost or ended PostgreSQL connection, a
 * server-side condition (disk full, out of memory, lock or statement timeout, deadlock). It walks the `cause`
 * chain (and AggregateError.errors), so the cause is found even when the error was wrapped.
 *
 * Used by asMigrateError (errors.ts) and wrapCause (the data engine's wrapError): an error we recognise gets a
 * stable code, a message naming the path or the server condition, and a hint that fixes that cause — never
 * "this is a bug". Only what it can be sure of is said: a lost connection's open transaction is rolled back by
 * PostgreSQL (the pipelines, which know whether COMMIT was sent, say more — see withHint in errors.ts).
 *
 * Paths are shown relative to the current directory when they are inside it, else absolute.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';

export interface ErrorCause {
  /** Stable MigrateError code (see README, "Errors by cause"). */
  code: string;
  /** One line: what failed and why, naming the path(s) or the server condition. */
  message: string;
  hint: string;
  /** The error in the chain that was recognised. */
  error: unknown;
}

/** Codes meaning "the database connection ended under us". */
export const CONNECTION_LOST_CODES: ReadonlySet<string> = new Set(['connection_lost', 'server_crashed']);

type Obj = Record<string, unknown>;

const CONNECTION_ENDED_HINT = 'the server ended the connection (PostgreSQL rolls back a transaction left open by a lost connection); check that the server is running (and its log), then run the command again';

/** Every error of the chain, outermost first (cause, AggregateError.errors), at most 16, no cycles. */
function chain(e: unknown): Obj[] {
  const out: Obj[] = [];
  const seen = new Set<unknown>();
  const queue: unknown[] = [e];
  while (queue.length > 0 && out.length < 16) {
    const x = queue.shift();
    if (x === null || typeof x !== 'object' || seen.has(x)) continue;
    seen.add(x);
    out.push(x as Obj);
    if ('cause' in x) queue.push((x as Obj).cause);
    if (Array.isArray((x as Obj).errors)) queue.push(...((x as Obj).errors as unknown[]));
  }
  return out;
}

/**
 * The cause of e (or of an error in its cause chain), or undefined when unknown. `path`: the file the failed
 * operation was about, named when the error itself names none (a read or write on an open file).
 */
export function classifyError(e: unknown, opts: { path?: string } = {}): ErrorCause | undefined {
  for (const x of chain(e)) {
    const c = classifyOne(x, opts.path);
    if (c) return { ...c, error: x };
  }
  return undefined;
}

function classifyOne(x: Obj, path: string | undefined): Omit<ErrorCause, 'error'> | undefined {
  const code = typeof x.code === 'string' ? x.code : undefined;
  const message = typeof x.message === 'string' ? x.message : '';
  // A PostgreSQL error answer (pg's DatabaseError): SQLSTATE + severity.
  if (code && typeof x.severity === 'string' && /^[0-9A-Z]{5}$/.test(code)) return fromSqlState(code, message);
  // A Node system error: errno + syscall (file system or socket).
  if (code && /^E[A-Z0-9]+$/.test(code) && (typeof x.syscall === 'string' || typeof x.errno === 'number')) {
    const r = fromErrno(code, typeof x.path === 'string' || path === undefined ? x : { ...x, path });
    if (r) return r;
  }
  // pg's own words for a socket that ended (no SQLSTATE); libpq's, seen through other tools.
  if (/Connection terminated unexpectedly|server closed the connection unexpectedly|Client has encountered a connection error and is not queryable/i.test(message)) {
    return { code: 'connection_lost', message: `the connection to the database server ended unexpectedly (${message}): the server stopped or crashed, or the network dropped`, hint: CONNECTION_ENDED_HINT };
  }
  return undefined;
}

function fromSqlState(code: string, message: string): Omit<ErrorCause, 'error'> | undefined {
  switch (code) {
    case '57P01':
      return {
        code: 'connection_lost',
        message: `the database server ended the connection: terminated by an administrator (pg_terminate_backend or a server shutdown: ${message})`,
        hint: CONNECTION_ENDED_HINT,
      };
    case '57P02':
      return {
        code: 'server_crashed',
        message: `the database server ended the connection because a server process crashed (${message})`,
        hint: 'the server restarts itself after a crash and rolls back every transaction that was open; look at its log for the crash, then run the command again',
      };
    case '57P03':
    case '53300':
      return { code: 'db_unavailable', message: `the database server does not accept connections now (${message})`, hint: 'wait until PostgreSQL has started (or other clients disconnected), then run the command again' };
    case '53100':
      return {
        code: 'server_disk_full',
        message: `the database server ran out of disk space (${message})`,
        hint: 'free disk space on the database server (its data directory, pg_wal, temporary files); the failed statement\'s transaction is rolled back',
      };
    case '53200':
      return {
        code: 'server_out_of_memory',
        message: `the database server ran out of memory (${message})`,
        hint: 'lower the load on the server or raise its memory (work_mem, maintenance_work_mem, the host\'s memory); the failed statement\'s transaction is rolled back',
      };
    case '55P03':
      return {
        code: 'lock_timeout',
        message: `timed out waiting for a lock (${message})`,
        hint: 'another session holds a lock on a table being changed: find the blocker (pg_stat_activity, pg_locks) and let it finish, or raise --lock-timeout',
      };
    case '57014':
      if (/statement timeout/i.test(message)) {
        return {
          code: 'statement_timeout',
          message: `a statement ran longer than the server's statement_timeout (${message})`,
          hint: 'the role or database sets statement_timeout; raise it for this user (ALTER ROLE … SET statement_timeout = …) and run the command again',
        };
      }
      return { code: 'query_canceled', message: `the server canceled a statement (${message})`, hint: 'someone or something canceled the query (pg_cancel_backend, a pooler); run the command again' };
    case '40P01':
      return { code: 'deadlock', message: `the server detected a deadlock with another session (${message})`, hint: 'another session was changing the same tables at the same time; run the command again' };
  }
  if (code.startsWith('08')) {
    return { code: 'connection_lost', message: `the connection to the database server failed (${message})`, hint: CONNECTION_ENDED_HINT };
  }
  return undefined;
}

/** Syscalls that are file-system operations (an ENOENT from them is a missing file, not e.g. a missing program). */
const FS_SYSCALLS = new Set(['open', 'mkdir', 'rmdir', 'unlink', 'rename', 'copyfile', 'scandir', 'opendir', 'stat', 'lstat', 'fstat', 'access', 'read', 'write', 'fsync', 'fdatasync', 'chmod', 'fchmod', 'chown', 'fchown', 'utime', 'futime', 'link', 'symlink', 'readlink', 'realpath', 'mkdtemp', 'rm', 'ftruncate', 'close']);

function verb(syscall: string | undefined): string {
  switch (syscall) {
    case 'open':
      return 'open';
    case 'mkdir':
    case 'mkdtemp':
      return 'create the folder';
    case 'rmdir':
      return 'remove the folder';
    case 'unlink':
    case 'rm':
      return 'remove';
    case 'rename':
      return 'rename';
    case 'copyfile':
      return 'copy';
    case 'scandir':
    case 'opendir':
      return 'list the folder';
    case 'read':
      return 'read';
    case 'write':
    case 'fsync':
    case 'fdatasync':
    case 'ftruncate':
      return 'write';
    case 'chmod':
    case 'fchmod':
      return 'change the permissions of';
    case 'link':
    case 'symlink':
      return 'link';
    default:
      return 'access';
  }
}

/** A path for a message: relative to the current directory when inside it, else absolute. */
export function showPath(p: string): string {
  const abs = resolve(p);
  const r = relative(process.cwd(), abs);
  return r && !r.startsWith('..') && !isAbsolute(r) ? r : abs;
}

/** `p` or its closest ancestor that exists (a failed write's temp folder is gone by the time we explain it). */
function existing(p: string): string {
  let cur = resolve(p);
  for (;;) {
    try {
      statSync(cur);
      return cur;
    } catch {
      const up = dirname(cur);
      if (up === cur) return cur;
      cur = up;
    }
  }
}

/** The first existing component of `p` that is not a folder (what makes a path "not a directory"). */
function fileInTheWay(p: string): string | undefined {
  const abs = resolve(p);
  const parts = abs.split(sep).filter(Boolean);
  let cur = abs.startsWith(sep) ? sep : '';
  for (const part of parts) {
    cur = cur ? join(cur, part) : part;
    try {
      if (!statSync(cur).isDirectory()) return cur;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * Node's recursive mkdir reports ENOENT when what failed was creating a missing parent (on a read-only file system,
 * in a folder we may not write to): find the real reason at the closest existing folder.
 */
function whyNoFolder(p: string): { code: string; path: string } | undefined {
  const abs = resolve(p);
  const at = existing(abs);
  if (at === abs) return undefined;
  const missing = join(at, relative(at, abs).split(sep)[0]);
  try {
    if (!statSync(at).isDirectory()) return { code: 'ENOTDIR', path: missing };
    accessSync(at, constants.W_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EROFS' || code === 'EACCES' || code === 'EPERM') return { code, path: missing };
  }
  return undefined;
}

function fromErrno(code: string, x: Obj): Omit<ErrorCause, 'error'> | undefined {
  const syscall = typeof x.syscall === 'string' ? x.syscall : undefined;
  const path = typeof x.path === 'string' ? x.path : undefined;
  const dest = typeof x.dest === 'string' ? x.dest : undefined;
  const what = path ? `cannot ${verb(syscall)} ${showPath(path)}${dest ? ` to ${showPath(dest)}` : ''}` : undefined;
  const say = (reason: string) => (what ? `${what}: ${reason}` : `${reason}${syscall ? ` (${syscall})` : ''}`);
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT': {
      const where = dest ?? path;
      return {
        code: 'disk_full',
        message: say(code === 'EDQUOT' ? 'the disk quota is exhausted' : 'no space left on the disk'),
        hint: `free space on the disk${where ? ` holding ${showPath(existing(where))}` : ' of the project directory (nself migrate writes .nself/migrations/ and the target\'s env files there)'}${code === 'EDQUOT' ? ' or raise the quota' : ''} (df -h shows it), then run the command again`,
      };
    }
    case 'EACCES':
    case 'EPERM':
      return {
        code: 'permission_denied',
        message: say('permission denied'),
        hint: path ? `fix the permissions of ${showPath(existing(dest ?? path))} (ls -ld), or run as the user who owns the project` : 'fix the file permissions in the project directory, or run as the user who owns the project',
      };
    case 'EROFS':
      return {
        code: 'read_only',
        message: say('the file system is read-only'),
        hint: 'nself migrate writes its checkpoint (.nself/migrations/) and the target\'s env files in the project directory: run it where the project is writable (or remount it read-write)',
      };
    case 'ENOTDIR': {
      const blocker = [path, dest].map((p) => (p ? fileInTheWay(p) : undefined)).find((b) => b !== undefined);
      if (blocker) {
        return {
          code: 'not_a_directory',
          message: say(`${showPath(blocker)} is a file, not a folder`),
          hint: `move or rename the file ${showPath(blocker)}: a folder is needed there`,
        };
      }
      return { code: 'not_a_directory', message: say('a part of the path is a file, not a folder'), hint: 'a file is in the way where a folder is needed: move or rename it' };
    }
    case 'EEXIST': {
      // mkdir of a folder where a file already is (a recursive mkdir says EEXIST, not ENOTDIR)
      if (syscall !== 'mkdir' || !path || !statSync(path, { throwIfNoEntry: false })?.isFile()) return undefined;
      return {
        code: 'not_a_directory',
        message: `cannot create the folder ${showPath(path)}: ${showPath(path)} is a file, not a folder`,
        hint: `move or rename the file ${showPath(path)}: a folder is needed there`,
      };
    }
    case 'EISDIR':
      return {
        code: 'is_a_directory',
        message: path ? `cannot ${verb(syscall)} ${showPath(path)}: it is a folder, not a file` : say('a folder is where a file is needed'),
        hint: path ? `move or rename the folder ${showPath(path)}: a file is needed there` : 'move or rename the folder that is in the way',
      };
    case 'ENOENT': {
      if (!syscall || !FS_SYSCALLS.has(syscall)) return undefined;
      const real = syscall === 'mkdir' && path ? whyNoFolder(path) : undefined;
      if (real) return fromErrno(real.code, { ...x, code: real.code, path: real.path });
      return {
        code: 'file_missing',
        message: say('no such file or folder'),
        hint: 'a file or folder nself migrate was using is not there (removed while it ran?); check that nothing else changes the project directory, then run the command again',
      };
    }
    case 'ECONNRESET':
    case 'EPIPE':
    case 'ECONNABORTED':
      if (path) return undefined;
      return { code: 'connection_lost', message: `the connection to the database server was lost (${code}${syscall ? ` on ${syscall}` : ''})`, hint: CONNECTION_ENDED_HINT };
    case 'ETIMEDOUT':
      if (syscall !== 'read' && syscall !== 'write') return undefined; // connect timeouts are connect.ts's business
      return { code: 'connection_lost', message: `the connection to the database server timed out (${code} on ${syscall})`, hint: CONNECTION_ENDED_HINT };
  }
  return undefined;
}
