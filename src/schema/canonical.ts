/**
 * Meaning, not text. PostgreSQL's deparser is not idempotent (an object created from its own rendering can render
 * differently: `(ARRAY['a'::character varying])::text[]` comes back as `ARRAY[('a'::character varying)::text]`)
 * and not stable across versions. So before the pure planner compares two models, every expression-bearing
 * attribute that differs as text between a source fact and the target fact of the same identity is judged by the
 * target server: both texts are created on the target in throwaway objects (session temp schema, `pg_temp`),
 * read back with the same `pg_get_*` function as inspection, and the transaction (or savepoint) is rolled back.
 * When the target renders them the same (the source's text as the target's own text, or both the same way), they
 * mean the same, and the source's attribute is rewritten to the target's text: the planner then sees no change.
 * When the source's text cannot be created on the target (a column, type or function it needs is missing there,
 * or the target server does not know the syntax), it counts as different, as before.
 *
 * Everything is created in one round trip: a DO block runs each statement in its own exception block (a
 * subtransaction), so one failure does not stop the others; then one query reads every rendering back.
 */
import type pg from 'pg';
import { MigrateError } from '../errors.js';
import { viewDefForComparison } from './versions.js';
import { quoteIdent } from '../pg/quote.js';
import type { AttrValue, Fact, SchemaModel } from './model.js';

export interface CanonicalOptions {
  /**
   * The client is inside a transaction that must keep its work (the migration's, at verify): the throwaway objects
   * are created inside a savepoint that is rolled back. Otherwise (a plain connection): BEGIN … ROLLBACK.
   */
  inTransaction: boolean;
}

export interface CanonicalResult {
  /** The source model, with every attribute that means the same on the target rewritten to the target's text. */
  model: SchemaModel;
  /** Attributes that differed as text and were judged by the target. */
  compared: number;
  /** Of those, how many mean the same (rewritten). */
  same: number;
  /** Set when the target could not be asked (read-only server, no TEMP privilege, no PL/pgSQL): compared as text. */
  unavailable?: string;
}

/** The session setting that carries the statements into the DO block (a bind parameter, never spliced into SQL). */
const SETTING = 'nself.canonicalize';
const ID = String.raw`(?:"(?:[^"]|"")*"|[a-z_][a-z0-9_$]*)`;
const INDEX_RE = new RegExp(String.raw`^(CREATE (?:UNIQUE )?INDEX )(${ID})( ON (?:ONLY )?)(${ID}\.${ID})( USING [\s\S]*)$`);
const TRIGGER_RE = new RegExp(String.raw`^(CREATE (?:CONSTRAINT )?TRIGGER )(${ID})((?:"(?:[^"]|"")*"|[^"])*? ON )(${ID}\.${ID})( [\s\S]*)$`);

interface Split { head: string; name: string; on: string; table: string; tail: string }
function split(re: RegExp, text: string): Split | undefined {
  const m = re.exec(text);
  return m ? { head: m[1]!, name: m[2]!, on: m[3]!, table: m[4]!, tail: m[5]! } : undefined;
}

/** How a throwaway object is created from a text, and how its rendering becomes comparable with the original. */
interface Job {
  fact: Fact;
  target: Fact;
  attr: string;
  /** The frame (a throwaway table, view or domain) the expression needs, by source fact id. */
  frame?: string;
  create(text: string, name: string, frame: string): string | undefined;
  /** The rendering read back → the attribute's text (own names restored). */
  restore?(rendered: string, original: string): string | undefined;
  /** The text to create from, when it is not the compared attribute (a view: the server's own text, meta.def). */
  text?(f: Fact): string;
}

interface Frame { name: string; sql: string }

/** The expression-bearing attributes jobsFor judges, by kind (every `add(…)` of its switch, and nothing else). */
const EXPRESSION_ATTRS: Record<string, readonly string[]> = {
  view: ['def'], matview: ['def'], constraint: ['def'], domain_constraint: ['def'], domain: ['default'], index: ['def'],
  trigger: ['def'], policy: ['qual', 'check'], default: ['expr'], column: ['generated'],
};

