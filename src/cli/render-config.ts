/**
 * Human rendering of the configuration component's diff and plan (values are already masked by config/).
 */
import type { ConfigDiff, ConfigKeyDiff, ConfigPlan } from '../config/index.js';
import type { Plan } from '../migrate/types.js';
import type { Output } from './output.js';

function where(s?: { file: string; line: number }): string {
  return s ? `${s.file}:${s.line}` : '';
}

function keyLine(out: Output, d: ConfigKeyDiff, plan: Plan): string {
  const [src, tgt] = [plan.source.name, plan.target.name];
  let text: string;
  if (d.status === 'only_in_source') {
    text = `  ${out.paint('green', `+ ${d.key}`)}${d.secret ? ' (secret)' : `=${d.source?.value ?? ''}`}  ${out.paint('dim', `only in ${src}, ${where(d.source)}`)}`;
  } else if (d.status === 'needs_value') {
    const what = d.target?.value === '' ? 'empty' : 'a placeholder';
    text = `  ${out.paint('red', `! ${d.key}`)}  needs a value in ${tgt}: ${what} at ${where(d.target)} (set in ${src}, ${where(d.source)})`;
  } else if (d.status === 'only_in_target') {
    text = `  ${out.paint('red', `- ${d.key}`)}${d.secret ? ' (secret)' : `=${d.target?.value ?? ''}`}  ${out.paint('dim', `only in ${tgt}, ${where(d.target)}`)}`;
  } else {
    const values = d.secret && d.source?.value === undefined ? 'differs (secret)' : `${tgt}: ${d.target?.value ?? ''} → ${src}: ${d.source?.value ?? ''}`;
    text = `  ${out.paint('yellow', `~ ${d.key}`)}  ${values}  ${out.paint('dim', `${where(d.source)} vs ${where(d.target)}`)}`;
  }
  return d.expected ? `${text}  ${out.paint('dim', `(expected: ${d.expected})`)}` : text;
}

export function renderConfigDiff(out: Output, d: ConfigDiff, plan: Plan): string[] {
  const expected = d.expected > 0 ? ` (+${d.expected} expected, not counted)` : '';
  const lines = [out.paint('bold', `Config: ${d.count === 0 ? 'no differences' : `${d.count} difference(s)`}${expected}`)];
  if (d.rulesFile) lines.push(out.paint('dim', `  rules: ${d.rulesFile}`));
  for (const k of [...d.onlyInSource, ...d.changed, ...d.onlyInTarget]) lines.push(keyLine(out, k, plan));
  for (const f of d.server.fields) {
    const mark = f.status === 'only_in_source' ? '+' : f.status === 'only_in_target' ? '-' : '~';
    const note = f.expected ? `  (expected: ${f.expected})` : '';
    lines.push(`  ${mark} server.json ${f.field}: ${JSON.stringify(f.target ?? null)} → ${JSON.stringify(f.source ?? null)}${out.paint('dim', note)}`);
  }
  return lines;
}

export function renderConfigPlan(out: Output, p: ConfigPlan, plan: Plan): string[] {
  const n = p.edits.length + (p.server?.edits.length ?? 0);
  const lines = [out.paint('bold', `Config: ${n === 0 ? 'nothing to change' : `${n} edit(s) to ${p.file}${p.created ? ' (new file)' : ''}`}`)];
  for (const e of p.edits) {
    if (e.action === 'placeholder') lines.push(`  ${out.paint('yellow', `+ ${e.key}=`)}  secret placeholder: needs a value`);
    else if (e.action === 'add') lines.push(`  ${out.paint('green', `+ ${e.key}=${e.value}`)}  ${out.paint('dim', `from ${where(e.from)}`)}`);
    else lines.push(`  ${out.paint('yellow', `~ ${e.key}=${e.value}`)}  ${out.paint('dim', `was ${e.current?.value ?? ''} (${where(e.current)}), from ${where(e.from)}`)}`);
  }
  for (const e of p.server?.edits ?? []) lines.push(`  ${out.paint(e.action === 'add' ? 'green' : 'yellow', `${e.action === 'add' ? '+' : '~'} server.json ${e.field}`)} = ${JSON.stringify(e.value)}`);
  for (const c of p.conflicts) lines.push(`  ${out.paint('red', `! ${c.key}`)}: not written — ${c.reason} (${c.file}:${c.line})`);
  const skipped = p.skipped.filter((s) => s.kind !== 'same_definition');
  if (skipped.length > 0) lines.push(out.paint('dim', `  not copied: ${skipped.map((s) => `${s.key} (${s.kind.replace('_', '-')})`).join(', ')}`));
  if (p.needsValue.length > 0) lines.push(out.paint('yellow', `  needs a value in ${plan.target.name}: ${p.needsValue.join(', ')}`));
  return lines;
}
