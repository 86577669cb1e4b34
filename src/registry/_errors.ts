import {
  BerthError,
  ErrorKind,
  internal,
  invalidArgument,
  kindOf,
  notFound,
  permissionDenied,
  unauthorized,
  unavailable,
} from "../base/mod.ts";

/** One entry of a registry's JSON error body (`{"errors":[{"code","message","detail"}]}`). */
export interface RegistryErrorEntry {
  code: string;
  message: string;
}

/** What a registry error carries besides its message, in `BerthError.detail`. */
export interface RegistryErrorDetail {
  status?: number;
  code?: string;
  /** Worth retrying: a connection reset, a 5xx, a 429. */
  temporary?: boolean;
  /** How long the registry asked us to wait (Retry-After), in ms. */
  retryAfterMs?: number;
}

/** Largest error body read: a registry's error is a few hundred bytes; a hostile one is bounded. */
export const MAX_ERROR_BODY = 64 * 1024;

/** Parses a registry error body; unknown shapes give an empty list. */
export function parseErrorBody(bytes: Uint8Array): RegistryErrorEntry[] {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    return [];
  }
  const out: RegistryErrorEntry[] = [];
  const errors = (doc as { errors?: unknown } | null)?.errors;
  if (Array.isArray(errors)) {
    for (const e of errors.slice(0, 10)) {
      const o = e as { code?: unknown; message?: unknown } | null;
      if (!o || typeof o !== "object") continue;
      out.push({
        code: typeof o.code === "string" ? o.code.slice(0, 100) : "UNKNOWN",
        message: typeof o.message === "string" ? o.message.slice(0, 1000) : "",
      });
    }
    return out;
  }
  // Token servers answer with {"details": "..."} (Docker Hub) or {"error": "...", "error_description": "..."} (OAuth2).
  const o = doc as { details?: unknown; message?: unknown; error?: unknown; error_description?: unknown } | null;
  const text = [o?.details, o?.error_description, o?.message, o?.error].find((x) => typeof x === "string") as string | undefined;
  if (text) out.push({ code: "", message: text.slice(0, 1000) });
  return out;
}

/** Formats an error code as Go's errcode does: `MANIFEST_UNKNOWN` → `manifest unknown`. */
export function codeText(code: string): string {
  return code.toLowerCase().replaceAll("_", " ");
}

/** `manifest unknown: manifest unknown`, as the docker CLI prints a registry error. */
export function formatEntry(e: RegistryErrorEntry): string {
  if (!e.code) return e.message;
  return e.message ? `${codeText(e.code)}: ${e.message}` : codeText(e.code);
}

/** A URL without its query (signed storage URLs carry credentials there) or user info. */
export function redactUrl(url: URL | string): string {
  const u = new URL(url.toString());
  u.username = "";
  u.password = "";
  u.search = "";
  u.hash = "";
  return u.toString();
}

/** Whether an HTTP status is worth retrying. */
export function isTemporaryStatus(status: number): boolean {
  return status === 408 || status === 429 || status === 500 || status === 502 || status === 503 || status === 504;
}

/** Parses a Retry-After header (seconds or an HTTP date) into ms, capped at a minute. */
export function parseRetryAfter(v: string | undefined, now = Date.now()): number | undefined {
  if (!v) return undefined;
  const s = v.trim();
  let ms: number;
  if (/^\d+$/.test(s)) ms = Number(s) * 1000;
  else {
    const t = Date.parse(s);
    if (Number.isNaN(t)) return undefined;
    ms = Math.max(0, t - now);
  }
  return Math.min(ms, 60_000);
}

/** Builds the berth error for a registry's error response. */
export function responseError(options: {
  status: number;
  statusText?: string;
  method: string;
  url: URL | string;
  entries: RegistryErrorEntry[];
  retryAfterMs?: number;
}): BerthError {
  const { status, entries } = options;
  const first = entries[0];
  const code = first?.code || undefined;
  const detail: RegistryErrorDetail = { status, temporary: isTemporaryStatus(status) };
  if (code) detail.code = code;
  if (options.retryAfterMs !== undefined) detail.retryAfterMs = options.retryAfterMs;
  const message = first
    ? formatEntry(first)
    : `unexpected status from ${options.method} request to ${redactUrl(options.url)}: ${status}${options.statusText ? ` ${options.statusText}` : ""}`;
  const opts = { detail: detail as Record<string, unknown> };
  if (code === "UNAUTHORIZED" || status === 401) return unauthorized(message, opts);
  if (code === "DENIED" || status === 403) return permissionDenied(message, opts);
  if (status === 404 || code === "MANIFEST_UNKNOWN" || code === "NAME_UNKNOWN" || code === "BLOB_UNKNOWN") return notFound(message, opts);
  if (status === 429 || status >= 500) return unavailable(message, opts);
  if (status >= 400) return invalidArgument(message, opts);
  return internal(message, opts);
}

/** The registry error code carried by an error, if any. */
export function registryCode(err: unknown): string | undefined {
  return err instanceof BerthError ? ((err.detail as RegistryErrorDetail | undefined)?.code ?? undefined) : undefined;
}

/** The HTTP status carried by an error, if any. */
export function registryStatus(err: unknown): number | undefined {
  return err instanceof BerthError ? (err.detail as RegistryErrorDetail | undefined)?.status : undefined;
}

const TEMPORARY_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_CLOSED",
  "UND_ERR_RES_CONTENT_LENGTH_MISMATCH",
]);

/** Network-level error codes of Node and undici, searched through `cause` chains. */
export function networkCode(err: unknown): string | undefined {
  let e = err as { code?: unknown; cause?: unknown } | null | undefined;
  for (let i = 0; i < 5 && e && typeof e === "object"; i++) {
    if (typeof e.code === "string" && (TEMPORARY_CODES.has(e.code) || e.code.startsWith("ERR_SSL") || e.code === "ENOTFOUND"))
      return e.code;
    e = e.cause as typeof e;
  }
  return undefined;
}

/** Whether an error is worth retrying (network failure, 5xx, 429). Cancellation never is. */
export function isTemporary(err: unknown): boolean {
  if (kindOf(err) === ErrorKind.Canceled) return false;
  if (err instanceof BerthError) return (err.detail as RegistryErrorDetail | undefined)?.temporary === true;
  const code = networkCode(err);
  return code !== undefined && code !== "ENOTFOUND" && !code.startsWith("ERR_SSL");
}

/** Wraps a network failure into an Unavailable error that names the request. */
export function networkError(err: unknown, method: string, url: URL): BerthError {
  if (err instanceof BerthError) return err;
  const code = networkCode(err);
  const msg = (err as Error)?.message ?? String(err);
  return unavailable(
    `${method[0]}${method.slice(1).toLowerCase()} "${redactUrl(url)}": ${code && !msg.includes(code) ? `${code}: ` : ""}${msg}`,
    {
      cause: err,
      detail: { temporary: isTemporary(err), network: true } as Record<string, unknown>,
    },
  );
}

/** Whether an error came from failing to talk to the server at all (no HTTP response). */
export function isNetworkError(err: unknown): boolean {
  if (err instanceof BerthError) return (err.detail as { network?: boolean } | undefined)?.network === true;
  return networkCode(err) !== undefined;
}
