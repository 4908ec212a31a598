/** File helpers shared by the layers that write files (config/, checkpoint/). */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Replace `file` atomically with `data` (same directory temp file, fsync, rename, fsync of the directory).
 * A failure whose error names no path (a write or fsync: ENOSPC, EIO…) is given `path` = `file`, so that the
 * message says which file could not be written.
 */
export async function writeFileAtomic(file: string, data: string | Buffer, mode: number): Promise<void> {
  try {
    await writeAtomic(file, data, mode);
  } catch (e) {
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
