/**
 * The configuration component: diff (masked, provenance), plan rules (skips, placeholders, conflicts, own file),
 * apply (byte for byte, atomic, permissions, drift), verify. Real files in temp project directories.
 */
import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, lstatSync, symlinkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { MigrateError } from '../src/errors.ts';
import { loadEnvironment } from '../src/env/resolve.ts';
import { applyConfig, diffConfig, isPlaceholder, loadConfigRules, planConfig, setJsonLeaf, verifyConfig } from '../src/config/index.ts';

let dir: string;
const w = (rel: string, text: string) => {
  mkdirSync(dirname(join(dir, rel)), { recursive: true });
  writeFileSync(join(dir, rel), text);
};
const r = (rel: string) => readFileSync(join(dir, rel), 'utf8');

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nself-config-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const SECRETS = ['localpw', 'local-jwt', 'sk_local', 'staging-jwt'];

function localToStaging(): void {
  w('.env.dev', '# shared\nAPP_NAME=demo\nFEATURE_X=on\n');
  w(
    '.env.local',
    [
      'ENV=dev',
      'NEW_FLAG=yes please',
      'MAX_UPLOAD=10',
      'JWT_SECRET=local-jwt',
      'STRIPE_KEY=sk_local',
      'POSTGRES_PASSWORD=localpw',
      'DATABASE_URL=postgres://postgres:localpw@localhost:5432/app',
      'API_URL=http://localhost:3000',
      'LOG_LEVEL=debug',
      'GREETING="hello ${APP_NAME}"',
      'SHARED_TEMPLATE=${APP_NAME}-worker',
      'OVERRIDDEN=from-local',
      'FEATURE_X=off',
      'TIMEOUT=60',
      '',
    ].join('\n'),
  );
  w('.env.staging', 'TIMEOUT=30\n');
  w(
    '.environments/staging/.env',
    "# staging settings\nENV=staging\nMAX_UPLOAD='5'   # single quoted keep style\nGREETING=\"hi\"\nAPP_NAME=demo-staging\nSHARED_TEMPLATE=${APP_NAME}-worker\nONLY_STAGING=keep\nJWT_SECRET=staging-jwt",
  );
  w('.environments/staging/.env.secrets', 'OVERRIDDEN=from-secrets-file\n');
}

describe('diffConfig', () => {
  test('keys only in source / target / changed, masked, with provenance', () => {
    localToStaging();
    w('.environments/staging/server.json', '{"host":"10.0.0.2","backup":{"keep":3}}');
    const d = diffConfig(loadEnvironment(dir, 'local'), loadEnvironment(dir, 'staging'));
    const json = JSON.stringify(d);
    for (const s of SECRETS) assert.ok(!json.includes(s), `diff leaks ${s}`);
    const only = Object.fromEntries(d.onlyInSource.map((k) => [k.key, k]));
    assert.deepEqual(Object.keys(only), ['API_URL', 'DATABASE_URL', 'LOG_LEVEL', 'NEW_FLAG', 'POSTGRES_PASSWORD', 'STRIPE_KEY']);
    assert.deepEqual(only.DATABASE_URL, {
      key: 'DATABASE_URL',
      status: 'only_in_source',
      secret: true,
      source: { file: '.env.local', line: 7, value: 'postgres://postgres:****@localhost:5432/app' },
      expected: 'DATABASE_URL is environment-specific',
    });
    assert.deepEqual(only.STRIPE_KEY, { key: 'STRIPE_KEY', status: 'only_in_source', secret: true, source: { file: '.env.local', line: 5 } });
    assert.deepEqual(only.NEW_FLAG.source, { file: '.env.local', line: 2, value: 'yes please' });
    assert.deepEqual(d.onlyInTarget.map((k) => k.key), ['ONLY_STAGING']);
    const changed = Object.fromEntries(d.changed.map((k) => [k.key, k]));
    assert.deepEqual(Object.keys(changed), ['APP_NAME', 'ENV', 'FEATURE_X', 'GREETING', 'JWT_SECRET', 'MAX_UPLOAD', 'OVERRIDDEN', 'SHARED_TEMPLATE', 'TIMEOUT']);
    assert.deepEqual(changed.JWT_SECRET, {
      key: 'JWT_SECRET',
      status: 'differs',
      secret: true,
      source: { file: '.env.local', line: 4 },
      target: { file: '.environments/staging/.env', line: 8 },
      expected: 'secrets differ between environments and are never copied',
    });
    assert.deepEqual(changed.FEATURE_X.target, { file: '.env.dev', line: 3, value: 'on' });
    assert.deepEqual(changed.OVERRIDDEN.target, { file: '.environments/staging/.env.secrets', line: 1, value: 'from-secrets-file' });
    assert.deepEqual(d.server.fields, [
      { field: 'backup.keep', path: ['backup', 'keep'], identity: false, status: 'only_in_target', target: 3, expected: 'fields only in the target are kept by a migration' },
      { field: 'host', path: ['host'], identity: true, status: 'only_in_target', target: '10.0.0.2', expected: 'identity fields differ between environments and are never copied' },
    ]);
    // counted: what a migration acts on; expected (shown, not counted): API_URL, DATABASE_URL, LOG_LEVEL,
    // ONLY_STAGING, ENV, JWT_SECRET and the two server.json fields
    assert.deepEqual(
      [...d.onlyInSource, ...d.onlyInTarget, ...d.changed].filter((k) => k.expected).map((k) => k.key),
      ['API_URL', 'DATABASE_URL', 'LOG_LEVEL', 'ONLY_STAGING', 'ENV', 'JWT_SECRET'],
    );
    assert.equal(d.count, 3 + 7);
    assert.equal(d.expected, 8);
    assert.equal(d.identical, false);
    assert.deepEqual(d.sourceFiles, ['.env.dev', '.env.local']);
  });

  test('identical environments', () => {
    w('.env.local', 'A=1\nS_TOKEN=x\n');
    w('.env.staging', 'A=1\nS_TOKEN=x\n');
    const d = diffConfig(loadEnvironment(dir, 'local'), loadEnvironment(dir, 'staging'));
    assert.equal(d.identical, true);
    assert.equal(d.count, 0);
  });
});

