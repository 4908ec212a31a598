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
import { makeProject, type Project } from '../test/support/cli.ts';
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

async function main(): Promise<void> {
  ensureGnuTime();
  warnIfStale();
  const hasPgcopydb = ensurePgcopydb();
  const [a, b] = await Promise.all([startCluster({ password: 'bench' }), startCluster({ password: 'bench' })]);
  let project: Project | undefined;
  try {
    for (const c of [a, b]) {
      // Same settings for every tool: room for WAL so no tool pays for forced checkpoints mid-copy.
      await c.sql(`ALTER SYSTEM SET max_wal_size = '8GB'`);
      await c.sql('SELECT pg_reload_conf()');
      await c.createDatabase(DB);
      await c.sql(DDL, DB);
    }
    const loadBefore = loadavg().map((x) => x.toFixed(1)).join(' ');
    let t = now();
    await a.query(FILL, [ROWS], DB);
    await a.sql('VACUUM ANALYZE big', DB);
    await a.sql('CHECKPOINT');
    const [{ size }] = await a.query<{ size: string }>(`SELECT pg_total_relation_size('big')::text AS size`, [], DB);
    const [{ tsize }] = await a.query<{ tsize: string }>(`SELECT pg_table_size('big')::text AS tsize`, [], DB);
    const [want] = await a.query<{ n: string; h: string }>(CHECK, [], DB);
    const mb = Number(tsize) / 2 ** 20;
    console.error(`source: ${ROWS} rows, table ${mb.toFixed(0)} MB (+ PK index: ${(Number(size) / 2 ** 20).toFixed(0)} MB), built in ${secs(now() - t)} s`);

    project = makeProject({ '.env.local': envFile(a, DB), '.env.staging': envFile(b, DB) });
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
    const nself = async (): Promise<Run & { report: any }> => {
      const r = await timeCommand(process.execPath, nselfArgs, { cwd: project!.dir });
      let report: any;
      try {
        report = JSON.parse(r.stdout);
      } catch {
        throw new Error(`nself migrate printed no JSON report (exit ${r.code}): ${r.stderr.slice(0, 3000)}${r.stdout.slice(0, 3000)}`);
      }
      if (r.code !== 0 || report.status !== 'ok' || !report.verified) throw new Error(`nself migrate failed (exit ${r.code}): ${JSON.stringify(report.error ?? report).slice(0, 3000)}`);
      const steps = (report.steps as { name: string; status: string; duration_ms: number }[]).map((s) => `${s.name} ${s.status === 'skipped' ? '–' : secs(s.duration_ms)}`).join(', ');
      return { ms: r.ms, rssMb: `${(r.maxRssKb / 1024).toFixed(0)} MB`, note: steps, report };
    };

    const tools: Tool[] = [
      {
        name: 'pg_dump --data-only | psql --single-transaction',
        command: `pg_dump ${conn(a)} --data-only -t public.big ${DB} | psql -X -q -v ON_ERROR_STOP=1 --single-transaction ${conn(b)} -d ${DB}`,
        run: () => shell(`${time} pg_dump ${conn(a)} --data-only -t public.big ${DB} | ${time} psql -X -q -v ON_ERROR_STOP=1 --single-transaction ${conn(b)} -d ${DB} >/dev/null`),
      },
      {
        name: 'pg_dump -Fc (file) + pg_restore -j2',
        command: `pg_dump ${conn(a)} -Fc --data-only -t public.big -f $TMP/big.dump ${DB} && pg_restore ${conn(b)} -d ${DB} --data-only -j2 $TMP/big.dump`,
        run: async () => {
          const dir = mkdtempSync(join(tmpdir(), 'nself-bench-dump-'));
          try {
            const f = join(dir, 'big.dump');
            return await shell(`${time} pg_dump ${conn(a)} -Fc --data-only -t public.big -f ${f} ${DB} && ${time} pg_restore ${conn(b)} -d ${DB} --data-only -j2 ${f}`);
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        },
      },
    ];
    if (hasPgcopydb) {
      tools.push({
        name: 'pgcopydb copy table-data --table-jobs 2',
        command: `pgcopydb copy table-data --source postgres://postgres:***@127.0.0.1:${a.port}/${DB} --target postgres://postgres:***@127.0.0.1:${b.port}/${DB} --table-jobs 2 --dir $TMP`,
        run: async () => {
          const dir = mkdtempSync(join(tmpdir(), 'nself-bench-pgcopydb-'));
          try {
            return await shell(`${time} pgcopydb copy table-data --source '${a.url(DB)}' --target '${b.url(DB)}' --table-jobs 2 --dir ${dir}/work`);
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        },
      });
    }
    tools.push({ name: 'nself migrate local staging --data-only --force', command: `nself migrate local staging --data-only --force --json`, run: nself });

    const results = new Map<string, Run[]>(tools.map((x) => [x.name, []]));
    const noops: Run[] = [];
    for (let round = 0; round < REPEAT; round++) {
      for (const tool of tools) {
        await b.sql('TRUNCATE big', DB);
        await b.sql('CHECKPOINT');
        const r = await tool.run();
        const [got] = await b.query<{ n: string; h: string }>(CHECK, [], DB);
        if (got.n !== want.n || got.h !== want.h) throw new Error(`${tool.name}: target has ${got.n} rows (checksum ${got.h}), source ${want.n} (${want.h})`);
        results.get(tool.name)!.push(r);
        console.error(`[round ${round + 1}] ${tool.name}: ${secs(r.ms)} s, peak RSS ${r.rssMb}${r.note ? ` (${r.note})` : ''}`);
      }
      // The no-op: the same migrate again, the environments now being equal.
      await b.sql('CHECKPOINT');
      const r = await nself();
      const migrateStep = (r.report.steps as { name: string; status: string }[]).find((s) => s.name === 'migrate');
      if (migrateStep && migrateStep.status !== 'skipped') r.note = `NOT a no-op: ${r.note}`;
      noops.push(r);
      console.error(`[round ${round + 1}] nself no-op migrate: ${secs(r.ms)} s, peak RSS ${r.rssMb} (${r.note})`);
    }

    // ── report ────────────────────────────────────────────────────────────────────
    const info = await machine(a);
    const med = (name: string) => median(results.get(name)!.map((r) => r.ms));
    const ours = med('nself migrate local staging --data-only --force');
    const dumpPsql = med(tools[0].name);
    const lines: string[] = [];
    lines.push(`## Data copy (${new Date().toISOString()})`, '');
    for (const [k, v] of Object.entries(info)) lines.push(`- ${k}: ${v}`);
    lines.push(`- table: ${ROWS} rows, ${mb.toFixed(0)} MB (pg_table_size; ${(Number(size) / 2 ** 20).toFixed(0)} MB with its PK index); ${REPEAT === 1 ? 'one run' : `median of ${REPEAT} rounds`} per tool, empty target each time`);
    if (!hasPgcopydb) lines.push('- pgcopydb: not available (the Debian package did not install)');
    lines.push(`- load average (1/5/15 min) before: ${loadBefore}, after: ${loadavg().map((x) => x.toFixed(1)).join(' ')} (2 cores; other work on the machine shows up here)`);
    lines.push('');
    lines.push(
      table(
        ['tool', 'wall time', 'rows/s', 'MB/s', 'time ÷ nself', 'nself ÷ time', 'peak RSS'],
        [...tools.map((x) => {
          const m = med(x.name);
          return [x.name, `${secs(m)} s`, Math.round(ROWS / (m / 1000)).toLocaleString('en-US'), (mb / (m / 1000)).toFixed(1), `${(m / ours).toFixed(2)}×`, `${(ours / m).toFixed(2)}×`, results.get(x.name)!.at(-1)!.rssMb];
        }),
        ['nself no-op migrate (already equal)', `${secs(median(noops.map((r) => r.ms)))} s`, '', '', '', `${((median(noops.map((r) => r.ms)) / ours) * 100).toFixed(0)}% of the copy`, noops.at(-1)!.rssMb]],
      ),
    );
    lines.push('', 'Exact commands (passwords via PGPASSWORD):', '');
    for (const x of tools) lines.push(`- ${x.name}: \`${x.command}\``);
    lines.push(`- no-op: the nself command again right after its copy`, '');
    lines.push(`nself steps, copy: ${results.get(tools.at(-1)!.name)!.at(-1)!.note}`);
    lines.push(`nself steps, no-op: ${noops.at(-1)!.note}`, '');
    const pgc = hasPgcopydb ? med('pgcopydb copy table-data --table-jobs 2') : undefined;
    const noop = median(noops.map((r) => r.ms));
    const rssMb = Math.max(...results.get(tools.at(-1)!.name)!.map((r) => parseFloat(r.rssMb)), ...noops.map((r) => parseFloat(r.rssMb)));
    lines.push('Goals:');
    lines.push(`- ≤ 0.8× the pg_dump | psql time: ${(ours / dumpPsql).toFixed(2)}× → ${ours / dumpPsql <= 0.8 ? 'MET' : 'MISSED'}`);
    lines.push(`- faster than pgcopydb: ${pgc === undefined ? 'pgcopydb not available' : `${secs(ours)} s vs ${secs(pgc)} s → ${ours < pgc ? 'MET' : 'MISSED'}`}`);
    lines.push(`- no-op < 25% of the copy: ${((noop / ours) * 100).toFixed(0)}% → ${noop / ours < 0.25 ? 'MET' : 'MISSED'}`);
    lines.push(`- peak RSS < 200 MB: ${rssMb.toFixed(0)} MB → ${rssMb < 200 ? 'MET' : 'MISSED'}`);
    console.log(lines.join('\n'));
  } finally {
    project?.remove();
    await Promise.allSettled([a.stop(), b.stop()]);
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
