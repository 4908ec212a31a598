/** File helpers shared by the layers that write files (config/, checkpoint/, env/). */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, createReadStream, existsSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { lstat, mkdir, open, readlink, realpath, rename, rm } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { MigrateError } from '../errors.js';

/**
 * Where a path finally points: `file` itself when it is not a symbolic link, else the end of its chain of links
 * (which may not exist yet: a dangling link names the file to create). Refuses a loop.
 */
export async function linkTarget(file: string): Promise<string> {
  let cur = file;
  for (let hops = 0; hops < 40; hops++) {
    let st;
    try {
      st = await lstat(cur);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return cur;
      throw e;
    }
    if (!st.isSymbolicLink()) return cur;
    const to = await readlink(cur);
    cur = resolve(await realpath(dirname(cur)), to);
  }
  throw Object.assign(new Error(`too many levels of symbolic links: ${file}`), { code: 'ELOOP' });
}

/**
 * Replace `file` atomically with `data` (same directory temp file, fsync, rename, fsync of the directory).
 * A symbolic link is written THROUGH: the file it points to is replaced, the link stays a link. Files the tool
 * owns (a checkpoint's manifest) pass `replaceLink`: a link planted there is replaced, never followed.
 */
export async function writeFileAtomic(file: string, data: string | Buffer, mode: number, opts: { replaceLink?: boolean } = {}): Promise<void> {
  if (!opts.replaceLink) file = await linkTarget(file);
  try {
    await writeAtomic(file, data, mode);
  } catch (e) {
    // A failure whose error names no path (a write or fsync: ENOSPC, EIO…) is given `path` = `file`, so that the
    // message says which file could not be written.
    if (e && typeof e === 'object' && (e as NodeJS.ErrnoException).syscall !== undefined && (e as NodeJS.ErrnoException).path === undefined) (e as NodeJS.ErrnoException).path = file;
    throw e;
  }
}

async function writeAtomic(file: string, data: string | Buffer, mode: number): Promise<void> {
  const dir = dirname(file);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(file)}.nself-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.chmod(mode); // the umask may have narrowed the mode given to open()
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  try {
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    /* directory fsync is not supported everywhere; the rename itself is atomic */
  }
}

/** SHA-256 (hex) and size of a file, streamed. */
export async function sha256File(path: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Make everything below `dir` (and `dir` itself) private to its owner: directories 0700, files 0600.
 * Symbolic links are never followed; entries that cannot be changed (owned by someone else) are left as they are.
 */
export function tightenTree(dir: string): void {
  const fix = (path: string, want: number) => {
    try {
      const st = lstatSync(path);
      if (st.isSymbolicLink()) return;
      if ((st.mode & 0o7777) !== want) chmodSync(path, want);
    } catch {
      /* best effort */
    }
  };
  fix(dir, PRIVATE_DIR_MODE);
  let ents;
  try {
    ents = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of ents) {
    const path = join(dir, e.name);
    if (e.isDirectory()) tightenTree(path);
    else if (e.isFile()) fix(path, PRIVATE_FILE_MODE);
  }
}

/**
 * The project's private state directory `.nself/`, ready to be written to: created 0700 with a `.gitignore`
 * holding `*` (so neither backups nor host keys are ever committed), and an existing one tightened (directories
 * 0700, files 0600, the `.gitignore` added when missing).
 */
export function ensureStateDir(projectDir: string): string {
  const dir = join(projectDir, '.nself');
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const ignore = join(dir, '.gitignore');
  if (!existsSync(ignore)) {
    try {
      writeFileSync(ignore, '# written by nself migrate: backups and host keys stay out of git\n*\n', { mode: PRIVATE_FILE_MODE, flag: 'wx' });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code !== 'EEXIST') {
        if (err.path === undefined) err.path = ignore; // a failed write(2) names no file: say which
        throw e;
      }
    }
  }
  tightenTree(dir);
  return dir;
}

function within(base: string, path: string): boolean {
  const rel = relative(base, path);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

function unsafe(label: string, value: unknown, why: string): MigrateError {
  const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return new MigrateError('checkpoint_unsafe_path', `${label} ${shown} ${why}: refused, nothing was changed`, {
    hint: 'the checkpoint manifest was edited or damaged; a manifest may only name files inside its checkpoint and the project',
  });
}

/**
 * The absolute path of `rel` below `base`, for a path read from somewhere untrusted (a checkpoint manifest).
 * Refused (MigrateError `checkpoint_unsafe_path`, naming `label` and the value) unless `rel` is a non-empty
 * relative path without NUL bytes and `..` segments whose existing parent directory, symbolic links resolved,
 * is still inside `base`. With `final: true` the path itself, when it exists, must resolve inside too (a backup
 * file); without, the last component may be a link to anywhere (a user's symlinked env file is written through).
 */
export async function insideDir(base: string, rel: unknown, label: string, opts: { final?: boolean } = {}): Promise<string> {
  if (typeof rel !== 'string') throw unsafe(label, rel, 'is not a path');
  if (rel === '') throw unsafe(label, rel, 'is empty');
  if (rel.includes('\0')) throw unsafe(label, rel, 'contains a NUL byte');
  if (isAbsolute(rel)) throw unsafe(label, rel, 'is an absolute path');
  if (rel.split(/[\\/]/).includes('..')) throw unsafe(label, rel, 'contains a ".." segment');
  const abs = resolve(base, rel);
  if (!within(base, abs)) throw unsafe(label, rel, 'does not name a file inside its directory');
  const realBase = await realpath(base).catch(() => resolve(base));
  // The deepest existing directory on the way must resolve inside base (no escape through a symlinked folder).
  let parent = dirname(abs);
  for (;;) {
    const real = await realpath(parent).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return undefined;
      throw e;
    });
    if (real !== undefined) {
      if (real !== realBase && !within(realBase, real)) throw unsafe(label, rel, 'leaves its directory through a symbolic link');
      break;
    }
    if (parent === base || dirname(parent) === parent) break;
    parent = dirname(parent);
  }
  if (opts.final) {
    const real = await realpath(abs).catch(() => undefined);
    if (real !== undefined && !within(realBase, real)) throw unsafe(label, rel, 'leaves its directory through a symbolic link');
  }
  return abs;
}

/** lstat, or undefined when nothing is there. */
export async function lstatOrUndefined(path: string) {
  try {
    return await lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
