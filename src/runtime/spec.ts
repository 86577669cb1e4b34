/**
 * `buildSpec`: the pure function from "what the container should be" (already resolved: user,
 * devices, host facts, seccomp profile) to an OCI config.json with Docker's defaults and
 * semantics. Golden-tested in spec.test.ts against src/runtime/testdata/.
 */
import { posix } from "node:path";
import { invalidArgument } from "../base/mod.ts";
import {
  ALL_CAPABILITIES,
  DEFAULT_CAPABILITIES,
  DEFAULT_MASKED_PATHS,
  DEFAULT_PATH_ENV,
  DEFAULT_READONLY_PATHS,
  DEFAULT_SHM_SIZE,
  defaultDeviceRules,
  defaultMounts,
  INIT_PATH_IN_CONTAINER,
  NAMESPACED_SYSCTLS,
  ULIMIT_NAMES,
} from "./defaults.ts";
import type { DeviceMapping, HostInfo } from "./host_info.ts";
import { type DockerSeccompProfile, defaultSeccompProfile, seccompToOci } from "./seccomp.ts";
import type {
  LinuxDevice,
  LinuxDeviceCgroup,
  LinuxNamespace,
  LinuxResources,
  MountSpec,
  ProcessSpec,
  Rlimit,
  RuntimeSpec,
} from "./spec_types.ts";
import type { ResolvedUser } from "./user.ts";

/** How a namespace is set up: a new one, the host's, or joined from a path (/proc/<pid>/ns/net, a pinned netns). */
export type NamespaceMode = "private" | "host" | { path: string };

/** A mount the caller adds (volumes, binds, /etc/hosts & co, tmpfs). */
export type MountInput =
  | {
      type: "bind";
      source: string;
      destination: string;
      readonly?: boolean;
      /** rprivate (default), private, rshared, shared, rslave, slave. */
      propagation?: string;
      /** rbind (default) or bind. */
      recursive?: boolean;
      /** Extra mount options (nosuid, nodev, noexec, ...). */
      options?: string[];
    }
  | {
      type: "tmpfs";
      destination: string;
      /** Bytes; unlimited when absent. */
      size?: number;
      mode?: number;
      readonly?: boolean;
      /** Replaces the default `noexec,nosuid,nodev`. */
      options?: string[];
    };

/** A `--ulimit name=soft[:hard]`. */
export interface Ulimit {
  name: string;
  soft: number;
  hard: number;
}

/** Cgroup limits with Docker's HostConfig meaning (bytes, CPU shares, nano CPUs...). */
export interface ResourceOptions {
  memory?: number;
  memoryReservation?: number;
  /** memory+swap; -1 unlimited; 0 with `memory` set means twice the memory (Docker's default). */
  memorySwap?: number;
  memorySwappiness?: number;
  oomKillDisable?: boolean;
  cpuShares?: number;
  /** CPUs × 1e9 (`--cpus 1.5` = 1.5e9). */
  nanoCpus?: number;
  cpuPeriod?: number;
  cpuQuota?: number;
  cpusetCpus?: string;
  cpusetMems?: string;
  /** > 0 limits; 0 or -1 is unlimited. */
  pidsLimit?: number;
  blkioWeight?: number;
}

