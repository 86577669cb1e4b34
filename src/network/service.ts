import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  conflict,
  type Db,
  failedPrecondition,
  type Host,
  invalidArgument,
  type Logger,
  type Migration,
  messageOf,
  notFound,
  permissionDenied,
  randomId,
  KeyedLock,
  unavailable,
} from "../base/mod.ts";
import { cniExec, DEFAULT_CNI_PATH, pinNetns, unpinNetns } from "./cni.ts";
import { DnsServer, reverseName } from "./dns.ts";
import { Firewall, type FirewallState } from "./firewall.ts";
import { allocateSubnet, type Cidr, contains, firstHost, formatCidr, formatIp, overlaps, parseCidr, parseIp, subnetOf } from "./ipnet.ts";
import { legacyLinkName, linkEnv, linkHostsLine, parseLink } from "./links.ts";
import { type PortMapping, PortReserver, portMap, portRequests } from "./ports.ts";
import { hostHasIpv6 } from "./proxy.ts";
import type { EndpointSettings, IpamPool, NetworkCreateRequest, NetworkJson, NetworkSettings, PortMap } from "./types.ts";

/** Pools for the default bridge when daemon.json sets neither `bip` nor `default-address-pools`: clear of docker0 and podman. */
export const DEFAULT_BRIDGE_POOLS = [
  { base: "10.87.0.0/16", size: 16 },
  { base: "10.80.0.0/14", size: 16 },
  { base: "10.84.0.0/15", size: 16 },
  { base: "10.86.0.0/16", size: 16 },
];
/** Pools for user-defined networks (`network create` without `--subnet`). */
export const DEFAULT_ADDRESS_POOLS = [
  { base: "10.90.0.0/15", size: 24 },
  { base: "10.92.0.0/14", size: 24 },
];
/** IPv6 networks without `--subnet` get a /64 of this ULA prefix. */
export const DEFAULT_V6_POOL = { base: "fd6b:6572:7468::/48", size: 64 };
/** Never allocated: Docker's and podman's default bridges, even when they are not up right now. */
const RESERVED = ["172.17.0.0/16", "10.88.0.0/16"].map((s) => parseCidr(s));

const OPT = {
  name: "com.docker.network.bridge.name",
  mtu: "com.docker.network.driver.mtu",
  icc: "com.docker.network.bridge.enable_icc",
  masq: "com.docker.network.bridge.enable_ip_masquerade",
  hostIp: "com.docker.network.bridge.host_binding_ipv4",
  defaultBridge: "com.docker.network.bridge.default_bridge",
};

/** A network as berth stores it. */
export interface NetworkRecord {
  id: string;
  name: string;
  created: string;
  driver: "bridge" | "host" | "null";
  internal: boolean;
  attachable: boolean;
  ipv6: boolean;
  labels: Record<string, string>;
  options: Record<string, string>;
  ipamDriver: string;
  ipamOptions: Record<string, string> | null;
  pools: { subnet: string; gateway: string; ipRange?: string; aux?: Record<string, string>; implicitGateway?: boolean }[];
  /** The user gave `--subnet` (then `--ip` is allowed, as in Docker). */
  userSubnet: boolean;
  /** The Linux bridge interface (bridge driver). */
  bridge?: string;
  /** The predefined networks: `bridge`, `host`, `none`. */
  builtin?: "bridge" | "host" | "none";
}

/** A container's wish for one network: `--network-alias`, `--ip`, `--ip6`, `--mac-address`, `--link`. */
export interface EndpointRequest {
  aliases: string[];
  ipv4?: string;
  ipv6?: string;
  mac?: string;
  links?: string[];
}

/** `EndpointsConfig` entries as the API carries them (create, connect). */
export interface EndpointConfigInput {
  IPAMConfig?: { IPv4Address?: string; IPv6Address?: string } | null;
  Aliases?: string[] | null;
  Links?: string[] | null;
  MacAddress?: string;
  NetworkID?: string;
  DriverOpts?: Record<string, string> | null;
}

/**
 * What the network service needs to know about a container, taken from its record:
 * identity, `HostConfig.NetworkMode`, `NetworkingConfig.EndpointsConfig`, ports and DNS.
 */
export interface ContainerNetSpec {
  id: string;
  /** With or without the leading "/". */
  name: string;
  hostname: string;
  domainname?: string;
  /** `HostConfig.NetworkMode`: "", default, bridge, host, none, container:<ref>, or a network name/ID. */
  networkMode: string;
  endpointsConfig?: Record<string, EndpointConfigInput | null> | null;
  /** Legacy `Config.MacAddress`. */
  macAddress?: string;
  portBindings?: PortMap | null;
  publishAllPorts?: boolean;
  exposedPorts?: Record<string, unknown> | null;
  /** `HostConfig.Links`: "name:alias" (or dockerd's "/name:/me/alias"). */
  links?: string[] | null;
  /** `Config.Env`: what containers linked to this one see as `ALIAS_ENV_*`. */
  env?: string[] | null;
  dns?: string[] | null;
  dnsSearch?: string[] | null;
  dnsOptions?: string[] | null;
}

/** How the network service finds containers (API calls name them; `container:<ref>`, links). */
export interface ContainerLookup {
  /** `pid`: the running container's init process (0 when not running). */
  resolve(ref: string): (ContainerNetSpec & { running: boolean; pid?: number }) | undefined;
}

/** What `attach` gives the container service for the start. */
export interface AttachResult {
  /** The namespace to join: a pinned netns, the host's, or (`private`) a new one the runtime makes. */
  netns: { path: string } | "host" | "private";
  networkSettings: NetworkSettings;
  /** /etc/hosts lines after the localhost block: the container's own address(es) and links. */
  hosts: string[];
  resolvConf: string;
}

interface ContainerNet {
  id: string;
  name: string;
  hostname: string;
  domainname: string;
  /** "bridge" | "host" | "none" | "container:<id>" | a network ID. */
  mode: string;
  /** Network ID → request, primary first. */
  networks: Record<string, EndpointRequest>;
}

interface Endpoint {
  endpointId: string;
  ifname: string;
  ipv4: string;
  prefix4: number;
  gateway4: string;
  ipv6: string;
  prefix6: number;
  gateway6: string;
  mac: string;
}

interface Sandbox {
  id: string;
  sandboxId: string;
  /**
   * netns: a namespace pinned under the exec root, set up with CNI; none: the runtime makes the
   * namespace (loopback only) and nothing is pinned; host; container: another's namespace.
   */
  kind: "netns" | "none" | "host" | "container";
  netns?: string;
  joined?: string;
  endpoints: Record<string, Endpoint>;
  /** Endpoints being added (a crash mid-ADD is undone by a DEL at restart). */
  pending: Record<string, string>;
  ports: (PortMapping & { containerIp: string; networkId: string })[];
  exposed: Record<string, unknown>;
  dns: string[];
  /** connect events were published (a failed start publishes no disconnect either). */
  announced?: boolean;
}

const migrations: Migration[] = [
  {
    version: 1,
    sql: `CREATE TABLE networks (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, data TEXT NOT NULL);
      CREATE TABLE net_containers (id TEXT PRIMARY KEY, data TEXT NOT NULL);
      CREATE TABLE net_sandboxes (id TEXT PRIMARY KEY, data TEXT NOT NULL);`,
  },
];

/** Construction parameters of `NetworkService`. */
export interface NetworkServiceOptions {
  host: Host;
  db: Db;
  dataRoot: string;
  execRoot: string;
  log: Logger;
  /** Publishes a `network` event (create, connect, disconnect, destroy). */
  publish: (action: string, id: string, attributes: Record<string, string>) => void;
  /** daemon.json: `bip`, `default-address-pools`, `dns`, and `bridge` (the default bridge's interface name). */
  config: { bip?: string; defaultAddressPools?: { base: string; size: number }[]; dns?: string[]; bridge?: string; mtu?: number };
  cniPath?: string;
  /** iptables chain prefix; by default `BERTH` for /run/berth and `BERTH-<hash>` for other exec roots. */
  chainPrefix?: string;
  /** How often the firewall watchdog looks for removed rules (0: never). */
  firewallCheckMs?: number;
  /** Port of the DNS servers (53; tests may use another). */
  dnsPort?: number;
  /**
   * Publish ports on IPv6 too, through berthd's userland proxy (daemon.json `ipv6-proxy`, or
   * `userland-proxy`, both on by default in the daemon): a port on every address also listens
   * on `[::]`, and `-p [::1]:P:C` works. Off here unless asked for.
   */
  ipv6Proxy?: boolean;
  /** Writes a kernel setting under /proc/sys (unit tests record instead). */
  sysctl?: (path: string, value: string) => Promise<void>;
}

function shortHash(s: string): string {
  return createHash("sha256").update(s).digest("hex").slice(0, 6);
}

function hostResolvConf(): string {
  try {
    return readFileSync("/etc/resolv.conf", "utf8");
  } catch {
    return "";
  }
}

function resolvParts(text: string): { nameservers: string[]; search: string[]; options: string[] } {
  const out = { nameservers: [] as string[], search: [] as string[], options: [] as string[] };
  for (const l of text.split("\n")) {
    const f = l.trim().split(/\s+/);
    if (f[0] === "nameserver" && f[1]) out.nameservers.push(f[1]);
    else if ((f[0] === "search" || f[0] === "domain") && f.length > 1) out.search = f.slice(1);
    else if (f[0] === "options") out.options.push(...f.slice(1));
  }
  return out;
}

const isLoopback = (ip: string) => ip.startsWith("127.") || ip === "::1";

/** Pinned namespaces kept ready for the next starts (see `#takeSpare`). */
const SPARE_NAMESPACES = 1;
/** How long after a start took a spare its replacement is made (not during that start). */
const SPARE_REFILL_MS = 250;
/** The same after an exit, when the machine is between containers. */
const SPARE_AFTER_EXIT_MS = 5;

function v6Available(): boolean {
  try {
    return existsSync("/proc/net/if_inet6") && readFileSync("/proc/sys/net/ipv6/conf/all/disable_ipv6", "utf8").trim() === "0";
  } catch {
    return false;
  }
}

function randomMac(): string {
  const b = randomBytes(6);
  // Locally administered, unicast; Docker's prefix style.
  b[0] = 0x02;
  b[1] = 0x42;
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
}

/**
 * Networks and container network namespaces (see mod.ts for the model). One instance per
 * berthd; every method is safe to call concurrently (per-container and per-network locks).
 */
