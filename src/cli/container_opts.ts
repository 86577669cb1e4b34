/**
 * The flags of `create` and `run` and their translation into the Engine API's create body
 * (Config, HostConfig, NetworkingConfig), following the docker CLI's containerOptions/parse.
 */
import { readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import type {
  ContainerCreateBody,
  EndpointSettings,
  HealthConfig,
  HostConfig,
  Mount,
  PortBinding,
  RestartPolicy,
  Ulimit,
} from "../client/mod.ts";
import type { FlagSpec, FlagValues } from "./flags.ts";
import { parseGoInt, ramInBytes } from "./flags.ts";
import { expandEnv, kvToMap, readKvFile } from "./opts.ts";

/** A usage error of container options (docker reports them with exit status 125). */
export class ContainerOptionsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ContainerOptionsError";
  }
}

function bad(message: string): never {
  throw new ContainerOptionsError(message);
}

/** Flags shared by `create` and `run`. */
export const CONTAINER_FLAGS: FlagSpec[] = [
  { long: "add-host", kind: "list", help: "Add a custom host-to-IP mapping (host:ip)" },
  {
    long: "annotation",
    kind: "list",
    typeName: "map",
    help: "Add an annotation to the container (passed through to the OCI runtime)",
    defaultText: "map[]",
  },
  {
    long: "attach",
    short: "a",
    kind: "list",
    help: "Attach to STDIN, STDOUT or STDERR",
    validate: (v) => {
      if (!["stdin", "stdout", "stderr"].includes(v.toLowerCase())) throw new Error("valid streams are STDIN, STDOUT and STDERR");
    },
  },
  {
    long: "blkio-weight",
    kind: "uint",
    typeName: "uint16",
    help: "Block IO (relative weight), between 10 and 1000, or 0 to disable",
    defaultText: "0",
  },
  { long: "blkio-weight-device", kind: "list", help: "Block IO weight (relative device weight)", defaultText: "[]" },
  { long: "cap-add", kind: "list", help: "Add Linux capabilities" },
  { long: "cap-drop", kind: "list", help: "Drop Linux capabilities" },
  { long: "cgroup-parent", kind: "string", help: "Optional parent cgroup for the container" },
  {
    long: "cgroupns",
    kind: "string",
    help: "Cgroup namespace to use (host|private)\n'host':    Run the container in the Docker host's cgroup namespace\n'private': Run the container in its own private cgroup namespace\n'':        Use the cgroup namespace as configured by the\n           default-cgroupns-mode option on the daemon (default)",
  },
  { long: "cidfile", kind: "string", help: "Write the container ID to the file" },
  { long: "cpu-count", kind: "int", help: "CPU count (Windows only)" },
  { long: "cpu-percent", kind: "int", help: "CPU percent (Windows only)" },
  { long: "cpu-period", kind: "int", help: "Limit CPU CFS (Completely Fair Scheduler) period" },
  { long: "cpu-quota", kind: "int", help: "Limit CPU CFS (Completely Fair Scheduler) quota" },
  { long: "cpu-rt-period", kind: "int", help: "Limit CPU real-time period in microseconds" },
  { long: "cpu-rt-runtime", kind: "int", help: "Limit CPU real-time runtime in microseconds" },
  { long: "cpu-shares", short: "c", kind: "int", help: "CPU shares (relative weight)" },
  { long: "cpus", kind: "decimal", help: "Number of CPUs" },
  { long: "cpuset-cpus", kind: "string", help: "CPUs in which to allow execution (0-3, 0,1)" },
  { long: "cpuset-mems", kind: "string", help: "MEMs in which to allow execution (0-3, 0,1)" },
  { long: "device", kind: "list", help: "Add a host device to the container" },
  { long: "device-cgroup-rule", kind: "list", help: "Add a rule to the cgroup allowed devices list" },
  { long: "device-read-bps", kind: "list", help: "Limit read rate (bytes per second) from a device", defaultText: "[]" },
  { long: "device-read-iops", kind: "list", help: "Limit read rate (IO per second) from a device", defaultText: "[]" },
  { long: "device-write-bps", kind: "list", help: "Limit write rate (bytes per second) to a device", defaultText: "[]" },
  { long: "device-write-iops", kind: "list", help: "Limit write rate (IO per second) to a device", defaultText: "[]" },
  { long: "disable-content-trust", kind: "bool", help: "Skip image verification", defaultText: "true" },
  { long: "dns", kind: "list", help: "Set custom DNS servers" },
  { long: "dns-option", kind: "list", help: "Set DNS options" },
  { long: "dns-search", kind: "list", help: "Set custom DNS search domains" },
  { long: "domainname", kind: "string", help: "Container NIS domain name" },
  { long: "entrypoint", kind: "string", help: "Overwrite the default ENTRYPOINT of the image" },
  { long: "env", short: "e", kind: "list", help: "Set environment variables" },
  { long: "env-file", kind: "list", help: "Read in a file of environment variables" },
  { long: "expose", kind: "list", help: "Expose a port or a range of ports" },
  { long: "gpus", kind: "string", typeName: "gpu-request", help: "GPU devices to add to the container ('all' to pass all GPUs)" },
  { long: "group-add", kind: "list", help: "Add additional groups to join" },
  { long: "health-cmd", kind: "string", help: "Command to run to check health" },
  { long: "health-interval", kind: "duration", help: "Time between running the check (ms|s|m|h)", defaultText: "0s" },
  { long: "health-retries", kind: "int", help: "Consecutive failures needed to report unhealthy" },
  {
    long: "health-start-interval",
    kind: "duration",
    help: "Time between running the check during the start period (ms|s|m|h)",
    defaultText: "0s",
  },
  {
    long: "health-start-period",
    kind: "duration",
    help: "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h)",
    defaultText: "0s",
  },
  { long: "health-timeout", kind: "duration", help: "Maximum time to allow one check to run (ms|s|m|h)", defaultText: "0s" },
  { long: "hostname", short: "h", kind: "string", help: "Container host name" },
  { long: "init", kind: "bool", help: "Run an init inside the container that forwards signals and reaps processes" },
  { long: "interactive", short: "i", kind: "bool", help: "Keep STDIN open even if not attached" },
  { long: "io-maxbandwidth", kind: "bytes", help: "Maximum IO bandwidth limit for the system drive (Windows only)" },
  { long: "io-maxiops", kind: "uint", help: "Maximum IOps limit for the system drive (Windows only)" },
  { long: "ip", kind: "string", help: "IPv4 address (e.g., 172.30.100.104)" },
  { long: "ip6", kind: "string", help: "IPv6 address (e.g., 2001:db8::33)" },
  { long: "ipc", kind: "string", help: "IPC mode to use" },
  { long: "isolation", kind: "string", help: "Container isolation technology" },
  { long: "kernel-memory", kind: "bytes", help: "Kernel memory limit" },
  { long: "label", short: "l", kind: "list", help: "Set meta data on a container" },
  { long: "label-file", kind: "list", help: "Read in a line delimited file of labels" },
  { long: "link", kind: "list", help: "Add link to another container" },
  { long: "link-local-ip", kind: "list", help: "Container IPv4/IPv6 link-local addresses" },
  { long: "log-driver", kind: "string", help: "Logging driver for the container" },
  { long: "log-opt", kind: "list", help: "Log driver options" },
  { long: "mac-address", kind: "string", help: "Container MAC address (e.g., 92:d0:c6:0a:29:33)" },
  { long: "memory", short: "m", kind: "bytes", help: "Memory limit" },
  { long: "memory-reservation", kind: "bytes", help: "Memory soft limit" },
  { long: "memory-swap", kind: "bytes", help: "Swap limit equal to memory plus swap: '-1' to enable unlimited swap" },
  { long: "memory-swappiness", kind: "int", help: "Tune container memory swappiness (0 to 100)", defaultText: "-1" },
  { long: "mount", kind: "list", typeName: "mount", help: "Attach a filesystem mount to the container" },
  { long: "name", kind: "string", help: "Assign a name to the container" },
  { long: "network", kind: "list", typeName: "network", help: "Connect a container to a network" },
  { long: "net", kind: "list", typeName: "network", help: "Connect a container to a network", hidden: true },
  { long: "network-alias", kind: "list", help: "Add network-scoped alias for the container" },
  { long: "net-alias", kind: "list", help: "Add network-scoped alias for the container", hidden: true },
  { long: "no-healthcheck", kind: "bool", help: "Disable any container-specified HEALTHCHECK" },
  { long: "oom-kill-disable", kind: "bool", help: "Disable OOM Killer" },
  { long: "oom-score-adj", kind: "int", help: "Tune host's OOM preferences (-1000 to 1000)" },
  { long: "pid", kind: "string", help: "PID namespace to use" },
  { long: "pids-limit", kind: "int", help: "Tune container pids limit (set -1 for unlimited)" },
  { long: "platform", kind: "string", help: "Set platform if server is multi-platform capable" },
  { long: "privileged", kind: "bool", help: "Give extended privileges to this container" },
  { long: "publish", short: "p", kind: "list", help: "Publish a container's port(s) to the host" },
  { long: "publish-all", short: "P", kind: "bool", help: "Publish all exposed ports to random ports" },
  { long: "pull", kind: "string", help: 'Pull image before running ("always", "missing", "never")', defaultText: '"missing"' },
  { long: "quiet", short: "q", kind: "bool", help: "Suppress the pull output" },
  { long: "read-only", kind: "bool", help: "Mount the container's root filesystem as read only" },
  { long: "restart", kind: "string", help: "Restart policy to apply when a container exits", defaultText: '"no"' },
  { long: "rm", kind: "bool", help: "Automatically remove the container and its associated anonymous volumes when it exits" },
  { long: "runtime", kind: "string", help: "Runtime to use for this container" },
  { long: "security-opt", kind: "list", help: "Security Options" },
  { long: "shm-size", kind: "bytes", help: "Size of /dev/shm" },
  { long: "stop-signal", kind: "string", help: "Signal to stop the container" },
  { long: "stop-timeout", kind: "int", help: "Timeout (in seconds) to stop a container" },
  { long: "storage-opt", kind: "list", help: "Storage driver options for the container" },
  { long: "sysctl", kind: "list", typeName: "map", help: "Sysctl options", defaultText: "map[]" },
  { long: "tmpfs", kind: "list", help: "Mount a tmpfs directory" },
  { long: "tty", short: "t", kind: "bool", help: "Allocate a pseudo-TTY" },
  { long: "ulimit", kind: "list", typeName: "ulimit", help: "Ulimit options", defaultText: "[]" },
  { long: "use-api-socket", kind: "bool", help: "Bind mount Docker API socket and required auth" },
  { long: "user", short: "u", kind: "string", help: "Username or UID (format: <name|uid>[:<group|gid>])" },
  { long: "userns", kind: "string", help: "User namespace to use" },
  { long: "uts", kind: "string", help: "UTS namespace to use" },
  { long: "volume", short: "v", kind: "list", help: "Bind mount a volume" },
  { long: "volume-driver", kind: "string", help: "Optional volume driver for the container" },
  { long: "volumes-from", kind: "list", help: "Mount volumes from the specified container(s)" },
  { long: "workdir", short: "w", kind: "string", help: "Working directory inside the container" },
];