/** Which attributes carry expressions, and how each is recreated. */
function jobsFor(source: SchemaModel, target: SchemaModel): Job[] {
  const T = new Map(target.facts.map((f) => [f.id, f]));
  let S: Map<string, Fact> | undefined; // only a default's column is looked up: built when first needed
  const jobs: Job[] = [];
  const differs = (f: Fact, t: Fact, a: string) => typeof f.attrs[a] === 'string' && typeof t.attrs[a] === 'string' && f.attrs[a] !== t.attrs[a];
  const trim = (s: string) => s.replace(/;\s*$/, '');
  for (const f of source.facts) {
    const attrs = EXPRESSION_ATTRS[f.kind];
    if (!attrs) continue;
    const t = T.get(f.id);
    if (!t || t.kind !== f.kind) continue;
    let any = false;
    for (const a of attrs) if (differs(f, t, a)) any = true;
    if (!any) continue; // the common case: nothing to judge, nothing allocated
    const add = (attr: string, frame: string | undefined, create: Job['create'], restore?: Job['restore'], text?: Job['text']) => {
      if (differs(f, t, attr)) jobs.push({ fact: f, target: t, attr, frame, create, restore, text });
    };
    switch (f.kind) {
      case 'view':
      case 'matview':
        // a plain view renders a query exactly as a materialized one does, and costs nothing to create
        // created from the server's own text (meta.def); compared in the form that reads the same on 13–18
        add('def', undefined, (text, name) => `CREATE VIEW pg_temp.${name} AS ${trim(text)}`, (rendered) => viewDefForComparison(trim(rendered)), (x) => String(x.meta.def ?? x.attrs.def));
        break;
      case 'constraint':
        if (f.attrs.type === 'c' || f.attrs.type === 'x') add('def', f.parent, (text, name, frame) => `ALTER TABLE ${frame} ADD CONSTRAINT ${name} ${text}`);
        break;
      case 'domain_constraint':
        add('def', f.parent, (text, name, frame) => `ALTER DOMAIN ${frame} ADD CONSTRAINT ${name} ${text}`);
        break;
      case 'domain':
        add('default', undefined, (text, name) => `CREATE DOMAIN pg_temp.${name} AS ${String(f.attrs.basetype)}${f.attrs.collation ? ` COLLATE ${String(f.attrs.collation)}` : ''} DEFAULT ${text}`);
        break;
      case 'index':
        add('def', f.parent, (text, name, frame) => {
          const p = split(INDEX_RE, text);
          return p && `${p.head}${name} ON ${frame}${p.tail}`;
        }, (rendered, original) => {
          const r = split(INDEX_RE, rendered);
          const o = split(INDEX_RE, original);
          return r && o && `${o.head}${o.name}${o.on}${o.table}${r.tail}`;
        });
        break;
      case 'trigger':
        add('def', f.parent, (text, name, frame) => {
          const p = split(TRIGGER_RE, text);
          return p && `${p.head}${name}${p.on}${frame}${p.tail}`;
        }, (rendered, original) => {
          const r = split(TRIGGER_RE, rendered);
          const o = split(TRIGGER_RE, original);
          return r && o && `${o.head}${o.name}${r.on}${o.table}${r.tail}`;
        });
        break;
      case 'policy':
        add('qual', f.parent, (text, name, frame) => `CREATE POLICY ${name} ON ${frame} USING (${text})`);
        add('check', f.parent, (text, name, frame) => `CREATE POLICY ${name} ON ${frame} WITH CHECK (${text})`);
        break;
      case 'default': {
        const col = f.parent ? (S ??= new Map(source.facts.map((x) => [x.id, x]))).get(f.parent) : undefined;
        if (col?.kind === 'column') add('expr', col.parent, (text, name, frame) => `ALTER TABLE ${frame} ADD COLUMN ${name} ${columnType(col)} DEFAULT ${text}`);
        break;
      }
      case 'column':
        add('generated', f.parent, (text, name, frame) => `ALTER TABLE ${frame} ADD COLUMN ${name} ${columnType(f)} GENERATED ALWAYS AS (${text}) STORED`);
        break;
    }
  }
  return jobs;
}

function columnType(col: Fact): string {
  return `${String(col.attrs.type)}${col.attrs.collation ? ` COLLATE ${String(col.attrs.collation)}` : ''}`;
}

/** `"name" type` (a view's or materialized view's column) → [name, type]. */
function splitColumn(c: string): [string, string] | undefined {
  const m = /^("(?:[^"]|"")*") ([\s\S]+)$/.exec(c);
  return m ? [m[1]!, m[2]!] : undefined;
}

/**
 * The throwaway object an expression needs around it, shaped like the source's: a table with the source's columns
 * (its own and those it inherits: partitions and inheritance children get their parents' columns), a view with the
 * columns of a view (INSTEAD OF triggers), a domain over the source's base type.
 */
