/**
 * Checkpoints: `.nself/migrations/<id>/` = manifest.json + the backup files written by each component.
 *
 * A checkpoint is assembled in `.nself/migrations/.tmp-<id>/` (with `owner.json`: pid and host of the process
 * writing it) and renamed into place only when complete, so a reader never sees half a checkpoint. Everything
 * below `.nself/` is private (directories 0700, files 0600; `.nself/.gitignore` holds `*`).
 *
 * Trust: a manifest is data read from disk, not a promise. It carries the SHA-256 of its own canonical JSON
 * (`manifest_sha256`, format 2); every backup file's SHA-256 is recorded and checked again before a rollback
 * uses it; every path it names must stay inside the checkpoint (backup files) or the project (config files).
 */
import { randomBytes, createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { EXIT, MigrateError, refusedError } from '../errors.js';
import { ensureStateDir, insideDir, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, sha256File, tightenTree, writeFileAtomic, lstatOrUndefined } from '../util/fs.js';

export type CheckpointStatus = 'pending' | 'applied' | 'rolled_back';

export interface BackupFileEntry {
  /** Path inside the checkpoint directory, '/'-separated. */
  path: string;
  sha256: string;
  bytes: number;
}

export interface Manifest {
  /** 2 since manifests check themselves (`manifest_sha256`); 1 (older versions) is still read. */
  format: 1 | 2;
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
  /** Format 2: SHA-256 (hex) of the manifest's canonical JSON without this field (keys sorted, no whitespace). */
  manifest_sha256?: string;
}

/** Checkpoints kept per target after a successful migration unless `--keep` says otherwise. */
export const DEFAULT_KEEP = 20;

/** How old a draft without an owner record must be before it counts as abandoned (its writer may be starting). */
const OWNERLESS_GRACE_MS = 60_000;
const OWNER_FILE = 'owner.json';
const ID_SHAPE = /^\d{8}T\d{9}Z-[0-9a-f]{4,}$/;

export function migrationsDir(projectDir: string): string {
  return join(projectDir, '.nself', 'migrations');
}

/** A time-sortable id: 20261125T194512123Z-a1b2. */
export function newCheckpointId(now = new Date()): string {
  const iso = now.toISOString().replace(/[-:.]/g, ''); // 20261125T194512123Z
  return `${iso}-${randomBytes(2).toString('hex')}`;
}

/** JSON with object keys sorted and no whitespace: the form `manifest_sha256` is computed over. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

/** The self-checksum of a manifest: SHA-256 of its canonical JSON without `manifest_sha256`. */
export function manifestChecksum(manifest: Manifest): string {
  const { manifest_sha256: _, ...body } = manifest;
  const plain = JSON.parse(JSON.stringify(body)) as unknown; // exactly what a reader will parse
  return createHash('sha256').update(canonicalJson(plain)).digest('hex');
}

/**
 * Write a checkpoint's manifest (atomically, 0600) as format 2 with a fresh self-checksum. Every writer of a
 * manifest goes through here: a manifest written any other way fails its self-check.
 */
export async function writeManifest(cp: Checkpoint): Promise<void> {
  const { manifest_sha256: _, ...body } = cp.manifest;
  const m: Manifest = { ...body, format: 2 };
  m.manifest_sha256 = manifestChecksum(m);
  cp.manifest = m;
  await writeFileAtomic(join(cp.dir, 'manifest.json'), JSON.stringify(m, null, 2) + '\n', PRIVATE_FILE_MODE, { replaceLink: true });
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
  /** What opening the store did that the user should hear about (abandoned drafts removed). */
  notices: string[];
  /** Hash every file, write manifest.json (status 'pending'), make it all private, and move it into place. */
  commit(fields: Omit<Manifest, 'format' | 'id' | 'files' | 'status' | 'created_at' | 'manifest_sha256'>): Promise<Checkpoint>;
  /** Remove the draft (nothing was changed). */
  discard(): Promise<void>;
}

export interface Checkpoint {
  id: string;
  dir: string;
  manifest: Manifest;
}

export async function beginCheckpoint(projectDir: string, id = newCheckpointId()): Promise<CheckpointDraft> {
  ensureStateDir(projectDir);
  const root = migrationsDir(projectDir);
  await mkdir(root, { recursive: true, mode: PRIVATE_DIR_MODE });
  const notices = await removeAbandonedDrafts(projectDir);
  const dir = join(root, `.tmp-${id}`);
  await mkdir(dir, { mode: PRIVATE_DIR_MODE });
  await writeFileAtomic(join(dir, OWNER_FILE), JSON.stringify({ pid: process.pid, hostname: hostname(), started_at: new Date().toISOString() }) + '\n', PRIVATE_FILE_MODE, { replaceLink: true });
  await mkdir(join(dir, 'backup'), { mode: PRIVATE_DIR_MODE });
  const createdAt = new Date().toISOString();
  return {
    id,
    dir: join(dir, 'backup'),
    notices,
    async commit(fields) {
      const files: BackupFileEntry[] = [];
      for (const f of await listFiles(join(dir, 'backup'))) {
        const { sha256, bytes } = await sha256File(f);
        files.push({ path: relative(dir, f).split(sep).join('/'), sha256, bytes });
      }
      // Components create their files with default modes (createWriteStream, copyFile keeps the source's).
      tightenTree(dir);
      const manifest: Manifest = { format: 2, id, created_at: createdAt, status: 'pending', files, ...fields };
      const draft: Checkpoint = { id, dir, manifest };
      await writeManifest(draft);
      const finalDir = join(root, id);
      await rename(dir, finalDir);
      await rm(join(finalDir, OWNER_FILE), { force: true }).catch(() => {});
      return { id, dir: finalDir, manifest: draft.manifest };
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
  await writeManifest(cp);
}

export async function removeCheckpoint(cp: Checkpoint): Promise<void> {
  await rm(cp.dir, { recursive: true, force: true });
}

type Loaded = { ok: true; manifest: Manifest } | { ok: false; code: string; reason: string; target?: string };

/** Read and check one manifest: JSON, the shape of this tool's manifests, its id, its self-checksum. */
async function loadManifest(dir: string, id: string): Promise<Loaded> {
  let text: string;
  try {
    if ((await lstat(join(dir, 'manifest.json'))).isSymbolicLink()) return { ok: false, code: 'checkpoint_corrupt', reason: 'manifest.json is a symbolic link' };
    text = await readFile(join(dir, 'manifest.json'), 'utf8');
  } catch (e) {
    return { ok: false, code: 'checkpoint_unreadable', reason: `manifest.json cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})` };
  }
  let m: Manifest;
  try {
    m = JSON.parse(text) as Manifest;
  } catch {
    return { ok: false, code: 'checkpoint_corrupt', reason: 'manifest.json is not valid JSON' };
  }
  const target = typeof m?.target === 'string' ? m.target : undefined;
  const shapeOk =
    m !== null &&
    typeof m === 'object' &&
    (m.format === 1 || m.format === 2) &&
    typeof m.target === 'string' &&
    typeof m.source === 'string' &&
    Array.isArray(m.components) &&
    ['pending', 'applied', 'rolled_back'].includes(m.status) &&
    Array.isArray(m.files) &&
    typeof m.backup === 'object' &&
    m.backup !== null;
  if (!shapeOk) return { ok: false, code: 'checkpoint_corrupt', reason: 'manifest.json is not a checkpoint manifest of this tool', target };
  if (m.id !== id) return { ok: false, code: 'checkpoint_corrupt', reason: `manifest.json names checkpoint ${JSON.stringify(m.id)}, not its folder`, target };
  if (m.format === 2 && m.manifest_sha256 !== manifestChecksum(m)) {
    return { ok: false, code: 'checkpoint_corrupt', reason: 'manifest.json fails its SHA-256 self-check (edited or damaged after it was written)', target };
  }
  return { ok: true, manifest: m };
}

function damagedError(projectDir: string, name: string, l: { code: string; reason: string }): MigrateError {
  const where = relative(projectDir, join(migrationsDir(projectDir), name));
  return new MigrateError(l.code, `checkpoint ${name} is ${l.code === 'checkpoint_unreadable' ? 'unreadable' : 'corrupt'}: ${l.reason} (${where})`, {
    hint: 'the checkpoint cannot be used for rollback; remove the folder or restore it from a copy',
  });
}

/** Read one checkpoint's manifest; a missing, corrupt or self-check-failing manifest is a clear error. */
export async function readCheckpoint(projectDir: string, id: string): Promise<Checkpoint> {
  if (id === '' || id.startsWith('.') || /[\\/\0]/.test(id)) throw new MigrateError('checkpoint_not_found', `no checkpoint ${JSON.stringify(id)}`);
  const dir = join(migrationsDir(projectDir), id);
  const l = await loadManifest(dir, id);
  if (!l.ok) throw damagedError(projectDir, id, l);
  return { id, dir, manifest: l.manifest };
}

export interface SkippedFolder {
  name: string;
  reason: string;
}

export interface StoreScan {
  /** Checkpoints whose manifest reads and checks, newest first. */
  checkpoints: Checkpoint[];
  /** Folders that are not usable checkpoints (no manifest, unreadable, corrupt), with why. */
  skipped: SkippedFolder[];
  /** The skipped folders that hold a manifest (a checkpoint that is damaged), with the error reading it gives. */
  damaged: { name: string; error: MigrateError; target?: string }[];
  /** One line per skipped folder (and per removed draft when cleaning). */
  notices: string[];
}

/**
 * Everything in `.nself/migrations/`: readable checkpoints newest first, and the folders skipped (with a notice
 * each) — a stray or damaged folder never makes the store unusable. Drafts (`.tmp-*`) are not checkpoints;
 * `cleanDrafts` removes those whose writer is gone.
 */
export async function scanCheckpoints(projectDir: string, opts: { cleanDrafts?: boolean } = {}): Promise<StoreScan> {
  const root = migrationsDir(projectDir);
  const scan: StoreScan = { checkpoints: [], skipped: [], damaged: [], notices: [] };
  let ents;
  try {
    ents = await readdir(root, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return scan;
    throw e;
  }
  if (opts.cleanDrafts) scan.notices.push(...(await removeAbandonedDrafts(projectDir)));
  for (const ent of ents.sort((a, b) => (a.name < b.name ? 1 : a.name > b.name ? -1 : 0))) {
    if (ent.name.startsWith('.')) continue; // drafts, .gitignore, editors' files
    const skip = (reason: string) => {
      scan.skipped.push({ name: ent.name, reason });
      scan.notices.push(`skipped .nself/migrations/${ent.name}: ${reason}`);
    };
    if (ent.isSymbolicLink()) {
      skip('a symbolic link, not a checkpoint folder');
      continue;
    }
    if (!ent.isDirectory()) continue;
    const dir = join(root, ent.name);
    let hasManifest: boolean;
    try {
      hasManifest = (await lstatOrUndefined(join(dir, 'manifest.json'))) !== undefined;
    } catch (e) {
      const l = { code: 'checkpoint_unreadable', reason: `cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})` };
      scan.damaged.push({ name: ent.name, error: damagedError(projectDir, ent.name, l) });
      skip(l.reason);
      continue;
    }
    if (!hasManifest) {
      skip('no manifest.json (not a checkpoint)');
      continue;
    }
    const l = await loadManifest(dir, ent.name);
    if (l.ok) {
      scan.checkpoints.push({ id: ent.name, dir, manifest: l.manifest });
    } else {
      scan.damaged.push({ name: ent.name, error: damagedError(projectDir, ent.name, l), ...(l.target === undefined ? {} : { target: l.target }) });
      skip(l.reason);
    }
  }
  return scan;
}

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

/**
 * Remove `.tmp-<id>` drafts whose writer is gone: its owner.json names a process on this host that no longer
 * runs, or (a draft of an older version, or one killed before it wrote owner.json) it has no owner record and
 * is older than a minute. A draft of a live process, or of another host, is left alone. Never throws.
 */
async function removeAbandonedDrafts(projectDir: string): Promise<string[]> {
  const root = migrationsDir(projectDir);
  const removed: string[] = [];
  const notices: string[] = [];
  let ents;
  try {
    ents = await readdir(root, { withFileTypes: true });
  } catch {
    return notices;
  }
  for (const ent of ents) {
    if (!ent.isDirectory() || !ent.name.startsWith('.tmp-')) continue;
    const dir = join(root, ent.name);
    try {
      let owner: { pid?: unknown; hostname?: unknown } | undefined;
      try {
        owner = JSON.parse(await readFile(join(dir, OWNER_FILE), 'utf8'));
      } catch {
        owner = undefined;
      }
      let abandoned: boolean;
      if (owner && typeof owner.pid === 'number' && Number.isInteger(owner.pid) && owner.pid > 0) {
        abandoned = owner.hostname === hostname() && !pidAlive(owner.pid);
      } else {
        abandoned = Date.now() - (await stat(dir)).mtimeMs > OWNERLESS_GRACE_MS;
      }
      if (!abandoned) continue;
      await rm(dir, { recursive: true, force: true });
      removed.push(ent.name);
    } catch (e) {
      notices.push(`could not remove the abandoned checkpoint draft .nself/migrations/${ent.name}: ${(e as Error).message}`);
    }
  }
  if (removed.length > 0) {
    notices.unshift(`removed ${removed.length} abandoned checkpoint draft(s) of runs that did not finish: ${removed.map((n) => `.nself/migrations/${n}`).join(', ')}`);
  }
  return notices;
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

/** The latest readable checkpoint that was applied and not yet rolled back, or undefined. */
export async function latestApplied(projectDir: string): Promise<Checkpoint | undefined> {
  return (await scanCheckpoints(projectDir)).checkpoints.find((c) => c.manifest.status === 'applied');
}

/** Of `checkpoints` (newest first), the newest applied one per target. */
function newestAppliedPerTarget(checkpoints: Checkpoint[]): Map<string, Checkpoint> {
  const out = new Map<string, Checkpoint>();
  for (const c of checkpoints) if (c.manifest.status === 'applied' && !out.has(c.manifest.target)) out.set(c.manifest.target, c);
  return out;
}

export interface CheckpointSummary {
  id: string;
  created_at: string;
  source: string;
  target: string;
  components: string[];
  status: CheckpointStatus;
  applied_at?: string;
  rolled_back_at?: string;
  /** The newest applied (not rolled back) checkpoint of its target: the one a rollback of that target undoes. */
  latest: boolean;
}

/** The listing behind `rollback --list`: every checkpoint newest first, the folders skipped, and notices. */
export async function listCheckpoints(projectDir: string, opts: { cleanDrafts?: boolean } = {}): Promise<{ checkpoints: CheckpointSummary[]; skipped: SkippedFolder[]; notices: string[] }> {
  const scan = await scanCheckpoints(projectDir, opts);
  const latest = new Set(newestAppliedPerTarget(scan.checkpoints).values());
  const checkpoints = scan.checkpoints.map((c) => {
    const m = c.manifest;
    return {
      id: c.id,
      created_at: m.created_at,
      source: m.source,
      target: m.target,
      components: m.components,
      status: m.status,
      ...(m.applied_at ? { applied_at: m.applied_at } : {}),
      ...(m.rolled_back_at ? { rolled_back_at: m.rolled_back_at } : {}),
      latest: latest.has(c),
    };
  });
  return { checkpoints, skipped: scan.skipped, notices: scan.notices };
}

const LIST_HINT = 'run `nself migrate rollback --list` to see the checkpoints of this project';

/**
 * Which checkpoint `rollback` restores, checked before anything is written.
 *
 * Without `id`: the newest applied (not rolled back) checkpoint. With `id` (a full id or a unique prefix): that
 * checkpoint, which must be applied and the newest applied one of its target — an older one assumes the newer
 * ones were undone first — unless `force` (exit 3 otherwise, naming the newer one). A damaged checkpoint folder
 * newer than the choice that may belong to the same target makes the choice uncertain: refused (exit 3) unless
 * `force`. The chosen manifest's paths and backup files are then checked (checkpoint_unsafe_path,
 * checkpoint_integrity). `readOnly` (dry run): nothing is written, not even abandoned drafts removed. Notices (folders
 * skipped, --force overrides, an old manifest format) go to `notice` as they arise.
 */
export async function selectForRollback(
  projectDir: string,
  opts: { id?: string; force: boolean; readOnly?: boolean; notice?: (message: string) => void },
): Promise<Checkpoint> {
  if (!opts.readOnly && existsSync(join(projectDir, '.nself'))) ensureStateDir(projectDir);
  const scan = await scanCheckpoints(projectDir, { cleanDrafts: !opts.readOnly });
  // Told at once, so that they are heard also when the selection fails.
  const notices = { push: (m: string) => opts.notice?.(m) };
  for (const n of scan.notices) notices.push(n);
  let cp: Checkpoint | undefined;
  if (opts.id === undefined) {
    cp = scan.checkpoints.find((c) => c.manifest.status === 'applied');
    if (!cp) {
      // The newest migration may be the damaged one: say that rather than "nothing to roll back".
      const d = scan.damaged.find((x) => ID_SHAPE.test(x.name));
      if (d) throw d.error;
      throw new MigrateError('no_checkpoint', 'nothing to roll back: no applied migration found in .nself/migrations/', {
        hint: 'rollback undoes the last `nself migrate <source> <target>` run from this project directory (see -C)',
      });
    }
  } else {
    const id = opts.id;
    const names = [...scan.checkpoints.map((c) => c.id), ...scan.skipped.map((s) => s.name)];
    const exact = names.filter((n) => n === id);
    const matches = exact.length > 0 ? exact : id.length > 0 ? names.filter((n) => n.startsWith(id)) : [];
    if (matches.length === 0) throw new MigrateError('checkpoint_not_found', `no checkpoint ${JSON.stringify(id)} in .nself/migrations/`, { hint: LIST_HINT });
    if (matches.length > 1) {
      throw new MigrateError('checkpoint_ambiguous', `${JSON.stringify(id)} matches ${matches.length} checkpoints: ${matches.slice(0, 3).join(', ')}${matches.length > 3 ? ', …' : ''}`, {
        hint: 'give more of the id; ' + LIST_HINT,
      });
    }
    const name = matches[0]!;
    cp = scan.checkpoints.find((c) => c.id === name);
    if (!cp) {
      const d = scan.damaged.find((x) => x.name === name);
      if (d) throw d.error;
      const s = scan.skipped.find((x) => x.name === name)!;
      throw new MigrateError('checkpoint_not_found', `.nself/migrations/${name} is not a usable checkpoint: ${s.reason}`, { hint: LIST_HINT });
    }
    const m = cp.manifest;
    if (m.status !== 'applied') {
      const why = m.status === 'rolled_back' ? `was already rolled back${m.rolled_back_at ? ` at ${m.rolled_back_at}` : ''}` : 'was never applied (status pending: its migration did not finish)';
      throw new MigrateError('checkpoint_not_applied', `checkpoint ${cp.id} (${m.source} → ${m.target}) ${why}: nothing to undo`, { hint: LIST_HINT });
    }
    const newer = scan.checkpoints.filter((c) => c.id > cp!.id && c.manifest.target === m.target && c.manifest.status === 'applied');
    if (newer.length > 0) {
      const names = newer.map((c) => c.id);
      if (!opts.force) {
        throw new MigrateError(
          'checkpoint_not_latest',
          `checkpoint ${cp.id} is not the latest migration of ${m.target}: ${names[0]}${names.length > 1 ? ` (and ${names.length - 1} more)` : ''} is newer and still applied — roll back ${names[0]} first`,
          { hint: `run \`nself migrate rollback ${names[0]}\` first (newest first), or pass --force to restore ${m.target} to its state before ${cp.id} anyway`, exitCode: EXIT.refused },
        );
      }
      notices.push(`--force: rolling back ${cp.id} past ${names.length} newer applied checkpoint(s) of ${m.target} (${names.join(', ')}); they stay marked applied`);
    }
  }
  const chosen = cp;
  const unsure = scan.damaged.filter((d) => ID_SHAPE.test(d.name) && d.name > chosen.id && (d.target === undefined || d.target === chosen.manifest.target));
  if (unsure.length > 0) {
    const d = unsure[unsure.length - 1]!;
    if (!opts.force) {
      throw refusedError(
        `${d.error.message}; it is newer than ${chosen.id} and may be a migration of ${chosen.manifest.target} that rolling back ${chosen.id} would skip`,
        `remove or restore .nself/migrations/${d.name}, or pass --force to roll back ${chosen.id} anyway`,
      );
    }
    notices.push(`--force: rolling back ${chosen.id} although the newer checkpoint folder ${d.name} is damaged`);
  }
  if (chosen.manifest.format === 1) {
    notices.push(`checkpoint ${chosen.id} was written by an older version (manifest format 1): its manifest carries no checksum of its own, so only its paths and backup files are checked`);
  }
  await checkManifestPaths(projectDir, chosen);
  await verifyIntegrity(chosen);
  return chosen;
}

/**
 * Every path the manifest names must stay where it belongs: `files[].path` and every `file`/`copy` field of
 * the `backup` metadata inside the checkpoint, config `path`s inside the project (see insideDir). A backup
 * file a component names must also be one of the hashed `files`. Throws before anything is written.
 */
export async function checkManifestPaths(projectDir: string, cp: Checkpoint): Promise<void> {
  const m = cp.manifest;
  const label = (field: string) => `checkpoint ${cp.id}: ${field}`;
  const listed = new Set<string>();
  for (const [i, f] of m.files.entries()) {
    const abs = await insideDir(cp.dir, f?.path, label(`files[${i}].path`), { final: true });
    listed.add(relative(cp.dir, abs));
  }
  const config = m.backup.config;
  if (config !== undefined && (!Array.isArray(config) || !config.every((b) => b !== null && typeof b === 'object' && typeof b.path === 'string' && typeof b.existed === 'boolean'))) {
    throw new MigrateError('checkpoint_corrupt', `checkpoint ${cp.id}: backup.config is not a list of file backups`, { hint: 'the checkpoint cannot be used for rollback; remove the folder or restore it from a copy' });
  }
  const base = backupDir(cp);
  for (const [component, meta] of Object.entries(m.backup)) {
    // config copies are relative to backup/, the database components' files to backup/<component>/
    const dir = component === 'config' ? base : join(base, component);
    const walk = async (v: unknown, field: string): Promise<void> => {
      if (Array.isArray(v)) {
        for (const [i, x] of v.entries()) await walk(x, `${field}[${i}]`);
        return;
      }
      if (v === null || typeof v !== 'object') return;
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
        const f = `${field}.${k}`;
        if ((k === 'file' || k === 'copy') && x !== undefined) {
          const abs = await insideDir(dir, x, label(f), { final: true });
          if (!listed.has(relative(cp.dir, abs))) {
            throw new MigrateError('checkpoint_integrity', `checkpoint ${cp.id}: ${f} names ${JSON.stringify(x)}, which is not among the manifest's checksummed files`, {
              hint: 'the backup cannot be trusted; rollback refused',
            });
          }
        } else if (component === 'config' && k === 'path' && /^backup\.config\[\d+\]$/.test(field)) {
          await insideDir(projectDir, x, label(f));
        } else {
          await walk(x, f);
        }
      }
    };
    await walk(meta, `backup.${component}`);
  }
}

/** Check every backup file against its recorded SHA-256; throws checkpoint_integrity on any mismatch. */
export async function verifyIntegrity(cp: Checkpoint): Promise<void> {
  for (const [i, f] of cp.manifest.files.entries()) {
    const path = await insideDir(cp.dir, f?.path, `checkpoint ${cp.id}: files[${i}].path`, { final: true });
    let actual: { sha256: string; bytes: number };
    try {
      if (!(await lstat(path)).isFile()) throw new Error('not a regular file');
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

/**
 * Retention, after a successful migration to `target`: of its checkpoints beyond the newest `keep`, remove those
 * that can no longer be rolled back without --force or were rolled back already (applied but superseded by a
 * newer applied one, or rolled_back). Never a pending one (crash recovery owns those), never the newest applied
 * one, never a folder it cannot read. Never throws: the migration is done; a failure is a notice.
 */
export async function pruneCheckpoints(projectDir: string, target: string, keep: number): Promise<{ removed: string[]; notices: string[] }> {
  const removed: string[] = [];
  const notices: string[] = [];
  try {
    const scan = await scanCheckpoints(projectDir);
    const mine = scan.checkpoints.filter((c) => c.manifest.target === target);
    const newest = newestAppliedPerTarget(mine).get(target);
    for (const c of mine.slice(Math.max(1, keep))) {
      if (c === newest || (c.manifest.status !== 'applied' && c.manifest.status !== 'rolled_back')) continue;
      try {
        await removeCheckpoint(c);
        removed.push(c.id);
      } catch (e) {
        notices.push(`could not remove the old checkpoint ${c.id}: ${(e as Error).message}`);
      }
    }
  } catch (e) {
    notices.push(`old checkpoints of ${target} were not pruned: ${(e as Error).message}`);
  }
  if (removed.length > 0) notices.unshift(`removed ${removed.length} old checkpoint(s) of ${target} (keeping ${keep})`);
  return { removed, notices };
}

/** The directory holding a committed checkpoint's backup files (what the components wrote). */
export function backupDir(cp: Checkpoint): string {
  return join(cp.dir, 'backup');
}