/** The extra flags of `run`. */
export const RUN_ONLY_FLAGS: FlagSpec[] = [
  { long: "detach", short: "d", kind: "bool", help: "Run container in background and print container ID" },
  { long: "detach-keys", kind: "string", help: "Override the key sequence for detaching a container" },
  { long: "sig-proxy", kind: "bool", help: "Proxy received signals to the process", defaultText: "true" },
];

/** The create request and the client-side settings of create/run. */
export interface ContainerSpec {
  body: ContainerCreateBody;
  name: string;
  platform: string;
  pull: "always" | "missing" | "never";
  quiet: boolean;
  cidfile: string;
  autoRemove: boolean;
}

function parseProtoPort(s: string): { proto: string; port: string } {
  const i = s.indexOf("/");
  if (i < 0) return { proto: "tcp", port: s };
  return { port: s.slice(0, i), proto: s.slice(i + 1).toLowerCase() || "tcp" };
}

function parseRange(s: string, what: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(s);
  if (!m) bad(`invalid ${what}: ${s}`);
  const a = Number(m[1]);
  const b = m[2] === undefined ? a : Number(m[2]);
  if (a > 65535 || b > 65535 || b < a) bad(`invalid ${what}: ${s}`);
  return [a, b];
}

/** nat.ParsePortSpecs: `-p` values into ExposedPorts and PortBindings. */
export function parsePortSpecs(specs: readonly string[]): {
  exposed: Record<string, Record<string, never>>;
  bindings: Record<string, PortBinding[]>;
} {
  const exposed: Record<string, Record<string, never>> = {};
  const bindings: Record<string, PortBinding[]> = {};
  for (const raw of specs) {
    const { proto, port: rest } = parseProtoPort(raw);
    let ip = "";
    let hostPort = "";
    let containerPort: string;
    // An IPv6 address is written in brackets: [::1]:8080:80
    let body = rest;
    if (body.startsWith("[")) {
      const end = body.indexOf("]");
      if (end < 0) bad(`Invalid ip address: ${body}`);
      ip = body.slice(1, end);
      body = body.slice(end + 1);
      if (body.startsWith(":")) body = body.slice(1);
      const parts = body.split(":");
      if (parts.length !== 2) bad(`invalid port format: ${raw}`);
      hostPort = parts[0] as string;
      containerPort = parts[1] as string;
    } else {
      const parts = body.split(":");
      if (parts.length === 1) containerPort = parts[0] as string;
      else if (parts.length === 2) {
        hostPort = parts[0] as string;
        containerPort = parts[1] as string;
      } else if (parts.length === 3) {
        ip = parts[0] as string;
        hostPort = parts[1] as string;
        containerPort = parts[2] as string;
      } else {
        // An unbracketed IPv6 address: everything before the last two fields.
        containerPort = parts.pop() as string;
        hostPort = parts.pop() as string;
        ip = parts.join(":");
      }
    }
    if (ip !== "" && !/^[0-9.]+$/.test(ip) && !ip.includes(":")) bad(`Invalid ip address: ${ip}`);
    if (containerPort === "") bad(`no port specified: ${raw}<empty>`);
    const [cs, ce] = parseRange(containerPort, "containerPort");
    let hs = 0;
    let he = 0;
    if (hostPort !== "") [hs, he] = parseRange(hostPort, "hostPort");
    if (hostPort !== "" && ce - cs !== he - hs && he - hs !== 0 && ce !== cs) {
      bad(`invalid ranges specified for container and host Ports: ${containerPort} and ${hostPort}`);
    }
    if (!["tcp", "udp", "sctp"].includes(proto)) bad(`invalid proto: ${proto}`);
    for (let i = 0; i <= ce - cs; i++) {
      const key = `${cs + i}/${proto}`;
      exposed[key] = {};
      let hp = hostPort;
      if (hostPort !== "" && ce - cs === he - hs) hp = String(hs + i);
      else if (hostPort !== "" && he !== hs) hp = `${hs}-${he}`;
      const list = bindings[key] ?? [];
      list.push({ HostIp: ip, HostPort: hp });
      bindings[key] = list;
    }
  }
  return { exposed, bindings };
}

