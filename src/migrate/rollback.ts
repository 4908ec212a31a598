/**
 * `nself migrate rollback`: restore the target of the latest applied (not yet rolled back) checkpoint.
 * Database parts are restored in one advisory-locked transaction; config files byte for byte.
 */
import type pg from 'pg';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { asMigrateError, EXIT, MigrateError, refusedError } from '../errors.js';
import { loadEnvironment } from '../env/resolve.js';
import { openDatabase, type DbHandle } from '../pg/connect.js';
import { lockTarget } from '../pg/lock.js';
import { relationKey } from '../pg/quote.js';
import { restoreSchema, snapshotTables } from '../schema/index.js';
import { emptyForRestore, restoreData } from '../data/index.js';
import { restoreFiles, type FileBackup } from '../checkpoint/files.js';
import { backupDir, latestApplied, updateStatus, verifyIntegrity } from '../checkpoint/store.js';
import { explainLostConnection, secretValues, Steps, type PipelineIO } from './session.js';
import type { ComponentName, Report } from './types.js';

export interface RollbackOptions {
  projectDir: string;
  force: boolean;
  /** Only show what would be undone. */
  dryRun: boolean;
}

export interface RollbackOutcome {
  report: Report;
  error?: MigrateError;
}

export async function runRollback(opts: RollbackOptions, io: PipelineIO): Promise<RollbackOutcome> {
  const steps = new Steps(io);
  const report: Report = { kind: 'report', command: 'rollback', status: 'ok', source: '', target: '', components: [], steps: steps.list, verified: false };
  try {
    await rollback(opts, io, steps, report);
    return { report };
  } catch (e) {
    const err = asMigrateError(e);
    report.status = err.exitCode === EXIT.refused ? 'refused' : 'failed';
    report.error = { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) };
    return { report, error: err };
  }
}

async function rollback(opts: RollbackOptions, io: PipelineIO, steps: Steps, report: Report): Promise<void> {
  const cp = await steps.run('validate', async () => {
    const found = await latestApplied(opts.projectDir);
    if (!found) {
      throw new MigrateError('no_checkpoint', 'nothing to roll back: no applied migration found in .nself/migrations/', {
        hint: 'rollback undoes the last `nself migrate <source> <target>` run from this project directory (see -C)',
      });
    }
    await verifyIntegrity(found);
    return { value: found, detail: `checkpoint ${found.id}: ${found.manifest.source} → ${found.manifest.target} (${found.manifest.components.join(', ')}) from ${found.manifest.created_at}; backup intact` };
  });
  const m = cp.manifest;
  report.checkpoint = cp.id;
  report.source = m.source;
  report.target = m.target;
  report.components = m.components as ComponentName[];
  if (opts.dryRun) return;

  const target = loadEnvironment(opts.projectDir, m.target);
  io.addSecrets?.(secretValues(target));

  await steps.run('safety', async () => {
    if (opts.force) return { value: undefined, detail: 'confirmed by --force' };
    const ok = await io.confirm(`this restores ${m.target} to its state before migration ${cp.id} (${m.source} → ${m.target}, ${m.components.join(', ')}).\nType "yes" to continue: `);
    if (!ok) throw refusedError(`rollback of ${m.target} cancelled: confirmation not given`, 'type exactly "yes" at the prompt, or pass --force');
    return { value: undefined, detail: 'confirmed at the prompt' };
  });

  const dir = backupDir(cp);
  const dbParts = m.backup.schema !== undefined || m.backup.data !== undefined;
  let db: DbHandle | undefined;
  let client: pg.Client | undefined;
  let inTx = false;
  let committing = false;
  try {
    await steps.run('restore', async () => {
      const parts: string[] = [];
      if (dbParts) {
        db = await openDatabase(target, { persistHostKeys: true });
        client = await db.connect();
        await client.query('BEGIN');
        inTx = true;
        await lockTarget(client, target.name);
        if (m.backup.schema !== undefined) {
          if (m.backup.data !== undefined) {
            // Reload-bound tables are emptied first, so reversing the schema never trips over migrated rows.
            const keep = snapshotTables(m.backup.schema);
            await emptyForRestore(client, m.backup.data, (schema, name) => !keep.has(relationKey(schema, name)));
          }
          await restoreSchema(client, join(dir, 'schema'), m.backup.schema);
          parts.push('schema restored and verified by fingerprint');
        }
        if (m.backup.data !== undefined) {
          await restoreData(client, join(dir, 'data'), m.backup.data);
          parts.push('rows restored and verified by checksum');
        }
      }
      if (m.backup.config !== undefined) {
        await restoreFiles(opts.projectDir, m.backup.config as FileBackup[], dir);
        await verifyFiles(opts.projectDir, m.backup.config as FileBackup[], dir);
        parts.push('config files restored byte for byte');
      }
      if (inTx) {
        committing = true;
        await client!.query('COMMIT');
        inTx = false;
      }
      return { value: undefined, detail: parts.join('; ') };
    });
  } catch (e) {
    if (inTx) await client!.query('ROLLBACK').catch(() => {});
    throw explainLostConnection(e, { command: 'rollback', source: m.source, target: m.target, committing });
  } finally {
    await client?.end().catch(() => {});
    await db?.close();
  }
  await updateStatus(cp, 'rolled_back');
  report.verified = true;
}

/** After a restore, every file must equal its backup byte for byte (or be absent again). */
async function verifyFiles(projectDir: string, backups: FileBackup[], dir: string): Promise<void> {
  for (const b of backups) {
    const abs = resolve(projectDir, b.path);
    const now = await readFile(abs).catch(() => undefined);
    const want = b.existed ? await readFile(join(dir, b.copy!)) : undefined;
    const same = want === undefined ? now === undefined : now !== undefined && now.equals(want);
    if (!same) throw new MigrateError('rollback_verify_failed', `after restoring, ${b.path} does not match the checkpoint`, { hint: 'check file permissions in the project directory' });
  }
}

