/**
 * Delta mode (sync): write only the rows that differ.
 *
 *   plan     planDataDelta: planData, then for each table to copy that has the same primary key on both sides,
 *            the primary-key-range comparison of diff.ts counts the rows to insert, update and delete.
 *   prepare  prepareDelta, inside the target transaction: lock the tables, find the differing key ranges again
 *            unless the plan's still hold (same source snapshot, target checksum unchanged), stage the source rows of those ranges into a temp table per table
 *            (COPY source → target), and record the keys of the target rows that will be updated or deleted
 *            (a second temp table). Nothing of the user's is written yet.
 *   backup   backup.ts saves exactly those target rows and the keys the sync inserts ("rows by key").
 *   apply    applyDeltaTable: DELETE, UPDATE, INSERT … as three set statements against the staged rows (foreign
 *            keys and user triggers are handled by load.ts around it, as for a whole-table copy).
 *
 * Tables without a primary key in common (or whose rows cannot be updated in place) are replaced whole, and
 * their plan says why. Temp tables are ON COMMIT DROP: a rolled-back sync leaves nothing behind.
 */
import type pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { qualify, quoteIdent, relationKey } from '../pg/quote.js';
import { fromItem, listTables, type TableInfo } from './catalog.js';
import { diffByKey, keySqls, type Counts, type KeySql, type Segment } from './diff.js';
import { noteSourceChecksum, pairColumns, planData } from './plan.js';
import { checksums, hashedColumns, withPinned, wrapError, type Checksum } from './session.js';
import { cancelBackend, pump } from './stream.js';
import type { DataPlan, DataScope, DataTablePlan } from './types.js';

/** Ranges, or exact keys, per statement when many differ (keeps each statement's text bounded). */
const RANGES_PER_STATEMENT = 200;
const KEYS_PER_STATEMENT = 5000;

export interface DeltaTable {
  plan: DataTablePlan;
  src: TableInfo;
  tgt: TableInfo;
  key: string[];
  sk: KeySql;
  tk: KeySql;
  ranges: Segment[];
  /** Temp table holding the source rows of the differing ranges (target column types). */
  stage: string;
  /** Temp table holding the keys of the target rows that will be updated or deleted. */
  old: string;
  format: 'binary' | 'text';
  /** Target rows when the ranges were found (under the lock), and the bytes staged from the source. */
  rowsBefore: number;
  bytes: number;
}

/** The delta tables of a run, by relationKey(schema, name). */
export type DeltaState = Map<string, DeltaTable>;

/** The key a table can be synced by, or why it cannot (then it is replaced whole). */
export function deltaKey(src: TableInfo, tgt: TableInfo, columns: string[]): string[] | string {
  if (!src.pk || !tgt.pk) return 'no primary key';
  if (src.pk.join('\u0000') !== tgt.pk.join('\u0000')) return 'the primary keys differ between the two sides';
  if (!src.pk.every((k) => columns.includes(k))) return 'a primary-key column is not copied (generated)';
  const always = tgt.columns.find((c) => c.identityAlways && columns.includes(c.name) && !src.pk!.includes(c.name));
  if (always) return `column ${always.name} is GENERATED ALWAYS AS IDENTITY (cannot be updated in place)`;
  return src.pk;
}

/**
 * What planning found for a delta table: its differing ranges, the target's checksum then, and the source's
 * snapshot. prepareDelta reuses the ranges when the source is in the same snapshot and the target's checksum has
 * not moved (one scan of the target instead of finding the ranges again: several scans of both sides).
 */
const planned = new WeakMap<DataTablePlan, { source: pg.ClientBase; snapshot: string; target: Checksum; counts: Counts; ranges: Segment[] }>();

/** The source's snapshot as text: equal twice in a REPEATABLE READ transaction, so the source has not moved. */
async function snapshotOf(source: pg.ClientBase): Promise<string> {
  return (await source.query<{ s: string }>('SELECT pg_current_snapshot()::text AS s')).rows[0].s;
}