/** `--restart` values: no, always, unless-stopped, on-failure[:max-retries]. */
export function parseRestartPolicy(s: string): RestartPolicy {
  if (s === "") return { Name: "no" };
  const [name, count, ...rest] = s.split(":");
  if (rest.length > 0) bad(`invalid restart policy format: maximum retry count must be an integer`);
  const p: RestartPolicy = { Name: name as RestartPolicy["Name"] };
  if (count !== undefined) {
    const n = parseGoInt(count);
    if (n === undefined) bad("invalid restart policy format: maximum retry count must be an integer");
    p.MaximumRetryCount = n;
  }
  switch (p.Name) {
    case "always":
    case "unless-stopped":
    case "no":
      if (count !== undefined) bad(`invalid restart policy format: maximum retry count can only be used with 'on-failure'`);
      return p;
    case "on-failure":
      return p;
    default:
      return bad(`invalid restart policy format: unknown policy '${name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'`);
  }
}

/** `--ulimit name=soft[:hard]`. */
export function parseUlimit(s: string): Ulimit {
  const i = s.indexOf("=");
  if (i < 0) bad(`invalid ulimit argument: ${s}`);
  const name = s.slice(0, i);
  const [soft, hard, extra] = s.slice(i + 1).split(":");
  if (extra !== undefined) bad(`too many limit value arguments - ${s.slice(i + 1)}, can only have up to two, \`soft[:hard]\``);
  const sv = parseGoInt(soft ?? "");
  const hv = hard === undefined ? sv : parseGoInt(hard);
  if (sv === undefined || hv === undefined) bad(`invalid ulimit argument: ${s}`);
  if (sv > hv) bad(`ulimit soft limit must be less than or equal to hard limit: ${sv} > ${hv}`);
  return { Name: name, Soft: sv, Hard: hv };
}

