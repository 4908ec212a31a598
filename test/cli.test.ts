/**
 * The CLI as a user runs it, configuration component and the pipeline's rules (no database needed).
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { atPrompt, makeProject, runBin, ROOT, type Project } from './support/cli.ts';
import { join } from 'node:path';
import { readFileSync, writeFileSync, chmodSync, statSync } from 'node:fs';

const DEV = `# shared defaults
PROJECT_NAME=shop
BASE_DOMAIN=local.nself.org
HASURA_GRAPHQL_ADMIN_SECRET=dev-admin-secret-123
REDIS_ENABLED=true
`;

const LOCAL = `# local overrides
ENV=dev
DEBUG=true
MAX_UPLOAD_MB=50
FEATURE_SEARCH=on
STRIPE_SECRET_KEY=sk_test_local_abc123
AUTH_SMTP_HOST=mailpit
`;

const STAGING = `# staging
ENV=staging
BASE_DOMAIN=staging.example.com
MAX_UPLOAD_MB="20"
AUTH_SMTP_HOST='smtp.example.com'

# staging-only
STAGING_ONLY=1
`;

function project(extra: Record<string, string> = {}): Project {
  return makeProject({ '.env.dev': DEV, '.env.local': LOCAL, '.env.staging': STAGING, ...extra });
}

const projects: Project[] = [];
function track(p: Project): Project {
  projects.push(p);
  return p;
}
after(() => projects.forEach((p) => p.remove()));

describe('command line rules', () => {
  test('--help prints usage and exits 0', async () => {
    const p = track(project());
    const r = await p.run(['migrate', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /nself migrate <source> <target>/);
    assert.match(r.stdout, /Exit codes/);
  });

  test('nself-migrate is nself migrate without the first word', async () => {
    const p = track(project());
    const r = await runBin(['--version'], { cwd: p.dir, bin: join(ROOT, 'bin', 'nself-migrate') });
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^nself-migrate \d+\.\d+\.\d+/);
  });

  test('another first word than migrate is refused when no nself CLI is on PATH (handoff.test.ts: when one is)', async () => {
    const p = track(project());
    const r = await p.run(['deploy', 'prod'], { env: { PATH: p.dir } });
    assert.equal(r.code, 64);
    assert.match(r.stderr, /implements `nself migrate` only/);
  });

  const bad: [string, string[], RegExp][] = [
    ['unknown flag', ['migrate', 'local', 'staging', '--config-only', '--frobnicate'], /unknown option '--frobnicate'/],
    ['two --*-only flags', ['migrate', 'local', 'staging', '--schema-only', '--data-only'], /--schema-only and --data-only cannot be combined/],
    ['--watch without sync', ['migrate', 'local', 'staging', '--watch'], /--watch only applies to `nself migrate sync`/],
    ['--poll without --watch', ['migrate', 'sync', 'local', 'staging', '--poll'], /--poll only applies to `nself migrate sync --watch`/],
    ['--keep-slot on migrate', ['migrate', 'local', 'staging', '--keep-slot'], /--keep-slot only applies to `nself migrate sync --watch`/],
    ['--watch with --dry-run', ['migrate', 'sync', 'local', 'staging', '--watch', '--dry-run'], /--watch cannot be combined with --dry-run/],
    ['a bad --interval', ['migrate', 'sync', 'local', 'staging', '--watch', '--interval', 'soon'], /--interval: "soon" is not a duration/],
    ['missing target', ['migrate', 'local'], /missing <target>/],
    ['extra argument', ['migrate', 'diff', 'local', 'staging', 'prod'], /unexpected argument "prod"/],
    ['unknown environment', ['migrate', 'local', 'qa', '--config-only'], /unknown environment "qa"/],
    ['same environment via alias', ['migrate', 'dev', 'local', '--config-only'], /same environment/],
    ['bad lock timeout', ['migrate', 'local', 'staging', '--lock-timeout', 'soon'], /not a duration/],
    ['bad --key glob', ['migrate', 'diff', 'local', 'staging', '--key', 'SMTP HOST'], /--key: "SMTP HOST" is not a key glob/],
    ['--exclude-key with --schema-only', ['migrate', 'local', 'staging', '--schema-only', '--exclude-key', 'A'], /cannot be combined with --schema-only/],
    ['--key with rollback', ['migrate', 'rollback', '--key', 'A'], /do not apply to rollback/],
  ];
  for (const [name, argv, msg] of bad) {
    test(`usage error: ${name} → exit 64, one line, nothing written`, async () => {
      const p = track(project());
      const before = p.read('.env.staging');
      const r = await p.run(argv);
      assert.equal(r.code, 64, r.stderr);
      assert.match(r.stderr, msg);
      assert.match(r.stderr, /^error: .*\nhint: .*\n$/);
      assert.equal(r.stdout, '');
      assert.equal(p.read('.env.staging'), before);
      assert.deepEqual(p.checkpoints(), []);
      assert.equal(p.exists('.nself'), false);
    });
  }

  test('an environment with none of its own files is not configured', async () => {
    const p = track(makeProject({ '.env.dev': DEV, '.env.local': LOCAL }));
    const r = await p.run(['migrate', 'local', 'staging', '--config-only']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /staging/);
    assert.match(r.stderr, /\.env\.staging/);
    assert.equal(p.exists('.nself'), false);
  });

  test('a malformed env line is reported with file:line', async () => {
    const p = track(project({ '.env.staging': STAGING + 'this line is broken\n' }));
    const r = await p.run(['migrate', 'diff', 'local', 'staging', '--config-only']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\.env\.staging:9/);
  });
});

describe('config diff', () => {
  test('shows only-in-source, only-in-target and changed keys with provenance; secrets masked', async () => {
    const p = track(project());
    const r = await p.run(['migrate', 'diff', 'local', 'staging', '--config-only']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /FEATURE_SEARCH/);
    assert.match(r.stdout, /STAGING_ONLY/);
    assert.match(r.stdout, /MAX_UPLOAD_MB/);
    assert.match(r.stdout, /\.env\.local:5/);
    assert.doesNotMatch(r.stdout + r.stderr, /sk_test_local_abc123/);
    assert.doesNotMatch(r.stdout + r.stderr, /dev-admin-secret-123/);
  });

  test('--exit-code exits 2 when differences exist, 0 when equal', async () => {
    const p = track(project());
    const r = await p.run(['migrate', 'diff', 'local', 'staging', '--config-only', '--exit-code']);
    assert.equal(r.code, 2, r.stderr);
    const q = track(makeProject({ '.env.local': 'A=1\n', '.env.staging': 'A=1\n' }));
    const r2 = await q.run(['migrate', 'diff', 'local', 'staging', '--config-only', '--exit-code']);
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stdout, /no differences/);
  });

  test('--json prints exactly one JSON document with no secret values', async () => {
    const p = track(project());
    const r = await p.run(['migrate', 'diff', 'local', 'staging', '--config-only', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.equal(doc.kind, 'plan');
    assert.equal(doc.command, 'diff');
    assert.equal(doc.summary.differences, true);
    assert.equal(r.stderr, '');
    assert.doesNotMatch(r.stdout, /sk_test_local_abc123|dev-admin-secret-123/);
  });
});

describe('config migration', () => {
  test('--dry-run shows the plan and writes nothing at all', async () => {
    const p = track(project());
    const r = await p.run(['migrate', 'local', 'staging', '--config-only', '--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /FEATURE_SEARCH/);
    assert.match(r.stdout, /nothing was changed/);
    assert.equal(p.read('.env.staging'), STAGING);
    assert.equal(p.exists('.nself'), false);
  });

  test('migrates config, keeps the file shape, checkpoints, and rollback restores byte for byte', async () => {
    const p = track(project());
    chmodSync(join(p.dir, '.env.staging'), 0o640);
    const r = await p.run(['migrate', 'local', 'staging', '--config-only']);
    assert.equal(r.code, 0, r.stderr);
    const after = p.read('.env.staging');
    // untouched lines keep their bytes; updated values keep their quoting style
    assert.ok(after.startsWith('# staging\nENV=staging\nBASE_DOMAIN=staging.example.com\nMAX_UPLOAD_MB="50"\n'), after);
    // where the mail server is belongs to staging: never copied (#9 item 4)
    assert.match(after, /^AUTH_SMTP_HOST='smtp\.example\.com'$/m);
    assert.doesNotMatch(after, /mailpit/);
    assert.match(after, /^STAGING_ONLY=1$/m);
    assert.match(after, /^# .*nself migrate local → staging/m);
    assert.match(after, /^FEATURE_SEARCH=on$/m);
    // keys both inherit from the shared .env.dev are equal: not copied
    assert.doesNotMatch(after, /REDIS_ENABLED/);
    // secrets never copied: a placeholder the user must fill
    assert.match(after, /^STRIPE_SECRET_KEY=$/m);
    assert.doesNotMatch(after, /sk_test_local_abc123/);
    // environment-specific keys never copied
    assert.doesNotMatch(after, /^DEBUG=/m);
    assert.equal(statSync(join(p.dir, '.env.staging')).mode & 0o777, 0o640);
    assert.match(r.stdout + r.stderr, /needs a value/);
    assert.equal(p.checkpoints().length, 1);

    // a second run has nothing to do
    const again = await p.run(['migrate', 'local', 'staging', '--config-only']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /nothing to change/);
    assert.equal(p.read('.env.staging'), after);

    const rb = await p.run(['migrate', 'rollback', '--force']);
    assert.equal(rb.code, 0, rb.stderr);
    assert.equal(p.read('.env.staging'), STAGING);
    assert.equal(statSync(join(p.dir, '.env.staging')).mode & 0o777, 0o640);

    const none = await p.run(['migrate', 'rollback', '--force']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /nothing to roll back/);
  });

  test('server.json service settings are copied in place, identity fields and numeric settings never', async () => {
    const server = (o: object) => JSON.stringify(o, null, 2) + '\n';
    const p = track(
      project({
        '.environments/local/server.json': server({ name: 'local', host: '', backup: { enabled: true, keep: 7 }, monitoring: 'on' }),
        '.environments/staging/server.json': '{\n    "name": "staging",\n    "host": "staging.example.com",\n    "user": "deploy",\n    "backup": { "enabled": false, "keep": 30 }\n}',
      }),
    );
    const r = await p.run(['migrate', 'local', 'staging', '--config-only']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      p.read('.environments/staging/server.json'),
      '{\n    "name": "staging",\n    "host": "staging.example.com",\n    "user": "deploy",\n    "backup": { "enabled": true, "keep": 30 },\n    "monitoring": "on"\n}',
    );
    const rb = await p.run(['migrate', 'rollback', '--force']);
    assert.equal(rb.code, 0, rb.stderr);
    assert.equal(p.read('.environments/staging/server.json'), '{\n    "name": "staging",\n    "host": "staging.example.com",\n    "user": "deploy",\n    "backup": { "enabled": false, "keep": 30 }\n}');
  });

  test('rollback removes an own file that the migration created', async () => {
    const p = track(makeProject({ '.env.local': 'A=1\nB=2\n', '.environments/qa/.env.secrets': 'QA_API_TOKEN=t0k3n\n' }));
    const r = await p.run(['migrate', 'local', 'qa', '--config-only', '--force']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(p.read('.env.qa'), /^A=1$/m);
    const rb = await p.run(['migrate', 'rollback', '--force']);
    assert.equal(rb.code, 0, rb.stderr);
    assert.equal(p.exists('.env.qa'), false);
  });

  test('a production target without a terminal and without --force is refused (exit 3), nothing written', async () => {
    const p = track(project({ '.env.prod': 'ENV=prod\n' }));
    const r = await p.run(['migrate', 'local', 'prod', '--config-only']);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /--force/);
    assert.equal(p.read('.env.prod'), 'ENV=prod\n');
    assert.equal(p.exists('.nself'), false);
  });

  for (const [answer, code] of [['yes', 0], ['y', 3]] as const) {
    test(`a production target asks on the terminal: "${answer}" → exit ${code}`, async () => {
      const p = track(project({ '.env.prod': 'ENV=prod\n' }));
      const r = await (await atPrompt(['migrate', 'local', 'prod', '--config-only'], p.dir)).answer(`${answer}\n`);
      assert.equal(r.code, code, r.stdout);
      assert.match(r.stdout, /Type "yes" to continue/);
      if (code === 0) assert.match(p.read('.env.prod'), /^FEATURE_SEARCH=on$/m);
      else {
        assert.equal(p.read('.env.prod'), 'ENV=prod\n');
        assert.equal(p.exists('.nself'), false);
      }
    });
  }

  test('production with --force migrates; --json report lists every step', async () => {
    const p = track(project({ '.env.prod': 'ENV=prod\n' }));
    const r = await p.run(['migrate', 'local', 'production', '--config-only', '--force', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.equal(doc.kind, 'report');
    assert.equal(doc.status, 'ok');
    assert.equal(doc.target, 'prod');
    assert.equal(doc.verified, true);
    assert.deepEqual(
      doc.steps.map((s: { name: string }) => s.name),
      ['validate', 'plan', 'safety', 'backup', 'checkpoint', 'migrate', 'verify'],
    );
    for (const s of doc.steps) assert.equal(typeof s.duration_ms, 'number');
    assert.match(p.read('.env.prod'), /^FEATURE_SEARCH=on$/m);
    assert.equal(r.stderr, '');
  });

  test('rollback without a terminal and without --force is refused (exit 3) and shows what it would undo', async () => {
    const p = track(project());
    assert.equal((await p.run(['migrate', 'local', 'staging', '--config-only'])).code, 0);
    const migrated = p.read('.env.staging');
    const r = await p.run(['migrate', 'rollback']);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /local → staging/);
    assert.equal(p.read('.env.staging'), migrated);
  });

  test('a checkpoint whose backup fails its checksum is refused', async () => {
    const p = track(project());
    assert.equal((await p.run(['migrate', 'local', 'staging', '--config-only'])).code, 0);
    const [id] = p.checkpoints();
    const manifest = JSON.parse(p.read(`.nself/migrations/${id}/manifest.json`));
    const file = join(p.dir, '.nself', 'migrations', id, manifest.files[0].path);
    writeFileSync(file, readFileSync(file, 'utf8') + 'TAMPERED=1\n');
    const migrated = p.read('.env.staging');
    const r = await p.run(['migrate', 'rollback', '--force']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /fails its SHA-256 check/);
    assert.equal(p.read('.env.staging'), migrated);
  });

  test('a corrupt manifest is refused with a clear error', async () => {
    const p = track(project());
    assert.equal((await p.run(['migrate', 'local', 'staging', '--config-only'])).code, 0);
    const [id] = p.checkpoints();
    p.write(`.nself/migrations/${id}/manifest.json`, '{ not json');
    const r = await p.run(['migrate', 'rollback', '--force']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /is corrupt/);
  });
});

describe('env files with bytes that are not UTF-8', () => {
  const latin1 = (text: string) => Buffer.from(text, 'latin1'); // é → 0xE9, a byte that is never valid UTF-8 on its own

  test('a source value that is not UTF-8 is refused: exit 1, file:line and key, nothing written', async () => {
    const p = track(project());
    writeFileSync(join(p.dir, '.env.local'), Buffer.concat([Buffer.from(LOCAL), latin1('GREETING=caf\u00e9\n')]));
    const before = readFileSync(join(p.dir, '.env.staging'));
    for (const args of [['migrate', 'local', 'staging', '--config-only', '--force'], ['migrate', 'diff', 'local', 'staging', '--config-only']]) {
      const r = await p.run(args);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^error: \.env\.local:8: the value of GREETING is not valid UTF-8\nhint: .*UTF-8.*\n$/);
      assert.ok(readFileSync(join(p.dir, '.env.staging')).equals(before));
      assert.equal(p.exists('.nself'), false);
    }
  });

  test('bytes that are not UTF-8 in a comment of the target file survive a migration and its rollback byte for byte', async () => {
    const p = track(project());
    const original = Buffer.concat([latin1('# r\u00e9sum\u00e9 of staging \u00ff\n'), Buffer.from(STAGING)]);
    writeFileSync(join(p.dir, '.env.staging'), original);
    const r = await p.run(['migrate', 'local', 'staging', '--config-only', '--force']);
    assert.equal(r.code, 0, r.stderr);
    const after = readFileSync(join(p.dir, '.env.staging'));
    assert.ok(after.subarray(0, original.length - STAGING.length).equals(original.subarray(0, original.length - STAGING.length)), after.toString('hex'));
    assert.ok(after.includes(Buffer.from('FEATURE_SEARCH=on\n')));
    // STRIPE_SECRET_KEY= was added empty: a difference until someone fills it in
    assert.equal((await p.run(['migrate', 'diff', 'local', 'staging', '--config-only', '--exit-code'])).code, 2);
    assert.equal((await p.run(['migrate', 'rollback', '--force'])).code, 0);
    assert.ok(readFileSync(join(p.dir, '.env.staging')).equals(original));
  });
});

describe('what a config migration may change (#9 items 4, 5)', () => {
  test('nself-migrate.json keeps and copies per environment; --key / --exclude-key narrow one run', async () => {
    const p = track(
      project({
        'nself-migrate.json': JSON.stringify({ config: { staging: { keep: ['FEATURE_*'], copy: ['AUTH_SMTP_HOST'] } } }, null, 2),
      }),
    );
    const d = await p.run(['migrate', 'diff', 'local', 'staging', '--config-only', '--json']);
    assert.equal(d.code, 0, d.stderr);
    const diff = JSON.parse(d.stdout).config.diff;
    const key = (k: string) => [...diff.onlyInSource, ...diff.changed].find((x: { key: string }) => x.key === k);
    assert.equal(key('FEATURE_SEARCH').expected, 'kept in staging by nself-migrate.json (keep: FEATURE_*)');
    assert.deepEqual(key('AUTH_SMTP_HOST').rule, { list: 'copy', environment: 'staging', pattern: 'AUTH_SMTP_HOST' });
    const human = await p.run(['migrate', 'diff', 'local', 'staging', '--config-only']);
    assert.match(human.stdout, /rules: nself-migrate\.json/);
    assert.match(human.stdout, /FEATURE_SEARCH.*\(expected: kept in staging by nself-migrate\.json \(keep: FEATURE_\*\)\)/);

    const narrow = await p.run(['migrate', 'local', 'staging', '--config-only', '--key', 'MAX_*', '--key', 'AUTH_*', '--exclude-key', 'AUTH_SMTP_*']);
    assert.equal(narrow.code, 0, narrow.stderr);
    const after = p.read('.env.staging');
    assert.match(after, /^MAX_UPLOAD_MB="50"$/m);
    assert.match(after, /^AUTH_SMTP_HOST='smtp\.example\.com'$/m);
    assert.doesNotMatch(after, /STRIPE_SECRET_KEY|FEATURE_SEARCH/);

    const all = await p.run(['migrate', 'local', 'staging', '--config-only']);
    assert.equal(all.code, 0, all.stderr);
    assert.match(p.read('.env.staging'), /^AUTH_SMTP_HOST='mailpit'$/m); // the project said so
    assert.doesNotMatch(p.read('.env.staging'), /FEATURE_SEARCH/);
  });

  test('a malformed nself-migrate.json: exit 1, one line naming the file and field, nothing written', async () => {
    const p = track(project({ 'nself-migrate.json': '{"config": {"staging": {"keep": ["SMTP_*", 7]}}}' }));
    for (const args of [['migrate', 'local', 'staging', '--config-only'], ['migrate', 'diff', 'local', 'staging']]) {
      const r = await p.run(args);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^error: nself-migrate\.json: config\.staging\.keep\[1\]: must be a string\nhint: .*\n$/);
      assert.equal(p.read('.env.staging'), STAGING);
      assert.equal(p.exists('.nself'), false);
    }
    // not read at all when the config component is not part of the run (no database here: fails later, differently)
    const schema = await p.run(['migrate', 'diff', 'local', 'staging', '--schema-only']);
    assert.doesNotMatch(schema.stderr, /nself-migrate\.json/);
  });

  test('a secret left empty by a migration keeps diff --exit-code at 2 until it is filled in', async () => {
    const p = track(project());
    assert.equal((await p.run(['migrate', 'local', 'staging', '--config-only'])).code, 0);
    assert.match(p.read('.env.staging'), /^STRIPE_SECRET_KEY=$/m);
    const d = await p.run(['migrate', 'diff', 'local', 'staging', '--config-only', '--exit-code']);
    assert.equal(d.code, 2, d.stdout + d.stderr);
    assert.match(d.stdout, /! STRIPE_SECRET_KEY  needs a value in staging: empty at \.env\.staging:\d+/);
    assert.match(d.stdout, /1 difference\(s\)/);
    const json = JSON.parse((await p.run(['migrate', 'diff', 'local', 'staging', '--config-only', '--json'])).stdout);
    assert.deepEqual(json.config.diff.changed.filter((k: { status: string }) => k.status === 'needs_value').map((k: { key: string }) => k.key), ['STRIPE_SECRET_KEY']);
    // a template placeholder is no value either
    p.write('.env.staging', p.read('.env.staging').replace(/^STRIPE_SECRET_KEY=$/m, 'STRIPE_SECRET_KEY=changeme'));
    assert.equal((await p.run(['migrate', 'diff', 'local', 'staging', '--config-only', '--exit-code'])).code, 2);
    p.write('.env.staging', p.read('.env.staging').replace(/^STRIPE_SECRET_KEY=changeme$/m, 'STRIPE_SECRET_KEY=sk_test_staging_1'));
    const ok = await p.run(['migrate', 'diff', 'local', 'staging', '--config-only', '--exit-code']);
    assert.equal(ok.code, 0, ok.stdout);
  });
});
