import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import type { Duplex, Readable } from "node:stream";
import { invalidArgument } from "../base/mod.ts";
import { familiarName, parseReference, referenceString } from "../oci/mod.ts";
import { decodeJsonStream, exactTimeNano } from "./streams.ts";
import {
  DEFAULT_HOST,
  type Endpoint,
  parseHost,
  type QueryValue,
  type RequestOptions,
  readText,
  type TlsSettings,
  Transport,
} from "./transport.ts";
import type {
  AuthConfig,
  AuthResponse,
  ContainerChange,
  ContainerCreateBody,
  ContainerCreateResponse,
  ContainerInspect,
  ContainersPruneReport,
  ContainerSummary,
  ContainerTop,
  ContainerUpdateResponse,
  ContainerWaitResponse,
  DiskUsage,
  EventMessage,
  ExecCreateBody,
  ExecInspect,
  Filters,
  HistoryEntry,
  ImageDeleteItem,
  ImageInspect,
  ImageSummary,
  ImagesPruneReport,
  JsonMessage,
  NetworkCreateBody,
  NetworkResource,
  PathStat,
  PruneReport,
  Resources,
  RestartPolicy,
  SearchResult,
  StatsSample,
  SystemInfo,
  VersionInfo,
  Volume,
} from "./types.ts";

/** The newest Engine API version this client speaks; older daemons are met at their version. */
export const CLIENT_API_VERSION = "1.47";
/** The oldest version a daemon may answer with before we refuse to guess. */
const FALLBACK_API_VERSION = "1.24";

/** How to reach the daemon. */
export interface ClientOptions {
  /** `unix:///path` or `tcp://host:port`; default BERTH_HOST, DOCKER_HOST, then unix:///run/berth/berth.sock. */
  host?: string;
  /** Use TLS for tcp:// (docker's --tls / --tlsverify). */
  tls?: TlsSettings;
  /** Force an API version instead of negotiating (DOCKER_API_VERSION). */
  version?: string;
  /** Extra headers on every request (docker's config.json `HttpHeaders`). */
  headers?: Record<string, string>;
}

/** Answer of GET /_ping. */
export interface PingInfo {
  apiVersion: string | undefined;
  osType: string | undefined;
  experimental: boolean;
  builderVersion: string | undefined;
}

/** A hijacked duplex connection to a container's or exec's stdio. */
export interface HijackedConnection {
  /** Raw bytes: multiplexed (stdcopy) unless the container has a TTY. */
  socket: Duplex;
  /** Half-closes our side: the daemon sees the end of stdin (docker's CloseWrite). */
  closeWrite(): void;
  close(): void;
}

/** Options of POST /containers/{id}/attach. */
export interface AttachOptions {
  stream?: boolean;
  stdin?: boolean;
  stdout?: boolean;
  stderr?: boolean;
  logs?: boolean;
  detachKeys?: string;
}

/** Options of GET /containers/{id}/logs. */
export interface LogsOptions {
  stdout?: boolean;
  stderr?: boolean;
  follow?: boolean;
  since?: string;
  until?: string;
  timestamps?: boolean;
  tail?: string;
  details?: boolean;
  signal?: AbortSignal;
}

/** The platform part of a JSON progress stream call. */
export interface ProgressStream extends AsyncIterable<JsonMessage> {
  /** The raw response, for callers that copy it as is. */
  body: Readable;
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

function filtersQuery(f: Filters | undefined): string | undefined {
  if (!f || Object.keys(f).length === 0) return undefined;
  return JSON.stringify(f);
}

/** The tag or digest of a reference as the API's `tag` parameter wants it (`latest` when neither is given). */
function apiTag(ref: { tag?: string; digest?: string }): string {
  if (ref.digest !== undefined) return ref.digest;
  return ref.tag ?? "latest";
}

/**
 * A typed client of the Docker Engine API. It negotiates the API version on first use (GET /_ping,
 * `Api-Version` header, capped at `CLIENT_API_VERSION`), as the docker CLI does. Methods map
 * one-to-one to endpoints; streaming endpoints return the response stream undecoded or as
 * decoded JSON messages. Errors from the daemon are `DaemonError`s with the daemon's message.
 */
/** The report of `POST /berth/system/check`. */
export interface StoreCheckReport {
  ok: boolean;
  checked: Record<string, number>;
  problems: { kind: string; subject: string; message: string; severity?: string; repaired: boolean }[];
}

export class EngineClient {
  readonly transport: Transport;
  #negotiated: Promise<void> | undefined;
  #forcedVersion: string | undefined;

