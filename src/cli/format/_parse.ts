/**
 * Parser for Go's text/template language: tokens from `_lex.ts` into a tree of nodes. The
 * structure, scoping of variables and error texts mirror Go's text/template/parse so that
 * `{{else if}}`, `{{else with}}`, `define`/`block` and parse errors behave like docker's.
 */
import { goQuote, lex, type Token, tokenString } from "./_lex.ts";

interface Base {
  pos: number;
}
export interface TextNode extends Base {
  type: "text";
  text: string;
}
export interface ActionNode extends Base {
  type: "action";
  line: number;
  pipe: PipeNode;
}
export interface PipeNode extends Base {
  type: "pipe";
  line: number;
  isAssign: boolean;
  decl: VariableNode[];
  cmds: CommandNode[];
}
export interface CommandNode extends Base {
  type: "command";
  args: ArgNode[];
}
export interface FieldNode extends Base {
  type: "field";
  ident: string[];
}
export interface VariableNode extends Base {
  type: "variable";
  ident: string[];
}
export interface ChainNode extends Base {
  type: "chain";
  node: ArgNode;
  field: string[];
}
export interface IdentifierNode extends Base {
  type: "identifier";
  ident: string;
}
export interface DotNode extends Base {
  type: "dot";
}
export interface NilNode extends Base {
  type: "nil";
}
export interface BoolNode extends Base {
  type: "bool";
  value: boolean;
}
export interface NumberNode extends Base {
  type: "number";
  value: number;
  text: string;
}
export interface StringNode extends Base {
  type: "string";
  quoted: string;
  text: string;
}
export interface ListNode extends Base {
  type: "list";
  nodes: Node[];
}
export interface BranchNode extends Base {
  type: "if" | "range" | "with";
  line: number;
  pipe: PipeNode;
  list: ListNode;
  elseList: ListNode | undefined;
}
export interface TemplateNode extends Base {
  type: "template";
  line: number;
  name: string;
  pipe: PipeNode | undefined;
}
export interface BreakNode extends Base {
  type: "break" | "continue";
  line: number;
}
interface EndNode extends Base {
  type: "end";
}
interface ElseNode extends Base {
  type: "else";
  line: number;
}

export type ArgNode =
  | FieldNode
  | VariableNode
  | ChainNode
  | IdentifierNode
  | DotNode
  | NilNode
  | BoolNode
  | NumberNode
  | StringNode
  | PipeNode;
export type Node = TextNode | ActionNode | BranchNode | TemplateNode | BreakNode | ListNode;

/** A parse failure; `message` is Go's full "template: name:line: ..." text. */
export class ParseError extends Error {
  readonly line: number;
  constructor(message: string, line: number) {
    super(message);
    this.line = line;
  }
}

/** The parsed trees of one template text: the main one under `name` and any `define`d ones. */
export interface ParsedTemplates {
  root: ListNode;
  defines: Map<string, ListNode>;
}

/** Renders a node back to template syntax, as Go's Node.String does (used in error contexts). */
export function nodeString(n: ArgNode | CommandNode | Node | EndNode | ElseNode): string {
  switch (n.type) {
    case "text":
      return goQuote(n.text);
    case "action":
      return `{{${nodeString(n.pipe)}}}`;
    case "pipe": {
      let s = "";
      if (n.decl.length > 0) s = `${n.decl.map((v) => nodeString(v)).join(", ")} ${n.isAssign ? "=" : ":="} `;
      return s + n.cmds.map((c) => nodeString(c)).join(" | ");
    }
    case "command":
      return n.args.map((a) => (a.type === "pipe" ? `(${nodeString(a)})` : nodeString(a))).join(" ");
    case "field":
      return n.ident.map((f) => `.${f}`).join("");
    case "variable":
      return n.ident.join(".");
    case "chain": {
      const inner = n.node.type === "pipe" ? `(${nodeString(n.node)})` : nodeString(n.node);
      return inner + n.field.map((f) => `.${f}`).join("");
    }
    case "identifier":
      return n.ident;
    case "dot":
      return ".";
    case "nil":
      return "nil";
    case "bool":
      return String(n.value);
    case "number":
      return n.text;
    case "string":
      return n.quoted;
    case "list":
      return n.nodes.map((x) => nodeString(x)).join("");
    case "if":
    case "range":
    case "with": {
      const tail = n.elseList ? `{{else}}${nodeString(n.elseList)}` : "";
      return `{{${n.type} ${nodeString(n.pipe)}}}${nodeString(n.list)}${tail}{{end}}`;
    }
    case "template":
      return n.pipe ? `{{template ${goQuote(n.name)} ${nodeString(n.pipe)}}}` : `{{template ${goQuote(n.name)}}}`;
    case "break":
    case "continue":
      return `{{${n.type}}}`;
    case "end":
      return "{{end}}";
    case "else":
      return "{{else}}";
  }
}

