/**
 * The Plan and the Report: plain JSON-serialisable data. `--json` prints exactly these objects,
 * the human renderer prints the same objects; nothing else computes what the user sees.
 */
import type { ConfigDiff, ConfigPlan } from '../config/index.js';
import type { SchemaPlan } from '../schema/index.js';
import type { DataDiff, DataPlan, DataTableResult } from '../data/index.js';

export type ComponentName = 'schema' | 'data' | 'config';
export const ALL_COMPONENTS: ComponentName[] = ['schema', 'data', 'config'];

export interface EnvSummary {
  name: string;
  production: boolean;
  /** Project-relative files of the cascade that exist. */
  files: string[];
  /** Masked database description, when the database component(s) were used. */
  database?: string;
}

export interface Confirmation {
  /** A prompt (or --force) is needed before anything changes. */
  required: boolean;
  reasons: string[];
}

export interface Plan {
  kind: 'plan';
  command: 'migrate' | 'diff' | 'sync';
  tool: { name: string; version: string };
  created_at: string;
  source: EnvSummary;
  target: EnvSummary;
  components: ComponentName[];
  config?: { diff: ConfigDiff; plan?: ConfigPlan };
  schema?: SchemaPlan;
  data?: { plan?: DataPlan; diff?: DataDiff };
  summary: {
    /** Number of changes the migration would make (migrate) or differences found (diff). */
    changes: number;
    differences: boolean;
    perComponent: Partial<Record<ComponentName, number>>;
  };
  confirmation: Confirmation;
  /** diff: components that could not be compared (a database out of reach), with the error. */
  notCompared?: Array<{ component: ComponentName; error: { code: string; message: string; hint?: string } }>;
}

export type StepName = 'validate' | 'connect' | 'plan' | 'safety' | 'backup' | 'checkpoint' | 'migrate' | 'verify' | 'restore';

export interface StepReport {
  name: StepName;
  status: 'ok' | 'skipped' | 'failed';
  duration_ms: number;
  detail: string;
  data?: unknown;
}

export interface Report {
  kind: 'report';
  command: 'migrate' | 'rollback' | 'sync';
  status: 'ok' | 'failed' | 'refused' | 'interrupted';
  source: string;
  target: string;
  components: ComponentName[];
  steps: StepReport[];
  checkpoint?: string;
  verified: boolean;
  plan?: Plan;
  data?: DataTableResult[];
  /** rollback: what it drops, restores and reloads, and what changed on the target since the migration. */
  rollback?: RollbackPreview;
  error?: { code: string; message: string; hint?: string; details?: unknown };
}

export interface RollbackPreview {
  /** Objects the migration created, which the rollback drops ("table public.comments"). */
  drops: string[];
  /** Objects the rollback creates again or changes back. */
  restores: string[];
  /** Tables whose rows are replaced by the checkpoint's, with the row counts then and now. */
  reloads: Array<{ table: string; rows: number; rowsNow?: number }>;
  /** Project files put back. */
  files: string[];
  /** What changed on the target after the migration: lost by the rollback. */
  drift: {
    schema: string[];
    tables: Array<{ table: string; rowsThen: number; rowsNow: number | null }>;
    files: Array<{ path: string; keys: string[] }>;
  };
}

/** `rollback --list`: every checkpoint of the project, newest first, and the folders that were skipped. */
export interface CheckpointList {
  kind: 'checkpoints';
  checkpoints: {
    id: string;
    created_at: string;
    source: string;
    target: string;
    components: string[];
    status: 'pending' | 'applied' | 'rolled_back';
    applied_at?: string;
    rolled_back_at?: string;
    /** The newest applied (not rolled back) checkpoint of its target: what a rollback of that target undoes. */
    latest: boolean;
  }[];
  skipped: { name: string; reason: string }[];
}
