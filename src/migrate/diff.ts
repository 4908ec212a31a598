/**
 * `nself migrate diff <source> <target>`: a Plan with no executor. It only reads: both databases
 * through read-only snapshot transactions, the env files as data (after finishing the undo of a run that was
 * killed in this project, like every command). A failure to inspect is an error,
 * never "no differences".
 */
import { countConfigDifferences, diffConfig, loadConfigRules } from '../config/index.js';
import { inspectSchema, planSchema, type SchemaScope } from '../schema/index.js';
import { diffData, type DataScope } from '../data/index.js';
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
    // Dry-run rules: a diff never records a first-seen SSH host key.
    const dbs = await openPair(source, target, false, opts.lockTimeoutMs, (m) => io.notice?.(m));
    try {
      plan.source.database = dbs.src.label;
      plan.target.database = dbs.tgt.label;
      const [src, tgt] = await Promise.all([snapshotClient(dbs.src), snapshotClient(dbs.tgt)]);
      try {
        if (comps.includes('schema')) {
          const [a, b] = await Promise.all([inspectSchema(src, opts.schemaScope), inspectSchema(tgt, opts.schemaScope)]);
          plan.schema = planSchema(a, b);
          plan.summary.perComponent.schema = plan.schema.changes.length + plan.schema.notHandled.length;
        }
        if (comps.includes('data')) {
          const d = await diffData(src, tgt, opts.dataScope);
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
