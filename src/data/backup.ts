/**
 * backupData / restoreData. The backup holds, for every table the plan will copy into, the target's current
 * rows over ALL its non-generated columns (a target-only column is wiped by the copy too), streamed with
 * COPY TO → gzip → file (binary COPY when every column type's binary form is database-independent, else
 * text), plus the sequences the copy resets. meta records per table the row count and checksum at backup
 * time and each file's sha256; restoreData checks the files, reloads the rows in the caller's transaction
 * (same foreign-key / trigger handling as applyData) and proves count + checksum equal the recorded ones.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import type pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { MigrateError } from '../errors.js';
import { sha256File } from '../util/fs.js';
import { qualify, quoteIdent, relationKey } from '../pg/quote.js';
import { fromItem, listTables, ownedSequences, readSequences, writeSequences, type SequenceState, type TableInfo } from './catalog.js';
import { emptyTables, replaceRows } from './load.js';
import { checksum, withPinned, wrapError } from './session.js';
import { cancelBackend, pump } from './stream.js';
import type { DataPlan } from './types.js';

export interface DataBackupTable {
  table: string;
  schema: string;
  name: string;
  columns: string[];
  format: 'binary' | 'text';
  file: string;
  bytes: number;
  sha256: string;
  rows: number;
  checksum: string;
}

export interface DataBackupMeta {
  version: 1;
  tables: DataBackupTable[];
  sequences: SequenceState[];
}

function hasher(): Transform & { digest: () => string; bytes: number } {
  const h = createHash('sha256');
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      h.update(chunk);
      (t as unknown as { bytes: number }).bytes += chunk.length;
      cb(null, chunk);
    },
  }) as Transform & { digest: () => string; bytes: number };
  t.bytes = 0;
  t.digest = () => h.digest('hex');
  return t;
}

/** Back up the target's rows of every table the plan copies into. */
export async function backupData(target: pg.ClientBase, plan: DataPlan, dir: string): Promise<DataBackupMeta> {
  return backupTables(target, plan.tables.filter((t) => t.action === 'copy'), dir);
}

/**
 * Back up whole tables (every row, every non-generated column) and the sequences they own. A partition named
 * here is backed up through its partitioned root (its rows travel with the root's). Tables that do not exist
 * are skipped (nothing to lose).
 */
export async function backupTables(target: pg.ClientBase, wanted: Array<{ schema: string; name: string }>, dir: string): Promise<DataBackupMeta> {
  await mkdir(dir, { recursive: true });
  return withPinned([target], async () => {
    const all = await listTables(target);
    const tables: TableInfo[] = [];
    const seen = new Set<number>();
    for (const w of wanted) {
      let t = all.get(relationKey(w.schema, w.name));
      if (!t) {
        const root = await target.query<{ schema: string; name: string }>(
          `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.oid = pg_partition_root(to_regclass($1))`,
          [qualify(w.schema, w.name)],
        );
        const r = root.rows[0];
        t = r ? all.get(relationKey(r.schema, r.name)) : undefined;
      }
      if (t && !seen.has(t.oid)) {
        seen.add(t.oid);
        tables.push(t);
      }
    }
    if (tables.length > 0) {
      // Writers must not slip rows in between this backup and the copy that replaces them (readers may go on).
      try {
        await target.query(`LOCK TABLE ${tables.map((t) => qualify(t.schema, t.name)).join(', ')} IN EXCLUSIVE MODE`);
      } catch (e) {
        if ((e as { code?: string }).code !== '25P01') throw wrapError('data_backup_failed', 'locking the tables to back up', e); // 25P01: not in a transaction
      }
    }
    const owned = await ownedSequences(target, tables.map((t) => t.oid));
    const sequences = await readSequences(target, owned);
    const out: DataBackupTable[] = [];
    for (const [i, t] of tables.entries()) {
      const cols = t.columns.filter((c) => !c.generated);
      const format = cols.every((c) => c.portable) ? 'binary' : 'text';
      const columns = cols.map((c) => c.name);
      const file = `${String(i + 1).padStart(4, '0')}.copy.gz`;
      try {
        const sum = await checksum(target, fromItem(t), columns);
        const gz = createGzip({ level: 3 });
        const h = hasher();
        const written = pipeline(gz, h, createWriteStream(join(dir, file), { mode: 0o600 }));
        written.catch(() => {}); // awaited below; pump reports the failure first
        const src = target.query(copyStreams.to(`COPY (SELECT ${columns.map(quoteIdent).join(', ')} FROM ${fromItem(t)}) TO STDOUT (FORMAT ${format})`));
        await pump(src, gz, { abortSource: () => cancelBackend(target) });
        await written;
        out.push({ table: t.display, schema: t.schema, name: t.name, columns, format, file, bytes: h.bytes, sha256: h.digest(), rows: sum.rows, checksum: sum.sum });
      } catch (e) {
        throw wrapError('data_backup_failed', `backing up the rows of ${t.display} to ${join(dir, file)}`, e);
      }
    }
    return { version: 1, tables: out, sequences };
  });
}

