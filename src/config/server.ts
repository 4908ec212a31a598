/**
 * server.json compared leaf by leaf: nested objects are walked field by field, anything else (numbers, strings,
 * booleans, null, arrays) is one leaf. What a leaf is — identity, secret, kept, environment-specific, or a service
 * setting a migration copies — is decided here, once, for the diff and the plan.
 */
import { jsonHasSecrets } from '../env/secrets.js';
import type { ServerConfig } from '../env/types.js';
import { canonicalJson } from './json.js';
import { environmentSpecific, IDENTITY_FIELDS, projectRule, selected, SERVER_PREFIX, type ConfigRules, type RuleMatch } from './rules.js';

export interface ServerLeaf {
  path: string[];
  /** Dotted path, `backup.retention_days`. */
  field: string;
  inSource: boolean;
  inTarget: boolean;
  source?: unknown;
  target?: unknown;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const has = (o: unknown, k: string) => isPlainObject(o) && Object.prototype.hasOwnProperty.call(o, k) && o[k] !== undefined;

/** The value at `path`, or undefined. */
export function valueAt(obj: unknown, path: string[]): unknown {
  let cur = obj;
  for (const p of path) {
    if (!has(cur, p)) return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

/** Leaves whose values differ between the two files (in the source's field order, then the target's). */
export function differingLeaves(source: ServerConfig | undefined, target: ServerConfig | undefined): ServerLeaf[] {
  const out: ServerLeaf[] = [];
  const leaf = (path: string[], inSource: boolean, inTarget: boolean, a: unknown, b: unknown) =>
    out.push({ path, field: path.join('.'), inSource, inTarget, ...(inSource ? { source: a } : {}), ...(inTarget ? { target: b } : {}) });
  const only = (path: string[], v: unknown, side: 'source' | 'target') => {
    if (isPlainObject(v)) {
      for (const k of Object.keys(v)) if (v[k] !== undefined) only([...path, k], v[k], side);
    } else if (side === 'source') leaf(path, true, false, v, undefined);
    else leaf(path, false, true, undefined, v);
  };
  const walk = (path: string[], a: unknown, b: unknown, inA: boolean, inB: boolean) => {
    if (inA && inB && isPlainObject(a) && isPlainObject(b)) {
      const keys = [...Object.keys(a), ...Object.keys(b).filter((k) => !Object.prototype.hasOwnProperty.call(a, k))];
      for (const k of keys) walk([...path, k], a[k], b[k], has(a, k), has(b, k));
    } else if (inA && !inB) only(path, a, 'source');
    else if (inB && !inA) only(path, b, 'target');
    else if (inA && inB && canonicalJson(a) !== canonicalJson(b)) leaf(path, true, true, a, b);
  };
  walk([], source ?? {}, target ?? {}, true, true);
  return out;
}

export interface LeafVerdict {
  /** Why a migration leaves it alone (an expected difference); undefined: a service setting it copies. */
  expected?: string;
  kind?: 'environment_specific' | 'kept' | 'secret' | 'identity';
  rule?: RuleMatch;
}

/**
 * identity (top-level identity field) > secret > the project's rules (keep / copy) > environment-specific by the
 * field's own name > numeric service setting > target-only. The rules cannot copy an identity field or a secret.
 */
export function judgeLeaf(leaf: ServerLeaf, rules: ConfigRules): LeafVerdict {
  const name = leaf.path[leaf.path.length - 1] ?? '';
  if (IDENTITY_FIELDS.includes(leaf.path[0] ?? '')) return { kind: 'identity', expected: 'identity fields differ between environments and are never copied' };
  if ((leaf.inSource && jsonHasSecrets(leaf.source, name)) || (leaf.inTarget && jsonHasSecrets(leaf.target, name))) {
    return { kind: 'secret', expected: 'holds a secret: never copied' };
  }
  const rule = projectRule(rules, SERVER_PREFIX + leaf.field);
  if (rule?.list === 'keep') return { kind: 'kept', expected: rule.reason, rule };
  if (!leaf.inSource) return { expected: 'fields only in the target are kept by a migration', ...(rule ? { rule } : {}) };
  if (rule?.list === 'copy') return { rule };
  const why = environmentSpecific(name);
  if (why) return { kind: 'environment_specific', expected: why };
  if (typeof leaf.source === 'number' || typeof leaf.target === 'number') {
    return { kind: 'environment_specific', expected: 'numeric service settings are environment-specific (list them under "copy" in nself-migrate.json to copy them)' };
  }
  return {};
}

/** Leaves of the run (--key / --exclude-key see them as `server.json:<dotted.path>`). */
export function selectedLeaves(leaves: ServerLeaf[], rules: ConfigRules): ServerLeaf[] {
  return leaves.filter((l) => selected(rules, SERVER_PREFIX + l.field));
}