/** `--device host[:container[:perms]]`. */
export function parseDevice(s: string): { PathOnHost: string; PathInContainer: string; CgroupPermissions: string } {
  const parts = s.split(":");
  let perms = "rwm";
  let src = parts[0] ?? "";
  let dst = src;
  if (parts.length === 3) {
    dst = parts[1] as string;
    perms = parts[2] as string;
  } else if (parts.length === 2) {
    if (/^[rwm]+$/.test(parts[1] as string)) perms = parts[1] as string;
    else dst = parts[1] as string;
  } else if (parts.length > 3) bad(`invalid device specification: ${s}`);
  if (!/^[rwm]+$/.test(perms)) bad(`invalid device mode: ${perms}`);
  if (!src.startsWith("/")) bad(`invalid device path: ${src}`);
  src = src.replace(/\/+$/, "") || "/";
  return { PathOnHost: src, PathInContainer: dst, CgroupPermissions: perms };
}

function parseBool(v: string | undefined, key: string): boolean {
  if (v === undefined || v === "") return true;
  const t = v.toLowerCase();
  if (["1", "true", "t"].includes(t)) return true;
  if (["0", "false", "f"].includes(t)) return false;
  return bad(`invalid value for ${key}: ${v}`);
}

/** `--mount type=...,source=...,target=...` (docker's MountOpt). */
export function parseMount(spec: string): Mount {
  const m: Mount = { Type: "volume", Target: "" };
  let volumeOptions: NonNullable<Mount["VolumeOptions"]> | undefined;
  let bindOptions: NonNullable<Mount["BindOptions"]> | undefined;
  let tmpfsOptions: NonNullable<Mount["TmpfsOptions"]> | undefined;
  const vol = () => (volumeOptions ??= {});
  const bnd = () => (bindOptions ??= {});
  const tmp = () => (tmpfsOptions ??= {});
  for (const field of spec.split(",")) {
    const i = field.indexOf("=");
    const key = (i < 0 ? field : field.slice(0, i)).toLowerCase().trim();
    const value = i < 0 ? undefined : field.slice(i + 1);
    if (i < 0 && !["readonly", "ro", "volume-nocopy", "bind-nonrecursive"].includes(key))
      bad(`invalid field '${field}' must be a key=value pair`);
    switch (key) {
      case "type":
        m.Type = (value ?? "").toLowerCase() as Mount["Type"];
        break;
      case "source":
      case "src":
        m.Source = value ?? "";
        break;
      case "target":
      case "dst":
      case "destination":
        m.Target = value ?? "";
        break;
      case "readonly":
      case "ro":
        m.ReadOnly = parseBool(value, key);
        break;
      case "consistency":
        m.Consistency = value ?? "";
        break;
      case "bind-propagation":
        bnd().Propagation = (value ?? "").toLowerCase();
        break;
      case "bind-nonrecursive":
        bnd().NonRecursive = parseBool(value, key);
        break;
      case "bind-create-mountpoint":
        bnd().CreateMountpoint = parseBool(value, key);
        break;
      case "volume-nocopy":
        vol().NoCopy = parseBool(value, key);
        break;
      case "volume-subpath":
        vol().Subpath = value ?? "";
        break;
      case "volume-label": {
        const [k, v] = (value ?? "").split(/=(.*)/s);
        vol().Labels = { ...vol().Labels, [k ?? ""]: v ?? "" };
        break;
      }
      case "volume-driver":
        vol().DriverConfig = { ...vol().DriverConfig, Name: value ?? "" };
        break;
      case "volume-opt": {
        const [k, v] = (value ?? "").split(/=(.*)/s);
        const dc = (vol().DriverConfig ??= {});
        dc.Options = { ...dc.Options, [k ?? ""]: v ?? "" };
        break;
      }
      case "tmpfs-size":
        try {
          tmp().SizeBytes = ramInBytes(value ?? "");
        } catch (e) {
          bad(`invalid value for ${key}: ${value}: ${(e as Error).message}`);
        }
        break;
      case "tmpfs-mode": {
        const n = Number.parseInt(value ?? "", 8);
        if (Number.isNaN(n)) bad(`invalid value for ${key}: ${value}`);
        tmp().Mode = n;
        break;
      }
      default:
        bad(`unexpected key '${key}' in '${field}'`);
    }
  }
  if (m.Target === "") bad("target is required");
  if (volumeOptions) {
    if (m.Type !== "volume") bad(`cannot mix 'volume-*' options with mount type '${m.Type}'`);
    m.VolumeOptions = volumeOptions;
  }
  if (bindOptions) {
    if (m.Type !== "bind") bad(`cannot mix 'bind-*' options with mount type '${m.Type}'`);
    m.BindOptions = bindOptions;
  }
  if (tmpfsOptions) {
    if (m.Type !== "tmpfs") bad(`cannot mix 'tmpfs-*' options with mount type '${m.Type}'`);
    m.TmpfsOptions = tmpfsOptions;
  }
  return m;
}

