/**
 * The journal: what a target transaction cannot hold. Sequence values (setval is not transactional) and
 * project files are changed outside the target's transaction, so before the first such change a run writes
 * `journal.json` into its checkpoint: who runs (pid, host), the target transaction's id, and the pre-images
 * (the files as they were, the sequence values as they were).
 *
 *  - A run that fails or is interrupted puts the pre-images back itself (`undoEffects`) and removes the journal.
 *  - A run that is killed leaves the journal behind; the next command of any kind in the project
 *    (`recoverInterrupted`) asks the target whether that transaction committed (txid_status):
 *    committed → the run had finished its database work and every file was written before COMMIT, so it only
 *    completes the checkpoint's status; aborted → it puts the pre-images back. Either way database, sequences
 *    and files agree again, and the user is told what was done.
 */
import type pg from 'pg';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { readFile, rm } from 'node:fs/promises';
import { MigrateError } from '../errors.js';
import { loadEnvironment } from '../env/resolve.js';
import { openDatabase } from '../pg/connect.js';
import { lockTargetSession, unlockTargetSession } from '../pg/lock.js';
import { writeSequences, type SequenceState } from '../data/catalog.js';
import { restoreFiles, type FileBackup } from '../checkpoint/files.js';
import { listCheckpointIds, readCheckpoint, removeCheckpoint, updateStatus, type Checkpoint } from '../checkpoint/store.js';
import { writeFileAtomic } from '../util/fs.js';

export interface Journal {
  format: 'nself-journal/1';
  op: 'migrate' | 'rollback';
  pid: number;
  host: string;
  started_at: string;
  /** The environment whose database and files the run changes. */
  target: string;
  /** txid_current() of the target transaction. */
  txid: string;
  /** Pre-images of the files the run may write; `copy` paths are relative to `<checkpoint>/<filesDir>`. */
  files: FileBackup[];
  filesDir: string;
  /** Pre-images of the sequences the run may setval. */
  sequences: SequenceState[];
}

const FILE = 'journal.json';

export function newJournal(fields: Pick<Journal, 'op' | 'target' | 'txid' | 'files' | 'filesDir' | 'sequences'>): Journal {
  return { format: 'nself-journal/1', pid: process.pid, host: hostname(), started_at: new Date().toISOString(), ...fields };
}

/** Write the journal into a checkpoint (or draft) directory, atomically, before the first effect it covers. */
export async function writeJournal(cpDir: string, j: Journal): Promise<void> {
  await writeFileAtomic(join(cpDir, FILE), JSON.stringify(j, null, 2) + '\n', 0o600);
}

