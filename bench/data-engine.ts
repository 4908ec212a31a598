/**
 * Data copy benchmark: nself's applyData (binary COPY streamed source → target inside one transaction)
 * against `pg_dump --data-only | psql --single-transaction`, on the same machine in the same run.
 *
 *   node --import tsx bench/data-engine.ts [rows=2000000]
 *
 * Builds a table (bigint PK, text, int, timestamptz, jsonb) with `rows` rows in a throwaway embedded
 * PostgreSQL 15 (source) and copies it into a second one (target, empty table with the same DDL) both ways.
 * Prints wall time, rows/s, MB/s, the ratio, and peak RSS (this process for nself; pg_dump and psql via
 * /usr/bin/time). Servers run with fsync=off like the tests, so it measures the tools, not the disk.
 */
import { startCluster } from '../test/support/pg.ts';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { applyData, diffData, planData, verifyData } from '../src/data/index.js';

const ROWS = Number(process.argv[2] ?? 2_000_000);
/** 10 updated + 10 deleted rows are planted every STEP ids (needs ROWS ≥ 200). */
const STEP = Math.max(20, Math.floor(ROWS / 10));

/** A throwaway server (test/support/pg.ts) with room for a large load. */
function server() {
  return startCluster({ password: 'bench', flags: ['-c', 'max_wal_size=4GB', '-c', 'shared_buffers=256MB'] });
}

async function client(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {}); // a server stopped under us surfaces as the failing query's error
  await c.connect();
  return c;
}

const DDL = `CREATE TABLE big (id bigint PRIMARY KEY, name text NOT NULL, qty int, at timestamptz, doc jsonb)`;

function timed(cmd: string, env: NodeJS.ProcessEnv): Promise<{ ms: number; maxRssKb: number[] }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn('bash', ['-o', 'pipefail', '-c', cmd], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => {
      const ms = performance.now() - t0;
      const rss = [...err.matchAll(/^RSS_KB=(\d+)$/gm)].map((m) => Number(m[1]));
      if (code !== 0) reject(new Error(`${cmd} failed (${code}): ${err}`));
      else resolve({ ms, maxRssKb: rss });
    });
  });
}

const mb = (b: number) => (b / 1048576).toFixed(1);

