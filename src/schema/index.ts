/**
 * Schema engine: inspect → diff → plan → apply (+ checkpoint backup/restore).
 * See /work/shared/DESIGN.md, "facts, not per-kind diff code".
 */
export type { SchemaModel, SchemaScope, Fact, UnsupportedObject } from './model.js';
export { fingerprintSchema } from './model.js';
export { inspectSchema } from './inspect.js';
export type { Hazard, PlanOptions, SchemaChange, SchemaStatement, SchemaPlan } from './plan.js';
export { planSchema, tableHasRowsMessage } from './plan.js';
export type { CanonicalOptions, CanonicalResult } from './canonical.js';
export { canonicalCandidates, canonicalizeSource, canonicalNotice } from './canonical.js';
export { applySchema, countHazardRows, recreatedTablesWithRows, backupSchema, restoreSchemaStructure, restoreSchemaFinish, schemaRollbackPlan, tablesAtRisk } from './apply.js';
export type { RowConflict, RowConflictKind, RowCheckSkipped, RowCheckResult, RowCheckOptions } from './rowcheck.js';
export { checkPlanRows, findRowConflicts } from './rowcheck.js';