/** Everything `buildSpec` needs; see the field comments for Docker's flag each maps to. */
export interface ContainerSpecInput {
  /** Absolute host path of the mounted root filesystem. */
  rootfs: string;
  /** The full argv (entrypoint + cmd resolved by the caller). */
  args: string[];
  /** `Config.Env`: image env merged with the user's (later wins). */
  env?: string[];
  /** Absolute working directory; "/" when absent. */
  cwd?: string;
  user: ResolvedUser;
  tty?: boolean;
  hostname?: string;
  domainname?: string;
  readonlyRootfs?: boolean;
  /** Host path of an init (catatonit, tini) to run as PID 1 (`--init`). */
  init?: string;
  network?: NamespaceMode;
  pid?: NamespaceMode;
  /** `shareable` is a private namespace others may join; `none` is private without /dev/shm. */
  ipc?: NamespaceMode | "shareable" | "none";
  uts?: "private" | "host";
  /** Docker's default: private on cgroup v2, host on v1. */
  cgroupns?: "private" | "host";
  mounts?: MountInput[];
  /** /dev/shm size in bytes (64 MiB by default). */
  shmSize?: number;
  privileged?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  noNewPrivileges?: boolean;
  /** A Docker-format profile, "unconfined", or undefined for berth's default. */
  seccomp?: DockerSeccompProfile | "unconfined";
  /** `--security-opt systempaths=unconfined`: no masked or read-only /proc paths. */
  unmaskSystemPaths?: boolean;
  devices?: DeviceMapping[];
  /** `--device-cgroup-rule "c 1:3 rwm"`. */
  deviceCgroupRules?: string[];
  /** Host device nodes for privileged containers (`listHostDevices()`). */
  hostDevices?: LinuxDevice[];
  sysctls?: Record<string, string>;
  ulimits?: Ulimit[];
  resources?: ResourceOptions;
  oomScoreAdj?: number;
  /** cgroupfs path, `/berth/<id>`. */
  cgroupsPath: string;
  annotations?: Record<string, string>;
  host: HostInfo;
}

/** A generated spec and the warnings Docker would return from create (limits discarded or clamped). */
export interface BuiltSpec {
  spec: RuntimeSpec;
  warnings: string[];
}

/** Sets `KEY=value` pairs of `over` into `base`, replacing same-named keys in place (Docker's ReplaceOrAppendEnvValues). */
export function mergeEnv(base: readonly string[], over: readonly string[]): string[] {
  const out = [...base];
  const index = new Map<string, number>();
  for (const [i, e] of out.entries()) index.set(e.split("=")[0]!, i);
  for (const e of over) {
    const key = e.split("=")[0]!;
    if (!e.includes("=")) {
      // A bare name unsets the variable, as Docker does.
      const i = index.get(key);
      if (i !== undefined) out[i] = "";
      continue;
    }
    const i = index.get(key);
    if (i !== undefined) out[i] = e;
    else {
      index.set(key, out.length);
      out.push(e);
    }
  }
  return out.filter((e) => e !== "");
}

/** Normalises a capability name: `net_admin` → `CAP_NET_ADMIN`; `ALL` stays `ALL`. */
export function normalizeCapability(name: string): string {
  const up = name.trim().toUpperCase();
  if (up === "ALL") return "ALL";
  const full = up.startsWith("CAP_") ? up : `CAP_${up}`;
  if (!ALL_CAPABILITIES.includes(full)) throw invalidArgument(`Unknown capability: "${name}"`);
  return full;
}

/** The capability set for a container (Docker's TweakCapabilities), limited to the host's bounding set. */
export function computeCapabilities(
  opts: { privileged?: boolean; capAdd?: readonly string[]; capDrop?: readonly string[] },
  bounding: readonly string[],
  warnings: string[],
): string[] {
  const hostSet = new Set(bounding);
  if (opts.privileged) return ALL_CAPABILITIES.filter((c) => hostSet.has(c));
  const add = (opts.capAdd ?? []).map(normalizeCapability);
  const drop = (opts.capDrop ?? []).map(normalizeCapability);
  let caps: string[];
  if (add.includes("ALL")) caps = ALL_CAPABILITIES.filter((c) => !drop.includes(c));
  else if (drop.includes("ALL")) caps = add;
  else caps = [...DEFAULT_CAPABILITIES.filter((c) => !drop.includes(c)), ...add];
  caps = [...new Set(caps)];
  const out: string[] = [];
  for (const c of caps) {
    if (hostSet.has(c)) out.push(c);
    else if (add.includes(c)) warnings.push(`Capability ${c} is not available on this host and was not added.`);
  }
  return out;
}

function cpusetMax(list: string): number {
  let max = -1;
  for (const part of list.split(",")) {
    const [a, b] = part.split("-");
    max = Math.max(max, Number(b ?? a));
  }
  return max;
}