describe('planConfig + applyConfig + verifyConfig', () => {
  test('local → staging: rules, byte-exact result, verification', async () => {
    localToStaging();
    chmodSync(join(dir, '.environments/staging/.env'), 0o640);
    const source = loadEnvironment(dir, 'local');
    const target = loadEnvironment(dir, 'staging');
    const plan = planConfig(source, target);
    const json = JSON.stringify(plan);
    for (const s of SECRETS) assert.ok(!json.includes(s), `plan leaks ${s}`);

    assert.equal(plan.file, '.environments/staging/.env');
    assert.equal(plan.created, false);
    assert.match(plan.sha256!, /^[0-9a-f]{64}$/);
    assert.deepEqual(
      plan.edits.map((e) => [e.action, e.key, e.value, e.line]),
      [
        ['update', 'APP_NAME', 'demo', 5],
        ['update', 'FEATURE_X', 'off', undefined],
        ['update', 'GREETING', 'hello demo', 4],
        ['update', 'MAX_UPLOAD', '10', 3],
        ['add', 'NEW_FLAG', 'yes please', undefined],
        ['placeholder', 'POSTGRES_PASSWORD', '', undefined],
        ['placeholder', 'STRIPE_KEY', '', undefined],
        ['update', 'TIMEOUT', '60', undefined],
      ],
    );
    const feature = plan.edits.find((e) => e.key === 'FEATURE_X')!;
    assert.deepEqual(feature.from, { file: '.env.local', line: 13 });
    assert.deepEqual(feature.current, { file: '.env.dev', line: 3, value: 'on' });
    assert.deepEqual(plan.needsValue, ['POSTGRES_PASSWORD', 'STRIPE_KEY']);
    assert.deepEqual(
      plan.skipped.map((s) => [s.key, s.kind]),
      [
        ['API_URL', 'environment_specific'],
        ['DATABASE_URL', 'environment_specific'],
        ['ENV', 'environment_specific'],
        ['JWT_SECRET', 'secret'],
        ['LOG_LEVEL', 'environment_specific'],
        ['SHARED_TEMPLATE', 'same_definition'],
      ],
    );
    assert.deepEqual(plan.conflicts.map((c) => [c.key, c.file, c.line]), [['OVERRIDDEN', '.environments/staging/.env.secrets', 1]]);
    assert.equal(plan.server, undefined);

    const secretsBefore = r('.environments/staging/.env.secrets');
    const devBefore = r('.env.dev');
    const res = await applyConfig(plan, dir, { label: 'local → staging (test-1)' });
    assert.deepEqual(res, { written: ['.environments/staging/.env'], created: [] });
    assert.equal(
      r('.environments/staging/.env'),
      [
        '# staging settings',
        'ENV=staging',
        "MAX_UPLOAD='10'   # single quoted keep style",
        'GREETING="hello demo"',
        'APP_NAME=demo',
        'SHARED_TEMPLATE=${APP_NAME}-worker',
        'ONLY_STAGING=keep',
        'JWT_SECRET=staging-jwt',
        '',
        '# added by nself migrate local → staging (test-1)',
        'FEATURE_X=off',
        "NEW_FLAG='yes please'",
        'POSTGRES_PASSWORD=',
        'STRIPE_KEY=',
        'TIMEOUT=60',
        '',
      ].join('\n'),
    );
    assert.equal(statSync(join(dir, '.environments/staging/.env')).mode & 0o777, 0o640);
    assert.equal(r('.environments/staging/.env.secrets'), secretsBefore);
    assert.equal(r('.env.dev'), devBefore);
    assert.deepEqual(readdirSync(join(dir, '.environments/staging')).sort(), ['.env', '.env.secrets'], 'no temp file left');

    const reloaded = loadEnvironment(dir, 'staging');
    assert.deepEqual(verifyConfig(plan, reloaded), { ok: true, missing: [] });
    // the same-definition key now matches, as the referenced variable was migrated
    assert.equal(reloaded.vars.get('SHARED_TEMPLATE')?.value, 'demo-worker');
    // planning again: nothing left to do but the skips and the conflict
    const again = planConfig(source, reloaded);
    assert.deepEqual(again.edits, []);
    assert.deepEqual(again.conflicts.map((c) => c.key), ['OVERRIDDEN']);

    // verify notices a change that is not there
    w('.environments/staging/.env.secrets', secretsBefore + 'TIMEOUT=99\n');
    assert.deepEqual(verifyConfig(plan, loadEnvironment(dir, 'staging')), { ok: false, missing: ['TIMEOUT'] });
    w('.environments/staging/.env.secrets', secretsBefore);
    writeFileSync(join(dir, '.environments/staging/.env'), r('.environments/staging/.env').replace('STRIPE_KEY=\n', ''));
    assert.deepEqual(verifyConfig(plan, loadEnvironment(dir, 'staging')), { ok: false, missing: ['STRIPE_KEY'] });
  });

  test('staging → prod: CRLF own file, $ values, server.json service settings', async () => {
    // (the folder file: .env.staging is in prod's own cascade, nself's production builds on it)
    w('.environments/staging/.env', 'A=1\nB=new\nC=costs $5 # comment\nD=x\nE=line1\\nline2\n');
    w('.environments/staging/server.json', JSON.stringify({ host: 'stg', user: 'deploy', port: 2222, backup: { keep: 7 }, monitoring: true, api_secret: 'zzz', deploy_path: '/srv/stg' }));
    w('.environments/prod/.env', 'A=1\r\n# c\r\nB=old\r\nexport D="y" # keep\r\n');
    w('.environments/prod/server.json', '{\n    "name": "prod",\n    "host": "10.0.0.9",\n    "backup": {"keep": 3},\n    "extra": 1\n}');
    const plan = planConfig(loadEnvironment(dir, 'staging'), loadEnvironment(dir, 'production'));
    assert.equal(plan.target, 'prod');
    assert.deepEqual(plan.edits.map((e) => [e.action, e.key, e.value]), [
      ['update', 'B', 'new'],
      ['add', 'C', 'costs $5'],
      ['update', 'D', 'x'],
      ['add', 'E', 'line1\\nline2'],
    ]);
    // backup.keep is a number: environment-specific unless nself-migrate.json copies it
    assert.deepEqual(plan.server?.edits, [{ field: 'monitoring', path: ['monitoring'], action: 'add', value: true }]);
    assert.deepEqual(plan.skipped, [
      { key: 'server.json:backup.keep', kind: 'environment_specific', reason: 'numeric service settings are environment-specific (list them under "copy" in nself-migrate.json to copy them): never copied' },
      { key: 'server.json:api_secret', kind: 'secret', reason: 'holds a secret: never copied' },
    ]);
    assert.ok(!JSON.stringify(plan).includes('zzz'));
    const res = await applyConfig(plan, dir, { label: 'staging → prod (cp-2)' });
    assert.deepEqual(res, { written: ['.environments/prod/.env', '.environments/prod/server.json'], created: [] });
    assert.equal(r('.environments/prod/.env'), 'A=1\r\n# c\r\nB=new\r\nexport D="x" # keep\r\n\r\n# added by nself migrate staging → prod (cp-2)\r\nC=\'costs $5\'\r\nE=\'line1\\nline2\'\r\n');
    // edited in place: the 4-space indentation, the one-line object, the missing final newline all kept
    assert.equal(r('.environments/prod/server.json'), '{\n    "name": "prod",\n    "host": "10.0.0.9",\n    "backup": {"keep": 3},\n    "extra": 1,\n    "monitoring": true\n}');
    const reloaded = loadEnvironment(dir, 'prod');
    assert.equal(reloaded.vars.get('C')?.value, 'costs $5');
    assert.deepEqual(verifyConfig(plan, reloaded), { ok: true, missing: [] });
  });

  test('a value with $ and quotes is written so that it reads back literally', async () => {
    w('.env.local', 'A="p\\$th \\"x\\" ${NOT}"\nB=\'$HOME\'\n');
    w('.env.staging', 'B=plain\n');
    const plan = planConfig(loadEnvironment(dir, 'local'), loadEnvironment(dir, 'staging'));
    assert.deepEqual(plan.edits.map((e) => [e.key, e.value]), [['A', 'p$th "x" '], ['B', '$HOME']]);
    await applyConfig(plan, dir, { label: 'x' });
    assert.equal(r('.env.staging'), "B='$HOME'\n\n# added by nself migrate x\nA='p$th \"x\" '\n");
    assert.deepEqual(verifyConfig(plan, loadEnvironment(dir, 'staging')), { ok: true, missing: [] });
  });

  test('own file created (0600 when the target has secrets); new file listed as created', async () => {
    w('.env.local', 'A=1\nB=2\n');
    w('.environments/staging/.env.secrets', 'S_TOKEN=x\nB=9\n');
    const target = loadEnvironment(dir, 'staging');
    assert.equal(target.ownFile, join(dir, '.env.staging'));
    const plan = planConfig(loadEnvironment(dir, 'local'), target);
    assert.equal(plan.created, true);
    assert.equal(plan.sha256, null);
    assert.equal(plan.mode, 0o600);
    assert.deepEqual(plan.edits.map((e) => e.key), ['A']);
    assert.deepEqual(plan.conflicts.map((c) => c.key), ['B']);
    const res = await applyConfig(plan, dir);
    assert.deepEqual(res, { written: [], created: ['.env.staging'] });
    assert.equal(r('.env.staging'), '# added by nself migrate local → staging\nA=1\n');
    assert.equal(statSync(join(dir, '.env.staging')).mode & 0o777, 0o600);
    assert.deepEqual(verifyConfig(plan, loadEnvironment(dir, 'staging')), { ok: true, missing: [] });
  });

  test('local as target: .env overrides the own file .env.local → conflict; new key goes to .env.local', async () => {
    w('.env', 'X=1\n');
    w('.env.staging', 'X=2\nY=3\n');
    const plan = planConfig(loadEnvironment(dir, 'staging'), loadEnvironment(dir, 'local'));
    assert.equal(plan.file, '.env.local');
    assert.equal(plan.created, true);
    assert.equal(plan.mode, 0o644);
    assert.deepEqual(plan.conflicts.map((c) => [c.key, c.file]), [['X', '.env']]);
    assert.deepEqual(plan.edits.map((e) => [e.action, e.key]), [['add', 'Y']]);
    await applyConfig(plan, dir, { label: 'l' });
    assert.equal(statSync(join(dir, '.env.local')).mode & 0o777, 0o644);
    assert.equal(r('.env'), 'X=1\n');
  });

  test('server.json of a target that has none is not created', () => {
    w('.env.local', 'A=1\n');
    w('.environments/local/server.json', '{"backup": {"enabled": true}}');
    w('.env.staging', 'A=1\n');
    const plan = planConfig(loadEnvironment(dir, 'local'), loadEnvironment(dir, 'staging'));
    assert.equal(plan.server, undefined);
    assert.deepEqual(plan.skipped.map((s) => [s.key, s.kind]), [['server.json:backup.enabled', 'server']]);
  });

  test('drift: a file changed after planning is refused and nothing is written', async () => {
    w('.env.local', 'A=1\n');
    w('.environments/local/server.json', '{"backup": {"enabled": true}}');
    w('.environments/staging/.env', 'A=2\n');
    w('.environments/staging/server.json', '{"host": "h"}');
    const plan = planConfig(loadEnvironment(dir, 'local'), loadEnvironment(dir, 'staging'));
    assert.equal(plan.edits.length, 1);
    assert.equal(plan.server?.edits.length, 1);
    // server.json changes: the env file must not be written either
    w('.environments/staging/server.json', '{"host": "h2"}');
    await assert.rejects(applyConfig(plan, dir), (e: unknown) => e instanceof MigrateError && e.code === 'config_drift' && e.message.includes('.environments/staging/server.json'));
    assert.equal(r('.environments/staging/.env'), 'A=2\n');
    w('.environments/staging/server.json', '{"host": "h"}');
    w('.environments/staging/.env', 'A=2\n# edited\n');
    await assert.rejects(applyConfig(plan, dir), (e: unknown) => e instanceof MigrateError && e.code === 'config_drift');
    assert.equal(r('.environments/staging/server.json'), '{"host": "h"}');
    // a file created after planning a create is drift too
    const d2 = planConfig(loadEnvironment(dir, 'local'), loadEnvironment(dir, 'staging'));
    await applyConfig(d2, dir);
    assert.equal(r('.environments/staging/.env'), 'A=1\n# edited\n');
  });

  test('a symlinked own file is written through the link; a BOM is kept', async () => {
    w('.env.local', 'A=1\n');
    w('shared/staging.env', '\uFEFFA=2\n');
    mkdirSync(join(dir, '.environments/staging'), { recursive: true });
    symlinkSync('../../shared/staging.env', join(dir, '.environments/staging/.env'));
    const plan = planConfig(loadEnvironment(dir, 'local'), loadEnvironment(dir, 'staging'));
    await applyConfig(plan, dir);
    assert.ok(lstatSync(join(dir, '.environments/staging/.env')).isSymbolicLink());
    assert.equal(r('shared/staging.env'), '\uFEFFA=1\n');
  });
});

