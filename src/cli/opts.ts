/**
 * Flag definitions and value parsers shared by several commands (filters, formats, platform,
 * key=value lists, env files), with docker's wording for their errors.
 */
import { readFileSync } from "node:fs";
import type { Filters } from "../client/mod.ts";
import type { FlagSpec } from "./flags.ts";

/** The help text of docker's `--format` flag for listings. */
export const FORMAT_HELP = `Format output using a custom template:
'table':            Print output in table format with column headers (default)
'table TEMPLATE':   Print output in table format using the given Go template
'json':             Print in JSON format
'TEMPLATE':         Print output using the given Go template.
Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates`;

/** The help text of docker's `--format` flag for inspect commands. */
export const INSPECT_FORMAT_HELP = `Format output using a custom template:
'json':             Print in JSON format
'TEMPLATE':         Print output using the given Go template.
Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates`;

/** Validates one `--filter` value (`name=value`). */
export function validateFilter(v: string): void {
  if (!v.includes("=")) throw new Error("bad format of filter (expected name=value)");
}

/** `-f, --filter` */
export function filterFlag(help = "Filter output based on conditions provided", short: string | null = "f"): FlagSpec {
  const f: FlagSpec = { long: "filter", kind: "list", typeName: "filter", help, validate: validateFilter };
  if (short) f.short = short;
  return f;
}

/** `--format` for listings. */
export function formatFlag(help = FORMAT_HELP): FlagSpec {
  return { long: "format", kind: "string", help };
}

/** `--platform` */
export const PLATFORM_FLAG: FlagSpec = { long: "platform", kind: "string", help: "Set platform if server is multi-platform capable" };

/** Turns `--filter` values into the API's filter map (name lower-cased, both sides trimmed). */
export function parseFilters(values: readonly string[], into: Filters = {}): Filters {
  for (const v of values) {
    const i = v.indexOf("=");
    if (i < 0) continue;
    const name = v.slice(0, i).trim().toLowerCase();
    const value = v.slice(i + 1).trim();
    into[name] ??= {};
    (into[name] as Record<string, boolean>)[value] = true;
  }
  return into;
}

/** Adds one filter value. */
export function addFilter(f: Filters, name: string, value: string): Filters {
  f[name] ??= {};
  (f[name] as Record<string, boolean>)[value] = true;
  return f;
}

/** `KEY=VALUE` strings to a map; a bare `KEY` maps to "" (labels) — docker's ConvertKVStringsToMap. */
export function kvToMap(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const i = v.indexOf("=");
    if (i < 0) out[v] = "";
    else out[v.slice(0, i)] = v.slice(i + 1);
  }
  return out;
}

/**
 * Reads a docker env or label file: `KEY=VALUE` lines, `#` comments and blank lines skipped,
 * a bare `KEY` takes its value from the environment (env files) or stays bare (label files).
 */
export function readKvFile(path: string, options: { fromEnv: boolean; env?: NodeJS.ProcessEnv }): string[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new Error(`open ${path}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file or directory" : (e as Error).message}`);
  }
  if (text.startsWith("\ufeff")) text = text.slice(1);
  const out: string[] = [];
  const env = options.env ?? process.env;
  let n = 0;
  for (const raw of text.split(/\r?\n/)) {
    n++;
    const line = raw.replace(/^\s+/, "");
    if (line === "" || line.startsWith("#")) continue;
    const i = line.indexOf("=");
    const key = i < 0 ? line : line.slice(0, i);
    if (/\s/.test(key) || key === "") throw new Error(`variable '${key}' contains whitespaces`);
    if (i >= 0) out.push(line);
    else if (options.fromEnv) {
      const v = env[key.trimEnd()];
      if (v !== undefined) out.push(`${key}=${v}`);
    } else out.push(line);
    void n;
  }
  return out;
}

/** `KEY` entries of `-e` take their value from the environment, as docker's ValidateEnv does. */
export function expandEnv(values: readonly string[], env: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  for (const v of values) {
    if (v.includes("=")) out.push(v);
    else {
      const x = env[v];
      if (x !== undefined) out.push(`${v}=${x}`);
    }
  }
  return out;
}

/** The short (12 hex) form of an id, without the `sha256:` prefix (docker's stringid.TruncateID). */
export function shortId(id: string): string {
  const i = id.indexOf(":");
  const hex = i >= 0 ? id.slice(i + 1) : id;
  return hex.slice(0, 12);
}
