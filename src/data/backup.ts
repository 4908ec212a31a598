/**
 * backupData / restoreData. The backup holds, for every table the plan will copy into, the target's current
 * rows over ALL its non-generated columns (a target-only column is wiped by the copy too), streamed with
 * COPY TO → gzip → file (binary COPY when every column type's binary form is database-independent, else
 * text), plus the sequences the copy resets. A table counted empty (under the lock) gets no file; small tables
 * are read many per query (batch.ts) into one file per batch, each with its offset and length in it.
 * meta records per table the row count and checksum at backup
 * time and each file's sha256; restoreData checks the files, reloads the rows in the caller's transaction
 * (same foreign-key / trigger handling as applyData) and proves count + checksum equal the recorded ones.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip, createGzip, gunzip, gzip } from 'node:zlib';
import type pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { MigrateError } from '../errors.js';
import { sha256File } from '../util/fs.js';
import { qualify, quoteIdent, relationKey } from '../pg/quote.js';
import { fromItem, listTables, ownedSequences, readSequences, writeSequences, type SequenceState, type TableInfo } from './catalog.js';
import { DEFER_INDEXES_ROWS, DEFER_KEYS_ROWS, emptyTables, oneByOne, replaceRows } from './load.js';
import { columnsSignature } from './known.js';
import { checksums, hashedColumns, versionsOfOneWriter, withPinned, wrapError, type HashedColumn } from './session.js';
import { names } from './plan.js';
import { cancelBackend, pump } from './stream.js';
import { BATCH_MAX_BYTES, BatchStatementError, copyInMany, copyOutMany, groupBatches, SMALL_TABLE_BYTES } from './batch.js';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);
import type { DataPlan } from './types.js';

export interface DataBackupTable {
  table: string;
  schema: string;
  name: string;
  columns: string[];
  format: 'binary' | 'text';
  /** Absent when the table had no rows (nothing saved; restoring empties it). */
  file?: string;
  /**
   * A file holding many small tables: this table's COPY data is bytes [offset, offset + length) of the file's
   * uncompressed content (`bytes` is then `length`). Absent: the file holds this table alone (`bytes`: its size).
   */
  offset?: number;
  length?: number;
  bytes: number;
  /** SHA-256 of the (gzip) file. */
  sha256?: string;
  rows: number;
  checksum: string;
  /** The columns `checksum` hashed by value (session.ts rowHashSql); absent: none (and in backups of older versions). */
  hashed?: HashedColumn[];
  /**
   * 'rows' (sync): `file` holds only the rows the sync updated or deleted, by primary key `key`; `inserted` the
   * keys of the rows it inserted. Restore: delete the inserted keys, put the saved rows back. `rows`/`checksum`
   * are still the whole table's (what the restore is verified against). Absent: the whole table.
   */
  mode?: 'rows';
  key?: string[];
  saved?: number;
  inserted?: { file: string; bytes: number; sha256: string; rows: number };
}

