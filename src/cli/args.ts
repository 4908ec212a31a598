/**
 * argv → a validated command. commander parses (options anywhere on the line, unknown options are errors,
 * never positionals); the rules between options live here. Every problem is a usage error (exit 64).
 */
import { Command, CommanderError, Option } from 'commander';
import { usageError } from '../errors.js';
import { ALL_COMPONENTS, type ComponentName } from '../migrate/types.js';
import { parseTablePattern } from '../data/scope.js';
import { keyGlobProblem } from '../config/rules.js';

export type CommandName = 'migrate' | 'diff' | 'sync' | 'rollback' | 'help' | 'version';

export interface ParsedArgs {
  command: CommandName;
  source?: string;
  target?: string;
  components: ComponentName[];
  dryRun: boolean;
  force: boolean;
  watch: boolean;
  json: boolean;
  exitCode: boolean;
  color: boolean;
  projectDir?: string;
  schemas: string[];
  excludeSchemas: string[];
  tables: string[];
  excludeTables: string[];
  /** --key / --exclude-key: config keys (globs; server.json fields as server.json:<path>). */
  keys: string[];
  excludeKeys: string[];
  lockTimeoutMs: number;
  /** rollback: the checkpoint to undo (id or unique prefix). */
  checkpointId?: string;
  /** rollback --list */
  list: boolean;
  /** migrate --keep: checkpoints kept per target. */
  keep?: number;
  /** sync --watch: poll instead of streaming; the polling / comparing period; keep the slot at a clean stop. */
  poll: boolean;
  intervalMs: number;
  keepSlot: boolean;
  /** sync --watch --via subscription: PostgreSQL's own logical replication carries the stream. */
  via?: 'subscription';
  /** --source-conninfo: how the target's server reaches the source (keys it leaves out come from the source's settings). */
  sourceConninfo?: string;
}

const collect = (v: string, prev: string[]) => prev.concat(v);

function parser(): Command {
  const cmd = new Command('nself migrate')
    .argument('[words...]')
    .helpOption(false)
    .allowExcessArguments(true)
    .exitOverride()
    .configureOutput({ writeOut: () => {}, writeErr: () => {}, outputError: () => {} })
    .option('--dry-run', 'show the plan, change nothing')
    .option('--schema-only', 'only the schema component')
    .option('--data-only', 'only the data component')
    .option('--config-only', 'only the configuration component')
    .option('--force', 'skip confirmations (production, data loss, rollback)')
    .option('--watch', 'keep syncing (sync only)')
    .option('--json', 'one JSON document on stdout')
    .option('--exit-code', 'diff: exit 2 when differences exist')
    .option('--no-color', 'no colour in human output')
    .option('-C, --project <dir>', 'project directory')
    .option('--schema <name>', 'only this PostgreSQL schema (repeatable)', collect, [])
    .option('--exclude-schema <name>', 'skip this PostgreSQL schema (repeatable)', collect, [])
    .option('--table <glob>', 'data: only tables matching schema.table glob (repeatable)', collect, [])
    .option('--exclude-table <glob>', 'data: skip tables matching glob (repeatable)', collect, [])
    .option('--key <glob>', 'config: only keys matching the glob (repeatable)', collect, [])
    .option('--exclude-key <glob>', 'config: skip keys matching the glob (repeatable)', collect, [])
    .option('--lock-timeout <duration>', 'longest wait for a lock held by another session, e.g. 10s, 500ms', '10s')
    .option('--list', 'rollback: list the checkpoints')
    .option('--keep <n>', 'migrate: checkpoints kept per target (default 20)')
    .option('--poll', 'sync --watch: poll instead of streaming')
    .option('--interval <duration>', 'sync --watch: polling period; how often tables without a replica identity are compared (default 5s)')
    .option('--keep-slot', 'sync --watch: keep the publication and replication slot at a clean stop')
    .option('--via <mode>', 'sync --watch: subscription = hand the stream to a PostgreSQL subscription on the target')
    .option('--source-conninfo <conninfo>', 'sync --watch --via subscription: how the target server reaches the source')
    .addOption(new Option('-h, --help'))
    .addOption(new Option('-V, --version'));
  return cmd;
}

/** "10s", "500ms", "2m", "15" (seconds) → milliseconds. */
export function parseDuration(text: string, option = '--lock-timeout'): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw usageError(`${option}: "${text}" is not a duration`, 'use e.g. 10s, 500ms or 2m');
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const ms = Math.round(unit === 'ms' ? n : unit === 'm' ? n * 60_000 : n * 1000);
  // PostgreSQL reads lock_timeout = 0 as "wait forever": exactly what this option exists to prevent.
  if (ms < 1) throw usageError(`${option}: "${text}" is zero; waiting forever for a lock is not offered`, 'use a positive duration, e.g. 10s, 500ms or 2m');
  return ms;
}