/** Checks a cpuset list ("0-2,4") against the host's; absurd values are errors, not allocations. */
export function validateCpuset(value: string, available: string, what: string): void {
  if (!/^\d{1,5}(-\d{1,5})?(,\d{1,5}(-\d{1,5})?)*$/.test(value)) throw invalidArgument(`Invalid value "${value}" for ${what}`);
  for (const part of value.split(",")) {
    const [a, b] = part.split("-");
    if (b !== undefined && Number(b) < Number(a)) throw invalidArgument(`Invalid value "${value}" for ${what}`);
  }
  if (cpusetMax(value) > cpusetMax(available)) {
    throw invalidArgument(`Requested ${what} are not available - requested ${value}, available: ${available}`);
  }
}

/** Docker resource options to OCI resources; also the input of `runc update`. */
export function buildResources(r: ResourceOptions, host: HostInfo, warnings: string[] = []): LinuxResources {
  const out: LinuxResources = {};
  const nonNeg = (v: number | undefined, what: string) => {
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) throw invalidArgument(`Invalid value ${v} for ${what}`);
  };
  nonNeg(r.memory, "memory");
  nonNeg(r.memoryReservation, "memory reservation");
  nonNeg(r.cpuShares, "CPU shares");
  nonNeg(r.nanoCpus, "CPUs");
  nonNeg(r.cpuPeriod, "CPU period");
  if (r.memory && r.memory < 6 * 1024 * 1024) throw invalidArgument("Minimum memory limit allowed is 6MB");
  if (r.memorySwap !== undefined && r.memorySwap !== -1 && r.memorySwap !== 0 && r.memory && r.memorySwap < r.memory) {
    throw invalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage");
  }
  if (r.memorySwap && r.memorySwap > 0 && !r.memory)
    throw invalidArgument("You should always set the Memory limit when using Memoryswap limit, see usage");
  if (r.memorySwappiness !== undefined && r.memorySwappiness !== -1 && (r.memorySwappiness < 0 || r.memorySwappiness > 100)) {
    throw invalidArgument(`Invalid value: ${r.memorySwappiness}, valid memory swappiness range is 0-100`);
  }
  const mem: NonNullable<LinuxResources["memory"]> = {};
  if (r.memory) mem.limit = r.memory;
  if (r.memoryReservation) mem.reservation = r.memoryReservation;
  if (r.memory || r.memorySwap) {
    const swap = r.memorySwap === -1 ? -1 : r.memorySwap ? r.memorySwap : r.memory ? r.memory * 2 : undefined;
    if (swap !== undefined) {
      if (host.swapLimit) mem.swap = swap;
      else if (r.memorySwap)
        warnings.push("Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.");
    }
  }
  if (r.memorySwappiness !== undefined && r.memorySwappiness >= 0 && host.cgroupVersion === 1) mem.swappiness = r.memorySwappiness;
  if (r.oomKillDisable) {
    if (host.cgroupVersion === 1) {
      mem.disableOOMKiller = true;
      if (!r.memory)
        warnings.push(
          "OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.",
        );
    } else warnings.push("Your kernel does not support OomKillDisable. OomKillDisable discarded.");
  }
  if (Object.keys(mem).length) out.memory = mem;

  const cpu: NonNullable<LinuxResources["cpu"]> = {};
  if (r.nanoCpus && (r.cpuPeriod || r.cpuQuota))
    throw invalidArgument("Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set");
  if (r.cpuShares) cpu.shares = r.cpuShares;
  if (r.nanoCpus) {
    const period = 100000;
    cpu.period = period;
    cpu.quota = Math.round((r.nanoCpus * period) / 1e9);
    const hostCpus = cpusetMax(host.cpus) + 1;
    if (r.nanoCpus > hostCpus * 1e9)
      throw invalidArgument(`Range of CPUs is from 0.01 to ${hostCpus}.00, as there are only ${hostCpus} CPUs available`);
  }
  if (r.cpuPeriod) {
    if (r.cpuPeriod < 1000 || r.cpuPeriod > 1000000)
      throw invalidArgument("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)");
    cpu.period = r.cpuPeriod;
  }
  if (r.cpuQuota) {
    if (r.cpuQuota > 0 && r.cpuQuota < 1000) throw invalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)");
    cpu.quota = r.cpuQuota;
  }
  if (r.cpusetCpus) {
    validateCpuset(r.cpusetCpus, host.cpus, "CPUs");
    cpu.cpus = r.cpusetCpus;
  }
  if (r.cpusetMems) {
    validateCpuset(r.cpusetMems, host.mems, "memory nodes");
    cpu.mems = r.cpusetMems;
  }
  if (Object.keys(cpu).length) out.cpu = cpu;

  if (r.pidsLimit !== undefined && r.pidsLimit !== 0) out.pids = { limit: r.pidsLimit > 0 ? r.pidsLimit : -1 };
  if (r.blkioWeight) {
    if (r.blkioWeight < 10 || r.blkioWeight > 1000) throw invalidArgument("Range of blkio weight is from 10 to 1000");
    if (host.blkioWeight) out.blockIO = { weight: r.blkioWeight };
    else warnings.push("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.");
  }
  return out;
}

