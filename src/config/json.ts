/**
 * JSON as text: server.json is edited where a value changes, never re-serialised, so every other byte of the file
 * (field order, indentation, spacing, line endings, a final newline or its absence) stays as it was.
 *
 * setJsonLeaf(text, path, value) replaces the text of the value at `path`, or inserts the member (and the objects
 * leading to it) after the last member of the deepest existing object, in the style the file already uses: its
 * line ending, its indentation unit, its `":"` spacing, one line or several as the object around it.
 */

/** JSON with sorted object keys: equality of JSON values independent of key order. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'undefined';
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
    .join(',')}}`;
}

type JsonNode =
  | { kind: 'object'; start: number; end: number; members: JsonMember[] }
  | { kind: 'array'; start: number; end: number; items: JsonNode[] }
  | { kind: 'scalar'; start: number; end: number };

interface JsonMember {
  key: string;
  keyStart: number;
  keyEnd: number;
  value: JsonNode;
}

/** Parse keeping the offsets of every value and key. Throws an Error on invalid JSON. */
function parseJsonText(text: string): JsonNode {
  let i = text.startsWith('\uFEFF') ? 1 : 0;
  const fail = (what: string): never => {
    throw new Error(`${what} at offset ${i}`);
  };
  const ws = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const str = (): [string, number, number] => {
    const start = i;
    if (text[i] !== '"') fail('expected a string');
    i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    if (i >= text.length) fail('unterminated string');
    i++;
    return [JSON.parse(text.slice(start, i)) as string, start, i];
  };
  const value = (): JsonNode => {
    ws();
    const start = i;
    const c = text[i];
    if (c === '{') {
      i++;
      const members: JsonMember[] = [];
      ws();
      if (text[i] === '}') {
        i++;
        return { kind: 'object', start, end: i, members };
      }
      for (;;) {
        ws();
        const [key, keyStart, keyEnd] = str();
        ws();
        if (text[i] !== ':') fail("expected ':'");
        i++;
        members.push({ key, keyStart, keyEnd, value: value() });
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return { kind: 'object', start, end: i, members };
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      const items: JsonNode[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return { kind: 'array', start, end: i, items };
      }
      for (;;) {
        items.push(value());
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return { kind: 'array', start, end: i, items };
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') {
      str();
      return { kind: 'scalar', start, end: i };
    }
    const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 400));
    if (!m) fail('unexpected character');
    i += m![0].length;
    return { kind: 'scalar', start, end: i };
  };
  const root = value();
  ws();
  if (i !== text.length) fail('unexpected text after the value');
  return root;
}

interface Style {
  eol: string;
  /** One level of indentation. */
  unit: string;
  /** Between a key and its value, e.g. ': '. */
  colon: string;
  /** Between the members of a one-line object, e.g. ', '. */
  comma: string;
}

/** The indentation of the line holding `pos`. */
function lineIndent(text: string, pos: number): string {
  const start = text.lastIndexOf('\n', pos - 1) + 1;
  return /^[ \t]*/.exec(text.slice(start, pos))![0];
}

function detectStyle(text: string, root: JsonNode): Style {
  const style: Style = { eol: text.includes('\r\n') ? '\r\n' : '\n', unit: '  ', colon: ': ', comma: ', ' };
  let colonSeen = false;
  let commaSeen = false;
  let unitSeen = false;
  const visit = (n: JsonNode): void => {
    if (n.kind !== 'object') {
      if (n.kind === 'array') n.items.forEach(visit);
      return;
    }
    const multi = text.slice(n.start, n.end).includes('\n');
    if (!unitSeen && multi && n.members.length > 0) {
      const outer = lineIndent(text, n.start);
      const inner = lineIndent(text, n.members[0].keyStart);
      if (inner.startsWith(outer) && inner.length > outer.length) {
        style.unit = inner.slice(outer.length);
        unitSeen = true;
      }
    }
    if (!commaSeen && !multi && n.members.length > 1) {
      const sep = text.slice(n.members[0].value.end, n.members[1].keyStart);
      if (/^[ \t]*,[ \t]*$/.test(sep)) {
        style.comma = sep.trim() === ',' ? sep.replace(/^[ \t]*/, '') : sep;
        commaSeen = true;
      }
    }
    for (const m of n.members) {
      if (!colonSeen) {
        const sep = text.slice(m.keyEnd, m.value.start);
        if (/^[ \t]*:[ \t]*$/.test(sep)) {
          style.colon = sep;
          colonSeen = true;
        }
      }
      visit(m.value);
    }
  };
  visit(root);
  return style;
}

