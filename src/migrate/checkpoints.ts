/**
 * `nself migrate rollback --list`: the project's checkpoints as a plain document (rendered or printed as JSON).
 * Opening the store removes abandoned drafts; unusable folders are skipped with a notice, never fatal.
 */
import { listCheckpoints } from '../checkpoint/store.js';
import { recoverInterrupted } from './journal.js';
import type { PipelineIO } from './session.js';
import type { CheckpointList } from './types.js';

export async function runListCheckpoints(projectDir: string, io: PipelineIO): Promise<CheckpointList> {
  // like every command, first finish what a killed run left (so the statuses listed are true)
  await recoverInterrupted(projectDir, [], (m) => io.notice?.(m));
  const l = await listCheckpoints(projectDir, { cleanDrafts: true });
  for (const n of l.notices) io.notice?.(n);
  return { kind: 'checkpoints', checkpoints: l.checkpoints, skipped: l.skipped };
}