async function main(): Promise<void> {
  const [a, b] = await Promise.all([server(), server()]);
  try {
    const s0 = await client(a.url());
    const t0 = await client(b.url());
    await s0.query(DDL);
    await t0.query(DDL);
    let t = performance.now();
    await s0.query(`INSERT INTO big SELECT i, 'user ' || md5(i::text), (i::int8 * 7919 % 100000)::int, timestamptz '2020-01-01 00:00:00+00' + i * interval '17 seconds',
      jsonb_build_object('i', i, 'tags', jsonb_build_array('a', 'b', i % 13), 'ok', i % 2 = 0) FROM generate_series(1, ${ROWS}) i`);
    await s0.query('VACUUM ANALYZE big');
    const size = Number((await s0.query(`SELECT pg_table_size('big') AS s`)).rows[0].s);
    console.log(`source: ${ROWS} rows, ${mb(size)} MB on disk (built in ${((performance.now() - t) / 1000).toFixed(1)} s)`);
    await s0.end();
    await t0.end();

    // ── nself applyData ─────────────────────────────────────────────────────────────
    const src = await client(a.url());
    const tgt = await client(b.url());
    await src.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await tgt.query('BEGIN');
    t = performance.now();
    const plan = await planData(src, tgt);
    const planMs = performance.now() - t;
    t = performance.now();
    let counted = 0;
    const [res] = await applyData(src, tgt, plan, { onProgress: (p) => { if (p.done) counted = p.rows; } });
    if (counted !== res.rowsAfter || res.rowsAfter !== ROWS) throw new Error(`row count mismatch: progress ${counted}, COPY ${res.rowsAfter}, expected ${ROWS}`);
    const applyMs = performance.now() - t;
    t = performance.now();
    await verifyData(src, tgt, plan);
    const verifyMs = performance.now() - t;
    t = performance.now();
    await tgt.query('COMMIT');
    const commitMs = performance.now() - t;
    await src.query('ROLLBACK');
    const nselfRssMb = process.resourceUsage().maxRSS / 1024;
    const nselfMs = applyMs + commitMs;
    console.log(`nself applyData: ${(nselfMs / 1000).toFixed(2)} s (copy ${(applyMs / 1000).toFixed(2)} s + commit), ${Math.round(res.rowsAfter / (nselfMs / 1000))} rows/s, ${mb(res.bytes)} MB binary COPY stream, ${(res.bytes / 1048576 / (applyMs / 1000)).toFixed(1)} MB/s; plan (checksums both sides) ${(planMs / 1000).toFixed(2)} s, verify ${(verifyMs / 1000).toFixed(2)} s; peak RSS ${nselfRssMb.toFixed(0)} MB`);

    // ── diffData on the copied table: identical, then with 30 planted changes ───────────
    t = performance.now();
    const same = await diffData(src, tgt);
    const sameMs = performance.now() - t;
    await tgt.query(`UPDATE big SET qty = qty + 1 WHERE id % ${STEP} = 7; DELETE FROM big WHERE id % ${STEP} = 11; INSERT INTO big SELECT -i, 'x', 0, now(), '{}' FROM generate_series(1, 10) i`);
    t = performance.now();
    const planted = await diffData(src, tgt);
    const plantedMs = performance.now() - t;
    const pd = planted.tables[0];
    if (!same.tables[0].identical || pd.onlyInSource !== 10 || pd.onlyInTarget !== 10 || pd.different !== 10) throw new Error(`diff found ${JSON.stringify(pd)}`);
    console.log(`nself diffData: identical ${ROWS}-row tables ${(sameMs / 1000).toFixed(2)} s; with 10 inserted + 10 deleted + 10 updated rows ${(plantedMs / 1000).toFixed(2)} s (found exactly those)`);
    await tgt.query('TRUNCATE big');
    await src.end();
    await tgt.end();

    // ── pg_dump --data-only | psql ──────────────────────────────────────────────────
    const time = '/usr/bin/time -f RSS_KB=%M';
    const env = { PGPASSWORD: 'bench' };
    const dump = `${time} pg_dump -h 127.0.0.1 -p ${a.port} -U postgres --data-only -t public.big postgres`;
    const load = `${time} psql -q -X -v ON_ERROR_STOP=1 --single-transaction -h 127.0.0.1 -p ${b.port} -U postgres -d postgres`;
    const r = await timed(`${dump} | ${load} >/dev/null`, env);
    const n = Number(execFileSync('psql', ['-XAtq', '-h', '127.0.0.1', '-p', String(b.port), '-U', 'postgres', '-c', 'SELECT count(*) FROM big', 'postgres'], { env: { ...process.env, ...env } }).toString().trim());
    if (n !== ROWS) throw new Error(`pg_dump | psql loaded ${n} rows, expected ${ROWS}`);
    console.log(`pg_dump --data-only | psql --single-transaction: ${(r.ms / 1000).toFixed(2)} s, ${Math.round(ROWS / (r.ms / 1000))} rows/s; peak RSS pg_dump ${(r.maxRssKb[0] / 1024).toFixed(0)} MB, psql ${(r.maxRssKb[1] / 1024).toFixed(0)} MB`);
    console.log(`ratio (pg_dump|psql time / nself time): ${(r.ms / nselfMs).toFixed(2)}x`);
    console.log(`machine: ${readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? '?'}, ${execFileSync('nproc').toString().trim()} cores; node ${process.version}; PostgreSQL 15 embedded; pg_dump ${execFileSync('pg_dump', ['--version']).toString().trim()}`);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
