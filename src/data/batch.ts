/**
 * Many small COPYs in one round trip. A simple-protocol Query may hold several statements; PostgreSQL runs
 * them in order, and every `COPY … TO STDOUT` among them sends its CopyOutResponse, CopyData and
 * CommandComplete in turn, every `COPY … FROM STDIN` reads the CopyData/CopyDone messages that follow the
 * Query on the socket (the frontend may send them before the CopyInResponse arrives: the server reads them in
 * order). If a statement fails, the server drops the rest of the Query and any CopyData/CopyDone still coming
 * (protocol: "any subsequent CopyData, CopyDone, or CopyFail messages issued by the frontend will simply be
 * dropped"), answers ReadyForQuery, and the connection is usable again — inside an aborted transaction.
 *
 * These are `pg` Submittables: the client queues them like any query and hands them the backend messages of
 * their Query. Used for tables small enough to hold in memory (apply.ts, backup.ts); large tables stream.
 */
import type pg from 'pg';

/**
 * Small tables (at most this big on disk, pg_table_size) are not streamed one by one: they are read whole into
 * memory, many per query, and loaded many per query (apply.ts; backup.ts saves them many to a file).
 */
export const SMALL_TABLE_BYTES = 1 << 20;
/** One batch: up to this many small tables, together up to this many bytes on disk. */
const BATCH_TABLES = 250;
const BATCH_DISK_BYTES = 8 << 20;
/**
 * The COPY output of one batch is kept in memory up to this size (TOAST compression can make a small table's
 * output larger than its disk size); a batch past it is read to its end and dropped, and its tables are
 * handled one by one (streamed).
 */
export const BATCH_MAX_BYTES = 32 << 20;

/** Consecutive batches of `list`, in order, each within BATCH_TABLES and BATCH_DISK_BYTES (by `bytes`). */
export function groupBatches<T>(list: T[], bytes: (t: T) => number): T[][] {
  const out: T[][] = [];
  let batch: T[] = [];
  let disk = 0;
  for (const t of list) {
    if (batch.length > 0 && (batch.length === BATCH_TABLES || disk + bytes(t) > BATCH_DISK_BYTES)) {
      out.push(batch);
      batch = [];
      disk = 0;
    }
    batch.push(t);
    disk += bytes(t);
  }
  if (batch.length > 0) out.push(batch);
  return out;
}

interface Connection {
  query(text: string): void;
  stream: { write(b: Buffer): boolean; cork?: () => void; uncork?: () => void };
}