  constructor(options: ClientOptions = {}) {
    const host = options.host ?? process.env.BERTH_HOST ?? process.env.DOCKER_HOST ?? DEFAULT_HOST;
    const endpoint = parseHost(host, options.tls !== undefined);
    const init: { tls?: TlsSettings; headers?: Record<string, string> } = {};
    if (options.tls) init.tls = options.tls;
    if (options.headers) init.headers = options.headers;
    this.transport = new Transport(endpoint, init);
    this.#forcedVersion = options.version;
    if (options.version) this.transport.version = options.version.replace(/^v/, "");
  }

  /** The daemon's address, as given (`unix:///run/berth/berth.sock`). */
  get endpoint(): Endpoint {
    return this.transport.endpoint;
  }

  /** The API version in use; negotiates first if needed. */
  async apiVersion(): Promise<string> {
    await this.#ready();
    return this.transport.version ?? CLIENT_API_VERSION;
  }

  /** Releases pooled connections. */
  close(): void {
    this.transport.close();
  }

  #ready(): Promise<void> {
    if (this.#forcedVersion) return Promise.resolve();
    this.#negotiated ??= this.ping().then(
      (p) => {
        this.transport.version = pickVersion(p.apiVersion);
      },
      (e) => {
        this.#negotiated = undefined;
        throw e;
      },
    );
    return this.#negotiated;
  }

