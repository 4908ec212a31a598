/**
 * Moving COPY bytes between a source and a sink, counting them, and aborting cleanly.
 *
 * We do not use stream.pipeline() with a pg-copy-streams COPY TO stream: on a sink failure pipeline() destroys
 * the source, and a destroyed COPY TO stream stops reading its socket while the server is still in COPY OUT,
 * so the connection never becomes usable again (the caller's ROLLBACK would hang). Instead, on a sink failure we
 * send a CancelRequest for the source query and drain what is still coming, then report the sink's error.
 */
import net from 'node:net';
import type pg from 'pg';
import type { Readable, Writable } from 'node:stream';

/**
 * Pump src into sink with backpressure. Resolves when both finished; rejects with the first error after BOTH
 * sides settled (the source connection is idle again; a COPY FROM sink has sent CopyFail and got the error).
 */
export function pump(src: Readable, sink: Writable, opts: { onData?: (chunk: Buffer) => void; abortSource: () => void }): Promise<void> {
  return new Promise((resolve, reject) => {
    let srcDone = false;
    let sinkDone = false;
    let aborted = false;
    let failed: unknown;
    const settle = () => {
      if (srcDone && sinkDone) {
        if (failed === undefined) resolve();
        else reject(failed);
      }
    };
    const resume = () => src.resume();
    src.on('data', (chunk: Buffer) => {
      if (aborted) return;
      opts.onData?.(chunk);
      if (!sink.write(chunk)) {
        src.pause();
        sink.once('drain', resume);
      }
    });
    src.once('end', () => {
      if (srcDone) return;
      srcDone = true;
      if (!aborted) sink.end();
      settle();
    });
    src.once('close', () => {
      // A source destroyed without 'end' (e.g. a file stream we aborted): settled; premature unless we aborted.
      if (srcDone) return;
      srcDone = true;
      if (!aborted) {
        aborted = true;
        failed ??= new Error('the source stream closed before it finished');
        if (!sinkDone) sink.destroy(failed as Error);
      }
      settle();
    });
    src.on('error', (e) => {
      if (srcDone) return;
      srcDone = true;
      if (!aborted) {
        aborted = true;
        failed ??= e;
        sink.removeListener('drain', resume);
        if (!sinkDone) sink.destroy(e instanceof Error ? e : new Error(String(e)));
      }
      settle();
    });
    const sinkFailed = (e: unknown) => {
      if (sinkDone) return;
      sinkDone = true;
      failed ??= e;
      if (!srcDone && !aborted) {
        aborted = true;
        sink.removeListener('drain', resume);
        opts.abortSource();
        src.resume();
      }
      settle();
    };
    sink.on('error', sinkFailed); // on, not once: a second 'error' must not become an uncaught exception
    sink.once('close', () => sinkFailed(failed ?? new Error('the destination stream closed before it finished')));
    sink.once('finish', () => {
      if (sinkDone) return;
      sinkDone = true;
      settle();
    });
  });
}

/**
 * Ask the server to cancel what `client` is running (a CancelRequest on a new socket, like psql's Ctrl-C).
 * Best effort: if it cannot connect, the caller still drains the COPY to its end.
 */
export function cancelBackend(client: pg.ClientBase): void {
  const c = client as unknown as { processID?: number; secretKey?: number; connectionParameters?: { host?: string; port?: number } };
  const params = c.connectionParameters;
  if (!params || c.processID === undefined || c.secretKey === undefined) return;
  const host = params.host ?? 'localhost';
  const port = Number(params.port ?? 5432);
  const sock = host.startsWith('/') ? net.connect(`${host}/.s.PGSQL.${port}`) : net.connect(port, host);
  sock.on('error', () => sock.destroy());
  sock.setTimeout(5000, () => sock.destroy());
  sock.on('connect', () => {
    const b = Buffer.alloc(16);
    b.writeInt32BE(16, 0);
    b.writeInt32BE(80877102, 4);
    b.writeInt32BE(c.processID! | 0, 8);
    b.writeInt32BE(c.secretKey! | 0, 12);
    sock.end(b);
  });
}

/**
 * Counts the bytes of a COPY stream as it passes and, unless `rows` is false, its rows: binary format parsed tuple
 * by tuple, text format by newlines.
 */
export class RowCounter {
  rows = 0;
  bytes = 0;
  private state: 'header' | 'tuple' | 'field' | 'done' = 'header';
  private need = 19;
  private pend: Buffer = Buffer.alloc(0);
  private skip = 0;
  private fieldsLeft = 0;
  private readonly countRows: boolean;
  constructor(private readonly binary: boolean, opts: { rows?: boolean } = {}) {
    this.countRows = opts.rows ?? true;
  }

  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    if (!this.countRows) return;
    if (!this.binary) {
      let i = chunk.indexOf(10);
      while (i >= 0) {
        this.rows++;
        i = chunk.indexOf(10, i + 1);
      }
      return;
    }
    let i = 0;
    while (i < chunk.length && this.state !== 'done') {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      // Collect `need` bytes (usually straight from the chunk, rarely across a chunk boundary).
      let buf: Buffer;
      let at: number;
      if (this.pend.length === 0 && chunk.length - i >= this.need) {
        buf = chunk;
        at = i;
        i += this.need;
      } else {
        const n = Math.min(this.need - this.pend.length, chunk.length - i);
        this.pend = Buffer.concat([this.pend, chunk.subarray(i, i + n)]);
        i += n;
        if (this.pend.length < this.need) return;
        buf = this.pend;
        at = 0;
        this.pend = Buffer.alloc(0);
      }
      switch (this.state) {
        case 'header':
          this.skip = buf.readInt32BE(at + 15);
          this.state = 'tuple';
          this.need = 2;
          break;
        case 'tuple': {
          const n = buf.readInt16BE(at);
          if (n === -1) {
            this.state = 'done';
            break;
          }
          this.rows++;
          this.fieldsLeft = n;
          if (n > 0) {
            this.state = 'field';
            this.need = 4;
          }
          break;
        }
        case 'field': {
          const len = buf.readInt32BE(at);
          if (len > 0) this.skip = len;
          this.fieldsLeft--;
          if (this.fieldsLeft === 0) {
            this.state = 'tuple';
            this.need = 2;
          }
          break;
        }
      }
    }
  }
}
