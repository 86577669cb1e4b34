import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import type { Duplex, Readable } from "node:stream";
import { invalidArgument, permissionDenied } from "../base/mod.ts";
import { ConnectError, DaemonError } from "./errors.ts";

/** Where the daemon listens: a unix socket, or TCP (plain or TLS). */
export type Endpoint =
  | { kind: "unix"; path: string; url: string }
  | { kind: "tcp"; hostname: string; port: number; tls: boolean; url: string };

/** TLS settings for a tcp:// daemon (docker's --tls, --tlsverify, --tlscacert, --tlscert, --tlskey). */
export interface TlsSettings {
  /** Verify the daemon's certificate against `ca` (docker's --tlsverify). */
  verify: boolean;
  ca?: string;
  cert?: string;
  key?: string;
}

/** The default daemon address when neither BERTH_HOST, DOCKER_HOST nor -H say otherwise. */
export const DEFAULT_HOST = "unix:///run/berth/berth.sock";

/**
 * Parses a daemon address as the docker CLI accepts it: `unix:///path`, `tcp://host:port`,
 * `host:port`, `http(s)://host:port`. The default TCP port is 2375, or 2376 with TLS.
 */
export function parseHost(input: string, tls = false): Endpoint {
  let s = input.trim();
  if (s === "") s = DEFAULT_HOST;
  if (s.startsWith("unix://")) {
    const path = s.slice("unix://".length);
    if (!path.startsWith("/")) throw invalidArgument(`Invalid bind address format: ${input}`);
    return { kind: "unix", path, url: s };
  }
  if (s.startsWith("/")) return { kind: "unix", path: s, url: `unix://${s}` };
  let useTls = tls;
  let rest: string;
  if (s.startsWith("tcp://")) rest = s.slice(6);
  else if (s.startsWith("http://")) rest = s.slice(7);
  else if (s.startsWith("https://")) {
    rest = s.slice(8);
    useTls = true;
  } else if (/^[a-z]+:\/\//i.test(s)) {
    throw invalidArgument(`Invalid bind address format: ${input}`);
  } else rest = s;
  rest = rest.replace(/\/+$/, "");
  let hostname = rest;
  let port = useTls ? 2376 : 2375;
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest) ?? /^([^:]*)(?::(\d+))?$/.exec(rest);
  if (!m) throw invalidArgument(`Invalid bind address format: ${input}`);
  hostname = m[1] || "127.0.0.1";
  if (m[2] !== undefined) port = Number(m[2]);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw invalidArgument(`Invalid bind address format: ${input}`);
  const shown = hostname.includes(":") ? `[${hostname}]` : hostname;
  return { kind: "tcp", hostname, port, tls: useTls, url: `tcp://${shown}:${port}` };
}

/** One value of a query string; arrays repeat the key, undefined and false-y optional values are left out. */
export type QueryValue = string | number | boolean | undefined | null | readonly string[];

/** What a request sends. */
export interface RequestOptions {
  method?: string;
  /** Path without the version prefix, e.g. `/images/json`. */
  path: string;
  query?: Record<string, QueryValue>;
  headers?: Record<string, string>;
  /** A JSON body (serialised), raw bytes, or a stream piped as the body. */
  json?: unknown;
  body?: string | Uint8Array | Readable;
  signal?: AbortSignal;
  /** Do not add the `/vX.Y` prefix (only `/_ping` and friends). */
  unversioned?: boolean;
}

/** A response whose status was 2xx or 3xx (docker treats 304 "already stopped" as success); the body is not read yet. */
export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: http.IncomingMessage;
}

/** Maximum size of an error body or JSON answer that is read in full (a hostile daemon cannot exhaust memory). */
const MAX_JSON_BODY = 256 * 1024 * 1024;
const MAX_ERROR_BODY = 1024 * 1024;