describe('what belongs to the target environment (#9 item 4)', () => {
  const LOCAL = [
    'SMTP_HOST=mailpit',
    'SMTP_PORT=1025',
    'AUTH_SMTP_USER=dev',
    'EMAIL_FROM=dev@localhost',
    'S3_BUCKET=dev-bucket',
    'S3_REGION=us-east-1',
    'MINIO_ENDPOINT=http://minio:9000',
    'REDIS_HOST=redis',
    'APP_PORT=3000',
    'FEATURE_BETA=on',
    'MAX_UPLOAD=10',
    'MAIL_TEMPLATE=fancy',
    'MAIL_LAYOUT=wide',
    'LOCAL_ONLY_TOOLBAR=on',
    '',
  ].join('\n');
  const STAGING = [
    'SMTP_HOST=smtp.postmarkapp.com',
    'SMTP_PORT=587',
    'AUTH_SMTP_USER=apikey',
    'EMAIL_FROM=noreply@example.com',
    'S3_BUCKET=stg-bucket',
    'S3_REGION=eu-central-1',
    'MINIO_ENDPOINT=https://s3.example.com',
    'REDIS_HOST=10.0.0.7',
    'APP_PORT=8080',
    'FEATURE_BETA=off',
    'MAX_UPLOAD=5',
    'MAIL_TEMPLATE=plain',
    'MAIL_LAYOUT=narrow',
    '',
  ].join('\n');
  const DEFAULT_SPECIFIC = ['APP_PORT', 'AUTH_SMTP_USER', 'EMAIL_FROM', 'MINIO_ENDPOINT', 'REDIS_HOST', 'S3_BUCKET', 'S3_REGION', 'SMTP_HOST', 'SMTP_PORT'];

  test('by default, keys naming where a service lives are expected differences and never copied', async () => {
    w('.env.local', LOCAL);
    w('.env.staging', STAGING);
    const [source, target] = [loadEnvironment(dir, 'local'), loadEnvironment(dir, 'staging')];
    const d = diffConfig(source, target);
    const byKey = Object.fromEntries(d.changed.map((k) => [k.key, k]));
    for (const k of DEFAULT_SPECIFIC) assert.ok(byKey[k]?.expected, `${k} is expected`);
    assert.equal(byKey.SMTP_HOST.expected, '*_HOST keys are environment-specific');
    assert.equal(byKey.AUTH_SMTP_USER.expected, '*_SMTP_* keys are environment-specific');
    assert.equal(byKey.REDIS_HOST.expected, '*_HOST keys are environment-specific');
    assert.deepEqual(d.changed.filter((k) => !k.expected).map((k) => k.key), ['FEATURE_BETA', 'MAIL_LAYOUT', 'MAIL_TEMPLATE', 'MAX_UPLOAD']);
    assert.equal(d.count, 4 + 1); // + LOCAL_ONLY_TOOLBAR, only in local
    const plan = planConfig(source, target);
    assert.deepEqual(plan.edits.map((e) => e.key), ['FEATURE_BETA', 'LOCAL_ONLY_TOOLBAR', 'MAIL_LAYOUT', 'MAIL_TEMPLATE', 'MAX_UPLOAD']);
    assert.deepEqual(plan.skipped.filter((s) => s.kind === 'environment_specific').map((s) => s.key), DEFAULT_SPECIFIC);
    await applyConfig(plan, dir, { label: 't' });
    const after = r('.env.staging');
    assert.ok(after.startsWith(STAGING.replace('FEATURE_BETA=off', 'FEATURE_BETA=on').replace('MAX_UPLOAD=5', 'MAX_UPLOAD=10').replace('MAIL_TEMPLATE=plain', 'MAIL_TEMPLATE=fancy').replace('MAIL_LAYOUT=narrow', 'MAIL_LAYOUT=wide')), after);
    assert.match(after, /^SMTP_HOST=smtp\.postmarkapp\.com$/m);
    assert.match(after, /^SMTP_PORT=587$/m);
  });

  test('nself-migrate.json: keep and copy per environment, by glob; an exact copy beats a keep glob; the source keeps its own', async () => {
    w('.env.local', LOCAL);
    w('.env.staging', STAGING);
    w('.environments/local/server.json', JSON.stringify({ backup: { retention_days: 7, enabled: true } }));
    w('.environments/staging/server.json', JSON.stringify({ host: 'stg', backup: { retention_days: 30, enabled: false } }, null, 2) + '\n');
    w(
      'nself-migrate.json',
      JSON.stringify({
        config: {
          staging: { keep: ['FEATURE_*', 'MAIL_*'], copy: ['APP_PORT', 'MAIL_TEMPLATE', 'server.json:backup.retention_days'] },
          dev: { keep: ['LOCAL_ONLY_*'] },
        },
      }),
    );
    const [source, target] = [loadEnvironment(dir, 'local'), loadEnvironment(dir, 'staging')];
    const rules = loadConfigRules(dir, 'local', 'staging');
    assert.equal(rules.file, 'nself-migrate.json');
    const d = diffConfig(source, target, rules);
    const byKey = Object.fromEntries([...d.changed, ...d.onlyInSource].map((k) => [k.key, k]));
    assert.equal(byKey.FEATURE_BETA.expected, 'kept in staging by nself-migrate.json (keep: FEATURE_*)');
    assert.deepEqual(byKey.FEATURE_BETA.rule, { list: 'keep', environment: 'staging', pattern: 'FEATURE_*' });
    assert.equal(byKey.MAIL_LAYOUT.expected, 'kept in staging by nself-migrate.json (keep: MAIL_*)');
    assert.equal(byKey.MAIL_TEMPLATE.expected, undefined);
    assert.deepEqual(byKey.MAIL_TEMPLATE.rule, { list: 'copy', environment: 'staging', pattern: 'MAIL_TEMPLATE' });
    assert.equal(byKey.APP_PORT.expected, undefined);
    assert.equal(byKey.LOCAL_ONLY_TOOLBAR.expected, 'kept in local by nself-migrate.json (keep: LOCAL_ONLY_*)');
    assert.equal(d.rulesFile, 'nself-migrate.json');
    const ret = d.server.fields.find((f) => f.field === 'backup.retention_days')!;
    assert.deepEqual([ret.expected, ret.rule?.list], [undefined, 'copy']);

    const plan = planConfig(source, target, rules);
    assert.deepEqual(plan.edits.map((e) => [e.key, e.value]), [['APP_PORT', '3000'], ['MAIL_TEMPLATE', 'fancy'], ['MAX_UPLOAD', '10']]);
    assert.deepEqual(plan.skipped.filter((s) => s.kind === 'kept').map((s) => s.key), ['FEATURE_BETA', 'LOCAL_ONLY_TOOLBAR', 'MAIL_LAYOUT']);
    assert.deepEqual(plan.server?.edits.map((e) => [e.field, e.value]), [['backup.retention_days', 7], ['backup.enabled', true]]);
    await applyConfig(plan, dir, { label: 't' });
    assert.equal(r('.environments/staging/server.json'), '{\n  "host": "stg",\n  "backup": {\n    "retention_days": 7,\n    "enabled": true\n  }\n}\n');
    assert.deepEqual(verifyConfig(plan, loadEnvironment(dir, 'staging')), { ok: true, missing: [] });
  });

  test('--key / --exclude-key narrow a run (server.json fields as server.json:<path>)', () => {
    w('.env.local', LOCAL);
    w('.env.staging', STAGING);
    w('.environments/local/server.json', JSON.stringify({ backup: { enabled: true }, monitoring: 'on' }));
    w('.environments/staging/server.json', JSON.stringify({ host: 'stg', backup: { enabled: false } }));
    const [source, target] = [loadEnvironment(dir, 'local'), loadEnvironment(dir, 'staging')];
    const only = loadConfigRules(dir, 'local', 'staging', { include: ['MA*', 'server.json:backup.*'], exclude: ['max_upload'] });
    const d = diffConfig(source, target, only);
    assert.deepEqual([...d.onlyInSource, ...d.changed, ...d.onlyInTarget].map((k) => k.key), ['MAIL_LAYOUT', 'MAIL_TEMPLATE']);
    assert.deepEqual(d.server.fields.map((f) => f.field), ['backup.enabled']);
    const plan = planConfig(source, target, only);
    assert.deepEqual(plan.edits.map((e) => e.key), ['MAIL_LAYOUT', 'MAIL_TEMPLATE']);
    assert.deepEqual(plan.server?.edits.map((e) => e.field), ['backup.enabled']);
    // --key never copies an environment-specific key: it only narrows
    const smtp = planConfig(source, target, loadConfigRules(dir, 'local', 'staging', { include: ['SMTP_HOST'] }));
    assert.deepEqual([smtp.edits, smtp.skipped.map((s) => s.key)], [[], ['SMTP_HOST']]);
    assert.throws(() => loadConfigRules(dir, 'local', 'staging', { include: ['SMTP HOST'] }), (e: unknown) => e instanceof MigrateError && e.exitCode === 64);
  });

  test('nself-migrate.json errors: one line naming file and field, exit 1', () => {
    w('.env.local', 'A=1\n');
    w('.env.staging', 'A=2\n');
    const bad: [string, string][] = [
      ['{', 'nself-migrate.json: not valid JSON: '],
      ['[]', 'nself-migrate.json: must hold a JSON object'],
      ['{"confg": {}}', 'nself-migrate.json: "confg": unknown field (expected "config")'],
      ['{"config": []}', 'nself-migrate.json: config: must be an object of environments'],
      ['{"config": {"stagin": {}}}', 'nself-migrate.json: config.stagin: unknown environment "stagin"'],
      ['{"config": {"prod": {}, "production": {}}}', 'nself-migrate.json: config.production: prod is already configured as config.prod'],
      ['{"config": {"staging": {"keeep": []}}}', 'nself-migrate.json: config.staging.keeep: unknown field (expected "keep" or "copy")'],
      ['{"config": {"staging": {"keep": "SMTP_*"}}}', 'nself-migrate.json: config.staging.keep: must be an array of key globs'],
      ['{"config": {"staging": {"copy": ["A", 3]}}}', 'nself-migrate.json: config.staging.copy[1]: must be a string'],
      ['{"config": {"staging": {"copy": ["SMTP HOST"]}}}', 'nself-migrate.json: config.staging.copy[0]: "SMTP HOST" is not a key glob: '],
      ['{"config": {"staging": {"copy": ["server.json:"]}}}', 'nself-migrate.json: config.staging.copy[0]: "server.json:" is not a key glob: '],
      ['{"config": {"staging": {"keep": ["A"], "copy": ["a"]}}}', 'nself-migrate.json: config.staging: a is listed in both "keep" and "copy"'],
    ];
    for (const [text, message] of bad) {
      w('nself-migrate.json', text);
      assert.throws(
        () => loadConfigRules(dir, 'local', 'staging'),
        (e: unknown) => e instanceof MigrateError && e.code === 'config_rules_invalid' && e.exitCode === 1 && e.message.startsWith(message) && !e.message.includes('\n') && !!e.hint,
        text,
      );
    }
    w('nself-migrate.json', '{"$schema": "x", "config": {"production": {"keep": ["server.json:backup.*"]}, "dev": {}}}');
    const ok = loadConfigRules(dir, 'staging', 'prod');
    assert.deepEqual(ok.targetRules, { keep: ['server.json:backup.*'], copy: [] });
  });
});

