/**
 * `nself migrate sync <source> <target> --watch`: a one-time sync, then follow the source.
 *
 * Streaming (logical decoding, pgoutput): a publication `nself_<id>` FOR TABLE the selected tables that have a
 * replica identity, and a replication slot `nself_<id>` created with an exported snapshot that the initial sync
 * reads the source in — so the sync and the stream meet exactly. Each source transaction is applied whole, in
 * source commit order, in one target transaction (session_replication_role = replica: user triggers and
 * foreign-key triggers do not fire, as in PostgreSQL's own apply worker) that also advances the replication origin
 * `nself_<id>` on the target to the source commit's LSN — atomically with the COMMIT. The slot is acknowledged
 * only up to what the target committed, so a restart after kill -9 resumes from the origin's LSN: nothing is
 * applied twice, nothing is lost. Sequences are copied every status interval; tables without a replica
 * identity are compared and synced (delta) every --interval.
 *
 * Polling (--poll, or when the source cannot stream): a one-time delta sync every --interval.
 *
 * Both follow the source's schema and env files when those components are selected (follow.ts): a schema change
 * (a relation message whose columns differ from the target's, or the source's schema fingerprint every
 * --interval) is applied between two source transactions by a schema-only sync (refused without --force when it
 * deletes data: the watch stops, exit 3); when streaming, new tables are then published and tables that are new or
 * whose columns changed are synced again in a temporary slot's snapshot, whose LSN says which of the stream's
 * changes to them the sync already holds. Env file changes run a config-only sync.
 *
 * The source is never written except for the publication and the slot; both are dropped at a clean stop
 * (SIGINT, SIGTERM) unless keepSlot. Nothing here prints: events go to io.onEvent.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { LogicalReplicationService, PgoutputPlugin } from 'pg-logical-replication';
import { EXIT, MigrateError, asMigrateError } from '../errors.js';
import { openDatabase, type DbHandle } from '../pg/connect.js';
import { connectionSettings } from '../env/connection.js';
import { displayName, qualify, quoteIdent, quoteLiteral, relationKey } from '../pg/quote.js';
import { followSequences, listTables, type DataScope, type TableInfo } from '../data/index.js';
import { inScope } from '../data/scope.js';
import { loadPair, type PipelineIO } from '../migrate/session.js';
import { runSync, type SyncOptions } from '../migrate/sync.js';
import type { Report } from '../migrate/types.js';
import { followEnvFiles, followSchema, readResyncState, resyncStateFile, schemaFingerprint, Serial, writeResyncState, type ConfigEvent, type SchemaChangeEvent, type SchemaStepResult } from './follow.js';

export interface WatchOptions extends SyncOptions {
  /** Poll even when the source could stream. */
  poll: boolean;
  /** Polling period, and how often tables without a replica identity are compared (ms). */
  intervalMs: number;
  /** Leave the publication, the slot and the origin at a clean stop (a later watch resumes from them). */
  keepSlot: boolean;
  /** How often a status event is emitted and sequences are copied (ms, default 2000). */
  statusMs?: number;
}

export type WatchEvent =
  | { event: 'started'; time: string; source: string; target: string; mode: 'stream' | 'poll'; reason?: string; enable?: string; slot?: string; publication?: string; resumed?: boolean; tables?: string[]; compared?: string[] }
  | { event: 'synced'; time: string; initial: boolean; status: Report['status']; checkpoint?: string; changes: number; data?: Report['data'] }
  /**
   * Every status interval. Streaming: `lagBytes` (source WAL not yet applied), `retainedBytes` (WAL the slot keeps
   * on the source), `lagMs` (commit on the source → commit on the target, p50 / p99 over the transactions applied
   * in the last minute; absent when none were).
   */
  | { event: 'status'; time: string; mode: 'stream' | 'poll'; lsn?: string; transactions: number; changes: number; syncs: number; lagBytes?: number; retainedBytes?: number; lagMs?: { p50: number; p99: number } }
  /** The slot keeps more WAL on the source than RETAINED_WARN_BYTES (once each time it crosses it). */
  | { event: 'warning'; time: string; code: 'slot_retains_wal'; message: string; retainedBytes: number }
  | SchemaChangeEvent
  | ConfigEvent
  /** `signal` when stopped by SIGINT / SIGTERM; `refused` when a schema change that deletes data needed --force. */
  | { event: 'stopped'; time: string; signal?: 'SIGINT' | 'SIGTERM'; refused?: true; dropped: string[]; kept: string[]; transactions: number; changes: number };

/** Parameters of one multi-row INSERT when applying a stream (PostgreSQL allows 65535 per statement). */
const INSERT_BATCH_PARAMS = 10_000;

/** WAL kept by the slot on the source above which the watch warns: the source's disk fills while the target lags. */
export const RETAINED_WARN_BYTES = 1024 ** 3;

/** p50 and p99 of the lags (ms) of the last minute; `lags` holds [applied at, lag] and is trimmed to the minute. */
export function lagPercentiles(lags: Array<[number, number]>, now = Date.now()): { p50: number; p99: number } | undefined {
  while (lags.length > 0 && lags[0]![0] < now - 60_000) lags.shift();
  if (lags.length === 0) return undefined;
  const sorted = lags.map(([, ms]) => ms).sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  return { p50: at(0.5), p99: at(0.99) };
}

export interface WatchIO extends PipelineIO {
  onEvent(e: WatchEvent): void;
}

export interface WatchControl {
  /** Resolves when the user asks to stop (the CLI's SIGINT / SIGTERM handler). */
  stop: Promise<'SIGINT' | 'SIGTERM'>;
}

export interface WatchOutcome {
  exitCode: number;
  error?: MigrateError;
}

