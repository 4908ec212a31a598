/**
 * diffData: row counts and identical/different per table; for tables with the same primary key on both sides,
 * exactly how many rows exist only in the source, only in the target, or differ — found like data-diff does:
 * compare (count, checksum) of key ranges on both sides inside PostgreSQL and split only the ranges that differ
 * (128 buckets per split, 32 for composite keys; boundaries from the side with more rows via row_number() over the key), down to
 * segments of at most LEAF rows whose (key, row hash) pairs are fetched and compared. Equal tables cost one
 * checksum scan per side; no row leaves the server except in the small differing segments.
 *
 * Key ranges must order the same on both sides: a collatable key column whose collation differs between the
 * two databases is compared with COLLATE "C" (correct, but without the key index).
 */
import type pg from 'pg';
import { MigrateError } from '../errors.js';
import { quoteIdent, quoteLiteral } from '../pg/quote.js';
import { fromItem, type TableInfo } from './catalog.js';
import { checksumPairs, pairTables, type TablePair } from './plan.js';
import { hashedColumns, rowHashSql, withPinned, wrapError } from './session.js';
import type { DataDiff, DataScope, DataTableDiff } from './types.js';

const LEAF = 2000;
/**
 * Leaf size in a dense segment: one whose parent split found most buckets different (changes spread all over the
 * table). Splitting such a segment further finds every bucket different again and only adds round trips, so it is
 * split straight into pieces of this size and their (key, hash) pairs compared.
 */
const DENSE_LEAF = 16384;
/** Buckets per split: width_bucket() (binary search) for a one-column key, a CASE ladder for composite keys. */
const BUCKETS_SINGLE = 128;
const BUCKETS_COMPOSITE = 32;

/**
 * A key range [lo, hi) with each side's row count. `keys`: the exact keys (as text) of the rows in it that differ,
 * when a leaf comparison found them; `dense`: the parent split found most of its buckets different.
 */
export interface Segment { lo: string[] | null; hi: string[] | null; srcRows: number; tgtRows: number; keys?: string[][]; dense?: boolean }
export interface Counts {
  onlyInSource: number;
  onlyInTarget: number;
  different: number;
  /** Each side's row count and checksum (session.ts checksums()), when the comparison scanned the whole table anyway. */
  sourceSum?: { rows: number; sum: string };
  targetSum?: { rows: number; sum: string };
}

export async function diffData(source: pg.ClientBase, target: pg.ClientBase, scope?: DataScope): Promise<DataDiff> {
  return withPinned([source, target], async () => {
    const { pairs, onlyInSource, onlyInTarget, largeObjects } = await pairTables(source, target, scope, true);
    // Compare over every column both sides have (generated ones too: diff shows what differs, not what we copy).
    const common = (p: TablePair) => p.tgt.columns.filter((c) => p.src.columns.some((s) => s.name === c.name)).map((c) => c.name);
    const sums = await checksumPairs(source, target, pairs, common);
    const tables: DataTableDiff[] = [];
    for (const [i, p] of pairs.entries()) {
      const { src, tgt } = sums[i];
      const identical = src.rows === tgt.rows && src.sum === tgt.sum;
      const pk = p.src.pk && p.tgt.pk && p.src.pk.join('\u0000') === p.tgt.pk.join('\u0000') ? p.src.pk : null;
      const d: DataTableDiff = { table: p.display, schema: p.src.schema, name: p.src.name, sourceRows: src.rows, targetRows: tgt.rows, identical, primaryKey: pk !== null };
      if (pk) {
        if (identical) Object.assign(d, { onlyInSource: 0, onlyInTarget: 0, different: 0 });
        else {
          try {
            const { onlyInSource, onlyInTarget, different } = await diffByKey(source, target, p.src, p.tgt, pk, common(p), { lo: null, hi: null, srcRows: src.rows, tgtRows: tgt.rows });
            Object.assign(d, { onlyInSource, onlyInTarget, different });
          } catch (e) {
            throw wrapError('data_diff_failed', `comparing the rows of ${p.display} by primary key`, e);
          }
        }
      }
      tables.push(d);
    }
    return { tables, onlyInSource, onlyInTarget, ...(largeObjects ? { largeObjects } : {}) };
  });
}

