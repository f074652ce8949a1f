// YAML for the console's editor: toYaml(value) writes a JSON value as block YAML (as kubectl get -o
// yaml prints it), parseYaml(text) reads it back, together with ordinary hand edits.
//
// What parseYaml reads (a subset of YAML 1.2; anything else is a YamlError naming the line):
//   - block mappings `key: value` and block sequences `- item` (also `- key: v` compact mappings,
//     `key:` followed by a sequence at the same indentation, `- - nested`), indentation by spaces;
//   - scalars: plain (null ~ true false, integers incl. 0x/0o, floats incl. .inf/.nan, else a
//     string), 'single quoted' ('' is a quote), "double quoted" (JSON's escapes and YAML's \e \0 ...),
//     block scalars | and > with chomping (- +) and an indentation indicator;
//   - flow collections on one line: [a, "b", {c: 1}] and {a: 1, b: [x]};
//   - comments (# at a line's start or after a blank), blank lines, one document (--- and ... ignored).
// Not read: anchors, aliases, tags, several documents, complex keys, plain or quoted scalars
// continued on the next line. JSON itself is read too (a flow collection on one line, or JSON
// written over several lines is refused: then paste it on one line or as YAML).
//
// toYaml quotes every string that a YAML 1.1 or 1.2 reader could take for something else (yes/no,
// numbers, leading indicators, ": " ...), writes multi-line strings as literal blocks when they
// round-trip exactly, and sorts nothing: keys keep the object's order.

export class YamlError extends Error {
  constructor(line, message) {
    super(line ? `YAML line ${line}: ${message}` : `YAML: ${message}`);
    this.line = line;
  }
}

// ----------------------------------------------------------------------------- emitter

const RESERVED = /^(?:~|null|Null|NULL|true|True|TRUE|false|False|FALSE|y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF|=|<<)$/;
const NUMBERISH = /^[-+]?(?:\.?[0-9][0-9_.:eE+-]*|0[xob][0-9a-fA-F_]+|\.(?:inf|Inf|INF|nan|NaN|NAN))$/;

