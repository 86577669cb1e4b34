/**
 * Variable interpolation of Compose files: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
 * `${VAR:?error}`, `${VAR?error}`, `${VAR:+replacement}`, `${VAR+replacement}` and `$$` for a
 * literal dollar. Defaults and replacements are themselves interpolated, so they may nest.
 */
import { invalidArgument } from "../base/mod.ts";
import { OverrideTag, ResetTag } from "./merge.ts";

/** Looks a variable up; undefined when it is not set. */
export type Lookup = (name: string) => string | undefined;

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;

/** An interpolation failure; `message` says what went wrong with which variable. */
export class InterpolationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InterpolationError";
  }
}

/**
 * Interpolates one string. Throws `InterpolationError` for a malformed expression or a
 * `${VAR:?err}` whose variable is unset (or empty, with the colon).
 */
export function interpolateString(text: string, lookup: Lookup): string {
  if (!text.includes("$")) return text;
  const [out, end] = scan(text, 0, lookup, false);
  if (end !== text.length) throw new InterpolationError(`Invalid interpolation format: "${text}"`);
  return out;
}

/**
 * Scans from `pos` until the end of the text or, inside a braced default (`nested`), until the
 * matching `}`; returns the expanded text and the position where scanning stopped.
 */
function scan(text: string, pos: number, lookup: Lookup, nested: boolean): [string, number] {
  let out = "";
  let i = pos;
  while (i < text.length) {
    const c = text[i];
    if (nested && c === "}") return [out, i];
    if (c !== "$") {
      out += c;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === "$") {
      out += "$";
      i += 2;
      continue;
    }
    if (next === "{") {
      const [value, end] = braced(text, i + 2, lookup);
      out += value;
      i = end;
      continue;
    }
    if (next !== undefined && NAME_START.test(next)) {
      let j = i + 1;
      while (j < text.length && NAME_CHAR.test(text[j] as string)) j++;
      out += lookup(text.slice(i + 1, j)) ?? "";
      i = j;
      continue;
    }
    // A lone `$` (end of text, or followed by something that cannot start a name) stays literal,
    // as Compose does.
    out += "$";
    i++;
  }
  if (nested) throw new InterpolationError(`Invalid interpolation format: "${text}": missing closing brace`);
  return [out, i];
}

/** Expands `${...}` whose body starts at `pos`; returns the value and the position after `}`. */
function braced(text: string, pos: number, lookup: Lookup): [string, number] {
  let j = pos;
  while (j < text.length && NAME_CHAR.test(text[j] as string)) j++;
  const name = text.slice(pos, j);
  if (name === "" || !NAME_START.test(name[0] as string)) {
    throw new InterpolationError(
      `Invalid interpolation format: "${text}": "\${${text.slice(pos).split("}")[0]}}" is not a valid variable name`,
    );
  }
  const rest = text.slice(j);
  if (rest.startsWith("}")) return [lookup(name) ?? "", j + 1];
  const op = /^(:-|-|:\?|\?|:\+|\+)/.exec(rest)?.[1];
  if (rest === "") throw new InterpolationError(`Invalid interpolation format: "${text}": missing closing brace`);
  if (op === undefined) {
    throw new InterpolationError(`Invalid interpolation format: "${text}": unexpected "${rest[0] ?? ""}" after "\${${name}"`);
  }
  const [arg, end] = scan(text, j + op.length, lookup, true);
  const value = lookup(name);
  const colon = op.startsWith(":");
  const unset = value === undefined || (colon && value === "");
  let result: string;
  switch (op) {
    case ":-":
    case "-":
      result = unset ? arg : (value ?? "");
      break;
    case ":?":
    case "?":
      if (unset) throw new InterpolationError(`Required variable "${name}" is missing a value${arg ? `: ${arg}` : ""}`);
      result = value ?? "";
      break;
    default:
      result = unset ? "" : arg;
  }
  return [result, end + 1];
}

/**
 * Interpolates every string value of a parsed YAML tree (keys are left alone, as Compose does).
 * `where` names the file for errors; the path of the failing value is added to the message.
 */
export function interpolateTree(value: unknown, lookup: Lookup, where: string, path: string[] = []): unknown {
  if (typeof value === "string") {
    try {
      return interpolateString(value, lookup);
    } catch (e) {
      if (e instanceof InterpolationError) throw invalidArgument(`${where}: ${pathText(path)}: ${e.message}`, { detail: { path } });
      throw e;
    }
  }
  if (value instanceof ResetTag) return value;
  if (value instanceof OverrideTag) return new OverrideTag(interpolateTree(value.value, lookup, where, path));
  if (Array.isArray(value)) return value.map((v, i) => interpolateTree(v, lookup, where, [...path, `[${i}]`]));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolateTree(v, lookup, where, [...path, k]);
    return out;
  }
  return value;
}

/** A path inside a Compose file as messages show it: `services.web.ports[0]`. */
export function pathText(path: readonly string[]): string {
  let s = "";
  for (const p of path) s += p.startsWith("[") ? p : s === "" ? p : `.${p}`;
  return s === "" ? "(root)" : s;
}
