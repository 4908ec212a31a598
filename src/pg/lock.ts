/**
 * One nself migrate at a time per target database: a PostgreSQL advisory lock on a stable 64-bit key
 * derived from 'nself-migrate' + the database name. Never waits: a held lock is an immediate
 * MigrateError('target_locked').
 *
 * The transaction-level lock (lockTarget) and the session-level lock (lockTargetSession) use the same key,
 * so a rollback check holding the session lock and a migration holding the transaction lock exclude each other.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { MigrateError } from '../errors.js';

/** The key as SQL: first 64 bits of md5('nself-migrate:' || current_database()), as a signed bigint. */
const KEY_SQL = `('x' || substr(md5('nself-migrate:' || current_database()), 1, 16))::bit(64)::bigint`;

/** The same key computed here (for diagnostics and tests), as a decimal string. */
export function advisoryLockKey(database: string): string {
  const hex = createHash('md5').update('nself-migrate:' + database, 'utf8').digest('hex').slice(0, 16);
  return BigInt.asIntN(64, BigInt('0x' + hex)).toString();
}

interface Holder {
  pid: number;
  application_name: string | null;
  client_addr: string | null;
  since: Date | null;
}

/** Who holds the lock (best effort; fields may be hidden without pg_read_all_stats). Never fails. */
async function holder(client: pg.ClientBase): Promise<Holder | undefined> {
  try {
    const r = await client.query<Holder>(
      `WITH k AS (SELECT ${KEY_SQL} AS key)
       SELECT a.pid, a.application_name, a.client_addr::text AS client_addr, coalesce(a.xact_start, a.backend_start) AS since
         FROM k, pg_catalog.pg_locks l
         JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
          AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
          AND l.classid::text::bigint = ((k.key >> 32) & 4294967295)
          AND l.objid::text::bigint = (k.key & 4294967295)
          AND l.pid <> pg_backend_pid()
        LIMIT 1`,
    );
    return r.rows[0];
  } catch {
    return undefined;
  }
}

async function lockedError(client: pg.ClientBase, envName: string): Promise<MigrateError> {
  const h = await holder(client);
  const who = h
    ? ` (server process ${h.pid}${h.application_name ? `, ${h.application_name}` : ''}${h.client_addr ? ` from ${h.client_addr}` : ''}${h.since ? `, since ${new Date(h.since).toISOString()}` : ''})`
    : '';
  return new MigrateError('target_locked', `another nself migrate is already changing ${envName}${who}`, {
    hint: 'wait until it has finished, then run the command again',
    details: h ? { pid: h.pid, application_name: h.application_name } : undefined,
  });
}

/**
 * Inside the caller's transaction: take the target's transaction-level advisory lock, released at COMMIT/ROLLBACK.
 * Throws MigrateError('target_locked') at once if another session holds it.
 */
export async function lockTarget(client: pg.ClientBase, envName: string): Promise<void> {
  const status = (client as { getTransactionStatus?: () => string | null }).getTransactionStatus?.();
  if (status === 'I') {
    // Outside a transaction the lock would be released at the end of this very statement.
    throw new MigrateError('internal', 'lockTarget must be called inside a transaction (BEGIN first)');
  }
  const r = await client.query<{ ok: boolean }>(`SELECT pg_catalog.pg_try_advisory_xact_lock(${KEY_SQL}) AS ok`);
  if (!r.rows[0]?.ok) throw await lockedError(client, envName);
}

/** Outside a transaction (e.g. rollback checks): take the same lock for the session. Pair with unlockTargetSession. */
export async function lockTargetSession(client: pg.ClientBase, envName: string): Promise<void> {
  const r = await client.query<{ ok: boolean }>(`SELECT pg_catalog.pg_try_advisory_lock(${KEY_SQL}) AS ok`);
  if (!r.rows[0]?.ok) throw await lockedError(client, envName);
}

/** Release the session lock taken by lockTargetSession (no error if it was not held). */
export async function unlockTargetSession(client: pg.ClientBase, _envName?: string): Promise<void> {
  // pg_advisory_unlock returns false (with a WARNING) when not held; that is fine here.
  await client.query(`SELECT pg_catalog.pg_advisory_unlock(${KEY_SQL})`);
}