/**
 * Low-level HTTP over the daemon's socket: versioned paths, JSON bodies, daemon errors turned into
 * `DaemonError`, connection failures into `ConnectError`. `EngineClient` builds on it.
 */
export class Transport {
  readonly endpoint: Endpoint;
  #agent: http.Agent;
  #version: string | undefined;
  #headers: Record<string, string>;

  constructor(endpoint: Endpoint, options: { tls?: TlsSettings; headers?: Record<string, string> } = {}) {
    this.endpoint = endpoint;
    this.#headers = { "User-Agent": "berth-cli", ...options.headers };
    if (endpoint.kind === "tcp" && endpoint.tls) {
      const t = options.tls;
      this.#agent = new https.Agent({
        keepAlive: true,
        rejectUnauthorized: t?.verify ?? false,
        ...(t?.ca ? { ca: readFileSync(t.ca) } : {}),
        ...(t?.cert ? { cert: readFileSync(t.cert) } : {}),
        ...(t?.key ? { key: readFileSync(t.key) } : {}),
      });
    } else {
      this.#agent = new http.Agent({ keepAlive: true });
    }
  }

  /** The API version used in paths (`1.47`), once negotiated or forced. */
  get version(): string | undefined {
    return this.#version;
  }
  set version(v: string | undefined) {
    this.#version = v;
  }

  /** Closes idle keep-alive connections so the process can exit. */
  close(): void {
    this.#agent.destroy();
  }

  #requestOptions(o: RequestOptions): http.RequestOptions {
    let path = o.path;
    if (!o.unversioned && this.#version) path = `/v${this.#version}${path}`;
    const qs = encodeQuery(o.query);
    if (qs) path += `?${qs}`;
    const headers: Record<string, string> = { ...this.#headers, ...o.headers };
    const base: http.RequestOptions = { method: o.method ?? "GET", path, headers, agent: this.#agent };
    if (o.signal) base.signal = o.signal;
    if (this.endpoint.kind === "unix") {
      base.socketPath = this.endpoint.path;
      headers.Host = "api.moby.localhost";
    } else {
      base.hostname = this.endpoint.hostname;
      base.port = this.endpoint.port;
    }
    return base;
  }

  #newRequest(opts: http.RequestOptions): http.ClientRequest {
    if (this.endpoint.kind === "tcp" && this.endpoint.tls) return https.request(opts);
    return http.request(opts);
  }

  /** Sends a request and resolves with the response when its status is 2xx; otherwise throws `DaemonError`. */
  async request(o: RequestOptions): Promise<RawResponse> {
    const opts = this.#requestOptions(o);
    const headers = opts.headers as Record<string, string>;
    let payload: string | Uint8Array | Readable | undefined = o.body;
    if (o.json !== undefined) {
      payload = JSON.stringify(o.json);
      headers["Content-Type"] ??= "application/json";
    }
    if (typeof payload === "string" || payload instanceof Uint8Array) {
      headers["Content-Length"] = String(Buffer.byteLength(payload));
    }
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = this.#newRequest(opts);
      req.on("response", resolve);
      req.on("error", (e) => reject(this.#wrapError(e)));
      if (payload === undefined) req.end();
      else if (typeof payload === "string" || payload instanceof Uint8Array) req.end(payload);
      else {
        payload.on("error", (e) => req.destroy(e));
        payload.pipe(req);
      }
    });
    if (res.statusCode === undefined || res.statusCode < 200 || res.statusCode >= 400) {
      throw await errorFromResponse(res);
    }
    return { status: res.statusCode, headers: res.headers, body: res };
  }

  /** Sends a request and parses the JSON answer. */
  async json<T>(o: RequestOptions): Promise<T> {
    const res = await this.request(o);
    const text = await readText(res.body, MAX_JSON_BODY);
    if (text.trim() === "") return undefined as T;
    return JSON.parse(text) as T;
  }

  /** Sends a request and discards the answer. */
  async call(o: RequestOptions): Promise<RawResponse> {
    const res = await this.request(o);
    res.body.resume();
    await new Promise<void>((resolve) => {
      if (res.body.readableEnded) resolve();
      else {
        res.body.on("end", resolve);
        res.body.on("close", resolve);
      }
    });
    return res;
  }

  /**
   * Opens a hijacked connection (`Connection: Upgrade`, `Upgrade: tcp`): after the daemon's
   * 101 answer the socket is a raw duplex stream (attach, exec start). Bytes the daemon sent
   * with its answer are pushed back so the caller reads them first.
   */
  async hijack(o: RequestOptions): Promise<{ socket: Duplex; headers: http.IncomingHttpHeaders }> {
    const opts = this.#requestOptions(o);
    // The hijacked socket must not go back to a keep-alive pool.
    opts.agent = false;
    const headers = opts.headers as Record<string, string>;
    headers.Connection = "Upgrade";
    headers.Upgrade = "tcp";
    let payload: string | undefined;
    if (o.json !== undefined) {
      payload = JSON.stringify(o.json);
      headers["Content-Type"] = "application/json";
      headers["Content-Length"] = String(Buffer.byteLength(payload));
    }
    return await new Promise((resolve, reject) => {
      const req = this.#newRequest(opts);
      req.on("upgrade", (res, socket, head) => {
        if (head.length > 0) socket.unshift(head);
        resolve({ socket, headers: res.headers });
      });
      req.on("response", (res) => {
        if (res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300) {
          // An old-style daemon answers 200 and then streams on the same connection.
          resolve({ socket: res as unknown as Duplex, headers: res.headers });
          return;
        }
        errorFromResponse(res).then(reject, reject);
      });
      req.on("error", (e) => reject(this.#wrapError(e)));
      req.end(payload);
    });
  }

  #wrapError(e: Error): Error {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EACCES" || code === "EPERM") {
      return permissionDenied(
        `permission denied while trying to connect to the Docker daemon socket at ${this.endpoint.url}: ${e.message}`,
        {
          cause: e,
        },
      );
    }
    if (code === "ENOENT" || code === "ECONNREFUSED" || code === "EHOSTUNREACH" || code === "ENOTFOUND" || code === "ECONNRESET") {
      return new ConnectError(this.endpoint.url, e);
    }
    return e;
  }
}

