/**
 * applyData / verifyData. The source client is inside a REPEATABLE READ READ ONLY transaction (one snapshot);
 * the target client is inside the caller's transaction. We never BEGIN, COMMIT or ROLLBACK.
 */
import type pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { MigrateError } from '../errors.js';
import { displayName, qualify, quoteIdent, quoteLiteral, relationKey } from '../pg/quote.js';
import { fromItem, listTables, ownedSequences, readSequences, writeSequences, type TableInfo } from './catalog.js';
import { sumTables, type TableSum } from './backup.js';
import { DEFER_INDEXES_ROWS, DEFER_KEYS_ROWS, oneByOne, replaceRows } from './load.js';
import { BATCH_MAX_BYTES, BatchStatementError, copyInMany, copyOutMany, groupBatches, SMALL_TABLE_BYTES, type CopyOutResult } from './batch.js';
import { applyDeltaTable, type DeltaState } from './delta.js';
import { names, noteSourceChecksum, pairColumns, pairTables, sourceChecksumFor } from './plan.js';
import { checksums, hashedColumns, withPinned, wrapError } from './session.js';
import { cancelBackend, pump, RowCounter } from './stream.js';
import type { DataPlan, DataProgress, DataScope, DataTablePlan, DataTableResult } from './types.js';

interface Item {
  plan: DataTablePlan;
  src: TableInfo;
  tgt: TableInfo;
  format: 'binary' | 'text';
  /** Known empty under the caller's lock: not truncated, so loaded without FREEZE (applyData's opts.empty). */
  keptEmpty?: boolean;
}

async function resolve(source: pg.ClientBase, target: pg.ClientBase, tables: DataTablePlan[]): Promise<Item[]> {
  const [s, t] = await Promise.all([listTables(source), listTables(target)]);
  return tables.map((p) => {
    const src = s.get(relationKey(p.schema, p.name));
    const tgt = t.get(relationKey(p.schema, p.name));
    if (!src || !tgt) {
      throw new MigrateError('data_table_missing', `table ${p.table} no longer exists in the ${src ? 'target' : 'source'}`, { hint: 'plan again (the schema changed after the plan was computed)' });
    }
    return { plan: p, src, tgt, format: p.format ?? pairColumns(src, tgt).format };
  });
}

const PROGRESS_EVERY_MS = 200;

/** Read-ahead: COPY output read but not yet loaded, at most (plus the batch being read). */
const READ_AHEAD_BYTES = 32 << 20;

/** What the load does, in order: a small-table batch (loaded in one query) or one table (streamed, or sync's delta). */
type Unit = { batch: Item[] } | { one: Item };

function unitsOf(items: Item[], streamed: (it: Item) => boolean): Unit[] {
  const out: Unit[] = [];
  let run: Item[] = [];
  const flush = () => {
    for (const batch of groupBatches(run, (it) => it.src.bytes)) out.push({ batch });
    run = [];
  };
  for (const it of items) {
    if (streamed(it) || it.src.bytes > SMALL_TABLE_BYTES) {
      flush();
      out.push({ one: it });
    } else run.push(it);
  }
  flush();
  return out;
}

const sourceCopy = (it: Item) => `COPY (SELECT ${it.plan.columns.map(quoteIdent).join(', ')} FROM ${fromItem(it.src)}) TO STDOUT (FORMAT ${it.format})`;
// FREEZE: the table was truncated in this transaction, so its rows can be loaded frozen (no later hint-bit
// writes; the verify scan reads them faster). Not allowed on partitioned tables, nor on a table not truncated.
const targetCopy = (it: Item) => `COPY ${qualify(it.tgt.schema, it.tgt.name)} (${it.plan.columns.map(quoteIdent).join(', ')}) FROM STDIN (FORMAT ${it.format}${it.tgt.relkind === 'r' && !it.keptEmpty ? ', FREEZE' : ''})`;

async function readBatch(client: pg.ClientBase, items: Item[]): Promise<CopyOutResult> {
  try {
    return await copyOutMany(client, items.map(sourceCopy), BATCH_MAX_BYTES);
  } catch (e) {
    const failed = e instanceof BatchStatementError ? [items[e.index]!] : items;
    throw wrapError('data_copy_failed', `reading ${names(failed.map((it) => it.plan.table))} from the source failed`, e instanceof BatchStatementError ? e.cause : e, 'nothing was changed: the target transaction is rolled back');
  }
}

