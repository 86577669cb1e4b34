import type { Readable } from "node:stream";
import { Agent, type Dispatcher } from "undici";
import { BerthError, canceled, invalidArgument, unavailable } from "../base/mod.ts";
import { isTemporary, MAX_ERROR_BODY, networkError, parseErrorBody, parseRetryAfter, redactUrl, responseError } from "./_errors.ts";

/** Most redirects followed for one request, as Go's HTTP client. */
export const MAX_REDIRECTS = 10;

/** Headers that carry credentials: never sent past a change of origin or a downgrade to HTTP. */
const SENSITIVE = ["authorization", "cookie", "proxy-authorization"];

/** A response whose body the caller must consume or dump. */
export interface HttpResponse {
  status: number;
  statusText: string;
  headers: Record<string, string | string[] | undefined>;
  /** Final URL after redirects. */
  url: URL;
  body: Dispatcher.ResponseData["body"];
}

/** A request body: bytes (replayable across 307/308 redirects) or a one-shot stream. */
export type HttpBody = Buffer | Uint8Array | string | Readable;

export interface SendOptions {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  /**
   * Credential headers (Authorization). Sent only to `url`'s origin: dropped for good once a
   * redirect leaves that origin or goes from HTTPS to HTTP, so that a storage host a blob
   * download is redirected to never sees the registry's token.
   */
  credentials?: Record<string, string>;
  body?: HttpBody;
  signal?: AbortSignal | undefined;
  /** Skip TLS verification (insecure-registries). */
  insecureTls?: boolean;
}

