/**
 * Counting what a plan changes, and deciding whether it needs confirmation (safety rules live here).
 */
import type { ConfigPlan } from '../config/index.js';
import type { SchemaPlan } from '../schema/index.js';
import type { DataPlan } from '../data/index.js';
import type { Environment } from '../env/types.js';
import type { Confirmation, Plan, RollbackPreview } from './types.js';

export function countSchemaChanges(p: SchemaPlan): number {
  return p.changes.length;
}

export function countDataChanges(p: DataPlan): number {
  return p.tables.filter((t) => t.action === 'copy').length;
}

export function countConfigEdits(p: ConfigPlan): number {
  return p.edits.length + (p.server?.edits.length ?? 0);
}

/** "1 row", "2 rows", "12.4k rows". */
export function countOf(n: number, noun: string): string {
  return `${formatCount(n)} ${noun}${n === 1 ? '' : 's'}`;
}

export function formatCount(n: number): string {
  if (n >= 1_000_000) return `${(n / 1_000_000).toFixed(1).replace(/\.0$/, '')}M`;
  if (n >= 10_000) return `${(n / 1_000).toFixed(1).replace(/\.0$/, '')}k`;
  return n.toLocaleString('en-US');
}

/**
 * A production target always needs confirmation; so does any plan that deletes data (dropped tables or
 * columns, narrowing type changes), even on a non-production target.
 */
export function buildConfirmation(plan: Plan, target: Environment): Confirmation {
  const reasons: string[] = [];
  if (plan.summary.changes === 0) return { required: false, reasons };
  const what: string[] = [];
  if (plan.schema && plan.schema.changes.length > 0) what.push(`applies ${plan.schema.changes.length} schema change(s)`);
  if (plan.data?.plan) {
    const copy = plan.data.plan.tables.filter((t) => t.action === 'copy');
    const delta = copy.filter((t) => t.mode === 'delta');
    const whole = copy.filter((t) => t.mode !== 'delta');
    if (delta.length > 0) {
      const rows = delta.reduce((a, t) => a + (t.delta ? t.delta.insert + t.delta.update + t.delta.delete : 0), 0);
      const gone = delta.reduce((a, t) => a + (t.delta ? t.delta.update + t.delta.delete : 0), 0);
      what.push(`writes ${countOf(rows, 'differing row')} of ${countOf(delta.length, 'table')} (replaces or deletes ${countOf(gone, 'row')} of ${target.name})`);
    }
    if (whole.length > 0) {
      // every row of a replaced table goes (TRUNCATE), and the source's rows come in
      const gone = whole.reduce((a, t) => a + t.targetRows, 0);
      const come = whole.reduce((a, t) => a + t.sourceRows, 0);
      what.push(`replaces the rows of ${countOf(whole.length, 'table')} (deletes ${countOf(gone, 'row')} of ${target.name}, writes ${countOf(come, 'row')})`);
    }
  }
  if (plan.config?.plan) {
    const n = countConfigEdits(plan.config.plan);
    if (n > 0) what.push(`edits ${n} configuration value(s)`);
  }
  if (target.production) reasons.push(`this ${what.join(', ')} in ${target.name} (production)`);
  const lost = (plan.data?.plan?.tables ?? []).flatMap((t) => (t.action === 'copy' ? (t.targetOnly ?? []).filter((c) => c.values > 0).map((c) => `${t.table}.${c.column} (${countOf(c.values, 'value')})`) : []));
  if (lost.length > 0) reasons.push(`the data step empties ${target.name}'s own columns, which ${plan.source.name} lacks: ${lost.join(', ')}`);
  const destructive = (plan.schema?.statements ?? []).flatMap((s) => s.hazards).filter((h) => h.kind === 'deletes_data');
  if (destructive.length > 0) {
    const first = destructive[0];
    reasons.push(`the schema plan deletes data in ${target.name}: ${first.message}${destructive.length > 1 ? ` and ${destructive.length - 1} more` : ''}`);
  }
  return { required: reasons.length > 0, reasons };
}

/** One line per change made on the target after the migration (what a rollback loses). */
export function driftLines(p: RollbackPreview): string[] {
  return [
    ...p.drift.schema,
    ...p.drift.tables.map((t) => `rows of ${t.table} changed since (${countOf(t.rowsThen, 'row')} then, ${t.rowsNow === null ? 'table gone' : `${formatCount(t.rowsNow)} now`})`),
    ...p.drift.files.map((f) => `${f.path} changed since${f.keys.length ? `: ${f.keys.join(', ')}` : ''}`),
  ];
}
