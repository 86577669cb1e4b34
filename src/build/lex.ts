/**
 * Word processing for Dockerfile instructions: quote removal, escapes and variable substitution
 * the way Docker's shell lexer does it (a small subset of POSIX sh). `$V`, `${V}`,
 * `${V:-word}`, `${V-word}`, `${V:+word}`, `${V+word}`, `${V:?msg}`, `${V?msg}`, the pattern
 * forms `${V#p}`, `${V##p}`, `${V%p}`, `${V%%p}` and `${V/p/r}`, `${V//p/r}`. Single quotes
 * are literal, double quotes allow `$` and escape only `"`, `$` and the escape character.
 * Unset variables expand to "" (unless `skipUnsetEnv`, which keeps the reference as written,
 * for heredoc detection).
 */
import { invalidArgument } from "../base/mod.ts";

/** Looks a variable up; `undefined` means unset. */
export type EnvLookup = (name: string) => string | undefined;

/** Options of `ShellLex`. */
export interface LexOptions {
  /** Keep quote characters in the result (heredoc detection). */
  rawQuotes?: boolean;
  /** Keep escape characters in the result. */
  rawEscapes?: boolean;
  /** Leave references to unset variables as written. */
  skipUnsetEnv?: boolean;
  /** Treat quotes as ordinary characters. */
  skipProcessQuotes?: boolean;
}

/** What `process` produced: the word, its split form, and the variables looked up. */
export interface LexResult {
  result: string;
  words: string[];
  matched: Set<string>;
  unmatched: Set<string>;
}

const EOF = "";

function isSpace(ch: string): boolean {
  return /^\s$/u.test(ch);
}

function isLetterOrDigit(ch: string): boolean {
  return /^[\p{L}\p{Nd}]$/u.test(ch);
}

function isDigit(ch: string): boolean {
  return /^\p{Nd}$/u.test(ch);
}

/** Accumulates words for `processWords`: unquoted whitespace separates them. */
class Words {
  buf = "";
  words: string[] = [];
  inWord = false;
  addChar(ch: string): void {
    if (isSpace(ch)) {
      if (this.inWord && this.buf.length !== 0) {
        this.words.push(this.buf);
        this.buf = "";
        this.inWord = false;
      }
    } else this.addRawChar(ch);
  }
  addRawChar(ch: string): void {
    this.buf += ch;
    this.inWord = true;
  }
  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }
  addRawString(s: string): void {
    this.buf += s;
    this.inWord = true;
  }
  get(): string[] {
    if (this.buf.length > 0) {
      this.words.push(this.buf);
      this.buf = "";
      this.inWord = false;
    }
    return this.words;
  }
}

/** One run of the lexer over one input. */
class Scan {
  #chars: string[];
  #pos = 0;
  constructor(s: string) {
    this.#chars = Array.from(s);
  }
  peek(): string {
    return this.#chars[this.#pos] ?? EOF;
  }
  next(): string {
    const c = this.#chars[this.#pos] ?? EOF;
    if (c !== EOF) this.#pos++;
    return c;
  }
}

/**
 * The Dockerfile word lexer. One instance per escape character; methods are reentrant.
 */
export class ShellLex {
  readonly escape: string;
  readonly options: LexOptions;

  constructor(esc = "\\", options: LexOptions = {}) {
    this.escape = esc;
    this.options = options;
  }

  /** Expands `word` as one word (whitespace kept, quotes removed). */
  processWord(word: string, env: EnvLookup): string {
    return this.process(word, env).result;
  }

  /** Expands `word` and splits it into words at unquoted whitespace. */
  processWords(word: string, env: EnvLookup): string[] {
    return this.process(word, env).words;
  }

  /** Expands `word`, returning both forms and which variables were used. */
  process(word: string, env: EnvLookup): LexResult {
    const run = new LexRun(this, env, new Scan(word));
    try {
      const { result, words } = run.processStopOn(EOF, this.options.rawEscapes === true);
      return { result, words, matched: run.matched, unmatched: run.unmatched };
    } catch (e) {
      throw invalidArgument(`failed to process "${word}": ${(e as Error).message}`);
    }
  }
}

class LexRun {
  #lex: ShellLex;
  #env: EnvLookup;
  #s: Scan;
  #rawEscapes: boolean;
  matched = new Set<string>();
  unmatched = new Set<string>();

