/**
 * Catalog reads for the data engine. Every function is one (batched) query per database.
 */
import type pg from 'pg';
import { displayName, qualify, relationKey } from '../pg/quote.js';

export interface ColumnInfo {
  name: string;
  generated: boolean;
  /** GENERATED ALWAYS AS IDENTITY: an UPDATE may not set it. */
  identityAlways?: boolean;
  typeOid: number;
  /** format_type(): a type name that resolves in this session's search_path (for casts). */
  typeSql: string;
  /** Database-independent identity of the type: schema.typname(typmod). */
  typeId: string;
  /** Effective collation name ('default' resolved to the database's datcollate); null if not collatable. */
  collation: string | null;
  /** The type's binary COPY form embeds no user-type OIDs and it has send/receive functions. */
  portable: boolean;
}

export interface TableInfo {
  oid: number;
  schema: string;
  name: string;
  /** relationKey(schema, name): the identity, as a map key. */
  id: string;
  /** displayName(schema, name): `public.users`, `"public.a".b`. */
  display: string;
  relkind: 'r' | 'p';
  reltuples: number;
  /** pg_table_size (heap + TOAST), summed over the partitions of a partitioned table: exact and cheap to read. */
  bytes: number;
  /** The heap alone (pg_relation_size), likewise summed: 0 means no rows (an empty table with TOAST still has bytes). */
  heapBytes: number;
  columns: ColumnInfo[];
  /** Primary key column names in key order, or null. */
  pk: string[] | null;
}

const TABLES_SQL = `
SELECT c.oid::int8 AS oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS relkind, c.reltuples::float8 AS reltuples,
  CASE WHEN c.relkind = 'p' THEN (SELECT coalesce(sum(pg_table_size(p.relid)), 0) FROM pg_partition_tree(c.oid) AS p) ELSE pg_table_size(c.oid) END::float8 AS bytes,
  CASE WHEN c.relkind = 'p' THEN (SELECT coalesce(sum(pg_relation_size(p.relid)), 0) FROM pg_partition_tree(c.oid) AS p) ELSE pg_relation_size(c.oid) END::float8 AS heap_bytes,
  coalesce((SELECT json_agg(json_build_object(
      'name', a.attname,
      'generated', a.attgenerated <> '',
      'identityAlways', a.attidentity = 'a',
      'typeOid', a.atttypid::int8,
      'typeSql', format_type(a.atttypid, a.atttypmod),
      'typeId', tn.nspname || '.' || t.typname || '(' || a.atttypmod::text || ')',
      'collation', CASE WHEN a.attcollation = 0 THEN NULL
                        WHEN a.attcollation = 100 THEN (SELECT d.datcollate::text FROM pg_database d WHERE d.datname = current_database())
                        ELSE co.collname::text END
    ) ORDER BY a.attnum)
    FROM pg_attribute a
    JOIN pg_type t ON t.oid = a.atttypid
    JOIN pg_namespace tn ON tn.oid = t.typnamespace
    LEFT JOIN pg_collation co ON co.oid = a.attcollation
    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]'::json) AS columns,
  (SELECT json_agg(a.attname ORDER BY k.ord)
     FROM pg_constraint con
     CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
     JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
    WHERE con.conrelid = c.oid AND con.contype = 'p') AS pk
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY n.nspname, c.relname`;

/**
 * Walks every type a column uses (domain base, array element, range subtype, multirange's range, composite
 * attributes). Not portable in binary COPY: no send/receive function; an array whose element type is a user
 * type (array_recv checks the element OID); a composite with a user-typed attribute (record_recv checks OIDs).
 */
