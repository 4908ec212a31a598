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
import { displayName, qualify, quoteLiteral, relationKey } from '../pg/quote.js';
import { applyConfig, diffConfig, loadConfigRules, planConfig, verifyConfig, type ConfigRules } from '../config/index.js';
import { applySchema, backupSchema, canonicalizeSource, canonicalNotice, checkPlanRows, countHazardRows, fingerprintSchema, inspectSchema, planSchema, recreatedTablesWithRows, tableHasRowsMessage, tablesAtRisk, type SchemaModel, type SchemaPlan, type SchemaScope } from '../schema/index.js';
import { applyData, openInSnapshot, refreshDependentMatviews, versionsAside, backedUpTables, backupTables, cancelBackend, countTargetOnlyValues, emptyBeforeReload, keyedBackups, planData, planDataDelta, prepareDelta, reloadableTables, replaceWhole, sumTables, unmatchedFilters, verifyData, versionHashOfRow, observedEqual, readKnown, recordKnown, type DataBackupMeta, type DataPlan, type DataScope, type DeltaState, type KnownTables, type SequenceState, type TableSum } from '../data/index.js';
import { backupFiles, type FileBackup } from '../checkpoint/files.js';
import { beginCheckpoint, DEFAULT_KEEP, pruneCheckpoints, removeCheckpoint, updateStatus, type Checkpoint } from '../checkpoint/store.js';
import { abandonRun, clearJournal, newJournal, recoverInterrupted, transactionId, writeJournal, type Journal } from './journal.js';
import { explainLostConnection, failure, loadPair, needsDatabase, newPlan, openPair, snapshotClient, Steps, totalize, type PipelineIO } from './session.js';
import type { DbHandle } from '../pg/connect.js';
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
  /**
   * 'delta' (sync): write only the rows that differ, found by primary-key ranges, and back up exactly those rows
   * (tables without a primary key in common are replaced whole). Default 'replace': differing tables are reloaded.
   */
  dataMode?: 'replace' | 'delta';
  /** What the Plan and the Report call the run (default 'migrate'). */
  command?: 'migrate' | 'sync';
  /**
   * sync --watch: read the source in this exported snapshot (a replication slot's), so that the stream of changes
   * after it starts exactly where this run's source state ends.
   */
  sourceSnapshot?: string;
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
    command: opts.command ?? 'migrate',
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
    ? await steps.run('connect', async () => {
        const d = await openPair(source, target, !opts.dryRun, opts.lockTimeoutMs, (m) => io.notice?.(m));
        return { value: d, detail: `databases reachable: ${d.src.label}, ${d.tgt.label}` };
      })
    : undefined;

  let srcClient: pg.Client | undefined;
  let tgtClient: pg.Client | undefined;
  try {
    let srcSnapshot: string | undefined;
    if (dbs) {
      srcClient = await snapshotClient(dbs.src);
      const imported = async (c: pg.Client) => {
        if (opts.sourceSnapshot) await c.query(`SET TRANSACTION SNAPSHOT ${quoteLiteral(opts.sourceSnapshot)}`);
      };
      await imported(srcClient);
      if (comps.includes('data') && !opts.dryRun) {
        // Exported before anything is read (not possible in a savepoint): if the server refuses, the transaction
        // starts again, without the source's row versions beside the copy (the next run then compares by checksum).
        try {
          srcSnapshot = (await srcClient.query<{ s: string }>('SELECT pg_export_snapshot() AS s')).rows[0].s;
        } catch {
          await srcClient.query('ROLLBACK');
          await srcClient.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
          await imported(srcClient);
        }
      }
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
      if (plan.data?.plan && opts.dataMode !== 'delta' && !opts.dryRun) await rememberEqual(opts, source, target, plan.data.plan);
      return;
    }

    await execute({ opts, plan, report, steps, io, source, target, src: srcClient, tgt: tgtClient, srcDb: dbs?.src, srcSnapshot, sourceModel, prompted });
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
  const plan = newPlan(opts.command ?? 'migrate', source, target, comps);
  let sourceModel: SchemaModel | undefined;
  const schemasSeen: string[] = [];
  // Data is planned first: the schema plan must know which tables get rows in the same transaction.
  const dp = comps.includes('data') ? await planRows(opts, source, target, src!, tgt!) : undefined;
  if (comps.includes('schema')) {
    const [raw, b] = await Promise.all([inspectSchema(src!, opts.schemaScope), inspectSchema(tgt!, opts.schemaScope)]);
    sourceModel = raw;
    for (const f of [...raw.facts, ...b.facts]) if (f.kind === 'schema') schemasSeen.push(String(f.meta.name));
    // Definitions that differ as text are judged by the target server (in a transaction it rolls back).
    const canon = await canonicalizeSource(tgt!, raw, b, { inTransaction: false });
    const note = canonicalNotice(target.name, canon);
    if (note) io.notice?.(note);
    const a = canon.model;
    const written = dp ? new Set([...dp.tables.filter((t) => t.action === 'copy'), ...dp.onlyInSource].map((t) => relationKey(t.schema, t.name))) : undefined;
    const sp = planSchema(a, b, written ? { rowsFollow: written } : {});
    await countHazardRows(tgt!, sp);
    // Rows the schema step would fail on (NOT NULL without default, enum values in use, foreign keys, CHECK,
    // UNIQUE) are plan errors now, not a failure half-way through; tables the data step reloads are emptied first.
    // The tables that differ or that the schema step changes are emptied first (with those that reference them).
    let emptied: Set<string> | undefined;
    if (dp && sp.changes.length > 0) {
      const touched = tablesChanged(sp, a, b);
      const want = dp.tables.filter((t) => t.action === 'copy' || touched.has(relationKey(t.schema, t.name)));
      dp.emptyFirst = (await reloadableTables(tgt!, want)).map((t) => ({ table: displayName(t.schema, t.name), schema: t.schema, name: t.name }));
      emptied = new Set(dp.emptyFirst.map((t) => relationKey(t.schema, t.name)));
      // A changed table that is equal now is emptied and reloaded too: the plan and the prompt say so.
      for (const t of dp.tables) {
        if (t.action === 'skip' && emptied.has(relationKey(t.schema, t.name)) && t.targetRows + t.sourceRows > 0) {
          Object.assign(t, { action: 'copy', reason: 'emptied before the schema step, which changes it, and reloaded' });
        }
      }
    }
    // A table the plan must recreate (no in-place path) may only be dropped without rows: one with rows is a plan
    // error now (the plan itself also stops before dropping it, should rows arrive meanwhile). Reloaded tables are
    // emptied first: their rows are replaced by the source's anyway.
    for (const t of await recreatedTablesWithRows(tgt!, sp)) {
      if (!emptied?.has(relationKey(t.schema, t.name))) sp.errors.push(tableHasRowsMessage(qualify(t.schema, t.name), t.reason));
    }
    const rows = await checkPlanRows(tgt!, sp, a, b, emptied ? { emptied: (schema, name) => emptied.has(relationKey(schema, name)) } : {});
    for (const c of rows.conflicts) sp.errors.push(`${c.message}; ${c.hint}`);
    for (const u of rows.unchecked) io.notice?.(`could not check the rows of ${u.table}${u.column ? `.${u.column}` : ''} before applying (${u.reason}); a violation would fail the migration (rolled back)`);
    plan.schema = sp;
    plan.summary.perComponent.schema = countSchemaChanges(sp);
    // The schema step may rewrite the tables: a sync that changes the schema reloads (and backs up) tables whole.
    if (dp && countSchemaChanges(sp) > 0) replaceWhole(dp, 'the schema changes in the same run');
  }
  if (comps.includes('schema') || dp) {
    for (const n of unmatchedFilters(opts.dataScope, dp ? [...dp.tables, ...dp.onlyInSource, ...dp.onlyInTarget] : [], schemasSeen)) io.notice?.(`${n} in ${source.name} or ${target.name}`);
  }
  if (dp) {
    if (!comps.includes('schema')) await countTargetOnlyValues(tgt!, dp);
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
  /** Opens more source connections (the source's row versions summed beside the copy)... */
  srcDb?: DbHandle;
  /** ...reading the source transaction's snapshot, exported under this id. */
  srcSnapshot?: string;
  sourceModel?: SchemaModel;
  /** The user took time at a prompt: the target may have changed since planning. */
  prompted: boolean;
}

/**
 * The changing part. One target transaction holds schema and data; what it cannot hold (sequence values, config
 * files) is written to the checkpoint's journal before it is changed, and put back on any failure (or by the next
 * command after a kill). The checkpoint is `applied` only once the transaction has committed.
 */
async function execute({ opts, plan, report, steps, io, source, target, src, tgt, srcDb, srcSnapshot, sourceModel, prompted }: ExecuteContext): Promise<void> {
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
  /** sync: the tables whose differing rows are staged, to be backed up and written by key. */
  let delta: DeltaState | undefined;
  /** Row versions (known.ts) of the copied tables: the source's in the copy's snapshot, the target's after the load. */
  let sourceVersions: Map<string, TableSum> | undefined;
  let targetVersions: Map<string, TableSum> | undefined;

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
    if (prompted && useDb && plan.data?.plan && !comps.includes('schema')) plan.data.plan = await planRows(opts, source, target, src!, tgt!);

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
        if (opts.dataMode === 'delta' && plan.data?.plan?.tables.some((t) => t.mode === 'delta')) {
          delta = await prepareDelta(src!, tgt!, plan.data.plan);
        }
        if (rowTables.length > 0) {
          const meta = await backupTables(tgt!, rowTables, `${draft.dir}/data`, delta ? { byKey: keyedBackups(delta) } : {});
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
        const emptied = await emptyBeforeReload(tgt!, plan.data.plan.emptyFirst ?? []);
        if (emptied.length > 0) parts.push(`emptied ${emptied.length} table(s) to reload`);
      }
      if (schemaChanges) {
        await applySchema(tgt!, plan.schema!);
        parts.push(`schema: ${plan.schema!.statements.length} statement(s)`);
      }
      if (comps.includes('data') && plan.data?.plan) {
        // The schema step may have changed the tables: plan the copy again inside the transaction.
        const dp = comps.includes('schema') && !delta ? await planRows(opts, source, target, src!, tgt!) : plan.data.plan;
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
          // The source's row versions, for a later run to know the pair is still equal, are summed beside the copy.
          const aside = srcDb && srcSnapshot && !delta ? versionsAside(() => srcDb.connect(), srcSnapshot, dp) : undefined;
          let results;
          try {
            // Small tables are read ahead on another connection in the same snapshot while the target loads.
            const readAhead = srcDb && srcSnapshot ? () => openInSnapshot(() => srcDb.connect(), srcSnapshot) : undefined;
            // Tables the backup counted empty under its lock (held since: no other session wrote to them) need no
            // TRUNCATE — unless a schema step ran in between.
            const empty = !schemaChanges && backupMeta.data ? new Set((backupMeta.data as DataBackupMeta).tables.filter((t) => t.rows === 0 && t.mode === undefined).map((t) => relationKey(t.schema, t.name))) : undefined;
            results = await applyData(src!, tgt!, dp, { onProgress: io.onProgress, ...(delta ? { delta } : {}), ...(readAhead ? { readAhead } : {}), ...(empty ? { empty } : {}) });
          } catch (e) {
            await aside?.stop();
            throw e;
          }
          sourceVersions = await aside?.done;
          report.data = results;
          const written = results.reduce((a, r) => a + (r.mode === 'delta' ? (r.inserted ?? 0) + (r.updated ?? 0) + (r.deleted ?? 0) : r.rowsAfter), 0);
          parts.push(`data: ${results.length} table(s), ${formatCount(written)} row(s)${delta ? ' written' : ''}`);
          const refreshed = await refreshDependentMatviews(tgt!, dp.tables.filter((t) => t.action === 'copy'));
          if (refreshed.length > 0) parts.push(`refreshed ${refreshed.length} materialized view(s): ${refreshed.join(', ')}`);
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
        // Like with like: the source's definitions as this target renders them (savepoint, rolled back).
        const canon = await canonicalizeSource(tgt!, sourceModel!, model, { inTransaction: true });
        const left = planSchema(canon.model, model);
        if (left.changes.length > 0) {
          throw new MigrateError('schema_verify_failed', `after applying, the ${target.name} schema still differs from ${source.name} in ${left.changes.length} object(s): ${left.changes.slice(0, 3).map((c) => c.identity).join(', ')}`, {
            hint: 'nothing was changed (rolled back); please report this with `nself migrate diff --json`',
            details: left.changes,
          });
        }
        parts.push('schema matches');
      }
      if (comps.includes('data') && plan.data?.plan) {
        const v = await verifyData(src!, tgt!, plan.data.plan, { loaded: report.data });
        const how = [v.byChecksum > 0 ? `${v.byChecksum} table(s) by count and checksum` : '', v.byCopy > 0 ? `${v.byCopy} by the row count of their binary COPY` : ''].filter(Boolean);
        parts.push(`data matches${how.length > 0 ? ` (${how.join(', ')})` : ''}`);
      }
      if (plan.config?.plan && countConfigEdits(plan.config.plan) > 0) {
        const v = verifyConfig(plan.config.plan, loadEnvironment(opts.projectDir, target.name));
        if (!v.ok) {
          throw new MigrateError('config_verify_failed', `after writing, the ${target.name} configuration is missing: ${v.missing.join(', ')}`, { hint: 'nothing was changed (restored); check for a higher-precedence file overriding the own file' });
        }
        parts.push('config applied');
      }
      if (comps.includes('data') && plan.data?.plan) {
        // The row versions of every table whose rows the checkpoint holds (rollback's "written since?") and of
        // every copied table (a later run's "still equal?"). A table replaced whole needs no scan: its rows were all
        // written by this run's loads, in the one subtransaction of the migrate step (savepoint nself_effects), so
        // all carry its xmin — read from one row. The others: a scan that reads no value.
        const loaded = new Map((report.data ?? []).filter((r) => r.mode !== 'delta').map((r) => [r.table, r.rowsAfter]));
        const tables = new Map<string, { schema: string; name: string; columns?: string[]; loadedRows?: number }>();
        for (const t of backupMeta.data ? backedUpTables(backupMeta.data) : []) tables.set(relationKey(t.schema, t.name), { schema: t.schema, name: t.name });
        for (const t of plan.data.plan.tables) if (t.action === 'copy') tables.set(relationKey(t.schema, t.name), { schema: t.schema, name: t.name, columns: t.columns, loadedRows: loaded.get(t.table) });
        let writerHash: string | undefined;
        for (const t of tables.values()) {
          if (!t.loadedRows) continue;
          writerHash = await versionHashOfRow(tgt!, `ONLY ${qualify(t.schema, t.name)}`); // a partitioned table has none: the next
          if (writerHash !== undefined) break;
        }
        targetVersions = new Map((await sumTables(tgt!, [...tables.values()], { versionsOnly: true, writerHash })).map((s) => [relationKey(s.schema, s.name), s]));
        if (backupMeta.data) {
          after.tables = backedUpTables(backupMeta.data).flatMap((t) => {
            const s = targetVersions!.get(relationKey(t.schema, t.name));
            return s ? [{ schema: s.schema, name: s.name, columns: s.columns, rows: s.rows, versions: s.versions }] : [];
          });
        }
      }
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
  if (plan.data?.plan && !delta) await rememberEqual(opts, source, target, plan.data.plan, sourceVersions, targetVersions);
  for (const n of (await pruneCheckpoints(opts.projectDir, target.name, opts.keep ?? DEFAULT_KEEP)).notices) io.notice?.(n);
}

/** The data plan: whole tables (migrate; pairs known equal are compared by row versions first) or differing rows (sync's delta mode). */
function planRows(opts: MigrateOptions, source: Environment, target: Environment, src: pg.ClientBase, tgt: pg.ClientBase): Promise<DataPlan> {
  if (opts.dataMode === 'delta') return planDataDelta(src, tgt, opts.dataScope);
  return planData(src, tgt, opts.dataScope, { known: readKnown(opts.projectDir, source.name, target.name) });
}

/**
 * After a run that left source and target equal (committed, or nothing to change): record the pairs it found equal
 * by checksum and the tables it copied whole — with the states both sides are in — so that the next comparison of
 * them costs a scan of their row versions (known.ts). Never fails the run: without the record, the next one
 * checksums.
 */
async function rememberEqual(opts: MigrateOptions, source: Environment, target: Environment, dp: DataPlan, sourceVersions?: Map<string, TableSum>, targetVersions?: Map<string, TableSum>): Promise<void> {
  const known: KnownTables = new Map(observedEqual.get(dp) ?? []);
  for (const t of dp.tables) {
    if (t.action !== 'copy') continue;
    const id = relationKey(t.schema, t.name);
    const s = sourceVersions?.get(id);
    const g = targetVersions?.get(id);
    if (s?.signature !== undefined && s.signature === g?.signature && s.rows === g.rows) known.set(id, { columns: s.signature, source: { rows: s.rows, versions: s.versions! }, target: { rows: g.rows, versions: g.versions! } });
  }
  await recordKnown(opts.projectDir, source.name, target.name, known).catch(() => {});
}

/** The tables (relationKey) a schema plan changes: the table itself or anything that belongs to it. */
function tablesChanged(sp: SchemaPlan, ...models: SchemaModel[]): Set<string> {
  const byId = new Map(models.flatMap((m) => m.facts.map((f) => [f.id, f] as const)));
  const out = new Set<string>();
  for (const c of sp.changes) {
    let f = byId.get(`${c.kind}:${c.identity}`);
    for (let hops = 0; f && f.kind !== 'table' && f.parent && hops < 10; hops++) f = byId.get(f.parent);
    if (f?.kind === 'table') out.add(relationKey(String(f.meta.schema), String(f.meta.name)));
  }
  return out;
}

/** What a migration left on the target, recorded in its checkpoint: `rollback` compares the target with it. */
export interface AfterState {
  schema?: { fingerprint: string; scope: SchemaScope; model: SchemaModel };
  /**
   * Count + row versions (checkpoints before row versions: count + checksum) of every table whose rows the
   * checkpoint holds, as the migration left them: rollback tells which were written since.
   */
  tables?: TableSum[];
  /** Copies of the config files as the migration wrote them (in `<checkpoint>/after/`). */
  files?: FileBackup[];
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
