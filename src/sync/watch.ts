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
 * The source is never written except for the publication and the slot; both are dropped at a clean stop
 * (SIGINT, SIGTERM) unless keepSlot. Nothing here prints: events go to io.onEvent.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { LogicalReplicationService, PgoutputPlugin } from 'pg-logical-replication';
import { EXIT, MigrateError, asMigrateError } from '../errors.js';
import { openDatabase, type DbHandle } from '../pg/connect.js';
import { connectionSettings } from '../env/connection.js';
import { qualify, quoteIdent, relationKey } from '../pg/quote.js';
import { followSequences, listTables, type DataScope, type TableInfo } from '../data/index.js';
import { inScope } from '../data/scope.js';
import { loadPair, type PipelineIO } from '../migrate/session.js';
import { runSync, type SyncOptions } from '../migrate/sync.js';
import type { Report } from '../migrate/types.js';

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
  | { event: 'status'; time: string; mode: 'stream' | 'poll'; lsn?: string; transactions: number; changes: number; syncs: number; lagBytes?: number }
  | { event: 'stopped'; time: string; signal: 'SIGINT' | 'SIGTERM'; dropped: string[]; kept: string[]; transactions: number; changes: number };

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
}

interface Change {
  tag: 'insert' | 'update' | 'delete' | 'truncate';
  msg: any;
}

export async function runWatch(opts: WatchOptions, io: WatchIO, control: WatchControl): Promise<WatchOutcome> {
  let stopSignal: 'SIGINT' | 'SIGTERM' | undefined;
  const stopped = control.stop.then((s) => {
    stopSignal = s;
    return s;
  });
  const { source, target } = loadPair(opts.projectDir, opts.source, opts.target, io);
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
    const names = { slot: `nself_${id}`, publication: `nself_${id}`, origin: `nself_${id}` };
    const why = opts.poll
      ? { reason: '--poll was given', enable: 'run without --poll to stream changes' }
      : connectionSettings(source).ssh
        ? { reason: 'the source is reached through an SSH tunnel, which streaming does not support', enable: 'connect to the source directly (no host in server.json)' }
        : await cannotStream(srcDb, tgtDb, names.slot);
    if (why) return await poll(opts, io, stopped, () => stopSignal, source.name, target.name, why);
    return await stream(opts, io, stopped, () => stopSignal, srcDb, tgtDb, source.name, target.name, names);
  } catch (e) {
    const err = asMigrateError(e);
    return { exitCode: err.exitCode, error: err };
  } finally {
    await lock.end().catch(() => {});
    await srcDb?.close();
    await tgtDb.close();
  }
}

