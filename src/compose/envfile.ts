/**
 * The `.env` / `env_file` format of Compose: `KEY=value` lines, `export ` prefixes, `#` comments,
 * single-quoted (literal), double-quoted (escapes, interpolation, may span lines) and unquoted
 * values (trimmed, ` #` starts a comment, interpolation). A line with only a key takes the value
 * from the lookup, and is left out when the lookup has none.
 */
import { invalidArgument } from "../base/mod.ts";
import { InterpolationError, interpolateString, type Lookup } from "./interpolate.ts";

const KEY = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/**
 * Parses env file text. `lookup` resolves `${VAR}` references (after the file's own earlier
 * keys) and bare keys; `where` names the file in errors.
 */
export function parseEnvFile(text: string, where: string, lookup: Lookup = () => undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const resolve: Lookup = (name) => (Object.hasOwn(out, name) ? out[name] : lookup(name));
  const src = text.replace(/^\uFEFF/, "").replace(/\r\n?/g, "\n");
  let i = 0;
  let line = 1;
  while (i < src.length) {
    const nl = src.indexOf("\n", i);
    const rawLine = src.slice(i, nl < 0 ? src.length : nl);
    const startLine = line;
    let trimmed = rawLine.trimStart();
    if (trimmed === "" || trimmed.startsWith("#")) {
      i = nl < 0 ? src.length : nl + 1;
      line++;
      continue;
    }
    if (trimmed.startsWith("export ")) trimmed = trimmed.slice(7).trimStart();
    const eq = trimmed.indexOf("=");
    if (eq < 0) {
      const key = trimmed.replace(/\s+#.*$/, "").trim();
      if (!KEY.test(key)) throw invalidArgument(`${where}:${startLine}: Invalid variable name "${key}"`);
      const v = lookup(key);
      if (v !== undefined) out[key] = v;
      i = nl < 0 ? src.length : nl + 1;
      line++;
      continue;
    }
    const key = trimmed.slice(0, eq).trim();
    if (!KEY.test(key)) throw invalidArgument(`${where}:${startLine}: Invalid variable name "${key}"`);
    // Position of the value in the whole text: a quoted value may run over several lines.
    let j = i + rawLine.indexOf(trimmed) + eq + 1;
    while (src[j] === " " || src[j] === "\t") j++;
    const q = src[j];
    let value: string;
    if (q === "'" || q === '"') {
      const close = findClose(src, j + 1, q);
      if (close < 0) throw invalidArgument(`${where}:${startLine}: Unterminated quoted value for "${key}"`);
      const body = src.slice(j + 1, close);
      line += body.split("\n").length - 1;
      value = q === "'" ? body : unescapeDouble(body);
      if (q === '"') value = expand(value, resolve, where, startLine);
      const after = src.indexOf("\n", close);
      i = after < 0 ? src.length : after + 1;
      line++;
    } else {
      const end = nl < 0 ? src.length : nl;
      let v = src.slice(j, end);
      const hash = v.search(/\s#/);
      if (hash >= 0) v = v.slice(0, hash);
      value = expand(v.trim(), resolve, where, startLine);
      i = nl < 0 ? src.length : nl + 1;
      line++;
    }
    out[key] = value;
  }
  return out;
}

function findClose(src: string, from: number, q: string): number {
  for (let k = from; k < src.length; k++) {
    if (q === '"' && src[k] === "\\") {
      k++;
      continue;
    }
    if (src[k] === q) return k;
  }
  return -1;
}

function unescapeDouble(s: string): string {
  return s.replace(/\\(.)/gs, (_m, c: string) => {
    switch (c) {
      case "n":
        return "\n";
      case "t":
        return "\t";
      case "r":
        return "\r";
      case "$":
        return "$$";
      default:
        return c;
    }
  });
}

function expand(v: string, lookup: Lookup, where: string, line: number): string {
  try {
    return interpolateString(v, lookup);
  } catch (e) {
    if (e instanceof InterpolationError) throw invalidArgument(`${where}:${line}: ${e.message}`);
    throw e;
  }
}
