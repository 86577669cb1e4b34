import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { BerthError, ErrorKind, invalidArgument, kindOf, messageOf } from "../base/mod.ts";

/** Newest and oldest Engine API versions berthd speaks. */
export const API_VERSION = "1.47";
export const MIN_API_VERSION = "1.24";
/** The Docker engine release whose API berth implements, reported in /version. */
export const ENGINE_VERSION = "27.5.1";
export const BERTH_VERSION = "0.1.0";

/** Compares API versions like "1.41" < "1.47". */
export function versionLess(a: string, b: string): boolean {
  const [am = 0, an = 0] = a.split(".").map(Number);
  const [bm = 0, bn = 0] = b.split(".").map(Number);
  return am < bm || (am === bm && an < bn);
}

const STATUS: Record<string, number> = {
  [ErrorKind.NotFound]: 404,
  [ErrorKind.AlreadyExists]: 409,
  [ErrorKind.InvalidArgument]: 400,
  [ErrorKind.Conflict]: 409,
  [ErrorKind.FailedPrecondition]: 409,
  [ErrorKind.Unavailable]: 503,
  [ErrorKind.Unauthorized]: 401,
  [ErrorKind.PermissionDenied]: 403,
  [ErrorKind.NotImplemented]: 501,
  [ErrorKind.Canceled]: 499,
  [ErrorKind.Internal]: 500,
};

/** The HTTP status for an error kind; the one place that knows. */
export function statusOf(err: unknown): number {
  return STATUS[kindOf(err)] ?? 500;
}

/** One request being served. */
export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
  /** The API version the client asked for (path prefix), or the newest. */
  version: string;
  /** The socket when the request is an upgrade (hijack); undefined otherwise. */
  upgradeSocket?: Duplex;
  upgradeHead?: Buffer;
  /** The request body of an upgrade request (it arrives with the head). */
  upgradeBody?: Buffer;
}

export type Handler = (ctx: Ctx) => Promise<void> | void;

interface Route {
  method: string;
  parts: string[];
  handler: Handler;
}

/** A small router: `/containers/{id}/json` patterns; `{name*}` matches the rest (image names with slashes). */
export class Router {
  #routes: Route[] = [];

  add(method: string, pattern: string, handler: Handler): void {
    this.#routes.push({ method, parts: pattern.split("/").filter(Boolean), handler });
  }

  match(method: string, path: string): { handler: Handler; params: Record<string, string> } | "method" | undefined {
    const segs = path.split("/").filter(Boolean);
    let methodMismatch = false;
    for (const r of this.#routes) {
      const params = matchParts(r.parts, segs);
      if (!params) continue;
      if (r.method !== method && !(method === "HEAD" && r.method === "GET")) {
        methodMismatch = true;
        continue;
      }
      return { handler: r.handler, params };
    }
    return methodMismatch ? "method" : undefined;
  }
}

function matchParts(parts: string[], segs: string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i] ?? "";
    if (p.startsWith("{") && p.endsWith("*}")) {
      // Greedy name with slashes, followed by fixed trailing parts.
      const tail = parts.slice(i + 1);
      if (segs.length - i < tail.length + 1) return undefined;
      const end = segs.length - tail.length;
      for (let k = 0; k < tail.length; k++) {
        const t = tail[k] ?? "";
        const s = segs[end + k] ?? "";
        if (t.startsWith("{")) params[t.slice(1, -1)] = decodeURIComponent(s);
        else if (t !== s) return undefined;
      }
      params[p.slice(1, -2)] = segs.slice(i, end).map(decodeURIComponent).join("/");
      return params;
    }
    const s = segs[i];
    if (s === undefined) return undefined;
    if (p.startsWith("{")) params[p.slice(1, -1)] = decodeURIComponent(s);
    else if (p !== s) return undefined;
  }
  return segs.length === parts.length ? params : undefined;
}

/** Largest JSON request body accepted. */
export const MAX_JSON_BODY = 16 * 1024 * 1024;

