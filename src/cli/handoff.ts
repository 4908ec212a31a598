/**
 * Living beside the nself CLI. `nself <command>` for any command but `migrate` belongs to the nself CLI
 * (bash), which is usually installed as `nself` too: this module finds the next `nself` on PATH that is not
 * this tool, and runs it with the same arguments. It is loaded on every such call, so it stays small (node
 * built-ins and errors.ts only).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, closeSync, constants, openSync, readFileSync, readSync, realpathSync, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { EXIT, MigrateError } from '../errors.js';

/** A file carrying a line `// nself-migrate-bin` or `# nself-migrate-bin` is this tool, never the nself CLI. */
export const MARKER = 'nself-migrate-bin';
/** Set for the nself CLI we hand over to: who handed over, for which arguments, through which files. */
export const HANDOFF_ENV = 'NSELF_MIGRATE_HANDOFF';
export const INSTALL_NSELF_CLI = 'install the nself CLI (curl -sSL https://install.nself.org | bash — https://github.com/nself-org/cli)';
/** PATH when the variable is unset: what execvp(3) searches. */
const DEFAULT_PATH = '/usr/bin:/bin';
/** More hand-overs nested inside each other than this is a loop, whatever it looks like. */
const MAX_DEPTH = 8;

const HEAD_BYTES = 4096;
const MARKER_LINE = /^[ \t]*(?:#|\/\/)[ \t]*nself-migrate-bin\b/m;
/** A small launcher script that runs one of our bins from an installed package (pnpm's global shims, …). */
const RUNS_OUR_BIN = /nself-migrate[\\/]bin[\\/]nself/;

function realpathOrUndefined(file: string): string | undefined {
  try {
    return realpathSync(file);
  } catch {
    return undefined;
  }
}

/** The first bytes of a file as text ('' when it cannot be read). */
function head(file: string): string {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const buf = Buffer.alloc(HEAD_BYTES);
    const n = readSync(fd, buf, 0, HEAD_BYTES, 0);
    return buf.subarray(0, n).toString('latin1');
  } catch {
    return '';
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Is this executable one of ours: our bin (by real path), a copy of it (marker), or a script that runs it? */
function isOurs(real: string, size: number, own: ReadonlySet<string>): boolean {
  if (own.has(real)) return true;
  const text = head(real);
  if (MARKER_LINE.test(text)) return true;
  return size <= HEAD_BYTES && text.startsWith('#!') && RUNS_OUR_BIN.test(text);
}

/**
 * The directories of PATH in order, made absolute as POSIX says: an empty entry is the current directory.
 * Without a current directory (`cwd` undefined: it was removed), relative entries are skipped.
 */
export function pathDirs(path: string | undefined, cwd: string | undefined): string[] {
  const dirs: string[] = [];
  for (const entry of (path ?? DEFAULT_PATH).split(delimiter)) {
    const dir = isAbsolute(entry) ? entry : cwd === undefined ? undefined : resolve(cwd, entry);
    if (dir !== undefined && !dirs.includes(dir)) dirs.push(dir);
  }
  return dirs;
}

/**
 * The `nself` a shell would run if this tool were not installed: the first executable regular file named
 * `nself` on PATH that is not ours. `own` holds the real paths of this tool's bin files.
 */
export function nextNself(opts: { path: string | undefined; cwd: string | undefined; own: Iterable<string> }): string | undefined {
  const own = new Set([...opts.own].map((f) => realpathOrUndefined(f) ?? f));
  for (const dir of pathDirs(opts.path, opts.cwd)) {
    const file = join(dir, 'nself');
    try {
      const st = statSync(file);
      if (!st.isFile()) continue;
      accessSync(file, constants.X_OK);
      const real = realpathSync(file);
      if (isOurs(real, st.size, own)) continue;
      return file;
    } catch {
      continue; // missing, dangling symlink, not executable
    }
  }
  return undefined;
}

interface HandoffRecord {
  /** The process that handed over. */
  pid: number;
  /** A hash of the arguments it handed over. */
  args: string;
  /** The files handed to so far, outermost first (nested hand-overs: the nself CLI calling `nself …`). */
  via: string[];
}

function argsKey(argv: string[]): string {
  return createHash('sha256').update(JSON.stringify(argv)).digest('hex').slice(0, 24);
}

function parseRecord(text: string | undefined): HandoffRecord | undefined {
  if (!text) return undefined;
  try {
    const r = JSON.parse(text) as Partial<HandoffRecord>;
    if (typeof r.pid === 'number' && typeof r.args === 'string' && Array.isArray(r.via) && r.via.every((v) => typeof v === 'string')) {
      return r as HandoffRecord;
    }
  } catch {
    /* not ours to understand: ignore */
  }
  return undefined;
}

/** The parent of `pid` (Linux /proc), or undefined where that cannot be read. */
function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return Number.isInteger(ppid) ? ppid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Called when `nself <command>` is about to be handed over. If this very command line was handed over by
 * our own parent or grandparent, the file we handed it to ran this tool again (a wrapper we could not tell
 * apart): stop instead of recursing. A different command line is the nself CLI calling `nself …` itself
 * (it does: `nself db backup` from inside another command), which is handed over again as usual.
 * Returns the environment for the next hand-over.
 */
export function handoffEnv(argv: string[], env: NodeJS.ProcessEnv, target: string): NodeJS.ProcessEnv {
  const before = parseRecord(env[HANDOFF_ENV]);
  const key = argsKey(argv);
  const command = `nself ${argv[0]}`;
  if (before && before.args === key && (before.pid === process.ppid || before.pid === parentOf(process.ppid))) {
    const through = before.via[before.via.length - 1] ?? 'a file on PATH';
    throw new MigrateError('handoff_loop', `"${command}" came back to this tool: ${through} runs nself-migrate again instead of the nself CLI`, {
      hint: `take ${through} off PATH or put the nself CLI's directory before it (a wrapper of your own can carry a line "# ${MARKER}" to be skipped); or ${INSTALL_NSELF_CLI}`,
    });
  }
  const via = [...(before?.via ?? []), target];
  if (via.length > MAX_DEPTH) {
    throw new MigrateError('handoff_loop', `"${command}": ${via.length} hand-overs nested inside each other (${via.join(' → ')}); stopping`, {
      hint: `check that the nself CLI on PATH is not a wrapper that runs nself-migrate; unset ${HANDOFF_ENV} if it was left in your environment`,
    });
  }
  const record: HandoffRecord = { pid: process.pid, args: key, via };
  return { ...env, [HANDOFF_ENV]: JSON.stringify(record) };
}

export type HandoffResult = { code: number } | { signal: NodeJS.Signals };

/** Signals passed on to the nself CLI while it runs (it may get them from the terminal as well). */
const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

/**
 * Run `file` with `argv`, sharing stdin/stdout/stderr, and resolve with how it ended. Nothing here touches
 * process.stdin/stdout/stderr: opening them would switch the shared pipes to non-blocking mode under the
 * child's feet.
 */
export function handOver(file: string, argv: string[], env: NodeJS.ProcessEnv): Promise<HandoffResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, argv, { stdio: 'inherit', env, argv0: 'nself' });
    const forward = (signal: NodeJS.Signals) => {
      child.kill(signal);
    };
    for (const s of FORWARDED) process.on(s, forward);
    let settled = false;
    const settle = () => {
      if (settled) return false;
      settled = true;
      for (const s of FORWARDED) process.off(s, forward);
      return true;
    };
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (!settle()) return;
      reject(
        new MigrateError('handoff_failed', `could not start the nself CLI at ${file}: ${e.code === 'ENOENT' ? 'the interpreter on its #! line was not found' : (e.code ?? e.message)}`, {
          hint: 'check that the file is a working executable (for a script: its #! line)',
          exitCode: EXIT.cannotRun,
        }),
      );
    });
    child.on('exit', (code, signal) => {
      if (!settle()) return;
      resolvePromise(signal ? { signal } : { code: code ?? 1 });
    });
  });
}
