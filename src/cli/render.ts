/**
 * Human rendering of the Plan and the Report — the same objects --json prints.
 */
import type { MigrateError } from '../errors.js';
import type { DataProgress, LargeObjects } from '../data/index.js';
import { countOf, driftLines, formatCount } from '../migrate/summary.js';
import type { CheckpointList, Plan, Report, RollbackPreview, StepReport } from '../migrate/types.js';
import type { ParsedArgs } from './args.js';
import type { Output } from './output.js';
import { renderConfigDiff, renderConfigPlan } from './render-config.js';

export function renderHeader(out: Output, args: ParsedArgs): string {
  const dry = args.dryRun ? ' — dry run' : '';
  if (args.command === 'rollback') return out.paint('bold', `nself migrate rollback${dry}`) + '\n';
  const verb = args.command === 'diff' ? 'diff ' : args.command === 'sync' ? `sync${args.watch ? ' --watch' : ''} ` : '';
  return out.paint('bold', `nself migrate ${verb}${args.source} → ${args.target} (${args.components.join(', ')})${dry}`) + '\n';
}

const SYMBOL = { create: '+', alter: '~', drop: '-' } as const;

export function renderPlan(out: Output, plan: Plan): string {
  const lines: string[] = [];
  const title = plan.command === 'diff' ? `Differences ${plan.source.name} → ${plan.target.name}` : `${plan.command === 'sync' ? 'Sync plan' : 'Plan'} ${plan.source.name} → ${plan.target.name}`;
  lines.push('', out.paint('bold', title));
  if (plan.schema) {
    const s = plan.schema;
    lines.push('', out.paint('bold', `Schema: ${s.changes.length === 0 ? 'no differences' : `${s.changes.length} change(s)`}`));
    for (const c of s.changes) {
      const sym = SYMBOL[c.action];
      const colour = c.action === 'create' ? 'green' : c.action === 'drop' ? 'red' : 'yellow';
      lines.push(`  ${out.paint(colour, `${sym} ${c.kind} ${c.identity}`)}`);
      if (c.reason) lines.push(`      ${out.paint('dim', c.reason)}`);
      for (const h of c.hazards) lines.push(`      ${out.paint('red', `! ${h.kind}`)}: ${h.message}`);
      for (const sql of c.sql) lines.push(out.paint('dim', indent(sql, '      ')));
    }
    for (const n of s.notHandled) lines.push(`  ${out.paint('yellow', `? ${n.kind} ${n.identity}`)}: not handled — ${n.reason}`);
    for (const e of s.errors) lines.push(`  ${out.paint('red', `✗ ${e}`)}`);
  }
  if (plan.data?.plan) {
    const d = plan.data.plan;
    const copy = d.tables.filter((t) => t.action === 'copy');
    const verb = plan.command === 'sync' ? 'to sync' : 'to copy';
    lines.push('', out.paint('bold', `Data: ${copy.length === 0 ? 'all tables equal' : `${copy.length} of ${d.tables.length} table(s) ${verb}`}`));
    for (const t of d.tables) {
      const rows = `${formatCount(t.targetRows)} → ${countOf(t.sourceRows, 'row')}`;
      if (t.action === 'copy' && t.mode === 'delta' && t.delta) {
        lines.push(`  ${out.paint('yellow', `~ ${t.table}`)}  ${rows}: ${formatCount(t.delta.insert)} to insert, ${formatCount(t.delta.update)} to update, ${formatCount(t.delta.delete)} to delete`);
      } else if (t.action === 'copy') {
        const counts = `deletes ${formatCount(t.targetRows)}, writes ${formatCount(t.sourceRows)}`;
        const how = t.mode === 'replace' ? `: replaced whole (${(t.reason ?? '').split(': replaced whole')[0]}); ${counts}` : ` (${counts})`;
        lines.push(`  ${out.paint('yellow', `~ ${t.table}`)}  ${rows}${how}`);
        for (const c of t.targetOnly ?? []) if (c.values > 0) lines.push(`      ${out.paint('red', '! deletes_data')}: empties ${t.table}.${c.column}, which ${plan.source.name} lacks (${countOf(c.values, 'value')})`);
      } else lines.push(out.paint('dim', `  = ${t.table}  ${t.reason ?? 'equal'} (${countOf(t.sourceRows, 'row')})`));
    }
    for (const t of d.onlyInSource) lines.push(out.paint('dim', plan.components.includes('schema') ? `  + ${t.table}: only in ${plan.source.name} (created by the schema step, then copied)` : `  ? ${t.table}: only in ${plan.source.name} (not copied; migrate the schema first)`));
    for (const t of d.onlyInTarget) lines.push(out.paint('dim', `  ? ${t.table}: only in ${plan.target.name} (left alone)`));
    if (d.largeObjects) lines.push(`  ${out.paint('yellow', '! large objects')}: ${largeObjectCounts(d.largeObjects, plan)} — not copied (an oid column that refers to one is copied as a number)`);
  }
  if (plan.data?.diff) {
    const d = plan.data.diff;
    const differing = d.tables.filter((t) => !t.identical);
    lines.push('', out.paint('bold', `Data: ${differing.length === 0 && d.onlyInSource.length === 0 && d.onlyInTarget.length === 0 ? 'no differences' : `${differing.length} of ${d.tables.length} table(s) differ`}`));
    for (const t of d.tables) {
      const counts = `${formatCount(t.sourceRows)} / ${countOf(t.targetRows, 'row')}`;
      if (t.identical) {
        lines.push(out.paint('dim', `  = ${t.table}  identical (${counts})`));
        continue;
      }
      const detail = t.primaryKey
        ? `${formatCount(t.onlyInSource ?? 0)} only in ${plan.source.name}, ${formatCount(t.onlyInTarget ?? 0)} only in ${plan.target.name}, ${formatCount(t.different ?? 0)} changed`
        : 'no primary key: rows compared as a whole';
      lines.push(`  ${out.paint('yellow', `~ ${t.table}`)}  ${counts}: ${detail}`);
    }
    for (const t of d.onlyInSource) lines.push(`  ${out.paint('green', `+ ${t.table}`)}: table only in ${plan.source.name}`);
    for (const t of d.onlyInTarget) lines.push(`  ${out.paint('red', `- ${t.table}`)}: table only in ${plan.target.name}`);
    if (d.largeObjects) lines.push(`  ${out.paint('yellow', '? large objects')}: ${largeObjectCounts(d.largeObjects, plan)} — not compared`);
  }
  for (const n of plan.notCompared ?? []) lines.push('', out.paint('bold', `${n.component[0]!.toUpperCase()}${n.component.slice(1)}: `) + out.paint('red', `not compared — ${n.error.message}`));
  if (plan.config) {
    lines.push('', ...(plan.config.plan ? renderConfigPlan(out, plan.config.plan, plan) : renderConfigDiff(out, plan.config.diff, plan)));
  }
  lines.push('', summaryLine(out, plan));
  if (plan.confirmation.required && plan.command !== 'diff') {
    for (const r of plan.confirmation.reasons) lines.push(out.paint('yellow', `! ${r}`));
  }
  return lines.join('\n') + '\n';
}

