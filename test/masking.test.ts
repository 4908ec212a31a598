/**
 * Masking by structure (issue #9, parts 1 and 2): secrets are classified where values are produced — by name AND a
 * value that looks secret, or by taint (the value expands a secret) — and the CLI's last-line scrubber only touches
 * values long enough to be unique, leaf by leaf, so every --json document stays valid and nothing but the secret
 * is hidden. Pure functions, the real CLI on real files, and one real PostgreSQL for diff/migrate --json.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isScrubbable, isSecretKey, maskValue, scrubJson, scrubListOf } from '../src/env/secrets.ts';
import { loadEnvironment } from '../src/env/resolve.ts';
import { diffConfig, planConfig } from '../src/config/index.ts';
import { makeProject, type Project } from './support/cli.ts';
import { startCluster, type TestCluster } from './support/pg.ts';

const JWT = '{"type":"HS256","key":"k3y-0f-thirty-two-characters-xyz"}';

/** Every file below `dir`, recursively. */
function filesBelow(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesBelow(p));
    else out.push(p);
  }
  return out;
}

describe('classifier: secret by name only when the value looks secret', () => {
  // [key, value, secret?]
  const TABLE: [string, string, boolean][] = [
    ['AUTH_ACCESS_TOKEN_EXPIRES_IN', '900', false],
    ['AUTH_REFRESH_TOKEN_EXPIRES_IN', '43200', false],
    ['AUTH_REFRESH_TOKEN_ROTATION', 'false', false],
    ['NEW_KEY_AFTER', '1', false],
    ['AUTH_PASSWORD_MIN_LENGTH', '9', false],
    ['AUTH_PASSWORD_MIN_LENGTH', 'nine', false], // a setting by name, whatever its value
    ['JWT_KEY_ROTATION', 'weekly', false],
    ['SESSION_TOKEN_TTL', '15m', false],
    ['API_TOKEN_LIFETIME', '1h30m', false],
    ['REFRESH_TOKEN_EXPIRY', 'PT15M', false],
    ['UPLOAD_KEY_MAX_SIZE', '4kb', false],
    ['SECRET_STORE_CACHE', '512MiB', false],
    ['ENCRYPTION_KEY_BITS', '256', false],
    ['MFA_TOKEN_ENABLED', 'yes', false],
    ['CSRF_TOKEN', 'off', false],
    ['TOKEN_SCALE', '0.5', false],
    ['APP_NAME', 'shop', false],
    ['API_URL', 'https://api.example.com/v1', false],
    ['DATABASE_URL', 'postgres://app@db:5432/app', false],
    ['REDIS_PASSWORD', 'postgres', true],
    ['POSTGRES_PASSWORD', 'hunter2hunter2', true],
    ['HASURA_GRAPHQL_ADMIN_SECRET', 'dev-admin-secret-123', true],
    ['HASURA_GRAPHQL_JWT_SECRET', JWT, true],
    ['STRIPE_SECRET_KEY', 'sk_test_123', true],
    ['API_TOKEN', '1234567890123456789', true], // 19 digits: a generated token, not a count
    ['HASH_SALT', 'a1', true],
    ['JWT_SECRET', '', true], // a secret not set yet stays a secret
    ['DATABASE_URL', 'postgres://u:pw@h/db', true],
    ['S3_URL', 'https://h/b?token=abc', true],
  ];
  for (const [key, value, secret] of TABLE) {
    test(`${key}=${value || '(empty)'} → ${secret ? 'secret' : 'not secret'}`, () => {
      assert.equal(isSecretKey(key, value), secret);
      const shown = maskValue(key, value);
      if (!secret) assert.equal(shown, value, 'a non-secret is shown as it is');
      else assert.notEqual(shown, value === '' ? 'x' : value, 'a secret is never shown');
    });
  }
});