/** planData, with each table to copy marked 'delta' (and its rows to insert/update/delete counted) or 'replace'. */
export async function planDataDelta(source: pg.ClientBase, target: pg.ClientBase, scope?: DataScope): Promise<DataPlan> {
  // Tables that can be compared by primary key are only counted here: the key-range comparison below sums them
  // anyway (a table equal on both sides costs that one pass, one that differs no whole-table checksum besides it).
  const plan = await planData(source, target, scope, { countOnly: (p) => typeof deltaKey(p.src, p.tgt, p.columns) !== 'string' });
  const copy = plan.tables.filter((t) => t.action === 'copy');
  if (copy.length === 0) return plan;
  return withPinned([source, target], async () => {
    const [s, t, snapshot] = await Promise.all([listTables(source), listTables(target), snapshotOf(source)]);
    for (const tp of copy) {
      const src = s.get(relationKey(tp.schema, tp.name))!;
      const tgt = t.get(relationKey(tp.schema, tp.name))!;
      const key = deltaKey(src, tgt, tp.columns);
      if (typeof key === 'string') {
        tp.mode = 'replace';
        tp.reason = `${key}: replaced whole; ${tp.reason}`;
        continue;
      }
      try {
        const ranges: Segment[] = [];
        const c = await diffByKey(source, target, src, tgt, key, tp.columns, { lo: null, hi: null, srcRows: tp.sourceRows, tgtRows: tp.targetRows }, ranges);
        if (c.sourceSum && c.sourceSum.rows === tp.sourceRows && tp.sourceChecksum === undefined) noteSourceChecksum(tp, c.sourceSum.sum, hashedColumns(src.columns, tgt.columns, tp.columns));
        if (c.onlyInSource + c.onlyInTarget + c.different === 0) {
          // only counted by planData: the comparison found it equal
          Object.assign(tp, { equal: true, action: 'skip', reason: 'identical' });
          plan.totals.toCopy--;
          continue;
        }
        const sum = c.targetSum ?? (await checksums(target, [{ from: fromItem(tgt), columns: tp.columns, hashed: hashedColumns(src.columns, tgt.columns, tp.columns) }]))[0];
        planned.set(tp, { source, snapshot, target: sum, counts: c, ranges });
        tp.mode = 'delta';
        tp.delta = { insert: c.onlyInSource, update: c.different, delete: c.onlyInTarget };
      } catch (e) {
        throw wrapError('data_diff_failed', `comparing the rows of ${tp.table} by primary key`, e);
      }
    }
    return plan;
  });
}

/** Mark every table of a delta plan to be replaced whole (e.g. the same run changes the schema). */
export function replaceWhole(plan: DataPlan, why: string): void {
  for (const t of plan.tables) {
    if (t.mode !== 'delta') continue;
    t.mode = 'replace';
    delete t.delta;
    t.reason = `${why}: replaced whole; ${t.reason ?? ''}`;
  }
}

/** Segments in groups of at most RANGES_PER_STATEMENT ranges and KEYS_PER_STATEMENT exact keys (one segment's keys are split). */
function chunks(segments: Segment[]): Segment[][] {
  const out: Segment[][] = [];
  let part: Segment[] = [];
  let keys = 0;
  const flush = () => {
    if (part.length) out.push(part);
    part = [];
    keys = 0;
  };
  for (const seg of segments) {
    for (let i = 0; i < (seg.keys?.length ?? 1); i += KEYS_PER_STATEMENT) {
      const piece = seg.keys ? { ...seg, keys: seg.keys.slice(i, i + KEYS_PER_STATEMENT) } : seg;
      const weight = piece.keys?.length ?? 0;
      if (part.length >= RANGES_PER_STATEMENT || keys + weight > KEYS_PER_STATEMENT) flush();
      part.push(piece);
      keys += weight;
    }
  }
  flush();
  return out;
}

function keyJoin(key: string[], a: string, b: string): string {
  return key.map((k) => `${a}.${quoteIdent(k)} = ${b}.${quoteIdent(k)}`).join(' AND ');
}