/** JSON text of `v` in the file's style: on one line, or over several lines indented from `base`. */
function serialize(v: unknown, style: Style, base: string, inline: boolean): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  const isArray = Array.isArray(v);
  const entries: [string | undefined, unknown][] = isArray ? (v as unknown[]).map((x) => [undefined, x]) : Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
  const [open, close] = isArray ? ['[', ']'] : ['{', '}'];
  if (entries.length === 0) return open + close;
  const item = ([k, x]: [string | undefined, unknown], b: string) => (k === undefined ? '' : JSON.stringify(k) + style.colon) + serialize(x, style, b, inline);
  if (inline) return open + entries.map((e) => item(e, base)).join(style.comma) + close;
  const inner = base + style.unit;
  return open + style.eol + entries.map((e) => inner + item(e, inner)).join(',' + style.eol) + style.eol + base + close;
}

/** `{a: {b: value}}` for rest ['a', 'b']; `value` for []. */
function nest(rest: string[], value: unknown): unknown {
  return rest.reduceRight<unknown>((acc, k) => ({ [k]: acc }), value);
}

/**
 * `text` with the value at `path` set to `value`: the old value's text replaced, or a member inserted. The root must
 * be an object. Every byte outside the edited span is kept.
 */
export function setJsonLeaf(text: string, path: string[], value: unknown): string {
  if (path.length === 0) throw new Error('setJsonLeaf: empty path');
  const root = parseJsonText(text);
  if (root.kind !== 'object') throw new Error('setJsonLeaf: the JSON text is not an object');
  const style = detectStyle(text, root);
  const fileInline = !text.slice(root.start, root.end).includes('\n');
  let obj = root;
  for (let i = 0; i < path.length; i++) {
    const key = path[i];
    const rest = path.slice(i + 1);
    let member: JsonMember | undefined;
    for (const m of obj.members) if (m.key === key) member = m; // JSON.parse keeps the last of duplicate keys
    if (member && rest.length > 0 && member.value.kind === 'object') {
      obj = member.value;
      continue;
    }
    const newValue = nest(rest, value);
    if (member) {
      const old = member.value;
      const oldText = text.slice(old.start, old.end);
      const inline = old.kind === 'scalar' ? !text.slice(obj.start, obj.end).includes('\n') : !oldText.includes('\n');
      return text.slice(0, old.start) + serialize(newValue, style, lineIndent(text, member.keyStart), inline) + text.slice(old.end);
    }
    return insertMember(text, obj, key, newValue, style, fileInline);
  }
  return text; // not reached
}

function insertMember(text: string, obj: Extract<JsonNode, { kind: 'object' }>, key: string, value: unknown, style: Style, fileInline: boolean): string {
  const objInline = !text.slice(obj.start, obj.end).includes('\n');
  const last = obj.members[obj.members.length - 1];
  if (last) {
    let insertion: string;
    if (objInline) {
      const sep = obj.members.length > 1 ? text.slice(obj.members[0].value.end, obj.members[1].keyStart) : style.comma;
      insertion = sep + JSON.stringify(key) + style.colon + serialize(value, style, '', true);
    } else {
      const indent = lineIndent(text, last.keyStart);
      insertion = ',' + style.eol + indent + JSON.stringify(key) + style.colon + serialize(value, style, indent, false);
    }
    return text.slice(0, last.value.end) + insertion + text.slice(last.value.end);
  }
  // an empty object: on one line in a one-line file, else opened over lines
  if (fileInline) return text.slice(0, obj.start) + '{' + JSON.stringify(key) + style.colon + serialize(value, style, '', true) + '}' + text.slice(obj.end);
  const base = lineIndent(text, obj.start);
  const inner = base + style.unit;
  return text.slice(0, obj.start) + '{' + style.eol + inner + JSON.stringify(key) + style.colon + serialize(value, style, inner, false) + style.eol + base + '}' + text.slice(obj.end);
}
