/**
 * Env files as data (never run by a shell), with a line-level document model that can be edited while
 * keeping every other byte of the file.
 *
 * Syntax:
 *   KEY=value              unquoted: trimmed; ` #…` (whitespace then #) starts a comment; `$VAR`/`${VAR}` expanded
 *   export KEY=value       `export ` is accepted and remembered
 *   KEY='literal'          single quotes: taken literally, never expanded, one line
 *   KEY="a\n\"b\" \$x"     double quotes: escapes \n \r \t \" \\ \$ \` (other `\c` kept as is), references expanded,
 *                          may span several lines (the newlines belong to the value)
 *   # comment, blank lines
 * References: `$NAME`, `${NAME}`, `${NAME:-default}` (unset or empty), `${NAME-default}` (unset); they see the
 * earlier files of the cascade and the earlier lines of this file; an unknown name expands to "".
 * Any other line is an error: MigrateError('env_parse', "<file>:<line>: <what>") — the offending text is never
 * echoed, as it may hold a secret.
 *
 * Bytes: files are UTF-8. decodeEnvBytes turns a byte that is not valid UTF-8 into a lone surrogate
 * (U+DC80..U+DCFF, "surrogateescape"), which valid UTF-8 never produces: encodeEnvText gives back exactly the
 * original bytes, so a comment or any line a migration does not edit is written back byte for byte. A VALUE with
 * such a byte is refused ("<file>:<line>: the value of KEY is not valid UTF-8"): it could be neither compared,
 * printed nor copied faithfully.
 */
import { MigrateError, EXIT } from '../errors.js';

export type Quote = '"' | "'" | '';

export interface EnvEntry {
  key: string;
  /** The value exactly as written (quotes included; a multi-line value joined with "\n"). */
  rawValue: string;
  /** The value after unquoting, unescaping and expansion. */
  value: string;
  quote: Quote;
  /** 1-based line of `KEY=` (same as startLine). */
  line: number;
  startLine: number;
  /** Last line of the value (≠ startLine only for multi-line double-quoted values). */
  endLine: number;
  export: boolean;
  /** The file this entry was read from (as passed to the parser). */
  file: string;
  /** Text of startLine before the value (indentation, `export `, key, `=`, spaces). */
  prefix: string;
  /** Text of endLine after the value (spaces, comment), without the line terminator. */
  suffix: string;
  /** true when the value contains a `$` reference (unquoted or double-quoted). */
  hasReference: boolean;
  /** The variables whose (non-empty) values went into `value` through references, in order. */
  references: string[];
}

export interface EnvDocument {
  file: string;
  /** Every line of the file with its own terminator ("\n", "\r\n" or "" for a last line without one). */
  lines: string[];
  entries: EnvEntry[];
  /** Values visible to references before the first line (the earlier files of the cascade). */
  inherited: ReadonlyMap<string, string>;
  /** Name used in error messages (e.g. the project-relative path). */
  display: string;
}

