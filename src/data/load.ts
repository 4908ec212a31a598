/**
 * Replacing the rows of a set of target tables inside the caller's transaction, whatever their foreign keys:
 *   1. drop every foreign key on or referencing them (cycles, self-references, other tables' references),
 *   2. disable their enabled user triggers (ON INSERT / ON TRUNCATE must not fire while rows are copied),
 *   3. TRUNCATE them (transactional in PostgreSQL: if anything fails the caller's ROLLBACK brings rows back),
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
 * `opts.keep`: tables that are not emptied first — their `load` changes rows in place (sync's delta mode, a
 * restore by key); foreign keys and triggers are handled the same way for them.
 */
export async function replaceRows<T extends LoadTarget, R>(target: pg.ClientBase, tables: T[], load: (t: T) => Promise<R>, opts: { keep?: (t: T) => boolean } = {}): Promise<R[]> {
  if (tables.length === 0) return [];
  const oids = tables.map((t) => t.oid);
  const [fks, triggers] = [await foreignKeysTouching(target, oids), await userTriggers(target, oids)];
  const emptied = tables.filter((t) => !opts.keep?.(t));
  const pre: string[] = [
    ...fks.map((fk) => `ALTER TABLE ${qualify(fk.schema, fk.table)} DROP CONSTRAINT ${quoteIdent(fk.name)}`),
    ...triggers.map((tr) => `ALTER TABLE ${qualify(tr.schema, tr.table)} DISABLE TRIGGER ${quoteIdent(tr.name)}`),
    ...(emptied.length > 0 ? [`TRUNCATE ${emptied.map((t) => fromItem(t)).join(', ')}`] : []),
  ];
  try {
    if (pre.length > 0) await target.query(pre.join(';\n'));
  } catch (e) {
    throw wrapError('data_prepare_failed', 'preparing the target tables (dropping foreign keys, disabling triggers, truncating)', e, 'nothing was changed: the transaction is rolled back');
  }
  const results: R[] = [];
  for (const t of tables) results.push(await load(t));
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
            r AS (SELECT c.oid AS root, p.relid FROM unnest($1::oid[]) AS c(oid) CROSS JOIN LATERAL pg_partition_tree(c.oid) AS p)
       SELECT DISTINCT r.root::int8 AS ref FROM pg_constraint con JOIN r ON r.relid = con.confrelid
        WHERE con.contype = 'f' AND con.conrelid NOT IN (SELECT oid FROM e)`,
      [set.map((t) => t.oid)],
    );
    if (blocked.rows.length === 0) return set;
    const out = new Set(blocked.rows.map((r) => Number(r.ref)));
    set = set.filter((t) => !out.has(t.oid));
  }
}
