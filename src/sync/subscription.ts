/**
 * `nself migrate sync <source> <target> --watch --via subscription`: PostgreSQL's own logical replication carries
 * the stream; this tool prepares it, watches it and removes it.
 *
 * 1. Checks up front: the source has wal_level = logical, its user may replicate, a slot is free; the target user
 *    may create subscriptions (superuser, or pg_create_subscription + CREATE on the database on PostgreSQL 16+);
 *    and the TARGET SERVER can reach the source with the connection string it will use (a CREATE SUBSCRIPTION
 *    without a slot, in a transaction that is rolled back: nothing is left on either side when it cannot).
 * 2. A publication `nself_<id>` FOR TABLE the selected tables that have a replica identity, and a logical slot
 *    `nself_<id>` created by this tool with an exported snapshot.
 * 3. The one-time sync (schema, data in delta mode, config — confirmed like a migration) reads the source in that
 *    snapshot, so the target holds exactly the source as of the slot's start.
 * 4. CREATE SUBSCRIPTION `nself_<id>` … WITH (create_slot = false, slot_name = 'nself_<id>', copy_data = false): the
 *    apply worker starts at the slot's consistent point — where the sync's snapshot ends. No row twice, none lost,
 *    and no initial copy into tables that already hold rows (which would duplicate or conflict).
 * 5. Every --interval: the selected tables without a replica identity (a publication cannot carry their UPDATEs
 *    and DELETEs) are compared and synced, as the streaming watcher does. Every status interval: the sequences
 *    owned by the selected tables take the source's values (a subscription does not carry them);
 *    pg_stat_subscription (worker, received LSN), pg_stat_subscription_stats (PG 15+: apply and sync errors), the
 *    slot's unconfirmed WAL and the walsender's replay lag on the source. A failed apply worker stops the watch with
 *    an error.
 * 6. SIGINT / SIGTERM: DROP SUBSCRIPTION (which drops the slot on the source) and DROP PUBLICATION, unless keepSlot:
 *    then the subscription is disabled and everything is kept for the next run to resume.
 *
 * Nothing here prints: events go to io.onEvent. The password never appears in an event (masked by structure).
 */
import type pg from 'pg';
import { EXIT, MigrateError } from '../errors.js';
import { connectionSettings, type ConnectionSettings } from '../env/connection.js';
import { displayName, qualify, quoteConninfoValue, quoteIdent, quoteLiteral } from '../pg/quote.js';
import { followSequences, listTables, type TableInfo } from '../data/index.js';
import { inScope } from '../data/scope.js';
import type { PipelineIO } from '../migrate/session.js';
import { inWatchSession, type WatchSession, replicationReadiness, syncOnce, syncedEvent, syncUnstreamed, type WatchControl, type WatchEvent, type WatchOptions, type WatchOutcome } from './watch.js';

export interface SubscriptionOptions extends WatchOptions {
  /**
   * --source-conninfo: how the TARGET server reaches the source (libpq `key=value …` or a postgres:// URL). Keys it
   * does not set come from the source's own settings (so the password need not be on the command line).
   */
  sourceConninfo?: string;
}

export type SubscriptionEvent =
  | { event: 'started'; time: string; source: string; target: string; mode: 'subscription'; subscription: string; publication: string; slot: string; conninfo: string; resumed: boolean; tables: string[]; leftOut: { table: string; reason: string }[] }
  | Extract<WatchEvent, { event: 'synced' }>
  | { event: 'status'; time: string; mode: 'subscription'; worker: boolean; receivedLsn?: string; lagBytes?: number; lagMs?: number; applyErrors?: number; syncErrors?: number }
  | { event: 'stopped'; time: string; signal: 'SIGINT' | 'SIGTERM'; dropped: string[]; kept: string[]; resume?: string; drop?: string[] };

export interface SubscriptionIO extends PipelineIO {
  onEvent(e: SubscriptionEvent): void;
}

const now = () => new Date().toISOString();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MASK = '****';
/** Status ticks without an apply worker after which it counts as failed (it is restarted within 5 s normally). */
const WORKER_DOWN_TICKS = 5;

