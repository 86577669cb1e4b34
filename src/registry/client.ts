import { Readable } from "node:stream";
import {
  BerthError,
  canceled,
  type Digest,
  invalidArgument,
  isCanceled,
  isDigest,
  isInvalidArgument,
  type Logger,
  messageOf,
  notFound,
  nullLogger,
  parseDigest,
  shortHex,
  internal,
  unauthorized,
  unavailable,
} from "../base/mod.ts";
import type { BlobInfo, ContentStore, Ingest } from "../content/mod.ts";
import {
  type Descriptor,
  familiarString,
  formatPlatform,
  hostPlatform,
  type ImageConfig,
  isIndexMediaType,
  isLayerMediaType,
  isManifestMediaType,
  type Manifest,
  MediaType,
  parseImageConfig,
  parseManifest,
  type Platform,
  parsePlatform,
  platformMatches,
  type Reference,
  withDefaultTag,
} from "../oci/mod.ts";
import { isNetworkError, networkError, redactUrl, registryStatus } from "./_errors.ts";
import { defaultRetryPolicy, discard, errorFrom, header, readBounded, type RetryPolicy, Transport, withRetry } from "./_http.ts";
import { Limiter } from "./_limit.ts";
import { digestOf, type FetchedManifest, fetchManifest, headManifest, selectManifest, translatePullError } from "./_manifest.ts";
import { Session, Shared } from "./_session.ts";
import { basicAuth, type Credentials, fetchToken, hasCredentials } from "./auth.ts";
import { type Endpoint, parseMirror, pullEndpoints, type RegistryHostsConfig, registryDomain, registryEndpoint } from "./hosts.ts";

/**
 * One line of pull or push progress for one layer, in Docker's vocabulary, so that the API
 * layer can print it as a JSON progress message (`{"id","status","progressDetail"}`).
 * `id` is the layer digest's first 12 hex digits.
 */
export interface ProgressEvent {
  id: string;
  status:
    | "Pulling fs layer"
    | "Waiting"
    | "Downloading"
    | "Verifying Checksum"
    | "Download complete"
    | "Already exists"
    | "Preparing"
    | "Pushing"
    | "Pushed"
    | "Layer already exists"
    | `Mounted from ${string}`
    | `Retrying in ${number} second${"" | "s"}`;
  current?: number;
  total?: number;
}

/** Options of every call that talks to a registry. */
export interface CallOptions {
  /** Credentials for the registry (from X-Registry-Auth); anonymous when absent. */
  auth?: Credentials | undefined;
  signal?: AbortSignal | undefined;
}

/** Options of `fetchImage`. */
export interface FetchImageOptions extends CallOptions {
  /** Platform to choose from an index; default linux/amd64. Given explicitly, a single-platform image must match it. */
  platform?: Platform | string | undefined;
  onProgress?: ((e: ProgressEvent) => void) | undefined;
  /**
   * Called as soon as layer `index` is in the content store (downloaded, or already there), in
   * whatever order downloads finish, so that unpacking can start before the pull ends. A
   * returned promise is awaited before `fetchImage` returns and its rejection fails the pull.
   */
  onLayerFetched?: ((index: number, layer: Descriptor) => void | Promise<void>) | undefined;
  /**
   * Called once the image config is fetched, verified and matches the manifest, before any
   * layer is downloaded, so that unpacking can be planned (chain IDs need the config's
   * diff_ids). `attempt` aborts when this attempt fails (a download or a hook failed, or
   * `signal` fired): work started for it must stop then, or hooks that wait for layers that
   * will never come would hang the pull. When a mirror fails and the pull falls back to the
   * next endpoint, `onConfig` is called again for the new attempt, possibly with another
   * config. Awaited.
   */
  onConfig?: ((config: ImageConfig, layers: readonly Descriptor[], attempt: AbortSignal) => void | Promise<void>) | undefined;
  /**
   * Called when this pull starts downloading layer `index` from its first byte, with the bytes
   * as they arrive; return true to consume them (say, to unpack the layer while it downloads)
   * or false to ignore them. `body` yields the blob's bytes in order and ends only after the
   * whole blob has been verified against its digest and committed to the content store; it
   * throws if the download fails, or restarts from the beginning (then consume the blob from
   * the store once `onLayerFetched` says it is there). The download waits for a consumer that
   * falls behind by more than a few MiB, so take `body` only if it will be read right away and
   * without waiting for other layers. Stopping early (`return()`) detaches it; the download
   * goes on.
   */
  onLayerStream?: ((index: number, layer: Descriptor, body: AsyncIterable<Buffer>) => boolean) | undefined;
}

/** An image pulled into the content store: every blob named here is committed there. */
export interface PulledImage {
  /** The normalised reference pulled (with `latest` added when it had neither tag nor digest). */
  reference: Reference;
  /** What the reference resolves to in the registry: the index digest if any, else the manifest's (the "repo digest"). */
  digest: Digest;
  indexDigest?: Digest;
  indexMediaType?: string;
  manifestDigest: Digest;
  manifest: Manifest;
  manifestBytes: Buffer;
  mediaType: string;
  config: ImageConfig;
  configDigest: Digest;
  configBytes: Buffer;
  layers: Descriptor[];
  /** Where it came from: the mirror or registry base URL. */
  source: string;
}

