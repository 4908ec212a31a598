/**
 * argv → a validated command. commander parses (options anywhere on the line, unknown options are errors,
 * never positionals); the rules between options live here. Every problem is a usage error (exit 64).
 */
import { Command, CommanderError, Option } from 'commander';
import { usageError } from '../errors.js';
import { ALL_COMPONENTS, type ComponentName } from '../migrate/types.js';
import { parseTablePattern } from '../data/scope.js';

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
  lockTimeoutMs: number;
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
    .option('--lock-timeout <duration>', 'schema: lock_timeout for the migration, e.g. 10s, 500ms', '10s')
    .addOption(new Option('-h, --help'))
    .addOption(new Option('-V, --version'));
  return cmd;
}

/** "10s", "500ms", "2m", "15" (seconds) → milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw usageError(`--lock-timeout: "${text}" is not a duration`, 'use e.g. 10s, 500ms or 2m');
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return Math.round(unit === 'ms' ? n : unit === 'm' ? n * 60_000 : n * 1000);
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
    lockTimeoutMs: parseDuration(o.lockTimeout),
  };
  for (const p of [...base.tables, ...base.excludeTables]) parseTablePattern(p); // a malformed pattern is a usage error now, not after connecting
  if (o.help) return { ...base, command: 'help' };
  if (o.version) return { ...base, command: 'version' };

  const first = words[0];
  let command: CommandName;
  let envs: string[];
  if (first === 'diff' || first === 'sync' || first === 'rollback') {
    command = first;
    envs = words.slice(1);
  } else {
    command = 'migrate';
    envs = words;
  }
  const want = command === 'rollback' ? 0 : 2;
  if (envs.length !== want) {
    if (command === 'rollback') throw usageError(`rollback takes no environment names (got "${envs.join(' ')}")`, 'rollback undoes the latest migration recorded in .nself/migrations/');
    if (envs.length < 2) {
      const missing = envs.length === 0 ? '<source> and <target>' : '<target>';
      throw usageError(`missing ${missing}`, `usage: nself migrate ${command === 'migrate' ? '' : command + ' '}<source> <target> [options]`);
    }
    throw usageError(`unexpected argument "${envs[2]}"`, `usage: nself migrate ${command === 'migrate' ? '' : command + ' '}<source> <target> [options]`);
  }
  if (base.watch && command !== 'sync') throw usageError('--watch only applies to `nself migrate sync`', 'use `nself migrate sync <source> <target> --watch`');
  if (base.exitCode && command !== 'diff') throw usageError('--exit-code only applies to `nself migrate diff`', 'use `nself migrate diff <source> <target> --exit-code`');
  if (command === 'rollback' && only.length > 0) throw usageError(`--${only[0]}-only does not apply to rollback`, 'rollback restores everything the latest migration changed');
  const dbOnly = [...base.schemas, ...base.excludeSchemas, ...base.tables, ...base.excludeTables].length > 0;
  if (dbOnly && command === 'rollback') throw usageError('--schema/--table filters do not apply to rollback', 'rollback restores everything the latest migration changed');
  return { ...base, command, source: envs[0], target: envs[1] };
}

export const HELP = `nself migrate — move schema, data and configuration between environments

Usage:
  nself migrate <source> <target> [options]       migrate source → target
  nself migrate diff <source> <target> [options]  show differences
  nself migrate sync <source> <target> [--watch]  keep in sync (not available yet)
  nself migrate rollback [options]                undo the last migration

Environments: local (alias dev), staging, prod (alias production), or any <name>
with a folder .environments/<name>/.

Options (anywhere on the line):
  --dry-run                 show the plan and change nothing (writes nothing at all)
  --schema-only             only the schema component
  --data-only               only the data component
  --config-only             only the configuration component
  --force                   do not ask: confirms production changes, data loss, rollback
  --json                    print one JSON document (Plan or Report) on stdout
  --exit-code               diff: exit 2 when differences exist
  -C, --project <dir>       project directory (default: current directory)
  --schema <name>           only this PostgreSQL schema (repeatable)
  --exclude-schema <name>   skip this PostgreSQL schema (repeatable)
  --table <glob>            data: only tables matching schema.table glob (repeatable)
  --exclude-table <glob>    data: skip tables matching the glob (repeatable)
  --lock-timeout <dur>      lock_timeout while migrating (default 10s)
  --watch                   sync: keep syncing
  --no-color                no colour (NO_COLOR is honoured too)
  -h, --help                this help
  -V, --version             the version

Exit codes: 0 ok · 1 failed (nothing half-applied) · 2 differences (diff --exit-code)
            3 refused by a safety rule · 64 usage error · 130 interrupted
`;
