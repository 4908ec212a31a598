/**
 * planConfig: the edits that make the target's configuration match the source, written to the target's OWN file
 * only (and service settings of its existing server.json).
 *
 * Rules (rules.ts):
 * - A key the source has and the target's effective cascade lacks → add; a value that differs → update.
 * - Only the keys of the run (--key / --exclude-key) are considered.
 * - Never copied (listed in `skipped` with the reason): environment-specific keys (rules.ts DEFAULT_ENV_SPECIFIC:
 *   where a service lives or how it is reached, `*_HOST`, `*_PORT`, `SMTP_*`, …) unless the project's
 *   nself-migrate.json lists them under the target's `copy`; keys it lists under `keep` of the source or the target;
 *   and secrets — by name and value, or by taint: a value that expands a secret (`JWT_CONF=${HASURA_GRAPHQL_JWT_SECRET}`)
 *   is one. A secret the target lacks becomes an empty placeholder (`KEY=`, action 'placeholder', listed in
 *   `needsValue`) — never the source's value; a secret the source sets that is empty or a placeholder in the target
 *   is listed in `needsValue` too.
 * - A value that a shell and the env-file parser would read differently (a NUL byte, CR LF) is not written ('unwritable').
 * - A key defined through references (`${…}`) with the very same definition on both sides differs only because
 *   the referenced variables differ: skipped ('same_definition'), as copying the expansion would freeze it.
 * - The value written is the source's EXPANDED value, quoted so that it parses back to exactly that value
 *   (a `$` is escaped, never re-expanded) and a shell sourcing the file reads the same and runs nothing
 *   (envfile.ts formatValue): after the write the target's effective value equals the source's, which is what
 *   verifyConfig checks. Updates keep the line's quoting style when it can hold the value; new keys
 *   are unquoted unless they need double quotes.
 * - An update of a key whose effective value comes from a file with HIGHER precedence than the own file (e.g.
 *   `.env.secrets`, or `.env` over `.env.local`) would have no effect: it is a conflict, not an edit. A key that
 *   comes from a lower-precedence file (e.g. the shared `.env.dev`) is appended to the own file, which wins.
 * - server.json, leaf by leaf (server.ts): a service setting the source has and that differs is set in the target's
 *   server.json when it exists (apply.ts edits the text in place). Never: identity fields (name, type, host, port,
 *   user, key, deploy_path, project_subdir), secrets, fields the rules keep, and — unless the rules copy them —
 *   environment-specific names and numeric settings (`backup.retention_days`).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { asMigrateError, MigrateError } from '../errors.js';
import { decodeEnvBytes, documentValues, isWritableValue, parseEnvDocument } from '../env/envfile.js';
import { readCascade } from '../env/resolve.js';
import { isSecretVar, maskVar } from '../env/secrets.js';
import type { Environment } from '../env/types.js';
import { judgeKey, needsValue as lacksValue, relPath } from './diff.js';
import { defaultRules, selected, type ConfigRules } from './rules.js';
import { differingLeaves, judgeLeaf, selectedLeaves } from './server.js';
import type { ConfigConflict, ConfigEdit, ConfigPlan, ConfigSkip, ServerEdit } from './types.js';


export function sha256(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** File bytes, or undefined when absent. */
export function readBytes(file: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    const known = asMigrateError(e, { path: file }); // permission denied, a folder where the file should be, …
    if (known.code !== 'internal') throw known;
    throw new MigrateError('config_read', `cannot read ${file}: ${(e as Error).message}`, { hint: 'check the file permissions', cause: e });
  }
}