function frameSql(S: Map<string, Fact>, kids: Map<string, Fact[]>, id: string, name: string): string | undefined {
  const f = S.get(id);
  if (!f) return undefined;
  if (f.kind === 'domain') return `CREATE DOMAIN pg_temp.${name} AS ${String(f.attrs.basetype)}${f.attrs.collation ? ` COLLATE ${String(f.attrs.collation)}` : ''}`;
  if (f.kind === 'matview' || f.kind === 'view') {
    const cols = (f.attrs.columns as string[]).map(splitColumn);
    if (cols.some((c) => !c)) return undefined;
    if (f.kind === 'matview') return `CREATE TABLE pg_temp.${name} (${cols.map((c) => `${c![0]} ${c![1]}`).join(', ')})`;
    return `CREATE VIEW pg_temp.${name} AS SELECT ${cols.length ? cols.map((c) => `NULL::${c![1]} AS ${c![0]}`).join(', ') : ''}`;
  }
  if (f.kind !== 'table') return undefined;
  const cols = new Map<string, string>();
  const seen = new Set<string>();
  const collect = (tid: string) => {
    if (seen.has(tid)) return;
    seen.add(tid);
    for (const x of kids.get(tid) ?? []) {
      if (x.kind === 'partition') collect(String(x.attrs.parent));
      if (x.kind === 'inherit') collect(`table:${String(x.meta.parent)}`);
    }
    for (const x of kids.get(tid) ?? []) if (x.kind === 'column' && !cols.has(String(x.meta.sql))) cols.set(String(x.meta.sql), columnType(x));
  };
  collect(id);
  return `CREATE TABLE pg_temp.${name} (${[...cols].map(([c, t]) => `${c} ${t}`).join(', ')})`;
}

/** Runs the statements, each in its own subtransaction (a failure only loses that one). The first must succeed. */
const RUN = `DO $nself$
DECLARE
  s text;
  first boolean := true;
BEGIN
  FOR s IN SELECT x FROM jsonb_array_elements_text(current_setting('${SETTING}')::jsonb) AS x LOOP
    IF first THEN
      EXECUTE s;
      first := false;
    ELSE
      BEGIN
        EXECUTE s;
      EXCEPTION WHEN OTHERS THEN
        NULL;
      END;
    END IF;
  END LOOP;
END
$nself$`;

/** Every rendering of the throwaway objects, with the same functions inspection uses. */
const READ = `select c.relname::text k, case c.relkind when 'v' then pg_get_viewdef(c.oid) else pg_get_indexdef(c.oid) end v
    from pg_class c where c.relnamespace = pg_my_temp_schema() and c.relkind in ('v', 'i')
  union all
  select co.conname::text, pg_get_constraintdef(co.oid) from pg_constraint co where co.connamespace = pg_my_temp_schema()
  union all
  select a.attname::text, pg_get_expr(d.adbin, d.adrelid)
    from pg_attrdef d join pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum join pg_class c on c.oid = d.adrelid
   where c.relnamespace = pg_my_temp_schema()
  union all
  select p.polname::text, coalesce(pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
    from pg_policy p join pg_class c on c.oid = p.polrelid where c.relnamespace = pg_my_temp_schema()
  union all
  select t.tgname::text, pg_get_triggerdef(t.oid) from pg_trigger t join pg_class c on c.oid = t.tgrelid
   where c.relnamespace = pg_my_temp_schema() and not t.tgisinternal
  union all
  select t.typname::text, pg_get_expr(t.typdefaultbin, 0) from pg_type t where t.typnamespace = pg_my_temp_schema() and t.typtype = 'd' and t.typdefaultbin is not null`;

/** How many attributes differ as text and would be judged by the target (0: no need to ask it). */
export function canonicalCandidates(source: SchemaModel, target: SchemaModel): number {
  return jobsFor(source, target).length;
}

/**
 * The source model as the target server means it: see the file comment. Leaves nothing behind: everything it
 * creates is temporary and inside a transaction or savepoint that it rolls back (a killed client's transaction
 * is rolled back by the server, and its temp schema goes with the session).
 */
