/**
 * Living beside the nself CLI: `nself <anything but migrate>` is handed to the next `nself` on PATH that is
 * not this tool; the drop-in share/nself/migrate.sh sends the nself CLI's `nself migrate` to nself-migrate.
 * Real files on a real PATH: our bin reached through symlinks (as npm's global install links it), stand-in
 * nself CLIs as bash scripts in temp dirs, every process spawned as a shell would spawn it.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ROOT, runFile, startFile } from './support/cli.ts';

const TMP = mkdtempSync(join(tmpdir(), 'nself-handoff-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

const BASH = ['/bin/bash', '/usr/bin/bash'].find(existsSync)!;
const SLEEP = ['/bin/sleep', '/usr/bin/sleep'].find(existsSync)!;
const OUR_NSELF = join(ROOT, 'bin', 'nself');
const DROP_IN = join(ROOT, 'share', 'nself', 'migrate.sh');

let n = 0;
/** A fresh directory under the test's temp root. */
function dir(name = 'd'): string {
  const d = join(TMP, `${++n}-${name}`);
  mkdirSync(d, { recursive: true });
  return d;
}

/** `node` for our bins' `#!/usr/bin/env node`, and nothing else: the PATH of every test is built from scratch. */
const TOOLS = dir('tools');
symlinkSync(process.execPath, join(TOOLS, 'node'));

function script(file: string, body: string): string {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `#!${BASH}\n${body}`);
  chmodSync(file, 0o755);
  return file;
}

/** A stand-in for the nself CLI: shows what it got (args one per line, stdin, which file ran), exits 7. */
function fakeNselfCli(d = dir('nself-cli')): string {
  script(
    join(d, 'nself'),
    `printf 'nself CLI at %s\\n' "$0"
printf '<%s>\\n' "$@"
while IFS= read -r line; do printf 'stdin: %s\\n' "$line"; done
echo 'nself CLI on stderr' >&2
exit 7
`,
  );
  return d;
}

/** A directory holding `nself` as a symlink to our bin, the way npm's global install links it. */
function ourLink(): string {
  const prefix = dir('npm-prefix');
  mkdirSync(join(prefix, 'lib', 'node_modules'), { recursive: true });
  symlinkSync(ROOT, join(prefix, 'lib', 'node_modules', 'nself-migrate'));
  mkdirSync(join(prefix, 'bin'));
  symlinkSync('../lib/node_modules/nself-migrate/bin/nself', join(prefix, 'bin', 'nself'));
  return join(prefix, 'bin');
}

const PATH = (...dirs: string[]) => [...dirs, TOOLS].join(':');

function nself(bin: string, args: string[], opts: { path: string; cwd?: string; input?: string }) {
  return runFile(bin, args, { cwd: opts.cwd ?? TMP, input: opts.input, env: { PATH: opts.path } });
}