describe('missing values are differences (#9 item 5)', () => {
  test('a secret the source sets that is empty or a placeholder in the target needs a value and is counted', () => {
    w('.env.local', 'STRIPE_SECRET_KEY=sk_live_abc\nAUTH_JWT_PRIVATE_KEY=-----BEGIN-----\nHASURA_GRAPHQL_ADMIN_SECRET=real\nAPI_TOKEN=changeme\nOPTIONAL_SECRET=\n');
    w('.env.staging', 'STRIPE_SECRET_KEY=\nAUTH_JWT_PRIVATE_KEY=changeme-32-character-secret-key\nHASURA_GRAPHQL_ADMIN_SECRET=other\nAPI_TOKEN=\nOPTIONAL_SECRET=\n');
    const [source, target] = [loadEnvironment(dir, 'local'), loadEnvironment(dir, 'staging')];
    const d = diffConfig(source, target);
    const status = Object.fromEntries(d.changed.map((k) => [k.key, [k.status, k.expected ?? null]]));
    assert.deepEqual(status, {
      AUTH_JWT_PRIVATE_KEY: ['needs_value', null],
      HASURA_GRAPHQL_ADMIN_SECRET: ['differs', 'secrets differ between environments and are never copied'],
      API_TOKEN: ['differs', 'secrets differ between environments and are never copied'], // the source's is a placeholder too
      STRIPE_SECRET_KEY: ['needs_value', null],
    });
    assert.equal(d.count, 2);
    const stripe = d.changed.find((k) => k.key === 'STRIPE_SECRET_KEY')!;
    assert.deepEqual(stripe.target, { file: '.env.staging', line: 1, value: '' });
    assert.deepEqual(stripe.source, { file: '.env.local', line: 1 });
    const jwt = d.changed.find((k) => k.key === 'AUTH_JWT_PRIVATE_KEY')!;
    assert.deepEqual(jwt.target, { file: '.env.staging', line: 2 }, 'a placeholder value is not shown');
    const plan = planConfig(source, target);
    assert.deepEqual(plan.needsValue, ['AUTH_JWT_PRIVATE_KEY', 'STRIPE_SECRET_KEY']);
    assert.deepEqual(plan.edits, []);
    // filled in: no difference left
    w('.env.staging', 'STRIPE_SECRET_KEY=sk_test_stg\nAUTH_JWT_PRIVATE_KEY=-----BEGIN STG-----\nHASURA_GRAPHQL_ADMIN_SECRET=other\nAPI_TOKEN=\nOPTIONAL_SECRET=\n');
    assert.equal(diffConfig(source, loadEnvironment(dir, 'staging')).count, 0);
  });

  test('a placeholder written by a migration needs a value until it is filled; keep in nself-migrate.json accepts an empty value', async () => {
    w('.env.local', 'STRIPE_SECRET_KEY=sk_live_abc\n');
    w('.env.staging', 'A=1\n');
    const plan = planConfig(loadEnvironment(dir, 'local'), loadEnvironment(dir, 'staging'));
    assert.deepEqual(plan.needsValue, ['STRIPE_SECRET_KEY']);
    await applyConfig(plan, dir, { label: 't' });
    const d = diffConfig(loadEnvironment(dir, 'local'), loadEnvironment(dir, 'staging'));
    assert.deepEqual(d.changed.map((k) => [k.key, k.status]), [['STRIPE_SECRET_KEY', 'needs_value']]);
    assert.equal(d.count, 1);
    w('nself-migrate.json', '{"config": {"staging": {"keep": ["STRIPE_*"]}}}');
    const kept = diffConfig(loadEnvironment(dir, 'local'), loadEnvironment(dir, 'staging'), loadConfigRules(dir, 'local', 'staging'));
    assert.deepEqual(kept.changed.map((k) => [k.key, k.status, k.expected]), [['STRIPE_SECRET_KEY', 'differs', 'kept in staging by nself-migrate.json (keep: STRIPE_*)']]);
    assert.equal(kept.count, 0);
  });

  test('what counts as a placeholder', () => {
    for (const v of ['', '  ', 'changeme', 'CHANGE_ME', 'change-this-secret', 'CHANGE_THIS_PASSWORD', 'changeme-32-character-secret-key', 'change_me_admin_secret', 'replace-me', 'your-api-key-here', 'YOUR_SECRET', '<your key>', 'xxx', 'XXXXXXXX', '***', 'TODO', 'tbd', 'placeholder', '...']) {
      assert.ok(isPlaceholder(v), JSON.stringify(v));
    }
    for (const v of ['sk_live_abc', 'hunter2', 'x', 'changer', 'youngling', 'enterprise-key', '0', 'false', '<a><b>']) assert.ok(!isPlaceholder(v), JSON.stringify(v));
  });
});

