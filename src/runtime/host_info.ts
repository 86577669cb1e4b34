/**
 * Facts about the host that shape a container's spec: the capability bounding set (privileged
 * containers get exactly that), berthd's own rlimits (a container cannot get a hard limit above
 * them without CAP_SYS_RESOURCE), the cgroup version and which cgroup files exist.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { release } from "node:os";
import { join } from "node:path";
import { invalidArgument, notFound } from "../base/mod.ts";
import { ALL_CAPABILITIES } from "./defaults.ts";
import { goArch } from "./seccomp.ts";
import type { LinuxDevice } from "./spec_types.ts";

/** Host facts used by `buildSpec`; `readHostInfo()` reads them, tests write them by hand. */
export interface HostInfo {
  /** Go-style architecture (`amd64`). */
  arch: string;
  /** Kernel release. */
  kernel: string;
  /** Capabilities in berthd's bounding set. */
  capBounding: string[];
  /** 2 when /sys/fs/cgroup is a pure cgroup2 mount, else 1 (legacy or hybrid). */
  cgroupVersion: 1 | 2;
  /** berthd's own rlimits by type (`RLIMIT_NOFILE`); -1 is unlimited. */
  rlimits: Record<string, { soft: number; hard: number }>;
  /** memory+swap limits can be set. */
  swapLimit: boolean;
  /** blkio/io weight can be set. */
  blkioWeight: boolean;
  /** Online CPUs, as a cpuset list ("0-3"). */
  cpus: string;
  /** Online memory nodes ("0"). */
  mems: string;
}

/** Capability names of a `CapBnd:` hex mask. */
export function capabilitiesFromMask(hex: string): string[] {
  const mask = BigInt(`0x${hex.trim()}`);
  return ALL_CAPABILITIES.filter((_, bit) => (mask >> BigInt(bit)) & 1n);
}

const LIMIT_NAMES: Record<string, string> = {
  "Max cpu time": "RLIMIT_CPU",
  "Max file size": "RLIMIT_FSIZE",
  "Max data size": "RLIMIT_DATA",
  "Max stack size": "RLIMIT_STACK",
  "Max core file size": "RLIMIT_CORE",
  "Max resident set": "RLIMIT_RSS",
  "Max processes": "RLIMIT_NPROC",
  "Max open files": "RLIMIT_NOFILE",
  "Max locked memory": "RLIMIT_MEMLOCK",
  "Max address space": "RLIMIT_AS",
  "Max file locks": "RLIMIT_LOCKS",
  "Max pending signals": "RLIMIT_SIGPENDING",
  "Max msgqueue size": "RLIMIT_MSGQUEUE",
  "Max nice priority": "RLIMIT_NICE",
  "Max realtime priority": "RLIMIT_RTPRIO",
  "Max realtime timeout": "RLIMIT_RTTIME",
};

/** Parses /proc/<pid>/limits. */
export function parseProcLimits(text: string): Record<string, { soft: number; hard: number }> {
  const out: Record<string, { soft: number; hard: number }> = {};
  for (const line of text.split("\n").slice(1)) {
    const name = Object.keys(LIMIT_NAMES).find((n) => line.startsWith(n));
    if (!name) continue;
    const [soft, hard] = line.slice(name.length).trim().split(/\s+/);
    const num = (v: string | undefined) => (v === "unlimited" || v === undefined ? -1 : Number(v));
    out[LIMIT_NAMES[name]!] = { soft: num(soft), hard: num(hard) };
  }
  return out;
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return fallback;
  }
}

