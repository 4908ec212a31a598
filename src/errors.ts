import { classifyError, CONNECTION_LOST_CODES } from './error-cause.js';

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
 * Any thrown value as a MigrateError. A cause we recognise (error-cause.ts: disk full, permission denied, a
 * file in the way, a lost connection, a server condition — found anywhere in the `cause` chain) gets its own
 * code and hint; only truly unknown errors become 'internal' with their message only (never a stack trace on
 * the user's screen). `path`: the file the failed operation was about, for an error that names none.
 */
export function asMigrateError(e: unknown, opts: { path?: string } = {}): MigrateError {
  if (e instanceof MigrateError) return e;
  const c = classifyError(e, opts);
  if (c) return new MigrateError(c.code, c.message, { hint: c.hint, cause: e });
  const msg = e instanceof Error ? e.message : String(e);
  return new MigrateError('internal', msg, { hint: 'this is a bug in nself migrate or an unexpected server answer; run with NSELF_DEBUG=1 for the stack trace', cause: e });
}

/**
 * Wrap an error in a MigrateError naming what we were doing: `<what>: <cause>`. A recognised cause keeps its
 * own code and hint (e.g. disk_full, connection_lost); anything else gets `code` and `hint`. A MigrateError is
 * returned as it is.
 */
export function wrapCause(code: string, what: string, e: unknown, hint?: string): MigrateError {
  if (e instanceof MigrateError) return e;
  const c = classifyError(e);
  if (c) return new MigrateError(c.code, `${what}: ${c.message}`, { hint: c.hint, cause: e });
  const msg = e instanceof Error ? e.message : String(e);
  const detail = (e as { detail?: string } | null)?.detail;
  return new MigrateError(code, `${what}: ${msg}${detail ? ` (${detail})` : ''}`, { hint, cause: e });
}

/** true when the error means the database connection ended (connection_lost, server_crashed). */
export function isConnectionLost(err: MigrateError): boolean {
  return CONNECTION_LOST_CODES.has(err.code);
}

/** The same error with another hint: a pipeline knows more than the place that threw (e.g. whether COMMIT was sent). */
export function withHint(err: MigrateError, hint: string): MigrateError {
  return new MigrateError(err.code, err.message, { hint, exitCode: err.exitCode, details: err.details, cause: err.cause ?? err });
}