/** libpq `key=value key2='quoted value'` or a postgres:// URL → keywords. Throws a usage-level error when malformed. */
export function parseConninfo(text: string): Record<string, string> {
  const t = text.trim();
  const bad = (why: string) => new MigrateError('usage', `--source-conninfo: ${why}`, { exitCode: EXIT.usage, hint: "use libpq form, e.g. --source-conninfo 'host=db.internal port=5432', or postgres://host:5432/db" });
  if (/^postgres(ql)?:\/\//.test(t)) {
    let u: URL;
    try {
      u = new URL(t);
    } catch {
      throw bad('not a valid postgres:// URL');
    }
    const out: Record<string, string> = {};
    if (u.hostname) out.host = decodeURIComponent(u.hostname.replace(/^\[|\]$/g, ''));
    if (u.port) out.port = u.port;
    if (u.username) out.user = decodeURIComponent(u.username);
    if (u.password) out.password = decodeURIComponent(u.password);
    const db = u.pathname.replace(/^\//, '');
    if (db) out.dbname = decodeURIComponent(db);
    for (const [k, v] of u.searchParams) out[k] = v;
    return out;
  }
  const out: Record<string, string> = {};
  let i = 0;
  const ws = () => {
    while (i < t.length && /\s/.test(t[i]!)) i++;
  };
  while ((ws(), i < t.length)) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*/.exec(t.slice(i));
    if (!m) throw bad(`expected key=value at "${t.slice(i, i + 20)}"`);
    i += m[0].length;
    let v = '';
    if (t[i] === "'") {
      i++;
      for (;;) {
        if (i >= t.length) throw bad(`unterminated quoted value for ${m[1]}`);
        const c = t[i++]!;
        if (c === '\\' && i < t.length) v += t[i++];
        else if (c === "'") break;
        else v += c;
      }
    } else {
      while (i < t.length && !/\s/.test(t[i]!)) {
        const c = t[i++]!;
        v += c === '\\' && i < t.length ? t[i++] : c;
      }
    }
    out[m[1]!] = v;
  }
  if (Object.keys(out).length === 0) throw bad('it is empty');
  return out;
}

/** keywords → a libpq connection string; with mask, the password is `****`. */
export function formatConninfo(kv: Record<string, string>, mask = false): string {
  return Object.entries(kv)
    .map(([k, v]) => `${k}=${mask && k === 'password' ? MASK : quoteConninfoValue(v)}`)
    .join(' ');
}

/** The connection string the target server uses: the source's settings, overridden key by key by --source-conninfo. */
export function subscriptionConninfo(s: ConnectionSettings, override: string | undefined): Record<string, string> {
  const given = override === undefined ? undefined : parseConninfo(override);
  const base: Record<string, string> = { host: s.host, port: String(s.port), dbname: s.database, user: s.user };
  if (s.password !== undefined) base.password = s.password;
  if (s.ssl) base.sslmode = s.ssl.rejectUnauthorized ? 'verify-full' : 'require';
  base.connect_timeout = '10';
  return { ...base, ...given };
}

function pgMessage(e: unknown): string {
  return (e as Error)?.message ?? String(e);
}

export async function runSubscription(opts: SubscriptionOptions, io: SubscriptionIO, control: WatchControl): Promise<WatchOutcome> {
  let settings: ConnectionSettings | undefined;
  let conninfo: Record<string, string> = {};
  return inWatchSession(
    opts,
    io,
    control,
    (w) => follow(opts, io, w, `nself_${w.id}`, conninfo, settings!),
    ({ source }) => {
      settings = connectionSettings(source);
      if (settings.ssh) {
        throw new MigrateError('subscription_ssh_unsupported', `${source.name} is reached through an SSH tunnel: --via subscription needs a direct connection to it (this tool creates the replication slot)`, {
          hint: 'use --watch without --via (it polls through the tunnel), or connect to the source directly (no host in server.json)',
        });
      }
      conninfo = subscriptionConninfo(settings, opts.sourceConninfo);
      if (conninfo.password !== undefined) io.addSecrets?.([conninfo.password]);
    },
  );
}

