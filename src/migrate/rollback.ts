/**
 * `nself migrate rollback`: restore the target of the latest applied (not yet rolled back) checkpoint.
 * Database parts are restored in one advisory-locked transaction; config files byte for byte. What the
 * transaction cannot hold (sequences, files) is journaled like a migration's, so a failed or killed rollback
 * leaves the target as the migration left it, and the checkpoint usable for another try.
 */
import type pg from 'pg';
import { readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { asMigrateError, EXIT, MigrateError, refusedError, withHint } from '../errors.js';
import { loadEnvironment } from '../env/resolve.js';
import { openDatabase, type DbHandle } from '../pg/connect.js';
import { lockTarget } from '../pg/lock.js';
import { qualify, relationKey } from '../pg/quote.js';
import { fingerprintSchema, inspectSchema, planSchema, restoreSchemaFinish, restoreSchemaStructure, schemaRollbackPlan } from '../schema/index.js';
import { backedUpTables, cancelBackend, emptyBackedUpTables, readSequences, restoreData, sumTables, type DataBackupMeta, type SequenceState } from '../data/index.js';
import { backupFiles, restoreFiles, type FileBackup } from '../checkpoint/files.js';
import { backupDir, selectForRollback, updateStatus, type Checkpoint } from '../checkpoint/store.js';
import { abandonRun, clearJournal, newJournal, recoverInterrupted, transactionId, writeJournal, type Journal } from './journal.js';
import { insideDir } from '../util/fs.js';
import { explainLostConnection, failure, secretValues, snapshotClient, Steps, type PipelineIO } from './session.js';
import type { AfterState } from './migrate.js';
import { parseEnvDocument, documentValues } from '../env/envfile.js';
import type { Environment } from '../env/types.js';
import type { ComponentName, Report, RollbackPreview } from './types.js';
import { driftLines } from './summary.js';

export interface RollbackOptions {
  projectDir: string;
  force: boolean;
  /** Only show what would be undone. */
  dryRun: boolean;
  lockTimeoutMs?: number;
  /** The checkpoint to undo (an id or a unique prefix); default: the newest applied one. */
  id?: string;
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
    const err = e instanceof MigrateError && !steps.interrupted ? e : failure(steps, e, `${report.target || 'the target'} is as it was before the rollback`);
    report.status = err.exitCode === EXIT.refused ? 'refused' : err.exitCode === EXIT.interrupted ? 'interrupted' : 'failed';
    report.error = { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) };
    return { report, error: err };
  } finally {
    io.onInterrupt?.(undefined);
  }
}

