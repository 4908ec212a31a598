/**
 * Sync benchmark (issue #10), two local PostgreSQL 15 clusters (the source with wal_level = logical), same run:
 *
 * (a) One-time sync of a table where 1 % of the rows differ: `nself migrate sync --data-only` (writes only the
 *     differing rows) vs a full `nself migrate --data-only` copy vs a pgsync-style whole-table copy
 *     (`TRUNCATE` + `pg_dump --data-only -t | psql --single-transaction`). The target is reset from a template
 *     database before every run (untimed); every result is checked (count + checksum equal to the source's).
 * (b) Following: a burst of N single-row transactions, then one transaction of M rows, applied by
 *     `nself migrate sync --watch` (its own logical-decoding stream), `--watch --via subscription` (a PostgreSQL
 *     subscription does the apply) and, when it runs here, `pgcopydb clone --follow` (wal2json). Each mode gets
 *     fresh databases; a warm-up row must arrive before the workload starts. The target's max(id) is polled every
 *     ~5 ms: the lag of row k is the time its max(id) first reached k minus the time row k's COMMIT returned on the
 *     source, so it includes up to ~5 ms of polling granularity.
 *
 *   npx tsc -p tsconfig.json            # the CLI runs dist/
 *   node --import tsx bench/sync.ts > /tmp/sync.md
 *
 * Env: BENCH_ROWS=1000000 (a), BENCH_BURST=5000 (N), BENCH_BIG_TX=200000 (M), BENCH_REPEAT=3 (rounds; medians).
 * pgcopydb (Debian package, 0.10 here) needs the wal2json plugin (Debian postgresql-15-wal2json): the source
 * cluster loads it from /usr/lib/postgresql/15/lib through dynamic_library_path; both are installed when missing.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startCluster, type TestCluster } from '../test/support/pg.ts';
import { makeProject, type Project } from '../test/support/cli.ts';
import { BIN, envFile, machine, median, now, secs, table, timeCommand, timeShell, warnIfStale } from './common.ts';

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const BURST = Number(process.env.BENCH_BURST ?? 5000);
const BIG_TX = Number(process.env.BENCH_BIG_TX ?? 200_000);
const REPEAT = Math.max(1, Number(process.env.BENCH_REPEAT ?? 3));
const WAL2JSON_DIR = '/usr/lib/postgresql/15/lib';

const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

function aptInstall(pkg: string, check: () => boolean): boolean {
  if (check()) return true;
  try {
    console.error(`installing Debian package ${pkg}...`);
    execFileSync('apt-get', ['install', '-y', pkg], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  } catch {
    return false;
  }
  return check();
}
const hasCmd = (cmd: string) => () => {
  try {
    execFileSync(cmd, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

// ── (a) one-time sync ──────────────────────────────────────────────────────────────────────
const DDL = `CREATE TABLE big (id bigint PRIMARY KEY, name text NOT NULL, qty int, at timestamptz, doc jsonb)`;
const FILL = `INSERT INTO big
  SELECT i, 'user ' || md5(i::text), (i * 7919 % 100000)::int,
         timestamptz '2020-01-01 00:00:00+00' + i * interval '17 seconds',
         jsonb_build_object('i', i, 'tags', jsonb_build_array('a', 'b', i % 13), 'ok', i % 2 = 0, 'ref', substr(md5((i * 7)::text), 1, 8))
  FROM generate_series(1, $1::bigint) i`;
/** 1 % of the rows differ: 0.8 % updated, 0.1 % missing on the target, 0.1 % only on the target. */
const DRIFT = `UPDATE big SET qty = qty + 1 WHERE id % 125 = 0;
  DELETE FROM big WHERE id % 1000 = 7;
  INSERT INTO big SELECT i, 'extra', 0, now(), '{}' FROM generate_series(${ROWS + 1}, ${ROWS + ROWS / 1000}) i;`;
const CHECK = `SELECT count(*)::bigint AS n, coalesce(sum(hashtextextended(b::text, 0)), 0)::text AS h FROM big b`;