/** The backed-up tables as (schema, name) pairs. */
export function backedUpTables(meta: unknown): Array<{ schema: string; name: string }> {
  return parseMeta(meta).tables.map((t) => ({ schema: t.schema, name: t.name }));
}

function parseMeta(meta: unknown): DataBackupMeta {
  const m = meta as DataBackupMeta | null;
  if (!m || typeof m !== 'object' || m.version !== 1 || !Array.isArray(m.tables) || !Array.isArray(m.sequences)) {
    throw new MigrateError('data_backup_invalid', 'the data backup description in the checkpoint is not readable', { hint: 'the checkpoint was written by another version of nself migrate or edited by hand' });
  }
  return m;
}

/**
 * Before a schema rollback: empty every table of the backup that exists now, with the foreign keys on or
 * referencing them dropped (the rollback's schema step adds back the checkpoint's own, after the rows are
 * reloaded, so they check every row) and user triggers kept from firing. Reversing the schema then never
 * meets a row: NOT NULL columns, primary keys and enum values come back on empty tables.
 */
export async function emptyBackedUpTables(target: pg.ClientBase, meta: unknown): Promise<void> {
  const m = parseMeta(meta);
  const all = await listTables(target);
  const tables = m.tables.flatMap((b) => all.get(relationKey(b.schema, b.name)) ?? []);
  try {
    await emptyTables(target, tables);
  } catch (e) {
    throw wrapError('data_restore_failed', 'emptying the tables to restore', e, 'nothing was changed: the target transaction is rolled back');
  }
}

export async function restoreData(target: pg.ClientBase, dir: string, meta: unknown): Promise<void> {
  const m = parseMeta(meta);
  // Check every file before touching anything.
  for (const t of m.tables) {
    const path = join(dir, t.file);
    const ok = await stat(path).then((s) => s.isFile(), () => false);
    if (!ok) throw new MigrateError('data_backup_missing', `the backup of ${t.table} is missing: ${path}`, { hint: 'the checkpoint directory is incomplete; nothing was changed' });
    if ((await sha256File(path)).sha256 !== t.sha256) throw new MigrateError('data_backup_corrupt', `the backup of ${t.table} does not match its checksum: ${path}`, { hint: 'the file was changed or truncated; nothing was changed' });
  }
  await withPinned([target], async () => {
    const all = await listTables(target);
    const items = m.tables.map((b) => {
      const t = all.get(relationKey(b.schema, b.name));
      if (!t) throw new MigrateError('data_table_missing', `table ${b.table} no longer exists in the target; its rows cannot be restored`, { hint: 'restore the schema first (roll back schema and data together)' });
      return { ...b, info: t, oid: t.oid, relkind: t.relkind };
    });
    await replaceRows(target, items, async (b) => {
      const rs = createReadStream(join(dir, b.file));
      const gunzip = createGunzip();
      rs.on('error', (e) => gunzip.destroy(e));
      rs.pipe(gunzip);
      const sink = target.query(copyStreams.from(`COPY ${qualify(b.schema, b.name)} (${b.columns.map(quoteIdent).join(', ')}) FROM STDIN (FORMAT ${b.format})`));
      try {
        await pump(gunzip, sink, { abortSource: () => { rs.destroy(); gunzip.destroy(); } });
      } catch (e) {
        throw wrapError('data_restore_failed', `restoring the rows of ${b.table}`, e, 'nothing was changed: the target transaction is rolled back');
      }
    });
    await writeSequences(target, m.sequences);
    const bad: string[] = [];
    for (const b of items) {
      const sum = await checksum(target, fromItem(b.info as TableInfo), b.columns);
      if (sum.rows !== b.rows || sum.sum !== b.checksum) bad.push(`${b.table} (${sum.rows} row(s), expected ${b.rows})`);
    }
    if (bad.length > 0) {
      throw new MigrateError('data_restore_verify_failed', `after restoring, ${bad.join(', ')} do(es) not match the backup`, { hint: 'nothing was changed (rolled back); please report this', details: bad });
    }
  });
}

export interface TableSum { schema: string; name: string; columns: string[]; rows: number; checksum: string }

/**
 * Row count + checksum of tables as they are now, over the given columns (default: every non-generated column).
 * A table that does not exist, or lacks one of the columns, is left out: the caller compares what it gets.
 */
export async function sumTables(client: pg.ClientBase, tables: Array<{ schema: string; name: string; columns?: string[] }>): Promise<TableSum[]> {
  if (tables.length === 0) return [];
  return withPinned([client], async () => {
    const all = await listTables(client);
    const out: TableSum[] = [];
    for (const w of tables) {
      const t = all.get(relationKey(w.schema, w.name));
      if (!t) continue;
      const have = t.columns.filter((c) => !c.generated).map((c) => c.name);
      const columns = w.columns ?? have;
      if (!columns.every((c) => have.includes(c))) continue;
      const sum = await checksum(client, fromItem(t), columns);
      out.push({ schema: w.schema, name: w.name, columns, rows: sum.rows, checksum: sum.sum });
    }
    return out;
  });
}
