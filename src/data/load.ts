/**
 * Replacing the rows of a set of target tables inside the caller's transaction, whatever their foreign keys:
 *   1. drop every foreign key on or referencing them (cycles, self-references, other tables' references),
 *   2. disable their enabled user triggers (ON INSERT / ON TRUNCATE must not fire while rows are copied),
 *   3. TRUNCATE them (transactional in PostgreSQL: if anything fails the caller's ROLLBACK brings rows back)
 *      — except those the caller knows empty (opts.empty),
 *   4. load every table (the caller's callback),
 *   5. re-enable the triggers in their exact previous mode, re-add the foreign keys (PostgreSQL re-validates
 *      every row; a violation fails the migration, which then rolls back).
 * TRUNCATE (not DELETE): fast and no bloat; like any TRUNCATE it is not MVCC-safe for transactions in other
 * sessions that took their snapshot before our COMMIT (they see the tables empty).
 */
import type pg from 'pg';
import { MigrateError } from '../errors.js';
import { displayName, qualify, quoteIdent, quoteLiteral, relationKey } from '../pg/quote.js';
import { foreignKeysTouching, fromItem, listTables, userTriggers } from './catalog.js';
import { wrapError } from './session.js';

/** How to enable a trigger again in the mode it had (pg_trigger.tgenabled). */
const ENABLE = { O: 'ENABLE', R: 'ENABLE REPLICA', A: 'ENABLE ALWAYS' } as const;

export interface LoadTarget { oid: number; schema: string; name: string; relkind: 'r' | 'p' }

/**
 * Tables loaded with at least this many rows get their secondary indexes built after the load instead of
 * maintained row by row (bench/data.ts measures where that starts to pay; below it, keeping them is cheaper).
 */
export const DEFER_INDEXES_ROWS = 10_000;

/**
 * Tables loaded with at least this many rows also get their primary key and unique constraints added after the
 * load (one sorted build instead of one insertion per row: ~12 % faster for a million rows in key order, measured
 * with bench/indexes.ts; below this the difference is noise).
 */
export const DEFER_KEYS_ROWS = 100_000;

/**
 * An index dropped before a load and built again after it, exactly as it was: a plain index (`def` is its
 * pg_get_indexdef), or the index of a primary key or unique constraint (`constraint`: the constraint is dropped
 * and added again with `def` = pg_get_constraintdef, its comment too).
 */
interface DeferredIndex { schema: string; table: string; name: string; def: string; clustered: boolean; comment: string | null; constraint?: { comment: string | null } }

/**
 * The indexes of the given plain tables that can be dropped for a load and rebuilt after it with the same
 * result: valid, backing no constraint (primary keys, unique and exclusion constraints stay: they are not
 * rebuilt), not the replica identity, referenced by nothing (a foreign key on a unique index counts, but
 * replaceRows has dropped those by now), depending only on the table, its columns' collations, operator
 * classes and functions (not on an extension), in the default tablespace, without per-column statistics
 * targets or security labels. pg_get_indexdef gives the definition (name, method, columns, INCLUDE, WHERE,
 * WITH); the clustered flag and the comment are put back separately.
 */
async function deferrableIndexes(target: pg.ClientBase, oids: number[]): Promise<DeferredIndex[]> {
  if (oids.length === 0) return [];
  const r = await target.query<DeferredIndex>(
    `SELECT n.nspname AS schema, c.relname AS table, ic.relname AS name, pg_get_indexdef(i.indexrelid) AS def,
            i.indisclustered AS clustered, obj_description(i.indexrelid, 'pg_class') AS comment
       FROM pg_index i
       JOIN pg_class ic ON ic.oid = i.indexrelid
       JOIN pg_class c ON c.oid = i.indrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE i.indrelid = ANY($1::oid[]) AND c.relkind = 'r' AND ic.relkind = 'i'
        AND i.indisvalid AND i.indisready AND i.indislive AND NOT i.indisreplident
        AND ic.reltablespace = 0
        AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid)
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indexrelid)
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid AND d.deptype NOT IN ('a', 'n'))
        AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = i.indexrelid AND coalesce(a.attstattarget, -1) >= 0)
        AND NOT EXISTS (SELECT 1 FROM pg_seclabel l WHERE l.classoid = 'pg_class'::regclass AND l.objoid = i.indexrelid)
      ORDER BY i.indexrelid`,
    [oids],
  );
  return r.rows;
}

