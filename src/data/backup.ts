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
import { replaceRows } from './load.js';
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

export async function backupData(target: pg.ClientBase, plan: DataPlan, dir: string): Promise<DataBackupMeta> {
  const copy = plan.tables.filter((t) => t.action === 'copy');
  await mkdir(dir, { recursive: true });
  return withPinned([target], async () => {
    const all = await listTables(target);
    const tables = copy.map((p) => {
      const t = all.get(relationKey(p.schema, p.name));
      if (!t) throw new MigrateError('data_table_missing', `table ${p.table} does not exist in the target`, { hint: 'plan again' });
      return t;
    });
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
        const written = pipeline(gz, h, createWriteStream(join(dir, file)));
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

function parseMeta(meta: unknown): DataBackupMeta {
  const m = meta as DataBackupMeta | null;
  if (!m || typeof m !== 'object' || m.version !== 1 || !Array.isArray(m.tables) || !Array.isArray(m.sequences)) {
    throw new MigrateError('data_backup_invalid', 'the data backup description in the checkpoint is not readable', { hint: 'the checkpoint was written by another version of nself migrate or edited by hand' });
  }
  return m;
}

/**
 * Before a schema rollback: empty every table whose rows restoreData will reload, so that reversing the
 * schema (e.g. an enum losing a value, a narrowing type) does not trip over rows the migration wrote. A table
 * referencing them through a foreign key is emptied with them when `disposable(schema, name)` says the schema
 * rollback drops it anyway; any other referencing table makes TRUNCATE fail, and so the rollback (nothing changed).
 */
export async function emptyForRestore(target: pg.ClientBase, meta: unknown, disposable: (schema: string, name: string) => boolean): Promise<void> {
  const m = parseMeta(meta);
  if (m.tables.length === 0) return;
  const refs = await target.query<{ schema: string; name: string }>(
    `SELECT DISTINCT cn.nspname AS schema, c.relname AS name
       FROM pg_constraint con
       JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
       JOIN pg_class r ON r.oid = con.confrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace
      WHERE con.contype = 'f' AND (rn.nspname, r.relname) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
    [m.tables.map((t) => t.schema), m.tables.map((t) => t.name)],
  );
  const names = new Map(m.tables.map((t) => [relationKey(t.schema, t.name), qualify(t.schema, t.name)]));
  for (const r of refs.rows) {
    const key = relationKey(r.schema, r.name);
    if (!names.has(key) && disposable(r.schema, r.name)) names.set(key, qualify(r.schema, r.name));
  }
  try {
    await target.query(`TRUNCATE ${[...names.values()].join(', ')}`);
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
