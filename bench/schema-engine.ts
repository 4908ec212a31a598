/**
 * Schema engine benchmark: inspect / plan / apply on a generated schema, next to pg_dump --schema-only
 * on the same machine in the same run.
 *
 *   node --import tsx bench/schema-engine.ts [tables=1000]
 *
 * Each table: bigint PK, an FK to the previous table, 4 more columns, 2 indexes; one view per 10 tables.
 * Prints: inspect time (cold + best of 3), facts count, plan time (empty → full and full → full), apply time
 * (creating the whole schema in an empty database, one transaction), and pg_dump --schema-only time.
 */
import { startCluster } from '../test/support/pg.ts';
import { execFileSync } from 'node:child_process';
import pg from 'pg';
import { inspectSchema, planSchema, applySchema } from '../src/schema/index.js';

const TABLES = Number(process.argv[2] ?? 1000);

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

async function main() {
  const server = await startCluster({ password: 'bench' });
  const port = server.port;
  const url = (db: string) => `postgres://postgres:bench@127.0.0.1:${port}/${db}`;
  const connect = async (db: string) => {
    const c = new pg.Client({ connectionString: url(db) });
    await c.connect();
    return c;
  };
  try {
    const admin = await connect('postgres');
    await admin.query('CREATE DATABASE full_db');
    await admin.query('CREATE DATABASE empty_db');
    await admin.end();

    const full = await connect('full_db');
    let t0 = process.hrtime.bigint();
    const ddl: string[] = [];
    for (let i = 1; i <= TABLES; i++) {
      ddl.push(`create table t${i} (id bigint primary key, parent_id bigint${i > 1 ? ` references t${i - 1}(id)` : ''}, name text not null, qty int default 0, created timestamptz default now(), note varchar(200));`);
      ddl.push(`create index t${i}_name_idx on t${i} (name); create index t${i}_created_idx on t${i} (created desc) where qty > 0;`);
      if (i % 10 === 0) ddl.push(`create view v${i} as select a.id, a.name, b.qty from t${i} a join t${i - 1} b on b.id = a.parent_id;`);
    }
    await full.query(ddl.join('\n'));
    console.log(`built ${TABLES} tables, ${TABLES * 2} indexes, ${Math.floor(TABLES / 10)} views in ${ms(t0).toFixed(0)} ms`);

    t0 = process.hrtime.bigint();
    const model = await inspectSchema(full);
    const cold = ms(t0);
    const runs: number[] = [];
    for (let i = 0; i < 3; i++) {
      t0 = process.hrtime.bigint();
      await inspectSchema(full);
      runs.push(ms(t0));
    }
    console.log(`inspectSchema: cold ${cold.toFixed(0)} ms, best of 3 ${Math.min(...runs).toFixed(0)} ms (${model.facts.length} facts)`);

    t0 = process.hrtime.bigint();
    execFileSync('pg_dump', ['--schema-only', '-d', url('full_db')], { stdio: ['ignore', 'ignore', 'inherit'] });
    const dumpMs = ms(t0);
    console.log(`pg_dump --schema-only: ${dumpMs.toFixed(0)} ms  (inspect/pg_dump = ${(Math.min(...runs) / dumpMs).toFixed(2)})`);

    const empty = await connect('empty_db');
    const emptyModel = await inspectSchema(empty);
    t0 = process.hrtime.bigint();
    const plan = planSchema(model, emptyModel);
    console.log(`planSchema(full → empty): ${ms(t0).toFixed(0)} ms, ${plan.statements.length} statements`);
    t0 = process.hrtime.bigint();
    const same = planSchema(model, model);
    console.log(`planSchema(full → full): ${ms(t0).toFixed(0)} ms, ${same.statements.length} statements`);

    t0 = process.hrtime.bigint();
    await empty.query('BEGIN');
    await applySchema(empty, plan);
    await empty.query('COMMIT');
    console.log(`applySchema (create everything, one transaction): ${ms(t0).toFixed(0)} ms`);
    const after = planSchema(model, await inspectSchema(empty));
    console.log(`re-plan after apply: ${after.statements.length} statements`);
    await empty.end();
    await full.end();
  } finally {
    await server.stop();
  }
}

await main();
