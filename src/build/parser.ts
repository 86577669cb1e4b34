/**
 * The Dockerfile parser: text to a flat list of instruction nodes, with Docker's rules for
 * parser directives (`# syntax=`, `# escape=`, `# check=` before anything else), comments,
 * line continuations (the escape character at the end of a line, comment lines inside a
 * continuation skipped), builder flags (`--from=x` before the arguments), the per-instruction
 * argument forms (JSON array or shell string, `key=value` lists, whitespace-separated words)
 * and heredocs (`<<EOF`, `<<-EOF`, quoted terminators, several per instruction) for RUN, COPY
 * and ADD. No variable is expanded here: that happens when instructions are evaluated.
 *
 * Errors are `DockerfileError`s carrying the line range:
 * `dockerfile parse error on line 3: unterminated heredoc`.
 */
import { BerthError, ErrorKind } from "../base/mod.ts";
import { ShellLex } from "./lex.ts";

/** A heredoc attached to an instruction. */
export interface Heredoc {
  /** The terminator word (quotes removed); also the file name for COPY/ADD. */
  name: string;
  /** `3<<EOF` gives 3; 0 when absent. */
  fileDescriptor: number;
  /** Variables in the content are expanded (the terminator was not quoted). */
  expand: boolean;
  /** `<<-`: leading tabs are stripped from the content and the terminator line. */
  chomp: boolean;
  /** The lines between the instruction and the terminator, newlines included. */
  content: string;
}

/** One instruction as written. */
export interface Node {
  /** The instruction keyword, lower case (`from`, `run`, ...). */
  cmd: string;
  /** The logical line after joining continuations (the instruction keyword included). */
  original: string;
  /** Builder flags (`--from=build`), in order, without interpretation. */
  flags: string[];
  /**
   * Arguments in the form the instruction uses: the JSON array elements, the single shell
   * string, whitespace-separated words, or `[key, value, sep]` triples for ENV and LABEL
   * (sep is "=" or "" for the legacy `ENV key value` form). HEALTHCHECK: type first.
   */
  args: string[];
  /** The arguments were a JSON array (exec form). */
  json: boolean;
  heredocs: Heredoc[];
  /** ONBUILD: the instruction it registers. */
  sub?: Node;
  /** 1-based line of the instruction keyword and of its last line (heredocs included). */
  startLine: number;
  endLine: number;
  /** Comment lines directly above the instruction. */
  comments: string[];
}

/** The parsed file. */
export interface ParseResult {
  nodes: Node[];
  /** The escape character in effect (`\` or a backtick). */
  escape: string;
  /** Parser directives found at the top (`syntax`, `escape`, `check`), lower-case keys. */
  directives: Record<string, string>;
  warnings: string[];
}

/** A Dockerfile syntax or semantic error with its line range. */
export class DockerfileError extends BerthError {
  readonly line: number;
  readonly endLine: number;
  readonly reason: string;
  constructor(reason: string, line: number, endLine = line) {
    super(ErrorKind.InvalidArgument, line > 0 ? `dockerfile parse error on line ${line}: ${reason}` : `dockerfile parse error: ${reason}`, {
      detail: { line, endLine },
    });
    this.line = line;
    this.endLine = endLine;
    this.reason = reason;
  }
}

/** Instructions whose arguments may contain heredocs. */
const HEREDOC_CMDS = new Set(["add", "copy", "run"]);
/** Longest physical line accepted (bufio.Scanner's limit in Docker). */
const MAX_LINE = 65535;
/** Largest Dockerfile accepted. */
export const MAX_DOCKERFILE_SIZE = 16 * 1024 * 1024;

const WS = /[\t\v\f\r ]+/;
const HEREDOC_RE = /^(\d*)<<(-?)\s*([^<]*)$/;

class Directives {
  escape = "\\";
  continuation = Directives.#regex("\\");
  done = false;
  seen = new Map<string, string>();

