/**
 * Schema diff benchmark: nself vs @pgkit/migra and @supabase/pg-delta, same machine, same databases, same run.
 *
 *   npx tsc -p tsconfig.json            # the CLI runs dist/
 *   node --import tsx bench/schema.ts
 *
 * Env: BENCH_TABLES=100,500,1000 (sizes), BENCH_REPEAT=5 (timed runs per tool and size, interleaved; median and best are shown).
 *
 * For each size N it builds, in one throwaway embedded PostgreSQL 15 cluster, a source database with N tables
 * (bigint PK, an FK to the previous table, 4 more columns, 2 indexes; one view over two tables per 10 tables) and
 * a target database with the same schema except for 5% of the tables: every 40th table lacks the column `note`,
 * every 40th (offset 20) lacks its index `t<i>_name_idx`. Then it times:
 *   - nself CLI:  `nself migrate diff local staging --schema-only --json` (spawned, wall time incl. node start)
 *   - nself API:  inspectSchema(source) ∥ inspectSchema(target) + planSchema(a, b) on open connections
 *   - migra API:  @pgkit/migra run(target, source, { unsafe: true }) + .sql on open @pgkit/client connections
 *     (its CLI truncates piped output at 64 KiB, so the programmatic API is the fair comparison).
 *   - pg-delta:   `pgdelta plan --source <target> --desired <source> --renames off --out <file>` (spawned, wall time
 *     incl. node start, like ours; the plan's actions are counted from the file).
 * Every tool should find the planted differences: the "found" column shows the counts, with a warning when off.
 * @pgkit/migra and @supabase/pg-delta are installed outside the project, into $BENCH_DEPS_DIR (default
 * /tmp/benchdeps), when missing.
 */
import os from 'node:os';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { startCluster, type TestCluster } from '../test/support/pg.ts';
import { makeProject } from '../test/support/cli.ts';
import { inspectSchema, planSchema } from '../src/schema/index.ts';
import { BIN, ensureGnuTime, envFile, loadMigra, loadPgDelta, machine, median, MIGRA_INSTALL, now, PGDELTA_INSTALL, secs, table, timeCommand, warnIfStale } from './common.ts';

const SIZES = (process.env.BENCH_TABLES ?? '100,500,1000').split(',').map((s) => Number(s.trim())).filter((n) => n > 1);
const REPEAT = Math.max(1, Number(process.env.BENCH_REPEAT ?? 5));

/** Table i lacks column `note` in the target. */
const dropsColumn = (i: number) => i % 40 === 0;
/** Table i lacks index t<i>_name_idx in the target. */
const dropsIndex = (i: number) => i % 40 === 20;

function ddl(n: number, target: boolean): string {
  const out: string[] = [];
  for (let i = 1; i <= n; i++) {
    const cols = [
      'id bigint PRIMARY KEY',
      `parent_id bigint${i > 1 ? ` REFERENCES t${i - 1}(id)` : ''}`,
      'name text NOT NULL',
      'qty int NOT NULL DEFAULT 0',
      'created timestamptz NOT NULL DEFAULT now()',
    ];
    if (!(target && dropsColumn(i))) cols.push('note varchar(200)');
    out.push(`CREATE TABLE t${i} (${cols.join(', ')});`);
    if (!(target && dropsIndex(i))) out.push(`CREATE INDEX t${i}_name_idx ON t${i} (name);`);
    out.push(`CREATE INDEX t${i}_created_idx ON t${i} (created DESC) WHERE qty > 0;`);
    if (i % 10 === 0) out.push(`CREATE VIEW v${i} AS SELECT a.id, a.name, b.qty FROM t${i} a JOIN t${i - 1} b ON b.id = a.parent_id;`);
  }
  return out.join('\n');
}

function expected(n: number): number {
  let k = 0;
  for (let i = 1; i <= n; i++) if (dropsColumn(i) || dropsIndex(i)) k++;
  return k;
}

interface Row {
  n: number;
  expected: number;
  cli: number[];
  cliRssMb: number;
  cliFound: number;
  apiInspect: number[];
  apiPlan: number[];
  apiFound: number;
  migra: number[];
  migraFound: number;
  pgdelta: number[];
  pgdeltaFound: number;
  pgdeltaRssMb: number;
}

async function client(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return c;
}

