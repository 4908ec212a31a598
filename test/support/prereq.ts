/**
 * What the tests need from the machine beyond `npm ci`, and what happens when it is missing.
 *
 *   sshd      OpenSSH server (the SSH tunnel tests start their own on 127.0.0.1)   apt-get install openssh-server
 *   pg_dump   PostgreSQL 15+ client (independent schema checks)                    apt-get install postgresql-client-15
 *   corpus    the migra corpus, ../shared/corpus/migra beside the repository (NSELF_TEST_CORPUS to point elsewhere)
 *
 * Outside CI a test that needs something missing is skipped, with the reason and the install command. In CI
 * (`CI` set to anything but "", "0" or "false" — .ci/run sets CI=true) nothing may be skipped: `needs()` throws at
 * once, so the test file fails loudly naming what is missing.
 *
 * NSELF_TEST_WITHOUT=sshd,pg_dump,corpus makes the tests behave as if those were missing (to try a machine without
 * them on one that has them).
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { ROOT } from './cli.ts';

export type Prerequisite = 'sshd' | 'pg_dump' | 'corpus';

export const IN_CI = !!process.env.CI && !['0', 'false'].includes(process.env.CI.toLowerCase());

const hidden = new Set((process.env.NSELF_TEST_WITHOUT ?? '').split(',').map((s) => s.trim()).filter(Boolean));

/** The migra corpus: NSELF_TEST_CORPUS, else ../shared/corpus/migra beside the repository. */
export const CORPUS_DIR = process.env.NSELF_TEST_CORPUS || join(ROOT, '..', 'shared', 'corpus', 'migra');

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** An executable named `name` on PATH, or in `extra` directories. */
export function findExecutable(name: string, extra: string[] = []): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...extra];
  for (const d of dirs) {
    const p = join(d, name);
    if (executable(p)) return p;
  }
  return undefined;
}

/** The first directory above `file` that others cannot search (mode without o+x), or undefined. */
export function unsearchableAbove(file: string): { dir: string; mode: number } | undefined {
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    const mode = statSync(dir).mode & 0o777;
    if ((mode & 0o001) === 0) return { dir, mode };
    if (dirname(dir) === dir) return undefined;
  }
}

/** sshd on PATH or in the usual sbin directories (often not on a user's PATH); undefined when missing or hidden. */
export function sshdPath(): string | undefined {
  if (hidden.has('sshd')) return undefined;
  return findExecutable('sshd', ['/usr/sbin', '/usr/local/sbin', '/sbin']);
}

const cache = new Map<Prerequisite, string | undefined>();

/** Why `what` is not usable here (with how to install it), or undefined when it is. */
export function missing(what: Prerequisite): string | undefined {
  if (cache.has(what)) return cache.get(what);
  let why: string | undefined;
  const hiddenNote = hidden.has(what) ? ' (hidden by NSELF_TEST_WITHOUT)' : '';
  if (what === 'sshd') {
    if (!sshdPath()) why = `needs sshd, not found${hiddenNote}: apt-get install -y openssh-server`;
  } else if (what === 'pg_dump') {
    const bin = hidden.has('pg_dump') ? undefined : findExecutable('pg_dump');
    if (!bin) why = `needs pg_dump 15 or newer, not found${hiddenNote}: apt-get install -y postgresql-client-15`;
    else {
      const v = execFileSync(bin, ['--version'], { encoding: 'utf8' });
      const major = Number(/(\d+)(\.\d+)?/.exec(v)?.[1] ?? 0);
      if (major < 15) why = `needs pg_dump 15 or newer (the test servers run PostgreSQL 15), found ${v.trim()}: apt-get install -y postgresql-client-15`;
    }
  } else {
    if (hidden.has('corpus') || !existsSync(CORPUS_DIR)) {
      why = `needs the migra corpus at ${CORPUS_DIR}, not found${hiddenNote}: it is not part of the repository; put the shared/ folder beside the checkout (as CI has it) or set NSELF_TEST_CORPUS`;
    }
  }
  cache.set(what, why);
  return why;
}

/**
 * For a test's `skip` option: false when everything is there; otherwise the reason (the test is skipped) — or, in
 * CI, an Error thrown at once, so that a missing tool fails the run instead of silently skipping tests.
 */
export function needs(...what: Prerequisite[]): string | false {
  const reasons = what.map(missing).filter((r): r is string => r !== undefined);
  if (reasons.length === 0) return false;
  const why = reasons.join('; ');
  if (IN_CI) throw new Error(`CI=${process.env.CI}: nothing may be skipped in CI, but this test ${why}`);
  return why;
}

/** true when `what` is usable (never throws: for deciding what to start in a `before` hook). */
export function have(what: Prerequisite): boolean {
  return missing(what) === undefined;
}

/** Something a test started and must stop. */
export interface Stoppable {
  stop(): Promise<void>;
}

/**
 * Start several servers at once. If any fails, wait for the others to finish starting, stop those that did, and
 * throw the first error — so a failing `before` hook never leaves a server running (nor keeps the test process
 * alive). `undefined` entries (a server not needed here) are passed through.
 */
export async function startAll<T extends readonly (Stoppable | undefined)[]>(starts: { [K in keyof T]: Promise<T[K]> | T[K] }): Promise<T> {
  const settled = await Promise.allSettled(starts as readonly unknown[]);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.allSettled(settled.map((s) => (s.status === 'fulfilled' ? (s.value as Stoppable | undefined)?.stop() : undefined)));
    throw failed.reason;
  }
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as unknown as T;
}
