/**
 * diffConfig: what differs between two environments' effective configuration, masked and with provenance.
  * Values are compared after expansion (what the application sees). A secret's value is never shown (a credential
  * URL shows everything but its password, unless it expands a secret); a value expanding a secret is a secret.
  *
  * A difference a migration leaves alone is `expected` (shown, not counted): environment-specific keys and fields,
  * keys and fields the project's rules keep, secrets that differ, keys only in the target, server.json identity
  * fields. A secret the source sets that is empty or a placeholder in the target is `needs_value` and counted: the
  * target cannot work until someone fills it in (unless the project's rules keep it in the target).
  */
 import { relative } from 'node:path';
 import { isSecretVar, maskJson, maskVar, urlHasCredentials } from '../env/secrets.js';
 import type { EnvVar, Environment } from '../env/types.js';
 import { canonicalJson } from './json.js';
 import { defaultRules, environmentSpecific, isPlaceholder, projectRule, selected, type ConfigRules, type RuleMatch } from './rules.js';
 import { differingLeaves, judgeLeaf, selectedLeaves } from './server.js';
 import type { ConfigDiff, ConfigKeyDiff, ConfigRuleRef, ConfigSide, ServerFieldDiff } from './types.js';
 
 export { canonicalJson };

export function relPath(projectDir: string, file: string): string {
  const r = relative(projectDir, file);
  return r && !r.startsWith('..') ? r : file;
}

function side(env: Environment, v: EnvVar, show: boolean): ConfigSide {
  const s: ConfigSide = { file: relPath(env.projectDir, v.file), line: v.line };
  if (show) s.value = maskVar(v);
  return s;
}

/** A credential URL that may be shown with its password masked (not when it expands a secret: then it is hidden). */
function maskedUrlShown(v: EnvVar): boolean {
  return !(v.taint && v.taint.length > 0) && urlHasCredentials(v.value);
}

/** Masked server.json field value; the SSH `key` field is a file path, shown as is. */
function showField(path: string[], value: unknown): unknown {
  const name = path[path.length - 1] ?? '';
  return path.length === 1 && name === 'key' && typeof value === 'string' ? value : maskJson(value, name);
}

export function ruleRef(r: RuleMatch | undefined): { rule: ConfigRuleRef } | Record<string, never> {
  return r ? { rule: { list: r.list, environment: r.environment, pattern: r.pattern } } : {};
}

function diffServer(source: Environment, target: Environment, rules: ConfigRules): ServerFieldDiff[] {
  const out: ServerFieldDiff[] = [];
  for (const leaf of selectedLeaves(differingLeaves(source.server, target.server), rules)) {
    const v = judgeLeaf(leaf, rules);
    const d: ServerFieldDiff = {
      field: leaf.field,
      path: leaf.path,
      identity: v.kind === 'identity',
      status: leaf.inSource && leaf.inTarget ? 'differs' : leaf.inSource ? 'only_in_source' : 'only_in_target',
      ...(leaf.inSource ? { source: showField(leaf.path, leaf.source) } : {}),
      ...(leaf.inTarget ? { target: showField(leaf.path, leaf.target) } : {}),
      ...(v.expected ? { expected: v.expected } : {}),
      ...ruleRef(v.rule),
    };
    out.push(d);
  }
  return out.sort((a, b) => (a.field < b.field ? -1 : a.field > b.field ? 1 : 0));
}

/**
 * What the rules say about an env key that differs: `rule` (the project's), `expected` when a migration leaves it
 * alone for a reason other than being a secret.
 */
export function judgeKey(key: string, rules: ConfigRules): { rule?: RuleMatch; keptOrSpecific?: string; kind?: 'kept' | 'environment_specific' } {
  const rule = projectRule(rules, key);
  if (rule?.list === 'keep') return { rule, keptOrSpecific: rule.reason, kind: 'kept' };
  if (rule?.list === 'copy') return { rule };
  const why = environmentSpecific(key);
  return why ? { keptOrSpecific: why, kind: 'environment_specific' } : {};
}

/** A secret the source really sets that the target has empty or as a placeholder, and that the rules do not keep. */
export function needsValue(a: EnvVar | undefined, b: EnvVar, rules: ConfigRules): boolean {
  if (a === undefined || isPlaceholder(a.value) || !isPlaceholder(b.value)) return false;
  // by name and value, or by taint (a value expanding a secret is a secret)
  if (!(isSecretVar(a) || isSecretVar(b))) return false;
  return projectRule(rules, b.key)?.list !== 'keep';
}

export function diffConfig(source: Environment, target: Environment, rules: ConfigRules = defaultRules(source.name, target.name)): ConfigDiff {
  const onlyInSource: ConfigKeyDiff[] = [];
  const onlyInTarget: ConfigKeyDiff[] = [];
  const changed: ConfigKeyDiff[] = [];
  const keys = [...new Set([...source.vars.keys(), ...target.vars.keys()])].filter((k) => selected(rules, k)).sort();
  for (const key of keys) {
    const a = source.vars.get(key);
    const b = target.vars.get(key);
    if (a && b) {
      if (a.value === b.value) continue;
      const secret = isSecretVar(a) || isSecretVar(b);
      // A credential URL may be shown masked, unless masking hides the only difference (the password).
      let show = !secret;
      if (secret && maskedUrlShown(a) && maskedUrlShown(b)) show = maskVar(a) !== maskVar(b);
      const j = judgeKey(key, rules);
      if (needsValue(a, b, rules)) {
        // the target's value is shown only when it is empty (a placeholder may still be something's secret)
        changed.push({ key, status: 'needs_value', secret, source: side(source, a, show), target: side(target, b, b.value === ''), ...ruleRef(j.rule) });
        continue;
      }
      const expected = j.keptOrSpecific ?? (secret ? 'secrets differ between environments and are never copied' : undefined);
      changed.push({ key, status: 'differs', secret, source: side(source, a, show), target: side(target, b, show), ...(expected ? { expected } : {}), ...ruleRef(j.rule) });
    } else if (a) {
      const secret = isSecretVar(a);
      const j = judgeKey(key, rules);
      onlyInSource.push({ key, status: 'only_in_source', secret, source: side(source, a, !secret || maskedUrlShown(a)), ...(j.keptOrSpecific ? { expected: j.keptOrSpecific } : {}), ...ruleRef(j.rule) });
    } else if (b) {
      const secret = isSecretVar(b);
      onlyInTarget.push({ key, status: 'only_in_target', secret, target: side(target, b, !secret || maskedUrlShown(b)), expected: 'keys only in the target are kept by a migration' });
    }
  }
  const fields = diffServer(source, target, rules);
  const all = [...onlyInSource, ...onlyInTarget, ...changed, ...fields];
  const count = all.filter((d) => !d.expected).length;
  return {
    source: source.name,
    target: target.name,
    sourceFiles: source.files.map((f) => relPath(source.projectDir, f)),
    targetFiles: target.files.map((f) => relPath(target.projectDir, f)),
    onlyInSource,
    onlyInTarget,
    changed,
    server: {
      sourceFile: relPath(source.projectDir, source.serverFile),
      targetFile: relPath(target.projectDir, target.serverFile),
      sourceExists: source.server !== undefined,
      targetExists: target.server !== undefined,
      fields,
    },
    count,
    expected: all.length - count,
    identical: all.length === 0,
    ...(rules.file ? { rulesFile: rules.file } : {}),
  };
}

/** Number of differences a migration acts on (keys + server.json fields), not counting the expected ones. */
export function countConfigDifferences(d: ConfigDiff): number {
  return d.count;
}