  constructor(lex: ShellLex, env: EnvLookup, s: Scan) {
    this.#lex = lex;
    this.#env = env;
    this.#s = s;
    this.#rawEscapes = lex.options.rawEscapes === true;
  }

  processStopOn(stop: string, rawEscapes: boolean): { result: string; words: string[] } {
    const saved = this.#rawEscapes;
    this.#rawEscapes = rawEscapes;
    try {
      let result = "";
      const words = new Words();
      const s = this.#s;
      const esc = this.#lex.escape;
      const quotes = !this.#lex.options.skipProcessQuotes;
      while (s.peek() !== EOF) {
        const ch = s.peek();
        if (stop !== EOF && ch === stop) {
          s.next();
          return { result, words: words.get() };
        }
        if (ch === "$") {
          const v = this.#dollar();
          result += v;
          words.addString(v);
        } else if (ch === "<") {
          const v = this.#possibleHeredoc();
          result += v;
          words.addRawString(v);
        } else if (quotes && ch === "'") {
          const v = this.#singleQuote();
          result += v;
          words.addRawString(v);
        } else if (quotes && ch === '"') {
          const v = this.#doubleQuote();
          result += v;
          words.addRawString(v);
        } else {
          let c = s.next();
          if (c === esc) {
            if (this.#rawEscapes) {
              words.addRawChar(c);
              result += c;
            }
            c = s.next();
            if (c === EOF) break;
            words.addRawChar(c);
          } else words.addChar(c);
          result += c;
        }
      }
      if (stop !== EOF) throw new Error(`unexpected end of statement while looking for matching ${stop}`);
      return { result, words: words.get() };
    } finally {
      this.#rawEscapes = saved;
    }
  }

