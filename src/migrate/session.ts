/**
 * What every command shares: resolving the two environments, opening their databases, timing steps.
 */
import type pg from 'pg';
import { relative } from 'node:path';
import { asMigrateError, EXIT, isConnectionLost, MigrateError, usageError, withHint } from '../errors.js';
import { canonicalEnvName, loadEnvironment } from '../env/resolve.js';
import { scrubListOf } from '../env/secrets.js';
import type { Environment } from '../env/types.js';
import { openDatabase, type DbHandle } from '../pg/connect.js';
import type { DataProgress } from '../data/index.js';
import { TOOL } from '../version.js';
import type { ComponentName, EnvSummary, Plan, RollbackPreview, StepName, StepReport } from './types.js';

/** What the pipeline needs from the outside world (provided by cli/; tests can provide their own). */
export interface PipelineIO {
  /**
   * Ask the user to confirm; resolves true only for the exact answer. Must not hang without a TTY:
   * it throws a refused MigrateError (exit 3) instead.
   */
  confirm(question: string): Promise<boolean>;
  /** The plan is ready: human output shows it before anything is changed. */
  onPlan?(plan: Plan): void;
  /** rollback: what it will drop, restore and reload, and what it loses; shown before anything is changed. */
  onRollbackPreview?(p: RollbackPreview): void;
  /** A step finished. */
  onStep?(step: StepReport): void;
  /** Data copy progress. */
  onProgress?(p: DataProgress): void;
  /**
   * Secret values of the loaded environments for the CLI's last-line scrubber (only those long and distinctive
   * enough to search for; the outputs themselves never hold a secret value).
   */
  addSecrets?(values: string[]): void;
  /** Something the user should know that is neither an error nor a step (recovery done, folders skipped). */
  notice?(message: string): void;
  /**
   * While a run can be stopped cleanly, the pipeline registers how (cancel the server-side queries, stop before
   * the next step); the CLI calls it on Ctrl-C and then waits for the run to undo its work and return.
   */
  onInterrupt?(cancel: (() => void) | undefined): void;
}

export function summarize(env: Environment, db?: DbHandle): EnvSummary {
  return {
    name: env.name,
    production: env.production,
    files: env.files.map((f) => relative(env.projectDir, f)),
    ...(db ? { database: db.label } : {}),
  };
}

/** Resolve both names (aliases, unknown names → exit 64) and refuse the same environment twice. */
export function loadPair(projectDir: string, sourceName: string, targetName: string, io: PipelineIO): { source: Environment; target: Environment } {
  const s = canonicalEnvName(projectDir, sourceName);
  const t = canonicalEnvName(projectDir, targetName);
  if (s === t) {
    const same = sourceName === targetName ? `"${s}"` : `"${sourceName}" and "${targetName}" are both ${s}`;
    throw usageError(`source and target are the same environment (${same})`, 'name two different environments, e.g. `nself migrate local staging`');
  }
  const source = loadEnvironment(projectDir, s);
  const target = loadEnvironment(projectDir, t);
  io.addSecrets?.(secretValues(source, target));
  return { source, target };
}

/**
 * The secret values of the environments that the CLI's last-line scrubber looks for in text it did not write
 * itself: long enough to be unique, not a JSON literal, not a word of the output (see secrets.ts scrubListOf).
 */
export function secretValues(...envs: Environment[]): string[] {
  return scrubListOf(envs.flatMap((e) => [...e.vars.values()]));
}

/** An empty Plan for two loaded environments; the components fill it, then `totalize` sums it up. */
export function newPlan(command: Plan['command'], source: Environment, target: Environment, components: ComponentName[]): Plan {
  return {
    kind: 'plan',
    command,
    tool: TOOL,
    created_at: new Date().toISOString(),
    source: summarize(source),
    target: summarize(target),
    components,
    summary: { changes: 0, differences: false, perComponent: {} },
    confirmation: { required: false, reasons: [] },
  };
}

export function totalize(plan: Plan): void {
  plan.summary.changes = Object.values(plan.summary.perComponent).reduce((a, b) => a + (b ?? 0), 0);
  plan.summary.differences = plan.summary.changes > 0;
}