export interface ParseOptions {
  /** Values of the earlier files of the cascade (for `${VAR}`). */
  inherited?: ReadonlyMap<string, string>;
  /** How to name the file in error messages (default: `file`). */
  display?: string;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A byte that was not valid UTF-8, as decodeEnvBytes escaped it (a low surrogate without its high half). */
const ESCAPED_BYTE = /(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/;

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Length of the valid UTF-8 sequence starting at buf[i] (1-4), or 0 when buf[i] does not start one. */
function utf8SequenceLength(buf: Uint8Array, i: number): number {
  const b = buf[i];
  const cont = (j: number, lo = 0x80, hi = 0xbf) => j < buf.length && buf[j] >= lo && buf[j] <= hi;
  if (b < 0x80) return 1;
  if (b >= 0xc2 && b <= 0xdf) return cont(i + 1) ? 2 : 0;
  if (b === 0xe0) return cont(i + 1, 0xa0) && cont(i + 2) ? 3 : 0;
  if (b === 0xed) return cont(i + 1, 0x80, 0x9f) && cont(i + 2) ? 3 : 0;
  if (b >= 0xe1 && b <= 0xef) return cont(i + 1) && cont(i + 2) ? 3 : 0;
  if (b === 0xf0) return cont(i + 1, 0x90) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  if (b >= 0xf1 && b <= 0xf3) return cont(i + 1) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  if (b === 0xf4) return cont(i + 1, 0x80, 0x8f) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  return 0;
}

/** File bytes as text: UTF-8, each invalid byte escaped as U+DC00+byte (see the header); a BOM is kept. */
export function decodeEnvBytes(buf: Uint8Array): string {
  try {
    return strictUtf8.decode(buf);
  } catch {
    // some byte is not valid UTF-8: decode the valid runs, escape the rest byte by byte
  }
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  let out = '';
  let run = 0;
  let i = 0;
  while (i < b.length) {
    const n = utf8SequenceLength(b, i);
    if (n > 0) {
      i += n;
      continue;
    }
    out += b.toString('utf8', run, i) + String.fromCharCode(0xdc00 + b[i]);
    i++;
    run = i;
  }
  return out + b.toString('utf8', run, b.length);
}

/** The bytes of text from decodeEnvBytes (escaped bytes back as they were). */
export function encodeEnvText(text: string): Buffer {
  if (!ESCAPED_BYTE.test(text)) return Buffer.from(text, 'utf8');
  const parts: Buffer[] = [];
  let run = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xdc80 && c <= 0xdcff && !(i > 0 && text.charCodeAt(i - 1) >= 0xd800 && text.charCodeAt(i - 1) <= 0xdbff)) {
      parts.push(Buffer.from(text.slice(run, i), 'utf8'), Buffer.of(c - 0xdc00));
      run = i + 1;
    }
  }
  parts.push(Buffer.from(text.slice(run), 'utf8'));
  return Buffer.concat(parts);
}

/** true when text (from decodeEnvBytes) holds a byte that was not valid UTF-8. */
export function hasInvalidUtf8(text: string): boolean {
  return ESCAPED_BYTE.test(text);
}

function parseError(display: string, line: number, what: string, hint: string): MigrateError {
  return new MigrateError('env_parse', `${display}:${line}: ${what}`, { hint, exitCode: EXIT.failed });
}

/** Split into lines that keep their terminators; `lines.join('')` is the original text. */
export function splitLines(text: string): string[] {
  if (text === '') return [];
  const out: string[] = [];
  let start = 0;
  for (;;) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) {
      if (start < text.length) out.push(text.slice(start));
      return out;
    }
    out.push(text.slice(start, nl + 1));
    start = nl + 1;
  }
}

function stripEol(line: string): string {
  if (line.endsWith('\r\n')) return line.slice(0, -2);
  if (line.endsWith('\n')) return line.slice(0, -1);
  return line;
}

function eolOf(line: string): string {
  if (line.endsWith('\r\n')) return '\r\n';
  if (line.endsWith('\n')) return '\n';
  return '';
}

type Lookup = (name: string) => string | undefined;

/**
 * Read a reference at s[pos] === '$'. Returns the expansion and the index after it, or undefined when
 * the `$` is literal (not followed by a name or a well-formed `${…}`).
 */
function readReference(s: string, pos: number, lookup: Lookup, refs: string[]): { text: string; end: number } | undefined {
  const used = (name: string, v: string | undefined) => {
    if (v) refs.push(name);
    return v ?? '';
  };
  const next = s[pos + 1];
  if (next === '{') {
    const close = s.indexOf('}', pos + 2);
    if (close < 0) return undefined;
    const body = s.slice(pos + 2, close);
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)(.*))?$/s.exec(body);
    if (!m) return undefined;
    const v = lookup(m[1]);
    let text: string;
    if (m[2] === ':-' && (v === undefined || v === '')) text = expandUnquoted(m[3], lookup, refs);
    else if (m[2] === '-' && v === undefined) text = expandUnquoted(m[3], lookup, refs);
    else text = used(m[1], v);
    return { text, end: close + 1 };
  }
  const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(pos + 1));
  if (!m) return undefined;
  return { text: used(m[0], lookup(m[0])), end: pos + 1 + m[0].length };
}

