import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { type Host, RealHost, writeFileAtomic } from "../base/mod.ts";
import { invalidArgument, unavailable } from "../base/mod.ts";
import { DEFAULT_DOMAIN, parseReference } from "../oci/mod.ts";
import type { AuthConfig } from "./types.ts";

/** The config.json key of Docker Hub's credentials. */
export const INDEX_SERVER = "https://index.docker.io/v1/";

/** One entry of config.json `auths` as stored on disk. */
interface StoredAuth {
  auth?: string;
  username?: string;
  password?: string;
  email?: string;
  identitytoken?: string;
  registrytoken?: string;
  [key: string]: unknown;
}

/** The parts of the docker CLI's config.json that berth reads; unknown keys survive a save. */
export interface ConfigFileData {
  auths?: Record<string, StoredAuth>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  psFormat?: string;
  imagesFormat?: string;
  statsFormat?: string;
  detachKeys?: string;
  HttpHeaders?: Record<string, string>;
  [key: string]: unknown;
}

/** Credentials as a store returns them: username and password, or an identity token. */
export interface Credentials {
  serverAddress: string;
  username?: string;
  password?: string;
  identityToken?: string;
  email?: string;
}

/** The config directory: `--config`, then DOCKER_CONFIG, then ~/.docker. */
export function defaultConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_CONFIG || join(homedir(), ".docker");
}

/** The hostname (and port) of a registry address that may be a URL: `https://r.io/v1/` → `r.io`. */
export function convertToHostname(address: string): string {
  if (address.includes("://")) {
    try {
      const u = new URL(address);
      if (u.hostname !== "") return u.host;
    } catch {
      // fall through: treat as a plain host/path
    }
  }
  const slash = address.indexOf("/");
  return slash < 0 ? address : address.slice(0, slash);
}

/** The config key of the registry holding an image: `https://index.docker.io/v1/` or `localhost:5000`. */
export function registryKeyForImage(image: string): string {
  const domain = parseReference(image).domain;
  return domain === DEFAULT_DOMAIN ? INDEX_SERVER : domain;
}

/**
 * docker's `X-Registry-Auth` header value: base64url (padded) JSON of the credentials.
 * Empty credentials encode as `{}` (the daemon then pulls anonymously).
 */