function plainOk(s) {
  if (s === "" || RESERVED.test(s) || NUMBERISH.test(s)) return false;
  // No leading indicator (a dash only when a letter or digit follows: -Xmx1g), no leading or
  // trailing blank, nothing a reader stops at (": ", " #", a final ":"), no control characters.
  if (/^[-?:,[\]{}#&*!|>'"%@`]/.test(s) && !/^-[A-Za-z0-9]/.test(s)) return false;
  if (/^\s|\s$|: |:$| #|[\t\n\r]/.test(s)) return false;
  if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029\ufeff]/.test(s)) return false;
  return true;
}

function quoted(s) {
  // JSON's escapes are YAML's too; YAML has no \/ and JSON.stringify writes none.
  return JSON.stringify(s).replace(/[\u007f-\u009f\u2028\u2029\ufeff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function scalarString(s) {
  return plainOk(s) ? s : quoted(s);
}

function literalBlock(s, indent) {
  // A literal block round-trips when no line has a tab or control character, the first line does
  // not start with a space (that would need an indentation indicator) and no line is only blanks
  // before the last (they would be read as more-indented lines).
  if (!s.includes("\n") || /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\ufeff\r]/.test(s)) return null;
  const trailing = s.match(/\n*$/)[0].length;
  const body = s.slice(0, s.length - trailing);
  if (!body || body.startsWith(" ")) return null;
  const lines = body.split("\n");
  if (lines.some((l) => / +$/.test(l) && l.trim() === "")) return null;
  const chomp = trailing === 0 ? "-" : trailing === 1 ? "" : "+";
  const pad = " ".repeat(indent);
  const extra = trailing > 1 ? "\n".repeat(trailing - 1) : "";
  return `|${chomp}\n` + lines.map((l) => (l ? pad + l : "")).join("\n") + extra;
}

function scalar(v) {
  if (v === null || v === undefined) return "null";
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "number") return Number.isFinite(v) ? String(v) : v > 0 ? ".inf" : v < 0 ? "-.inf" : ".nan";
  return scalarString(String(v));
}

const isMap = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const empty = (v) => (Array.isArray(v) ? !v.length : isMap(v) ? !Object.keys(v).length : false);

// A value after "key:" or "- " on the same line; a multi-line string as a literal block whose
// lines are indented by `blockIndent`.
function inlineValue(v, blockIndent) {
  if (Array.isArray(v)) return "[]";
  if (isMap(v)) return "{}";
  if (typeof v === "string") {
    const block = literalBlock(v, blockIndent);
    if (block) return block;
  }
  return scalar(v);
}

function emitMap(obj, indent) {
  const pad = " ".repeat(indent);
  return Object.keys(obj).map((k) => {
    const v = obj[k];
    const key = `${pad}${scalarString(k)}:`;
    if (isMap(v) && !empty(v)) return `${key}\n${emitMap(v, indent + 2)}`;
    // A list under a key at the key's own indentation, as kubectl writes it.
    if (Array.isArray(v) && !empty(v)) return `${key}\n${emitSeq(v, indent)}`;
    return `${key} ${inlineValue(v, indent + 2)}`;
  }).join("\n");
}

function emitSeq(arr, indent) {
  const pad = " ".repeat(indent);
  return arr.map((item) => {
    if ((isMap(item) || Array.isArray(item)) && !empty(item)) {
      const inner = isMap(item) ? emitMap(item, indent + 2) : emitSeq(item, indent + 2);
      return `${pad}- ${inner.slice(indent + 2)}`;
    }
    return `${pad}- ${inlineValue(item, indent + 2)}`;
  }).join("\n");
}

export function toYaml(value) {
  if (isMap(value) && !empty(value)) return emitMap(value, 0) + "\n";
  if (Array.isArray(value) && !empty(value)) return emitSeq(value, 0) + "\n";
  if (typeof value === "string") return scalarString(value) + "\n";
  return inlineValue(value, 2) + "\n";
}

// ----------------------------------------------------------------------------- parser

function resolvePlain(s) {
  if (/^(?:~|null|Null|NULL|)$/.test(s)) return null;
  if (/^(?:true|True|TRUE)$/.test(s)) return true;
  if (/^(?:false|False|FALSE)$/.test(s)) return false;
  if (/^[-+]?[0-9]+$/.test(s)) return parseInt(s, 10);
  if (/^0o[0-7]+$/.test(s)) return parseInt(s.slice(2), 8);
  if (/^0x[0-9a-fA-F]+$/.test(s)) return parseInt(s.slice(2), 16);
  if (/^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/.test(s)) return parseFloat(s);
  if (/^[-+]?\.(?:inf|Inf|INF)$/.test(s)) return s.startsWith("-") ? -Infinity : Infinity;
  if (/^\.(?:nan|NaN|NAN)$/.test(s)) return NaN;
  return s;
}

const ESCAPES = { "0": "\0", a: "\x07", b: "\b", t: "\t", "\t": "\t", n: "\n", v: "\v", f: "\f", r: "\r", e: "\x1b",
                  " ": " ", '"': '"', "/": "/", "\\": "\\", N: "\u0085", _: "\u00a0", L: "\u2028", P: "\u2029" };

// Reads one scalar or flow collection of `text` from `pos`; returns [value, next position].
class Flow {
  constructor(text, line) {
    this.text = text;
    this.line = line;
    this.pos = 0;
  }

  fail(message) { throw new YamlError(this.line, message); }

  blanks() { while (this.pos < this.text.length && /[ \t]/.test(this.text[this.pos])) this.pos++; }

  double() {
    let out = "";
    this.pos++;
    for (;;) {
      if (this.pos >= this.text.length) this.fail("a double-quoted string is not closed (on this line)");
      const c = this.text[this.pos++];
      if (c === '"') return out;
      if (c !== "\\") { out += c; continue; }
      const e = this.text[this.pos++];
      const hex = { x: 2, u: 4, U: 8 }[e];
      if (hex) {
        const digits = this.text.slice(this.pos, this.pos + hex);
        if (!new RegExp(`^[0-9a-fA-F]{${hex}}$`).test(digits)) this.fail(`bad escape \\${e}${digits}`);
        out += String.fromCodePoint(parseInt(digits, 16));
        this.pos += hex;
      } else if (e in ESCAPES) {
        out += ESCAPES[e];
      } else {
        this.fail(`unknown escape \\${e === undefined ? "" : e}`);
      }
    }
  }

  single() {
    let out = "";
    this.pos++;
    for (;;) {
      if (this.pos >= this.text.length) this.fail("a single-quoted string is not closed (on this line)");
      const c = this.text[this.pos++];
      if (c === "'") {
        if (this.text[this.pos] === "'") { out += "'"; this.pos++; continue; }
        return out;
      }
      out += c;
    }
  }

  plain(inFlow) {
    const start = this.pos;
    while (this.pos < this.text.length) {
      const c = this.text[this.pos];
      if (inFlow && /[,[\]{}]/.test(c)) break;
      if (c === ":" && (this.pos + 1 >= this.text.length || /[ \t]/.test(this.text[this.pos + 1]) ||
                        (inFlow && /[,[\]{}]/.test(this.text[this.pos + 1])))) break;
      if (c === "#" && /[ \t]/.test(this.text[this.pos - 1] || "")) break;
      this.pos++;
    }
    return this.text.slice(start, this.pos).trim();
  }

  // A value in a flow collection (or a whole one-line value).
  value(inFlow) {
    this.blanks();
    const c = this.text[this.pos];
    if (c === "[") return this.sequence();
    if (c === "{") return this.mapping();
    if (c === '"') return this.double();
    if (c === "'") return this.single();
    if (c === undefined) return null;
    if (/[&*!]/.test(c)) this.fail("anchors, aliases and tags are not supported here");
    if (c === "|" || c === ">") this.fail("a block scalar must end its line");
    if (!inFlow && /^[`@%]/.test(c)) this.fail(`a plain value cannot start with ${c}: quote it`);
    return resolvePlain(this.plain(inFlow));
  }

  sequence() {
    const out = [];
    this.pos++;
    for (;;) {
      this.blanks();
      if (this.text[this.pos] === "]") { this.pos++; return out; }
      if (this.pos >= this.text.length) this.fail("a [ list is not closed (on this line)");
      out.push(this.value(true));
      this.blanks();
      if (this.text[this.pos] === ",") this.pos++;
      else if (this.pos >= this.text.length) this.fail("a [ list is not closed (on this line)");
      else if (this.text[this.pos] !== "]") this.fail(`expected , or ] at column ${this.pos + 1}`);
    }
  }

  mapping() {
    const out = {};
    this.pos++;
    for (;;) {
      this.blanks();
      if (this.text[this.pos] === "}") { this.pos++; return out; }
      if (this.pos >= this.text.length) this.fail("a { mapping is not closed (on this line)");
      const c = this.text[this.pos];
      const key = c === '"' ? this.double() : c === "'" ? this.single() : this.plain(true);
      this.blanks();
      let value = null;
      if (this.text[this.pos] === ":") {
        this.pos++;
        this.blanks();
        value = /[,}]/.test(this.text[this.pos] || "}") ? null : this.value(true);
      }
      out[String(key)] = value;
      this.blanks();
      if (this.text[this.pos] === ",") this.pos++;
      else if (this.pos >= this.text.length) this.fail("a { mapping is not closed (on this line)");
      else if (this.text[this.pos] !== "}") this.fail(`expected , or } at column ${this.pos + 1}`);
    }
  }

  // The rest of the line must be blank or a comment.
  end() {
    this.blanks();
    if (this.pos < this.text.length && this.text[this.pos] !== "#") {
      this.fail(`unexpected ${JSON.stringify(this.text.slice(this.pos, this.pos + 20))} after the value`);
    }
  }
}

function stripComment(s) {
  // A plain value ends where a comment starts (a # after a blank).
  const m = s.match(/(^|[ \t])#/);
  return m ? s.slice(0, m.index).trimEnd() : s.trimEnd();
}

const DASH = /^-(?:[ \t]|$)/;

// A line's key when it is `key: ...` or `key:` (quoted keys too): [key, the rest] or null.
function splitKey(text, line) {
  if (text[0] === '"' || text[0] === "'") {
    const f = new Flow(text, line);
    const key = text[0] === '"' ? f.double() : f.single();
    f.blanks();
    if (text[f.pos] !== ":" || (f.pos + 1 < text.length && !/[ \t]/.test(text[f.pos + 1]))) return null;
    return [key, text.slice(f.pos + 1)];
  }
  if (/^[[{#]/.test(text)) return null;
  const m = text.match(/^(.*?)[ \t]*:(?:[ \t]+|$)/);
  if (!m || m[1] === "" || / #/.test(m[1])) return null;
  const key = resolvePlain(m[1]);
  return [key === null ? "null" : String(key), text.slice(m[0].length)];
}

class Parser {
  constructor(text) {
    const raw = text.replace(/\r\n?/g, "\n").split("\n");
    if (raw.length > 1 && raw[raw.length - 1] === "") raw.pop(); // the final newline ends the last line
    this.lines = raw.map((r, i) => {
      const indent = r.match(/^ */)[0].length;
      const content = r.slice(indent);
      const blank = content.trim() === "" || content.trimStart().startsWith("#");
      return { n: i + 1, raw: r, indent, content, blank };
    });
    this.i = 0;
    this.started = false;
  }

  // The next line with content (not consumed), skipping blanks, comments and document markers.
  skip() {
    while (this.i < this.lines.length) {
      const l = this.lines[this.i];
      if (l.blank) { this.i++; continue; }
      if (l.indent === 0 && /^(?:---|\.\.\.)(?:[ \t]|$)/.test(l.content)) {
        if (l.content.startsWith("---") && this.started) throw new YamlError(l.n, "only one YAML document, please");
        if (stripComment(l.content).length > 3) throw new YamlError(l.n, "put the document on the lines after ---");
        this.i++;
        continue;
      }
      if (/^[ \t]*\t/.test(l.raw)) throw new YamlError(l.n, "indent with spaces, not tabs");
      return l;
    }
    return null;
  }

  peek() {
    const save = this.i;
    const l = this.skip();
    this.i = save;
    return l;
  }

  parse() {
    const first = this.skip();
    this.started = true;
    if (!first) return null;
    const value = this.node(first.indent, first.content, first, -1);
    const rest = this.skip();
    if (rest) throw new YamlError(rest.n, "unexpected indentation or content here");
    return value;
  }

  // The node whose first line is lines[this.i] (line `l`, not consumed yet), starting at column
  // `indent` with text `text`; `parent` is the indentation of what holds it.
  node(indent, text, l, parent) {
    if (DASH.test(text)) return this.sequence(indent, text, l);
    if (splitKey(text, l.n)) return this.mapping(indent, text, l);
    this.i++;
    return this.inline(text, l, parent);
  }

  // A value written on its line (after "key:", after "- ", or alone), or a block scalar header.
  inline(text, l, parent) {
    const header = text.match(/^([|>])(?:([-+])([1-9])?|([1-9])([-+])?)?(?:[ \t]+#.*)?[ \t]*$/);
    if (header) {
      const chomp = header[2] || header[5] || "";
      const explicit = header[3] || header[4] || "";
      return this.blockScalar(header[1], chomp, explicit, Math.max(parent, 0), parent);
    }
    const c = text[0];
    let value;
    if (c === "[" || c === "{" || c === '"' || c === "'") {
      const f = new Flow(text, l.n);
      value = f.value(false);
      f.end();
    } else {
      if (/^[&*!]/.test(c)) throw new YamlError(l.n, "anchors, aliases and tags are not supported");
      if (/^[`@%]/.test(c)) throw new YamlError(l.n, `a plain value cannot start with ${c}: quote it`);
      value = resolvePlain(stripComment(text));
    }
    const next = this.peek();
    if (next && next.indent > parent && parent >= 0) {
      throw new YamlError(next.n, "a value continued on the next line is not supported: keep it on one line, or use a | block");
    }
    return value;
  }

  // | and > blocks: the lines indented more than `parent` (or by the explicit indicator).
  blockScalar(style, chomp, explicit, base, parent) {
    const lines = [];
    let indent = explicit ? base + Number(explicit) : null;
    while (this.i < this.lines.length) {
      const l = this.lines[this.i];
      if (l.raw.trim() !== "") {
        if (indent === null) {
          if (l.indent <= parent) break;
          indent = l.indent;
        }
        if (l.indent < indent) break;
        lines.push(l.raw.slice(indent));
      } else {
        lines.push(indent !== null && l.raw.length > indent ? l.raw.slice(indent) : "");
      }
      this.i++;
    }
    let trailing = 0;
    while (lines.length && lines[lines.length - 1].trim() === "") { lines.pop(); trailing++; }
    if (!lines.length) return chomp === "+" ? "\n".repeat(trailing) : "";
    let body;
    if (style === "|") {
      body = lines.join("\n");
    } else {
      body = lines[0];
      for (let k = 1; k < lines.length; k++) {
        const line = lines[k];
        const prev = lines[k - 1];
        if (line === "") body += "\n";
        else if (prev === "") body += line;
        else if (/^[ \t]/.test(line) || /^[ \t]/.test(prev)) body += "\n" + line;
        else body += " " + line;
      }
    }
    if (chomp === "-") return body;
    if (chomp === "+") return body + "\n".repeat(trailing + 1);
    return body + "\n";
  }

  // What follows "key:" or "-" with nothing after it on the line: a nested node, or null.
  nested(indent, sameIndentSequence) {
    const next = this.peek();
    if (!next) return null;
    if (next.indent > indent || (sameIndentSequence && next.indent === indent && DASH.test(next.content))) {
      this.skip();
      return this.node(next.indent, next.content, next, indent);
    }
    return null;
  }

  mapping(indent, text, l) {
    const out = {};
    for (;;) {
      const kv = splitKey(text, l.n);
      if (!kv) throw new YamlError(l.n, `expected "key: value" here, found ${JSON.stringify(text.slice(0, 30))}`);
      const [key, rest] = kv;
      if (Object.prototype.hasOwnProperty.call(out, key)) throw new YamlError(l.n, `the key ${JSON.stringify(key)} appears twice`);
      this.i++;
      const value = rest.trim();
      out[key] = value === "" || value.startsWith("#") ? this.nested(indent, true) : this.inline(value, l, indent);
      const next = this.peek();
      if (!next || next.indent < indent) return out;
      if (next.indent > indent) throw new YamlError(next.n, "unexpected indentation (deeper than the keys above it)");
      if (DASH.test(next.content)) throw new YamlError(next.n, "a list item where a key was expected");
      this.skip();
      l = next;
      text = next.content;
    }
  }

  sequence(indent, text, l) {
    const out = [];
    for (;;) {
      const rest = text.slice(1);
      const content = rest.trimStart();
      if (content === "" || content.startsWith("#")) {
        this.i++;
        out.push(this.nested(indent, false));
      } else {
        // "- item": the item starts at the column after the dash and its blanks, as if on a line
        // of its own there (a compact mapping's further keys line up with that column).
        const column = indent + 1 + (rest.length - content.length);
        if (DASH.test(content) || splitKey(content, l.n)) {
          const inner = { ...l, indent: column, content };
          this.lines[this.i] = inner;
          out.push(this.node(column, content, inner, indent));
        } else {
          this.i++;
          out.push(this.inline(content, l, indent));
        }
      }
      const next = this.peek();
      if (!next || next.indent < indent) return out;
      if (next.indent > indent) throw new YamlError(next.n, "unexpected indentation in a list");
      if (!DASH.test(next.content)) {
        if (splitKey(next.content, next.n)) return out; // the next key of the mapping that holds this list
        throw new YamlError(next.n, "expected a list item (- ...) here");
      }
      this.skip();
      l = next;
      text = next.content;
    }
  }
}

export function parseYaml(text) {
  const s = String(text);
  // JSON is YAML: an edit pasted as JSON (over several lines too) is read as JSON.
  if (/^\s*[[{]/.test(s)) {
    try { return JSON.parse(s); } catch (_) { /* YAML flow style, or not valid: the YAML reader says */ }
  }
  return new Parser(s).parse();
}