async function rollback(opts: RollbackOptions, io: PipelineIO, steps: Steps, report: Report): Promise<void> {
  await recoverInterrupted(opts.projectDir, 'all', (m) => io.notice?.(m));
  const cp = await steps.run('validate', async () => {
    const found = await selectForRollback(opts.projectDir, { id: opts.id, force: opts.force, readOnly: opts.dryRun, notice: (n) => io.notice?.(n) });
    return { value: found, detail: `checkpoint ${found.id}: ${found.manifest.source} → ${found.manifest.target} (${found.manifest.components.join(', ')}) from ${found.manifest.created_at}; backup intact` };
  });
  const m = cp.manifest;
  report.checkpoint = cp.id;
  report.source = m.source;
  report.target = m.target;
  report.components = m.components as ComponentName[];
  const target = loadEnvironment(opts.projectDir, m.target);
  io.addSecrets?.(secretValues(target));
  const dir = backupDir(cp);
  const files = (m.backup.config as FileBackup[] | undefined) ?? [];
  const dbParts = m.backup.schema !== undefined || m.backup.data !== undefined;

  const preview = await steps.run('plan', async () => {
    const p = await previewRollback(opts, cp, target, dbParts, (m) => io.notice?.(m));
    const lost = p.drift.schema.length + p.drift.tables.length + p.drift.files.length;
    return { value: p, detail: `drops ${p.drops.length}, restores ${p.restores.length} object(s); reloads ${p.reloads.length} table(s); ${p.files.length} file(s); ${lost ? `${lost} change(s) made since the migration would be lost` : 'nothing changed since the migration'}` };
  });
  report.rollback = preview;
  io.onRollbackPreview?.(preview);
  if (opts.dryRun) return;

  await steps.run('safety', async () => {
    const lost = driftLines(preview);
    if (opts.force) return { value: undefined, detail: `confirmed by --force${lost.length ? ` (${lost.length} change(s) made since the migration are lost)` : ''}` };
    const warn = lost.length ? `changed on ${m.target} since the migration, and lost by this rollback:\n${lost.map((l) => `  ${l}`).join('\n')}\n` : '';
    const ok = await io.confirm(`${warn}this restores ${m.target} to its state before migration ${cp.id} (${m.source} → ${m.target}, ${m.components.join(', ')}).\nType "yes" to continue: `);
    if (!ok) throw refusedError(`rollback of ${m.target} cancelled: confirmation not given`, 'type exactly "yes" at the prompt, or pass --force');
    return { value: undefined, detail: 'confirmed at the prompt' };
  });

  let db: DbHandle | undefined;
  let client: pg.Client | undefined;
  let inTx = false;
  let savepoint = false;
  let journal: Journal | undefined;
  let committing = false;
  try {
    await steps.run('restore', async () => {
      const parts: string[] = [];
      let txid = '';
      let sequences: SequenceState[] = [];
      if (dbParts) {
        db = await openDatabase(target, { persistHostKeys: true, lockTimeoutMs: opts.lockTimeoutMs, notice: (m) => io.notice?.(m) });
        client = await db.connect();
        const c = client;
        io.onInterrupt?.(() => {
          steps.interrupted = true;
          cancelBackend(c);
        });
        await client.query('BEGIN');
        inTx = true;
        await lockTarget(client, target.name);
        txid = await transactionId(client);
        if (m.backup.data !== undefined) sequences = await currentSequences(client, (m.backup.data as { sequences: SequenceState[] }).sequences);
      }
      // What this rollback changes outside the transaction, as it is now: put back if the rollback fails.
      const preimages = await backupFiles(opts.projectDir, files.map((f) => resolve(opts.projectDir, f.path)), join(cp.dir, 'rollback'));
      journal = newJournal({ op: 'rollback', target: target.name, txid, files: preimages, filesDir: 'rollback', sequences });
      await writeJournal(cp.dir, journal);
      if (client) {
        await client.query('SAVEPOINT nself_effects');
        savepoint = true;
        if (m.backup.schema !== undefined) {
          // Rows first out of the way, then the schema back (without the foreign keys), the rows back, and last
          // the foreign keys, which check every reloaded row.
          const reloaded = new Set(m.backup.data !== undefined ? backedUpTables(m.backup.data).map((t) => relationKey(t.schema, t.name)) : []);
          if (m.backup.data !== undefined) await emptyBackedUpTables(client, m.backup.data);
          await restoreSchemaStructure(client, m.backup.schema, (schema, name) => reloaded.has(relationKey(schema, name)));
          if (m.backup.data !== undefined) await restoreData(client, join(dir, 'data'), m.backup.data);
          await restoreSchemaFinish(client, m.backup.schema);
          parts.push('schema restored and verified (fingerprint, column order)');
        } else if (m.backup.data !== undefined) {
          await restoreData(client, join(dir, 'data'), m.backup.data);
        }
        if (m.backup.data !== undefined) parts.push(`rows of ${backedUpTables(m.backup.data).length} table(s) reloaded and verified by count and checksum`);
      }
      if (files.length > 0) {
        await restoreFiles(opts.projectDir, files, dir);
        await verifyFiles(opts.projectDir, files, dir);
        parts.push('config files restored byte for byte');
      }
      if (inTx) {
        committing = true;
        await client!.query('COMMIT');
        inTx = false;
      }
      return { value: undefined, detail: parts.join('; ') };
    });
    await updateStatus(cp, 'rolled_back');
    await clearJournal(cp.dir);
    await rm(join(cp.dir, 'rollback'), { recursive: true, force: true });
    report.verified = true;
  } catch (e) {
    if (committing) {
      throw withHint(asMigrateError(explainLostConnection(e, { command: 'rollback', source: m.source, target: m.target, committing })), `the next nself migrate command in this project asks ${m.target} whether the COMMIT went through and completes or undoes the rollback (journal in .nself/migrations/${cp.id})`);
    }
    // Put back what the rollback changed outside its transaction; the checkpoint stays usable for a retry.
    const ok = await abandonRun(opts.projectDir, cp.dir, journal, client, { inTx, savepoint });
    if (ok && journal) await clearJournal(cp.dir);
    if (!ok) {
      const err = failure(steps, e, 'the database was rolled back');
      throw new MigrateError(err.code, `${err.message}; putting sequences or files back failed too`, {
        exitCode: err.exitCode,
        hint: `the next nself migrate command in this project finishes the undo (journal in .nself/migrations/${cp.id})`,
        cause: e,
      });
    }
    throw explainLostConnection(e, { command: 'rollback', source: m.source, target: m.target, committing });
  } finally {
    await client?.end().catch(() => {});
    await db?.close();
  }
}

