/**
 * A subset of Go's fmt package over JavaScript values: Sprint, Sprintln, Sprintf with the
 * common verbs, flags, width and precision, and Go's default printing of arrays (`[a b]`),
 * maps (`map[k:v]`, sorted) and structs (`{v1 v2}`). Integral numbers print as Go ints,
 * others as float64.
 */
import { isPrint } from "./_lex.ts";
import { kindOf, lookupField, sortedEntries, structFields, typeName, type ValueModel } from "./_value.ts";

interface Spec {
  minus: boolean;
  plus: boolean;
  sharp: boolean;
  space: boolean;
  zero: boolean;
  width: number | undefined;
  prec: number | undefined;
  plusV: boolean;
  sharpV: boolean;
}

function plainSpec(): Spec {
  return {
    minus: false,
    plus: false,
    sharp: false,
    space: false,
    zero: false,
    width: undefined,
    prec: undefined,
    plusV: false,
    sharpV: false,
  };
}

function runeCount(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function pad(s: string, spec: Spec): string {
  if (spec.width === undefined) return s;
  const n = spec.width - runeCount(s);
  if (n <= 0) return s;
  if (spec.minus) return s + " ".repeat(n);
  return (spec.zero ? "0" : " ").repeat(n) + s;
}

/** Go's strconv.Quote (also used by %q). `ascii` escapes everything outside ASCII (%+q). */
export function quote(s: string, ascii = false): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    out += escapeRune(ch, cp, '"', ascii);
  }
  return out + '"';
}

function escapeRune(ch: string, cp: number, q: string, ascii: boolean): string {
  if (ch === q || ch === "\\") return `\\${ch}`;
  if (ascii ? cp < 0x80 && isPrint(ch) : isPrint(ch)) return ch;
  switch (ch) {
    case "\u0007":
      return "\\a";
    case "\b":
      return "\\b";
    case "\f":
      return "\\f";
    case "\n":
      return "\\n";
    case "\r":
      return "\\r";
    case "\t":
      return "\\t";
    case "\v":
      return "\\v";
  }
  if (cp < 0x20 || cp === 0x7f) return `\\x${cp.toString(16).padStart(2, "0")}`;
  if (cp >= 0xd800 && cp <= 0xdfff) return "\\ufffd";
  if (cp < 0x10000) return `\\u${cp.toString(16).padStart(4, "0")}`;
  return `\\U${cp.toString(16).padStart(8, "0")}`;
}

function quoteRune(cp: number, ascii: boolean): string {
  if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp < 0) cp = 0xfffd;
  const ch = String.fromCodePoint(cp);
  return `'${escapeRune(ch, cp, "'", ascii)}'`;
}

function canBackquote(s: string): boolean {
  for (const ch of s) {
    if (ch === "`" || ch === "\ufffd") return false;
    const cp = ch.codePointAt(0)!;
    if (cp < 0x20 && ch !== "\t") return false;
    if (cp === 0x7f) return false;
  }
  return true;
}

/** Formats a float64 the way strconv.FormatFloat does for 'e', 'f' and 'g'. */
export function formatFloat(v: number, verb: "e" | "E" | "f" | "g" | "G", prec: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "+Inf" : "-Inf";
  const neg = v < 0 || Object.is(v, -0);
  const a = Math.abs(v);
  let body: string;
  if (verb === "f") {
    const exact = exactDigits(a);
    body = fixedFromDigits(roundDigits(exact, exact.dp + prec), prec);
  } else if (verb === "e" || verb === "E") {
    body = expForm(decimalDigits(a, prec < 0 ? -1 : prec + 1), prec < 0 ? undefined : prec, verb);
  } else {
    const shortest = prec < 0;
    let p = prec === 0 ? 1 : prec;
    const d = decimalDigits(a, shortest ? -1 : p);
    if (shortest) p = d.digits.length;
    let eprec = p;
    if (eprec > d.digits.length && d.digits.length >= d.dp) eprec = d.digits.length;
    if (shortest) eprec = 6;
    const exp = d.dp - 1;
    if (a !== 0 && (exp < -4 || exp >= eprec)) {
      if (p > d.digits.length) p = d.digits.length;
      body = expForm(d, p - 1, verb === "g" ? "e" : "E");
    } else {
      if (p > d.dp) p = d.digits.length;
      body = fixedFromDigits(d, Math.max(p - d.dp, 0));
    }
  }
  return (neg ? "-" : "") + body;
}

