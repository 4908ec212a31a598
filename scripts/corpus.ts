/**
 * Our own corpus figure (issue #8): every transition of the real public schemas in test/fixtures/real (pagila
 * releases, Chinook's variants, Supabase Auth's and hasura-auth's migrations and Synapse's schema versions step by
 * step, each newest state into and out of an empty database) through the real CLI — migrate, diff --exit-code,
 * rollback, diff against the before-state, and pg_dump of both sides where the servers are ≤ 15
 * (test/support/roundtrip.ts) — on throwaway embedded PostgreSQL servers.
 *
 *   npm run build && node --import tsx scripts/corpus.ts [target=15] [source=target] [name filter]
 *
 * Prints "N transitions, K converge (P %)" and each failure with its first error line (CORPUS_VERBOSE=1: all of it,
 * with the plan). Exit 1 when any fails. One transition at a time: about ten minutes on two busy cores.
 */
import { startCluster, type PgVersion, type TestCluster } from '../test/support/pg.ts';
import { roundTrip, StateDbs } from '../test/support/roundtrip.ts';
import { allTransitions } from '../test/fixtures/real/index.ts';

const targetVersion = Number(process.argv[2] ?? 15) as PgVersion;
const sourceVersion = Number(process.argv[3] ?? targetVersion) as PgVersion;
const filter = process.argv[4];

const clusters: TestCluster[] = [];
let failures = 0;
try {
  const target = await startCluster({ version: targetVersion });
  clusters.push(target);
  const source = sourceVersion === targetVersion ? target : await startCluster({ version: sourceVersion });
  if (source !== target) clusters.push(source);
  const targets = new StateDbs(target);
  const sources = source === target ? targets : new StateDbs(source);
  // a transition is possible when both servers can load its states
  const all = allTransitions(Math.min(targetVersion, sourceVersion) as PgVersion).filter((t) => !filter || t.name.includes(filter));
  const failed: string[] = [];
  for (const [i, tr] of all.entries()) {
    const t0 = Date.now();
    try {
      await roundTrip(tr, sources, targets);
      console.log(`[${i + 1}/${all.length}] ok    ${tr.name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    } catch (e) {
      const first = (e as Error).message.split('\n')[0];
      failed.push(`${tr.name}: ${first}`);
      console.log(`[${i + 1}/${all.length}] FAIL  ${tr.name}: ${first}`);
      if (process.env.CORPUS_VERBOSE) console.log((e as Error).message);
    }
  }
  failures = failed.length;
  const k = all.length - failed.length;
  console.log(`\nPostgreSQL ${sourceVersion} → ${targetVersion}: ${all.length} transitions, ${k} converge (${all.length ? ((100 * k) / all.length).toFixed(1) : '0'} %)`);
  for (const f of failed) console.log(`  ${f}`);
} finally {
  await Promise.allSettled(clusters.map((c) => c.stop()));
}
process.exitCode = failures ? 1 : 0;