describe('server.json edited in place (json.ts)', () => {
  test('a leaf replaced, a member added, nested objects created: every other byte kept, in the file\'s style', () => {
    const four = '{\n    "name": "prod",\n    "backup":   {\n        "enabled": false,\n        "schedule": "0 3 * * *"\n    },\n    "list": [1, 2]\n}\n';
    assert.equal(setJsonLeaf(four, ['backup', 'enabled'], true), four.replace('"enabled": false', '"enabled": true'));
    assert.equal(setJsonLeaf(four, ['backup', 'encrypt'], true), four.replace('"0 3 * * *"\n', '"0 3 * * *",\n        "encrypt": true\n'));
    assert.equal(setJsonLeaf(four, ['monitoring', 'alerts', 'email'], 'ops@example.com'), four.replace('"list": [1, 2]\n', '"list": [1, 2],\n    "monitoring": {\n        "alerts": {\n            "email": "ops@example.com"\n        }\n    }\n'));
    assert.equal(setJsonLeaf(four, ['list'], [3]), four.replace('[1, 2]', '[3]'));
    // tabs and CRLF
    const tabs = '{\r\n\t"a": {\r\n\t\t"b": 1\r\n\t}\r\n}';
    assert.equal(setJsonLeaf(tabs, ['a', 'c'], { d: null }), '{\r\n\t"a": {\r\n\t\t"b": 1,\r\n\t\t"c": {\r\n\t\t\t"d": null\r\n\t\t}\r\n\t}\r\n}');
    // one line, compact
    const one = '{"host":"h","backup":{"keep":3}}';
    assert.equal(setJsonLeaf(one, ['backup', 'enabled'], true), '{"host":"h","backup":{"keep":3,"enabled":true}}');
    assert.equal(setJsonLeaf(one, ['x'], { y: [1, 'z'] }), '{"host":"h","backup":{"keep":3},"x":{"y":[1,"z"]}}');
    // an inline object inside a multi-line file stays on one line; an empty object is opened
    const mixed = '{\n  "backup": {"keep": 3, "at": "x"},\n  "empty": {}\n}';
    assert.equal(setJsonLeaf(mixed, ['backup', 'enabled'], true), '{\n  "backup": {"keep": 3, "at": "x", "enabled": true},\n  "empty": {}\n}');
    assert.equal(setJsonLeaf(mixed, ['empty', 'a'], 1), '{\n  "backup": {"keep": 3, "at": "x"},\n  "empty": {\n    "a": 1\n  }\n}');
    // a value of another type where an object is needed is replaced; the last of duplicate keys is the one edited
    assert.equal(setJsonLeaf('{"a": 1, "a": 2}', ['a'], 3), '{"a": 1, "a": 3}');
    assert.equal(setJsonLeaf('{\n  "a": 5\n}', ['a', 'b'], true), '{\n  "a": {\n    "b": true\n  }\n}');
    // strings with escapes and keys with dots
    assert.equal(setJsonLeaf('{"a.b": "x\\"y", "c": 1}', ['a.b'], 'q'), '{"a.b": "q", "c": 1}');
    for (const t of [four, tabs, one, mixed]) assert.deepEqual(JSON.parse(setJsonLeaf(t, ['zz'], 1)).zz, 1);
  });
});

