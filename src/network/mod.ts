/**
 * # network: networks, container network namespaces, published ports, DNS
 *
 * Terms. A **network** is a Linux bridge with an IPv4 subnet (and an IPv6 one with `--ipv6`):
 * the predefined `bridge` (interface `berth0`, subnet from `bip` or the first free /16 of
 * `default-address-pools`, never Docker's 172.17.0.0/16 or podman's 10.88.0.0/16), the
 * predefined `host` and `none`, and user-defined ones (`br-<id12>`, a /24 from the pools).
 * A container's **sandbox** is its network namespace, created and pinned by berthd under
 * `<exec-root>/netns/<id>` (a bind mount, like `ip netns add`) before runc starts the process
 * in it; an **endpoint** is the container's interface (eth0, eth1, ...) on one network, set up
 * by the CNI plugins (`bridge` with `host-local` IPAM; the MAC through its `runtimeConfig`).
 *
 * Rules. berth writes every iptables rule it needs from its stored state in one
 * `iptables-restore --noflush` per table, into its own chains (`BERTH-FORWARD`, `BERTH-DNAT`,
 * `BERTH-POSTROUTING`, raw `BERTH-PREROUTING`), jumped to first from the built-in chains, so
 * that it works beside Docker (FORWARD policy DROP) and podman, survives a crash (the rules are
 * rewritten from the database at start) and a firewall reload (a watchdog puts them back).
 * Published ports are DNAT rules plus a socket berthd holds on the host port (a port in use
 * fails the start); `127.0.0.1:PORT` works through the OUTPUT chain with `route_localnet` on the
 * bridge, and the raw table drops packets to 127.0.0.0/8 that arrive on a bridge.
 *
 * Names. Each user-defined network has a DNS server in berthd on its gateway address (UDP and
 * TCP 53) answering the names, aliases, short IDs and hostnames of the containers on that
 * network, refusing clients from other subnets, and forwarding other names to the host's
 * resolvers, except on `--internal` networks (no egress, no DNS leak: CVE-2024-29018).
 *
 * A container's life, as the container service drives it:
 *
 * ```ts
 * const net = new NetworkService({ host, db, dataRoot, execRoot, log, publish, config });
 * await net.init();                                   // berthd start, before containers restore
 * net.containers = { resolve: (ref) => specOf(store.resolve(ref)) };
 * const settings = net.register(spec);                // container create (validates networks)
 * const r = await net.attach(spec);                   // container start, before runc create
 * // spec: r.netns ({ path } or "host"); /etc/hosts += r.hosts; /etc/resolv.conf = r.resolvConf
 * await net.detach(id);                               // container exit / stop / failed start
 * await net.unregister(id);                           // container rm
 * await net.reconcile((id) => running(id));           // after containers restore at berthd start
 * ```
 */
export * from "./types.ts";
export { NetworkService, DEFAULT_ADDRESS_POOLS, DEFAULT_BRIDGE_POOLS, DEFAULT_V6_POOL } from "./service.ts";
export type {
  AttachResult,
  ContainerLookup,
  ContainerNetSpec,
  EndpointConfigInput,
  EndpointRequest,
  NetworkRecord,
  NetworkServiceOptions,
} from "./service.ts";
export { parseLink, parseLinkPath, linkEnv, legacyLinkName } from "./links.ts";
export type { Link, LinkTarget } from "./links.ts";
export { portsSummary, portMap, portRequests, parsePortKey, PortReserver, ephemeralRange } from "./ports.ts";
export type { PortMapping, PortRequest } from "./ports.ts";
export { Firewall, renderRules, chainNames } from "./firewall.ts";
export type { FirewallState, FirewallBridge, FirewallPort } from "./firewall.ts";
export { DnsServer, parseQuery, buildQuery, buildResponse, reverseName, QTYPE, RCODE } from "./dns.ts";
export type { DnsResolver, DnsQuery } from "./dns.ts";
export { cniExec, pinNetns, unpinNetns, DEFAULT_CNI_PATH } from "./cni.ts";
export type { CniResult, CniTarget } from "./cni.ts";
export { parseCidr, parseIp, formatIp, formatCidr, overlaps, allocateSubnet } from "./ipnet.ts";
export type { Cidr } from "./ipnet.ts";
