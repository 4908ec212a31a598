/**
 * The CLI's edges (issue #9, part 12): `nself migrate help`, no ANSI colour when output is not a terminal (the
 * demo included), nothing left in the temp directory by the demo (no tsx cache either). The demo runs with its
 * own TMPDIR, so "nothing left behind" is checked on a directory no one else uses.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, makeProject, ROOT, runBin } from './support/cli.ts';
import { leftovers, privateTmp, runCommand } from './support/proc.ts';

const ESC = '\x1b';
const cleanup: string[] = [];
after(() => cleanup.forEach((d) => rmSync(d, { recursive: true, force: true })));

function newTmp(): string {
  const d = privateTmp('nself-edges-');
  cleanup.push(d);
  return d;
}

describe('command line edges', () => {
  test('`nself migrate help` prints the help (so do `nself-migrate help` and `help <command>`)', async () => {
    const p = makeProject({ '.env.local': 'A=1\n' });
    try {
      for (const [bin, args] of [[BIN, ['migrate', 'help']], [join(ROOT, 'bin', 'nself-migrate'), ['help']], [BIN, ['migrate', 'help', 'rollback']]] as const) {
        const r = await runBin([...args], { cwd: p.dir, bin });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^nself migrate — move schema, data and configuration/);
        assert.match(r.stdout, /Exit codes/);
        assert.equal(r.stderr, '');
      }
      // `help` followed by an environment still names an environment.
      const r = await p.run(['migrate', 'help', 'staging']);
      assert.equal(r.code, 64);
      assert.match(r.stderr, /unknown environment "help"/);
    } finally {
      p.remove();
    }
  });

  test('no ANSI colour when the output is piped (NO_COLOR unset); colour on a terminal', async () => {
    const p = makeProject({ '.env.local': 'A=1\nB=x\n', '.env.staging': 'A=2\n' });
    try {
      const piped = await p.run(['migrate', 'diff', 'local', 'staging', '--config-only'], { env: { NO_COLOR: '', TERM: 'xterm-256color', FORCE_COLOR: '1' } });
      assert.equal(piped.code, 0, piped.stderr);
      assert.match(piped.stdout, /Config: 2 difference/);
      assert.equal((piped.stdout + piped.stderr).includes(ESC), false);
      // The same command on a pseudo-terminal (script(1)) is coloured: the check above can see colour.
      const cmd = [process.execPath, BIN, 'migrate', 'diff', 'local', 'staging', '--config-only'].map((a) => JSON.stringify(a)).join(' ');
      const tty = spawnSync('script', ['-qec', cmd, '/dev/null'], { cwd: p.dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '', TERM: 'xterm' } });
      assert.equal(tty.stdout.includes(`${ESC}[1m`), true, tty.stdout);
    } finally {
      p.remove();
    }
  });

  test('the demo, piped: no ANSI colour, exit 0, and nothing left in its temp directory (no tsx cache either)', async () => {
    const tmp = newTmp();
    const r = await runCommand('npm', ['run', '--silent', 'demo'], { TMPDIR: tmp, NO_COLOR: undefined, TSX_DISABLE_CACHE: undefined }, 300_000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /servers stopped, temp project removed/);
    assert.match(r.stdout, /\$ nself migrate local staging --force/);
    assert.equal((r.stdout + r.stderr).includes(ESC), false);
    const { left, procs } = await leftovers(tmp);
    assert.deepEqual(left, [], 'the demo left files in its TMPDIR');
    assert.deepEqual(procs, []);
  });
});