/** Reads the host facts of this machine. */
export function readHostInfo(cgroupRoot = "/sys/fs/cgroup"): HostInfo {
  const status = readOr("/proc/self/status", "");
  const capBnd = /^CapBnd:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? "0";
  const cgroupVersion: 1 | 2 = existsSync(join(cgroupRoot, "cgroup.controllers")) ? 2 : 1;
  let swapLimit: boolean;
  let blkioWeight: boolean;
  let cpus: string;
  let mems: string;
  if (cgroupVersion === 2) {
    const controllers = readOr(join(cgroupRoot, "cgroup.controllers"), "").split(/\s+/);
    swapLimit = controllers.includes("memory");
    blkioWeight = controllers.includes("io");
    cpus = readOr(join(cgroupRoot, "cpuset.cpus.effective"), readOr("/sys/devices/system/cpu/online", "0"));
    mems = readOr(join(cgroupRoot, "cpuset.mems.effective"), "0");
  } else {
    swapLimit = existsSync(join(cgroupRoot, "memory", "memory.memsw.limit_in_bytes"));
    blkioWeight = existsSync(join(cgroupRoot, "blkio", "blkio.weight")) || existsSync(join(cgroupRoot, "blkio", "blkio.bfq.weight"));
    cpus = readOr(join(cgroupRoot, "cpuset", "cpuset.cpus"), readOr("/sys/devices/system/cpu/online", "0"));
    mems = readOr(join(cgroupRoot, "cpuset", "cpuset.mems"), "0");
  }
  return {
    arch: goArch(),
    kernel: release(),
    capBounding: capabilitiesFromMask(capBnd),
    cgroupVersion,
    rlimits: parseProcLimits(readOr("/proc/self/limits", "")),
    swapLimit,
    blkioWeight,
    cpus,
    mems,
  };
}

/** A host device to create in the container (`--device`). */
export interface DeviceMapping {
  /** The device as the spec lists it (path inside the container, numbers from the host). */
  device: LinuxDevice;
  /** cgroup access: some of "rwm". */
  permissions: string;
}

function deviceOf(hostPath: string, containerPath: string): LinuxDevice | undefined {
  const st = statSync(hostPath);
  let type: LinuxDevice["type"];
  if (st.isCharacterDevice()) type = "c";
  else if (st.isBlockDevice()) type = "b";
  else return undefined;
  // Linux dev_t: major in bits 8-19 and 32-43, minor in bits 0-7 and 20-31.
  const rdev = BigInt(st.rdev);
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
  return { path: containerPath, type, major, minor, fileMode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
}

/**
 * Resolves `--device /dev/x[:/dev/y][:rwm]`. A directory maps every device under it, as Docker
 * does; anything else that is not a device is an error.
 */
export function resolveDevice(spec: string): DeviceMapping[] {
  const parts = spec.split(":");
  const hostPath = parts[0] ?? "";
  let containerPath = hostPath;
  let permissions = "rwm";
  if (parts.length === 2) {
    if (/^[rwm]+$/.test(parts[1]!)) permissions = parts[1]!;
    else containerPath = parts[1]!;
  } else if (parts.length === 3) {
    containerPath = parts[1]!;
    permissions = parts[2]!;
  } else if (parts.length > 3) throw invalidArgument(`Invalid device specification "${spec}"`);
  if (!hostPath.startsWith("/") || !containerPath.startsWith("/") || !/^[rwm]+$/.test(permissions)) {
    throw invalidArgument(`Invalid device specification "${spec}"`);
  }
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(hostPath);
  } catch {
    throw notFound(`error gathering device information while adding custom device "${hostPath}": no such file or directory`);
  }
  if (st.isDirectory()) {
    const out: DeviceMapping[] = [];
    const walk = (dir: string, rel: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p, join(rel, e.name));
        else if (e.isCharacterDevice() || e.isBlockDevice()) {
          const d = deviceOf(p, join(containerPath, rel, e.name));
          if (d) out.push({ device: d, permissions });
        }
      }
    };
    walk(hostPath, "");
    return out;
  }
  const d = deviceOf(hostPath, containerPath);
  if (!d) throw invalidArgument(`error gathering device information while adding custom device "${hostPath}": not a device node`);
  return [{ device: d, permissions }];
}

/** Every device node under the host's /dev, for privileged containers. */
export function listHostDevices(root = "/dev"): LinuxDevice[] {
  const out: LinuxDevice[] = [];
  const skip = new Set(["pts", "shm", "fd", "mqueue", "console", "ptmx"]);
  const walk = (dir: string) => {
    let entries: import("node:fs").Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(dir, e.name);
      if (dir === root && skip.has(e.name)) continue;
      if (e.isDirectory()) walk(p);
      else if (e.isCharacterDevice() || e.isBlockDevice()) {
        try {
          const d = deviceOf(p, p);
          if (d) out.push(d);
        } catch {
          // Vanished while listing.
        }
      }
    }
  };
  walk(root);
  return out;
}
