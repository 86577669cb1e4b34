import { BlockList, isIP } from "node:net";
import { invalidArgument } from "../base/mod.ts";
import { DEFAULT_DOMAIN, LEGACY_DEFAULT_DOMAIN } from "../oci/mod.ts";

/** Where Docker Hub's registry API lives. */
export const DOCKER_HUB_REGISTRY = "https://registry-1.docker.io";

/** The daemon settings that decide how a registry is reached (daemon.json keys of the same names). */
export interface RegistryHostsConfig {
  /** `registry-mirrors`: base URLs tried in order before Docker Hub for docker.io pulls. */
  mirrors?: string[];
  /** `insecure-registries`: `host[:port]` or CIDR; HTTPS without verification, then plain HTTP. */
  insecureRegistries?: string[];
  /** Where docker.io's own registry API is; default `https://registry-1.docker.io` (tests point it elsewhere). */
  dockerHub?: string;
}

/**
 * One place to talk to for a registry. `candidates` are the base URLs to try in order (an
 * insecure registry is tried over HTTPS without verification, then over plain HTTP); the
 * first that answers HTTP is remembered.
 */
export interface Endpoint {
  /** The registry domain of the references served here (`docker.io`, `localhost:5000`). */
  domain: string;
  candidates: URL[];
  /** A pull-through mirror of Docker Hub: gets no credentials, and a 404 falls back. */
  mirror: boolean;
  /** Skip TLS verification when the candidate is HTTPS. */
  insecureTls: boolean;
}

/** Validates a `registry-mirrors` entry: http(s), no credentials, no path, query or fragment. */
export function parseMirror(s: string): URL {
  let u: URL;
  try {
    u = new URL(s.includes("://") ? s : `https://${s}`);
  } catch {
    throw invalidArgument(`Invalid mirror "${s}": not a URL`);
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") throw invalidArgument(`Invalid mirror "${s}": unsupported scheme "${u.protocol}"`);
  if (u.username || u.password) throw invalidArgument(`Invalid mirror "${s}": credentials are not allowed in the URL`);
  if ((u.pathname !== "/" && u.pathname !== "") || u.search || u.hash)
    throw invalidArgument(`Invalid mirror "${s}": path, query and fragment are not supported`);
  return new URL(u.origin);
}

/** The host part of `host[:port]` without brackets. */
function hostname(domain: string): string {
  if (domain.startsWith("[")) return domain.slice(1, domain.indexOf("]"));
  const i = domain.lastIndexOf(":");
  return i >= 0 && domain.indexOf(":") === i ? domain.slice(0, i) : domain;
}

/** Whether a registry domain is on this machine (localhost, 127.0.0.0/8, ::1). */
export function isLoopback(domain: string): boolean {
  const h = hostname(domain).toLowerCase();
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  if (isIP(h) === 6) return h === "::1" || h === "0:0:0:0:0:0:0:1";
  return false;
}

/** Whether `insecure-registries` (or being on loopback) allows plain HTTP or unverified TLS for a domain. */
export function isInsecure(domain: string, config: RegistryHostsConfig): boolean {
  if (isLoopback(domain)) return true;
  const h = hostname(domain).toLowerCase();
  const d = domain.toLowerCase();
  for (const entry of config.insecureRegistries ?? []) {
    const e = entry
      .toLowerCase()
      .replace(/^https?:\/\//, "")
      .replace(/\/+$/, "");
    if (e.includes("/")) {
      const [net, bits] = e.split("/");
      const family = isIP(net ?? "");
      if (!family || !isIP(h) || isIP(h) !== family) continue;
      const list = new BlockList();
      try {
        list.addSubnet(net ?? "", Number(bits), family === 4 ? "ipv4" : "ipv6");
      } catch {
        continue;
      }
      if (list.check(h, family === 4 ? "ipv4" : "ipv6")) return true;
    } else if (e === d || e === h) {
      return true;
    }
  }
  return false;
}

/** The endpoint of a registry domain itself (no mirrors). */
export function registryEndpoint(domain: string, config: RegistryHostsConfig): Endpoint {
  if (domain === DEFAULT_DOMAIN || domain === LEGACY_DEFAULT_DOMAIN || domain === "registry-1.docker.io") {
    const hub = new URL(config.dockerHub ?? DOCKER_HUB_REGISTRY);
    return { domain: DEFAULT_DOMAIN, candidates: [new URL(hub.origin)], mirror: false, insecureTls: false };
  }
  if (isLoopback(domain)) {
    // Local registries are nearly always plain HTTP: try that first to save a TLS handshake.
    return { domain, candidates: [new URL(`http://${domain}`), new URL(`https://${domain}`)], mirror: false, insecureTls: true };
  }
  if (isInsecure(domain, config)) {
    return { domain, candidates: [new URL(`https://${domain}`), new URL(`http://${domain}`)], mirror: false, insecureTls: true };
  }
  return { domain, candidates: [new URL(`https://${domain}`)], mirror: false, insecureTls: false };
}

/** Endpoints to pull from, in order: the mirrors for docker.io, then the registry itself. */
export function pullEndpoints(domain: string, config: RegistryHostsConfig): Endpoint[] {
  const own = registryEndpoint(domain, config);
  if (own.domain !== DEFAULT_DOMAIN) return [own];
  const mirrors = (config.mirrors ?? []).map((m) => {
    const u = parseMirror(m);
    const insecure = u.protocol === "https:" && isInsecure(u.host, config);
    return { domain: DEFAULT_DOMAIN, candidates: [u], mirror: true, insecureTls: insecure } satisfies Endpoint;
  });
  return [...mirrors, own];
}

/**
 * The registry domain for a login server address as the docker CLI sends it
 * (`https://index.docker.io/v1/`, `localhost:5000`, `https://myreg.example/`).
 */
export function registryDomain(serverAddress: string): string {
  let s = serverAddress.trim();
  if (!s) return DEFAULT_DOMAIN;
  s = s.replace(/^[a-z]+:\/\//i, "");
  s = s.split("/")[0] ?? "";
  s = s.toLowerCase();
  if (!s || s === LEGACY_DEFAULT_DOMAIN || s === DEFAULT_DOMAIN || s === "registry-1.docker.io") return DEFAULT_DOMAIN;
  if (!/^(?:[a-z0-9]([a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*|\[[a-f0-9:]+\])(?::\d{1,5})?$/.test(s)) {
    throw invalidArgument(`Invalid registry address "${serverAddress.slice(0, 200)}"`);
  }
  return s;
}
