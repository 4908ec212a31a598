/**
 * Round trips over the migra corpus (../shared/corpus/migra), both directions, against a real PostgreSQL, through
 * the real CLI: `migrate local staging --schema-only --force`, then `diff --schema-only --exit-code` must find
 * nothing and pg_dump --schema-only of both sides must be equal (normalised for column order). A chain test then
 * walks one database through every corpus state with the engine's API.
 *
 * The corpus is not part of the repository: without it (or without pg_dump) these tests are skipped with a note —
 * in CI, where it sits beside the checkout, a missing corpus fails the run (test/support/prereq.ts).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import { startCluster, type TestCluster } from './support/pg.ts';
import { makeProject } from './support/cli.ts';
import { CORPUS_DIR, needs } from './support/prereq.ts';
import { normaliseDump } from './support/dump.ts';
import { inspectSchema, planSchema, applySchema } from '../src/schema/index.ts';

const CORPUS = CORPUS_DIR;
/** Why these tests cannot run here (no corpus, no pg_dump), or false; in CI a missing one throws instead. */
const unavailable = needs('corpus', 'pg_dump');
const cases = unavailable ? [] : readdirSync(CORPUS).filter((d) => existsSync(join(CORPUS, d, 'a.sql'))).sort();

/** Cases that cannot pass, with the reason. */
const SKIP: Record<string, string> = {};

let cluster: TestCluster;
before(async () => {
  if (unavailable) return;
  cluster = await startCluster();
  await cluster.sql('CREATE ROLE schemainspect_test_role');
});
after(async () => {
  await cluster?.stop();
});

async function withDb<R>(db: string, f: (c: pg.Client) => Promise<R>): Promise<R> {
  const c = new pg.Client({ connectionString: cluster.url(db) });
  await c.connect();
  try {
    return await f(c);
  } finally {
    await c.end();
  }
}

function dump(db: string): string {
  return execFileSync('pg_dump', ['--schema-only', '--no-owner', '-d', cluster.url(db)], { encoding: 'utf8' });
}

let n = 0;
/** corpus state (`case/a.sql`) → a database already holding it (filled by the round trips, reused by the chain) */
const loaded = new Map<string, string>();
for (const name of cases) {
  for (const [from, to] of [['a', 'b'], ['b', 'a']] as const) {
    const title = `${name}: ${from} → ${to}`;
    const skip = SKIP[`${name}:${from}${to}`] ?? SKIP[name];
    test(title, { skip }, async () => {
      const i = ++n;
      const src = `s${i}`;
      const tgt = `t${i}`;
      await cluster.createDatabase(src);
      await cluster.createDatabase(tgt);
      await cluster.sql(readFileSync(join(CORPUS, name, `${to}.sql`), 'utf8'), src);
      loaded.set(`${name}/${to}.sql`, src);
      await cluster.sql(readFileSync(join(CORPUS, name, `${from}.sql`), 'utf8'), tgt);
      const env = (db: string) => `POSTGRES_HOST=127.0.0.1\nPOSTGRES_PORT=${cluster.port}\nPOSTGRES_DB=${db}\nPOSTGRES_PASSWORD=${cluster.password}\n`;
      const project = makeProject({ '.env.local': env(src), '.env.staging': env(tgt) });
      let planned: string[] = [];
      try {
        const m = await project.run(['migrate', 'local', 'staging', '--schema-only', '--force', '--json']);
        const report = JSON.parse(m.stdout || '{}');
        planned = (report.plan?.schema?.statements ?? []).map((st: { sql: string }) => st.sql);
        assert.equal(m.code, 0, `${m.stderr}\n--- plan:\n${planned.join(';\n')}`);
        assert.equal(report.verified, true);
        const d = await project.run(['migrate', 'diff', 'local', 'staging', '--schema-only', '--exit-code']);
        assert.equal(d.code, 0, `diff after migrate:\n${d.stdout}${d.stderr}`);
      } finally {
        project.remove();
      }
      const source = await withDb(src, (c) => inspectSchema(c));
      assert.equal(planSchema(source, source).statements.length, 0);
      const ds = normaliseDump(dump(src));
      const dt = normaliseDump(dump(tgt));
      assert.equal(dt, ds, `pg_dump differs after migrating.\nplan:\n${planned.join(';\n')}`);
    });
  }
}

if (unavailable) test('migra corpus round trips', { skip: unavailable }, () => {});

test('chain: one target database walks through every corpus state in turn (cross-case transitions)', { skip: unavailable }, async () => {
  const states = cases.flatMap((c) => [`${c}/a.sql`, `${c}/b.sql`]);
  await cluster.createDatabase('chain_target');
  const t = new pg.Client({ connectionString: cluster.url('chain_target') });
  await t.connect();
  try {
    for (const [i, st] of states.entries()) {
      let db = loaded.get(st);
      if (!db) {
        db = `chain_${i}`;
        await cluster.createDatabase(db);
        await cluster.sql(readFileSync(join(CORPUS, st), 'utf8'), db);
      }
      const source = await withDb(db, (c) => inspectSchema(c));
      const plan = planSchema(source, await inspectSchema(t));
      await t.query('BEGIN');
      try {
        await applySchema(t, plan);
        const again = planSchema(source, await inspectSchema(t));
        assert.deepEqual(again.statements.map((s) => s.sql), [], `${st}: not empty after apply`);
        await t.query('COMMIT');
      } catch (e) {
        await t.query('ROLLBACK');
        (e as Error).message = `${st}: ${(e as Error).message}\n--- plan:\n${plan.statements.map((s) => s.sql).join(';\n')}`;
        throw e;
      }
      // the tool's own diff checks every step; pg_dump (slow) checks a sample and the last one
      if (i % 10 === 9 || i === states.length - 1) assert.equal(normaliseDump(dump('chain_target')), normaliseDump(dump(db)), `${st}: pg_dump differs`);
    }
  } finally {
    await t.end();
  }
});