/** Parses template text; `hasFunction` tells which identifiers are callable (Go checks at parse). */
export function parse(text: string, name: string, hasFunction: (name: string) => boolean): ParsedTemplates {
  return new Parser(text, name, hasFunction).run();
}

class Parser {
  #tokens: Token[];
  #i = 0;
  #name: string;
  #hasFunction: (name: string) => boolean;
  #vars: string[] = ["$"];
  #rangeDepth = 0;
  #actionLine = 0;
  #defines = new Map<string, ListNode>();
  #last: Token;

  constructor(text: string, name: string, hasFunction: (name: string) => boolean) {
    this.#tokens = lex(text);
    this.#name = name;
    this.#hasFunction = hasFunction;
    this.#last = this.#tokens[0] ?? { kind: "eof", val: "", pos: 0, line: 1 };
  }

  run(): ParsedTemplates {
    const root: ListNode = { type: "list", pos: this.#peek().pos, nodes: [] };
    while (this.#peek().kind !== "eof") {
      if (this.#peek().kind === "leftDelim") {
        const save = this.#i;
        this.#next();
        const t = this.#nextNonSpace();
        if (t.kind === "keyword" && t.val === "define") {
          this.#parseDefinition();
          continue;
        }
        this.#i = save;
      }
      const n = this.#textOrAction();
      if (n.type === "end" || n.type === "else") this.#errorf(`unexpected ${nodeString(n)}`);
      root.nodes.push(n as Node);
    }
    return { root, defines: this.#defines };
  }

  // --- token stream

  #next(): Token {
    const t = this.#tokens[this.#i] ?? this.#tokens[this.#tokens.length - 1]!;
    if (this.#i < this.#tokens.length) this.#i++;
    this.#last = t;
    return t;
  }
  #backup(): void {
    this.#i--;
  }
  #peek(): Token {
    return this.#tokens[this.#i] ?? this.#tokens[this.#tokens.length - 1]!;
  }
  #nextNonSpace(): Token {
    let t = this.#next();
    while (t.kind === "space") t = this.#next();
    return t;
  }
  #peekNonSpace(): Token {
    const t = this.#nextNonSpace();
    this.#backup();
    return t;
  }
  #isKeyword(t: Token, word: string): boolean {
    return t.kind === "keyword" && t.val === word;
  }

  // --- errors

  #errorf(message: string): never {
    throw new ParseError(`template: ${this.#name}:${this.#last.line}: ${message}`, this.#last.line);
  }
  #unexpected(t: Token, context: string): never {
    if (t.kind === "error") {
      let extra = "";
      if (this.#actionLine !== 0 && this.#actionLine !== t.line) {
        extra = ` in action started at ${this.#name}:${this.#actionLine}`;
        if (t.val.endsWith(" action")) extra = extra.slice(" in action".length);
      }
      this.#errorf(`${t.val}${extra}`);
    }
    this.#errorf(`unexpected ${tokenString(t)} in ${context}`);
  }
  #expect(kind: Token["kind"], context: string): Token {
    const t = this.#nextNonSpace();
    if (t.kind !== kind) this.#unexpected(t, context);
    return t;
  }

  // --- structure

  #parseDefinition(): void {
    const context = "define clause";
    const t = this.#nextNonSpace();
    if (t.kind !== "string" && t.kind !== "rawString") this.#unexpected(t, context);
    const name = unquote(t.val);
    if (name === undefined) this.#errorf("invalid syntax");
    this.#expect("rightDelim", context);
    const savedVars = this.#vars;
    this.#vars = ["$"];
    const [list, end] = this.#itemList();
    if (end.type !== "end") this.#errorf(`unexpected ${nodeString(end)} in ${context}`);
    this.#vars = savedVars;
    this.#addDefine(name, list);
  }

  #addDefine(name: string, list: ListNode): void {
    // Like Go's AddParseTree: an empty redefinition does not replace a non-empty one.
    const old = this.#defines.get(name);
    if (old && !isEmptyList(old)) {
      if (isEmptyList(list)) return;
      this.#errorf(`template: multiple definition of template ${goQuote(name)}`);
    }
    this.#defines.set(name, list);
  }

  #itemList(): [ListNode, EndNode | ElseNode] {
    const list: ListNode = { type: "list", pos: this.#peekNonSpace().pos, nodes: [] };
    while (this.#peekNonSpace().kind !== "eof") {
      const n = this.#textOrAction();
      if (n.type === "end" || n.type === "else") return [list, n];
      list.nodes.push(n);
    }
    this.#errorf("unexpected EOF");
  }

  #textOrAction(): Node | EndNode | ElseNode {
    const t = this.#nextNonSpace();
    switch (t.kind) {
      case "text":
        return { type: "text", pos: t.pos, text: t.val };
      case "leftDelim": {
        this.#actionLine = t.line;
        try {
          return this.#action();
        } finally {
          this.#actionLine = 0;
        }
      }
      default:
        this.#unexpected(t, "input");
    }
  }

  #action(): Node | EndNode | ElseNode {
    const t = this.#nextNonSpace();
    if (t.kind === "keyword") {
      switch (t.val) {
        case "block":
          return this.#blockControl();
        case "break":
        case "continue":
          return this.#breakControl(t);
        case "else":
          return this.#elseControl();
        case "end":
          return { type: "end", pos: this.#expect("rightDelim", "end").pos };
        case "if":
        case "range":
        case "with":
          return this.#control(t.val);
        case "template":
          return this.#templateControl();
      }
    }
    this.#backup();
    const p = this.#peek();
    return { type: "action", pos: p.pos, line: p.line, pipe: this.#pipeline("command", "rightDelim") };
  }

  #breakControl(t: Token): BreakNode {
    const kind = t.val as "break" | "continue";
    const n = this.#nextNonSpace();
    if (n.kind !== "rightDelim") this.#unexpected(n, `{{${kind}}}`);
    if (this.#rangeDepth === 0) this.#errorf(`{{${kind}}} outside {{range}}`);
    return { type: kind, pos: t.pos, line: t.line };
  }

  #elseControl(): ElseNode {
    const p = this.#peekNonSpace();
    // "{{else if" and "{{else with" leave the keyword pending for #control.
    if (this.#isKeyword(p, "if") || this.#isKeyword(p, "with")) return { type: "else", pos: p.pos, line: p.line };
    const t = this.#expect("rightDelim", "else");
    return { type: "else", pos: t.pos, line: t.line };
  }

  #control(context: "if" | "range" | "with"): BranchNode {
    const mark = this.#vars.length;
    try {
      const pipe = this.#pipeline(context, "rightDelim");
      if (context === "range") this.#rangeDepth++;
      const [list, next] = this.#itemList();
      if (context === "range") this.#rangeDepth--;
      let elseList: ListNode | undefined;
      if (next.type === "else") {
        const p = this.#peek();
        if ((context === "if" || context === "with") && this.#isKeyword(p, context)) {
          this.#next();
          elseList = { type: "list", pos: next.pos, nodes: [this.#control(context)] };
        } else {
          const [l, end] = this.#itemList();
          if (end.type !== "end") this.#errorf(`expected end; found ${nodeString(end)}`);
          elseList = l;
        }
      }
      return { type: context, pos: pipe.pos, line: pipe.line, pipe, list, elseList };
    } finally {
      this.#vars.length = mark;
    }
  }

  #templateName(t: Token, context: string): string {
    if (t.kind !== "string" && t.kind !== "rawString") this.#unexpected(t, context);
    const s = unquote(t.val);
    if (s === undefined) this.#errorf("invalid syntax");
    return s;
  }

  #templateControl(): TemplateNode {
    const context = "template clause";
    const t = this.#nextNonSpace();
    const name = this.#templateName(t, context);
    let pipe: PipeNode | undefined;
    if (this.#nextNonSpace().kind !== "rightDelim") {
      this.#backup();
      pipe = this.#pipeline(context, "rightDelim");
    }
    return { type: "template", pos: t.pos, line: t.line, name, pipe };
  }

  #blockControl(): TemplateNode {
    const context = "block clause";
    const t = this.#nextNonSpace();
    const name = this.#templateName(t, context);
    const pipe = this.#pipeline(context, "rightDelim");
    const savedVars = this.#vars;
    const savedDepth = this.#rangeDepth;
    this.#vars = ["$"];
    this.#rangeDepth = 0;
    const [list, end] = this.#itemList();
    if (end.type !== "end") this.#errorf(`unexpected ${nodeString(end)} in ${context}`);
    this.#vars = savedVars;
    this.#rangeDepth = savedDepth;
    this.#addDefine(name, list);
    return { type: "template", pos: t.pos, line: t.line, name, pipe };
  }

  // --- pipelines

  #pipeline(context: string, end: "rightDelim" | "rightParen"): PipeNode {
    const first = this.#peekNonSpace();
    const pipe: PipeNode = { type: "pipe", pos: first.pos, line: first.line, isAssign: false, decl: [], cmds: [] };
    for (;;) {
      const v = this.#peekNonSpace();
      if (v.kind !== "variable") break;
      this.#nextNonSpace();
      const n = this.#peekNonSpace();
      if (n.kind === "assign" || n.kind === "declare") {
        pipe.isAssign = n.kind === "assign";
        this.#nextNonSpace();
        pipe.decl.push({ type: "variable", pos: v.pos, ident: [v.val] });
        this.#vars.push(v.val);
        break;
      }
      if (n.kind === "char" && n.val === ",") {
        this.#nextNonSpace();
        pipe.decl.push({ type: "variable", pos: v.pos, ident: [v.val] });
        this.#vars.push(v.val);
        if (context === "range" && pipe.decl.length < 2) {
          const k = this.#peekNonSpace().kind;
          if (k === "variable" || k === "rightDelim" || k === "rightParen") continue;
          this.#errorf("range can only initialize variables");
        }
        this.#errorf(`too many declarations in ${context}`);
      }
      // Not a declaration: push the variable (and the space after it) back.
      this.#i = this.#tokens.indexOf(v);
      break;
    }
    for (;;) {
      const t = this.#nextNonSpace();
      if (t.kind === end) {
        this.#checkPipeline(pipe, context);
        return pipe;
      }
      switch (t.kind) {
        case "bool":
        case "charConstant":
        case "dot":
        case "field":
        case "identifier":
        case "number":
        case "nil":
        case "rawString":
        case "string":
        case "variable":
        case "leftParen":
          this.#backup();
          pipe.cmds.push(this.#command());
          continue;
        default:
          this.#unexpected(t, context);
      }
    }
  }

  #checkPipeline(pipe: PipeNode, context: string): void {
    if (pipe.cmds.length === 0) this.#errorf(`missing value for ${context}`);
    pipe.cmds.slice(1).forEach((c, i) => {
      const k = c.args[0]?.type;
      if (k === "bool" || k === "dot" || k === "nil" || k === "number" || k === "string") {
        this.#errorf(`non executable command in pipeline stage ${i + 2}`);
      }
    });
  }

  #command(): CommandNode {
    const cmd: CommandNode = { type: "command", pos: this.#peekNonSpace().pos, args: [] };
    for (;;) {
      this.#peekNonSpace();
      const operand = this.#operand();
      if (operand) cmd.args.push(operand);
      const t = this.#next();
      if (t.kind === "space") continue;
      if (t.kind === "rightDelim" || t.kind === "rightParen") this.#backup();
      else if (t.kind !== "pipe") this.#unexpected(t, "operand");
      break;
    }
    if (cmd.args.length === 0) this.#errorf("empty command");
    return cmd;
  }

  #operand(): ArgNode | undefined {
    const node = this.#term();
    if (!node) return undefined;
    if (this.#peek().kind !== "field") return node;
    const pos = this.#peek().pos;
    const fields: string[] = [];
    while (this.#peek().kind === "field") fields.push(this.#next().val.slice(1));
    switch (node.type) {
      case "field":
        return { type: "field", pos, ident: [...node.ident, ...fields] };
      case "variable":
        return { type: "variable", pos, ident: [...node.ident, ...fields] };
      case "bool":
      case "string":
      case "number":
      case "nil":
      case "dot":
        return this.#errorf(`unexpected . after term ${goQuote(nodeString(node))}`);
      default:
        return { type: "chain", pos, node, field: fields };
    }
  }

  #term(): ArgNode | undefined {
    const t = this.#nextNonSpace();
    switch (t.kind) {
      case "identifier":
        if (!this.#hasFunction(t.val)) this.#errorf(`function ${goQuote(t.val)} not defined`);
        return { type: "identifier", pos: t.pos, ident: t.val };
      case "dot":
        return { type: "dot", pos: t.pos };
      case "nil":
        return { type: "nil", pos: t.pos };
      case "variable": {
        const name = t.val;
        if (!this.#vars.includes(name)) this.#errorf(`undefined variable ${goQuote(name)}`);
        return { type: "variable", pos: t.pos, ident: [name] };
      }
      case "field":
        return { type: "field", pos: t.pos, ident: [t.val.slice(1)] };
      case "bool":
        return { type: "bool", pos: t.pos, value: t.val === "true" };
      case "charConstant": {
        const s = unquote(t.val);
        if (s === undefined || [...s].length !== 1) this.#errorf(`malformed character constant: ${t.val}`);
        return { type: "number", pos: t.pos, value: s.codePointAt(0)!, text: t.val };
      }
      case "number": {
        const value = parseNumber(t.val);
        if (value === undefined) this.#errorf(`illegal number syntax: ${goQuote(t.val)}`);
        return { type: "number", pos: t.pos, value, text: t.val };
      }
      case "leftParen":
        return this.#pipeline("parenthesized pipeline", "rightParen");
      case "string":
      case "rawString": {
        const s = unquote(t.val);
        if (s === undefined) this.#errorf("invalid syntax");
        return { type: "string", pos: t.pos, quoted: t.val, text: s };
      }
    }
    this.#backup();
    return undefined;
  }
}

function isEmptyList(l: ListNode): boolean {
  return l.nodes.every((n) => n.type === "text" && n.text.trim() === "");
}

/** Go number literal syntax (ints with 0x/0o/0b/leading-0 octal, floats, underscores). */
export function parseNumber(text: string): number | undefined {
  if (text.endsWith("i")) return undefined; // complex numbers are not supported
  let s = text;
  let sign = 1;
  if (s.startsWith("+") || s.startsWith("-")) {
    if (s[0] === "-") sign = -1;
    s = s.slice(1);
  }
  if (s.includes("_")) {
    // Underscores may only separate digits (or follow a base prefix).
    if (!/^(0[xXoObB]_?)?[0-9a-fA-F]+(_[0-9a-fA-F]+)*(\.[0-9]+(_[0-9]+)*)?([eE][+-]?[0-9]+)?$/.test(s)) return undefined;
    s = s.replaceAll("_", "");
  }
  let m: RegExpExecArray | null;
  if ((m = /^0[xX]([0-9a-fA-F]+)$/.exec(s))) return sign * Number.parseInt(m[1]!, 16);
  if ((m = /^0[oO]?([0-7]+)$/.exec(s))) return sign * Number.parseInt(m[1]!, 8);
  if ((m = /^0[bB]([01]+)$/.exec(s))) return sign * Number.parseInt(m[1]!, 2);
  if (/^[0-9]+$/.test(s)) return sign * Number.parseInt(s, 10);
  if (/^([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/.test(s)) return sign * Number.parseFloat(s);
  return undefined;
}

/** Go's strconv.Unquote for "…", `…` and '…' literals; undefined when malformed. */
export function unquote(q: string): string | undefined {
  if (q.length < 2) return undefined;
  const quote = q[0];
  if (q[q.length - 1] !== quote) return undefined;
  const body = q.slice(1, -1);
  if (quote === "`") return body.includes("`") ? undefined : body.replaceAll("\r", "");
  if (quote !== '"' && quote !== "'") return undefined;
  const bytes: number[] = [];
  const enc = new TextEncoder();
  const pushChar = (ch: string) => {
    for (const b of enc.encode(ch)) bytes.push(b);
  };
  for (let i = 0; i < body.length; ) {
    const ch = String.fromCodePoint(body.codePointAt(i)!);
    if (ch === quote || ch === "\n") return undefined;
    if (ch !== "\\") {
      pushChar(ch);
      i += ch.length;
      continue;
    }
    const e = body[i + 1];
    i += 2;
    const simple: Record<string, string> = { a: "\u0007", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v", "\\": "\\" };
    if (e === undefined) return undefined;
    if (simple[e] !== undefined) {
      pushChar(simple[e]);
    } else if (e === quote) {
      pushChar(e);
    } else if (e === "x") {
      const h = body.slice(i, i + 2);
      if (!/^[0-9a-fA-F]{2}$/.test(h)) return undefined;
      bytes.push(Number.parseInt(h, 16));
      i += 2;
    } else if (e === "u" || e === "U") {
      const n = e === "u" ? 4 : 8;
      const h = body.slice(i, i + n);
      if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(h)) return undefined;
      const cp = Number.parseInt(h, 16);
      if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return undefined;
      pushChar(String.fromCodePoint(cp));
      i += n;
    } else if (e >= "0" && e <= "7") {
      const o = body.slice(i - 1, i + 2);
      if (!/^[0-7]{3}$/.test(o)) return undefined;
      const v = Number.parseInt(o, 8);
      if (v > 255) return undefined;
      bytes.push(v);
      i += 2;
    } else {
      return undefined;
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}
