/**
 * Shell-safe writes (issue #9, part 3): every value the tool writes into an env file reads back as exactly that
 * value both in bash (`set -a; . ./.env.x`, as the nself CLI does) and in the project's own parser, and sourcing
 * the file runs nothing. A table of nasty values × every way a value is written (appended; an existing unquoted,
 * single-quoted, double-quoted, `export`ed, spaced or commented line), then a real config migration.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appendEntries, formatValue, parseEnvDocument, serialize, setValue } from '../src/env/envfile.ts';
import { loadEnvironment } from '../src/env/resolve.ts';
import { MigrateError } from '../src/errors.ts';
import { makeProject } from './support/cli.ts';

/** Each value would, written carelessly, run `touch PWNED` in the sourcing shell or read back differently. */
const NASTY: string[] = [
  '',
  'plain',
  'hello; touch PWNED',
  'a && touch PWNED',
  'x | touch PWNED',
  '$(touch PWNED)',
  '`touch PWNED`',
  'a`touch PWNED`b',
  "it's",
  "'",
  "''",
  '"',
  'say "hi"',
  `mix '"$\`\\ all`,
  '$HOME',
  '${HOME}',
  '$',
  'cost $5',
  '\\',
  'a\\',
  '\\n',
  'back\\slash',
  'a\\\nb',
  'line1\nline2',
  'trailing newline\n',
  '\n',
  'lone\rcr',
  'cr at end\r',
  '#hash',
  'a #b',
  'a#b',
  ' lead',
  'trail ',
  'two  spaces',
  'tab\there',
  'ünïcødé ✓ 🚀',
  '*',
  '~/x',
  'a=b',
  '!bang',
  '{a,b}',
  '[x]',
  '-n',
  '(sub)',
  '<in >out',
  "a'b\"c$d`e\\f\ng#h",
];

/** How an existing line sets K before the write (setValue keeps its style when it can). */
const EXISTING = ["K=old", "K='old'", 'K="old"', 'export K=old', 'K = old', 'K="old" # comment', "K='old'#tight", 'K=old   # comment', 'K="multi\nline"'];

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nself-shq-'));
  chmodSync(dir, 0o755);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** What bash makes of K after `set -a; . ./file` (exact bytes, trailing newlines included), run in `dir`. */
function bashReads(file: string): string {
  return execFileSync('bash', ['--noprofile', '--norc', '-c', 'set -a; . "./$1"; set +a; printf %s "$K"', 'bash', file], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/home/someone' },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

let n = 0;
function check(text: string, value: string, how: string): void {
  const file = `.env.t${++n}`;
  writeFileSync(join(dir, file), text);
  const label = `${how}, value ${JSON.stringify(value)}, file ${JSON.stringify(text)}`;
  const parsed = parseEnvDocument(text, file).entries.filter((e) => e.key === 'K').at(-1);
  assert.equal(parsed?.value, value, `parser: ${label}`);
  assert.equal(bashReads(file), value, `bash: ${label}`);
  assert.equal(existsSync(join(dir, 'PWNED')), false, `something ran: ${label}`);
}

describe('a written value reads back identically in bash and in the parser, and runs nothing', () => {
  for (const value of NASTY) {
    test(JSON.stringify(value), () => {
      for (const q of ['', "'", '"'] as const) check(`K=${formatValue(value, q)}\n`, value, `formatValue prefer ${q || 'unquoted'}`);
      const doc = parseEnvDocument('A=1\n', 'f');
      appendEntries(doc, [{ key: 'K', value }], 'added');
      check(serialize(doc), value, 'appendEntries');
      for (const line of EXISTING) {
        const d = parseEnvDocument(`# head\n${line}\nZ=after\n`, 'f');
        assert.equal(setValue(d, 'K', value), true);
        check(serialize(d), value, `setValue over ${JSON.stringify(line)}`);
        assert.equal(d.entries.find((e) => e.key === 'Z')?.value, 'after');
      }
    });
  }

  test('values no shell and parser can agree on are refused, not mangled', () => {
    for (const v of ['a\r\nb', 'nul\0byte']) {
      assert.throws(() => formatValue(v), (e: unknown) => e instanceof MigrateError && e.code === 'env_unwritable_value' && !!e.hint);
    }
  });
});

test('a config migration writes the source values so that bash reads them exactly (and nothing runs)', async () => {
  const SOURCE: Record<string, string> = {
    GREETING: "'hello; touch PWNED'",
    TICKS: "'a`touch PWNED`b'",
    SUBST: "'$(touch PWNED)'",
    DOLLAR: '"costs \\$5 for $APP"',
    QUOTES: `"say \\"hi\\" it's"`,
    MULTI: '"line1\nline2 \\$HOME"',
    HASHED: "'#not a comment'",
    SPACED: "'  padded  '",
    UNICODE: 'ünïcødé',
    BACKSLASH: "'C:\\new\\table'",
    EMPTY: "''",
  };
  const p = makeProject({
    '.env.local': `APP=shop\n${Object.entries(SOURCE).map(([k, v]) => `${k}=${v}`).join('\n')}\n`,
    '.env.staging': 'ENV=staging\nGREETING=old\nexport TICKS="old" # kept comment\nDOLLAR = old\n',
  });
  try {
    const r = await p.run(['migrate', 'local', 'staging', '--config-only', '--force']);
    assert.equal(r.code, 0, r.stderr);
    const want = loadEnvironment(p.dir, 'local');
    const got = loadEnvironment(p.dir, 'staging');
    const text = p.read('.env.staging');
    for (const k of Object.keys(SOURCE)) {
      const v = want.vars.get(k)!.value;
      assert.equal(got.vars.get(k)?.value, v, `parser reads ${k} from:\n${text}`);
      const out = execFileSync('bash', ['--noprofile', '--norc', '-c', `set -a; . ./.env.staging; set +a; printf %s "$${k}"`], {
        cwd: p.dir,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/home/someone' },
        encoding: 'utf8',
      });
      assert.equal(out, v, `bash reads ${k} from:\n${text}`);
    }
    assert.equal(p.exists('PWNED'), false, text);
    assert.match(text, /^export TICKS="a\\`touch PWNED\\`b" # kept comment$/m);
  } finally {
    p.remove();
  }
});