/** Splits a `-v` value into its parts as docker's loader.ParseVolume does for Linux. */
function volumeHasSource(spec: string): boolean {
  const parts = spec.split(":");
  return parts.length >= 2;
}

/** `--security-opt`: a seccomp profile file is read and inlined, as the docker CLI does. */
function parseSecurityOpts(values: readonly string[]): string[] {
  return values.map((v) => {
    let [key, value] = [v, ""];
    const i = v.indexOf("=");
    const j = v.indexOf(":");
    if (i >= 0) [key, value] = [v.slice(0, i), v.slice(i + 1)];
    else if (j >= 0) [key, value] = [v.slice(0, j), v.slice(j + 1)];
    if (key === "seccomp" && value !== "unconfined" && value !== "builtin" && value !== "") {
      let text: string;
      try {
        text = readFileSync(value, "utf8");
      } catch (e) {
        return bad(`opening seccomp profile (${value}) failed: ${(e as Error).message}`);
      }
      return `seccomp=${JSON.stringify(JSON.parse(text))}`;
    }
    return v;
  });
}

function kvList(values: readonly string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const i = v.indexOf("=");
    if (i <= 0) bad(`invalid ${what} format: ${v}`);
    out[v.slice(0, i)] = v.slice(i + 1);
  }
  return out;
}