/** The sequences of the backup that exist now, with their current values. */
async function currentSequences(client: pg.ClientBase, seqs: SequenceState[]): Promise<SequenceState[]> {
  if (seqs.length === 0) return [];
  const r = await client.query<{ i: number }>(
    `SELECT i - 1 AS i FROM unnest($1::text[]) WITH ORDINALITY AS x(s, i) WHERE to_regclass(x.s) IS NOT NULL`,
    [seqs.map((s) => qualify(s.schema, s.name))],
  );
  return readSequences(client, r.rows.map((x) => seqs[Number(x.i)]!));
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

/** Read-only: what the rollback drops, restores and reloads, and what changed since the migration. */
async function previewRollback(opts: RollbackOptions, cp: Checkpoint, target: Environment, dbParts: boolean, notice?: (message: string) => void): Promise<RollbackPreview> {
  const m = cp.manifest;
  const after = (m.after ?? {}) as AfterState;
  const reloadsThen = m.backup.data !== undefined ? (m.backup.data as DataBackupMeta).tables : [];
  const p: RollbackPreview = {
    drops: [],
    restores: [],
    reloads: reloadsThen.map((t) => ({ table: t.table, rows: t.rows })),
    files: ((m.backup.config as FileBackup[] | undefined) ?? []).map((f) => f.path),
    drift: { schema: [], tables: [], files: [] },
  };
  if (dbParts) {
    const db = await openDatabase(target, { persistHostKeys: !opts.dryRun, lockTimeoutMs: opts.lockTimeoutMs, notice });
    try {
      const c = await snapshotClient(db);
      try {
        if (m.backup.schema !== undefined) {
          for (const ch of (await schemaRollbackPlan(c, m.backup.schema)).changes) (ch.action === 'drop' ? p.drops : p.restores).push(`${ch.kind} ${ch.identity}`);
        }
        if (after.schema) {
          const now = await inspectSchema(c, after.schema.scope);
          if (fingerprintSchema(now) !== after.schema.fingerprint) {
            const verb = { drop: 'created', create: 'dropped', alter: 'changed' } as const;
            for (const ch of planSchema(after.schema.model, now).changes) p.drift.schema.push(`${ch.kind} ${ch.identity} ${verb[ch.action]} since`);
          }
        }
        const now = await sumTables(c, reloadsThen.map((t) => ({ schema: t.schema, name: t.name })), { countOnly: true });
        for (const r of p.reloads) r.rowsNow = now.find((x) => `${x.schema}.${x.name}` === r.table)?.rows;
        // Row versions where the checkpoint has them (any write since changes them), else count + checksum.
        const then = after.tables ?? [];
        const byVersions = then.filter((t) => t.versions !== undefined);
        const byChecksum = then.filter((t) => t.versions === undefined);
        const sums = [...(await sumTables(c, byVersions, { versionsOnly: true })), ...(await sumTables(c, byChecksum))];
        for (const t of then) {
          const s = sums.find((x) => x.schema === t.schema && x.name === t.name);
          const same = s && s.rows === t.rows && (t.versions !== undefined ? s.versions === t.versions : s.checksum === t.checksum);
          if (!same) p.drift.tables.push({ table: `${t.schema}.${t.name}`, rowsThen: t.rows, rowsNow: s ? s.rows : null });
        }
      } finally {
        await c.end().catch(() => {});
      }
    } finally {
      await db.close();
    }
  }
  for (const [i, f] of (after.files ?? []).entries()) {
    const now = await readFile(await insideDir(opts.projectDir, f.path, `after.files[${i}].path`)).catch(() => undefined);
    const then = f.existed ? await readFile(await insideDir(join(cp.dir, 'after'), f.copy, `after.files[${i}].copy`)) : undefined;
    if (now === undefined && then === undefined) continue;
    if (now !== undefined && then !== undefined && now.equals(then)) continue;
    p.drift.files.push({ path: f.path, keys: f.path.endsWith('.json') ? [] : changedKeys(then?.toString('utf8') ?? '', now?.toString('utf8') ?? '', f.path) });
  }
  return p;
}

/** Keys whose value differs between two versions of an env file (added, removed or changed). */
function changedKeys(a: string, b: string, file: string): string[] {
  const va = documentValues(parseEnvDocument(a, file));
  const vb = documentValues(parseEnvDocument(b, file));
  const keys = new Set([...va.keys(), ...vb.keys()]);
  return [...keys].filter((k) => va.get(k)?.value !== vb.get(k)?.value).sort();
}