/** A statement of a batch failed: `index` is its position (the ones before it completed), `cause` the server's error. */
export class BatchStatementError extends Error {
  constructor(readonly index: number, override readonly cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

/** The row count of a `COPY n` CommandComplete; -1 when the tag is not a COPY's. */
function copyRows(msg: { text?: string } | undefined): number {
  const m = /^COPY (\d+)$/.exec(msg?.text ?? '');
  return m ? Number(m[1]) : -1;
}

abstract class Batch<T> {
  readonly done: Promise<T>;
  protected resolve!: (v: T) => void;
  protected reject!: (e: unknown) => void;
  protected readonly rows: number[] = [];
  private failed = false;
  constructor(readonly text: string, private readonly statements: number) {
    this.done = new Promise<T>((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
  }
  abstract submit(connection: Connection): void;
  protected abstract result(): T;
  // pg sets `callback` on a Submittable (timeouts); having one lets it.
  callback(): void {}
  handleCommandComplete(msg: { text?: string }): void {
    this.rows.push(copyRows(msg));
  }
  handleReadyForQuery(): void {
    this.callback(); // clears pg's query_timeout timer, if any
    if (this.failed) return;
    if (this.rows.length !== this.statements || this.rows.some((n) => n < 0)) {
      this.reject(new Error(`the server answered ${this.rows.length} of ${this.statements} COPY statement(s)`));
      return;
    }
    this.resolve(this.result());
  }
  handleError(e: unknown): void {
    this.callback();
    if (this.failed) return;
    this.failed = true;
    // Connection-level errors (the socket closed) are not a statement's.
    this.reject((e as { severity?: string }).severity !== undefined ? new BatchStatementError(this.rows.length, e) : e);
  }
  handleEmptyQuery(): void {}
  handleRowDescription(): void {
    this.handleUnexpected('a row description');
  }
  handleDataRow(): void {
    this.handleUnexpected('a data row');
  }
  handlePortalSuspended(): void {
    this.handleUnexpected('a suspended portal');
  }
  handleCopyInResponse(_c: Connection): void {}
  handleCopyData(_msg: { chunk: Buffer }, _c: Connection): void {
    this.handleUnexpected('COPY data');
  }
  private handleUnexpected(what: string): void {
    if (this.failed) return;
    this.failed = true;
    this.reject(new Error(`unexpected ${what} from the server in a batch of COPY statements`));
  }
}

export interface CopyOutResult {
  /** Each statement's output (empty Buffers when `overflow`). */
  data: Buffer[];
  /** Each statement's row count (from its CommandComplete). */
  rows: number[];
  bytes: number;
  /** The output went past `maxBytes`: it was read to its end but not kept. */
  overflow: boolean;
}

class CopyOutBatch extends Batch<CopyOutResult> {
  private parts: Buffer[] = [];
  private current: Buffer[] = [];
  private bytes = 0;
  private overflow = false;
  constructor(statements: string[], private readonly maxBytes: number) {
    super(statements.join(';\n'), statements.length);
  }
  submit(connection: Connection): void {
    connection.query(this.text);
  }
  override handleCopyData(msg: { chunk: Buffer }): void {
    this.bytes += msg.chunk.length;
    if (this.bytes > this.maxBytes) this.overflow = true;
    // A copy: the parser may reuse the buffer the chunk points into.
    if (!this.overflow) this.current.push(Buffer.from(msg.chunk));
  }
  override handleCommandComplete(msg: { text?: string }): void {
    super.handleCommandComplete(msg);
    this.parts.push(this.overflow ? Buffer.alloc(0) : Buffer.concat(this.current));
    this.current = [];
  }
  protected result(): CopyOutResult {
    return { data: this.overflow ? this.parts.map(() => Buffer.alloc(0)) : this.parts, rows: this.rows, bytes: this.bytes, overflow: this.overflow };
  }
}

/** CopyData messages carry at most this many bytes each. */
const MESSAGE_BYTES = 1 << 20;

class CopyInBatch extends Batch<number[]> {
  constructor(statements: string[], private readonly data: Buffer[]) {
    super(statements.join(';\n'), statements.length);
  }
  submit(connection: Connection): void {
    const s = connection.stream;
    s.cork?.();
    try {
      connection.query(this.text);
      for (const d of this.data) {
        for (let at = 0; at < d.length; at += MESSAGE_BYTES) {
          const part = d.subarray(at, Math.min(d.length, at + MESSAGE_BYTES));
          const head = Buffer.alloc(5);
          head[0] = 0x64; // 'd' CopyData
          head.writeUInt32BE(part.length + 4, 1);
          s.write(head);
          s.write(part);
        }
        s.write(Buffer.from([0x63, 0, 0, 0, 4])); // 'c' CopyDone
      }
    } finally {
      s.uncork?.();
    }
  }
  protected result(): number[] {
    return this.rows;
  }
}

/**
 * Run `COPY … TO STDOUT` statements in one Query; each one's output in memory. Past `maxBytes` of output in all,
 * the rest is read and dropped (`overflow`): the caller copies those tables another way.
 */
export async function copyOutMany(client: pg.ClientBase, statements: string[], maxBytes: number): Promise<CopyOutResult> {
  if (statements.length === 0) return { data: [], rows: [], bytes: 0, overflow: false };
  const b = new CopyOutBatch(statements, maxBytes);
  void client.query(b as never);
  return b.done;
}

/**
 * Run `COPY … FROM STDIN` statements in one Query, sending `data[i]` (a whole COPY stream: binary header to
 * trailer, or text rows) to statement i without waiting for the server between them. Resolves with each
 * statement's row count; rejects with the first statement's error (the rest are not run).
 */
export async function copyInMany(client: pg.ClientBase, statements: string[], data: Buffer[]): Promise<number[]> {
  if (statements.length !== data.length) throw new Error('copyInMany: one data buffer per statement');
  if (statements.length === 0) return [];
  const b = new CopyInBatch(statements, data);
  void client.query(b as never);
  return b.done;
}
