/**
 * The checkpoint store, as a user meets it: private files, abandoned drafts, listing, picking a checkpoint,
 * retention, manifests that are checked instead of trusted, symlinked env files. Config-only migrations (no
 * database): the checkpoints are made by the real CLI, then tampered with.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { cpSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { makeProject, type Project } from './support/cli.ts';

const LOCAL = 'APP_NAME=shop\nMAX_UPLOAD_MB=50\n';
const STAGING = '# staging\nMAX_UPLOAD_MB=20\n';
const PROD = '# prod\nMAX_UPLOAD_MB=10\n';

const projects: Project[] = [];
const extra: string[] = [];
after(() => {
  projects.forEach((p) => p.remove());
  extra.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

function project(files: Record<string, string> = {}): Project {
  const p = makeProject({ '.env.local': LOCAL, '.env.staging': STAGING, ...files });
  projects.push(p);
  return p;
}

/** A config-only migration that changes something (the counter makes each run differ). */
let counter = 0;
async function migrate(p: Project, target = 'staging', args: string[] = []): Promise<string> {
  p.write('.env.local', `${LOCAL}RUN=${++counter}\n`);
  const before = new Set(p.checkpoints());
  const r = await p.run(['migrate', 'local', target, '--config-only', '--force', ...args]);
  assert.equal(r.code, 0, r.stderr);
  const made = p.checkpoints().filter((c) => !before.has(c) && !c.startsWith('.'));
  assert.equal(made.length, 1, `one new checkpoint: ${made.join(', ')}`);
  return made[0]!;
}