export class KeySql {
  readonly keyExpr: string;
  constructor(private readonly t: TableInfo, private readonly key: string[], private readonly collate: boolean[]) {
    this.keyExpr = this.tuple(key.map((k, i) => quoteIdent(k) + (collate[i] ? ' COLLATE "C"' : '')));
  }
  private tuple(xs: string[]): string {
    return xs.length === 1 ? xs[0] : `(${xs.join(', ')})`;
  }
  /** A bound key literal: ($n::type, ...) with the same collation treatment as the column side. */
  param(params: unknown[], values: string[]): string {
    return this.tuple(
      values.map((v, i) => {
        params.push(v);
        const col = this.t.columns.find((c) => c.name === this.key[i])!;
        return `$${params.length}::${col.typeSql}` + (this.collate[i] ? ' COLLATE "C"' : '');
      }),
    );
  }
  where(params: unknown[], seg: { lo: string[] | null; hi: string[] | null }): string {
    const parts: string[] = [];
    if (seg.lo) parts.push(`${this.keyExpr} >= ${this.param(params, seg.lo)}`);
    if (seg.hi) parts.push(`${this.keyExpr} < ${this.param(params, seg.hi)}`);
    return parts.length ? 'WHERE ' + parts.join(' AND ') : '';
  }
  /** A key as a literal, with the same collation treatment as the column side. */
  private literal(values: string[]): string {
    return this.tuple(
      values.map((v, i) => {
        const col = this.t.columns.find((c) => c.name === this.key[i])!;
        return `${quoteLiteral(v)}::${col.typeSql}` + (this.collate[i] ? ' COLLATE "C"' : '');
      }),
    );
  }
  /**
   * The rows of a segment as a condition with literals (for COPY, which takes no parameters); no WHERE. A segment
   * whose differing keys are known is exactly those keys; otherwise its range, as where().
   */
  literalRange(seg: Segment): string {
    if (seg.keys) return `${this.keyExpr} IN (${seg.keys.map((k) => this.literal(k)).join(', ')})`;
    const parts: string[] = [];
    if (seg.lo) parts.push(`${this.keyExpr} >= ${this.literal(seg.lo)}`);
    if (seg.hi) parts.push(`${this.keyExpr} < ${this.literal(seg.hi)}`);
    return parts.length ? `(${parts.join(' AND ')})` : 'true';
  }
  orderBy(): string {
    return this.key.map((k, i) => quoteIdent(k) + (this.collate[i] ? ' COLLATE "C"' : '')).join(', ');
  }
  keyText(): string {
    return this.key.map((k, i) => `${quoteIdent(k)}::text AS k${i}`).join(', ');
  }
}

/** The key expressions of both sides, ordering the same way (COLLATE "C" where the sides' collations differ). */
export function keySqls(s: TableInfo, t: TableInfo, key: string[]): { sk: KeySql; tk: KeySql } {
  const collate = key.map((k) => {
    const a = s.columns.find((c) => c.name === k)!;
    const b = t.columns.find((c) => c.name === k)!;
    return a.collation !== null && b.collation !== null && a.collation !== b.collation;
  });
  return { sk: new KeySql(s, key, collate), tk: new KeySql(t, key, collate) };
}

/**
 * Compare a table by primary key. With `ranges`, every segment found to differ is pushed there: a range present on
 * one side only, or a leaf compared row by row, with the exact keys of its differing rows (`keys`). Together they
 * hold every row that differs, and (nearly) no row that does not.
 */