/** Why the source cannot stream into the target (and what would enable it), or undefined when it can. */
async function cannotStream(src: DbHandle, tgt: DbHandle, slot: string): Promise<{ reason: string; enable: string } | undefined> {
  const c = await src.connect();
  try {
    const r = (
      await c.query<{ wal: string; repl: boolean; free: number; mine: boolean }>(
        `SELECT current_setting('wal_level') AS wal,
                (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user) AS repl,
                current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots)::int AS free,
                EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1) AS mine`,
        [slot],
      )
    ).rows[0]!;
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

async function poll(opts: WatchOptions, io: WatchIO, stopped: Promise<string>, signal: () => 'SIGINT' | 'SIGTERM' | undefined, sourceName: string, targetName: string, why: { reason: string; enable: string }): Promise<WatchOutcome> {
  io.onEvent({ event: 'started', time: now(), source: sourceName, target: targetName, mode: 'poll', reason: why.reason, enable: why.enable });
  let cancel: (() => void) | undefined;
  const onCancel = (f: (() => void) | undefined) => (cancel = f);
  void stopped.then(() => cancel?.());
  let syncs = 0;
  let lastStatus = Date.now();
  let initial = true;
  while (!signal()) {
    try {
      const r = await syncOnce(opts, io, { initial }, onCancel);
      syncs++;
      if (initial || (r.plan?.summary.changes ?? 0) > 0) io.onEvent(syncedEvent(r, initial));
    } catch (e) {
      if (!signal()) throw e;
      break; // the run in flight was interrupted and rolled back
    }
    initial = false;
    if (Date.now() - lastStatus >= (opts.statusMs ?? 2000)) {
      lastStatus = Date.now();
      io.onEvent({ event: 'status', time: now(), mode: 'poll', transactions: 0, changes: 0, syncs });
    }
    await Promise.race([sleep(opts.intervalMs), stopped]);
  }
  const s = signal()!;
  io.onEvent({ event: 'stopped', time: now(), signal: s, dropped: [], kept: [], transactions: 0, changes: 0 });
  return { exitCode: s === 'SIGINT' ? EXIT.interrupted : EXIT.ok };
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

async function stream(
  opts: WatchOptions,
  io: WatchIO,
  stopped: Promise<string>,
  signal: () => 'SIGINT' | 'SIGTERM' | undefined,
  srcDb: DbHandle,
  tgtDb: DbHandle,
  sourceName: string,
  targetName: string,
  names: { slot: string; publication: string; origin: string },
): Promise<WatchOutcome> {
  const { loadEnvironment } = await import('../env/resolve.js');
  const settings = connectionSettings(loadEnvironment(opts.projectDir, sourceName));
  const src = await srcDb.connect();
  const tgt = await tgtDb.connect();
  const created: string[] = [];
  let service: LogicalReplicationService | undefined;
  let transactions = 0;
  let changes = 0;
  let syncs = 0;
  let cancel: (() => void) | undefined;
  const onCancel = (f: (() => void) | undefined) => (cancel = f);
  void stopped.then(() => cancel?.());
  let finished: WatchOutcome | undefined;
  try {
    // Which tables: the selected ones present on both sides; those with a replica identity are streamed.
    const [s, t] = await Promise.all([listTables(src), listTables(tgt)]);
    const ident = new Map(
      (await src.query<{ oid: string; ri: string; haspk: boolean }>(`SELECT c.oid::int8 AS oid, c.relreplident::text AS ri, EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS haspk FROM pg_class c WHERE c.relkind IN ('r', 'p')`)).rows.map((r) => [Number(r.oid), r.ri === 'f' || r.ri === 'i' || (r.ri === 'd' && r.haspk)]),
    );
    const selected = [...s.values()].filter((x) => inScope(opts.dataScope, x.schema, x.name) && t.has(x.id));
    const streamed = selected.filter((x) => ident.get(x.oid));
    const compared = selected.filter((x) => !ident.get(x.oid));

    const slotRow = (await src.query<{ lsn: string | null; active: boolean }>(`SELECT confirmed_flush_lsn::text AS lsn, active FROM pg_replication_slots WHERE slot_name = $1`, [names.slot])).rows[0];
    const originLsn = (await tgt.query<{ lsn: string | null }>(`SELECT s.remote_lsn::text AS lsn FROM pg_replication_origin o JOIN pg_replication_origin_status s ON s.local_id = o.roident WHERE o.roname = $1`, [names.origin])).rows[0]?.lsn ?? null;
    const resumed = !!slotRow && originLsn !== null && originLsn !== '0/0';
    let applied: string;

    // The publication always lists exactly the streamed tables.
    const pubExists = (await src.query(`SELECT 1 FROM pg_publication WHERE pubname = $1`, [names.publication])).rows.length > 0;
    const tableList = streamed.map((x) => qualify(x.schema, x.name)).join(', ');
    if (!pubExists) {
      await src.query(`CREATE PUBLICATION ${quoteIdent(names.publication)}${tableList ? ` FOR TABLE ${tableList}` : ''} WITH (publish_via_partition_root = true)`);
      created.push(`publication ${names.publication}`);
    } else if (tableList) await src.query(`ALTER PUBLICATION ${quoteIdent(names.publication)} SET TABLE ${tableList}`);

    if (resumed) {
      applied = originLsn!;
      if (!created.length) created.push(`publication ${names.publication}`);
      created.push(`slot ${names.slot}`, `origin ${names.origin}`);
      io.onEvent({ event: 'started', time: now(), source: sourceName, target: targetName, mode: 'stream', slot: names.slot, publication: names.publication, resumed: true, tables: streamed.map((x) => x.display), compared: compared.map((x) => x.display) });
    } else {
      if (slotRow) await src.query(`SELECT pg_drop_replication_slot($1)`, [names.slot]);
      await tgt.query(`SELECT pg_replication_origin_drop($1) FROM pg_replication_origin WHERE roname = $1`, [names.origin]);
      await tgt.query(`SELECT pg_replication_origin_create($1)`, [names.origin]);
      created.push(`origin ${names.origin}`);
      // The slot's exported snapshot: the initial sync reads the source exactly as of the slot's start.
      const repl = new (await import('pg')).default.Client({ ...replicationConfig(srcDb, settings), replication: 'database' } as pg.ClientConfig);
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

    // The apply session: changes arrive as they were on the source; no user trigger or FK trigger fires.
    await tgt.query(`SET session_replication_role = replica`);
    await tgt.query(`SELECT pg_replication_origin_session_setup($1)`, [names.origin]);
    const tinfo = new Map<number, { info: TableInfo; key: string[]; full: boolean }>();
    let buffer: Change[] = [];
    let failure: unknown;
    let busy: Promise<void> = Promise.resolve();

    const table = (rel: any): { info: TableInfo; key: string[]; full: boolean } => {
      const hit = tinfo.get(rel.relationOid);
      if (hit) return hit;
      const info = t.get(relationKey(rel.schema, rel.name));
      if (!info) throw new MigrateError('watch_table_missing', `table ${rel.schema}.${rel.name} changed on the source but does not exist on the target`, { hint: 'migrate the schema first, then watch again' });
      // A primary key / replica-identity index (never NULL: compared with =), else the whole old row (FULL).
      const full = rel.keyColumns.length === 0;
      const key = full ? rel.columns.map((c: any) => c.name) : rel.keyColumns;
      const v = { info, key, full };
      tinfo.set(rel.relationOid, v);
      return v;
    };
    const applyTx = async (endLsn: string, commitTime: bigint) => {
      if (lsnValue(endLsn) <= lsnValue(applied)) return; // committed on the target before a restart
      await tgt.query('BEGIN');
      try {
        for (const ch of buffer) {
          if (ch.tag === 'truncate') {
            const rels = ch.msg.relations.map((r: any) => table(r).info);
            await tgt.query(`TRUNCATE ${rels.map((x: TableInfo) => qualify(x.schema, x.name)).join(', ')}${ch.msg.cascade ? ' CASCADE' : ''}`);
            changes++;
            continue;
          }
          const { info, key, full } = table(ch.msg.relation);
          const q = qualify(info.schema, info.name);
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
            await tgt.query(`INSERT INTO ${q} (${c.map(quoteIdent).join(', ')}) OVERRIDING SYSTEM VALUE VALUES (${c.map((x) => p(ch.msg.new[x])).join(', ')})`, params);
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
        const ts = new Date(Number(commitTime / 1000n)).toISOString();
        await tgt.query(`SELECT pg_replication_origin_xact_setup($1::pg_lsn, $2::timestamptz)`, [endLsn, ts]);
        await tgt.query('COMMIT');
      } catch (e) {
        await tgt.query('ROLLBACK').catch(() => {});
        throw e;
      }
      applied = endLsn;
      transactions++;
      await service?.acknowledge(endLsn);
    };

    service = new LogicalReplicationService({ ...replicationConfig(srcDb, settings) }, { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } });
    service.on('data', async (_lsn: string, m: any) => {
      if (failure) return;
      const work = (async () => {
        if (m.tag === 'begin') buffer = [];
        else if (m.tag === 'insert' || m.tag === 'update' || m.tag === 'delete' || m.tag === 'truncate') buffer.push({ tag: m.tag, msg: m });
        else if (m.tag === 'commit') {
          if (signal()) return; // stopping: this transaction is not applied (the slot resends it next time)
          await applyTx(m.commitEndLsn, m.commitTime as bigint);
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

    // Status, sequences and the tables without a replica identity, until stopped.
    const seqScope: DataScope = { ...opts.dataScope };
    let lastCompare = Date.now();
    const literal = (x: TableInfo) => `"${x.schema.replace(/"/g, '""')}"."${x.name.replace(/"/g, '""')}"`;
    while (!signal()) {
      await Promise.race([sleep(opts.statusMs ?? 2000), stopped]);
      if (signal()) break;
      if (failure) throw failure;
      if (streamError && !signal()) throw new MigrateError('watch_stream_failed', `the replication stream from ${sourceName} ended: ${(streamError as Error).message}`, { hint: 'run the watch again: it resumes from the last applied transaction' });
      await followSequences(src, tgt, seqScope).catch(() => {});
      if (compared.length > 0 && Date.now() - lastCompare >= opts.intervalMs) {
        lastCompare = Date.now();
        const r = await syncOnce(opts, io, { initial: false, components: ['data'], dataScope: { tables: compared.map(literal) } }, onCancel);
        syncs++;
        if ((r.plan?.summary.changes ?? 0) > 0) io.onEvent(syncedEvent(r, false));
      }
      const lag = await src.query<{ b: string }>(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::int8 AS b`, [applied]).catch(() => undefined);
      io.onEvent({ event: 'status', time: now(), mode: 'stream', lsn: applied, transactions, changes, syncs, ...(lag ? { lagBytes: Math.max(0, Number(lag.rows[0]!.b)) } : {}) });
    }
    await busy; // the transaction in flight commits, or rolled back
    return await finish();
  } catch (e) {
    // Interrupted (e.g. during the initial sync) or failed: what this run created goes, unless --keep-slot.
    const out = await finish().catch(() => undefined);
    if (signal() && out) return out;
    throw e;
  } finally {
    await service?.destroy().catch(() => {});
    await Promise.allSettled([src.end(), tgt.end()]);
  }

  async function finish(): Promise<WatchOutcome> {
    if (finished) return finished;
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
      } finally {
        await Promise.allSettled([c.end(), d.end()]);
      }
    }
    const s = signal();
    if (s) io.onEvent({ event: 'stopped', time: now(), signal: s, dropped, kept, transactions, changes });
    finished = { exitCode: s === 'SIGINT' ? EXIT.interrupted : EXIT.ok };
    return finished;
  }
}
