/**
 * The `nself` command of this package. `nself migrate …` is this tool (so are `nself`, `nself --help` and
 * `nself --version`); any other `nself <command>` belongs to the nself CLI and is handed to the next `nself`
 * on PATH (handoff.ts). This module is loaded on every `nself` call, so it imports node built-ins and
 * handoff.ts only: main.ts, and with it the migrate engine, is loaded when the command is ours.
 */
import { constants as os } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { asMigrateError, usageError } from '../errors.js';
import { handoffEnv, handOver, INSTALL_NSELF_CLI, nextNself } from './handoff.js';

/** This package's bin directory (real path: module URLs are resolved through symlinks). */
const BIN_DIR = fileURLToPath(new URL('../../bin/', import.meta.url));

function ownBins(): string[] {
  return [join(BIN_DIR, 'nself'), join(BIN_DIR, 'nself-migrate'), ...(process.argv[1] ? [process.argv[1]] : [])];
}

function findNselfCli(): string | undefined {
  let cwd: string | undefined;
  try {
    cwd = process.cwd();
  } catch {
    cwd = undefined; // the current directory was removed
  }
  return nextNself({ path: process.env.PATH, cwd, own: ownBins() });
}

const OURS = new Set(['migrate', '-h', '--help', '-V', '--version']);

export async function nself(argv: string[]): Promise<never> {
  const first = argv[0];
  if (first === undefined || OURS.has(first)) {
    const helpNote = first === 'migrate' || first === '-V' || first === '--version' ? undefined : helpNoteFor(findNselfCli());
    const { main } = await import('./main.js');
    return main(argv, 'nself', { helpNote });
  }
  let error;
  try {
    const cli = findNselfCli();
    if (cli) return ended(await handOver(cli, argv, handoffEnv(argv, process.env, cli)));
    error = usageError(`"nself ${first}" is not available: this tool implements \`nself migrate\` only`, `no other \`nself\` is on PATH to run it: ${INSTALL_NSELF_CLI}`);
  } catch (e) {
    error = asMigrateError(e);
  }
  const { main } = await import('./main.js');
  return main(argv, 'nself', { error });
}

function helpNoteFor(cli: string | undefined): string {
  return cli
    ? `\nOther nself commands (nself start, nself deploy, …) are run by the nself CLI: ${cli}\n`
    : `\nOther nself commands (nself start, nself deploy, …) need the nself CLI, which is not on PATH:\n${INSTALL_NSELF_CLI}\n`;
}

/** Signals whose default action ends the process without a core dump, and that node leaves at that default. */
const RERAISE = new Set<NodeJS.Signals>(['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGKILL']);

/**
 * End as the nself CLI ended: its exit code, or killed by the same signal (so a shell loop stops on Ctrl-C,
 * as it would without us in between); where that signal cannot be re-raised, 128 + its number.
 */
function ended(result: { code: number } | { signal: NodeJS.Signals }): never {
  if ('code' in result) process.exit(result.code);
  const code = 128 + (os.signals[result.signal] ?? 0);
  if (RERAISE.has(result.signal)) {
    setTimeout(() => process.exit(code), 200);
    process.kill(process.pid, result.signal);
    return undefined as never;
  }
  process.exit(code);
}