/** Translates parsed create/run flags and positionals (IMAGE [COMMAND] [ARG...]) into a create request. */
export function buildContainerSpec(
  flags: FlagValues,
  args: readonly string[],
  options: { detach: boolean; env?: NodeJS.ProcessEnv; cwd?: string },
): ContainerSpec {
  const env = options.env ?? process.env;
  const image = args[0] ?? "";
  const cmd = args.slice(1);
  const attach = flags.list("attach").map((a) => a.toLowerCase());
  let attachStdin = attach.includes("stdin");
  let attachStdout = attach.includes("stdout");
  let attachStderr = attach.includes("stderr");
  const mac = flags.string("mac-address");
  if (mac && !/^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/.test(mac)) bad(`${mac} is not a valid mac address`);
  const interactive = flags.bool("interactive");
  if (interactive) attachStdin = true;
  if (attach.length === 0) {
    attachStdout = true;
    attachStderr = true;
  }
  const swappiness = flags.number("memory-swappiness", -1);
  if (swappiness !== -1 && (swappiness < 0 || swappiness > 100))
    bad(`invalid value: ${swappiness}. Valid memory swappiness range is 0-100`);

  const binds: string[] = [];
  const volumes: Record<string, Record<string, never>> = {};
  for (const v of flags.list("volume")) {
    if (v.trim() === "") bad("invalid empty volume spec");
    if (volumeHasSource(v)) {
      const i = v.indexOf(":");
      let host = v.slice(0, i);
      if (!isAbsolute(host) && host.startsWith(".")) host = resolve(options.cwd ?? process.cwd(), host);
      binds.push(`${host}${v.slice(i)}`);
    } else volumes[v] = {};
  }

  const tmpfs: Record<string, string> = {};
  for (const t of flags.list("tmpfs")) {
    const i = t.indexOf(":");
    if (i < 0) tmpfs[t] = "";
    else tmpfs[t.slice(0, i)] = t.slice(i + 1);
  }

  let entrypoint: string[] | undefined;
  if (flags.string("entrypoint") !== "") entrypoint = [flags.string("entrypoint")];
  else if (flags.has("entrypoint")) entrypoint = [""];

  const { exposed, bindings } = parsePortSpecs(flags.list("publish"));
  for (const e of flags.list("expose")) {
    if (e.includes(":")) bad(`invalid port format for --expose: ${e}`);
    const { proto, port } = parseProtoPort(e);
    let range: [number, number];
    try {
      range = parseRange(port, "range");
    } catch {
      return bad(`invalid range format for --expose: ${e}, error: invalid syntax`);
    }
    for (let p = range[0]; p <= range[1]; p++) exposed[`${p}/${proto}`] ??= {};
  }

  const devices = flags.list("device").map(parseDevice);

  const envList: string[] = [];
  for (const f of flags.list("env-file")) {
    try {
      envList.push(...readKvFile(f, { fromEnv: true, env }));
    } catch (e) {
      bad((e as Error).message);
    }
  }
  for (const e of flags.list("env")) {
    if (e.startsWith("=")) bad(`invalid environment variable: ${e}`);
  }
  envList.push(...expandEnvKeepBare(flags.list("env"), env));

  const labels: string[] = [];
  for (const f of flags.list("label-file")) {
    try {
      labels.push(...readKvFile(f, { fromEnv: false }));
    } catch (e) {
      bad((e as Error).message);
    }
  }
  labels.push(...flags.list("label"));

  const pid = flags.string("pid");
  if (pid !== "" && pid !== "host" && !pid.startsWith("container:")) bad("--pid: invalid PID mode");
  const uts = flags.string("uts");
  if (uts !== "" && uts !== "host") bad("--uts: invalid UTS mode");
  const userns = flags.string("userns");
  if (userns !== "" && userns !== "host") bad("--userns: invalid USER mode");
  const cgroupns = flags.string("cgroupns");
  if (cgroupns !== "" && cgroupns !== "host" && cgroupns !== "private") bad("--cgroupns: invalid CGROUP mode");

  const restart = parseRestartPolicy(flags.string("restart"));
  const logDriver = flags.string("log-driver");
  const logOpts = kvList(flags.list("log-opt"), "log-opt");
  if (logDriver === "none" && Object.keys(logOpts).length > 0) bad(`invalid logging opts for driver ${logDriver}`);

  let health: HealthConfig | undefined;
  const hasHealth =
    flags.string("health-cmd") !== "" ||
    (flags.number("health-interval") ?? 0) !== 0 ||
    (flags.number("health-timeout") ?? 0) !== 0 ||
    (flags.number("health-start-period") ?? 0) !== 0 ||
    (flags.number("health-retries") ?? 0) !== 0 ||
    (flags.number("health-start-interval") ?? 0) !== 0;
  if (flags.bool("no-healthcheck")) {
    if (hasHealth) bad("--no-healthcheck conflicts with --health-* options");
    health = { Test: ["NONE"] };
  } else if (hasHealth) {
    const ns = (name: string) => {
      const v = flags.number(name) ?? 0;
      if (v < 0) bad(`--${name} cannot be negative`);
      return Math.round(v * 1e6);
    };
    health = {
      Interval: ns("health-interval"),
      Timeout: ns("health-timeout"),
      StartPeriod: ns("health-start-period"),
      StartInterval: ns("health-start-interval"),
      Retries: flags.number("health-retries") ?? 0,
    };
    if (health.Retries !== undefined && health.Retries < 0) bad("--health-retries cannot be negative");
    if (flags.string("health-cmd")) health.Test = ["CMD-SHELL", flags.string("health-cmd")];
  }

  const networks = [...flags.list("network"), ...flags.list("net")];
  const aliases = [...flags.list("network-alias"), ...flags.list("net-alias")];
  const networkMode = networks[0] ? networkName(networks[0]) : "";

  const hostConfig: HostConfig = {
    Binds: binds,
    ContainerIDFile: flags.string("cidfile"),
    LogConfig: { Type: logDriver, Config: logOpts },
    NetworkMode: networkMode,
    PortBindings: bindings,
    RestartPolicy: restart,
    AutoRemove: flags.bool("rm"),
    VolumeDriver: flags.string("volume-driver"),
    VolumesFrom: flags.list("volumes-from"),
    CapAdd: flags.list("cap-add"),
    CapDrop: flags.list("cap-drop"),
    CgroupnsMode: cgroupns,
    Dns: flags.list("dns"),
    DnsOptions: flags.list("dns-option"),
    DnsSearch: flags.list("dns-search"),
    ExtraHosts: flags.list("add-host").map((h) => {
      const i = h.indexOf("=");
      const j = h.indexOf(":");
      if (i < 0 && j < 0) bad(`bad format for add-host: "${h}"`);
      return i >= 0 && (j < 0 || i < j) ? `${h.slice(0, i)}:${h.slice(i + 1)}` : h;
    }),
    GroupAdd: flags.list("group-add"),
    IpcMode: flags.string("ipc"),
    Cgroup: "",
    Links: flags.list("link"),
    OomScoreAdj: flags.number("oom-score-adj", 0),
    PidMode: pid,
    Privileged: flags.bool("privileged"),
    PublishAllPorts: flags.bool("publish-all"),
    ReadonlyRootfs: flags.bool("read-only"),
    SecurityOpt: parseSecurityOpts(flags.list("security-opt")),
    StorageOpt: kvList(flags.list("storage-opt"), "storage-opt"),
    Tmpfs: tmpfs,
    UTSMode: uts,
    UsernsMode: userns,
    ShmSize: flags.number("shm-size", 0),
    Sysctls: kvList(flags.list("sysctl"), "sysctl"),
    Runtime: flags.string("runtime"),
    Isolation: flags.string("isolation"),
    Annotations: kvList(flags.list("annotation"), "annotation"),
    Mounts: flags.list("mount").map(parseMount),
    // Resources
    CpuShares: flags.number("cpu-shares", 0),
    Memory: flags.number("memory", 0),
    NanoCpus: Math.round((flags.number("cpus") ?? 0) * 1e9),
    CgroupParent: flags.string("cgroup-parent"),
    BlkioWeight: flags.number("blkio-weight", 0),
    CpuPeriod: flags.number("cpu-period", 0),
    CpuQuota: flags.number("cpu-quota", 0),
    CpuRealtimePeriod: flags.number("cpu-rt-period", 0),
    CpuRealtimeRuntime: flags.number("cpu-rt-runtime", 0),
    CpusetCpus: flags.string("cpuset-cpus"),
    CpusetMems: flags.string("cpuset-mems"),
    Devices: devices,
    DeviceCgroupRules: flags.list("device-cgroup-rule"),
    MemoryReservation: flags.number("memory-reservation", 0),
    MemorySwap: flags.number("memory-swap", 0),
    MemorySwappiness: swappiness,
    OomKillDisable: flags.bool("oom-kill-disable"),
    PidsLimit: flags.number("pids-limit", 0),
    Ulimits: flags.list("ulimit").map(parseUlimit),
    KernelMemory: flags.number("kernel-memory", 0),
  };
  if (flags.bool("rm") && restart.Name !== "no" && restart.Name !== "") bad("conflicting options: cannot specify both --restart and --rm");
  if (flags.has("init")) hostConfig.Init = flags.bool("init");

  const body: ContainerCreateBody = {
    Hostname: flags.string("hostname"),
    Domainname: flags.string("domainname"),
    User: flags.string("user"),
    AttachStdin: attachStdin,
    AttachStdout: attachStdout,
    AttachStderr: attachStderr,
    ExposedPorts: exposed,
    Tty: flags.bool("tty"),
    OpenStdin: interactive,
    StdinOnce: false,
    Env: envList,
    Cmd: cmd.length > 0 ? cmd : null,
    Image: image,
    Volumes: volumes,
    WorkingDir: flags.string("workdir"),
    Entrypoint: entrypoint ?? null,
    Labels: kvToMap(labels),
    StopSignal: flags.string("stop-signal"),
    HostConfig: hostConfig,
  };
  if (health) body.Healthcheck = health;
  if (flags.has("stop-timeout")) body.StopTimeout = flags.number("stop-timeout", 0);
  if (body.OpenStdin && body.AttachStdin) body.StdinOnce = true;
  if (options.detach) {
    body.AttachStdin = false;
    body.AttachStdout = false;
    body.AttachStderr = false;
    body.StdinOnce = false;
  }

  // Endpoint settings: aliases, addresses and the MAC go to the (first) network.
  const endpoints: Record<string, EndpointSettings> = {};
  for (const [i, n] of networks.entries()) {
    const { name, settings } = networkEndpoint(n);
    if (i === 0) {
      if (aliases.length) settings.Aliases = [...(settings.Aliases ?? []), ...aliases];
      const ip = flags.string("ip");
      const ip6 = flags.string("ip6");
      const ll = flags.list("link-local-ip");
      if (ip || ip6 || ll.length) {
        settings.IPAMConfig = { ...settings.IPAMConfig };
        if (ip) settings.IPAMConfig.IPv4Address = ip;
        if (ip6) settings.IPAMConfig.IPv6Address = ip6;
        if (ll.length) settings.IPAMConfig.LinkLocalIPs = ll;
      }
      if (mac) settings.MacAddress = mac;
    }
    endpoints[name] = settings;
  }
  if (networks.length === 0) {
    if (aliases.length) bad("network-scoped aliases are only supported for user-defined networks");
    const ip = flags.string("ip");
    if (ip || flags.string("ip6"))
      bad("user specified IP address is supported only when connecting to networks with user configured subnets");
    if (mac) body.MacAddress = mac;
  } else if (aliases.length && ["default", "bridge", "host", "none"].includes(networkMode)) {
    bad("network-scoped aliases are only supported for user-defined networks");
  }
  if (Object.keys(endpoints).length > 0) body.NetworkingConfig = { EndpointsConfig: endpoints };

  const pull = flags.string("pull") || "missing";
  if (!["always", "missing", "never"].includes(pull)) {
    bad(`invalid pull option: '${pull}': must be one of "always", "missing" or "never"`);
  }
  return {
    body,
    name: flags.string("name"),
    platform: flags.string("platform") || env.DOCKER_DEFAULT_PLATFORM || "",
    pull: pull as ContainerSpec["pull"],
    quiet: flags.bool("quiet"),
    cidfile: flags.string("cidfile"),
    autoRemove: flags.bool("rm"),
  };
}

