/**
 * Template functions: Go's text/template builtins (and, or, not, len, index, slice, print,
 * printf, println, eq, ne, lt, le, gt, ge, html, js, urlquery, call) and docker CLI's helpers
 * (json, split, join, title, lower, upper, pad, truncate), plus the identity replacements docker
 * uses when it renders a table header.
 */
import { sprint, sprintf, sprintln } from "./_fmt.ts";
import { toJson } from "./_json.ts";
import { isPrint } from "./_lex.ts";
import { isTrue, type Kind, kindOf, lengthOf, typeName, type ValueModel } from "./_value.ts";

/**
 * An argument of the wrong type, reported as Go's evalCall does (without "error calling").
 * Any other error thrown by a function is reported as "error calling NAME: message".
 */
export class ArgTypeError extends Error {}

/** Go parameter types the executor checks before a call ("any" is interface{}). */
export type ParamType = "any" | "string" | "int" | "strings";

/** A function callable from templates; `min`/`max` give the arity Go would check. */
export interface TemplateFunc {
  call: (args: unknown[], model: ValueModel) => unknown;
  min: number;
  /** Maximum arguments; Infinity for variadic functions. */
  max: number;
  /** Types of the leading parameters; missing entries are "any". */
  params?: readonly ParamType[];
}

function want(v: unknown, kind: "string" | "int", model: ValueModel): void {
  const k = kindOf(v, model);
  if (kind === "string" ? k !== "string" : k !== "int") {
    throw new ArgTypeError(`wrong type for value; expected ${kind}; got ${typeName(v, model)}`);
  }
}

function str(v: unknown, model: ValueModel): string {
  want(v, "string", model);
  return v as string;
}

function int(v: unknown, model: ValueModel): number {
  want(v, "int", model);
  return Number(v);
}

/** A comparable basic kind, as Go's basicKind: int and float are one kind in JavaScript. */
function basicKind(v: unknown, model: ValueModel): "bool" | "number" | "string" | "invalid" | "other" {
  const k: Kind = kindOf(v, model);
  if (k === "int" || k === "float") return "number";
  if (k === "bool" || k === "string") return k;
  if (k === "invalid" || k === "nil") return "invalid";
  return "other";
}

function eq(args: unknown[], model: ValueModel): boolean {
  const [a, ...rest] = args;
  if (rest.length === 0) throw new Error("missing argument for comparison");
  const k1 = basicKind(a, model);
  for (const b of rest) {
    const k2 = basicKind(b, model);
    if (k1 === "invalid" || k2 === "invalid") {
      if (k1 === k2) return true;
      continue;
    }
    if (k1 !== k2) throw new Error("incompatible types for comparison");
    if (a === b) return true;
    if (k1 === "number" && (typeof a === "bigint" || typeof b === "bigint")) {
      if (Number.isInteger(a) || Number.isInteger(b)) {
        if (BigInt(a as number) === BigInt(b as number)) return true;
      }
    }
  }
  return false;
}

function lt(a: unknown, b: unknown, model: ValueModel): boolean {
  const k1 = basicKind(a, model);
  const k2 = basicKind(b, model);
  if (k1 === "other" || k1 === "invalid" || k2 === "other" || k2 === "invalid") throw new Error("invalid type for comparison");
  if (k1 !== k2) throw new Error("incompatible types for comparison");
  if (k1 === "bool") throw new Error("invalid type for comparison");
  if (k1 === "string") return Buffer.compare(Buffer.from(a as string), Buffer.from(b as string)) < 0;
  return (a as number) < (b as number);
}

function indexArg(v: unknown, cap: number, model: ValueModel): number {
  const k = kindOf(v, model);
  if (k === "invalid" || k === "nil") throw new Error("cannot index slice/array with nil");
  if (k !== "int") throw new Error(`cannot index slice/array with type ${typeName(v, model)}`);
  const x = Number(v);
  if (x < 0 || x > cap) throw new Error(`index out of range: ${x}`);
  return x;
}

function index(args: unknown[], model: ValueModel): unknown {
  let [item] = args;
  if (item === undefined || item === null) throw new Error("index of untyped nil");
  for (const ix of args.slice(1)) {
    if (item === null || item === undefined) throw new Error("index of nil pointer");
    const k = kindOf(item, model);
    if (k === "array") {
      const a = item as ArrayLike<unknown>;
      const x = indexArg(ix, a.length, model);
      if (x >= a.length) throw new Error(`index out of range: ${x}`);
      item = a[x];
    } else if (k === "string") {
      const bytes = Buffer.from(item as string, "utf8");
      const x = indexArg(ix, bytes.length, model);
      if (x >= bytes.length) throw new Error(`index out of range: ${x}`);
      item = bytes[x];
    } else if (k === "map") {
      if (item instanceof Map) {
        item = item.get(ix);
      } else {
        if (typeof ix !== "string") throw new Error(`value has type ${typeName(ix, model)}; should be string`);
        item = Object.hasOwn(item as object, ix) ? (item as Record<string, unknown>)[ix] : undefined;
      }
    } else {
      throw new Error(`can't index item of type ${typeName(item, model)}`);
    }
  }
  return item;
}