describe('last-line scrubber: only unique values, JSON leaf by leaf', () => {
  test('what it searches for: ≥ 8 characters, no JSON literal, no word of the output', () => {
    const TABLE: [string, boolean][] = [
      ['900', false], ['1', false], ['false', false], ['postgres', false], ['password', false], ['production', false],
      ['12345678', false], ['1.5e10', false], ['null', false], ['short7!', false], ['   true   ', false],
      ['sk_live_abcdefgh', true], ['hunter2hunter2', true], [JWT, true], ['ünïcødé-p@ss', true],
    ];
    for (const [v, want] of TABLE) assert.equal(isScrubbable(v), want, JSON.stringify(v));
  });

  test('scrubListOf: non-secret values of the environments are vocabulary; settings and short secrets are not listed', () => {
    const list = scrubListOf([
      { key: 'AUTH_ACCESS_TOKEN_EXPIRES_IN', value: '900' },
      { key: 'AUTH_REFRESH_TOKEN_ROTATION', value: 'false' },
      { key: 'NEW_KEY_AFTER', value: '1' },
      { key: 'REDIS_PASSWORD', value: 'postgres' },
      { key: 'PIN_SECRET', value: 'abc' },
      { key: 'POSTGRES_USER', value: 'appuser_main' },
      { key: 'DB_PASSWORD', value: 'appuser_main' }, // equal to a value the output shows legitimately
      { key: 'HASURA_GRAPHQL_JWT_SECRET', value: JWT },
      { key: 'DATABASE_URL', value: 'postgres://u:p%40ssw0rd!x@h/db' },
    ]);
    assert.deepEqual(list.sort(), [JWT, encodeURIComponent(JWT), 'p@ssw0rd!x', 'p%40ssw0rd!x', 'p%2540ssw0rd!x'].sort());
  });

  test('scrubJson keeps a document valid and every non-secret leaf intact, even with short secrets in the environment', () => {
    const secrets = scrubListOf([
      { key: 'AUTH_ACCESS_TOKEN_EXPIRES_IN', value: '900' },
      { key: 'AUTH_REFRESH_TOKEN_ROTATION', value: 'false' },
      { key: 'REDIS_PASSWORD', value: 'postgres' },
      { key: 'NEW_KEY_AFTER', value: '1' },
      { key: 'PIN_SECRET', value: '1' },
      { key: 'HASURA_GRAPHQL_JWT_SECRET', value: JWT },
    ]);
    const doc = {
      kind: 'plan',
      source: { name: 'local', production: false, database: 'postgres@127.0.0.1:5432/app' },
      schema: { sourceFingerprint: 'a900b1c' + '9'.repeat(57), changes: [{ identity: '"postgres"."users"', sql: [`COMMENT ON TABLE "postgres"."users" IS '${JWT}'`] }] },
      data: { diff: { tables: [{ table: 'postgres.users', sourceRows: 900, targetRows: 1, identical: false }] } },
      checkpoint: '20261125T194512123Z-a1b2',
      [JWT]: 'a key holding the secret',
    };
    const text = JSON.stringify(scrubJson(doc, secrets), null, 2);
    const back = JSON.parse(text);
    assert.equal(text.includes('k3y-0f-thirty-two'), false, 'the secret (with its quotes) is gone');
    assert.equal(back.schema.changes[0].sql[0], `COMMENT ON TABLE "postgres"."users" IS '****'`);
    assert.deepEqual(back.data, doc.data);
    assert.deepEqual(back.source, doc.source);
    assert.equal(back.schema.sourceFingerprint, doc.schema.sourceFingerprint);
    assert.equal(back.schema.changes[0].identity, '"postgres"."users"');
    assert.equal(back.checkpoint, doc.checkpoint);
    assert.equal(back['****'], 'a key holding the secret');
  });
});

