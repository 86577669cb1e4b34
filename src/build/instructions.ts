/**
 * Typed Dockerfile instructions and stages, from parser nodes. Arguments stay as written
 * (variables unexpanded) because their values depend on the build state; `expand*` helpers
 * substitute them when an instruction is dispatched. Validation that needs no state happens
 * here, with the line of the offending instruction: unknown instructions and flags, wrong
 * argument counts, bad stage names, instructions before the first FROM.
 */
import { DockerfileError, type Heredoc, type Node, parseDockerfile, parseHeredoc } from "./parser.ts";

/** Where an instruction came from, for errors and history. */
export interface Origin {
  line: number;
  endLine: number;
  /** The logical line as written, keyword included. */
  original: string;
}

/** A `--mount` of RUN, parsed (values still unexpanded until dispatch). */
export interface RunMount {
  type: "bind" | "cache" | "tmpfs" | "secret" | "ssh";
  target: string;
  source?: string;
  from?: string;
  readonly: boolean;
  id?: string;
  sharing?: "shared" | "private" | "locked";
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  required?: boolean;
  env?: string;
}

/** HEALTHCHECK as the image config stores it (durations in nanoseconds). */
export interface HealthConfig {
  Test: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/** A file given inline by a heredoc (`COPY <<EOF /x`). */
export interface InlineSource {
  path: string;
  data: string;
  expand: boolean;
  chomp: boolean;
}

export type Instruction = Origin &
  (
    | { kind: "env"; pairs: [string, string][] }
    | { kind: "label"; pairs: [string, string][] }
    | { kind: "arg"; args: { key: string; value: string | undefined }[] }
    | { kind: "maintainer"; name: string }
    | { kind: "workdir"; path: string }
    | { kind: "user"; user: string }
    | { kind: "stopsignal"; signal: string }
    | { kind: "expose"; ports: string[] }
    | { kind: "volume"; volumes: string[] }
    | { kind: "shell"; shell: string[] }
    | { kind: "cmd" | "entrypoint"; cmd: string[]; prependShell: boolean }
    | { kind: "healthcheck"; health: HealthConfig }
    | { kind: "onbuild"; expression: string }
    | {
        kind: "run";
        cmd: string[];
        prependShell: boolean;
        heredocs: Heredoc[];
        mounts: string[];
        network: string | undefined;
        security: string | undefined;
      }
    | {
        kind: "copy" | "add";
        sources: string[];
        inline: InlineSource[];
        dest: string;
        from: string | undefined;
        chown: string | undefined;
        chmod: string | undefined;
        link: boolean;
        parents: boolean;
        excludes: string[];
        checksum: string | undefined;
        keepGitDir: boolean;
      }
  );

/** Instruction kinds. */
export type InstructionKind = Instruction["kind"];

/** One `FROM ... [AS name]` and the instructions up to the next FROM. */
export interface Stage extends Origin {
  /** Lower-case stage name, if given. */
  name: string | undefined;
  /** Base image as written (may contain `$ARG`s from before the first FROM). */
  base: string;
  platform: string | undefined;
  index: number;
  instructions: Instruction[];
}

/** A parsed and validated Dockerfile. */
export interface Dockerfile {
  stages: Stage[];
  /** ARGs before the first FROM (the global scope). */
  metaArgs: Extract<Instruction, { kind: "arg" }>[];
  escape: string;
  warnings: string[];
}

const KNOWN = [
  "add",
  "arg",
  "cmd",
  "copy",
  "entrypoint",
  "env",
  "expose",
  "from",
  "healthcheck",
  "label",
  "maintainer",
  "onbuild",
  "run",
  "shell",
  "stopsignal",
  "user",
  "volume",
  "workdir",
];

/** Flags with their kinds; a flag not listed is an error. */
type FlagSpec = Record<string, "string" | "bool" | "list">;

const FLAGS: Record<string, FlagSpec> = {
  from: { platform: "string" },
  run: { mount: "list", network: "string", security: "string" },
  copy: { from: "string", chown: "string", chmod: "string", link: "bool", parents: "bool", exclude: "list" },
  add: { chown: "string", chmod: "string", link: "bool", checksum: "string", "keep-git-dir": "bool", exclude: "list" },
  healthcheck: { interval: "string", timeout: "string", "start-period": "string", "start-interval": "string", retries: "string" },
};

type FlagValues = Map<string, string | boolean | string[]>;

function parseFlags(n: Node): FlagValues {
  const spec = FLAGS[n.cmd] ?? {};
  const out: FlagValues = new Map();
  for (const raw of n.flags) {
    if (!raw.startsWith("--")) throw new Error(`Arg should start with -- : ${raw}`);
    const body = raw.slice(2);
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    const value = eq < 0 ? undefined : body.slice(eq + 1);
    const kind = spec[name];
    if (!kind) throw new Error(`unknown flag: ${name}`);
    if (kind === "bool") {
      if (value === undefined || value === "" || value.toLowerCase() === "true") out.set(name, true);
      else if (value.toLowerCase() === "false") out.set(name, false);
      else throw new Error(`expecting boolean value for flag ${name}, not: ${value}`);
      continue;
    }
    if (value === undefined) throw new Error(`missing a value on flag: ${name}`);
    if (kind === "list") out.set(name, [...((out.get(name) as string[] | undefined) ?? []), value]);
    else {
      if (out.has(name)) throw new Error(`duplicate flag specified: ${name}`);
      out.set(name, value);
    }
  }
  return out;
}

function str(f: FlagValues, k: string): string | undefined {
  const v = f.get(k);
  return typeof v === "string" ? v : undefined;
}

function origin(n: Node): Origin {
  return { line: n.startLine, endLine: n.endLine, original: n.original };
}

/** Go duration strings ("1m30s", "500ms") to nanoseconds. */
export function parseDuration(s: string): number {
  if (s === "0") return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  const units: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  let total = 0;
  let pos = 0;
  re.lastIndex = 0;
  for (;;) {
    const m = re.exec(s);
    if (!m) break;
    total += Number(m[1]) * (units[m[2] ?? "s"] ?? 0);
    pos = re.lastIndex;
  }
  if (pos !== s.length || s.length === 0) throw new Error(`time: invalid duration "${s}"`);
  return Math.round(total);
}

function kvPairs(n: Node, what: string): [string, string][] {
  if (n.args.length === 0) throw new Error(`${what} requires at least one argument`);
  if (n.args.length % 3 !== 0) throw new Error(`Bad input to ${what}, too many arguments`);
  const out: [string, string][] = [];
  for (let i = 0; i < n.args.length; i += 3) {
    const k = n.args[i] ?? "";
    if (k === "") throw new Error(`${what} names can not be blank`);
    out.push([k, n.args[i + 1] ?? ""]);
  }
  return out;
}

function exactlyOne(n: Node, what: string): string {
  if (n.args.length !== 1) throw new Error(`${what} requires exactly one argument`);
  return n.args[0] ?? "";
}

/** Parses one node into an instruction (FROM is handled by the stage builder). */
export function parseInstruction(n: Node): Instruction {
  try {
    return parseInner(n);
  } catch (e) {
    if (e instanceof DockerfileError) throw e;
    throw new DockerfileError((e as Error).message, n.startLine, n.endLine);
  }
}

function parseInner(n: Node): Instruction {
  const o = origin(n);
  if (!KNOWN.includes(n.cmd)) throw new Error(`unknown instruction: ${n.original.trim().split(/\s+/)[0] ?? n.cmd}`);
  const f = parseFlags(n);
  const upper = n.cmd.toUpperCase();
  switch (n.cmd) {
    case "env":
      return { ...o, kind: "env", pairs: kvPairs(n, "ENV") };
    case "label":
      return { ...o, kind: "label", pairs: kvPairs(n, "LABEL") };
    case "arg": {
      if (n.args.length === 0) throw new Error("ARG requires at least one argument");
      const args = n.args.map((a) => {
        const eq = a.indexOf("=");
        if (eq < 0) return { key: a, value: undefined };
        if (eq === 0) throw new Error("ARG names can not be blank");
        return { key: a.slice(0, eq), value: a.slice(eq + 1) };
      });
      return { ...o, kind: "arg", args };
    }
    case "maintainer":
      return { ...o, kind: "maintainer", name: exactlyOne(n, "MAINTAINER") };
    case "workdir":
      return { ...o, kind: "workdir", path: exactlyOne(n, "WORKDIR") };
    case "user":
      return { ...o, kind: "user", user: exactlyOne(n, "USER") };
    case "stopsignal":
      return { ...o, kind: "stopsignal", signal: exactlyOne(n, "STOPSIGNAL") };
    case "expose":
      if (n.args.length === 0) throw new Error("EXPOSE requires at least one argument");
      return { ...o, kind: "expose", ports: n.args };
    case "volume":
      if (n.args.length === 0) throw new Error("VOLUME requires at least one argument");
      if (n.args.some((v) => v.trim() === "")) throw new Error("VOLUME specified can not be an empty string");
      return { ...o, kind: "volume", volumes: n.args };
    case "shell":
      if (n.args.length === 0) throw new Error("SHELL requires at least one argument");
      if (!n.json) throw new Error("SHELL requires the arguments to be in JSON form");
      return { ...o, kind: "shell", shell: n.args };
    case "cmd":
    case "entrypoint":
      return { ...o, kind: n.cmd, cmd: n.args, prependShell: !n.json };
    case "run":
      if (n.args.length === 0) throw new Error("RUN requires at least one argument");
      return {
        ...o,
        kind: "run",
        cmd: n.args,
        prependShell: !n.json,
        heredocs: n.heredocs,
        mounts: (f.get("mount") as string[] | undefined) ?? [],
        network: str(f, "network"),
        security: str(f, "security"),
      };
    case "copy":
    case "add": {
      if (n.args.length < 2) {
        throw new Error(`${upper} requires at least two arguments, but only one was provided. Destination could not be determined`);
      }
      const dest = n.args.at(-1) ?? "";
      if (parseHeredoc(dest)) throw new Error(`${upper} cannot accept a heredoc as a destination`);
      const sources: string[] = [];
      const inline: InlineSource[] = [];
      const docs = [...n.heredocs];
      for (const s of n.args.slice(0, -1)) {
        const h = n.json ? undefined : parseHeredoc(s);
        if (h) {
          const doc = docs.shift();
          if (!doc) throw new Error(`${upper} heredoc "${h.name}" has no content`);
          inline.push({ path: doc.name, data: doc.content, expand: doc.expand, chomp: doc.chomp });
        } else sources.push(s);
      }
      return {
        ...o,
        kind: n.cmd,
        sources,
        inline,
        dest,
        from: str(f, "from"),
        chown: str(f, "chown"),
        chmod: str(f, "chmod"),
        link: f.get("link") === true,
        parents: f.get("parents") === true,
        excludes: (f.get("exclude") as string[] | undefined) ?? [],
        checksum: str(f, "checksum"),
        keepGitDir: f.get("keep-git-dir") === true,
      };
    }
    case "healthcheck":
      return { ...o, kind: "healthcheck", health: parseHealth(n, f) };
    case "onbuild": {
      if (!n.sub) throw new Error("ONBUILD requires at least one argument");
      const trigger = n.sub.cmd.toUpperCase();
      if (trigger === "ONBUILD") throw new Error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
      if (trigger === "FROM" || trigger === "MAINTAINER") throw new Error(`${trigger} isn't allowed as an ONBUILD trigger`);
      parseInner(n.sub);
      return { ...o, kind: "onbuild", expression: n.original.replace(/^\s*ONBUILD\s*/i, "") };
    }
    default:
      throw new Error(`unknown instruction: ${upper}`);
  }
}

function parseHealth(n: Node, f: FlagValues): HealthConfig {
  const typ = (n.args[0] ?? "").toUpperCase();
  if (typ === "") throw new Error("HEALTHCHECK requires at least one argument");
  if (typ === "NONE") {
    if (n.args.length > 1) throw new Error("HEALTHCHECK NONE takes no arguments");
    return { Test: ["NONE"] };
  }
  if (typ !== "CMD") throw new Error(`Unknown type "${typ}" in HEALTHCHECK (try CMD)`);
  const cmd = n.args.slice(1);
  if (cmd.length === 0 || (cmd.length === 1 && !n.json && cmd[0] === "")) throw new Error("Missing command after HEALTHCHECK CMD");
  const h: HealthConfig = { Test: n.json ? ["CMD", ...cmd] : ["CMD-SHELL", cmd[0] ?? ""] };
  const dur = (name: string): number | undefined => {
    const v = str(f, name);
    if (v === undefined || v === "") return undefined;
    const d = parseDuration(v);
    if (d === 0) return undefined;
    if (d < 1e6) throw new Error(`Interval "${name}" cannot be less than 1ms`);
    return d;
  };
  const interval = dur("interval");
  const timeout = dur("timeout");
  const start = dur("start-period");
  const startInterval = dur("start-interval");
  if (interval !== undefined) h.Interval = interval;
  if (timeout !== undefined) h.Timeout = timeout;
  if (start !== undefined) h.StartPeriod = start;
  if (startInterval !== undefined) h.StartInterval = startInterval;
  const retries = str(f, "retries");
  if (retries !== undefined && retries !== "") {
    const r = Number(retries);
    if (!Number.isInteger(r)) throw new Error(`strconv.ParseInt: parsing "${retries}": invalid syntax`);
    if (r < 0) throw new Error(`--retries cannot be negative (${r})`);
    if (r > 0) h.Retries = r;
  }
  return h;
}

const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

/** Parses and validates a Dockerfile into stages. Throws `DockerfileError`. */
export function parseStages(text: string): Dockerfile {
  const parsed = parseDockerfile(text);
  return stagesFromNodes(parsed.nodes, parsed.escape, parsed.warnings);
}

/** Groups parsed nodes into stages. */
export function stagesFromNodes(nodes: Node[], esc: string, warnings: string[] = []): Dockerfile {
  const stages: Stage[] = [];
  const metaArgs: Extract<Instruction, { kind: "arg" }>[] = [];
  for (const n of nodes) {
    if (n.cmd === "from") {
      try {
        const f = parseFlags(n);
        const a = n.args;
        if (a.length !== 1 && !(a.length === 3 && a[1]?.toLowerCase() === "as"))
          throw new Error("FROM requires either one or three arguments");
        let name: string | undefined;
        if (a.length === 3) {
          name = (a[2] ?? "").toLowerCase();
          if (!STAGE_NAME.test(name)) {
            throw new Error(`invalid name for build stage: "${a[2]}", name can't start with a number or contain symbols`);
          }
          if (stages.some((s) => s.name === name)) throw new Error(`duplicate name ${name}`);
        }
        stages.push({
          ...origin(n),
          name,
          base: a[0] ?? "",
          platform: str(f, "platform"),
          index: stages.length,
          instructions: [],
        });
      } catch (e) {
        if (e instanceof DockerfileError) throw e;
        throw new DockerfileError((e as Error).message, n.startLine, n.endLine);
      }
      continue;
    }
    const inst = parseInstruction(n);
    const stage = stages.at(-1);
    if (!stage) {
      if (inst.kind !== "arg") throw new DockerfileError("no build stage in current context", n.startLine, n.endLine);
      metaArgs.push(inst);
      continue;
    }
    stage.instructions.push(inst);
  }
  if (stages.length === 0) throw new DockerfileError("no build stage in current context", nodes.at(-1)?.endLine ?? 0);
  return { stages, metaArgs, escape: esc, warnings };
}

/** Parses the value of one `--mount` flag (already expanded). */
export function parseRunMount(value: string): RunMount {
  const fields = splitCsv(value);
  const m: RunMount = { type: "bind", target: "", readonly: true };
  let typeSet = false;
  let roSet = false;
  for (const field of fields) {
    const eq = field.indexOf("=");
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase().trim();
    const v = eq < 0 ? undefined : field.slice(eq + 1);
    const boolOf = (): boolean => {
      if (v === undefined || v === "" || v.toLowerCase() === "true") return true;
      if (v.toLowerCase() === "false") return false;
      throw new Error(`invalid value for ${key}: ${v}`);
    };
    const intOf = (base = 10): number => {
      const n = base === 8 ? Number.parseInt(v ?? "", 8) : Number(v);
      if (v === undefined || v === "" || !Number.isInteger(n) || n < 0) throw new Error(`invalid value for ${key}: ${v ?? ""}`);
      return n;
    };
    switch (key) {
      case "type": {
        if (!["bind", "cache", "tmpfs", "secret", "ssh"].includes(v ?? "")) throw new Error(`unsupported mount type "${v ?? ""}"`);
        m.type = v as RunMount["type"];
        typeSet = true;
        break;
      }
      case "target":
      case "dst":
      case "destination":
        m.target = v ?? "";
        break;
      case "source":
      case "src":
        m.source = v ?? "";
        break;
      case "from":
        m.from = v ?? "";
        break;
      case "readonly":
      case "ro":
        m.readonly = boolOf();
        roSet = true;
        break;
      case "readwrite":
      case "rw":
        m.readonly = !boolOf();
        roSet = true;
        break;
      case "id":
        m.id = v ?? "";
        break;
      case "sharing":
        if (!["shared", "private", "locked"].includes(v ?? "")) throw new Error(`unsupported sharing value "${v ?? ""}"`);
        m.sharing = v as RunMount["sharing"];
        break;
      case "mode":
        m.mode = intOf(8);
        break;
      case "uid":
        m.uid = intOf();
        break;
      case "gid":
        m.gid = intOf();
        break;
      case "size":
        m.size = parseSize(v ?? "");
        break;
      case "required":
        m.required = boolOf();
        break;
      case "env":
        m.env = v ?? "";
        break;
      default:
        throw new Error(`unexpected key '${key}' in '${field}'`);
    }
  }
  void typeSet;
  if (m.type === "cache" && !roSet) m.readonly = false;
  if (m.type === "tmpfs") m.readonly = false;
  if (m.type === "secret") {
    if (!m.id && !m.target) throw new Error("one of id or target must be specified for secret mounts");
    if (!m.id) m.id = (m.target.split("/").filter(Boolean).at(-1) ?? "").trim();
    if (!m.target && !m.env) m.target = `/run/secrets/${m.id}`;
  } else if (m.type !== "ssh" && !m.target) throw new Error("mount destination not specified");
  if (m.type === "cache" && !m.id) m.id = m.target;
  if (m.type === "ssh" && !m.target) m.target = "/run/buildkit/ssh_agent.0";
  return m;
}

/** `64m`, `1g`, plain bytes. */
export function parseSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(v.trim());
  if (!m) throw new Error(`invalid size: ${v}`);
  const mult: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
  return Math.floor(Number(m[1]) * (mult[(m[2] ?? "").toLowerCase()] ?? 1));
}

/** Splits a CSV line (Go's encoding/csv: fields may be double-quoted). */
function splitCsv(s: string): string[] {
  const out: string[] = [];
  let cur = "";
  let inQ = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] ?? "";
    if (inQ) {
      if (c === '"') {
        if (s[i + 1] === '"') {
          cur += '"';
          i++;
        } else inQ = false;
      } else cur += c;
    } else if (c === '"' && cur === "") inQ = true;
    else if (c === ",") {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  if (inQ) throw new Error(`parse error: extraneous or missing " in quoted-field: ${s}`);
  out.push(cur);
  return out.filter((x) => x !== "");
}
