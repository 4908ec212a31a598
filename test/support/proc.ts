/**
 * Child processes that must leave nothing behind: each runs with a private TMPDIR, then the test checks that the
 * directory is empty and that no process still mentions it (a postgres started there shows it in `-D <dir>`).
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, type RunResult } from './cli.ts';

/** A new temp directory, searchable by others (PostgreSQL runs as the postgres user when the tests run as root). */
export function privateTmp(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(d, 0o755);
  return d;
}

/**
 * Run a command in the repository (tsx without a cache); `env` entries set to undefined are removed. Resolves with
 * its output; killed after timeoutMs.
 */
export function runCommand(cmd: string, args: string[], env: Record<string, string | undefined>, timeoutMs = 120_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const clean: Record<string, string> = {};
    // NODE_TEST_CONTEXT (set for test files) would make a nested `node --test` report to us in its binary format.
    for (const [k, v] of Object.entries({ ...process.env, TSX_DISABLE_CACHE: '1', NODE_TEST_CONTEXT: undefined, ...env })) if (v !== undefined) clean[k] = v;
    const child = spawn(cmd, args, { cwd: ROOT, env: clean, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Processes whose command line mentions `text`. */
export function processesMentioning(text: string): string[] {
  const r = spawnSync('pgrep', ['-af', text], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.trim() !== '' && !l.includes('pgrep'));
}

/** What is left in `dir` and which processes still mention it (waiting up to 5 s for stopping ones to go). */
export async function leftovers(dir: string): Promise<{ left: string[]; procs: string[] }> {
  for (let i = 0; i < 50 && processesMentioning(dir).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  return { left: readdirSync(dir), procs: processesMentioning(dir) };
}