/**
 * The primary keys and unique constraints of the given plain tables that can be dropped for a load and added
 * again after it with the same result: not a partition's (inherited) constraint, its index valid, not the replica
 * identity, in the default tablespace, without storage parameters (pg_get_constraintdef does not print them),
 * security labels or statistics targets, and nothing but the constraint (and a deferrable one's own check trigger)
 * depending on it (foreign keys referencing it were dropped by replaceRows by now). NOT NULL stays on the columns (on PostgreSQL 18 as its own constraint).
 */
async function deferrableKeys(target: pg.ClientBase, oids: number[]): Promise<DeferredIndex[]> {
  if (oids.length === 0) return [];
  const r = await target.query<DeferredIndex & { ccomment: string | null }>(
    `SELECT n.nspname AS schema, c.relname AS table, con.conname AS name, pg_get_constraintdef(con.oid) AS def,
            i.indisclustered AS clustered, obj_description(i.indexrelid, 'pg_class') AS comment,
            obj_description(con.oid, 'pg_constraint') AS ccomment
       FROM pg_constraint con
       JOIN pg_index i ON i.indexrelid = con.conindid
       JOIN pg_class ic ON ic.oid = i.indexrelid
       JOIN pg_class c ON c.oid = con.conrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE con.conrelid = ANY($1::oid[]) AND con.contype IN ('p', 'u') AND c.relkind = 'r' AND NOT c.relispartition
        AND con.conparentid = 0 AND con.coninhcount = 0 AND ic.relname = con.conname
        AND i.indisvalid AND i.indisready AND i.indislive AND NOT i.indisreplident
        AND ic.reltablespace = 0 AND ic.reloptions IS NULL
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.refclassid = 'pg_constraint'::regclass AND d.refobjid = con.oid
                           AND NOT (d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid)
                           AND NOT (d.classid = 'pg_trigger'::regclass AND d.deptype = 'i')) -- a deferrable key's own check trigger
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indexrelid)
        AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = i.indexrelid AND coalesce(a.attstattarget, -1) >= 0)
        AND NOT EXISTS (SELECT 1 FROM pg_seclabel l WHERE l.classoid = 'pg_class'::regclass AND l.objoid = i.indexrelid)
      ORDER BY con.oid`,
    [oids],
  );
  return r.rows.map(({ ccomment, ...k }) => ({ ...k, constraint: { comment: ccomment } }));
}

/** maintenance_work_mem for the index builds after a load (when the session has less), restored afterwards. */
const BUILD_MEMORY = '256MB';

async function rebuildIndexes(target: pg.ClientBase, indexes: DeferredIndex[]): Promise<void> {
  if (indexes.length === 0) return;
  // The indexes come back where they were (the database default: default_tablespace must not redirect them),
  // with more sort memory unless the session already has more; both settings as before afterwards.
  const prev = (await target.query<{ ts: string; mem: string; more: boolean }>(
    `SELECT current_setting('default_tablespace') AS ts, current_setting('maintenance_work_mem') AS mem,
            pg_size_bytes(current_setting('maintenance_work_mem')) < pg_size_bytes($1) AS more`,
    [BUILD_MEMORY],
  )).rows[0];
  await target.query(`SELECT set_config('default_tablespace', '', true), set_config('maintenance_work_mem', $1, true)`, [prev.more ? BUILD_MEMORY : prev.mem]);
  for (const ix of indexes) {
    try {
      const table = qualify(ix.schema, ix.table);
      await target.query([
        ix.constraint ? `ALTER TABLE ${table} ADD CONSTRAINT ${quoteIdent(ix.name)} ${ix.def}` : ix.def,
        ...(ix.constraint?.comment != null ? [`COMMENT ON CONSTRAINT ${quoteIdent(ix.name)} ON ${table} IS ${quoteLiteral(ix.constraint.comment)}`] : []),
        ...(ix.clustered ? [`ALTER TABLE ${table} CLUSTER ON ${quoteIdent(ix.name)}`] : []),
        ...(ix.comment !== null ? [`COMMENT ON INDEX ${qualify(ix.schema, ix.name)} IS ${quoteLiteral(ix.comment)}`] : []),
      ].join(';\n'));
    } catch (e) {
      const what = ix.constraint ? `constraint ${ix.name}` : `index ${displayName(ix.schema, ix.name)}`;
      throw wrapError('data_index_failed', `building ${what} on ${displayName(ix.schema, ix.table)} again after loading`, e, 'nothing was changed: the target transaction is rolled back');
    }
  }
  await target.query(`SELECT set_config('default_tablespace', $1, true), set_config('maintenance_work_mem', $2, true)`, [prev.ts, prev.mem]);
}

