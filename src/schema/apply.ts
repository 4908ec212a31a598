/**
 * Executing a schema plan, counting what its hazards touch, and the checkpoint (backup / restore) around it.
 */
import type pg from 'pg';
import { MigrateError } from '../errors.js';
import { classifyError } from '../error-cause.js';
import { qualify, quoteIdent, relationKey } from '../pg/quote.js';
import { factSignature, fingerprintSchema, type SchemaModel } from './model.js';
import { inspectSchema } from './inspect.js';
import { planSchema, type Hazard, type SchemaPlan } from './plan.js';
import { canonicalizeSource } from './canonical.js';

/** Runs the plan's statements in the caller's transaction; lock waits are bounded by the session's lock_timeout. */
export async function applySchema(target: pg.ClientBase, plan: SchemaPlan): Promise<void> {
  if (plan.errors.length) {
    throw new MigrateError('schema_plan_has_errors', `the schema plan has ${plan.errors.length} error(s) and cannot be applied: ${plan.errors[0]}`, { details: plan.errors });
  }
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
        hint: lock ? 'another session holds a lock on the object; retry later or raise --lock-timeout' : `statement: ${st.sql.slice(0, 400)}`,
        details: { sql: st.sql, pgcode: err.code },
        cause: e,
      });
    }
  }
}

/**
 * The tables the plan must recreate (SchemaPlan.recreatedTables) that hold rows of their own now. Their partitions
 * and inheritance children are detached before the drop and keep their rows; the plan stops before dropping a
 * table that still has any.
 */