export class NetworkService {
  #host: Host;
  #db: Db;
  #log: Logger;
  #publish: NetworkServiceOptions["publish"];
  #cfg: NetworkServiceOptions["config"];
  #cniPath: string;
  #netnsDir: string;
  #ipamDir: string;
  #execRoot: string;
  #dnsPort: number;
  #checkMs: number;
  #sysctl: (path: string, value: string) => Promise<void>;
  #firewall: Firewall;
  #ports = new PortReserver();
  /** `ipv6Proxy` as configured; `#v6` is it and the host has IPv6 (known after `init`). */
  #v6Proxy: boolean;
  #v6 = false;
  #networks = new Map<string, NetworkRecord>();
  #containers = new Map<string, ContainerNet>();
  #sandboxes = new Map<string, Sandbox>();
  #dns = new Map<string, DnsServer>();
  #lock = new KeyedLock();
  /** Teardowns running in the background (`detach`/`unregister` with `background`). */
  #pending = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #started = false;
  /** Spare pinned namespaces (loopback up), and the making of new ones. */
  #spares: string[] = [];
  #spareTimer: NodeJS.Timeout | undefined;
  #spareDue = 0;
  #refilling: Promise<void> | undefined;
  #sparesOff = true;

  /** Finds containers by name or ID (set by the daemon). */
  containers: ContainerLookup = { resolve: () => undefined };
  /** Called after connect/disconnect changed a running container's settings (the container service updates its record, /etc/hosts). */
  onChange: (containerId: string, settings: NetworkSettings, hosts: string[], resolvConf: string) => void = () => {};

  constructor(o: NetworkServiceOptions) {
    this.#host = o.host;
    this.#db = o.db;
    this.#log = o.log.child({ module: "network" });
    this.#publish = o.publish;
    this.#cfg = o.config;
    this.#cniPath = o.cniPath ?? DEFAULT_CNI_PATH;
    this.#execRoot = o.execRoot;
    this.#netnsDir = join(o.execRoot, "netns");
    this.#ipamDir = join(o.dataRoot, "network", "ipam");
    this.#dnsPort = o.dnsPort ?? 53;
    this.#checkMs = o.firewallCheckMs ?? 5000;
    this.#v6Proxy = o.ipv6Proxy === true;
    this.#sysctl = o.sysctl ?? ((path, value) => writeFile(join("/proc/sys", path), value));
    const prefix = o.chainPrefix ?? (o.execRoot.replace(/\/+$/, "") === "/run/berth" ? "BERTH" : `BERTH-${shortHash(o.execRoot)}`);
    this.#firewall = new Firewall(o.host, this.#log, prefix);
    o.db.migrate("networks", migrations);
    for (const r of o.db.all<{ data: string }>("SELECT data FROM networks")) {
      const n = JSON.parse(r.data) as NetworkRecord;
      this.#networks.set(n.id, n);
    }
    for (const r of o.db.all<{ data: string }>("SELECT data FROM net_containers")) {
      const c = JSON.parse(r.data) as ContainerNet;
      this.#containers.set(c.id, c);
    }
    for (const r of o.db.all<{ data: string }>("SELECT data FROM net_sandboxes")) {
      const s = JSON.parse(r.data) as Sandbox;
      this.#sandboxes.set(s.id, s);
    }
  }

  /** The firewall of this instance (tests call `check()`). */
  get firewall(): Firewall {
    return this.#firewall;
  }

  /** The default bridge's interface name. */
  get defaultBridge(): string {
    return this.#cfg.bridge || (this.#execRoot.replace(/\/+$/, "") === "/run/berth" ? "berth0" : `berth${shortHash(this.#execRoot)}`);
  }

