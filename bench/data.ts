/**
 * Data copy benchmark: `nself migrate local staging --data-only --force` vs pg_dump | psql, pg_dump -Fc +
 * pg_restore -j2, and pgcopydb, between two local PostgreSQL 15 clusters, same machine, same run.
 *
 *   npx tsc -p tsconfig.json            # the CLI runs dist/
 *   node --import tsx bench/data.ts
 *
 * Env: BENCH_ROWS=2000000 (rows in the table; e.g. 200000 for a quick check), BENCH_REPEAT=1 (rounds; medians shown).
 *
 * Builds `big` (bigint PK, text, int, timestamptz, jsonb; ~185 bytes a row on disk, ~370 MB at 2M rows) with
 * generate_series in the source cluster and the same empty table in the target cluster. Every tool starts from an
 * empty target (TRUNCATE + CHECKPOINT before each run, untimed) and every result is checked afterwards (row count
 * and a checksum of all rows equal to the source's, untimed). After nself's copy, the same migrate is run again
 * on the now equal environments (the no-op). Peak RSS comes from GNU time (`/usr/bin/time`, Debian package
 * `time`); pgcopydb from the Debian package `pgcopydb` (installed here with apt-get when missing and possible).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster, type TestCluster } from '../test/support/pg.ts';
import { makeProject } from '../test/support/cli.ts';
import { BIN, ensureGnuTime, envFile, machine, median, now, secs, table, timeCommand, timeShell, warnIfStale } from './common.ts';

const ROWS = Number(process.env.BENCH_ROWS ?? 2_000_000);
const REPEAT = Math.max(1, Number(process.env.BENCH_REPEAT ?? 1));
const DB = 'app';

const DDL = `CREATE TABLE big (id bigint PRIMARY KEY, name text NOT NULL, qty int, at timestamptz, doc jsonb)`;
const FILL = `INSERT INTO big
  SELECT i,
         'user ' || md5(i::text),
         (i * 7919 % 100000)::int,
         timestamptz '2020-01-01 00:00:00+00' + i * interval '17 seconds',
         jsonb_build_object('i', i, 'tags', jsonb_build_array('a', 'b', i % 13), 'ok', i % 2 = 0, 'ref', substr(md5((i * 7)::text), 1, 8))
  FROM generate_series(1, $1::bigint) i`;
const CHECK = `SELECT count(*)::bigint AS n, coalesce(sum(hashtextextended(b::text, 0)), 0)::text AS h FROM big b`;

function ensurePgcopydb(): boolean {
  const has = () => {
    try {
      execFileSync('pgcopydb', ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  if (has()) return true;
  try {
    console.error('installing Debian package pgcopydb...');
    execFileSync('apt-get', ['install', '-y', 'pgcopydb'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  } catch {
    return false;
  }
  return has();
}

interface Run {
  ms: number;
  rssMb: string;
  note?: string;
}

interface Tool {
  name: string;
  command: string;
  run(): Promise<Run>;
}

interface Scenario {
  title: string;
  rows: number;
  /** MB of table data (pg_table_size). */
  mb: number;
  source: { cluster: TestCluster; db: string };
  target: { cluster: TestCluster; db: string };
  /** pg_dump selection: `-t public.big` or `-n public`. */
  dumpWhat: string;
  /** Empties the target (untimed). */
  reset: () => Promise<void>;
  /** Before nself's copy only (untimed, after reset): rows it must replace (and back up) on the target. */
  prefill?: () => Promise<void>;
  /** The target's content equals the source's (untimed, after every run). */
  check: () => Promise<void>;
  peers: boolean;
}

interface Outcome { lines: string[] }