/** Parses `--device-cgroup-rule` ("c 1:3 rwm", "a *:* rwm"). */
export function parseDeviceCgroupRule(rule: string): LinuxDeviceCgroup {
  const m = /^([acb]) (\d+|\*):(\d+|\*) ([rwm]{1,3})$/.exec(rule.trim());
  if (!m) throw invalidArgument(`Invalid device cgroup rule "${rule}"`);
  const r: LinuxDeviceCgroup = { allow: true, type: m[1] as "a" | "c" | "b" };
  if (m[2] !== "*") r.major = Number(m[2]);
  if (m[3] !== "*") r.minor = Number(m[3]);
  r.access = m[4]!;
  return r;
}

/** Checks a sysctl against the namespaces the container owns (Docker's ValidateSysctl). */
export function validateSysctl(key: string, input: Pick<ContainerSpecInput, "network" | "ipc" | "uts">): void {
  const ns = NAMESPACED_SYSCTLS;
  if (ns.ipc.includes(key) || ns.ipcPrefixes.some((p) => key.startsWith(p))) {
    if (input.ipc === "host") throw invalidArgument(`Sysctl "${key}" is not allowed with the host IPC namespace`);
    return;
  }
  if (ns.uts.includes(key)) {
    if (input.uts === "host") throw invalidArgument(`Sysctl "${key}" is not allowed with the host UTS namespace`);
    return;
  }
  if (key.startsWith(ns.netPrefix)) {
    if (input.network === "host") throw invalidArgument(`Sysctl "${key}" is not allowed in the host network namespace`);
    return;
  }
  throw invalidArgument(`Sysctl "${key}" is not allowed: it is not namespaced (only IPC, UTS and net.* sysctls can be set per container)`);
}

function rlimitValue(v: number): number {
  return v < 0 ? Number.MAX_SAFE_INTEGER : v;
}

/** Rlimits for the container: NOFILE defaults to the host's hard limit (capped at 1048576), all clamped to berthd's own. */
export function buildRlimits(ulimits: readonly Ulimit[], host: HostInfo, warnings: string[]): Rlimit[] {
  const out = new Map<string, Rlimit>();
  const hostNofile = host.rlimits.RLIMIT_NOFILE?.hard ?? 1048576;
  const nofile = hostNofile < 0 ? 1048576 : Math.min(hostNofile, 1048576);
  out.set("RLIMIT_NOFILE", { type: "RLIMIT_NOFILE", soft: nofile, hard: nofile });
  for (const u of ulimits) {
    const type = ULIMIT_NAMES[u.name.toLowerCase()];
    if (!type) throw invalidArgument(`Invalid ulimit type: "${u.name}"`);
    if (!Number.isSafeInteger(u.soft) || !Number.isSafeInteger(u.hard)) throw invalidArgument(`Invalid ulimit value for "${u.name}"`);
    let soft = rlimitValue(u.soft);
    let hard = rlimitValue(u.hard);
    if (soft > hard) throw invalidArgument(`Ulimit soft limit must be less than or equal to hard limit: ${u.soft} > ${u.hard}`);
    const hostHard = host.rlimits[type]?.hard;
    if (hostHard !== undefined && hostHard >= 0 && hard > hostHard) {
      // Raising a hard limit needs CAP_SYS_RESOURCE, which berthd may not have: clamp rather than fail at start.
      warnings.push(`Ulimit ${u.name} hard limit ${u.hard} is above the host's limit ${hostHard}: clamped to ${hostHard}.`);
      hard = hostHard;
      soft = Math.min(soft, hard);
    }
    out.set(type, { type, soft, hard });
  }
  return [...out.values()];
}

