/**
 * Session settings pinned while the data engine works, so that both databases print values the same way
 * (checksums hash the text form of rows) and text COPY output parses back exactly. The previous values are
 * put back afterwards (inside an aborted transaction that fails, but then ROLLBACK undoes the SET anyway).
 */
import type pg from 'pg';
import { quoteIdent } from '../pg/quote.js';
import { wrapCause, type MigrateError } from '../errors.js';
import type { ColumnInfo } from './catalog.js';

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

/**
 * Hashes of one value, for the built-in types whose values are equal exactly when their text forms are (under the
 * PINNED settings): integers, oid, bool, text and varchar (compared byte for byte: COLLATE "C"), uuid, timestamp,
 * timestamptz (as timestamp: UTC is pinned, so the conversion changes nothing), time. json and jsonb are hashed in
 * their text form, one column at a time (cheaper than inside the row's text, which quotes every `"` again).
 * Not here, because equal values can print differently: numeric (1.0, 1.00), float (0, -0), interval (1 day,
 * 24 hours), bpchar (trailing blanks), arrays (bounds), jsonb by value (its numbers); enums hash by OID, which
 * differs between databases; user types and domains. Every function here exists since PostgreSQL 11.
 */
const BY_VALUE: Record<string, (v: string, seed: number) => string> = {
  int2: (v, s) => `hashint8extended(${v}::int8, ${s})`,
  int4: (v, s) => `hashint8extended(${v}::int8, ${s})`,
  int8: (v, s) => `hashint8extended(${v}, ${s})`,
  oid: (v, s) => `hashoidextended(${v}, ${s})`,
  bool: (v, s) => `hashint4extended(${v}::int4, ${s})`,
  text: (v, s) => `hashtextextended(${v} COLLATE "C", ${s})`,
  varchar: (v, s) => `hashtextextended(${v}::text COLLATE "C", ${s})`,
  uuid: (v, s) => `uuid_hash_extended(${v}, ${s})`,
  timestamp: (v, s) => `timestamp_hash_extended(${v}, ${s})`,
  timestamptz: (v, s) => `timestamp_hash_extended(${v}::timestamp, ${s})`,
  time: (v, s) => `time_hash_extended(${v}, ${s})`,
  json: (v, s) => `hashtextextended(${v}::text, ${s})`,
  jsonb: (v, s) => `hashtextextended(${v}::text, ${s})`,
};

/** A column hashed on its own (BY_VALUE), with its type's name. */
export interface HashedColumn { name: string; type: string }

/**
 * The columns of `columns` that both sides hash on their own: those whose type, the same on both sides, is in
 * BY_VALUE. Both sides of a comparison must use the same list (a table compared with itself: a === b).
 */