async function benchSize(cluster: TestCluster, n: number, migraMod: ReturnType<typeof loadMigra>, pgdelta: ReturnType<typeof loadPgDelta>): Promise<Row> {
  const src = `src_${n}`;
  const tgt = `tgt_${n}`;
  await cluster.createDatabase(src);
  await cluster.createDatabase(tgt);
  let t = now();
  await cluster.sql(ddl(n, false), src);
  await cluster.sql(ddl(n, true), tgt);
  await cluster.sql('ANALYZE', src);
  await cluster.sql('ANALYZE', tgt);
  console.error(`[${n} tables] built source + target in ${secs(now() - t)} s`);
  const row: Row = { n, expected: expected(n), cli: [], cliRssMb: 0, cliFound: -1, apiInspect: [], apiPlan: [], apiFound: -1, migra: [], migraFound: -1, pgdelta: [], pgdeltaFound: -1, pgdeltaRssMb: 0 };

  // The four are interleaved (CLI, API, migra, pg-delta; CLI, API, ...) so that load from elsewhere on the
  // machine hits all of them alike.
  const scratch = mkdtempSync(join(os.tmpdir(), 'nself-bench-pgdelta-'));
  const project = makeProject({ '.env.local': envFile(cluster, src), '.env.staging': envFile(cluster, tgt) });
  const a = await client(cluster.url(src));
  const b = await client(cluster.url(tgt));
  try {
    for (let r = 0; r < REPEAT; r++) {
      // ── nself CLI ──
      const res = await timeCommand(process.execPath, [BIN, 'migrate', 'diff', 'local', 'staging', '--schema-only', '--json'], { cwd: project.dir });
      if (res.code !== 0) throw new Error(`nself diff exited ${res.code}: ${res.stderr.slice(0, 2000)} ${res.stdout.slice(0, 2000)}`);
      const cliPlan = JSON.parse(res.stdout);
      row.cliFound = cliPlan.schema.changes.length;
      row.cli.push(res.ms);
      row.cliRssMb = Math.max(row.cliRssMb, res.maxRssKb / 1024);

      // ── nself API (same snapshot transactions as the CLI) ──
      await Promise.all([a.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY'), b.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')]);
      t = now();
      const [ma, mb] = await Promise.all([inspectSchema(a, {}), inspectSchema(b, {})]);
      const t1 = now();
      const plan = planSchema(ma, mb);
      const t2 = now();
      await Promise.all([a.query('ROLLBACK'), b.query('ROLLBACK')]);
      row.apiInspect.push(t1 - t);
      row.apiPlan.push(t2 - t1);
      row.apiFound = plan.changes.length;

      // ── @pgkit/migra run() ──
      // migra's direction: run(from, target) makes `from` look like `target` → from = our target, target = our source.
      const from = migraMod.client.createClient(cluster.url(tgt));
      const to = migraMod.client.createClient(cluster.url(src));
      try {
        t = now();
        const m = await migraMod.migra.run(from, to, { unsafe: true });
        const sql = m.sql;
        row.migra.push(now() - t);
        row.migraFound = sql.split('\n').filter((l) => /^\s*(alter table|create index|create unique index)/i.test(l)).length;
      } finally {
        await Promise.allSettled([from.end(), to.end()]);
      }

      // ── pg-delta CLI ── (--source: the database to change, --desired: what it should become)
      const out = join(scratch, `plan-${r}.json`);
      const pd = await timeCommand(process.execPath, [pgdelta.bin, 'plan', '--source', cluster.url(tgt), '--desired', cluster.url(src), '--renames', 'off', '--out', out]);
      if (pd.code !== 0) throw new Error(`pgdelta plan exited ${pd.code}: ${pd.stderr.slice(0, 2000)}`);
      row.pgdelta.push(pd.ms);
      row.pgdeltaRssMb = Math.max(row.pgdeltaRssMb, pd.maxRssKb / 1024);
      row.pgdeltaFound = (JSON.parse(readFileSync(out, 'utf8')) as { actions: unknown[] }).actions.length;
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    project.remove();
    await Promise.allSettled([a.end(), b.end()]);
  }
  console.error(`[${n} tables] nself CLI: ${row.cli.map(secs).join(', ')} s (${row.cliFound} changes)`);
  console.error(`[${n} tables] nself API: inspect ${row.apiInspect.map(secs).join(', ')} s, plan ${row.apiPlan.map(secs).join(', ')} s (${row.apiFound} changes)`);
  console.error(`[${n} tables] migra API: ${row.migra.map(secs).join(', ')} s (${row.migraFound} ALTER TABLE / CREATE INDEX statements)`);
  console.error(`[${n} tables] pgdelta plan: ${row.pgdelta.map(secs).join(', ')} s (${row.pgdeltaFound} actions)`);

  await cluster.sql(`DROP DATABASE ${src}`);
  await cluster.sql(`DROP DATABASE ${tgt}`);
  return row;
}

