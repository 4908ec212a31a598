/**
 * Env files (parser + document editing), environment resolution (names, cascades, own file, not configured,
 * server.json) and secrets masking. Pure file operations in temp directories.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MigrateError } from '../src/errors.ts';
import { appendEntries, decodeEnvBytes, encodeEnvText, formatValue, parseEnvDocument, serialize, setValue } from '../src/env/envfile.ts';
import { canonicalEnvName, loadEnvironment } from '../src/env/resolve.ts';
import { isSecretKey, maskJson, scrubText, maskUrl, maskValue, secretValuesOf } from '../src/env/secrets.ts';

function values(text: string, inherited?: Map<string, string>): Record<string, string> {
  const doc = parseEnvDocument(text, '/p/.env', { inherited });
  return Object.fromEntries(doc.entries.map((e) => [e.key, e.value]));
}

function parseFails(text: string, re: RegExp): void {
  assert.throws(
    () => parseEnvDocument(text, '/abs/.env', { display: '.env' }),
    (e: unknown) => e instanceof MigrateError && e.code === 'env_parse' && e.exitCode === 1 && re.test(e.message) && !!e.hint,
  );
}

describe('env-file parser', () => {
  test('every syntax', () => {
    const text = [
      '# full comment',
      '',
      'A=plain value  ',
      'export B=exported',
      "C='single $A # not a comment'",
      'D="double \\"q\\" \\\\ \\$A $A\\n"',
      'E=value # trailing comment',
      'F=a#b',
      'G=',
      'H= # only a comment',
      '  I = spaced',
      'J="line1',
      'line2 $A',
      'end" # after',
      "K='' ",
      'L=#hash',
      'M=${A}-$B-${NOPE}-${NOPE:-dflt}-${G-unset}-$',
    ].join('\n');
    const doc = parseEnvDocument(text, '/p/.env');
    const v = Object.fromEntries(doc.entries.map((e) => [e.key, e.value]));
    assert.deepEqual(v, {
      A: 'plain value',
      B: 'exported',
      C: 'single $A # not a comment',
      D: 'double "q" \\ $A plain value\n',
      E: 'value',
      F: 'a#b',
      G: '',
      H: '',
      I: 'spaced',
      J: 'line1\nline2 plain value\nend',
      K: '',
      L: '#hash',
      M: 'plain value-exported--dflt--$',
    });
    const byKey = Object.fromEntries(doc.entries.map((e) => [e.key, e]));
    assert.equal(byKey.B.export, true);
    assert.equal(byKey.A.export, false);
    assert.equal(byKey.C.quote, "'");
    assert.equal(byKey.D.quote, '"');
    assert.equal(byKey.A.quote, '');
    assert.equal(byKey.A.line, 3);
    assert.equal(byKey.J.startLine, 12);
    assert.equal(byKey.J.endLine, 14);
    assert.equal(byKey.K.line, 15);
    assert.equal(byKey.J.file, '/p/.env');
    assert.equal(byKey.E.rawValue, 'value');
    assert.equal(byKey.C.rawValue, "'single $A # not a comment'");
    assert.equal(serialize(doc), text);
  });

  test('expansion sees earlier files and earlier lines only; later definitions do not apply backwards', () => {
    const v = values('X=${BASE}/x\nY=$X/y\nZ=$LATER\nLATER=1\n', new Map([['BASE', '/srv']]));
    assert.deepEqual(v, { X: '/srv/x', Y: '/srv/x/y', Z: '', LATER: '1' });
  });

  test('CRLF files', () => {
    const text = 'A=1\r\nB="x\r\ny"\r\n# c\r\n';
    const doc = parseEnvDocument(text, 'f');
    assert.deepEqual(Object.fromEntries(doc.entries.map((e) => [e.key, e.value])), { A: '1', B: 'x\ny' });
    assert.equal(serialize(doc), text);
  });

  test('malformed lines → env_parse with file:line', () => {
    parseFails('A=1\nno equals sign\n', /^\.env:2: expected KEY=value/);
    parseFails('A=1\n\n1BAD=x\n', /^\.env:3: invalid variable name "1BAD"/);
    parseFails("A='open\n", /^\.env:1: unterminated single quote/);
    parseFails('A=1\nB="open\nmore\n', /^\.env:2: unterminated double quote/);
    parseFails('A="x"y\n', /^\.env:1: unexpected text after the closing quote/);
    parseFails('=x\n', /^\.env:1: missing variable name/);
    parseFails('MY KEY=x\n', /^\.env:1: invalid variable name/);
  });

  test('a malformed line never echoes its content', () => {
    try {
      parseEnvDocument('supersecretvalue\n', 'f', { display: '.env' });
      assert.fail('should throw');
    } catch (e) {
      assert.ok(e instanceof MigrateError);
      assert.ok(!e.message.includes('supersecretvalue'));
    }
  });
});

describe('env document editing', () => {
  test('setValue keeps everything else byte for byte', () => {
    const text = '# head\r\nexport A="old" # keep me\r\n\r\nB=\'q\'\r\nC=plain   # c\r\nD="multi\r\nline"\r\nE=last';
    const doc = parseEnvDocument(text, 'f');
    assert.equal(setValue(doc, 'A', 'new value'), true);
    assert.equal(setValue(doc, 'B', "it's"), true); // single quotes cannot hold ' → double
    assert.equal(setValue(doc, 'C', 'x y'), true);
    assert.equal(setValue(doc, 'D', 'one'), true); // multi-line value becomes one line
    assert.equal(setValue(doc, 'E', 'has $dollar'), true);
    assert.equal(setValue(doc, 'NOPE', 'x'), false);
    assert.equal(
      serialize(doc),
      '# head\r\nexport A="new value" # keep me\r\n\r\nB="it\'s"\r\nC=\'x y\'   # c\r\nD="one"\r\nE=\'has $dollar\'',
    );
    const v = Object.fromEntries(doc.entries.map((e) => [e.key, e.value]));
    assert.deepEqual(v, { A: 'new value', B: "it's", C: 'x y', D: 'one', E: 'has $dollar' });
  });

  test('setValue edits the last (winning) occurrence of a duplicated key', () => {
    const doc = parseEnvDocument('K=1\nK=2\n', 'f');
    setValue(doc, 'K', '3');
    assert.equal(serialize(doc), 'K=1\nK=3\n');
  });

  test('appendEntries: missing final newline, blank separator, comment, quoting only when needed', () => {
    const doc = parseEnvDocument('A=1', 'f');
    appendEntries(doc, [{ key: 'B', value: 'simple' }, { key: 'C', value: 'two words # x' }, { key: 'D', value: '' }, { key: 'E', value: 'a\nb"c' }], 'added by test');
    assert.equal(serialize(doc), 'A=1\n\n# added by test\nB=simple\nC=\'two words # x\'\nD=\nE="a\nb\\"c"\n');
    const v = Object.fromEntries(doc.entries.map((e) => [e.key, e.value]));
    assert.deepEqual(v, { A: '1', B: 'simple', C: 'two words # x', D: '', E: 'a\nb"c' });
  });

  test('appendEntries to an empty document and to a CRLF file ending in a blank line', () => {
    const empty = parseEnvDocument('', 'f');
    appendEntries(empty, [{ key: 'A', value: '1' }], 'c');
    assert.equal(serialize(empty), '# c\nA=1\n');
    const crlf = parseEnvDocument('A=1\r\n\r\n', 'f');
    appendEntries(crlf, [{ key: 'B', value: '2' }]);
    assert.equal(serialize(crlf), 'A=1\r\n\r\nB=2\r\n');
  });

  test('formatValue round-trips awkward values', () => {
    for (const v of ['', 'x', ' lead', 'trail ', '#start', 'a #b', '$HOME', '${X}', 'q"uote', "s'ingle", 'back\\slash', 'new\nline', 'cr\rlf', 'tab\there', '"quoted"']) {
      for (const q of ['', "'", '"'] as const) {
        const doc = parseEnvDocument(`K=${formatValue(v, q)}\n`, 'f', { inherited: new Map([['HOME', '/h'], ['X', 'x']]) });
        assert.equal(doc.entries[0].value, v, `value ${JSON.stringify(v)} quote ${q}`);
      }
    }
  });
});

describe('bytes that are not UTF-8', () => {
  const bytes = (...parts: Array<string | number[]>) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));

  test('decode → encode gives back exactly the same bytes, valid UTF-8 or not', () => {
    const samples = [
      bytes('A=caf', [0xe9], '\n'), // latin1 é
      bytes('# ', [0xff, 0xfe], ' comment\nB=1\n'),
      bytes([0xef, 0xbb, 0xbf], 'A=bom kept\n'),
      bytes('C=', [0xed, 0xa0, 0x80], ' (an encoded surrogate is not UTF-8)\n'),
      bytes('D=', [0xf0, 0x9d, 0x84], '\n'), // a truncated 4-byte sequence
      bytes('E=ok ☃ 𝄞 \uFFFD\n'),
    ];
    for (let b = 0; b < 256; b++) samples.push(Buffer.from([0x41, b, 0x0a]));
    for (const buf of samples) assert.ok(encodeEnvText(decodeEnvBytes(buf)).equals(buf), buf.toString('hex'));
    assert.equal(decodeEnvBytes(bytes('E=ok ☃ 𝄞 \uFFFD\n')), 'E=ok ☃ 𝄞 \uFFFD\n', 'valid UTF-8 (a real U+FFFD too) decodes as usual');
  });

  test('a value that is not valid UTF-8 is refused with file:line and key, never shown', () => {
    const parse = (buf: Buffer) => parseEnvDocument(decodeEnvBytes(buf), '/abs/.env.local', { display: '.env.local' });
    const refused = (buf: Buffer, re: RegExp) =>
      assert.throws(() => parse(buf), (e: unknown) => e instanceof MigrateError && e.code === 'env_parse' && e.exitCode === 1 && re.test(e.message) && /UTF-8/.test(e.hint ?? '') && !/caf/.test(e.message));
    refused(bytes('A=1\n# ok\nKEY=caf', [0xe9], '\n'), /^\.env\.local:3: the value of KEY is not valid UTF-8$/);
    refused(bytes("K='caf", [0xe9], "'\n"), /^\.env\.local:1: the value of K is not valid UTF-8$/);
    refused(bytes('K="line one\ncaf', [0xe9], '"\n'), /^\.env\.local:2: the value of K is not valid UTF-8$/, );
    // bytes outside values are no one's business: a comment, or the comment after a value
    const doc = parse(bytes('# caf', [0xe9], '\nA=1 # caf', [0xe9], '\nB="x" # ', [0xff], '\n'));
    assert.deepEqual(doc.entries.map((e) => [e.key, e.value]), [['A', '1'], ['B', 'x']]);
    setValue(doc, 'A', 'né');
    appendEntries(doc, [{ key: 'C', value: 'ü' }]);
    // (written shell-safe: only ASCII-plain values go unquoted)
    assert.ok(encodeEnvText(serialize(doc)).equals(bytes('# caf', [0xe9], "\nA='né' # caf", [0xe9], '\nB="x" # ', [0xff], "\n\nC='ü'\n")));
  });
});

describe('environments', () => {
  let dir: string;
  const w = (rel: string, text: string) => {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), text);
  };
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'nself-env-'));
    w('.env.dev', 'A=dev\nB=dev\nC=dev\nD=dev\nE=dev\nBASE=base\n');
    w('.env.local', 'B=local\nREF=${BASE}-local\n');
    w('.env', 'C=dotenv\n');
    w('.env.staging', 'D=staging\n');
    w('.environments/staging/.env', 'E=stagingdir\nF=${D}+${E}\n');
    w('.environments/staging/.env.secrets', 'E=secret-e\nPASSWORD=pw\n');
    w('.environments/staging/server.json', '{"host":"10.0.0.2","user":"deploy","backup":{"keep":3}}');
    w('.env.prod', 'A=prod\nB=prod\n');
    w('.env.production', 'B=production\n');
    w('.environments/production/.env', 'C=productiondir\n');
    mkdirSync(join(dir, '.environments', 'qa'));
    w('.env.qa', 'A=qa\n');
    mkdirSync(join(dir, '.environments', 'empty'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('names and aliases', () => {
    assert.equal(canonicalEnvName(dir, 'dev'), 'local');
    assert.equal(canonicalEnvName(dir, 'local'), 'local');
    assert.equal(canonicalEnvName(dir, 'production'), 'prod');
    assert.equal(canonicalEnvName(dir, 'PROD'), 'prod');
    assert.equal(canonicalEnvName(dir, 'staging'), 'staging');
    assert.equal(canonicalEnvName(dir, 'qa'), 'qa');
    for (const bad of ['nope', '../x', '.', '']) {
      assert.throws(
        () => canonicalEnvName(dir, bad),
        (e: unknown) => e instanceof MigrateError && e.code === 'unknown_env' && e.exitCode === 64 && /known environments: local \(dev\), staging, prod \(production\), empty, qa/.test(e.hint ?? ''),
      );
    }
  });

  test('local cascade: .env.dev < .env.local < .env', () => {
    const env = loadEnvironment(dir, 'dev');
    assert.equal(env.name, 'local');
    assert.equal(env.production, false);
    const v = (k: string) => env.vars.get(k)?.value;
    assert.deepEqual([v('A'), v('B'), v('C'), v('REF')], ['dev', 'local', 'dotenv', 'base-local']);
    assert.deepEqual(env.vars.get('C'), { key: 'C', value: 'dotenv', file: join(dir, '.env'), line: 1, secret: false });
    assert.equal(env.ownFile, join(dir, '.env.local'));
    assert.deepEqual(env.files, ['.env.dev', '.env.local', '.env'].map((f) => join(dir, f)));
    assert.equal(env.server, undefined);
  });

  test('staging cascade: folder .env and .env.secrets win; expansion across files; server.json', () => {
    const env = loadEnvironment(dir, 'staging');
    const v = (k: string) => env.vars.get(k)?.value;
    assert.deepEqual([v('A'), v('D'), v('E'), v('F'), v('PASSWORD')], ['dev', 'staging', 'secret-e', 'staging+stagingdir', 'pw']);
    assert.equal(env.vars.get('E')!.file, join(dir, '.environments/staging/.env.secrets'));
    assert.equal(env.ownFile, join(dir, '.environments/staging/.env'));
    assert.deepEqual(env.server, { host: '10.0.0.2', user: 'deploy', backup: { keep: 3 } });
    assert.equal(env.serverFile, join(dir, '.environments/staging/server.json'));
    assert.deepEqual(env.lookedFor, ['.env.dev', '.env.staging', '.environments/staging/.env', '.environments/staging/.env.secrets'].map((f) => join(dir, f)));
  });

  test('prod cascade with the .environments/production folder', () => {
    const env = loadEnvironment(dir, 'production');
    assert.equal(env.name, 'prod');
    assert.equal(env.production, true);
    const v = (k: string) => env.vars.get(k)?.value;
    // nself: production is built on staging's settings (.env.staging is in its cascade)
    assert.deepEqual([v('A'), v('B'), v('C'), v('D')], ['prod', 'production', 'productiondir', 'staging']);
    assert.equal(env.ownFile, join(dir, '.environments/production/.env'));
    assert.equal(env.serverFile, join(dir, '.environments/production/server.json'));
  });

  test('prod without its own env file is not configured, even with .env.staging in its cascade', () => {
    const d = mkdtempSync(join(tmpdir(), 'nself-env-'));
    try {
      writeFileSync(join(d, '.env.staging'), 'A=1\n');
      assert.throws(() => loadEnvironment(d, 'prod'), (e: unknown) => e instanceof MigrateError && e.code === 'env_not_configured' && e.message.includes('.env.prod, .env.production, .env.secrets, .environments/prod/.env'));
      writeFileSync(join(d, '.env.secrets'), 'S_TOKEN=x\n'); // production's secrets: prod's own
      assert.equal(loadEnvironment(d, 'prod').vars.get('A')?.value, '1');
      assert.equal(loadEnvironment(d, 'prod').ownFile, join(d, '.env.prod'));
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  test('other named environment; own file .env.<name>', () => {
    const env = loadEnvironment(dir, 'qa');
    assert.equal(env.vars.get('A')?.value, 'qa');
    assert.equal(env.ownFile, join(dir, '.env.qa'));
    assert.equal(env.production, false);
  });

  test('not configured: only the shared .env.dev', () => {
    assert.throws(
      () => loadEnvironment(dir, 'empty'),
      (e: unknown) =>
        e instanceof MigrateError && e.code === 'env_not_configured' && e.exitCode === 1 && e.message.includes('.env.empty, .environments/empty/.env, .environments/empty/.env.secrets'),
    );
  });

  test('own file choice when nothing exists, and prod preferring .env.production over .env.prod', () => {
    const d = mkdtempSync(join(tmpdir(), 'nself-env-'));
    try {
      writeFileSync(join(d, '.env'), 'A=1\n');
      assert.equal(loadEnvironment(d, 'local').ownFile, join(d, '.env.local'));
      mkdirSync(join(d, '.environments', 'staging'), { recursive: true });
      writeFileSync(join(d, '.environments', 'staging', '.env.secrets'), 'S=1\n');
      assert.equal(loadEnvironment(d, 'staging').ownFile, join(d, '.env.staging'));
      writeFileSync(join(d, '.env.production'), 'A=1\n');
      assert.equal(loadEnvironment(d, 'prod').ownFile, join(d, '.env.production'));
      writeFileSync(join(d, '.env.prod'), 'A=1\n');
      assert.equal(loadEnvironment(d, 'prod').ownFile, join(d, '.env.production'));
      rmSync(join(d, '.env.production'));
      assert.equal(loadEnvironment(d, 'prod').ownFile, join(d, '.env.prod'));
      assert.throws(() => loadEnvironment(d, 'staging2'), (e: unknown) => e instanceof MigrateError && e.code === 'unknown_env');
      // local is configured by .env.dev alone (it is the dev environment)
      const d2 = mkdtempSync(join(tmpdir(), 'nself-env-'));
      writeFileSync(join(d2, '.env.dev'), 'A=1\n');
      assert.equal(loadEnvironment(d2, 'local').vars.get('A')?.value, '1');
      assert.throws(() => loadEnvironment(d2, 'staging'), (e: unknown) => e instanceof MigrateError && e.code === 'env_not_configured');
      rmSync(d2, { recursive: true, force: true });
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  test('malformed server.json and env file errors name the file', () => {
    const d = mkdtempSync(join(tmpdir(), 'nself-env-'));
    try {
      mkdirSync(join(d, '.environments', 'staging'), { recursive: true });
      writeFileSync(join(d, '.environments', 'staging', '.env'), 'A=1\n');
      writeFileSync(join(d, '.environments', 'staging', 'server.json'), '{"host": ');
      assert.throws(() => loadEnvironment(d, 'staging'), (e: unknown) => e instanceof MigrateError && e.code === 'server_config_invalid' && e.message.startsWith('.environments/staging/server.json is not valid JSON'));
      writeFileSync(join(d, '.environments', 'staging', 'server.json'), '{"host": "h", "port": "abc"}');
      assert.throws(() => loadEnvironment(d, 'staging'), (e: unknown) => e instanceof MigrateError && /"port" must be a number/.test(e.message));
      writeFileSync(join(d, '.environments', 'staging', 'server.json'), '[1]');
      assert.throws(() => loadEnvironment(d, 'staging'), (e: unknown) => e instanceof MigrateError && /must hold a JSON object/.test(e.message));
      writeFileSync(join(d, '.environments', 'staging', 'server.json'), Buffer.from([...Buffer.from('{"host": "h\u00e9'), 0xe9, ...Buffer.from('"}')]));
      assert.throws(() => loadEnvironment(d, 'staging'), (e: unknown) => e instanceof MigrateError && e.code === 'server_config_invalid' && e.message === '.environments/staging/server.json is not valid UTF-8');
      writeFileSync(join(d, '.environments', 'staging', 'server.json'), '{"host": "h", "port": 2222}');
      writeFileSync(join(d, '.environments', 'staging', '.env'), Buffer.from([...Buffer.from('A=1\nPASSWORD=p'), 0xe4, 0x0a]));
      assert.throws(() => loadEnvironment(d, 'staging'), (e: unknown) => e instanceof MigrateError && e.code === 'env_parse' && e.message === '.environments/staging/.env:2: the value of PASSWORD is not valid UTF-8');
      writeFileSync(join(d, '.environments', 'staging', '.env'), 'A=1\nB C\n');
      assert.throws(() => loadEnvironment(d, 'staging'), (e: unknown) => e instanceof MigrateError && e.code === 'env_parse' && e.message.startsWith('.environments/staging/.env:2: '));
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('secrets', () => {
  test('isSecretKey', () => {
    for (const k of ['POSTGRES_PASSWORD', 'JWT_SECRET', 'api_token', 'STRIPE_KEY', 'AWS_CREDENTIALS', 'PRIVATE_X', 'HASH_SALT']) assert.equal(isSecretKey(k), true, k);
    for (const k of ['PORT', 'APP_NAME', 'DATABASE_URL']) assert.equal(isSecretKey(k), false, k);
    assert.equal(isSecretKey('DATABASE_URL', 'postgres://u:pw@h/db'), true);
    assert.equal(isSecretKey('DATABASE_URL', 'postgres://u@h/db'), false);
    assert.equal(isSecretKey('REDIS_URL', 'redis://:pw@h:6379'), true);
    assert.equal(isSecretKey('API_URL', 'https://api.example.com/v1?x=1'), false);
    assert.equal(isSecretKey('S3_URL', 'https://h/b?token=abc'), true);
  });

  test('maskUrl / maskValue', () => {
    assert.equal(maskUrl('postgres://user:s3cr3t@host:5432/db?sslmode=require'), 'postgres://user:****@host:5432/db?sslmode=require');
    assert.equal(maskUrl('postgres://user:p@ss/w@rd@host/db'), 'postgres://user:****@host/db');
    assert.equal(maskUrl('redis://:pw@h'), 'redis://:****@h');
    assert.equal(maskUrl('postgres://user@host/db'), 'postgres://user@host/db');
    assert.equal(maskUrl('https://h/p?a=1&password=x&b=2'), 'https://h/p?a=1&password=****&b=2');
    assert.equal(maskValue('DATABASE_URL', 'postgres://u:pw@h/db'), 'postgres://u:****@h/db');
    assert.equal(maskValue('JWT_SECRET', 'abc'), '****');
    assert.equal(maskValue('JWT_SECRET', ''), '');
    assert.equal(maskValue('APP', 'visible'), 'visible');
  });

  test('scrubText scrubs known secrets long enough to be unique, and URL passwords', () => {
    const out = scrubText('auth failed for p@ss!w0rd (p%40ss!w0rd) at postgres://x:other@h/db and s3cr3t', ['p@ss!w0rd', 'p%40ss!w0rd', 's3cr3t', '']);
    assert.equal(out, 'auth failed for **** (****) at postgres://x:****@h/db and s3cr3t');
  });

  test('secretValuesOf and maskJson', () => {
    const vals = secretValuesOf([
      { key: 'DATABASE_URL', value: 'postgres://u:p%40w@h/db' },
      { key: 'JWT_SECRET', value: 'jwt' },
      { key: 'APP', value: 'x' },
      { key: 'EMPTY_TOKEN', value: '' },
      { key: 'TOKEN_TTL', value: '900' },
    ]);
    assert.deepEqual(vals.sort(), ['jwt', 'p%40w', 'p@w']);
    assert.deepEqual(maskJson({ a: 1, secret: 'x', nested: { api_token: 't', url: 'https://u:p@h' }, list: ['ok'] }), {
      a: 1,
      secret: '****',
      nested: { api_token: '****', url: 'https://u:****@h' },
      list: ['ok'],
    });
  });
});

/**
 * The cascade table of the README, one test per environment: every file any environment could read exists, each
 * setting its own key and a key they all set (WHO); the environment reads exactly its row, in that order.
 */
