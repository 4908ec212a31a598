/**
 * Byte-exact backup and restore of project files (the config component's target files).
 * A file that did not exist is recorded as absent, and rollback removes it again.
 *
 * Symbolic links: a project file that is a link (e.g. `.env.staging -> ../shared/staging.env`) is backed up by
 * the content of the file it points to and recorded with `link` (what the link said). Migrate and rollback
 * write through the link (writeFileAtomic), so the link stays a link and the linked file gets the content.
 */
import { chmod, copyFile, mkdir, readFile, readlink, rm, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { MigrateError } from '../errors.js';
import { insideDir, linkTarget, writeFileAtomic, lstatOrUndefined } from '../util/fs.js';

export interface FileBackup {
  /** Project-relative path of the original file. */
  path: string;
  existed: boolean;
  mode?: number;
  /** Path of the copy inside the backup directory. */
  copy?: string;
  /** The path was a symbolic link with this target (its content, when `existed`, is the linked file's). */
  link?: string;
}

export async function backupFiles(projectDir: string, files: string[], backupDir: string): Promise<FileBackup[]> {
  const out: FileBackup[] = [];
  let n = 0;
  for (const abs of files) {
    const path = relative(projectDir, abs);
    const l = await lstatOrUndefined(abs);
    const link = l?.isSymbolicLink() ? { link: await readlink(abs) } : {};
    let st;
    try {
      st = await stat(abs);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        out.push({ path, existed: false, ...link });
        continue;
      }
      throw e;
    }
    const copy = join('files', String(n++));
    await mkdir(join(backupDir, 'files'), { recursive: true, mode: 0o700 });
    await copyFile(abs, join(backupDir, copy));
    await chmod(join(backupDir, copy), 0o600); // a copy of an env file holds secrets: private whatever the original's mode
    out.push({ path, existed: true, mode: st.mode & 0o7777, copy, ...link });
  }
  return out;
}

/**
 * Put every backed-up file back byte for byte (atomically, through a symbolic link when the path is one), and
 * remove files that did not exist. Every path is checked first (inside the project, copies inside the backup);
 * nothing is written unless all are acceptable.
 *
 * A file that did not exist: a regular file there now was created by the migration and is removed; a link there
 * now is removed itself (never followed), except a link that was already there, dangling, at backup time: the
 * migration wrote through it, so the file it created at the link's end is removed when it is inside the project,
 * and refused (`rollback_unsafe_delete`) when it is outside — a link is never followed to delete outside it.
 */
export async function restoreFiles(projectDir: string, backups: FileBackup[], backupDir: string): Promise<void> {
  const actions: (() => Promise<void>)[] = [];
  for (const [i, b] of backups.entries()) {
    const abs = await insideDir(projectDir, b.path, `backup.config[${i}].path`);
    if (!b.existed) {
      const now = await lstatOrUndefined(abs);
      if (!now) continue;
      if (now.isSymbolicLink() && b.link !== undefined) {
        const end = await linkTarget(abs);
        if (!(await lstatOrUndefined(end))) continue;
        const rel = relative(projectDir, end);
        if (rel === '' || rel === '..' || rel.startsWith('../') || isAbsolute(rel)) {
          throw new MigrateError('rollback_unsafe_delete', `${b.path} is a link to ${end}, outside the project: rollback does not delete through it`, {
            hint: `the migration created ${end} through the link; remove it yourself, then run the rollback again`,
          });
        }
        actions.push(() => rm(end, { force: true }));
      } else {
        actions.push(() => rm(abs, { force: true }));
      }
      continue;
    }
    const copy = await insideDir(backupDir, b.copy, `backup.config[${i}].copy`, { final: true });
    actions.push(async () => {
      const bytes = await readFile(copy);
      // Already as it was (e.g. the write that failed never got to its rename): nothing to do — and nothing that
      // could fail again for the reason the write did (a full disk).
      const now = await readFile(abs).catch(() => undefined);
      const mode = await stat(abs).then((s) => s.mode & 0o7777, () => undefined);
      if (now !== undefined && now.equals(bytes) && mode === (b.mode ?? 0o644)) return;
      await mkdir(dirname(abs), { recursive: true });
      await writeFileAtomic(abs, bytes, b.mode ?? 0o644);
    });
  }
  for (const a of actions) await a();
}