function cleanDestination(dest: string): string {
  if (!dest.startsWith("/")) throw invalidArgument(`Invalid mount destination "${dest}": not an absolute path`);
  return posix.normalize(dest).replace(/(.)\/+$/, "$1");
}

/** Docker's tmpfs defaults (noexec, nosuid, nodev), each dropped when its opposite is asked for. */
function tmpfsOptions(asked: readonly string[]): string[] {
  const opposite: Record<string, string> = { noexec: "exec", nosuid: "suid", nodev: "dev" };
  const defaults = Object.keys(opposite).filter((d) => !asked.includes(d) && !asked.includes(opposite[d] ?? ""));
  return [...defaults, ...asked];
}

function mountSpecOf(m: MountInput): MountSpec {
  const destination = cleanDestination(m.destination);
  if (m.type === "bind") {
    if (!m.source.startsWith("/")) throw invalidArgument(`Invalid bind mount source "${m.source}": not an absolute path`);
    const propagation = m.propagation ?? "rprivate";
    if (!["private", "rprivate", "shared", "rshared", "slave", "rslave"].includes(propagation)) {
      throw invalidArgument(`Invalid mount propagation "${propagation}"`);
    }
    const options = [m.recursive === false ? "bind" : "rbind", propagation, ...(m.options ?? [])];
    if (m.readonly) options.push("ro");
    return { destination, type: "bind", source: m.source, options };
  }
  const options = tmpfsOptions(m.options ?? []);
  if (m.size !== undefined) {
    if (!Number.isSafeInteger(m.size) || m.size < 0) throw invalidArgument(`Invalid tmpfs size ${m.size}`);
    options.push(`size=${m.size}`);
  }
  if (m.mode !== undefined) options.push(`mode=${(m.mode & 0o7777).toString(8)}`);
  if (m.readonly) options.push("ro");
  return { destination, type: "tmpfs", source: "tmpfs", options };
}

function namespaceOf(type: LinuxNamespace["type"], mode: NamespaceMode | undefined): LinuxNamespace | undefined {
  if (mode === "host") return undefined;
  if (mode === undefined || mode === "private") return { type };
  if (!mode.path.startsWith("/")) throw invalidArgument(`Invalid ${type} namespace path "${mode.path}"`);
  return { type, path: mode.path };
}

