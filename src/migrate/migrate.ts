/**
 * `nself migrate <source> <target>`: validate → plan → safety → backup → checkpoint → migrate → verify.
 *
 * Schema and data changes run in ONE target transaction (advisory-locked), verified before COMMIT; sequence
 * values and config files, which no transaction holds, are journaled first (journal.ts) and put back if
 * anything fails, or by the next command after a kill. So the target ends all-old or all-new.
 */
import type pg from 'pg';
import { dirname, join, resolve } from 'node:path';
import { asMigrateError, EXIT, MigrateError, refusedError, withHint } from '../errors.js';
import type { Environment } from '../env/types.js';
import { loadEnvironment } from '../env/resolve.js';
import { lockTarget } from '../pg/lock.js';
import { relationKey } from '../pg/quote.js';
import { applyConfig, diffConfig, loadConfigRules, planConfig, verifyConfig, type ConfigRules } from '../config/index.js';
import { applySchema, backupSchema, checkPlanRows, countHazardRows, fingerprintSchema, inspectSchema, planSchema, tablesAtRisk, type SchemaModel, type SchemaScope } from '../schema/index.js';
import { applyData, backedUpTables, backupTables, cancelBackend, emptyBeforeReload, planData, reloadableTables, sumTables, verifyData, type DataPlan, type DataScope, type SequenceState, type TableSum } from '../data/index.js';
import { backupFiles, type FileBackup } from '../checkpoint/files.js';
import { beginCheckpoint, DEFAULT_KEEP, pruneCheckpoints, removeCheckpoint, updateStatus, type Checkpoint } from '../checkpoint/store.js';
import { abandonRun, clearJournal, newJournal, recoverInterrupted, transactionId, writeJournal, type Journal } from './journal.js';
import { explainLostConnection, failure, loadPair, needsDatabase, newPlan, openPair, snapshotClient, Steps, totalize, type PipelineIO } from './session.js';
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
  /** --key / --exclude-key */
  configScope?: { include?: string[]; exclude?: string[] };
  lockTimeoutMs: number;
  /** Checkpoints kept per target after success (default DEFAULT_KEEP). */
  keep?: number;
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
    const err = e instanceof MigrateError && !steps.interrupted ? e : failure(steps, e, `${opts.target} is unchanged`);
    report.status = err.exitCode === EXIT.refused ? 'refused' : err.exitCode === EXIT.interrupted ? 'interrupted' : 'failed';
    report.error = { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}), ...(err.details === undefined ? {} : { details: err.details }) };
    return { plan: report.plan, report, error: err };
  } finally {
    io.onInterrupt?.(undefined);
  }
}