function expandEnvKeepBare(values: readonly string[], env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  for (const v of values) {
    if (v.includes("=")) out.push(v);
    else {
      const got = expandEnv([v], env);
      out.push(got[0] ?? v);
    }
  }
  return out;
}

function networkName(spec: string): string {
  return networkEndpoint(spec).name;
}

/** `--network name` or the advanced `--network name=x,alias=y,ip=z,...` syntax. */
function networkEndpoint(spec: string): { name: string; settings: EndpointSettings } {
  const settings: EndpointSettings = {};
  if (!spec.includes("=")) return { name: spec, settings };
  let name = "";
  for (const field of spec.split(",")) {
    const i = field.indexOf("=");
    const key = i < 0 ? field : field.slice(0, i);
    const value = i < 0 ? "" : field.slice(i + 1);
    switch (key) {
      case "name":
        name = value;
        break;
      case "alias":
        settings.Aliases = [...(settings.Aliases ?? []), value];
        break;
      case "ip":
        settings.IPAMConfig = { ...settings.IPAMConfig, IPv4Address: value };
        break;
      case "ip6":
        settings.IPAMConfig = { ...settings.IPAMConfig, IPv6Address: value };
        break;
      case "mac-address":
        settings.MacAddress = value;
        break;
      case "link-local-ip":
        settings.IPAMConfig = { ...settings.IPAMConfig, LinkLocalIPs: [...(settings.IPAMConfig?.LinkLocalIPs ?? []), value] };
        break;
      case "driver-opt": {
        const j = value.indexOf("=");
        settings.DriverOpts = { ...settings.DriverOpts, [value.slice(0, j)]: value.slice(j + 1) };
        break;
      }
      default:
        bad(`invalid field key ${key}`);
    }
  }
  if (name === "") bad("network name must be specified");
  return { name, settings };
}