function slice(args: unknown[], model: ValueModel): unknown {
  const [item, ...indexes] = args;
  if (item === undefined || item === null) throw new Error("slice of untyped nil");
  if (indexes.length > 3) throw new Error(`too many slice indexes: ${indexes.length}`);
  const k = kindOf(item, model);
  let len: number;
  if (k === "string") {
    if (indexes.length === 3) throw new Error("cannot 3-index slice a string");
    len = Buffer.byteLength(item as string, "utf8");
  } else if (k === "array") {
    len = (item as ArrayLike<unknown>).length;
  } else {
    throw new Error(`can't slice item of type ${typeName(item, model)}`);
  }
  const idx = [0, len, len];
  indexes.forEach((ix, i) => {
    idx[i] = indexArg(ix, len, model);
  });
  if (idx[0]! > idx[1]!) throw new Error(`invalid slice index: ${idx[0]} > ${idx[1]}`);
  if (indexes.length === 3 && idx[1]! > idx[2]!) throw new Error(`invalid slice index: ${idx[1]} > ${idx[2]}`);
  if (k === "string")
    return Buffer.from(item as string, "utf8")
      .subarray(idx[0], idx[1])
      .toString("utf8");
  return Array.from(item as ArrayLike<unknown>).slice(idx[0], idx[1]);
}

/** Go's evalArgs for html/js/urlquery: a lone string as is, otherwise fmt.Sprint. */
function evalArgs(args: unknown[], model: ValueModel): string {
  if (args.length === 1 && typeof args[0] === "string") return args[0];
  return sprint(
    args.map((a) => (a === undefined ? null : a)),
    model,
  );
}

/** Go's template.HTMLEscapeString. */
export function htmlEscape(s: string): string {
  return s.replace(/[\0"'&<>]/g, (c) => {
    switch (c) {
      case "\0":
        return "\uFFFD";
      case '"':
        return "&#34;";
      case "'":
        return "&#39;";
      case "&":
        return "&amp;";
      case "<":
        return "&lt;";
      default:
        return "&gt;";
    }
  });
}

/** Go's template.JSEscapeString. */
export function jsEscape(s: string): string {
  let out = "";
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    switch (ch) {
      case "\\":
        out += "\\\\";
        continue;
      case "'":
        out += "\\'";
        continue;
      case '"':
        out += '\\"';
        continue;
      case "<":
        out += "\\u003C";
        continue;
      case ">":
        out += "\\u003E";
        continue;
      case "&":
        out += "\\u0026";
        continue;
      case "=":
        out += "\\u003D";
        continue;
    }
    if (cp < 0x20) out += `\\u00${cp.toString(16).toUpperCase().padStart(2, "0")}`;
    else if (cp < 0x80 || isPrint(ch)) out += ch;
    else out += `\\u${cp.toString(16).toUpperCase().padStart(4, "0")}`;
  }
  return out;
}