function expandUnquoted(s: string, lookup: Lookup, refs: string[]): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === '$') {
      const r = readReference(s, i, lookup, refs);
      if (r) {
        out += r.text;
        i = r.end;
        continue;
      }
    }
    out += c;
    i++;
  }
  return out;
}

const AFTER_QUOTE = /^[ \t]*(#.*)?$/;

/** Parse env-file text into a document (entries with provenance + the original lines). */
export function parseEnvDocument(text: string, file: string, opts: ParseOptions = {}): EnvDocument {
  const display = opts.display ?? file;
  const inherited = opts.inherited ?? new Map<string, string>();
  const lines = splitLines(text);
  const local = new Map<string, string>();
  const lookup: Lookup = (n) => (local.has(n) ? local.get(n) : inherited.get(n));
  const entries: EnvEntry[] = [];

  let i = 0;
  while (i < lines.length) {
    const lineNo = i + 1;
    const content = stripEol(lines[i]);
    if (/^\s*$/.test(content) || /^\s*#/.test(content)) {
      i++;
      continue;
    }
    const eq = content.indexOf('=');
    if (eq < 0) {
      throw parseError(display, lineNo, "expected KEY=value, found a line without '='", 'each line must be KEY=value, a # comment or blank; a value spanning lines must be in double quotes');
    }
    const km = /^\s*(export[ \t]+)?(.*?)\s*$/.exec(content.slice(0, eq))!;
    const isExport = km[1] !== undefined;
    const key = km[2];
    if (!NAME.test(key)) {
      throw parseError(display, lineNo, key === '' ? "missing variable name before '='" : `invalid variable name "${key.slice(0, 60)}"`, 'a name starts with a letter or _ and has only letters, digits and _ (e.g. MY_KEY=value)');
    }
    const ws = /^[ \t]*/.exec(content.slice(eq + 1))![0];
    const valueStart = eq + 1 + ws.length;
    const prefix = content.slice(0, valueStart);
    const v = content.slice(valueStart);
    let entry: Omit<EnvEntry, 'key' | 'line' | 'startLine' | 'export' | 'file' | 'prefix' | 'references'>;
    const references: string[] = [];

    if (v.startsWith("'")) {
      const close = v.indexOf("'", 1);
      if (close < 0) throw parseError(display, lineNo, `unterminated single quote in the value of ${key}`, "close the quote on the same line (single-quoted values cannot span lines; use double quotes with \\n)");
      const after = v.slice(close + 1);
      if (!AFTER_QUOTE.test(after)) throw parseError(display, lineNo, `unexpected text after the closing quote of ${key}`, 'quote the whole value, and put a space before a # comment');
      entry = { rawValue: v.slice(0, close + 1), value: v.slice(1, close), quote: "'", endLine: lineNo, suffix: after, hasReference: false };
      i++;
    } else if (v.startsWith('"')) {
      let out = '';
      let raw = '"';
      let hasReference = false;
      let cur = v;
      let pos = 1;
      let endIdx = i;
      let closed = -1;
      for (;;) {
        while (pos < cur.length) {
          const c = cur[pos];
          if (c === '\\' && pos + 1 < cur.length) {
            const n = cur[pos + 1];
            const map: Record<string, string> = { n: '\n', r: '\r', t: '\t', '"': '"', '\\': '\\', $: '$', '`': '`' };
            out += n in map ? map[n] : c + n;
            pos += 2;
            continue;
          }
          if (c === '"') {
            closed = pos;
            break;
          }
          if (c === '$') {
            const r = readReference(cur, pos, lookup, references);
            if (r) {
              hasReference = true;
              out += r.text;
              pos = r.end;
              continue;
            }
          }
          out += c;
          pos++;
        }
        if (closed >= 0) {
          raw += cur.slice(endIdx === i ? 1 : 0, closed + 1);
          break;
        }
        raw += cur.slice(endIdx === i ? 1 : 0) + '\n';
        out += '\n';
        endIdx++;
        if (endIdx >= lines.length) {
          throw parseError(display, lineNo, `unterminated double quote in the value of ${key} (no closing " until the end of the file)`, 'close the quote; write a literal " inside double quotes as \\"');
        }
        cur = stripEol(lines[endIdx]);
        pos = 0;
      }
      const after = cur.slice(closed + 1);
      if (!AFTER_QUOTE.test(after)) throw parseError(display, endIdx + 1, `unexpected text after the closing quote of ${key}`, 'quote the whole value, and put a space before a # comment');
      entry = { rawValue: raw, value: out, quote: '"', endLine: endIdx + 1, suffix: after, hasReference };
      i = endIdx + 1;
    } else {
      let rawEnd: number;
      if (ws.length > 0 && v.startsWith('#')) rawEnd = 0;
      else {
        const m = /[ \t]#/.exec(v);
        rawEnd = m ? m.index : v.length;
      }
      const rawValue = v.slice(0, rawEnd).replace(/[ \t]+$/, '');
      entry = { rawValue, value: expandUnquoted(rawValue, lookup, references), quote: '', endLine: lineNo, suffix: v.slice(rawValue.length), hasReference: /\$(\{|[A-Za-z_])/.test(rawValue) };
      i++;
    }
    const bad = ESCAPED_BYTE.exec(entry.rawValue);
    if (bad) {
      const at = lineNo + (entry.rawValue.slice(0, bad.index).match(/\n/g)?.length ?? 0);
      throw parseError(display, at, `the value of ${key} is not valid UTF-8`, 'env files are read as UTF-8: save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`), then run the command again');
    }
    const e: EnvEntry = { key, line: lineNo, startLine: lineNo, export: isExport, file, prefix, ...entry, references };
    entries.push(e);
    local.set(key, e.value);
  }
  return { file, lines, entries, inherited, display };
}

/** The effective values of one document (last occurrence of a key wins). */
export function documentValues(doc: EnvDocument): Map<string, EnvEntry> {
  const m = new Map<string, EnvEntry>();
  for (const e of doc.entries) m.set(e.key, e);
  return m;
}

export function serialize(doc: EnvDocument): string {
  return doc.lines.join('');
}

/** The line terminator the file uses (its first one), "\n" for a file without any. */
export function documentEol(doc: EnvDocument): string {
  for (const l of doc.lines) {
    const e = eolOf(l);
    if (e) return e;
  }
  return '\n';
}

/**
 * Characters both a POSIX shell and this parser take literally in an unquoted value: no blanks, quotes, `$`, `` ` ``,
 * `\\`, `;`, `&`, `|`, `<`, `>`, `(`, `)`, `#`, `~`, `*`, `?`, `[`, `!`, `{`, `}` and nothing outside ASCII.
 */
const SHELL_PLAIN = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * Can `value` be written so that a shell sourcing the file and this parser both read exactly it? Not with a NUL
 * (no shell variable holds one) nor a carriage return right before a line feed (the parser takes CR LF inside a
 * quoted value as a line end, a shell keeps the CR).
 */
export function isWritableValue(value: string): boolean {
  return !/\0|\r\n/.test(value);
}

/** Double quotes as a shell reads them: only `\\`, `"`, `$` and `` ` `` escaped; newlines and CRs written as they are. */
function doubleQuote(v: string): string {
  return '"' + v.replace(/[\\"$`]/g, (c) => '\\' + c) + '"';
}

/**
 * The text to write for `value` so that this parser AND a shell sourcing the file (`set -a; . ./.env.staging`)
 * both read exactly `value`, and the shell runs nothing: unquoted only when every character is plain
 * (SHELL_PLAIN), else single quotes (everything literal) when the value has no `'`, CR or newline, else double
 * quotes with `\\`, `"`, `$` and `` ` `` escaped and newlines kept as real line breaks. `prefer` is the quoting style
 * to keep when it can hold the value. A value that isWritableValue refuses → MigrateError 'env_unwritable_value'.
 */
export function formatValue(value: string, prefer: Quote = ''): string {
  if (!isWritableValue(value)) {
    throw new MigrateError('env_unwritable_value', 'a value with a NUL byte or a carriage return before a line feed cannot be written to an env file', {
      hint: 'such a value reads differently in a shell and in an env-file parser: set it by hand',
    });
  }
  if (value === '') return prefer === '' ? '' : prefer + prefer;
  if (prefer === '"') return doubleQuote(value);
  if (prefer === '' && SHELL_PLAIN.test(value)) return value;
  if (!/['\r\n]/.test(value)) return `'${value}'`;
  return doubleQuote(value);
}

function reparse(doc: EnvDocument): void {
  const fresh = parseEnvDocument(serialize(doc), doc.file, { inherited: doc.inherited, display: doc.display });
  doc.lines = fresh.lines;
  doc.entries = fresh.entries;
}

/**
 * Set the value of the LAST line defining `key` (the one that wins), keeping its indentation, `export`, trailing
 * comment, quoting style (when it can hold the value) and line terminator. Blanks around `=` are dropped and a
 * comment is kept apart from the value by a blank, as a shell needs (`KEY= value` would run `value`; `'v'#c` is the
 * value `v#c`). A multi-line value is replaced by the new value (one line unless it holds newlines).
 * Returns false when the document has no such key (nothing changed).
 */
export function setValue(doc: EnvDocument, key: string, value: string): boolean {
  let e: EnvEntry | undefined;
  for (const x of doc.entries) if (x.key === key) e = x;
  if (!e) return false;
  const eol = eolOf(doc.lines[e.endLine - 1]);
  // Indentation (a byte-order mark included) and `export `: what the line has before the key.
  const lead = e.prefix.slice(0, e.prefix.indexOf('=')).replace(/\s+$/, '').slice(0, -key.length);
  const suffix = e.suffix === '' || /^[ \t]/.test(e.suffix) ? e.suffix : ' ' + e.suffix;
  const text = lead + key + '=' + formatValue(value, e.quote) + suffix + eol;
  doc.lines.splice(e.startLine - 1, e.endLine - e.startLine + 1, text);
  reparse(doc);
  return true;
}

/**
 * Append `KEY=value` lines at the end, under `# <comment>` when given, separated from the content above by one
 * blank line. A last line without terminator gets one first (the file's own style).
 */
export function appendEntries(doc: EnvDocument, entries: { key: string; value: string; quote?: Quote }[], comment?: string): void {
  if (entries.length === 0) return;
  for (const x of entries) if (!NAME.test(x.key)) throw new MigrateError('env_invalid_key', `cannot write invalid variable name "${x.key}"`);
  const eol = documentEol(doc);
  const n = doc.lines.length;
  if (n > 0 && eolOf(doc.lines[n - 1]) === '') doc.lines[n - 1] += eol;
  if (n > 0 && stripEol(doc.lines[n - 1]).trim() !== '') doc.lines.push(eol);
  if (comment !== undefined) doc.lines.push(`# ${comment.replace(/[\r\n]+/g, ' ')}${eol}`);
  for (const x of entries) doc.lines.push(`${x.key}=${formatValue(x.value, x.quote ?? '')}${eol}`);
  reparse(doc);
}