const now = () => new Date().toISOString();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function lsnValue(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  return (BigInt('0x' + hi) << 32n) + BigInt('0x' + lo);
}

/** The watch lock: one watcher per target database (a session-level advisory lock, released when it ends). */
export const WATCH_KEY_SQL = `('x' || substr(md5('nself-migrate-watch:' || current_database()), 1, 16))::bit(64)::bigint`;

/** pgoutput with every value kept as the text the source sent (no client-side type parsing). */
class TextPgoutput extends PgoutputPlugin {
  override parse(buffer: Buffer) {
    const m = super.parse(buffer);
    if (m.tag === 'relation') for (const c of m.columns) c.parser = (raw: unknown) => raw;
    return m;
  }

  /** Only the options PostgreSQL 13 knows too: the library also sends `messages` (14+), whose default is off. */
  override start(client: pg.Client, slotName: string, lastLsn: string) {
    if (!/^[0-9A-F]+\/[0-9A-F]+$/i.test(lastLsn)) throw new MigrateError('watch_bad_lsn', `not an LSN: ${lastLsn}`);
    return client.query(`START_REPLICATION SLOT ${quoteIdent(slotName)} LOGICAL ${lastLsn} (proto_version ${quoteLiteral(String(this.options.protoVersion))}, publication_names ${quoteLiteral(this.options.publicationNames.join(','))})`);
  }
}

interface Change {
  tag: 'insert' | 'update' | 'delete' | 'truncate';
  msg: any;
}

/** What a watch of either kind runs with: the pair, both databases, the stop signal, its id. */
export interface WatchSession {
  source: ReturnType<typeof loadPair>['source'];
  target: ReturnType<typeof loadPair>['target'];
  srcDb: DbHandle;
  tgtDb: DbHandle;
  /** Resolves with the signal when the user asks to stop; signal() is it, or undefined until then. */
  stopped: Promise<'SIGINT' | 'SIGTERM'>;
  signal: () => 'SIGINT' | 'SIGTERM' | undefined;
  /** From the two databases: names the slot, publication, origin or subscription `nself_<id>`. */
  id: string;
}

/**
 * The frame of a watch: load the pair, open the target, take the one-watcher-per-target advisory lock, open the
 * source, run `body`; any error becomes the outcome; connections and the lock are released in every case.
 * `check` runs before any connection (e.g. refusing what the mode cannot do).
 */
export async function inWatchSession(opts: WatchOptions, io: PipelineIO, control: WatchControl, body: (w: WatchSession) => Promise<WatchOutcome>, check?: (pair: ReturnType<typeof loadPair>) => void): Promise<WatchOutcome> {
  let stopSignal: 'SIGINT' | 'SIGTERM' | undefined;
  const stopped = control.stop.then((s) => {
    stopSignal = s;
    return s;
  });
  const pair = loadPair(opts.projectDir, opts.source, opts.target, io);
  check?.(pair);
  const { source, target } = pair;
  const tgtDb = await openDatabase(target, { persistHostKeys: true, lockTimeoutMs: opts.lockTimeoutMs });
  let srcDb: DbHandle | undefined;
  const lock = await tgtDb.connect();
  try {
    const got = (await lock.query<{ ok: boolean }>(`SELECT pg_catalog.pg_try_advisory_lock(${WATCH_KEY_SQL}) AS ok`)).rows[0]!.ok;
    if (!got) {
      throw new MigrateError('watch_locked', `another \`nself migrate sync --watch\` is already following into ${target.name}`, { hint: 'stop that watcher first (Ctrl-C); one watcher per target' });
    }
    srcDb = await openDatabase(source, { persistHostKeys: true, lockTimeoutMs: opts.lockTimeoutMs });
    const id = createHash('sha256').update(`${srcDb.label}\u0000${tgtDb.label}`).digest('hex').slice(0, 12);
    return await body({ source, target, srcDb, tgtDb, stopped, signal: () => stopSignal, id });
  } catch (e) {
    const err = asMigrateError(e);
    return { exitCode: err.exitCode, error: err };
  } finally {
    await lock.end().catch(() => {});
    await srcDb?.close();
    await tgtDb.close();
  }
}

export async function runWatch(opts: WatchOptions, io: WatchIO, control: WatchControl): Promise<WatchOutcome> {
  return inWatchSession(opts, io, control, async (w) => {
    const { source, srcDb, tgtDb, id } = w;
    const names = { slot: `nself_${id}`, publication: `nself_${id}`, origin: `nself_${id}` };
    const why = opts.poll
      ? { reason: '--poll was given', enable: 'run without --poll to stream changes' }
      : !opts.components.includes('data')
        ? { reason: 'rows are not followed (--schema-only or --config-only): there is nothing to stream', enable: 'watch without --schema-only / --config-only to stream rows' }
        : connectionSettings(source).ssh
          ? { reason: 'the source is reached through an SSH tunnel, which streaming does not support', enable: 'connect to the source directly (no host in server.json)' }
          : await cannotStream(srcDb, tgtDb, names.slot);
    if (why) return await poll(opts, io, w, why);
    return await stream(opts, io, w, names);
  });
}

/**
 * What logical replication from this source needs: its wal_level, whether the user may replicate (REPLICATION or
 * superuser), how many replication slots are free, and whether the slot `slot` exists already.
 */
export async function replicationReadiness(c: pg.ClientBase, slot: string): Promise<{ wal: string; repl: boolean; free: number; mine: boolean }> {
  const r = await c.query<{ wal: string; repl: boolean; free: number; mine: boolean }>(
    `SELECT current_setting('wal_level') AS wal,
            (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user) AS repl,
            current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots)::int AS free,
            EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1) AS mine`,
    [slot],
  );
  return r.rows[0]!;
}

