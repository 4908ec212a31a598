/**
 * The command line: argv → command → Plan/Report → human text or one JSON document → exit code.
 * With nself.ts and handoff.ts, the only code that touches stdout/stderr/stdin, signals and process.exit.
 * The engine (pipeline, database drivers) is imported only by the commands that use it.
 */
import { resolve } from 'node:path';
import { statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { asMigrateError, EXIT, MigrateError, refusedError, usageError } from '../errors.js';
import { TOOL } from '../version.js';
import type { PipelineIO } from '../migrate/session.js';
import type { Report } from '../migrate/types.js';
import { HELP, parseArgs, type ParsedArgs } from './args.js';
import { Output } from './output.js';
import { renderCheckpoints, renderPlan, renderProgress, renderReportSummary, renderRollbackPreview, renderStep, renderError, renderHeader } from './render.js';

export type Entry = 'nself' | 'nself-migrate';

export interface MainOptions {
  /** `nself` (no command), `nself --help`: text after the usage (where the other commands go). */
  helpNote?: string;
  /** `nself <other command>` could not be handed to the nself CLI: report this. */
  error?: MigrateError;
}

export async function main(argv: string[], entry: Entry, opts: MainOptions = {}): Promise<never> {
  const wantsJson = argv.includes('--json');
  let out = new Output({ color: !argv.includes('--no-color'), json: wantsJson });
  try {
    if (entry === 'nself') {
      if (argv[0] !== 'migrate') {
        if (argv.length === 0 || argv[0] === '-h' || argv[0] === '--help') {
          out.out(HELP + (opts.helpNote ?? ''));
          return exit(EXIT.ok);
        }
        if (argv[0] === '-V' || argv[0] === '--version') {
          out.out(`${TOOL.name} ${TOOL.version}\n`);
          return exit(EXIT.ok);
        }
        throw opts.error ?? usageError(`"nself ${argv[0]}" is not available: this tool implements \`nself migrate\` only`, 'run `nself migrate --help`');
      }
      argv = argv.slice(1);
    }
    const args = parseArgs(argv);
    out = new Output({ color: args.color, json: args.json });
    return exit(await run(args, out));
  } catch (e) {
    const err = asMigrateError(e);
    if (process.env.NSELF_DEBUG && e instanceof Error) out.err(`${e.stack}\n`);
    out.err(renderError(out, err));
    if (wantsJson) out.document({ kind: 'error', error: { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) } });
    return exit(err.exitCode);
  }
}

function exit(code: number): never {
  process.exitCode = code;
  // Let stdout drain before leaving (large JSON documents on a pipe).
  process.stdout.write('', () => process.exit(code));
  return undefined as never;
}

function projectDir(args: ParsedArgs): string {
  const dir = resolve(args.projectDir ?? process.cwd());
  let ok = false;
  try {
    ok = statSync(dir).isDirectory();
  } catch {
    ok = false;
  }
  if (!ok) throw usageError(`project directory ${dir} does not exist`, 'pass an existing directory with -C/--project');
  return dir;
}

/** Prompt on the terminal; without one, refuse (exit 3) instead of waiting for input that cannot come. */
function makeConfirm(out: Output): (question: string) => Promise<boolean> {
  return async (question) => {
    if (!process.stdin.isTTY) {
      throw refusedError(`${question.split('\n')[0]} — confirmation needed, but there is no terminal to ask on`, 'pass --force to confirm non-interactively');
    }
    out.err(question);
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: false });
    try {
      const answer = await new Promise<string>((res) => {
        rl.once('line', res);
        rl.once('close', () => res(''));
      });
      return answer.trim() === 'yes';
    } finally {
      rl.close();
    }
  };
}

/**
 * The header is printed with the first successful step, and a failed step is not printed: the error line
 * says it. So bad input answers with exactly the error and its hint.
 */