/** --via: the one mode there is. */
export function parseVia(text: string): 'subscription' {
  if (text !== 'subscription') throw usageError(`--via: "${text}" is not a mode`, 'the only mode is --via subscription (without --via, the watcher streams or polls itself)');
  return text;
}

/** --keep: a whole number ≥ 1. */
export function parseKeep(text: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) {
    throw usageError(`--keep: "${text}" is not a number of checkpoints ≥ 1`, 'e.g. --keep 5 keeps the five newest checkpoints of the target');
  }
  return Number(text);
}

function commanderMessage(e: CommanderError): string {
  return e.message.replace(/^error: /, '');
}

export function parseArgs(argv: string[]): ParsedArgs {
  const cmd = parser();
  try {
    cmd.parse(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      throw usageError(commanderMessage(e), 'see `nself migrate --help` for the options');
    }
    throw e;
  }
  const o = cmd.opts();
  const words = cmd.args;
  const only = (['schema', 'data', 'config'] as const).filter((c) => o[`${c}Only`]);
  if (only.length > 1) {
    throw usageError(`--${only[0]}-only and --${only[1]}-only cannot be combined`, 'choose one component, or none for all three');
  }
  const base: ParsedArgs = {
    command: 'migrate',
    components: only.length === 1 ? [only[0]] : [...ALL_COMPONENTS],
    dryRun: !!o.dryRun,
    force: !!o.force,
    watch: !!o.watch,
    json: !!o.json,
    exitCode: !!o.exitCode,
    color: o.color !== false,
    projectDir: o.project,
    schemas: o.schema,
    excludeSchemas: o.excludeSchema,
    tables: o.table,
    excludeTables: o.excludeTable,
    keys: o.key,
    excludeKeys: o.excludeKey,
    lockTimeoutMs: parseDuration(o.lockTimeout),
    list: !!o.list,
    ...(o.keep !== undefined ? { keep: parseKeep(o.keep) } : {}),
    poll: !!o.poll,
    intervalMs: o.interval === undefined ? 5000 : parseDuration(o.interval, '--interval'),
    keepSlot: !!o.keepSlot,
    ...(o.via !== undefined ? { via: parseVia(o.via) } : {}),
    ...(o.sourceConninfo !== undefined ? { sourceConninfo: o.sourceConninfo } : {}),
  };
  for (const p of [...base.tables, ...base.excludeTables]) parseTablePattern(p); // a malformed pattern is a usage error now, not after connecting
  for (const [flag, globs] of [['--key', base.keys], ['--exclude-key', base.excludeKeys]] as const) {
    for (const g of globs) {
      const why = keyGlobProblem(g);
      if (why) throw usageError(`${flag}: ${JSON.stringify(g)} is not a key glob`, why);
    }
  }
  if (o.help) return { ...base, command: 'help' };
  if (o.version) return { ...base, command: 'version' };

  const first = words[0];
  // `nself migrate help` (alone or before a command word) is --help; `help staging` still names an environment.
  if (first === 'help' && (words.length === 1 || (words.length === 2 && ['migrate', 'diff', 'sync', 'rollback'].includes(words[1]!)))) {
    return { ...base, command: 'help' };
  }
  let command: CommandName;
  let envs: string[];
  if (first === 'diff' || first === 'sync' || first === 'rollback') {
    command = first;
    envs = words.slice(1);
  } else {
    command = 'migrate';
    envs = words;
  }
  if (base.list && command !== 'rollback') throw usageError('--list only applies to `nself migrate rollback`', 'use `nself migrate rollback --list` to see the checkpoints');
  if (base.keep !== undefined && command !== 'migrate') throw usageError('--keep only applies to a migration', 'use `nself migrate <source> <target> --keep <n>`');
  if (command === 'rollback') {
    if (envs.length > 1) throw usageError(`rollback takes at most one checkpoint id (got "${envs.join(' ')}")`, 'usage: nself migrate rollback [<id>] [options]; see `nself migrate rollback --list`');
    if (base.list && envs.length === 1) throw usageError('--list cannot be combined with a checkpoint id', 'use `nself migrate rollback --list` alone');
    if (base.list && base.dryRun) throw usageError('--list cannot be combined with --dry-run', '--list only lists; `nself migrate rollback [<id>] --dry-run` shows what a rollback would undo');
  }
  const want = command === 'rollback' ? envs.length : 2;
  if (envs.length !== want) {
    if (envs.length < 2) {
      const missing = envs.length === 0 ? '<source> and <target>' : '<target>';
      throw usageError(`missing ${missing}`, `usage: nself migrate ${command === 'migrate' ? '' : command + ' '}<source> <target> [options]`);
    }
    throw usageError(`unexpected argument "${envs[2]}"`, `usage: nself migrate ${command === 'migrate' ? '' : command + ' '}<source> <target> [options]`);
  }
  if (base.watch && command !== 'sync') throw usageError('--watch only applies to `nself migrate sync`', 'use `nself migrate sync <source> <target> --watch`');
  const watchOnly = [o.poll && '--poll', o.interval !== undefined && '--interval', o.keepSlot && '--keep-slot', o.via !== undefined && '--via'].filter(Boolean);
  if (watchOnly.length > 0 && !(command === 'sync' && base.watch)) throw usageError(`${watchOnly[0]} only applies to \`nself migrate sync --watch\``, 'use `nself migrate sync <source> <target> --watch`');
  if (base.sourceConninfo !== undefined && base.via !== 'subscription') throw usageError('--source-conninfo only applies to `nself migrate sync --watch --via subscription`', 'use `nself migrate sync <source> <target> --watch --via subscription --source-conninfo …`');
  if (base.via && base.poll) throw usageError('--poll cannot be combined with --via subscription', 'with --via subscription PostgreSQL applies every change as it comes: there is no polling period');
  if (base.watch && base.dryRun) throw usageError('--watch cannot be combined with --dry-run', 'use `nself migrate sync <source> <target> --dry-run` to see what a sync would do');
  if (base.exitCode && command !== 'diff') throw usageError('--exit-code only applies to `nself migrate diff`', 'use `nself migrate diff <source> <target> --exit-code`');
  if (command === 'rollback' && only.length > 0) throw usageError(`--${only[0]}-only does not apply to rollback`, 'rollback restores everything the latest migration changed');
  const dbOnly = [...base.schemas, ...base.excludeSchemas, ...base.tables, ...base.excludeTables].length > 0;
  if (dbOnly && command === 'rollback') throw usageError('--schema/--table filters do not apply to rollback', 'rollback restores everything the latest migration changed');
  if (base.keys.length + base.excludeKeys.length > 0) {
    if (command === 'rollback') throw usageError('--key/--exclude-key do not apply to rollback', 'rollback restores everything the latest migration changed');
    if (!base.components.includes('config')) throw usageError(`--key/--exclude-key select configuration keys: they cannot be combined with --${only[0]}-only`, 'use them alone or with --config-only');
  }
  if (command === 'rollback') return { ...base, command, ...(envs[0] !== undefined ? { checkpointId: envs[0] } : {}) };
  return { ...base, command, source: envs[0], target: envs[1] };
}

