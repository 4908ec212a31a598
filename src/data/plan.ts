/**
 * planData: which tables to copy. Equal tables (same row count and same order-independent checksum, computed
 * inside PostgreSQL over the common columns) are skipped.
 */
import type pg from 'pg';
import { qualify, quoteIdent } from '../pg/quote.js';
import { fromItem, largeObjectCount, listTables, type TableInfo } from './catalog.js';
import { inScope } from './scope.js';
import { columnsSignature, observedEqual, type KnownTables } from './known.js';
import { checksums, hashedColumns, withPinned, wrapError, type Checksum, type HashedColumn } from './session.js';
import type { DataPlan, DataScope, DataTablePlan, DataTableRef, LargeObjects } from './types.js';

export interface TablePair {
  /** relationKey(schema, name) */
  id: string;
  /** displayName(schema, name) */
  display: string;
  src: TableInfo;
  tgt: TableInfo;
  columns: string[];
  format: 'binary' | 'text';
  formatReason?: string;
}

/** Columns copied = target columns that are not generated there and exist in the source; the COPY format. */
export function pairColumns(src: TableInfo, tgt: TableInfo): Pick<TablePair, 'columns' | 'format' | 'formatReason'> {
  const sc = new Map(src.columns.map((c) => [c.name, c]));
  const cols = tgt.columns.filter((c) => !c.generated && sc.has(c.name));
  const differs = cols.find((c) => sc.get(c.name)!.typeId !== c.typeId);
  if (differs) {
    return { columns: cols.map((c) => c.name), format: 'text', formatReason: `column ${differs.name} is ${sc.get(differs.name)!.typeSql} in the source and ${differs.typeSql} in the target: copied as text` };
  }
  const np = cols.find((c) => !c.portable || !sc.get(c.name)!.portable);
  if (np) return { columns: cols.map((c) => c.name), format: 'text', formatReason: `column ${np.name} (${np.typeSql}) has no database-independent binary form: copied as text` };
  return { columns: cols.map((c) => c.name), format: 'binary' };
}

/** The plan's reference to a table. */
export function tableRef(t: TableInfo): DataTableRef {
  return { table: t.display, schema: t.schema, name: t.name };
}

export async function pairTables(
  source: pg.ClientBase,
  target: pg.ClientBase,
  scope?: DataScope,
  /** also count each side's large objects (`largeObjects`: only when either has any) */
  withLargeObjects = false,
): Promise<{ pairs: TablePair[]; onlyInSource: DataTableRef[]; onlyInTarget: DataTableRef[]; largeObjects?: LargeObjects }> {
  const side = async (c: pg.ClientBase) => [await listTables(c), withLargeObjects ? await largeObjectCount(c) : 0] as const;
  const [[s, sLo], [t, tLo]] = await Promise.all([side(source), side(target)]);
  const pick = (m: Map<string, TableInfo>) => [...m.values()].filter((x) => inScope(scope, x.schema, x.name));
  const ss = pick(s);
  const ts = pick(t);
  const pairs: TablePair[] = [];
  for (const a of ss) {
    const b = t.get(a.id);
    if (b) pairs.push({ id: a.id, display: a.display, src: a, tgt: b, ...pairColumns(a, b) });
  }
  return {
    pairs,
    onlyInSource: ss.filter((x) => !t.has(x.id)).map(tableRef),
    onlyInTarget: ts.filter((x) => !s.has(x.id)).map(tableRef),
    ...(sLo + tLo > 0 ? { largeObjects: { source: sLo, target: tLo } } : {}),
  };
}

/** The pair's compared columns with their types when row versions can stand for them on both sides (known.ts). */
function versionsSignature(p: TablePair, columns: string[]): string | undefined {
  const sig = columnsSignature(p.src, columns);
  return sig !== undefined && sig === columnsSignature(p.tgt, columns) ? sig : undefined;
}

/** A pair's comparison: both sides' count and checksum, or `known`: both sides still in a state known equal. */
export interface PairSums { src: Checksum; tgt: Checksum; known?: boolean }

/**
 * Count + checksum of every pair, both sides at once (separate connections, in real use separate servers), in
 * batched queries (session.ts checksums). A pair whose sizes on disk (pg_table_size) differ by more than 20 %
 * (or that is empty on a side) is counted first and checksummed only when the counts agree: an empty target,
 * or one with other row counts, costs a count, not a checksum; sizes only choose the order of the work. `sum`
 * is '' where it was not computed (the counts differ, so the tables differ anyway).
 * `known` (known.ts): a pair recorded equal is first compared by its row versions alone; when both sides are still
 * in the recorded states it is equal without a checksum. Checksummed pairs of built-in types get their row versions
 * summed in the same scan (`versions`), for the caller to record.
 */