  async #json<T>(o: RequestOptions): Promise<T> {
    await this.#ready();
    return await this.transport.json<T>(o);
  }
  async #call(o: RequestOptions): Promise<{ headers: IncomingHttpHeaders }> {
    await this.#ready();
    return await this.transport.call(o);
  }
  async #stream(o: RequestOptions): Promise<{ body: IncomingMessage; headers: IncomingHttpHeaders }> {
    await this.#ready();
    return await this.transport.request(o);
  }
  async #progress(o: RequestOptions): Promise<ProgressStream> {
    const res = await this.#stream(o);
    return { body: res.body, [Symbol.asyncIterator]: () => decodeJsonStream<JsonMessage>(res.body) };
  }

  /**
   * GET of an inspect endpoint, returning the daemon's JSON text untouched (key order, number
   * formatting and escaping as sent) along with its parsed value; `inspect` prints the former.
   */
  async inspectRaw(
    kind: "container" | "image" | "network" | "volume",
    id: string,
    options: { size?: boolean } = {},
  ): Promise<{ raw: string; value: unknown }> {
    const paths = {
      container: `/containers/${enc(id)}/json`,
      image: `/images/${id}/json`,
      network: `/networks/${enc(id)}`,
      volume: `/volumes/${enc(id)}`,
    };
    await this.#ready();
    const res = await this.transport.request({
      path: paths[kind],
      query: { size: kind === "container" && options.size ? true : undefined },
    });
    const raw = await readText(res.body);
    return { raw, value: JSON.parse(raw) as unknown };
  }

  // --- system ---

  /** GET /_ping (unversioned): reachability and the daemon's API version. */
  async ping(signal?: AbortSignal): Promise<PingInfo> {
    const o: RequestOptions = { path: "/_ping", unversioned: true };
    if (signal) o.signal = signal;
    const res = await this.transport.call(o);
    const h = res.headers;
    return {
      apiVersion: header(h, "api-version"),
      osType: header(h, "ostype"),
      experimental: header(h, "docker-experimental") === "true",
      builderVersion: header(h, "builder-version"),
    };
  }

  /** GET /version */
  version(): Promise<VersionInfo> {
    return this.#json({ path: "/version" });
  }

  /** GET /info */
  info(): Promise<SystemInfo> {
    return this.#json({ path: "/info" });
  }

  /** GET /system/df */
  diskUsage(options: { types?: string[] } = {}): Promise<DiskUsage> {
    return this.#json({ path: "/system/df", query: { type: options.types } });
  }

  /** POST /berth/system/check: berth's store check (and repair). */
  storeCheck(options: { repair?: boolean; signal?: AbortSignal } = {}): Promise<StoreCheckReport> {
    const o: RequestOptions = { method: "POST", path: "/berth/system/check", query: { repair: options.repair ? "1" : undefined } };
    if (options.signal) o.signal = options.signal;
    return this.#json(o);
  }

  /** GET /events: a stream of events until `until` or until aborted. */
  async events(
    options: { since?: string; until?: string; filters?: Filters; signal?: AbortSignal } = {},
  ): Promise<AsyncIterable<EventMessage>> {
    const o: RequestOptions = {
      path: "/events",
      query: { since: options.since, until: options.until, filters: filtersQuery(options.filters) },
    };
    if (options.signal) o.signal = options.signal;
    const res = await this.#stream(o);
    return decodeJsonStream<EventMessage>(res.body, exactTimeNano);
  }

  /** POST /auth: validates credentials with the registry; may return an identity token. */
  auth(config: AuthConfig): Promise<AuthResponse> {
    return this.#json({ method: "POST", path: "/auth", json: config });
  }

  // --- images ---

  /** GET /images/json */
  imageList(options: { all?: boolean; filters?: Filters; digests?: boolean; sharedSize?: boolean } = {}): Promise<ImageSummary[]> {
    return this.#json({
      path: "/images/json",
      query: {
        all: options.all || undefined,
        filters: filtersQuery(options.filters),
        digests: options.digests || undefined,
        "shared-size": options.sharedSize || undefined,
      },
    });
  }

  /** GET /images/{name}/json */
  imageInspect(name: string): Promise<ImageInspect> {
    return this.#json({ path: `/images/${name}/json` });
  }

  /** GET /images/{name}/history */
  imageHistory(name: string, options: { platform?: string } = {}): Promise<HistoryEntry[]> {
    return this.#json({ path: `/images/${name}/history`, query: { platform: options.platform } });
  }

  /** POST /images/{name}/tag: `target` is parsed and normalised like the docker CLI does. */
  async imageTag(source: string, target: string): Promise<void> {
    const ref = parseReference(target);
    if (ref.digest !== undefined) throw invalidArgument("refusing to create a tag with a digest reference");
    await this.#call({ method: "POST", path: `/images/${source}/tag`, query: { repo: familiarName(ref), tag: ref.tag ?? "latest" } });
  }

  /** DELETE /images/{name} */
  imageRemove(name: string, options: { force?: boolean; noPrune?: boolean; platforms?: string[] } = {}): Promise<ImageDeleteItem[]> {
    return this.#json({
      method: "DELETE",
      path: `/images/${name}`,
      query: { force: options.force || undefined, noprune: options.noPrune || undefined, platforms: options.platforms },
    });
  }

  /**
   * POST /images/create?fromImage=: pulls an image; resolves with the progress stream once the
   * daemon accepted the request (a 404/401 is thrown before any progress).
   */
  async imagePull(
    reference: string,
    options: { all?: boolean; platform?: string; registryAuth?: string; signal?: AbortSignal } = {},
  ): Promise<ProgressStream> {
    const ref = parseReference(reference);
    const name = referenceString({ domain: ref.domain, path: ref.path });
    const query: Record<string, QueryValue> = { fromImage: name };
    if (!options.all) query.tag = apiTag(ref);
    if (options.platform) query.platform = options.platform.toLowerCase();
    const o: RequestOptions = { method: "POST", path: "/images/create", query, headers: authHeader(options.registryAuth) };
    if (options.signal) o.signal = options.signal;
    return await this.#progress(o);
  }

  /** POST /images/{name}/push */
  async imagePush(
    reference: string,
    options: { all?: boolean; platform?: string; registryAuth?: string; signal?: AbortSignal } = {},
  ): Promise<ProgressStream> {
    const ref = parseReference(reference);
    if (ref.digest !== undefined) throw invalidArgument("cannot push a digest reference");
    const query: Record<string, QueryValue> = {};
    if (!options.all) query.tag = ref.tag ?? "latest";
    if (options.platform) query.platform = JSON.stringify(platformObject(options.platform));
    const o: RequestOptions = {
      method: "POST",
      path: `/images/${familiarName(ref)}/push`,
      query,
      headers: authHeader(options.registryAuth),
    };
    if (options.signal) o.signal = options.signal;
    return await this.#progress(o);
  }

  /** GET /images/get: a docker-archive tar of the named images. */
  async imageSave(names: string[], options: { platform?: string } = {}): Promise<Readable> {
    const query: Record<string, QueryValue> = { names };
    if (options.platform) query.platform = JSON.stringify(platformObject(options.platform));
    return (await this.#stream({ path: "/images/get", query })).body;
  }

  /** POST /images/load: returns the answer and whether it is a JSON message stream. */
  async imageLoad(input: Readable, options: { quiet?: boolean; platform?: string } = {}): Promise<{ body: Readable; json: boolean }> {
    const query: Record<string, QueryValue> = { quiet: options.quiet ? "1" : "0" };
    if (options.platform) query.platform = JSON.stringify(platformObject(options.platform));
    const res = await this.#stream({
      method: "POST",
      path: "/images/load",
      query,
      body: input,
      headers: { "Content-Type": "application/x-tar" },
    });
    return { body: res.body, json: String(res.headers["content-type"] ?? "").includes("application/json") };
  }

  /** POST /images/create?fromSrc=: imports a root filesystem tarball (a stream, or a URL the daemon fetches). */
  async imageImport(
    source: { stream: Readable } | { url: string },
    options: { reference?: string; message?: string; changes?: string[]; platform?: string } = {},
  ): Promise<ProgressStream> {
    const query: Record<string, QueryValue> = { fromSrc: "url" in source ? source.url : "-" };
    if (options.reference) {
      const ref = parseReference(options.reference);
      query.repo = familiarName(ref);
      query.tag = apiTag(ref) || undefined;
    }
    if (options.message) query.message = options.message;
    if (options.changes?.length) query.changes = options.changes;
    if (options.platform) query.platform = options.platform.toLowerCase();
    const o: RequestOptions = { method: "POST", path: "/images/create", query };
    if ("stream" in source) {
      o.body = source.stream;
      o.headers = { "Content-Type": "application/x-tar" };
    }
    return await this.#progress(o);
  }

  /** GET /images/search */
  imageSearch(term: string, options: { limit?: number; filters?: Filters; registryAuth?: string } = {}): Promise<SearchResult[]> {
    return this.#json({
      path: "/images/search",
      query: { term, limit: options.limit || undefined, filters: filtersQuery(options.filters) },
      headers: authHeader(options.registryAuth),
    });
  }

  /** POST /images/prune */
  imagesPrune(filters?: Filters): Promise<ImagesPruneReport> {
    return this.#json({ method: "POST", path: "/images/prune", query: { filters: filtersQuery(filters) } });
  }

  /** POST /commit: creates an image from a container's changes; returns the new image id. */
  async containerCommit(
    container: string,
    options: { reference?: string; comment?: string; author?: string; changes?: string[]; pause?: boolean; config?: unknown } = {},
  ): Promise<{ Id: string }> {
    const query: Record<string, QueryValue> = { container };
    if (options.reference) {
      const ref = parseReference(options.reference);
      if (ref.digest !== undefined) throw invalidArgument("refusing to create a tag with a digest reference");
      query.repo = familiarName(ref);
      query.tag = ref.tag;
    }
    query.comment = options.comment || undefined;
    query.author = options.author || undefined;
    query.changes = options.changes?.length ? options.changes : undefined;
    if (options.pause === false) query.pause = false;
    return await this.#json({ method: "POST", path: "/commit", query, json: options.config ?? {} });
  }

  /** POST /build: the classic builder; `context` is a tar stream. */
  async imageBuild(
    context: Readable,
    query: Record<string, QueryValue>,
    options: { registryConfig?: string; signal?: AbortSignal } = {},
  ): Promise<ProgressStream> {
    const headers: Record<string, string> = { "Content-Type": "application/x-tar" };
    if (options.registryConfig) headers["X-Registry-Config"] = options.registryConfig;
    const o: RequestOptions = { method: "POST", path: "/build", query, body: context, headers };
    if (options.signal) o.signal = options.signal;
    return await this.#progress(o);
  }

  // --- containers ---

  /** GET /containers/json */
  containerList(options: { all?: boolean; limit?: number; size?: boolean; filters?: Filters } = {}): Promise<ContainerSummary[]> {
    return this.#json({
      path: "/containers/json",
      query: {
        all: options.all || undefined,
        limit: options.limit !== undefined && options.limit > 0 ? options.limit : undefined,
        size: options.size || undefined,
        filters: filtersQuery(options.filters),
      },
    });
  }

  /** POST /containers/create */
  containerCreate(body: ContainerCreateBody, options: { name?: string; platform?: string } = {}): Promise<ContainerCreateResponse> {
    return this.#json({
      method: "POST",
      path: "/containers/create",
      query: { name: options.name || undefined, platform: options.platform || undefined },
      json: body,
    });
  }

  /** GET /containers/{id}/json */
  containerInspect(id: string, options: { size?: boolean } = {}): Promise<ContainerInspect> {
    return this.#json({ path: `/containers/${enc(id)}/json`, query: { size: options.size || undefined } });
  }

  /** POST /containers/{id}/start */
  async containerStart(id: string, options: { detachKeys?: string } = {}): Promise<void> {
    await this.#call({ method: "POST", path: `/containers/${enc(id)}/start`, query: { detachKeys: options.detachKeys } });
  }

  /** POST /containers/{id}/stop */
  async containerStop(id: string, options: { signal?: string; timeout?: number } = {}): Promise<void> {
    await this.#call({ method: "POST", path: `/containers/${enc(id)}/stop`, query: { signal: options.signal, t: options.timeout } });
  }

  /** POST /containers/{id}/restart */
  async containerRestart(id: string, options: { signal?: string; timeout?: number } = {}): Promise<void> {
    await this.#call({ method: "POST", path: `/containers/${enc(id)}/restart`, query: { signal: options.signal, t: options.timeout } });
  }

  /** POST /containers/{id}/kill */
  async containerKill(id: string, signal?: string): Promise<void> {
    await this.#call({ method: "POST", path: `/containers/${enc(id)}/kill`, query: { signal: signal || undefined } });
  }

  /** DELETE /containers/{id} */
  async containerRemove(id: string, options: { force?: boolean; volumes?: boolean; link?: boolean } = {}): Promise<void> {
    await this.#call({
      method: "DELETE",
      path: `/containers/${enc(id)}`,
      query: { force: options.force || undefined, v: options.volumes || undefined, link: options.link || undefined },
    });
  }

  /**
   * POST /containers/{id}/wait. Resolves once the daemon accepted the wait (so a following start
   * cannot race past it) with a promise of the result.
   */
  async containerWait(
    id: string,
    condition?: "not-running" | "next-exit" | "removed",
    signal?: AbortSignal,
  ): Promise<{ result: Promise<ContainerWaitResponse> }> {
    const o: RequestOptions = { method: "POST", path: `/containers/${enc(id)}/wait`, query: { condition } };
    if (signal) o.signal = signal;
    const res = await this.#stream(o);
    const result = (async () => {
      const chunks: Buffer[] = [];
      for await (const c of res.body) chunks.push(c as Buffer);
      const text = Buffer.concat(chunks).toString("utf8").trim();
      if (text === "") throw invalidArgument("Empty answer to container wait");
      return JSON.parse(text) as ContainerWaitResponse;
    })();
    // The caller may never look at the result (detached runs): keep a rejection from going unhandled.
    result.catch(() => {});
    return { result };
  }

  /** POST /containers/{id}/attach, hijacked. */
  async containerAttach(id: string, options: AttachOptions): Promise<HijackedConnection> {
    await this.#ready();
    const { socket } = await this.transport.hijack({
      method: "POST",
      path: `/containers/${enc(id)}/attach`,
      query: {
        stream: options.stream ?? true,
        stdin: options.stdin || undefined,
        stdout: options.stdout || undefined,
        stderr: options.stderr || undefined,
        logs: options.logs || undefined,
        detachKeys: options.detachKeys,
      },
    });
    return hijacked(socket);
  }

  /** POST /containers/{id}/resize */
  async containerResize(id: string, height: number, width: number): Promise<void> {
    await this.#call({ method: "POST", path: `/containers/${enc(id)}/resize`, query: { h: height, w: width } });
  }

  /** GET /containers/{id}/logs: multiplexed unless the container has a TTY. */
  async containerLogs(id: string, options: LogsOptions): Promise<Readable> {
    const o: RequestOptions = {
      path: `/containers/${enc(id)}/logs`,
      query: {
        stdout: options.stdout || undefined,
        stderr: options.stderr || undefined,
        follow: options.follow || undefined,
        since: options.since,
        until: options.until,
        timestamps: options.timestamps || undefined,
        tail: options.tail,
        details: options.details || undefined,
      },
    };
    if (options.signal) o.signal = options.signal;
    return (await this.#stream(o)).body;
  }

  /** GET /containers/{id}/top */
  containerTop(id: string, psArgs?: string): Promise<ContainerTop> {
    return this.#json({ path: `/containers/${enc(id)}/top`, query: { ps_args: psArgs || undefined } });
  }

  /** POST /containers/{id}/pause */
  async containerPause(id: string): Promise<void> {
    await this.#call({ method: "POST", path: `/containers/${enc(id)}/pause` });
  }

  /** POST /containers/{id}/unpause */
  async containerUnpause(id: string): Promise<void> {
    await this.#call({ method: "POST", path: `/containers/${enc(id)}/unpause` });
  }

  /** POST /containers/{id}/rename */
  async containerRename(id: string, name: string): Promise<void> {
    await this.#call({ method: "POST", path: `/containers/${enc(id)}/rename`, query: { name } });
  }

  /** POST /containers/{id}/update */
  containerUpdate(id: string, body: Resources & { RestartPolicy?: RestartPolicy }): Promise<ContainerUpdateResponse> {
    return this.#json({ method: "POST", path: `/containers/${enc(id)}/update`, json: body });
  }

  /** GET /containers/{id}/stats: one sample (`stream: false`) or a stream of samples. */
  async containerStats(
    id: string,
    options: { stream: boolean; oneShot?: boolean; signal?: AbortSignal },
  ): Promise<AsyncIterable<StatsSample>> {
    const o: RequestOptions = {
      path: `/containers/${enc(id)}/stats`,
      query: { stream: options.stream, "one-shot": options.oneShot || undefined },
    };
    if (options.signal) o.signal = options.signal;
    const res = await this.#stream(o);
    return decodeJsonStream<StatsSample>(res.body);
  }

  /** GET /containers/{id}/changes */
  async containerChanges(id: string): Promise<ContainerChange[]> {
    return (await this.#json<ContainerChange[] | null>({ path: `/containers/${enc(id)}/changes` })) ?? [];
  }

  /** GET /containers/{id}/export: a tar of the container's filesystem. */
  async containerExport(id: string): Promise<Readable> {
    return (await this.#stream({ path: `/containers/${enc(id)}/export` })).body;
  }

  /** POST /containers/prune */
  containersPrune(filters?: Filters): Promise<ContainersPruneReport> {
    return this.#json({ method: "POST", path: "/containers/prune", query: { filters: filtersQuery(filters) } });
  }

  /** HEAD /containers/{id}/archive: stat of a path inside the container. */
  async containerStatPath(id: string, path: string): Promise<PathStat> {
    const res = await this.#call({ method: "HEAD", path: `/containers/${enc(id)}/archive`, query: { path } });
    return decodePathStat(res.headers);
  }

  /** GET /containers/{id}/archive: a tar of a path inside the container, with its stat. */
  async containerGetArchive(id: string, path: string): Promise<{ body: Readable; stat: PathStat }> {
    const res = await this.#stream({ path: `/containers/${enc(id)}/archive`, query: { path } });
    return { body: res.body, stat: decodePathStat(res.headers) };
  }

  /** PUT /containers/{id}/archive: extracts a tar into a directory of the container. */
  async containerPutArchive(
    id: string,
    path: string,
    tar: Readable,
    options: { noOverwriteDirNonDir?: boolean; copyUIDGID?: boolean } = {},
  ): Promise<void> {
    await this.#call({
      method: "PUT",
      path: `/containers/${enc(id)}/archive`,
      query: { path, noOverwriteDirNonDir: options.noOverwriteDirNonDir ?? true, copyUIDGID: options.copyUIDGID || undefined },
      body: tar,
      headers: { "Content-Type": "application/x-tar" },
    });
  }

  // --- exec ---

  /** POST /containers/{id}/exec */
  execCreate(container: string, body: ExecCreateBody): Promise<{ Id: string }> {
    return this.#json({ method: "POST", path: `/containers/${enc(container)}/exec`, json: body });
  }

  /** POST /exec/{id}/start, detached: returns once started. */
  async execStartDetached(id: string, options: { tty?: boolean } = {}): Promise<void> {
    await this.#call({ method: "POST", path: `/exec/${enc(id)}/start`, json: { Detach: true, Tty: options.tty ?? false } });
  }

  /** POST /exec/{id}/start, hijacked. */
  async execAttach(id: string, options: { tty?: boolean; consoleSize?: [number, number] } = {}): Promise<HijackedConnection> {
    await this.#ready();
    const body: Record<string, unknown> = { Detach: false, Tty: options.tty ?? false };
    if (options.consoleSize) body.ConsoleSize = options.consoleSize;
    const { socket } = await this.transport.hijack({ method: "POST", path: `/exec/${enc(id)}/start`, json: body });
    return hijacked(socket);
  }

  /** GET /exec/{id}/json */
  execInspect(id: string): Promise<ExecInspect> {
    return this.#json({ path: `/exec/${enc(id)}/json` });
  }

  /** POST /exec/{id}/resize */
  async execResize(id: string, height: number, width: number): Promise<void> {
    await this.#call({ method: "POST", path: `/exec/${enc(id)}/resize`, query: { h: height, w: width } });
  }

  // --- networks ---

  /** GET /networks */
  async networkList(options: { filters?: Filters } = {}): Promise<NetworkResource[]> {
    return (await this.#json<NetworkResource[] | null>({ path: "/networks", query: { filters: filtersQuery(options.filters) } })) ?? [];
  }

  /** GET /networks/{id} */
  networkInspect(id: string, options: { verbose?: boolean; scope?: string } = {}): Promise<NetworkResource> {
    return this.#json({ path: `/networks/${enc(id)}`, query: { verbose: options.verbose || undefined, scope: options.scope } });
  }

  /** POST /networks/create */
  networkCreate(body: NetworkCreateBody): Promise<{ Id: string; Warning?: string }> {
    return this.#json({ method: "POST", path: "/networks/create", json: body });
  }

  /** DELETE /networks/{id} */
  async networkRemove(id: string): Promise<void> {
    await this.#call({ method: "DELETE", path: `/networks/${enc(id)}` });
  }

  /** POST /networks/{id}/connect */
  async networkConnect(network: string, container: string, endpoint?: unknown): Promise<void> {
    await this.#call({
      method: "POST",
      path: `/networks/${enc(network)}/connect`,
      json: { Container: container, EndpointConfig: endpoint ?? null },
    });
  }

  /** POST /networks/{id}/disconnect */
  async networkDisconnect(network: string, container: string, force = false): Promise<void> {
    await this.#call({ method: "POST", path: `/networks/${enc(network)}/disconnect`, json: { Container: container, Force: force } });
  }

  /** POST /networks/prune */
  networksPrune(filters?: Filters): Promise<PruneReport> {
    return this.#json({ method: "POST", path: "/networks/prune", query: { filters: filtersQuery(filters) } });
  }

  // --- volumes ---

  /** GET /volumes */
  async volumeList(options: { filters?: Filters } = {}): Promise<{ Volumes: Volume[] | null; Warnings: string[] | null }> {
    return await this.#json({ path: "/volumes", query: { filters: filtersQuery(options.filters) } });
  }

  /** GET /volumes/{name} */
  volumeInspect(name: string): Promise<Volume> {
    return this.#json({ path: `/volumes/${enc(name)}` });
  }

  /** POST /volumes/create */
  volumeCreate(body: {
    Name?: string;
    Driver?: string;
    DriverOpts?: Record<string, string>;
    Labels?: Record<string, string>;
  }): Promise<Volume> {
    return this.#json({ method: "POST", path: "/volumes/create", json: body });
  }

  /** DELETE /volumes/{name} */
  async volumeRemove(name: string, force = false): Promise<void> {
    await this.#call({ method: "DELETE", path: `/volumes/${enc(name)}`, query: { force: force || undefined } });
  }

  /** POST /volumes/prune */
  volumesPrune(filters?: Filters): Promise<PruneReport> {
    return this.#json({ method: "POST", path: "/volumes/prune", query: { filters: filtersQuery(filters) } });
  }

  /** POST /build/prune */
  buildPrune(options: { all?: boolean; filters?: Filters } = {}): Promise<{ CachesDeleted: string[] | null; SpaceReclaimed: number }> {
    return this.#json({
      method: "POST",
      path: "/build/prune",
      query: { all: options.all || undefined, filters: filtersQuery(options.filters) },
    });
  }
}