describe('the cascade table (nself order)', () => {
  let dir: string;
  const ALL = [
    '.env.dev', '.env.local', '.env', '.env.staging', '.env.prod', '.env.production', '.env.secrets', '.env.qa',
    '.environments/staging/.env', '.environments/staging/.env.secrets',
    '.environments/prod/.env', '.environments/prod/.env.secrets',
    '.environments/qa/.env', '.environments/qa/.env.secrets',
  ];
  const tag = (f: string) => f.replace(/[^A-Za-z0-9]+/g, '_').toUpperCase();
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'nself-cascade-'));
    for (const f of ALL) {
      mkdirSync(join(dir, f, '..'), { recursive: true });
      writeFileSync(join(dir, f), `WHO=${f}\nFILE${tag(f)}=1\n`);
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const rows: [string, string[]][] = [
    ['local', ['.env.dev', '.env.local', '.env']],
    ['staging', ['.env.dev', '.env.staging', '.environments/staging/.env', '.environments/staging/.env.secrets']],
    ['prod', ['.env.dev', '.env.staging', '.env.prod', '.env.production', '.env.secrets', '.environments/prod/.env', '.environments/prod/.env.secrets']],
    ['qa', ['.env.dev', '.env.qa', '.environments/qa/.env', '.environments/qa/.env.secrets']],
  ];
  for (const [name, files] of rows) {
    test(`${name}: ${files.join(' → ')}`, () => {
      const env = loadEnvironment(dir, name);
      assert.deepEqual(env.files, files.map((f) => join(dir, f)));
      assert.deepEqual(env.lookedFor, files.map((f) => join(dir, f)));
      // the last file wins
      assert.deepEqual(env.vars.get('WHO'), { key: 'WHO', value: files.at(-1), file: join(dir, files.at(-1)!), line: 1, secret: false });
      // exactly these files were read
      const read = ALL.filter((f) => env.vars.has(`FILE${tag(f)}`));
      assert.deepEqual(read.sort(), [...files].sort());
    });
  }
});
