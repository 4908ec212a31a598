/** The configuration component: diff → plan → apply → verify, over env files and server.json. */
export { diffConfig, countConfigDifferences } from './diff.js';
export { defaultRules, environmentSpecific, IDENTITY_FIELDS, isPlaceholder, keyGlobProblem, loadConfigRules, RULES_FILE, type ConfigRules } from './rules.js';
export { planConfig } from './plan.js';
export { applyConfig, verifyConfig, type ApplyConfigOptions } from './apply.js';
export { setJsonLeaf } from './json.js';
export type { ConfigDiff, ConfigKeyDiff, ConfigSide, ServerFieldDiff, ConfigPlan, ConfigEdit, ConfigSkip, ConfigConflict, ServerEdit, Provenance, ConfigRuleRef } from './types.js';