function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

function authHeader(auth: string | undefined): Record<string, string> {
  return auth ? { "X-Registry-Auth": auth } : {};
}

function platformObject(p: string): { os: string; architecture: string; variant?: string } {
  const parts = p.toLowerCase().split("/");
  const o: { os: string; architecture: string; variant?: string } = { os: parts[0] ?? "linux", architecture: parts[1] ?? "amd64" };
  if (parts[2]) o.variant = parts[2];
  return o;
}

/** Compares dotted API versions numerically. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/** The version to speak given the daemon's: the lower of it and ours (docker's NegotiateAPIVersion). */
export function pickVersion(server: string | undefined): string {
  if (!server) return FALLBACK_API_VERSION;
  return compareVersions(server, CLIENT_API_VERSION) < 0 ? server : CLIENT_API_VERSION;
}

function decodePathStat(h: IncomingHttpHeaders): PathStat {
  const raw = header(h, "x-docker-container-path-stat");
  if (!raw) throw invalidArgument("Unable to get resource stat from response: no X-Docker-Container-Path-Stat header");
  return JSON.parse(Buffer.from(raw, "base64").toString("utf8")) as PathStat;
}

function hijacked(socket: Duplex): HijackedConnection {
  return {
    socket,
    closeWrite() {
      socket.end();
    },
    close() {
      socket.destroy();
    },
  };
}

export { DEFAULT_HOST };