interface Digits {
  /** Significant decimal digits without leading/trailing zeros ("" for zero). */
  digits: string;
  /** Position of the decimal point relative to the digits. */
  dp: number;
}

/** Decimal digits of a non-negative finite number: shortest (n < 0) or rounded to n significant digits. */
function decimalDigits(a: number, n: number): Digits {
  if (a === 0) return { digits: "", dp: 0 };
  if (n >= 0) return roundDigits(exactDigits(a), n);
  const m = /^(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(a.toExponential())!;
  const digits = (m[1]! + (m[2] ?? "")).replace(/0+$/, "");
  return { digits, dp: Number(m[3]) + 1 };
}

/** The exact decimal expansion of a non-negative finite double (JavaScript's toFixed rounds ties up; Go rounds them to even). */
function exactDigits(a: number): Digits {
  if (a === 0) return { digits: "", dp: 0 };
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, a);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const expBits = (hi >>> 20) & 0x7ff;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let e = -1074;
  if (expBits !== 0) {
    mant |= 1n << 52n;
    e = expBits - 1075;
  }
  // a = mant * 2^e; for e < 0 that is mant * 5^-e / 10^-e.
  const s = e >= 0 ? (mant << BigInt(e)).toString() : (mant * 5n ** BigInt(-e)).toString();
  const dp = e >= 0 ? s.length : s.length + e;
  return { digits: s.replace(/0+$/, ""), dp };
}

/** Keeps nd significant digits, rounding half to even on the exact value, as Go's strconv does. */
function roundDigits(d: Digits, nd: number): Digits {
  if (nd < 0 || nd >= d.digits.length) return d;
  const next = d.digits.charCodeAt(nd) - 48;
  let up = next >= 5;
  if (next === 5 && nd + 1 === d.digits.length) up = nd > 0 && (d.digits.charCodeAt(nd - 1) - 48) % 2 === 1;
  if (!up) return { digits: d.digits.slice(0, nd).replace(/0+$/, ""), dp: d.dp };
  let i = nd - 1;
  while (i >= 0 && d.digits[i] === "9") i--;
  if (i < 0) return { digits: "1", dp: d.dp + 1 };
  return { digits: d.digits.slice(0, i) + String.fromCharCode(d.digits.charCodeAt(i) + 1), dp: d.dp };
}

function expForm(d: Digits, prec: number | undefined, verb: "e" | "E"): string {
  let digits = d.digits || "0";
  const exp = d.digits ? d.dp - 1 : 0;
  const p = prec === undefined ? digits.length - 1 : prec;
  if (digits.length < p + 1) digits = digits.padEnd(p + 1, "0");
  let s = digits[0]!;
  if (p > 0) s += `.${digits.slice(1, p + 1)}`;
  const ae = Math.abs(exp);
  return `${s}${verb}${exp < 0 ? "-" : "+"}${ae < 10 ? `0${ae}` : ae}`;
}

function fixedFromDigits(d: Digits, prec: number): string {
  let intPart: string;
  let frac = "";
  if (d.dp <= 0) {
    intPart = "0";
    frac = "0".repeat(-d.dp) + d.digits;
  } else if (d.dp >= d.digits.length) {
    intPart = (d.digits || "0") + "0".repeat(d.digits ? d.dp - d.digits.length : 0);
  } else {
    intPart = d.digits.slice(0, d.dp);
    frac = d.digits.slice(d.dp);
  }
  frac = frac.slice(0, prec).padEnd(prec, "0");
  return prec > 0 ? `${intPart}.${frac}` : intPart;
}

function intString(v: number | bigint, base: number): string {
  if (typeof v === "bigint") return (v < 0n ? -v : v).toString(base);
  const a = Math.abs(v);
  return a >= 2 ** 53 ? BigInt(a).toString(base) : a.toString(base);
}