export async function recreatedTablesWithRows(target: pg.ClientBase, plan: SchemaPlan): Promise<SchemaPlan['recreatedTables']> {
  const out: SchemaPlan['recreatedTables'] = [];
  for (const t of plan.recreatedTables) {
    const r = await target.query<{ x: boolean }>(`select exists (select from only ${qualify(t.schema, t.name)}) x`);
    if (r.rows[0]!.x) out.push(t);
  }
  return out;
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

/** What the checkpoint keeps of the schema: the target's model before the migration (rows are the data backup's). */
interface BackupMeta {
  format: 'nself-schema-backup/2';
  fingerprint: string;
  schemas: string[];
  snapshot: SchemaModel;
}

/**
 * Tables whose rows the plan can destroy or rewrite (dropped, losing a column, retyped, recreated): the caller
 * backs up each of them WHOLE, so that a rollback can empty it, put the schema back (NOT NULL, primary keys and
 * column order included) and reload every row, instead of patching values column by column.
 */
export function tablesAtRisk(plan: SchemaPlan): Array<{ schema: string; name: string }> {
  const out = new Map<string, { schema: string; name: string }>();
  for (const h of allHazards(plan)) {
    if (!h.table || h.schema === undefined || (h.kind !== 'deletes_data' && h.kind !== 'rewrites_table')) continue;
    out.set(relationKey(h.schema, h.table), { schema: h.schema, name: h.table });
  }
  return [...out.values()].sort((a, b) => (a.schema === b.schema ? (a.name < b.name ? -1 : 1) : a.schema < b.schema ? -1 : 1));
}

/** Before apply: keep the target's model (the rows at risk are backed up by the data component). */
export function backupSchema(plan: SchemaPlan, targetModel: SchemaModel): unknown {
  const created = plan.changes.filter((c) => c.kind === 'schema' && c.action === 'create').map((c) => c.identity);
  const schemas = [...new Set([
    ...targetModel.facts.filter((f) => f.kind === 'schema').map((f) => String(f.meta.name)),
    ...created.map((c) => c.replace(/^"|"$/g, '').replace(/""/g, '"')),
  ])].sort();
  const meta: BackupMeta = { format: 'nself-schema-backup/2', fingerprint: fingerprintSchema(targetModel), schemas, snapshot: targetModel };
  return meta;
}

function schemaMeta(m: unknown): BackupMeta {
  if (typeof m === 'object' && m !== null && (m as { format?: string }).format === 'nself-schema-backup/1') {
    throw new MigrateError('checkpoint_too_old', 'this checkpoint was written by nself migrate 0.1.0, whose schema backups cannot be restored exactly', {
      hint: 'roll it back with nself-migrate 0.1.0, or restore the target from your own backup',
    });
  }
  if (typeof m !== 'object' || m === null || (m as BackupMeta).format !== 'nself-schema-backup/2') {
    throw new MigrateError('checkpoint_invalid', 'the schema backup metadata is missing or not recognised', { hint: 'the checkpoint was edited by hand or written by another version' });
  }
  return m as BackupMeta;
}

type TableRef = { schema: string; name: string };

/** Every table of a model with its column names in column order, by relationKey. */
function columnOrder(model: SchemaModel): Map<string, TableRef & { columns: string[] }> {
  const tables = new Map<string, TableRef>();
  for (const f of model.facts) if (f.kind === 'table') tables.set(f.id, { schema: String(f.meta.schema), name: String(f.meta.name) });
  const cols = new Map<string, TableRef & { pos: Array<{ name: string; pos: number }> }>();
  for (const f of model.facts) {
    if (f.kind !== 'column' || !f.parent || !tables.has(f.parent)) continue;
    const t = tables.get(f.parent)!;
    const k = relationKey(t.schema, t.name);
    (cols.get(k) ?? cols.set(k, { ...t, pos: [] }).get(k)!).pos.push({ name: String(f.meta.name), pos: Number(f.meta.pos) });
  }
  return new Map([...cols].map(([k, v]) => [k, { schema: v.schema, name: v.name, columns: v.pos.sort((a, b) => a.pos - b.pos).map((c) => c.name) }]));
}

/**
 * The snapshot without the foreign keys that the target lacks now: the first pass of a rollback creates every
 * other object, the rows are reloaded, and the second pass adds these foreign keys, which then check every row.
 */
function withoutMissingForeignKeys(snapshot: SchemaModel, current: SchemaModel): SchemaModel {
  const now = new Map(current.facts.map((f) => [f.id, f]));
  const gone = new Set<string>();
  for (const f of snapshot.facts) {
    if (f.kind !== 'constraint' || f.attrs.type !== 'f') continue;
    const c = now.get(f.id);
    if (!c || factSignature(c) !== factSignature(f)) gone.add(f.id);
  }
  for (let grew = gone.size > 0; grew; ) {
    grew = false;
    for (const f of snapshot.facts) if (!gone.has(f.id) && f.parent && gone.has(f.parent)) gone.add(f.id), (grew = true);
  }
  return gone.size ? { ...snapshot, facts: snapshot.facts.filter((f) => !gone.has(f.id)) } : snapshot;
}

/**
 * Rollback, first pass (inside the caller's transaction; the tables to reload are empty already): every table of
 * `reloaded` whose columns could not come back in their old order by ADD COLUMN is dropped (it is empty, and
 * recreated from the snapshot), then the schema is planned back to the snapshot without the foreign keys the
 * target lacks now, and applied.
 */
export async function restoreSchemaStructure(target: pg.ClientBase, meta: unknown, reloaded: (schema: string, name: string) => boolean): Promise<void> {
  const m = schemaMeta(meta);
  const scope = { schemas: m.schemas };
  let current = await inspectSchema(target, scope);
  const want = columnOrder(m.snapshot);
  const have = columnOrder(current);
  const recreate: TableRef[] = [];
  for (const [k, { schema, name, columns: cols }] of want) {
    const now = have.get(k)?.columns;
    if (!now) continue;
    if (!reloaded(schema, name)) continue;
    const kept = now.filter((c) => cols.includes(c));
    const after = [...kept, ...cols.filter((c) => !kept.includes(c))];
    if (after.join('\u0000') !== cols.join('\u0000')) recreate.push({ schema, name });
  }
  if (recreate.length > 0) {
    await target.query(recreate.map((t) => `DROP TABLE ${qualify(t.schema, t.name)} CASCADE`).join(';\n'));
    current = await inspectSchema(target, scope);
  }
  // Rows are reloaded in this transaction: an enum value cannot be added in place (ADD VALUE) and used at once.
  const rowsFollow = new Set(current.facts.concat(m.snapshot.facts).filter((f) => f.kind === 'table' && reloaded(String(f.meta.schema), String(f.meta.name))).map((f) => relationKey(String(f.meta.schema), String(f.meta.name))));
  // the snapshot's definitions as the target renders them now (a definition recreated from its own text may read differently)
  const snapshot = (await canonicalizeSource(target, m.snapshot, current, { inTransaction: true })).model;
  const plan = planSchema(withoutMissingForeignKeys(snapshot, current), current, { rowsFollow });
  if (plan.errors.length) throw new MigrateError('rollback_failed', `cannot roll the schema back: ${plan.errors.join('; ')}`);
  await applySchema(target, plan);
}

/**
 * Rollback, second pass (after the rows are back): what still differs from the snapshot (the foreign keys) is
 * applied, then the schema must equal the snapshot: fingerprint and the column order of every table.
 */
export async function restoreSchemaFinish(target: pg.ClientBase, meta: unknown): Promise<void> {
  const m = schemaMeta(meta);
  const scope = { schemas: m.schemas };
  const current = await inspectSchema(target, scope);
  const plan = planSchema((await canonicalizeSource(target, m.snapshot, current, { inTransaction: true })).model, current);
  if (plan.errors.length) throw new MigrateError('rollback_failed', `cannot roll the schema back: ${plan.errors.join('; ')}`);
  await applySchema(target, plan);
  const after = await inspectSchema(target, scope);
  // equal fingerprints, or (definitions recreated from their text may read differently) equal meaning
  const left = fingerprintSchema(after) === m.fingerprint ? undefined : planSchema((await canonicalizeSource(target, m.snapshot, after, { inTransaction: true })).model, after);
  if (left && left.changes.length > 0) {
    throw new MigrateError('rollback_verify_failed', `after rollback the schema does not match the checkpoint (${left.changes.length} difference(s))`, {
      hint: 'nothing was changed (rolled back); please report this with the checkpoint id',
      details: left.changes.map((c) => `${c.action} ${c.kind} ${c.identity}`),
    });
  }
  const have = columnOrder(after);
  for (const [k, { schema, name, columns: cols }] of columnOrder(m.snapshot)) {
    const now = have.get(k)?.columns;
    if (now && now.join('\u0000') !== cols.join('\u0000')) {
      throw new MigrateError('rollback_verify_failed', `after rollback the columns of ${schema}.${name} are in another order (${now.join(', ')}) than before the migration (${cols.join(', ')})`, {
        hint: 'nothing was changed (rolled back); please report this with the checkpoint id',
      });
    }
  }
}

/** What a rollback would change: the plan from the target as it is now back to the checkpoint's snapshot. */
export async function schemaRollbackPlan(target: pg.ClientBase, meta: unknown): Promise<SchemaPlan> {
  const m = schemaMeta(meta);
  return planSchema(m.snapshot, await inspectSchema(target, { schemas: m.schemas }));
}