function pipelineIO(args: ParsedArgs, out: Output, signals = true): PipelineIO {
  let headerShown = false;
  const header = () => {
    if (!headerShown && !args.json) out.err(renderHeader(out, args));
    headerShown = true;
  };
  let cancel: (() => void) | undefined;
  let interrupted = false;
  // First Ctrl-C: a run that can stop cleanly cancels its server-side queries, undoes its work and returns (exit
  // 130 through the normal path); elsewhere (a prompt, planning) the process ends at once. A second Ctrl-C, or a
  // run that does not finish undoing in 30 s, ends the process: the next command completes the undo (journal).
  const stop = (signal: string) => {
    if (interrupted || !cancel) process.exit(EXIT.interrupted);
    interrupted = true;
    out.err(`\n${signal === 'SIGINT' ? 'interrupted' : 'terminated'}: stopping and undoing what was started…\n`);
    cancel();
    setTimeout(() => process.exit(EXIT.interrupted), 30_000).unref();
  };
  if (signals) {
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  }
  return {
    confirm: makeConfirm(out),
    onPlan: args.json ? undefined : (plan) => out.out(renderPlan(out, plan)),
    onRollbackPreview: args.json ? undefined : (p) => out.out(renderRollbackPreview(out, p)),
    onStep: args.json
      ? undefined
      : (step) => {
          if (step.status === 'failed') return;
          header();
          out.err(renderStep(out, step));
        },
    onProgress: args.json ? undefined : (p) => out.progress(renderProgress(p)),
    addSecrets: (values) => out.addSecrets(values),
    notice: (message) => out.err(`${out.paint('yellow', 'note:')} ${message}\n`),
    onInterrupt: (f) => {
      cancel = f;
    },
  };
}

async function run(args: ParsedArgs, out: Output): Promise<number> {
  switch (args.command) {
    case 'help':
      out.out(HELP);
      return EXIT.ok;
    case 'version':
      out.out(`${TOOL.name} ${TOOL.version}\n`);
      return EXIT.ok;
    case 'sync':
      if (args.watch) return await watch(args, out);
      return await migrateOrSync(args, out);
    case 'diff': {
      const dir = projectDir(args);
      const io = pipelineIO(args, out);
      const { runDiff } = await import('../migrate/diff.js');
      const plan = await runDiff(
        { projectDir: dir, source: args.source!, target: args.target!, components: args.components, schemaScope: schemaScope(args), dataScope: dataScope(args), configScope: configScope(args), lockTimeoutMs: args.lockTimeoutMs },
        io,
      );
      if (args.json) out.document(plan);
      else out.out(renderPlan(out, plan));
      const missed = plan.notCompared?.[0];
      if (missed) {
        // what could be compared was shown; the run still failed
        out.err(renderError(out, new MigrateError(missed.error.code, missed.error.message, { hint: missed.error.hint })));
        return EXIT.failed;
      }
      return args.exitCode && plan.summary.differences ? EXIT.differences : EXIT.ok;
    }
    case 'migrate':
      return await migrateOrSync(args, out);
    case 'rollback': {
      const dir = projectDir(args);
      const io = pipelineIO(args, out);
      if (args.list) {
        const { runListCheckpoints } = await import('../migrate/checkpoints.js');
        const list = await runListCheckpoints(dir, io);
        if (args.json) out.document(list);
        else out.out(renderCheckpoints(out, list));
        return EXIT.ok;
      }
      const { runRollback } = await import('../migrate/rollback.js');
      const r = await runRollback({ projectDir: dir, force: args.force, dryRun: args.dryRun, lockTimeoutMs: args.lockTimeoutMs, ...(args.checkpointId !== undefined ? { id: args.checkpointId } : {}) }, io);
      return finish(args, out, r.report, r.error);
    }
  }
}

/**
 * sync --watch: events as NDJSON (--json) or lines on stderr with a TTY status line. SIGINT / SIGTERM ask the
 * watcher to stop (it finishes or rolls back the transaction in flight and drops what it created): exit 130 / 0.
 * A second signal ends the process at once.
 */