/** Up-front checks on both servers; throws one clear error naming what to change. */
async function check(src: pg.Client, tgt: pg.Client, name: string, conninfoUser: string, sourceUser: string, sourceName: string, targetName: string): Promise<void> {
  const s = await replicationReadiness(src, name);
  const fail = (msg: string, hint: string) => new MigrateError('subscription_unavailable', msg, { hint });
  if (s.wal !== 'logical') throw fail(`${sourceName}'s wal_level is ${s.wal}, not logical: a subscription cannot follow it`, "on the source: ALTER SYSTEM SET wal_level = 'logical'; then restart PostgreSQL (or use --watch without --via, which polls)");
  if (conninfoUser === sourceUser && !s.repl) throw fail(`${sourceName}'s user ${sourceUser} has no REPLICATION privilege, which the subscription's connection needs`, `on the source: ALTER ROLE ${quoteIdent(sourceUser)} REPLICATION`);
  if (s.free < 1 && !s.mine) throw fail(`${sourceName} has no free replication slot`, 'raise max_replication_slots on the source (restart needed) or drop an unused slot');
  const t = (
    await tgt.query<{ su: boolean; v: number; member: boolean; create: boolean; workers: number }>(
      `SELECT r.rolsuper AS su, current_setting('server_version_num')::int AS v,
              CASE WHEN current_setting('server_version_num')::int >= 160000 THEN pg_has_role(current_user, 'pg_create_subscription', 'MEMBER') ELSE false END AS member,
              has_database_privilege(current_database(), 'CREATE') AS "create",
              current_setting('max_logical_replication_workers')::int AS workers
         FROM pg_roles r WHERE r.rolname = current_user`,
    )
  ).rows[0]!;
  if (!t.su && !(t.member && t.create)) {
    throw fail(
      `${targetName}'s user may not create subscriptions`,
      t.v >= 160000 ? 'connect to the target as a superuser, or GRANT pg_create_subscription and CREATE on the database to the target user' : 'connect to the target as a superuser (PostgreSQL 16+ also allows members of pg_create_subscription)',
    );
  }
  if (t.workers < 1) throw fail(`${targetName} has max_logical_replication_workers = 0: no apply worker can run`, 'raise max_logical_replication_workers on the target (restart needed)');
  const streaming = (await tgt.query(`SELECT 1 FROM pg_replication_origin WHERE roname = $1`, [name])).rows.length > 0;
  if (streaming) {
    throw fail(`a streaming watch into ${targetName} kept its slot ${name} (--keep-slot or killed)`, `resume it with \`nself migrate sync ${sourceName} ${targetName} --watch\` (without --via) and stop it with Ctrl-C, which drops it; then use --via subscription`);
  }
}