const MULTIRANGE_SQL = `UNION ALL SELECT r.rngtypid FROM pg_range r WHERE r.rngmultitypid = ty.oid`; // PostgreSQL 14+
const PORTABLE_SQL = `
WITH RECURSIVE walk(root, t) AS (
  SELECT x, x FROM unnest($1::oid[]) AS x
  UNION
  SELECT w.root, ch.child
    FROM walk w
    JOIN pg_type ty ON ty.oid = w.t
    CROSS JOIN LATERAL (
      SELECT ty.typbasetype WHERE ty.typtype = 'd'
      UNION ALL SELECT ty.typelem WHERE ty.typcategory = 'A' AND ty.typelem <> 0
      UNION ALL SELECT r.rngsubtype FROM pg_range r WHERE r.rngtypid = ty.oid
      /*MULTIRANGE*/
      UNION ALL SELECT at.atttypid FROM pg_attribute at WHERE ty.typtype = 'c' AND at.attrelid = ty.typrelid AND at.attnum > 0 AND NOT at.attisdropped
    ) AS ch(child)
   WHERE ch.child <> 0
)
SELECT w.root::int8 AS oid,
  bool_and(NOT (ty.typsend::oid = 0 OR ty.typreceive::oid = 0
    OR (ty.typcategory = 'A' AND ty.typelem >= 16384::oid)
    OR (ty.typtype = 'c' AND EXISTS (SELECT 1 FROM pg_attribute at WHERE at.attrelid = ty.typrelid AND at.attnum > 0 AND NOT at.attisdropped AND at.atttypid >= 16384::oid))
  )) AS portable
FROM walk w JOIN pg_type ty ON ty.oid = w.t
GROUP BY w.root`;

/** All user tables of a database (partition roots, not partitions), keyed by relationKey(schema, name). */
export async function listTables(client: pg.ClientBase): Promise<Map<string, TableInfo>> {
  const rows = (await client.query(TABLES_SQL)).rows as Array<{ oid: string; schema: string; name: string; relkind: 'r' | 'p'; reltuples: number; bytes: number; heap_bytes: number; columns: Omit<ColumnInfo, 'portable'>[]; pk: string[] | null }>;
  const typeOids = [...new Set(rows.flatMap((r) => r.columns.map((c) => c.typeOid)))];
  const portable = new Map<number, boolean>();
  if (typeOids.length > 0) {
    const version = Number((await client.query(`SELECT current_setting('server_version_num') AS v`)).rows[0].v);
    const sql = PORTABLE_SQL.replace('/*MULTIRANGE*/', version >= 140000 ? MULTIRANGE_SQL : '');
    for (const r of (await client.query(sql, [typeOids])).rows as Array<{ oid: string; portable: boolean }>) portable.set(Number(r.oid), r.portable);
  }
  const out = new Map<string, TableInfo>();
  for (const r of rows) {
    const id = relationKey(r.schema, r.name);
    out.set(id, {
      oid: Number(r.oid),
      schema: r.schema,
      name: r.name,
      id,
      display: displayName(r.schema, r.name),
      relkind: r.relkind,
      reltuples: r.reltuples,
      bytes: r.bytes,
      heapBytes: r.heap_bytes,
      columns: r.columns.map((c) => ({ ...c, typeOid: Number(c.typeOid), portable: portable.get(Number(c.typeOid)) ?? false })),
      pk: r.pk,
    });
  }
  return out;
}

/** How many large objects the database holds (pg_largeobject_metadata: readable by every role). */
export async function largeObjectCount(client: pg.ClientBase): Promise<number> {
  return Number((await client.query<{ n: string }>('SELECT count(*)::int8 AS n FROM pg_largeobject_metadata')).rows[0]!.n);
}

/** The relation as a FROM item: ONLY for plain tables (inheritance children are separate tables). */
export function fromItem(t: { schema: string; name: string; relkind: 'r' | 'p' }): string {
  return (t.relkind === 'r' ? 'ONLY ' : '') + qualify(t.schema, t.name);
}

const TOUCH_CTE = `touch AS (
  SELECT x AS oid FROM unnest($1::oid[]) AS x
  UNION SELECT p.relid FROM unnest($1::oid[]) AS x CROSS JOIN LATERAL pg_partition_tree(x) AS p
)`;

export interface ForeignKeyInfo { schema: string; table: string; name: string; def: string; comment: string | null }

