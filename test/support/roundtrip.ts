/**
 * One schema transition through the real CLI, as a user would run it: a database in state `from` is migrated to
 * state `to` (`migrate local staging --schema-only --force`), `diff --schema-only --exit-code` must then find
 * nothing; `rollback --force` must bring it back to `from` (`diff --exit-code` = 0 against a copy of the
 * before-state). Where both servers are 15 or older and pg_dump is here (the pg_dump used is 15, which refuses newer
 * servers), pg_dump --schema-only of target and source must be equal too, and of target and before-state after the
 * rollback: a check that does not rely on the tool's own inspection (made last, so that the CLI's steps all run).
 * Shared by test/schema-real.test.ts and scripts/corpus.ts.
 */
import { AssertionError } from 'node:assert';
import { envFor, type TestCluster } from './pg.ts';
import { makeProject } from './cli.ts';
import { schemaDump } from './dump.ts';
import { have } from './prereq.ts';
import type { State, Transition } from '../fixtures/real/index.ts';

/** Databases holding corpus states on one server: each state loaded once, copied (CREATE DATABASE … TEMPLATE) per use. */
export class StateDbs {
  private loaded = new Map<string, Promise<string>>();
  private n = 0;
  constructor(readonly cluster: TestCluster) {}

  /** A database in `state`, loaded on first use; never to be changed (it is the template of copies). */
  db(state: State): Promise<string> {
    let db = this.loaded.get(state.key);
    if (!db) {
      const name = `state_${this.loaded.size + 1}`;
      db = (async () => {
        await this.cluster.createDatabase(name);
        try {
          if (state.sql) await this.cluster.sql(state.sql, name);
        } catch (e) {
          throw new Error(`loading ${state.key} on PostgreSQL ${this.cluster.version}: ${(e as Error).message}`);
        }
        return name;
      })();
      this.loaded.set(state.key, db);
    }
    return db;
  }

  /** A new database that is a copy of `state`, to be changed. */
  async copy(state: State): Promise<string> {
    const template = await this.db(state);
    const name = `work_${++this.n}`;
    await this.cluster.sql(`CREATE DATABASE ${name} TEMPLATE ${template}`);
    return name;
  }
}

/** What two normalised dumps (test/support/dump.ts: sorted statements) disagree on: a few statements of each side. */
function dumpDifference(got: string, want: string): string {
  const g = new Set(got.split(';\n'));
  const w = new Set(want.split(';\n'));
  const show = (xs: string[]) => xs.slice(0, 3).map((x) => JSON.stringify(x.slice(0, 160))).join(', ') || '(none)';
  return `only on the target: ${show([...g].filter((x) => !w.has(x)))}; missing there: ${show([...w].filter((x) => !g.has(x)))}`;
}

function fail(step: string, out: { stdout: string; stderr: string }, plan: string[] = []): never {
  const first = (out.stderr.trim() || out.stdout.trim()).split('\n')[0] ?? '';
  throw new AssertionError({ message: `${step}: ${first}\n${out.stdout}${out.stderr}${plan.length ? `\n--- plan:\n${plan.join(';\n')}` : ''}` });
}

/**
 * `tr` from a server of `source` (holding tr.to) to a server of `target` (a copy of tr.from), and back by rollback.
 * Throws an AssertionError whose first line names the step that failed and the tool's first line of output.
 */
export async function roundTrip(tr: Transition, source: StateDbs, target: StateDbs): Promise<void> {
  const src = await source.db(tr.to);
  const before = await target.db(tr.from);
  const tgt = await target.copy(tr.from);
  const dumps = have('pg_dump') && source.cluster.version <= 15 && target.cluster.version <= 15;
  const dump = (dbs: StateDbs, db: string) => schemaDump(dbs.cluster.url(db));
  /** [step, target's dump, expected dump]: compared after the CLI's own steps, so that those all run */
  const dumped: [string, string, string][] = [];
  let plan: string[] = [];
  const p = makeProject({
    '.env.local': envFor(source.cluster, src),
    '.env.staging': envFor(target.cluster, tgt),
    '.env.prod': envFor(target.cluster, before),
  });
  try {
    const m = await p.run(['migrate', 'local', 'staging', '--schema-only', '--force', '--json'], { timeoutMs: 180_000 });
    let report: { verified?: boolean; plan?: { schema?: { statements?: { sql: string }[] } } } = {};
    try {
      report = JSON.parse(m.stdout || '{}');
    } catch {
      /* not JSON: the failure below shows the output */
    }
    plan = (report.plan?.schema?.statements ?? []).map((s) => s.sql);
    if (m.code !== 0 || report.verified !== true) fail(`migrate (exit ${m.code})`, m, plan);
    const d = await p.run(['migrate', 'diff', 'local', 'staging', '--schema-only', '--exit-code'], { timeoutMs: 180_000 });
    if (d.code !== 0) fail(`diff after migrate (exit ${d.code})`, d, plan);
    if (dumps) dumped.push(['pg_dump after migrate', dump(target, tgt), dump(source, src)]);
    // nothing applied (the migration changed nothing the tool sees): nothing to undo
    if (plan.length) {
      const rb = await p.run(['migrate', 'rollback', '--force'], { timeoutMs: 180_000 });
      if (rb.code !== 0) fail(`rollback (exit ${rb.code})`, rb, plan);
      const back = await p.run(['migrate', 'diff', 'prod', 'staging', '--schema-only', '--exit-code'], { timeoutMs: 180_000 });
      if (back.code !== 0) fail(`diff after rollback (exit ${back.code})`, back, plan);
      if (dumps) dumped.push(['pg_dump after rollback', dump(target, tgt), dump(target, before)]);
    }
    for (const [step, got, want] of dumped) {
      if (got !== want) fail(step, { stdout: '', stderr: `pg_dump --schema-only differs: ${dumpDifference(got, want)}` }, plan);
    }
  } finally {
    p.remove();
  }
}