function summaryLine(out: Output, plan: Plan): string {
  const per = Object.entries(plan.summary.perComponent)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  if (plan.command === 'diff') {
    if (plan.notCompared?.length) return out.paint('red', `${plan.notCompared.map((n) => n.component).join(' and ')} not compared; ${plan.summary.changes} difference(s) in what was (${per || 'nothing'})`);
    return plan.summary.differences ? out.paint('yellow', `${plan.summary.changes} difference(s) (${per})`) : out.paint('green', `no differences (${per})`);
  }
  if (plan.summary.changes === 0) return out.paint('green', `${plan.command === 'sync' ? 'nothing differs' : 'nothing to change'}: ${plan.target.name} already matches ${plan.source.name}`);
  return `${plan.summary.changes} change(s) to apply (${per})`;
}

/** "local has 3, staging has none": large objects (pg_largeobject) in each database. */
function largeObjectCounts(lo: LargeObjects, plan: Plan): string {
  const has = (n: number) => (n === 0 ? 'none' : formatCount(n));
  return `${plan.source.name} has ${has(lo.source)}, ${plan.target.name} has ${has(lo.target)}`;
}

function indent(text: string, pad: string): string {
  return text
    .split('\n')
    .map((l) => pad + l)
    .join('\n');
}

export function renderStep(out: Output, s: StepReport): string {
  const mark = s.status === 'ok' ? out.paint('green', '✓') : s.status === 'failed' ? out.paint('red', '✗') : out.paint('dim', '-');
  const ms = s.status === 'skipped' ? '' : out.paint('dim', ` (${s.duration_ms} ms)`);
  return `${mark} ${s.name.padEnd(10)} ${s.detail}${ms}\n`;
}

