/**
 * Checkpoints: `.nself/migrations/<id>/` = manifest.json + the backup files written by each component.
 *
 * A checkpoint is assembled in `.nself/migrations/.tmp-<id>/` and renamed into place only when complete,
 * so a reader never sees half a checkpoint. Every backup file's SHA-256 is recorded in the manifest and
 * checked again before a rollback uses it.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { MigrateError } from '../errors.js';
import { sha256File, writeFileAtomic } from '../util/fs.js';

export type CheckpointStatus = 'pending' | 'applied' | 'rolled_back';

export interface BackupFileEntry {
  /** Path inside the checkpoint directory, '/'-separated. */
  path: string;
  sha256: string;
  bytes: number;
}

export interface Manifest {
  format: 1;
  id: string;
  created_at: string;
  source: string;
  target: string;
  components: string[];
  tool: { name: string; version: string };
  status: CheckpointStatus;
  applied_at?: string;
  rolled_back_at?: string;
  /** The Plan the migration executed. */
  plan: unknown;
  /** Every backup file with its checksum. */
  files: BackupFileEntry[];
  /** Per-component metadata needed to restore (returned by each component's backup function). */
  backup: Record<string, unknown>;
  /** What the migration left on the target (recorded at COMMIT), so that rollback can tell what changed since. */
  after?: unknown;
}

export function migrationsDir(projectDir: string): string {
  return join(projectDir, '.nself', 'migrations');
}

/** A time-sortable id: 20261125T194512123Z-a1b2. */
export function newCheckpointId(now = new Date()): string {
  const iso = now.toISOString().replace(/[-:.]/g, ''); // 20261125T194512123Z
  return `${iso}-${randomBytes(2).toString('hex')}`;
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const ent of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (ent.isFile()) out.push(join(ent.parentPath ?? (ent as any).path, ent.name));
  }
  return out.sort();
}

export interface CheckpointDraft {
  id: string;
  /** Where components write their backup files. */
  dir: string;
  /** Hash every file, write manifest.json (status 'pending'), and move the checkpoint into place. */
  commit(fields: Omit<Manifest, 'format' | 'id' | 'files' | 'status' | 'created_at'>): Promise<Checkpoint>;
  /** Remove the draft (nothing was changed). */
  discard(): Promise<void>;
}

export interface Checkpoint {
  id: string;
  dir: string;
  manifest: Manifest;
}

export async function beginCheckpoint(projectDir: string, id = newCheckpointId()): Promise<CheckpointDraft> {
  const root = migrationsDir(projectDir);
  const dir = join(root, `.tmp-${id}`);
  await mkdir(join(dir, 'backup'), { recursive: true });
  const createdAt = new Date().toISOString();
  return {
    id,
    dir: join(dir, 'backup'),
    async commit(fields) {
      const files: BackupFileEntry[] = [];
      for (const f of await listFiles(dir)) {
        if (relative(dir, f) === 'journal.json') continue; // the run's journal changes and goes; it is no backup file
        const { sha256, bytes } = await sha256File(f);
        files.push({ path: relative(dir, f).split(sep).join('/'), sha256, bytes });
      }
      const manifest: Manifest = { format: 1, id, created_at: createdAt, status: 'pending', files, ...fields };
      await writeFileAtomic(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n', 0o600);
      const finalDir = join(root, id);
      await rename(dir, finalDir);
      return { id, dir: finalDir, manifest };
    },
    async discard() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function updateStatus(cp: Checkpoint, status: CheckpointStatus): Promise<void> {
  cp.manifest.status = status;
  const now = new Date().toISOString();
  if (status === 'applied') cp.manifest.applied_at = now;
  if (status === 'rolled_back') cp.manifest.rolled_back_at = now;
  await writeFileAtomic(join(cp.dir, 'manifest.json'), JSON.stringify(cp.manifest, null, 2) + '\n', 0o600);
}

export async function removeCheckpoint(cp: Checkpoint): Promise<void> {
  await rm(cp.dir, { recursive: true, force: true });
}

/** Read one checkpoint's manifest; a missing or corrupt manifest is a clear error. */
export async function readCheckpoint(projectDir: string, id: string): Promise<Checkpoint> {
  const dir = join(migrationsDir(projectDir), id);
  const file = join(dir, 'manifest.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new MigrateError('checkpoint_unreadable', `checkpoint ${id} cannot be read: ${(e as NodeJS.ErrnoException).code ?? String(e)} (${relative(projectDir, file)})`, {
      hint: 'the checkpoint directory is damaged; remove it or restore it from a copy',
    });
  }
  let manifest: Manifest;
  try {
    manifest = JSON.parse(text) as Manifest;
  } catch {
    throw new MigrateError('checkpoint_corrupt', `checkpoint ${id} is corrupt: ${relative(projectDir, file)} is not valid JSON`, {
      hint: 'the checkpoint cannot be used for rollback; remove it or restore it from a copy',
    });
  }
  if (manifest?.format !== 1 || manifest.id !== id || !Array.isArray(manifest.files) || typeof manifest.backup !== 'object') {
    throw new MigrateError('checkpoint_corrupt', `checkpoint ${id} is corrupt: ${relative(projectDir, file)} is not a checkpoint manifest of this tool`, {
      hint: 'the checkpoint cannot be used for rollback; remove it or restore it from a copy',
    });
  }
  return { id, dir, manifest };
}

/** Every committed checkpoint id, oldest first (drafts `.tmp-*` are ignored). */
export async function listCheckpointIds(projectDir: string): Promise<string[]> {
  try {
    const ents = await readdir(migrationsDir(projectDir), { withFileTypes: true });
    return ents.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/** The latest checkpoint that was applied and not yet rolled back, or undefined. */
export async function latestApplied(projectDir: string): Promise<Checkpoint | undefined> {
  const ids = await listCheckpointIds(projectDir);
  for (const id of ids.reverse()) {
    const cp = await readCheckpoint(projectDir, id);
    if (cp.manifest.status === 'applied') return cp;
  }
  return undefined;
}

/** Check every backup file against its recorded SHA-256; throws checkpoint_integrity on any mismatch. */
export async function verifyIntegrity(cp: Checkpoint): Promise<void> {
  for (const f of cp.manifest.files) {
    const path = join(cp.dir, ...f.path.split('/'));
    let actual: { sha256: string; bytes: number };
    try {
      await stat(path);
      actual = await sha256File(path);
    } catch {
      throw new MigrateError('checkpoint_integrity', `checkpoint ${cp.id} is missing its backup file ${f.path}`, {
        hint: 'the backup cannot be trusted; rollback refused',
      });
    }
    if (actual.sha256 !== f.sha256 || actual.bytes !== f.bytes) {
      throw new MigrateError('checkpoint_integrity', `checkpoint ${cp.id}: backup file ${f.path} fails its SHA-256 check`, {
        hint: 'the backup was modified or damaged after it was written; rollback refused',
      });
    }
  }
}

/** The directory holding a committed checkpoint's backup files (what the components wrote). */
export function backupDir(cp: Checkpoint): string {
  return join(cp.dir, 'backup');
}