async function runScenario(sc: Scenario, hasPgcopydb: boolean): Promise<Outcome> {
  const { cluster: a, db: sdb } = sc.source;
  const { cluster: b, db: tdb } = sc.target;
  const project = makeProject({ '.env.local': envFile(a, sdb), '.env.staging': envFile(b, tdb) });
  try {
    const env = { PGPASSWORD: 'bench' };
    const conn = (c: TestCluster) => `-h 127.0.0.1 -p ${c.port} -U postgres`;
    const time = '/usr/bin/time -f RSS_KB=%M';
    const rss = (kb: number[]) => kb.map((k) => `${(k / 1024).toFixed(0)}`).join(' + ') + ' MB';
    const shell = async (cmd: string): Promise<Run> => {
      const r = await timeShell(cmd, env);
      if (r.code !== 0) throw new Error(`failed (${r.code}): ${cmd}\n${r.stderr.slice(0, 3000)}`);
      return { ms: r.ms, rssMb: rss(r.rssKb) };
    };
    const nselfArgs = [BIN, 'migrate', 'local', 'staging', '--data-only', '--force', '--json'];
    const nself = async (bin = BIN): Promise<Run & { report: any }> => {
      const r = await timeCommand(process.execPath, [bin, ...nselfArgs.slice(1)], { cwd: project.dir });
      let report: any;
      try {
        report = JSON.parse(r.stdout);
      } catch {
        throw new Error(`nself migrate printed no JSON report (exit ${r.code}): ${r.stderr.slice(0, 3000)}${r.stdout.slice(0, 3000)}`);
      }
      if (r.code !== 0 || report.status !== 'ok' || !report.verified) throw new Error(`nself migrate failed (exit ${r.code}): ${JSON.stringify(report.error ?? report).slice(0, 3000)}`);
      const steps = (report.steps as { name: string; status: string; duration_ms: number }[]).map((s) => `${s.name} ${s.status === 'skipped' ? '–' : secs(s.duration_ms)}`).join(', ');
      const verify = (report.steps as { name: string; detail?: string }[]).find((s) => s.name === 'verify')?.detail ?? '';
      return { ms: r.ms, rssMb: `${(r.maxRssKb / 1024).toFixed(0)} MB`, note: `${steps}; verify: ${verify}`, report };
    };
    const NSELF = 'nself migrate local staging --data-only --force';
    const tools: Tool[] = [
      {
        name: 'pg_dump --data-only | psql --single-transaction',
        command: `pg_dump ${conn(a)} --data-only ${sc.dumpWhat} ${sdb} | psql -X -q -v ON_ERROR_STOP=1 --single-transaction ${conn(b)} -d ${tdb}`,
        run: () => shell(`${time} pg_dump ${conn(a)} --data-only ${sc.dumpWhat} ${sdb} | ${time} psql -X -q -v ON_ERROR_STOP=1 --single-transaction ${conn(b)} -d ${tdb} >/dev/null`),
      },
    ];
    if (sc.peers) {
      tools.push({
        name: 'pg_dump -Fc (file) + pg_restore -j2',
        command: `pg_dump ${conn(a)} -Fc --data-only ${sc.dumpWhat} -f $TMP/big.dump ${sdb} && pg_restore ${conn(b)} -d ${tdb} --data-only -j2 $TMP/big.dump`,
        run: async () => {
          const dir = mkdtempSync(join(tmpdir(), 'nself-bench-dump-'));
          try {
            const f = join(dir, 'big.dump');
            return await shell(`${time} pg_dump ${conn(a)} -Fc --data-only ${sc.dumpWhat} -f ${f} ${sdb} && ${time} pg_restore ${conn(b)} -d ${tdb} --data-only -j2 ${f}`);
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        },
      });
      if (hasPgcopydb) {
        tools.push({
          name: 'pgcopydb copy table-data --table-jobs 2',
          command: `pgcopydb copy table-data --source postgres://postgres:***@127.0.0.1:${a.port}/${sdb} --target postgres://postgres:***@127.0.0.1:${b.port}/${tdb} --table-jobs 2 --dir $TMP`,
          run: async () => {
            const dir = mkdtempSync(join(tmpdir(), 'nself-bench-pgcopydb-'));
            try {
              return await shell(`${time} pgcopydb copy table-data --source '${a.url(sdb)}' --target '${b.url(tdb)}' --table-jobs 2 --dir ${dir}/work`);
            } finally {
              rmSync(dir, { recursive: true, force: true });
            }
          },
        });
      }
    }
    tools.push({ name: NSELF, command: `nself migrate local staging --data-only --force --json`, run: () => nself() });
    const base = process.env.BENCH_NSELF_BASE;
    if (base) tools.push({ name: `${NSELF} (baseline build: ${base})`, command: `node ${base} migrate local staging --data-only --force --json`, run: () => nself(base) });

    const results = new Map<string, Run[]>(tools.map((x) => [x.name, []]));
    const noops: Run[] = [];
    const firsts: Run[] = [];
    const loadBefore = loadavg().map((x) => x.toFixed(1)).join(' ');
    for (let round = 0; round < REPEAT; round++) {
      for (const tool of tools) {
        await sc.reset();
        if (tool.name.startsWith(NSELF)) await sc.prefill?.();
        await b.sql('CHECKPOINT');
        const r = await tool.run();
        await sc.check();
        results.get(tool.name)!.push(r);
        console.error(`[${sc.title}, round ${round + 1}] ${tool.name}: ${secs(r.ms)} s, peak RSS ${r.rssMb}${r.note ? ` (${r.note})` : ''}`);
      }
      // The no-op: the same migrate again, the environments now being equal.
      await b.sql('CHECKPOINT');
      const r = await nself();
      const migrateStep = (r.report.steps as { name: string; status: string }[]).find((s) => s.name === 'migrate');
      if (migrateStep && migrateStep.status !== 'skipped') r.note = `NOT a no-op: ${r.note}`;
      noops.push(r);
      console.error(`[${sc.title}, round ${round + 1}] nself no-op migrate: ${secs(r.ms)} s, peak RSS ${r.rssMb} (${r.note})`);
      // The same without the record of the copy (.nself/data-versions.json): equal environments compared the
      // first time, by one checksum pass per side.
      rmSync(join(project.dir, '.nself', 'data-versions.json'), { force: true });
      const f = await nself();
      if ((f.report.steps as { name: string; status: string }[]).find((s) => s.name === 'migrate')?.status !== 'skipped') f.note = `NOT a no-op: ${f.note}`;
      firsts.push(f);
      console.error(`[${sc.title}, round ${round + 1}] nself no-op migrate, first compare: ${secs(f.ms)} s (${f.note})`);
    }

    const med = (name: string) => median(results.get(name)!.map((r) => r.ms));
    const ours = med(NSELF);
    const dumpPsql = med(tools[0].name);
    const noop = median(noops.map((r) => r.ms));
    const first = median(firsts.map((r) => r.ms));
    const lines: string[] = [];
    lines.push(`### ${sc.title}`, '');
    lines.push(`- ${sc.rows.toLocaleString('en-US')} rows, ${sc.mb.toFixed(0)} MB (pg_table_size); ${REPEAT === 1 ? 'one run' : `median of ${REPEAT} interleaved rounds`} per tool, empty target each time${sc.prefill ? ' (for nself: then prefilled as the title says)' : ''}`);
    lines.push(`- load average (1/5/15 min) before: ${loadBefore}, after: ${loadavg().map((x) => x.toFixed(1)).join(' ')} (2 cores; other work on the machine shows up here)`, '');
    const md = (cells: (string | number)[]) => cells.map((c) => String(c).replace(/\|/g, '\\|'));
    lines.push(
      table(
        md(['tool', 'wall time (median)', 'runs (s)', 'rows/s', 'time ÷ pg_dump | psql', 'peak RSS']),
        [
          ...tools.map((x) => {
            const m = med(x.name);
            return md([x.name, `${secs(m)} s`, results.get(x.name)!.map((r) => secs(r.ms)).join(', '), Math.round(sc.rows / (m / 1000)).toLocaleString('en-US'), `${(m / dumpPsql).toFixed(2)}×`, results.get(x.name)!.at(-1)!.rssMb]);
          }),
          ['nself no-op migrate (already equal, right after its copy)', `${secs(noop)} s`, noops.map((r) => secs(r.ms)).join(', '), '', `${((noop / ours) * 100).toFixed(0)} % of nself's copy`, noops.at(-1)!.rssMb],
          ['nself no-op migrate, first compare (no record of the copy)', `${secs(first)} s`, firsts.map((r) => secs(r.ms)).join(', '), '', `${((first / ours) * 100).toFixed(0)} % of nself's copy`, firsts.at(-1)!.rssMb],
        ],
      ),
    );
    lines.push('', 'Exact commands (passwords via PGPASSWORD):', '');
    for (const x of tools) lines.push(`- ${x.name}: \`${x.command}\``);
    lines.push(`- no-op: the nself command again right after its copy (it recorded the pair's row versions: .nself/data-versions.json)`);
    lines.push(`- no-op, first compare: once more with that record deleted (one checksum pass per side)`, '');
    lines.push(`nself steps (s), copy, per round: ${results.get(NSELF)!.map((r) => r.note).join(' | ')}`, '');
    lines.push(`nself steps (s), no-op, per round: ${noops.map((r) => r.note).join(' | ')}`, '');
    lines.push(`nself steps (s), no-op first compare, per round: ${firsts.map((r) => r.note).join(' | ')}`, '');
    const pgc = hasPgcopydb && sc.peers ? med('pgcopydb copy table-data --table-jobs 2') : undefined;
    const rssMb = Math.max(...results.get(NSELF)!.map((r) => parseFloat(r.rssMb)), ...noops.map((r) => parseFloat(r.rssMb)), ...firsts.map((r) => parseFloat(r.rssMb)));
    lines.push(`Ratios: nself ÷ pg_dump|psql ${(ours / dumpPsql).toFixed(2)}×${pgc === undefined ? '' : `; nself ÷ pgcopydb ${(ours / pgc).toFixed(2)}×`}; no-op ${((noop / ours) * 100).toFixed(0)} % of the copy (first compare ${((first / ours) * 100).toFixed(0)} %); peak RSS ${rssMb.toFixed(0)} MB`, '');
    return { lines };
  } finally {
    project.remove();
  }
}

const SCENARIOS = (process.env.BENCH_SCENARIOS ?? 'two,one,many').split(',');
const ONE_ROWS = Number(process.env.BENCH_ONE_ROWS ?? 1_000_000);
const MANY = Number(process.env.BENCH_MANY_TABLES ?? 1000);
/** many: rows put into every other target table before nself's copy (which then backs them up and replaces them). */
const MANY_PREFILL = Number(process.env.BENCH_MANY_PREFILL ?? 0);

async function main(): Promise<void> {
  ensureGnuTime();
  warnIfStale();
  const hasPgcopydb = ensurePgcopydb();
  const [a, b] = await Promise.all([startCluster({ password: 'bench' }), startCluster({ password: 'bench' })]);
  try {
    for (const c of [a, b]) {
      // Same settings for every tool: room for WAL so no tool pays for forced checkpoints mid-copy.
      await c.sql(`ALTER SYSTEM SET max_wal_size = '8GB'`);
      await c.sql('SELECT pg_reload_conf()');
    }
    const bigTable = async (c: TestCluster, db: string, rows: number) => {
      await c.createDatabase(db);
      await c.sql(DDL, db);
      if (rows > 0) {
        await c.query(FILL, [rows], db);
        await c.sql('VACUUM ANALYZE big', db);
      }
    };
    const sizeOf = async (c: TestCluster, db: string, where: string) =>
      Number((await c.query<{ s: string }>(`SELECT coalesce(sum(pg_table_size(c.oid)), 0)::text AS s FROM pg_class c WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace ${where}`, [], db))[0].s) / 2 ** 20;
    const checkBig = (src: { cluster: TestCluster; db: string }, tgt: { cluster: TestCluster; db: string }) => async () => {
      const [[x], [y]] = await Promise.all([src.cluster.query<{ n: string; h: string }>(CHECK, [], src.db), tgt.cluster.query<{ n: string; h: string }>(CHECK, [], tgt.db)]);
      if (x.n !== y.n || x.h !== y.h) throw new Error(`target has ${y.n} rows (checksum ${y.h}), source ${x.n} (${x.h})`);
    };
    const out: string[] = [];
    const info = await machine(a);
    out.push(`## Data copy (${new Date().toISOString()})`, '');
    for (const [k, v] of Object.entries(info)) out.push(`- ${k}: ${v}`);
    if (!hasPgcopydb) out.push('- pgcopydb: not available (the Debian package did not install)');
    out.push('');

    if (SCENARIOS.includes('two')) {
      let t = now();
      await Promise.all([bigTable(a, DB, ROWS), bigTable(b, DB, 0)]);
      await a.sql('CHECKPOINT');
      const mb = await sizeOf(a, DB, '');
      console.error(`two servers: ${ROWS} rows, ${mb.toFixed(0)} MB, built in ${secs(now() - t)} s`);
      const src = { cluster: a, db: DB };
      const tgt = { cluster: b, db: DB };
      out.push(...(await runScenario({ title: `One table, source and target on two servers (${ROWS.toLocaleString('en-US')} rows)`, rows: ROWS, mb, source: src, target: tgt, dumpWhat: '-t public.big', reset: async () => void (await b.sql('TRUNCATE big', DB)), check: checkBig(src, tgt), peers: true }, hasPgcopydb)).lines);
      await Promise.all([a.sql(`DROP DATABASE ${DB}`), b.sql(`DROP DATABASE ${DB}`)]);
    }
    if (SCENARIOS.includes('one')) {
      const t = now();
      await Promise.all([bigTable(a, 'one_src', ONE_ROWS), bigTable(a, 'one_tgt', 0)]);
      await a.sql('CHECKPOINT');
      const mb = await sizeOf(a, 'one_src', '');
      console.error(`one server: ${ONE_ROWS} rows, ${mb.toFixed(0)} MB, built in ${secs(now() - t)} s`);
      const src = { cluster: a, db: 'one_src' };
      const tgt = { cluster: a, db: 'one_tgt' };
      out.push(...(await runScenario({ title: `One table, source and target databases in one server (${ONE_ROWS.toLocaleString('en-US')} rows)`, rows: ONE_ROWS, mb, source: src, target: tgt, dumpWhat: '-t public.big', reset: async () => void (await a.sql('TRUNCATE big', 'one_tgt')), check: checkBig(src, tgt), peers: false }, hasPgcopydb)).lines);
      await a.sql('DROP DATABASE one_src');
      await a.sql('DROP DATABASE one_tgt');
    }
    if (SCENARIOS.includes('many')) {
      const ddl = `DO $$ BEGIN FOR i IN 1..${MANY} LOOP
          EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, name text NOT NULL, qty int, at timestamptz)', i);
        END LOOP; END $$`;
      await Promise.all([a.createDatabase('many'), b.createDatabase('many')]);
      await Promise.all([a.sql(ddl, 'many'), b.sql(ddl, 'many')]);
      await a.sql(`DO $$ BEGIN FOR i IN 1..${MANY} LOOP
          EXECUTE format('INSERT INTO t%s SELECT g, md5((g * %s)::text), g, timestamptz ''2020-01-01'' + g * interval ''1 day'' FROM generate_series(1, 10) g', i, i);
        END LOOP; END $$`, 'many');
      await a.sql('VACUUM ANALYZE', 'many');
      const mb = await sizeOf(a, 'many', '');
      const names = Array.from({ length: MANY }, (_, i) => `t${i + 1}`);
      const sumAll = `SELECT count(*)::text AS n, coalesce(sum(h), 0)::text AS h FROM (${names.map((n) => `SELECT hashtextextended('${n}' || x::text, 0) AS h FROM ${n} x`).join(' UNION ALL ')}) s`;
      const check = async () => {
        const [[x], [y]] = await Promise.all([a.query<{ n: string; h: string }>(sumAll, [], 'many'), b.query<{ n: string; h: string }>(sumAll, [], 'many')]);
        if (x.n !== y.n || x.h !== y.h) throw new Error(`many tables: target has ${y.n} rows (checksum ${y.h}), source ${x.n} (${x.h})`);
      };
      const prefill = MANY_PREFILL > 0
        ? async () => void (await b.sql(`DO $$ BEGIN FOR i IN 1..${MANY} BY 2 LOOP
            EXECUTE format('INSERT INTO t%s SELECT g, ''old'', -g, now() FROM generate_series(1, ${MANY_PREFILL}) g', i);
          END LOOP; END $$`, 'many'))
        : undefined;
      const title = `${MANY} tables × 10 rows, two servers${prefill ? `; before nself's copy every other target table has ${MANY_PREFILL} row(s) (pg_dump | psql: empty target)` : ''}`;
      out.push(...(await runScenario({ title, rows: MANY * 10, mb, source: { cluster: a, db: 'many' }, target: { cluster: b, db: 'many' }, dumpWhat: '-n public', reset: async () => void (await b.sql(`TRUNCATE ${names.join(', ')}`, 'many')), ...(prefill ? { prefill } : {}), check, peers: false }, hasPgcopydb)).lines);
    }
    console.log(out.join('\n'));
  } finally {
    await Promise.allSettled([a.stop(), b.stop()]);
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
