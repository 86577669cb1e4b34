import { unauthorized, unavailable } from "../base/mod.ts";
import { isNetworkError, redactUrl } from "./_errors.ts";
import { errorFrom, type HttpBody, type HttpResponse, type RetryPolicy, type Transport, withRetry } from "./_http.ts";
import {
  basicAuth,
  type Challenge,
  challengesOf,
  type Credentials,
  fetchToken,
  hasCredentials,
  pickChallenge,
  type Token,
  TokenCache,
} from "./auth.ts";
import type { Endpoint } from "./hosts.ts";

/** What a resolved endpoint looks like: the base URL that answered, and its auth challenge. */
interface Ping {
  base: URL;
  challenge: Challenge | undefined;
}

/** State shared by every session of one client: connections, pings, tokens. */
export class Shared {
  readonly transport: Transport;
  readonly tokens: TokenCache;
  readonly retry: RetryPolicy;
  readonly now: () => number;
  #pings = new Map<string, Promise<Ping>>();
  #tokenFetches = new Map<string, Promise<Token>>();

  constructor(transport: Transport, retry: RetryPolicy, now: () => number) {
    this.transport = transport;
    this.retry = retry;
    this.now = now;
    this.tokens = new TokenCache({ now });
  }

  static #key(ep: Endpoint): string {
    return `${ep.candidates.map((c) => c.origin).join(",")}|${ep.insecureTls}`;
  }

  /**
   * Finds the base URL of an endpoint that answers (GET /v2/), trying its candidates in order,
   * and learns its auth challenge. Cached until a request to it fails at the network level.
   */
  ping(ep: Endpoint, options: { signal?: AbortSignal | undefined; attempts?: number | undefined; fresh?: boolean } = {}): Promise<Ping> {
    const key = Shared.#key(ep);
    const cached = options.fresh ? undefined : this.#pings.get(key);
    if (cached) return cached;
    const p = this.#doPing(ep, options);
    this.#pings.set(key, p);
    p.catch(() => {
      if (this.#pings.get(key) === p) this.#pings.delete(key);
    });
    return p;
  }

  async #doPing(ep: Endpoint, options: { signal?: AbortSignal | undefined; attempts?: number | undefined }): Promise<Ping> {
    let lastErr: unknown;
    for (const base of ep.candidates) {
      const url = new URL("/v2/", base);
      try {
        const res = await withRetry(
          this.retry,
          async () => {
            const r = await this.transport.send({ method: "GET", url, signal: options.signal, insecureTls: ep.insecureTls });
            if (r.status >= 500 || r.status === 429) throw await errorFrom(r, "GET");
            return r;
          },
          { signal: options.signal, attempts: options.attempts },
        );
        await res.body.dump().catch(() => {});
        const challenge = res.status === 401 ? pickChallenge(challengesOf(res)) : undefined;
        return { base, challenge };
      } catch (e) {
        lastErr = e;
        // Only a failure to talk HTTP at all moves on to the next scheme.
        if (!isNetworkError(e)) throw e;
      }
    }
    throw lastErr ?? unavailable(`Cannot reach registry "${ep.domain}"`);
  }

  forget(ep: Endpoint): void {
    this.#pings.delete(Shared.#key(ep));
  }

  setChallenge(ep: Endpoint, ping: Ping, challenge: Challenge): void {
    this.#pings.set(Shared.#key(ep), Promise.resolve({ base: ping.base, challenge }));
  }

  /** A token for a challenge and scopes, from the cache or the realm; concurrent fetches share one request. */
  async token(
    challenge: Challenge,
    registry: URL,
    scopes: string[],
    creds: Credentials | undefined,
    signal: AbortSignal | undefined,
  ): Promise<{ token: Token; fresh: boolean; key: string }> {
    const key = TokenCache.key(challenge.params.realm ?? "", challenge.params.service, scopes, creds);
    const have = this.tokens.get(key);
    if (have) return { token: have, fresh: false, key };
    let p = this.#tokenFetches.get(key);
    if (!p) {
      p = withRetry(
        this.retry,
        () => fetchToken(this.transport, { challenge, registry, scopes, credentials: creds, signal, now: this.now }),
        {
          signal,
        },
      );
      this.#tokenFetches.set(key, p);
      p.then(
        (t) => this.tokens.set(key, t),
        () => {},
      ).finally(() => this.#tokenFetches.delete(key));
    }
    return { token: await p, fresh: true, key };
  }
}

export interface SessionRequest {
  headers?: Record<string, string>;
  /** Makes the body; called once per attempt so that streams can be replayed. */
  body?: () => HttpBody;
  /** Scopes for this request when they differ from the session's (a cross-repository mount). */
  scopes?: string[];
  /** Statuses returned to the caller instead of thrown; default: any 2xx. */
  expect?: number[];
  /** Attempts in all; default the client's retry policy. */
  attempts?: number;
  onRetry?: (delayMs: number, err: unknown) => void;
}

/**
 * One repository on one endpoint, with credentials: adds authorization (answering Bearer and
 * Basic challenges, caching tokens), retries temporary failures and turns error responses into
 * berth errors. Authorization is only ever sent to the endpoint's own origin.
 */
