/**
 * Turns a validated service mapping of one file into the canonical model: short syntaxes become
 * long ones (ports, volumes, environment, labels, depends_on, networks, secrets, build), scalar
 * strings become numbers and booleans, durations and sizes get one form, and relative paths are
 * resolved against the file's base directory. Merging works on this form only.
 */
import { homedir } from "node:os";
import { isAbsolute, resolve } from "node:path";
import { invalidArgument } from "../base/mod.ts";
import { VOLUME_MODES } from "../oci/mod.ts";
import { OverrideTag, ResetTag } from "./merge.ts";
import type { BuildConfig, FileReference, HealthCheck, Service, ServiceNetwork, ServicePort, ServiceVolume } from "./model.ts";
import { normalizeDuration, parseBytes, splitCommand, toBool, toNumber } from "./units.ts";

/** Where a service was read from. */
export interface NormalizeContext {
  /** Directory that relative paths are resolved against. */
  baseDir: string;
  /** The file, for messages. */
  file: string;
  /** The service's name, for messages. */
  service: string;
}

type Raw = Record<string, unknown>;

function fail(ctx: NormalizeContext, key: string, message: string): never {
  throw invalidArgument(`${ctx.file}: services.${ctx.service}.${key}: ${message}`);
}

/** Resolves a host path (`~`, relative) against the base directory. */
export function resolveHostPath(p: string, baseDir: string): string {
  if (p === "~" || p.startsWith("~/")) return resolve(homedir(), p.slice(2));
  return isAbsolute(p) ? resolve(p) : resolve(baseDir, p);
}

/** A `KEY=value` list or mapping as a mapping; bare keys map to `bare`. */
export function listOrDict(v: unknown, bare: string | null, sep = "="): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  if (Array.isArray(v)) {
    for (const item of v) {
      const s = String(item);
      const i = s.indexOf(sep);
      if (i < 0) out[s] = bare;
      else out[s.slice(0, i)] = s.slice(i + 1);
    }
  } else if (v && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) out[k] = x === null || x === undefined ? bare : String(x);
  }
  return out;
}

function stringDict(v: unknown): Record<string, string> {
  const d = listOrDict(v, "");
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(d)) out[k] = x ?? "";
  return out;
}

function strList(v: unknown): string[] {
  if (v === null || v === undefined) return [];
  return Array.isArray(v) ? v.map(String) : [String(v)];
}

function command(v: unknown): string[] | null {
  if (v === null) return null;
  if (Array.isArray(v)) return v.map(String);
  return splitCommand(String(v));
}

/** Parses the short syntax of `ports`. */
export function parsePortShort(spec: string | number, where: string): ServicePort[] {
  const text = String(spec).trim();
  let proto = "tcp";
  let body = text;
  const slash = text.lastIndexOf("/");
  if (slash >= 0) {
    proto = text.slice(slash + 1);
    body = text.slice(0, slash);
  }
  let hostIp: string | undefined;
  let published: string | undefined;
  let target: string;
  const v6 = /^\[([^\]]+)\]:(.*)$/.exec(body);
  let rest: string[];
  if (v6) {
    hostIp = v6[1];
    rest = (v6[2] as string).split(":");
    if (rest.length !== 2) throw invalidArgument(`${where}: Invalid port "${text}"`);
    published = rest[0];
    target = rest[1] as string;
  } else {
    rest = body.split(":");
    if (rest.length === 1) target = rest[0] as string;
    else if (rest.length === 2) {
      published = rest[0];
      target = rest[1] as string;
    } else if (rest.length === 3) {
      hostIp = rest[0];
      published = rest[1];
      target = rest[2] as string;
    } else throw invalidArgument(`${where}: Invalid port "${text}"`);
  }
  if (published === "") published = undefined;
  const targets = expandRange(target, text, where);
  const pubs = published === undefined ? undefined : expandRange(published, text, where);
  if (!["tcp", "udp", "sctp"].includes(proto)) throw invalidArgument(`${where}: Invalid protocol "${proto}" in port "${text}"`);
  const out: ServicePort[] = [];
  if (targets.length === 1) {
    const p: ServicePort = { mode: "ingress", target: targets[0] as number, protocol: proto };
    if (hostIp) p.host_ip = hostIp;
    if (published !== undefined) p.published = published;
    return [p];
  }
  if (pubs && pubs.length !== 1 && pubs.length !== targets.length) {
    throw invalidArgument(`${where}: Invalid port "${text}": the host and container ranges have different sizes`);
  }
  targets.forEach((t, i) => {
    const p: ServicePort = { mode: "ingress", target: t, protocol: proto };
    if (hostIp) p.host_ip = hostIp;
    if (pubs) p.published = String(pubs.length === 1 ? pubs[0] : pubs[i]);
    out.push(p);
  });
  return out;
}

