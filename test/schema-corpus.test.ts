/**
 * Round trips over the migra corpus (/work/shared/corpus/migra), both directions, against a real PostgreSQL:
 * plan → apply in one transaction → re-inspect (plan must be empty) → pg_dump --schema-only of both sides equal
 * (normalised for column order).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import { startCluster, type TestCluster } from './support/pg.ts';
import { inspectSchema, planSchema, applySchema, fingerprintSchema } from '../src/schema/index.ts';

const CORPUS = '/work/shared/corpus/migra';
const cases = existsSync(CORPUS) ? readdirSync(CORPUS).filter((d) => existsSync(join(CORPUS, d, 'a.sql'))).sort() : [];

/** Cases that cannot pass, with the reason. */
const SKIP: Record<string, string> = {};

let cluster: TestCluster;
before(async () => {
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

export function normaliseDump(dump: string): string {
  const lines = dump
    .split('\n')
    .filter((l) => !l.startsWith('--') && l.trim() !== '' && !/^SET |^SELECT pg_catalog.set_config/.test(l) && !/^\\(un)?restrict /.test(l));
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    out.push(l);
    if (/^CREATE (UNLOGGED )?TABLE .*\($/.test(l)) {
      const cols: string[] = [];
      let j = i + 1;
      while (j < lines.length && !/^\)/.test(lines[j]!)) cols.push(lines[j++]!.replace(/,$/, ''));
      out.push(...cols.sort());
      i = j - 1;
    }
  }
  // statements in pg_dump order are sorted by kind/name already; sort blocks to ignore the order of equal-rank objects
  const blocks = out.join('\n').split(/;\n/).map((b) => b.trim()).filter(Boolean);
  return blocks.sort().join(';\n');
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
      const source = await withDb(src, (c) => inspectSchema(c));
      const plan = await withDb(tgt, async (c) => {
        const target = await inspectSchema(c);
        const p = planSchema(source, target);
        assert.deepEqual(p.errors, [], 'plan errors');
        assert.ok(p.changes.length > 0 || fingerprintSchema(source) === fingerprintSchema(target));
        await c.query('BEGIN');
        try {
          await applySchema(c, p);
          const again = planSchema(source, await inspectSchema(c));
          assert.deepEqual(again.statements.map((s) => s.sql), [], `plan after apply is not empty.\nfirst plan:\n${p.statements.map((s) => s.sql).join(';\n')}`);
          await c.query('COMMIT');
        } catch (e) {
          await c.query('ROLLBACK');
          (e as Error).message += `\n--- plan:\n${p.statements.map((s) => s.sql).join(';\n')}`;
          throw e;
        }
        return p;
      });
      assert.equal(planSchema(source, source).statements.length, 0);
      const ds = normaliseDump(dump(src));
      const dt = normaliseDump(dump(tgt));
      assert.equal(dt, ds, `pg_dump differs after migrating.\nplan:\n${plan.statements.map((s) => s.sql).join(';\n')}`);
    });
  }
}

test('chain: one target database walks through every corpus state in turn (cross-case transitions)', async () => {
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