export class Session {
  readonly endpoint: Endpoint;
  readonly repo: string;
  readonly scopes: string[];
  readonly credentials: Credentials | undefined;
  readonly signal: AbortSignal | undefined;
  #shared: Shared;
  #ping: Ping;
  #attempts: number | undefined;

  private constructor(
    shared: Shared,
    endpoint: Endpoint,
    ping: Ping,
    repo: string,
    scopes: string[],
    creds: Credentials | undefined,
    signal: AbortSignal | undefined,
    attempts: number | undefined,
  ) {
    this.#attempts = attempts;
    this.#shared = shared;
    this.endpoint = endpoint;
    this.#ping = ping;
    this.repo = repo;
    this.scopes = scopes;
    this.credentials = creds;
    this.signal = signal;
  }

  static async open(
    shared: Shared,
    endpoint: Endpoint,
    repo: string,
    /** `attempts`: for the ping and, by default, every request (a mirror gets 1: falling back is the better retry). */
    options: { scopes: string[]; credentials?: Credentials | undefined; signal?: AbortSignal | undefined; attempts?: number | undefined },
  ): Promise<Session> {
    const ping = await shared.ping(endpoint, { signal: options.signal, attempts: options.attempts });
    // Mirrors are someone else's servers: Docker Hub credentials are not theirs to see.
    const creds = endpoint.mirror || !hasCredentials(options.credentials) ? undefined : options.credentials;
    return new Session(shared, endpoint, ping, repo, options.scopes, creds, options.signal, options.attempts);
  }

  get base(): URL {
    return this.#ping.base;
  }

  /** A URL under the endpoint: `/v2/<repo>/...`. */
  url(path: string): URL {
    return new URL(`/v2/${this.repo}/${path}`, this.#ping.base);
  }

  async #authorization(scopes: string[]): Promise<{ headers: Record<string, string> | undefined; fresh: boolean; key?: string }> {
    const ch = this.#ping.challenge;
    const creds = this.credentials;
    if (!ch) return { headers: undefined, fresh: false };
    if (ch.scheme === "basic") {
      return { headers: creds?.username ? { authorization: basicAuth(creds) } : undefined, fresh: false };
    }
    if (ch.scheme !== "bearer") return { headers: undefined, fresh: false };
    if (creds?.registryToken) return { headers: { authorization: `Bearer ${creds.registryToken}` }, fresh: false };
    const t = await this.#shared.token(ch, this.#ping.base, scopes, creds, this.signal);
    return { headers: { authorization: `Bearer ${t.token.token}` }, fresh: t.fresh, key: t.key };
  }

  /** Sends a request with authorization and retries; returns an expected response or throws. */
  async request(method: string, target: string | URL, req: SessionRequest = {}): Promise<HttpResponse> {
    const url = typeof target === "string" ? this.url(target) : target;
    const scopes = req.scopes ?? this.scopes;
    return await withRetry(
      this.#shared.retry,
      async () => {
        let reauthenticated = false;
        for (;;) {
          const sameOrigin = url.origin === this.#ping.base.origin;
          const auth = sameOrigin ? await this.#authorization(scopes) : { headers: undefined, fresh: false };
          let res: HttpResponse;
          try {
            res = await this.#shared.transport.send({
              method,
              url,
              headers: req.headers ?? {},
              credentials: auth.headers,
              body: req.body?.(),
              signal: this.signal,
              insecureTls: this.endpoint.insecureTls,
            });
          } catch (e) {
            if (isNetworkError(e) && sameOrigin) this.#shared.forget(this.endpoint);
            throw e;
          }
          if (res.status === 401 && sameOrigin && !reauthenticated) {
            const ch = pickChallenge(challengesOf(res));
            const changed = ch && JSON.stringify(ch) !== JSON.stringify(this.#ping.challenge);
            // Retry once with a new token: the cached one may have been revoked, or the
            // registry only now told us it wants auth. A token fetched a moment ago and
            // refused again means no access; retrying would not change that.
            if (ch && (changed || !auth.fresh) && (ch.scheme === "bearer" || this.credentials?.username)) {
              await res.body.dump().catch(() => {});
              if (auth.key) this.#shared.tokens.delete(auth.key);
              this.#shared.setChallenge(this.endpoint, this.#ping, ch);
              this.#ping = { base: this.#ping.base, challenge: ch };
              reauthenticated = true;
              continue;
            }
          }
          const ok = req.expect ? req.expect.includes(res.status) : res.status >= 200 && res.status < 300;
          if (ok) return res;
          if (res.status === 401 && sameOrigin && this.#ping.challenge?.scheme === "basic" && !this.credentials?.username) {
            // dockerd's words: the registry wants a login this pull or push does not have.
            await res.body.dump().catch(() => {});
            const verb = method.charAt(0) + method.slice(1).toLowerCase();
            throw unauthorized(`${verb} "${redactUrl(url)}": no basic auth credentials`, { detail: { status: 401 } });
          }
          throw await errorFrom(res, method);
        }
      },
      { signal: this.signal, attempts: req.attempts ?? this.#attempts, onRetry: req.onRetry },
    );
  }
}
