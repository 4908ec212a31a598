/**
 * Catalog → facts. Each family of kinds (src/schema/catalog/) writes its queries for the server's version, batched
 * over the whole scope; no query depends on another's rows, so one inspection sends all of them in one round trip
 * (one snapshot: the caller's transaction, or a read-only REPEATABLE READ one of its own), and the families' builders
 * then turn the rows into facts in order, pg_depend last (catalog references → fact-id dependencies).
 */
import type pg from 'pg';
import { quoteLiteral } from '../pg/quote.js';
import { MigrateError } from '../errors.js';
import type { SchemaModel, SchemaScope } from './model.js';
import { versionText } from './versions.js';
import { Inspection, sortStr, sqlEnv, type Family, type Row, type Step } from './catalog/context.js';
import { schemas } from './catalog/schemas.js';
import { types } from './catalog/types.js';
import { relations } from './catalog/relations.js';
import { indexes } from './catalog/indexes.js';
import { rules } from './catalog/rules.js';
import { statistics } from './catalog/statistics.js';
import { triggers } from './catalog/triggers.js';
import { routines } from './catalog/routines.js';
import { textSearch } from './catalog/textsearch.js';
import { security } from './catalog/security.js';
import { comments } from './catalog/comments.js';
import { dependencies } from './catalog/dependencies.js';

/** The oldest PostgreSQL the schema engine reads (13: pg_trigger.tgparentid; every later catalog change is gated). */
export const MIN_SERVER_VERSION = 130000;

/** In the order their builders run: each may use what the ones before it found. */
const FAMILIES: Family[] = [schemas, types, relations, indexes, rules, statistics, triggers, routines, textSearch, security, comments, dependencies];

function inspectError(e: unknown, reading: string, serverVersion: number): MigrateError {
  const err = e as Error & { code?: string };
  return new MigrateError('schema_inspect_failed', `schema inspection failed reading ${reading}${serverVersion ? ` (PostgreSQL ${versionText(serverVersion)})` : ''}: ${err.message}`, {
    cause: e,
    hint: err.code === '42703' || err.code === '42P01' ? 'a catalog column or table this PostgreSQL version lacks: please report it with the version' : 'inspection only reads catalogs: check the role\'s privileges and the server log',
  });
}

const SAVEPOINT = 'nself_inspect';

/**
 * Errors of a catalog function (pg_get_indexdef, pg_get_viewdef, …) meeting an object that a concurrent DDL dropped
 * after this snapshot was taken: the catalog rows of the snapshot still show it, the function reads the current
 * catalog. A new snapshot sees a consistent catalog again.
 */
function concurrentDdl(e: unknown): boolean {
  const { code, message } = e as { code?: string; message?: string };
  return (code === 'XX000' && /^(cache lookup failed|could not open relation with OID)/.test(message ?? '')) || (code === '42P01' && /^relation with OID \d+ does not exist/.test(message ?? ''));
}

/** Attempts of an inspection in a transaction of its own when a concurrent DDL breaks one (each a new snapshot). */
const ATTEMPTS = 8;

