/**
 * applyConfig writes a ConfigPlan: the own env file edited line by line (every comment, blank line, order, quoting
 * style and target-only key kept; new keys appended under a comment naming the migration), server.json leaves set by
 * editing its text in place (json.ts: every other byte kept, never re-serialised). Each file is replaced atomically (temp file in the same directory, fsync, rename) with
 * the old file's permissions (a created file gets plan.mode). Both files are checked against the sha256 recorded in
 * the plan BEFORE anything is written: a file changed since planning → MigrateError 'config_drift'.
 *
 * verifyConfig re-reads the target's effective configuration and checks that every planned change is there.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { MigrateError } from '../errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { appendEntries, decodeEnvBytes, encodeEnvText, parseEnvDocument, serialize, setValue } from '../env/envfile.js';
import type { Environment } from '../env/types.js';
import { canonicalJson, setJsonLeaf } from './json.js';
import { readBytes, sha256 } from './plan.js';
import { valueAt } from './server.js';
import type { ConfigPlan } from './types.js';


function drift(file: string): MigrateError {
  return new MigrateError('config_drift', `${file} changed after the plan was computed`, { hint: 'run the command again to plan against the current file' });
}

async function modeOf(file: string, fallback: number): Promise<number> {
  try {
    return (await stat(file)).mode & 0o7777;
  } catch {
    return fallback;
  }
}

export interface ApplyConfigOptions {
  /** Names the migration in the comment above appended keys, e.g. "local → staging (20250101-120000-ab12)". */
  label?: string;
}

export async function applyConfig(plan: ConfigPlan, projectDir: string, opts: ApplyConfigOptions = {}): Promise<{ written: string[]; created: string[] }> {
  const written: string[] = [];
  const created: string[] = [];
  // A symlinked file is written through the link (writeFileAtomic): the link stays, the linked file changes.
  const envAbs = resolve(projectDir, plan.file);
  const serverAbs = plan.server ? resolve(projectDir, plan.server.file) : undefined;

  // Check both files before writing either.
  const envBytes = readBytes(envAbs);
  if (plan.edits.length > 0) {
    const now = envBytes === undefined ? null : sha256(envBytes);
    if (now !== plan.sha256) throw drift(plan.file);
  }
  let serverBytes: Buffer | undefined;
  if (plan.server && plan.server.edits.length > 0) {
    serverBytes = readBytes(serverAbs!);
    if (!serverBytes || sha256(serverBytes) !== plan.server.sha256) throw drift(plan.server.file);
  }

  if (plan.edits.length > 0) {
    const doc = parseEnvDocument(envBytes ? decodeEnvBytes(envBytes) : '', envAbs, { display: plan.file });
    const append: { key: string; value: string }[] = [];
    for (const e of plan.edits) {
      if (e.action === 'update' && setValue(doc, e.key, e.value)) continue;
      append.push({ key: e.key, value: e.value });
    }
    appendEntries(doc, append, `added by nself migrate ${opts.label ?? `${plan.source} → ${plan.target}`}`);
    const mode = envBytes === undefined ? plan.mode : await modeOf(envAbs, plan.mode);
    await writeFileAtomic(envAbs, encodeEnvText(serialize(doc)), mode); // bytes not valid UTF-8 (in comments) as they were
    (envBytes === undefined ? created : written).push(plan.file);
  }

  if (plan.server && plan.server.edits.length > 0) {
    let text = serverBytes!.toString('utf8');
    try {
      for (const e of plan.server.edits) text = setJsonLeaf(text, e.path, e.value);
    } catch (e) {
      throw new MigrateError('server_config_invalid', `${plan.server.file} is not valid JSON: ${(e as Error).message}`, { hint: `fix the JSON syntax of ${plan.server.file}` });
    }
    // what was written must read back as planned (the edit is textual)
    const back = JSON.parse(text) as unknown;
    for (const e of plan.server.edits) {
      if (canonicalJson(valueAt(back, e.path)) !== canonicalJson(e.value)) throw new MigrateError('internal', `editing ${plan.server.file} did not set ${e.field}`);
    }
    await writeFileAtomic(serverAbs!, text, await modeOf(serverAbs!, 0o644));
    written.push(plan.server.file);
  }
  return { written, created };
}

/** After applyConfig: does the re-read target have every planned change? `missing` names what is not there. */
export function verifyConfig(plan: ConfigPlan, reloadedTarget: Environment): { ok: boolean; missing: string[] } {
  const missing: string[] = [];
  for (const e of plan.edits) {
    const v = reloadedTarget.vars.get(e.key);
    if (!v) missing.push(e.key);
    else if (e.action !== 'placeholder' && v.value !== e.value) missing.push(e.key);
  }
  for (const e of plan.server?.edits ?? []) {
    const v = valueAt(reloadedTarget.server, e.path);
    if (v === undefined || canonicalJson(v) !== canonicalJson(e.value)) missing.push(`server.json:${e.field}`);
  }
  return { ok: missing.length === 0, missing };
}