/** Encodes a query object the way the Engine API expects (`1`/`0` for booleans, repeated keys for arrays). */
export function encodeQuery(q: Record<string, QueryValue> | undefined): string {
  if (!q) return "";
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined || v === null) continue;
    if (typeof v === "boolean") p.append(k, v ? "1" : "0");
    else if (Array.isArray(v)) for (const x of v) p.append(k, x);
    else p.append(k, String(v));
  }
  return p.toString();
}

/** Reads a stream to a string, failing past `max` bytes. */
export async function readText(stream: Readable, max = MAX_JSON_BODY): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    const b = typeof c === "string" ? Buffer.from(c) : (c as Buffer);
    n += b.length;
    if (n > max) {
      stream.destroy();
      throw invalidArgument(`Response from daemon is larger than ${max} bytes`);
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString("utf8");
}

async function errorFromResponse(res: http.IncomingMessage): Promise<DaemonError> {
  const status = res.statusCode ?? 500;
  let text = "";
  try {
    text = await readText(res, MAX_ERROR_BODY);
  } catch {
    text = "";
  }
  let message = text.trim();
  const ct = String(res.headers["content-type"] ?? "");
  if (ct.includes("json") || message.startsWith("{")) {
    try {
      const j = JSON.parse(message) as { message?: unknown };
      if (typeof j.message === "string") message = j.message;
    } catch {
      // Not JSON after all: keep the text.
    }
  }
  if (message === "") message = `${status} ${http.STATUS_CODES[status] ?? ""}`.trim();
  return new DaemonError(status, message);
}