// The manifest's self-checksum, computed the documented way (canonical JSON: keys sorted, no whitespace).
function canonical(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
    .join(',')}}`;
}
type Manifest = Record<string, any>;
function manifestPath(p: Project, id: string): string {
  return join(p.dir, '.nself', 'migrations', id, 'manifest.json');
}
function readManifest(p: Project, id: string): Manifest {
  return JSON.parse(readFileSync(manifestPath(p, id), 'utf8'));
}
/** Write a manifest, re-computing its self-checksum (as someone who knows the format would). */
function writeManifest(p: Project, id: string, m: Manifest, rehash = true): void {
  if (rehash) {
    delete m.manifest_sha256;
    m.manifest_sha256 = createHash('sha256').update(canonical(m)).digest('hex');
  }
  writeFileSync(manifestPath(p, id), JSON.stringify(m, null, 2) + '\n');
}

function modes(dir: string): { path: string; mode: number; dir: boolean }[] {
  const out = [{ path: dir, mode: statSync(dir).mode & 0o7777, dir: true }];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const path = join(e.parentPath, e.name);
    out.push({ path, mode: lstatSync(path).mode & 0o7777, dir: e.isDirectory() });
  }
  return out;
}

async function listJson(p: Project): Promise<{ doc: any; stderr: string }> {
  const r = await p.run(['migrate', 'rollback', '--list', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return { doc: JSON.parse(r.stdout), stderr: r.stderr };
}

describe('a private, tidy store', () => {
  test('.nself/ and everything below it is private (0700/0600) and git-ignored', async () => {
    const p = project();
    chmodSync(join(p.dir, '.env.staging'), 0o644); // copyFile keeps the source's mode
    await migrate(p);
    const all = modes(join(p.dir, '.nself'));
    assert.ok(all.length >= 6, JSON.stringify(all));
    for (const e of all) assert.equal(e.mode, e.dir ? 0o700 : 0o600, `${e.path} is ${e.mode.toString(8)}`);
    assert.match(p.read('.nself/.gitignore'), /^\*$/m);
    // git agrees
    const git = spawnSync('git', ['init', '-q', p.dir]);
    if (git.status === 0) {
      const st = spawnSync('git', ['-C', p.dir, 'status', '--porcelain', '--untracked-files=all'], { encoding: 'utf8' });
      assert.doesNotMatch(st.stdout, /\.nself/);
    }
    // the rolled-back manifest stays private too
    const rb = await p.run(['migrate', 'rollback', '--force']);
    assert.equal(rb.code, 0, rb.stderr);
    for (const e of modes(join(p.dir, '.nself'))) assert.equal(e.mode, e.dir ? 0o700 : 0o600, e.path);
  });

  test('an existing .nself with loose modes is tightened when the tool next writes there', async () => {
    const p = project();
    mkdirSync(join(p.dir, '.nself', 'migrations'), { recursive: true });
    p.write('.nself/known_hosts', 'example.com ssh-ed25519 AAAA\n');
    chmodSync(join(p.dir, '.nself'), 0o755);
    chmodSync(join(p.dir, '.nself', 'migrations'), 0o755);
    chmodSync(join(p.dir, '.nself', 'known_hosts'), 0o644);
    await migrate(p);
    for (const e of modes(join(p.dir, '.nself'))) assert.equal(e.mode, e.dir ? 0o700 : 0o600, `${e.path} is ${e.mode.toString(8)}`);
    assert.ok(p.exists('.nself/.gitignore'));
  });

  test('listing in a project without checkpoints creates nothing', async () => {
    const p = project();
    const r = await p.run(['migrate', 'rollback', '--list']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /no checkpoints/);
    assert.equal(p.exists('.nself'), false);
  });

  test('drafts of runs that are gone are removed by the next command; a live one is left alone', async () => {
    const p = project();
    await migrate(p);
    const root = join(p.dir, '.nself', 'migrations');
    const dead = spawnSync(process.execPath, ['-e', '']).pid!; // a process that has exited
    const draft = (name: string, owner?: object, oldMs = 0) => {
      mkdirSync(join(root, name, 'backup', 'files'), { recursive: true });
      writeFileSync(join(root, name, 'backup', 'files', '0'), 'SECRET=rows\n');
      if (owner) writeFileSync(join(root, name, 'owner.json'), JSON.stringify(owner));
      if (oldMs) {
        const t = new Date(Date.now() - oldMs);
        utimesSync(join(root, name), t, t);
      }
    };
    draft('.tmp-20200101T000000000Z-dead', { pid: dead, hostname: hostname() });
    draft('.tmp-20200101T000000000Z-0old', undefined, 3_600_000); // an older version's draft, an hour old
    draft('.tmp-20200101T000000000Z-live', { pid: process.pid, hostname: hostname() }); // this test runner: alive
    draft('.tmp-20200101T000000000Z-else', { pid: dead, hostname: 'another-host.invalid' }); // cannot be judged here
    draft('.tmp-20200101T000000000Z-0new'); // no owner yet, just created: may be starting

    const r = await p.run(['migrate', 'rollback', '--list']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /note: removed 2 abandoned checkpoint draft\(s\)/);
    const left = p.checkpoints().filter((n) => n.startsWith('.tmp-'));
    assert.deepEqual(left, ['.tmp-20200101T000000000Z-0new', '.tmp-20200101T000000000Z-else', '.tmp-20200101T000000000Z-live']);

    // a migration opens the store too
    draft('.tmp-20200101T000000000Z-dea2', { pid: dead, hostname: hostname() });
    p.write('.env.local', `${LOCAL}RUN=${++counter}\n`);
    const m = await p.run(['migrate', 'local', 'staging', '--config-only', '--force']);
    assert.equal(m.code, 0, m.stderr);
    assert.match(m.stderr, /note: removed 1 abandoned checkpoint draft\(s\).*\.tmp-20200101T000000000Z-dea2/);
    assert.equal(p.exists('.nself/migrations/.tmp-20200101T000000000Z-dea2'), false);
    assert.equal(p.exists('.nself/migrations/.tmp-20200101T000000000Z-live'), true);
    // a committed checkpoint carries no owner record
    for (const id of p.checkpoints().filter((n) => !n.startsWith('.'))) assert.equal(p.exists(`.nself/migrations/${id}/owner.json`), false);
  });
});

describe('listing and picking checkpoints', () => {
  test('--list shows every checkpoint newest first, human and JSON, marking what a rollback undoes per target', async () => {
    const p = project({ '.env.prod': PROD });
    const a = await migrate(p); // staging, superseded by b
    const b = await migrate(p); // staging, rolled back below
    const c = await migrate(p, 'prod'); // prod
    const d = await migrate(p); // staging, newest
    const rb = await p.run(['migrate', 'rollback', d, '--force']);
    assert.equal(rb.code, 0, rb.stderr);
    // now: d rolled back; the newest applied of staging is b, of prod is c

    const { doc } = await listJson(p);
    assert.equal(doc.kind, 'checkpoints');
    assert.deepEqual(doc.skipped, []);
    assert.deepEqual(
      doc.checkpoints.map((x: any) => [x.id, x.source, x.target, x.status, x.latest]),
      [
        [d, 'local', 'staging', 'rolled_back', false],
        [c, 'local', 'prod', 'applied', true],
        [b, 'local', 'staging', 'applied', true],
        [a, 'local', 'staging', 'applied', false],
      ],
    );
    for (const x of doc.checkpoints) {
      assert.deepEqual(x.components, ['config']);
      assert.match(x.created_at, /^\d{4}-\d\d-\d\dT/);
      assert.match(x.applied_at, /^\d{4}-\d\d-\d\dT/);
    }
    assert.match(doc.checkpoints[0].rolled_back_at, /^\d{4}-\d\d-\d\dT/);
    assert.equal('rolled_back_at' in doc.checkpoints[1], false);

    const h = await p.run(['migrate', 'rollback', '--list']);
    assert.equal(h.code, 0, h.stderr);
    const lines = h.stdout.split('\n');
    assert.match(lines[0]!, /ID\s+CREATED \(UTC\)\s+MIGRATION\s+COMPONENTS\s+STATUS/);
    assert.match(lines[1]!, new RegExp(`^ +${d}\\s.*local → staging\\s+config\\s+rolled back \\d{4}-`));
    assert.match(lines[2]!, new RegExp(`^\\* +${c}\\s.*local → prod\\s+config\\s+applied$`));
    assert.match(lines[3]!, new RegExp(`^\\* +${b}\\s`));
    assert.match(lines[4]!, new RegExp(`^ +${a}\\s.*applied$`));
    assert.match(h.stdout, /undoes it/);
  });

  test('rollback <id>: only the newest applied checkpoint of its target, unless --force; prefixes; unknown ids', async () => {
    const p = project({ '.env.prod': PROD });
    const s0 = p.read('.env.staging');
    const a = await migrate(p);
    const afterA = p.read('.env.staging');
    const b = await migrate(p);
    const c = await migrate(p, 'prod'); // another target does not make b older
    const afterB = p.read('.env.staging');

    const old = await p.run(['migrate', 'rollback', a, '--json']);
    assert.equal(old.code, 3, old.stderr);
    assert.match(old.stderr, new RegExp(`not the latest migration of staging: ${b}.*roll back ${b} first`));
    assert.equal(JSON.parse(old.stdout).error.code, 'checkpoint_not_latest');
    assert.equal(p.read('.env.staging'), afterB);

    // the dry run says the same and changes nothing
    const dry = await p.run(['migrate', 'rollback', a, '--dry-run']);
    assert.equal(dry.code, 3, dry.stderr);

    const unknown = await p.run(['migrate', 'rollback', 'nope']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no checkpoint "nope"/);
    assert.match(unknown.stderr, /rollback --list/);

    const ambiguous = await p.run(['migrate', 'rollback', a.slice(0, 4), '--force']);
    assert.equal(ambiguous.code, 1);
    assert.match(ambiguous.stderr, /matches 3 checkpoints/);

    // the newest of staging by a unique prefix, then a is the newest applied one: no --force needed
    const rbB = await p.run(['migrate', 'rollback', b.slice(0, -2), '--force']);
    assert.equal(rbB.code, 0, rbB.stderr);
    assert.equal(p.read('.env.staging'), afterA);
    const again = await p.run(['migrate', 'rollback', b, '--force']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already rolled back/);
    const rbA = await p.run(['migrate', 'rollback', a, '--force']);
    assert.equal(rbA.code, 0, rbA.stderr);
    assert.equal(p.read('.env.staging'), s0);
    assert.equal(readManifest(p, c).status, 'applied');
  });

  test('rollback <older id> --force restores that older state', async () => {
    const p = project();
    const s0 = p.read('.env.staging');
    const a = await migrate(p);
    const b = await migrate(p);
    const r = await p.run(['migrate', 'rollback', a, '--force']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`note: --force: rolling back ${a} past 1 newer applied checkpoint\\(s\\) of staging \\(${b}\\)`));
    assert.equal(p.read('.env.staging'), s0);
    assert.equal(readManifest(p, a).status, 'rolled_back');
  });

  test('usage: --list with an id or --dry-run, two ids, --list elsewhere', async () => {
    const p = project();
    for (const [args, why] of [
      [['rollback', '--list', 'abc'], /--list cannot be combined with a checkpoint id/],
      [['rollback', '--list', '--dry-run'], /--list cannot be combined with --dry-run/],
      [['rollback', 'a', 'b'], /rollback takes at most one checkpoint id/],
      [['local', 'staging', '--list'], /--list only applies to `nself migrate rollback`/],
      [['diff', 'local', 'staging', '--keep', '3'], /--keep only applies to a migration/],
    ] as const) {
      const r = await p.run(['migrate', ...args]);
      assert.equal(r.code, 64, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, why);
    }
    const help = await p.run(['migrate', '--help']);
    assert.match(help.stdout, /rollback \[<id>\]/);
    assert.match(help.stdout, /--keep <n>/);
  });

  test('stray and damaged folders are skipped with a notice, never fatal; a damaged newer one needs --force', async () => {
    const p = project();
    const s0 = p.read('.env.staging');
    const a = await migrate(p);
    mkdirSync(join(p.dir, '.nself', 'migrations', 'notes')); // no manifest
    mkdirSync(join(p.dir, '.nself', 'migrations', '20000101T000000000Z-0000')); // older, no manifest
    const older = '20000102T000000000Z-0bad';
    mkdirSync(join(p.dir, '.nself', 'migrations', older));
    writeFileSync(join(p.dir, '.nself', 'migrations', older, 'manifest.json'), '{ not json');

    const { doc, stderr } = await listJson(p);
    assert.deepEqual(doc.checkpoints.map((x: any) => x.id), [a]);
    assert.deepEqual(
      doc.skipped.map((s: any) => s.name),
      ['notes', older, '20000101T000000000Z-0000'],
    );
    assert.match(doc.skipped[1].reason, /not valid JSON/);
    assert.match(doc.skipped[0].reason, /no manifest\.json/);
    assert.match(stderr, /note: skipped \.nself\/migrations\/notes: no manifest\.json/);

    // a damaged folder newer than the pick may have been a migration of the same target: refused unless --force
    const newer = '29991231T000000000Z-0bad';
    cpSync(join(p.dir, '.nself', 'migrations', a), join(p.dir, '.nself', 'migrations', newer), { recursive: true });
    writeFileSync(join(p.dir, '.nself', 'migrations', newer, 'manifest.json'), '{ "truncated');
    const refused = await p.run(['migrate', 'rollback', '--force', '--dry-run']);
    assert.equal(refused.code, 0, refused.stderr); // --force accepts it, with a notice
    assert.match(refused.stderr, /note: --force: rolling back .* although the newer checkpoint folder 29991231T000000000Z-0bad is damaged/);
    const r3 = await p.run(['migrate', 'rollback', '--dry-run']);
    assert.equal(r3.code, 3, r3.stderr);
    assert.match(r3.stderr, /checkpoint 29991231T000000000Z-0bad is corrupt: .*; it is newer than \S+ and may be a migration of staging/);
    rmSync(join(p.dir, '.nself', 'migrations', newer), { recursive: true });

    const rb = await p.run(['migrate', 'rollback', '--force']);
    assert.equal(rb.code, 0, rb.stderr);
    assert.match(rb.stderr, /note: skipped/);
    assert.equal(p.read('.env.staging'), s0);
  });

  test('a failed rollback leaves the checkpoint applied, ready for a retry', async () => {
    const p = project({ '.environments/staging/.env.secrets': 'STAGING_TOKEN=t0k3n\n' });
    const s0 = p.read('.env.staging');
    const a = await migrate(p);
    const migrated = p.read('.env.staging');
    // the restore cannot replace the file: it became a directory
    rmSync(join(p.dir, '.env.staging'));
    mkdirSync(join(p.dir, '.env.staging'));
    writeFileSync(join(p.dir, '.env.staging', 'x'), 'x');
    const r = await p.run(['migrate', 'rollback', '--force', '--json']);
    assert.equal(r.code, 1, r.stderr);
    const failed = JSON.parse(r.stdout).steps.find((s: any) => s.status === 'failed');
    assert.equal(failed.name, 'restore', r.stdout);
    const { doc } = await listJson(p);
    assert.deepEqual(doc.checkpoints.map((x: any) => [x.id, x.status, x.latest]), [[a, 'applied', true]]);
    rmSync(join(p.dir, '.env.staging'), { recursive: true });
    writeFileSync(join(p.dir, '.env.staging'), migrated);
    const retry = await p.run(['migrate', 'rollback', '--force']);
    assert.equal(retry.code, 0, retry.stderr);
    assert.equal(p.read('.env.staging'), s0);
  });
});

describe('retention', () => {
  test('--keep n keeps the n newest checkpoints of the target; never a pending one, never other targets', async () => {
    const p = project({ '.env.prod': PROD });
    const a = await migrate(p);
    const b = await migrate(p);
    const pending = await migrate(p);
    const m = readManifest(p, pending);
    m.status = 'pending';
    delete m.applied_at;
    writeManifest(p, pending, m);
    const prod = await migrate(p, 'prod');
    const c = await migrate(p);
    assert.deepEqual(p.checkpoints(), [a, b, pending, prod, c].sort());

    p.write('.env.local', `${LOCAL}RUN=${++counter}\n`);
    const r = await p.run(['migrate', 'local', 'staging', '--config-only', '--force', '--keep', '2']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /note: removed 2 old checkpoint\(s\) of staging \(keeping 2\)/);
    const d = p.checkpoints().find((x) => ![a, b, pending, prod, c].includes(x))!;
    assert.deepEqual(p.checkpoints(), [pending, prod, c, d].sort());

    for (const bad of ['0', 'x', '-1', '1.5']) {
      const u = await p.run(['migrate', 'local', 'staging', '--config-only', '--force', `--keep=${bad}`]);
      assert.equal(u.code, 64, `--keep ${bad}: ${u.stderr}`);
    }
  });

  test('by default the newest 20 per target are kept', async () => {
    const p = project();
    const first = await migrate(p);
    const root = join(p.dir, '.nself', 'migrations');
    // 21 older checkpoints of staging, made from the real one
    for (let i = 0; i < 21; i++) {
      const id = `20000101T0000000${String(i).padStart(2, '0')}Z-00${String(i).padStart(2, '0')}`;
      cpSync(join(root, first), join(root, id), { recursive: true });
      const m = readManifest(p, id);
      m.id = id;
      m.status = i % 2 ? 'rolled_back' : 'applied';
      writeManifest(p, id, m);
    }
    assert.equal(p.checkpoints().length, 22);
    await migrate(p);
    assert.equal(p.checkpoints().length, 20);
    assert.ok(p.checkpoints().includes(first));
    assert.equal(p.checkpoints().includes('20000101T000000000Z-0000'), false);
  });
});

describe('manifests are checked, not trusted', () => {
  /** A migrated project whose checkpoint's config entry is rewritten by `edit` (manifest re-hashed). */
  async function tampered(edit: (entry: any, p: Project) => void, rehash = true) {
    const p = project();
    const id = await migrate(p);
    const m = readManifest(p, id);
    edit(m.backup.config[0], p);
    writeManifest(p, id, m, rehash);
    return { p, id, migrated: p.read('.env.staging') };
  }
  function victim(p: Project): string {
    const dir = join(dirname(p.dir), `${basename(p.dir)}-outside`);
    mkdirSync(dir, { recursive: true });
    extra.push(dir);
    writeFileSync(join(dir, 'victim.txt'), 'precious\n');
    return join(dir, 'victim.txt');
  }

  const cases: [string, (e: any, p: Project, v: string) => void, RegExp][] = [
    ['a ../ path written to', (e, p) => (e.path = `../${basename(p.dir)}-outside/victim.txt`), /contains a "\.\." segment/],
    ['a ../ path deleted', (e, p) => Object.assign(e, { path: `../${basename(p.dir)}-outside/victim.txt`, existed: false }), /contains a "\.\." segment/],
    ['an absolute path', (e, _p, v) => Object.assign(e, { path: v, existed: false }), /is an absolute path/],
    [
      'a path through a symlinked folder',
      (e, p, v) => {
        symlinkSync(dirname(v), join(p.dir, 'linked'));
        Object.assign(e, { path: 'linked/victim.txt', existed: false });
      },
      /leaves its directory through a symbolic link/,
    ],
    ['a NUL byte', (e) => (e.path = '.env.staging\u0000x'), /contains a NUL byte/],
    ['a copy outside the checkpoint', (e) => (e.copy = '../../../../.env.local'), /backup\.config\[0\]\.copy/],
  ];
  for (const [name, edit, why] of cases) {
    test(`rollback refuses ${name} (checkpoint_unsafe_path), nothing written`, async () => {
      let v = '';
      const { p, migrated } = await tampered((e, proj) => {
        v = victim(proj);
        edit(e, proj, v);
      });
      const r = await p.run(['migrate', 'rollback', '--force', '--json']);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(JSON.parse(r.stdout).error.code, 'checkpoint_unsafe_path');
      const first = r.stderr.split('\n')[0]!;
      assert.match(first, /^error: checkpoint \S+: backup\.config\[0\]\.(path|copy) "/);
      assert.match(first, why);
      assert.equal(readFileSync(v, 'utf8'), 'precious\n');
      assert.equal(p.read('.env.staging'), migrated);
      assert.equal(p.read('.env.local').startsWith(LOCAL), true);
    });
  }

  test('a manifest that fails its own SHA-256 is refused (checkpoint_corrupt), also by id; listed as skipped', async () => {
    const { p, id, migrated } = await tampered((e) => (e.mode = 0o777), false);
    const r = await p.run(['migrate', 'rollback', '--force', '--json']);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(JSON.parse(r.stdout).error.code, 'checkpoint_corrupt');
    assert.match(r.stderr, /fails its SHA-256 self-check/);
    const byId = await p.run(['migrate', 'rollback', id, '--force']);
    assert.equal(byId.code, 1);
    assert.match(byId.stderr, /fails its SHA-256 self-check/);
    assert.equal(p.read('.env.staging'), migrated);
    const { doc } = await listJson(p);
    assert.deepEqual(doc.checkpoints, []);
    assert.deepEqual(doc.skipped.map((s: any) => s.name), [id]);
  });

  test('a manifest of the older format (no self-checksum) is accepted with a notice', async () => {
    const p = project();
    const s0 = p.read('.env.staging');
    const id = await migrate(p);
    const m = readManifest(p, id);
    assert.equal(m.format, 2);
    assert.match(m.manifest_sha256, /^[0-9a-f]{64}$/);
    delete m.manifest_sha256;
    m.format = 1;
    writeManifest(p, id, m, false);
    const r = await p.run(['migrate', 'rollback', '--force']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /note: checkpoint \S+ was written by an older version \(manifest format 1\)/);
    assert.equal(p.read('.env.staging'), s0);
    const after = readManifest(p, id);
    assert.equal(after.status, 'rolled_back');
    assert.equal(after.format, 2); // rewritten with its checksum
  });
});

describe('symbolic links', () => {
  test('a symlinked env file and server.json stay links through migrate and rollback; the linked files change', async () => {
    const server = JSON.stringify({ name: 'staging', host: '', backup: { enabled: false } }, null, 2) + '\n';
    const p = project({
      'shared/staging.env': STAGING,
      'shared/staging-server.json': server,
      '.environments/local/server.json': JSON.stringify({ name: 'local', host: '', backup: { enabled: true } }, null, 2) + '\n',
    });
    rmSync(join(p.dir, '.env.staging'));
    symlinkSync('shared/staging.env', join(p.dir, '.env.staging'));
    mkdirSync(join(p.dir, '.environments', 'staging'), { recursive: true });
    symlinkSync('../../shared/staging-server.json', join(p.dir, '.environments', 'staging', 'server.json'));

    const id = await migrate(p);
    assert.ok(lstatSync(join(p.dir, '.env.staging')).isSymbolicLink());
    assert.ok(lstatSync(join(p.dir, '.environments/staging/server.json')).isSymbolicLink());
    assert.match(p.read('shared/staging.env'), /^APP_NAME=shop$/m);
    assert.equal(JSON.parse(p.read('shared/staging-server.json')).backup.enabled, true);
    const entries = readManifest(p, id).backup.config;
    assert.deepEqual(entries.map((e: any) => [e.path, e.link]), [
      ['.env.staging', 'shared/staging.env'],
      ['.environments/staging/server.json', '../../shared/staging-server.json'],
    ]);

    const rb = await p.run(['migrate', 'rollback', '--force']);
    assert.equal(rb.code, 0, rb.stderr);
    assert.ok(lstatSync(join(p.dir, '.env.staging')).isSymbolicLink());
    assert.equal(readlinkSync(join(p.dir, '.env.staging')), 'shared/staging.env');
    assert.ok(lstatSync(join(p.dir, '.environments/staging/server.json')).isSymbolicLink());
    assert.equal(p.read('shared/staging.env'), STAGING);
    assert.equal(p.read('shared/staging-server.json'), server);
  });

  test('a dangling link as own file: the migration creates the linked file, rollback removes it and keeps the link', async () => {
    const p = project();
    rmSync(join(p.dir, '.env.staging'));
    mkdirSync(join(p.dir, 'shared'));
    symlinkSync('shared/staging.env', join(p.dir, '.env.staging'));
    p.write('.environments/staging/.env.secrets', 'STAGING_TOKEN=t0k3n\n');
    await migrate(p);
    assert.ok(lstatSync(join(p.dir, '.env.staging')).isSymbolicLink());
    assert.match(p.read('shared/staging.env'), /^APP_NAME=shop$/m);
    const rb = await p.run(['migrate', 'rollback', '--force']);
    assert.equal(rb.code, 0, rb.stderr);
    assert.ok(lstatSync(join(p.dir, '.env.staging')).isSymbolicLink());
    assert.equal(existsSync(join(p.dir, 'shared', 'staging.env')), false);
  });

  test('rollback never deletes through a link outside the project', async () => {
    const p = project();
    const outside = join(dirname(p.dir), `${basename(p.dir)}-shared`);
    mkdirSync(outside);
    extra.push(outside);
    rmSync(join(p.dir, '.env.staging'));
    symlinkSync(join(outside, 'staging.env'), join(p.dir, '.env.staging'));
    p.write('.environments/staging/.env.secrets', 'STAGING_TOKEN=t0k3n\n');
    const id = await migrate(p);
    assert.match(readFileSync(join(outside, 'staging.env'), 'utf8'), /^APP_NAME=shop$/m);
    const rb = await p.run(['migrate', 'rollback', '--force']);
    assert.equal(rb.code, 1, rb.stderr);
    assert.match(rb.stderr, /outside the project: rollback does not delete through it/);
    assert.ok(existsSync(join(outside, 'staging.env')));
    assert.equal(readManifest(p, id).status, 'applied');
  });
});