/** Why the source cannot stream into the target (and what would enable it), or undefined when it can. */
async function cannotStream(src: DbHandle, tgt: DbHandle, slot: string): Promise<{ reason: string; enable: string } | undefined> {
  const c = await src.connect();
  try {
    const r = await replicationReadiness(c, slot);
    if (r.wal !== 'logical') return { reason: `the source's wal_level is ${r.wal}, not logical`, enable: "set wal_level = logical on the source (ALTER SYSTEM SET wal_level = 'logical'; then restart PostgreSQL)" };
    if (!r.repl) return { reason: 'the source user has no REPLICATION privilege', enable: 'ALTER ROLE <user> REPLICATION on the source' };
    if (r.free < 1 && !r.mine) return { reason: 'the source has no free replication slot', enable: 'raise max_replication_slots on the source (restart needed) or drop an unused slot' };
  } finally {
    await c.end();
  }
  const t = await tgt.connect();
  try {
    const su = (await t.query<{ su: boolean }>(`SELECT rolsuper AS su FROM pg_roles WHERE rolname = current_user`)).rows[0]?.su;
    if (!su) return { reason: 'the target user is not a superuser (applying changes needs a replication origin and session_replication_role)', enable: 'connect to the target as a superuser' };
  } finally {
    await t.end();
  }
  return undefined;
}

/** A run of the one-time sync for the watcher: the first one confirmed like migrate, later ones quiet and forced. */
export async function syncOnce(opts: WatchOptions, io: PipelineIO, extra: { initial: boolean; snapshot?: string; dataScope?: DataScope; components?: SyncOptions['components'] }, onCancel: (f: (() => void) | undefined) => void): Promise<Report> {
  const quiet: PipelineIO = {
    confirm: io.confirm,
    ...(extra.initial ? { onPlan: io.onPlan, onStep: io.onStep, onProgress: io.onProgress } : {}),
    addSecrets: io.addSecrets,
    notice: io.notice,
    onInterrupt: onCancel,
  };
  const r = await runSync(
    {
      ...opts,
      force: extra.initial ? opts.force : true,
      ...(extra.dataScope ? { dataScope: extra.dataScope } : {}),
      ...(extra.components ? { components: extra.components } : {}),
      ...(extra.snapshot ? { sourceSnapshot: extra.snapshot } : {}),
    } as SyncOptions,
    quiet,
  );
  if (r.error) throw r.error;
  return r.report;
}

export function syncedEvent(r: Report, initial: boolean): Extract<WatchEvent, { event: 'synced' }> {
  return { event: 'synced', time: now(), initial, status: r.status, ...(r.checkpoint ? { checkpoint: r.checkpoint } : {}), changes: r.plan?.summary.changes ?? 0, ...(r.data ? { data: r.data } : {}) };
}

/**
 * Tables no stream carries (no replica identity), compared and synced by a delta sync of their data; a `synced`
 * event when rows moved.
 */
export async function syncUnstreamed(
  opts: WatchOptions,
  io: PipelineIO & { onEvent(e: Extract<WatchEvent, { event: 'synced' }>): void },
  tables: TableInfo[],
  onCancel: (f: (() => void) | undefined) => void,
): Promise<void> {
  const r = await syncOnce(opts, io, { initial: false, components: ['data'], dataScope: { tables: tables.map(literal) } }, onCancel);
  if ((r.plan?.summary.changes ?? 0) > 0) io.onEvent(syncedEvent(r, false));
}

/** What a watch follows besides rows: the components it was started with. */
function following(opts: WatchOptions): { schema: boolean; data: boolean; config: boolean } {
  return { schema: opts.components.includes('schema'), data: opts.components.includes('data'), config: opts.components.includes('config') };
}

function schemaEvent(trigger: SchemaChangeEvent['trigger'], r: SchemaStepResult, extra: { published?: string[]; resynced?: string[] } = {}): SchemaChangeEvent {
  return {
    event: 'schema_change',
    time: now(),
    trigger,
    changes: r.changes,
    applied: r.applied,
    ...(r.checkpoint ? { checkpoint: r.checkpoint } : {}),
    ...(r.refused ? { refused: r.refused } : {}),
    ...(extra.published?.length ? { published: extra.published } : {}),
    ...(extra.resynced?.length ? { resynced: extra.resynced } : {}),
  };
}

/**
 * Polling: the initial sync (every component), then each --interval: the schema step when the source's schema
 * fingerprint moved, then a delta sync of the data. Env files are followed as they change.
 */