/** A table backed up by key: its primary key, the temp table of keys that change, the temp table of staged rows. */
export interface KeyedBackup { key: string[]; old: string; stage: string }

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
export async function backupTables(target: pg.ClientBase, wanted: Array<{ schema: string; name: string }>, dir: string, opts: { byKey?: Map<string, KeyedBackup> } = {}): Promise<DataBackupMeta> {
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
    const shapes = tables.map((t) => {
      const cols = t.columns.filter((c) => !c.generated);
      const columns = cols.map((c) => c.name);
      return { format: cols.every((c) => c.portable) ? ('binary' as const) : ('text' as const), columns, hashed: hashedColumns(t.columns, t.columns, columns) };
    });
    const sums = await checksums(target, tables.map((t, i) => ({ from: fromItem(t), columns: shapes[i].columns, bytes: t.bytes, hashed: shapes[i].hashed })), {
      onError: (idx, e) => wrapError('data_backup_failed', `summing the rows of ${names(idx.map((i) => tables[i].display))} to back them up`, e),
    });
    // What the restore is verified against.
    const state = (i: number) => ({ rows: sums[i].rows, checksum: sums[i].sum, ...(shapes[i].hashed.length > 0 ? { hashed: shapes[i].hashed } : {}) });
    // Small tables with rows are saved many to a file: one query of COPYs per batch (batch.ts), their outputs one
    // after the other in one gzip file (a batch whose output is too large for memory gets a file per table below).
    const small = tables.flatMap((t, i) => (!opts.byKey?.has(t.id) && sums[i].rows > 0 && t.bytes <= SMALL_TABLE_BYTES ? [i] : []));
    const bundled = new Map<number, { file: string; offset: number; length: number; sha256: string }>();
    for (const [k, batch] of groupBatches(small, (i) => tables[i].bytes).entries()) {
      const file = `many-${String(k + 1).padStart(4, '0')}.copy.gz`;
      try {
        const read = await copyOutMany(target, batch.map((i) => `COPY (SELECT ${shapes[i].columns.map(quoteIdent).join(', ')} FROM ${fromItem(tables[i])}) TO STDOUT (FORMAT ${shapes[i].format})`), BATCH_MAX_BYTES);
        if (read.overflow) continue;
        const wrong = batch.findIndex((i, j) => read.rows[j] !== sums[i].rows);
        if (wrong >= 0) throw new Error(`${read.rows[wrong]} row(s) read, ${sums[batch[wrong]].rows} counted under the lock`);
        const gz = await gzipAsync(Buffer.concat(read.data), { level: 3 });
        await writeFile(join(dir, file), gz, { mode: 0o600 });
        const sha256 = createHash('sha256').update(gz).digest('hex');
        let offset = 0;
        batch.forEach((i, j) => {
          bundled.set(i, { file, offset, length: read.data[j].length, sha256 });
          offset += read.data[j].length;
        });
      } catch (e) {
        const failed = e instanceof BatchStatementError ? [batch[e.index]] : batch;
        throw wrapError('data_backup_failed', `backing up the rows of ${names(failed.map((i) => tables[i].display))} to ${join(dir, file)}`, e instanceof BatchStatementError ? e.cause : e);
      }
    }
    const out: DataBackupTable[] = [];
    for (const [i, t] of tables.entries()) {
      const { format, columns } = shapes[i];
      const file = `${String(i + 1).padStart(4, '0')}.copy.gz`;
      const many = bundled.get(i);
      if (many) {
        out.push({ table: t.display, schema: t.schema, name: t.name, columns, format, file: many.file, offset: many.offset, length: many.length, bytes: many.length, sha256: many.sha256, ...state(i) });
        continue;
      }
      try {
        const sum = sums[i];
        const keyed = opts.byKey?.get(t.id);
        const list = columns.map(quoteIdent).join(', ');
        if (keyed) {
          // Only the rows that change, and the keys that the sync inserts.
          const on = (a: string, b: string) => keyed.key.map((k) => `${a}.${quoteIdent(k)} = ${b}.${quoteIdent(k)}`).join(' AND ');
          const saved = await copyToFile(target, `SELECT ${columns.map((c) => `x.${quoteIdent(c)}`).join(', ')} FROM ${fromItem(t)} AS x WHERE EXISTS (SELECT 1 FROM ${quoteIdent(keyed.old)} AS o WHERE ${on('o', 'x')})`, format, join(dir, file));
          const kfile = `${String(i + 1).padStart(4, '0')}.keys.gz`;
          const only = t.relkind === 'r' ? 'ONLY ' : '';
          const ins = await copyToFile(target, `SELECT ${keyed.key.map((k) => `s.${quoteIdent(k)}`).join(', ')} FROM ${quoteIdent(keyed.stage)} AS s WHERE NOT EXISTS (SELECT 1 FROM ${only}${qualify(t.schema, t.name)} AS x WHERE ${on('x', 's')})`, 'text', join(dir, kfile));
          out.push({ table: t.display, schema: t.schema, name: t.name, columns, format, file, bytes: saved.bytes, sha256: saved.sha256, ...state(i), mode: 'rows', key: keyed.key, saved: saved.rows, inserted: { file: kfile, ...ins } });
          continue;
        }
        if (sum.rows === 0) {
          // Counted under the lock: nothing to save, no file. The restore empties the table.
          out.push({ table: t.display, schema: t.schema, name: t.name, columns, format, bytes: 0, ...state(i) });
          continue;
        }
        const w = await copyToFile(target, `SELECT ${list} FROM ${fromItem(t)}`, format, join(dir, file));
        out.push({ table: t.display, schema: t.schema, name: t.name, columns, format, file, bytes: w.bytes, sha256: w.sha256, ...state(i) });
      } catch (e) {
        throw wrapError('data_backup_failed', `backing up the rows of ${t.display} to ${join(dir, file)}`, e);
      }
    }
    return { version: 1, tables: out, sequences };
  });
}