export async function checksumPairs(
  source: pg.ClientBase,
  target: pg.ClientBase,
  pairs: TablePair[],
  columnsOf: (p: TablePair) => string[] = (p) => p.columns,
  /** Pairs only counted, never checksummed (the caller compares them another way). */
  countOnly: (p: TablePair) => boolean = () => false,
  known?: KnownTables,
): Promise<PairSums[]> {
  const alike = (p: TablePair) => !countOnly(p) && p.src.bytes > 0 && p.tgt.bytes > 0 && Math.min(p.src.bytes, p.tgt.bytes) / Math.max(p.src.bytes, p.tgt.bytes) >= 0.8;
  const sides = async (list: TablePair[], how: 'count' | 'versions' | 'sum') => {
    const run = (client: pg.ClientBase, side: 'src' | 'tgt') =>
      checksums(
        client,
        list.map((p) => ({
          from: fromItem(p[side]),
          columns: columnsOf(p),
          bytes: Math.max(p.src.bytes, p.tgt.bytes),
          versions: how === 'sum' && versionsSignature(p, columnsOf(p)) !== undefined,
          hashed: hashedColumns(p.src.columns, p.tgt.columns, columnsOf(p)),
        })),
        {
          countOnly: how === 'count',
          versionsOnly: how === 'versions',
          onError: (idx, e) => wrapError('data_checksum_failed', `reading ${names(idx.map((i) => list[i].display))} in the ${side === 'src' ? 'source' : 'target'}`, e),
        },
      );
    const [a, b] = await Promise.all([run(source, 'src'), run(target, 'tgt')]);
    return a.map((x, i) => ({ src: x, tgt: b[i] }));
  };
  const out: PairSums[] = new Array(pairs.length);
  const recorded = (p: TablePair) => {
    const k = known?.get(p.id);
    // A side with rows then and no pages now (emptied since) is known to differ without reading its versions.
    const emptied = (k?.source.rows && p.src.heapBytes === 0) || (k?.target.rows && p.tgt.heapBytes === 0);
    return k && !emptied && !countOnly(p) && k.columns === versionsSignature(p, columnsOf(p)) ? k : undefined;
  };
  const byVersions = pairs.flatMap((p, i) => (recorded(p) ? [i] : []));
  const versions = await sides(byVersions.map((i) => pairs[i]), 'versions');
  byVersions.forEach((i, k) => {
    const v = versions[k];
    const r = recorded(pairs[i])!;
    const same = (now: Checksum, then: { rows: number; versions: string }) => now.rows === then.rows && now.versions === then.versions;
    if (same(v.src, r.source) && same(v.tgt, r.target)) out[i] = { src: { rows: v.src.rows, sum: '' }, tgt: { rows: v.tgt.rows, sum: '' }, known: true };
  });
  const rest = pairs.flatMap((_, i) => (out[i] ? [] : [i]));
  const uncounted = rest.filter((i) => !alike(pairs[i]));
  const counts = await sides(uncounted.map((i) => pairs[i]), 'count');
  const toSum: number[] = rest.filter((i) => alike(pairs[i]));
  uncounted.forEach((i, k) => {
    const c = counts[k];
    if (c.src.rows !== c.tgt.rows || (c.src.rows > 0 && countOnly(pairs[i]))) out[i] = c;
    else if (c.src.rows === 0) out[i] = { src: { rows: 0, sum: '0' }, tgt: { rows: 0, sum: '0' } };
    else toSum.push(i);
  });
  toSum.sort((a, b) => a - b);
  const sums = await sides(toSum.map((i) => pairs[i]), 'sum');
  toSum.forEach((i, k) => (out[i] = sums[k]));
  return out;
}

/** A list of table names for a message: the first few and how many more. */
export function names(list: string[]): string {
  return list.length <= 3 ? list.join(', ') : `${list.slice(0, 3).join(', ')} and ${list.length - 3} more`;
}

/**
 * The hashed columns (session.ts hashedColumns) each plan's `sourceChecksum` was computed with. A checksum of the
 * target compares with it only when computed the same way: a schema step between planning and verifying may change
 * a column's type, and with it the list. (An empty source's '0' compares with any.)
 */
const sourceSumLayout = new WeakMap<DataTablePlan, string>();

export function noteSourceChecksum(tp: DataTablePlan, sum: string, hashed: HashedColumn[]): void {
  tp.sourceChecksum = sum;
  sourceSumLayout.set(tp, JSON.stringify(hashed));
}

