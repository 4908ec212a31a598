/**
 * `nself migrate <source> <target>`: validate → plan → safety → backup → checkpoint → migrate → verify.
 *
 * Schema and data changes run in ONE target transaction (advisory-locked), verified before COMMIT; config
 * files are written after the database work succeeded but before COMMIT, and put back if anything after
 * them fails. So a failed or interrupted migration leaves the target as it was.
 */
import type pg from 'pg';
import { asMigrateError, EXIT, MigrateError, refusedError } from '../errors.js';
import type { Environment } from '../env/types.js';
import { loadEnvironment } from '../env/resolve.js';
import { lockTarget } from '../pg/lock.js';
import { relationKey } from '../pg/quote.js';
import { applyConfig, diffConfig, planConfig, verifyConfig } from '../config/index.js';
import { applySchema, backupSchema, countHazardRows, fingerprintSchema, inspectSchema, planSchema, type SchemaModel, type SchemaScope } from '../schema/index.js';
import { applyData, backupData, planData, verifyData, type DataPlan, type DataScope, type DataTableResult } from '../data/index.js';
import { backupFiles, restoreFiles, type FileBackup } from '../checkpoint/files.js';
import { backupDir, beginCheckpoint, removeCheckpoint, updateStatus, type Checkpoint } from '../checkpoint/store.js';
import { explainLostConnection, loadPair, needsDatabase, newPlan, openPair, snapshotClient, Steps, totalize, type PipelineIO } from './session.js';
import { buildConfirmation, countConfigEdits, countSchemaChanges, countDataChanges, formatCount } from './summary.js';
import type { ComponentName, Plan, Report } from './types.js';

export interface MigrateOptions {
  projectDir: string;
  source: string;
  target: string;
  components: ComponentName[];
  dryRun: boolean;
  force: boolean;
  schemaScope: SchemaScope;
  dataScope: DataScope;
  lockTimeoutMs: number;
}

export interface MigrateOutcome {
  /** The plan, once it was computed (the whole answer of --dry-run). */
  plan?: Plan;
  /** What happened, step by step (also when it failed). */
  report: Report;
  /** Set when the run failed or was refused; the CLI exits with its exitCode. */
  error?: MigrateError;
}

/** Runs a migration (or its dry run). Never throws a MigrateError: failures come back in the outcome. */
export async function runMigrate(opts: MigrateOptions, io: PipelineIO): Promise<MigrateOutcome> {
  const steps = new Steps(io);
  const report: Report = {
    kind: 'report',
    command: 'migrate',
    status: 'ok',
    source: opts.source,
    target: opts.target,
    components: opts.components,
    steps: steps.list,
    verified: false,
  };
  try {
    await migrate(opts, io, steps, report);
    return { plan: report.plan, report };
  } catch (e) {
    const err = asMigrateError(e);
    report.status = err.exitCode === EXIT.refused ? 'refused' : 'failed';
    report.error = { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}), ...(err.details === undefined ? {} : { details: err.details }) };
    return { plan: report.plan, report, error: err };
  }
}