/**
 * Reads the small-table batches on a second source connection (same snapshot) while the target loads the
 * batches before them, at most READ_AHEAD_BYTES ahead. One batch in flight at a time: stop() waits for it.
 */
class ReadAhead {
  private readonly slots: Array<{ p: Promise<CopyOutResult>; resolve: (r: CopyOutResult) => void; reject: (e: unknown) => void }>;
  private buffered = 0;
  private wake: (() => void) | undefined;
  private stopped = false;
  private readonly finished: Promise<void>;
  constructor(private readonly client: pg.ClientBase, batches: Item[][]) {
    this.slots = batches.map(() => {
      let resolve!: (r: CopyOutResult) => void;
      let reject!: (e: unknown) => void;
      const p = new Promise<CopyOutResult>((res, rej) => ((resolve = res), (reject = rej)));
      p.catch(() => {}); // taken (and its failure reported) in order, or never after a failure before it
      return { p, resolve, reject };
    });
    this.finished = this.run(batches);
  }
  private async run(batches: Item[][]): Promise<void> {
    let i = 0;
    try {
      for (; i < batches.length; i++) {
        while (!this.stopped && this.buffered >= READ_AHEAD_BYTES) await new Promise<void>((r) => (this.wake = r));
        if (this.stopped) break;
        const r = await readBatch(this.client, batches[i]!);
        this.buffered += r.overflow ? 0 : r.bytes;
        this.slots[i]!.resolve(r);
      }
    } catch (e) {
      this.slots[i++]!.reject(e); // its transaction is aborted now: nothing more is read here
    }
    for (; i < this.slots.length; i++) this.slots[i]!.reject(new Error('reading ahead stopped'));
  }
  take(i: number): Promise<CopyOutResult> {
    return this.slots[i]!.p;
  }
  release(r: CopyOutResult): void {
    this.buffered -= r.overflow ? 0 : r.bytes;
    this.wake?.();
  }
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.finished;
  }
}

function showProgress(onProgress: ((p: DataProgress) => void) | undefined, p: DataProgress): void {
  try {
    onProgress?.(p);
  } catch {
    // a failing progress display must not break (or crash) the copy
  }
}

async function loadBatch(target: pg.ClientBase, items: Item[], read: CopyOutResult, onProgress?: (p: DataProgress) => void): Promise<DataTableResult[]> {
  const t0 = performance.now();
  let rows: number[];
  try {
    rows = await copyInMany(target, items.map(targetCopy), read.data);
  } catch (e) {
    const failed = e instanceof BatchStatementError ? [items[e.index]!] : items;
    throw wrapError('data_copy_failed', `copying ${names(failed.map((it) => it.plan.table))} failed`, e instanceof BatchStatementError ? e.cause : e, 'nothing was changed: the target transaction is rolled back');
  }
  // One query loaded them all: each table is shown with an equal share of its time.
  const ms = Math.round((performance.now() - t0) / items.length);
  return items.map((it, i) => {
    if (rows[i] !== read.rows[i]) {
      throw new MigrateError('data_copy_failed', `copying ${it.plan.table}: the source sent ${read.rows[i]} row(s), the target took ${rows[i]}`, { hint: 'nothing was changed: the target transaction is rolled back; please report this' });
    }
    const bytes = read.data[i]!.length;
    showProgress(onProgress, { table: it.plan.table, rows: rows[i]!, totalRows: it.plan.sourceRows, bytes, elapsedMs: ms, done: true });
    return { table: it.plan.table, rowsBefore: it.plan.targetRows, rowsAfter: rows[i]!, bytes, ms };
  });
}

/**
 * `opts.delta` (sync): the tables prepared by prepareDelta get only their differing rows written (in place, not
 * emptied); the others are replaced whole. Both inside one foreign-key / trigger scope (load.ts).
 * `opts.deferIndexesRows`: tables loaded with at least this many rows get their secondary indexes built after the
 * load (load.ts; default DEFER_INDEXES_ROWS); `opts.deferKeysRows` likewise their primary key and unique
 * constraints (default DEFER_KEYS_ROWS).
 * `opts.readAhead`: opens a second source connection inside the source's snapshot (openInSnapshot); small tables
 * are then read on it while the target loads the ones before them. Without it (or if it cannot be opened) they
 * are read on the source connection, each batch right before it is loaded. This function closes it.
 * `opts.empty`: tables (relationKey) the caller counted empty under a lock that kept every other session from
 * writing to them since (migrate's backup): the small ones among them are not truncated (load.ts replaceRows).
 */