/** The plan's source checksum if it was computed with `hashed`, else undefined. */
export function sourceChecksumFor(tp: DataTablePlan, hashed: HashedColumn[]): string | undefined {
  if (tp.sourceChecksum === undefined) return undefined;
  return (tp.sourceRows === 0 && tp.sourceChecksum === '0') || sourceSumLayout.get(tp) === JSON.stringify(hashed) ? tp.sourceChecksum : undefined;
}

/**
 * `countOnly`: pairs only counted (sync compares them by primary key instead of a checksum); with equal counts
 * they are planned as a provisional copy, to be settled by the caller.
 */
export async function planData(
  source: pg.ClientBase,
  target: pg.ClientBase,
  scope?: DataScope,
  opts: { countOnly?: (p: TablePair) => boolean; /** known.ts: pairs recorded equal by earlier runs */ known?: KnownTables } = {},
): Promise<DataPlan> {
  return withPinned([source, target], async () => {
    const { pairs, onlyInSource, onlyInTarget, largeObjects } = await pairTables(source, target, scope, true);
    const sums = await checksumPairs(source, target, pairs, undefined, opts.countOnly, opts.known);
    const observed: KnownTables = new Map();
    const tables: DataTablePlan[] = pairs.map((p, i) => {
      const { src, tgt, known } = sums[i];
      // '' = not summed: equal only when known to be
      const equal = known || (src.rows === tgt.rows && src.sum !== '' && src.sum === tgt.sum);
      if (equal && !known && src.versions !== undefined && tgt.versions !== undefined) {
        observed.set(p.id, { columns: versionsSignature(p, p.columns)!, source: { rows: src.rows, versions: src.versions }, target: { rows: tgt.rows, versions: tgt.versions } });
      }
      const sourceChecksum = src.sum !== '' ? src.sum : src.rows === 0 ? '0' : undefined;
      const base: DataTablePlan = { table: p.display, schema: p.src.schema, name: p.src.name, columns: p.columns, sourceRows: src.rows, targetRows: tgt.rows, equal, format: p.format, ...(sourceChecksum !== undefined ? { sourceChecksum } : {}), action: 'skip' };
      if (src.sum !== '') noteSourceChecksum(base, src.sum, hashedColumns(p.src.columns, p.tgt.columns, p.columns));
      if (known) return Object.assign(base, { reason: 'identical: neither side was written since they were last found equal' });
      if (equal) return Object.assign(base, { reason: 'identical' });
      if (p.columns.length === 0) return Object.assign(base, { reason: 'no copyable columns in common' });
      const why = [src.rows !== tgt.rows ? `${src.rows} row(s) in the source, ${tgt.rows} in the target` : 'same row count, different contents'];
      const srcOnly = p.src.columns.filter((c) => !p.tgt.columns.some((t) => t.name === c.name)).map((c) => c.name);
      const tgtOnly = p.tgt.columns.filter((c) => !c.generated && !p.src.columns.some((s) => s.name === c.name)).map((c) => c.name);
      if (srcOnly.length) why.push(`source-only columns not copied: ${srcOnly.join(', ')}`);
      if (tgtOnly.length) why.push(`target-only columns get their defaults: ${tgtOnly.join(', ')}`);
      if (p.formatReason) why.push(p.formatReason);
      return Object.assign(base, { action: 'copy' as const, reason: why.join('; '), ...(tgtOnly.length ? { targetOnly: tgtOnly.map((column) => ({ column, values: -1 })) } : {}) });
    });
    const copy = tables.filter((t) => t.action === 'copy');
    const plan: DataPlan = {
      tables,
      onlyInSource,
      onlyInTarget,
      ...(largeObjects ? { largeObjects } : {}),
      totals: {
        tables: tables.length,
        toCopy: copy.length,
        // rows of every compared table (the rows that will move are the copy tables' sourceRows)
        sourceRows: tables.reduce((a, t) => a + t.sourceRows, 0),
        targetRows: tables.reduce((a, t) => a + t.targetRows, 0),
      },
    };
    if (observed.size > 0) observedEqual.set(plan, observed);
    return plan;
  });
}

/**
 * A copy replaces every row, so the values of the target's own columns (absent in the source) are lost: count
 * the non-NULL ones of every table to copy (one query per such table), for the plan's hazards and the prompt.
 */
export async function countTargetOnlyValues(target: pg.ClientBase, plan: DataPlan): Promise<void> {
  for (const t of plan.tables) {
    if (t.action !== 'copy' || !t.targetOnly?.length) continue;
    const r = await target.query(`SELECT ${t.targetOnly.map((c, i) => `count(${quoteIdent(c.column)})::int8 AS c${i}`).join(', ')} FROM ${qualify(t.schema, t.name)}`);
    t.targetOnly.forEach((c, i) => (c.values = Number(r.rows[0][`c${i}`])));
  }
}