describe('taint: a value that expands a secret is a secret', () => {
  let p: Project;
  before(() => {
    p = makeProject({
      '.env.dev': `HASURA_GRAPHQL_JWT_SECRET='${JWT}'\nAUTH_ACCESS_TOKEN_EXPIRES_IN=900\nAPP=shop\n`,
      '.env.local': [
        'JWT_CONF=${HASURA_GRAPHQL_JWT_SECRET}',
        'WRAPPED="{\\"jwt\\": ${HASURA_GRAPHQL_JWT_SECRET}}"',
        'CHAIN=$JWT_CONF-x',
        'DEFAULTED=${NOT_SET:-$HASURA_GRAPHQL_JWT_SECRET}',
        'DEFAULT_UNUSED=${APP:-$HASURA_GRAPHQL_JWT_SECRET}',
        "LITERAL='${HASURA_GRAPHQL_JWT_SECRET}'",
        'ESCAPED="\\${HASURA_GRAPHQL_JWT_SECRET}"',
        'EMPTY_REF=${UNSET_TOKEN}',
        'SETTING_REF=${AUTH_ACCESS_TOKEN_EXPIRES_IN}s',
        'PLAIN=${APP}-worker',
        'AUTH_URL=https://user:${HASURA_GRAPHQL_JWT_SECRET}@auth.example.com',
        '',
      ].join('\n'),
      '.env.staging': 'ENV=staging\nCHAIN=other\n',
    });
  });
  after(() => p.remove());

  test('the cascade marks tainted variables and names the secret they expand', () => {
    const env = loadEnvironment(p.dir, 'local');
    const v = (k: string) => env.vars.get(k)!;
    for (const k of ['JWT_CONF', 'WRAPPED', 'CHAIN', 'DEFAULTED', 'AUTH_URL']) assert.equal(v(k).secret, true, k);
    assert.deepEqual(v('JWT_CONF').taint, ['HASURA_GRAPHQL_JWT_SECRET']);
    assert.deepEqual(v('CHAIN').taint, ['JWT_CONF'], 'through another tainted variable');
    for (const k of ['DEFAULT_UNUSED', 'LITERAL', 'ESCAPED', 'EMPTY_REF', 'SETTING_REF', 'PLAIN', 'AUTH_ACCESS_TOKEN_EXPIRES_IN']) {
      assert.equal(v(k).secret, false, k);
      assert.equal(v(k).taint, undefined, k);
    }
  });

  test('config diff and plan: never shown, never copied, a placeholder when the target lacks it', () => {
    const local = loadEnvironment(p.dir, 'local');
    const staging = loadEnvironment(p.dir, 'staging');
    const d = diffConfig(local, staging);
    assert.equal(JSON.stringify(d).includes('k3y-0f'), false, JSON.stringify(d));
    const jwtConf = d.onlyInSource.find((x) => x.key === 'JWT_CONF')!;
    assert.deepEqual(jwtConf, { key: 'JWT_CONF', status: 'only_in_source', secret: true, source: { file: '.env.local', line: 1 } });
    const authUrl = d.onlyInSource.find((x) => x.key === 'AUTH_URL')!;
    assert.equal(authUrl.source!.value, undefined, 'a tainted URL is hidden whole');
    const plan = planConfig(local, staging);
    assert.equal(JSON.stringify(plan).includes('k3y-0f'), false);
    assert.deepEqual(plan.edits.find((e) => e.key === 'JWT_CONF'), { action: 'placeholder', key: 'JWT_CONF', value: '', from: { file: '.env.local', line: 1 } });
    assert.ok(plan.needsValue.includes('WRAPPED'));
    const chain = plan.skipped.find((s) => s.key === 'CHAIN')!;
    assert.equal(chain.kind, 'secret');
    assert.match(chain.reason, /expands the secret JWT_CONF/);
    assert.equal(plan.edits.find((e) => e.key === 'LITERAL')?.value, '${HASURA_GRAPHQL_JWT_SECRET}');
  });

  test('through the CLI: diff --json hides it; migrate writes a placeholder; nothing under .nself holds it', async () => {
    const d = await p.run(['migrate', 'diff', 'local', 'staging', '--config-only', '--json']);
    assert.equal(d.code, 0, d.stderr);
    assert.equal(d.stdout.includes('k3y-0f'), false);
    const plan = JSON.parse(d.stdout);
    assert.equal(plan.config.diff.onlyInSource.find((x: { key: string }) => x.key === 'JWT_CONF').secret, true);

    const m = await p.run(['migrate', 'local', 'staging', '--config-only', '--force', '--json']);
    assert.equal(m.code, 0, m.stderr);
    assert.equal(m.stdout.includes('k3y-0f'), false);
    const env = p.read('.env.staging');
    assert.equal(env.includes('k3y-0f'), false, env);
    assert.match(env, /^JWT_CONF=$/m);
    assert.match(env, /^DEFAULTED=$/m);
    assert.match(env, /^CHAIN=other$/m, 'a tainted key the target has is left alone');
    const files = filesBelow(join(p.dir, '.nself'));
    assert.ok(files.some((f) => f.endsWith('manifest.json')));
    for (const f of files) assert.equal(readFileSync(f, 'utf8').includes('k3y-0f'), false, f);
  });
});

