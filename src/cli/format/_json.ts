/**
 * JSON encoding as docker's `json` template function does it (encoding/json with HTML escaping
 * off, trailing newline trimmed). Map-kind values (plain objects by default, `Map`s) are encoded
 * with sorted keys like Go maps; struct-kind plain objects keep their property order like Go
 * structs. Objects of a class (docker's formatter contexts) encode their upper-case getters and
 * zero-argument methods sorted by name, as docker's formatter.MarshalJSON does.
 */

import { kindOf, type ValueModel } from "./_value.ts";

class Unsupported extends Error {}

function byKey(a: [unknown, unknown], b: [unknown, unknown]): number {
  const x = String(a[0]);
  const y = String(b[0]);
  return x < y ? -1 : x > y ? 1 : 0;
}

function encodeString(s: string): string {
  // JSON.stringify escapes like Go except U+2028/U+2029 (Go escapes them) and lone surrogates
  // (Go never sees them: its strings are UTF-8, invalid sequences become U+FFFD).
  return JSON.stringify(s)
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029")
    .replace(/\\ud[89a-f][0-9a-f]{2}/g, "\\ufffd");
}

function isPlain(v: object): boolean {
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

function timeString(d: Date): string {
  if (Number.isNaN(d.getTime())) return "0001-01-01T00:00:00Z";
  const iso = d.toISOString();
  const ms = iso.slice(20, 23).replace(/0+$/, "");
  return `${iso.slice(0, 19)}${ms ? `.${ms}` : ""}Z`;
}

/** Entries of a class instance: own enumerable data plus upper-case getters and zero-argument methods. */
function classEntries(v: object): [string, unknown][] {
  const out = new Map<string, unknown>();
  for (const [k, x] of Object.entries(v)) if (typeof x !== "function" || x.length === 0) out.set(k, x);
  for (let p = Object.getPrototypeOf(v); p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const name of Object.getOwnPropertyNames(p)) {
      if (out.has(name) || name === "constructor" || !/^\p{Lu}/u.test(name)) continue;
      const d = Object.getOwnPropertyDescriptor(p, name)!;
      if (d.get) out.set(name, d.get.call(v));
      else if (typeof d.value === "function" && d.value.length === 0) out.set(name, d.value.call(v));
    }
  }
  return [...out.entries()].sort(byKey);
}

function encode(v: unknown, model: ValueModel, depth: number): string {
  if (depth > 1000) throw new Unsupported("json: unsupported value: encountered a cycle");
  switch (typeof v) {
    case "undefined":
      return "null";
    case "boolean":
      return v ? "true" : "false";
    case "number":
      if (!Number.isFinite(v)) throw new Unsupported(`json: unsupported value: ${v}`);
      return JSON.stringify(v);
    case "bigint":
      return v.toString();
    case "string":
      return encodeString(v);
    case "function":
      return v.length === 0 ? encode(v(), model, depth + 1) : "null";
    case "symbol":
      return encodeString(String(v));
  }
  if (v === null) return "null";
  const o = v as object;
  if (typeof (o as { toJSON?: unknown }).toJSON === "function" && !(o instanceof Date)) {
    return encode((o as { toJSON: () => unknown }).toJSON(), model, depth + 1);
  }
  if (o instanceof Date) return encodeString(timeString(o));
  if (o instanceof Uint8Array) return encodeString(Buffer.from(o).toString("base64"));
  if (Array.isArray(o) || ArrayBuffer.isView(o)) {
    return `[${Array.from(o as ArrayLike<unknown>, (x) => encode(x, model, depth + 1)).join(",")}]`;
  }
  let entries: [unknown, unknown][];
  if (o instanceof Map) {
    entries = [...o.entries()].sort(byKey);
  } else if (isPlain(o)) {
    entries = Object.entries(o).filter(([, x]) => x !== undefined && (typeof x !== "function" || x.length === 0));
    if (kindOf(o, model) === "map") entries.sort(byKey);
  } else {
    entries = classEntries(o);
  }
  return `{${entries.map(([k, x]) => `${encodeString(String(k))}:${encode(x, model, depth + 1)}`).join(",")}}`;
}

/**
 * Encodes a value like docker's `json` template function. Values Go cannot encode (NaN,
 * Infinity, cycles) give an empty string, as docker ignores the encoder's error.
 */
export function toJson(v: unknown, model: ValueModel = { structs: false }): string {
  try {
    return encode(v, model, 0);
  } catch (err) {
    if (err instanceof Unsupported || err instanceof RangeError) return "";
    throw err;
  }
}
