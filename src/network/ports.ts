import dgram from "node:dgram";
import net from "node:net";
import { readFileSync } from "node:fs";
import { conflict, invalidArgument } from "../base/mod.ts";
import { parseIp } from "./ipnet.ts";
import { holdPort, listenTcpProxy, listenUdpProxy } from "./proxy.ts";
import type { PortMap, PortSummary } from "./types.ts";

/** A port the container asked to publish, before a host port is chosen. */
export interface PortRequest {
  proto: "tcp" | "udp" | "sctp";
  containerPort: number;
  /** "" or "0.0.0.0" means every address of the host. */
  hostIp: string;
  /** 0 for a random port; a range `[start, end]` picks the first free one in it. */
  hostStart: number;
  hostEnd: number;
}

/** A published port with its host port chosen. */
export interface PortMapping {
  proto: "tcp" | "udp" | "sctp";
  containerPort: number;
  hostIp: string;
  hostPort: number;
}

function portNum(s: string, what: string): number {
  const n = Number(s);
  if (!/^\d{1,5}$/.test(s) || n < 0 || n > 65535) throw invalidArgument(`invalid ${what} port: ${s}`);
  return n;
}

/** `"80/tcp"`, `"53/udp"`, `"8000-8002"` → protocol and port range. */
export function parsePortKey(key: string): { proto: "tcp" | "udp" | "sctp"; start: number; end: number } {
  const [p = "", proto0 = "tcp"] = key.split("/");
  const proto = proto0.toLowerCase();
  if (proto !== "tcp" && proto !== "udp" && proto !== "sctp") throw invalidArgument(`invalid proto: ${proto0}`);
  const [a = "", b] = p.split("-");
  const start = portNum(a, "container");
  const end = b === undefined ? start : portNum(b, "container");
  if (end < start || start === 0) throw invalidArgument(`invalid port range: ${p}`);
  return { proto, start, end };
}

/**
 * What a container publishes: `HostConfig.PortBindings` (from `-p`), plus every exposed port
 * on a random host port when `PublishAllPorts` (`-P`) is set, as dockerd does.
 */
export function portRequests(
  bindings: PortMap | null | undefined,
  exposed: Record<string, unknown> | null | undefined,
  publishAll: boolean,
): PortRequest[] {
  const out: PortRequest[] = [];
  const seen = new Set<string>();
  for (const [key, list] of Object.entries(bindings ?? {})) {
    const k = parsePortKey(key);
    for (let cp = k.start; cp <= k.end; cp++) {
      seen.add(`${cp}/${k.proto}`);
      for (const b of list ?? []) {
        const hostIp = b.HostIp ?? "";
        if (hostIp) parseIp(hostIp);
        let hs = 0;
        let he = 0;
        if (b.HostPort) {
          const [x = "", y] = b.HostPort.split("-");
          hs = portNum(x, "host");
          he = y === undefined ? hs : portNum(y, "host");
          if (he < hs) throw invalidArgument(`invalid port range: ${b.HostPort}`);
          // A container range mapped to a host range of the same size maps one to one.
          if (k.end > k.start && he - hs === k.end - k.start) {
            hs += cp - k.start;
            he = hs;
          }
        }
        out.push({ proto: k.proto, containerPort: cp, hostIp, hostStart: hs, hostEnd: he });
      }
    }
  }
  if (publishAll) {
    for (const key of Object.keys(exposed ?? {})) {
      const k = parsePortKey(key);
      for (let cp = k.start; cp <= k.end; cp++) {
        if (seen.has(`${cp}/${k.proto}`)) continue;
        out.push({ proto: k.proto, containerPort: cp, hostIp: "", hostStart: 0, hostEnd: 0 });
      }
    }
  }
  return out;
}

/** `NetworkSettings.Ports`: every exposed or published port, null when not published. */
export function portMap(mappings: readonly PortMapping[], exposed: Record<string, unknown> | null | undefined): PortMap {
  const out: PortMap = {};
  for (const key of Object.keys(exposed ?? {})) {
    const k = parsePortKey(key);
    for (let p = k.start; p <= k.end; p++) out[`${p}/${k.proto}`] = null;
  }
  for (const m of mappings) {
    const key = `${m.containerPort}/${m.proto}`;
    const list = out[key] ?? [];
    list.push({ HostIp: m.hostIp || "0.0.0.0", HostPort: String(m.hostPort) });
    out[key] = list;
  }
  return out;
}

/** The `Ports` of a container summary (`docker ps` PORTS) from `NetworkSettings.Ports`. */
export function portsSummary(ports: PortMap | null | undefined): PortSummary[] {
  const out: PortSummary[] = [];
  for (const [key, list] of Object.entries(ports ?? {})) {
    const [p = "0", proto = "tcp"] = key.split("/");
    if (!list || list.length === 0) {
      out.push({ PrivatePort: Number(p), Type: proto });
      continue;
    }
    for (const b of list) out.push({ IP: b.HostIp || "0.0.0.0", PrivatePort: Number(p), PublicPort: Number(b.HostPort), Type: proto });
  }
  return out;
}

/** The host's ephemeral port range (`net.ipv4.ip_local_port_range`), Docker's source of random ports. */
export function ephemeralRange(): [number, number] {
  try {
    const [a, b] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    if (a && b && a <= b) return [a, b];
  } catch {
    // not Linux or no procfs: Docker's fallback
  }
  return [49153, 65535];
}

type Held = { close(): void };