/** Options of `pushImage`. */
export interface PushImageOptions extends CallOptions {
  /** The manifest or index to put under the reference's tag (or digest), byte for byte. */
  manifestBytes: Uint8Array;
  mediaType: string;
  /** Blobs to upload first (configs and layers), all in the content store. Duplicates are pushed once. */
  blobs: Descriptor[];
  /** For an index: the child manifests (in the content store), put by digest before the index. */
  manifests?: Descriptor[];
  /**
   * Repositories of the same registry that may already have a blob, tried in order as mount
   * sources (`POST …/blobs/uploads/?mount=<digest>&from=<repo>`) before uploading it.
   */
  mountFrom?: string[] | ((blob: Descriptor) => string[]);
  onProgress?: ((e: ProgressEvent) => void) | undefined;
  /** Upload blobs in PATCH chunks of this many bytes instead of one PUT. */
  chunkSize?: number;
}

/** The result of a push: the digest and size of the manifest under the tag. */
export interface PushedImage {
  digest: Digest;
  size: number;
  mediaType: string;
}

/** The result of a successful login check. */
export interface AuthResult {
  status: "Login Succeeded";
  /** An OAuth2 refresh token the client may store instead of the password (docker's IdentityToken). */
  identityToken?: string;
}

/** Settings of a `RegistryClient`; the daemon fills them from daemon.json. */
export interface RegistryClientOptions extends RegistryHostsConfig {
  /** Where pulled blobs go and pushed blobs come from. */
  store: ContentStore;
  /** Layers downloaded at once over all pulls (daemon.json `max-concurrent-downloads`); default 3. */
  maxConcurrentDownloads?: number;
  /** Layers uploaded at once over all pushes (`max-concurrent-uploads`); default 5. */
  maxConcurrentUploads?: number;
  /** Retry attempts, delays and the sleep between them (tests inject an instant sleep). */
  retry?: Partial<RetryPolicy>;
  userAgent?: string;
  logger?: Logger;
  /** Clock, for token expiry in tests. */
  now?: () => number;
}

const PROGRESS_INTERVAL_MS = 100;
/** Local file system failures are not the registry's fault: no point trying a mirror's fallback. */
const LOCAL_ERRNO = new Set(["ENOSPC", "EACCES", "EPERM", "EROFS", "EIO", "EDQUOT", "EMFILE", "ENFILE"]);

/**
 * berth's distribution-spec (v2) client: pulls images from registries into the content store
 * and pushes them back. One instance per daemon: it holds the keep-alive connection pools,
 * the token cache and the download/upload concurrency limits shared by all pulls and pushes.
 *
 * A pull (`fetchImage`) resolves the reference (mirrors first for docker.io), chooses the
 * platform's manifest from an index, and fetches config and layers into the content store
 * with verification and resume; the caller unpacks the layers (`onLayerFetched` lets it
 * start early). A push (`pushImage`) uploads what the registry lacks (HEAD, cross-repository
 * mount, then upload) and puts the manifest. See mod.ts for the whole story.
 */
export class RegistryClient {
  readonly store: ContentStore;
  #config: RegistryHostsConfig;
  #shared: Shared;
  #downloads: Limiter;
  #uploads: Limiter;
  #log: Logger;
  #now: () => number;

  constructor(options: RegistryClientOptions) {
    this.store = options.store;
    for (const m of options.mirrors ?? []) parseMirror(m);
    this.#config = { mirrors: options.mirrors ?? [], insecureRegistries: options.insecureRegistries ?? [] };
    if (options.dockerHub) this.#config.dockerHub = options.dockerHub;
    this.#now = options.now ?? Date.now;
    const retry: RetryPolicy = { ...defaultRetryPolicy, ...options.retry };
    this.#shared = new Shared(new Transport({ userAgent: options.userAgent ?? "berth/0.1" }), retry, this.#now);
    this.#downloads = new Limiter(options.maxConcurrentDownloads ?? 3);
    this.#uploads = new Limiter(options.maxConcurrentUploads ?? 5);
    this.#log = options.logger ?? nullLogger;
  }

  /** Closes the connection pools. */
  async close(): Promise<void> {
    await this.#shared.transport.close();
  }

  /** Checks that a registry answers the v2 API (`GET /v2/`); a 401 counts as an answer. */
  async ping(domain: string, options: CallOptions = {}): Promise<void> {
    await this.#shared.ping(registryEndpoint(registryDomain(domain), this.#config), { signal: options.signal, fresh: true });
  }