export const HELP = `nself migrate — move schema, data and configuration between environments

Usage:
  nself migrate <source> <target> [options]       migrate source → target
  nself migrate diff <source> <target> [options]  show differences
  nself migrate sync <source> <target> [options]  make target equal to source, writing only the rows that differ
  nself migrate rollback [<id>] [options]         undo the last migration (or checkpoint <id>)
  nself migrate rollback --list [--json]          list the checkpoints, newest first

Environments: local (alias dev), staging, prod (alias production), or any <name>
with a folder .environments/<name>/.

Options (anywhere on the line):
  --dry-run                 show the plan and change nothing (writes nothing at all)
  --schema-only             only the schema component
  --data-only               only the data component
  --config-only             only the configuration component
  --force                   do not ask: confirms production changes, data loss, rollback
                            (and rollback <id> of an older checkpoint)
  --json                    print one JSON document (Plan or Report) on stdout
  --exit-code               diff: exit 2 when differences exist
  -C, --project <dir>       project directory (default: current directory)
  --schema <name>           only this PostgreSQL schema (repeatable)
  --exclude-schema <name>   skip this PostgreSQL schema (repeatable)
  --table <glob>            data: only tables matching schema.table glob (repeatable)
  --exclude-table <glob>    data: skip tables matching the glob (repeatable)
  --key <glob>              config: only keys matching the glob, e.g. 'SMTP_*' or
                            'server.json:backup.*' (repeatable)
  --exclude-key <glob>      config: skip keys matching the glob (repeatable)
  --lock-timeout <dur>      longest wait for another session's lock (default 10s)
  --keep <n>                migrate: keep the n newest checkpoints per target (default 20)
  --list                    rollback: list the checkpoints instead of rolling back
  --watch                   sync: keep following the source (logical decoding, else polling)
  --poll                    sync --watch: poll (a delta sync every --interval) instead of streaming
  --interval <dur>          sync --watch: polling period; how often tables without a replica
                            identity are compared (default 5s)
  --keep-slot               sync --watch: keep the publication and slot at a clean stop
  --via subscription        sync --watch: a PostgreSQL subscription on the target applies the
                            changes (the target server must reach the source)
  --source-conninfo <ci>    with --via subscription: how the target server reaches the source,
                            e.g. 'host=db port=5432' (other keys from the source's settings)
  --no-color                no colour (NO_COLOR is honoured too)
  -h, --help                this help
  -V, --version             the version

Exit codes: 0 ok · 1 failed (nothing half-applied) · 2 differences (diff --exit-code)
            3 refused by a safety rule · 64 usage error · 130 interrupted
`;