  static #regex(e: string): RegExp {
    const q = e === "\\" ? "\\\\" : e;
    return new RegExp(`([^${q}])${q}[ \\t]*$|^${q}[ \\t]*$`);
  }

  /** Looks at a (left-trimmed) line while directives are still possible. */
  parseLine(line: string): boolean {
    if (this.done) return false;
    if (!line.startsWith("#")) {
      this.done = true;
      return false;
    }
    const m = /^([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*$/.exec(line.slice(1).replace(/^\s+/u, ""));
    const key = m?.[1]?.toLowerCase() ?? "";
    if (!m || !["syntax", "escape", "check"].includes(key)) {
      this.done = true;
      return false;
    }
    if (this.seen.has(key)) throw new Error(`only one ${key} parser directive can be used`);
    const value = m[2] ?? "";
    this.seen.set(key, value);
    if (key === "escape") {
      if (value !== "`" && value !== "\\") throw new Error(`invalid escape token '${value}' does not match \` or \\`);
      this.escape = value;
      this.continuation = Directives.#regex(value);
    }
    return true;
  }
}

function trimNewline(s: string): string {
  return s.replace(/[\r\n]+$/, "");
}

function trimLeft(s: string): string {
  return s.replace(/^\s+/u, "");
}

function isComment(line: string): boolean {
  return trimLeft(line).startsWith("#");
}

/** Splits text into lines that keep their line endings (the last may have none). */
function splitLines(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (;;) {
    const i = text.indexOf("\n", start);
    if (i < 0) {
      if (start < text.length) out.push(text.slice(start));
      return out;
    }
    out.push(text.slice(start, i + 1));
    start = i + 1;
  }
}

/** Parses a Dockerfile. Throws `DockerfileError` with the line of the problem. */
export function parseDockerfile(text: string): ParseResult {
  if (text.length > MAX_DOCKERFILE_SIZE) throw new DockerfileError(`the Dockerfile is larger than ${MAX_DOCKERFILE_SIZE} bytes`, 0);
  const d = new Directives();
  const lines = splitLines(text.startsWith("\uFEFF") ? text.slice(1) : text);
  const nodes: Node[] = [];
  const warnings: string[] = [];
  let comments: string[] = [];
  let i = 0;
  let current = 0;
  const process = (raw: string, stripLeft: boolean, at: number): string => {
    if (raw.length > MAX_LINE + 1) throw new DockerfileError(`dockerfile line greater than max allowed size of ${MAX_LINE}`, at);
    let t = trimNewline(raw);
    if (stripLeft) t = trimLeft(t);
    try {
      d.parseLine(t);
    } catch (e) {
      throw new DockerfileError((e as Error).message, at);
    }
    return isComment(t) ? "" : t;
  };
  const trimContinuation = (s: string): { line: string; end: boolean } => {
    if (d.continuation.test(s)) return { line: s.replace(d.continuation, "$1"), end: false };
    return { line: s, end: true };
  };

  while (i < lines.length) {
    const raw = lines[i++] ?? "";
    if (isComment(raw)) {
      const c = trimNewline(trimLeft(raw)).slice(1).trim();
      if (c === "") comments = [];
      else comments.push(c);
    }
    const wasDone = d.done;
    const processed = process(raw, true, current + 1);
    if (!wasDone && !d.done && isComment(raw)) comments.pop();
    current++;
    const startLine = current;
    let { line: buf, end } = trimContinuation(processed);
    if (end && buf.length === 0) continue;
    let emptyContinuation = false;
    while (!end && i < lines.length) {
      const next = lines[i++] ?? "";
      const p = process(next, false, current + 1);
      current++;
      if (isComment(next)) continue;
      if (trimLeft(trimNewline(p)).length === 0) {
        emptyContinuation = true;
        continue;
      }
      const t = trimContinuation(p);
      buf += t.line;
      end = t.end;
    }
    if (emptyContinuation) warnings.push(`Empty continuation line found in: ${buf}`);
    let node: Node;
    try {
      node = nodeFromLine(buf, d, comments);
    } catch (e) {
      if (e instanceof DockerfileError) throw e;
      throw new DockerfileError((e as Error).message, startLine, current);
    }
    const target = node.cmd === "onbuild" && node.sub ? node.sub : node;
    if (HEREDOC_CMDS.has(target.cmd) && !target.json && buf.includes("<<")) {
      let docs: Heredoc[];
      try {
        docs = heredocsFromLine(buf);
      } catch (e) {
        throw new DockerfileError((e as Error).message, startLine, current);
      }
      for (const doc of docs) {
        let terminated = false;
        let content = "";
        while (i < lines.length) {
          const l = lines[i++] ?? "";
          current++;
          let candidate = trimNewline(l);
          if (doc.chomp) candidate = candidate.replace(/^\t+/, "");
          if (candidate === doc.name) {
            terminated = true;
            break;
          }
          content += l;
        }
        if (!terminated) throw new DockerfileError("unterminated heredoc", startLine, current);
        doc.content = content;
        target.heredocs.push(doc);
      }
    }
    node.startLine = startLine;
    node.endLine = current;
    if (node.sub) {
      node.sub.startLine = startLine;
      node.sub.endLine = current;
    }
    nodes.push(node);
    comments = [];
  }
  if (nodes.length === 0) throw new DockerfileError("file with no instructions", current);
  return { nodes, escape: d.escape, directives: Object.fromEntries(d.seen), warnings };
}

function nodeFromLine(line: string, d: Directives, comments: string[]): Node {
  const trimmed = line.trim();
  const m = WS.exec(trimmed);
  const cmdWord = m ? trimmed.slice(0, m.index) : trimmed;
  let rest = "";
  let flags: string[] = [];
  if (m) {
    const r = extractFlags(trimmed.slice(m.index + m[0].length), d.escape);
    rest = r.rest.trim();
    flags = r.flags;
  }
  const cmd = cmdWord.toLowerCase();
  const node: Node = {
    cmd,
    original: line,
    flags,
    args: [],
    json: false,
    heredocs: [],
    startLine: 0,
    endLine: 0,
    comments: [...comments],
  };
  switch (cmd) {
    case "add":
    case "copy":
    case "volume": {
      const j = parseJson(rest);
      if (j) {
        node.args = j;
        node.json = true;
      } else node.args = splitWhitespace(rest);
      break;
    }
    case "cmd":
    case "entrypoint":
    case "run":
    case "shell":
      maybeJson(node, rest);
      break;
    case "arg":
      node.args = parseWords(rest, d.escape);
      break;
    case "env":
    case "label":
      node.args = parseNameVal(rest, cmd.toUpperCase(), d.escape);
      break;
    case "expose":
    case "from":
      node.args = splitWhitespace(rest);
      break;
    case "maintainer":
    case "stopsignal":
    case "user":
    case "workdir":
      node.args = rest === "" ? [] : [rest];
      break;
    case "healthcheck": {
      const sep = rest.search(/\s/u);
      const typ = sep < 0 ? rest : rest.slice(0, sep);
      if (typ === "") break;
      const after = sep < 0 ? "" : trimLeft(rest.slice(sep));
      maybeJson(node, after);
      node.args.unshift(typ);
      break;
    }
    case "onbuild":
      if (rest !== "") node.sub = nodeFromLine(rest, d, []);
      break;
    default:
      // Unknown instructions parse (their arguments are ignored) and fail when evaluated.
      break;
  }
  return node;
}

/** A JSON array of strings, or undefined when `rest` is not JSON; non-strings are an error. */
function parseJson(rest: string): string[] | undefined {
  const t = trimLeft(rest);
  if (!t.startsWith("[")) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch {
    return undefined;
  }
  if (!Array.isArray(v)) return undefined;
  if (!v.every((x) => typeof x === "string")) throw new Error("when using JSON array syntax, arrays must be comprised of strings only");
  return v as string[];
}

function maybeJson(node: Node, rest: string): void {
  if (rest === "") return;
  const j = parseJson(rest);
  if (j) {
    node.args = j;
    node.json = true;
  } else node.args = [rest];
}

function splitWhitespace(rest: string): string[] {
  if (rest === "") return [];
  return rest.split(WS);
}

/** Takes the leading `--flag[=value]` words off an instruction's arguments. */
function extractFlags(line: string, esc: string): { rest: string; flags: string[] } {
  const words: string[] = [];
  let phase: "spaces" | "word" | "quote" = "spaces";
  let buf = "";
  let quote = "";
  let blankOk = false;
  for (let pos = 0; pos <= line.length; pos++) {
    const end = pos === line.length;
    let ch = end ? "" : (line[pos] ?? "");
    if (phase === "spaces") {
      if (end) break;
      if (/\s/u.test(ch)) continue;
      if (ch !== "-" || pos + 1 === line.length || line[pos + 1] !== "-") return { rest: line.slice(pos), flags: words };
      phase = "word";
    }
    if (end) {
      if (buf !== "--" && (blankOk || buf.length > 0)) words.push(buf);
      break;
    }
    if (phase === "word") {
      if (/\s/u.test(ch)) {
        phase = "spaces";
        if (buf === "--") return { rest: line.slice(pos), flags: words };
        if (blankOk || buf.length > 0) words.push(buf);
        buf = "";
        blankOk = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOk = true;
        phase = "quote";
        continue;
      }
      if (ch === esc) {
        if (pos + 1 === line.length) continue;
        pos++;
        ch = line[pos] ?? "";
      }
      buf += ch;
      continue;
    }
    if (ch === quote) {
      phase = "word";
      continue;
    }
    if (ch === esc) {
      if (pos + 1 === line.length) {
        phase = "word";
        continue;
      }
      pos++;
      ch = line[pos] ?? "";
    }
    buf += ch;
  }
  return { rest: "", flags: words };
}

/** Splits at unquoted whitespace, keeping quotes and escapes (they are removed on expansion). */
function parseWords(rest: string, esc: string): string[] {
  const words: string[] = [];
  const chars = Array.from(rest);
  let phase: "spaces" | "word" | "quote" = "spaces";
  let quote = "";
  let blankOk = false;
  let buf = "";
  for (let pos = 0; pos <= chars.length; pos++) {
    const end = pos === chars.length;
    let ch = end ? "" : (chars[pos] ?? "");
    if (phase === "spaces") {
      if (end) break;
      if (/\s/u.test(ch)) continue;
      phase = "word";
    }
    if (end) {
      if (blankOk || buf.length > 0) words.push(buf);
      break;
    }
    if (phase === "word") {
      if (/\s/u.test(ch)) {
        phase = "spaces";
        if (blankOk || buf.length > 0) words.push(buf);
        buf = "";
        blankOk = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOk = true;
        phase = "quote";
      }
      if (ch === esc) {
        if (pos + 1 === chars.length) continue;
        buf += ch;
        pos++;
        ch = chars[pos] ?? "";
      }
      buf += ch;
      continue;
    }
    if (ch === quote) phase = "word";
    if (ch === esc && quote !== "'") {
      if (pos + 1 === chars.length) {
        phase = "word";
        continue;
      }
      pos++;
      buf += ch;
      ch = chars[pos] ?? "";
    }
    buf += ch;
  }
  return words;
}

/** `KEY name value` (legacy) or `KEY a=b c="d e"`: triples of key, value and separator. */
function parseNameVal(rest: string, key: string, esc: string): string[] {
  const words = parseWords(rest, esc);
  if (words.length === 0) return [];
  if (!(words[0] ?? "").includes("=")) {
    const m = WS.exec(rest);
    if (!m) throw new Error(`${key} must have two arguments`);
    return [rest.slice(0, m.index), rest.slice(m.index + m[0].length), ""];
  }
  const out: string[] = [];
  for (const w of words) {
    const eq = w.indexOf("=");
    if (eq < 0) throw new Error(`Syntax error - can't find = in ${JSON.stringify(w)}. Must be of the form: name=value`);
    out.push(w.slice(0, eq), w.slice(eq + 1), "=");
  }
  return out;
}

const noEnv = () => undefined;

/** The heredocs an instruction line declares, in order. */
function heredocsFromLine(line: string): Heredoc[] {
  let words: string[];
  try {
    words = new ShellLex("\\", { rawQuotes: true, rawEscapes: true, skipUnsetEnv: true }).processWords(line, noEnv);
  } catch {
    words = [];
  }
  const docs: Heredoc[] = [];
  for (const w of words) {
    const h = parseHeredoc(w);
    if (h) docs.push(h);
  }
  return docs;
}

/** Parses one `[n]<<[-]WORD` word; undefined when `word` is not a heredoc. */
export function parseHeredoc(word: string): Heredoc | undefined {
  const m = HEREDOC_RE.exec(word);
  if (!m) return undefined;
  const rest = m[3] ?? "";
  if (rest.length === 0) return undefined;
  const plain = new ShellLex("\\", { skipUnsetEnv: true }).processWords(rest, noEnv);
  if (plain.length !== 1) return undefined;
  const raw = new ShellLex("\\", { skipUnsetEnv: true, rawQuotes: true }).processWords(rest, noEnv);
  if (raw.length !== plain.length) throw new Error(`internal lexing of heredoc produced inconsistent results: ${rest}`);
  const quotes = (s: string) => (s.match(/['"]/g) ?? []).length;
  const name = plain[0] ?? "";
  return {
    name,
    fileDescriptor: m[1] ? Number(m[1]) : 0,
    expand: quotes(name) === quotes(raw[0] ?? ""),
    chomp: m[2] === "-",
    content: "",
  };
}

/** Strips leading tabs from every line (`<<-`). */
export function chompHeredoc(content: string): string {
  return content.replace(/^\t+/gm, "");
}

/**
 * A stable text form of a node for golden tests: line range, instruction, flags, JSON marker,
 * quoted arguments, then one indented line per heredoc.
 */
export function dumpNode(n: Node): string {
  let s = `${n.startLine}-${n.endLine} ${n.cmd}`;
  if (n.flags.length) s += ` ${JSON.stringify(n.flags)}`;
  if (n.json) s += " json";
  for (const a of n.args) s += ` ${JSON.stringify(a)}`;
  if (n.sub) s += ` (${dumpNode(n.sub).replace(/^\d+-\d+ /, "")})`;
  for (const h of n.heredocs) {
    s += `\n  heredoc ${JSON.stringify(h.name)} fd=${h.fileDescriptor} expand=${h.expand} chomp=${h.chomp} ${JSON.stringify(h.content)}`;
  }
  return s;
}
