/**
 * The command line: argv → command → Plan/Report → human text or one JSON document → exit code.
 * The only module that touches stdout/stderr/stdin, signals and process.exit.
 */
import { resolve } from 'node:path';
import { statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { asMigrateError, EXIT, MigrateError, refusedError, usageError } from '../errors.js';
import { TOOL } from '../version.js';
import { runMigrate } from '../migrate/migrate.js';
import { runDiff } from '../migrate/diff.js';
import { runRollback } from '../migrate/rollback.js';
import { runListCheckpoints } from '../migrate/checkpoints.js';
import type { PipelineIO } from '../migrate/session.js';
import type { Report } from '../migrate/types.js';
import { HELP, parseArgs, type ParsedArgs } from './args.js';
import { Output } from './output.js';
import { renderCheckpoints, renderPlan, renderProgress, renderReportSummary, renderStep, renderError, renderHeader } from './render.js';

export type Entry = 'nself' | 'nself-migrate';

export async function main(argv: string[], entry: Entry): Promise<never> {
  const wantsJson = argv.includes('--json');
  let out = new Output({ color: !argv.includes('--no-color'), json: wantsJson });
  try {
    if (entry === 'nself') {
      if (argv[0] !== 'migrate') {
        if (argv.length === 0 || argv[0] === '-h' || argv[0] === '--help') {
          out.out(HELP);
          return exit(EXIT.ok);
        }
        throw usageError(`"nself ${argv[0]}" is not available: this tool implements \`nself migrate\` only`, 'run `nself migrate --help`');
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
function pipelineIO(args: ParsedArgs, out: Output): PipelineIO {
  let headerShown = false;
  const header = () => {
    if (!headerShown && !args.json) out.err(renderHeader(out, args));
    headerShown = true;
  };
  let cleanup: (() => Promise<void>) | undefined;
  let interrupted = false;
  process.on('SIGINT', () => {
    if (interrupted) process.exit(EXIT.interrupted);
    interrupted = true;
    out.err('\ninterrupted: the target transaction is rolled back; nothing was changed\n');
    void (cleanup ? cleanup() : Promise.resolve()).finally(() => process.exit(EXIT.interrupted));
  });
  process.on('SIGTERM', () => {
    void (cleanup ? cleanup() : Promise.resolve()).finally(() => process.exit(EXIT.interrupted));
  });
  return {
    confirm: makeConfirm(out),
    onPlan: args.json ? undefined : (plan) => out.out(renderPlan(out, plan)),
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
      cleanup = f;
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
      throw new MigrateError('not_implemented', '`nself migrate sync` is not available yet: continuous sync has not been built', {
        hint: `for a one-time sync run \`nself migrate ${args.source} ${args.target}\``,
      });
    case 'diff': {
      const dir = projectDir(args);
      const io = pipelineIO(args, out);
      const plan = await runDiff(
        { projectDir: dir, source: args.source!, target: args.target!, components: args.components, schemaScope: schemaScope(args), dataScope: dataScope(args) },
        io,
      );
      if (args.json) out.document(plan);
      else out.out(renderPlan(out, plan));
      return args.exitCode && plan.summary.differences ? EXIT.differences : EXIT.ok;
    }
    case 'migrate': {
      const dir = projectDir(args);
      const io = pipelineIO(args, out);
      const r = await runMigrate(
        {
          projectDir: dir,
          source: args.source!,
          target: args.target!,
          components: args.components,
          dryRun: args.dryRun,
          force: args.force,
          schemaScope: schemaScope(args),
          dataScope: dataScope(args),
          lockTimeoutMs: args.lockTimeoutMs,
          ...(args.keep !== undefined ? { keep: args.keep } : {}),
        },
        io,
      );
      if (args.dryRun && !r.error) {
        if (args.json) out.document(r.plan);
        else out.out(out.paint('dim', 'dry run: nothing was changed\n'));
        return EXIT.ok;
      }
      return finish(args, out, r.report, r.error);
    }
    case 'rollback': {
      const dir = projectDir(args);
      const io = pipelineIO(args, out);
      if (args.list) {
        const list = await runListCheckpoints(dir, io);
        if (args.json) out.document(list);
        else out.out(renderCheckpoints(out, list));
        return EXIT.ok;
      }
      const r = await runRollback({ projectDir: dir, force: args.force, dryRun: args.dryRun, ...(args.checkpointId !== undefined ? { id: args.checkpointId } : {}) }, io);
      return finish(args, out, r.report, r.error);
    }
  }
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