async function watch(args: ParsedArgs, out: Output): Promise<number> {
  const dir = projectDir(args);
  const base = pipelineIO(args, out, false);
  let signalled = false;
  const stop = new Promise<'SIGINT' | 'SIGTERM'>((res) => {
    const on = (sig: 'SIGINT' | 'SIGTERM') => {
      if (signalled) process.exit(sig === 'SIGINT' ? EXIT.interrupted : EXIT.ok);
      signalled = true;
      if (!args.json) out.err(`\n${sig === 'SIGINT' ? 'interrupted' : 'terminated'}: stopping the watch…\n`);
      res(sig);
      setTimeout(() => process.exit(sig === 'SIGINT' ? EXIT.interrupted : EXIT.ok), 30_000).unref();
    };
    process.on('SIGINT', () => on('SIGINT'));
    process.on('SIGTERM', () => on('SIGTERM'));
  });
  const common = { ...pipelineOptions(args, dir), dryRun: false, poll: args.poll, intervalMs: args.intervalMs, keepSlot: args.keepSlot };
  const r =
    args.via === 'subscription'
      ? await (await import('../sync/subscription.js')).runSubscription(
          { ...common, ...(args.sourceConninfo !== undefined ? { sourceConninfo: args.sourceConninfo } : {}) },
          { ...base, onEvent: (e) => (args.json ? out.line(e) : renderSubscriptionEvent(out, e)) },
          { stop },
        )
      : await (await import('../sync/watch.js')).runWatch(common, { ...base, onEvent: (e) => (args.json ? out.line(e) : renderWatchEvent(out, e)) }, { stop });
  if (r.error) {
    out.err(renderError(out, r.error));
    if (args.json) out.line({ event: 'error', error: { code: r.error.code, message: r.error.message, ...(r.error.hint ? { hint: r.error.hint } : {}) } });
  }
  return r.exitCode;
}

function renderWatchEvent(out: Output, e: import('../sync/watch.js').WatchEvent): void {
  switch (e.event) {
    case 'started':
      if (e.mode === 'stream') out.err(`watching ${e.source} → ${e.target}: streaming changes (publication and slot ${e.slot}${e.resumed ? ', resumed' : ''}); ${e.tables?.length ?? 0} table(s) streamed${e.compared?.length ? `, ${e.compared.length} without a replica identity compared every interval: ${e.compared.join(', ')}` : ''}\n`);
      else out.err(`watching ${e.source} → ${e.target}: polling (a delta sync every interval) because ${e.reason}\n${out.paint('dim', `to stream instead: ${e.enable}`)}\n`);
      return;
    case 'synced':
      out.err(`${e.initial ? 'initial sync' : 'synced'}: ${e.changes === 0 ? 'nothing differed' : `${e.changes} change(s)`}${e.checkpoint ? ` (checkpoint ${e.checkpoint})` : ''}\n`);
      return;
    case 'status': {
      const lag = e.lagMs ? `, lag p50 ${e.lagMs.p50} ms / p99 ${e.lagMs.p99} ms` : '';
      const kept = e.retainedBytes !== undefined ? `, slot keeps ${(e.retainedBytes / 1024 ** 2).toFixed(1)} MB of WAL` : '';
      out.progress(`${e.mode === 'stream' ? `at ${e.lsn}, ${e.transactions} transaction(s), ${e.changes} row change(s)${lag}${e.lagBytes !== undefined ? `, ${e.lagBytes} byte(s) behind` : ''}${kept}` : `${e.syncs} sync(s)`} — ${e.time.slice(11, 19)}`);
      return;
    }
    case 'warning':
      out.err(`${out.paint('yellow', 'warning:')} ${e.message}\n`);
      return;
    case 'schema_change': {
      const what = e.changes.map((c) => `${c.action} ${c.kind} ${c.identity}`);
      const shown = `${what.slice(0, 5).join(', ')}${what.length > 5 ? ` and ${what.length - 5} more` : ''}`;
      if (!e.applied) {
        out.err(`${out.paint('red', 'schema change not applied')}: the source's schema changed (${shown}) and the plan deletes data: ${(e.refused ?? []).join('; ')}\n${out.paint('dim', 'stopping; to apply it, watch again with --force (or migrate the schema first)')}\n`);
        return;
      }
      out.err(`schema change applied (${e.trigger === 'relation' ? 'seen in the stream' : 'source schema changed'}): ${shown}${e.checkpoint ? ` (checkpoint ${e.checkpoint})` : ''}${e.published?.length ? `; now streamed: ${e.published.join(', ')}` : ''}${e.resynced?.length ? `; rows synced again: ${e.resynced.join(', ')}` : ''}\n`);
      return;
    }
    case 'config':
      out.err(`config: updated ${[...e.keys, ...e.fields].join(', ')}${e.checkpoint ? ` (checkpoint ${e.checkpoint})` : ''}\n`);
      return;
    case 'stopped':
      out.err(`stopped (${e.signal ?? 'schema change refused'}): ${e.transactions} transaction(s) applied${e.dropped.length ? `; dropped ${e.dropped.join(', ')}` : ''}${e.kept.length ? `; kept ${e.kept.join(', ')}` : ''}\n`);
      return;
  }
}