async function oneTime(a: TestCluster, b: TestCluster, out: string[]): Promise<void> {
  const DB = 'one';
  await a.createDatabase(DB);
  await a.sql(DDL, DB);
  let t = now();
  await a.query(FILL, [ROWS], DB);
  await a.sql('VACUUM ANALYZE big', DB);
  const [want] = await a.query<{ n: string; h: string }>(CHECK, [], DB);
  const [{ mb }] = await a.query<{ mb: string }>(`SELECT (pg_table_size('big') / 1048576)::text AS mb`, [], DB);
  // The target's starting state, kept as a template: the source's rows with 1 % drift.
  await b.createDatabase('one_base');
  await b.sql(DDL, 'one_base');
  await b.query(FILL, [ROWS], 'one_base');
  await b.sql(DRIFT, 'one_base');
  await b.sql('VACUUM ANALYZE big', 'one_base');
  console.error(`(a) ${ROWS} rows (${mb} MB), target 1 % different, built in ${secs(now() - t)} s`);
  const reset = async () => {
    await b.sql(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
    await b.sql(`CREATE DATABASE ${DB} TEMPLATE one_base STRATEGY = FILE_COPY`);
    await b.sql('CHECKPOINT');
  };
  const project = makeProject({ '.env.local': envFile(a, DB), '.env.staging': envFile(b, DB) });
  const conn = (c: TestCluster) => `-h 127.0.0.1 -p ${c.port} -U postgres`;
  const nself = (cmd: string[]) => async () => {
    const r = await timeCommand(process.execPath, [BIN, 'migrate', ...cmd, 'local', 'staging', '--data-only', '--force', '--json'], { cwd: project.dir });
    const report = JSON.parse(r.stdout || '{}');
    if (r.code !== 0 || report.status !== 'ok') throw new Error(`nself ${cmd.join(' ')} failed (${r.code}): ${r.stderr.slice(0, 2000)}`);
    const d = (report.data ?? [])[0] ?? {};
    return { ms: r.ms, note: d.mode === 'delta' ? `wrote ${d.inserted} inserted, ${d.updated} updated, ${d.deleted} deleted` : `rows copied: ${d.rowsAfter ?? '?'}` };
  };
  const tools: { name: string; command: string; run: () => Promise<{ ms: number; note?: string }> }[] = [
    { name: 'nself migrate sync --data-only (delta)', command: 'nself migrate sync local staging --data-only --force --json', run: nself(['sync']) },
    { name: 'nself migrate --data-only (full copy)', command: 'nself migrate local staging --data-only --force --json', run: nself([]) },
    {
      name: 'pgsync-style: TRUNCATE + pg_dump -t, piped to psql',
      command: `{ echo 'TRUNCATE big;'; pg_dump ${conn(a)} --data-only -t public.big ${DB}; } | psql -X -q -v ON_ERROR_STOP=1 --single-transaction ${conn(b)} -d ${DB}`,
      run: async () => {
        const r = await timeShell(`{ echo 'TRUNCATE big;'; pg_dump ${conn(a)} --data-only -t public.big ${DB}; } | psql -X -q -v ON_ERROR_STOP=1 --single-transaction ${conn(b)} -d ${DB} >/dev/null`, { PGPASSWORD: a.password });
        if (r.code !== 0) throw new Error(`pg_dump | psql failed: ${r.stderr.slice(0, 2000)}`);
        return { ms: r.ms };
      },
    },
  ];
  const results = new Map(tools.map((x) => [x.name, [] as number[]]));
  const notes = new Map<string, string>();
  try {
    for (let round = 0; round < REPEAT; round++) {
      for (const tool of tools) {
        await reset();
        const r = await tool.run();
        const [got] = await b.query<{ n: string; h: string }>(CHECK, [], DB);
        if (got!.n !== want!.n || got!.h !== want!.h) throw new Error(`${tool.name}: the target differs from the source afterwards`);
        results.get(tool.name)!.push(r.ms);
        if (r.note) notes.set(tool.name, r.note);
        console.error(`[round ${round + 1}] ${tool.name}: ${secs(r.ms)} s${r.note ? ` (${r.note})` : ''}`);
      }
    }
  } finally {
    project.remove();
  }
  const full = median(results.get(tools[1]!.name)!);
  out.push(`### (a) One-time sync, ${ROWS.toLocaleString('en-US')} rows (${mb} MB), 1 % of the rows differ`, '');
  out.push(`Target before each run: 0.8 % of rows updated, 0.1 % missing, 0.1 % extra (reset from a template database, untimed). Median of ${REPEAT}; each result checked (count + checksum).`, '');
  out.push(
    table(
      ['tool', 'median', 'runs', '÷ full nself copy', 'note'],
      tools.map((x) => {
        const m = median(results.get(x.name)!);
        return [x.name, `${secs(m)} s`, results.get(x.name)!.map(secs).join(' / '), `${((m / full) * 100).toFixed(0)} %`, notes.get(x.name) ?? ''];
      }),
    ),
    '',
  );
  for (const x of tools) out.push(`- ${x.name}: \`${x.command}\``);
  out.push('');
}

// ── (b) following ──────────────────────────────────────────────────────────────────────────
const EV = `CREATE TABLE ev (id bigint PRIMARY KEY, payload text, at timestamptz DEFAULT clock_timestamp())`;

interface FollowResult {
  burstRowsPerSec: number;
  sourceRowsPerSec: number;
  p50: number;
  p99: number;
  max: number;
  bigLagMs: number;
  bigRowsPerSec: number;
}

interface Mode {
  name: string;
  command: string;
  /** Start following db (source → target); resolves once started. */
  start(db: string): Promise<{ stop(): Promise<void> }>;
  /** The target starts with the table (nself) or empty (pgcopydb creates it). */
  targetHasTable: boolean;
}

async function follow(a: TestCluster, b: TestCluster, mode: Mode, db: string): Promise<FollowResult> {
  for (const [c, withTable] of [[a, true], [b, mode.targetHasTable]] as const) {
    await c.sql(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await c.createDatabase(db);
    if (withTable) await c.sql(EV, db);
  }
  await a.sql(`INSERT INTO ev(id, payload) SELECT g, 'initial ' || g FROM generate_series(1, 1000) g`, db);
  const src = new pg.Client({ connectionString: a.url(db) });
  const tgt = new pg.Client({ connectionString: b.url(db) });
  await src.connect();
  await tgt.connect();
  const running = await mode.start(db);
  try {
    const maxId = async () => {
      try {
        return Number((await tgt.query<{ m: string | null }>('SELECT max(id) AS m FROM ev')).rows[0]!.m ?? 0);
      } catch {
        return 0; // pgcopydb: the table is not there yet
      }
    };
    const until = async (id: number, ms: number) => {
      const end = Date.now() + ms;
      while ((await maxId()) < id) {
        if (Date.now() > end) throw new Error(`${mode.name}: row ${id} did not arrive within ${ms} ms`);
        await sleep(5);
      }
    };
    // Warm-up: a row committed now must arrive before the workload starts.
    await src.query(`INSERT INTO ev(id, payload) VALUES (1001, 'warm-up')`);
    await until(1001, Number(process.env.BENCH_WARMUP_MS ?? 60_000));

    // The burst: N single-row transactions, as fast as one client commits them; the target polled meanwhile.
    const first = 1002;
    const last = first + BURST - 1;
    const committed: number[] = [];
    const arrived: number[] = new Array(BURST).fill(NaN);
    let seen = first - 1;
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const m = await maxId();
        const t = now();
        for (let k = seen + 1; k <= Math.min(m, last); k++) arrived[k - first] = t;
        seen = Math.max(seen, m);
        if (seen >= last) return;
        await sleep(5);
      }
    })();
    const t0 = now();
    for (let k = first; k <= last; k++) {
      await src.query('INSERT INTO ev(id, payload) VALUES ($1, $2)', [k, `burst ${k}`]);
      committed.push(now());
    }
    const tWritten = now();
    const end = Date.now() + 120_000;
    while (seen < last && Date.now() < end) await sleep(20);
    polling = false;
    await poller;
    if (seen < last) throw new Error(`${mode.name}: the burst did not arrive within 120 s (at ${seen} of ${last})`);
    const lags = committed.map((c, i) => arrived[i]! - c);
    const tDone = Math.max(...arrived);

    // One transaction of M rows.
    const bigLast = last + BIG_TX;
    await src.query(`INSERT INTO ev(id, payload) SELECT g, 'big ' || g FROM generate_series(${last + 1}, ${bigLast}) g`);
    const tCommit = now();
    await until(bigLast, 600_000);
    const bigLagMs = now() - tCommit;
    const [want] = (await src.query<{ n: string; h: string }>(`SELECT count(*)::text AS n, sum(hashtextextended(id::text || payload, 0))::text AS h FROM ev`)).rows;
    const [got] = (await tgt.query<{ n: string; h: string }>(`SELECT count(*)::text AS n, sum(hashtextextended(id::text || payload, 0))::text AS h FROM ev`)).rows;
    if (want!.n !== got!.n || want!.h !== got!.h) throw new Error(`${mode.name}: the target differs from the source (${got!.n} vs ${want!.n} rows)`);
    return {
      burstRowsPerSec: BURST / ((tDone - t0) / 1000),
      sourceRowsPerSec: BURST / ((tWritten - t0) / 1000),
      p50: pct(lags, 50),
      p99: pct(lags, 99),
      max: Math.max(...lags),
      bigLagMs,
      bigRowsPerSec: BIG_TX / (bigLagMs / 1000),
    };
  } finally {
    await running.stop();
    await Promise.allSettled([src.end(), tgt.end()]);
    // Nothing may stay behind on the source: a leftover slot would hold WAL for the next mode.
    const left = await a.query<{ s: string }>(`SELECT slot_name AS s FROM pg_replication_slots`);
    for (const { s } of left) await a.query(`SELECT pg_drop_replication_slot($1)`, [s]).catch(() => {});
  }
}