export function planConfig(source: Environment, target: Environment, rules: ConfigRules = defaultRules(source.name, target.name)): ConfigPlan {
  const tdir = target.projectDir;
  const ownAbs = target.ownFile;
  const ownBytes = readBytes(ownAbs);
  const ownDoc = parseEnvDocument(ownBytes ? decodeEnvBytes(ownBytes) : '', ownAbs, { display: relPath(tdir, ownAbs) });
  const ownLines = documentValues(ownDoc);
  // Precedence of a file in the target cascade (its index in lookedFor; the own file is always listed there).
  const rank = (file: string) => target.lookedFor.indexOf(file);
  const ownRank = rank(ownAbs);

  const srcEntries = readCascade(source.projectDir, source.files).entries;
  const tgtEntries = readCascade(tdir, target.files).entries;

  const edits: ConfigEdit[] = [];
  const skipped: ConfigSkip[] = [];
  const conflicts: ConfigConflict[] = [];
  const needsValue: string[] = [];

  for (const key of [...source.vars.keys()].filter((k) => selected(rules, k)).sort()) {
    const sv = source.vars.get(key)!;
    const tv = target.vars.get(key);
    if (tv && tv.value === sv.value) continue;
    const from = { file: relPath(source.projectDir, sv.file), line: sv.line };
    const j = judgeKey(key, rules);
    if (tv && lacksValue(sv, tv, rules)) {
      // never copied, but said: the target cannot work without it
      needsValue.push(key);
      skipped.push({ key, kind: 'secret', reason: `secret: never copied; ${tv.value === '' ? 'empty' : 'a placeholder'} in ${relPath(tdir, tv.file)}:${tv.line}: set its value by hand` });
      continue;
    }
    if (j.kind) {
      skipped.push({ key, kind: j.kind, reason: `${j.keptOrSpecific}: never copied` });
      continue;
    }
    if (isSecretVar(sv) || (tv && isSecretVar(tv))) {
      if (!tv) {
        edits.push({ action: 'placeholder', key, value: '', from });
        needsValue.push(key);
      } else {
        const taint = [...(sv.taint ?? []), ...(tv.taint ?? [])];
        const what = taint.length > 0 ? `expands the secret ${[...new Set(taint)].join(', ')}` : 'secret';
        skipped.push({ key, kind: 'secret', reason: `${what}: never copied; the values differ, set it by hand in ${relPath(tdir, tv.file)}:${tv.line} if needed` });
      }
      continue;
    }
    if (!isWritableValue(sv.value)) {
      skipped.push({ key, kind: 'unwritable', reason: 'the value holds a NUL byte or a carriage return before a line feed, which a shell and an env-file parser read differently: set it by hand' });
      continue;
    }
    const se = srcEntries.get(key);
    const te = tgtEntries.get(key);
    if (tv && se && te && se.hasReference && se.rawValue === te.rawValue) {
      skipped.push({ key, kind: 'same_definition', reason: `same definition ${se.rawValue} on both sides: differs only through the variables it references` });
      continue;
    }
    if (!tv) {
      edits.push({ action: 'add', key, value: sv.value, from });
      continue;
    }
    const current = { file: relPath(tdir, tv.file), line: tv.line, value: maskVar(tv) };
    if (tv.file !== ownAbs && rank(tv.file) > ownRank) {
      conflicts.push({
        key,
        file: current.file,
        line: tv.line,
        reason: `${key} is set in ${current.file}:${tv.line}, which overrides ${relPath(tdir, ownAbs)}: writing it there would have no effect; change it in ${current.file}`,
      });
      continue;
    }
    const inOwn = ownLines.get(key);
    edits.push({ action: 'update', key, value: sv.value, ...(inOwn ? { line: inOwn.line } : {}), from, current });
  }

  // server.json service settings, leaf by leaf.
  let server: ConfigPlan['server'];
  if (source.server) {
    const sedits: ServerEdit[] = [];
    for (const leaf of selectedLeaves(differingLeaves(source.server, target.server), rules)) {
      if (!leaf.inSource) continue; // only in the target: kept
      const v = judgeLeaf(leaf, rules);
      const name = `server.json:${leaf.field}`;
      if (v.kind === 'identity') continue;
      if (v.kind) {
        skipped.push({ key: name, kind: v.kind, reason: `${v.expected}${v.kind === 'secret' ? '' : ': never copied'}` });
      } else if (!target.server) {
        skipped.push({ key: name, kind: 'server', reason: `${relPath(tdir, target.serverFile)} does not exist: create it first (with the target's host)` });
      } else {
        sedits.push({ field: leaf.field, path: leaf.path, action: leaf.inTarget ? 'update' : 'add', value: leaf.source });
      }
    }
    if (sedits.length > 0) {
      const bytes = readBytes(target.serverFile);
      if (!bytes) throw new MigrateError('config_drift', `${relPath(tdir, target.serverFile)} disappeared while planning`, { hint: 'run the command again' });
      server = { file: relPath(tdir, target.serverFile), sha256: sha256(bytes), edits: sedits };
    }
  }

  const targetHasSecrets = [...target.vars.values()].some((v) => isSecretVar(v));
  return {
    source: source.name,
    target: target.name,
    file: relPath(tdir, ownAbs),
    created: ownBytes === undefined,
    sha256: ownBytes === undefined ? null : sha256(ownBytes),
    mode: targetHasSecrets || needsValue.length > 0 ? 0o600 : 0o644,
    edits,
    needsValue,
    skipped,
    conflicts,
    ...(server ? { server } : {}),
  };
}
