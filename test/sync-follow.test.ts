/**
 * sync --watch without a database (src/sync/follow.ts): the file watcher sees a change, a file created where
 * none was, one in a folder created later (only the stat poll can see it), a removal, nothing when nothing changed;
 * the resync state file reads back what was written, and a damaged one as "every table".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFiles, readResyncState, resyncStateFile, watchFiles, writeResyncState } from '../src/sync/follow.ts';

async function until(pred: () => boolean, what: string, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) assert.fail(`${what}: not seen`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('watchFiles: changes, creations (also in a folder made later) and removals are seen; a quiet file is not', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nself-follow-'));
  const a = join(dir, '.env.local');
  const b = join(dir, '.env');
  const c = join(dir, '.environments', 'local', 'server.json');
  writeFileSync(a, 'A=1\n');
  let n = 0;
  const w = watchFiles([a, b, c], () => n++, 100);
  try {
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(n, 0, 'nothing changed, nothing reported');
    writeFileSync(a, 'A=2\n');
    await until(() => n === 1, 'a change');
    writeFileSync(b, 'B=1\n');
    await until(() => n === 2, 'a file created');
    mkdirSync(join(dir, '.environments', 'local'), { recursive: true });
    writeFileSync(c, '{}');
    await until(() => n === 3, 'a file in a folder created after the watch started');
    unlinkSync(b);
    await until(() => n === 4, 'a removal');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(n, 4, 'each change reported once');
  } finally {
    w.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('configFiles: the cascade and server.json of the canonical environment', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nself-follow-'));
  try {
    mkdirSync(join(dir, '.environments', 'staging'), { recursive: true });
    assert.deepEqual(configFiles(dir, 'dev').map((f) => f.slice(dir.length + 1)), ['.env.dev', '.env.local', '.env', '.environments/local/server.json']);
    assert.deepEqual(configFiles(dir, 'staging').map((f) => f.slice(dir.length + 1)), ['.env.dev', '.env.staging', '.environments/staging/.env', '.environments/staging/.env.secrets', '.environments/staging/server.json']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('resync state: written, read back, removed when empty; a damaged file means every table', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nself-follow-'));
  try {
    const file = resyncStateFile(dir, 'nself_abc');
    assert.equal(readResyncState(file), undefined, 'no file: nothing to redo');
    await writeResyncState(file, { tables: [{ schema: 'public', name: 'a"b', lsn: '0/16B3748' }] });
    assert.deepEqual(readResyncState(file), { tables: [{ schema: 'public', name: 'a"b', lsn: '0/16B3748' }] });
    await writeResyncState(file, { all: true, tables: [] });
    assert.deepEqual(readResyncState(file), { all: true, tables: [] });
    for (const text of ['{', '{"tables":[{"schema":"public","name":"t","lsn":"0/1; DROP"}]}', '{"tables":"x"}']) {
      writeFileSync(file, text);
      assert.deepEqual(readResyncState(file), { all: true, tables: [] }, text);
    }
    await writeResyncState(file, { tables: [] });
    assert.equal(readResyncState(file), undefined, 'nothing left: the file is gone');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lag percentiles: nearest rank over the last minute, older entries dropped', async () => {
  const { lagPercentiles } = await import('../src/sync/watch.ts');
  const now = 1_000_000;
  assert.equal(lagPercentiles([], now), undefined);
  const lags: Array<[number, number]> = [[now - 61_000, 99_999], ...Array.from({ length: 100 }, (_, i) => [now - 1000, i + 1] as [number, number])];
  assert.deepEqual(lagPercentiles(lags, now), { p50: 50, p99: 99 });
  assert.equal(lags.length, 100, 'the entry older than a minute is gone');
  assert.deepEqual(lagPercentiles([[now, 7]], now), { p50: 7, p99: 7 });
  assert.equal(lagPercentiles([[now - 60_001, 7]], now), undefined);
});