function expandRange(s: string, text: string, where: string): number[] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(s);
  if (!m) throw invalidArgument(`${where}: Invalid port "${text}"`);
  const a = Number(m[1]);
  const b = m[2] === undefined ? a : Number(m[2]);
  if (a < 0 || b > 65535 || b < a) throw invalidArgument(`${where}: Invalid port range "${s}" in "${text}"`);
  const out: number[] = [];
  for (let i = a; i <= b; i++) out.push(i);
  return out;
}

/** Whether a short volume source names a host path (as opposed to a named volume). */
function isPath(s: string): boolean {
  return s.startsWith(".") || s.startsWith("/") || s.startsWith("~") || s.includes("/");
}

/** Parses the short syntax of `volumes`. */
export function parseVolumeShort(spec: string, baseDir: string, where: string): ServiceVolume {
  const parts = spec.split(":");
  let source: string | undefined;
  let target: string;
  let modes: string[] = [];
  if (parts.length === 1) target = parts[0] as string;
  else if (parts.length === 2) {
    if (parts[1]?.startsWith("/") || !(parts[1] ?? "").split(",").every((m) => VOLUME_MODES.has(m))) {
      source = parts[0];
      target = parts[1] as string;
    } else {
      target = parts[0] as string;
      modes = (parts[1] as string).split(",");
    }
  } else if (parts.length === 3) {
    source = parts[0];
    target = parts[1] as string;
    modes = (parts[2] as string).split(",");
  } else throw invalidArgument(`${where}: Invalid volume specification "${spec}"`);
  if (target === "" || (!target.startsWith("/") && !/^[A-Za-z]:/.test(target))) {
    throw invalidArgument(`${where}: Invalid volume specification "${spec}": the target must be an absolute path`);
  }
  for (const m of modes)
    if (!VOLUME_MODES.has(m)) throw invalidArgument(`${where}: Invalid volume specification "${spec}": unknown mode "${m}"`);
  const v: ServiceVolume = { type: "volume", target };
  if (source !== undefined && source !== "") {
    if (isPath(source)) {
      v.type = "bind";
      v.source = resolveHostPath(source, baseDir);
      v.bind = { create_host_path: true };
    } else {
      v.source = source;
      v.volume = {};
    }
  } else v.volume = {};
  if (modes.includes("ro")) v.read_only = true;
  const prop = modes.find((m) => ["shared", "rshared", "slave", "rslave", "private", "rprivate"].includes(m));
  if (prop) v.bind = { ...v.bind, propagation: prop };
  const selinux = modes.find((m) => m === "z" || m === "Z");
  if (selinux) v.bind = { ...v.bind, selinux };
  if (modes.includes("nocopy")) v.volume = { ...v.volume, nocopy: true };
  const consistency = modes.find((m) => ["cached", "delegated", "consistent"].includes(m));
  if (consistency) v.consistency = consistency;
  return v;
}

