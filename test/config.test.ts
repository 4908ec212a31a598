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
import { applyConfig, diffConfig, planConfig, verifyConfig } from '../src/config/index.ts';

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
      { field: 'backup', identity: false, status: 'only_in_target', target: { keep: 3 }, expected: 'fields only in the target are kept by a migration' },
      { field: 'host', identity: true, status: 'only_in_target', target: '10.0.0.2', expected: 'identity fields differ between environments and are never copied' },
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
    w('.env.staging', 'A=1\nB=new\nC=costs $5 # comment\nD=x\nE=line1\\nline2\n');
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
    assert.deepEqual(plan.server?.edits, [
      { field: 'backup', action: 'update', value: { keep: 7 } },
      { field: 'monitoring', action: 'add', value: true },
    ]);
    assert.deepEqual(plan.skipped, [{ key: 'server.json:api_secret', kind: 'secret', reason: 'holds a secret: never copied' }]);
    assert.ok(!JSON.stringify(plan).includes('zzz'));
    const res = await applyConfig(plan, dir, { label: 'staging → prod (cp-2)' });
    assert.deepEqual(res, { written: ['.environments/prod/.env', '.environments/prod/server.json'], created: [] });
    assert.equal(r('.environments/prod/.env'), 'A=1\r\n# c\r\nB=new\r\nexport D="x" # keep\r\n\r\n# added by nself migrate staging → prod (cp-2)\r\nC=\'costs $5\'\r\nE=\'line1\\nline2\'\r\n');
    assert.equal(r('.environments/prod/server.json'), '{\n  "name": "prod",\n  "host": "10.0.0.9",\n  "backup": {\n    "keep": 7\n  },\n  "extra": 1,\n  "monitoring": true\n}\n');
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
    w('.environments/local/server.json', '{"backup": {"keep": 1}}');
    w('.env.staging', 'A=1\n');
    const plan = planConfig(loadEnvironment(dir, 'local'), loadEnvironment(dir, 'staging'));
    assert.equal(plan.server, undefined);
    assert.deepEqual(plan.skipped.map((s) => [s.key, s.kind]), [['server.json:backup', 'server']]);
  });

  test('drift: a file changed after planning is refused and nothing is written', async () => {
    w('.env.local', 'A=1\n');
    w('.environments/local/server.json', '{"backup": {"keep": 1}}');
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