/**
 * `loadAll` loads every table (in any order, one by one or many at once) and returns one result per table, in
 * the order of `tables`.
 * `opts.keep`: tables that are not emptied first — their `load` changes rows in place (sync's delta mode, a
 * restore by key); foreign keys and triggers are handled the same way for them.
 * `opts.deferIndexes`: emptied tables whose secondary indexes (see deferrableIndexes) are dropped before the load
 * and built after it, like pg_restore does — faster for large tables (one sort instead of one insertion per row
 * and index); `opts.deferKeys`: emptied tables whose primary key and unique constraints (deferrableKeys) are too.
 * `opts.empty`: tables the caller counted empty under a lock it still holds (no other session can have written
 * since): not truncated — TRUNCATE costs per relation (new files for the table and its indexes), and an empty
 * table needs none. Their load must not use COPY FREEZE (allowed only after a TRUNCATE in the transaction).
 */
export async function replaceRows<T extends LoadTarget, R>(
  target: pg.ClientBase,
  tables: T[],
  loadAll: (tables: T[]) => Promise<R[]>,
  opts: { keep?: (t: T) => boolean; deferIndexes?: (t: T) => boolean; deferKeys?: (t: T) => boolean; empty?: (t: T) => boolean } = {},
): Promise<R[]> {
  if (tables.length === 0) return [];
  const oids = tables.map((t) => t.oid);
  const [fks, triggers] = [await foreignKeysTouching(target, oids), await userTriggers(target, oids)];
  const emptied = tables.filter((t) => !opts.keep?.(t));
  const truncated = emptied.filter((t) => !opts.empty?.(t));
  const pre: string[] = [
    ...fks.map((fk) => `ALTER TABLE ${qualify(fk.schema, fk.table)} DROP CONSTRAINT ${quoteIdent(fk.name)}`),
    ...triggers.map((tr) => `ALTER TABLE ${qualify(tr.schema, tr.table)} DISABLE TRIGGER ${quoteIdent(tr.name)}`),
    ...(truncated.length > 0 ? [`TRUNCATE ${truncated.map((t) => fromItem(t)).join(', ')}`] : []),
  ];
  try {
    if (pre.length > 0) await target.query(pre.join(';\n'));
  } catch (e) {
    throw wrapError('data_prepare_failed', 'preparing the target tables (dropping foreign keys, disabling triggers, truncating)', e, 'nothing was changed: the transaction is rolled back');
  }
  // After the foreign keys are gone: a unique index they referenced is free to go too.
  const plain = emptied.filter((t) => t.relkind === 'r');
  const deferred = [
    ...(await deferrableKeys(target, plain.filter((t) => opts.deferKeys?.(t)).map((t) => t.oid))),
    ...(await deferrableIndexes(target, plain.filter((t) => opts.deferIndexes?.(t)).map((t) => t.oid))),
  ];
  if (deferred.length > 0) {
    await target.query(deferred.map((ix) => (ix.constraint ? `ALTER TABLE ${qualify(ix.schema, ix.table)} DROP CONSTRAINT ${quoteIdent(ix.name)}` : `DROP INDEX ${qualify(ix.schema, ix.name)}`)).join(';\n'));
  }
  const results = await loadAll(tables);
  await rebuildIndexes(target, deferred);
  if (triggers.length > 0) {
    await target.query(triggers.map((tr) => `ALTER TABLE ${qualify(tr.schema, tr.table)} ${ENABLE[tr.enabled]} TRIGGER ${quoteIdent(tr.name)}`).join(';\n'));
  }
  for (const fk of fks) {
    try {
      await target.query(`ALTER TABLE ${qualify(fk.schema, fk.table)} ADD CONSTRAINT ${quoteIdent(fk.name)} ${fk.def}`);
      if (fk.comment !== null) await target.query(`COMMENT ON CONSTRAINT ${quoteIdent(fk.name)} ON ${qualify(fk.schema, fk.table)} IS ${quoteLiteral(fk.comment)}`);
    } catch (e) {
      const err = wrapError('data_fk_violation', `after loading, foreign key ${fk.name} on ${displayName(fk.schema, fk.table)} does not hold`, e, 'nothing was changed (rolled back); copy the referenced and referencing tables together, or fix the rows that point nowhere');
      throw new MigrateError(err.code, err.message, { hint: err.hint, cause: e, details: { constraint: fk.name, table: displayName(fk.schema, fk.table), definition: fk.def } });
    }
  }
  return results;
}

