/**
 * Tables known to be equal, so that comparing them again costs two cheap scans instead of two checksums.
 *
 * When a run finds a source table and a target table equal (same count and checksum) or makes them equal (a copy it
 * verified and committed), it records the state of both: each one's row count and row versions (session.ts:
 * the sum of the hashes of every row's xmin, which changes whenever a row is inserted, updated or deleted, and
 * only then). A later comparison of the same pair that finds both sides still in those states knows they are still
 * equal without reading a value. Anything else — a write on either side since, a different column list or type,
 * a table dropped and created again, another database behind the environment — changes the versions, and the
 * tables are checksummed as before. So the record can only save work, never decide a comparison wrongly:
 *  - Only columns of built-in types count (pg_catalog, not reg*): the text of an enum, a domain or a composite
 *    can change without any row being written (ALTER TYPE … RENAME VALUE), a built-in type's cannot.
 *  - A record is written only after the run that establishes it has committed (a copy) or finished (a compare).
 *
 * Stored in `.nself/data-versions.json` (0600), per source → target pair of environments, a table per key.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureStateDir, PRIVATE_FILE_MODE, writeFileAtomic } from '../util/fs.js';
import type { ColumnInfo, TableInfo } from './catalog.js';
import type { DataPlan } from './types.js';

/** A table's state: its row count and row versions (session.ts checksums with versions). */
export interface TableState { rows: number; versions: string }

/** Two table states known to hold the same rows, over `columns` (columnsSignature). */
export interface KnownPair { columns: string; source: TableState; target: TableState }

/** Known pairs of one source → target, by table id (relationKey). */
export type KnownTables = Map<string, KnownPair>;

const FILE = 'data-versions.json';

interface StoredFile { format: 1; pairs: Record<string, Record<string, KnownPair>> }

const pairKey = (source: string, target: string) => `${source} -> ${target}`;

/**
 * The compared columns with their types, when row versions can stand for their contents: every column's type is
 * built in (pg_catalog) and not an OID alias (regclass, regtype, … print names that change without a write).
 * undefined otherwise.
 */
export function columnsSignature(table: TableInfo, columns: string[]): string | undefined {
  const byName = new Map<string, ColumnInfo>(table.columns.map((c) => [c.name, c]));
  const parts: string[] = [];
  for (const name of columns) {
    const c = byName.get(name);
    if (!c || !c.typeId.startsWith('pg_catalog.') || /^pg_catalog\._?reg/.test(c.typeId)) return undefined;
    parts.push(`${JSON.stringify(name)} ${c.typeId}`);
  }
  return parts.join(', ');
}

function validState(x: unknown): x is TableState {
  const s = x as TableState;
  return !!s && typeof s === 'object' && Number.isSafeInteger(s.rows) && s.rows >= 0 && typeof s.versions === 'string' && /^-?\d+$/.test(s.versions);
}

function readFile(projectDir: string): StoredFile {
  try {
    const f = JSON.parse(readFileSync(join(projectDir, '.nself', FILE), 'utf8')) as StoredFile;
    if (f && f.format === 1 && f.pairs && typeof f.pairs === 'object') return f;
  } catch {
    // missing or damaged: it only saves work, so start afresh
  }
  return { format: 1, pairs: {} };
}

/** The pairs known for source → target (an unreadable file or entry is ignored: it only ever saves work). */
export function readKnown(projectDir: string, source: string, target: string): KnownTables {
  const out: KnownTables = new Map();
  for (const [id, p] of Object.entries(readFile(projectDir).pairs[pairKey(source, target)] ?? {})) {
    if (p && typeof p.columns === 'string' && validState(p.source) && validState(p.target)) out.set(id, p);
  }
  return out;
}

/** Add (or replace) known pairs of source → target; the other pairs and environments are kept. */
export async function recordKnown(projectDir: string, source: string, target: string, pairs: KnownTables): Promise<void> {
  if (pairs.size === 0) return;
  const dir = ensureStateDir(projectDir);
  const f = readFile(projectDir);
  const mine = (f.pairs[pairKey(source, target)] ??= {});
  for (const [id, p] of pairs) mine[id] = p;
  await writeFileAtomic(join(dir, FILE), `${JSON.stringify(f)}\n`, PRIVATE_FILE_MODE, { replaceLink: true });
}

/**
 * The pairs a plan found equal by checksum, with the states both sides were in (planData fills it): what the
 * caller records once its run has finished. Kept beside the plan, not in it, so that it never reaches the output.
 */
export const observedEqual = new WeakMap<DataPlan, KnownTables>();