export async function applyData(source: pg.ClientBase, target: pg.ClientBase, plan: DataPlan, opts: { onProgress?: (p: DataProgress) => void; delta?: DeltaState; deferIndexesRows?: number; deferKeysRows?: number; readAhead?: () => Promise<pg.Client>; empty?: ReadonlySet<string> } = {}): Promise<DataTableResult[]> {
  const copy = plan.tables.filter((t) => t.action === 'copy');
  if (copy.length === 0) return [];
  const deltaOf = (it: Item) => opts.delta?.get(relationKey(it.plan.schema, it.plan.name));
  const items = await resolve(source, target, copy);
  // Only small tables skip the TRUNCATE (its per-relation cost is what matters for them); a large one keeps it,
  // and with it COPY FREEZE (no hint-bit writes by its first readers later).
  for (const it of items) if (!deltaOf(it) && opts.empty?.has(it.tgt.id) && it.src.bytes <= SMALL_TABLE_BYTES) it.keptEmpty = true;
  const units = unitsOf(items, (it) => !!deltaOf(it));
  const batches = units.flatMap((u) => ('batch' in u ? [u.batch] : []));
  const reader = opts.readAhead && batches.length > 1 ? await opts.readAhead().catch(() => undefined) : undefined;
  try {
    return await withPinned([source, target, ...(reader ? [reader] : [])], async () => {
      const ahead = reader ? new ReadAhead(reader, batches) : undefined;
      let results: DataTableResult[];
      try {
        results = await replaceRows(
          target,
          items.map((it) => ({ ...it, oid: it.tgt.oid, schema: it.tgt.schema, name: it.tgt.name, relkind: it.tgt.relkind })),
          async () => {
            const done = new Map<Item, DataTableResult>();
            // sync: a table replaced whole says so beside those written by delta
            const whole = (it: Item, r: DataTableResult) => done.set(it, opts.delta ? { ...r, mode: 'replace' } : r);
            let b = 0;
            for (const u of units) {
              if ('one' in u) {
                const it = u.one;
                const d = deltaOf(it);
                if (!d) {
                  whole(it, await copyTable(source, target, it, opts.onProgress));
                  continue;
                }
                const t0 = performance.now();
                const n = await applyDeltaTable(target, d);
                const rowsAfter = d.rowsBefore + n.inserted - n.deleted;
                done.set(it, { table: it.plan.table, rowsBefore: d.rowsBefore, rowsAfter, bytes: d.bytes, ms: Math.round(performance.now() - t0), mode: 'delta', ...n });
                continue;
              }
              const read = ahead ? await ahead.take(b) : await readBatch(source, u.batch);
              b++;
              try {
                // Past BATCH_MAX_BYTES nothing was kept: these tables stream one by one.
                const rs = read.overflow ? await oneByOne((it: Item) => copyTable(source, target, it, opts.onProgress))(u.batch) : await loadBatch(target, u.batch, read, opts.onProgress);
                u.batch.forEach((it, i) => whole(it, rs[i]!));
              } finally {
                ahead?.release(read);
              }
            }
            return items.map((it) => done.get(it)!);
          },
          {
            keep: (it) => !!deltaOf(it),
            deferIndexes: (it) => it.plan.sourceRows >= (opts.deferIndexesRows ?? DEFER_INDEXES_ROWS),
            deferKeys: (it) => it.plan.sourceRows >= (opts.deferKeysRows ?? DEFER_KEYS_ROWS),
            empty: (it) => !!it.keptEmpty,
          },
        );
      } finally {
        await ahead?.stop();
      }
      items.forEach((it, i) => {
        if (provenByCopy(it, results[i])) PROVEN.add(results[i]!);
      });
      try {
        await copySequences(source, target, items);
      } catch (e) {
        throw wrapError('data_sequence_failed', 'setting the sequences of the copied tables to the source values', e);
      }
      return results;
    });
  } finally {
    await reader?.end().catch(() => {});
  }
}