export async function readJournal(cpDir: string): Promise<Journal | undefined> {
  let text: string;
  try {
    text = await readFile(join(cpDir, FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const j = JSON.parse(text) as Journal;
  if (j?.format !== 'nself-journal/1' || (j.op !== 'migrate' && j.op !== 'rollback') || !Array.isArray(j.files) || !Array.isArray(j.sequences)) {
    throw new MigrateError('journal_corrupt', `${join(cpDir, FILE)} is not a journal of this tool`, { hint: 'inspect the checkpoint by hand; nothing was changed' });
  }
  return j;
}

export async function clearJournal(cpDir: string): Promise<void> {
  await rm(join(cpDir, FILE), { force: true });
}

/** The target transaction's id, to ask later whether it committed. */
export async function transactionId(client: pg.ClientBase): Promise<string> {
  return (await client.query<{ x: string }>('SELECT txid_current()::text AS x')).rows[0]!.x;
}

/** Put the journal's pre-images back: files byte for byte, sequences by setval (effective at once). */
export async function undoEffects(projectDir: string, cpDir: string, j: Journal, client?: pg.ClientBase): Promise<void> {
  await restoreFiles(projectDir, j.files, join(cpDir, j.filesDir));
  if (client && j.sequences.length > 0) await writeSequences(client, j.sequences);
}

/**
 * After a failure of a run that wrote `journal` (inside the target transaction `client`, with the savepoint
 * `nself_effects` taken before its first effect when `savepoint`): roll back to the savepoint so the transaction
 * is usable and its tables still locked, put the sequences back (setval takes effect at once), roll the
 * transaction back, and put the files back. True when all of it worked; else the journal stays for the next
 * command to finish.
 */
export async function abandonRun(projectDir: string, cpDir: string | undefined, j: Journal | undefined, client: pg.ClientBase | undefined, tx: { inTx: boolean; savepoint: boolean }): Promise<boolean> {
  let ok = true;
  if (client && tx.inTx) {
    if (tx.savepoint && j && j.sequences.length > 0) {
      try {
        await client.query('ROLLBACK TO SAVEPOINT nself_effects');
        await writeSequences(client, j.sequences);
      } catch {
        ok = false;
      }
    }
    await client.query('ROLLBACK').catch(() => {});
  }
  if (j && cpDir) {
    try {
      await undoEffects(projectDir, cpDir, { ...j, sequences: [] });
    } catch {
      ok = false;
    }
  }
  return ok;
}

function alive(j: Journal): boolean {
  if (j.host !== hostname()) return true; // another machine's run: never judged from here
  try {
    process.kill(j.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function txStatus(client: pg.ClientBase, txid: string): Promise<string | null> {
  for (let i = 0; ; i++) {
    const s = (await client.query<{ s: string | null }>('SELECT txid_status($1::int8) AS s', [txid])).rows[0]!.s;
    // 'in progress': the server has not noticed yet that the killed client is gone; it will roll back soon
    if (s !== 'in progress' || i >= 100) return s;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Find runs that were killed in this project and bring their targets back to all-old or all-new.
 * Returns one notice per run it finished. A run it cannot finish (target unreachable, still running on the
 * server) is an error when the command works on that environment (`envs`), else a notice.
 */
export async function recoverInterrupted(projectDir: string, envs: string[] | 'all', notice: (m: string) => void): Promise<void> {
  let ids: string[];
  try {
    ids = await listCheckpointIds(projectDir);
  } catch {
    return; // no readable checkpoint folder, so no journal: the command itself says what is wrong where it matters
  }
  for (const id of ids) {
    let cp: Checkpoint;
    let j: Journal | undefined;
    try {
      cp = await readCheckpoint(projectDir, id);
      j = await readJournal(cp.dir);
    } catch {
      continue; // unreadable checkpoints are reported by the checkpoint listing, not here
    }
    if (!j || alive(j)) continue;
    try {
      notice(await recoverOne(projectDir, cp, j));
    } catch (e) {
      const err = e instanceof MigrateError ? e : new MigrateError('recovery_failed', e instanceof Error ? e.message : String(e));
      const what = `an interrupted ${j.op} of ${j.target} (checkpoint ${cp.id}) could not be recovered: ${err.message}`;
      if (envs === 'all' || envs.includes(j.target)) {
        throw new MigrateError('recovery_failed', what, { hint: err.hint ?? `make ${j.target} reachable and run the command again; nothing else is changed until then` });
      }
      notice(what);
    }
  }
}

async function recoverOne(projectDir: string, cp: Checkpoint, j: Journal): Promise<string> {
  const what = `the ${j.op} of ${j.target} (checkpoint ${cp.id})`;
  const final = j.op === 'migrate' ? 'applied' : 'rolled_back';
  if (cp.manifest.status === final) {
    // killed after its last step, before the journal was removed
    await clearJournal(cp.dir);
    return `${what} had finished before it was interrupted; its journal was removed`;
  }
  if (!j.txid) return undone(projectDir, cp, j, what, 'it changed no database');
  const env = loadEnvironment(projectDir, j.target);
  const db = await openDatabase(env, { persistHostKeys: true });
  try {
    const client = await db.connect();
    await lockTargetSession(client, env.name);
    try {
      const status = await txStatus(client, j.txid);
      if (status === 'in progress') {
        throw new MigrateError('recovery_pending', `its transaction is still open on the server`, { hint: 'the server rolls it back once it notices the client is gone; run the command again in a moment' });
      }
      if (status === 'committed') {
        await updateStatus(cp, final);
        await clearJournal(cp.dir);
        return `${what} was interrupted after it committed: completed, checkpoint marked ${j.op === 'migrate' ? 'applied' : 'rolled back'}`;
      }
      if (status === null) {
        throw new MigrateError('recovery_unknown', `the server no longer knows whether transaction ${j.txid} committed`, { hint: `compare ${j.target} by hand (nself migrate diff), then remove .nself/migrations/${cp.id}/journal.json` });
      }
      return await undone(projectDir, cp, j, what, 'PostgreSQL rolled the database back', client);
    } finally {
      await unlockTargetSession(client).catch(() => {});
    }
  } finally {
    await db.close();
  }
}

/** The run did not complete: put its pre-images back (files; sequences through `client`), say what was done. */
async function undone(projectDir: string, cp: Checkpoint, j: Journal, what: string, db: string, client?: pg.ClientBase): Promise<string> {
  await undoEffects(projectDir, cp.dir, j, client);
  await clearJournal(cp.dir);
  if (j.op === 'migrate') await removeCheckpoint(cp);
  const files = j.files.map((f) => f.path).join(', ');
  const put = [files && `restored ${files}`, client && j.sequences.length > 0 && `reset ${j.sequences.length} sequence(s)`].filter(Boolean).join(', ');
  return `${what} was interrupted before it completed: ${db}${put ? `; ${put}` : ''}${j.op === 'migrate' ? '; its checkpoint was removed' : '; the checkpoint can still be rolled back'}`;
}