export function hashedColumns(a: ColumnInfo[], b: ColumnInfo[], columns: string[]): HashedColumn[] {
  const typeOf = (list: ColumnInfo[], name: string) => /^pg_catalog\.([a-z0-9]+)\(/.exec(list.find((c) => c.name === name)?.typeId ?? '')?.[1];
  return columns.flatMap((name) => {
    const type = typeOf(a, name);
    return type !== undefined && Object.hasOwn(BY_VALUE, type) && type === typeOf(b, name) ? [{ name, type }] : [];
  });
}

/**
 * A row's 64-bit hash over the given columns: the hashes of the `hashed` columns (BY_VALUE, each with its own
 * seed: its position) and of the text form of the others together (hashtextextended: fast, never disabled like
 * md5 under FIPS), combined by XOR. With no `hashed` columns it is the hash of the row's text form, as checksums
 * recorded by older versions were.
 */
export function rowHashSql(columns: string[], alias?: string, hashed: HashedColumn[] = []): string {
  const ref = (c: string) => (alias ? alias + '.' : '') + quoteIdent(c);
  const alone = new Map(hashed.map((h) => [h.name, h.type]));
  const parts: string[] = [];
  const rest: string[] = [];
  columns.forEach((c, i) => {
    const type = alone.get(c);
    if (type === undefined || !Object.hasOwn(BY_VALUE, type)) rest.push(ref(c));
    else parts.push(`coalesce(${BY_VALUE[type](ref(c), i + 1)}, ${i + 1})`);
  });
  if (rest.length > 0 || parts.length === 0) parts.push(`hashtextextended(ROW(${rest.join(', ')})::text, 0)`);
  return parts.length === 1 ? parts[0] : `(${parts.join(' # ')})`;
}

/**
 * A row version's 64-bit hash: of its xmin, the transaction that wrote it. Every INSERT or UPDATE gives a row a new
 * xmin, one that no row visible before it has; VACUUM, FREEZE, CLUSTER and VACUUM FULL keep it. So a table's count
 * plus the sum of these hashes ("versions") stays the same exactly as long as nobody writes to the table — a
 * fraction of the cost of a checksum (no value is printed or hashed), but only about this table in this database.
 */
const VERSION_HASH = `hashtextextended(xmin::text, 0)`;

/**
 * The versions of a table all of whose `rows` were written by the current (sub)transaction, whose xmin hashes to
 * `hash` (versionHashOfRow): no scan needed.
 */
export function versionsOfOneWriter(rows: number, hash: string): string {
  return (BigInt(rows) * BigInt(hash)).toString();
}

/** VERSION_HASH of one row of `from` (a FROM item), or undefined when it has none. */
export async function versionHashOfRow(client: pg.ClientBase, from: string): Promise<string | undefined> {
  return (await client.query<{ h: string }>(`SELECT ${VERSION_HASH}::text AS h FROM ${from} LIMIT 1`)).rows[0]?.h;
}

/** `sum`: '' when not computed (countOnly); `versions` (see VERSION_HASH): only when asked for. */
export interface Checksum { rows: number; sum: string; versions?: string }

/**
 * One relation to sum: `from` is a FROM item (fromItem()); `bytes` its size, which only decides the batching;
 * `versions`: also sum its row versions (VERSION_HASH) in the same scan; `hashed`: rowHashSql's, the same list on
 * both sides of a comparison (hashedColumns).
 */
export interface SumRequest { from: string; columns: string[]; bytes?: number; versions?: boolean; hashed?: HashedColumn[] }

/** Relations smaller than this (pg_table_size) share one query (UNION ALL) with up to BATCH_TABLES others. */
const BATCH_BELOW_BYTES = 8 * 2 ** 20;
const BATCH_TABLES = 250;

/**
 * Row count + order-independent checksum (sum of 64-bit row hashes, as numeric; '0' for no rows) over the given
 * columns — unless countOnly, or versionsOnly (then only the count and the row versions) — of many relations, in as
 * few round trips as possible: the small ones (by size) are summed by one UNION ALL query per BATCH_TABLES
 * relations, each large one by its own query. The results are exact whatever the sizes; `sum` is '' when not
 * computed. A failing query fails the whole call (the transaction is aborted then): `onError(indexes, e)` names
 * what that query read.
 */
export async function checksums(
  client: pg.ClientBase,
  reqs: SumRequest[],
  opts: { countOnly?: boolean; versionsOnly?: boolean; onError?: (indexes: number[], e: unknown) => unknown } = {},
): Promise<Checksum[]> {
  const out: Checksum[] = new Array(reqs.length);
  const part = (r: SumRequest, i: number) => {
    const sum = opts.countOnly || opts.versionsOnly ? "''" : `coalesce(sum(${rowHashSql(r.columns, undefined, r.hashed)}), 0)::text`;
    const versions = r.versions || opts.versionsOnly ? `coalesce(sum(${VERSION_HASH}), 0)::text` : 'NULL::text';
    return `SELECT ${i}::int4 AS i, count(*)::int8 AS n, ${sum} AS s, ${versions} AS v FROM ${r.from}`;
  };
  const groups: number[][] = [];
  let small: number[] = [];
  reqs.forEach((r, i) => {
    if ((r.bytes ?? 0) >= BATCH_BELOW_BYTES) groups.push([i]);
    else {
      small.push(i);
      if (small.length === BATCH_TABLES) (groups.push(small), (small = []));
    }
  });
  if (small.length > 0) groups.push(small);
  for (const g of groups) {
    try {
      const res = await client.query(g.map((i) => part(reqs[i], i)).join('\nUNION ALL\n'));
      for (const row of res.rows as Array<{ i: number; n: string; s: string; v: string | null }>) {
        out[Number(row.i)] = { rows: Number(row.n), sum: row.s, ...(row.v !== null ? { versions: row.v } : {}) };
      }
    } catch (e) {
      throw opts.onError ? opts.onError(g, e) : e;
    }
  }
  return out;
}

/** Wrap a server error in a MigrateError naming what we were doing; a recognised cause keeps its code and hint (errors.ts). */
export function wrapError(code: string, what: string, e: unknown, hint?: string): MigrateError {
  return wrapCause(code, what, e, hint);
}
