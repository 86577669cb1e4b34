/**
 * A declarative flag parser with the semantics of spf13/pflag as the docker CLI uses it:
 * `-it` combined shorthands, `-p8080:80` and `-n=3` attached values, `--name=x` and `--name x`,
 * repeated list flags, `--` as terminator, and (for run/create/exec) parsing that stops at the
 * first positional argument. Flag tables also render `--help` in docker's layout.
 */

/** How a flag's value is parsed. */
export type FlagKind =
  | "bool"
  | "string"
  | "int"
  | "uint"
  /** Repeated flag, each occurrence one value (docker's ListOpts, stringArray). */
  | "list"
  /** Repeated flag, each occurrence split at commas (pflag's stringSlice). */
  | "slice"
  /** Go duration (`10s`, `1m30s`), kept in milliseconds. */
  | "duration"
  /** A size with binary units (`512m`, `1g`), kept in bytes; `-1` is allowed (memory-swap). */
  | "bytes"
  /** A decimal number (`--cpus 1.5`), kept as a number. */
  | "decimal";

/** One flag of a command. */
export interface FlagSpec {
  long: string;
  short?: string;
  kind: FlagKind;
  help: string;
  /** The type shown in help when it differs from the kind (`filter`, `mount`, `uint16`...). */
  typeName?: string;
  /** Shown as `(default ...)` in help; does not set a value. */
  defaultText?: string;
  hidden?: boolean;
  /** Extra validation/conversion of each value; throw an Error whose message pflag would print. */
  validate?: (value: string) => void;
}

/** A usage error of the command line (exit status 125 with the command's usage, like docker). */
export class FlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FlagError";
  }
}

/** Parsed flag values, keyed by long name, with typed getters. */
export class FlagValues {
  #values = new Map<string, unknown>();

  /** Whether the flag was given on the command line (pflag's Changed). */
  has(name: string): boolean {
    return this.#values.has(name);
  }
  bool(name: string): boolean {
    return this.#values.get(name) === true;
  }
  string(name: string, fallback = ""): string {
    const v = this.#values.get(name);
    return typeof v === "string" ? v : fallback;
  }
  /** The value of an int/uint/bytes/duration/decimal flag, or the fallback. */
  number(name: string, fallback: number): number;
  number(name: string): number | undefined;
  number(name: string, fallback?: number): number | undefined {
    const v = this.#values.get(name);
    return typeof v === "number" ? v : fallback;
  }
  list(name: string): string[] {
    const v = this.#values.get(name);
    return Array.isArray(v) ? [...(v as string[])] : [];
  }
  /** Sets a value (used by the parser and by tests). */
  set(name: string, value: unknown): void {
    this.#values.set(name, value);
  }
  /** Appends to a list value. */
  append(name: string, values: string[]): void {
    const cur = this.#values.get(name);
    const arr = Array.isArray(cur) ? (cur as string[]) : [];
    arr.push(...values);
    this.#values.set(name, arr);
  }
}

/** Result of parsing a command line against a flag table. */
export interface ParseResult {
  flags: FlagValues;
  args: string[];
  /** `--help` was given. */
  help: boolean;
}

/** Options of `parseFlags`. */
export interface ParseOptions {
  /** Stop at the first positional argument (pflag SetInterspersed(false)): run, create, exec. */
  stopAtFirstPositional?: boolean;
}

function display(spec: FlagSpec): string {
  return spec.short ? `-${spec.short}, --${spec.long}` : `--${spec.long}`;
}

/** Parses the value of one occurrence into the form kept in FlagValues. */
function convert(spec: FlagSpec, raw: string): unknown {
  const fail = (why: string) => new FlagError(`invalid argument "${raw}" for "${display(spec)}" flag: ${why}`);
  if (spec.validate) {
    try {
      spec.validate(raw);
    } catch (e) {
      throw fail((e as Error).message);
    }
  }
  switch (spec.kind) {
    case "bool": {
      const b = parseGoBool(raw);
      if (b === undefined) throw fail(`strconv.ParseBool: parsing "${raw}": invalid syntax`);
      return b;
    }
    case "int":
    case "uint": {
      const n = parseGoInt(raw);
      if (n === undefined || (spec.kind === "uint" && n < 0)) {
        throw fail(`strconv.Parse${spec.kind === "uint" ? "Uint" : "Int"}: parsing "${raw}": invalid syntax`);
      }
      return n;
    }
    case "duration": {
      const ms = parseGoDuration(raw);
      if (ms === undefined) throw fail(`time: invalid duration "${raw}"`);
      return ms;
    }
    case "bytes": {
      if (raw === "-1") return -1;
      try {
        return ramInBytes(raw);
      } catch (e) {
        throw fail((e as Error).message);
      }
    }
    case "decimal": {
      const n = Number(raw);
      if (raw.trim() === "" || !Number.isFinite(n)) throw fail(`failed to parse ${raw} as a rational number`);
      return n;
    }
    default:
      return raw;
  }
}

