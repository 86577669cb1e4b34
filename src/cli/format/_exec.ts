/**
 * The evaluator of parsed templates, following Go's text/template/exec: pipelines pass their
 * value as the last argument of the next command, variables are scoped to control structures,
 * `and`/`or` short-circuit, fields resolve on maps and structs (and call methods), and errors
 * read `template: :LINE:COL: executing "NAME" at <NODE>: MESSAGE`.
 */
import { printValue } from "./_fmt.ts";
import { ArgTypeError, type ParamType, type TemplateFunc } from "./_funcs.ts";
import { goQuote } from "./_lex.ts";
import {
  type ArgNode,
  type BranchNode,
  type ChainNode,
  type CommandNode,
  type FieldNode,
  type IdentifierNode,
  type ListNode,
  type Node,
  nodeString,
  type PipeNode,
  type TemplateNode,
  type VariableNode,
} from "./_parse.ts";
import { isTrue, kindOf, lookupField, sortedEntries, typeName, type ValueModel } from "./_value.ts";

/** An execution failure; `message` is Go's full text, `line`/`column` locate the node. */
export class ExecError extends Error {
  readonly line: number | undefined;
  readonly column: number | undefined;
  constructor(message: string, line?: number, column?: number) {
    super(message);
    this.line = line;
    this.column = column;
  }
}

/** Everything the evaluator needs besides the data. */
export interface ExecContext {
  /** Full template source, for error positions. */
  text: string;
  /** Parse name shown in error locations ("" for docker formats). */
  parseName: string;
  /** Name of the main template. */
  name: string;
  root: ListNode;
  defines: ReadonlyMap<string, ListNode>;
  funcs: ReadonlyMap<string, TemplateFunc>;
  model: ValueModel;
  missingKey: "default" | "error";
}

/** Nesting limit for {{template}} calls; Go allows 100000, JavaScript's stack does not. */
const MAX_DEPTH = 1000;
/** The "no final value" marker of a pipeline stage (Go's missingVal), distinct from `undefined`. */
const MISSING: unique symbol = Symbol("missing");
type Final = unknown | typeof MISSING;

const BREAK = Symbol("break");
const CONTINUE = Symbol("continue");

interface Variable {
  name: string;
  value: unknown;
}

/**
 * Runs a template over data. Output produced before an error is kept in `output` (docker
 * prints a table header even when rendering it fails half-way).
 */
export function execute(ctx: ExecContext, data: unknown): { output: string; error: ExecError | undefined } {
  const s = new State(ctx, data);
  try {
    s.walk(data, ctx.root);
    return { output: s.out.join(""), error: undefined };
  } catch (err) {
    if (err instanceof ExecError) return { output: s.out.join(""), error: err };
    if (err instanceof RangeError) {
      return { output: s.out.join(""), error: new ExecError(`template: ${ctx.name}: ${err.message}`) };
    }
    throw err;
  }
}

class State {
  out: string[] = [];
  #ctx: ExecContext;
  #vars: Variable[];
  #node: ArgNode | CommandNode | Node | undefined;
  #name: string;
  #depth = 0;

  constructor(ctx: ExecContext, data: unknown) {
    this.#ctx = ctx;
    this.#vars = [{ name: "$", value: data }];
    this.#name = ctx.name;
  }

  // --- errors and positions

