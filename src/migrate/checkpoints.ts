/**
 * `nself migrate rollback --list`: the project's checkpoints as a plain document (rendered or printed as JSON).
 * Opening the store removes abandoned drafts; unusable folders are skipped with a notice, never fatal.
 */
import { listCheckpoints } from '../checkpoint/store.js';
import type { PipelineIO } from './session.js';
import type { CheckpointList } from './types.js';

export async function runListCheckpoints(projectDir: string, io: PipelineIO): Promise<CheckpointList> {
  const l = await listCheckpoints(projectDir, { cleanDrafts: true });
  for (const n of l.notices) io.notice?.(n);
  return { kind: 'checkpoints', checkpoints: l.checkpoints, skipped: l.skipped };
}
