/**
 * The only writer to stdout/stderr. Secrets are masked where values are produced; as a last line, every byte of
 * text goes through `scrub`, which replaces the secret values of the loaded environments that are long enough to
 * be unique (never a short value, a JSON literal or a word of the output itself — see secrets.ts isScrubbable), so
 * a secret cannot leak through a server's error text either. A JSON document is scrubbed leaf by leaf before it is
 * serialised, so it stays valid JSON.
 */
import { isScrubbable, scrubJson, scrubText } from '../env/secrets.js';

export class Output {
  private secrets: string[] = [];
  readonly color: boolean;
  private progressShown = false;

  constructor(opts: { color: boolean; json: boolean }) {
    this.color = opts.color && !opts.json && !!process.stdout.isTTY && !process.env.NO_COLOR;
    this.json = opts.json;
  }
  readonly json: boolean;

  addSecrets(values: string[]): void {
    for (const v of values) if (isScrubbable(v) && !this.secrets.includes(v)) this.secrets.push(v);
  }

  scrub(text: string): string {
    return scrubText(text, this.secrets);
  }

  /** Human text on stdout (never used with --json). */
  out(text: string): void {
    this.clearProgress();
    process.stdout.write(this.scrub(text));
  }

  /** Logs, prompts and errors on stderr. */
  err(text: string): void {
    this.clearProgress();
    process.stderr.write(this.scrub(text));
  }

  /** The one JSON document of a --json run. */
  document(value: unknown): void {
    process.stdout.write(JSON.stringify(scrubJson(value, this.secrets), null, 2) + '\n');
  }

  /** One line of NDJSON on stdout (sync --watch --json: one event per line). */
  line(value: unknown): void {
    this.clearProgress();
    process.stdout.write(this.scrub(JSON.stringify(value)) + '\n');
  }

  /** A transient progress line on a TTY stderr (nothing otherwise, nothing with --json). */
  progress(line: string): void {
    if (this.json || !process.stderr.isTTY) return;
    process.stderr.write('\r\x1b[2K' + this.scrub(line));
    this.progressShown = true;
  }

  private clearProgress(): void {
    if (this.progressShown) {
      process.stderr.write('\r\x1b[2K');
      this.progressShown = false;
    }
  }

  paint(code: 'red' | 'green' | 'yellow' | 'dim' | 'bold' | 'cyan', text: string): string {
    if (!this.color) return text;
    const codes = { red: 31, green: 32, yellow: 33, dim: 2, bold: 1, cyan: 36 } as const;
    return `\x1b[${codes[code]}m${text}\x1b[0m`;
  }
}