export async function diffByKey(source: pg.ClientBase, target: pg.ClientBase, s: TableInfo, t: TableInfo, key: string[], columns: string[], root: Segment, ranges?: Segment[]): Promise<Counts> {
  const { sk, tk } = keySqls(s, t, key);
  const hash = rowHashSql(columns, undefined, hashedColumns(s.columns, t.columns, columns));
  const INT = /^pg_catalog\.int[248]\(/;
  const integerKey = key.length === 1 && INT.test(s.columns.find((c) => c.name === key[0])!.typeId) && INT.test(t.columns.find((c) => c.name === key[0])!.typeId);
  const counts: Counts = { onlyInSource: 0, onlyInTarget: 0, different: 0 };
  const queue: Segment[] = [root];
  while (queue.length > 0) {
    const seg = queue.pop()!;
    if (seg.srcRows === 0) {
      counts.onlyInTarget += seg.tgtRows;
      ranges?.push(seg);
      continue;
    }
    if (seg.tgtRows === 0) {
      counts.onlyInSource += seg.srcRows;
      ranges?.push(seg);
      continue;
    }
    if (Math.max(seg.srcRows, seg.tgtRows) <= (seg.dense ? DENSE_LEAF : LEAF)) {
      const fetch = async (c: pg.ClientBase, ti: TableInfo, ks: KeySql) => {
        const params: unknown[] = [];
        const r = await c.query({ text: `SELECT ${ks.keyText()}, ${hash}::text AS h FROM ${fromItem(ti)} ${ks.where(params, seg)}`, values: params, rowMode: 'array' });
        return new Map((r.rows as string[][]).map((row) => [key.length === 1 ? row[0] : JSON.stringify(row.slice(0, key.length)), row[key.length]]));
      };
      const [a, b] = await Promise.all([fetch(source, s, sk), fetch(target, t, tk)]);
      const differing: string[] = [];
      for (const [k, h] of a) {
        const other = b.get(k);
        if (other === undefined) counts.onlyInSource++;
        else if (other !== h) counts.different++;
        else continue;
        differing.push(k);
      }
      for (const k of b.keys()) {
        if (a.has(k)) continue;
        counts.onlyInTarget++;
        differing.push(k);
      }
      if (differing.length > 0) ranges?.push({ ...seg, keys: differing.map((k) => (key.length === 1 ? [k] : (JSON.parse(k) as string[]))) });
      continue;
    }
    const buckets = seg.dense
      ? Math.min(key.length === 1 ? BUCKETS_SINGLE : BUCKETS_COMPOSITE, Math.ceil(Math.max(seg.srcRows, seg.tgtRows) / DENSE_LEAF))
      : key.length === 1
        ? BUCKETS_SINGLE
        : BUCKETS_COMPOSITE;
    let bounds: string[][];
    if (integerKey) {
      // An integer key: split [min, max] evenly (two index probes per side, no scan). Skewed keys only cost
      // more levels: each level narrows the range 128-fold.
      const minmax = async (c: pg.ClientBase, ti: TableInfo, ks: KeySql) => {
        const params: unknown[] = [];
        const r = await c.query({ text: `SELECT min(${quoteIdent(key[0])})::text AS lo, max(${quoteIdent(key[0])})::text AS hi FROM ${fromItem(ti)} ${ks.where(params, seg)}`, values: params });
        return r.rows[0] as { lo: string | null; hi: string | null };
      };
      const [a, b] = await Promise.all([minmax(source, s, sk), minmax(target, t, tk)]);
      const los = [a.lo, b.lo].filter((x): x is string => x !== null).map(BigInt);
      const his = [a.hi, b.hi].filter((x): x is string => x !== null).map(BigInt);
      const lo = los.reduce((x, y) => (y < x ? y : x));
      const span = his.reduce((x, y) => (y > x ? y : x)) - lo + 1n;
      bounds = [];
      for (let i = 1n; i < BigInt(buckets); i++) {
        const v = lo + (span * i) / BigInt(buckets);
        if (v > lo && (bounds.length === 0 || v > BigInt(bounds[bounds.length - 1][0]))) bounds.push([v.toString()]);
      }
    } else {
      // Otherwise boundaries every n/B rows of the side with more rows in this segment (one ordered index scan).
      const [bc, bt, bk, n] = seg.srcRows >= seg.tgtRows ? [source, s, sk, seg.srcRows] : [target, t, tk, seg.tgtRows];
      const step = Math.ceil(n / buckets);
      const bparams: unknown[] = [step];
      const br = await bc.query({
        text: `SELECT ${key.map((_, i) => `k${i}`).join(', ')} FROM (SELECT ${bk.keyText()}, row_number() OVER (ORDER BY ${bk.orderBy()}) AS rn FROM ${fromItem(bt)} ${bk.where(bparams, seg)}) x WHERE rn % $1 = 0 ORDER BY rn`,
        values: bparams,
        rowMode: 'array',
      });
      bounds = (br.rows as string[][]).filter((b) => !seg.hi || JSON.stringify(b) !== JSON.stringify(seg.hi));
    }
    if (bounds.length === 0) throw new MigrateError('data_diff_failed', 'could not split a key range (keys do not order consistently)');
    const bucketQuery = async (c: pg.ClientBase, ti: TableInfo, ks: KeySql) => {
      const params: unknown[] = [];
      // bucket i holds bounds[i-1] <= key < bounds[i] (0: below bounds[0]; bounds.length: from the last bound on)
      const bucket =
        key.length === 1
          ? `width_bucket(${ks.keyExpr}, ARRAY[${bounds.map((b) => ks.param(params, b)).join(', ')}])`
          : `CASE ${bounds.map((b, i) => `WHEN ${ks.keyExpr} < ${ks.param(params, b)} THEN ${i}`).join(' ')} ELSE ${bounds.length} END`;
      const where = ks.where(params, seg);
      // OFFSET 0 keeps (bucket, hash) computed below the aggregate: the planner, taking the bucket for as many
      // groups as key values, would otherwise sort whole rows (spilling to disk) instead of hashing 128 groups.
      const r = await c.query({ text: `SELECT b, count(*)::int8 AS n, sum(h)::text AS s FROM (SELECT ${bucket} AS b, ${hash} AS h FROM ${fromItem(ti)} ${where} OFFSET 0) x GROUP BY b`, values: params });
      return new Map((r.rows as Array<{ b: number; n: string; s: string }>).map((x) => [Number(x.b), { n: Number(x.n), s: x.s }]));
    };
    const [a, b] = await Promise.all([bucketQuery(source, s, sk), bucketQuery(target, t, tk)]);
    if (seg === root) {
      // The whole table's buckets: their totals are the table's count and checksum, as checksums() computes them.
      const total = (m: Map<number, { n: number; s: string }>) => {
        let rows = 0;
        let sum = 0n;
        for (const x of m.values()) (rows += x.n), (sum += BigInt(x.s));
        return { rows, sum: sum.toString() };
      };
      counts.sourceSum = total(a);
      counts.targetSum = total(b);
    }
    const children: Segment[] = [];
    let filled = 0;
    for (let i = 0; i <= bounds.length; i++) {
      const x = a.get(i) ?? { n: 0, s: '0' };
      const y = b.get(i) ?? { n: 0, s: '0' };
      if (x.n > 0 || y.n > 0) filled++;
      if (x.n === y.n && x.s === y.s) continue;
      children.push({ lo: i === 0 ? seg.lo : bounds[i - 1], hi: i === bounds.length ? seg.hi : bounds[i], srcRows: x.n, tgtRows: y.n });
    }
    const dense = children.length * 2 > filled;
    for (const c of children) queue.push(dense ? { ...c, dense } : c);
  }
  return counts;
}
