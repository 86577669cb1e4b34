import { readFile } from "node:fs/promises";
import { invalidArgument, isNotFound } from "../base/mod.ts";

/**
 * berthd's configuration: `/etc/berth/daemon.json` with Docker's key names, overridden by
 * command-line flags. Unknown keys are ignored with a warning, as dockerd rejects only
 * conflicting ones.
 */
export interface DaemonConfig {
  dataRoot: string;
  execRoot: string;
  hosts: string[];
  registryMirrors: string[];
  insecureRegistries: string[];
  maxConcurrentDownloads: number;
  maxConcurrentUploads: number;
  debug: boolean;
  tls: boolean;
  tlsVerify: boolean;
  tlsCaCert?: string;
  tlsCert?: string;
  tlsKey?: string;
  defaultRuntime: string;
  runtimes: Record<string, { path: string; runtimeArgs?: string[] }>;
  bip?: string;
  defaultAddressPools: { base: string; size: number }[];
  dns: string[];
  logOpts: Record<string, string>;
  liveRestore: boolean;
  group: string;
  configFile: string;
  /** Everything daemon.json said, for keys later issues read. */
  raw: Record<string, unknown>;
}

export const DEFAULT_CONFIG_FILE = "/etc/berth/daemon.json";
export const DEFAULT_SOCKET = "unix:///run/berth/berth.sock";

export function defaultConfig(): DaemonConfig {
  return {
    dataRoot: "/var/lib/berth",
    execRoot: "/run/berth",
    hosts: [DEFAULT_SOCKET],
    registryMirrors: [],
    insecureRegistries: [],
    maxConcurrentDownloads: 3,
    maxConcurrentUploads: 5,
    debug: false,
    tls: false,
    tlsVerify: false,
    defaultRuntime: "runc",
    runtimes: {},
    defaultAddressPools: [],
    dns: [],
    logOpts: {},
    liveRestore: true,
    group: "berth",
    configFile: DEFAULT_CONFIG_FILE,
    raw: {},
  };
}

function strings(v: unknown, key: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string"))
    throw invalidArgument(`Invalid daemon configuration: "${key}" must be a list of strings`);
  return v as string[];
}

/** Reads daemon.json (a missing file is an empty config) and merges it over the defaults. */
export async function loadConfig(path = DEFAULT_CONFIG_FILE, required = false): Promise<DaemonConfig> {
  const c = defaultConfig();
  c.configFile = path;
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if (isNotFound(e) && !required) return c;
    throw invalidArgument(`Cannot read daemon configuration "${path}": ${(e as Error).message}`);
  }
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw invalidArgument(`Invalid daemon configuration "${path}": ${(e as Error).message}`);
  }
  if (!j || typeof j !== "object" || Array.isArray(j)) throw invalidArgument(`Invalid daemon configuration "${path}": not an object`);
  c.raw = j;
  if (typeof j["data-root"] === "string") c.dataRoot = j["data-root"];
  if (typeof j["exec-root"] === "string") c.execRoot = j["exec-root"];
  if (j.hosts !== undefined) c.hosts = strings(j.hosts, "hosts");
  c.registryMirrors = strings(j["registry-mirrors"], "registry-mirrors");
  c.insecureRegistries = strings(j["insecure-registries"], "insecure-registries");
  if (typeof j["max-concurrent-downloads"] === "number") c.maxConcurrentDownloads = Math.max(1, j["max-concurrent-downloads"]);
  if (typeof j["max-concurrent-uploads"] === "number") c.maxConcurrentUploads = Math.max(1, j["max-concurrent-uploads"]);
  if (typeof j.debug === "boolean") c.debug = j.debug;
  if (typeof j.tls === "boolean") c.tls = j.tls;
  if (typeof j.tlsverify === "boolean") c.tlsVerify = j.tlsverify;
  if (typeof j.tlscacert === "string") c.tlsCaCert = j.tlscacert;
  if (typeof j.tlscert === "string") c.tlsCert = j.tlscert;
  if (typeof j.tlskey === "string") c.tlsKey = j.tlskey;
  if (typeof j["default-runtime"] === "string") c.defaultRuntime = j["default-runtime"];
  if (j.runtimes && typeof j.runtimes === "object") c.runtimes = j.runtimes as DaemonConfig["runtimes"];
  if (typeof j.bip === "string") c.bip = j.bip;
  if (Array.isArray(j["default-address-pools"])) c.defaultAddressPools = j["default-address-pools"] as DaemonConfig["defaultAddressPools"];
  c.dns = strings(j.dns, "dns");
  if (j["log-opts"] && typeof j["log-opts"] === "object") c.logOpts = j["log-opts"] as Record<string, string>;
  if (typeof j["live-restore"] === "boolean") c.liveRestore = j["live-restore"];
  if (typeof j.group === "string") c.group = j.group;
  return c;
}
