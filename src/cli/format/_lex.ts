/**
 * Lexer for Go's text/template language. It produces the whole token list up front; the parser
 * reads it with look-ahead. Token kinds, trim markers and error texts follow Go's
 * text/template/parse so that error messages match what docker prints.
 */

export type TokenKind =
  | "text"
  | "leftDelim"
  | "rightDelim"
  | "space"
  | "identifier"
  | "field"
  | "variable"
  | "dot"
  | "string"
  | "rawString"
  | "charConstant"
  | "number"
  | "bool"
  | "nil"
  | "pipe"
  | "leftParen"
  | "rightParen"
  | "declare"
  | "assign"
  | "char"
  | "keyword"
  | "eof"
  | "error";

/** One lexical item; `pos` is the byte offset (UTF-16 offset here) into the template text. */
export interface Token {
  kind: TokenKind;
  val: string;
  pos: number;
  line: number;
}

const KEYWORDS = new Set(["block", "break", "continue", "define", "else", "end", "if", "range", "template", "with"]);

function isSpace(c: string | undefined): boolean {
  return c === " " || c === "\t" || c === "\r" || c === "\n";
}

function isAlphaNumeric(c: string | undefined): boolean {
  if (c === undefined || c === "") return false;
  return c === "_" || /^[\p{L}\p{Nd}]$/u.test(c);
}

/** How a token prints inside "unexpected X in Y" messages (Go's item.String). */
export function tokenString(t: Token): string {
  if (t.kind === "eof") return "EOF";
  if (t.kind === "error") return t.val;
  if (t.kind === "keyword" || t.kind === "nil" || t.kind === "dot") return `<${t.val}>`;
  if ([...t.val].length > 10) return `${goQuote([...t.val].slice(0, 10).join(""))}...`;
  return goQuote(t.val);
}

/** Go's %q for a string, used in messages. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    switch (ch) {
      case "\u0007":
        out += "\\a";
        continue;
      case "\b":
        out += "\\b";
        continue;
      case "\f":
        out += "\\f";
        continue;
      case "\n":
        out += "\\n";
        continue;
      case "\r":
        out += "\\r";
        continue;
      case "\t":
        out += "\\t";
        continue;
      case "\v":
        out += "\\v";
        continue;
      case "\\":
        out += "\\\\";
        continue;
      case '"':
        out += '\\"';
        continue;
    }
    if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, "0")}`;
    else if (isPrint(ch)) out += ch;
    else if (cp >= 0xd800 && cp <= 0xdfff) out += "\\ufffd";
    else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, "0")}`;
    else out += `\\U${cp.toString(16).padStart(8, "0")}`;
  }
  return out + '"';
}

/** Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space. */
export function isPrint(ch: string): boolean {
  return ch === " " || /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u.test(ch);
}

/** Go's %#U-ish rendering used in "bad character" messages: U+0023 '#'. */
function describeRune(ch: string): string {
  const cp = ch.codePointAt(0) ?? 0;
  const hex = cp.toString(16).toUpperCase().padStart(4, "0");
  return isPrint(ch) ? `U+${hex} '${ch}'` : `U+${hex}`;
}