function rowText(columns: string[], alias: string): string {
  return `ROW(${columns.map((c) => `${alias}.${quoteIdent(c)}`).join(', ')})::text`;
}

/**
 * Inside the target transaction (source: its snapshot): lock the delta tables against writers, find the differing
 * key ranges, stage the source rows of those ranges and note the keys of the target rows that will change.
 * Updates each table's `delta` counts to what will be written.
 */
export async function prepareDelta(source: pg.ClientBase, target: pg.ClientBase, plan: DataPlan): Promise<DeltaState> {
  const state: DeltaState = new Map();
  const wanted = plan.tables.filter((t) => t.action === 'copy' && t.mode === 'delta');
  if (wanted.length === 0) return state;
  return withPinned([source, target], async () => {
    const [s, t] = await Promise.all([listTables(source), listTables(target)]);
    const items = wanted.map((tp, i) => {
      const src = s.get(relationKey(tp.schema, tp.name));
      const tgt = t.get(relationKey(tp.schema, tp.name));
      const key = src && tgt ? deltaKey(src, tgt, tp.columns) : 'the table is gone';
      if (typeof key === 'string') throw wrapError('data_plan_changed', `${tp.table} can no longer be synced by primary key (${key})`, new Error(key), 'plan again: nothing was changed');
      return { tp, src: src!, tgt: tgt!, key, i };
    });
    try {
      // Writers must not slip rows in between this comparison and the sync (readers may go on).
      await target.query(`LOCK TABLE ${items.map((x) => qualify(x.tgt.schema, x.tgt.name)).join(', ')} IN EXCLUSIVE MODE`);
    } catch (e) {
      throw wrapError('data_prepare_failed', 'locking the tables to sync', e, 'nothing was changed: the target transaction is rolled back');
    }
    for (const { tp, src, tgt, key, i } of items) {
      const cols = tp.columns;
      const { sk, tk } = keySqls(src, tgt, key);
      const ranges: Segment[] = [];
      const d: DeltaTable = { plan: tp, src, tgt, key, sk, tk, ranges, stage: `nself_sync_new_${i}`, old: `nself_sync_old_${i}`, format: tp.format ?? pairColumns(src, tgt).format, rowsBefore: 0, bytes: 0 };
      try {
        // The target may have changed since planning (the source cannot, in its snapshot): under the lock, reuse
        // the plan's ranges if the target's checksum is still the plan's, else find them again.
        const prior = planned.get(tp);
        const [now] = await checksums(target, [{ from: fromItem(tgt), columns: cols, hashed: hashedColumns(src.columns, tgt.columns, cols) }]);
        d.rowsBefore = now.rows;
        let c: Counts;
        if (prior && prior.source === source && prior.target.rows === now.rows && prior.target.sum === now.sum && prior.snapshot === (await snapshotOf(source))) {
          ranges.push(...prior.ranges);
          c = prior.counts;
        } else {
          const n = await source.query(`SELECT count(*)::int8 AS n FROM ${fromItem(src)}`);
          c = await diffByKey(source, target, src, tgt, key, cols, { lo: null, hi: null, srcRows: Number(n.rows[0].n), tgtRows: d.rowsBefore }, ranges);
        }
        tp.delta = { insert: c.onlyInSource, update: c.different, delete: c.onlyInTarget };
        const list = cols.map(quoteIdent).join(', ');
        await target.query(
          `CREATE TEMP TABLE ${quoteIdent(d.stage)} ON COMMIT DROP AS SELECT ${list} FROM ${fromItem(tgt)} WITH NO DATA;
           CREATE TEMP TABLE ${quoteIdent(d.old)} ON COMMIT DROP AS SELECT ${key.map(quoteIdent).join(', ')} FROM ${fromItem(tgt)} WITH NO DATA`,
        );
        for (const part of chunks(ranges)) {
          const srcWhere = part.map((r) => sk.literalRange(r)).join(' OR ');
          const sink = target.query(copyStreams.from(`COPY ${quoteIdent(d.stage)} (${list}) FROM STDIN (FORMAT ${d.format})`));
          const from = source.query(copyStreams.to(`COPY (SELECT ${list} FROM ${fromItem(src)} WHERE ${srcWhere}) TO STDOUT (FORMAT ${d.format})`));
          await pump(from, sink, { onData: (b) => (d.bytes += b.length), abortSource: () => cancelBackend(source) });
        }
        await target.query(`ANALYZE ${quoteIdent(d.stage)}`);
        for (const part of chunks(ranges)) {
          const tgtWhere = part.map((r) => tk.literalRange(r)).join(' OR ');
          await target.query(
            `INSERT INTO ${quoteIdent(d.old)} SELECT ${key.map((k) => `x.${quoteIdent(k)}`).join(', ')} FROM ${fromItem(tgt)} AS x
              WHERE (${tgtWhere}) AND NOT EXISTS (SELECT 1 FROM ${quoteIdent(d.stage)} AS s WHERE ${keyJoin(key, 's', 'x')} AND ${rowText(cols, 's')} = ${rowText(cols, 'x')})`,
          );
        }
        await target.query(`ANALYZE ${quoteIdent(d.old)}`);
      } catch (e) {
        throw wrapError('data_copy_failed', `staging the differing rows of ${tp.table}`, e, 'nothing was changed: the target transaction is rolled back');
      }
      state.set(relationKey(tp.schema, tp.name), d);
    }
    return state;
  });
}

