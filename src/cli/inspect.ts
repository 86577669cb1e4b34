/**
 * docker's inspect output: the daemon's JSON printed as an array indented by four spaces (Go's
 * json.Indent over the raw text, so key order and number forms stay as sent), `--format json`
 * compact, or a Go template per object.
 */
import type { Cli } from "./cli.ts";
import { StatusError, describeError } from "./cli.ts";
import { compile, markStruct, type Template } from "./format/mod.ts";

/** Fields that are Go maps in the API types; every other JSON object is a Go struct. */
const MAP_FIELDS = new Set([
  "Labels",
  "ExposedPorts",
  "Volumes",
  "PortBindings",
  "Ports",
  "Networks",
  "Tmpfs",
  "Sysctls",
  "StorageOpt",
  "Annotations",
  "DriverOpts",
  "Options",
  "Containers",
  "Status",
  "Data",
  "AuxiliaryAddresses",
  "IndexConfigs",
  "Runtimes",
  "Details",
]);

/**
 * Gives parsed inspect JSON the shape docker's templates see: the typed Go structs of the API
 * (field order as sent, `{{.Config}}` printed `{…}`, unknown fields an error) with Go maps where
 * the API has maps (`range` over `.NetworkSettings.Networks`, `.Config.Labels.key`).
 */
export function goTyped(value: unknown, key?: string, inMap = false): unknown {
  if (Array.isArray(value)) return value.map((v) => goTyped(v));
  if (value === null || typeof value !== "object") return value;
  const o = value as Record<string, unknown>;
  const isMap = key !== undefined && MAP_FIELDS.has(key) && !inMap;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[k] = isMap ? goTyped(v, undefined, true) : goTyped(v, k);
  return isMap ? out : markStruct(out, "struct");
}

/** Go's json.Indent with prefix "" over JSON text (empty `{}`/`[]` stay compact). */
export function indentJson(text: string, indent = "    "): string {
  let out = "";
  let depth = 0;
  let i = 0;
  const n = text.length;
  const newline = () => `\n${indent.repeat(depth)}`;
  let needIndent = false;
  while (i < n) {
    const c = text[i] as string;
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      i++;
      continue;
    }
    if (needIndent && c !== "]" && c !== "}") {
      depth++;
      out += newline();
      needIndent = false;
    }
    if (c === '"') {
      let j = i + 1;
      while (j < n && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    if (c === "{" || c === "[") {
      out += c;
      needIndent = true;
      i++;
      continue;
    }
    if (c === "}" || c === "]") {
      if (needIndent) needIndent = false;
      else {
        depth--;
        out += newline();
      }
      out += c;
      i++;
      continue;
    }
    if (c === ",") {
      out += `,${newline()}`;
      i++;
      continue;
    }
    if (c === ":") {
      out += ": ";
      i++;
      continue;
    }
    out += c;
    i++;
  }
  return out;
}

/** Go's json.Compact over JSON text. */
export function compactJson(text: string): string {
  let out = "";
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i] as string;
    if (c === '"') {
      let j = i + 1;
      while (j < n && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    if (c !== " " && c !== "\t" && c !== "\n" && c !== "\r") out += c;
    i++;
  }
  return out;
}

/** An inspected object: its raw JSON text and parsed value. */
export interface Inspected {
  raw: string;
  value: unknown;
}

/**
 * Inspects each reference with `get` and prints the results as docker does; failures are
 * collected and reported together after the output (exit status 1).
 */
export async function inspectAndPrint(
  cli: Cli,
  refs: readonly string[],
  format: string,
  get: (ref: string) => Promise<Inspected>,
): Promise<void> {
  let tmpl: Template | undefined;
  if (format !== "" && format !== "json") {
    try {
      tmpl = compile(format);
    } catch (e) {
      throw new StatusError(64, (e as Error).message);
    }
  }
  const errors: string[] = [];
  const raws: string[] = [];
  let text = "";
  for (const ref of refs) {
    let obj: Inspected;
    try {
      obj = await get(ref);
    } catch (e) {
      errors.push(describeError(e));
      continue;
    }
    if (tmpl) {
      try {
        text += `${tmpl.execute(goTyped(obj.value))}\n`;
      } catch {
        // As docker: when the typed view fails, retry on the raw JSON with missingkey=error.
        try {
          text += `${tmpl.execute(obj.value, { missingKey: "error" })}\n`;
        } catch (e) {
          errors.push(describeError(e));
        }
      }
    } else raws.push(obj.raw.trim());
  }
  if (tmpl) await cli.write(text === "" ? "\n" : text);
  else if (raws.length === 0) await cli.write("[]\n");
  else {
    const joined = `[${raws.join(",")}]`;
    await cli.write(`${format === "json" ? compactJson(joined) : indentJson(joined)}\n`);
  }
  if (errors.length > 0) throw new StatusError(1, errors.join("\n"));
}