function fmtInteger(v: number | bigint, verb: string, spec: Spec): string {
  const neg = typeof v === "bigint" ? v < 0n : v < 0;
  const base = verb === "b" ? 2 : verb === "o" || verb === "O" ? 8 : verb === "x" || verb === "X" ? 16 : 10;
  let digits = intString(v, base);
  if (verb === "X") digits = digits.toUpperCase();
  const isZero = typeof v === "bigint" ? v === 0n : v === 0;
  if (spec.prec !== undefined) {
    digits = spec.prec === 0 && isZero ? "" : digits.padStart(spec.prec, "0");
  } else if (spec.zero && !spec.minus && spec.width !== undefined) {
    const w = spec.width - (neg || spec.plus || spec.space ? 1 : 0);
    digits = digits.padStart(w, "0");
  }
  let prefix = "";
  if (spec.sharp) {
    if (verb === "b") prefix = "0b";
    else if (verb === "o" && !digits.startsWith("0")) prefix = "0";
    else if (verb === "x") prefix = "0x";
    else if (verb === "X") prefix = "0X";
  }
  if (verb === "O") prefix = "0o";
  const sign = neg ? "-" : spec.plus ? "+" : spec.space ? " " : "";
  return pad(sign + prefix + digits, { ...spec, zero: false });
}

function fmtFloatSpec(v: number, verb: string, spec: Spec): string {
  let prec = spec.prec;
  let f: "e" | "E" | "f" | "g" | "G";
  switch (verb) {
    case "v":
      f = "g";
      prec ??= -1;
      break;
    case "g":
    case "G":
      f = verb;
      prec ??= -1;
      break;
    case "e":
    case "E":
    case "f":
      f = verb;
      prec ??= 6;
      break;
    case "F":
      f = "f";
      prec ??= 6;
      break;
    default:
      f = "g";
      prec ??= -1;
  }
  let num = formatFloat(v, f, prec);
  if (spec.sharp && !num.endsWith("Inf") && num !== "NaN") num = sharpFloat(num, f === "g" || f === "G" ? (prec < 0 ? 6 : prec) : 0);
  if (num === "NaN" || num.endsWith("Inf")) {
    let s = num;
    if (s === "NaN" && (spec.plus || spec.space)) s = (spec.plus ? "+" : " ") + s;
    if (s === "+Inf" && !spec.plus) s = spec.space ? " Inf" : "+Inf";
    return pad(s, { ...spec, zero: false });
  }
  let sign = "";
  if (num.startsWith("-")) {
    sign = "-";
    num = num.slice(1);
  } else if (spec.plus) sign = "+";
  else if (spec.space) sign = " ";
  if (spec.zero && !spec.minus && spec.width !== undefined && spec.width > num.length + sign.length) {
    return sign + "0".repeat(spec.width - num.length - sign.length) + num;
  }
  return pad(sign + num, spec);
}

/** The # flag on floats: always a decimal point, and %g keeps trailing zeros up to its precision. */
function sharpFloat(num: string, digits: number): string {
  const m = /^(-?)([^eE]*)(.*)$/.exec(num)!;
  let body = m[2]!;
  let sawNonzero = false;
  for (const c of body) {
    if (c === ".") continue;
    if (c !== "0") sawNonzero = true;
    if (sawNonzero) digits--;
  }
  if (!body.includes(".")) {
    if (body === "0") digits--;
    body += ".";
  }
  if (digits > 0) body += "0".repeat(digits);
  return m[1]! + body + m[3]!;
}

function fmtString(s: string, verb: string, spec: Spec): string {
  switch (verb) {
    case "v":
      if (spec.sharpV) return pad(quote(s), spec);
      return pad(spec.prec !== undefined ? [...s].slice(0, spec.prec).join("") : s, spec);
    case "s":
      return pad(spec.prec !== undefined ? [...s].slice(0, spec.prec).join("") : s, spec);
    case "q":
      if (spec.sharp && canBackquote(s)) return pad(`\`${s}\``, spec);
      return pad(quote(s, spec.plus), spec);
    case "x":
    case "X": {
      let bytes = Buffer.from(s, "utf8");
      if (spec.prec !== undefined) bytes = bytes.subarray(0, spec.prec);
      const parts: string[] = [];
      for (const b of bytes) {
        let h = b.toString(16).padStart(2, "0");
        if (verb === "X") h = h.toUpperCase();
        if (spec.sharp && (spec.space || parts.length === 0)) h = (verb === "X" ? "0X" : "0x") + h;
        parts.push(h);
      }
      return pad(parts.join(spec.space ? " " : ""), spec);
    }
  }
  return badVerb(s, verb, "string");
}

function badVerb(value: string, verb: string, type: string | undefined): string {
  return type === undefined ? `%!${verb}(<nil>)` : `%!${verb}(${type}=${value})`;
}