async function follow(opts: SubscriptionOptions, io: SubscriptionIO, w: WatchSession, name: string, conninfo: Record<string, string>, settings: ConnectionSettings): Promise<WatchOutcome> {
  const { stopped, signal, srcDb, tgtDb } = w;
  const [sourceName, targetName] = [w.source.name, w.target.name];
  const src = await srcDb.connect();
  const tgt = await tgtDb.connect();
  const masked = formatConninfo(conninfo, true);
  const secret = conninfo.password;
  const hide = (text: string) => (secret ? text.split(secret).join(MASK) : text);
  const created: string[] = [];
  let cancel: (() => void) | undefined;
  const onCancel = (f: (() => void) | undefined) => (cancel = f);
  void stopped.then(() => cancel?.());
  let finished: WatchOutcome | undefined;
  const sub = quoteIdent(name);
  try {
    await check(src, tgt, name, conninfo.user ?? settings.user, settings.user, sourceName, targetName);
    const subExists = (await tgt.query(`SELECT 1 FROM pg_subscription WHERE subname = $1 AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`, [name])).rows.length > 0;
    const slotExists = (await src.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [name])).rows.length > 0;
    const resumed = subExists && slotExists;
    const connectFailed = (e: unknown) =>
      new MigrateError('subscription_connect_failed', `${targetName}'s server cannot reach ${sourceName} at ${masked}: ${hide(pgMessage(e)).split('\n')[0]}`, {
        hint: `the target server connects to the source itself: pass --source-conninfo 'host=… port=…' with an address the target's server reaches (e.g. the source's service name inside a docker network); keys left out come from ${sourceName}'s settings`,
      });

    let tables: string[];
    let leftOut: { table: string; reason: string }[] = [];
    // The selected tables without a replica identity, on the target: compared and synced every --interval.
    let compared: TableInfo[] = [];
    const identities = async () =>
      new Map(
        (await src.query<{ oid: string; ok: boolean }>(`SELECT c.oid::int8 AS oid, (c.relreplident IN ('f', 'i') OR (c.relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))) AS ok FROM pg_class c WHERE c.relkind IN ('r', 'p')`)).rows.map((r) => [Number(r.oid), r.ok]),
      );
    const NO_IDENTITY = `no replica identity (no primary key, REPLICA IDENTITY FULL or USING INDEX): compared and synced every --interval instead`;
    if (resumed) {
      await tgt.query(`ALTER SUBSCRIPTION ${sub} ENABLE`);
      created.push(`subscription ${name}`, `slot ${name}`, `publication ${name}`);
      tables = (await src.query<{ s: string; t: string }>(`SELECT schemaname AS s, tablename AS t FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1, 2`, [name])).rows.map((r) => displayName(r.s, r.t));
      const [s, t, ident] = await Promise.all([listTables(src), listTables(tgt), identities()]);
      compared = [...s.values()].filter((x) => inScope(opts.dataScope, x.schema, x.name) && !ident.get(x.oid) && t.has(x.id));
      leftOut = compared.map((x) => ({ table: x.display, reason: NO_IDENTITY }));
      io.onEvent({ event: 'started', time: now(), source: sourceName, target: targetName, mode: 'subscription', subscription: name, publication: name, slot: name, conninfo: masked, resumed: true, tables, leftOut });
    } else {
      // Leftovers of a run that was killed before it finished: none of it holds a position worth keeping.
      if (subExists) await detachAndDropSubscription(tgt, sub);
      if (slotExists) await dropSlot(src, name);
      await src.query(`DROP PUBLICATION IF EXISTS ${quoteIdent(name)}`);

      // Can the target's server reach the source? A subscription without a slot, rolled back: nothing stays.
      await tgt.query('BEGIN');
      try {
        await tgt.query(`CREATE SUBSCRIPTION ${sub} CONNECTION ${quoteLiteral(formatConninfo(conninfo))} PUBLICATION ${sub} WITH (connect = true, enabled = false, create_slot = false, slot_name = NONE, copy_data = false)`);
      } catch (e) {
        throw connectFailed(e);
      } finally {
        await tgt.query('ROLLBACK').catch(() => {});
      }

      // The tables: selected, with a replica identity, and on the target (or created there by the schema step).
      const [s, t, ident] = await Promise.all([listTables(src), listTables(tgt), identities()]);
      const selected = [...s.values()].filter((x) => inScope(opts.dataScope, x.schema, x.name));
      const onTargetNow = (x: TableInfo) => t.has(x.id) || opts.components.includes('schema');
      const published = selected.filter((x) => ident.get(x.oid) && onTargetNow(x));
      compared = selected.filter((x) => !ident.get(x.oid) && onTargetNow(x));
      leftOut = selected.filter((x) => !published.includes(x)).map((x) => ({ table: x.display, reason: ident.get(x.oid) ? `not on ${targetName} (and the schema is not synced)` : NO_IDENTITY }));
      if (published.length === 0) throw new MigrateError('subscription_no_tables', `no selected table of ${sourceName} can be published (a table needs a replica identity)`, { hint: 'add primary keys, or check --table / --schema' });
      tables = published.map((x) => x.display);

      await src.query(`CREATE PUBLICATION ${quoteIdent(name)} FOR TABLE ${published.map((x) => qualify(x.schema, x.name)).join(', ')} WITH (publish_via_partition_root = true)`);
      created.push(`publication ${name}`);
      // The slot's exported snapshot: the initial sync reads the source exactly as of the slot's start.
      const repl = new (await import('pg')).default.Client({ ...replicationConfig(settings), replication: 'database' } as pg.ClientConfig);
      await repl.connect();
      try {
        const r = await repl.query(`CREATE_REPLICATION_SLOT ${quoteIdent(name)} LOGICAL pgoutput EXPORT_SNAPSHOT`);
        created.push(`slot ${name}`);
        io.onEvent({ event: 'started', time: now(), source: sourceName, target: targetName, mode: 'subscription', subscription: name, publication: name, slot: name, conninfo: masked, resumed: false, tables, leftOut });
        const rep = await syncOnce(opts, io, { initial: true, snapshot: (r.rows[0] as { snapshot_name: string }).snapshot_name }, onCancel);
        io.onEvent(syncedEvent(rep, true));
      } finally {
        await repl.end().catch(() => {});
      }
      if (signal()) return await finish();
      const onTarget = await listTables(tgt);
      const missing = published.filter((x) => !onTarget.has(x.id));
      if (missing.length > 0) throw new MigrateError('subscription_table_missing', `${missing[0]!.display} is not on ${targetName} after the initial sync`, { hint: 'sync the schema first (`nself migrate sync` without --data-only), then watch again' });
      try {
        await tgt.query(`CREATE SUBSCRIPTION ${sub} CONNECTION ${quoteLiteral(formatConninfo(conninfo))} PUBLICATION ${sub} WITH (create_slot = false, slot_name = ${quoteLiteral(name)}, copy_data = false, enabled = true)`);
      } catch (e) {
        throw /could not connect/i.test(pgMessage(e)) ? connectFailed(e) : e;
      }
      created.unshift(`subscription ${name}`);
    }

    // Watch it until stopped.
    const version = Number((await tgt.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`)).rows[0]!.v);
    const errorsNow = async () =>
      version >= 150000 ? (await tgt.query<{ a: string; s: string }>(`SELECT apply_error_count AS a, sync_error_count AS s FROM pg_stat_subscription_stats WHERE subname = $1`, [name])).rows[0] : undefined;
    const base = await errorsNow();
    let down = 0;
    const statusMs = opts.statusMs ?? 2000;
    let lastCompare = Date.now();
    let lastStatus = Date.now();
    while (!signal()) {
      await Promise.race([sleep(Math.min(statusMs, opts.intervalMs)), stopped]);
      if (signal()) break;
      if (compared.length > 0 && Date.now() - lastCompare >= opts.intervalMs) {
        lastCompare = Date.now();
        await syncUnstreamed(opts, io, compared, onCancel);
        if (signal()) break;
      }
      if (Date.now() - lastStatus < statusMs) continue;
      lastStatus = Date.now();
      await followSequences(src, tgt, opts.dataScope); // a subscription does not carry sequence values
      const w = (await tgt.query<{ pid: number | null; received: string | null }>(`SELECT s.pid, s.received_lsn::text AS received FROM pg_stat_subscription s WHERE s.subname = $1 AND s.relid IS NULL AND (to_jsonb(s) ->> 'leader_pid') IS NULL`, [name])).rows[0];
      const errs = await errorsNow();
      const slot = (await src.query<{ b: string | null }>(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::int8 AS b FROM pg_replication_slots WHERE slot_name = $1`, [name])).rows[0];
      const lag = (await src.query<{ ms: number | null }>(`SELECT (extract(epoch FROM replay_lag) * 1000)::float8 AS ms FROM pg_stat_replication WHERE application_name = $1`, [name])).rows[0];
      const worker = !!w?.pid;
      down = worker ? 0 : down + 1;
      io.onEvent({
        event: 'status',
        time: now(),
        mode: 'subscription',
        worker,
        ...(w?.received ? { receivedLsn: w.received } : {}),
        ...(slot?.b != null ? { lagBytes: Math.max(0, Number(slot.b)) } : {}),
        ...(lag?.ms != null ? { lagMs: Math.round(lag.ms) } : {}),
        ...(errs ? { applyErrors: Number(errs.a), syncErrors: Number(errs.s) } : {}),
      });
      const newErrors = errs && base ? Number(errs.a) - Number(base.a) + Number(errs.s) - Number(base.s) : 0;
      if (newErrors > 0 || down >= WORKER_DOWN_TICKS) {
        throw new MigrateError(
          'subscription_apply_failed',
          `the subscription's apply worker on ${targetName} ${newErrors > 0 ? `failed (${newErrors} error(s) since the watch started)` : `has not been running for ${down} status checks`}; PostgreSQL writes the reason to ${targetName}'s server log`,
          { hint: `most often a row on ${targetName} conflicts with one from ${sourceName} (a unique key): remove it on ${targetName} and PostgreSQL retries; or stop, run \`nself migrate sync ${sourceName} ${targetName}\` once and watch again` },
        );
      }
    }
    return await finish();
  } catch (e) {
    const out = await finish().catch(() => undefined);
    if (signal() && out) return out;
    throw e;
  } finally {
    await Promise.allSettled([src.end(), tgt.end()]);
  }

  async function finish(): Promise<WatchOutcome> {
    if (finished) return finished;
    const dropped: string[] = [];
    const kept: string[] = [];
    const s = signal();
    // Kept only once the subscription exists: before that there is no position to resume from.
    if (opts.keepSlot && created.some((c) => c.startsWith('subscription'))) {
      kept.push(...created);
      await tgt.query(`ALTER SUBSCRIPTION ${sub} DISABLE`);
    } else {
      let slotDropped = false;
      if ((await tgt.query(`SELECT 1 FROM pg_subscription WHERE subname = $1`, [name])).rows.length > 0) {
        try {
          await tgt.query(`DROP SUBSCRIPTION ${sub}`); // also drops its slot on the source
          slotDropped = true;
        } catch {
          await detachAndDropSubscription(tgt, sub); // the target cannot reach the source: the slot is dropped from here
        }
        dropped.push(`subscription ${name}`);
      }
      if ((await dropSlot(src, name)) || slotDropped) dropped.push(`slot ${name}`);
      await src.query(`DROP PUBLICATION IF EXISTS ${quoteIdent(name)}`);
      if (created.some((c) => c.startsWith('publication'))) dropped.push(`publication ${name}`);
    }
    if (s) {
      const kept_ = kept.length > 0;
      io.onEvent({
        event: 'stopped',
        time: now(),
        signal: s,
        dropped,
        kept,
        ...(kept_
          ? {
              resume: `run the same command again (it re-enables subscription ${name} and resumes where it stopped), or on ${targetName}: ALTER SUBSCRIPTION ${sub} ENABLE`,
              drop: [`on ${targetName}: DROP SUBSCRIPTION ${sub}; (also drops slot ${name} on ${sourceName})`, `on ${sourceName}: DROP PUBLICATION ${quoteIdent(name)};`],
            }
          : {}),
      });
    }
    finished = { exitCode: s === 'SIGINT' ? EXIT.interrupted : EXIT.ok };
    return finished;
  }
}