/** Foreign keys on or referencing the given tables (or their partitions); only the top-level constraint of a partition tree. */
export async function foreignKeysTouching(client: pg.ClientBase, oids: number[]): Promise<ForeignKeyInfo[]> {
  if (oids.length === 0) return [];
  const r = await client.query(
    `WITH ${TOUCH_CTE}
     SELECT n.nspname AS schema, c.relname AS table, con.conname AS name, pg_get_constraintdef(con.oid) AS def,
            obj_description(con.oid, 'pg_constraint') AS comment
       FROM pg_constraint con
       JOIN pg_class c ON c.oid = con.conrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE con.contype = 'f' AND con.conparentid = 0
        AND (con.conrelid IN (SELECT oid FROM touch) OR con.confrelid IN (SELECT oid FROM touch))
      ORDER BY con.oid`,
    [oids],
  );
  return r.rows as ForeignKeyInfo[];
}

export interface TriggerInfo { schema: string; table: string; name: string; enabled: 'O' | 'R' | 'A' }

/** Enabled user (non-internal) triggers on the given tables and their partitions, roots first. */
export async function userTriggers(client: pg.ClientBase, oids: number[]): Promise<TriggerInfo[]> {
  if (oids.length === 0) return [];
  const r = await client.query(
    `WITH ${TOUCH_CTE}
     SELECT n.nspname AS schema, c.relname AS table, t.tgname AS name, t.tgenabled::text AS enabled
       FROM pg_trigger t
       JOIN pg_class c ON c.oid = t.tgrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE NOT t.tgisinternal AND t.tgenabled <> 'D' AND t.tgrelid IN (SELECT oid FROM touch)
      ORDER BY c.relispartition, c.oid, t.tgname`,
    [oids],
  );
  return r.rows as TriggerInfo[];
}

export interface OwnedSequence { tableOid: number; column: string; schema: string; name: string }

/** Sequences owned by columns of the given tables (serial: deptype 'a'; identity: 'i'). */
export async function ownedSequences(client: pg.ClientBase, oids: number[]): Promise<OwnedSequence[]> {
  if (oids.length === 0) return [];
  const r = await client.query(
    `SELECT d.refobjid::int8 AS "tableOid", a.attname AS column, sn.nspname AS schema, s.relname AS name
       FROM pg_depend d
       JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
       JOIN pg_namespace sn ON sn.oid = s.relnamespace
       JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
      WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
        AND d.deptype IN ('a', 'i') AND d.refobjid = ANY($1::oid[])
      ORDER BY 1, 2`,
    [oids],
  );
  return (r.rows as Array<OwnedSequence & { tableOid: string }>).map((x) => ({ ...x, tableOid: Number(x.tableOid) }));
}

export interface SequenceState { schema: string; name: string; lastValue: string; isCalled: boolean }

/** last_value / is_called of sequences, one query. */
export async function readSequences(client: pg.ClientBase, seqs: Array<{ schema: string; name: string }>): Promise<SequenceState[]> {
  if (seqs.length === 0) return [];
  const sql = seqs.map((s, i) => `SELECT ${i} AS i, last_value::text AS v, is_called AS c FROM ${qualify(s.schema, s.name)}`).join('\nUNION ALL\n');
  const rows = (await client.query(sql)).rows as Array<{ i: number; v: string; c: boolean }>;
  const byI = new Map(rows.map((r) => [Number(r.i), r]));
  return seqs.map((s, i) => ({ schema: s.schema, name: s.name, lastValue: byI.get(i)!.v, isCalled: byI.get(i)!.c }));
}

/** setval() for many sequences in one statement. */
export async function writeSequences(client: pg.ClientBase, states: SequenceState[]): Promise<void> {
  if (states.length === 0) return;
  await client.query(
    `SELECT setval(x.s::regclass, x.v::int8, x.c) FROM unnest($1::text[], $2::text[], $3::bool[]) AS x(s, v, c)`,
    [states.map((s) => qualify(s.schema, s.name)), states.map((s) => s.lastValue), states.map((s) => s.isCalled)],
  );
}