/** Builds the OCI spec for a container. Pure: the same input always gives the same JSON. */
export function buildSpec(input: ContainerSpecInput): BuiltSpec {
  const warnings: string[] = [];
  const host = input.host;
  const privileged = input.privileged === true;
  if (!input.args.length || input.args[0] === "") throw invalidArgument("No command specified");
  const cwd = input.cwd || "/";
  if (!cwd.startsWith("/")) throw invalidArgument(`The working directory "${cwd}" is invalid, it needs to be an absolute path`);
  if (!input.rootfs.startsWith("/")) throw invalidArgument(`Invalid rootfs "${input.rootfs}": not an absolute path`);

  // Environment: Docker's defaults first, the container's env over them, HOME from passwd if unset.
  const defaults = [`PATH=${DEFAULT_PATH_ENV}`];
  if (input.hostname && input.uts !== "host") defaults.push(`HOSTNAME=${input.hostname}`);
  if (input.tty) defaults.push("TERM=xterm");
  let env = mergeEnv(defaults, input.env ?? []);
  if (!env.some((e) => e.startsWith("HOME="))) env = [...env, `HOME=${input.user.home || "/"}`];

  const caps = computeCapabilities(input, host.capBounding, warnings);
  const args = input.init ? [INIT_PATH_IN_CONTAINER, "--", ...input.args] : [...input.args];

  const process: NonNullable<RuntimeSpec["process"]> = {
    terminal: input.tty === true,
    user: { uid: input.user.uid, gid: input.user.gid },
    args,
    env,
    cwd: posix.normalize(cwd).replace(/(.)\/+$/, "$1"),
    capabilities: { bounding: caps, effective: caps, permitted: caps },
    rlimits: buildRlimits(input.ulimits ?? [], host, warnings),
    noNewPrivileges: input.noNewPrivileges === true,
    oomScoreAdj: input.oomScoreAdj ?? 0,
  };
  if (input.user.additionalGids.length) process.user.additionalGids = [...input.user.additionalGids];
  if (input.oomScoreAdj !== undefined && (input.oomScoreAdj < -1000 || input.oomScoreAdj > 1000)) {
    throw invalidArgument(`Invalid value ${input.oomScoreAdj}, range for oom score adj is [-1000, 1000]`);
  }

  // Mounts: defaults, minus those the caller replaces, then the caller's sorted parents first.
  const userMounts = (input.mounts ?? []).map(mountSpecOf);
  const seen = new Set<string>();
  for (const m of userMounts) {
    if (seen.has(m.destination)) throw invalidArgument(`Duplicate mount point: ${m.destination}`);
    seen.add(m.destination);
  }
  if (input.init && seen.has(INIT_PATH_IN_CONTAINER)) throw invalidArgument(`Duplicate mount point: ${INIT_PATH_IN_CONTAINER}`);
  const shmSize = input.shmSize && input.shmSize > 0 ? input.shmSize : DEFAULT_SHM_SIZE;
  let mounts = defaultMounts({ shmSize, privileged, sysfsReadonly: !privileged });
  if (input.ipc === "host") {
    mounts = mounts.map((m) =>
      m.destination === "/dev/shm"
        ? { destination: "/dev/shm", type: "bind", source: "/dev/shm", options: ["rbind", "nosuid", "noexec", "nodev"] }
        : m,
    );
  } else if (input.ipc === "none") mounts = mounts.filter((m) => m.destination !== "/dev/shm");
  mounts = mounts.filter((m) => !seen.has(m.destination));
  const depth = (p: string) => p.split("/").filter(Boolean).length;
  const sortedUser = userMounts.map((m, i) => ({ m, i })).sort((a, b) => depth(a.m.destination) - depth(b.m.destination) || a.i - b.i);
  mounts.push(...sortedUser.map((x) => x.m));
  if (input.init)
    mounts.push({ destination: INIT_PATH_IN_CONTAINER, type: "bind", source: input.init, options: ["bind", "ro", "nosuid", "nodev"] });

  // Namespaces.
  const namespaces: LinuxNamespace[] = [{ type: "mount" }];
  const ipcMode = input.ipc === "shareable" || input.ipc === "none" ? "private" : input.ipc;
  for (const ns of [
    namespaceOf("network", input.network),
    namespaceOf("uts", input.uts),
    namespaceOf("pid", input.pid),
    namespaceOf("ipc", ipcMode),
    namespaceOf("cgroup", input.cgroupns ?? (host.cgroupVersion === 2 ? "private" : "host")),
  ]) {
    if (ns) namespaces.push(ns);
  }

  // Sysctls: Docker's defaults for a private network namespace, then the caller's, validated.
  const sysctl: Record<string, string> = {};
  if (input.network !== "host") {
    sysctl["net.ipv4.ip_unprivileged_port_start"] = "0";
    sysctl["net.ipv4.ping_group_range"] = "0 2147483647";
  }
  if (input.domainname && input.uts !== "host") sysctl["kernel.domainname"] = input.domainname;
  for (const [k, v] of Object.entries(input.sysctls ?? {})) {
    validateSysctl(k, input);
    sysctl[k] = v;
  }

  // Devices and their cgroup rules.
  const devices: LinuxDevice[] = [];
  const deviceRules: LinuxDeviceCgroup[] = privileged ? [{ allow: true, access: "rwm" }] : defaultDeviceRules();
  if (privileged) for (const d of input.hostDevices ?? []) devices.push({ ...d });
  for (const d of input.devices ?? []) {
    const i = devices.findIndex((x) => x.path === d.device.path);
    if (i >= 0) devices.splice(i, 1);
    devices.push({ ...d.device });
    if (!privileged)
      deviceRules.push({
        allow: true,
        type: d.device.type as "c" | "b",
        major: d.device.major,
        minor: d.device.minor,
        access: d.permissions,
      });
  }
  if (!privileged) for (const r of input.deviceCgroupRules ?? []) deviceRules.push(parseDeviceCgroupRule(r));

  const resources: LinuxResources = { devices: deviceRules, ...buildResources(input.resources ?? {}, host, warnings) };

  const linux: NonNullable<RuntimeSpec["linux"]> = {
    resources,
    cgroupsPath: input.cgroupsPath,
    namespaces,
  };
  if (Object.keys(sysctl).length) linux.sysctl = sysctl;
  if (devices.length) linux.devices = devices;
  if (!privileged && input.seccomp !== "unconfined") {
    linux.seccomp = seccompToOci(input.seccomp ?? defaultSeccompProfile(), { capabilities: caps, arch: host.arch, kernel: host.kernel });
  }
  if (!privileged && !input.unmaskSystemPaths) {
    linux.maskedPaths = [...DEFAULT_MASKED_PATHS];
    linux.readonlyPaths = [...DEFAULT_READONLY_PATHS];
  }

  const spec: RuntimeSpec = {
    ociVersion: "1.0.2-dev",
    process,
    root: { path: input.rootfs, readonly: input.readonlyRootfs === true },
    mounts,
    linux,
  };
  if (input.hostname && input.uts !== "host") spec.hostname = input.hostname;
  if (input.annotations && Object.keys(input.annotations).length) spec.annotations = { ...input.annotations };
  return { spec, warnings };
}

