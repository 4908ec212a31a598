/**
 * The test harness itself (issue #9, part 13): tests that need a missing tool or the corpus are skipped with the
 * reason and the install command — and fail in CI; a failing `before` hook or a crashing test process leaves no
 * server and no directory behind. Each child runs with its own TMPDIR, so "nothing left behind" is checked on a
 * directory no one else uses.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, type RunResult } from './support/cli.ts';
import { leftovers, privateTmp, runCommand } from './support/proc.ts';

const cleanup: string[] = [];
after(() => cleanup.forEach((d) => rmSync(d, { recursive: true, force: true })));

function newTmp(): string {
  const d = privateTmp('nself-harness-');
  cleanup.push(d);
  return d;
}

describe('test harness: prerequisites and cleanup', () => {
  const SUPPORT = (f: string) => pathToFileURL(join(ROOT, 'test', 'support', f)).href;

  /** Write a test file into a private directory and run it with node's test runner (and tsx, no cache). */
  async function runFixture(source: string, env: Record<string, string | undefined>): Promise<RunResult & { tmp: string }> {
    const tmp = newTmp();
    const dir = newTmp();
    const file = join(dir, 'fixture.test.ts');
    writeFileSync(file, source);
    const r = await runCommand(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', file], { TMPDIR: tmp, CI: '', ...env }, 120_000);
    return { ...r, tmp };
  }

  const NEEDS_SSHD = `
    import { test } from 'node:test';
    import { needs } from '${SUPPORT('prereq.ts')}';
    test('uses sshd', { skip: needs('sshd') }, () => {});
    test('uses pg_dump', { skip: needs('pg_dump') }, () => {});
  `;

  test('a missing tool skips the tests that need it, naming the reason and the install command', async () => {
    const r = await runFixture(NEEDS_SSHD, { NSELF_TEST_WITHOUT: 'sshd,pg_dump' });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /# SKIP needs sshd, not found \(hidden by NSELF_TEST_WITHOUT\): apt-get install -y openssh-server/);
    assert.match(r.stdout, /# SKIP needs pg_dump 15 or newer, not found \(hidden by NSELF_TEST_WITHOUT\): apt-get install -y postgresql-client-15/);
    assert.match(r.stdout, /# skipped 2/);
  });

  test('in CI (CI=true) a missing tool fails the run instead', async () => {
    const r = await runFixture(NEEDS_SSHD, { NSELF_TEST_WITHOUT: 'sshd', CI: 'true' });
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /CI=true: nothing may be skipped in CI, but this test needs sshd/);
    assert.doesNotMatch(r.stdout, /# SKIP/);
  });

  test('the migra corpus: skipped with a note where it is missing, a failure in CI', async () => {
    const env = { NSELF_TEST_CORPUS: join(newTmp(), 'no-corpus-here') };
    const local = await runCommand(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', 'test/schema-corpus.test.ts'], { ...env, CI: '' });
    assert.equal(local.code, 0, local.stdout + local.stderr);
    assert.match(local.stdout, /# SKIP needs the migra corpus at .*no-corpus-here, not found: it is not part of the repository/);
    assert.match(local.stdout, /# pass 0/);
    const ci = await runCommand(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', 'test/schema-corpus.test.ts'], { ...env, CI: 'true' });
    assert.notEqual(ci.code, 0);
    assert.match(ci.stdout + ci.stderr, /nothing may be skipped in CI, but this test needs the migra corpus/);
  });

  test('a failing before hook stops the servers that did start, and the test process ends', async () => {
    const r = await runFixture(
      `
      import { test, before, after } from 'node:test';
      import { startCluster } from '${SUPPORT('pg.ts')}';
      import { startAll } from '${SUPPORT('prereq.ts')}';
      let a, b;
      before(async () => {
        [a, b] = await startAll([startCluster(), startCluster(), Promise.reject(new Error('third server failed to start'))]);
      });
      after(async () => { await a?.stop(); await b?.stop(); });
      test('never runs', () => {});
    `,
      {},
    );
    assert.notEqual(r.code, 0);
    assert.equal(r.signal, null, 'ended by itself, not by the timeout');
    assert.match(r.stdout, /third server failed to start/);
    const { left, procs } = await leftovers(r.tmp);
    assert.deepEqual(left, []);
    assert.deepEqual(procs, []);
  });

  test('a test process that dies mid-test (process.exit) takes its servers with it', async () => {
    const r = await runFixture(
      `
      import { test } from 'node:test';
      import { startCluster } from '${SUPPORT('pg.ts')}';
      test('crashes', async () => {
        await startCluster();
        await startCluster();
        process.exit(3);
      });
    `,
      {},
    );
    assert.notEqual(r.code, 0);
    const { left, procs } = await leftovers(r.tmp);
    assert.deepEqual(left, []);
    assert.deepEqual(procs, []);
  });
});
