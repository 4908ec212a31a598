/**
 * Where building secondary indexes after a load (instead of maintaining them row by row) starts to pay, and where
 * adding the primary key after it does: the thresholds behind DEFER_INDEXES_ROWS and DEFER_KEYS_ROWS
 * (src/data/load.ts).
 *
 *   node --import tsx bench/indexes.ts            # BENCH_SIZES=1000,5000,20000,100000,500000 BENCH_REPEAT=3
 *
 * One embedded PostgreSQL 15 cluster, two databases. The table has a primary key in load order and two
 * secondary indexes in random order (text, and an expression); every size is copied with applyData (binary
 * COPY, one transaction, rolled back) with everything kept, the secondary indexes built after the load, and the
 * primary key added after it too (deferIndexesRows / deferKeysRows: Infinity or 0), interleaved; medians.
 */
import { loadavg } from 'node:os';
import { migrateSession, startCluster } from '../test/support/pg.ts';
import { applyData, planData } from '../src/data/index.ts';
import { median, secs, table } from './common.ts';

const SIZES = (process.env.BENCH_SIZES ?? '1000,5000,20000,100000,500000').split(',').map(Number);
const REPEAT = Math.max(1, Number(process.env.BENCH_REPEAT ?? 3));
const DDL = `CREATE TABLE t (id bigint PRIMARY KEY, name text NOT NULL, email text, qty int);
  CREATE INDEX t_name_idx ON t (name); CREATE INDEX t_email_idx ON t (lower(email))`;

async function main(): Promise<void> {
  const c = await startCluster({ password: 'bench', flags: ['-c', 'max_wal_size=8GB'] });
  try {
    await c.createDatabase('s');
    await c.createDatabase('t');
    await c.sql(DDL, 's');
    await c.sql(DDL, 't');
    const load = `load average before: ${loadavg().map((x) => x.toFixed(1)).join(' ')}`;
    const rows: string[][] = [];
    for (const n of SIZES) {
      await c.sql(`TRUNCATE t; INSERT INTO t SELECT i, md5(i::text), 'U' || md5((i * 3)::text) || '@example.com', i % 1000 FROM generate_series(1, ${n}) i`, 's');
      await c.sql('VACUUM ANALYZE t', 's');
      const times: Record<'kept' | 'deferred' | 'keys', number[]> = { kept: [], deferred: [], keys: [] };
      for (let r = 0; r < REPEAT; r++) {
        for (const mode of ['kept', 'deferred', 'keys'] as const) {
          await migrateSession(
            c.url('s'),
            c.url('t'),
            async (s, t) => {
              const plan = await planData(s, t);
              const t0 = performance.now();
              await applyData(s, t, plan, { deferIndexesRows: mode === 'kept' ? Infinity : 0, deferKeysRows: mode === 'keys' ? 0 : Infinity });
              times[mode].push(performance.now() - t0);
            },
            false, // rolled back: every mode loads the same empty target
          );
        }
      }
      const k = median(times.kept);
      const d = median(times.deferred);
      const y = median(times.keys);
      rows.push([n.toLocaleString('en-US'), `${secs(k)} s`, `${secs(d)} s`, `${(d / k).toFixed(2)}×`, `${secs(y)} s`, `${(y / d).toFixed(2)}×`]);
      console.error(`${n}: kept ${secs(k)} s, indexes after ${secs(d)} s, primary key after too ${secs(y)} s`);
    }
    console.log(`## Indexes kept vs built after the load (${new Date().toISOString()})\n\n${load}, after: ${loadavg().map((x) => x.toFixed(1)).join(' ')}; median of ${REPEAT}\n`);
    console.log(table(['rows', 'indexes kept', 'indexes built after', 'after ÷ kept', 'primary key added after too', 'that ÷ indexes after'], rows));
  } finally {
    await c.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