/** Reads a request body up to `max` bytes. */
export async function readBody(req: IncomingMessage, max = MAX_JSON_BODY): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > max) throw invalidArgument(`Request body is larger than ${max} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Reads and parses a JSON body; empty is `undefined`. Depth and size are bounded. */
export async function readJson<T = unknown>(req: IncomingMessage): Promise<T | undefined> {
  const buf = await readBody(req);
  if (buf.length === 0) return undefined;
  const text = buf.toString("utf8");
  if (text.includes("\uFFFD") && !Buffer.from(text, "utf8").equals(buf)) throw invalidArgument("Request body is not valid UTF-8");
  let depth = 0;
  let inStr = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inStr) {
      if (c === 92) i++;
      else if (c === 34) inStr = false;
    } else if (c === 34) inStr = true;
    else if (c === 123 || c === 91) {
      if (++depth > 200) throw invalidArgument("Request body is nested too deeply");
    } else if (c === 125 || c === 93) depth--;
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw invalidArgument(`invalid JSON: ${(e as Error).message}`);
  }
}

/** Sends a JSON response. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const data = Buffer.from(`${JSON.stringify(body)}\n`);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": data.length });
  res.end(data);
}

/** Sends an error as Docker does: status by kind, body `{"message": ...}`. */
export function sendError(res: ServerResponse, err: unknown): void {
  const status = statusOf(err);
  const message = messageOf(err);
  if (res.headersSent) {
    res.destroy(err instanceof Error ? err : new Error(message));
    return;
  }
  sendJson(res, status, { message });
}

/** Query helpers with Docker's boolean semantics ("1", "true", "True"). */
export function qBool(q: URLSearchParams, name: string, def = false): boolean {
  const v = q.get(name);
  if (v === null || v === "") return def;
  return !(v === "0" || v.toLowerCase() === "false");
}

export function qInt(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === "") return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw invalidArgument(`Invalid value for "${name}": ${v}`);
  return n;
}

/** Parses the `filters` query parameter: `{"key":["v"]}` or the legacy `{"key":{"v":true}}`. */
export function qFilters(q: URLSearchParams): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const raw = q.get("filters");
  if (!raw) return out;
  let j: unknown;
  try {
    j = JSON.parse(raw);
  } catch {
    throw invalidArgument(`invalid filter '${raw}'`);
  }
  if (!j || typeof j !== "object") throw invalidArgument(`invalid filter '${raw}'`);
  for (const [k, v] of Object.entries(j as Record<string, unknown>)) {
    if (Array.isArray(v)) out.set(k, v.map(String));
    else if (v && typeof v === "object") out.set(k, Object.keys(v as object));
    else throw invalidArgument(`invalid filter '${k}'`);
  }
  return out;
}

/** Rejects filter keys a route does not know, with Docker's message. */
export function checkFilterKeys(filters: Map<string, string[]>, allowed: readonly string[]): void {
  for (const k of filters.keys()) if (!allowed.includes(k)) throw invalidArgument(`invalid filter '${k}'`);
}

/**
 * A Docker JSON message stream (pull, push, load, build): one JSON object per line, flushed
 * as written. Errors after the headers are sent travel as `errorDetail` messages.
 */
export class JsonStream {
  #res: ServerResponse;
  #started = false;
  constructor(res: ServerResponse) {
    this.#res = res;
  }
  #start() {
    if (this.#started) return;
    this.#started = true;
    this.#res.writeHead(200, { "Content-Type": "application/json" });
  }
  write(msg: Record<string, unknown>): void {
    this.#start();
    this.#res.write(`${JSON.stringify(msg)}\r\n`);
  }
  error(err: unknown): void {
    const message = messageOf(err);
    if (!this.#started && !this.#res.headersSent) {
      sendError(this.#res, err);
      this.#started = true;
      return;
    }
    this.write({ errorDetail: { message }, error: message });
  }
  end(): void {
    this.#start();
    this.#res.end();
  }
  get started(): boolean {
    return this.#started;
  }
}

export { BerthError };