export async function inspectSchema(client: pg.ClientBase, scope: SchemaScope = {}): Promise<SchemaModel> {
  let head: { search_path: string; v: string; u: string };
  try {
    head = (await client.query<{ search_path: string; v: string; u: string }>(`select current_setting('search_path') search_path, current_setting('server_version_num') v, current_user u`)).rows[0]!;
  } catch (e) {
    throw inspectError(e, 'the server version', 0);
  }
  const serverVersion = Number(head.v);
  if (serverVersion < MIN_SERVER_VERSION) {
    throw new MigrateError('unsupported_server', `PostgreSQL ${versionText(serverVersion)} is not supported by the schema engine`, { hint: 'PostgreSQL 13 to 18 are supported' });
  }
  const env = sqlEnv(serverVersion, scope);
  const steps: Step[] = [{ name: 'roles', sql: 'select oid, rolname from pg_roles order by rolname' }, ...FAMILIES.flatMap((f) => f.steps(env))];

  // Inside the caller's transaction a savepoint lets a failed batch be undone and its failing query named; outside
  // one, the batch runs in a read-only REPEATABLE READ transaction of its own (one snapshot for every query).
  let inTransaction = true;
  try {
    await client.query(`savepoint ${SAVEPOINT}`);
  } catch (e) {
    if ((e as { code?: string }).code !== '25P01') throw inspectError(e, 'the transaction state', serverVersion);
    inTransaction = false;
  }
  const restore = `select set_config('search_path', ${quoteLiteral(head.search_path)}, false)`;
  const open = inTransaction ? [] : ['begin isolation level repeatable read read only'];
  const close = inTransaction ? [restore, `release savepoint ${SAVEPOINT}`] : [restore, 'commit'];
  const batch = [...open, `select set_config('search_path', '', false)`, ...steps.map((s) => s.sql), ...close];
  let results: pg.QueryResult[] | undefined;
  for (let attempt = 1; !results; attempt++) {
    try {
      results = (await client.query(batch.join(';\n'))) as unknown as pg.QueryResult[];
    } catch (e) {
      if (concurrentDdl(e) && !inTransaction && attempt < ATTEMPTS) {
        await client.query(`rollback; ${restore}`).catch(() => {});
        await new Promise((res) => setTimeout(res, 20 * attempt));
        continue;
      }
      if (concurrentDdl(e)) {
        await client.query(inTransaction ? `rollback to savepoint ${SAVEPOINT}; release savepoint ${SAVEPOINT}` : `rollback; ${restore}`).catch(() => {});
        throw new MigrateError('schema_changed_during_inspection', `the schema changed while it was being read (a DDL ran at the same time): ${(e as Error).message}`, {
          cause: e,
          hint: 'run the command again once the schema change is done',
        });
      }
      throw await nameFailure(client, e, steps, inTransaction, head.search_path, serverVersion);
    }
  }
  const byStep = new Map<string, Row[]>();
  steps.forEach((s, i) => byStep.set(s.name, results[open.length + 1 + i]!.rows));
  return build(serverVersion, (name) => byStep.get(name)!, head.u);
}

/**
 * After a failed batch: undo it, then run its queries one by one until one fails, and report that one (the
 * transaction is then aborted, as it would have been; the caller's ROLLBACK restores the search_path).
 */
async function nameFailure(client: pg.ClientBase, error: unknown, steps: Step[], inTransaction: boolean, searchPath: string, serverVersion: number): Promise<MigrateError> {
  try {
    await client.query(inTransaction ? `rollback to savepoint ${SAVEPOINT}; release savepoint ${SAVEPOINT}` : 'rollback');
  } catch {
    return inspectError(error, 'the catalogs', serverVersion); // the connection is gone or the transaction is beyond repair
  }
  let failed = false;
  try {
    await client.query(`select set_config('search_path', '', false)`);
    for (const s of steps) {
      try {
        await client.query(s.sql);
      } catch (e) {
        failed = true;
        return inspectError(e, s.name, serverVersion);
      }
    }
    return inspectError(error, 'the catalogs', serverVersion);
  } finally {
    // After a failed query inside a transaction this would only say "current transaction is aborted": the caller's
    // ROLLBACK restores the setting then.
    await client.query(`select set_config('search_path', $1, false)`, [searchPath]).catch((e) => {
      if (!failed) throw e;
    });
  }
}

function build(serverVersion: number, rows: (step: string) => Row[], user: string): SchemaModel {
  const ctx = new Inspection(serverVersion);
  for (const r of rows('roles')) {
    ctx.roleName.set(Number(r.oid), r.rolname);
    ctx.roles.push(r.rolname);
  }
  for (const f of FAMILIES) f.build(ctx, rows);

  // the default sort orders strings by UTF-16 code units, as sortStr does, without a call per comparison
  const list = [...ctx.facts.keys()].sort().map((id) => ctx.facts.get(id)!);
  // deps: sorted, without duplicates or the fact itself (in place: each fact has its own array)
  for (const f of list) {
    const d = f.deps;
    if (d.length > 1) {
      d.sort();
      let n = 0;
      for (let i = 0; i < d.length; i++) {
        const x = d[i]!;
        if (x !== f.id && (n === 0 || d[n - 1] !== x)) d[n++] = x;
      }
      d.length = n;
    } else if (d.length === 1 && d[0] === f.id) f.deps = [];
  }
  const { unsupported } = ctx;
  for (const u of unsupported) {
    if (u.dependsOn) u.dependsOn = [...new Set(u.dependsOn)].sort(sortStr);
    if (u.dependents) u.dependents = [...new Set(u.dependents)].sort(sortStr);
  }
  unsupported.sort((a, b) => sortStr(a.kind + a.identity, b.kind + b.identity));
  return { format: 'nself-schema/1', serverVersion, roles: ctx.roles, user, facts: list, unsupported, availableExtensions: ctx.availableExtensions };
}