/** Date values print like Go's time.Time String(). */
function formatTime(d: Date): string {
  if (Number.isNaN(d.getTime())) return "0001-01-01 00:00:00 +0000 UTC";
  const iso = d.toISOString();
  const ms = iso.slice(20, 23).replace(/0+$/, "");
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${ms ? `.${ms}` : ""} +0000 UTC`;
}

/** Formats one value with a verb; composite values apply the verb to each element, like Go. */
function printArg(v: unknown, verb: string, spec: Spec, model: ValueModel, depth: number): string {
  if (verb === "T") return pad(typeName(v, model), spec);
  const kind = kindOf(v, model);
  switch (kind) {
    case "invalid":
    case "nil":
      // Go prints a nil element of a composite as <nil> whatever the verb.
      if (verb === "v" || depth > 0) return pad("<nil>", spec);
      return badVerb("", verb, undefined);
    case "bool":
      if (verb === "t" || verb === "v") return pad(String(v), spec);
      return badVerb(String(v), verb, "bool");
    case "int": {
      const n = v as number | bigint;
      switch (verb) {
        case "v":
        case "d":
        case "b":
        case "o":
        case "O":
        case "x":
        case "X":
          return fmtInteger(n, verb === "v" ? "d" : verb, spec);
        case "c":
          return pad(String.fromCodePoint(safeRune(Number(n))), spec);
        case "q":
          return pad(quoteRune(Number(n), spec.plus), spec);
        case "U": {
          const cp = Number(n);
          let s = `U+${cp.toString(16).toUpperCase().padStart(4, "0")}`;
          if (spec.sharp && cp <= 0x10ffff && isPrint(String.fromCodePoint(safeRune(cp)))) s += ` '${String.fromCodePoint(cp)}'`;
          return pad(s, spec);
        }
        case "e":
        case "E":
        case "f":
        case "F":
        case "g":
        case "G":
          // JavaScript cannot tell 5 from 5.0: a float verb formats the number as a float.
          return fmtFloatSpec(Number(n), verb, spec);
      }
      return badVerb(String(n), verb, "int");
    }
    case "float": {
      const n = v as number;
      if ("vbgGxXfFeE".includes(verb)) return fmtFloatSpec(n, verb === "b" || verb === "x" || verb === "X" ? "g" : verb, spec);
      return badVerb(formatFloat(n, "g", -1), verb, "float64");
    }
    case "string":
      return fmtString(String(v), verb, spec);
    case "func":
      return verb === "v" || verb === "p" ? pad("<func>", spec) : badVerb("<func>", verb, "func()");
    case "array": {
      const items = Array.from(v as ArrayLike<unknown>);
      if (verb === "s" && v instanceof Uint8Array) return fmtString(Buffer.from(v).toString("utf8"), "s", spec);
      return `[${items.map((x) => printArg(x, verb, spec, model, depth + 1)).join(" ")}]`;
    }
    case "map": {
      const parts = sortedEntries(v as object).map(
        ([k, x]) => `${printArg(k, verb, spec, model, depth + 1)}:${printArg(x, verb, spec, model, depth + 1)}`,
      );
      return `map[${parts.join(" ")}]`;
    }
    case "struct": {
      if (v instanceof Date) return fmtString(formatTime(v), verb === "v" ? "s" : verb, spec);
      if ("vsq".includes(verb)) {
        const str = lookupField(v as object, "String", "struct");
        if (str.found && typeof str.value === "function") return fmtString(String(str.value.call(v)), verb, spec);
      }
      if (depth > 100) return "{...}";
      const parts = structFields(v as object).map(([k, x]) => {
        const s = printArg(x, verb, spec, model, depth + 1);
        return spec.plusV ? `${k}:${s}` : s;
      });
      return `{${parts.join(" ")}}`;
    }
  }
}

function safeRune(cp: number): number {
  return Number.isInteger(cp) && cp >= 0 && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff) ? cp : 0xfffd;
}

/** What `{{.}}` prints for a value: Go's fmt.Print, with `<no value>` for a missing value. */
export function printValue(v: unknown, model: ValueModel): string {
  if (v === undefined) return "<no value>";
  return printArg(v, "v", plainSpec(), model, 0);
}

/** fmt.Sprint: operands printed with %v, a space between two operands when neither is a string. */
export function sprint(args: readonly unknown[], model: ValueModel): string {
  let out = "";
  let prevString = false;
  args.forEach((a, i) => {
    const isString = typeof a === "string";
    if (i > 0 && !isString && !prevString) out += " ";
    out += printArg(a, "v", plainSpec(), model, 0);
    prevString = isString;
  });
  return out;
}

/** fmt.Sprintln: operands separated by spaces, then a newline. */
export function sprintln(args: readonly unknown[], model: ValueModel): string {
  return `${args.map((a) => printArg(a, "v", plainSpec(), model, 0)).join(" ")}\n`;
}

/** fmt.Sprintf for the verbs v s d q x X o O b c U t f F e E g G T and %%, with flags, width, precision and [n] indexes. */
export function sprintf(format: string, args: readonly unknown[], model: ValueModel): string {
  let out = "";
  let argNum = 0;
  let reordered = false;
  let i = 0;
  const n = format.length;

  // Parses "[n]" at i; returns the new arg index or undefined on a bad index.
  const argIndex = (): { ok: boolean; found: boolean } => {
    if (format[i] !== "[") return { ok: true, found: false };
    reordered = true;
    const close = format.indexOf("]", i);
    const text = close < 0 ? "" : format.slice(i + 1, close);
    if (close < 0 || !/^\d+$/.test(text)) {
      i = close < 0 ? n : close + 1;
      return { ok: false, found: true };
    }
    const idx = Number(text) - 1;
    i = close + 1;
    if (idx < 0 || idx > args.length) return { ok: false, found: true };
    argNum = idx;
    return { ok: true, found: true };
  };

  while (i < n) {
    const pct = format.indexOf("%", i);
    if (pct < 0) {
      out += format.slice(i);
      break;
    }
    out += format.slice(i, pct);
    i = pct + 1;
    const spec = plainSpec();
    // Flags.
    for (; i < n; i++) {
      const c = format[i];
      if (c === "#") spec.sharp = true;
      else if (c === "0") spec.zero = !spec.minus;
      else if (c === "+") spec.plus = true;
      else if (c === "-") {
        spec.minus = true;
        spec.zero = false;
      } else if (c === " ") spec.space = true;
      else break;
    }
    let goodArgNum = argIndex().ok;
    // Width.
    let badWidth = false;
    if (format[i] === "*") {
      i++;
      const w = args[argNum++];
      if (typeof w === "number" && Number.isInteger(w)) {
        spec.width = Math.abs(w);
        if (w < 0) {
          spec.minus = true;
          spec.zero = false;
        }
      } else badWidth = true;
    } else {
      const m = /^\d+/.exec(format.slice(i));
      if (m) {
        spec.width = Number(m[0]);
        i += m[0].length;
      }
    }
    if (badWidth) out += "%!(BADWIDTH)";
    // Precision.
    let badPrec = false;
    if (format[i] === ".") {
      i++;
      const r = argIndex();
      if (r.found) goodArgNum = r.ok;
      if (format[i] === "*") {
        i++;
        const p = args[argNum++];
        if (typeof p === "number" && Number.isInteger(p) && p >= 0) spec.prec = p;
        else badPrec = true;
      } else {
        const m = /^\d+/.exec(format.slice(i));
        spec.prec = m ? Number(m[0]) : 0;
        if (m) i += m[0].length;
      }
    }
    if (badPrec) out += "%!(BADPREC)";
    const r = argIndex();
    if (r.found) goodArgNum = r.ok;
    if (i >= n) {
      out += "%!(NOVERB)";
      break;
    }
    const verb = String.fromCodePoint(format.codePointAt(i)!);
    i += verb.length;
    if (verb === "%") {
      out += "%";
      continue;
    }
    if (!goodArgNum) {
      out += `%!${verb}(BADINDEX)`;
      continue;
    }
    if (argNum >= args.length) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    const arg = args[argNum++];
    let v = verb;
    if (v === "w") v = "v";
    if (v === "v") {
      if (spec.sharp) {
        spec.sharp = false;
        spec.sharpV = true;
      }
      if (spec.plus) {
        spec.plus = false;
        spec.plusV = true;
      }
    }
    out += printArg(arg, v, spec, model, 0);
  }
  if (!reordered && argNum < args.length) {
    const extra = args
      .slice(argNum)
      .map((a) => (a === null || a === undefined ? "<nil>" : `${typeName(a, model)}=${printValue(a, model)}`));
    out += `%!(EXTRA ${extra.join(", ")})`;
  }
  return out;
}
