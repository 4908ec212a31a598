/**
 * What one checksum pass costs, per row hash, on one core: the row's text form (how every checksum was computed
 * before typed hashing), the row hash the data engine uses now (src/data/session.ts rowHashSql, built from the
 * table's real column list), and the floors below them — count(*), the row versions (xmin), printing the jsonb
 * column alone, hashing it by value — next to the read side of the copy (COPY TO binary). It shows what a first
 * compare of equal tables can cost at best, against the copy it would save.
 *
 *   node --import tsx bench/checksum.ts            # BENCH_ROWS=2000000 BENCH_REPEAT=3
 *
 * One embedded PostgreSQL 15 cluster, the 2M-row table of bench/data.ts, one connection with parallel query off
 * (max_parallel_workers_per_gather = 0: one core, as when source and target share this 2-core machine); every
 * query runs REPEAT times interleaved; medians.
 */
import { loadavg } from 'node:os';
import pg from 'pg';
import { startCluster } from '../test/support/pg.ts';
import { listTables } from '../src/data/catalog.ts';
import { relationKey } from '../src/pg/quote.ts';
import { hashedColumns, rowHashSql, withPinned } from '../src/data/session.ts';
import { median, now, secs, table } from './common.ts';

const ROWS = Number(process.env.BENCH_ROWS ?? 2_000_000);
const REPEAT = Math.max(1, Number(process.env.BENCH_REPEAT ?? 3));
const DDL = `CREATE TABLE big (id bigint PRIMARY KEY, name text NOT NULL, qty int, at timestamptz, doc jsonb)`;
const FILL = `INSERT INTO big
  SELECT i, 'user ' || md5(i::text), (i * 7919 % 100000)::int, timestamptz '2020-01-01 00:00:00+00' + i * interval '17 seconds',
         jsonb_build_object('i', i, 'tags', jsonb_build_array('a', 'b', i % 13), 'ok', i % 2 = 0, 'ref', substr(md5((i * 7)::text), 1, 8))
  FROM generate_series(1, $1::bigint) i`;

async function main(): Promise<void> {
  const c = await startCluster({ password: 'bench' });
  const client = new pg.Client({ connectionString: c.url() });
  try {
    await c.sql(DDL);
    await c.query(FILL, [ROWS]);
    await c.sql('VACUUM ANALYZE big');
    await client.connect();
    await client.query('SET max_parallel_workers_per_gather = 0');
    const all = ['id', 'name', 'qty', 'at', 'doc'];
    const noDoc = all.slice(0, 4);
    const info = (await listTables(client)).get(relationKey('public', 'big'))!;
    const typed = (cols: string[]) => rowHashSql(cols, undefined, hashedColumns(info.columns, info.columns, cols));
    const sum = (h: string) => `SELECT count(*), sum(${h}) FROM big`;
    const queries: Array<[string, string]> = [
      ['count(*)', 'SELECT count(*) FROM big'],
      ['row versions (xmin hashes)', sum('hashtextextended(xmin::text, 0)')],
      ["all 5 columns, the row's text form (before)", sum(rowHashSql(all))],
      ['all 5 columns, typed hashes (now)', sum(typed(all))],
      ["4 columns without the jsonb, the row's text form (before)", sum(rowHashSql(noDoc))],
      ['4 columns without the jsonb, typed hashes (now)', sum(typed(noDoc))],
      ['the jsonb column alone, printed', sum('hashtextextended(doc::text, 5)')],
      ['the jsonb column alone, hashed by value (not exact: 1.0 = 1.00)', sum('jsonb_hash_extended(doc, 5)')],
      ['COPY big TO binary (the read side of the copy)', `COPY big TO '/dev/null' (FORMAT binary)`],
    ];
    const times = new Map<string, number[]>(queries.map(([k]) => [k, []]));
    const load = loadavg().map((x) => x.toFixed(1)).join(' ');
    await withPinned([client], async () => {
      for (let r = 0; r < REPEAT; r++) {
        for (const [k, q] of queries) {
          const t = now();
          await client.query(q);
          times.get(k)!.push(now() - t);
        }
      }
    });
    const base = median(times.get("all 5 columns, the row's text form (before)")!);
    const copy = median(times.get(queries.at(-1)![0])!);
    console.log(`${ROWS.toLocaleString('en-US')} rows (bench/data.ts's table: bigint, text, int, timestamptz, jsonb), one core, median of ${REPEAT}; load average before ${load}, after ${loadavg().map((x) => x.toFixed(1)).join(' ')}\n`);
    console.log(table(['pass', 'time (median)', 'runs (s)', '÷ the row text form', '÷ COPY TO binary'], queries.map(([k]) => {
      const m = median(times.get(k)!);
      return [k, `${secs(m)} s`, times.get(k)!.map(secs).join(', '), `${(m / base).toFixed(2)}×`, `${(m / copy).toFixed(2)}×`];
    })));
    console.log(`\nrow hash now (all 5 columns): ${typed(all)}`);
  } finally {
    await client.end().catch(() => {});
    await c.stop();
  }
}

await main();