export function encodeRegistryAuth(creds: Credentials | AuthConfig | undefined): string {
  const c: AuthConfig = {};
  if (creds) {
    if ("serverAddress" in creds) {
      if (creds.username) c.username = creds.username;
      if (creds.password) c.password = creds.password;
      if (creds.email) c.email = creds.email;
      if (creds.serverAddress) c.serveraddress = creds.serverAddress;
      if (creds.identityToken) c.identitytoken = creds.identityToken;
    } else Object.assign(c, creds);
  }
  // Go's base64.URLEncoding: the url-safe alphabet, with padding.
  return Buffer.from(JSON.stringify(c), "utf8").toString("base64").replace(/\+/g, "-").replace(/\//g, "_");
}

/** Decodes an `X-Registry-Auth` value (standard or url-safe base64). */
export function decodeRegistryAuth(header: string): AuthConfig {
  const text = Buffer.from(header.replace(/-/g, "+").replace(/_/g, "/"), "base64").toString("utf8");
  return JSON.parse(text) as AuthConfig;
}

/**
 * The docker CLI's config file (`<dir>/config.json`) with its credential stores: the file's
 * `auths` (base64 `user:pass`), or `docker-credential-<helper>` programs named by `credsStore`
 * and `credHelpers`, run through the `Host` seam.
 */
export class ConfigFile {
  readonly dir: string;
  readonly path: string;
  data: ConfigFileData;
  #host: Host;

  constructor(dir: string, data: ConfigFileData, host: Host) {
    this.dir = dir;
    this.path = join(dir, "config.json");
    this.data = data;
    this.#host = host;
  }

  /** Loads `<dir>/config.json`; a missing file is an empty config. */
  static load(dir = defaultConfigDir(), host: Host = new RealHost()): ConfigFile {
    const path = join(dir, "config.json");
    let data: ConfigFileData = {};
    let text: string | undefined;
    try {
      text = readFileSync(path, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    if (text !== undefined && text.trim() !== "") {
      try {
        data = JSON.parse(text) as ConfigFileData;
      } catch (e) {
        throw invalidArgument(`Cannot parse config file "${path}": ${(e as Error).message}`);
      }
      if (data === null || typeof data !== "object" || Array.isArray(data))
        throw invalidArgument(`Cannot parse config file "${path}": not an object`);
    }
    return new ConfigFile(dir, data, host);
  }

  /** Writes the file atomically (mode 0600, like docker). */
  async save(): Promise<void> {
    await writeFileAtomic(this.path, `${JSON.stringify(this.data, null, "\t")}\n`, 0o600);
  }

  /** The credential helper for a registry key, if any (credHelpers first, then credsStore). */
  helperFor(serverAddress: string): string | undefined {
    const h = this.data.credHelpers?.[serverAddress] ?? this.data.credHelpers?.[convertToHostname(serverAddress)];
    return h || this.data.credsStore || undefined;
  }

  /** Credentials for a registry key (`https://index.docker.io/v1/`, `localhost:5000`); empty when none are stored. */
  async get(serverAddress: string): Promise<Credentials> {
    const helper = this.helperFor(serverAddress);
    const fromFile = this.#fileGet(serverAddress);
    if (!helper) return fromFile;
    const c = await this.#helperGet(helper, serverAddress);
    if (fromFile.email) c.email = fromFile.email;
    return c;
  }

  /** Stores credentials (in the helper, or base64 in the file); the file keeps only the email when a helper is used. */
  async store(creds: Credentials): Promise<{ plaintext: boolean }> {
    const helper = this.helperFor(creds.serverAddress);
    const auths = (this.data.auths ??= {});
    if (helper) {
      const secret = creds.identityToken ?? creds.password ?? "";
      const username = creds.identityToken ? "<token>" : (creds.username ?? "");
      await this.#runHelper(helper, "store", JSON.stringify({ ServerURL: creds.serverAddress, Username: username, Secret: secret }));
      const entry: StoredAuth = {};
      if (creds.email) entry.email = creds.email;
      auths[creds.serverAddress] = entry;
      await this.save();
      return { plaintext: false };
    }
    const entry: StoredAuth = {};
    if (creds.username || creds.password) entry.auth = Buffer.from(`${creds.username ?? ""}:${creds.password ?? ""}`).toString("base64");
    if (creds.email) entry.email = creds.email;
    if (creds.identityToken) entry.identitytoken = creds.identityToken;
    auths[creds.serverAddress] = entry;
    await this.save();
    return { plaintext: Boolean(creds.password) };
  }

  /** Erases stored credentials of a registry key; false when there were none. */
  async erase(serverAddress: string): Promise<boolean> {
    const helper = this.helperFor(serverAddress);
    const auths = this.data.auths ?? {};
    const had = serverAddress in auths;
    if (helper) {
      try {
        await this.#runHelper(helper, "erase", serverAddress);
      } catch (e) {
        if (!had) throw e;
      }
    } else if (!had) return false;
    delete auths[serverAddress];
    await this.save();
    return true;
  }

  #fileGet(serverAddress: string): Credentials {
    const auths = this.data.auths ?? {};
    let key: string | undefined = serverAddress in auths ? serverAddress : undefined;
    if (key === undefined) {
      const want = convertToHostname(serverAddress);
      key = Object.keys(auths).find((k) => convertToHostname(k) === want);
    }
    const out: Credentials = { serverAddress: key ?? serverAddress };
    if (key === undefined) return out;
    const e = auths[key] ?? {};
    if (e.auth) {
      const decoded = Buffer.from(e.auth, "base64").toString("utf8");
      const i = decoded.indexOf(":");
      if (i <= 0) throw invalidArgument(`Invalid auth configuration file "${this.path}"`);
      out.username = decoded.slice(0, i);
      out.password = decoded.slice(i + 1).replace(/\0+$/, "");
    } else {
      if (e.username) out.username = e.username;
      if (e.password) out.password = e.password;
    }
    if (e.email) out.email = e.email;
    if (e.identitytoken) out.identityToken = e.identitytoken;
    return out;
  }

  async #helperGet(helper: string, serverAddress: string): Promise<Credentials> {
    let text: string;
    try {
      text = await this.#runHelper(helper, "get", serverAddress);
    } catch (e) {
      if (/credentials not found/i.test((e as Error).message)) return { serverAddress };
      throw e;
    }
    let r: { ServerURL?: string; Username?: string; Secret?: string };
    try {
      r = JSON.parse(text) as typeof r;
    } catch {
      throw invalidArgument(`Credential helper "docker-credential-${helper}" answered with invalid JSON`);
    }
    const c: Credentials = { serverAddress };
    if (r.Username === "<token>") c.identityToken = r.Secret ?? "";
    else {
      if (r.Username) c.username = r.Username;
      if (r.Secret) c.password = r.Secret;
    }
    return c;
  }

  async #runHelper(helper: string, action: "get" | "store" | "erase" | "list", input: string): Promise<string> {
    const program = `docker-credential-${helper}`;
    let r: Awaited<ReturnType<Host["run"]>>;
    try {
      r = await this.#host.run(program, [action], { input, allowFailure: true });
    } catch (e) {
      throw unavailable(`error getting credentials - err: exec: "${program}": executable file not found in $PATH, out: \`\``, { cause: e });
    }
    if (r.code !== 0) {
      const out = (r.stdout.trim() || r.stderr.trim()).trim();
      throw unavailable(out || `${program} ${action} failed (exit ${r.code})`);
    }
    return r.stdout;
  }
}