/** Drop a subscription without contacting the source (its slot, if any, is left for dropSlot). */
async function detachAndDropSubscription(tgt: pg.Client, sub: string): Promise<void> {
  await tgt.query(`ALTER SUBSCRIPTION ${sub} DISABLE`);
  await tgt.query(`ALTER SUBSCRIPTION ${sub} SET (slot_name = NONE)`);
  await tgt.query(`DROP SUBSCRIPTION ${sub}`);
}

/** Drop the slot once no walsender uses it (a stopped apply worker's walsender ends within moments). True if dropped. */
async function dropSlot(src: pg.Client, name: string): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    const r = await src.query<{ active: boolean }>(`SELECT active FROM pg_replication_slots WHERE slot_name = $1`, [name]);
    if (r.rows.length === 0) return false;
    if (!r.rows[0]!.active) {
      await src.query(`SELECT pg_drop_replication_slot($1)`, [name]);
      return true;
    }
    if (i === 20) await src.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active`, [name]);
    await sleep(100);
  }
  throw new MigrateError('subscription_slot_busy', `replication slot ${name} on the source is still in use`, { hint: `drop it by hand once idle: SELECT pg_drop_replication_slot('${name}')` });
}

function replicationConfig(s: ConnectionSettings): pg.ClientConfig {
  return { host: s.host, port: s.port, database: s.database, user: s.user, ...(s.password !== undefined ? { password: s.password } : {}), ssl: s.ssl, application_name: 'nself-migrate-watch' } as pg.ClientConfig;
}
