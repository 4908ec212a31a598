/**
 * node:test for test files that start PostgreSQL: the same `test`, `describe`, `it` and hooks, except that when the
 * test servers cannot start on this machine (the `pg` prerequisite, see prereq.ts) every test is skipped with the
 * reason and the hooks do nothing — and in CI the file fails at once instead. A test file that starts a server
 * imports these instead of node:test's.
 */
import * as nodeTest from 'node:test';
import { missing, needs } from './prereq.ts';

type Runner = typeof nodeTest.test;

/** `test(name, [options], [fn])` with `skip` set to the pg prerequisite's reason when the test is not skipped anyway. */
function needingPg<T extends Runner | typeof nodeTest.describe>(run: T): T {
  return ((name: string, a?: unknown, b?: unknown) => {
    const [options, fn] = typeof a === 'function' ? [{}, a] : [(a ?? {}) as nodeTest.TestOptions, b];
    const skip = (options as nodeTest.TestOptions).skip || needs('pg');
    return (run as (n: string, o: nodeTest.TestOptions, f: unknown) => unknown)(name, { ...(options as object), skip }, fn);
  }) as T;
}

/** A hook that does nothing where the servers cannot start (nothing was started, nothing to stop). */
function hookNeedingPg<H extends typeof nodeTest.before>(hook: H): H {
  return ((fn: (...args: unknown[]) => unknown, options?: nodeTest.HookOptions) =>
    hook(async (...args: unknown[]) => (missing('pg') ? undefined : fn(...args)), options)) as H;
}

export const test = needingPg(nodeTest.test);
export const it = needingPg(nodeTest.it);
export const describe = needingPg(nodeTest.describe);
export const before = hookNeedingPg(nodeTest.before);
export const after = hookNeedingPg(nodeTest.after);
export const beforeEach = hookNeedingPg(nodeTest.beforeEach);
export const afterEach = hookNeedingPg(nodeTest.afterEach);