/** Splits template text into tokens. A lexical error becomes an "error" token followed by nothing. */
export function lex(input: string): Token[] {
  const tokens: Token[] = [];
  let pos = 0;
  let start = 0;
  let line = 1;
  let startLine = 1;
  let parenDepth = 0;

  const emit = (kind: TokenKind, val = input.slice(start, pos)) => {
    tokens.push({ kind, val, pos: start, line: startLine });
    start = pos;
    startLine = line;
  };
  const advanceTo = (p: number) => {
    for (let i = pos; i < p; i++) if (input.charCodeAt(i) === 10) line++;
    pos = p;
  };
  const ignore = () => {
    start = pos;
    startLine = line;
  };
  const peek = () => input[pos];
  const next = () => {
    const c = input[pos];
    if (c === undefined) return undefined;
    advanceTo(pos + 1);
    return c;
  };
  const backup = () => {
    pos--;
    if (input.charCodeAt(pos) === 10) line--;
  };
  const fail = (message: string): false => {
    tokens.push({ kind: "error", val: message, pos: start, line: startLine });
    return false;
  };
  const hasRightTrim = (p: number) => isSpace(input[p]) && input[p + 1] === "-" && input.startsWith("}}", p + 2);
  const atRightDelim = (): [boolean, boolean] => {
    if (hasRightTrim(pos)) return [true, true];
    if (input.startsWith("}}", pos)) return [true, false];
    return [false, false];
  };
  const atTerminator = () => {
    const c = peek();
    if (c === undefined || isSpace(c)) return true;
    if (".,|:()".includes(c)) return true;
    return input.startsWith("}}", pos);
  };
  const skipSpaces = () => {
    let p = pos;
    while (isSpace(input[p])) p++;
    advanceTo(p);
    ignore();
  };

  // Returns false when lexing must stop (error or EOF).
  const lexText = (): boolean => {
    const i = input.indexOf("{{", pos);
    if (i < 0) {
      advanceTo(input.length);
      if (pos > start) emit("text");
      emit("eof", "");
      return false;
    }
    const trim = input[i + 2] === "-" && isSpace(input[i + 3]);
    let end = i;
    if (trim) while (end > start && isSpace(input[end - 1])) end--;
    advanceTo(end);
    if (pos > start) emit("text");
    advanceTo(i);
    ignore();
    return lexLeftDelim(trim);
  };

  const lexLeftDelim = (trim: boolean): boolean => {
    advanceTo(pos + 2 + (trim ? 2 : 0));
    if (input.startsWith("/*", pos)) {
      ignore();
      return lexComment();
    }
    // The token covers the delimiter only, so that positions point at the "{{".
    tokens.push({ kind: "leftDelim", val: "{{", pos: start, line: startLine });
    ignore();
    parenDepth = 0;
    return lexInsideAction();
  };

  const lexComment = (): boolean => {
    const i = input.indexOf("*/", pos + 2);
    if (i < 0) return fail("unclosed comment");
    advanceTo(i + 2);
    const [delim, trim] = atRightDelim();
    if (!delim) return fail("comment ends before closing delimiter");
    advanceTo(pos + 2 + (trim ? 2 : 0));
    if (trim) skipSpaces();
    ignore();
    return true;
  };

  const lexInsideAction = (): boolean => {
    for (;;) {
      const [delim, trim] = atRightDelim();
      if (delim) {
        if (parenDepth !== 0) return fail("unclosed left paren");
        if (trim) advanceTo(pos + 2);
        ignore();
        advanceTo(pos + 2);
        emit("rightDelim");
        if (trim) skipSpaces();
        return true;
      }
      const r = next();
      if (r === undefined) return fail("unclosed action");
      if (isSpace(r)) {
        backup();
        let n = 0;
        while (isSpace(peek())) {
          next();
          n++;
        }
        // A space before "-}}" belongs to the trim marker.
        if (hasRightTrim(pos - 1)) {
          backup();
          if (n === 1) {
            ignore();
            continue;
          }
        }
        emit("space");
        continue;
      }
      switch (r) {
        case "=":
          emit("assign");
          continue;
        case ":":
          if (next() !== "=") return fail("expected :=");
          emit("declare");
          continue;
        case "|":
          emit("pipe");
          continue;
        case '"':
          if (!lexQuote()) return false;
          continue;
        case "`":
          if (!lexRawQuote()) return false;
          continue;
        case "$":
          if (!lexFieldOrVariable("variable")) return false;
          continue;
        case "'":
          if (!lexChar()) return false;
          continue;
        case "(":
          emit("leftParen");
          parenDepth++;
          continue;
        case ")":
          // Go emits the paren before reporting it, so the parser complains first.
          emit("rightParen");
          parenDepth--;
          if (parenDepth < 0) return fail("unexpected right paren U+0029 ')'");
          continue;
      }
      if (r === ".") {
        const c = peek();
        if (c === undefined || c < "0" || c > "9") {
          if (!lexFieldOrVariable("field")) return false;
          continue;
        }
      }
      if (r === "." || r === "+" || r === "-" || (r >= "0" && r <= "9")) {
        backup();
        if (!lexNumber()) return false;
        continue;
      }
      if (isAlphaNumeric(r)) {
        backup();
        if (!lexIdentifier()) return false;
        continue;
      }
      const cp = r.codePointAt(0)!;
      if (cp < 0x80 && isPrint(r)) {
        emit("char");
        continue;
      }
      // Report the whole code point for astral characters.
      const full = String.fromCodePoint(input.codePointAt(pos - 1) ?? cp);
      return fail(`unrecognized character in action: ${describeRune(full)}`);
    }
  };

  const lexIdentifier = (): boolean => {
    for (;;) {
      const r = next();
      if (isAlphaNumeric(r)) continue;
      if (r !== undefined) backup();
      const word = input.slice(start, pos);
      if (!atTerminator()) return fail(`bad character ${describeRune(peek() ?? "")}`);
      if (KEYWORDS.has(word)) emit("keyword");
      else if (word === "nil") emit("nil");
      else if (word === "true" || word === "false") emit("bool");
      else emit("identifier");
      return true;
    }
  };

  const lexFieldOrVariable = (kind: "field" | "variable"): boolean => {
    if (atTerminator()) {
      emit(kind === "variable" ? "variable" : "dot");
      return true;
    }
    for (;;) {
      const r = next();
      if (!isAlphaNumeric(r)) {
        if (r !== undefined) backup();
        break;
      }
    }
    if (!atTerminator()) return fail(`bad character ${describeRune(peek() ?? "")}`);
    emit(kind);
    return true;
  };

  const accept = (valid: string) => {
    const c = peek();
    if (c !== undefined && valid.includes(c)) {
      next();
      return true;
    }
    return false;
  };
  const acceptRun = (valid: string) => {
    while (accept(valid)) {
      // consume
    }
  };

  const lexNumber = (): boolean => {
    accept("+-");
    let digits = "0123456789_";
    if (accept("0")) {
      if (accept("xX")) digits = "0123456789abcdefABCDEF_";
      else if (accept("oO")) digits = "01234567_";
      else if (accept("bB")) digits = "01_";
    }
    acceptRun(digits);
    if (accept(".")) acceptRun(digits);
    if (digits.length === 11 && accept("eE")) {
      accept("+-");
      acceptRun("0123456789_");
    }
    if (digits.length === 23 && accept("pP")) {
      accept("+-");
      acceptRun("0123456789_");
    }
    accept("i");
    if (isAlphaNumeric(peek())) {
      next();
      return fail(`bad number syntax: ${goQuote(input.slice(start, pos))}`);
    }
    emit("number");
    return true;
  };

  const lexQuote = (): boolean => {
    for (;;) {
      const r = next();
      if (r === "\\") {
        const n = next();
        if (n !== undefined && n !== "\n") continue;
        return fail("unterminated quoted string");
      }
      if (r === undefined || r === "\n") return fail("unterminated quoted string");
      if (r === '"') break;
    }
    emit("string");
    return true;
  };

  const lexRawQuote = (): boolean => {
    const i = input.indexOf("`", pos);
    if (i < 0) return fail("unterminated raw quoted string");
    advanceTo(i + 1);
    emit("rawString");
    return true;
  };

  const lexChar = (): boolean => {
    for (;;) {
      const r = next();
      if (r === "\\") {
        const n = next();
        if (n !== undefined && n !== "\n") continue;
        return fail("unterminated character constant");
      }
      if (r === undefined || r === "\n") return fail("unterminated character constant");
      if (r === "'") break;
    }
    emit("charConstant");
    return true;
  };

  while (lexText()) {
    // each round lexes one text run and one action
  }
  return tokens;
}
