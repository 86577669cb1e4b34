/**
 * Units of the Compose format: Go durations (`1m30s`, `500ms`), byte sizes (`512m`, `1gb`,
 * binary multiples as docker's go-units), and shell-like word splitting of string commands.
 */
import { invalidArgument } from "../base/mod.ts";

const DURATION_UNITS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  μs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Parses a Go duration (`1h2m3.5s`, `300ms`, `0`) into nanoseconds. */
export function parseDuration(text: string): number {
  const s = text.trim();
  if (s === "0" || s === "") return 0;
  let rest = s;
  let sign = 1;
  if (rest.startsWith("-")) {
    sign = -1;
    rest = rest.slice(1);
  } else if (rest.startsWith("+")) rest = rest.slice(1);
  let total = 0;
  const re = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/;
  if (rest === "") throw invalidArgument(`Invalid duration "${text}"`);
  while (rest !== "") {
    const m = re.exec(rest);
    if (!m) throw invalidArgument(`Invalid duration "${text}"`);
    total += Number(m[1]) * (DURATION_UNITS[m[2] as string] as number);
    rest = rest.slice(m[0].length);
  }
  return Math.round(sign * total);
}

/** Formats nanoseconds as Go's `time.Duration.String()` does (`1m30s`, `500ms`, `0s`). */
export function formatDuration(ns: number): string {
  if (ns === 0) return "0s";
  const neg = ns < 0;
  let d = Math.abs(ns);
  let out: string;
  if (d < 1e9) {
    const [unit, size] = d < 1e3 ? ["ns", 1] : d < 1e6 ? ["µs", 1e3] : ["ms", 1e6];
    out = `${trimFloat(d / (size as number))}${unit}`;
  } else {
    const h = Math.floor(d / 3600e9);
    d -= h * 3600e9;
    const m = Math.floor(d / 60e9);
    d -= m * 60e9;
    const sec = trimFloat(d / 1e9);
    out = h > 0 ? `${h}h${m}m${sec}s` : m > 0 ? `${m}m${sec}s` : `${sec}s`;
  }
  return neg ? `-${out}` : out;
}

function trimFloat(n: number): string {
  return String(Number(n.toFixed(9)));
}

/** Normalises a duration string to Go's canonical form; throws on a malformed one. */
export function normalizeDuration(text: string): string {
  return formatDuration(parseDuration(text));
}

const BYTE_UNITS: Record<string, number> = { "": 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/** Parses a size as docker's `RAMInBytes` (`512m`, `1g`, `1.5GiB`, `1024`): binary multiples. */
export function parseBytes(value: string | number): number {
  if (typeof value === "number") return value;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtpb]?)(?:i?b)?\s*$/i.exec(value);
  if (!m) throw invalidArgument(`Invalid size "${value}"`);
  return Math.round(Number(m[1]) * (BYTE_UNITS[(m[2] ?? "").toLowerCase()] as number));
}

/**
 * Splits a command string into words as a POSIX shell would without expansions: whitespace
 * separates words, single quotes are literal, double quotes and backslashes escape.
 */
export function splitCommand(text: string): string[] {
  const words: string[] = [];
  let cur = "";
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw invalidArgument(`Invalid command "${text}": unterminated single quote`);
      cur += text.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === "\\" && j + 1 < text.length && '"\\$`\n'.includes(text[j + 1] as string)) {
          j++;
          if (text[j] !== "\n") cur += text[j];
        } else cur += text[j];
      }
      if (j >= text.length) throw invalidArgument(`Invalid command "${text}": unterminated double quote`);
      i = j;
      inWord = true;
    } else if (c === "\\" && i + 1 < text.length) {
      i++;
      if (text[i] !== "\n") cur += text[i];
      inWord = true;
    } else if (c === " " || c === "\t" || c === "\n") {
      if (inWord) words.push(cur);
      cur = "";
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

/** Converts a YAML scalar that the schema accepted as a boolean. */
export function toBool(v: unknown): boolean {
  if (typeof v === "boolean") return v;
  return ["true", "yes", "on", "y", "1"].includes(String(v).toLowerCase());
}

/** Converts a YAML scalar that the schema accepted as a number. */
export function toNumber(v: unknown): number {
  return typeof v === "number" ? v : Number(String(v).trim());
}