  /**
   * Validates credentials for a registry (`POST /auth`, `docker login`): the server address as
   * the CLI sends it (`https://index.docker.io/v1/`, `localhost:5000`). Throws Unauthorized
   * with the registry's message when they are refused.
   */
  async checkAuth(serverAddress: string, credentials: Credentials, options: { signal?: AbortSignal } = {}): Promise<AuthResult> {
    const ep = registryEndpoint(registryDomain(serverAddress), this.#config);
    const ping = await this.#shared.ping(ep, { signal: options.signal, fresh: true });
    const ch = ping.challenge;
    if (!ch) return { status: "Login Succeeded" };
    if (ch.scheme === "bearer") {
      const t = await fetchToken(this.#shared.transport, {
        challenge: ch,
        registry: ping.base,
        scopes: [],
        credentials: hasCredentials(credentials) ? credentials : undefined,
        offline: true,
        signal: options.signal,
        now: this.#now,
      });
      return t.refreshToken ? { status: "Login Succeeded", identityToken: t.refreshToken } : { status: "Login Succeeded" };
    }
    if (ch.scheme === "basic") {
      if (!credentials.username) throw unauthorized("unauthorized: a username is required");
      const url = new URL("/v2/", ping.base);
      const res = await this.#shared.transport.send({
        method: "GET",
        url,
        credentials: { authorization: basicAuth(credentials) },
        signal: options.signal,
        insecureTls: ep.insecureTls,
      });
      if (res.status >= 200 && res.status < 300) {
        await res.body.dump().catch(() => {});
        return { status: "Login Succeeded" };
      }
      const err = await errorFrom(res, "GET");
      // dockerd's words for a refused Basic login.
      if (res.status === 401) throw unauthorized(`login attempt to ${redactUrl(url)} failed with status: 401 Unauthorized`);
      throw err;
    }
    throw unauthorized(`Unsupported authentication scheme "${ch.scheme}" from "${ep.domain}"`);
  }

  /**
   * Resolves a reference to the descriptor of its manifest or index with a HEAD request (the
   * cheap "is my copy current?" check of a pull). Throws NotFound for an unknown tag.
   */
  async headManifest(ref: Reference, options: CallOptions = {}): Promise<Descriptor> {
    const r = withDefaultTag(ref);
    return await this.#withPullEndpoints(r, options, async (s) => await headManifest(s, r.digest ?? r.tag ?? "latest"));
  }

  /** Fetches and verifies a manifest or index (not stored). */
  async getManifest(ref: Reference, options: CallOptions = {}): Promise<FetchedManifest> {
    const r = withDefaultTag(ref);
    return await this.#withPullEndpoints(r, options, async (s) => await this.#topManifest(s, r));
  }

  /** Every tag of a repository (`--all-tags`), following `Link` pagination. */
  async listTags(ref: Reference, options: CallOptions = {}): Promise<string[]> {
    return await this.#withPullEndpoints(ref, options, async (s) => {
      const tags: string[] = [];
      let url: URL | undefined = s.url("tags/list");
      for (let page = 0; url && page < 1000; page++) {
        const res = await s.request("GET", url);
        const bytes = await readBounded(res, 4 * 1024 * 1024, `Tag list of "${s.repo}"`);
        let doc: { tags?: unknown };
        try {
          doc = JSON.parse(bytes.toString("utf8")) as { tags?: unknown };
        } catch {
          throw invalidArgument(`Tag list of "${s.repo}" is not JSON`);
        }
        if (Array.isArray(doc?.tags)) for (const t of doc.tags) if (typeof t === "string" && /^[\w][\w.-]{0,127}$/.test(t)) tags.push(t);
        if (tags.length > 100_000) throw invalidArgument(`Repository "${s.repo}" has more than 100000 tags`);
        url = nextLink(header(res, "link"), url, s.base);
      }
      return tags;
    });
  }

  /** Whether the repository has a blob (HEAD). */
  async blobExists(ref: Reference, digest: Digest, options: CallOptions = {}): Promise<boolean> {
    const d = parseDigest(digest);
    const ep = registryEndpoint(ref.domain, this.#config);
    const s = await this.#session(ep, ref, ["pull"], options);
    return await blobHead(s, d);
  }

  /** Downloads one blob of a repository into the content store (verified, resumable). */
  async fetchBlob(ref: Reference, desc: Descriptor, options: CallOptions = {}): Promise<BlobInfo> {
    parseDigest(desc.digest);
    return await this.#withPullEndpoints(ref, options, async (s) => await this.#download(s, desc, {}));
  }

  /**
   * Pulls an image into the content store: index (if any), the platform's manifest, config and
   * layers, all verified. Mirrors are tried first for docker.io, falling back to the next
   * mirror and to Docker Hub. Layers download `maxConcurrentDownloads` at a time, resuming
   * partial downloads. Throws docker's wording for unknown images.
   */
  async fetchImage(ref: Reference, options: FetchImageOptions = {}): Promise<PulledImage> {
    const r = withDefaultTag(ref);
    const explicit = options.platform !== undefined;
    const platform = typeof options.platform === "string" ? parsePlatform(options.platform) : (options.platform ?? hostPlatform);
    return await this.#withPullEndpoints(r, options, async (s) => await this.#pull(s, r, platform, explicit, options));
  }

  /**
   * Pushes an image: uploads the blobs the registry lacks (HEAD first, then a cross-repository
   * mount from `mountFrom`, then a monolithic or chunked upload), puts child manifests of an
   * index by digest, and puts the manifest under the reference's tag. Returns its digest.
   */
  async pushImage(ref: Reference, options: PushImageOptions): Promise<PushedImage> {
    const r = withDefaultTag(ref);
    const parsed = parseManifest(options.manifestBytes, options.mediaType);
    if (parsed.mediaType !== options.mediaType)
      throw invalidArgument(`Manifest media type "${parsed.mediaType}" is not "${options.mediaType}"`);
    const digest = digestOf(options.manifestBytes);
    if (r.digest && r.digest !== digest) throw invalidArgument(`Manifest hashes to "${digest}", not to "${r.digest}" of the reference`);
    const ep = registryEndpoint(r.domain, this.#config);
    const progress = options.onProgress ?? (() => {});
    const signal = options.signal;

    // Blobs, deduplicated; configs upload silently, layers report progress like docker.
    const seen = new Set<string>();
    const blobs = options.blobs.filter((b) => {
      parseDigest(b.digest);
      // Foreign (non-distributable) layers stay where their URLs say, as docker leaves them.
      if (b.mediaType === MediaType.DockerLayerForeignGzip || b.mediaType.includes(".nondistributable.")) return false;
      if (seen.has(b.digest)) return false;
      seen.add(b.digest);
      return true;
    });
    for (const b of blobs) if (isLayerMediaType(b.mediaType)) progress({ id: shortHex(b.digest), status: "Preparing" });
    const ctl = new AbortController();
    const onAbort = () => ctl.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const inner = await this.#session(ep, r, ["pull", "push"], { auth: options.auth, signal: ctl.signal });
      await allOrFirstError(
        blobs.map((b) => async () => {
          const show = isLayerMediaType(b.mediaType);
          const id = shortHex(b.digest);
          const report = show ? progress : () => {};
          if (!this.#uploads.tryAcquire()) {
            report({ id, status: "Waiting" });
            await this.#uploads.acquire(ctl.signal);
          }
          try {
            await this.#pushBlob(inner, b, options, id, report);
          } finally {
            this.#uploads.release();
          }
        }),
        ctl,
      );
      for (const m of options.manifests ?? []) {
        const d = parseDigest(m.digest);
        if (await manifestExists(inner, d)) continue;
        const bytes = await this.store.readBytes(d);
        await putManifest(inner, d, bytes, m.mediaType);
      }
      const reference = r.tag ?? r.digest ?? "latest";
      await putManifest(inner, reference, Buffer.from(options.manifestBytes), options.mediaType);
      return { digest, size: options.manifestBytes.length, mediaType: options.mediaType };
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  // ---- internals ----

  async #session(ep: Endpoint, ref: Reference, actions: string[], options: CallOptions & { attempts?: number }): Promise<Session> {
    return await Session.open(this.#shared, ep, ref.path, {
      scopes: [`repository:${ref.path}:${actions.join(",")}`],
      credentials: options.auth,
      signal: options.signal,
      ...(options.attempts !== undefined ? { attempts: options.attempts } : {}),
    });
  }

  /**
   * Runs `fn` against each pull endpoint in turn (mirrors, then the registry) until one
   * succeeds. A mirror that is down, refuses, or lacks the image falls back to the next;
   * the last endpoint's error is the answer, worded as docker words it (unless it could not
   * be reached at all and a mirror said the image does not exist).
   */
  async #withPullEndpoints<T>(ref: Reference, options: CallOptions, fn: (s: Session) => Promise<T>): Promise<T> {
    const endpoints = pullEndpoints(ref.domain, this.#config);
    const failures: string[] = [];
    let definite: unknown;
    for (const [i, ep] of endpoints.entries()) {
      const last = i === endpoints.length - 1;
      try {
        // A mirror gets one attempt at connecting: the next endpoint is the better retry.
        const s = await this.#session(ep, ref, ["pull"], last ? options : { ...options, attempts: 1 });
        return await fn(s);
      } catch (e) {
        if (options.signal?.aborted || isCanceled(e)) throw e instanceof BerthError ? e : canceled("Canceled", { cause: e });
        const local = LOCAL_ERRNO.has(String((e as { code?: unknown }).code));
        const where = ep.mirror ? `mirror ${ep.candidates[0]?.origin}` : (ep.candidates[0]?.origin ?? ep.domain);
        if (last || local) {
          if (failures.length && isNetworkError(e)) {
            // Docker Hub is out of reach (offline, or firewalled) but a mirror gave a definite
            // answer (no such image, access denied): that answer is the useful one.
            if (definite) throw translatePullError(definite, ref);
            throw unavailable(
              `Cannot pull "${familiarString(ref)}": no registry answered: ${[...failures, `${where}: ${messageOf(e)}`].join("; ")}`,
              {
                cause: e,
              },
            );
          }
          throw translatePullError(e, ref);
        }
        if (!definite && registryStatus(e) !== undefined && [401, 403, 404].includes(registryStatus(e) ?? 0)) definite = e;
        failures.push(`${where}: ${messageOf(e)}`);
        this.#log.warn("Falling back from registry mirror", { mirror: where, error: messageOf(e) });
      }
    }
    throw internal("No registry endpoint to try");
  }

  async #topManifest(s: Session, r: Reference): Promise<FetchedManifest> {
    return r.digest ? await fetchManifest(s, r.digest, { digest: r.digest }) : await fetchManifest(s, r.tag ?? "latest");
  }

  async #pull(s: Session, r: Reference, platform: Platform, explicit: boolean, options: FetchImageOptions): Promise<PulledImage> {
    const top = await this.#topManifest(s, r);
    let man = top;
    const out: Partial<PulledImage> = { reference: r, digest: top.digest, source: s.base.origin };
    if (top.parsed.kind === "index") {
      await this.#put(top.bytes, top.digest);
      out.indexDigest = top.digest;
      out.indexMediaType = top.mediaType;
      const child = selectManifest(top.parsed.index, platform);
      man = await fetchManifest(s, parseDigest(child.digest), { digest: child.digest, size: child.size });
      if (man.parsed.kind !== "manifest") throw invalidArgument(`Manifest "${child.digest}" of index "${top.digest}" is itself an index`);
    }
    if (man.parsed.kind !== "manifest") throw invalidArgument("Expected an image manifest");
    const manifest = man.parsed.manifest;
    await this.#put(man.bytes, man.digest);

    // Config first: it is small and says what the layers must unpack to.
    const cfgDesc = manifest.config;
    await this.#download(s, cfgDesc, {});
    const configBytes = await this.store.readBytes(cfgDesc.digest);
    const config = parseImageConfig(configBytes);
    if (config.rootfs.diff_ids.length !== manifest.layers.length) {
      throw invalidArgument(
        `Invalid image "${familiarString(r)}": ${manifest.layers.length} layers in the manifest but ${config.rootfs.diff_ids.length} diff_ids in the config`,
      );
    }
    if (
      explicit &&
      !out.indexDigest &&
      !platformMatches(
        { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) },
        platform,
      )
    ) {
      throw notFound(
        `image with reference ${familiarString(r)} was found but does not match the specified platform: wanted ${formatPlatform(platform)}, actual: ${formatPlatform({ os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) })}`,
      );
    }

    const attempt = new AbortController();
    const onAbort = () => attempt.abort();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      if (options.signal?.aborted) attempt.abort();
      await options.onConfig?.(config, manifest.layers, attempt.signal);
      await this.#fetchLayers(s, manifest.layers, options, attempt);
    } catch (e) {
      attempt.abort();
      throw e;
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
    }
    return {
      ...out,
      manifestDigest: man.digest,
      manifest,
      manifestBytes: man.bytes,
      mediaType: man.mediaType,
      config,
      configDigest: cfgDesc.digest,
      configBytes,
      layers: manifest.layers,
    } as PulledImage;
  }

  /**
   * Stores verified bytes. Through `ingestOnce` rather than `put`, so that two pulls storing the
   * same manifest at once share one ingest instead of racing on it.
   */
  async #put(bytes: Buffer, digest: Digest): Promise<void> {
    await this.store.ingestOnce({ digest, size: bytes.length }, async (ing) => {
      await ing.reset();
      await ing.write(bytes);
    });
  }

  async #fetchLayers(s: Session, layers: Descriptor[], options: FetchImageOptions, ctl: AbortController): Promise<void> {
    const progress = options.onProgress ?? (() => {});
    const present = await Promise.all(layers.map(async (l) => (await this.store.info(parseDigest(l.digest))) !== undefined));
    // Announce every layer in manifest order first, as docker does.
    layers.forEach((l, i) => {
      progress({ id: shortHex(l.digest), status: present[i] ? "Already exists" : "Pulling fs layer" });
    });
    const session = await Session.open(this.#shared, s.endpoint, s.repo, {
      scopes: s.scopes,
      credentials: s.credentials,
      signal: ctl.signal,
    });
    const hooks: Promise<void>[] = [];
    const landed = (i: number, l: Descriptor) => {
      if (!options.onLayerFetched) return;
      const h = Promise.resolve().then(() => options.onLayerFetched?.(i, l));
      h.catch(() => ctl.abort());
      hooks.push(h);
    };
    try {
      await allOrFirstError(
        layers.map((l, i) => async () => {
          const id = shortHex(l.digest);
          if (present[i]) {
            landed(i, l);
            return;
          }
          if (!this.#downloads.tryAcquire()) {
            progress({ id, status: "Waiting" });
            await this.#downloads.acquire(ctl.signal);
          }
          let tee: LayerTee | undefined;
          const stopTee = () => tee?.fail(canceled(`The download of blob "${l.digest}" was canceled`));
          ctl.signal.addEventListener("abort", stopTee, { once: true });
          try {
            await this.#download(session, l, {
              onProgress: (current) => progress({ id, status: "Downloading", current, total: l.size }),
              onVerify: () => progress({ id, status: "Verifying Checksum" }),
              onRetry: (ms) => {
                const n = Math.max(1, Math.round(ms / 1000));
                progress({ id, status: `Retrying in ${n} second${n === 1 ? "" : "s"}` as ProgressEvent["status"] });
              },
              onBegin: (offset) => {
                // Offered once, and only from the first byte: a resumed ingest has bytes the tee never saw.
                if (tee || offset !== 0 || !options.onLayerStream || ctl.signal.aborted) return;
                const t = new LayerTee(l.digest);
                tee = options.onLayerStream(i, l, t) ? t : new LayerTee(l.digest, true);
              },
              onChunk: (chunk, offset) => tee?.push(chunk, offset),
            });
          } catch (e) {
            tee?.fail(e);
            throw e;
          } finally {
            ctl.signal.removeEventListener("abort", stopTee);
            this.#downloads.release();
          }
          progress({ id, status: "Download complete" });
          tee?.end();
          landed(i, l);
        }),
        ctl,
      );
      await Promise.all(hooks);
    } catch (e) {
      ctl.abort();
      await Promise.allSettled(hooks);
      throw e;
    }
  }

  /**
   * Downloads a blob into the content store: resumes a partial ingest with a Range request
   * (restarting when the server ignores it), retries dropped connections with backoff, and
   * lets the store verify size and digest. A corrupt partial file gets one fresh start.
   */
  async #download(
    s: Session,
    desc: Descriptor,
    hooks: {
      onProgress?: (current: number) => void;
      onVerify?: () => void;
      onRetry?: (delayMs: number) => void;
      /** The ingest starts (or resumes) at this offset. */
      onBegin?: (offset: number) => void;
      /** `chunk` was written to the ingest at `offset`; a returned promise holds the download back. */
      onChunk?: (chunk: Buffer, offset: number) => Promise<void> | undefined;
    },
  ): Promise<BlobInfo> {
    const digest = parseDigest(desc.digest);
    if (!Number.isSafeInteger(desc.size) || desc.size < 0) throw invalidArgument(`Invalid size for blob "${digest}"`);
    for (let round = 0; ; round++) {
      let resumed = false;
      try {
        return await this.store.ingestOnce({ digest, size: desc.size }, async (ing) => {
          resumed = ing.offset > 0;
          hooks.onBegin?.(ing.offset);
          try {
            await withRetry(this.#shared.retry, () => this.#downloadOnce(s, digest, desc.size, ing, hooks), {
              signal: s.signal,
              onRetry: hooks.onRetry,
            });
          } catch (e) {
            // Bytes that break the descriptor's promise are worthless for a resume.
            if (isInvalidArgument(e)) await ing.reset().catch(() => {});
            throw e;
          }
          hooks.onVerify?.();
        });
      } catch (e) {
        if (round === 0 && resumed && isInvalidArgument(e) && /Digest mismatch|has size/.test(messageOf(e))) continue;
        throw e;
      }
    }
  }

  async #downloadOnce(
    s: Session,
    digest: Digest,
    size: number,
    ing: Ingest,
    hooks: { onProgress?: (current: number) => void; onChunk?: (chunk: Buffer, offset: number) => Promise<void> | undefined },
  ): Promise<void> {
    const { onProgress, onChunk } = hooks;
    for (let restarts = 0; restarts < 3; restarts++) {
      const offset = ing.offset;
      if (offset === size) return;
      const res = await s.request("GET", `blobs/${digest}`, {
        headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
        expect: [200, 206, 416],
        attempts: 1,
      });
      if (res.status === 416) {
        await res.body.dump().catch(() => {});
        await ing.reset();
        continue;
      }
      if (res.status === 206) {
        const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header(res, "content-range") ?? "");
        if (!m || Number(m[1]) !== offset) {
          discard(res);
          await ing.reset();
          continue;
        }
      } else if (offset > 0) {
        // The server ignored Range: start over from the whole body.
        await ing.reset();
      }
      let last = 0;
      try {
        for await (const chunk of res.body) {
          const at = ing.offset;
          await ing.write(chunk as Buffer);
          const held = onChunk?.(chunk as Buffer, at);
          if (held) await held;
          const now = this.#now();
          if (onProgress && (now - last >= PROGRESS_INTERVAL_MS || ing.offset === size)) {
            last = now;
            onProgress(ing.offset);
          }
        }
      } catch (e) {
        discard(res);
        if (e instanceof BerthError) throw e;
        throw networkError(e, "GET", res.url);
      }
      if (ing.offset < size) {
        throw unavailable(`Download of blob "${digest}" ended early at ${ing.offset} of ${size} bytes`, {
          detail: { temporary: true, network: true },
        });
      }
      return;
    }
    throw unavailable(`Cannot download blob "${digest}": the registry keeps answering the wrong range`);
  }

  async #pushBlob(s: Session, b: Descriptor, options: PushImageOptions, id: string, report: (e: ProgressEvent) => void): Promise<void> {
    const digest = parseDigest(b.digest);
    const info = await this.store.info(digest);
    if (!info) throw notFound(`Blob "${digest}" to push is not in the content store`);
    if (info.size !== b.size) throw invalidArgument(`Blob "${digest}" has size ${info.size}, the descriptor says ${b.size}`);
    if (await blobHead(s, digest)) {
      report({ id, status: "Layer already exists" });
      return;
    }
    const candidates = (typeof options.mountFrom === "function" ? options.mountFrom(b) : (options.mountFrom ?? []))
      .filter((from) => from !== s.repo && /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/.test(from))
      .slice(0, 5);
    let session: URL | undefined;
    for (const [k, from] of candidates.entries()) {
      const url = s.url(`blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`);
      let res: Awaited<ReturnType<Session["request"]>>;
      try {
        res = await s.request("POST", url, { scopes: [...s.scopes, `repository:${from}:pull`], expect: [201, 202] });
      } catch (e) {
        if (isCanceled(e)) throw e;
        continue;
      }
      await res.body.dump().catch(() => {});
      if (res.status === 201) {
        report({ id, status: `Mounted from ${from}` });
        return;
      }
      const loc = uploadLocation(res);
      if (k < candidates.length - 1) {
        await s.request("DELETE", loc, { expect: [202, 204, 404], attempts: 1 }).then(
          (r) => r.body.dump(),
          () => {},
        );
      } else {
        session = loc;
      }
    }
    report({ id, status: "Pushing", current: 0, total: b.size });
    await withRetry(
      this.#shared.retry,
      async () => {
        let loc = session;
        session = undefined;
        if (!loc) {
          const res = await s.request("POST", "blobs/uploads/", { expect: [202], headers: { "content-length": "0" } });
          await res.body.dump().catch(() => {});
          loc = uploadLocation(res);
        }
        let last = 0;
        const counted = (n: number) => {
          const now = this.#now();
          if (now - last >= PROGRESS_INTERVAL_MS || n === b.size) {
            last = now;
            report({ id, status: "Pushing", current: n, total: b.size });
          }
        };
        if (options.chunkSize && options.chunkSize > 0 && b.size > 0) {
          loc = await this.#uploadChunks(s, loc, digest, b.size, options.chunkSize, counted);
          const put = withQuery(loc, { digest });
          const res = await s.request("PUT", put, { expect: [201, 204], headers: { "content-length": "0" }, attempts: 1 });
          await res.body.dump().catch(() => {});
        } else {
          const put = withQuery(loc, { digest });
          const res = await s.request("PUT", put, {
            expect: [201, 204],
            headers: { "content-type": "application/octet-stream", "content-length": String(b.size) },
            body: () => this.#blobStream(digest, 0, b.size, counted),
            attempts: 1,
          });
          await res.body.dump().catch(() => {});
        }
      },
      {
        signal: s.signal,
        onRetry: (ms) => {
          const n = Math.max(1, Math.round(ms / 1000));
          report({ id, status: `Retrying in ${n} second${n === 1 ? "" : "s"}` as ProgressEvent["status"] });
        },
      },
    );
    report({ id, status: "Pushed" });
  }

  async #uploadChunks(s: Session, loc: URL, digest: Digest, size: number, chunkSize: number, counted: (n: number) => void): Promise<URL> {
    for (let start = 0; start < size; start += chunkSize) {
      const end = Math.min(size, start + chunkSize);
      const res = await s.request("PATCH", loc, {
        expect: [202, 204],
        headers: {
          "content-type": "application/octet-stream",
          "content-length": String(end - start),
          "content-range": `${start}-${end - 1}`,
        },
        body: () => this.#blobStream(digest, start, end, (n) => counted(start + n)),
        attempts: 1,
      });
      await res.body.dump().catch(() => {});
      if (header(res, "location")) loc = uploadLocation(res);
    }
    return loc;
  }

  /** A stream of bytes [start, end) of a stored blob, counting what has been read. */
  #blobStream(digest: Digest, start: number, end: number, counted: (n: number) => void): Readable {
    const store = this.store;
    async function* gen() {
      const rs = await store.reader(digest, { start });
      let n = 0;
      try {
        for await (const chunk of rs) {
          let b = chunk as Buffer;
          if (n + b.length > end - start) b = b.subarray(0, end - start - n);
          n += b.length;
          yield b;
          counted(n);
          if (n >= end - start) break;
        }
      } finally {
        rs.destroy();
      }
    }
    return Readable.from(gen(), { objectMode: false });
  }
}