describe('nself <other command> is handed to the nself CLI', () => {
  test('args, stdin, stdout, stderr and the exit code pass through untouched', async () => {
    const ours = ourLink();
    const cli = fakeNselfCli();
    const args = ['start', '--x', 'a b', '', '*', '$HOME', '--json', 'migrate'];
    const r = await nself(join(ours, 'nself'), args, { path: PATH(ours, cli), input: 'line one\nline two\n' });
    assert.equal(r.code, 7, r.stderr);
    assert.equal(
      r.stdout,
      `nself CLI at ${join(cli, 'nself')}\n` + args.map((a) => `<${a}>\n`).join('') + 'stdin: line one\nstdin: line two\n',
    );
    assert.equal(r.stderr, 'nself CLI on stderr\n');
  });

  test('our own nself through two symlinks earlier on PATH is never "the next one"', async () => {
    const first = ourLink();
    const second = ourLink();
    const plain = dir('plain-link');
    symlinkSync(OUR_NSELF, join(plain, 'nself'));
    const cli = fakeNselfCli();
    const r = await nself(join(first, 'nself'), ['status'], { path: PATH(first, second, plain, cli) });
    assert.equal(r.code, 7, r.stderr);
    assert.match(r.stdout, new RegExp(`^nself CLI at ${join(cli, 'nself')}\n<status>\n$`));
  });

  test('without another nself on PATH: the old message, a hint to install the nself CLI, exit 64', async () => {
    const first = ourLink();
    const second = ourLink();
    const r = await nself(join(first, 'nself'), ['start'], { path: PATH(first, second) });
    assert.equal(r.code, 64);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^error: "nself start" is not available: this tool implements `nself migrate` only\nhint: .*install the nself CLI.*install\.nself\.org/);
  });

  test('a copy of our package (its bin carries the marker line) is skipped, and the hand-over loads no engine', async () => {
    // A copy of the package without the migrate engine and without node_modules: if handing over loaded
    // anything but node built-ins and the hand-over code, it would fail.
    const copy = dir('pkg-copy');
    for (const f of ['bin', 'dist', 'package.json']) cpSync(join(ROOT, f), join(copy, f), { recursive: true });
    for (const d of ['migrate', 'schema', 'data', 'pg', 'config', 'env', 'checkpoint']) rmSync(join(copy, 'dist', d), { recursive: true, force: true });
    const ours = ourLink();
    const cli = fakeNselfCli();
    // the copy reached first: it skips the real package (marker) and our link (marker), hands to the CLI
    const r = await nself(join(copy, 'bin', 'nself'), ['deploy', 'prod'], { path: PATH(join(copy, 'bin'), ours, cli) });
    assert.equal(r.code, 7, r.stderr);
    assert.match(r.stdout, /^nself CLI at .*\n<deploy>\n<prod>\n$/);
    // and the copy really cannot run the engine
    const m = await nself(join(copy, 'bin', 'nself'), ['migrate', 'diff', 'local', 'staging'], { path: PATH(cli) });
    assert.notEqual(m.code, 0);
  });

  test('a file named nself that is not executable, a directory named nself, a dangling link are skipped', async () => {
    const ours = ourLink();
    const noExec = dir('no-exec');
    writeFileSync(join(noExec, 'nself'), `#!${BASH}\necho wrong; exit 99\n`);
    chmodSync(join(noExec, 'nself'), 0o644);
    const isDir = dir('is-dir');
    mkdirSync(join(isDir, 'nself'));
    const dangling = dir('dangling');
    symlinkSync(join(TMP, 'no-such-file'), join(dangling, 'nself'));
    const cli = fakeNselfCli();
    const r = await nself(join(ours, 'nself'), ['logs'], { path: PATH(ours, noExec, isDir, dangling, cli) });
    assert.equal(r.code, 7, r.stderr);
    assert.match(r.stdout, new RegExp(`^nself CLI at ${join(cli, 'nself')}\n`));
  });

  test('an empty PATH entry is the current directory, a relative entry is relative to it (POSIX)', async () => {
    const ours = ourLink();
    const cwd = dir('cwd');
    fakeNselfCli(cwd);
    const r1 = await nself(join(ours, 'nself'), ['urls'], { path: `${ours}::${TOOLS}`, cwd });
    assert.equal(r1.code, 7, r1.stderr);
    assert.match(r1.stdout, new RegExp(`^nself CLI at ${join(realpathSync(cwd), 'nself')}\n<urls>\n$`));

    const cwd2 = dir('cwd2');
    fakeNselfCli(join(cwd2, 'tools', 'cli'));
    const r2 = await nself(join(ours, 'nself'), ['urls'], { path: `${ours}:tools/cli:${TOOLS}`, cwd: cwd2 });
    assert.equal(r2.code, 7, r2.stderr);
    assert.match(r2.stdout, new RegExp(`^nself CLI at ${join(realpathSync(cwd2), 'tools', 'cli', 'nself')}\n`));
  });

  for (const exec of [true, false]) {
    test(`a wrapper that runs our bin again (${exec ? 'exec' : 'as a child'}) stops with a clear error instead of looping`, async () => {
      const ours = ourLink();
      const wrapper = dir('wrapper');
      script(join(wrapper, 'nself'), `${exec ? 'exec ' : ''}node ${JSON.stringify(OUR_NSELF)} "$@"\n`);
      const cli = fakeNselfCli();
      const r = await nself(join(ours, 'nself'), ['start'], { path: PATH(ours, wrapper, cli) });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^error: "nself start" came back to this tool: ${join(wrapper, 'nself')} runs nself-migrate again`));
      assert.match(r.stderr, /\nhint: .*off PATH/);
      assert.doesNotMatch(r.stdout, /nself CLI at/);
    });
  }

  test('a wrapper carrying the marker line is skipped', async () => {
    const ours = ourLink();
    const wrapper = dir('marked-wrapper');
    script(join(wrapper, 'nself'), `# nself-migrate-bin\nexec node ${JSON.stringify(OUR_NSELF)} "$@"\n`);
    const cli = fakeNselfCli();
    const r = await nself(join(ours, 'nself'), ['start'], { path: PATH(ours, wrapper, cli) });
    assert.equal(r.code, 7, r.stderr);
  });

  test('the nself CLI calling `nself <other command>` itself is handed over again, not taken for a loop', async () => {
    const ours = ourLink();
    const cli = dir('nested-cli');
    script(
      join(cli, 'nself'),
      `case "$1" in
  start) nself build --quick || exit $?; echo started ;;
  build) echo "built $2" ;;
  *) exit 9 ;;
esac
`,
    );
    const r = await nself(join(ours, 'nself'), ['start'], { path: PATH(ours, cli) });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'built --quick\nstarted\n');
  });

  test('our own answers stay ours: nself --version, -V, migrate --version, --help; nself -v is the CLI', async () => {
    const ours = ourLink();
    const cli = fakeNselfCli();
    const path = PATH(ours, cli);
    for (const args of [['--version'], ['-V'], ['migrate', '--version']]) {
      const r = await nself(join(ours, 'nself'), args, { path });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^nself-migrate \d+\.\d+\.\d+\n$/, args.join(' '));
    }
    const help = await nself(join(ours, 'nself'), ['--help'], { path });
    assert.equal(help.code, 0);
    assert.match(help.stdout, /nself migrate <source> <target>/);
    assert.match(help.stdout, new RegExp(`Other nself commands .* are run by the nself CLI: ${join(cli, 'nself')}`));
    const alone = await nself(join(ours, 'nself'), [], { path: PATH(ours) });
    assert.equal(alone.code, 0);
    assert.match(alone.stdout, /need the nself CLI, which is not on PATH/);
    const v = await nself(join(ours, 'nself'), ['-v'], { path });
    assert.equal(v.code, 7);
    assert.match(v.stdout, /<-v>/);
  });

  test('a nself CLI that cannot be started (its #! interpreter is missing): a clear error, exit 126', async () => {
    const ours = ourLink();
    const broken = dir('broken-cli');
    writeFileSync(join(broken, 'nself'), `#!${join(TMP, 'no-such-interpreter')}\n`);
    chmodSync(join(broken, 'nself'), 0o755);
    const r = await nself(join(ours, 'nself'), ['start'], { path: PATH(ours, broken) });
    assert.equal(r.code, 126, r.stderr);
    assert.match(r.stderr, new RegExp(`^error: could not start the nself CLI at ${join(broken, 'nself')}: the interpreter on its #! line was not found\nhint: `));
  });

  test('the nself CLI killed by a signal: we end by the same signal (the shell sees 128+n)', async () => {
    const ours = ourLink();
    const cli = dir('killed-cli');
    script(join(cli, 'nself'), 'kill -TERM $$\n');
    const r = await nself(join(ours, 'nself'), ['stop'], { path: PATH(ours, cli) });
    assert.equal(r.signal, 'SIGTERM', `code ${r.code} ${r.stderr}`);
    const sh = await runFile(BASH, ['-c', `${JSON.stringify(join(ours, 'nself'))} stop; echo "rc=$?"`], { cwd: TMP, env: { PATH: PATH(ours, cli) } });
    assert.match(sh.stdout, /rc=143\n$/);
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    test(`${signal} sent to us is passed on to the nself CLI, and its exit code is ours`, async () => {
      const ours = ourLink();
      const cli = dir('trapping-cli');
      script(join(cli, 'nself'), `trap 'echo "got ${signal.slice(3)}"; exit 42' ${signal.slice(3)}\necho ready\nwhile :; do ${SLEEP} 0.05; done\n`);
      const run = startFile(join(ours, 'nself'), ['logs', '-f'], { cwd: TMP, env: { PATH: PATH(ours, cli) } });
      const deadline = Date.now() + 20_000;
      while (!run.output().includes('ready')) {
        if (Date.now() > deadline || run.child.exitCode !== null) assert.fail(`the nself CLI did not start:\n${run.output()}`);
        await new Promise((res) => setTimeout(res, 25));
      }
      run.child.kill(signal);
      const r = await run.done;
      assert.equal(r.code, 42, r.stdout + r.stderr);
      assert.equal(r.stdout, `ready\ngot ${signal.slice(3)}\n`);
    });
  }
});

