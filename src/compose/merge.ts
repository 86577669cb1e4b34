/**
 * The Compose merge rules, applied to canonical services (see normalize.ts): mappings merge key
 * by key, scalars are overridden, `command`, `entrypoint` and `healthcheck.test` are replaced
 * whole, and sequences are appended with duplicates dropped, except those whose entries are
 * identified by a key (volumes by target, ports by their binding, secrets and configs by target,
 * devices by target), where the override's entry replaces the base's. A value tagged `!reset`
 * in an override removes the key; `!override` replaces the value without merging.
 */
import type { Service } from "./model.ts";

/** The value of a `!reset` YAML tag: the key is removed from what it is merged onto. */
export class ResetTag {}

/** A value tagged `!override`: it replaces what it is merged onto instead of merging. */
export class OverrideTag {
  readonly value: unknown;
  constructor(value: unknown) {
    this.value = value;
  }
}

const REPLACED = new Set(["command", "entrypoint", "healthcheck.test", "build.platforms"]);

type KeyFn = (v: unknown) => string;
const KEYED: Record<string, KeyFn> = {
  volumes: (v) => (v as { target: string }).target,
  ports: (v) => {
    const p = v as { host_ip?: string; published?: string; target: number; protocol: string };
    return `${p.host_ip ?? ""}:${p.published ?? `~${JSON.stringify(p)}`}:${p.target}/${p.protocol}`;
  },
  secrets: (v) => {
    const f = v as { source: string; target?: string };
    return f.target ?? f.source;
  },
  configs: (v) => {
    const f = v as { source: string; target?: string };
    return f.target ?? f.source;
  },
  devices: (v) => (v as { target: string }).target,
  env_file: (v) => (v as { path: string }).path,
};

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof ResetTag) && !(v instanceof OverrideTag);
}

/** Whether a value is the `!reset` marker. */
export function isReset(v: unknown): boolean {
  return v instanceof ResetTag;
}

function unwrap(v: unknown): { value: unknown; override: boolean } {
  if (v instanceof OverrideTag) return { value: v.value, override: true };
  return { value: v, override: false };
}

/** Merges `over` onto `base` (both canonical); returns a new service. */
export function mergeServices(base: Service, over: Service): Service {
  return mergeValue(base, over, "") as Service;
}

/** Merges two values at a dotted path (used for services and top-level resources alike). */
export function mergeValue(base: unknown, over: unknown, path: string): unknown {
  if (isReset(over)) return undefined;
  const { value, override } = unwrap(over);
  if (override || base === undefined) return stripMarkers(value);
  if (REPLACED.has(path)) return stripMarkers(value);
  if (isObject(base) && isObject(value)) {
    const out: Record<string, unknown> = { ...base };
    if (path === "logging" && value.driver !== undefined && base.driver !== undefined && value.driver !== base.driver) {
      return stripMarkers(value);
    }
    for (const [k, v] of Object.entries(value)) {
      const child = path === "" ? k : `${path}.${k}`;
      // Entries of these mappings are values, not structures to merge.
      const leafMap = ["environment", "labels", "annotations", "sysctls", "build.args", "build.labels", "depends_on", "ulimits"].includes(
        path,
      );
      const merged = leafMap && !isReset(v) ? stripMarkers(unwrap(v).value) : mergeValue(out[k], v, child);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    }
    return out;
  }
  if (Array.isArray(base) && Array.isArray(value)) {
    const keyFn = KEYED[path];
    if (keyFn) {
      const out = new Map<string, unknown>();
      for (const v of base) out.set(keyFn(v), v);
      for (const v of value) {
        const k = keyFn(v);
        const prev = out.get(k);
        out.delete(k);
        out.set(
          k,
          prev !== undefined && isObject(prev) && isObject(v) && path !== "ports" ? mergeValue(prev, v, `${path}[]`) : stripMarkers(v),
        );
      }
      return [...out.values()];
    }
    const seen = new Set(base.map((v) => JSON.stringify(v)));
    const out = [...base];
    for (const v of value) {
      const k = JSON.stringify(v);
      if (!seen.has(k)) {
        seen.add(k);
        out.push(stripMarkers(v));
      }
    }
    return out;
  }
  return stripMarkers(value);
}

/** Removes `!reset`/`!override` markers left in a value that is not merged onto anything. */
export function stripMarkers(v: unknown): unknown {
  if (isReset(v)) return undefined;
  const { value } = unwrap(v);
  if (Array.isArray(value)) return value.filter((x) => !isReset(x)).map(stripMarkers);
  if (isObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(value)) {
      if (isReset(x)) continue;
      out[k] = stripMarkers(x);
    }
    return out;
  }
  return value;
}