function renderSubscriptionEvent(out: Output, e: import('../sync/subscription.js').SubscriptionEvent): void {
  switch (e.event) {
    case 'started':
      out.err(`watching ${e.source} → ${e.target} through PostgreSQL subscription ${e.subscription}${e.resumed ? ' (resumed)' : ''}; the target's server connects to ${e.conninfo}; ${e.tables.length} table(s) published\n`);
      for (const l of e.leftOut) out.err(`${out.paint('yellow', 'note:')} ${l.table} is not followed: ${l.reason}\n`);
      return;
    case 'synced':
      renderWatchEvent(out, e);
      return;
    case 'status':
      out.progress(`${e.worker ? 'applying' : 'apply worker not running'}${e.receivedLsn ? `, received ${e.receivedLsn}` : ''}${e.lagBytes !== undefined ? `, ${e.lagBytes} byte(s) unconfirmed` : ''}${e.lagMs !== undefined ? `, replay lag ${e.lagMs} ms` : ''}${e.applyErrors ? `, ${e.applyErrors} apply error(s)` : ''} — ${e.time.slice(11, 19)}`);
      return;
    case 'stopped':
      out.err(`stopped (${e.signal})${e.dropped.length ? `; dropped ${e.dropped.join(', ')}` : ''}${e.kept.length ? `; kept ${e.kept.join(', ')}` : ''}\n`);
      if (e.resume) out.err(`to resume: ${e.resume}\nto remove: ${e.drop!.join(' ')}\n`);
      return;
  }
}

/** The pipeline's options from the command line (migrate, sync, and sync --watch's one-time syncs). */
function pipelineOptions(args: ParsedArgs, dir: string) {
  return {
    projectDir: dir,
    source: args.source!,
    target: args.target!,
    components: args.components,
    dryRun: args.dryRun,
    force: args.force,
    schemaScope: schemaScope(args),
    dataScope: dataScope(args),
    configScope: configScope(args),
    lockTimeoutMs: args.lockTimeoutMs,
    ...(args.keep !== undefined ? { keep: args.keep } : {}),
  };
}

/** `migrate` and one-time `sync`: the same pipeline and options; sync writes only the rows that differ. */
async function migrateOrSync(args: ParsedArgs, out: Output): Promise<number> {
  const dir = projectDir(args);
  const io = pipelineIO(args, out);
  const opts = pipelineOptions(args, dir);
  const r = args.command === 'sync' ? await (await import('../migrate/sync.js')).runSync(opts, io) : await (await import('../migrate/migrate.js')).runMigrate(opts, io);
  if (args.dryRun && !r.error) {
    if (args.json) out.document(r.plan);
    else out.out(out.paint('dim', 'dry run: nothing was changed\n'));
    return EXIT.ok;
  }
  return finish(args, out, r.report, r.error);
}

function finish(args: ParsedArgs, out: Output, report: Report, error?: MigrateError): number {
  if (args.json) out.document(report);
  else if (report.steps.some((s) => s.status === 'ok')) out.out(renderReportSummary(out, report));
  if (error) {
    out.err(renderError(out, error));
    return error.exitCode;
  }
  return EXIT.ok;
}

function schemaScope(args: ParsedArgs) {
  return { ...(args.schemas.length ? { schemas: args.schemas } : {}), ...(args.excludeSchemas.length ? { excludeSchemas: args.excludeSchemas } : {}) };
}

function dataScope(args: ParsedArgs) {
  return {
    ...schemaScope(args),
    ...(args.tables.length ? { tables: args.tables } : {}),
    ...(args.excludeTables.length ? { excludeTables: args.excludeTables } : {}),
  };
}

function configScope(args: ParsedArgs) {
  return { include: args.keys, exclude: args.excludeKeys };
}