/** How far a layer's consumer may fall behind its download before the download waits. */
const TEE_HIGH_WATER = 8 * 1024 * 1024;

/**
 * The bytes of one layer download, handed to a consumer as they are written to the content
 * store (see `onLayerStream`). Single producer, single consumer. It ends only once the blob is
 * committed (verified), and fails when the download fails or its bytes stop following on from
 * what was delivered (a reset or restarted ingest). A consumer that stops early detaches it:
 * the download then goes on without it.
 */
class LayerTee implements AsyncIterable<Buffer>, AsyncIterator<Buffer> {
  readonly #digest: string;
  #queue: Buffer[] = [];
  #queued = 0;
  #delivered = 0;
  #ended = false;
  #error: unknown;
  #detached: boolean;
  #wake: (() => void) | undefined;
  #drain: (() => void) | undefined;

  /** `detached`: a tee nobody consumes (bytes are dropped). */
  constructor(digest: string, detached = false) {
    this.#digest = digest;
    this.#detached = detached;
  }

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    return this;
  }

  /** Producer: `chunk` was written at `offset`; resolves when the consumer has caught up enough. */
  push(chunk: Buffer, offset: number): Promise<void> | undefined {
    if (this.#detached || this.#ended) return undefined;
    if (offset !== this.#delivered) {
      this.fail(unavailable(`The download of blob "${this.#digest}" restarted; its bytes are read from the store instead`));
      return undefined;
    }
    this.#delivered += chunk.length;
    this.#queue.push(chunk);
    this.#queued += chunk.length;
    this.#signal();
    if (this.#queued < TEE_HIGH_WATER) return undefined;
    return new Promise<void>((resolve) => {
      this.#drain = resolve;
    });
  }

  /** Producer: the blob is complete and committed. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#signal();
  }

  /** Producer: the download failed; the consumer gets `e` at its next read. */
  fail(e: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = e ?? internal(`The download of blob "${this.#digest}" failed`);
    this.#queue = [];
    this.#queued = 0;
    this.#signal();
    this.#release();
  }

  async next(): Promise<IteratorResult<Buffer>> {
    for (;;) {
      if (this.#detached) return { done: true, value: undefined };
      const chunk = this.#queue.shift();
      if (chunk) {
        this.#queued -= chunk.length;
        if (this.#queued < TEE_HIGH_WATER / 2) this.#release();
        return { done: false, value: chunk };
      }
      if (this.#error !== undefined) throw this.#error;
      if (this.#ended) return { done: true, value: undefined };
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  /** Consumer: stop reading; the download no longer waits for us. */
  async return(): Promise<IteratorResult<Buffer>> {
    this.#detached = true;
    this.#queue = [];
    this.#queued = 0;
    this.#release();
    this.#signal();
    return { done: true, value: undefined };
  }

  #signal(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  #release(): void {
    const d = this.#drain;
    this.#drain = undefined;
    d?.();
  }
}

/** Runs tasks concurrently; the first failure aborts the others, and is thrown once all settled. */
async function allOrFirstError(tasks: (() => Promise<void>)[], ctl: AbortController): Promise<void> {
  let first: unknown;
  let failed = false;
  await Promise.all(
    tasks.map(async (t) => {
      try {
        await t();
      } catch (e) {
        if (!failed) {
          failed = true;
          first = e;
          ctl.abort();
        }
      }
    }),
  );
  if (failed) throw first;
}

async function blobHead(s: Session, digest: Digest): Promise<boolean> {
  const res = await s.request("HEAD", `blobs/${digest}`, { expect: [200, 404] });
  await res.body.dump().catch(() => {});
  return res.status === 200;
}

async function manifestExists(s: Session, digest: Digest): Promise<boolean> {
  const res = await s.request("HEAD", `manifests/${digest}`, { expect: [200, 404], headers: { accept: "*/*" } });
  await res.body.dump().catch(() => {});
  return res.status === 200;
}

async function putManifest(s: Session, reference: string, bytes: Buffer, mediaType: string): Promise<Digest> {
  if (!isManifestMediaType(mediaType) && !isIndexMediaType(mediaType))
    throw invalidArgument(`Cannot push manifest of media type "${mediaType}"`);
  const digest = digestOf(bytes);
  const res = await s.request("PUT", `manifests/${reference}`, {
    expect: [200, 201, 202, 204],
    headers: { "content-type": mediaType, "content-length": String(bytes.length) },
    body: () => bytes,
  });
  await res.body.dump().catch(() => {});
  const answered = header(res, "docker-content-digest");
  if (answered && isDigest(answered) && answered !== digest && answered.startsWith("sha256:")) {
    throw invalidArgument(`Registry stored manifest "${reference}" as "${answered}", expected "${digest}"`);
  }
  return digest;
}

/** The upload session URL of a 202 answer, resolved against the request URL. */
function uploadLocation(res: { headers: Record<string, string | string[] | undefined>; url: URL }): URL {
  const loc = header(res, "location");
  if (!loc) throw unavailable(`Registry answered "${redactUrl(res.url)}" without an upload location`);
  let u: URL;
  try {
    u = new URL(loc, res.url);
  } catch {
    throw unavailable(`Registry answered an invalid upload location "${loc.slice(0, 200)}"`);
  }
  if (u.protocol !== "https:" && u.protocol !== "http:")
    throw unavailable(`Registry answered an invalid upload location "${loc.slice(0, 200)}"`);
  return u;
}

function withQuery(u: URL, params: Record<string, string>): URL {
  const out = new URL(u);
  for (const [k, v] of Object.entries(params)) out.searchParams.set(k, v);
  return out;
}

/** The `rel="next"` target of a Link header, only on the registry's own origin. */
function nextLink(link: string | undefined, current: URL, base: URL): URL | undefined {
  if (!link) return undefined;
  const m = /<([^>]*)>\s*;\s*rel="?next"?/i.exec(link);
  if (!m?.[1]) return undefined;
  let u: URL;
  try {
    u = new URL(m[1], current);
  } catch {
    return undefined;
  }
  return u.origin === base.origin ? u : undefined;
}