/** COPY (query) TO STDOUT → gzip → file (0600): its bytes and SHA-256 (of the gzip file), and the rows copied. */
async function copyToFile(client: pg.ClientBase, query: string, format: 'binary' | 'text', path: string): Promise<{ bytes: number; sha256: string; rows: number }> {
  const gz = createGzip({ level: 3 });
  const h = hasher();
  const written = pipeline(gz, h, createWriteStream(path, { mode: 0o600 }));
  written.catch(() => {}); // awaited below; pump reports the failure first
  const src = client.query(copyStreams.to(`COPY (${query}) TO STDOUT (FORMAT ${format})`));
  await pump(src, gz, { abortSource: () => cancelBackend(client) });
  await written;
  return { bytes: h.bytes, sha256: h.digest(), rows: (src as unknown as { rowCount: number }).rowCount ?? 0 };
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
  const keyed = m.tables.find((t) => t.mode === 'rows');
  if (keyed) {
    // A sync with schema changes backs up whole tables; rows by key never come with a schema rollback.
    throw new MigrateError('data_backup_invalid', `the backup of ${keyed.table} holds only some rows, so the table cannot be emptied for a schema rollback`, { hint: 'the checkpoint was edited by hand or written by another version; nothing was changed' });
  }
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
  // Check every file before touching anything (a file of many tables once).
  const checked = new Set<string>();
  const invalid = (t: DataBackupTable, what: string) => new MigrateError('data_backup_invalid', `the backup of ${t.table} ${what}`, { hint: 'the checkpoint was edited by hand or written by another version; nothing was changed' });
  for (const t of m.tables) {
    if ((t.offset !== undefined || t.length !== undefined) && (t.mode === 'rows' || t.file === undefined || !Number.isSafeInteger(t.offset) || !Number.isSafeInteger(t.length) || t.offset! < 0 || t.length! < 0)) {
      throw invalid(t, 'names no usable place in its file');
    }
    if (t.file === undefined && t.mode !== 'rows') {
      if (t.rows !== 0) throw invalid(t, `names no file for its ${t.rows} row(s)`);
      continue;
    }
    for (const f of [{ file: t.file ?? '', sha256: t.sha256 ?? '' }, ...(t.mode === 'rows' ? [t.inserted ?? { file: '', sha256: '' }] : [])]) {
      if (f.file !== '' && checked.has(`${f.file}\u0000${f.sha256}`)) continue;
      checked.add(`${f.file}\u0000${f.sha256}`);
      const path = join(dir, f.file);
      const ok = f.file !== '' && (await stat(path).then((s) => s.isFile(), () => false));
      if (!ok) throw new MigrateError('data_backup_missing', `the backup of ${t.table} is missing: ${path}`, { hint: 'the checkpoint directory is incomplete; nothing was changed' });
      if ((await sha256File(path)).sha256 !== f.sha256) throw new MigrateError('data_backup_corrupt', `the backup of ${t.table} does not match its checksum: ${path}`, { hint: 'the file was changed or truncated; nothing was changed' });
    }
    if (t.mode === 'rows' && (!Array.isArray(t.key) || t.key.length === 0 || !t.key.every((k) => t.columns.includes(k)))) {
      throw new MigrateError('data_backup_invalid', `the backup of ${t.table} names no usable primary key`, { hint: 'the checkpoint was edited by hand or written by another version; nothing was changed' });
    }
  }
  await withPinned([target], async () => {
    const all = await listTables(target);
    const items = m.tables.map((b) => {
      const t = all.get(relationKey(b.schema, b.name));
      if (!t) throw new MigrateError('data_table_missing', `table ${b.table} no longer exists in the target; its rows cannot be restored`, { hint: 'restore the schema first (roll back schema and data together)' });
      return { ...b, info: t, oid: t.oid, relkind: t.relkind };
    });
    const load = async (file: string, into: string, columns: string[], format: 'binary' | 'text', table: string) => {
      const rs = createReadStream(join(dir, file));
      const gunzip = createGunzip();
      rs.on('error', (e) => gunzip.destroy(e));
      rs.pipe(gunzip);
      const sink = target.query(copyStreams.from(`COPY ${into} (${columns.map(quoteIdent).join(', ')}) FROM STDIN (FORMAT ${format})`));
      try {
        await pump(gunzip, sink, { abortSource: () => { rs.destroy(); gunzip.destroy(); } });
      } catch (e) {
        throw wrapError('data_restore_failed', `restoring the rows of ${table}`, e, 'nothing was changed: the target transaction is rolled back');
      }
    };
    type Entry = (typeof items)[number];
    // Tables saved many to a file: the file is read once, and its tables are loaded in one query.
    const loadMany = async (file: string, list: Entry[]) => {
      try {
        const data = await gunzipAsync(await readFile(join(dir, file)));
        const parts = list.map((b) => {
          if (b.offset! + b.length! > data.length) throw invalid(b, `lies outside its file ${file}`);
          return data.subarray(b.offset!, b.offset! + b.length!);
        });
        const rows = await copyInMany(target, list.map((b) => `COPY ${qualify(b.schema, b.name)} (${b.columns.map(quoteIdent).join(', ')}) FROM STDIN (FORMAT ${b.format})`), parts);
        const wrong = list.findIndex((b, j) => rows[j] !== b.rows);
        if (wrong >= 0) throw new Error(`${list[wrong].table}: ${rows[wrong]} row(s) loaded, ${list[wrong].rows} saved`);
      } catch (e) {
        if (e instanceof MigrateError) throw e;
        const failed = e instanceof BatchStatementError ? [list[e.index]] : list;
        throw wrapError('data_restore_failed', `restoring the rows of ${names(failed.map((b) => b.table))}`, e instanceof BatchStatementError ? e.cause : e, 'nothing was changed: the target transaction is rolled back');
      }
    };
    await replaceRows(
      target,
      items,
      async (list) => {
        const many = new Map<string, Entry[]>();
        for (const b of list) {
          if (b.offset === undefined) continue;
          const group = many.get(b.file!) ?? [];
          group.push(b);
          many.set(b.file!, group);
        }
        for (const [file, group] of many) await loadMany(file, group);
        await oneByOne(loadOne)(list.filter((b) => b.offset === undefined));
        return list.map(() => undefined);
      },
      { keep: (b) => b.mode === 'rows', deferIndexes: (b) => b.rows >= DEFER_INDEXES_ROWS, deferKeys: (b) => b.rows >= DEFER_KEYS_ROWS },
    );
    async function loadOne(b: Entry): Promise<void> {
      if (b.mode !== 'rows') {
        // No file: it was empty, and replaceRows has emptied it.
        if (b.file !== undefined) await load(b.file, qualify(b.schema, b.name), b.columns, b.format, b.table);
        return;
      }
      // Rows by key: the keys the sync inserted go, the rows it updated or deleted come back.
      const t = qualify(b.schema, b.name);
      const only = b.relkind === 'r' ? 'ONLY ' : '';
      const key = b.key!;
      const on = (a: string, c: string) => key.map((k) => `${a}.${quoteIdent(k)} = ${c}.${quoteIdent(k)}`).join(' AND ');
      const keys = quoteIdent(`nself_restore_keys_${b.oid}`);
      const saved = quoteIdent(`nself_restore_rows_${b.oid}`);
      try {
        await target.query(`CREATE TEMP TABLE ${keys} ON COMMIT DROP AS SELECT ${key.map(quoteIdent).join(', ')} FROM ${only}${t} WITH NO DATA;
          CREATE TEMP TABLE ${saved} ON COMMIT DROP AS SELECT ${b.columns.map(quoteIdent).join(', ')} FROM ${only}${t} WITH NO DATA`);
        await load(b.inserted!.file, keys, key, 'text', b.table);
        await load(b.file!, saved, b.columns, b.format, b.table);
        await target.query(`DELETE FROM ${only}${t} AS x USING ${keys} AS k WHERE ${on('x', 'k')}`);
        await target.query(`DELETE FROM ${only}${t} AS x USING ${saved} AS r WHERE ${on('x', 'r')}`);
        await target.query(`INSERT INTO ${t} (${b.columns.map(quoteIdent).join(', ')}) OVERRIDING SYSTEM VALUE SELECT ${b.columns.map(quoteIdent).join(', ')} FROM ${saved}`);
        await target.query(`DROP TABLE ${keys}, ${saved}`);
      } catch (e) {
        throw wrapError('data_restore_failed', `restoring the rows of ${b.table} by key`, e, 'nothing was changed: the target transaction is rolled back');
      }
    }
    await writeSequences(target, m.sequences);
    const sums = await checksums(target, items.map((b) => ({ from: fromItem(b.info), columns: b.columns, bytes: b.info.bytes, hashed: b.hashed })));
    const bad = items.flatMap((b, i) => (sums[i].rows !== b.rows || sums[i].sum !== b.checksum ? [`${b.table} (${sums[i].rows} row(s), expected ${b.rows})`] : []));
    if (bad.length > 0) {
      throw new MigrateError('data_restore_verify_failed', `after restoring, ${bad.join(', ')} do(es) not match the backup`, { hint: 'nothing was changed (rolled back); please report this', details: bad });
    }
  });
}