describe('--json of diff and migrate stays valid with short secrets in the environment (real PostgreSQL)', () => {
  let cluster: TestCluster;
  let p: Project;
  const SHORT = [
    'AUTH_ACCESS_TOKEN_EXPIRES_IN=900',
    'AUTH_REFRESH_TOKEN_ROTATION=false',
    'REDIS_PASSWORD=postgres',
    'NEW_KEY_AFTER=1',
    'PIN_SECRET=1',
    'ADMIN_SECRET=true',
    `HASURA_GRAPHQL_JWT_SECRET='${JWT}'`,
  ].join('\n');
  const env = (db: string, extra: string) =>
    `POSTGRES_HOST=127.0.0.1\nPOSTGRES_PORT=${cluster.port}\nPOSTGRES_DB=${db}\nPOSTGRES_USER=${cluster.user}\nPOSTGRES_PASSWORD=${cluster.password}\n${SHORT}\n${extra}`;

  before(async () => {
    cluster = await startCluster();
    await cluster.createDatabase('src');
    await cluster.createDatabase('tgt');
    // A schema named like a secret value, a row count and a comment equal to the secrets.
    await cluster.sql(
      `CREATE SCHEMA postgres; CREATE TABLE postgres.users (id int PRIMARY KEY, active boolean NOT NULL DEFAULT false, n int);
       INSERT INTO postgres.users SELECT g, g % 2 = 0, 900 FROM generate_series(1, 900) g;
       COMMENT ON TABLE postgres.users IS '${JWT}';`,
      'src',
    );
    await cluster.sql(`CREATE SCHEMA postgres; CREATE TABLE postgres.users (id int PRIMARY KEY, active boolean NOT NULL DEFAULT false); INSERT INTO postgres.users VALUES (1, false);`, 'tgt');
    p = makeProject({ '.env.local': env('src', 'FEATURE=on\n'), '.env.staging': env('tgt', 'FEATURE=off\n') });
  });
  after(async () => {
    p?.remove();
    await cluster?.stop();
  });

  test('diff --json parses; counts, booleans, schema names and fingerprints are intact; the long secret is masked', async () => {
    const r = await p.run(['migrate', 'diff', 'local', 'staging', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const plan = JSON.parse(r.stdout);
    assert.equal(r.stdout.includes('k3y-0f'), false);
    assert.equal(plan.source.production, false);
    assert.match(plan.schema.sourceFingerprint, /^[0-9a-f]{64}$/);
    assert.match(plan.schema.targetFingerprint, /^[0-9a-f]{64}$/);
    const t = plan.data.diff.tables.find((x: { table: string }) => x.table === 'postgres.users');
    assert.deepEqual([t.sourceRows, t.targetRows], [900, 1]);
    const ids = plan.schema.changes.map((c: { identity: string }) => c.identity);
    assert.ok(ids.includes('"postgres"."users"."n"'), ids.join(', '));
    const comment = plan.schema.changes.flatMap((c: { sql: string[] }) => c.sql).find((s: string) => s.startsWith('COMMENT ON TABLE'));
    assert.equal(comment, `COMMENT ON TABLE "postgres"."users" IS '****'`);
    const cfg = plan.config.diff;
    assert.deepEqual(cfg.changed.find((x: { key: string }) => x.key === 'FEATURE').source.value, 'on');

    const human = await p.run(['migrate', 'diff', 'local', 'staging']);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /"postgres"\."users"/);
    assert.match(human.stdout, /900 \/ 1 row: /);
    assert.equal((human.stdout + human.stderr).includes('k3y-0f'), false);
  });

  test('migrate --json parses; the report carries counts, checkpoint id and the plan intact', async () => {
    const r = await p.run(['migrate', 'local', 'staging', '--force', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.status, 'ok');
    assert.equal(report.verified, true);
    assert.match(report.checkpoint, /^\d{8}T\d{9}Z-[0-9a-f]{4,}$/);
    assert.ok(p.checkpoints().includes(report.checkpoint));
    const t = report.data.find((x: { table: string }) => x.table === 'postgres.users');
    assert.equal(t.rowsAfter, 900);
    assert.equal(report.plan.source.production, false);
    assert.equal(r.stdout.includes('k3y-0f'), false);
    const rows = await cluster.query<{ n: number }>('SELECT count(*)::int AS n FROM postgres.users WHERE n = 900', [], 'tgt');
    assert.equal(rows[0]!.n, 900);
  });
});