/** First value of a response header. */
export function header(res: { headers: HttpResponse["headers"] }, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** All values of a response header. */
export function headerAll(res: { headers: HttpResponse["headers"] }, name: string): string[] {
  const v = res.headers[name.toLowerCase()];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

/**
 * Decides where a redirect may go and which headers survive it. Pure, so that the HTTPS cases
 * are unit-tested without certificates.
 */
export function redirectTarget(from: URL, location: string, credentialOrigin: string | undefined): { url: URL; keepCredentials: boolean } {
  let url: URL;
  try {
    url = new URL(location, from);
  } catch {
    throw invalidArgument(`Invalid redirect location "${location.slice(0, 200)}" from "${redactUrl(from)}"`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw invalidArgument(`Refusing redirect to "${url.protocol}" URL from "${redactUrl(from)}"`);
  }
  const downgrade = from.protocol === "https:" && url.protocol === "http:";
  const keepCredentials = credentialOrigin !== undefined && !downgrade && url.origin === credentialOrigin;
  return { url, keepCredentials };
}

/**
 * HTTP for the registry client: undici with keep-alive pools (one per origin inside each
 * agent), redirects followed by hand so that credentials are dropped at a change of host, and
 * bounded reads.
 */
export class Transport {
  #agent: Agent;
  #insecureAgent: Agent | undefined;
  #userAgent: string;

  constructor(options: { userAgent?: string; connections?: number } = {}) {
    this.#userAgent = options.userAgent ?? "berth";
    this.#agent = new Agent({ keepAliveTimeout: 30_000, connections: options.connections ?? 32 });
  }

  #dispatcher(insecureTls: boolean | undefined): Agent {
    if (!insecureTls) return this.#agent;
    this.#insecureAgent ??= new Agent({ keepAliveTimeout: 30_000, connections: 32, connect: { rejectUnauthorized: false } });
    return this.#insecureAgent;
  }

  /** Sends a request, following up to 10 redirects. Network failures become Unavailable errors. */
  async send(options: SendOptions): Promise<HttpResponse> {
    let { method, url, body } = options;
    let credentials = options.credentials;
    const startOrigin = url.origin;
    let left = false;
    for (let redirects = 0; ; redirects++) {
      if (options.signal?.aborted) throw canceled("Request canceled");
      const headers: Record<string, string> = { "user-agent": this.#userAgent, ...options.headers };
      // Caller headers that carry credentials are treated like `credentials` once we left.
      if (left) for (const k of Object.keys(headers)) if (SENSITIVE.includes(k.toLowerCase())) delete headers[k];
      if (credentials) Object.assign(headers, credentials);
      let res: Dispatcher.ResponseData;
      try {
        res = await this.#dispatcher(options.insecureTls).request({
          origin: url.origin,
          path: url.pathname + url.search,
          method: method as Dispatcher.HttpMethod,
          headers,
          body: body ?? null,
          signal: options.signal ?? null,
        });
      } catch (e) {
        if (options.signal?.aborted) throw canceled("Request canceled", { cause: e });
        throw networkError(e, method, url);
      }
      const status = res.statusCode;
      if (![301, 302, 303, 307, 308].includes(status)) {
        return { status, statusText: res.statusText ?? "", headers: res.headers, url, body: res.body };
      }
      const location = header(res, "location");
      await res.body.dump().catch(() => {});
      if (!location) throw unavailable(`Redirect without a location from "${redactUrl(url)}"`);
      if (redirects >= MAX_REDIRECTS) throw unavailable(`Stopped after ${MAX_REDIRECTS} redirects: last was to "${redactUrl(url)}"`);
      const next = redirectTarget(url, location, left ? undefined : startOrigin);
      if (!next.keepCredentials) {
        credentials = undefined;
        left = true;
      }
      if (status === 303 || ((status === 301 || status === 302) && method !== "GET" && method !== "HEAD")) {
        method = method === "HEAD" ? "HEAD" : "GET";
        body = undefined;
      } else if (body !== undefined && typeof body !== "string" && !(body instanceof Uint8Array)) {
        throw unavailable(`Cannot replay a streamed request body after a redirect from "${redactUrl(url)}"`);
      }
      url = next.url;
    }
  }

  async close(): Promise<void> {
    await this.#agent.close();
    await this.#insecureAgent?.close();
  }
}

/** Closes a response body without reading it (the error an undici body emits then is expected). */
export function discard(res: HttpResponse): void {
  res.body.on("error", () => {});
  res.body.destroy();
}

/** Reads a response body up to `max` bytes, failing (and closing the stream) beyond that. */
export async function readBounded(res: HttpResponse, max: number, what: string): Promise<Buffer> {
  const declared = Number(header(res, "content-length"));
  if (Number.isFinite(declared) && declared > max) {
    discard(res);
    throw invalidArgument(`${what} is larger than ${max} bytes (Content-Length ${declared})`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of res.body) {
      const b = chunk as Buffer;
      total += b.length;
      if (total > max) {
        discard(res);
        throw invalidArgument(`${what} is larger than ${max} bytes`);
      }
      chunks.push(b);
    }
  } catch (e) {
    if (e instanceof BerthError) throw e;
    throw networkError(e, "GET", res.url);
  }
  return Buffer.concat(chunks, total);
}

/** Consumes an error response into a berth error carrying the registry's code and message. */
export async function errorFrom(res: HttpResponse, method: string): Promise<Error> {
  let bytes: Buffer = Buffer.alloc(0);
  if (method !== "HEAD") {
    try {
      bytes = await readBounded(res, MAX_ERROR_BODY, "Error response");
    } catch {
      discard(res);
    }
  } else {
    await res.body.dump().catch(() => {});
  }
  const retryAfterMs = parseRetryAfter(header(res, "retry-after"));
  return responseError({
    status: res.status,
    statusText: res.statusText,
    method,
    url: res.url,
    entries: parseErrorBody(bytes),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });
}

/** Waits `ms` unless the signal aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(canceled("Canceled"));
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(canceled("Canceled"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** How retries back off: attempts and the wait before each. */
export interface RetryPolicy {
  /** Attempts in all, including the first. Default 5. */
  attempts: number;
  /** Wait before retry `n` (1-based), when the registry does not say (Retry-After). */
  delayMs(n: number): number;
  /** The sleep used between attempts (tests inject an instant one). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** 1 s, 2 s, 4 s, 8 s, capped at 10 s. */
export const defaultRetryPolicy: RetryPolicy = {
  attempts: 5,
  delayMs: (n) => Math.min(1000 * 2 ** (n - 1), 10_000),
  sleep,
};

/** Runs `fn` until it succeeds, a non-temporary error occurs, or the attempts run out. */
export async function withRetry<T>(
  policy: RetryPolicy,
  fn: (attempt: number) => Promise<T>,
  options: { signal?: AbortSignal | undefined; attempts?: number; onRetry?: (delayMs: number, err: unknown) => void } = {},
): Promise<T> {
  const attempts = options.attempts ?? policy.attempts;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      if (attempt >= attempts || !isTemporary(e) || options.signal?.aborted) throw e;
      const asked = (e as { detail?: { retryAfterMs?: number } }).detail?.retryAfterMs;
      const delay = asked ?? policy.delayMs(attempt);
      options.onRetry?.(delay, e);
      await policy.sleep(delay, options.signal);
    }
  }
}