async function poll(opts: WatchOptions, io: WatchIO, w: WatchSession, why: { reason: string; enable: string }): Promise<WatchOutcome> {
  const { stopped, signal, srcDb } = w;
  const [sourceName, targetName] = [w.source.name, w.target.name];
  io.onEvent({ event: 'started', time: now(), source: sourceName, target: targetName, mode: 'poll', reason: why.reason, enable: why.enable });
  let cancel: (() => void) | undefined;
  const onCancel = (f: (() => void) | undefined) => (cancel = f);
  void stopped.then(() => cancel?.());
  const follow = following(opts);
  const serial = new Serial();
  const stepIO: PipelineIO = { ...io, onInterrupt: onCancel };
  const src = follow.schema ? await srcDb.connect() : undefined;
  let env: ReturnType<typeof followEnvFiles> | undefined;
  let syncs = 0;
  let lastStatus = Date.now();
  let initial = true;
  let refused = false;
  let lastFp: string | undefined;
  try {
    while (!signal() && !refused) {
      try {
        await serial.run(async () => {
          if (initial) {
            // Read before the initial sync: a schema change after this is seen by the next comparison.
            if (src) lastFp = await schemaFingerprint(src, opts.schemaScope);
            const r = await syncOnce(opts, io, { initial: true }, onCancel);
            syncs++;
            io.onEvent(syncedEvent(r, true));
            if (follow.config) env = followEnvFiles(opts, stepIO, serial, (e) => io.onEvent(e));
            return;
          }
          if (src) {
            const fp = await schemaFingerprint(src, opts.schemaScope);
            if (fp !== lastFp) {
              const r = await followSchema(opts, stepIO);
              if (r.changes.length > 0) io.onEvent(schemaEvent('fingerprint', r));
              if (r.refused) {
                refused = true;
                return;
              }
              lastFp = fp;
            }
          }
          if (follow.data) {
            const r = await syncOnce(opts, io, { initial: false, components: ['data'] }, onCancel);
            syncs++;
            if ((r.plan?.summary.changes ?? 0) > 0) io.onEvent(syncedEvent(r, false));
          }
        });
      } catch (e) {
        if (!signal()) throw e;
        break; // the run in flight was interrupted and rolled back
      }
      initial = false;
      const failed = env?.failure();
      if (failed !== undefined) throw failed;
      if (Date.now() - lastStatus >= (opts.statusMs ?? 2000)) {
        lastStatus = Date.now();
        io.onEvent({ event: 'status', time: now(), mode: 'poll', transactions: 0, changes: 0, syncs });
      }
      if (!refused) await Promise.race([sleep(opts.intervalMs), stopped]);
    }
  } finally {
    env?.close();
    await src?.end().catch(() => {});
  }
  const s = signal();
  io.onEvent({ event: 'stopped', time: now(), ...(s ? { signal: s } : { refused: true as const }), dropped: [], kept: [], transactions: 0, changes: 0 });
  return { exitCode: s === 'SIGINT' ? EXIT.interrupted : s ? EXIT.ok : EXIT.refused };
}

/** A replication connection to the source (same settings as its DbHandle; direct connections only). */
function replicationConfig(src: DbHandle, sourceEnv: ReturnType<typeof connectionSettings>): pg.ClientConfig {
  if (sourceEnv.ssh) throw new MigrateError('watch_ssh_unsupported', 'streaming through an SSH tunnel is not supported', { hint: 'use --poll for a source reached through SSH' });
  return {
    host: sourceEnv.host,
    port: sourceEnv.port,
    database: sourceEnv.database,
    user: sourceEnv.user,
    ...(sourceEnv.password !== undefined ? { password: sourceEnv.password } : {}),
    ssl: sourceEnv.ssl,
    application_name: 'nself-migrate-watch',
  } as pg.ClientConfig;
}

/** A --table pattern naming exactly this table. */
const literal = (x: TableInfo) => `"${x.schema.replace(/"/g, '""')}"."${x.name.replace(/"/g, '""')}"`;

/** The tables a stream follows: those of the source in scope (and, when the schema is not followed, on the target too). */
async function tablesToFollow(src: pg.ClientBase, tgt: pg.ClientBase, opts: WatchOptions): Promise<{ t: Map<string, TableInfo>; streamed: TableInfo[]; compared: TableInfo[] }> {
  const [s, t] = await Promise.all([listTables(src), listTables(tgt)]);
  const ident = new Map(
    (await src.query<{ oid: string; ri: string; haspk: boolean }>(`SELECT c.oid::int8 AS oid, c.relreplident::text AS ri, EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS haspk FROM pg_class c WHERE c.relkind IN ('r', 'p')`)).rows.map((r) => [Number(r.oid), r.ri === 'f' || r.ri === 'i' || (r.ri === 'd' && r.haspk)]),
  );
  // With the schema followed, a table the target lacks is created by the initial sync or the next schema step.
  const selected = [...s.values()].filter((x) => inScope(opts.dataScope, x.schema, x.name) && (following(opts).schema || t.has(x.id)));
  return { t, streamed: selected.filter((x) => ident.get(x.oid)), compared: selected.filter((x) => !ident.get(x.oid)) };
}

/** A table's columns as the target must have them for the stream's rows (names and types). */
const shapeOf = (x: TableInfo) => x.columns.map((c) => `${c.name}\u0000${c.typeId}`).sort().join('\u0001');

