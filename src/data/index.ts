/**
 * The data engine: make the target's table contents equal to the source's (binary COPY streamed from source
 * to target inside the caller's transaction), show how data differs, back up and restore.
 *
 * Contract with the caller (migrate/):
 *  - source: inside `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY` (one consistent snapshot);
 *  - target: inside the caller's transaction (BEGIN / advisory lock / COMMIT or ROLLBACK are the caller's);
 *  - nothing here commits; any failure throws a MigrateError and the caller rolls back.
 */
export type { DataScope, DataTablePlan, DataPlan, DataTableDiff, DataDiff, DataProgress, DataTableResult } from './types.js';
export type { DataBackupMeta, DataBackupTable } from './backup.js';
export { planData } from './plan.js';
export { diffData } from './diff.js';
export { applyData, verifyData } from './apply.js';
export { backupData, restoreData } from './backup.js';
