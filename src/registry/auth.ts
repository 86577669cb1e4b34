import { createHash } from "node:crypto";
import { invalidArgument, unauthorized, unavailable } from "../base/mod.ts";
import { formatEntry, MAX_ERROR_BODY, parseErrorBody, redactUrl } from "./_errors.ts";
import { discard, errorFrom, readBounded, type Transport } from "./_http.ts";

/**
 * Credentials for one registry, as the docker CLI sends them in `X-Registry-Auth`: a username
 * and password, or an identity token (an OAuth2 refresh token from an earlier login), or a
 * registry token used as the bearer token directly.
 */
export interface Credentials {
  username?: string;
  password?: string;
  /** OAuth2 refresh token; exchanged at the token realm with a POST, as docker does. */
  identityToken?: string;
  /** A bearer token sent as is. */
  registryToken?: string;
}

/** A decoded `X-Registry-Auth` header: credentials and the server they were meant for. */
export interface RegistryAuth {
  credentials: Credentials;
  serverAddress?: string;
}

/**
 * Decodes the docker CLI's `X-Registry-Auth` header (base64url JSON of
 * `{username, password, auth, serveraddress, identitytoken, registrytoken}`). An empty or
 * `{}` header means anonymous. Garbage is an InvalidArgument error.
 */
export function parseRegistryAuth(value: string | undefined): RegistryAuth {
  if (!value || value.trim() === "") return { credentials: {} };
  if (value.length > 64 * 1024) throw invalidArgument("X-Registry-Auth header is too large");
  let doc: Record<string, unknown>;
  try {
    const json = Buffer.from(value.trim().replaceAll("-", "+").replaceAll("_", "/"), "base64").toString("utf8");
    doc = JSON.parse(json) as Record<string, unknown>;
  } catch {
    throw invalidArgument("Invalid X-Registry-Auth header: not base64-encoded JSON");
  }
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw invalidArgument("Invalid X-Registry-Auth header: not a JSON object");
  const str = (k: string): string | undefined => {
    const v = doc[k] ?? doc[k.toLowerCase()] ?? doc[k[0]?.toUpperCase() + k.slice(1)];
    return typeof v === "string" && v !== "" ? v : undefined;
  };
  const credentials: Credentials = {};
  let username = str("username");
  let password = str("password");
  const auth = str("auth");
  if (!username && auth) {
    const plain = Buffer.from(auth, "base64").toString("utf8");
    const i = plain.indexOf(":");
    if (i > 0) {
      username = plain.slice(0, i);
      password = plain.slice(i + 1);
    }
  }
  if (username) credentials.username = username;
  if (password) credentials.password = password;
  const identityToken = str("identitytoken");
  if (identityToken) credentials.identityToken = identityToken;
  const registryToken = str("registrytoken");
  if (registryToken) credentials.registryToken = registryToken;
  const out: RegistryAuth = { credentials };
  const serverAddress = str("serveraddress");
  if (serverAddress) out.serverAddress = serverAddress;
  return out;
}

/** Whether credentials hold anything to send. */
export function hasCredentials(c: Credentials | undefined): c is Credentials {
  return !!c && !!(c.username || c.password || c.identityToken || c.registryToken);
}

/** One `WWW-Authenticate` challenge: scheme (lowercased) and parameters (names lowercased). */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

/** Parses `WWW-Authenticate` values (RFC 7235), e.g. `Bearer realm="…",service="…",scope="…"`. */
export function parseChallenges(values: string | string[]): Challenge[] {
  const out: Challenge[] = [];
  for (const value of Array.isArray(values) ? values : [values]) {
    const s = value.slice(0, 8192);
    let i = 0;
    const ws = () => {
      while (i < s.length && (s[i] === " " || s[i] === "\t")) i++;
    };
    const token = (): string => {
      const start = i;
      while (i < s.length && TOKEN_CHAR.test(s[i] ?? "")) i++;
      return s.slice(start, i);
    };
    // Unquoted values are read leniently (servers send `realm=https://…`), up to a comma or space.
    const bare = (): string => {
      const start = i;
      while (i < s.length && s[i] !== "," && s[i] !== " " && s[i] !== "\t") i++;
      return s.slice(start, i);
    };
    const quoted = (): string => {
      i++; // opening quote
      let v = "";
      while (i < s.length && s[i] !== '"') {
        if (s[i] === "\\" && i + 1 < s.length) i++;
        v += s[i];
        i++;
      }
      i++; // closing quote
      return v;
    };
    while (i < s.length) {
      ws();
      while (s[i] === ",") {
        i++;
        ws();
      }
      const scheme = token();
      if (!scheme) {
        i++;
        continue;
      }
      const ch: Challenge = { scheme: scheme.toLowerCase(), params: {} };
      out.push(ch);
      ws();
      for (;;) {
        const save = i;
        ws();
        const name = token();
        ws();
        if (!name || s[i] !== "=") {
          // Not a parameter: the start of the next challenge (or a token68, which we ignore).
          i = name ? save : i;
          if (!name) {
            while (i < s.length && s[i] !== ",") i++;
          }
          break;
        }
        i++;
        ws();
        const v = s[i] === '"' ? quoted() : bare();
        ch.params[name.toLowerCase()] = v;
        ws();
        if (s[i] === ",") {
          i++;
          continue;
        }
        break;
      }
    }
  }
  return out;
}