/**
 * A table's state as a checkpoint records it: its row count and either the checksum of its rows over `columns`
 * (checkpoints written before row versions existed) or its row versions (session.ts: any write since changes them).
 * `signature` (known.ts columnsSignature): whether the versions stand for the contents, with the column types.
 */
export interface TableSum { schema: string; name: string; columns: string[]; rows: number; checksum?: string; versions?: string; signature?: string }

/**
 * Row count + checksum (or, with `versionsOnly`, row versions) of tables as they are now, over the given columns
 * (default: every non-generated column). A table that does not exist, or lacks one of the columns, is left out:
 * the caller compares what it gets.
 */
export async function sumTables(
  client: pg.ClientBase,
  tables: Array<{ schema: string; name: string; columns?: string[]; /** loaded whole by the current (sub)transaction: its row count */ loadedRows?: number }>,
  opts: { versionsOnly?: boolean; /** rows only (`checksum` ''): a count, no checksum */ countOnly?: boolean; /** versionHashOfRow of a row the current (sub)transaction wrote */ writerHash?: string } = {},
): Promise<TableSum[]> {
  if (tables.length === 0) return [];
  return withPinned([client], async () => {
    const all = await listTables(client);
    const found = tables.flatMap((w) => {
      const t = all.get(relationKey(w.schema, w.name));
      if (!t) return [];
      const have = t.columns.filter((c) => !c.generated).map((c) => c.name);
      const columns = w.columns ?? have;
      return columns.every((c) => have.includes(c)) ? [{ w, t, columns }] : [];
    });
    // Rows all written by the current (sub)transaction all carry its xmin: their versions need no scan.
    const known = (w: { loadedRows?: number }) => opts.versionsOnly && w.loadedRows !== undefined && (w.loadedRows === 0 || opts.writerHash !== undefined);
    const scanned = found.filter(({ w }) => !known(w));
    const sums = await checksums(client, scanned.map(({ t, columns }) => ({ from: fromItem(t), columns, bytes: t.bytes })), { versionsOnly: opts.versionsOnly, countOnly: opts.countOnly });
    const sumOf = new Map(scanned.map((f, i) => [f, sums[i]]));
    return found.map((f) => {
      const { w, t, columns } = f;
      const sum = sumOf.get(f) ?? { rows: w.loadedRows!, sum: '', versions: versionsOfOneWriter(w.loadedRows!, opts.writerHash ?? '0') };
      const base = { schema: w.schema, name: w.name, columns, rows: sum.rows };
      if (!opts.versionsOnly) return { ...base, checksum: sum.sum };
      const signature = columnsSignature(t, columns);
      return { ...base, versions: sum.versions!, ...(signature !== undefined ? { signature } : {}) };
    });
  });
}