/**
 * A new connection (from `open`) inside a REPEATABLE READ READ ONLY transaction that reads the exported
 * snapshot `snapshot` (pg_export_snapshot() of a transaction still open).
 */
export async function openInSnapshot(open: () => Promise<pg.Client>, snapshot: string): Promise<pg.Client> {
  const c = await open();
  try {
    await c.query(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT ${quoteLiteral(snapshot)}`);
    return c;
  } catch (e) {
    await c.end().catch(() => {});
    throw e;
  }
}

async function copyTable(source: pg.ClientBase, target: pg.ClientBase, it: Item, onProgress?: (p: DataProgress) => void): Promise<DataTableResult> {
  const t0 = performance.now();
  // Rows are counted as they pass only for the progress display (parsing every field costs ~0.15 s of CPU per
  // million rows). Without it, the rows the target took ("COPY n") are checked against the source snapshot's
  // count by verifyData (provenByCopy), which checksums the table when they differ.
  const counter = new RowCounter(it.format === 'binary', { rows: !!onProgress });
  const total = it.plan.sourceRows;
  let last = 0;
  const report = (done: boolean) => showProgress(onProgress, { table: it.plan.table, rows: counter.rows, totalRows: total, bytes: counter.bytes, elapsedMs: Math.round(performance.now() - t0), done });
  const sink = target.query(copyStreams.from(targetCopy(it)));
  const src = source.query(copyStreams.to(sourceCopy(it)));
  report(false);
  try {
    await pump(src, sink, {
      onData: (chunk) => {
        counter.push(chunk);
        const now = performance.now();
        if (onProgress && now - last >= PROGRESS_EVERY_MS) {
          last = now;
          report(false);
        }
      },
      abortSource: () => cancelBackend(source),
    });
  } catch (e) {
    throw wrapError('data_copy_failed', `copying ${it.plan.table} failed`, e, 'nothing was changed: the target transaction is rolled back');
  }
  report(true);
  if (onProgress && counter.rows !== sink.rowCount) {
    throw new MigrateError('data_copy_failed', `copying ${it.plan.table}: the source sent ${counter.rows} row(s), the target took ${sink.rowCount}`, { hint: 'nothing was changed: the target transaction is rolled back; please report this' });
  }
  return { table: it.plan.table, rowsBefore: it.plan.targetRows, rowsAfter: sink.rowCount, bytes: counter.bytes, ms: Math.round(performance.now() - t0) };
}

/** Sequences owned by copied tables' columns (serial and identity) take the source's last_value/is_called. */
async function copySequences(source: pg.ClientBase, target: pg.ClientBase, items: Item[]): Promise<void> {
  const [ss, ts] = await Promise.all([ownedSequences(source, items.map((i) => i.src.oid)), ownedSequences(target, items.map((i) => i.tgt.oid))]);
  if (ss.length === 0 || ts.length === 0) return;
  const keyOf = (byOid: Map<number, Item>, oid: number, col: string) => `${relationKey(byOid.get(oid)!.plan.schema, byOid.get(oid)!.plan.name)}\u0000${col}`;
  const srcByOid = new Map(items.map((i) => [i.src.oid, i]));
  const tgtByOid = new Map(items.map((i) => [i.tgt.oid, i]));
  const srcStates = await readSequences(source, ss);
  const value = new Map(ss.map((s, i) => [keyOf(srcByOid, s.tableOid, s.column), srcStates[i]]));
  const writes = ts.flatMap((t) => {
    const v = value.get(keyOf(tgtByOid, t.tableOid, t.column));
    return v ? [{ schema: t.schema, name: t.name, lastValue: v.lastValue, isCalled: v.isCalled }] : [];
  });
  await writeSequences(target, writes);
}

/**
 * sync --watch: the sequences owned by the columns of the in-scope tables (serial, identity) take the source's
 * values. Outside any transaction of ours (setval is not transactional anyway).
 */
export async function followSequences(source: pg.ClientBase, target: pg.ClientBase, scope?: DataScope): Promise<void> {
  const { pairs } = await pairTables(source, target, scope);
  const items: Item[] = pairs.map((p) => ({ plan: { table: p.display, schema: p.src.schema, name: p.src.name, columns: p.columns, sourceRows: 0, targetRows: 0, equal: false, action: 'copy' }, src: p.src, tgt: p.tgt, format: p.format }));
  if (items.length > 0) await copySequences(source, target, items);
}

/**
 * The row versions (session.ts) of the source tables the plan copies, in the copy's snapshot (`snapshot`:
 * pg_export_snapshot() of the source transaction), on a second source connection while the copy streams: with the
 * target's after the load they are what a later run needs to know the pair is still equal (known.ts). A scan that
 * reads no value: a fraction of a checksum. The returned `done` never rejects — without them (no second
 * connection, …) nothing is recorded and the next run compares by checksum. `stop` cancels the work.
 */
export function versionsAside(open: () => Promise<pg.Client>, snapshot: string, plan: DataPlan): { done: Promise<Map<string, TableSum>>; stop: () => Promise<void> } {
  const want = plan.tables.filter((t) => t.action === 'copy');
  const found = new Map<string, TableSum>();
  if (want.length === 0) return { done: Promise.resolve(found), stop: async () => {} };
  let side: pg.Client | undefined;
  let stopped = false;
  const done = (async () => {
    side = await openInSnapshot(open, snapshot);
    if (stopped) return found;
    const states = await sumTables(side, want.map((t) => ({ schema: t.schema, name: t.name, columns: t.columns })), { versionsOnly: true });
    // Same snapshot as the plan: a count that differs would mean it is not; then keep nothing of that table.
    const planned = new Map(want.map((t) => [relationKey(t.schema, t.name), t.sourceRows]));
    for (const s of states) if (s.rows === planned.get(relationKey(s.schema, s.name))) found.set(relationKey(s.schema, s.name), s);
    return found;
  })()
    .catch(() => found)
    .finally(() => side?.end().catch(() => {}));
  return {
    done,
    stop: async () => {
      stopped = true;
      if (side) cancelBackend(side);
      await done;
    },
  };
}

/**
 * Whether a table's load proves it equal to the source without reading it back: it was replaced whole by a
 * binary COPY (same column types on both sides, all of them built-in, whose binary form round-trips exactly),
 * with user triggers off (load.ts), and the target took as many rows as the source snapshot holds. Otherwise
 * (text COPY: the target's type conversion may change values; a delta write; a type from an extension, whose
 * receive function might not round-trip between versions) the target is checksummed.
 */
function provenByCopy(it: Item, loaded?: DataTableResult): boolean {
  if (!loaded || loaded.mode === 'delta' || it.format !== 'binary' || loaded.rowsAfter !== it.plan.sourceRows) return false;
  const cols = new Set(it.plan.columns);
  return [it.src, it.tgt].every((t) => t.columns.every((c) => !cols.has(c.name) || c.typeId.startsWith('pg_catalog.')));
}

/** Results of applyData whose table provenByCopy proves equal to the source (verifyData reads no catalog for them). */
const PROVEN = new WeakSet<DataTableResult>();

export interface DataVerification {
  /** Tables proven by their binary COPY's row count (see provenByCopy). */
  byCopy: number;
  /** Tables whose target checksum was computed and compared with the source's. */
  byChecksum: number;
}

/**
 * After loading: every copied table equals the source snapshot's — by count + checksum of the target (the
 * source's checksum is reused from the plan when it has one, else computed at the same time on the source), or,
 * for tables `opts.loaded` shows were loaded by a plain binary COPY of built-in types, by the COPY's row count.
 * Source checksums computed here are stored in the plan (`sourceChecksum`).
 */
export async function verifyData(source: pg.ClientBase, target: pg.ClientBase, plan: DataPlan, opts: { loaded?: DataTableResult[] } = {}): Promise<DataVerification> {
  const copy = plan.tables.filter((t) => t.action === 'copy');
  if (copy.length === 0) return { byCopy: 0, byChecksum: 0 };
  const loaded = new Map((opts.loaded ?? []).map((r) => [r.table, r]));
  // Proven by applyData (same plan, same tables): nothing to read for them, not even the catalog.
  const unproven = copy.filter((t) => {
    const r = loaded.get(t.table);
    return !(r && PROVEN.has(r) && r.rowsAfter === t.sourceRows);
  });
  if (unproven.length === 0) return { byCopy: copy.length, byChecksum: 0 };
  return withPinned([source, target], async () => {
    const items = await resolve(source, target, copy);
    const check = items.filter((it) => !provenByCopy(it, loaded.get(it.plan.table)));
    const bad: Array<{ table: string; sourceRows: number; targetRows: number; sourceChecksum: string; targetChecksum: string }> = [];
    // The source snapshot has not moved since planning: its checksums are reused when the plan carries them
    // (computed the same way: the schema step may have changed a column's type since).
    const hashed = new Map(check.map((it) => [it, hashedColumns(it.src.columns, it.tgt.columns, it.plan.columns)]));
    const srcNeeded = check.filter((it) => sourceChecksumFor(it.plan, hashed.get(it)!) === undefined);
    const sum = (client: pg.ClientBase, list: Item[], side: 'src' | 'tgt') =>
      checksums(client, list.map((it) => ({ from: fromItem(it[side]), columns: it.plan.columns, bytes: it.src.bytes, hashed: hashed.get(it) })), {
        onError: (idx, e) => wrapError('data_checksum_failed', `reading ${names(idx.map((i) => list[i].plan.table))} in the ${side === 'src' ? 'source' : 'target'} to verify the copy`, e),
      });
    const [a, b] = await Promise.all([sum(source, srcNeeded, 'src'), sum(target, check, 'tgt')]);
    srcNeeded.forEach((it, i) => noteSourceChecksum(it.plan, a[i].sum, hashed.get(it)!));
    check.forEach((it, i) => {
      const s = { rows: it.plan.sourceRows, sum: it.plan.sourceChecksum! };
      if (s.rows !== b[i].rows || s.sum !== b[i].sum) bad.push({ table: it.plan.table, sourceRows: s.rows, targetRows: b[i].rows, sourceChecksum: s.sum, targetChecksum: b[i].sum });
    });
    if (bad.length > 0) {
      const first = bad[0];
      throw new MigrateError('data_verify_failed', `after copying, ${bad.length} table(s) differ from the source: ${first.table} (${first.sourceRows} row(s) in the source, ${first.targetRows} in the target${first.sourceRows === first.targetRows ? ', different contents' : ''})${bad.length > 1 ? ` and ${bad.slice(1).map((x) => x.table).join(', ')}` : ''}`, {
        hint: 'nothing was changed (rolled back); a column type that converts values (e.g. numeric scale, varchar length) changes them in the copy',
        details: bad,
      });
    }
    return { byCopy: items.length - check.length, byChecksum: check.length };
  });
}

/**
 * Materialized views over tables whose rows were replaced would be stale: refresh (in the caller's transaction)
 * every populated one that depends on them, directly or through other materialized views, dependencies first.
 * Returns their display names.
 */
export async function refreshDependentMatviews(target: pg.ClientBase, tables: Array<{ schema: string; name: string }>): Promise<string[]> {
  if (tables.length === 0) return [];
  const r = await target.query<{ schema: string; name: string; depth: number }>(
    `WITH RECURSIVE dep(oid, depth) AS (
       SELECT to_regclass(x)::oid, 0 FROM unnest($1::text[]) AS x
       UNION
       SELECT m.oid, dep.depth + 1
         FROM dep
         JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = dep.oid AND d.classid = 'pg_rewrite'::regclass
         JOIN pg_rewrite rw ON rw.oid = d.objid
         JOIN pg_class m ON m.oid = rw.ev_class AND m.relkind = 'm' AND m.oid <> dep.oid
        WHERE dep.depth < 50
     )
     SELECT n.nspname AS schema, c.relname AS name, max(dep.depth)::int AS depth
       FROM dep JOIN pg_class c ON c.oid = dep.oid AND c.relkind = 'm' AND c.relispopulated
       JOIN pg_namespace n ON n.oid = c.relnamespace
      GROUP BY 1, 2 ORDER BY 3, 1, 2`,
    [tables.map((t) => qualify(t.schema, t.name))],
  );
  for (const m of r.rows) {
    try {
      await target.query(`REFRESH MATERIALIZED VIEW ${qualify(m.schema, m.name)}`);
    } catch (e) {
      throw wrapError('data_refresh_failed', `refreshing the materialized view ${displayName(m.schema, m.name)} over the copied tables`, e, 'nothing was changed: the target transaction is rolled back');
    }
  }
  return r.rows.map((m) => displayName(m.schema, m.name));
}