  #singleQuote(): string {
    const s = this.#s;
    const raw = this.#lex.options.rawQuotes === true;
    let out = "";
    const open = s.next();
    if (raw) out += open;
    for (;;) {
      const c = s.next();
      if (c === EOF) throw new Error("unexpected end of statement while looking for matching single-quote");
      if (c === "'") {
        if (raw) out += c;
        return out;
      }
      out += c;
    }
  }

  #doubleQuote(): string {
    const s = this.#s;
    const raw = this.#lex.options.rawQuotes === true;
    const esc = this.#lex.escape;
    let out = "";
    const open = s.next();
    if (raw) out += open;
    for (;;) {
      const p = s.peek();
      if (p === EOF) throw new Error("unexpected end of statement while looking for matching double-quote");
      if (p === '"') {
        const c = s.next();
        if (raw) out += c;
        return out;
      }
      if (p === "$") {
        out += this.#dollar();
        continue;
      }
      let c = s.next();
      if (c === esc) {
        if (this.#rawEscapes) out += c;
        const n = s.peek();
        if (n === EOF) continue;
        if (n === '"' || n === "$" || n === esc) c = s.next();
      }
      out += c;
    }
  }

  #get(name: string): string | undefined {
    const v = this.#env(name);
    if (v === undefined) this.unmatched.add(name);
    else this.matched.add(name);
    return v;
  }

  #name(): string {
    const s = this.#s;
    let name = "";
    while (s.peek() !== EOF) {
      const ch = s.peek();
      if (name.length === 0 && isDigit(ch)) {
        while (s.peek() !== EOF && isDigit(s.peek())) name += s.next();
        return name;
      }
      if (name.length === 0 && "@*#?-$!0".includes(ch)) return s.next();
      if (!isLetterOrDigit(ch) && ch !== "_") break;
      name += s.next();
    }
    return name;
  }

  #dollar(): string {
    const s = this.#s;
    const skipUnset = this.#lex.options.skipUnsetEnv === true;
    s.next();
    if (s.peek() !== "{") {
      const name = this.#name();
      if (name === "") return "$";
      const v = this.#get(name);
      if (v === undefined && skipUnset) return `$${name}`;
      return v ?? "";
    }
    s.next();
    const first = s.peek();
    if (first === EOF) throw new Error("syntax error: missing '}'");
    if (first === "{" || first === "}" || first === ":") throw new Error("syntax error: bad substitution");
    const name = this.#name();
    let ch = s.next();
    let chs = ch;
    if (ch === EOF) throw new Error("syntax error: missing '}'");
    if (ch === "}") {
      const v = this.#get(name);
      if (v === undefined && skipUnset) return `\${${name}}`;
      return v ?? "";
    }
    if (ch === "/") {
      const all = s.peek() === "/";
      if (all) s.next();
      let pattern: string;
      try {
        pattern = this.processStopOn("/", true).result;
      } catch (e) {
        if (s.peek() === EOF) throw new Error("syntax error: missing '/' in $" + "{}");
        throw e;
      }
      let repl: string;
      try {
        repl = this.processStopOn("}", true).result;
      } catch (e) {
        if (s.peek() === EOF) throw new Error("syntax error: missing '}'");
        throw e;
      }
      const v = this.#get(name);
      if (v === undefined && skipUnset) return `\${${name}/${pattern}/${repl}}`;
      const re = shellPattern(pattern, true, false, all);
      return (v ?? "").replace(re, () => repl);
    }
    let nullIsUnset = false;
    if (ch === ":") {
      nullIsUnset = true;
      ch = s.next();
      chs += ch;
    }
    if (!["+", "-", "?", "#", "%"].includes(ch)) throw new Error(`unsupported modifier (${chs}) in substitution`);
    const rawEsc = ch === "#" || ch === "%";
    if (nullIsUnset && rawEsc) throw new Error(`unsupported modifier (${chs}) in substitution`);
    let word: string;
    try {
      word = this.processStopOn("}", rawEsc).result;
    } catch (e) {
      if (s.peek() === EOF) throw new Error("syntax error: missing '}'");
      throw e;
    }
    const v = this.#get(name);
    if (v === undefined && skipUnset) return `\${${name}${chs}${word}}`;
    const unset = v === undefined || (nullIsUnset && v === "");
    switch (ch) {
      case "-":
        return unset ? word : (v ?? "");
      case "+":
        return unset ? "" : word;
      case "?":
        if (v === undefined) throw new Error(`${name}: ${word || "is not allowed to be unset"}`);
        if (nullIsUnset && v === "") throw new Error(`${name}: ${word || "is not allowed to be empty"}`);
        return v;
      default: {
        let greedy = false;
        let pat = word;
        if (pat.startsWith(ch)) {
          greedy = true;
          pat = pat.slice(1);
        }
        const value = v ?? "";
        if (ch === "#") return trimPrefix(pat, value, greedy);
        return reverse(trimPrefix(reversePattern(pat), reverse(value), greedy));
      }
    }
  }

  #possibleHeredoc(): string {
    const s = this.#s;
    s.next();
    if (s.peek() !== "<") return "<";
    s.next();
    let space = "";
    while (s.peek() === " " || s.peek() === "\t" || s.peek() === "\r") space += s.next();
    return `<<${space}`;
  }
}

/** A shell wildcard pattern (`*`, `?`, `\` escapes) as a regular expression. */
function shellPattern(pattern: string, greedy: boolean, anchored: boolean, global = false): RegExp {
  let out = anchored ? "^" : "";
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i] ?? "";
    if (c === "*") out += greedy ? "[\\s\\S]*" : "[\\s\\S]*?";
    else if (c === "?") out += "[\\s\\S]";
    else if (c === "\\") {
      const n = chars[i + 1];
      if (n === "}" || n === "/") continue;
      if (n !== "*" && n !== "?" && n !== "\\")
        throw new Error(`invalid pattern (${pattern}) in substitution: invalid escape '\\${n ?? ""}'`);
      out += `\\${n}`;
      i++;
    } else out += c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }
  return new RegExp(out, global ? "gu" : "u");
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const m = shellPattern(pattern, greedy, true).exec(value);
  return m ? value.slice(m[0].length) : value;
}

function reverse(s: string): string {
  return Array.from(s).reverse().join("");
}

/** Reverses a pattern keeping `\x` escapes in order. */
function reversePattern(p: string): string {
  const chars = Array.from(p);
  const out: string[] = [];
  for (let i = 0; i < chars.length; ) {
    if (chars[i] === "\\" && i !== chars.length - 1) {
      out.unshift(`\\${chars[i + 1]}`);
      i += 2;
    } else {
      out.unshift(chars[i] ?? "");
      i++;
    }
  }
  return out.join("");
}