function volumeLong(raw: Raw, baseDir: string, where: string): ServiceVolume {
  const v: ServiceVolume = { type: raw.type as ServiceVolume["type"], target: String(raw.target ?? "") };
  if (v.target === "" && v.type !== "npipe") throw invalidArgument(`${where}: a volume of type "${v.type}" needs a target`);
  if (raw.source !== undefined && raw.source !== "") {
    v.source = v.type === "bind" ? resolveHostPath(String(raw.source), baseDir) : String(raw.source);
  } else if (v.type === "bind") throw invalidArgument(`${where}: a bind mount needs a source`);
  if (raw.read_only !== undefined) v.read_only = toBool(raw.read_only);
  if (raw.consistency !== undefined) v.consistency = String(raw.consistency);
  if (raw.bind) {
    const b = raw.bind as Raw;
    v.bind = {};
    if (b.propagation !== undefined) v.bind.propagation = String(b.propagation);
    if (b.create_host_path !== undefined) v.bind.create_host_path = toBool(b.create_host_path);
    if (b.recursive !== undefined) v.bind.recursive = String(b.recursive);
    if (b.selinux !== undefined) v.bind.selinux = String(b.selinux);
  } else if (v.type === "bind") v.bind = { create_host_path: true };
  if (raw.volume) {
    const b = raw.volume as Raw;
    v.volume = {};
    if (b.nocopy !== undefined) v.volume.nocopy = toBool(b.nocopy);
    if (b.subpath !== undefined) v.volume.subpath = String(b.subpath);
  } else if (v.type === "volume") v.volume = {};
  if (raw.tmpfs) {
    const b = raw.tmpfs as Raw;
    v.tmpfs = {};
    if (b.size !== undefined) v.tmpfs.size = parseBytes(b.size as string | number);
    if (b.mode !== undefined) v.tmpfs.mode = toNumber(b.mode);
  }
  if (raw.image) v.image = { ...(raw.image as Raw) } as ServiceVolume["image"];
  return v;
}

function fileRefs(v: unknown): FileReference[] {
  return (v as unknown[]).map((x) => {
    if (typeof x === "string") return { source: x };
    const r = x as Raw;
    const f: FileReference = { source: String(r.source ?? "") };
    if (r.target !== undefined) f.target = String(r.target);
    if (r.uid !== undefined) f.uid = String(r.uid);
    if (r.gid !== undefined) f.gid = String(r.gid);
    if (r.mode !== undefined) f.mode = typeof r.mode === "number" ? r.mode : Number.parseInt(String(r.mode), 8);
    return f;
  });
}

function build(v: unknown, baseDir: string): BuildConfig {
  if (typeof v === "string") return { context: resolveBuildContext(v, baseDir), dockerfile: "Dockerfile" };
  const r = v as Raw;
  const b: BuildConfig = { context: resolveBuildContext(String(r.context ?? "."), baseDir) };
  for (const [k, x] of Object.entries(r)) {
    if (k === "context") continue;
    switch (k) {
      case "args":
        b.args = listOrDict(x, null);
        break;
      case "labels":
        b.labels = stringDict(x);
        break;
      case "no_cache":
      case "pull":
      case "privileged":
        b[k] = toBool(x);
        break;
      case "shm_size":
        b.shm_size = parseBytes(x as string | number);
        break;
      case "extra_hosts":
        b.extra_hosts = extraHosts(x);
        break;
      case "additional_contexts":
      case "ssh":
        b[k] = listOrDict(x, "");
        break;
      default:
        b[k] = x;
    }
  }
  if (b.dockerfile === undefined && b.dockerfile_inline === undefined) b.dockerfile = "Dockerfile";
  return b;
}

function resolveBuildContext(ctx: string, baseDir: string): string {
  // Remote contexts (git URLs, http(s) tarballs) stay as written.
  if (/^(https?:\/\/|git@|git:\/\/|github\.com\/)/.test(ctx) || ctx.includes(".git#")) return ctx;
  return resolveHostPath(ctx, baseDir);
}

function extraHosts(v: unknown): string[] {
  if (Array.isArray(v)) {
    return v.map((x) => {
      const s = String(x);
      const eq = s.indexOf("=");
      return eq >= 0 ? `${s.slice(0, eq)}:${s.slice(eq + 1)}` : s;
    });
  }
  return Object.entries(v as Raw).flatMap(([h, ip]) => (Array.isArray(ip) ? ip.map((x) => `${h}:${String(x)}`) : [`${h}:${String(ip)}`]));
}

function healthcheck(raw: Raw, ctx: NormalizeContext): HealthCheck {
  const h: HealthCheck = {};
  if (raw.test !== undefined) {
    const t = raw.test;
    if (typeof t === "string") h.test = ["CMD-SHELL", t];
    else {
      h.test = (t as unknown[]).map(String);
      const first = h.test[0];
      if (first !== undefined && !["NONE", "CMD", "CMD-SHELL"].includes(first)) {
        fail(ctx, "healthcheck.test", `the first element must be "NONE", "CMD" or "CMD-SHELL", not "${first}"`);
      }
    }
  }
  for (const k of ["interval", "timeout", "start_period", "start_interval"] as const) {
    if (raw[k] !== undefined) h[k] = duration(raw[k], ctx, `healthcheck.${k}`);
  }
  if (raw.retries !== undefined) h.retries = toNumber(raw.retries);
  if (raw.disable !== undefined) h.disable = toBool(raw.disable);
  return h;
}