/** A spawned watcher, ready once its NDJSON shows `readyEvent`; stopped with SIGINT. */
function nselfWatch(a: TestCluster, b: TestCluster, extra: string[]): Mode['start'] {
  return async (db) => {
    const project = makeProject({ '.env.local': envFile(a, db), '.env.staging': envFile(b, db) });
    const child = spawn(process.execPath, [BIN, 'migrate', 'sync', 'local', 'staging', '--watch', '--data-only', '--force', '--json', ...extra], { cwd: project.dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.on('close', r));
    const end = Date.now() + 120_000;
    while (!/"event":"status"/.test(stdout)) {
      if (child.exitCode !== null || Date.now() > end) {
        project.remove();
        throw new Error(`the watcher did not start: ${stderr.slice(0, 2000)} ${stdout.slice(0, 2000)}`);
      }
      await sleep(50);
    }
    return {
      async stop() {
        child.kill('SIGINT');
        const code = await exited;
        project.remove();
        if (code !== 130) throw new Error(`the watcher exited ${code}: ${stderr.slice(0, 2000)}`);
      },
    };
  };
}

function pgcopydbFollow(a: TestCluster, b: TestCluster): Mode['start'] {
  return async (db) => {
    const dir = mkdtempSync(join(tmpdir(), 'nself-bench-pgcopydb-'));
    // Its own process group: pgcopydb forks workers, and all of them must go at the stop.
    const child: ChildProcess = spawn('pgcopydb', ['clone', '--follow', '--source', a.url(db), '--target', b.url(db), '--dir', join(dir, 'work')], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    const signalGroup = (sig: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, sig);
      } catch {
        /* already gone */
      }
    };
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-20_000)));
    const exited = new Promise<number | null>((r) => child.on('close', r));
    void exited.then((code) => {
      if (code !== 0 && code !== null) console.error(`pgcopydb exited ${code}:\n${stderr.slice(-3000)}`);
    });
    // Once the base copy is on the target, let the follow process apply (pgcopydb waits for this sentinel).
    const tgt = new pg.Client({ connectionString: b.url(db) });
    await tgt.connect();
    try {
      const end = Date.now() + 180_000;
      for (;;) {
        const n = await tgt.query<{ n: string }>('SELECT count(*) AS n FROM ev').then((r) => Number(r.rows[0]!.n), () => 0);
        if (n >= 1000) break;
        if (child.exitCode !== null || Date.now() > end) {
          signalGroup('SIGKILL');
          throw new Error(`pgcopydb clone did not copy the base rows: ${stderr.slice(-2000)}`);
        }
        await sleep(100);
      }
    } finally {
      await tgt.end();
    }
    execFileSync('pgcopydb', ['stream', 'sentinel', 'set', 'apply', '--source', a.url(db)], { stdio: 'ignore' });
    return {
      async stop() {
        signalGroup('SIGTERM');
        await Promise.race([exited, sleep(20_000)]);
        signalGroup('SIGKILL');
        if (process.env.BENCH_DEBUG) console.error(`pgcopydb log (tail):\n${stderr.slice(-6000)}`);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  };
}

