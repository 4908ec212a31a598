/**
 * Executing a schema plan, counting what its hazards touch, and the checkpoint (backup / restore) around it.
 */
import type pg from 'pg';
import { createReadStream, createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip, createGunzip } from 'node:zlib';
import copyStreams from 'pg-copy-streams';
import { MigrateError } from '../errors.js';
import { classifyError } from '../error-cause.js';
import { qualify, quoteIdent, quoteLiteral, relationKey } from '../pg/quote.js';
import { fingerprintSchema, type SchemaModel } from './model.js';
import { inspectSchema } from './inspect.js';
import { planSchema, type Hazard, type SchemaPlan } from './plan.js';

const { to: copyTo, from: copyFrom } = copyStreams;

export async function applySchema(target: pg.ClientBase, plan: SchemaPlan, opts: { lockTimeoutMs?: number } = {}): Promise<void> {
  if (plan.errors.length) {
    throw new MigrateError('schema_plan_has_errors', `the schema plan has ${plan.errors.length} error(s) and cannot be applied: ${plan.errors[0]}`, { details: plan.errors });
  }
  const ms = Math.max(0, Math.floor(opts.lockTimeoutMs ?? 10000));
  await target.query(`SET LOCAL lock_timeout = ${quoteLiteral(`${ms}ms`)}`);
  await target.query(`SET LOCAL check_function_bodies = off`);
  for (const st of plan.statements) {
    try {
      await target.query(st.sql);
    } catch (e) {
      const err = e as Error & { code?: string };
      const lock = err.code === '55P03';
      const cause = lock ? undefined : classifyError(e); // a lost connection, a full disk… is not the statement's fault
      if (cause) throw new MigrateError(cause.code, `schema statement failed: ${cause.message}`, { hint: cause.hint, details: { sql: st.sql, pgcode: err.code }, cause: e });
      throw new MigrateError(lock ? 'lock_timeout' : 'schema_apply_failed', `schema statement failed: ${err.message}`, {
        hint: lock ? `another session holds a lock; retry later or raise the lock timeout (${ms} ms)` : `statement: ${st.sql.slice(0, 400)}`,
        details: { sql: st.sql, pgcode: err.code },
        cause: e,
      });
    }
  }
}

interface RelCols { exists: boolean; columns: string[]; pk: string[]; generated: Set<string> }

async function relInfo(client: pg.ClientBase, schema: string, table: string): Promise<RelCols> {
  const r = await client.query(
    `select a.attname, a.attgenerated, coalesce(a.attnum = any(i.indkey), false) ispk
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
       join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
       left join pg_index i on i.indrelid = c.oid and i.indisprimary
      where n.nspname = $1 and c.relname = $2 and c.relkind in ('r','p')
      order by a.attnum`,
    [schema, table],
  );
  return {
    exists: r.rows.length > 0,
    columns: r.rows.filter((x) => !x.attgenerated).map((x) => x.attname),
    pk: r.rows.filter((x) => x.ispk).map((x) => x.attname),
    generated: new Set(r.rows.filter((x) => x.attgenerated).map((x) => x.attname)),
  };
}

function allHazards(plan: SchemaPlan): Hazard[] {
  return plan.statements.flatMap((s) => s.hazards).concat(plan.changes.flatMap((c) => c.hazards));
}

