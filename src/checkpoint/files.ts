/**
 * Byte-exact backup and restore of project files (the config component's target files).
 * A file that did not exist is recorded as absent, and rollback removes it again.
 */
import { copyFile, mkdir, readFile, rm, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { writeFileAtomic } from '../util/fs.js';

export interface FileBackup {
  /** Project-relative path of the original file. */
  path: string;
  existed: boolean;
  mode?: number;
  /** Path of the copy inside the backup directory. */
  copy?: string;
}

export async function backupFiles(projectDir: string, files: string[], backupDir: string): Promise<FileBackup[]> {
  const out: FileBackup[] = [];
  let n = 0;
  for (const abs of files) {
    const path = relative(projectDir, abs);
    let st;
    try {
      st = await stat(abs);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        out.push({ path, existed: false });
        continue;
      }
      throw e;
    }
    const copy = join('files', String(n++));
    await mkdir(join(backupDir, 'files'), { recursive: true });
    await copyFile(abs, join(backupDir, copy));
    out.push({ path, existed: true, mode: st.mode & 0o7777, copy });
  }
  return out;
}

/** Put every backed-up file back byte for byte (atomically, unless it is already so), and remove files that did not exist. */
export async function restoreFiles(projectDir: string, backups: FileBackup[], backupDir: string): Promise<void> {
  for (const b of backups) {
    const abs = resolve(projectDir, b.path);
    if (!b.existed) {
      await rm(abs, { force: true });
      continue;
    }
    const bytes = await readFile(join(backupDir, b.copy!));
    // Already as it was (e.g. the write that failed never got to its rename): nothing to do — and nothing that
    // could fail again for the reason the write did (a full disk).
    const now = await readFile(abs).catch(() => undefined);
    const mode = await stat(abs).then((s) => s.mode & 0o7777, () => undefined);
    if (now !== undefined && now.equals(bytes) && mode === (b.mode ?? 0o644)) continue;
    await mkdir(dirname(abs), { recursive: true });
    await writeFileAtomic(abs, bytes, b.mode ?? 0o644);
  }
}
