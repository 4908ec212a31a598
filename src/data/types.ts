/**
 * The data engine's public shapes. Plans and reports are plain JSON-serialisable objects.
 */

/**
 * Which tables the data engine looks at.
 *
 * - `schemas` / `excludeSchemas`: globs (`*`, `?`) matched against schema names. Without `schemas`, every
 *   user schema is in scope (never pg_catalog, information_schema, pg_toast*, pg_temp*; never tables that
 *   belong to an extension).
 * - `tables` / `excludeTables`: globs. A pattern with a dot is schema-qualified and split at its first dot that is
 *   not inside double quotes: `public.user*`, `*.audit_*`. A pattern WITHOUT such a dot matches the table name in
 *   ANY schema (so `users` selects `public.users` and `crm.users`). A part in double quotes is a literal name
 *   (dots, `*` and `?` included; `""` is a quote): `"public.a".b` is table b of schema "public.a",
 *   `public."a.b"` is table "a.b" of schema public. Matching is case-sensitive, on the real (unquoted) names.
 * - Exclusions win over inclusions. Partitions are never listed on their own: a partitioned table is copied
 *   through its root (rows are routed on the target).
 */
export interface DataScope {
  schemas?: string[];
  excludeSchemas?: string[];
  tables?: string[];
  excludeTables?: string[];
}

/**
 * A table is identified by its (schema, name) pair, never by a joined string. `table` is the display form
 * (displayName in pg/quote.ts): `public.users`, with a part SQL-quoted when it holds anything but letters,
 * digits, `_` and `$` — `"public.a".b` and `public."a.b"` are two tables and look it.
 */
export interface DataTableRef {
  /** Display form, e.g. `public.users`, `"public.a".b`. */
  table: string;
  schema: string;
  name: string;
}

export interface DataTablePlan extends DataTableRef {
  /** Columns copied and compared: present on both sides, not generated on the target. */
  columns: string[];
  sourceRows: number;
  targetRows: number;
  equal: boolean;
  action: 'copy' | 'skip';
  reason?: string;
  /**
   * Target columns the source lacks: the copy leaves them at their defaults, so their values are lost
   * (`values`: non-NULL values in the target now; -1 until counted).
   */
  targetOnly?: Array<{ column: string; values: number }>;
  /**
   * The source's checksum over `columns`, in the source snapshot (the snapshot cannot move, so it is reused by
   * verifyData and the checkpoint). Planning computes it only where the row counts are equal (else the tables
   * differ anyway; '0' for an empty source); the migrate step computes the missing ones beside the copy.
   */
  sourceChecksum?: string;
  /**
   * COPY format the executor uses. 'binary' when every copied column has the same type on both sides and the
   * type's binary form carries no database-specific OIDs (arrays/composites of user types do); else 'text'.
   */
  format?: 'binary' | 'text';
  /**
   * sync (delta mode) only. 'delta': only the rows that differ are written, found by primary-key ranges (`delta`
   * counts them as planned; the executor counts again under its lock). 'replace': the table is replaced whole
   * (no primary key in common, …; `reason` says why).
   */
  mode?: 'delta' | 'replace';
  delta?: { insert: number; update: number; delete: number };
}

/**
 * How many large objects (`pg_largeobject_metadata`) each database holds, when either holds any. They belong to the
 * database, not to a table, and this tool never copies, compares or rolls them back: a table's `oid` column that
 * refers to one is copied as a number.
 */
export interface LargeObjects { source: number; target: number }

export interface DataPlan {
  tables: DataTablePlan[];
  onlyInSource: DataTableRef[];
  onlyInTarget: DataTableRef[];
  largeObjects?: LargeObjects;
  totals: { tables: number; toCopy: number; sourceRows: number; targetRows: number };
  /**
   * Schema + data runs: the tables emptied before the schema step (they differ, or the schema step changes them,
   * and no table outside the set references them), so that constraints never meet rows about to be replaced.
   */
  emptyFirst?: DataTableRef[];
}

export interface DataTableDiff extends DataTableRef {
  sourceRows: number;
  targetRows: number;
  identical: boolean;
  primaryKey: boolean;
  onlyInSource?: number;
  onlyInTarget?: number;
  different?: number;
}

export interface DataDiff {
  tables: DataTableDiff[];
  onlyInSource: DataTableRef[];
  onlyInTarget: DataTableRef[];
  largeObjects?: LargeObjects;
}

export interface DataProgress {
  table: string;
  rows: number;
  totalRows: number;
  bytes: number;
  elapsedMs: number;
  done: boolean;
}

export interface DataTableResult {
  table: string;
  rowsBefore: number;
  rowsAfter: number;
  bytes: number;
  ms: number;
  /** sync: 'delta' when only differing rows were written (with the counts), 'replace' when the table was reloaded whole. */
  mode?: 'delta' | 'replace';
  inserted?: number;
  updated?: number;
  deleted?: number;
}