/** Fills hazard.rows: rows with values in a dropped column, rows of a dropped or rewritten table. */
export async function countHazardRows(target: pg.ClientBase, plan: SchemaPlan): Promise<void> {
  const cache = new Map<string, number | undefined>();
  for (const h of allHazards(plan)) {
    if (!h.table || h.schema === undefined || (h.kind !== 'deletes_data' && h.kind !== 'rewrites_table')) continue;
    const col = h.kind === 'deletes_data' ? h.column : undefined;
    const k = `${h.schema}\u0000${h.table}\u0000${col ?? ''}`;
    if (!cache.has(k)) {
      const info = await relInfo(target, h.schema, h.table);
      let n: number | undefined;
      if (info.exists) {
        const where = col && (info.columns.includes(col) || info.generated.has(col)) ? ` where ${quoteIdent(col)} is not null` : '';
        const r = await target.query(`select count(*)::bigint n from ${qualify(h.schema, h.table)}${where}`);
        n = Number(r.rows[0].n);
      }
      cache.set(k, n);
    }
    const n = cache.get(k);
    if (n !== undefined) {
      h.rows = n;
      if (h.kind === 'deletes_data' && !/\(\d[\d,]* rows?/.test(h.message)) h.message += col ? ` (${n.toLocaleString('en-US')} rows with values)` : ` (${n.toLocaleString('en-US')} rows)`;
    }
  }
}

interface BackupItem {
  schema: string;
  table: string;
  /**
   * 'table': every row, restored only if the table is empty after the schema rollback (it was dropped);
   * 'column': key + column values, restored by key; 'replace': every row of a keyless table, restored by replacing its rows.
   */
  mode: 'table' | 'column' | 'replace';
  column?: string;
  key: string[];
  columns: string[];
  file: string;
  rows: number;
}
interface BackupMeta {
  format: 'nself-schema-backup/1';
  fingerprint: string;
  schemas: string[];
  snapshot: SchemaModel;
  items: BackupItem[];
}

/**
 * Before apply: keep the target's model and the rows of every table/column the plan can destroy or rewrite
 * (streamed through COPY into gzip files in dir).
 */
export async function backupSchema(target: pg.ClientBase, plan: SchemaPlan, targetModel: SchemaModel, dir: string): Promise<unknown> {
  mkdirSync(dir, { recursive: true });
  const want = new Map<string, { schema: string; table: string; column?: string }>();
  for (const h of allHazards(plan)) {
    if (!h.table || h.schema === undefined || (h.kind !== 'deletes_data' && h.kind !== 'rewrites_table')) continue;
    const tk = `${h.schema}\u0000${h.table}`;
    if (!h.column) want.set(tk, { schema: h.schema, table: h.table });
    else if (!want.has(tk) || want.get(tk)!.column !== undefined) want.set(`${tk}\u0000${h.column}`, { schema: h.schema, table: h.table, column: h.column });
  }
  // a whole-table backup covers its columns
  for (const [k, w] of [...want]) if (w.column !== undefined && want.has(`${w.schema}\u0000${w.table}`)) want.delete(k);

  const items: BackupItem[] = [];
  let i = 0;
  for (const w of [...want.values()].sort((a, b) => (`${a.schema}.${a.table}.${a.column ?? ''}` < `${b.schema}.${b.table}.${b.column ?? ''}` ? -1 : 1))) {
    const info = await relInfo(target, w.schema, w.table);
    if (!info.exists) continue;
    if (w.column !== undefined && info.generated.has(w.column)) continue; // generated values are recomputed
    let mode: BackupItem['mode'] = w.column === undefined ? 'table' : info.pk.length ? 'column' : 'replace';
    if (w.column !== undefined && !info.columns.includes(w.column)) mode = 'table';
    const columns = mode === 'column' ? [...info.pk, w.column!] : info.columns;
    const file = `schema-${String(++i).padStart(4, '0')}.copy.gz`;
    const sql = `COPY (SELECT ${columns.map(quoteIdent).join(', ')} FROM ONLY ${qualify(w.schema, w.table)}) TO STDOUT`;
    const stream = target.query(copyTo(sql));
    await pipeline(stream, createGzip(), createWriteStream(join(dir, file)));
    items.push({ schema: w.schema, table: w.table, mode, ...(mode === 'column' ? { column: w.column } : {}), key: info.pk, columns, file, rows: Number(stream.rowCount ?? 0) });
  }
  const created = plan.changes.filter((c) => c.kind === 'schema' && c.action === 'create').map((c) => c.identity);
  const schemas = [...new Set([
    ...targetModel.facts.filter((f) => f.kind === 'schema').map((f) => String(f.meta.name)),
    ...created.map((c) => c.replace(/^"|"$/g, '').replace(/""/g, '"')),
  ])].sort();
  const meta: BackupMeta = { format: 'nself-schema-backup/1', fingerprint: fingerprintSchema(targetModel), schemas, snapshot: targetModel, items };
  return meta;
}

/** Tables (relationKey(schema, name)) that existed when the schema backup was taken: a rollback keeps exactly these. */
export function snapshotTables(meta: unknown): Set<string> {
  if (!isMeta(meta)) throw new MigrateError('checkpoint_invalid', 'the schema backup metadata is missing or not recognised');
  return new Set(meta.snapshot.facts.filter((f) => f.kind === 'table' || f.kind === 'partition').map((f) => relationKey(String(f.meta.schema), String(f.meta.name))));
}

function isMeta(m: unknown): m is BackupMeta {
  return typeof m === 'object' && m !== null && (m as BackupMeta).format === 'nself-schema-backup/1';
}

/** Inside the caller's transaction: schema back to the snapshot, saved rows back, verified by fingerprint. */
export async function restoreSchema(target: pg.ClientBase, dir: string, meta: unknown): Promise<void> {
  if (!isMeta(meta)) throw new MigrateError('checkpoint_invalid', 'the schema backup metadata is missing or not recognised');
  const scope = { schemas: meta.schemas };
  const current = await inspectSchema(target, scope);
  const plan = planSchema(meta.snapshot, current);
  if (plan.errors.length) throw new MigrateError('rollback_failed', `cannot roll the schema back: ${plan.errors.join('; ')}`);
  await applySchema(target, plan);

  let n = 0;
  for (const it of meta.items) {
    const t = qualify(it.schema, it.table);
    const cols = it.columns.map(quoteIdent).join(', ');
    const file = join(dir, it.file);
    if (it.mode === 'table' || it.mode === 'replace') {
      if (it.mode === 'table') {
        const some = await target.query(`SELECT 1 FROM ONLY ${t} LIMIT 1`);
        if (some.rows.length) continue; // the rows survived the migration
      } else await target.query(`DELETE FROM ONLY ${t}`);
      await pipeline(createReadStream(file), createGunzip(), target.query(copyFrom(`COPY ${t} (${cols}) FROM STDIN`)));
    } else {
      const tmp = quoteIdent(`nself_restore_${++n}`);
      await target.query(`CREATE TEMP TABLE ${tmp} ON COMMIT DROP AS SELECT ${cols} FROM ONLY ${t} WITH NO DATA`);
      await pipeline(createReadStream(file), createGunzip(), target.query(copyFrom(`COPY ${tmp} (${cols}) FROM STDIN`)));
      const on = it.key.map((k) => `t.${quoteIdent(k)} = r.${quoteIdent(k)}`).join(' AND ');
      await target.query(`UPDATE ONLY ${t} AS t SET ${quoteIdent(it.column!)} = r.${quoteIdent(it.column!)} FROM ${tmp} r WHERE ${on}`);
      await target.query(`DROP TABLE ${tmp}`);
    }
  }

  const after = await inspectSchema(target, scope);
  const fp = fingerprintSchema(after);
  if (fp !== meta.fingerprint) {
    const left = planSchema(meta.snapshot, after);
    throw new MigrateError('rollback_verify_failed', `after rollback the schema does not match the checkpoint (${left.changes.length} difference(s))`, {
      details: left.changes.map((c) => `${c.action} ${c.kind} ${c.identity}`),
    });
  }
}