/** A bearer token and when to stop using it. */
export interface Token {
  token: string;
  /** Epoch ms after which the token is refreshed (a little before it really expires). */
  refreshAt: number;
  /** A refresh token, when the token server issued one (login with `offline_token`). */
  refreshToken?: string;
}

/** Largest token response read: a JWT for a few scopes is a few KiB. */
export const MAX_TOKEN_RESPONSE = 1024 * 1024;

/** Tokens cached by (realm, service, scopes, credentials); bounded. */
export class TokenCache {
  #map = new Map<string, Token>();
  #max: number;
  #now: () => number;
  constructor(options: { max?: number; now?: () => number } = {}) {
    this.#max = options.max ?? 1000;
    this.#now = options.now ?? Date.now;
  }
  static key(realm: string, service: string | undefined, scopes: string[], creds: Credentials | undefined): string {
    const id = hasCredentials(creds)
      ? createHash("sha256")
          .update(JSON.stringify([creds.username, creds.password, creds.identityToken, creds.registryToken]))
          .digest("hex")
      : "";
    return JSON.stringify([realm, service ?? "", [...scopes].sort(), id]);
  }
  get(key: string): Token | undefined {
    const t = this.#map.get(key);
    if (!t) return undefined;
    if (this.#now() >= t.refreshAt) {
      this.#map.delete(key);
      return undefined;
    }
    return t;
  }
  set(key: string, t: Token): void {
    this.#map.delete(key);
    this.#map.set(key, t);
    while (this.#map.size > this.#max) {
      const oldest = this.#map.keys().next().value;
      if (oldest === undefined) break;
      this.#map.delete(oldest);
    }
  }
  delete(key: string): void {
    this.#map.delete(key);
  }
  get size(): number {
    return this.#map.size;
  }
}

/**
 * Whether credentials may be sent to a token realm: always over HTTPS; over plain HTTP only
 * to the registry's own host when the registry itself is plain HTTP (a local registry). A
 * realm elsewhere over HTTP, or a downgrade from an HTTPS registry, gets none.
 */
export function mayCredentialRealm(realm: URL, registry: URL): boolean {
  if (realm.protocol === "https:") return true;
  return realm.protocol === "http:" && registry.protocol === "http:" && realm.hostname === registry.hostname;
}

export interface TokenRequest {
  challenge: Challenge;
  /** The registry endpoint the challenge came from. */
  registry: URL;
  scopes: string[];
  credentials?: Credentials | undefined;
  /** Ask for a refresh token (login). */
  offline?: boolean;
  signal?: AbortSignal | undefined;
  now?: () => number;
}

/**
 * Gets a token from a Bearer challenge's realm: GET with Basic credentials (or anonymous), or
 * an OAuth2 POST with `grant_type=refresh_token` when the credentials hold an identity token.
 */