/** loadAll for replaceRows from a per-table load: one table after the other. */
export function oneByOne<T, R>(load: (t: T) => Promise<R>): (tables: T[]) => Promise<R[]> {
  return async (tables) => {
    const out: R[] = [];
    for (const t of tables) out.push(await load(t));
    return out;
  };
}

/**
 * Empty tables for good inside the caller's transaction: drop the foreign keys on or referencing them (they are
 * not re-added: the caller's schema step restores the ones it wants), TRUNCATE with user triggers kept silent.
 */
export async function emptyTables(target: pg.ClientBase, tables: LoadTarget[]): Promise<void> {
  if (tables.length === 0) return;
  const fks = await foreignKeysTouching(target, tables.map((t) => t.oid));
  await truncateQuietly(target, tables, fks.map((fk) => `ALTER TABLE ${qualify(fk.schema, fk.table)} DROP CONSTRAINT ${quoteIdent(fk.name)}`));
}

async function truncateQuietly(target: pg.ClientBase, tables: LoadTarget[], before: string[] = []): Promise<void> {
  const triggers = await userTriggers(target, tables.map((t) => t.oid));
  await target.query([
    ...before,
    ...triggers.map((tr) => `ALTER TABLE ${qualify(tr.schema, tr.table)} DISABLE TRIGGER ${quoteIdent(tr.name)}`),
    `TRUNCATE ${tables.map((t) => fromItem(t)).join(', ')}`,
    ...triggers.map((tr) => `ALTER TABLE ${qualify(tr.schema, tr.table)} ${ENABLE[tr.enabled]} TRIGGER ${quoteIdent(tr.name)}`),
  ].join(';\n'));
}

/**
 * Before the schema step of a schema + data migration: empty the tables whose rows the data step reloads, with
 * their foreign keys left in place. A table that a table outside the set references (with rows that would point
 * nowhere) keeps its rows: the data step replaces them as before. Returns the tables emptied.
 */
export async function emptyBeforeReload(target: pg.ClientBase, wanted: Array<{ schema: string; name: string }>): Promise<LoadTarget[]> {
  const set = await reloadableTables(target, wanted);
  if (set.length === 0) return [];
  try {
    await truncateQuietly(target, set);
  } catch (e) {
    throw wrapError('data_prepare_failed', 'emptying the tables to reload before the schema step', e, 'nothing was changed: the transaction is rolled back');
  }
  return set;
}

/** Read-only: which of the wanted tables emptyBeforeReload would empty (those no outside table references). */
export async function reloadableTables(target: pg.ClientBase, wanted: Array<{ schema: string; name: string }>): Promise<LoadTarget[]> {
  const all = await listTables(target);
  let set = wanted.flatMap((w) => all.get(relationKey(w.schema, w.name)) ?? []);
  for (;;) {
    if (set.length === 0) return [];
    const blocked = await target.query<{ ref: string }>(
      `WITH RECURSIVE e AS (SELECT x AS oid FROM unnest($1::oid[]) AS x
                             UNION SELECT p.relid FROM unnest($1::oid[]) AS x CROSS JOIN LATERAL pg_partition_tree(x) AS p),
            -- each table of the set with itself and its partitions (pg_partition_tree has no row for a plain table)
            r AS (SELECT c.oid AS root, c.oid AS relid FROM unnest($1::oid[]) AS c(oid)
                  UNION SELECT c.oid, p.relid FROM unnest($1::oid[]) AS c(oid) CROSS JOIN LATERAL pg_partition_tree(c.oid) AS p)
       SELECT DISTINCT r.root::int8 AS ref FROM pg_constraint con JOIN r ON r.relid = con.confrelid
        WHERE con.contype = 'f' AND con.conrelid NOT IN (SELECT oid FROM e)`,
      [set.map((t) => t.oid)],
    );
    if (blocked.rows.length === 0) return set;
    const out = new Set(blocked.rows.map((r) => Number(r.ref)));
    set = set.filter((t) => !out.has(t.oid));
  }
}