export function renderReportSummary(out: Output, r: Report): string {
  const lines: string[] = [''];
  if (r.data && r.data.length > 0) {
    lines.push(out.paint('bold', r.command === 'sync' ? 'Data synced:' : 'Data copied:'));
    for (const t of r.data) {
      const mb = t.bytes / 1e6;
      const how = t.mode === 'delta' ? `: ${formatCount(t.inserted ?? 0)} inserted, ${formatCount(t.updated ?? 0)} updated, ${formatCount(t.deleted ?? 0)} deleted` : t.mode === 'replace' ? ': replaced whole' : '';
      lines.push(`  ${t.table}: ${formatCount(t.rowsBefore)} → ${countOf(t.rowsAfter, 'row')}${how}, ${mb.toFixed(1)} MB, ${(t.ms / 1000).toFixed(2)} s`);
    }
  }
  if (r.status === 'ok') {
    const what = r.command === 'rollback' ? `rolled back ${r.target} to checkpoint ${r.checkpoint}` : r.command === 'sync' ? `synced ${r.source} → ${r.target}` : `migrated ${r.source} → ${r.target}`;
    const cp = r.command !== 'rollback' && r.checkpoint ? ` (checkpoint ${r.checkpoint}; undo with \`nself migrate rollback\`)` : '';
    if (r.command === 'rollback' && r.steps.every((s) => s.name === 'validate' || s.name === 'plan')) {
      lines.push(`would roll back ${r.target} to its state before ${r.checkpoint} (${r.source} → ${r.target}): dry run, nothing was changed`);
    } else {
      lines.push(out.paint('green', `${what}${r.verified ? ', verified' : ''}${cp}`));
    }
  } else {
    lines.push(out.paint('red', r.command === 'rollback' ? `rollback ${r.status}: nothing was changed` : `${r.command === 'sync' ? 'sync' : 'migration'} ${r.status}: ${r.target} was not changed`));
  }
  return lines.join('\n') + '\n';
}

/** "2026-11-25T19:45:12.123Z" → "2026-11-25 19:45:12" (UTC, as stored). */
function shortTime(iso: string | undefined): string {
  return iso ? iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, '') : '';
}

/** `rollback --list`: one row per checkpoint, newest first; `*` marks what a rollback of that target undoes. */
export function renderCheckpoints(out: Output, list: CheckpointList): string {
  if (list.checkpoints.length === 0) {
    return `no checkpoints in .nself/migrations/${list.skipped.length ? ` (${list.skipped.length} folder(s) skipped)` : ''}\n`;
  }
  const rows = list.checkpoints.map((c) => {
    const status = c.status === 'rolled_back' ? `rolled back ${shortTime(c.rolled_back_at)}`.trim() : c.status;
    return [c.latest ? '*' : ' ', c.id, shortTime(c.created_at), `${c.source} → ${c.target}`, c.components.join(', '), status];
  });
  const head = [' ', 'ID', 'CREATED (UTC)', 'MIGRATION', 'COMPONENTS', 'STATUS'];
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(width[i]!))).join('  ').trimEnd();
  const lines = [out.paint('bold', line(head))];
  for (const [i, r] of rows.entries()) {
    const c = list.checkpoints[i]!;
    const text = line(r);
    lines.push(c.latest ? out.paint('green', text) : c.status === 'applied' ? text : out.paint('dim', text));
  }
  lines.push('', out.paint('dim', '* the newest applied checkpoint of its target: `nself migrate rollback <id>` undoes it; `nself migrate rollback` undoes the topmost *'));
  if (list.skipped.length) lines.push(out.paint('dim', `${list.skipped.length} folder(s) skipped: ${list.skipped.map((s) => s.name).join(', ')}`));
  return lines.join('\n') + '\n';
}

export function renderError(out: Output, e: MigrateError): string {
  const first = `${out.paint('red', 'error:')} ${e.message}`;
  return e.hint ? `${first}\n${out.paint('dim', `hint: ${e.hint}`)}\n` : `${first}\n`;
}

export function renderProgress(p: DataProgress): string {
  const secs = p.elapsedMs / 1000;
  const mbs = secs > 0 ? p.bytes / 1e6 / secs : 0;
  const pct = p.totalRows > 0 ? Math.min(100, Math.round((p.rows / p.totalRows) * 100)) : 0;
  const eta = p.rows > 0 && p.totalRows > p.rows ? ((p.totalRows - p.rows) * secs) / p.rows : 0;
  return `${p.table}: ${formatCount(p.rows)}/${countOf(p.totalRows, 'row')} (${pct}%), ${mbs.toFixed(1)} MB/s${eta > 0 ? `, ETA ${Math.ceil(eta)} s` : ''}`;
}

/** What a rollback will drop, restore and reload, and what it loses (changes made since the migration). */
export function renderRollbackPreview(out: Output, p: RollbackPreview): string {
  const lines: string[] = [];
  const list = (title: string, items: string[]) => {
    if (items.length === 0) return;
    lines.push(out.paint('bold', title));
    for (const i of items) lines.push(`  ${i}`);
  };
  list('Drops (created by the migration):', p.drops);
  list('Restores:', p.restores);
  list('Reloads rows:', p.reloads.map((r) => `${r.table}: ${countOf(r.rows, 'row')} from the checkpoint${r.rowsNow === undefined ? '' : ` (${formatCount(r.rowsNow)} now)`}`));
  list('Puts back files:', p.files);
  const lost = driftLines(p);
  if (lost.length > 0) {
    lines.push(out.paint('yellow', 'Changed since the migration, and lost by the rollback:'));
    for (const l of lost) lines.push(`  ${l}`);
  } else lines.push(out.paint('dim', 'Nothing changed on the target since the migration.'));
  return lines.join('\n') + '\n';
}
