/**
 * diffConfig: what differs between two environments' effective configuration, masked and with provenance.
 * Values are compared after expansion (what the application sees). A secret's value is never shown (a credential
 * URL shows everything but its password, unless it expands a secret); a value expanding a secret is a secret.
 */
import { relative } from 'node:path';
import { isSecretVar, maskJson, maskVar, urlHasCredentials } from '../env/secrets.js';
import type { EnvVar, Environment, ServerConfig } from '../env/types.js';
import { environmentSpecific, IDENTITY_FIELDS } from './rules.js';
import type { ConfigDiff, ConfigKeyDiff, ConfigSide, ServerFieldDiff } from './types.js';

/** server.json fields that identify the machine: they differ by design and are never copied. */
export function relPath(projectDir: string, file: string): string {
  const r = relative(projectDir, file);
  return r && !r.startsWith('..') ? r : file;
}

/** JSON with sorted object keys: equality of JSON values independent of key order. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'undefined';
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
    .join(',')}}`;
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
function showField(field: string, value: unknown): unknown {
  return field === 'key' && typeof value === 'string' ? value : maskJson(value, field);
}

function diffServer(a: ServerConfig | undefined, b: ServerConfig | undefined): ServerFieldDiff[] {
  const out: ServerFieldDiff[] = [];
  const fa = a ?? {};
  const fb = b ?? {};
  const fields = [...new Set([...Object.keys(fa), ...Object.keys(fb)])].sort();
  for (const f of fields) {
    const inA = Object.prototype.hasOwnProperty.call(fa, f) && fa[f] !== undefined;
    const inB = Object.prototype.hasOwnProperty.call(fb, f) && fb[f] !== undefined;
    if (inA && inB && canonicalJson(fa[f]) === canonicalJson(fb[f])) continue;
    const identity = IDENTITY_FIELDS.includes(f);
    const d: ServerFieldDiff = { field: f, identity, status: inA && inB ? 'differs' : inA ? 'only_in_source' : 'only_in_target' };
    if (identity) d.expected = 'identity fields differ between environments and are never copied';
    else if (!inA) d.expected = 'fields only in the target are kept by a migration';
    if (inA) d.source = showField(f, fa[f]);
    if (inB) d.target = showField(f, fb[f]);
    out.push(d);
  }
  return out;
}

export function diffConfig(source: Environment, target: Environment): ConfigDiff {
  const onlyInSource: ConfigKeyDiff[] = [];
  const onlyInTarget: ConfigKeyDiff[] = [];
  const changed: ConfigKeyDiff[] = [];
  const keys = [...new Set([...source.vars.keys(), ...target.vars.keys()])].sort();
  for (const key of keys) {
    const a = source.vars.get(key);
    const b = target.vars.get(key);
    if (a && b) {
      if (a.value === b.value) continue;
      const secret = isSecretVar(a) || isSecretVar(b);
      // A credential URL may be shown masked, unless masking hides the only difference (the password).
      let show = !secret;
      if (secret && maskedUrlShown(a) && maskedUrlShown(b)) show = maskVar(a) !== maskVar(b);
      const expected = environmentSpecific(key) ?? (secret ? 'secrets differ between environments and are never copied' : undefined);
      changed.push({ key, status: 'differs', secret, source: side(source, a, show), target: side(target, b, show), ...(expected ? { expected } : {}) });
    } else if (a) {
      const secret = isSecretVar(a);
      const expected = environmentSpecific(key);
      onlyInSource.push({ key, status: 'only_in_source', secret, source: side(source, a, !secret || maskedUrlShown(a)), ...(expected ? { expected } : {}) });
    } else if (b) {
      const secret = isSecretVar(b);
      onlyInTarget.push({ key, status: 'only_in_target', secret, target: side(target, b, !secret || maskedUrlShown(b)), expected: 'keys only in the target are kept by a migration' });
    }
  }
  const fields = diffServer(source.server, target.server);
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
  };
}

/** Number of differences a migration acts on (keys + server.json fields), not counting the expected ones. */
export function countConfigDifferences(d: ConfigDiff): number {
  return d.count;
}
