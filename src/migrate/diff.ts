/**
 * `nself migrate diff <source> <target>`: a Plan with no executor. It only reads: both databases
 * through read-only snapshot transactions, the env files as data (after finishing the undo of a run that was
 * killed in this project, like every command). A failure to inspect is an error,
 * never "no differences".
 */
import { asMigrateError } from '../errors.js';
import type pg from 'pg';
import type { DbHandle } from '../pg/connect.js';
// The engines' own modules, not their index files: a diff loads neither the data copy nor the schema apply code,
// and the data diff only when data is compared.
import { countConfigDifferences, diffConfig } from '../config/diff.js';
import { loadConfigRules } from '../config/rules.js';
import type { SchemaScope } from '../schema/model.js';
import { inspectSchema } from '../schema/inspect.js';
import { planSchema } from '../schema/plan.js';
import { canonicalCandidates, canonicalizeSource, canonicalNotice } from '../schema/canonical.js';
import type { DataScope } from '../data/types.js';
import { unmatchedFilters } from '../data/scope.js';
import { loadPair, needsDatabase, newPlan, openPair, snapshotClient, totalize, type PipelineIO } from './session.js';
import { recoverInterrupted } from './journal.js';
import type { ComponentName, Plan } from './types.js';

export interface DiffOptions {
  projectDir: string;
  source: string;
  target: string;
  components: ComponentName[];
  schemaScope: SchemaScope;
  dataScope: DataScope;
  /** --key / --exclude-key */
  configScope?: { include?: string[]; exclude?: string[] };
  lockTimeoutMs?: number;
}

async function withClient<R>(db: DbHandle, f: (c: pg.Client) => Promise<R>): Promise<R> {
  const c = await db.connect();
  try {
    return await f(c);
  } finally {
    await c.end().catch(() => {});
  }
}

export async function runDiff(opts: DiffOptions, io: PipelineIO): Promise<Plan> {
  const { source, target } = loadPair(opts.projectDir, opts.source, opts.target, io);
  const rules = opts.components.includes('config') ? loadConfigRules(opts.projectDir, source.name, target.name, opts.configScope) : undefined;
  await recoverInterrupted(opts.projectDir, [source.name, target.name], (m) => io.notice?.(m));
  const comps = opts.components;
  const plan = newPlan('diff', source, target, comps);
  if (comps.includes('config')) {
    const d = diffConfig(source, target, rules);
    plan.config = { diff: d };
    plan.summary.perComponent.config = countConfigDifferences(d);
  }
  if (needsDatabase(comps)) {
    // Dry-run rules: a diff never records a first-seen SSH host key. A database that cannot be reached marks the
    // database components "not compared" (with the error); what could be compared (config) is still shown.
    let dbs: Awaited<ReturnType<typeof openPair>>;
    try {
      dbs = await openPair(source, target, false, opts.lockTimeoutMs, (m) => io.notice?.(m));
    } catch (e) {
      const err = asMigrateError(e);
      plan.notCompared = comps.filter((c) => c !== 'config').map((component) => ({ component, error: { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) } }));
      totalize(plan);
      return plan;
    }
    try {
      plan.source.database = dbs.src.label;
      plan.target.database = dbs.tgt.label;
      const [src, tgt] = await Promise.all([snapshotClient(dbs.src), snapshotClient(dbs.tgt)]);
      try {
        if (comps.includes('schema')) {
          const [a, b] = await Promise.all([inspectSchema(src, opts.schemaScope), inspectSchema(tgt, opts.schemaScope)]);
          // The snapshot transactions are read-only: definitions that differ as text are judged on a separate,
          // short-lived target connection, in a transaction that is always rolled back.
          const canon = canonicalCandidates(a, b) > 0 ? await withClient(dbs.tgt, (c) => canonicalizeSource(c, a, b, { inTransaction: false })) : undefined;
          const note = canon && canonicalNotice(target.name, canon);
          if (note) io.notice?.(note);
          plan.schema = planSchema(canon?.model ?? a, b);
          if (!comps.includes('data')) {
            const schemas = [...a.facts, ...b.facts].filter((f) => f.kind === 'schema').map((f) => String(f.meta.name));
            for (const n of unmatchedFilters({ schemas: opts.schemaScope.schemas }, [], schemas)) io.notice?.(`${n} in ${source.name} or ${target.name}`);
          }
          plan.summary.perComponent.schema = plan.schema.changes.length + plan.schema.notHandled.length;
        }
        if (comps.includes('data')) {
          const { diffData } = await import('../data/diff.js');
          const d = await diffData(src, tgt, opts.dataScope);
          for (const n of unmatchedFilters(opts.dataScope, [...d.tables, ...d.onlyInSource, ...d.onlyInTarget], [])) io.notice?.(`${n} in ${source.name} or ${target.name}`);
          plan.data = { diff: d };
          plan.summary.perComponent.data = d.tables.filter((t) => !t.identical).length + d.onlyInSource.length + d.onlyInTarget.length;
        }
      } finally {
        await Promise.allSettled([src.end(), tgt.end()]);
      }
    } finally {
      await dbs.close();
    }
  }
  totalize(plan);
  return plan;
}
