/**
 * What `sync --watch` follows besides rows: the source's schema and its env files.
 *
 * Every change found goes through the one-time sync pipeline with one component (runSync: plan, safety,
 * checkpoint, one target transaction, verification, rollback): nothing here writes to a database or a file itself.
 * A schema plan that deletes data (a hazard of kind `deletes_data`: a dropped table or column, a narrowing type) is
 * applied only with --force; without it the step reports what it refused and the watcher stops.
 */
import { readFileSync, rmSync, statSync, watch as fsWatch, type FSWatcher } from 'node:fs';
import { dirname, join } from 'node:path';
import type pg from 'pg';
import { EXIT } from '../errors.js';
import { canonicalEnvName, envLayout } from '../env/resolve.js';
import { fingerprintSchema, inspectSchema, type SchemaScope } from '../schema/index.js';
import { runSync, type SyncOptions } from '../migrate/sync.js';
import type { PipelineIO } from '../migrate/session.js';
import type { Plan } from '../migrate/types.js';
import { ensureStateDir, PRIVATE_FILE_MODE, writeFileAtomic } from '../util/fs.js';

/** NDJSON `schema_change`: the source's schema changed while watching. */
export interface SchemaChangeEvent {
  event: 'schema_change';
  time: string;
  /** How it was noticed: a changed relation in the stream, or the source's schema fingerprint. */
  trigger: 'relation' | 'fingerprint';
  /** What the schema plan changes on the target. */
  changes: Array<{ kind: string; identity: string; action: 'create' | 'alter' | 'drop' }>;
  applied: boolean;
  checkpoint?: string;
  /** Not applied: what the plan would delete (needs --force). */
  refused?: string[];
  /** Streaming: tables added to the publication (created on the source after the watch started). */
  published?: string[];
  /** Streaming: tables whose rows were synced again after the change (new tables, changed columns). */
  resynced?: string[];
}

/** NDJSON `config`: the source's env files changed and the target's own file was updated (keys only, never values). */
export interface ConfigEvent {
  event: 'config';
  time: string;
  keys: string[];
  /** server.json fields changed. */
  fields: string[];
  checkpoint?: string;
}

export interface SchemaStepResult {
  changes: SchemaChangeEvent['changes'];
  applied: boolean;
  checkpoint?: string;
  refused?: string[];
}

/** The source's schema fingerprint (the schema engine's, as the drift guard uses it). */
export async function schemaFingerprint(client: pg.ClientBase, scope: SchemaScope): Promise<string> {
  return fingerprintSchema(await inspectSchema(client, scope));
}

/** The io a step gives the pipeline: quiet (events tell what happened), secrets and notices passed on. */
function stepIO(io: PipelineIO, confirm: () => boolean, onPlan: (p: Plan) => void): PipelineIO {
  return {
    confirm: async () => confirm(),
    onPlan,
    ...(io.addSecrets ? { addSecrets: io.addSecrets } : {}),
    ...(io.notice ? { notice: io.notice } : {}),
    ...(io.onInterrupt ? { onInterrupt: io.onInterrupt } : {}),
  };
}

/** Attempts of a schema step that meets a schema still changing on the source. */
const SCHEMA_STEP_ATTEMPTS = 5;

/**
 * Apply the source's schema to the target: a schema-only sync. The watch was confirmed at its start, so a
 * production target asks nothing more; a plan that deletes data is refused unless --force (opts.force).
 */
export async function followSchema(opts: SyncOptions, io: PipelineIO): Promise<SchemaStepResult> {
  let plan: Plan | undefined;
  const lossy = () => (plan?.schema?.statements ?? []).flatMap((s) => s.hazards).filter((h) => h.kind === 'deletes_data');
  const step = () => runSync({ ...opts, components: ['schema'], dryRun: false, force: false }, stepIO(io, () => opts.force || lossy().length === 0, (p) => (plan = p)));
  let r = await step();
  // The source's schema may still be changing (the DDL that triggered this step, or the next one): the step rolled
  // back whole, so it is simply run again on a new snapshot.
  for (let attempt = 1; r.error?.code === 'schema_changed_during_inspection' && attempt < SCHEMA_STEP_ATTEMPTS; attempt++) {
    await new Promise((res) => setTimeout(res, 200 * attempt));
    plan = undefined;
    r = await step();
  }
  const changes = (plan?.schema?.changes ?? []).map((c) => ({ kind: c.kind, identity: c.identity, action: c.action }));
  if (r.error) {
    if (r.error.exitCode === EXIT.refused && lossy().length > 0) return { changes, applied: false, refused: lossy().map((h) => h.message) };
    throw r.error;
  }
  return { changes, applied: changes.length > 0, ...(r.report.checkpoint ? { checkpoint: r.report.checkpoint } : {}) };
}