async function following(a: TestCluster, b: TestCluster, hasPgcopydb: boolean, out: string[]): Promise<void> {
  const modes: Mode[] = [
    { name: 'nself sync --watch (stream)', command: 'nself migrate sync local staging --watch --data-only --force --json', start: nselfWatch(a, b, []), targetHasTable: true },
    { name: 'nself sync --watch --via subscription', command: 'nself migrate sync local staging --watch --via subscription --data-only --force --json', start: nselfWatch(a, b, ['--via', 'subscription']), targetHasTable: true },
  ];
  if (hasPgcopydb && !process.env.BENCH_SKIP_PGCOPYDB) modes.push({ name: 'pgcopydb clone --follow (wal2json)', command: 'pgcopydb clone --follow --source <src> --target <tgt> --dir <tmp>', start: pgcopydbFollow(a, b), targetHasTable: false });
  if (process.env.BENCH_ONLY) modes.splice(0, modes.length, ...modes.filter((m) => m.name.includes(process.env.BENCH_ONLY!)));
  const results = new Map(modes.map((m) => [m.name, [] as FollowResult[]]));
  const failures = new Map<string, string>();
  for (let round = 0; round < REPEAT; round++) {
    for (const [i, mode] of modes.entries()) {
      if (failures.has(mode.name)) continue;
      try {
        const r = await follow(a, b, mode, `f${round}_${i}`);
        results.get(mode.name)!.push(r);
        console.error(`[round ${round + 1}] ${mode.name}: burst ${Math.round(r.burstRowsPerSec)} rows/s (source wrote ${Math.round(r.sourceRowsPerSec)}/s), lag p50 ${r.p50.toFixed(0)} ms p99 ${r.p99.toFixed(0)} ms; ${BIG_TX} rows in one tx: ${r.bigLagMs.toFixed(0)} ms after COMMIT (${Math.round(r.bigRowsPerSec)} rows/s); load ${load()}`);
      } catch (e) {
        failures.set(mode.name, (e as Error).message.split('\n')[0]!);
        console.error(`${mode.name}: ${(e as Error).message}`);
      }
    }
  }
  const m = (name: string, f: (r: FollowResult) => number) => median(results.get(name)!.map(f));
  out.push(`### (b) Following: ${BURST.toLocaleString('en-US')} single-row transactions, then one ${BIG_TX.toLocaleString('en-US')}-row transaction`, '');
  out.push(`Source and target on separate local servers; 1,000 rows synced first, a warm-up row awaited. The burst is written by one client as fast as it commits; "lag" is per row, from its COMMIT returning on the source to its id first seen on the target (max(id) polled every ~5 ms). Medians over ${REPEAT} rounds.`, '');
  out.push(
    table(
      ['mode', 'burst applied (rows/s)', 'source wrote (rows/s)', 'lag p50', 'lag p99', 'lag max', `${BIG_TX.toLocaleString('en-US')}-row tx: visible after COMMIT`, 'its rows/s'],
      modes.map((x) =>
        results.get(x.name)!.length === 0
          ? [x.name, `did not run: ${failures.get(x.name) ?? '?'}`, '', '', '', '', '', '']
          : [x.name, Math.round(m(x.name, (r) => r.burstRowsPerSec)).toLocaleString('en-US'), Math.round(m(x.name, (r) => r.sourceRowsPerSec)).toLocaleString('en-US'), `${m(x.name, (r) => r.p50).toFixed(0)} ms`, `${m(x.name, (r) => r.p99).toFixed(0)} ms`, `${m(x.name, (r) => r.max).toFixed(0)} ms`, `${secs(m(x.name, (r) => r.bigLagMs))} s`, Math.round(m(x.name, (r) => r.bigRowsPerSec)).toLocaleString('en-US')],
      ),
    ),
    '',
  );
  for (const x of modes) out.push(`- ${x.name}: \`${x.command}\`${failures.has(x.name) && results.get(x.name)!.length > 0 ? ` (failed in a later round: ${failures.get(x.name)})` : ''}`);
  if (!hasPgcopydb) out.push('- pgcopydb: not available here (the Debian packages pgcopydb / postgresql-15-wal2json did not install)');
  out.push('');
}

