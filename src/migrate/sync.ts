/**
 * `nself migrate sync <source> <target>` (one-time): the migrate pipeline — validate → plan → safety → backup →
 * checkpoint → migrate → verify, one advisory-locked target transaction, journal, recovery, rollback — with the
 * data component in delta mode: only rows that differ are written (primary-key ranges, data/delta.ts), and the
 * checkpoint holds exactly those rows. `--watch` lives in src/sync/.
 */
import { runMigrate, type MigrateOptions, type MigrateOutcome } from './migrate.js';
import type { PipelineIO } from './session.js';

export type SyncOptions = Omit<MigrateOptions, 'dataMode' | 'command'>;

export function runSync(opts: SyncOptions, io: PipelineIO): Promise<MigrateOutcome> {
  return runMigrate({ ...opts, dataMode: 'delta', command: 'sync' }, io);
}