async function stream(opts: WatchOptions, io: WatchIO, w: WatchSession, names: { slot: string; publication: string; origin: string }): Promise<WatchOutcome> {
  const { stopped, signal, srcDb, tgtDb } = w;
  const [sourceName, targetName] = [w.source.name, w.target.name];
  const settings = connectionSettings(w.source);
  const PG = (await import('pg')).default;
  const src = await srcDb.connect();
  const tgt = await tgtDb.connect();
  const created: string[] = [];
  const follow = following(opts);
  const stateFile = resyncStateFile(opts.projectDir, names.slot);
  const serial = new Serial();
  let service: LogicalReplicationService | undefined;
  let env: ReturnType<typeof followEnvFiles> | undefined;
  let keepalive: NodeJS.Timeout | undefined;
  let transactions = 0;
  let changes = 0;
  /** [applied at, ms from the source's commit to the target's] of the last minute's transactions. */
  const lags: Array<[number, number]> = [];
  let warnedRetained = false;
  let syncs = 0;
  let refused = false;
  let cancel: (() => void) | undefined;
  const onCancel = (f: (() => void) | undefined) => (cancel = f);
  const stepIO: PipelineIO = { ...io, onInterrupt: onCancel };
  void stopped.then(() => cancel?.());
  let finished: WatchOutcome | undefined;
  try {
    // Which tables: the selected ones (present on both sides unless the schema is followed); those with a replica
    // identity are streamed, the others compared every --interval.
    let { t, streamed, compared } = await tablesToFollow(src, tgt, opts);

    const slotRow = (await src.query<{ lsn: string | null; active: boolean }>(`SELECT confirmed_flush_lsn::text AS lsn, active FROM pg_replication_slots WHERE slot_name = $1`, [names.slot])).rows[0];
    const originLsn = (await tgt.query<{ lsn: string | null }>(`SELECT s.remote_lsn::text AS lsn FROM pg_replication_origin o JOIN pg_replication_origin_status s ON s.local_id = o.roident WHERE o.roname = $1`, [names.origin])).rows[0]?.lsn ?? null;
    const resumed = !!slotRow && originLsn !== null && originLsn !== '0/0';
    let applied: string;

    // The publication always lists exactly the streamed tables: one that lost its replica identity leaves it (an
    // UPDATE or DELETE of a published table without one fails on the source), a new one joins it.
    const publish = async (): Promise<TableInfo[]> => {
      const members = (
        await src.query<{ schema: string; name: string }>(
          `SELECT n.nspname AS schema, c.relname AS name FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid JOIN pg_class c ON c.oid = r.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE p.pubname = $1`,
          [names.publication],
        )
      ).rows;
      const want = new Set(streamed.map((x) => x.id));
      const have = new Set(members.map((m) => relationKey(m.schema, m.name)));
      const drop = members.filter((m) => !want.has(relationKey(m.schema, m.name)));
      const add = streamed.filter((x) => !have.has(x.id));
      if (drop.length > 0) await src.query(`ALTER PUBLICATION ${quoteIdent(names.publication)} DROP TABLE ${drop.map((m) => qualify(m.schema, m.name)).join(', ')}`);
      if (add.length > 0) await src.query(`ALTER PUBLICATION ${quoteIdent(names.publication)} ADD TABLE ${add.map((x) => qualify(x.schema, x.name)).join(', ')}`);
      return add;
    };
    const pubExists = (await src.query(`SELECT 1 FROM pg_publication WHERE pubname = $1`, [names.publication])).rows.length > 0;
    if (!pubExists) {
      const list = streamed.map((x) => qualify(x.schema, x.name)).join(', ');
      await src.query(`CREATE PUBLICATION ${quoteIdent(names.publication)}${list ? ` FOR TABLE ${list}` : ''} WITH (publish_via_partition_root = true)`);
      created.push(`publication ${names.publication}`);
    } else await publish();

    /** The source schema as the target last took it: undefined = not known, compare at the next check. */
    let lastFp: string | undefined;
    if (resumed) {
      applied = originLsn!;
      if (!created.length) created.push(`publication ${names.publication}`);
      created.push(`slot ${names.slot}`, `origin ${names.origin}`);
      io.onEvent({ event: 'started', time: now(), source: sourceName, target: targetName, mode: 'stream', slot: names.slot, publication: names.publication, resumed: true, tables: streamed.map((x) => x.display), compared: compared.map((x) => x.display) });
    } else {
      if (slotRow) await src.query(`SELECT pg_drop_replication_slot($1)`, [names.slot]);
      await writeResyncState(stateFile, { tables: [] }); // an earlier slot's
      await tgt.query(`SELECT pg_replication_origin_drop($1) FROM pg_replication_origin WHERE roname = $1`, [names.origin]);
      await tgt.query(`SELECT pg_replication_origin_create($1)`, [names.origin]);
      created.push(`origin ${names.origin}`);
      // Read before the slot's snapshot: a schema change after it differs from this at the first check.
      if (follow.schema) lastFp = await schemaFingerprint(src, opts.schemaScope);
      // The slot's exported snapshot: the initial sync reads the source exactly as of the slot's start.
      const repl = new PG.Client({ ...replicationConfig(srcDb, settings), replication: 'database' } as pg.ClientConfig);
      await repl.connect();
      try {
        const r = await repl.query(`CREATE_REPLICATION_SLOT ${quoteIdent(names.slot)} LOGICAL pgoutput EXPORT_SNAPSHOT`);
        created.push(`slot ${names.slot}`);
        const row = r.rows[0] as { consistent_point: string; snapshot_name: string };
        io.onEvent({ event: 'started', time: now(), source: sourceName, target: targetName, mode: 'stream', slot: names.slot, publication: names.publication, resumed: false, tables: streamed.map((x) => x.display), compared: compared.map((x) => x.display) });
        const rep = await syncOnce(opts, io, { initial: true, snapshot: row.snapshot_name }, onCancel);
        io.onEvent(syncedEvent(rep, true));
        applied = row.consistent_point;
        await tgt.query(`SELECT pg_replication_origin_advance($1, $2::pg_lsn)`, [names.origin, applied]);
      } finally {
        await repl.end().catch(() => {});
      }
    }
    if (signal()) return await finish();
    t = await listTables(tgt); // the initial sync may have created tables

    // The apply session: changes arrive as they were on the source; no user trigger or FK trigger fires.
    await tgt.query(`SET session_replication_role = replica`);
    await tgt.query(`SELECT pg_replication_origin_session_setup($1)`, [names.origin]);
    const tinfo = new Map<number, { info: TableInfo; key: string[]; full: boolean }>();
    /**
     * Tables synced again after a schema change, in a snapshot taken at this source LSN: the stream's changes to
     * them that committed before it are already in the target (skipped), those after it are applied. Kept in the
     * state file too, until the stream has passed the LSN (`all`: a schema step is under way).
     */
    const skipBefore = new Map<string, { schema: string; name: string; lsn: string }>();
    const saveState = (all = false) => writeResyncState(stateFile, { ...(all ? { all: true as const } : {}), tables: [...skipBefore.values()] });
    let buffer: Change[] = [];
    let schemaPending = false;
    const noted = new Set<string>();
    let failure: unknown;
    let busy: Promise<void> = Promise.resolve();

    /** Does a relation message of the stream describe other columns than the target's table has? */
    const reshaped = (rel: any): boolean => {
      const info = t.get(relationKey(rel.schema, rel.name));
      if (!info) return true;
      const mine = info.columns.filter((c) => !c.generated);
      // Types by OID where the OID is the same on every server (built-in); other type changes: the fingerprint.
      return mine.length !== rel.columns.length || rel.columns.some((c: any) => {
        const x = mine.find((y) => y.name === c.name);
        return !x || (c.typeOid < 16384 && x.typeOid !== c.typeOid);
      });
    };

    /** Sync tables again in the snapshot of a temporary slot (dropped when its connection ends); skip what it holds. */
    const resync = async (tables: TableInfo[]): Promise<void> => {
      if (tables.length === 0) return;
      const repl = new PG.Client({ ...replicationConfig(srcDb, settings), replication: 'database' } as pg.ClientConfig);
      await repl.connect();
      try {
        const s = (await repl.query(`CREATE_REPLICATION_SLOT ${quoteIdent(`${names.slot}_tmp`)} TEMPORARY LOGICAL pgoutput EXPORT_SNAPSHOT`)).rows[0] as { consistent_point: string; snapshot_name: string };
        for (const x of tables) skipBefore.set(x.id, { schema: x.schema, name: x.name, lsn: s.consistent_point });
        await saveState(); // before the sync: after a kill from here on, the next run syncs them again
        const rep = await syncOnce(opts, io, { initial: false, snapshot: s.snapshot_name, components: ['data'], dataScope: { tables: tables.map(literal) } }, onCancel);
        syncs++;
        if ((rep.plan?.summary.changes ?? 0) > 0) io.onEvent(syncedEvent(rep, false));
      } catch (e) {
        if (/replication slot/i.test((e as Error).message) && /(no free|all replication slots are in use)/i.test((e as Error).message)) {
          throw new MigrateError('watch_no_free_slot', `tables of ${sourceName} must be synced again after a schema change, which needs one more (temporary) replication slot, and none is free`, { hint: 'raise max_replication_slots on the source by one (restart needed) or drop an unused slot, then watch again' });
        }
        throw e;
      } finally {
        await repl.end().catch(() => {});
      }
    };

    /**
     * A schema change on the source, taken between two source transactions (the caller holds `serial`): the schema
     * step (migrate's pipeline), then new tables are published, and tables that are new or whose columns changed
     * are synced again in a snapshot whose LSN tells which of the stream's changes they already hold.
     */
    const schemaStep = async (trigger: SchemaChangeEvent['trigger'], fp?: string): Promise<boolean> => {
      const before = t;
      await saveState(true); // a kill before the tables are synced again: the next run syncs every streamed table
      const r = await followSchema(opts, stepIO);
      if (r.refused) {
        await saveState();
        io.onEvent(schemaEvent(trigger, r));
        refused = true;
        return false;
      }
      if (fp !== undefined) lastFp = fp;
      if (!r.applied) {
        await saveState();
        return true;
      }
      const next = await tablesToFollow(src, tgt, opts);
      t = next.t;
      tinfo.clear();
      streamed = next.streamed;
      compared = next.compared;
      const published = await publish(); // before the snapshot below: rows written after it are streamed
      const again = streamed.filter((x) => t.has(x.id) && (!before.has(x.id) || shapeOf(before.get(x.id)!) !== shapeOf(t.get(x.id)!)));
      await resync(again);
      await saveState();
      io.onEvent(schemaEvent(trigger, r, { published: published.map((x) => x.display), resynced: again.map((x) => x.display) }));
      return true;
    };

    /** The target table of a stream relation; undefined when the schema step dropped it (gone on the source too). */
    const table = (rel: any): { info: TableInfo; key: string[]; full: boolean } | undefined => {
      const hit = tinfo.get(rel.relationOid);
      if (hit) return hit;
      const info = t.get(relationKey(rel.schema, rel.name));
      // Followed, the schema step ran before this transaction (the relation message asked for it): a table still
      // missing was dropped on the source after these changes.
      if (!info && follow.schema) return undefined;
      if (!info) throw new MigrateError('watch_table_missing', `table ${rel.schema}.${rel.name} changed on the source but does not exist on the target`, { hint: follow.schema ? 'run the watch again' : 'the schema is not followed with --data-only: migrate the schema first, then watch again' });
      // A primary key / replica-identity index (never NULL: compared with =), else the whole old row (FULL).
      const full = rel.keyColumns.length === 0;
      const key = full ? rel.columns.map((c: any) => c.name) : rel.keyColumns;
      const v = { info, key, full };
      tinfo.set(rel.relationOid, v);
      return v;
    };
    const applyTx = async (commitLsn: string, endLsn: string, commitTime: bigint) => {
      if (lsnValue(endLsn) <= lsnValue(applied)) return; // committed on the target before a restart
      const held = (info: TableInfo) => {
        const at = skipBefore.get(info.id);
        return at !== undefined && lsnValue(commitLsn) < lsnValue(at.lsn);
      };
      await tgt.query('BEGIN');
      // Consecutive inserts into one table with the same columns go as one multi-row INSERT (order kept: any other
      // change flushes them first).
      let batch: { q: string; cols: string[]; rows: unknown[][] } | undefined;
      const flush = async () => {
        if (!batch) return;
        const { q, cols, rows } = batch;
        batch = undefined;
        if (cols.length === 0) {
          for (const _ of rows) await tgt.query(`INSERT INTO ${q} DEFAULT VALUES`);
          return;
        }
        const params: unknown[] = [];
        const values = rows.map((r) => `(${r.map((v) => (params.push(v), `$${params.length}`)).join(', ')})`).join(', ');
        await tgt.query(`INSERT INTO ${q} (${cols.map(quoteIdent).join(', ')}) OVERRIDING SYSTEM VALUE VALUES ${values}`, params);
      };
      try {
        for (const ch of buffer) {
          if (ch.tag !== 'insert') await flush();
          if (ch.tag === 'truncate') {
            const rels = ch.msg.relations.map((r: any) => table(r)?.info).filter((x: TableInfo | undefined) => x && !held(x)) as TableInfo[];
            if (rels.length === 0) continue;
            await tgt.query(`TRUNCATE ${rels.map((x: TableInfo) => qualify(x.schema, x.name)).join(', ')}${ch.msg.cascade ? ' CASCADE' : ''}`);
            changes++;
            continue;
          }
          const target = table(ch.msg.relation);
          if (!target || held(target.info)) continue;
          const { info, key, full } = target;
          const q = qualify(info.schema, info.name);
          // By column name: a column the target lacks is left out, one the row lacks keeps its default / value.
          const cols = (tuple: Record<string, unknown>) => Object.keys(tuple).filter((c) => tuple[c] !== undefined && info.columns.some((x) => x.name === c && !x.generated));
          const params: unknown[] = [];
          const p = (v: unknown) => {
            params.push(v);
            return `$${params.length}`;
          };
          const where = (tuple: Record<string, unknown>) => key.filter((k) => tuple[k] !== undefined).map((k) => `${quoteIdent(k)} ${full ? 'IS NOT DISTINCT FROM' : '='} ${p(tuple[k])}`).join(' AND ');
          const rowOf = (tuple: Record<string, unknown>) => (full ? `ctid = (SELECT ctid FROM ${q} WHERE ${where(tuple)} LIMIT 1)` : where(tuple));
          if (ch.tag === 'insert') {
            const c = cols(ch.msg.new);
            if (batch && (batch.q !== q || batch.cols.join('\u0000') !== c.join('\u0000') || (batch.rows.length + 1) * c.length > INSERT_BATCH_PARAMS)) await flush();
            batch ??= { q, cols: c, rows: [] };
            batch.rows.push(c.map((x) => ch.msg.new[x]));
          } else if (ch.tag === 'update') {
            const c = cols(ch.msg.new).filter((x) => !info.columns.find((y) => y.name === x)?.identityAlways || !key.includes(x));
            const old = ch.msg.key ?? ch.msg.old ?? ch.msg.new;
            const set = c.map((x) => `${quoteIdent(x)} = ${p(ch.msg.new[x])}`).join(', ');
            await tgt.query(`UPDATE ${q} SET ${set} WHERE ${rowOf(old)}`, params);
          } else {
            const old = ch.msg.key ?? ch.msg.old;
            await tgt.query(`DELETE FROM ${q} WHERE ${rowOf(old)}`, params);
          }
          changes++;
        }
        await flush();
        const ts = new Date(Number(commitTime / 1000n)).toISOString();
        await tgt.query(`SELECT pg_replication_origin_xact_setup($1::pg_lsn, $2::timestamptz)`, [endLsn, ts]);
        await tgt.query('COMMIT');
      } catch (e) {
        await tgt.query('ROLLBACK').catch(() => {});
        throw e;
      }
      applied = endLsn;
      transactions++;
      lags.push([Date.now(), Math.max(0, Date.now() - Number(commitTime / 1000n))]);
      let passed = false;
      for (const [id, at] of skipBefore) {
        if (lsnValue(endLsn) < lsnValue(at.lsn)) continue;
        skipBefore.delete(id);
        passed = true;
      }
      if (passed) await saveState();
      await service?.acknowledge(endLsn);
    };

    // After a kill during or after a schema step: sync again what the stream would otherwise apply twice or miss.
    const left = resumed ? readResyncState(stateFile) : undefined;
    if (left) {
      const mine = (x: TableInfo) => left.tables.some((e) => relationKey(e.schema, e.name) === x.id && lsnValue(e.lsn) > lsnValue(applied));
      await resync(streamed.filter((x) => t.has(x.id) && (left.all || mine(x))));
      await saveState();
    }

    service = new LogicalReplicationService({ ...replicationConfig(srcDb, settings) }, { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } });
    service.on('data', async (_lsn: string, m: any) => {
      if (failure || refused) return;
      const work = (async () => {
        if (m.tag === 'begin') buffer = [];
        else if (m.tag === 'relation') {
          tinfo.delete(m.relationOid);
          if (reshaped(m)) {
            if (follow.schema) schemaPending = true;
            else if (!noted.has(`${m.relationOid}:${JSON.stringify(m.columns)}`)) {
              noted.add(`${m.relationOid}:${JSON.stringify(m.columns)}`);
              io.notice?.(`${displayName(m.schema, m.name)} has other columns on ${sourceName} than on ${targetName}; the schema is not followed (--data-only): values of columns ${targetName} lacks are left out`);
            }
          }
        } else if (m.tag === 'insert' || m.tag === 'update' || m.tag === 'delete' || m.tag === 'truncate') buffer.push({ tag: m.tag, msg: m });
        else if (m.tag === 'commit') {
          if (signal()) return; // stopping: this transaction is not applied (the slot resends it next time)
          await serial.run(async () => {
            // The transaction's rows use the new columns: the schema follows first, then the rows (by column name).
            if (schemaPending) {
              schemaPending = false;
              if (!(await schemaStep('relation'))) return; // refused: this transaction stays unapplied
            }
            await applyTx(m.commitLsn, m.commitEndLsn, m.commitTime as bigint);
          });
          buffer = [];
        }
      })();
      busy = work.catch(() => {});
      try {
        await work;
      } catch (e) {
        failure ??= e;
      }
    });
    service.on('heartbeat', (_lsn: string, _ts: number, respond: boolean) => {
      if (respond) void service?.acknowledge(applied).catch(() => {});
    });
    let streamError: unknown;
    service.on('error', (e: Error) => {
      streamError ??= e;
    });
    void service.subscribe(new TextPgoutput({ protoVersion: 1, publicationNames: [names.publication] }), names.slot, applied).catch((e) => {
      streamError ??= e;
    });
    // While a step holds the stream (keepalives unread), the source still hears from us: no wal_sender_timeout.
    keepalive = setInterval(() => void service?.acknowledge(applied).catch(() => {}), 10_000);
    if (follow.config) env = followEnvFiles(opts, stepIO, serial, (e) => io.onEvent(e));

    // Status, sequences, the source's schema and the tables without a replica identity, until stopped.
    const seqScope: DataScope = { ...opts.dataScope };
    const statusMs = opts.statusMs ?? 2000;
    let lastCompare = Date.now();
    let lastSchema = 0;
    let lastStatus = Date.now();
    while (!signal() && !refused) {
      await Promise.race([sleep(Math.min(statusMs, opts.intervalMs)), stopped]);
      if (signal() || refused) break;
      if (failure) throw failure;
      const failed = env?.failure();
      if (failed !== undefined) throw failed;
      if (streamError && !signal()) throw new MigrateError('watch_stream_failed', `the replication stream from ${sourceName} ended: ${(streamError as Error).message}`, { hint: 'run the watch again: it resumes from the last applied transaction' });
      if (follow.schema && Date.now() - lastSchema >= opts.intervalMs) {
        lastSchema = Date.now();
        await serial.run(async () => {
          const fp = await schemaFingerprint(src, opts.schemaScope);
          if (fp !== lastFp) await schemaStep('fingerprint', fp);
        });
        if (refused) break;
      }
      if (compared.length > 0 && Date.now() - lastCompare >= opts.intervalMs) {
        lastCompare = Date.now();
        await serial.run(() => syncUnstreamed(opts, io, compared, onCancel));
        syncs++;
      }
      if (Date.now() - lastStatus < statusMs) continue;
      lastStatus = Date.now();
      await serial.run(() => followSequences(src, tgt, seqScope)).catch(() => {});
      const wal = await src
        .query<{ b: string; r: string | null }>(
          `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::int8 AS b,
                  (SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::int8 FROM pg_replication_slots WHERE slot_name = $2) AS r`,
          [applied, names.slot],
        )
        .catch(() => undefined);
      const retained = wal?.rows[0]!.r != null ? Math.max(0, Number(wal.rows[0]!.r)) : undefined;
      const lagMs = lagPercentiles(lags);
      io.onEvent({ event: 'status', time: now(), mode: 'stream', lsn: applied, transactions, changes, syncs, ...(wal ? { lagBytes: Math.max(0, Number(wal.rows[0]!.b)) } : {}), ...(retained !== undefined ? { retainedBytes: retained } : {}), ...(lagMs ? { lagMs } : {}) });
      if (retained !== undefined && retained > RETAINED_WARN_BYTES !== warnedRetained) {
        warnedRetained = !warnedRetained;
        if (warnedRetained) {
          io.onEvent({ event: 'warning', time: now(), code: 'slot_retains_wal', retainedBytes: retained, message: `the slot ${names.slot} keeps ${(retained / 1024 ** 3).toFixed(1)} GiB of WAL on ${sourceName}: the target is behind, and the source's disk fills until it catches up (or the watch is stopped, which drops the slot)` });
        }
      }
    }
    await busy; // the transaction in flight commits, or rolled back
    return await finish();
  } catch (e) {
    // Interrupted (e.g. during the initial sync) or failed: what this run created goes, unless --keep-slot.
    const out = await finish().catch(() => undefined);
    if (signal() && out) return out;
    throw e;
  } finally {
    if (keepalive) clearInterval(keepalive);
    env?.close();
    await service?.destroy().catch(() => {});
    await Promise.allSettled([src.end(), tgt.end()]);
  }

  async function finish(): Promise<WatchOutcome> {
    if (finished) return finished;
    if (keepalive) clearInterval(keepalive);
    env?.close();
    await service?.destroy().catch(() => {});
    const dropped: string[] = [];
    const kept: string[] = [];
    if (opts.keepSlot) kept.push(...created);
    else {
      const c = await srcDb.connect();
      const d = await tgtDb.connect();
      try {
        for (let i = 0; i < 50; i++) {
          const r = await c.query<{ active: boolean }>(`SELECT active FROM pg_replication_slots WHERE slot_name = $1`, [names.slot]);
          if (r.rows.length === 0) break;
          if (!r.rows[0]!.active) {
            await c.query(`SELECT pg_drop_replication_slot($1)`, [names.slot]);
            dropped.push(`slot ${names.slot}`);
            break;
          }
          await sleep(100);
        }
        await c.query(`DROP PUBLICATION IF EXISTS ${quoteIdent(names.publication)}`);
        dropped.push(`publication ${names.publication}`);
        // The apply session holds the origin: release it there first.
        await tgt.query(`SELECT pg_replication_origin_session_reset() WHERE pg_replication_origin_session_is_setup()`).catch(() => {});
        await d.query(`SELECT pg_replication_origin_drop($1) FROM pg_replication_origin WHERE roname = $1`, [names.origin]);
        dropped.push(`origin ${names.origin}`);
        await writeResyncState(stateFile, { tables: [] }); // the slot is gone: nothing to resume
      } finally {
        await Promise.allSettled([c.end(), d.end()]);
      }
    }
    const s = signal();
    if (s) io.onEvent({ event: 'stopped', time: now(), signal: s, dropped, kept, transactions, changes });
    else if (refused) io.onEvent({ event: 'stopped', time: now(), refused: true, dropped, kept, transactions, changes });
    finished = { exitCode: s === 'SIGINT' ? EXIT.interrupted : s ? EXIT.ok : refused ? EXIT.refused : EXIT.ok };
    return finished;
  }
}