async function main(): Promise<void> {
  warnIfStale();
  const hasPgcopydb = aptInstall('pgcopydb', hasCmd('pgcopydb')) && aptInstall('postgresql-15-wal2json', () => existsSync(join(WAL2JSON_DIR, 'wal2json.so')));
  const [a, b] = await Promise.all([
    startCluster({ password: 'bench', flags: ['-c', 'wal_level=logical', '-c', 'max_replication_slots=10', '-c', 'max_wal_senders=10', '-c', `dynamic_library_path=$libdir:${WAL2JSON_DIR}`] }),
    startCluster({ password: 'bench' }),
  ]);
  try {
    for (const c of [a, b]) {
      await c.sql(`ALTER SYSTEM SET max_wal_size = '8GB'`);
      await c.sql('SELECT pg_reload_conf()');
    }
    const before = load();
    const out: string[] = [];
    if (!process.env.BENCH_SKIP_ONE_TIME) await oneTime(a, b, out);
    if (!process.env.BENCH_SKIP_FOLLOWING) await following(a, b, hasPgcopydb, out);
    const info = await machine(a);
    const head = [`## Sync (${new Date().toISOString()})`, ''];
    for (const [k, v] of Object.entries(info)) head.push(`- ${k}: ${v}`);
    head.push(`- load average (1/5/15 min) before: ${before}, after: ${load()} (2 cores shared with other work: it shows up here)`, '');
    console.log([...head, ...out].join('\n'));
  } finally {
    await Promise.allSettled([a.stop(), b.stop()]);
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