async function migrate(opts: MigrateOptions, io: PipelineIO, steps: Steps, report: Report): Promise<void> {
  const comps = opts.components;
  const { source, target } = await steps.run('validate', async () => {
    const pair = loadPair(opts.projectDir, opts.source, opts.target, io);
    return { value: pair, detail: `${pair.source.name} → ${pair.target.name}: environments configured` };
  });
  report.source = source.name;
  report.target = target.name;

  const dbs = needsDatabase(comps)
    ? await steps.run('validate', async () => {
        const d = await openPair(source, target, !opts.dryRun);
        return { value: d, detail: `databases reachable: ${d.src.label}, ${d.tgt.label}` };
      })
    : undefined;

  let srcClient: pg.Client | undefined;
  let tgtClient: pg.Client | undefined;
  try {
    if (dbs) {
      srcClient = await snapshotClient(dbs.src);
      tgtClient = await dbs.tgt.connect();
    }

    // ── plan ────────────────────────────────────────────────────────────────────────────
    const { plan, sourceModel } = await steps.run('plan', async () => {
      const p = await buildMigratePlan(opts, source, target, srcClient, tgtClient);
      return { value: p, detail: `${p.plan.summary.changes} change(s) planned` };
    });
    if (dbs) {
      plan.source.database = dbs.src.label;
      plan.target.database = dbs.tgt.label;
    }
    report.plan = plan;
    io.onPlan?.(plan);
    if (opts.dryRun) return;

    if (plan.schema && plan.schema.errors.length > 0) {
      throw new MigrateError('schema_plan_has_errors', `the schema plan cannot be applied: ${plan.schema.errors[0]}${plan.schema.errors.length > 1 ? ` (+${plan.schema.errors.length - 1} more)` : ''}`, {
        hint: 'fix the target first (e.g. create the missing role), then run the migration again',
        details: plan.schema.errors,
      });
    }

    // ── safety ──────────────────────────────────────────────────────────────────────────
    const prompted = await steps.run('safety', async () => {
      if (plan.summary.changes === 0) return { value: false, detail: 'nothing to change' };
      if (!plan.confirmation.required) return { value: false, detail: 'no confirmation needed' };
      if (opts.force) return { value: false, detail: `confirmed by --force (${plan.confirmation.reasons.join('; ')})` };
      const ok = await io.confirm(`${plan.confirmation.reasons.join('; ')}.\nType "yes" to continue: `);
      if (!ok) throw refusedError(`migration to ${target.name} cancelled: confirmation not given`, 'type exactly "yes" at the prompt, or pass --force');
      return { value: true, detail: 'confirmed at the prompt' };
    });

    if (plan.summary.changes === 0) {
      for (const s of ['backup', 'checkpoint', 'migrate'] as const) steps.skip(s, 'nothing to change');
      await steps.run('verify', async () => ({ value: undefined, detail: `${target.name} already matches ${source.name}` }));
      report.verified = true;
      return;
    }

    await execute({ opts, plan, report, steps, io, source, target, src: srcClient, tgt: tgtClient, sourceModel, prompted });
  } finally {
    await Promise.allSettled([srcClient?.end(), tgtClient?.end()]);
    await dbs?.close();
  }
}

async function buildMigratePlan(
  opts: MigrateOptions,
  source: Environment,
  target: Environment,
  src?: pg.Client,
  tgt?: pg.Client,
): Promise<{ plan: Plan; sourceModel?: SchemaModel }> {
  const comps = opts.components;
  const plan = newPlan('migrate', source, target, comps);
  let sourceModel: SchemaModel | undefined;
  // Data is planned first: the schema plan must know which tables get rows in the same transaction.
  const dp = comps.includes('data') ? await planData(src!, tgt!, opts.dataScope) : undefined;
  if (comps.includes('schema')) {
    const [a, b] = await Promise.all([inspectSchema(src!, opts.schemaScope), inspectSchema(tgt!, opts.schemaScope)]);
    sourceModel = a;
    const written = dp ? new Set([...dp.tables.filter((t) => t.action === 'copy'), ...dp.onlyInSource].map((t) => relationKey(t.schema, t.name))) : undefined;
    const sp = planSchema(a, b, written ? { rowsFollow: written } : {});
    await countHazardRows(tgt!, sp);
    plan.schema = sp;
    plan.summary.perComponent.schema = countSchemaChanges(sp);
  }
  if (dp) {
    plan.data = { plan: dp };
    plan.summary.perComponent.data = countDataChanges(dp);
  }
  if (comps.includes('config')) {
    const cp = planConfig(source, target);
    plan.config = { diff: diffConfig(source, target), plan: cp };
    plan.summary.perComponent.config = countConfigEdits(cp);
  }
  totalize(plan);
  plan.confirmation = buildConfirmation(plan, target);
  return { plan, sourceModel };
}

interface ExecuteContext {
  opts: MigrateOptions;
  plan: Plan;
  report: Report;
  steps: Steps;
  io: PipelineIO;
  source: Environment;
  target: Environment;
  src?: pg.Client;
  tgt?: pg.Client;
  sourceModel?: SchemaModel;
  /** The user took time at a prompt: the target may have changed since planning. */
  prompted: boolean;
}