function store(values: FlagValues, spec: FlagSpec, raw: string): void {
  if (spec.kind === "list") {
    convert(spec, raw);
    values.append(spec.long, [raw]);
  } else if (spec.kind === "slice") {
    const parts = raw === "" ? [] : raw.split(",");
    for (const p of parts) convert(spec, p);
    values.append(spec.long, parts);
  } else values.set(spec.long, convert(spec, raw));
}

/** The built-in help flag; `-h` is only its shorthand when the command does not use `-h` itself. */
export const HELP_FLAG: FlagSpec = { long: "help", kind: "bool", help: "Print usage" };

/** Parses `argv` (without the command name) against a flag table. */
export function parseFlags(argv: readonly string[], specs: readonly FlagSpec[], options: ParseOptions = {}): ParseResult {
  const byLong = new Map<string, FlagSpec>();
  const byShort = new Map<string, FlagSpec>();
  for (const s of specs) {
    byLong.set(s.long, s);
    if (s.short) byShort.set(s.short, s);
  }
  if (!byLong.has("help")) byLong.set("help", HELP_FLAG);
  if (!byShort.has("h")) byShort.set("h", HELP_FLAG);
  const values = new FlagValues();
  const args: string[] = [];
  let help = false;
  let i = 0;
  while (i < argv.length) {
    const a = argv[i++] as string;
    if (a === "--") {
      args.push(...argv.slice(i));
      break;
    }
    if (a.startsWith("--")) {
      const body = a.slice(2);
      const eq = body.indexOf("=");
      const name = eq < 0 ? body : body.slice(0, eq);
      const spec = byLong.get(name);
      if (!spec) throw new FlagError(`unknown flag: --${name}`);
      if (spec === HELP_FLAG) {
        help = true;
        continue;
      }
      if (eq >= 0) store(values, spec, body.slice(eq + 1));
      else if (spec.kind === "bool") values.set(spec.long, true);
      else if (i < argv.length) store(values, spec, argv[i++] as string);
      else throw new FlagError(`flag needs an argument: --${name}`);
      continue;
    }
    if (a.startsWith("-") && a.length > 1) {
      let rest = a.slice(1);
      while (rest.length > 0) {
        const c = rest[0] as string;
        const spec = byShort.get(c);
        if (!spec) throw new FlagError(`unknown shorthand flag: '${c}' in ${a}`);
        rest = rest.slice(1);
        if (spec === HELP_FLAG) {
          help = true;
          continue;
        }
        if (spec.kind === "bool") {
          if (rest.startsWith("=")) {
            store(values, spec, rest.slice(1));
            rest = "";
          } else values.set(spec.long, true);
          continue;
        }
        if (rest.startsWith("=")) store(values, spec, rest.slice(1));
        else if (rest.length > 0) store(values, spec, rest);
        else if (i < argv.length) store(values, spec, argv[i++] as string);
        else throw new FlagError(`flag needs an argument: '${c}' in -${c}`);
        rest = "";
      }
      continue;
    }
    args.push(a);
    if (options.stopAtFirstPositional) {
      args.push(...argv.slice(i));
      break;
    }
  }
  return { flags: values, args, help };
}

/** Go's strconv.ParseBool. */
export function parseGoBool(s: string): boolean | undefined {
  if (["1", "t", "T", "true", "TRUE", "True"].includes(s)) return true;
  if (["0", "f", "F", "false", "FALSE", "False"].includes(s)) return false;
  return undefined;
}

/** Go's strconv.ParseInt(s, 0, 64) for the values people type (decimal, 0x, 0o, 0b, leading sign). */
export function parseGoInt(s: string): number | undefined {
  const m = /^([+-]?)(0[xX][0-9a-fA-F_]+|0[oO]?[0-7_]+|0[bB][01_]+|[0-9][0-9_]*)$/.exec(s);
  if (!m) return undefined;
  let body = (m[2] as string).replace(/_/g, "");
  let n: number;
  if (/^0[xX]/.test(body)) n = Number.parseInt(body.slice(2), 16);
  else if (/^0[bB]/.test(body)) n = Number.parseInt(body.slice(2), 2);
  else if (/^0[oO]/.test(body)) n = Number.parseInt(body.slice(2), 8);
  else if (body.length > 1 && body.startsWith("0")) {
    body = body.slice(1);
    n = Number.parseInt(body, 8);
  } else n = Number.parseInt(body, 10);
  if (!Number.isFinite(n)) return undefined;
  return m[1] === "-" ? -n : n;
}

const DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go's time.ParseDuration, in milliseconds (fractions kept). */
export function parseGoDuration(s: string): number | undefined {
  let rest = s;
  let sign = 1;
  if (rest.startsWith("-") || rest.startsWith("+")) {
    if (rest.startsWith("-")) sign = -1;
    rest = rest.slice(1);
  }
  if (rest === "0") return 0;
  if (rest === "") return undefined;
  let total = 0;
  const re = /^([0-9]*\.?[0-9]*)(ns|us|µs|μs|ms|s|m|h)/;
  while (rest.length > 0) {
    const m = re.exec(rest);
    if (!m || m[1] === "" || m[1] === ".") return undefined;
    total += Number(m[1]) * (DURATION_UNITS[m[2] as string] as number);
    rest = rest.slice(m[0].length);
  }
  return sign * total;
}

const BINARY: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };
const DECIMAL: Record<string, number> = { k: 1e3, m: 1e6, g: 1e9, t: 1e12, p: 1e15 };

function parseSize(s: string, map: Record<string, number>): number {
  const m = /^(.*?[0-9. ])([^0-9. ]*)$/.exec(s);
  if (!m) throw new Error(`invalid size: '${s}'`);
  let num = m[1] as string;
  const sfxRaw = m[2] as string;
  if (num.endsWith(" ")) num = num.slice(0, -1);
  const size = Number(num);
  if (num.trim() === "" || !Number.isFinite(size)) throw new Error(`strconv.ParseFloat: parsing "${num}": invalid syntax`);
  if (size < 0) throw new Error(`invalid size: '${s}'`);
  if (sfxRaw === "") return Math.trunc(size);
  const sfx = sfxRaw.toLowerCase();
  const bad = new Error(`invalid suffix: '${sfx}'`);
  if (sfx.length > 3) throw bad;
  if (sfx[0] === "b") {
    if (sfx.length > 1) throw bad;
    return Math.trunc(size);
  }
  const mul = map[sfx[0] as string];
  if (mul === undefined) throw bad;
  if ((sfx.length === 2 && sfx[1] !== "b") || (sfx.length === 3 && sfx.slice(1) !== "ib")) throw bad;
  return Math.trunc(size * mul);
}

/** go-units RAMInBytes: `512m` → 536870912 (binary multiples). */
export function ramInBytes(s: string): number {
  return parseSize(s, BINARY);
}

/** go-units FromHumanSize: `1.5GB` → 1500000000 (decimal multiples). */
export function fromHumanSize(s: string): number {
  return parseSize(s, DECIMAL);
}

/** pflag's wrapping of flag usage text (FlagUsagesWrapped). */
function wrap(indent: number, width: number, s: string): string {
  if (width === 0) return s.replaceAll("\n", `\n${" ".repeat(indent)}`);
  let w = width - indent;
  let r = "";
  if (w < 24) {
    indent = 16;
    w = width - indent;
    r += `\n${" ".repeat(indent)}`;
  }
  if (w < 24) return s.replaceAll("\n", r);
  const slop = 5;
  w -= slop;
  const pad = " ".repeat(indent);
  let [l, rest] = wrapN(w, slop, s);
  r += l.replaceAll("\n", `\n${pad}`);
  while (rest !== "") {
    let t: string;
    [t, rest] = wrapN(w, slop, rest);
    r += `\n${pad}${t.replaceAll("\n", `\n${pad}`)}`;
  }
  return r;
}

function wrapN(i: number, slop: number, s: string): [string, string] {
  if (i + slop > s.length) return [s, ""];
  const head = s.slice(0, i);
  const w = Math.max(head.lastIndexOf(" "), head.lastIndexOf("\t"), head.lastIndexOf("\n"));
  if (w <= 0) return [s, ""];
  const nl = head.lastIndexOf("\n");
  if (nl > 0 && nl < w) return [s.slice(0, nl), s.slice(nl + 1)];
  return [s.slice(0, w), s.slice(w + 1)];
}

/** The type word shown after a flag in help (`string`, `list`, `int`...). */
function typeWord(spec: FlagSpec): string {
  if (spec.typeName !== undefined) return spec.typeName;
  switch (spec.kind) {
    case "bool":
      return "";
    case "slice":
      return "strings";
    default:
      return spec.kind;
  }
}

/** Renders the Options section of a help text (pflag's layout, wrapped at `width`). */
export function formatFlagUsages(specs: readonly FlagSpec[], width = 80): string {
  const lines: string[] = [];
  let maxlen = 0;
  for (const s of specs) {
    if (s.hidden) continue;
    let line = s.short ? `  -${s.short}, --${s.long}` : `      --${s.long}`;
    const t = typeWord(s);
    if (t) line += ` ${t}`;
    line += "\0";
    maxlen = Math.max(maxlen, line.length);
    line += s.help;
    if (s.defaultText !== undefined) line += ` (default ${s.defaultText})`;
    lines.push(line);
  }
  return lines
    .map((line) => {
      const idx = line.indexOf("\0");
      return `${line.slice(0, idx)} ${" ".repeat(maxlen - idx)} ${wrap(maxlen + 2, width - 1, line.slice(idx + 1))}`;
    })
    .join("\n");
}
