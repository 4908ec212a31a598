/**
 * The data engine: make the target's table contents equal to the source's (binary COPY streamed from source
 * to target inside the caller's transaction), show how data differs, back up and restore.
 *
 * Contract with the caller (migrate/):
 *  - source: inside `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY` (one consistent snapshot);
 *  - target: inside the caller's transaction (BEGIN / advisory lock / COMMIT or ROLLBACK are the caller's);
 *  - nothing here commits; any failure throws a MigrateError and the caller rolls back.
 *
 * Needs PostgreSQL 12 or later on both sides (pg_partition_tree, attgenerated, hashtextextended).
 * Not copied: materialized views (the schema step refreshes/creates them), foreign tables, large objects.
 *
 * Decisions worth knowing:
 *  - Tables: relkind r/p outside system schemas and not owned by an extension; partitions travel with their
 *    root; plain tables are read with ONLY (inheritance children are tables of their own). Scope: types.ts.
 *  - Columns copied: present on both sides and not generated on the target. Identity columns are copied as is:
 *    COPY FROM does not enforce GENERATED ALWAYS (no OVERRIDING needed). Owned sequences (serial + identity)
 *    of copied tables then get the source's last_value/is_called.
 *  - Format: binary COPY when every copied column has the same type on both sides and a database-independent
 *    binary form; otherwise text COPY for that table (the plan says which, and why). Text COPY converts values
 *    into the target's type; if that changes them (numeric scale, varchar length...) verifyData fails and the
 *    caller rolls back, so a lossy conversion is never committed.
 *  - Equality: count(*) + sum of 64-bit row hashes computed in each database (session.ts rowHashSql: values of
 *    built-in types whose equal values print alike hashed by their type's hash function, the rest by the row's
 *    text form), with DateStyle, TimeZone, extra_float_digits, IntervalStyle, bytea_output, lc_monetary pinned
 *    (and restored afterwards) so both print values identically; row_security=off so an RLS policy errors instead
 *    of hiding rows.
 *  - Comparing: counts and checksums of many tables per query, source and target at once; a checksum only where
 *    the counts agree (plan.ts checksumPairs, session.ts checksums). A pair an earlier run found or made equal is
 *    compared by its row versions (the xmin of every row) first: unchanged on both sides = still equal (known.ts).
 *  - Verifying: a whole-table binary COPY of built-in types is proven by its row count; everything else by a
 *    checksum of the target (apply.ts verifyData). The source's row versions are summed beside the copy on a
 *    second connection in the same snapshot (versionsAside); the checkpoint records the target's.
 *  - Many small tables: read many per query (multi-statement COPY TO) on a second source connection in the same
 *    snapshot while the target loads the batch before, many per query (batch.ts, apply.ts); large ones stream.
 *  - Replacing rows: see load.ts (drop/re-add FKs, disable/re-enable user triggers, TRUNCATE in the tx; the
 *    secondary indexes of large tables are built after the load).
 *  - Delta mode (sync): only the rows that differ are written, found by primary-key ranges; see delta.ts.
 */
export type { DataScope, DataTablePlan, DataPlan, DataTableDiff, DataDiff, DataProgress, DataTableResult, LargeObjects } from './types.js';
export type { DataBackupMeta, DataBackupTable } from './backup.js';
export { countTargetOnlyValues, planData } from './plan.js';
export { diffData } from './diff.js';
export { applyData, followSequences, openInSnapshot, refreshDependentMatviews, versionsAside, verifyData, type DataVerification } from './apply.js';
export { backupData, backupTables, backedUpTables, emptyBackedUpTables, restoreData, sumTables, type TableSum } from './backup.js';
export { emptyBeforeReload, reloadableTables } from './load.js';
export { listTables, readSequences, writeSequences, type SequenceState, type TableInfo } from './catalog.js';
export { cancelBackend } from './stream.js';
export { planDataDelta, prepareDelta, keyedBackups, replaceWhole, type DeltaState } from './delta.js';
export { unmatchedFilters } from './scope.js';
export { observedEqual, readKnown, recordKnown, type KnownTables } from './known.js';
export { versionHashOfRow } from './session.js';
