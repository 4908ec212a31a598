/**
 * Independent checks of "the target ends exactly like the source": pg_dump (not our own inspector) and the
 * rows themselves, both insensitive to column order (which a migration does not promise to keep).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import pg from 'pg';

/** `pg_dump --schema-only --no-owner` of a database URL, normalised with normaliseDump. */
export function schemaDump(url: string): string {
  return normaliseDump(execFileSync('pg_dump', ['--schema-only', '--no-owner', '-d', url], { encoding: 'utf8', maxBuffer: 256 << 20 }));
}

/** Drop comments/SET lines, sort the column lines of each CREATE TABLE, sort statements. */
export function normaliseDump(dump: string): string {
  const lines = dump
    .split('\n')
    .filter((l) => !l.startsWith('--') && l.trim() !== '' && !/^SET |^SELECT pg_catalog.set_config/.test(l) && !/^\\(un)?restrict /.test(l));
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    out.push(l);
    if (/^CREATE (UNLOGGED )?TABLE .*\($/.test(l)) {
      const cols: string[] = [];
      let j = i + 1;
      while (j < lines.length && !/^\)/.test(lines[j]!)) cols.push(lines[j++]!.replace(/,$/, ''));
      out.push(...cols.sort());
      i = j - 1;
    }
  }
  // (the last statement keeps its ';': strip it from every block, whichever comes last)
  const blocks = out.join('\n').split(/;\n/).map((b) => b.trim().replace(/;$/, '')).filter(Boolean);
  return blocks.sort().join(';\n');
}

/**
 * Every user table's rows as canonical JSON (jsonb sorts keys, rows sorted by their text), plus every
 * sequence's state: equal output means equal contents whatever the column order.
 */
export async function contents(url: string): Promise<Record<string, string>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const out: Record<string, string> = {};
    const tables = await c.query<{ t: string }>(
      `SELECT format('%I.%I', n.nspname, c.relname) AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1`,
    );
    for (const { t } of tables.rows) {
      const r = await c.query<{ j: string | null }>(`SELECT string_agg(j, E'\\n' ORDER BY j) AS j FROM (SELECT to_jsonb(x)::text AS j FROM ${t} x) s`);
      out[t] = r.rows[0]!.j ?? '';
    }
    const seqs = await c.query<{ s: string }>(
      `SELECT format('%I.%I', schemaname, sequencename) AS s FROM pg_sequences WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`,
    );
    for (const { s } of seqs.rows) {
      const r = await c.query<{ v: string }>(`SELECT last_value || ':' || is_called AS v FROM ${s}`);
      out[`sequence ${s}`] = r.rows[0]!.v;
    }
    return out;
  } finally {
    await c.end();
  }
}

/**
 * Wait until two databases hold the same rows (contents(), without the tables in `except`), polling every 100 ms;
 * after `ms` fail with the difference.
 */
export async function waitSameContents(sourceUrl: string, targetUrl: string, opts: { ms?: number; except?: string[] } = {}): Promise<void> {
  const end = Date.now() + (opts.ms ?? 20_000);
  for (;;) {
    const [a, b] = await Promise.all([contents(sourceUrl), contents(targetUrl)]);
    for (const t of opts.except ?? []) {
      delete a[t];
      delete b[t];
    }
    if (JSON.stringify(a) === JSON.stringify(b)) return;
    if (Date.now() > end) assert.deepEqual(b, a, 'the target follows the source');
    await new Promise((r) => setTimeout(r, 100));
  }
}
