import { it } from 'node:test';
import pg from 'pg';
import { startCluster } from './support/pg.ts';
import { applyData, planData } from '../src/data/index.ts';
it('cancel', async () => {
  const c = await startCluster();
  try {
    await c.createDatabase('a'); await c.createDatabase('b');
    await c.sql(`CREATE TABLE big (id int PRIMARY KEY, pad text); INSERT INTO big SELECT i, repeat('x', 200) FROM generate_series(1, 1500000) i;`, 'a');
    await c.sql(`CREATE TABLE big (id int PRIMARY KEY CHECK (id > 10), pad text);`, 'b');
    const s = new pg.Client({ connectionString: c.url('a') }); await s.connect();
    const t = new pg.Client({ connectionString: c.url('b') }); await t.connect();
    await s.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY'); await t.query('BEGIN');
    const plan = await planData(s, t);
    let t0 = performance.now();
    try { await applyData(s, t, plan); } catch (e) { console.error('ERR', (e as Error).message, Math.round(performance.now() - t0), 'ms'); }
    await t.query('ROLLBACK'); await s.query('ROLLBACK');
    console.error('after rollback', Math.round(performance.now() - t0));
    await s.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY'); await t.query('BEGIN');
    await c.sql(`ALTER TABLE big DROP CONSTRAINT big_id_check`, 'b');
    t0 = performance.now();
    const r = await applyData(s, t, plan);
    console.error('full copy', JSON.stringify(r), Math.round(performance.now() - t0), 'ms', 'rss', process.memoryUsage().rss >> 20);
    await t.query('ROLLBACK'); await s.query('ROLLBACK');
    await s.end(); await t.end();
  } finally { await c.stop(); }
});