async function execute({ opts, plan, report, steps, io, source, target, src, tgt, sourceModel, prompted }: ExecuteContext): Promise<void> {
  const comps = opts.components;
  const useDb = !!tgt;
  let inTx = false;
  let committing = false;
  let checkpoint: Checkpoint | undefined;
  let configBackup: FileBackup[] | undefined;
  let configWritten = false;
  const backupMeta: Record<string, unknown> = {};
  let targetModel: SchemaModel | undefined;
  let backedUpTables = new Set<string>();

  const undoConfig = async () => {
    if (configWritten && configBackup && checkpoint) {
      await restoreFiles(opts.projectDir, configBackup, backupDir(checkpoint));
      configWritten = false;
    }
  };
  io.onInterrupt?.(undoConfig);

  try {
    if (useDb) {
      await tgt!.query('BEGIN');
      inTx = true;
      await lockTarget(tgt!, target.name);
      if (plan.schema) {
        // Drift guard: the target must still be what the plan was computed against.
        targetModel = await inspectSchema(tgt!, opts.schemaScope);
        if (fingerprintSchema(targetModel) !== plan.schema.targetFingerprint) {
          throw new MigrateError('target_drift', `the ${target.name} schema changed after the plan was computed`, { hint: 'run the command again to plan against the current schema' });
        }
      }
    }

    // Rows may have changed while a prompt waited: a data-only copy is planned again under the lock, before
    // the backup (with the schema step it is planned again after that step anyway).
    if (prompted && useDb && plan.data?.plan && !comps.includes('schema')) plan.data.plan = await planData(src!, tgt!, opts.dataScope);

    // ── backup + checkpoint ────────────────────────────────────────────────────────────
    const draft = await beginCheckpoint(opts.projectDir);
    try {
      await steps.run('backup', async () => {
        const parts: string[] = [];
        if (plan.config?.plan && countConfigEdits(plan.config.plan) > 0) {
          configBackup = await backupFiles(opts.projectDir, configFilesOf(plan, target), `${draft.dir}`);
          backupMeta.config = configBackup;
          parts.push(`config: ${configBackup.length} file(s)`);
        }
        if (plan.schema && countSchemaChanges(plan.schema) > 0) {
          backupMeta.schema = await backupSchema(tgt!, plan.schema, targetModel!, `${draft.dir}/schema`);
          parts.push('schema: snapshot + rows at risk');
        }
        if (plan.data?.plan) {
          const atRisk = dataAtRisk(plan);
          if (countDataChanges(atRisk) > 0) {
            backupMeta.data = await backupData(tgt!, atRisk, `${draft.dir}/data`);
            backedUpTables = new Set(atRisk.tables.filter((t) => t.action === 'copy').map((t) => relationKey(t.schema, t.name)));
            parts.push(`data: ${backedUpTables.size} table(s)`);
          }
        }
        return { value: undefined, detail: parts.join('; ') || 'nothing at risk' };
      });
      checkpoint = await steps.run('checkpoint', async () => {
        const cp = await draft.commit({ source: source.name, target: target.name, components: comps, tool: plan.tool, plan, backup: backupMeta });
        return { value: cp, detail: `.nself/migrations/${cp.id}` };
      });
      report.checkpoint = checkpoint.id;
    } catch (e) {
      await draft.discard();
      throw e;
    }

    // ── migrate ────────────────────────────────────────────────────────────────────────
    let dataResults: DataTableResult[] = [];
    await steps.run('migrate', async () => {
      const parts: string[] = [];
      if (plan.schema && countSchemaChanges(plan.schema) > 0) {
        await applySchema(tgt!, plan.schema, { lockTimeoutMs: opts.lockTimeoutMs });
        parts.push(`schema: ${plan.schema.statements.length} statement(s)`);
      }
      if (comps.includes('data') && plan.data?.plan) {
        // The schema step may have changed the tables: plan the copy again inside the transaction.
        const dp = comps.includes('schema') ? await planData(src!, tgt!, opts.dataScope) : plan.data.plan;
        // Tables the schema step created had no rows to save; every other table to copy must be in the backup.
        const existed = new Set(plan.data.plan.tables.map((t) => relationKey(t.schema, t.name)));
        const unsaved = dp.tables.filter((t) => t.action === 'copy' && existed.has(relationKey(t.schema, t.name)) && !backedUpTables.has(relationKey(t.schema, t.name)));
        if (unsaved.length > 0) {
          // Never replace rows the checkpoint does not hold: rollback could not bring them back.
          throw new MigrateError('data_not_backed_up', `after the schema step, ${unsaved[0]!.table} needs its rows replaced but was not backed up`, {
            hint: 'nothing was changed (rolled back); run the migration again',
          });
        }
        if (countDataChanges(dp) > 0) {
          dataResults = await applyData(src!, tgt!, dp, { onProgress: io.onProgress });
          report.data = dataResults;
          parts.push(`data: ${dataResults.length} table(s), ${formatCount(dataResults.reduce((a, r) => a + r.rowsAfter, 0))} row(s)`);
        }
        plan.data.plan = dp;
      }
      if (plan.config?.plan && countConfigEdits(plan.config.plan) > 0) {
        configWritten = true; // set first: a partial write is undone too
        const w = await applyConfig(plan.config.plan, opts.projectDir, { label: `${source.name} → ${target.name} (${checkpoint!.id})` });
        parts.push(`config: wrote ${w.written.length + w.created.length} file(s)`);
      }
      return { value: undefined, detail: parts.join('; ') };
    });

    // ── verify (before COMMIT) ───────────────────────────────────────────────────────
    await steps.run('verify', async () => {
      const parts: string[] = [];
      if (plan.schema) {
        // The source snapshot has not moved (REPEATABLE READ): compare the re-inspected target with it.
        const left = planSchema(sourceModel!, await inspectSchema(tgt!, opts.schemaScope));
        if (left.changes.length > 0) {
          throw new MigrateError('schema_verify_failed', `after applying, the ${target.name} schema still differs from ${source.name} in ${left.changes.length} object(s): ${left.changes.slice(0, 3).map((c) => c.identity).join(', ')}`, {
            hint: 'nothing was changed (rolled back); please report this with `nself migrate diff --json`',
            details: left.changes,
          });
        }
        parts.push('schema matches');
      }
      if (comps.includes('data') && plan.data?.plan) {
        await verifyData(src!, tgt!, plan.data.plan);
        parts.push('data matches');
      }
      if (plan.config?.plan && countConfigEdits(plan.config.plan) > 0) {
        const v = verifyConfig(plan.config.plan, loadEnvironment(opts.projectDir, target.name));
        if (!v.ok) {
          throw new MigrateError('config_verify_failed', `after writing, the ${target.name} configuration is missing: ${v.missing.join(', ')}`, { hint: 'nothing was changed (restored); check for a higher-precedence file overriding the own file' });
        }
        parts.push('config applied');
      }
      return { value: undefined, detail: parts.join('; ') };
    });

    // Marked applied before COMMIT: a process killed in between leaves an "applied" checkpoint whose rollback
    // restores what is already there (harmless), never a committed migration without a usable checkpoint.
    await updateStatus(checkpoint, 'applied');
    if (inTx) {
      committing = true;
      await tgt!.query('COMMIT');
      inTx = false;
    }
    configWritten = false; // committed: no undo on interrupt any more
    io.onInterrupt?.(undefined);
    report.verified = true;
  } catch (e) {
    if (inTx) await tgt!.query('ROLLBACK').catch(() => {});
    await undoConfig();
    io.onInterrupt?.(undefined);
    if (checkpoint) await removeCheckpoint(checkpoint);
    delete report.checkpoint;
    throw explainLostConnection(e, { command: 'migrate', source: source.name, target: target.name, committing });
  }
}

/**
 * The tables whose rows the migration may replace. With schema changes in the same run, the copy is planned
 * again after the schema step, when a table that was equal may differ (e.g. a new column): so then every
 * table present on both sides is backed up, not only those that differ now.
 */
function dataAtRisk(plan: Plan): DataPlan {
  const dp = plan.data!.plan!;
  if (!plan.schema || countSchemaChanges(plan.schema) === 0) return dp;
  return { ...dp, tables: dp.tables.map((t) => ({ ...t, action: 'copy' as const })) };
}

/** The files a config migration can write: the target's own file and server.json. */
function configFilesOf(plan: Plan, target: Environment): string[] {
  const files = [target.ownFile];
  if (plan.config?.plan && plan.config.plan.server && plan.config.plan.server.edits.length > 0) files.push(target.serverFile);
  return files;
}
