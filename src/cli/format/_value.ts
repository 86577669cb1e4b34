/**
 * How JavaScript values map onto Go's reflect kinds for templates: which objects are maps
 * (keys looked up, missing keys are `<no value>`, printed `map[k:v]`) and which are structs
 * (unknown fields are errors, printed `{v1 v2}`), how fields and methods are found, and the
 * Go type names used in error messages.
 */

/** The Go-like kind of a value. `invalid` is Go's zero reflect.Value (a missing key). */
export type Kind = "invalid" | "nil" | "bool" | "int" | "float" | "string" | "array" | "map" | "struct" | "func";

/** Value model options shared by evaluation, printing and JSON encoding. */
export interface ValueModel {
  /** Treat plain objects as Go structs (unknown fields are errors, printed `{…}`). */
  structs: boolean;
}

const structNames = new WeakMap<object, string>();

/**
 * Flags an object as a Go struct of the given type name: unknown fields become
 * "can't evaluate field X in type T" errors and the value prints as `{v1 v2}`.
 * Returns the same object.
 */
export function markStruct<T extends object>(value: T, typeName = "struct"): T {
  structNames.set(value, typeName);
  return value;
}

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Go kind of a value under the model. */
export function kindOf(v: unknown, model: ValueModel): Kind {
  switch (typeof v) {
    case "undefined":
      return "invalid";
    case "boolean":
      return "bool";
    case "number":
      return Number.isInteger(v) ? "int" : "float";
    case "bigint":
      return "int";
    case "string":
      return "string";
    case "function":
      return "func";
    case "symbol":
      return "string";
    case "object":
      if (v === null) return "nil";
      if (Array.isArray(v) || ArrayBuffer.isView(v)) return "array";
      if (v instanceof Map) return "map";
      if (structNames.has(v)) return "struct";
      if (isPlainObject(v)) return model.structs ? "struct" : "map";
      return "struct";
  }
  return "invalid";
}

/** The Go type name shown in messages (`%T`, "can't evaluate field X in type T"). */
export function typeName(v: unknown, model: ValueModel): string {
  switch (kindOf(v, model)) {
    case "invalid":
    case "nil":
      return "<nil>";
    case "bool":
      return "bool";
    case "int":
      return "int";
    case "float":
      return "float64";
    case "string":
      return "string";
    case "array": {
      const a = v as unknown[];
      if (a.length > 0 && a.every((x) => typeof x === "string")) return "[]string";
      return "[]interface {}";
    }
    case "map":
      return v instanceof Map ? "map[interface {}]interface {}" : "map[string]interface {}";
    case "struct": {
      const named = structNames.get(v as object);
      if (named) return named;
      const ctor = (Object.getPrototypeOf(v) as { constructor?: { name?: string } } | null)?.constructor?.name;
      return ctor && ctor !== "Object" ? `*${ctor}` : "struct";
    }
    case "func":
      return "func()";
  }
}

/** Result of a field lookup: found or not, and the value. */
export type Lookup = { found: true; value: unknown } | { found: false };

/**
 * Finds a field (map key, own property, getter or method) without ever reaching into
 * Object.prototype, so hostile names such as `__proto__` or `constructor` find nothing.
 */
export function lookupField(receiver: object, name: string, kind: Kind): Lookup {
  if (receiver instanceof Map) {
    return receiver.has(name) ? { found: true, value: receiver.get(name) } : { found: false };
  }
  if (kind === "map") {
    return Object.hasOwn(receiver, name) ? { found: true, value: (receiver as Record<string, unknown>)[name] } : { found: false };
  }
  if (name === "constructor" || name === "__proto__") return { found: false };
  for (let o: object | null = receiver; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    if (Object.hasOwn(o, name)) return { found: true, value: Reflect.get(receiver, name) };
  }
  return { found: false };
}

/** Compares two map keys the way Go's fmtsort does for the common key types. */
export function compareKeys(a: unknown, b: unknown): number {
  if (typeof a === "number" && typeof b === "number") return a - b;
  const x = String(a);
  const y = String(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The entries of a map-kind value in Go's sorted key order. */
export function sortedEntries(m: object): [unknown, unknown][] {
  const entries: [unknown, unknown][] = m instanceof Map ? [...m.entries()] : Object.entries(m);
  return entries.sort((p, q) => compareKeys(p[0], q[0]));
}

/** The fields of a struct-kind value in declaration order (own enumerable data properties). */
export function structFields(s: object): [string, unknown][] {
  return Object.entries(s);
}

/** Number of elements of an array/map/string (strings count UTF-8 bytes, like Go's len). */
export function lengthOf(v: unknown, kind: Kind): number | undefined {
  if (kind === "string") return Buffer.byteLength(v as string, "utf8");
  if (kind === "array") return (v as { length: number }).length;
  if (kind === "map") return v instanceof Map ? v.size : Object.keys(v as object).length;
  return undefined;
}

/** Go's truth: non-zero numbers, non-empty strings/arrays/maps, non-nil, true; structs are true. */
export function isTrue(v: unknown, model: ValueModel): boolean {
  const kind = kindOf(v, model);
  switch (kind) {
    case "invalid":
    case "nil":
      return false;
    case "bool":
      return v as boolean;
    case "int":
    case "float":
      return typeof v === "bigint" ? v !== 0n : v !== 0;
    case "string":
    case "array":
    case "map":
      return (lengthOf(v, kind) ?? 0) > 0;
    case "struct":
    case "func":
      return true;
  }
}