export async function canonicalizeSource(client: pg.ClientBase, source: SchemaModel, target: SchemaModel, opts: CanonicalOptions): Promise<CanonicalResult> {
  const jobs = jobsFor(source, target);
  if (jobs.length === 0) return { model: source, compared: 0, same: 0 };
  const S = new Map(source.facts.map((f) => [f.id, f]));
  const kids = new Map<string, Fact[]>();
  for (const f of source.facts) if (f.parent !== undefined) (kids.get(f.parent) ?? kids.set(f.parent, []).get(f.parent)!).push(f);

  // statements: the probe, the frames, then two objects per job (the source's text, the target's text)
  let n = 0;
  const frames = new Map<string, Frame | null>();
  const statements = ['CREATE TABLE pg_temp.nself_probe ()'];
  const frameOf = (id: string): Frame | null => {
    let fr = frames.get(id);
    if (fr === undefined) {
      const name = `nself_f${++n}`;
      const sql = frameSql(S, kids, id, quoteIdent(name));
      fr = sql ? { name, sql } : null;
      frames.set(id, fr);
      if (sql) statements.push(sql);
    }
    return fr;
  };
  const planned: { job: Job; src?: string; tgt?: string }[] = [];
  for (const job of jobs) {
    const frame = job.frame === undefined ? undefined : frameOf(job.frame);
    if (frame === null) continue;
    const p: (typeof planned)[number] = { job };
    for (const side of ['src', 'tgt'] as const) {
      const of = side === 'src' ? job.fact : job.target;
      const text = job.text ? job.text(of) : String(of.attrs[job.attr]);
      const name = `nself_k${++n}`;
      const sql = job.create(text, quoteIdent(name), frame ? `pg_temp.${quoteIdent(frame.name)}` : '');
      if (!sql) continue;
      statements.push(sql);
      p[side] = name;
    }
    planned.push(p);
  }

  const sp = quoteIdent('nself_canonicalize');
  const begin = opts.inTransaction ? `SAVEPOINT ${sp}` : 'BEGIN';
  const rollback = opts.inTransaction ? `ROLLBACK TO SAVEPOINT ${sp}; RELEASE SAVEPOINT ${sp}` : 'ROLLBACK';
  const rendered = new Map<string, string>();
  let unavailable: string | undefined;
  await client.query(begin);
  try {
    await client.query(`select set_config('search_path', '', true), set_config($1, $2, true)`, [SETTING, JSON.stringify(statements)]);
    try {
      await client.query(RUN);
    } catch (e) {
      const err = e as Error & { code?: string };
      if (err.code === '57014') throw e; // cancelled (Ctrl-C): not a reason to compare as text
      unavailable = err.message;
    }
    if (unavailable === undefined) for (const r of (await client.query<{ k: string; v: string | null }>(READ)).rows) if (r.v !== null) rendered.set(r.k, r.v);
  } catch (e) {
    await client.query(rollback).catch(() => {});
    throw new MigrateError('schema_canonicalize_failed', `could not compare definitions on the target: ${(e as Error).message}`, {
      hint: 'nothing was changed (the comparison ran in a transaction that was rolled back); run the command again',
      cause: e,
    });
  }
  await client.query(rollback);
  if (unavailable !== undefined) return { model: source, compared: 0, same: 0, unavailable };

  const rewrite = new Map<string, Record<string, AttrValue>>();
  let same = 0;
  for (const { job, src, tgt } of planned) {
    const t = String(job.target.attrs[job.attr]);
    const back = (name: string | undefined, original: string): string | undefined => {
      const r = name === undefined ? undefined : rendered.get(name);
      if (r === undefined) return undefined;
      return job.restore ? job.restore(r, original) : r;
    };
    const cs = back(src, String(job.fact.attrs[job.attr]));
    if (cs === undefined) continue;
    if (cs !== t && cs !== back(tgt, t)) continue;
    same++;
    const a = rewrite.get(job.fact.id) ?? { ...job.fact.attrs };
    a[job.attr] = job.target.attrs[job.attr]!;
    rewrite.set(job.fact.id, a);
  }
  const model = rewrite.size === 0 ? source : { ...source, facts: source.facts.map((f) => (rewrite.has(f.id) ? { ...f, attrs: rewrite.get(f.id)! } : f)) };
  return { model, compared: planned.length, same };
}

/** For messages: why the comparison fell back to text. */
export function canonicalNotice(target: string, r: CanonicalResult): string | undefined {
  if (r.unavailable === undefined) return undefined;
  return `definitions were compared as text: ${target} could not render them in a rolled-back transaction (${r.unavailable}); a difference in spelling alone may show as a change`;
}