async function migrate(opts: MigrateOptions, io: PipelineIO, steps: Steps, report: Report): Promise<void> {
  const comps = opts.components;
  const { source, target, rules } = await steps.run('validate', async () => {
    const pair = loadPair(opts.projectDir, opts.source, opts.target, io);
    // the project's config rules (nself-migrate.json) are checked here, before anything is connected
    const rules = comps.includes('config') ? loadConfigRules(opts.projectDir, pair.source.name, pair.target.name, opts.configScope) : undefined;
    return { value: { ...pair, rules }, detail: `${pair.source.name} → ${pair.target.name}: environments configured${rules?.file ? `, config rules from ${rules.file}` : ''}` };
  });
  report.source = source.name;
  report.target = target.name;
  await recoverInterrupted(opts.projectDir, [source.name, target.name], (m) => io.notice?.(m));

  const dbs = needsDatabase(comps)
    ? await steps.run('validate', async () => {
        const d = await openPair(source, target, !opts.dryRun, opts.lockTimeoutMs, (m) => io.notice?.(m));
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
    const clients = [srcClient, tgtClient].filter((c): c is pg.Client => !!c);
    const cancel = () => {
      steps.interrupted = true;
      for (const c of clients) cancelBackend(c);
    };
    io.onInterrupt?.(cancel);

    // ── plan ────────────────────────────────────────────────────────────────────────────
    const { plan, sourceModel } = await steps.run('plan', async () => {
      const p = await buildMigratePlan(io, opts, source, target, srcClient, tgtClient, rules);
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
        hint: 'fix the target as the error says (e.g. create the missing role, fill or remove the rows), then run the migration again',
        details: plan.schema.errors,
      });
    }

    // ── safety ──────────────────────────────────────────────────────────────────────────
    const prompted = await steps.run('safety', async () => {
      if (plan.summary.changes === 0) return { value: false, detail: 'nothing to change' };
      if (!plan.confirmation.required) return { value: false, detail: 'no confirmation needed' };
      if (opts.force) return { value: false, detail: `confirmed by --force (${plan.confirmation.reasons.join('; ')})` };
      io.onInterrupt?.(undefined); // Ctrl-C at the prompt simply ends the process: nothing has been changed
      const ok = await io.confirm(`${plan.confirmation.reasons.join('; ')}.\nType "yes" to continue: `);
      io.onInterrupt?.(cancel);
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
  io: PipelineIO,
  opts: MigrateOptions,
  source: Environment,
  target: Environment,
  src?: pg.Client,
  tgt?: pg.Client,
  rules?: ConfigRules,
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
    // Rows the schema step would fail on (NOT NULL without default, enum values in use, foreign keys, CHECK,
    // UNIQUE) are plan errors now, not a failure half-way through; tables the data step reloads are emptied first.
    const emptied = dp && sp.changes.length > 0 ? new Set((await reloadableTables(tgt!, dp.tables)).map((t) => relationKey(t.schema, t.name))) : undefined;
    const rows = await checkPlanRows(tgt!, sp, a, b, emptied ? { emptied: (schema, name) => emptied.has(relationKey(schema, name)) } : {});
    for (const c of rows.conflicts) sp.errors.push(`${c.message}; ${c.hint}`);
    for (const u of rows.unchecked) io.notice?.(`could not check the rows of ${u.table}${u.column ? `.${u.column}` : ''} before applying (${u.reason}); a violation would fail the migration (rolled back)`);
    plan.schema = sp;
    plan.summary.perComponent.schema = countSchemaChanges(sp);
  }
  if (dp) {
    plan.data = { plan: dp };
    plan.summary.perComponent.data = countDataChanges(dp);
  }
  if (comps.includes('config')) {
    const cp = planConfig(source, target, rules);
    plan.config = { diff: diffConfig(source, target, rules), plan: cp };
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

/**
 * The changing part. One target transaction holds schema and data; what it cannot hold (sequence values, config
 * files) is written to the checkpoint's journal before it is changed, and put back on any failure (or by the next
 * command after a kill). The checkpoint is `applied` only once the transaction has committed.
 */
async function execute({ opts, plan, report, steps, io, source, target, src, tgt, sourceModel, prompted }: ExecuteContext): Promise<void> {
  const comps = opts.components;
  const useDb = !!tgt;
  let inTx = false;
  let committing = false;
  let checkpoint: Checkpoint | undefined;
  let journal: Journal | undefined;
  /** A savepoint before the first effect outside the transaction: after a failure the transaction is usable again. */
  let savepoint = false;
  const backupMeta: Record<string, unknown> = {};
  let targetModel: SchemaModel | undefined;
  let backedUp = new Set<string>();
  let rowTables: Array<{ schema: string; name: string }> = [];

  try {
    let txid = '';
    if (useDb) {
      await tgt!.query('BEGIN');
      inTx = true;
      await lockTarget(tgt!, target.name);
      txid = await transactionId(tgt!);
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
    for (const n of draft.notices) io.notice?.(n);
    let configBackup: FileBackup[] = [];
    try {
      await steps.run('backup', async () => {
        const parts: string[] = [];
        if (plan.config?.plan && countConfigEdits(plan.config.plan) > 0) {
          configBackup = await backupFiles(opts.projectDir, configFilesOf(plan, target), draft.dir);
          backupMeta.config = configBackup;
          parts.push(`config: ${configBackup.length} file(s)`);
        }
        if (plan.schema && countSchemaChanges(plan.schema) > 0) {
          backupMeta.schema = backupSchema(plan.schema, targetModel!);
          rowTables = tablesAtRisk(plan.schema);
        }
        if (plan.data?.plan) {
          const atRisk = dataAtRisk(plan);
          for (const t of atRisk.tables) if (t.action === 'copy') rowTables.push({ schema: t.schema, name: t.name });
        }
        if (rowTables.length > 0) {
          const meta = await backupTables(tgt!, rowTables, `${draft.dir}/data`);
          backupMeta.data = meta;
          backedUp = new Set(backedUpTables(meta).map((t) => relationKey(t.schema, t.name)));
          parts.push(`rows of ${backedUp.size} table(s)`);
        }
        if (backupMeta.schema) parts.push('schema snapshot');
        return { value: undefined, detail: parts.join('; ') || 'nothing at risk' };
      });
      const sequences = backupMeta.data ? (backupMeta.data as { sequences: SequenceState[] }).sequences : [];
      journal = newJournal({ op: 'migrate', target: target.name, txid, files: configBackup, filesDir: 'backup', sequences });
      await writeJournal(dirname(draft.dir), journal);
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
    if (inTx) {
      await tgt!.query('SAVEPOINT nself_effects');
      savepoint = true;
    }
    await steps.run('migrate', async () => {
      const parts: string[] = [];
      const schemaChanges = !!plan.schema && countSchemaChanges(plan.schema) > 0;
      if (schemaChanges && comps.includes('data') && plan.data?.plan) {
        // Tables whose rows are replaced anyway are emptied first (they are backed up): constraints the schema
        // step adds (NOT NULL, foreign keys, fewer enum values) never meet rows that are about to go.
        const emptied = await emptyBeforeReload(tgt!, plan.data.plan.tables.map((t) => ({ schema: t.schema, name: t.name })));
        if (emptied.length > 0) parts.push(`emptied ${emptied.length} table(s) to reload`);
      }
      if (schemaChanges) {
        await applySchema(tgt!, plan.schema!);
        parts.push(`schema: ${plan.schema!.statements.length} statement(s)`);
      }
      if (comps.includes('data') && plan.data?.plan) {
        // The schema step may have changed the tables: plan the copy again inside the transaction.
        const dp = comps.includes('schema') ? await planData(src!, tgt!, opts.dataScope) : plan.data.plan;
        // Tables the schema step created had no rows to save; every other table to copy must be in the backup.
        const existed = new Set(plan.data.plan.tables.map((t) => relationKey(t.schema, t.name)));
        const unsaved = dp.tables.filter((t) => t.action === 'copy' && existed.has(relationKey(t.schema, t.name)) && !backedUp.has(relationKey(t.schema, t.name)));
        if (unsaved.length > 0) {
          // Never replace rows the checkpoint does not hold: rollback could not bring them back.
          throw new MigrateError('data_not_backed_up', `after the schema step, ${unsaved[0]!.table} needs its rows replaced but was not backed up`, {
            hint: 'nothing was changed (rolled back); run the migration again',
          });
        }
        if (countDataChanges(dp) > 0) {
          const results = await applyData(src!, tgt!, dp, { onProgress: io.onProgress });
          report.data = results;
          parts.push(`data: ${results.length} table(s), ${formatCount(results.reduce((a, r) => a + r.rowsAfter, 0))} row(s)`);
        }
        plan.data.plan = dp;
      }
      if (plan.config?.plan && countConfigEdits(plan.config.plan) > 0) {
        const w = await applyConfig(plan.config.plan, opts.projectDir, { label: `${source.name} → ${target.name} (${checkpoint!.id})` });
        parts.push(`config: wrote ${w.written.length + w.created.length} file(s)`);
      }
      return { value: undefined, detail: parts.join('; ') };
    });

    // ── verify (before COMMIT) ───────────────────────────────────────────────────────
    const after: AfterState = {};
    await steps.run('verify', async () => {
      const parts: string[] = [];
      if (plan.schema) {
        // The source snapshot has not moved (REPEATABLE READ): compare the re-inspected target with it.
        const model = await inspectSchema(tgt!, opts.schemaScope);
        after.schema = { fingerprint: fingerprintSchema(model), scope: opts.schemaScope, model };
        const left = planSchema(sourceModel!, model);
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
      if (backupMeta.data) after.tables = await sumsAfter(tgt!, backedUpTables(backupMeta.data), plan.data?.plan);
      if (journal!.files.length > 0) after.files = await backupFiles(opts.projectDir, journal!.files.map((f) => resolve(opts.projectDir, f.path)), join(checkpoint!.dir, 'after'));
      return { value: undefined, detail: parts.join('; ') };
    });
    checkpoint.manifest.after = after;

    if (inTx) {
      committing = true;
      await tgt!.query('COMMIT');
      inTx = false;
    } else await updateStatus(checkpoint, 'applied'); // no database: marking the checkpoint applied is the commit point
  } catch (e) {
    if (committing) {
      // COMMIT itself failed (the connection ended): whether it went through is unknown here. Nothing is undone
      // blindly; the journal stays, and the next command asks the server (txid_status) and completes or undoes.
      throw withHint(asMigrateError(explainLostConnection(e, { command: 'migrate', source: source.name, target: target.name, committing })), `the next nself migrate command in this project (e.g. \`nself migrate diff ${source.name} ${target.name}\`) asks ${target.name} whether the COMMIT went through and completes or undoes the migration (journal in .nself/migrations/${checkpoint?.id})`);
    }
    const undone = await abandonRun(opts.projectDir, checkpoint?.dir, journal, tgt, { inTx, savepoint });
    if (checkpoint && undone) await removeCheckpoint(checkpoint);
    if (!undone) {
      const err = failure(steps, e, 'the database was rolled back');
      throw new MigrateError(err.code, `${err.message}; putting sequences or files back failed too`, {
        exitCode: err.exitCode,
        hint: `the next nself migrate command in this project finishes the undo (journal in .nself/migrations/${checkpoint?.id})`,
        cause: e,
      });
    }
    delete report.checkpoint;
    throw explainLostConnection(e, { command: 'migrate', source: source.name, target: target.name, committing });
  }

  // Committed: nothing may be undone from here on. A failure (or a kill) before the journal is cleared is
  // completed by the next command (txid_status says committed).
  report.verified = true;
  try {
    if (useDb) await updateStatus(checkpoint, 'applied');
    await clearJournal(checkpoint.dir);
  } catch (e) {
    throw new MigrateError('checkpoint_status_failed', `the migration was committed, but its checkpoint could not be marked applied: ${(e as Error).message}`, {
      hint: 'the next nself migrate command in this project completes it (journal); nothing is undone',
      cause: e,
    });
  }
  for (const n of (await pruneCheckpoints(opts.projectDir, target.name, opts.keep ?? DEFAULT_KEEP)).notices) io.notice?.(n);
}

/** What a migration left on the target, recorded in its checkpoint: `rollback` compares the target with it. */
export interface AfterState {
  schema?: { fingerprint: string; scope: SchemaScope; model: SchemaModel };
  /** Count + checksum of every table whose rows the checkpoint holds. */
  tables?: TableSum[];
  /** Copies of the config files as the migration wrote them (in `<checkpoint>/after/`). */
  files?: FileBackup[];
}

/** Sums of the backed-up tables after the migration: the verified data plan's where it has them, else counted. */
async function sumsAfter(tgt: pg.ClientBase, tables: Array<{ schema: string; name: string }>, dp?: DataPlan): Promise<TableSum[]> {
  const known = new Map((dp?.tables ?? []).filter((t) => t.sourceChecksum !== undefined && (t.equal || t.action === 'copy')).map((t) => [relationKey(t.schema, t.name), t]));
  const out: TableSum[] = [];
  const rest: Array<{ schema: string; name: string }> = [];
  for (const t of tables) {
    const k = known.get(relationKey(t.schema, t.name));
    if (k) out.push({ schema: t.schema, name: t.name, columns: k.columns, rows: k.sourceRows, checksum: k.sourceChecksum! });
    else rest.push(t);
  }
  return out.concat(await sumTables(tgt, rest));
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