export async function fetchToken(transport: Transport, req: TokenRequest): Promise<Token> {
  const now = req.now ?? Date.now;
  const { params } = req.challenge;
  if (!params.realm) throw unauthorized(`Bearer challenge from "${req.registry.host}" has no realm`);
  let realm: URL;
  try {
    realm = new URL(params.realm);
  } catch {
    throw unauthorized(`Invalid token realm "${params.realm.slice(0, 200)}" from "${req.registry.host}"`);
  }
  if (realm.protocol !== "https:" && realm.protocol !== "http:") throw unauthorized(`Invalid token realm "${redactUrl(realm)}"`);
  const creds = hasCredentials(req.credentials) ? req.credentials : undefined;
  if (creds && !mayCredentialRealm(realm, req.registry)) {
    throw unauthorized(
      `Refusing to send credentials for "${req.registry.host}" to token realm "${redactUrl(realm)}": it is on another host and not HTTPS`,
    );
  }
  const service = params.service;
  let res: Awaited<ReturnType<Transport["send"]>>;
  if (creds?.identityToken) {
    const form = new URLSearchParams();
    form.set("grant_type", "refresh_token");
    form.set("refresh_token", creds.identityToken);
    if (service) form.set("service", service);
    form.set("client_id", "docker");
    if (req.scopes.length) form.set("scope", req.scopes.join(" "));
    if (req.offline) form.set("access_type", "offline");
    res = await transport.send({
      method: "POST",
      url: realm,
      headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
      body: form.toString(),
      signal: req.signal,
    });
  } else {
    const url = new URL(realm);
    if (service) url.searchParams.set("service", service);
    for (const s of req.scopes) url.searchParams.append("scope", s);
    const credentials: Record<string, string> = {};
    if (creds?.username) {
      url.searchParams.set("account", creds.username);
      credentials.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password ?? ""}`).toString("base64")}`;
    }
    if (req.offline) {
      url.searchParams.set("offline_token", "true");
      url.searchParams.set("client_id", "docker");
    }
    res = await transport.send({ method: "GET", url, credentials, signal: req.signal });
  }
  if (res.status === 401 || res.status === 403) {
    let body: Buffer = Buffer.alloc(0);
    try {
      body = await readBounded(res, MAX_ERROR_BODY, "Token error response");
    } catch {
      discard(res);
    }
    const entry = parseErrorBody(body)[0];
    const text = entry ? formatEntry(entry) : `${res.status} ${res.statusText}`.trim();
    throw unauthorized(/^(unauthorized|denied)\b/.test(text) ? text : `unauthorized: ${text}`, { detail: { status: res.status } });
  }
  if (res.status !== 200) throw await errorFrom(res, "GET");
  const bytes = await readBounded(res, MAX_TOKEN_RESPONSE, `Token response from "${redactUrl(realm)}"`);
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(bytes.toString("utf8")) as Record<string, unknown>;
  } catch {
    throw unavailable(`Token response from "${redactUrl(realm)}" is not JSON`);
  }
  if (!doc || typeof doc !== "object") throw unavailable(`Token response from "${redactUrl(realm)}" is not a JSON object`);
  const token = typeof doc.token === "string" && doc.token ? doc.token : typeof doc.access_token === "string" ? doc.access_token : "";
  if (!token) {
    const entries = parseErrorBody(bytes);
    throw unauthorized(`Token response from "${redactUrl(realm)}" has no token${entries[0] ? `: ${formatEntry(entries[0])}` : ""}`);
  }
  // A token goes into a header: refuse anything that could split it.
  if (!/^[\x21-\x7e]+$/.test(token)) throw unavailable(`Token from "${redactUrl(realm)}" contains invalid characters`);
  let lifetimeMs = 60_000;
  if (doc.expires_in !== undefined) {
    if (typeof doc.expires_in !== "number" || !Number.isFinite(doc.expires_in)) {
      throw unavailable(`Token from "${redactUrl(realm)}" has an invalid expires_in`);
    }
    if (doc.expires_in <= 0) throw unauthorized(`Token from "${redactUrl(realm)}" has already expired (expires_in ${doc.expires_in})`);
    lifetimeMs = doc.expires_in * 1000;
  }
  let issued = now();
  if (typeof doc.issued_at === "string") {
    const t = Date.parse(doc.issued_at);
    if (!Number.isNaN(t)) issued = Math.min(t, now());
  }
  const expiresAt = issued + lifetimeMs;
  if (expiresAt <= now()) throw unauthorized(`Token from "${redactUrl(realm)}" has already expired (issued at ${String(doc.issued_at)})`);
  const remaining = expiresAt - now();
  const t: Token = { token, refreshAt: now() + remaining - Math.min(10_000, remaining / 10) };
  if (typeof doc.refresh_token === "string" && doc.refresh_token) t.refreshToken = doc.refresh_token;
  return t;
}

/** The Basic authorization header value for credentials with a username. */
export function basicAuth(creds: Credentials): string {
  return `Basic ${Buffer.from(`${creds.username ?? ""}:${creds.password ?? ""}`).toString("base64")}`;
}

/** The challenge to answer: Bearer preferred over Basic. */
export function pickChallenge(challenges: Challenge[]): Challenge | undefined {
  return challenges.find((c) => c.scheme === "bearer") ?? challenges.find((c) => c.scheme === "basic");
}

/** Parses the challenges of a 401 response. */
export function challengesOf(res: { headers: Record<string, string | string[] | undefined> }): Challenge[] {
  const v = res.headers["www-authenticate"];
  return v === undefined ? [] : parseChallenges(v);
}