function duration(v: unknown, ctx: NormalizeContext, key: string): string {
  try {
    return normalizeDuration(String(v));
  } catch {
    fail(ctx, key, `invalid duration "${String(v)}"`);
  }
}

function bytes(v: unknown, ctx: NormalizeContext, key: string): number {
  try {
    return parseBytes(v as string | number);
  } catch {
    fail(ctx, key, `invalid size "${String(v)}"`);
  }
}

const BOOL_KEYS = new Set(["init", "privileged", "read_only", "stdin_open", "tty", "oom_kill_disable", "attach"]);
const INT_KEYS = new Set(["scale", "oom_score_adj", "mem_swappiness", "cpu_count", "cpu_percent"]);
const NUM_KEYS = new Set(["cpus", "cpu_shares", "cpu_quota", "cpu_period", "cpu_rt_period", "cpu_rt_runtime", "pids_limit"]);
const BYTE_KEYS = new Set(["mem_limit", "mem_reservation", "memswap_limit", "shm_size"]);
const LIST_KEYS = new Set(["dns", "dns_search", "tmpfs", "label_file"]);

/** Canonicalises one service mapping (validated against the schema). */
export function normalizeService(raw: Raw, ctx: NormalizeContext): Service {
  const s: Service = {};
  for (const [key, v] of Object.entries(raw)) {
    if (v === undefined) continue;
    if (v instanceof ResetTag) {
      s[key] = v;
      continue;
    }
    if (v instanceof OverrideTag) {
      s[key] = new OverrideTag(normalizeService({ [key]: v.value }, ctx)[key]);
      continue;
    }
    if (key.startsWith("x-")) {
      s[key] = v;
      continue;
    }
    if (BOOL_KEYS.has(key)) s[key] = toBool(v);
    else if (INT_KEYS.has(key) || NUM_KEYS.has(key)) {
      const n = toNumber(v);
      if (!Number.isFinite(n)) fail(ctx, key, `invalid number "${String(v)}"`);
      s[key] = n;
    } else if (BYTE_KEYS.has(key)) s[key] = bytes(v, ctx, key);
    else if (LIST_KEYS.has(key)) s[key] = strList(v);
    else {
      switch (key) {
        case "build":
          s.build = build(v, ctx.baseDir);
          break;
        case "command":
        case "entrypoint":
          s[key] = command(v);
          break;
        case "environment":
          s.environment = listOrDict(v, null);
          break;
        case "labels":
        case "annotations":
        case "sysctls":
        case "storage_opt":
          s[key] = stringDict(v);
          break;
        case "env_file":
          s.env_file = (Array.isArray(v) ? v : [v]).map((e) =>
            typeof e === "string"
              ? { path: resolveHostPath(e, ctx.baseDir), required: true }
              : {
                  path: resolveHostPath(String((e as Raw).path), ctx.baseDir),
                  required: (e as Raw).required === undefined ? true : toBool((e as Raw).required),
                  ...((e as Raw).format !== undefined ? { format: String((e as Raw).format) } : {}),
                },
          );
          break;
        case "ports":
          s.ports = (v as unknown[]).flatMap((p, i) => {
            const where = `${ctx.file}: services.${ctx.service}.ports[${i}]`;
            if (typeof p === "string" || typeof p === "number") return parsePortShort(p, where);
            const r = p as Raw;
            const port: ServicePort = {
              mode: String(r.mode ?? "ingress"),
              target: toNumber(r.target),
              protocol: String(r.protocol ?? "tcp"),
            };
            if (!Number.isInteger(port.target) || port.target <= 0 || port.target > 65535) {
              throw invalidArgument(`${where}.target: invalid port "${String(r.target)}"`);
            }
            if (r.name !== undefined) port.name = String(r.name);
            if (r.host_ip !== undefined) port.host_ip = String(r.host_ip);
            if (r.published !== undefined && r.published !== "") port.published = String(r.published);
            if (r.app_protocol !== undefined) port.app_protocol = String(r.app_protocol);
            return [port];
          });
          break;
        case "expose":
          s.expose = (v as unknown[]).map(String);
          break;
        case "volumes":
          s.volumes = (v as unknown[]).map((x, i) => {
            const where = `${ctx.file}: services.${ctx.service}.volumes[${i}]`;
            return typeof x === "string" ? parseVolumeShort(x, ctx.baseDir, where) : volumeLong(x as Raw, ctx.baseDir, where);
          });
          break;
        case "depends_on":
          s.depends_on = {};
          if (Array.isArray(v)) for (const d of v) s.depends_on[String(d)] = { condition: "service_started", required: true };
          else {
            for (const [d, c] of Object.entries(v as Raw)) {
              const r = c as Raw;
              const dep: Service["depends_on"] extends Record<string, infer D> | undefined ? D : never = {
                condition: r.condition as "service_started",
                required: r.required === undefined ? true : toBool(r.required),
              };
              if (r.restart !== undefined) dep.restart = toBool(r.restart);
              s.depends_on[d] = dep;
            }
          }
          break;
        case "networks":
          s.networks = {};
          if (Array.isArray(v)) for (const n of v) s.networks[String(n)] = null;
          else {
            for (const [n, c] of Object.entries(v as Raw)) {
              if (c === null || c === undefined) s.networks[n] = null;
              else {
                const r = c as Raw;
                const sn: ServiceNetwork = {};
                if (r.aliases) sn.aliases = (r.aliases as unknown[]).map(String);
                if (r.ipv4_address !== undefined) sn.ipv4_address = String(r.ipv4_address);
                if (r.ipv6_address !== undefined) sn.ipv6_address = String(r.ipv6_address);
                if (r.link_local_ips) sn.link_local_ips = (r.link_local_ips as unknown[]).map(String);
                if (r.mac_address !== undefined) sn.mac_address = String(r.mac_address);
                if (r.driver_opts) sn.driver_opts = stringDict(r.driver_opts);
                if (r.priority !== undefined) sn.priority = toNumber(r.priority);
                if (r.gw_priority !== undefined) sn.gw_priority = toNumber(r.gw_priority);
                if (r.interface_name !== undefined) sn.interface_name = String(r.interface_name);
                s.networks[n] = sn;
              }
            }
          }
          break;
        case "secrets":
        case "configs":
          s[key] = fileRefs(v);
          break;
        case "healthcheck":
          s.healthcheck = healthcheck(v as Raw, ctx);
          break;
        case "stop_grace_period":
          s.stop_grace_period = duration(v, ctx, key);
          break;
        case "extra_hosts":
          s.extra_hosts = extraHosts(v);
          break;
        case "ulimits":
          s.ulimits = {};
          for (const [n, l] of Object.entries(v as Raw)) {
            s.ulimits[n] =
              typeof l === "object" && l !== null
                ? { soft: toNumber((l as Raw).soft), hard: toNumber((l as Raw).hard) }
                : { single: toNumber(l) };
          }
          break;
        case "logging": {
          const r = v as Raw;
          const l: NonNullable<Service["logging"]> = {};
          if (r.driver !== undefined) l.driver = String(r.driver);
          if (r.options) l.options = stringDict(r.options);
          s.logging = l;
          break;
        }
        case "devices":
          s.devices = (v as unknown[]).map((d) => {
            if (typeof d !== "string") {
              const r = d as Raw;
              return { source: String(r.source), target: String(r.target ?? r.source), permissions: String(r.permissions ?? "rwm") };
            }
            const [src, dst, perm] = d.split(":");
            return { source: src ?? "", target: dst ?? src ?? "", permissions: perm ?? "rwm" };
          });
          break;
        case "deploy": {
          const d = { ...(v as Raw) } as NonNullable<Service["deploy"]>;
          if (d.replicas !== undefined) d.replicas = toNumber(d.replicas);
          s.deploy = d;
          break;
        }
        case "group_add":
        case "cap_add":
        case "cap_drop":
        case "security_opt":
        case "dns_opt":
        case "links":
        case "external_links":
        case "volumes_from":
        case "device_cgroup_rules":
        case "profiles":
          s[key] = strList(v);
          break;
        case "extends":
          // Resolved by the loader before normalisation; never reaches the model.
          break;
        default:
          s[key] = v;
      }
    }
  }
  return s;
}
