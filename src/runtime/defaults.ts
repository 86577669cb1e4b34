/**
 * Docker's run-time defaults (moby `oci/defaults.go`, `daemon/oci_linux.go`), written for berth:
 * capabilities, masked and read-only `/proc` paths, the device cgroup allow-list and the
 * standard mounts.
 */
import type { LinuxDeviceCgroup, MountSpec } from "./spec_types.ts";

/** PATH when the image sets none. */
export const DEFAULT_PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Every capability the kernel knows, indexed by its bit number (capability.h). */
export const ALL_CAPABILITIES: readonly string[] = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_DAC_READ_SEARCH",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_LINUX_IMMUTABLE",
  "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST",
  "CAP_NET_ADMIN",
  "CAP_NET_RAW",
  "CAP_IPC_LOCK",
  "CAP_IPC_OWNER",
  "CAP_SYS_MODULE",
  "CAP_SYS_RAWIO",
  "CAP_SYS_CHROOT",
  "CAP_SYS_PTRACE",
  "CAP_SYS_PACCT",
  "CAP_SYS_ADMIN",
  "CAP_SYS_BOOT",
  "CAP_SYS_NICE",
  "CAP_SYS_RESOURCE",
  "CAP_SYS_TIME",
  "CAP_SYS_TTY_CONFIG",
  "CAP_MKNOD",
  "CAP_LEASE",
  "CAP_AUDIT_WRITE",
  "CAP_AUDIT_CONTROL",
  "CAP_SETFCAP",
  "CAP_MAC_OVERRIDE",
  "CAP_MAC_ADMIN",
  "CAP_SYSLOG",
  "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND",
  "CAP_AUDIT_READ",
  "CAP_PERFMON",
  "CAP_BPF",
  "CAP_CHECKPOINT_RESTORE",
];

/** The 14 capabilities of a default Docker container (CapEff 00000000a80425fb). */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

/** Paths hidden from unprivileged containers (bind-mounted over with /dev/null or an empty tmpfs). */
export const DEFAULT_MASKED_PATHS: readonly string[] = [
  "/proc/asound",
  "/proc/acpi",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
];

/** Paths remounted read-only in unprivileged containers. */
export const DEFAULT_READONLY_PATHS: readonly string[] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

function allow(type: "c" | "b", major: number | undefined, minor: number | undefined, access = "rwm"): LinuxDeviceCgroup {
  const r: LinuxDeviceCgroup = { allow: true, type };
  if (major !== undefined) r.major = major;
  if (minor !== undefined) r.minor = minor;
  r.access = access;
  return r;
}

/**
 * The device cgroup rules of an unprivileged container: deny everything, then allow mknod of
 * anything (opening is what matters) and the standard character devices. Device nodes that a
 * hostile image ships are created but cannot be opened (SECURITY.md item 8).
 */
export function defaultDeviceRules(): LinuxDeviceCgroup[] {
  return [
    { allow: false, access: "rwm" },
    allow("c", undefined, undefined, "m"),
    allow("b", undefined, undefined, "m"),
    allow("c", 1, 3), // null
    allow("c", 1, 5), // zero
    allow("c", 1, 7), // full
    allow("c", 1, 8), // random
    allow("c", 1, 9), // urandom
    allow("c", 5, 0), // tty
    allow("c", 5, 1), // console
    allow("c", 5, 2), // ptmx
    allow("c", 136, undefined), // pts
  ];
}

/** Default size of /dev/shm: 64 MiB, as Docker. */
export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;

/** The standard mounts every container gets, before the caller's own. */
export function defaultMounts(opts: { shmSize: number; privileged: boolean; sysfsReadonly: boolean }): MountSpec[] {
  const ro = opts.privileged ? "rw" : "ro";
  return [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    {
      destination: "/dev/pts",
      type: "devpts",
      source: "devpts",
      options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
    },
    { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", opts.sysfsReadonly ? "ro" : "rw"] },
    { destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", ro] },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
    {
      destination: "/dev/shm",
      type: "tmpfs",
      source: "shm",
      options: ["nosuid", "noexec", "nodev", "mode=1777", `size=${opts.shmSize}`],
    },
  ];
}

/** Sysctls that live in a namespace berth gives the container, by the namespace they need. */
export const NAMESPACED_SYSCTLS: { ipc: readonly string[]; ipcPrefixes: readonly string[]; uts: readonly string[]; netPrefix: string } = {
  ipc: [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
  ],
  ipcPrefixes: ["fs.mqueue."],
  uts: ["kernel.domainname", "kernel.hostname"],
  netPrefix: "net.",
};

/** Docker's ulimit names (`--ulimit nofile=...`) to rlimit types. */
export const ULIMIT_NAMES: Record<string, string> = {
  as: "RLIMIT_AS",
  core: "RLIMIT_CORE",
  cpu: "RLIMIT_CPU",
  data: "RLIMIT_DATA",
  fsize: "RLIMIT_FSIZE",
  locks: "RLIMIT_LOCKS",
  memlock: "RLIMIT_MEMLOCK",
  msgqueue: "RLIMIT_MSGQUEUE",
  nice: "RLIMIT_NICE",
  nofile: "RLIMIT_NOFILE",
  nproc: "RLIMIT_NPROC",
  rss: "RLIMIT_RSS",
  rtprio: "RLIMIT_RTPRIO",
  rttime: "RLIMIT_RTTIME",
  sigpending: "RLIMIT_SIGPENDING",
  stack: "RLIMIT_STACK",
};

/** Where `--init` puts the init binary inside the container. */
export const INIT_PATH_IN_CONTAINER = "/sbin/docker-init";