test('a tainted value (it expands a secret) is a secret for needs_value and the plan too: never shown, never copied', () => {
  w('.env.local', 'HASURA_GRAPHQL_JWT_SECRET=abcdefghijklmnopqrstuvwxyz012345\nJWT_CONF={"key":"${HASURA_GRAPHQL_JWT_SECRET}"}\nWRAP=pre-${HASURA_GRAPHQL_JWT_SECRET}\n');
  w('.env.staging', 'HASURA_GRAPHQL_JWT_SECRET=zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\nJWT_CONF=changeme\n');
  const source = loadEnvironment(dir, 'local');
  const target = loadEnvironment(dir, 'staging');
  const d = diffConfig(source, target);
  const jwt = d.changed.find((c) => c.key === 'JWT_CONF')!;
  assert.equal(jwt.status, 'needs_value');
  assert.equal(jwt.secret, true);
  assert.equal(jwt.source.value, undefined);
  const plan = planConfig(source, target);
  assert.deepEqual(plan.needsValue.sort(), ['JWT_CONF', 'WRAP']);
  assert.deepEqual(plan.edits.map((e) => [e.action, e.key, e.value]), [['placeholder', 'WRAP', '']]);
  assert.ok(!JSON.stringify({ d, plan }).includes('abcdefghijklmnop'));
});