/** Apply the source's env files to the target's own file (config-only sync, the config rules); keys changed. */
export async function followConfig(opts: SyncOptions, io: PipelineIO): Promise<Omit<ConfigEvent, 'event' | 'time'>> {
  let plan: Plan | undefined;
  const r = await runSync({ ...opts, components: ['config'], dryRun: false, force: true }, stepIO(io, () => true, (p) => (plan = p)));
  if (r.error) throw r.error;
  const cp = plan?.config?.plan;
  return { keys: (cp?.edits ?? []).map((e) => e.key), fields: (cp?.server?.edits ?? []).map((e) => e.field), ...(r.report.checkpoint ? { checkpoint: r.report.checkpoint } : {}) };
}

/** The files an environment's configuration is read from (its env-file cascade and server.json), existing or not. */
export function configFiles(projectDir: string, env: string): string[] {
  const layout = envLayout(projectDir, canonicalEnvName(projectDir, env));
  return [...layout.lookedFor, layout.serverFile];
}

/**
 * Calls onChange (debounced) when any of the files is created, changed or removed: fs.watch on their folders for
 * speed, and a stat of every file each pollMs for what fs.watch misses (folders created later, network file
 * systems, editors that replace files).
 */
export function watchFiles(paths: string[], onChange: () => void, pollMs = 500): { close(): void } {
  const stamp = () =>
    paths
      .map((p) => {
        try {
          const s = statSync(p, { bigint: true });
          return `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
        } catch {
          return '-';
        }
      })
      .join('|');
  let last = stamp();
  let pending: NodeJS.Timeout | undefined;
  const check = () => {
    pending = undefined;
    const now = stamp();
    if (now === last) return;
    last = now;
    onChange();
  };
  const soon = () => {
    pending ??= setTimeout(check, 50);
  };
  const names = new Set(paths);
  const watchers: FSWatcher[] = [];
  for (const dir of new Set(paths.map((p) => dirname(p)))) {
    try {
      const w = fsWatch(dir, { persistent: false }, (_event, file) => {
        if (!file || names.has(join(dir, file.toString()))) soon();
      });
      w.on('error', () => {}); // the folder went away: the stat poll still sees its files
      watchers.push(w);
    } catch {
      // a folder that does not exist (yet): the stat poll covers its files
    }
  }
  const poll = setInterval(check, pollMs);
  poll.unref();
  return {
    close() {
      clearInterval(poll);
      if (pending) clearTimeout(pending);
      for (const w of watchers) w.close();
    },
  };
}

/**
 * One thing at a time on the target: transactions from the stream, schema and config steps, periodic syncs. A
 * step taken while the stream waits happens between two source transactions.
 */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(fn);
    this.tail = p.catch(() => {});
    return p;
  }
}

/**
 * Follows the source's env files: each change runs a config step (serialized with everything else on the target);
 * the event lists the keys changed. A failure is kept for the watcher's loop to report.
 */
export function followEnvFiles(opts: SyncOptions, io: PipelineIO, serial: Serial, emit: (e: ConfigEvent) => void): { close(): void; failure(): unknown } {
  let dirty = false;
  let running = false;
  let failed: unknown;
  const drain = async () => {
    if (running) return;
    running = true;
    try {
      while (dirty && failed === undefined) {
        dirty = false;
        const r = await serial.run(() => followConfig(opts, io));
        if (r.keys.length + r.fields.length > 0) emit({ event: 'config', time: new Date().toISOString(), ...r });
      }
    } catch (e) {
      failed ??= e;
    } finally {
      running = false;
    }
  };
  const changed = () => {
    dirty = true;
    void drain();
  };
  const w = watchFiles(configFiles(opts.projectDir, opts.source), changed);
  changed(); // a change between the initial sync's reading and this watcher's first look
  return { close: () => w.close(), failure: () => failed };
}

/**
 * What a stream must redo when it resumes after a kill during or after a schema step: the tables synced again
 * whose snapshot LSN the stream had not passed (their changes before it would be applied twice), or every streamed
 * table (`all`) when the kill came during a step (a new table's first rows may be in neither the target nor the
 * stream). Kept in `.nself/watch-<slot>.json` until the stream has passed every LSN; resuming syncs them again.
 */
export interface ResyncState {
  all?: true;
  tables: Array<{ schema: string; name: string; lsn: string }>;
}

export function resyncStateFile(projectDir: string, slot: string): string {
  return join(ensureStateDir(projectDir), `watch-${slot}.json`);
}

/** The state left by an earlier run; a file that does not read as one (edited, damaged) means: sync everything. */
export function readResyncState(file: string): ResyncState | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const v = JSON.parse(text) as ResyncState;
    const ok = Array.isArray(v.tables) && v.tables.every((t) => typeof t.schema === 'string' && typeof t.name === 'string' && /^[0-9A-F]+\/[0-9A-F]+$/i.test(String(t.lsn)));
    if (ok) return v.all === true ? { all: true, tables: v.tables } : { tables: v.tables };
  } catch {
    // not JSON: as below
  }
  return { all: true, tables: [] };
}

export async function writeResyncState(file: string, state: ResyncState): Promise<void> {
  if (!state.all && state.tables.length === 0) rmSync(file, { force: true });
  else await writeFileAtomic(file, JSON.stringify(state) + '\n', PRIVATE_FILE_MODE, { replaceLink: true });
}
