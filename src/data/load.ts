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
import { displayName, qualify, quoteIdent, quoteLiteral } from '../pg/quote.js';
import { foreignKeysTouching, fromItem, userTriggers } from './catalog.js';
import { wrapError } from './session.js';

export interface LoadTarget { oid: number; schema: string; name: string; relkind: 'r' | 'p' }

export async function replaceRows<T extends LoadTarget, R>(target: pg.ClientBase, tables: T[], load: (t: T) => Promise<R>): Promise<R[]> {
  if (tables.length === 0) return [];
  const oids = tables.map((t) => t.oid);
  const [fks, triggers] = [await foreignKeysTouching(target, oids), await userTriggers(target, oids)];
  const pre: string[] = [
    ...fks.map((fk) => `ALTER TABLE ${qualify(fk.schema, fk.table)} DROP CONSTRAINT ${quoteIdent(fk.name)}`),
    ...triggers.map((tr) => `ALTER TABLE ${qualify(tr.schema, tr.table)} DISABLE TRIGGER ${quoteIdent(tr.name)}`),
    `TRUNCATE ${tables.map((t) => fromItem(t)).join(', ')}`,
  ];
  try {
    await target.query(pre.join(';\n'));
  } catch (e) {
    throw wrapError('data_prepare_failed', 'preparing the target tables (dropping foreign keys, disabling triggers, truncating)', e, 'nothing was changed: the transaction is rolled back');
  }
  const results: R[] = [];
  for (const t of tables) results.push(await load(t));
  if (triggers.length > 0) {
    const mode = { O: 'ENABLE', R: 'ENABLE REPLICA', A: 'ENABLE ALWAYS' } as const;
    await target.query(triggers.map((tr) => `ALTER TABLE ${qualify(tr.schema, tr.table)} ${mode[tr.enabled]} TRIGGER ${quoteIdent(tr.name)}`).join(';\n'));
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
