/**
 * Running the real binary as a user would: a temp project directory with real env files, the built
 * `bin/nself` spawned in it, exit code and output captured.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(ROOT, 'bin', 'nself');

export interface RunResult {
  code: number | null;
  /** The signal that killed it, if one did. */
  signal?: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Project {
  dir: string;
  write(path: string, text: string): void;
  read(path: string): string;
  exists(path: string): boolean;
  /** Names in .nself/migrations (checkpoints), or [] when absent. */
  checkpoints(): string[];
  run(args: string[], opts?: { input?: string; env?: Record<string, string>; timeoutMs?: number }): Promise<RunResult>;
  remove(): void;
}

export function makeProject(files: Record<string, string> = {}): Project {
  const dir = mkdtempSync(join(tmpdir(), 'nself-proj-'));
  const p: Project = {
    dir,
    write(path, text) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    },
    read(path) {
      return readFileSync(join(dir, path), 'utf8');
    },
    exists(path) {
      return existsSync(join(dir, path));
    },
    checkpoints() {
      const d = join(dir, '.nself', 'migrations');
      return existsSync(d) ? readdirSync(d).sort() : [];
    },
    run(args, opts = {}) {
      return runBin(args, { cwd: dir, ...opts });
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
  for (const [k, v] of Object.entries(files)) p.write(k, v);
  return p;
}

export function runBin(args: string[], opts: { cwd: string; input?: string; env?: Record<string, string>; timeoutMs?: number; bin?: string }): Promise<RunResult> {
  return startCommand(process.execPath, [opts.bin ?? BIN, ...args], opts).done;
}

/** Run any executable (a bin reached through a symlink, a script) as a user's shell would start it. */
export function runFile(file: string, args: string[], opts: { cwd: string; input?: string; env?: Record<string, string>; timeoutMs?: number }): Promise<RunResult> {
  return startCommand(file, args, opts).done;
}

/** Start any executable with stdin kept open; `output()` is what it printed so far. */
export function startFile(file: string, args: string[], opts: { cwd: string; env?: Record<string, string>; timeoutMs?: number }) {
  return startCommand(file, args, { ...opts, keepStdin: true });
}

/** Start the CLI and keep hold of the child (to signal it); `done` resolves when it exits. */
export function startBin(args: string[], opts: { cwd: string; env?: Record<string, string>; timeoutMs?: number }): { child: ChildProcess; done: Promise<RunResult> } {
  return startCommand(process.execPath, [BIN, ...args], opts);
}

/**
 * Start the CLI with `--json` output read as NDJSON events (a watch): `events()` is what it printed so far, one
 * object per line; `until(pred, what)` waits for the events to satisfy `pred`, and fails naming `what` (and every
 * event) when the process ends or `ms` passes first.
 */
export function startEvents(args: string[], opts: { cwd: string; env?: Record<string, string>; timeoutMs?: number }) {
  const run = startBin(args, opts);
  let buf = '';
  const lines: string[] = [];
  run.child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  const events = () => lines.map((l) => JSON.parse(l) as Record<string, any>);
  return {
    ...run,
    events,
    async until(pred: (e: Record<string, any>[]) => boolean, what: string, ms = 30_000): Promise<void> {
      const end = Date.now() + ms;
      while (!pred(events())) {
        if (run.child.exitCode !== null || Date.now() > end) throw new Error(`${what}: not seen; events:\n${lines.join('\n')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

/**
 * Start a command and keep stdin open (`keepStdin`): the test types into it later. `output()` is what it
 * printed so far on stdout and stderr.
 */
function startCommand(
  file: string,
  args: string[],
  opts: { cwd: string; input?: string; keepStdin?: boolean; env?: Record<string, string>; timeoutMs?: number },
): { child: ChildProcess; done: Promise<RunResult>; output(): string } {
  let stdout = '';
  let stderr = '';
  let child!: ChildProcess;
  const done = new Promise<RunResult>((resolvePromise, reject) => {
    child = spawn(file, args, {
      cwd: opts.cwd,
      env: { ...process.env, NO_COLOR: '1', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    // A command may exit without reading its input (a usage error): writing to it then fails with EPIPE,
    // which is not the test's business.
    child.stdin!.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
    if (!opts.keepStdin) child.stdin!.end(opts.input ?? '');
  });
  return { child, done, output: () => stdout + stderr };
}

/**
 * Run the CLI on a real pseudo-terminal (script(1)) and wait until it asks for confirmation; then the test
 * may change the world and `answer` what the user types. `output()` is what the terminal showed so far.
 */
export async function atPrompt(args: string[], cwd: string): Promise<{ output(): string; answer(text: string): Promise<RunResult> }> {
  const cmd = [process.execPath, BIN, ...args].map((a) => JSON.stringify(a)).join(' ');
  const run = startCommand('script', ['-qec', cmd, '/dev/null'], { cwd, keepStdin: true });
  const deadline = Date.now() + 30_000;
  while (!/Type "yes" to continue/.test(run.output())) {
    if (Date.now() > deadline || run.child.exitCode !== null) throw new Error(`no confirmation prompt:\n${run.output()}`);
    await new Promise((res) => setTimeout(res, 50));
  }
  return {
    output: run.output,
    answer(text) {
      run.child.stdin!.end(text);
      return run.done;
    },
  };
}