  #at(node: ArgNode | CommandNode | Node): void {
    this.#node = node;
  }

  #errorf(message: string): never {
    const name = this.#name;
    const node = this.#node;
    if (!node) throw new ExecError(`template: ${name}: ${message}`);
    const before = this.#ctx.text.slice(0, node.pos);
    const nl = before.lastIndexOf("\n");
    const line = 1 + (before.match(/\n/g)?.length ?? 0);
    const col = nl < 0 ? Buffer.byteLength(before) : Buffer.byteLength(before.slice(nl + 1));
    throw new ExecError(
      `template: ${this.#ctx.parseName}:${line}:${col}: executing ${goQuote(name)} at <${nodeString(node)}>: ${message}`,
      line,
      col,
    );
  }

  #type(v: unknown): string {
    return typeName(v, this.#ctx.model);
  }

  // --- variables

  #varValue(name: string): unknown {
    for (let i = this.#vars.length - 1; i >= 0; i--) if (this.#vars[i]!.name === name) return this.#vars[i]!.value;
    this.#errorf(`undefined variable: ${name}`);
  }

  #setVar(name: string, value: unknown): void {
    for (let i = this.#vars.length - 1; i >= 0; i--) {
      if (this.#vars[i]!.name === name) {
        this.#vars[i]!.value = value;
        return;
      }
    }
    this.#errorf(`undefined variable: ${name}`);
  }

  #setTopVar(n: number, value: unknown): void {
    this.#vars[this.#vars.length - n]!.value = value;
  }

  // --- walking

  walk(dot: unknown, node: Node): void {
    this.#at(node);
    switch (node.type) {
      case "text":
        this.out.push(node.text);
        return;
      case "action": {
        const v = this.#evalPipeline(dot, node.pipe);
        if (node.pipe.decl.length === 0) {
          this.#at(node);
          this.out.push(printValue(v, this.#ctx.model));
        }
        return;
      }
      case "list":
        for (const n of node.nodes) this.walk(dot, n);
        return;
      case "if":
      case "with":
        this.#walkIfOrWith(dot, node);
        return;
      case "range":
        this.#walkRange(dot, node);
        return;
      case "template":
        this.#walkTemplate(dot, node);
        return;
      case "break":
        throw BREAK;
      case "continue":
        throw CONTINUE;
    }
  }

  #walkIfOrWith(dot: unknown, node: BranchNode): void {
    const mark = this.#vars.length;
    try {
      const v = this.#evalPipeline(dot, node.pipe);
      if (isTrue(v, this.#ctx.model)) {
        this.walk(node.type === "with" ? v : dot, node.list);
      } else if (node.elseList) {
        this.walk(dot, node.elseList);
      }
    } finally {
      this.#vars.length = mark;
    }
  }

  #walkRange(dot: unknown, node: BranchNode): void {
    this.#at(node);
    const mark = this.#vars.length;
    const pipe = node.pipe;
    try {
      const val = this.#evalPipeline(dot, pipe);
      const bodyMark = this.#vars.length;
      const iteration = (index: unknown, elem: unknown) => {
        if (pipe.decl.length > 0) {
          if (pipe.isAssign) this.#setVar(pipe.decl[0]!.ident[0]!, pipe.decl.length > 1 ? index : elem);
          else this.#setTopVar(1, elem);
        }
        if (pipe.decl.length > 1) {
          if (pipe.isAssign) this.#setVar(pipe.decl[1]!.ident[0]!, elem);
          else this.#setTopVar(2, index);
        }
        try {
          this.walk(elem, node.list);
        } catch (err) {
          if (err !== CONTINUE) throw err;
        } finally {
          this.#vars.length = bodyMark;
        }
      };
      const kind = kindOf(val, this.#ctx.model);
      let pairs: Iterable<[unknown, unknown]>;
      let empty: boolean;
      switch (kind) {
        case "array": {
          const items = Array.from(val as ArrayLike<unknown>, (item, i): [unknown, unknown] => [i, item]);
          pairs = items;
          empty = items.length === 0;
          break;
        }
        case "map": {
          const entries = sortedEntries(val as object);
          pairs = entries;
          empty = entries.length === 0;
          break;
        }
        case "int": {
          if (pipe.decl.length > 1) {
            this.#errorf(`can't use ${printValue(val, this.#ctx.model)} to iterate over more than one variable`);
          }
          const n = Number(val);
          pairs = (function* () {
            for (let i = 0; i < n; i++) yield [i, i] as [unknown, unknown];
          })();
          empty = n <= 0;
          break;
        }
        case "invalid":
        case "nil":
          pairs = [];
          empty = true;
          break;
        default:
          // Like Go, the error points at the last node evaluated (the range operand).
          this.#errorf(`range can't iterate over ${printValue(val, this.#ctx.model)}`);
      }
      if (empty) {
        if (node.elseList) this.walk(dot, node.elseList);
        return;
      }
      try {
        for (const [k, v] of pairs) iteration(k, v);
      } catch (err) {
        if (err !== BREAK) throw err;
      }
    } finally {
      this.#vars.length = mark;
    }
  }

  #walkTemplate(dot: unknown, node: TemplateNode): void {
    this.#at(node);
    const tree = this.#ctx.defines.get(node.name);
    if (!tree) this.#errorf(`template ${goQuote(node.name)} not defined`);
    if (this.#depth >= MAX_DEPTH) this.#errorf(`exceeded maximum template depth (${MAX_DEPTH})`);
    const newDot = node.pipe ? this.#evalPipeline(dot, node.pipe) : undefined;
    const saved = { vars: this.#vars, name: this.#name };
    this.#vars = [{ name: "$", value: newDot }];
    this.#name = node.name;
    this.#depth++;
    try {
      this.walk(newDot, tree);
    } finally {
      this.#vars = saved.vars;
      this.#name = saved.name;
      this.#depth--;
    }
  }

  // --- evaluation

  #evalPipeline(dot: unknown, pipe: PipeNode): unknown {
    this.#at(pipe);
    let value: Final = MISSING;
    for (const cmd of pipe.cmds) value = this.#evalCommand(dot, cmd, value);
    const v = value === MISSING ? undefined : value;
    for (const d of pipe.decl) {
      if (pipe.isAssign) this.#setVar(d.ident[0]!, v);
      else this.#vars.push({ name: d.ident[0]!, value: v });
    }
    return v;
  }

  #notAFunction(args: readonly ArgNode[], final: Final): void {
    if (args.length > 1 || final !== MISSING) this.#errorf(`can't give argument to non-function ${nodeString(args[0]!)}`);
  }

  #evalCommand(dot: unknown, cmd: CommandNode, final: Final): unknown {
    const first = cmd.args[0]!;
    switch (first.type) {
      case "field":
        return this.#evalFieldNode(dot, first, cmd.args, final);
      case "chain":
        return this.#evalChainNode(dot, first, cmd.args, final);
      case "identifier":
        return this.#evalFunction(dot, first, cmd, cmd.args, final);
      case "pipe":
        this.#notAFunction(cmd.args, final);
        return this.#evalPipeline(dot, first);
      case "variable":
        return this.#evalVariableNode(dot, first, cmd.args, final);
    }
    this.#at(first);
    this.#notAFunction(cmd.args, final);
    switch (first.type) {
      case "bool":
        return first.value;
      case "dot":
        return dot;
      case "nil":
        return this.#errorf("nil is not a command");
      case "number":
        return first.value;
      case "string":
        return first.text;
    }
  }

  #evalArg(dot: unknown, node: ArgNode): unknown {
    this.#at(node);
    switch (node.type) {
      case "dot":
        return dot;
      case "nil":
        return null;
      case "field":
        return this.#evalFieldNode(dot, node, [node], MISSING);
      case "variable":
        return this.#evalVariableNode(dot, node, [], MISSING);
      case "pipe":
        return this.#evalPipeline(dot, node);
      case "identifier":
        return this.#evalFunction(dot, node, node, [node], MISSING);
      case "chain":
        return this.#evalChainNode(dot, node, [], MISSING);
      case "bool":
        return node.value;
      case "number":
        return node.value;
      case "string":
        return node.text;
    }
  }

  /** Go's evalArg for a typed parameter: literals are checked by syntax, other values by type. */
  #evalTypedArg(dot: unknown, node: ArgNode, type: ParamType): unknown {
    if (type === "any") return this.#evalArg(dot, node);
    const goType = type === "int" ? "int" : type === "strings" ? "[]string" : "string";
    switch (node.type) {
      case "nil":
        this.#at(node);
        return this.#errorf(`cannot assign nil to ${goType}`);
      case "bool":
      case "number":
      case "string": {
        this.#at(node);
        if (type === "string" && node.type !== "string") this.#errorf(`expected string; found ${nodeString(node)}`);
        if (type === "int" && (node.type !== "number" || !Number.isInteger(node.value))) {
          this.#errorf(`expected integer; found ${nodeString(node)}`);
        }
        if (type === "strings") this.#errorf(`can't handle ${nodeString(node)} for arg of type []string`);
        return this.#evalArg(dot, node);
      }
    }
    const v = this.#evalArg(dot, node);
    this.#at(node);
    return this.#validateType(v, type);
  }

  #validateType(v: unknown, type: ParamType): unknown {
    if (type === "any") return v;
    const kind = kindOf(v, this.#ctx.model);
    const ok =
      type === "string" ? kind === "string" : type === "int" ? kind === "int" : kind === "array" || kind === "nil" || kind === "invalid";
    if (ok) return v;
    const goType = type === "int" ? "int" : type === "strings" ? "[]string" : "string";
    if (kind === "invalid") this.#errorf(`invalid value; expected ${goType}`);
    this.#errorf(`wrong type for value; expected ${goType}; got ${this.#type(v)}`);
  }

  #evalFieldNode(dot: unknown, field: FieldNode, args: readonly ArgNode[], final: Final): unknown {
    this.#at(field);
    return this.#evalFieldChain(dot, dot, field, field.ident, args, final);
  }

  #evalChainNode(dot: unknown, chain: ChainNode, args: readonly ArgNode[], final: Final): unknown {
    if (chain.node.type === "nil") this.#errorf(`indirection through explicit nil in ${nodeString(chain)}`);
    const pipe = this.#evalArg(dot, chain.node);
    return this.#evalFieldChain(dot, pipe, chain, chain.field, args, final);
  }

  #evalVariableNode(dot: unknown, v: VariableNode, args: readonly ArgNode[], final: Final): unknown {
    this.#at(v);
    const value = this.#varValue(v.ident[0]!);
    if (v.ident.length === 1) {
      this.#notAFunction(args.length === 0 ? [v] : args, final);
      return value;
    }
    return this.#evalFieldChain(dot, value, v, v.ident.slice(1), args, final);
  }

  #evalFieldChain(
    dot: unknown,
    receiver: unknown,
    node: FieldNode | ChainNode | VariableNode,
    ident: readonly string[],
    args: readonly ArgNode[],
    final: Final,
  ): unknown {
    const n = ident.length;
    for (let i = 0; i < n - 1; i++) receiver = this.#evalField(dot, ident[i]!, node, [], MISSING, receiver);
    return this.#evalField(dot, ident[n - 1]!, node, args, final, receiver);
  }

  #evalField(
    dot: unknown,
    fieldName: string,
    node: FieldNode | ChainNode | VariableNode,
    args: readonly ArgNode[],
    final: Final,
    receiver: unknown,
  ): unknown {
    // No #at here: like Go, errors point at the last node evaluated (for a chain, its operand).
    if (receiver === undefined) {
      if (this.#ctx.missingKey === "error") this.#errorf(`nil data; no entry for key ${goQuote(fieldName)}`);
      return undefined;
    }
    if (receiver === null) this.#errorf(`nil pointer evaluating interface {}.${fieldName}`);
    const kind = kindOf(receiver, this.#ctx.model);
    if (kind !== "map" && kind !== "struct") this.#errorf(`can't evaluate field ${fieldName} in type ${this.#type(receiver)}`);
    const hasArgs = args.length > 1 || final !== MISSING;
    const found = lookupField(receiver as object, fieldName, kind);
    if (found.found && typeof found.value === "function") {
      return this.#callJs(dot, found.value as (...a: unknown[]) => unknown, receiver, node, fieldName, args, final);
    }
    if (kind === "map") {
      if (hasArgs) this.#errorf(`${fieldName} is not a method but has arguments`);
      if (!found.found) {
        if (this.#ctx.missingKey === "error") this.#errorf(`map has no entry for key ${goQuote(fieldName)}`);
        return undefined;
      }
      return found.value;
    }
    if (!found.found) this.#errorf(`can't evaluate field ${fieldName} in type ${this.#type(receiver)}`);
    if (hasArgs) this.#errorf(`${fieldName} has arguments but cannot be invoked as function`);
    return found.value;
  }

  /** Calls a method-like function found as a field, with the command's arguments. */
  #callJs(
    dot: unknown,
    fn: (...a: unknown[]) => unknown,
    receiver: unknown,
    node: ArgNode,
    name: string,
    args: readonly ArgNode[],
    final: Final,
  ): unknown {
    const argv = args.slice(1).map((a) => this.#evalArg(dot, a));
    if (final !== MISSING) argv.push(final);
    try {
      return fn.apply(receiver, argv);
    } catch (err) {
      this.#at(node);
      this.#errorf(`error calling ${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  #evalFunction(dot: unknown, ident: IdentifierNode, cmd: ArgNode | CommandNode, args: readonly ArgNode[], final: Final): unknown {
    this.#at(ident);
    const name = ident.ident;
    const fn = this.#ctx.funcs.get(name);
    if (!fn) this.#errorf(`${goQuote(name)} is not a defined function`);
    const argNodes = args.slice(1);
    const numIn = argNodes.length + (final === MISSING ? 0 : 1);
    if (fn.max === Number.POSITIVE_INFINITY) {
      if (numIn < fn.min) this.#errorf(`wrong number of args for ${name}: want at least ${fn.min} got ${argNodes.length}`);
    } else if (numIn < fn.min || numIn > fn.max) {
      this.#errorf(`wrong number of args for ${name}: want ${fn.max} got ${numIn}`);
    }
    const model = this.#ctx.model;
    if (name === "and" || name === "or") {
      // Short-circuit: later operands are not evaluated once the result is known.
      let v: unknown;
      for (const a of argNodes) {
        v = this.#evalArg(dot, a);
        if (isTrue(v, model) === (name === "or")) return v;
      }
      if (final !== MISSING) v = final;
      return v;
    }
    const argv = argNodes.map((a, i) => this.#evalTypedArg(dot, a, fn.params?.[i] ?? "any"));
    if (final !== MISSING) {
      this.#at(cmd);
      argv.push(this.#validateType(final, fn.params?.[argNodes.length] ?? "any"));
    }
    // Go passes a missing value to an interface{} parameter as nil.
    const values = name === "eq" || name === "ne" ? argv : argv.map((v) => (v === undefined ? null : v));
    try {
      return fn.call(values, model);
    } catch (err) {
      this.#at(cmd);
      if (err instanceof ArgTypeError) this.#errorf(err.message);
      if (err instanceof ExecError) throw err;
      this.#errorf(`error calling ${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}