/** What backup.ts needs to save a delta table's rows by key. */
export function keyedBackups(state: DeltaState): Map<string, { key: string[]; old: string; stage: string }> {
  return new Map([...state].map(([k, d]) => [k, { key: d.key, old: d.old, stage: d.stage }]));
}

/**
 * The three set statements (inside load.ts's foreign-key / trigger handling): delete the target rows whose keys
 * the source no longer has, update those whose contents differ, insert the source rows the target lacks.
 */
export async function applyDeltaTable(target: pg.ClientBase, d: DeltaTable): Promise<{ inserted: number; updated: number; deleted: number }> {
  const t = qualify(d.tgt.schema, d.tgt.name);
  const only = d.tgt.relkind === 'r' ? 'ONLY ' : '';
  const cols = d.plan.columns;
  const stage = quoteIdent(d.stage);
  const old = quoteIdent(d.old);
  const set = cols.filter((c) => !d.key.includes(c));
  try {
    const del = await target.query(
      `DELETE FROM ${only}${t} AS x USING ${old} AS o WHERE ${keyJoin(d.key, 'x', 'o')} AND NOT EXISTS (SELECT 1 FROM ${stage} AS s WHERE ${keyJoin(d.key, 's', 'x')})`,
    );
    const upd =
      set.length === 0
        ? { rowCount: 0 }
        : await target.query(
            `UPDATE ${only}${t} AS x SET ${set.map((c) => `${quoteIdent(c)} = s.${quoteIdent(c)}`).join(', ')} FROM ${stage} AS s
              WHERE ${keyJoin(d.key, 'x', 's')} AND ${rowText(cols, 'x')} IS DISTINCT FROM ${rowText(cols, 's')}`,
          );
    const ins = await target.query(
      `INSERT INTO ${t} (${cols.map(quoteIdent).join(', ')}) OVERRIDING SYSTEM VALUE
       SELECT ${cols.map((c) => `s.${quoteIdent(c)}`).join(', ')} FROM ${stage} AS s WHERE NOT EXISTS (SELECT 1 FROM ${only}${t} AS x WHERE ${keyJoin(d.key, 'x', 's')})`,
    );
    await target.query(`DROP TABLE ${stage}, ${old}`);
    return { inserted: ins.rowCount ?? 0, updated: upd.rowCount ?? 0, deleted: del.rowCount ?? 0 };
  } catch (e) {
    throw wrapError('data_sync_failed', `writing the differing rows of ${d.plan.table}`, e, 'nothing was changed: the target transaction is rolled back');
  }
}