  async #locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return await this.#lock.run(key, fn);
  }

  // ---------------------------------------------------------------- persistence

  #saveNetwork(n: NetworkRecord): void {
    this.#db.run(
      "INSERT INTO networks (id, name, data) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name, data = excluded.data",
      n.id,
      n.name,
      JSON.stringify(n),
    );
    this.#networks.set(n.id, n);
  }

  #saveContainer(c: ContainerNet): void {
    this.#db.run(
      "INSERT INTO net_containers (id, data) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET data = excluded.data",
      c.id,
      JSON.stringify(c),
    );
    this.#containers.set(c.id, c);
  }

  #saveSandbox(s: Sandbox): void {
    this.#db.run(
      "INSERT INTO net_sandboxes (id, data) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET data = excluded.data",
      s.id,
      JSON.stringify(s),
    );
    this.#sandboxes.set(s.id, s);
  }

  #deleteSandbox(id: string): void {
    this.#db.run("DELETE FROM net_sandboxes WHERE id = ?", id);
    this.#sandboxes.delete(id);
  }

  // ---------------------------------------------------------------- start and stop

  /**
   * Creates or restores the predefined networks (`bridge`, `host`, `none`), brings every bridge
   * up, binds the published ports of containers that kept running, writes the firewall rules
   * from the stored state (which also drops rules of containers gone during a crash), starts
   * the DNS servers and the firewall watchdog. Call before the containers are restored.
   */
  async init(): Promise<void> {
    await mkdir(this.#netnsDir, { recursive: true, mode: 0o711 });
    await mkdir(this.#ipamDir, { recursive: true, mode: 0o700 });
    await this.#ensurePredefined();
    for (const n of this.#networks.values()) {
      if (n.driver !== "bridge") continue;
      await this.#ensureBridge(n).catch((e: unknown) => this.#log.error("cannot set up bridge", { network: n.name, error: messageOf(e) }));
    }
    this.#v6 = this.#v6Proxy && (await hostHasIpv6());
    for (const s of this.#sandboxes.values()) {
      // Live restore: IPv6 ports are proxies in berthd, reopened here (dropped when the proxy is off now).
      if (!this.#v6 && s.ports.some((p) => p.hostIp.includes(":"))) {
        s.ports = s.ports.filter((p) => !p.hostIp.includes(":"));
        this.#saveSandbox(s);
      }
      for (const p of s.ports) {
        await this.#ports
          .reserve(p)
          .catch((e: unknown) => this.#log.warn("cannot bind published port again", { container: s.id, error: messageOf(e) }));
      }
    }
    await this.#applyFirewall().catch((e: unknown) => this.#log.error("cannot write firewall rules", { error: messageOf(e) }));
    for (const n of this.#networks.values()) await this.#startDns(n);
    if (this.#checkMs > 0) {
      this.#timer = setInterval(() => {
        void this.#firewall.check().catch((e: unknown) => this.#log.warn("firewall check failed", { error: messageOf(e) }));
      }, this.#checkMs);
      this.#timer.unref();
    }
    this.#started = true;
  }

  /**
   * After the containers are restored: tears down the network of every container that is not
   * running any more (it exited while berthd was down), and removes pinned namespaces and IP
   * reservations nothing refers to (a crash between two steps of a start).
   */
  async reconcile(isRunning: (containerId: string) => boolean): Promise<void> {
    for (const s of [...this.#sandboxes.values()]) {
      if (!isRunning(s.id))
        await this.detach(s.id, { exited: true }).catch((e: unknown) =>
          this.#log.warn("cleanup failed", { container: s.id, error: messageOf(e) }),
        );
    }
    const inUse = new Set([...this.#sandboxes.values()].map((s) => s.netns).filter(Boolean));
    for (const f of await readdir(this.#netnsDir).catch(() => [] as string[])) {
      const p = join(this.#netnsDir, f);
      if (!inUse.has(p) && !this.#spares.includes(p)) await unpinNetns(this.#host, p).catch(() => {});
    }
    for (const netId of await readdir(this.#ipamDir).catch(() => [] as string[])) {
      const dir = join(this.#ipamDir, netId);
      if (!this.#networks.has(netId)) {
        await rm(dir, { recursive: true, force: true });
        continue;
      }
      for (const f of await readdir(dir).catch(() => [] as string[])) {
        if (f.startsWith("last_reserved") || f === "lock") continue;
        const owner = (await readFile(join(dir, f), "utf8").catch(() => "")).split(/\r?\n/)[0]?.trim() ?? "";
        if (owner && !this.#sandboxes.get(owner)?.endpoints[netId] && !this.#sandboxes.get(owner)?.pending[netId])
          await rm(join(dir, f), { force: true });
      }
    }
    this.#sparesOff = false;
    this.#refillSoon(0);
  }

  /**
   * A pinned namespace with loopback up for a start, made earlier, or undefined (the start pins
   * its own): pinning is two process spawns, the longest step before runc can create the
   * container. Its replacement is made a little later, outside the start that took it.
   */
  #takeSpare(): string | undefined {
    let p: string | undefined;
    while ((p = this.#spares.pop()) !== undefined && !existsSync(p)) {}
    this.#refillSoon(SPARE_REFILL_MS);
    return p;
  }

  #refillSoon(ms: number): void {
    if (this.#sparesOff || this.#refilling || this.#spares.length >= SPARE_NAMESPACES) return;
    const due = Date.now() + ms;
    if (this.#spareTimer) {
      if (this.#spareDue <= due) return;
      clearTimeout(this.#spareTimer);
    }
    this.#spareDue = due;
    this.#spareTimer = setTimeout(() => {
      this.#spareTimer = undefined;
      this.#refilling = this.#refill().finally(() => {
        this.#refilling = undefined;
      });
    }, ms);
    this.#spareTimer.unref();
  }

  async #refill(): Promise<void> {
    while (!this.#sparesOff && this.#spares.length < SPARE_NAMESPACES) {
      const path = join(this.#netnsDir, `spare-${randomBytes(6).toString("hex")}`);
      try {
        await pinNetns(this.#host, path);
      } catch (e) {
        this.#log.debug("cannot pin a spare network namespace", { error: messageOf(e) });
        return;
      }
      if (this.#sparesOff) {
        await unpinNetns(this.#host, path).catch(() => {});
        return;
      }
      this.#spares.push(path);
    }
  }

  /**
   * Stops the DNS servers and the watchdog and closes the held ports. With containers still
   * running (live restore) rules and bridges stay; with none, berth removes its rules and
   * bridges, leaving the host as it found it (they come back at the next start).
   */
  async shutdown(): Promise<void> {
    this.#sparesOff = true;
    if (this.#spareTimer) clearTimeout(this.#spareTimer);
    this.#spareTimer = undefined;
    await this.#refilling;
    for (const p of this.#spares.splice(0)) await unpinNetns(this.#host, p).catch(() => {});
    await this.settle();
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const d of this.#dns.values()) d.stop();
    this.#dns.clear();
    this.#ports.releaseAll();
    if (this.#started && this.#sandboxes.size === 0) {
      await this.#firewall.removeAll().catch(() => {});
      for (const n of this.#networks.values()) if (n.bridge) await this.#deleteBridge(n.bridge);
    }
    this.#started = false;
  }

  async #ensurePredefined(): Promise<void> {
    const byBuiltin = (b: string) => [...this.#networks.values()].find((n) => n.builtin === b);
    const base = (name: string, driver: NetworkRecord["driver"]): NetworkRecord => ({
      id: randomId(),
      name,
      created: new Date().toISOString(),
      driver,
      internal: false,
      attachable: false,
      ipv6: false,
      labels: {},
      options: {},
      ipamDriver: "default",
      ipamOptions: null,
      pools: [],
      userSubnet: false,
    });
    if (!byBuiltin("host")) this.#saveNetwork({ ...base("host", "host"), builtin: "host" });
    if (!byBuiltin("none")) this.#saveNetwork({ ...base("none", "null"), builtin: "none" });
    let br = byBuiltin("bridge");
    const inUse = br && [...this.#sandboxes.values()].some((s) => br && s.endpoints[br.id]);
    let pool: { subnet: string; gateway: string } | undefined;
    if (this.#cfg.bip) {
      const c = parseCidr(this.#cfg.bip);
      pool = { subnet: formatCidr(subnetOf(c)), gateway: formatIp(c.family, c.addr) };
    } else if (br?.pools[0] && !this.#cfg.defaultAddressPools?.length) {
      pool = br.pools[0];
    } else if (br?.pools[0] && inUse) {
      pool = br.pools[0];
    } else {
      const sub = allocateSubnet(
        this.#cfg.defaultAddressPools?.length ? this.#cfg.defaultAddressPools : DEFAULT_BRIDGE_POOLS,
        await this.#takenSubnets(br?.id),
      );
      if (!sub) throw failedPrecondition("could not find an available, non-overlapping IPv4 address pool for the default bridge");
      pool = { subnet: formatCidr(sub), gateway: formatIp(4, firstHost(sub)) };
    }
    const bridge = this.defaultBridge;
    if (br && inUse && (br.pools[0]?.subnet !== pool.subnet || br.bridge !== bridge)) {
      this.#log.warn("default bridge settings changed while containers use it; keeping the old ones until they stop");
      return;
    }
    br = {
      ...(br ?? { ...base("bridge", "bridge"), builtin: "bridge" as const }),
      pools: [pool],
      bridge,
      options: {
        [OPT.defaultBridge]: "true",
        [OPT.icc]: "true",
        [OPT.masq]: "true",
        [OPT.hostIp]: "0.0.0.0",
        [OPT.name]: bridge,
        [OPT.mtu]: String(this.#cfg.mtu ?? 1500),
      },
    };
    this.#saveNetwork(br);
  }

  /** Subnets in use: berth's networks (but `except`), the host's routes and addresses, Docker's and podman's defaults. */
  async #takenSubnets(except?: string): Promise<Cidr[]> {
    const out: Cidr[] = [...RESERVED];
    const ours = new Set<string>();
    for (const n of this.#networks.values()) {
      if (n.bridge) ours.add(n.bridge);
      if (n.id === except) continue;
      for (const p of n.pools) out.push(parseCidr(p.subnet));
    }
    for (const args of [
      ["-j", "route", "show", "table", "all"],
      ["-j", "-6", "route", "show", "table", "all"],
    ]) {
      const r0 = await this.#host.run("ip", args, { allowFailure: true }).catch(() => undefined);
      const text = r0?.code === 0 ? r0.stdout : "";
      for (const r of safeJson<{ dst?: string; dev?: string }[]>(text) ?? []) {
        if (!r.dst || r.dst === "default" || (r.dev && ours.has(r.dev))) continue;
        const dst = r.dst.includes("/") ? r.dst : `${r.dst}/${r.dst.includes(":") ? 128 : 32}`;
        try {
          const c = parseCidr(dst);
          if (c.prefix > 0) out.push(c);
        } catch {
          // broadcast, multicast or other non-prefix entries
        }
      }
    }
    return out;
  }

  // ---------------------------------------------------------------- bridges

  async #ensureBridge(n: NetworkRecord): Promise<void> {
    const br = n.bridge;
    if (!br) return;
    const ip = this.#host;
    const show = await ip.run("ip", ["-j", "addr", "show", "dev", br], { allowFailure: true });
    if (show.code !== 0) {
      // The link's options go before `type`: what follows it is the bridge driver's own.
      const args = ["link", "add", "name", br];
      const mtu = n.options[OPT.mtu];
      if (mtu && mtu !== "1500") args.push("mtu", mtu);
      args.push("type", "bridge");
      await ip.run("ip", args);
    }
    const have = new Set<string>();
    for (const l of safeJson<{ addr_info?: { local: string; prefixlen: number }[] }[]>(show.stdout) ?? []) {
      for (const a of l.addr_info ?? []) have.add(`${a.local}/${a.prefixlen}`);
    }
    for (const p of n.pools) {
      const sub = parseCidr(p.subnet);
      const want = `${p.gateway}/${sub.prefix}`;
      if (have.has(want)) continue;
      if (sub.family === 6) await this.#sysctl(`net/ipv6/conf/${br}/disable_ipv6`, "0").catch(() => {});
      await ip.run("ip", ["addr", "add", want, "dev", br, ...(sub.family === 6 ? ["nodad"] : [])]);
    }
    await ip.run("ip", ["link", "set", br, "up"]);
    // Lets `curl 127.0.0.1:PORT` reach a published port (OUTPUT DNAT to the bridge); the raw
    // table drops 127.0.0.0/8 arriving on the bridge so that this does not open the reverse.
    await this.#sysctl(`net/ipv4/conf/${br}/route_localnet`, "1").catch((e: unknown) =>
      this.#log.warn("cannot enable route_localnet", { bridge: br, error: messageOf(e) }),
    );
    await this.#sysctl("net/ipv4/ip_forward", "1").catch(() => {});
    if (n.pools.some((p) => p.subnet.includes(":"))) await this.#sysctl("net/ipv6/conf/all/forwarding", "1").catch(() => {});
  }

  async #deleteBridge(br: string): Promise<void> {
    await this.#host.run("ip", ["link", "del", br], { allowFailure: true }).catch(() => {});
  }

  async #applyFirewall(): Promise<void> {
    const state: FirewallState = { bridges: [], ports: [] };
    for (const n of this.#networks.values()) {
      if (n.driver !== "bridge" || !n.bridge) continue;
      state.bridges.push({
        bridge: n.bridge,
        subnets: n.pools.map((p) => parseCidr(p.subnet)),
        internal: n.internal,
        icc: n.options[OPT.icc] !== "false",
        masquerade: n.options[OPT.masq] !== "false",
      });
    }
    for (const s of this.#sandboxes.values()) {
      for (const p of s.ports) {
        if (p.hostIp.includes(":")) continue; // IPv6: berthd's proxy, no rule
        state.ports.push({
          proto: p.proto,
          hostIp: p.hostIp,
          hostPort: p.hostPort,
          containerIp: p.containerIp,
          containerPort: p.containerPort,
        });
      }
    }
    // Most container starts and stops publish nothing: when the rules would not change, skip the
    // iptables-restore (the watchdog still puts back rules someone else removed).
    const key = JSON.stringify(state, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
    if (key === this.#lastFirewall) return;
    await this.#firewall.apply(state);
    this.#lastFirewall = key;
  }

  #lastFirewall: string | undefined;

  // ---------------------------------------------------------------- DNS

  async #startDns(n: NetworkRecord): Promise<void> {
    if (n.driver !== "bridge" || n.builtin || this.#dns.has(n.id)) return;
    const addrs = n.pools.map((p) => p.gateway).filter(Boolean);
    if (!addrs.length) return;
    const subnets = n.pools.map((p) => parseCidr(p.subnet));
    const srv = new DnsServer(
      addrs,
      {
        allowed: (ip) => {
          const a = parseIp(ip.replace(/^::ffff:/, ""));
          return subnets.some((s) => contains(s, a.family, a.value));
        },
        lookup: (name, client) => this.#lookup(n.id, name, client),
        reverse: (name) => this.#reverse(n.id, name),
        upstreams: (ip) => (n.internal ? [] : this.#upstreams(ip)),
      },
      this.#log,
      this.#dnsPort,
    );
    try {
      await srv.start();
      this.#dns.set(n.id, srv);
    } catch (e) {
      this.#log.warn("cannot start the DNS server of a network; names will not resolve", { network: n.name, error: messageOf(e) });
    }
  }

  #dnsNames(c: ContainerNet, req: EndpointRequest | undefined): string[] {
    const names = [c.name, ...(req?.aliases ?? []), c.id.slice(0, 12)];
    if (c.hostname) names.push(c.hostname);
    return [...new Set(names.filter(Boolean))];
  }

  /**
   * A name asked of network `netId`'s server. The asking container (known by its source
   * address) may be on other user-defined networks too: as with dockerd's embedded DNS, names
   * on each of its networks resolve, the server's own network first, and on each network its
   * `--link target:alias` aliases mean the target, for it alone. A client berth does not know
   * gets the names of `netId` only.
   */
  #lookup(netId: string, q: string, clientIp?: string): { v4: string[]; v6: string[] } | undefined {
    const client = clientIp?.replace(/^::ffff:/, "");
    const sb = client
      ? [...this.#sandboxes.values()].find((s) => s.endpoints[netId]?.ipv4 === client || s.endpoints[netId]?.ipv6 === client)
      : undefined;
    const me = sb ? this.#containers.get(sb.id) : undefined;
    const nets = [netId, ...Object.keys(sb?.endpoints ?? {}).filter((id) => id !== netId && !this.#networks.get(id)?.builtin)];
    for (const id of nets) {
      const net = this.#networks.get(id);
      if (!net) continue;
      const suffix = `.${net.name.toLowerCase()}`;
      let name = q.endsWith(suffix) ? q.slice(0, -suffix.length) : q;
      const link = me?.networks[id]?.links?.map(parseLink).find((l) => l.alias.toLowerCase() === name);
      if (link) name = link.target.toLowerCase();
      const hit = this.#lookupIn(id, name);
      if (hit) return hit;
    }
    return undefined;
  }

  /** The addresses on network `netId` of the running containers that answer to `name`. */
  #lookupIn(netId: string, name: string): { v4: string[]; v6: string[] } | undefined {
    const v4: string[] = [];
    const v6: string[] = [];
    let found = false;
    for (const s of this.#sandboxes.values()) {
      const ep = s.endpoints[netId];
      const c = this.#containers.get(s.id);
      if (!ep || !c) continue;
      if (!this.#dnsNames(c, c.networks[netId]).some((x) => x.toLowerCase() === name)) continue;
      found = true;
      if (ep.ipv4) v4.push(ep.ipv4);
      if (ep.ipv6) v6.push(ep.ipv6);
    }
    return found ? { v4, v6 } : undefined;
  }

  #reverse(netId: string, q: string): string | undefined {
    const net = this.#networks.get(netId);
    for (const s of this.#sandboxes.values()) {
      const ep = s.endpoints[netId];
      const c = this.#containers.get(s.id);
      if (!ep || !c || !net) continue;
      for (const ip of [ep.ipv4, ep.ipv6]) if (ip && reverseName(ip) === q) return `${c.name}.${net.name}`;
    }
    return undefined;
  }

  #upstreams(clientIp: string): string[] {
    for (const s of this.#sandboxes.values()) {
      if (s.dns.length && Object.values(s.endpoints).some((e) => e.ipv4 === clientIp || e.ipv6 === clientIp)) return s.dns;
    }
    if (this.#cfg.dns?.length) return this.#cfg.dns;
    const ns = resolvParts(hostResolvConf()).nameservers;
    return ns.length ? ns : ["8.8.8.8", "8.8.4.4"];
  }

  // ---------------------------------------------------------------- network API

  /** Finds a network by full ID, name, or unique ID prefix; throws `network x not found`. */
  get(ref: string): NetworkRecord {
    const n = this.find(ref);
    if (!n) throw notFound(`network ${ref} not found`);
    return n;
  }

  find(ref: string): NetworkRecord | undefined {
    if (!ref) return undefined;
    const exact = this.#networks.get(ref);
    if (exact) return exact;
    for (const n of this.#networks.values()) if (n.name === ref) return n;
    if (/^[a-f0-9]+$/.test(ref)) {
      const m = [...this.#networks.values()].filter((n) => n.id.startsWith(ref));
      if (m.length > 1) throw invalidArgument(`network ${ref} is ambiguous (${m.length} matches found on ID prefix)`);
      return m[0];
    }
    return undefined;
  }

  /** Whether a network name or ID exists (container create validation). */
  exists(ref: string): boolean {
    try {
      return this.find(ref) !== undefined;
    } catch {
      return false;
    }
  }

  /** POST /networks/create */
  async create(body: NetworkCreateRequest): Promise<{ Id: string; Warning: string }> {
    if (!body || typeof body !== "object") throw invalidArgument("network create: missing body");
    const name = body.Name ?? "";
    if (!name) throw invalidArgument("network name must not be empty");
    // dockerd takes any name (it is only a label: bridges, addresses and rules go by the ID), but
    // control characters would garble every listing.
    if (/[\u0000-\u001f\u007f]/.test(name)) throw invalidArgument(`invalid network name ${JSON.stringify(name)}`);
    return await this.#locked("networks", async () => {
      if ([...this.#networks.values()].some((n) => n.name === name)) throw conflict(`network with name ${name} already exists`);
      const driver = body.Driver || "bridge";
      if (driver === "host" || driver === "null") throw permissionDenied(`only one instance of "${driver}" network is allowed`);
      if (driver === "overlay")
        throw unavailable(
          'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.',
        );
      if (driver !== "bridge") throw notFound(`plugin "${driver}" not found`);
      if (body.IPAM?.Driver && body.IPAM.Driver !== "default") throw notFound(`plugin "${body.IPAM.Driver}" not found`);
      if (body.ConfigOnly || body.ConfigFrom?.Network) throw invalidArgument("config-only networks are not supported");
      const id = randomId();
      const options = { ...(body.Options ?? {}) };
      const bridge = options[OPT.name] || `br-${id.slice(0, 12)}`;
      if (bridge.length > 15 || !/^[a-zA-Z0-9_.-]+$/.test(bridge)) throw invalidArgument(`invalid bridge name "${bridge}"`);
      if ([...this.#networks.values()].some((n) => n.bridge === bridge))
        throw conflict(`bridge name ${bridge} is already used by another network`);
      for (const k of [OPT.icc, OPT.masq])
        if (options[k] !== undefined && !["true", "false"].includes(options[k] ?? ""))
          throw invalidArgument(`invalid value for ${k}: ${options[k]}`);
      if (options[OPT.mtu] !== undefined && !/^\d{3,5}$/.test(options[OPT.mtu] ?? ""))
        throw invalidArgument(`invalid MTU: ${options[OPT.mtu]}`);
      if (options[OPT.hostIp]) parseIp(options[OPT.hostIp] ?? "");
      const taken = await this.#takenSubnets();
      const pools: NetworkRecord["pools"] = [];
      let v6 = body.EnableIPv6 === true;
      for (const p of body.IPAM?.Config ?? []) {
        if (!p.Subnet) {
          if (p.Gateway || p.IPRange) throw invalidArgument("a gateway or an IP range needs a subnet");
          continue;
        }
        let sub: Cidr;
        try {
          sub = parseCidr(p.Subnet, { strict: true });
        } catch (e) {
          const m = messageOf(e);
          throw invalidArgument(m.startsWith("invalid subnet") ? m : `Invalid subnet ${p.Subnet} : ${m}`);
        }
        if (sub.family === 6) v6 = true;
        if (sub.family === 4 && sub.prefix > 30) throw invalidArgument(`invalid subnet ${p.Subnet}: too small`);
        const clash = [...this.#networks.values()].find((n) => n.pools.some((q) => overlaps(parseCidr(q.subnet), sub)));
        if (clash) throw conflict(`invalid pool request: Pool overlaps with other one on this address space (network ${clash.name})`);
        if (pools.some((q) => overlaps(parseCidr(q.subnet), sub)))
          throw conflict("invalid pool request: Pool overlaps with other one on this address space");
        let gw = formatIp(sub.family, firstHost(sub));
        if (p.Gateway) {
          const g = parseIp(p.Gateway);
          if (!contains(sub, g.family, g.value)) throw invalidArgument(`no matching subnet for gateway ${p.Gateway}`);
          gw = formatIp(g.family, g.value);
        }
        const pool: NetworkRecord["pools"][number] = { subnet: formatCidr(sub), gateway: gw };
        // As dockerd: a subnet given without a gateway shows none in inspect (the first address is used).
        if (!p.Gateway) pool.implicitGateway = true;
        if (p.IPRange) {
          const r = parseCidr(p.IPRange, { strict: true });
          if (r.family !== sub.family || r.prefix < sub.prefix || !contains(sub, r.family, r.addr))
            throw invalidArgument(`no matching subnet for range ${p.IPRange}`);
          pool.ipRange = formatCidr(r);
        }
        if (p.AuxiliaryAddresses && Object.keys(p.AuxiliaryAddresses).length) pool.aux = { ...p.AuxiliaryAddresses };
        pools.push(pool);
      }
      const userSubnet = pools.length > 0;
      if (v6 && !v6Available())
        throw invalidArgument("IPv6 is not available on this host: enable it (sysctl net.ipv6.conf.all.disable_ipv6=0) or drop --ipv6");
      if (!pools.some((p) => !p.subnet.includes(":"))) {
        const sub = allocateSubnet(this.#cfg.defaultAddressPools?.length ? this.#cfg.defaultAddressPools : DEFAULT_ADDRESS_POOLS, [
          ...taken,
          ...pools.map((p) => parseCidr(p.subnet)),
        ]);
        if (!sub)
          throw failedPrecondition(
            "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network",
          );
        pools.unshift({ subnet: formatCidr(sub), gateway: formatIp(4, firstHost(sub)) });
      }
      if (v6 && !pools.some((p) => p.subnet.includes(":"))) {
        const sub = allocateSubnet([DEFAULT_V6_POOL], taken);
        if (!sub) throw failedPrecondition("could not find an available, non-overlapping IPv6 address pool");
        pools.push({ subnet: formatCidr(sub), gateway: formatIp(6, firstHost(sub)) });
      }
      const n: NetworkRecord = {
        id,
        name,
        created: new Date().toISOString(),
        driver: "bridge",
        internal: body.Internal === true,
        attachable: body.Attachable === true,
        ipv6: v6,
        labels: { ...(body.Labels ?? {}) },
        options,
        ipamDriver: "default",
        ipamOptions: body.IPAM?.Options ?? null,
        pools,
        userSubnet,
        bridge,
      };
      this.#saveNetwork(n);
      try {
        await this.#ensureBridge(n);
        await this.#applyFirewall();
        await this.#startDns(n);
      } catch (e) {
        this.#dns.get(id)?.stop();
        this.#dns.delete(id);
        this.#db.run("DELETE FROM networks WHERE id = ?", id);
        this.#networks.delete(id);
        await this.#deleteBridge(bridge);
        await this.#applyFirewall().catch(() => {});
        throw e;
      }
      this.#publish("create", id, { name, type: "bridge" });
      return { Id: id, Warning: "" };
    });
  }

  /** The swagger Network object; `Containers` lists running members. */
  inspect(ref: string): NetworkJson {
    return this.#json(this.get(ref), true);
  }

  #json(n: NetworkRecord, withContainers: boolean): NetworkJson {
    const containers: NetworkJson["Containers"] = {};
    if (withContainers) {
      for (const s of this.#sandboxes.values()) {
        const c = this.#containers.get(s.id);
        const ep = s.endpoints[n.id];
        if (ep) {
          containers[s.id] = {
            Name: c?.name ?? "",
            EndpointID: ep.endpointId,
            MacAddress: ep.mac,
            IPv4Address: ep.ipv4 ? `${ep.ipv4}/${ep.prefix4}` : "",
            IPv6Address: ep.ipv6 ? `${ep.ipv6}/${ep.prefix6}` : "",
          };
        } else if ((n.builtin === "host" && s.kind === "host") || (n.builtin === "none" && c?.mode === "none")) {
          containers[s.id] = { Name: c?.name ?? "", EndpointID: s.sandboxId, MacAddress: "", IPv4Address: "", IPv6Address: "" };
        }
      }
    }
    const config: IpamPool[] = n.pools.map((p) => ({
      Subnet: p.subnet,
      ...(p.implicitGateway ? {} : { Gateway: p.gateway }),
      ...(p.ipRange ? { IPRange: p.ipRange } : {}),
      ...(p.aux ? { AuxiliaryAddresses: p.aux } : {}),
    }));
    return {
      Name: n.name,
      Id: n.id,
      Created: n.created,
      Scope: "local",
      Driver: n.driver,
      EnableIPv4: n.driver === "bridge",
      EnableIPv6: n.ipv6,
      IPAM: { Driver: n.ipamDriver, Options: n.ipamOptions, Config: config },
      Internal: n.internal,
      Attachable: n.attachable,
      Ingress: false,
      ConfigFrom: { Network: "" },
      ConfigOnly: false,
      Containers: containers,
      Options: { ...n.options },
      Labels: { ...n.labels },
    };
  }

  #inUse(netId: string): string[] {
    return [...this.#sandboxes.values()].filter((s) => s.endpoints[netId] || s.pending[netId]).map((s) => s.id);
  }

  /** GET /networks with Docker's filters: driver, id, label, name, scope, type, dangling. */
  list(filters: Map<string, string[]> = new Map()): NetworkJson[] {
    for (const k of filters.keys())
      if (!["driver", "id", "label", "name", "scope", "type", "dangling"].includes(k)) throw invalidArgument(`invalid filter '${k}'`);
    const any = (k: string, f: (v: string) => boolean) => {
      const vs = filters.get(k);
      return !vs || vs.length === 0 || vs.some(f);
    };
    const out: NetworkJson[] = [];
    for (const n of this.#networks.values()) {
      if (!any("driver", (v) => v === n.driver)) continue;
      if (!any("id", (v) => n.id.startsWith(v))) continue;
      if (!any("name", (v) => n.name.includes(v))) continue;
      if (!any("scope", (v) => v === "local")) continue;
      if (
        !any("type", (v) =>
          v === "builtin"
            ? !!n.builtin
            : v === "custom"
              ? !n.builtin
              : (() => {
                  throw invalidArgument(`invalid filter: 'type'='${v}'`);
                })(),
        )
      )
        continue;
      if (!any("dangling", (v) => (v === "true" || v === "1") === (!n.builtin && this.#inUse(n.id).length === 0))) continue;
      const labels = filters.get("label") ?? [];
      if (!labels.every((f) => (f.includes("=") ? n.labels[f.slice(0, f.indexOf("="))] === f.slice(f.indexOf("=") + 1) : f in n.labels)))
        continue;
      out.push(this.#json(n, true));
    }
    return out.sort((a, b) => a.Name.localeCompare(b.Name));
  }

  /** DELETE /networks/{id} */
  async remove(ref: string): Promise<void> {
    await this.settle();
    const n0 = this.get(ref);
    await this.#locked("networks", async () => {
      const n = this.get(n0.id);
      if (n.builtin) throw permissionDenied(`${n.name} is a pre-defined network and cannot be removed`);
      if (this.#inUse(n.id).length) throw conflict(`error while removing network: network ${n.name} id ${n.id} has active endpoints`);
      this.#dns.get(n.id)?.stop();
      this.#dns.delete(n.id);
      this.#db.run("DELETE FROM networks WHERE id = ?", n.id);
      this.#networks.delete(n.id);
      if (n.bridge) await this.#deleteBridge(n.bridge);
      await rm(join(this.#ipamDir, n.id), { recursive: true, force: true });
      await this.#applyFirewall().catch((e: unknown) => this.#log.warn("firewall update failed", { error: messageOf(e) }));
      this.#publish("destroy", n.id, { name: n.name, type: n.driver });
    });
  }

  /** POST /networks/prune: removes user-defined networks without endpoints; filters `until`, `label`, `label!`. */
  async prune(filters: Map<string, string[]> = new Map()): Promise<{ NetworksDeleted: string[] }> {
    await this.settle();
    for (const k of filters.keys()) if (!["until", "label", "label!"].includes(k)) throw invalidArgument(`invalid filter '${k}'`);
    const until = filters.get("until")?.[0];
    const untilMs = until ? (/^\d+(\.\d+)?$/.test(until) ? Number(until) * 1000 : Date.now() - durationMs(until)) : undefined;
    const labelOk = (n: NetworkRecord) =>
      (filters.get("label") ?? []).every((f) =>
        f.includes("=") ? n.labels[f.slice(0, f.indexOf("="))] === f.slice(f.indexOf("=") + 1) : f in n.labels,
      ) &&
      (filters.get("label!") ?? []).every(
        (f) => !(f.includes("=") ? n.labels[f.slice(0, f.indexOf("="))] === f.slice(f.indexOf("=") + 1) : f in n.labels),
      );
    const deleted: string[] = [];
    for (const n of [...this.#networks.values()]) {
      if (n.builtin || this.#inUse(n.id).length) continue;
      if (untilMs !== undefined && Date.parse(n.created) > untilMs) continue;
      if (!labelOk(n)) continue;
      try {
        await this.remove(n.id);
        deleted.push(n.name);
      } catch (e) {
        this.#log.debug("prune skipped a network", { network: n.name, error: messageOf(e) });
      }
    }
    return { NetworksDeleted: deleted };
  }

  // ---------------------------------------------------------------- containers

  /**
   * Records a container's network configuration at create (validating it: networks exist,
   * aliases and `--ip` only on user-defined networks) and returns the `NetworkSettings` a
   * created container shows. Safe to call again: later calls keep connect/disconnect changes.
   */
  register(spec: ContainerNetSpec): NetworkSettings {
    const existing = this.#containers.get(spec.id);
    if (existing) {
      existing.name = spec.name.replace(/^\//, "");
      existing.hostname = spec.hostname;
      existing.domainname = spec.domainname ?? "";
      this.#saveContainer(existing);
      return this.settings(spec.id, spec.exposedPorts);
    }
    const c = this.#plan(spec);
    this.#saveContainer(c);
    return this.settings(spec.id, spec.exposedPorts);
  }

  /** Validates a create request without recording anything (the container service may call it first). */
  validate(spec: ContainerNetSpec): void {
    this.#plan(spec);
  }

  #plan(spec: ContainerNetSpec): ContainerNet {
    const mode0 = spec.networkMode || "default";
    // Bad -p values fail the create (400), not the start.
    for (const r of portRequests(spec.portBindings, spec.exposedPorts, spec.publishAllPorts === true)) {
      if (r.hostIp.includes(":") && r.hostIp !== "::" && !(this.#v6Proxy && r.proto !== "sctp"))
        throw invalidArgument(
          `Cannot publish port ${r.containerPort}/${r.proto} on ${r.hostIp}: publishing on IPv6 host addresses is not supported`,
        );
    }
    const c: ContainerNet = {
      id: spec.id,
      name: spec.name.replace(/^\//, ""),
      hostname: spec.hostname,
      domainname: spec.domainname ?? "",
      mode: "bridge",
      networks: {},
    };
    const eps = Object.entries(spec.endpointsConfig ?? {});
    if (mode0 === "host" || mode0 === "none" || mode0.startsWith("container:")) {
      if (mode0.startsWith("container:")) {
        const other = this.containers.resolve(mode0.slice(10));
        c.mode = `container:${other?.id ?? mode0.slice(10)}`;
      } else c.mode = mode0;
      if (mode0 !== "none" && spec.portBindings && Object.keys(spec.portBindings).length) {
        // Docker ignores published ports in these modes (with a warning at the CLI).
      }
      for (const [k] of eps) {
        const n = this.find(k);
        if (n && n.builtin !== mode0)
          throw invalidArgument(`container cannot be connected to network ${k} in ${mode0.split(":")[0]} network mode`);
      }
      return c;
    }
    const primaryRef = mode0 === "default" ? "bridge" : mode0;
    const primary = this.get(primaryRef);
    if (primary.builtin === "host" || primary.builtin === "none") {
      c.mode = primary.builtin;
      return c;
    }
    c.mode = primary.builtin === "bridge" ? "bridge" : primary.id;
    const find = (ref: string) =>
      eps.find(([k, v]) => k === ref || k === primary.name || k === primary.id || (v?.NetworkID && v.NetworkID === primary.id))?.[1];
    const first = find(primaryRef) ?? null;
    c.networks[primary.id] = this.#request(primary, first, spec.macAddress);
    for (const [k, v] of eps) {
      const n = this.get(v?.NetworkID || k);
      if (n.id === primary.id) continue;
      if (n.builtin === "host" || n.builtin === "none")
        throw invalidArgument(
          `container cannot be connected to multiple networks with one of the networks in ${n.builtin === "none" ? "private (none)" : "host"} mode`,
        );
      c.networks[n.id] = this.#request(n, v, undefined);
    }
    if (spec.links?.length) {
      const req = c.networks[primary.id];
      if (req) req.links = spec.links.map(normalizeLink);
    }
    return c;
  }

  #request(n: NetworkRecord, v: EndpointConfigInput | null | undefined, legacyMac: string | undefined): EndpointRequest {
    const req: EndpointRequest = { aliases: [...new Set(v?.Aliases ?? [])] };
    if (req.aliases.length && n.builtin)
      throw invalidArgument("network-scoped alias is supported only for containers in user defined networks");
    const ip4 = v?.IPAMConfig?.IPv4Address;
    const ip6 = v?.IPAMConfig?.IPv6Address;
    if ((ip4 || ip6) && !n.userSubnet)
      throw invalidArgument("user specified IP address is supported only when connecting to networks with user configured subnets");
    for (const [ip, fam] of [
      [ip4, 4],
      [ip6, 6],
    ] as const) {
      if (!ip) continue;
      const a = parseIp(ip);
      if (a.family !== fam || !n.pools.some((p) => contains(parseCidr(p.subnet), a.family, a.value)))
        throw invalidArgument(`no configured subnet or ip-range contain the IP address ${ip}`);
    }
    if (ip4) req.ipv4 = ip4;
    if (ip6) req.ipv6 = ip6;
    const mac = v?.MacAddress || legacyMac;
    if (mac) {
      if (!/^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/.test(mac)) throw invalidArgument(`invalid MAC address: ${mac}`);
      req.mac = mac.toLowerCase().replaceAll("-", ":");
    }
    // Kept as given (`target:alias`), as dockerd shows them in the endpoint's `Links`.
    if (v?.Links?.length) req.links = [...v.Links];
    return req;
  }

  /** Forgets a removed container (tears its network down first if needed). */
  async unregister(containerId: string, options: { background?: boolean } = {}): Promise<void> {
    const forget = () => {
      this.#db.run("DELETE FROM net_containers WHERE id = ?", containerId);
      this.#containers.delete(containerId);
    };
    if (options.background) {
      // Gone from DNS and lists now; its endpoints follow in the background.
      forget();
      this.#background(
        containerId,
        this.#locked(containerId, () => this.#teardown(containerId)),
      );
      return;
    }
    await this.#locked(containerId, () => this.#teardown(containerId));
    forget();
  }

  /** A container was renamed: DNS answers the new name from now on. */
  rename(containerId: string, newName: string): void {
    const c = this.#containers.get(containerId);
    if (!c) return;
    c.name = newName.replace(/^\//, "");
    this.#saveContainer(c);
  }

  /**
   * Sets up a container's network for its start: pins a network namespace, brings up `lo`,
   * runs the CNI bridge plugin for each of its networks (IP from host-local, `--ip`, MAC through
   * the bridge plugin's runtimeConfig), binds the published ports and writes the firewall rules. For `host`
   * and `container:<id>` it only returns the namespace to join. Any failure undoes every step.
   * `onNetns` hears of a pinned namespace as soon as it exists, before the plugins run, so that
   * the runtime can create the container in it meanwhile (its process starts only after).
   */
  async attach(spec: ContainerNetSpec, options: { onNetns?: (netns: { path: string }) => void } = {}): Promise<AttachResult> {
    return await this.#locked(spec.id, async () => {
      if (this.#sandboxes.has(spec.id)) await this.#teardown(spec.id);
      this.register(spec);
      const c = this.#containers.get(spec.id);
      if (!c) throw notFound(`No such container: ${spec.id}`);
      this.#checkLinks(c);
      try {
        return await this.#setup(c, spec, options.onNetns);
      } catch (e) {
        await this.#teardown(spec.id).catch((e2: unknown) =>
          this.#log.warn("rollback failed", { container: spec.id, error: messageOf(e2) }),
        );
        throw e;
      }
    });
  }

  async #setup(c: ContainerNet, spec: ContainerNetSpec, onNetns?: (netns: { path: string }) => void): Promise<AttachResult> {
    const dns = (spec.dns ?? []).filter(Boolean);
    const sb: Sandbox = {
      id: c.id,
      sandboxId: randomBytes(32).toString("hex"),
      kind: "netns",
      endpoints: {},
      pending: {},
      ports: [],
      exposed: { ...(spec.exposedPorts ?? {}) },
      dns,
    };
    if (c.mode === "host") {
      sb.kind = "host";
      this.#saveSandbox(sb);
      return { netns: "host", networkSettings: this.settings(c.id), hosts: [], resolvConf: hostResolvConf() };
    }
    if (c.mode.startsWith("container:")) {
      const ref = c.mode.slice(10);
      const other = this.containers.resolve(ref);
      const osb = other ? this.#sandboxes.get(other.id) : undefined;
      if (!other) throw notFound(`No such container: ${ref}`);
      if (!other.running || !osb) throw conflict(`cannot join network namespace of a non running container: ${other.id}`);
      sb.kind = "container";
      sb.joined = other.id;
      this.#saveSandbox(sb);
      const netns =
        osb.kind === "host"
          ? ("host" as const)
          : { path: osb.kind === "none" ? (other.pid ? `/proc/${other.pid}/ns/net` : "") : (osb.netns ?? "") };
      if (netns !== "host" && !netns.path) throw conflict(`cannot join network namespace of container ${other.id}: it has none`);
      return { netns, networkSettings: this.settings(c.id), hosts: this.#hostsFor(osb, c), resolvConf: this.#resolvConf(osb, spec) };
    }
    if (c.mode === "none") {
      // Loopback only, as the runtime sets up a namespace it makes: no pinned namespace, no CNI.
      sb.kind = "none";
      this.#saveSandbox(sb);
      await unpinNetns(this.#host, join(this.#netnsDir, c.id)).catch(() => {});
      return {
        netns: "private",
        networkSettings: this.settings(c.id),
        hosts: this.#hostsFor(sb, c),
        resolvConf: this.#resolvConf(sb, spec),
      };
    }
    const own = join(this.#netnsDir, c.id);
    const spare = this.#takeSpare();
    const path = spare ?? own;
    sb.netns = path;
    this.#saveSandbox(sb);
    // A pin of an earlier run of this container that was not undone (a crash) goes first.
    if (!spare || existsSync(own)) await unpinNetns(this.#host, own);
    if (!spare) await pinNetns(this.#host, path);
    onNetns?.({ path });
    let first = true;
    for (const [netId, req] of Object.entries(c.networks)) {
      const n = this.#networks.get(netId);
      if (!n) throw notFound(`network ${netId} not found`);
      await this.#addEndpoint(sb, c, n, req, first);
      first = false;
    }
    // Published ports go to the first network that can be reached from outside.
    const target = Object.entries(sb.endpoints).find(([id]) => !this.#networks.get(id)?.internal);
    const reqs = portRequests(spec.portBindings, spec.exposedPorts, spec.publishAllPorts === true);
    if (reqs.length && target) {
      const [netId, ep] = target;
      const n = this.#networks.get(netId);
      const defaultIp = n?.options[OPT.hostIp] && n.options[OPT.hostIp] !== "0.0.0.0" ? (n.options[OPT.hostIp] ?? "") : "";
      for (const r of reqs) {
        if (!r.hostIp && defaultIp) r.hostIp = defaultIp;
        // IPv4 goes by DNAT; IPv6 (every address, or one given) through berthd's proxy, to the
        // container's IPv4 address, when the host has IPv6 and the proxy is on.
        const v6 = this.#v6 && r.proto !== "sctp" && ep.ipv4 !== "";
        if (r.hostIp.includes(":") && !v6) {
          if (r.hostIp === "::") continue; // "every IPv6 address" without the proxy: nothing to publish
          throw invalidArgument(
            `Cannot publish port ${r.containerPort}/${r.proto} on ${r.hostIp}: publishing on IPv6 host addresses is not supported`,
          );
        }
        try {
          const ms = await this.#ports.allocateGroup(r, { containerIp: ep.ipv4, alsoV6: v6 });
          for (const m of ms) sb.ports.push({ ...m, containerIp: ep.ipv4, networkId: netId });
          this.#saveSandbox(sb);
        } catch (e) {
          throw conflict(`driver failed programming external connectivity on endpoint ${c.name} (${ep.endpointId}): ${messageOf(e)}`);
        }
      }
    }
    await this.#applyFirewall();
    sb.announced = true;
    this.#saveSandbox(sb);
    for (const netId of Object.keys(sb.endpoints)) {
      const n = this.#networks.get(netId);
      if (n) this.#publish("connect", n.id, { container: c.id, name: n.name, type: n.driver });
    }
    return { netns: { path }, networkSettings: this.settings(c.id), hosts: this.#hostsFor(sb, c), resolvConf: this.#resolvConf(sb, spec) };
  }

  /** The bridge plugin's configuration for one endpoint; `mac` sets the container side's MAC. */
  #cniConf(n: NetworkRecord, req: EndpointRequest, primary: boolean, mac?: string): Record<string, unknown> {
    const ranges = n.pools.map((p) => {
      const r: Record<string, string> = { subnet: p.subnet, gateway: p.gateway };
      if (p.ipRange) {
        const ir = parseCidr(p.ipRange);
        const sub = parseCidr(p.subnet);
        const lo = subnetOf(ir).addr;
        const start = lo === subnetOf(sub).addr ? lo + 1n : lo;
        const end = lastOf(ir) === lastOf(sub) ? lastOf(ir) - 1n : lastOf(ir);
        r.rangeStart = formatIp(ir.family, start);
        r.rangeEnd = formatIp(ir.family, end);
      }
      return [r];
    });
    const routes = primary && !n.internal ? n.pools.map((p) => ({ dst: p.subnet.includes(":") ? "::/0" : "0.0.0.0/0" })) : [];
    const ips = [req.ipv4, req.ipv6].filter(Boolean).map((ip) => {
      const pool = n.pools.find((p) => p.subnet.includes(":") === (ip ?? "").includes(":"));
      return `${ip}/${pool ? parseCidr(pool.subnet).prefix : 32}`;
    });
    const conf: Record<string, unknown> = {
      name: n.id,
      type: "bridge",
      bridge: n.bridge,
      isGateway: true,
      ipMasq: false,
      hairpinMode: true,
      ipam: { type: "host-local", ranges, routes, dataDir: this.#ipamDir },
    };
    const mtu = Number(n.options[OPT.mtu] ?? 0);
    if (mtu && mtu !== 1500) conf.mtu = mtu;
    const capabilities: Record<string, boolean> = {};
    const runtimeConfig: Record<string, unknown> = {};
    if (ips.length) {
      capabilities.ips = true;
      runtimeConfig.ips = ips;
    }
    if (mac) {
      capabilities.mac = true;
      runtimeConfig.mac = mac;
    }
    if (ips.length || mac) Object.assign(conf, { capabilities, runtimeConfig });
    return conf;
  }

  async #addEndpoint(sb: Sandbox, c: ContainerNet, n: NetworkRecord, req: EndpointRequest, primary: boolean): Promise<Endpoint> {
    if (n.driver !== "bridge") throw invalidArgument(`network ${n.name} cannot be joined`);
    const used = new Set([...Object.values(sb.endpoints).map((e) => e.ifname), ...Object.values(sb.pending)]);
    let i = 0;
    while (used.has(`eth${i}`)) i++;
    const ifname = `eth${i}`;
    const netns = sb.netns ?? "";
    sb.pending[n.id] = ifname;
    this.#saveSandbox(sb);
    const target = { containerId: c.id, netns, ifname };
    // The bridge plugin sets the MAC itself (runtimeConfig.mac): no chained tuning plugin.
    const mac = req.mac ?? randomMac();
    const conf = this.#cniConf(n, req, primary, mac);
    const res = await cniExec(this.#host, "ADD", conf, target, { path: this.#cniPath }).catch((e: unknown) => {
      if (req.ipv4 && /requested IP address .* is not available|already reserved|already allocated/i.test(messageOf(e)))
        throw conflict(`Address already in use: ${req.ipv4} on network ${n.name}`);
      throw e;
    });
    const ep: Endpoint = { endpointId: randomId(), ifname, ipv4: "", prefix4: 0, gateway4: "", ipv6: "", prefix6: 0, gateway6: "", mac };
    for (const ip of res.ips ?? []) {
      const [addr = "", pfx = "0"] = ip.address.split("/");
      if (addr.includes(":")) {
        ep.ipv6 = addr;
        ep.prefix6 = Number(pfx);
        ep.gateway6 = ip.gateway ?? "";
      } else {
        ep.ipv4 = addr;
        ep.prefix4 = Number(pfx);
        ep.gateway4 = ip.gateway ?? "";
      }
    }
    if (n.internal) {
      // No route out: the gateway of an internal network is only its DNS server.
      ep.gateway4 = primary ? "" : ep.gateway4;
    }
    sb.endpoints[n.id] = ep;
    delete sb.pending[n.id];
    this.#saveSandbox(sb);
    return ep;
  }

  /**
   * CNI DEL of one endpoint. `addressOnly`: the namespace is gone, so only the address is to be
   * freed: the IPAM plugin is called directly (what the bridge plugin's DEL without a namespace
   * does, one process fewer).
   */
  async #delEndpoint(sb: Sandbox, netId: string, ifname: string, addressOnly = false): Promise<void> {
    const n = this.#networks.get(netId);
    const target = { containerId: sb.id, netns: addressOnly ? "" : (sb.netns ?? ""), ifname };
    let conf: Record<string, unknown> = n
      ? this.#cniConf(n, { aliases: [] }, false)
      : { name: netId, type: "bridge", bridge: "", ipam: { type: "host-local", ranges: [], dataDir: this.#ipamDir } };
    if (addressOnly) conf = { ...conf, type: (conf.ipam as { type: string }).type };
    await cniExec(this.#host, "DEL", conf, target, { path: this.#cniPath }).catch((e: unknown) => {
      this.#log.warn("CNI DEL failed", { container: sb.id, network: netId, error: messageOf(e) });
    });
  }

  /**
   * Tears a container's network down at stop or exit: CNI DEL for each endpoint (frees the IP,
   * removes the veth), closes its published ports and their rules, unpins the namespace.
   * Idempotent; a container without network state is a no-op.
   */
  async detach(containerId: string, options: { background?: boolean; exited?: boolean } = {}): Promise<void> {
    const exited = options.exited === true;
    if (!options.background) {
      await this.#locked(containerId, () => this.#teardown(containerId, exited));
      return;
    }
    // The published ports and their rules go now (the next container may want the same port at
    // once); the endpoints and the namespace go in the background. Whatever depends on them
    // waits: the container's next attach (same lock), network removal, prune and shutdown.
    let portsFreed: () => void = () => {};
    const freed = new Promise<void>((resolve) => {
      portsFreed = resolve;
    });
    this.#background(
      containerId,
      this.#locked(containerId, async () => {
        try {
          await this.#releasePorts(containerId);
        } finally {
          portsFreed();
        }
        await this.#teardown(containerId, exited);
      }),
    );
    await freed;
  }

  /** Tracks background work until it settles (failures are logged: a restart redoes teardowns). */
  #background(containerId: string, work: Promise<void>): void {
    const p: Promise<void> = work
      .catch((e: unknown) => this.#log.warn("network teardown failed", { container: containerId, error: messageOf(e) }))
      .finally(() => this.#pending.delete(p));
    this.#pending.add(p);
  }

  /** Waits for the background teardowns under way. */
  async settle(): Promise<void> {
    while (this.#pending.size) await Promise.all([...this.#pending]);
  }

  async #releasePorts(id: string): Promise<void> {
    const sb = this.#sandboxes.get(id);
    if (!sb?.ports.length) return;
    for (const p of sb.ports) this.#ports.release(p);
    sb.ports = [];
    this.#saveSandbox(sb);
    await this.#applyFirewall().catch((e: unknown) => this.#log.warn("firewall update failed", { error: messageOf(e) }));
  }

  /**
   * `exited`: the container's processes are gone (it exited), so its namespace dies with its
   * pin; see below.
   */
  async #teardown(id: string, exited = false): Promise<void> {
    const sb = this.#sandboxes.get(id);
    if (!sb) {
      const pinned = join(this.#netnsDir, id);
      if (existsSync(pinned)) await unpinNetns(this.#host, pinned).catch(() => {});
      return;
    }
    for (const p of sb.ports) this.#ports.release(p);
    const eps = [...Object.entries(sb.endpoints).map(([k, e]) => [k, e.ifname] as const), ...Object.entries(sb.pending)];
    sb.ports = [];
    this.#saveSandbox(sb);
    await this.#applyFirewall().catch((e: unknown) => this.#log.warn("firewall update failed", { error: messageOf(e) }));
    const shared = [...this.#sandboxes.values()].some((o) => o.joined === id);
    if (sb.kind === "netns" && sb.netns && exited && !shared) {
      // Nothing lives in the namespace any more: unpinned, the kernel destroys it and with it
      // the veth pairs, in the background. Deleting each veth first (the CNI DEL with the
      // namespace) waits for that same work, two RCU grace periods a device: most of the time
      // an exit took. What is left is freeing the addresses, meanwhile.
      await Promise.all([unpinNetns(this.#host, sb.netns), ...eps.map(([netId, ifname]) => this.#delEndpoint(sb, netId, ifname, true))]);
      // The next start may come at once (`run --rm` in a loop): its namespace, made meanwhile.
      this.#refillSoon(SPARE_AFTER_EXIT_MS);
    } else {
      if (sb.kind === "netns") for (const [netId, ifname] of eps) await this.#delEndpoint(sb, netId, ifname);
      if (sb.netns) await unpinNetns(this.#host, sb.netns);
    }
    this.#deleteSandbox(id);
    if (!sb.announced) return;
    for (const [netId] of Object.entries(sb.endpoints)) {
      const n = this.#networks.get(netId);
      if (n) this.#publish("disconnect", n.id, { container: id, name: n.name, type: n.driver });
    }
  }

  /** POST /networks/{id}/connect */
  async connect(netRef: string, containerRef: string, cfg: EndpointConfigInput | null = null): Promise<void> {
    // The container first, as dockerd looks them up.
    const spec = this.containers.resolve(containerRef);
    if (!spec) throw notFound(`No such container: ${containerRef}`);
    const n = this.get(netRef);
    await this.#locked(spec.id, async () => {
      if (!this.#containers.has(spec.id)) this.#saveContainer(this.#plan(spec));
      const c = this.#containers.get(spec.id);
      if (!c) throw notFound(`No such container: ${containerRef}`);
      if (n.builtin === "host") throw permissionDenied("container cannot be disconnected from host network or connected to host network");
      if (n.builtin === "none" || c.mode === "none")
        throw permissionDenied("container cannot be connected to multiple networks with one of the networks in private (none) mode");
      if (c.mode === "host" || c.mode.startsWith("container:"))
        throw permissionDenied(
          "container sharing network namespace with another container or host cannot be connected to any other network",
        );
      if (c.networks[n.id]) throw permissionDenied(`endpoint with name ${c.name} already exists in network ${n.name}`);
      const req = this.#request(n, cfg, undefined);
      const sb = this.#sandboxes.get(c.id);
      if (spec.running && sb && sb.kind === "netns") {
        try {
          await this.#addEndpoint(sb, c, n, req, Object.keys(sb.endpoints).length === 0);
        } catch (e) {
          const ifname = sb.pending[n.id];
          if (ifname) await this.#delEndpoint(sb, n.id, ifname);
          delete sb.pending[n.id];
          this.#saveSandbox(sb);
          throw e;
        }
        c.networks[n.id] = req;
        this.#saveContainer(c);
        this.#publish("connect", n.id, { container: c.id, name: n.name, type: n.driver });
        this.onChange(
          c.id,
          this.settings(c.id),
          this.#hostsFor(sb, c),
          this.#resolvConf(sb, this.containers.resolve(c.id) ?? { id: c.id, name: c.name, hostname: c.hostname, networkMode: c.mode }),
        );
      } else {
        c.networks[n.id] = req;
        this.#saveContainer(c);
      }
    });
  }

  /** POST /networks/{id}/disconnect */
  async disconnect(netRef: string, containerRef: string, force = false): Promise<void> {
    const n = this.find(netRef);
    if (!n) {
      if (force) return;
      throw notFound(`network ${netRef} not found`);
    }
    const spec = this.containers.resolve(containerRef);
    if (!spec) {
      if (force) {
        // A container that is gone: drop its leftovers from this network.
        for (const s of this.#sandboxes.values()) if (s.id.startsWith(containerRef) && s.endpoints[n.id]) await this.detach(s.id);
        return;
      }
      throw notFound(`No such container: ${containerRef}`);
    }
    await this.#locked(spec.id, async () => {
      if (!this.#containers.has(spec.id)) this.#saveContainer(this.#plan(spec));
      const c = this.#containers.get(spec.id);
      if (!c) return;
      if (n.builtin === "host" || c.mode === "host")
        throw permissionDenied("container cannot be disconnected from host network or connected to host network");
      if (!c.networks[n.id] && !this.#sandboxes.get(c.id)?.endpoints[n.id]) {
        if (force) return;
        throw permissionDenied(`container ${c.id} is not connected to network ${n.name}`);
      }
      const sb = this.#sandboxes.get(c.id);
      const ep = sb?.endpoints[n.id];
      if (sb && ep) {
        for (const p of sb.ports.filter((p) => p.networkId === n.id)) this.#ports.release(p);
        sb.ports = sb.ports.filter((p) => p.networkId !== n.id);
        delete sb.endpoints[n.id];
        this.#saveSandbox(sb);
        await this.#applyFirewall().catch(() => {});
        await this.#delEndpoint(sb, n.id, ep.ifname);
      }
      delete c.networks[n.id];
      if (c.mode === n.id) c.mode = Object.keys(c.networks)[0] ?? "bridge";
      this.#saveContainer(c);
      if (sb && ep) {
        this.#publish("disconnect", n.id, { container: c.id, name: n.name, type: n.driver });
        this.onChange(
          c.id,
          this.settings(c.id),
          this.#hostsFor(sb, c),
          this.#resolvConf(sb, this.containers.resolve(c.id) ?? { id: c.id, name: c.name, hostname: c.hostname, networkMode: c.mode }),
        );
      }
    });
  }

  /** The names other containers answer to on a network (for inspect's `DNSNames`). */
  #endpointJson(c: ContainerNet, n: NetworkRecord, req: EndpointRequest | undefined, ep: Endpoint | undefined): EndpointSettings {
    const ipam =
      req?.ipv4 || req?.ipv6 ? { ...(req.ipv4 ? { IPv4Address: req.ipv4 } : {}), ...(req.ipv6 ? { IPv6Address: req.ipv6 } : {}) } : null;
    return {
      IPAMConfig: ipam,
      // Default-bridge links show in `HostConfig.Links` only, as with dockerd.
      Links: !n.builtin && req?.links?.length ? req.links : null,
      Aliases: req?.aliases.length ? req.aliases : null,
      MacAddress: ep?.mac ?? req?.mac ?? "",
      DriverOpts: null,
      NetworkID: n.id,
      EndpointID: ep?.endpointId ?? "",
      Gateway: ep?.gateway4 ?? "",
      IPAddress: ep?.ipv4 ?? "",
      IPPrefixLen: ep?.prefix4 ?? 0,
      IPv6Gateway: ep?.gateway6 ?? "",
      GlobalIPv6Address: ep?.ipv6 ?? "",
      GlobalIPv6PrefixLen: ep?.prefix6 ?? 0,
      DNSNames: n.builtin ? null : this.#dnsNames(c, req),
    };
  }

  /**
   * A container's `NetworkSettings` now (inspect, after connect/disconnect, after stop): every
   * network it belongs to, with addresses while it runs; `Ports` while it runs.
   */
  settings(containerId: string, exposed?: Record<string, unknown> | null): NetworkSettings {
    const c = this.#containers.get(containerId);
    const sb = this.#sandboxes.get(containerId);
    const out: NetworkSettings = {
      Bridge: "",
      SandboxID: sb?.sandboxId ?? "",
      SandboxKey: sb?.netns ?? "",
      HairpinMode: false,
      LinkLocalIPv6Address: "",
      LinkLocalIPv6PrefixLen: 0,
      Ports: sb ? portMap(sb.ports, sb.exposed) : exposed ? portMap([], exposed) : {},
      SecondaryIPAddresses: null,
      SecondaryIPv6Addresses: null,
      EndpointID: "",
      Gateway: "",
      GlobalIPv6Address: "",
      GlobalIPv6PrefixLen: 0,
      IPAddress: "",
      IPPrefixLen: 0,
      IPv6Gateway: "",
      MacAddress: "",
      Networks: {},
    };
    if (!sb) out.Ports = {};
    if (!c) return out;
    if (c.mode === "host" || c.mode === "none") {
      const n = [...this.#networks.values()].find((x) => x.builtin === c.mode);
      if (n)
        out.Networks[n.name] = { ...this.#endpointJson(c, n, undefined, undefined), EndpointID: sb ? sb.sandboxId : "", DNSNames: null };
      return out;
    }
    if (c.mode.startsWith("container:")) return out;
    for (const [netId, req] of Object.entries(c.networks)) {
      const n = this.#networks.get(netId);
      if (!n) continue;
      const ep = sb?.endpoints[netId];
      out.Networks[n.name] = this.#endpointJson(c, n, req, ep);
      if (n.builtin === "bridge" && ep) {
        out.Bridge = n.bridge ?? "";
        out.EndpointID = ep.endpointId;
        out.Gateway = ep.gateway4;
        out.IPAddress = ep.ipv4;
        out.IPPrefixLen = ep.prefix4;
        out.MacAddress = ep.mac;
        out.IPv6Gateway = ep.gateway6;
        out.GlobalIPv6Address = ep.ipv6;
        out.GlobalIPv6PrefixLen = ep.prefix6;
      }
    }
    return out;
  }

  #hostsFor(sb: Sandbox, c: ContainerNet): string[] {
    const names = c.domainname ? `${c.hostname}.${c.domainname} ${c.hostname}` : c.hostname;
    const lines: string[] = [];
    for (const ep of Object.values(sb.endpoints)) {
      if (ep.ipv4) lines.push(`${ep.ipv4}\t${names}`);
      if (ep.ipv6) lines.push(`${ep.ipv6}\t${names}`);
    }
    // Legacy links on the default bridge: "IP alias id12 name" (on user-defined networks a link
    // is a name the DNS server answers, see #lookup).
    for (const { link, target, ip } of this.#legacyLinks(c)) lines.push(linkHostsLine(link, ip, target.id, target.name));
    return lines;
  }

  /** The default bridge's links of a container whose target has an address there now. */
  #legacyLinks(c: ContainerNet): { link: ReturnType<typeof parseLink>; target: ContainerNetSpec; ip: string }[] {
    const br = [...this.#networks.values()].find((n) => n.builtin === "bridge");
    const out: { link: ReturnType<typeof parseLink>; target: ContainerNetSpec; ip: string }[] = [];
    for (const l of (br ? c.networks[br.id]?.links : undefined) ?? []) {
      const link = parseLink(l);
      const target = this.containers.resolve(link.target);
      const ip = target && br ? this.#sandboxes.get(target.id)?.endpoints[br.id]?.ipv4 : undefined;
      if (target && ip) out.push({ link, target, ip });
    }
    return out;
  }

  /**
   * The variables a container's legacy links give its processes (`ALIAS_NAME`,
   * `ALIAS_PORT_80_TCP_ADDR`, `ALIAS_ENV_X`, ...), from its targets as they run now; the
   * container's own `Config.Env` wins over them.
   */
  linkEnv(containerId: string): string[] {
    const c = this.#containers.get(containerId);
    if (!c) return [];
    return this.#legacyLinks(c).flatMap(({ link, target, ip }) =>
      linkEnv(link, c.name, { ip, exposedPorts: Object.keys(target.exposedPorts ?? {}), env: target.env ?? [] }),
    );
  }

  /**
   * dockerd's way of storing a new container's `--link`s: on the default bridge each target
   * must exist and `HostConfig.Links` holds `/target:/me/alias`; on a user-defined network they
   * move, as given, to the endpoint's `Links` (where the DNS server finds them) and
   * `HostConfig.Links` is null. `host` and `container:` modes refuse links.
   */
  placeLinks(spec: ContainerNetSpec): { links: string[] | null; endpointsConfig: ContainerNetSpec["endpointsConfig"] } {
    const eps = spec.endpointsConfig ?? null;
    if (!spec.links?.length) return { links: spec.links ?? null, endpointsConfig: eps };
    const mode = spec.networkMode || "default";
    if (mode === "host")
      throw invalidArgument("conflicting options: host type networking can't be used with links. This would result in undefined behavior");
    if (mode.startsWith("container:"))
      throw invalidArgument(
        "conflicting options: container type network can't be used with links. This would result in undefined behavior",
      );
    const primary = this.find(mode === "default" ? "bridge" : mode);
    if (!primary || primary.builtin) {
      const me = spec.name.replace(/^\//, "");
      const links = spec.links.map((l) => {
        const link = parseLink(l);
        const target = this.containers.resolve(link.target);
        if (!target) throw notFound(`could not get container for ${link.target}: No such container: ${link.target}`);
        return legacyLinkName({ target: target.name.replace(/^\//, ""), alias: link.alias }, me);
      });
      return { links, endpointsConfig: eps };
    }
    const out = { ...(eps ?? {}) };
    const key =
      Object.keys(out).find((k) => k === mode || k === primary.name || k === primary.id || out[k]?.NetworkID === primary.id) ?? mode;
    out[key] = { ...(out[key] ?? {}), Links: [...new Set([...(out[key]?.Links ?? []), ...spec.links])] };
    return { links: null, endpointsConfig: out };
  }

  /**
   * `rm -l me/alias`: forgets the container's default-bridge link `alias` and rewrites its
   * /etc/hosts if it runs. False when it has no such link.
   */
  removeLink(containerId: string, alias: string): boolean {
    const c = this.#containers.get(containerId);
    const br = [...this.#networks.values()].find((n) => n.builtin === "bridge");
    const req = br ? c?.networks[br.id] : undefined;
    if (!c || !req?.links?.length) return false;
    const keep = req.links.filter((l) => parseLink(l).alias !== alias);
    if (keep.length === req.links.length) return false;
    if (keep.length) req.links = keep;
    else delete req.links;
    this.#saveContainer(c);
    const sb = this.#sandboxes.get(c.id);
    if (sb?.kind === "netns") {
      const spec = this.containers.resolve(c.id) ?? { id: c.id, name: c.name, hostname: c.hostname, networkMode: c.mode };
      this.onChange(c.id, this.settings(c.id), this.#hostsFor(sb, c), this.#resolvConf(sb, spec));
    }
    return true;
  }

  /** At start: every default-bridge link's target must be running, as dockerd demands. */
  #checkLinks(c: ContainerNet): void {
    const br = [...this.#networks.values()].find((n) => n.builtin === "bridge");
    for (const l of (br ? c.networks[br.id]?.links : undefined) ?? []) {
      const link = parseLink(l);
      const target = this.containers.resolve(link.target);
      if (!target) throw notFound(`could not get container for ${link.target}: No such container: ${link.target}`);
      if (!target.running)
        throw conflict(`Cannot link to a non running container: /${target.name.replace(/^\//, "")} AS /${c.name}/${link.alias}`);
    }
  }

  #resolvConf(sb: Sandbox, spec: ContainerNetSpec): string {
    const host = resolvParts(hostResolvConf());
    const search = spec.dnsSearch?.length ? spec.dnsSearch : host.search;
    const options = spec.dnsOptions?.length ? spec.dnsOptions : host.options;
    const userNet = Object.keys(sb.endpoints)
      .map((id) => this.#networks.get(id))
      .find((n) => n && !n.builtin && n.driver === "bridge");
    const lines: string[] = [];
    if (search.length && !(search.length === 1 && search[0] === ".")) lines.push(`search ${search.join(" ")}`);
    if (userNet && this.#dns.has(userNet.id)) {
      // berthd's DNS server answers container names and forwards the rest (to --dns if given).
      lines.push(`nameserver ${userNet.pools.find((p) => !p.subnet.includes(":"))?.gateway ?? userNet.pools[0]?.gateway}`);
      lines.push(`options ${[...new Set(["ndots:0", ...options.filter((o) => !o.startsWith("ndots:"))])].join(" ")}`);
      return `${lines.join("\n")}\n`;
    }
    let ns = spec.dns?.length ? spec.dns : this.#cfg.dns?.length ? this.#cfg.dns : host.nameservers.filter((x) => !isLoopback(x));
    if (!ns.length) ns = ["8.8.8.8", "8.8.4.4"];
    for (const x of ns) lines.push(`nameserver ${x}`);
    if (options.length) lines.push(`options ${options.join(" ")}`);
    return `${lines.join("\n")}\n`;
  }
}

function lastOf(c: Cidr): bigint {
  const bits = c.family === 4 ? 32 : 128;
  return subnetOf(c).addr | ((1n << BigInt(bits - c.prefix)) - 1n);
}

/** "name:alias" → "/name:/alias" (dockerd keeps "/name:/container/alias"; the alias is the last part). */
function normalizeLink(l: string): string {
  const [name = "", alias = name] = l.split(":");
  return `/${name.replace(/^\//, "")}:/${alias.replace(/^\//, "")}`;
}

function safeJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/** Go-style durations for `until` filters: "24h", "10m", "1h30m". */
function durationMs(s: string): number {
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(h|m|s|ms)/g;
  let m: RegExpExecArray | null = re.exec(s);
  if (!m) throw invalidArgument(`invalid filter 'until=${s}'`);
  while (m) {
    const v = Number(m[1]);
    total += m[2] === "h" ? v * 3600000 : m[2] === "m" ? v * 60000 : m[2] === "s" ? v * 1000 : v;
    m = re.exec(s);
  }
  return total;
}
