/**
 * Typed errors. Everything below cli/ throws MigrateError (never prints, never exits).
 * cli/ turns it into one line on stderr ("error: <message>" + "hint: <hint>") and the exit code.
 */
export const EXIT = {
  ok: 0,
  failed: 1,
  differences: 2,
  refused: 3,
  usage: 64,
  /** `nself <command>` found the nself CLI but could not start it (as a shell says for a file it cannot execute). */
  cannotRun: 126,
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export class MigrateError extends Error {
  readonly code: string;
  readonly hint?: string;
  readonly exitCode: ExitCode;
  /** Extra JSON-serialisable details (e.g. what still differs after a failed verification). */
  readonly details?: unknown;

  constructor(code: string, message: string, opts: { hint?: string; exitCode?: ExitCode; details?: unknown; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'MigrateError';
    this.code = code;
    this.hint = opts.hint;
    this.exitCode = opts.exitCode ?? EXIT.failed;
    this.details = opts.details;
  }
}

/** A usage error (exit 64): unknown option/command/environment, missing argument, conflicting flags. */
export function usageError(message: string, hint?: string): MigrateError {
  return new MigrateError('usage', message, { hint, exitCode: EXIT.usage });
}

/** A refusal by a safety rule (exit 3): unconfirmed production change, unconfirmed data loss. */
export function refusedError(message: string, hint?: string): MigrateError {
  return new MigrateError('refused', message, { hint, exitCode: EXIT.refused });
}

export function isMigrateError(e: unknown): e is MigrateError {
  return e instanceof MigrateError;
}

/**
 * Any thrown value as a MigrateError. Unknown errors become 'internal' with their message only
 * (never a stack trace on the user's screen).
 */
export function asMigrateError(e: unknown): MigrateError {
  if (e instanceof MigrateError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new MigrateError('internal', msg, { hint: 'this is a bug in nself migrate or an unexpected server answer; run with NSELF_DEBUG=1 for the stack trace', cause: e });
}
