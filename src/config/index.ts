/** The configuration component: diff → plan → apply → verify, over env files and server.json. */
export { diffConfig, countConfigDifferences } from './diff.js';
export { environmentSpecific, IDENTITY_FIELDS } from './rules.js';
export { planConfig } from './plan.js';
export { applyConfig, verifyConfig, type ApplyConfigOptions } from './apply.js';
export type { ConfigDiff, ConfigKeyDiff, ConfigSide, ServerFieldDiff, ConfigPlan, ConfigEdit, ConfigSkip, ConfigConflict, ServerEdit, Provenance } from './types.js';