/** Options of `buildExecProcess` (Docker's exec create body). */
export interface ExecProcessInput {
  args: string[];
  /** Extra environment, over the container's. */
  env?: string[];
  /** Resolved `--user`; the container's user when absent. */
  user?: ResolvedUser;
  /** Working directory; the container's when absent. */
  cwd?: string;
  tty?: boolean;
  privileged?: boolean;
  /** Host bounding set, for privileged execs. */
  capBounding?: readonly string[];
}

/** The process spec of an exec session, derived from the container's process (caps, rlimits, no-new-privileges). */
export function buildExecProcess(container: ProcessSpec, input: ExecProcessInput): ProcessSpec {
  if (!input.args.length || input.args[0] === "") throw invalidArgument("No exec command specified");
  const cwd = input.cwd || container.cwd || "/";
  if (!cwd.startsWith("/")) throw invalidArgument(`The working directory "${cwd}" is invalid, it needs to be an absolute path`);
  let env = mergeEnv(container.env ?? [], input.tty ? ["TERM=xterm"] : []);
  if (input.user) env = mergeEnv(env, [`HOME=${input.user.home || "/"}`]);
  env = mergeEnv(env, input.env ?? []);
  const p: ProcessSpec = {
    terminal: input.tty === true,
    user: input.user
      ? {
          uid: input.user.uid,
          gid: input.user.gid,
          ...(input.user.additionalGids.length ? { additionalGids: [...input.user.additionalGids] } : {}),
        }
      : { ...container.user },
    args: [...input.args],
    env,
    cwd,
  };
  if (input.privileged) {
    const caps = computeCapabilities({ privileged: true }, input.capBounding ?? ALL_CAPABILITIES, []);
    p.capabilities = { bounding: caps, effective: caps, permitted: caps };
  } else if (container.capabilities) p.capabilities = structuredClone(container.capabilities);
  if (container.rlimits) p.rlimits = structuredClone(container.rlimits);
  if (container.noNewPrivileges) p.noNewPrivileges = true;
  if (container.apparmorProfile) p.apparmorProfile = container.apparmorProfile;
  return p;
}