/** `ip:port` as Go's net.JoinHostPort writes it (`[::]:8080`). */
export function joinHostPort(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/**
 * Holds the host ports berth publishes. Like docker-proxy, berthd binds each published port
 * itself: a port another program uses fails the start with a clear error instead of being
 * silently shadowed by the DNAT rule, and no other program can take it later. The IPv4
 * sockets never see traffic (DNAT rewrites packets before socket lookup); an IPv6 port is a
 * userland proxy to the container's IPv4 address (proxy.ts), since NAT cannot cross families.
 * All die with berthd and are bound again when it restarts.
 */
export class PortReserver {
  #held = new Map<string, Held>();
  #cursor = new Map<string, number>();
  #range: [number, number];

  constructor(range: [number, number] = ephemeralRange()) {
    this.#range = range;
  }

  static key(m: { proto: string; hostIp: string; hostPort: number }): string {
    return `${m.proto}:${m.hostIp || "0.0.0.0"}:${m.hostPort}`;
  }

  /**
   * Binds one port; throws Conflict with dockerd's wording when it is taken. An IPv6 host
   * address needs `containerIp`: the port relays to `containerIp:containerPort`.
   */
  async reserve(m: PortMapping & { containerIp?: string }): Promise<void> {
    const key = PortReserver.key(m);
    const ip = m.hostIp || "0.0.0.0";
    const where = joinHostPort(ip, m.hostPort);
    if (this.#held.has(key)) throw conflict(`Bind for ${where} failed: port is already allocated`);
    const target = parseIp(ip).family === 6 ? { ip: m.containerIp ?? "", port: m.containerPort } : undefined;
    if (target && !target.ip) throw invalidArgument(`cannot publish ${where}/${m.proto}: the container has no IPv4 address`);
    const held = await bindPort(m.proto, ip, m.hostPort, target).catch((e: NodeJS.ErrnoException) => {
      if (e.code === "EADDRINUSE") throw conflict(`Bind for ${where} failed: port is already allocated`);
      if (e.code === "EADDRNOTAVAIL") throw invalidArgument(`failed to bind port ${where}/${m.proto}: cannot assign requested address`);
      throw conflict(`failed to bind port ${where}/${m.proto}: ${e.message}`);
    });
    this.#held.set(key, held);
  }

  /** Chooses and binds a host port for a request (random from the ephemeral range when 0). */
  async allocate(r: PortRequest): Promise<PortMapping> {
    const [m] = await this.allocateGroup(r);
    if (!m) throw conflict(`no host port for ${r.containerPort}/${r.proto}`);
    return m;
  }

  /**
   * Like `allocate`, and with `alsoV6` a request on every address (hostIp "") gets the same
   * host port on `[::]` too, proxied to `containerIp` (dockerd's pair of bindings): a random
   * port is one free in both families. Returns the IPv4 mapping, then the IPv6 one.
   */
  async allocateGroup(r: PortRequest, o: { containerIp?: string; alsoV6?: boolean } = {}): Promise<PortMapping[]> {
    const base = { proto: r.proto, containerPort: r.containerPort, hostIp: r.hostIp };
    const target = o.containerIp ? { containerIp: o.containerIp } : {};
    const group = (hostPort: number): (PortMapping & { containerIp?: string })[] => {
      const ms = [{ ...base, hostPort, ...target }];
      if (o.alsoV6 && !r.hostIp) ms.push({ ...base, hostIp: "::", hostPort, ...target });
      return ms;
    };
    const take = async (hostPort: number): Promise<PortMapping[]> => {
      const ms = group(hostPort);
      const done: PortMapping[] = [];
      try {
        for (const m of ms) {
          await this.reserve(m);
          done.push(m);
        }
      } catch (e) {
        for (const m of done) this.release(m);
        throw e;
      }
      return ms.map(({ containerIp: _, ...m }) => m);
    };
    if (r.hostStart !== 0 && r.hostStart === r.hostEnd) return await take(r.hostStart);
    const [lo, hi] = r.hostStart ? [r.hostStart, r.hostEnd] : this.#range;
    const ck = `${r.proto}:${r.hostIp}:${lo}-${hi}`;
    let p = r.hostStart ? lo : (this.#cursor.get(ck) ?? lo);
    let lastErr: unknown;
    for (let i = 0; i <= hi - lo; i++, p = p >= hi ? lo : p + 1) {
      try {
        const ms = await take(p);
        if (!r.hostStart) this.#cursor.set(ck, p >= hi ? lo : p + 1);
        return ms;
      } catch (e) {
        lastErr = e;
      }
    }
    if (r.hostStart) throw lastErr;
    throw conflict(`no free host port in ${lo}-${hi} for ${r.containerPort}/${r.proto}`);
  }

  release(m: { proto: string; hostIp: string; hostPort: number }): void {
    const key = PortReserver.key(m);
    this.#held.get(key)?.close();
    this.#held.delete(key);
  }

  releaseAll(): void {
    for (const h of this.#held.values()) h.close();
    this.#held.clear();
  }

  get size(): number {
    return this.#held.size;
  }
}

async function bindPort(proto: string, ip: string, port: number, proxyTo?: { ip: string; port: number }): Promise<Held> {
  if (proxyTo && proto === "udp") return await listenUdpProxy(ip, port, proxyTo);
  if (proxyTo && proto === "tcp") return await listenTcpProxy(ip, port, proxyTo);
  if (proto === "udp") {
    const s = dgram.createSocket({ type: parseIp(ip).family === 6 ? "udp6" : "udp4" });
    await holdPort(s, (done) => s.bind({ address: ip, port, exclusive: true }, done));
    s.on("message", () => {});
    return { close: () => s.close() };
  }
  // TCP (and SCTP, which Node cannot bind: TCP on the same number keeps the port from others).
  const srv = net.createServer((c) => c.destroy());
  await holdPort(srv, (done) => srv.listen({ host: ip, port, exclusive: true, ipv6Only: parseIp(ip).family === 6 }, done));
  return { close: () => srv.close() };
}