export function needsDatabase(components: ComponentName[]): boolean {
  return components.includes('schema') || components.includes('data');
}

export class Steps {
  readonly list: StepReport[] = [];
  /** Set by an interrupt (Ctrl-C): no further step starts, and the failure under way is reported as interrupted. */
  interrupted = false;
  constructor(private io: PipelineIO) {}

  /** Run one step, time it, record it; a thrown error marks the step failed and propagates. */
  async run<T>(name: StepName, fn: () => Promise<{ value: T; detail: string; data?: unknown }>): Promise<T> {
    const t0 = performance.now();
    try {
      if (this.interrupted) throw interruptedError();
      const r = await fn();
      if (this.interrupted) throw interruptedError();
      this.record({ name, status: 'ok', duration_ms: Math.round(performance.now() - t0), detail: r.detail, ...(r.data === undefined ? {} : { data: r.data }) });
      return r.value;
    } catch (e) {
      const msg = asMigrateError(e).message; // the same words as the error line (a known cause explained)
      this.record({ name, status: 'failed', duration_ms: Math.round(performance.now() - t0), detail: msg });
      throw e;
    }
  }

  skip(name: StepName, detail: string): void {
    this.record({ name, status: 'skipped', duration_ms: 0, detail });
  }

  private record(s: StepReport): void {
    this.list.push(s);
    this.io.onStep?.(s);
  }
}

/** Open both databases; close them all on failure. `notice` hears of first-seen SSH host keys. */
export async function openPair(
  source: Environment,
  target: Environment,
  persistHostKeys: boolean,
  lockTimeoutMs?: number,
  notice?: (message: string) => void,
): Promise<{ src: DbHandle; tgt: DbHandle; close(): Promise<void> }> {
  const src = await openDatabase(source, { persistHostKeys, lockTimeoutMs, notice });
  let tgt: DbHandle;
  try {
    tgt = await openDatabase(target, { persistHostKeys, lockTimeoutMs, notice });
  } catch (e) {
    await src.close();
    throw e;
  }
  return {
    src,
    tgt,
    async close() {
      await Promise.allSettled([src.close(), tgt.close()]);
    },
  };
}

/** A client reading the source in one consistent snapshot. */
export async function snapshotClient(db: DbHandle): Promise<pg.Client> {
  const c = await db.connect();
  await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  return c;
}

export function interruptedError(): MigrateError {
  return new MigrateError('interrupted', 'interrupted', { exitCode: EXIT.interrupted });
}

/** The error a failed run reports: an interrupt wins over the query error it caused (57014 query_canceled…). */
export function failure(steps: Steps, e: unknown, undone: string): MigrateError {
  if (steps.interrupted) {
    return new MigrateError('interrupted', `interrupted: ${undone}`, { exitCode: EXIT.interrupted, hint: 'run the command again when you are ready' });
  }
  return asMigrateError(e);
}

/**
 * A lost database connection during a pipeline's target transaction, told with what the pipeline knows: before
 * COMMIT was sent nothing was committed (PostgreSQL rolls back the open transaction of a lost connection, and the
 * pipeline rolled back and put files back itself); during COMMIT the outcome is unknown. Other errors pass through.
 */
export function explainLostConnection(e: unknown, at: { command: 'migrate' | 'rollback'; source: string; target: string; committing: boolean }): unknown {
  const err = asMigrateError(e);
  if (!isConnectionLost(err)) return e;
  if (at.committing) {
    return withHint(err, `the connection ended while COMMIT was under way: whether ${at.target} committed the ${at.command === 'migrate' ? 'migration' : 'rollback'} is unknown; see where it stands with \`nself migrate diff ${at.source} ${at.target}\``);
  }
  return withHint(
    err,
    at.command === 'migrate'
      ? `nothing was committed: the ${at.target} transaction was rolled back (PostgreSQL rolls back the open transaction of a lost connection) and no config file was changed; run the migration again once the server is up`
      : `nothing was committed: the rollback's transaction on ${at.target} was rolled back (PostgreSQL rolls back the open transaction of a lost connection); the checkpoint is still there: run \`nself migrate rollback\` again once the server is up`,
  );
}