describe('share/nself/migrate.sh: the drop-in for the nself CLI', () => {
  test('runs nself-migrate with the same args; its output and exit code are the answer', async () => {
    const bin = dir('fake-nself-migrate');
    script(join(bin, 'nself-migrate'), `printf '<%s>\\n' "$@"\nwhile IFS= read -r line; do echo "stdin: $line"; done\necho err >&2\nexit 5\n`);
    const r = await runFile(BASH, [DROP_IN, 'local', 'staging', '--dry-run', 'a b', ''], { cwd: TMP, input: 'yes\n', env: { PATH: bin } });
    assert.equal(r.code, 5, r.stderr);
    assert.equal(r.stdout, '<local>\n<staging>\n<--dry-run>\n<a b>\n<>\nstdin: yes\n');
    assert.equal(r.stderr, 'err\n');
  });

  test('without nself-migrate on PATH: a clear message and exit 127', async () => {
    const r = await runFile(BASH, [DROP_IN, 'local', 'staging'], { cwd: TMP, env: { PATH: dir('empty') } });
    assert.equal(r.code, 127);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^error: `nself migrate` is nself-migrate, which is not on PATH\nhint: .*npm link/);
  });

  test('installed into a nself CLI that dispatches to src/cli/<command>.sh, it reaches the real nself-migrate', async () => {
    // the nself CLI's dispatch, reduced to its rule: `nself <command>` runs `bash src/cli/<command>.sh`
    const install = dir('nself-install');
    script(join(install, 'bin', 'nself'), `root="\${0%/bin/nself}"\ncmd="$1"; shift\nexec ${BASH} "$root/src/cli/$cmd.sh" "$@"\n`);
    mkdirSync(join(install, 'src', 'cli'), { recursive: true });
    symlinkSync(DROP_IN, join(install, 'src', 'cli', 'migrate.sh'));
    const npmBin = dir('npm-bin');
    symlinkSync(join(ROOT, 'bin', 'nself-migrate'), join(npmBin, 'nself-migrate'));
    const path = PATH(join(install, 'bin'), npmBin);
    const v = await runFile(join(install, 'bin', 'nself'), ['migrate', '--version'], { cwd: TMP, env: { PATH: path } });
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /^nself-migrate \d+\.\d+\.\d+\n$/);
    const bad = await runFile(join(install, 'bin', 'nself'), ['migrate', 'local'], { cwd: TMP, env: { PATH: path } });
    assert.equal(bad.code, 64);
    assert.match(bad.stderr, /missing <target>/);
  });
});