async function main(): Promise<void> {
  ensureGnuTime();
  warnIfStale();
  const migraMod = loadMigra();
  const pgdelta = loadPgDelta();
  const cluster = await startCluster({ password: 'bench' });
  const rows: Row[] = [];
  try {
    const info = await machine(cluster);
    const loadBefore = os.loadavg().map((x) => x.toFixed(1)).join(' ');
    // Node start-up + module load of the CLI alone (`nself migrate --version`), and bare `node -e ''`.
    const boot: number[] = [];
    const bare: number[] = [];
    for (let r = 0; r < 3; r++) {
      boot.push((await timeCommand(process.execPath, [BIN, 'migrate', '--version'])).ms);
      bare.push((await timeCommand(process.execPath, ['-e', ''])).ms);
    }
    for (const n of SIZES) rows.push(await benchSize(cluster, n, migraMod, pgdelta));

    const load = os.loadavg().map((x) => x.toFixed(1)).join(' ');

    const lines: string[] = [];
    lines.push(`## Schema diff (${new Date().toISOString()})`, '');
    for (const [k, v] of Object.entries(info)) lines.push(`- ${k}: ${v}`);
    lines.push(`- @pgkit/migra ${migraMod.version} (installed with: \`${MIGRA_INSTALL}\`)`);
    lines.push(`- @supabase/pg-delta ${pgdelta.version} (installed with: \`${PGDELTA_INSTALL}\`)`);
    lines.push(`- ${REPEAT} interleaved runs per tool and size, shown as median (best); \`nself migrate --version\` (node start + CLI load) takes ${secs(median(boot))} s, bare \`node -e ''\` ${secs(median(bare))} s`);
    lines.push(`- load average (1/5/15 min) before: ${loadBefore}, after: ${load} (2 cores; other work on the machine shows up here)`, '');
    const best = (xs: number[]) => Math.min(...xs);
    const api = (r: Row) => r.apiInspect.map((x, i) => x + r.apiPlan[i]);
    const mb = (xs: number[]) => `${secs(median(xs))} (${secs(best(xs))}) s`;
    const ratio = (a: number[], b: number[]) => `${(median(a) / median(b)).toFixed(1)}× (${(best(a) / best(b)).toFixed(1)}×)`;
    /** the peer with the lower median at this size */
    const fastest = (r: Row) => (median(r.migra) <= median(r.pgdelta) ? { name: 'migra', xs: r.migra } : { name: 'pg-delta', xs: r.pgdelta });
    lines.push(
      table(
        ['tables', 'differences planted', 'nself CLI diff (wall)', 'nself API inspect+plan', 'API: inspect / plan (median)', '@pgkit/migra run()', 'pgdelta plan (wall)', 'fastest peer ÷ nself CLI', 'migra ÷ nself API', 'found: nself / migra stmts / pg-delta actions', 'peak RSS: nself CLI / pgdelta'],
        rows.map((r) => [
          r.n,
          r.expected,
          mb(r.cli),
          mb(api(r)),
          `${secs(median(r.apiInspect))} / ${secs(median(r.apiPlan))} s`,
          mb(r.migra),
          mb(r.pgdelta),
          `${ratio(fastest(r).xs, r.cli)} (${fastest(r).name})`,
          ratio(r.migra, api(r)),
          `${r.cliFound} / ${r.migraFound} / ${r.pgdeltaFound}`,
          `${r.cliRssMb.toFixed(0)} / ${r.pgdeltaRssMb.toFixed(0)} MB`,
        ]),
      ),
    );
    const big = rows.find((r) => r.n === 1000) ?? rows[rows.length - 1];
    const peer = fastest(big);
    const verdict = (ours: number[]) => {
      const x = median(peer.xs) / median(ours);
      return `${secs(median(ours))} s, ${x.toFixed(1)}× faster than ${peer.name} (the faster peer: ${secs(median(peer.xs))} s) → ${x >= 5 && median(ours) < 1000 ? 'MET' : 'MISSED'}`;
    };
    lines.push('');
    lines.push(`Goal at ${big.n} tables: < 1 s and ≥ 5× faster than the fastest of @pgkit/migra and pg-delta (medians).`);
    lines.push(`- CLI: ${verdict(big.cli)}`);
    lines.push(`- API: ${verdict(api(big))}`);
    const wrong = rows.filter((r) => r.cliFound !== r.expected || r.apiFound !== r.expected || r.migraFound !== r.expected || r.pgdeltaFound !== r.expected);
    if (wrong.length) lines.push(`- WARNING: a tool did not find exactly the planted differences at ${wrong.map((r) => r.n).join(', ')} tables (see the "found" column)`);
    console.log(lines.join('\n'));
  } finally {
    await cluster.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