/** Go's url.QueryEscape. */
export function queryEscape(s: string): string {
  let out = "";
  for (const b of Buffer.from(s, "utf8")) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-_.~]/.test(c)) out += c;
    else if (c === " ") out += "+";
    else out += `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Go's strings.Title: upper-cases the first letter of each word. */
export function title(s: string): string {
  let out = "";
  let prev = " ";
  for (const ch of s) {
    out += isSeparator(prev) ? ch.toUpperCase() : ch;
    prev = ch;
  }
  return out;
}

function isSeparator(ch: string): boolean {
  const cp = ch.codePointAt(0)!;
  if (cp <= 0x7f) return !/[0-9A-Za-z_]/.test(ch);
  if (/[\p{L}\p{Nd}]/u.test(ch)) return false;
  return /\s/u.test(ch);
}

function fixed(n: number, call: (args: unknown[], model: ValueModel) => unknown, params?: readonly ParamType[]): TemplateFunc {
  return params ? { call, min: n, max: n, params } : { call, min: n, max: n };
}

function variadic(min: number, call: (args: unknown[], model: ValueModel) => unknown, params?: readonly ParamType[]): TemplateFunc {
  const max = Number.POSITIVE_INFINITY;
  return params ? { call, min, max, params } : { call, min, max };
}

/** Converts a join argument to strings; Go wants []string, JavaScript arrays hold anything. */
function stringList(v: unknown, model: ValueModel): string[] {
  if (v === null || v === undefined) return [];
  if (kindOf(v, model) !== "array") throw new ArgTypeError(`wrong type for value; expected []string; got ${typeName(v, model)}`);
  return Array.from(v as ArrayLike<unknown>, (x) => (typeof x === "string" ? x : sprint([x], model)));
}

/** Go's text/template builtins. `and` and `or` are evaluated lazily by the executor. */
export const BUILTINS: ReadonlyMap<string, TemplateFunc> = new Map<string, TemplateFunc>([
  ["and", variadic(1, (a, m) => a.find((x) => !isTrue(x, m)) ?? a[a.length - 1])],
  ["or", variadic(1, (a, m) => a.find((x) => isTrue(x, m)) ?? a[a.length - 1])],
  ["not", fixed(1, (a, m) => !isTrue(a[0], m))],
  [
    "len",
    fixed(1, ([v], m) => {
      if (v === undefined) throw new Error("len of untyped nil");
      if (v === null) throw new Error("len of nil pointer");
      const n = lengthOf(v, kindOf(v, m));
      if (n === undefined) throw new Error(`len of type ${typeName(v, m)}`);
      return n;
    }),
  ],
  ["index", variadic(1, (a, m) => index(a, m))],
  ["slice", variadic(1, (a, m) => slice(a, m))],
  ["print", variadic(0, (a, m) => sprint(a, m))],
  ["println", variadic(0, (a, m) => sprintln(a, m))],
  ["printf", variadic(1, ([f, ...rest], m) => sprintf(str(f, m), rest, m), ["string"])],
  ["eq", variadic(1, (a, m) => eq(a, m))],
  ["ne", fixed(2, (a, m) => !eq(a, m))],
  ["lt", fixed(2, ([a, b], m) => lt(a, b, m))],
  ["le", fixed(2, ([a, b], m) => lt(a, b, m) || eq([a, b], m))],
  ["gt", fixed(2, ([a, b], m) => !lt(a, b, m) && !eq([a, b], m))],
  ["ge", fixed(2, ([a, b], m) => !lt(a, b, m))],
  ["html", variadic(0, (a, m) => htmlEscape(evalArgs(a, m)))],
  ["js", variadic(0, (a, m) => jsEscape(evalArgs(a, m)))],
  ["urlquery", variadic(0, (a, m) => queryEscape(evalArgs(a, m)))],
  [
    "call",
    variadic(1, ([fn, ...rest], m) => {
      if (typeof fn !== "function") throw new Error(`non-function of type ${typeName(fn, m)}`);
      return fn(...rest);
    }),
  ],
]);

/** docker CLI's template functions (docker/cli templates.basicFunctions). */
export const DOCKER_FUNCS: ReadonlyMap<string, TemplateFunc> = new Map<string, TemplateFunc>([
  ["json", fixed(1, ([v], m) => toJson(v, m))],
  [
    "split",
    fixed(
      2,
      ([s, sep], m) => {
        const a = str(s, m);
        const b = str(sep, m);
        return b === "" ? Array.from(a) : a.split(b);
      },
      ["string", "string"],
    ),
  ],
  ["join", fixed(2, ([l, sep], m) => stringList(l, m).join(str(sep, m)), ["strings", "string"])],
  ["title", fixed(1, ([s], m) => title(str(s, m)), ["string"])],
  ["lower", fixed(1, ([s], m) => str(s, m).toLowerCase(), ["string"])],
  ["upper", fixed(1, ([s], m) => str(s, m).toUpperCase(), ["string"])],
  [
    "pad",
    fixed(
      3,
      ([s, prefix, suffix], m) => {
        const v = str(s, m);
        const p = int(prefix, m);
        const q = int(suffix, m);
        if (v === "") return v;
        if (p < 0 || q < 0) throw new Error("strings: negative Repeat count");
        return " ".repeat(p) + v + " ".repeat(q);
      },
      ["string", "int", "int"],
    ),
  ],
  [
    "truncate",
    fixed(
      2,
      ([s, n], m) => {
        const v = str(s, m);
        const len = int(n, m);
        const bytes = Buffer.from(v, "utf8");
        if (bytes.length < len) return v;
        if (len < 0) throw new Error(`slice bounds out of range [:${len}]`);
        return bytes.subarray(0, len).toString("utf8");
      },
      ["string", "int"],
    ),
  ],
]);

const identity = (params: readonly ParamType[]) => fixed(params.length, ([v], m) => str(v, m), params);

/** docker's HeaderFunctions: the same names, returning the header text unchanged. */
export const HEADER_FUNCS: ReadonlyMap<string, TemplateFunc> = new Map<string, TemplateFunc>([
  ["json", identity(["string"])],
  ["split", identity(["string", "string"])],
  ["join", identity(["string", "string"])],
  ["title", identity(["string"])],
  ["lower", identity(["string"])],
  ["upper", identity(["string"])],
  ["truncate", identity(["string", "int"])],
]);
