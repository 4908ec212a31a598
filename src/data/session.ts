/**
 * Session settings pinned while the data engine works, so that both databases print values the same way
 * (checksums hash the text form of rows) and text COPY output parses back exactly. The previous values are
 * put back afterwards (inside an aborted transaction that fails, but then ROLLBACK undoes the SET anyway).
 */
import type pg from 'pg';
import { quoteIdent } from '../pg/quote.js';
import { wrapCause, type MigrateError } from '../errors.js';

const PINNED: Record<string, string> = {
  DateStyle: 'ISO, YMD',
  IntervalStyle: 'postgres',
  TimeZone: 'UTC',
  extra_float_digits: '3',
  bytea_output: 'hex',
  lc_monetary: 'C',
  // A row-level-security policy must never silently hide rows from a copy or a checksum: error instead.
  row_security: 'off',
};

async function pin(client: pg.ClientBase): Promise<() => Promise<void>> {
  const names = Object.keys(PINNED);
  const before = (await client.query(`SELECT n, current_setting(n) AS v FROM unnest($1::text[]) AS n`, [names])).rows as Array<{ n: string; v: string }>;
  await client.query(`SELECT set_config(n, v, false) FROM unnest($1::text[], $2::text[]) AS x(n, v)`, [names, names.map((n) => PINNED[n])]);
  return async () => {
    await client
      .query(`SELECT set_config(n, v, false) FROM unnest($1::text[], $2::text[]) AS x(n, v)`, [before.map((b) => b.n), before.map((b) => b.v)])
      .catch(() => {});
  };
}

/** Run fn with the settings pinned on every (distinct) client. */
export async function withPinned<R>(clients: pg.ClientBase[], fn: () => Promise<R>): Promise<R> {
  const restores: Array<() => Promise<void>> = [];
  try {
    for (const c of new Set(clients)) restores.push(await pin(c));
    return await fn();
  } finally {
    for (const r of restores) await r();
  }
}

/** The text form of a row over the given columns, hashed to 64 bits (hashtextextended: fast, never disabled like md5 under FIPS). */
export function rowHashSql(columns: string[], alias?: string): string {
  const cols = columns.map((c) => (alias ? alias + '.' : '') + quoteIdent(c)).join(', ');
  return `hashtextextended(ROW(${cols})::text, 0)`;
}

export interface Checksum { rows: number; sum: string }

/** Row count + order-independent checksum (sum of 64-bit row hashes, as numeric) of a relation over columns. */
export async function checksum(client: pg.ClientBase, from: string, columns: string[]): Promise<Checksum> {
  const r = await client.query(`SELECT count(*)::int8 AS n, coalesce(sum(${rowHashSql(columns)}), 0)::text AS s FROM ${from}`);
  return { rows: Number(r.rows[0].n), sum: r.rows[0].s as string };
}

/** Wrap a server error in a MigrateError naming what we were doing; a recognised cause keeps its code and hint (errors.ts). */
export function wrapError(code: string, what: string, e: unknown, hint?: string): MigrateError {
  return wrapCause(code, what, e, hint);
}
