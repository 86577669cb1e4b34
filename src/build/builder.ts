/**
 * The builder: a Dockerfile and a build context in, an image out, with the classic builder's
 * progress stream ("Step 1/5 : FROM busybox", " ---> Using cache", ...).
 *
 * Model. A *state* is an image config (exact bytes, so its digest is an image ID) plus layer
 * descriptors; the top layer is unpacked as the committed snapshot named by its chain ID. Each
 * instruction turns a state into the next one. A step's *cache key* digests the parent state's
 * ID and the step's definition; for COPY/ADD the definition includes the content, modes and
 * ownership of the copied files (not their times), for RUN the command, the build arguments it
 * sees and its mounts. A hit reuses the recorded state (" ---> Using cache"); the cache table
 * survives restarts and `builder prune` empties it.
 *
 * Stages form a graph through `FROM <stage>`, `COPY --from` and `RUN --mount=from=`. Only the
 * target and what it needs are built; stages start concurrently and wait for what they use;
 * two identical steps in one build run once.
 *
 * Layers: RUN runs in a container on an active snapshot (see run.ts); COPY, ADD and WORKDIR
 * work on the mounted snapshot; the snapshot's upper directory becomes the layer tar
 * (`diffDirectories`, deterministic, times clamped to SOURCE_DATE_EPOCH when given), whose
 * digest names the committed snapshot (chain ID); the tar is gzip compressed into the content
 * store in the background while the next steps run (`State.ready`). A step that changes no
 * file adds an `empty_layer` history entry only. The context is indexed in memory as it
 * arrives (context.ts) and written to disk only when a step needs real files.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { chmod as chmodFile, chown as chownFile, lstat, mkdir, open, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { join, posix } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { applyLayer, compressLayer, decompress, detectCompression, diffDirectories } from "../archive/mod.ts";
import {
  BerthError,
  canceled,
  type Db,
  type Digest,
  failedPrecondition,
  type Host,
  internal,
  invalidArgument,
  isAlreadyExists,
  type Logger,
  messageOf,
  notFound,
  notImplemented,
  sha256,
  shortHex,
} from "../base/mod.ts";
import type { ContentStore } from "../content/mod.ts";
import type { ImageStore } from "../image/mod.ts";
import {
  type Descriptor,
  familiarString,
  type HistoryEntry,
  hostPlatform,
  type ImageConfig,
  type Manifest,
  MediaType,
  parsePlatform,
  parseReference,
  type Platform,
  referenceString,
  withDefaultTag,
} from "../oci/mod.ts";
import {
  type ContainerRuntime,
  DEFAULT_PATH_ENV,
  type ResourceOptions,
  type Ulimit,
  readFileInRoot,
  resolveInRoot,
  resolveUserFrom,
} from "../runtime/mod.ts";
import { DIFF_LABEL, type OverlaySnapshotter, SIZE_LABEL } from "../snapshot/mod.ts";
import { BuildCache, type BuildState } from "./cache.ts";
import { emptyContext, type ReceivedContext, receiveContext } from "./context.ts";
import { applyMeta, DEFAULT_SHELL, expandInstruction, getEnv, type MetaState } from "./config.ts";
import {
  copyInto,
  hashMatch,
  isDirInRoot,
  mkdirAllInRoot,
  parseChmod,
  resolveSources,
  type SourceMatch,
  type SourceTree,
  writeInline,
} from "./fsops.ts";
import { parseDockerignore, PatternMatcher } from "./ignore.ts";
import { type Dockerfile, type Instruction, parseInstruction, parseRunMount, parseStages, type Stage } from "./instructions.ts";
import { ShellLex } from "./lex.ts";
import { chompHeredoc, DockerfileError, parseDockerfile, parseHeredoc } from "./parser.ts";
import { type BuildNetwork, hostNetwork, type RunMountSpec, StepRunner } from "./run.ts";

/** Credentials for one registry (decoded from X-Registry-Config). */
export interface BuildRegistryAuth {
  username?: string;
  password?: string;
  identityToken?: string;
  registryToken?: string;
  serverAddress?: string;
}

/** What the builder needs from the image service (the daemon's ImageService fits). */
export interface BuilderImages {
  readonly store: ImageStore;
  /** Blob digests and snapshot keys garbage collection must keep. */
  readonly leases: Set<string>;
  pull(
    name: string,
    options: {
      platform?: string | undefined;
      auth?: BuildRegistryAuth | undefined;
      progress: (m: Record<string, unknown>) => void;
      signal?: AbortSignal;
    },
  ): Promise<void>;
  record(
    image: { id: Digest; manifestDigest: Digest; manifestMediaType: string; blobs: Digest[] },
    names: { name: string; kind: "tag" | "digest" }[],
  ): Promise<unknown>;
  event(action: string, id: string, name?: string): void;
}

/** Everything the builder is made of. */
export interface BuilderDeps {
  db: Db;
  host: Host;
  log: Logger;
  content: ContentStore;
  snapshots: OverlaySnapshotter;
  images: BuilderImages;
  runtime: ContainerRuntime;
  /** Working directory under the data root (contexts, views). */
  root: string;
  /** Directory of RUN --mount=type=cache directories. */
  cacheMountRoot: string;
  /** Short directory for RUN bundles (under the exec root; unix socket paths are short). */
  runRoot: string;
  network?: BuildNetwork;
}

/** A JSON message of the build stream. */
export type BuildProgress = (msg: Record<string, unknown>) => void;

/** Options of one build (POST /build). */
export interface BuildOptions {
  /** The context: a tar (plain, gzip or zstd) or a bare Dockerfile. */
  context: Readable;
  /** Path of the Dockerfile in the context ("Dockerfile"). */
  dockerfile?: string | undefined;
  tags?: string[];
  buildArgs?: Record<string, string | null>;
  target?: string | undefined;
  noCache?: boolean;
  pull?: boolean;
  quiet?: boolean;
  labels?: Record<string, string>;
  networkMode?: string | undefined;
  platform?: string | undefined;
  extraHosts?: string[];
  /** Limits of RUN containers (`--memory`, `--cpu-shares`, ...), as for `docker run`. */
  resources?: ResourceOptions;
  /** /dev/shm size of RUN containers in bytes. */
  shmSize?: number | undefined;
  ulimits?: Ulimit[];
  /** `--secret` contents by id (berth's `secrets` query parameter). */
  secrets?: Record<string, Buffer>;
  /** Credentials by registry host, for pulls. */
  auth?: (registry: string) => BuildRegistryAuth | undefined;
  progress: BuildProgress;
  signal?: AbortSignal;
}

/** The result of a build. */
export interface BuildResult {
  id: Digest;
  tags: string[];
}

/** A failed RUN (its exit code is the stream's error code). */
export class BuildStepError extends BerthError {
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super("InvalidArgument", message, { detail: { exitCode } });
    this.exitCode = exitCode;
  }
}

/** A build cache record for /system/df and `builder prune`. */
export interface BuildCacheRecord {
  ID: string;
  Parents: string[] | null;
  Type: string;
  Description: string;
  InUse: boolean;
  Shared: boolean;
  Size: number;
  CreatedAt: string;
  LastUsedAt: string;
  UsageCount: number;
}

const PROXY_ARGS = [
  "HTTP_PROXY",
  "http_proxy",
  "HTTPS_PROXY",
  "https_proxy",
  "FTP_PROXY",
  "ftp_proxy",
  "NO_PROXY",
  "no_proxy",
  "ALL_PROXY",
  "all_proxy",
];

/** A state in memory. */
interface State {
  bytes: string;
  config: ImageConfig;
  /**
   * Layer descriptors. A layer this build just made may still be being compressed into the
   * content store: its descriptor is filled in when `ready` resolves (see `#commit`).
   */
  layers: Descriptor[];
  id: Digest;
  /** Chain ID of the top layer (undefined for no layers). */
  top: Digest | undefined;
  /** Resolves when every layer blob is stored and `layers` is complete; rejects if one failed. */
  ready?: Promise<void> | undefined;
}

function stateOf(bytes: string, layers: Descriptor[], ready?: Promise<void>): State {
  const config = JSON.parse(bytes) as ImageConfig;
  let top: Digest | undefined;
  for (const d of config.rootfs?.diff_ids ?? []) top = top === undefined ? d : sha256(`${top} ${d}`);
  return { bytes, config, layers, id: sha256(bytes), top, ready };
}

/** A layer tar up to this size is kept in memory between its digest and its compression. */
const KEEP_TAR = 64 * 1024 * 1024;

/** RFC 3339 with the fraction's trailing zeros dropped, as Go writes times. */
function goTime(d: Date): string {
  return d
    .toISOString()
    .replace(/(\.\d*?)0+Z$/, "$1Z")
    .replace(/\.Z$/, "Z");
}

function keyOf(...parts: unknown[]): string {
  return sha256(JSON.stringify(parts));
}

function short(id: string): string {
  return shortHex(id, 12);
}

/** Reference counts over the shared lease set. */
class Leases {
  #set: Set<string>;
  #counts = new Map<string, number>();
  constructor(set: Set<string>) {
    this.#set = set;
  }
  add(k: string): void {
    const n = this.#counts.get(k) ?? 0;
    if (n === 0 && this.#set.has(k))
      this.#counts.set(k, 1_000_000_000); // someone else's: never release
    else this.#counts.set(k, n + 1);
    this.#set.add(k);
  }
  release(k: string): void {
    const n = (this.#counts.get(k) ?? 0) - 1;
    if (n <= 0) {
      this.#counts.delete(k);
      this.#set.delete(k);
    } else this.#counts.set(k, n);
  }
}

/**
 * The classic builder's message stream. In quiet mode everything is still sent; the API layer
 * holds it back (and shows it only if the build fails), as dockerd does.
 */
class Output {
  #progress: BuildProgress;
  readonly quiet: boolean;
  constructor(progress: BuildProgress, quiet: boolean) {
    this.#progress = progress;
    this.quiet = quiet;
  }
  stream(text: string): void {
    this.#progress({ stream: text });
  }
  send(msg: Record<string, unknown>): void {
    this.#progress(msg);
  }
}

/**
 * The image builder. `build` runs one build; `prune` empties the cache. Construct it at daemon
 * start so that the cache's layers are protected from garbage collection from the beginning.
 */
export class Builder {
  readonly cache: BuildCache;
  #d: BuilderDeps;
  #leases: Leases;
  #runner: StepRunner;
  #cacheRefs = new Set<string>();
  #cacheLocks = new Map<string, Promise<void>>();

  constructor(deps: BuilderDeps) {
    this.#d = deps;
    this.cache = new BuildCache(deps.db);
    this.#leases = new Leases(deps.images.leases);
    this.#runner = new StepRunner({
      host: deps.host,
      runtime: deps.runtime,
      snapshots: deps.snapshots,
      root: deps.runRoot,
      log: deps.log,
      network: deps.network ?? hostNetwork(),
    });
    this.#syncCacheRefs();
  }

  /** The networking hook for RUN (replace it to use the daemon's bridge). */
  get network(): BuildNetwork {
    return this.#runner.network;
  }
  set network(n: BuildNetwork) {
    this.#runner.network = n;
  }

  #syncCacheRefs(): void {
    const now = this.cache.refs();
    for (const r of now) if (!this.#cacheRefs.has(r)) this.#leases.add(r);
    for (const r of this.#cacheRefs) if (!now.has(r)) this.#leases.release(r);
    this.#cacheRefs = now;
  }

  /** Removes what a killed build left behind: working directories, RUN bundles, step snapshots. */
  async init(): Promise<void> {
    await mkdir(this.#d.root, { recursive: true, mode: 0o700 });
    await mkdir(this.#d.runRoot, { recursive: true, mode: 0o700 });
    for (const name of await readdir(this.#d.runRoot).catch(() => [] as string[])) {
      const dir = join(this.#d.runRoot, name);
      // A RUN container outlives a killed berthd (it has its own monitor): stop it.
      const rec = await readFile(join(dir, "runtime.json"), "utf8").catch(() => "");
      let id = "";
      try {
        id = rec ? ((JSON.parse(rec) as { id?: string }).id ?? "") : "";
      } catch {
        // A torn record: nothing to stop.
      }
      if (id) {
        await this.#d.runtime.restore(id, dir).catch(() => {});
        await this.#d.runtime.delete(id, { force: true }).catch(() => {});
      }
      await this.#d.host.unmount(join(dir, "rootfs"), { lazy: true }).catch(() => {});
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    }
    for (const name of await readdir(this.#d.root).catch(() => [] as string[])) {
      const dir = join(this.#d.root, name);
      await this.#d.host.unmount(join(dir, "mnt"), { lazy: true }).catch(() => {});
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    }
    for (const s of this.#d.snapshots.list()) {
      if (s.key.startsWith("build-")) await this.#d.snapshots.remove(s.key).catch(() => {});
    }
  }

  /** Runs a build. Errors after output started travel in the stream (the caller formats them). */
  async build(o: BuildOptions): Promise<BuildResult> {
    const out = new Output(o.progress, o.quiet === true);
    const tags = (o.tags ?? []).map((t) => {
      try {
        const r = parseReference(t);
        if (r.digest) throw new Error("digest");
        return withDefaultTag(r);
      } catch {
        throw invalidArgument(`invalid reference format: "${t}"`);
      }
    });
    const work = join(this.#d.root, `ctx-${randomBytes(6).toString("hex")}`);
    await mkdir(work, { recursive: true, mode: 0o700 });
    const job = new Job(this, this.#d, out, o, work);
    try {
      const final = await job.run();
      await job.settle();
      await final.ready;
      const id = await this.#record(
        final,
        tags.map((t) => referenceString(t)),
      );
      out.send({ aux: { ID: id } });
      if (out.quiet) out.stream(`${id}\n`);
      else {
        out.stream(`Successfully built ${short(id)}\n`);
        for (const t of tags) out.stream(`Successfully tagged ${familiarString(t)}\n`);
      }
      for (const t of tags) this.#d.images.event("tag", id, familiarString(t));
      return { id, tags: tags.map((t) => familiarString(t)) };
    } finally {
      await job.cleanup();
      await rm(work, { recursive: true, force: true }).catch(() => {});
    }
  }

  async #record(s: State, names: string[]): Promise<Digest> {
    const cfg = await this.#d.content.put(Buffer.from(s.bytes));
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: MediaType.DockerManifest,
      config: { mediaType: MediaType.DockerConfig, digest: cfg.digest, size: cfg.size },
      layers: s.layers,
    };
    const m = await this.#d.content.put(Buffer.from(JSON.stringify(manifest)));
    await this.#d.images.record(
      {
        id: cfg.digest,
        manifestDigest: m.digest,
        manifestMediaType: MediaType.DockerManifest,
        blobs: [cfg.digest, m.digest, ...s.layers.map((l) => l.digest)],
      },
      names.map((name) => ({ name, kind: "tag" as const })),
    );
    return cfg.digest;
  }

  // ------------------------------------------------------------------ internals used by Job

  /** Looks a cache entry up; a hit whose layers are gone is dropped. */
  async cacheGet(key: string): Promise<State | undefined> {
    const e = this.cache.get(key);
    if (!e) return undefined;
    const s = stateOf(e.state.config, e.state.layers);
    const ok =
      (s.top === undefined || this.#d.snapshots.stat(s.top)?.kind === "committed") &&
      (await Promise.all(s.layers.map((l) => this.#d.content.has(l.digest)))).every(Boolean);
    if (!ok) {
      this.cache.delete(key);
      this.#syncCacheRefs();
      return undefined;
    }
    this.cache.touch(key);
    return s;
  }

  cachePut(key: string, s: State, description: string): void {
    const refs = [...s.layers.map((l) => l.digest as string), ...(s.top ? [s.top] : [])];
    const state: BuildState = { config: s.bytes, layers: s.layers };
    const size = s.layers.at(-1)?.size ?? 0;
    this.cache.put(key, state, refs, { size, description });
    this.#syncCacheRefs();
  }

  lease(k: string): () => void {
    this.#leases.add(k);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#leases.release(k);
    };
  }

  get runner(): StepRunner {
    return this.#runner;
  }

  /** Serializes users of one `sharing=locked` cache mount. */
  async withCacheLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#cacheLocks.get(id) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    const chained = prev.then(() => mine);
    this.#cacheLocks.set(id, chained);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.#cacheLocks.get(id) === chained) this.#cacheLocks.delete(id);
    }
  }

  /** POST /build/prune: drops cache entries (all, or those older than `until`), then the caller runs GC. */
  prune(options: { all?: boolean; until?: number | undefined; keepStorage?: number | undefined } = {}): {
    CachesDeleted: string[] | null;
    SpaceReclaimed: number;
  } {
    const deleted: string[] = [];
    let reclaimed = 0;
    const entries = this.cache.list();
    let kept = entries.reduce((n, e) => n + e.size, 0);
    for (const e of entries) {
      if (options.until !== undefined && e.lastUsed > options.until) continue;
      if (options.keepStorage && kept <= options.keepStorage) break;
      this.cache.delete(e.key);
      deleted.push(e.key.replace(/^sha256:/, ""));
      reclaimed += e.size;
      kept -= e.size;
    }
    this.#syncCacheRefs();
    return { CachesDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed };
  }

  /** Cache records for GET /system/df. */
  usage(): BuildCacheRecord[] {
    return this.cache.list().map((e) => ({
      ID: e.key.replace(/^sha256:/, "").slice(0, 25),
      Parents: null,
      Type: "regular",
      Description: e.description,
      InUse: false,
      Shared: false,
      Size: e.size,
      CreatedAt: new Date(e.createdAt).toISOString(),
      LastUsedAt: new Date(e.lastUsed).toISOString(),
      UsageCount: 1,
    }));
  }
}

/**
 * Keeps the stream readable while stages run in parallel: the output of the earliest unfinished
 * stage goes out live, later stages' output is held and sent when their turn comes (the order
 * the classic builder would have printed), everything at once if the build fails.
 */
class Sequencer {
  #emit: BuildProgress;
  #order: number[] = [];
  #pos = 0;
  #held = new Map<number, Record<string, unknown>[]>();
  #done = new Set<number>();
  constructor(emit: BuildProgress) {
    this.#emit = emit;
  }
  setOrder(order: number[]): void {
    this.#order = order;
  }
  write(stage: number | undefined, msg: Record<string, unknown>): void {
    if (stage === undefined || this.#pos >= this.#order.length || this.#order[this.#pos] === stage) {
      this.#emit(msg);
      return;
    }
    const list = this.#held.get(stage) ?? [];
    list.push(msg);
    this.#held.set(stage, list);
  }
  finish(stage: number): void {
    this.#done.add(stage);
    while (this.#pos < this.#order.length && this.#done.has(this.#order[this.#pos] ?? -1)) {
      this.#pos++;
      this.#flush(this.#order[this.#pos]);
    }
  }
  flushAll(): void {
    for (; this.#pos < this.#order.length; this.#pos++) this.#flush(this.#order[this.#pos]);
  }
  #flush(stage: number | undefined): void {
    if (stage === undefined) return;
    for (const m of this.#held.get(stage) ?? []) this.#emit(m);
    this.#held.delete(stage);
  }
}

/** A source of files for COPY --from / RUN --mount from=: a stage, an image or the context. */
interface Mounted {
  dir: string;
  release(): Promise<void>;
}

/** Per-stage evaluation state. */
interface StageRun {
  stage: Stage;
  state: State;
  /** ARGs declared in this stage and their values. */
  args: Map<string, string | undefined>;
  meta: MetaState;
  platform: Platform;
}

/** A layer a step made: its diff ID now, its blob descriptor once `ready` resolves. */
interface NewLayer {
  desc: Descriptor;
  diffId: Digest;
  ready: Promise<void>;
}

/** One build. */
class Job {
  #b: Builder;
  #d: BuilderDeps;
  #out: Output;
  #o: BuildOptions;
  #work: string;
  #df!: Dockerfile;
  #contextDir: string;
  #ctx!: ReceivedContext;
  #ignore!: PatternMatcher;
  #stages = new Map<number, Promise<State>>();
  #steps = new Map<string, Promise<State>>();
  #stepNo = new Map<string, number>();
  #total = 0;
  #releases: (() => void)[] = [];
  #globalArgs = new Map<string, string | undefined>();
  #usedArgs = new Set<string>();
  #buildArgs: Record<string, string | null>;
  #epoch: number | undefined;
  #images = new Map<string, Promise<State>>();
  #secretsDir: string;
  #pending = new Set<Promise<void>>();
  #failed: unknown;
  #seq: Sequencer;
  #current = new AsyncLocalStorage<number>();

  constructor(b: Builder, d: BuilderDeps, out: Output, o: BuildOptions, work: string) {
    this.#b = b;
    this.#d = d;
    this.#seq = new Sequencer((m) => out.send(m));
    this.#out = new Output((m) => this.#seq.write(this.#current.getStore(), m), out.quiet);
    this.#o = o;
    this.#work = work;
    this.#contextDir = join(work, "context");
    this.#secretsDir = join(d.runRoot, `s-${randomBytes(5).toString("hex")}`);
    this.#buildArgs = o.buildArgs ?? {};
    const sde = this.#buildArgs.SOURCE_DATE_EPOCH;
    if (sde !== undefined && sde !== null && sde !== "") {
      if (!/^\d+$/.test(sde)) throw invalidArgument(`invalid SOURCE_DATE_EPOCH: ${sde}`);
      this.#epoch = Number(sde);
    }
  }

  #check(): void {
    if (this.#o.signal?.aborted) throw canceled("The build was canceled");
  }

  /** Work that outlives the step that started it: layer compression, cache records. */
  #track(p: Promise<unknown>): void {
    const q = p.then(
      () => {},
      (e: unknown) => {
        this.#failed ??= e;
      },
    );
    this.#pending.add(q);
    void q.finally(() => this.#pending.delete(q));
  }

  /** Waits for the background work; throws the first failure. */
  async settle(): Promise<void> {
    while (this.#pending.size) await Promise.all(this.#pending);
    if (this.#failed !== undefined) throw this.#failed;
  }

  async cleanup(): Promise<void> {
    // Background work pushes leases: let it finish before they are released.
    while (this.#pending.size) await Promise.all(this.#pending);
    for (const r of this.#releases) r();
    this.#releases = [];
    await rm(this.#secretsDir, { recursive: true, force: true }).catch(() => {});
  }

  #now(): string {
    return goTime(this.#epoch !== undefined ? new Date(this.#epoch * 1000) : new Date());
  }

  async run(): Promise<State> {
    const dfText = await this.#loadContext();
    this.#df = parseStages(dfText);
    const df = this.#df;
    // Global ARGs (before the first FROM), with the automatic platform ones.
    const target = this.#o.platform ? parsePlatform(this.#o.platform) : hostPlatform;
    const platformArgs: Record<string, string> = {
      BUILDPLATFORM: `${hostPlatform.os}/${hostPlatform.architecture}`,
      BUILDOS: hostPlatform.os,
      BUILDARCH: hostPlatform.architecture,
      BUILDVARIANT: hostPlatform.variant ?? "",
      TARGETPLATFORM: `${target.os}/${target.architecture}${target.variant ? `/${target.variant}` : ""}`,
      TARGETOS: target.os,
      TARGETARCH: target.architecture,
      TARGETVARIANT: target.variant ?? "",
    };
    for (const [k, v] of Object.entries(platformArgs)) this.#globalArgs.set(k, v);
    const lex = new ShellLex(df.escape);
    for (const a of df.metaArgs) {
      for (const arg of a.args) {
        const given = this.#buildArgs[arg.key];
        this.#usedArgs.add(arg.key);
        const def = arg.value === undefined ? undefined : lex.processWord(arg.value, (k) => this.#globalArgs.get(k));
        this.#globalArgs.set(arg.key, given !== undefined && given !== null ? given : def);
      }
    }
    // The target stage and what it needs.
    let targetIndex = df.stages.length - 1;
    if (this.#o.target) {
      const t = this.#o.target.toLowerCase();
      const s = df.stages.find((x) => x.name === t);
      if (!s) throw invalidArgument(`failed to reach build target ${this.#o.target} in Dockerfile`);
      targetIndex = s.index;
    }
    const target_ = df.stages[targetIndex];
    if (!target_) throw invalidArgument("The Dockerfile has no stages");
    if (this.#o.labels && Object.keys(this.#o.labels).length) {
      const pairs = Object.entries(this.#o.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      target_.instructions.push({
        kind: "label",
        pairs,
        line: 0,
        endLine: 0,
        original: `LABEL ${pairs.map(([k, v]) => `"${k}"='${v}'`).join(" ")}`,
      });
    }
    const needed = new Set<number>();
    const visit = (i: number) => {
      if (needed.has(i)) return;
      needed.add(i);
      const s = df.stages[i];
      if (!s) return;
      for (const dep of this.#stageDeps(s)) visit(dep);
    };
    visit(targetIndex);
    const order = [...needed].sort((a, b) => a - b);
    let n = 0;
    for (const i of order) {
      const s = df.stages[i];
      if (!s) continue;
      this.#stepNo.set(`${i}:-1`, ++n);
      for (let j = 0; j < s.instructions.length; j++) this.#stepNo.set(`${i}:${j}`, ++n);
    }
    this.#total = n;
    this.#seq.setOrder(order);
    // Start every needed stage now; each waits for what it uses.
    for (const i of order) void this.#stage(i).catch(() => {});
    let final: State;
    try {
      final = await this.#stage(targetIndex);
    } catch (e) {
      this.#seq.flushAll();
      throw e;
    }
    const unused = Object.keys(this.#buildArgs).filter(
      (k) => !this.#usedArgs.has(k) && !PROXY_ARGS.includes(k) && k !== "SOURCE_DATE_EPOCH",
    );
    if (unused.length) this.#out.stream(`[Warning] One or more build-args [${unused.sort().join(" ")}] were not consumed\n`);
    return final;
  }

  /** Indexes of the stages `s` uses (FROM, COPY --from, RUN --mount from=). */
  #stageDeps(s: Stage): number[] {
    const out: number[] = [];
    const lex = new ShellLex(this.#df.escape);
    const ref = (raw: string | undefined) => {
      if (!raw) return;
      let v: string;
      try {
        v = lex.processWord(raw, (k) => this.#globalArgs.get(k)).toLowerCase();
      } catch {
        return;
      }
      const i = this.#stageIndex(v, s.index);
      if (i !== undefined) out.push(i);
    };
    ref(s.base);
    for (const inst of s.instructions) {
      if (inst.kind === "copy" || inst.kind === "add") ref(inst.from);
      if (inst.kind === "run") {
        for (const m of inst.mounts) {
          const from = /(?:^|,)from=([^,]+)/.exec(m)?.[1];
          ref(from);
        }
      }
    }
    return out;
  }

  /** A stage named or numbered `v` that comes before stage `before`. */
  #stageIndex(v: string, before: number): number | undefined {
    const byName = this.#df.stages.find((x) => x.name === v.toLowerCase());
    if (byName && byName.index < before) return byName.index;
    if (/^\d+$/.test(v)) {
      const i = Number(v);
      if (i < before) return i;
    }
    return undefined;
  }

  // ------------------------------------------------------------------ context

  async #loadContext(): Promise<string> {
    const body = this.#o.context;
    const it = body[Symbol.asyncIterator]();
    const first: Buffer[] = [];
    let have = 0;
    let done = false;
    while (have < 1024) {
      const r = await it.next();
      if (r.done) {
        done = true;
        break;
      }
      const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
      first.push(b);
      have += b.length;
    }
    const head = Buffer.concat(first);
    async function* rest(): AsyncGenerator<Buffer> {
      yield head;
      if (done) return;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
      }
    }
    await mkdir(this.#contextDir, { recursive: true, mode: 0o700 });
    const comp = detectCompression(head);
    const isTar = comp === "gzip" || comp === "zstd" || looksLikeTar(head);
    if (comp === "xz" || comp === "bzip2") throw invalidArgument(`The build context is ${comp} compressed; send a plain, gzip or zstd tar`);
    const dfName = this.#o.dockerfile || "Dockerfile";
    if (!isTar) {
      if (head.length === 0) throw invalidArgument("Cannot locate specified Dockerfile: Dockerfile (the build context is empty)");
      // A bare Dockerfile (`docker build - < Dockerfile` through the API): no context files.
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const c of rest()) {
        size += c.length;
        if (size > 16 * 1024 * 1024) throw invalidArgument("The Dockerfile is too large");
        chunks.push(c);
      }
      this.#ignore = new PatternMatcher([]);
      this.#ctx = emptyContext(this.#contextDir, { host: this.#d.host, signal: this.#o.signal });
      return Buffer.concat(chunks).toString("utf8");
    }
    // The docker CLI's `-f -` rewrite of the context ends the tar right after the last file's
    // data (no padding, no end-of-archive blocks), which dockerd accepts: complete it here.
    const tar = comp === "gzip" || comp === "zstd" ? decompress(rest(), this.#o.signal ? { signal: this.#o.signal } : {}) : rest();
    async function* completed(): AsyncGenerator<Buffer> {
      let n = 0;
      for await (const c of tar) {
        n += c.length;
        yield c;
      }
      yield Buffer.alloc(((512 - (n % 512)) % 512) + 1024);
    }
    // Indexed in memory as it arrives (context.ts); written to disk only if a step needs files.
    this.#ctx = await receiveContext(completed(), this.#contextDir, { host: this.#d.host, signal: this.#o.signal });
    const index = this.#ctx.index;
    const read = (path: string, max: number) =>
      (index ? index.readFile(path, max) : readFileInRoot(this.#contextDir, path, max)).catch(() => undefined);
    const ignoreText = await read("/.dockerignore", 4 * 1024 * 1024);
    this.#ignore = new PatternMatcher(ignoreText ? parseDockerignore(ignoreText) : []);
    let text = await read(dfName, 16 * 1024 * 1024);
    if (text === undefined && dfName === "Dockerfile") text = await read("dockerfile", 16 * 1024 * 1024);
    if (text === undefined) throw invalidArgument(`Cannot locate specified Dockerfile: ${dfName}`);
    return text;
  }

  /** The context for COPY: its index in memory when there is one. */
  #contextTree(): SourceTree {
    return { root: this.#contextDir, ignore: this.#ignore, keepOwners: false, fs: this.#ctx.index };
  }

  /** The context's files on disk (unpacked on first use), for what needs real files. */
  async #contextDiskTree(): Promise<SourceTree> {
    await this.#ctx.materialize();
    return { root: this.#contextDir, ignore: this.#ignore, keepOwners: false };
  }

  // ------------------------------------------------------------------ stages

  #stage(i: number): Promise<State> {
    let p = this.#stages.get(i);
    if (!p) {
      p = this.#current.run(i, () => this.#runStage(i)).finally(() => this.#seq.finish(i));
      this.#stages.set(i, p);
    }
    return p;
  }

  async #runStage(i: number): Promise<State> {
    const s = this.#df.stages[i];
    if (!s) throw notFound(`No build stage ${i}`);
    const lex = new ShellLex(this.#df.escape);
    const globals = (k: string) => this.#globalArgs.get(k);
    const base = lex.processWord(s.base, globals);
    const platformText = s.platform ? lex.processWord(s.platform, globals) : this.#o.platform;
    const platform = platformText ? parsePlatform(platformText) : hostPlatform;
    const header = () => this.#out.stream(`Step ${this.#stepNo.get(`${i}:-1`)}/${this.#total} : ${s.original.trim()}\n`);
    let state: State;
    const dep = this.#stageIndex(base.toLowerCase(), i);
    if (base.toLowerCase() === "scratch") {
      header();
      state = this.#scratch(platform);
    } else if (dep !== undefined) {
      // A stage built on another one shows its FROM once that one is done.
      state = await this.#stage(dep);
      header();
    } else {
      header();
      if (base === "") throw new DockerfileError("base name (" + s.base + ") should not be blank", s.line, s.endLine);
      state = await this.#image(base, platformText, this.#o.pull === true);
    }
    this.#check();
    this.#out.stream(` ---> ${short(state.id)}\n`);
    const run: StageRun = { stage: s, state, args: new Map(), meta: { cmdSet: false }, platform };
    // ONBUILD triggers of the base run first.
    const triggers = state.config.config?.OnBuild ?? [];
    if (triggers.length) {
      this.#out.stream(`# Executing ${triggers.length} build trigger${triggers.length === 1 ? "" : "s"}\n`);
      const parsed = parseDockerfile(triggers.join("\n"));
      for (const node of parsed.nodes) {
        if (node.cmd === "from" || node.cmd === "onbuild" || node.cmd === "maintainer") {
          throw invalidArgument(`${node.cmd.toUpperCase()} isn't allowed as an ONBUILD trigger`);
        }
        run.state = await this.#dispatch(run, parseInstruction(node));
      }
      const cfg = JSON.parse(run.state.bytes) as ImageConfig;
      if (cfg.config) cfg.config.OnBuild = null;
      run.state = stateOf(JSON.stringify(cfg), run.state.layers, run.state.ready);
    }
    for (const [j, inst] of s.instructions.entries()) {
      this.#check();
      const no = this.#stepNo.get(`${i}:${j}`);
      this.#out.stream(`Step ${no}/${this.#total} : ${inst.original.trim()}\n`);
      try {
        run.state = await this.#dispatch(run, inst);
      } catch (e) {
        if (e instanceof DockerfileError || e instanceof BuildStepError) throw e;
        if (e instanceof BerthError && e.kind === "Canceled") throw e;
        // Errors get the instruction's line, as Docker reports them.
        if (inst.line > 0 && e instanceof BerthError) {
          throw new BerthError(e.kind, `${inst.kind.toUpperCase()} failed (line ${inst.line}): ${e.message}`, { cause: e });
        }
        throw e;
      }
      this.#out.stream(` ---> ${short(run.state.id)}\n`);
    }
    return run.state;
  }

  #scratch(p: Platform): State {
    const cfg: ImageConfig = {
      architecture: p.architecture,
      os: p.os,
      ...(p.variant ? { variant: p.variant } : {}),
      config: { Env: [`PATH=${DEFAULT_PATH_ENV}`] },
      rootfs: { type: "layers", diff_ids: [] },
      history: [],
    };
    return stateOf(JSON.stringify(cfg), []);
  }

  /** A base image as a state; pulled when missing (or always with `pull`). */
  #image(name: string, platform: string | undefined, pull: boolean): Promise<State> {
    const k = `${name}\0${platform ?? ""}\0${pull}`;
    let p = this.#images.get(k);
    if (!p) {
      p = this.#loadImage(name, platform, pull);
      this.#images.set(k, p);
    }
    return p;
  }

  async #loadImage(name: string, platform: string | undefined, pull: boolean): Promise<State> {
    const store = this.#d.images.store;
    let img = pull ? undefined : store.resolve(name);
    if (!img) {
      let ref: ReturnType<typeof parseReference>;
      try {
        ref = parseReference(name);
      } catch (e) {
        throw invalidArgument(`invalid reference format: ${messageOf(e)}`);
      }
      const auth = this.#o.auth?.(ref.domain);
      const stage = this.#current.getStore();
      const opts: Parameters<BuilderImages["pull"]>[1] = { platform, auth, progress: (m) => this.#seq.write(stage, m) };
      if (this.#o.signal) opts.signal = this.#o.signal;
      await this.#d.images.pull(referenceString(withDefaultTag(ref)), opts);
      img = store.resolve(name);
      if (!img) throw notFound(`No such image: ${name}`);
    }
    const bytes = (await this.#d.content.readBytes(img.id)).toString("utf8");
    const manifest = await store.manifest(img);
    // Keep the base's blobs and layers while the build uses them.
    for (const l of manifest.layers) this.#releases.push(this.#b.lease(l.digest));
    let s = stateOf(bytes, manifest.layers);
    if (s.top) this.#releases.push(this.#b.lease(s.top));
    // History must pair with layers for the entries this build appends.
    const nonEmpty = (s.config.history ?? []).filter((h) => !h.empty_layer).length;
    if (nonEmpty < s.config.rootfs.diff_ids.length) {
      const cfg = JSON.parse(bytes) as ImageConfig;
      const missing = cfg.rootfs.diff_ids.length - nonEmpty;
      cfg.history = [...Array.from({ length: missing }, () => ({ created: cfg.created ?? "", created_by: "" })), ...(cfg.history ?? [])];
      s = stateOf(JSON.stringify(cfg), manifest.layers);
    }
    return s;
  }

  // ------------------------------------------------------------------ instructions

  #env(run: StageRun): (k: string) => string | undefined {
    return (k) => {
      const e = getEnv(run.state.config.config?.Env, k);
      if (e !== undefined) return e;
      return run.args.get(k);
    };
  }

  /** Once per identical step in a build; the cache across builds. */
  async #step(key: string, fn: () => Promise<State>, description: string): Promise<State> {
    let p = this.#steps.get(key);
    if (p) return await p;
    p = (async () => {
      if (!this.#o.noCache) {
        const hit = await this.#b.cacheGet(key);
        if (hit) {
          this.#out.stream(" ---> Using cache\n");
          this.#hold(hit);
          return hit;
        }
      }
      const s = await fn();
      // Recorded once its layers are stored; the next steps need not wait for that.
      if (s.ready) this.#track(s.ready.then(() => this.#b.cachePut(key, s, description)));
      else this.#b.cachePut(key, s, description);
      return s;
    })();
    this.#steps.set(key, p);
    return await p;
  }

  #hold(s: State): void {
    for (const l of s.layers) this.#releases.push(this.#b.lease(l.digest));
    if (s.top) this.#releases.push(this.#b.lease(s.top));
  }

  #next(parent: State, change: (cfg: ImageConfig) => void, history: HistoryEntry, layer?: NewLayer): State {
    const cfg = JSON.parse(parent.bytes) as ImageConfig;
    change(cfg);
    const created = this.#now();
    cfg.created = created;
    cfg.history = [...(cfg.history ?? []), { created, ...history }];
    const layers = [...parent.layers];
    let ready = parent.ready;
    if (layer) {
      cfg.rootfs.diff_ids = [...cfg.rootfs.diff_ids, layer.diffId];
      layers.push(layer.desc);
      ready = ready ? Promise.all([ready, layer.ready]).then(() => {}) : layer.ready;
    }
    return stateOf(JSON.stringify(cfg), layers, ready);
  }

  async #dispatch(run: StageRun, raw: Instruction): Promise<State> {
    const parent = run.state;
    if (raw.kind === "arg") {
      for (const a of raw.args) {
        const given = this.#buildArgs[a.key];
        this.#usedArgs.add(a.key);
        const def = a.value === undefined ? undefined : new ShellLex(this.#df.escape).processWord(a.value, this.#env(run));
        let v: string | undefined;
        if (given !== undefined && given !== null) v = given;
        else if (def !== undefined) v = def;
        else v = this.#globalArgs.get(a.key);
        run.args.set(a.key, v);
      }
    }
    const inst = expandInstruction(raw, this.#env(run), this.#df.escape);
    switch (inst.kind) {
      case "run":
        return await this.#run(run, inst);
      case "copy":
      case "add":
        return await this.#copy(run, inst);
      case "workdir":
        return await this.#workdir(run, inst);
      default: {
        const probe = JSON.parse(parent.bytes) as ImageConfig;
        const meta = { ...run.meta };
        const text = applyMeta(probe, inst, meta);
        if (text === undefined) throw notImplemented(`${inst.kind.toUpperCase()} is not supported`);
        const createdBy = `/bin/sh -c #(nop)  ${text}`;
        const key = keyOf(parent.id, "meta", createdBy, inst.kind === "arg" ? [...run.args] : []);
        const s = await this.#step(
          key,
          async () =>
            this.#next(
              parent,
              (cfg) => {
                applyMeta(cfg, inst, { ...run.meta });
              },
              { created_by: createdBy, empty_layer: true },
            ),
          text,
        );
        run.meta = meta;
        return s;
      }
    }
  }

  /** Prepares an active snapshot over `parent`, lets `fn` change it, commits the layer. */
  async #layer(parent: State, fn: (key: string) => Promise<void>): Promise<NewLayer | undefined> {
    const key = `build-${randomBytes(8).toString("hex")}`;
    const release = this.#b.lease(key);
    try {
      await this.#d.snapshots.prepare(key, parent.top, { "berth.build": "1" });
      try {
        await fn(key);
        this.#check();
        return await this.#commit(key, parent.top);
      } catch (e) {
        await this.#d.snapshots.remove(key).catch(() => {});
        throw e;
      }
    } finally {
      release();
    }
  }

  /**
   * Turns the active snapshot `key` into a layer. The uncompressed tar is digested first (the
   * diff ID names the committed snapshot and goes into the config, which is all the next step
   * needs); compressing it into the content store happens in the background, and the layer's
   * descriptor is filled in when `ready` resolves. The tar is kept in memory for that when it is
   * small, else written again from the committed snapshot and checked against the diff ID.
   */
  async #commit(key: string, parentTop: Digest | undefined): Promise<NewLayer | undefined> {
    const snaps = this.#d.snapshots;
    const upper = snaps.dir(key);
    if ((await readdir(upper)).length === 0) {
      await snaps.remove(key);
      return undefined;
    }
    const tarOpts: Parameters<typeof diffDirectories>[1] = { host: this.#d.host };
    if (this.#epoch !== undefined) tarOpts.sourceDateEpoch = this.#epoch;
    if (this.#o.signal) tarOpts.signal = this.#o.signal;
    const h = createHash("sha256");
    let diffSize = 0;
    let kept: Buffer[] | undefined = [];
    for await (const chunk of diffDirectories(upper, tarOpts)) {
      const b = chunk as Buffer;
      h.update(b);
      diffSize += b.length;
      if (kept && diffSize <= KEEP_TAR) kept.push(b);
      else kept = undefined;
    }
    const diffId = `sha256:${h.digest("hex")}` as Digest;
    const chain = parentTop === undefined ? diffId : sha256(`${parentTop} ${diffId}`);
    this.#releases.push(this.#b.lease(chain));
    if (snaps.stat(chain)) await snaps.remove(key);
    else {
      try {
        await snaps.commit(chain, key, { [SIZE_LABEL]: String(diffSize), [DIFF_LABEL]: diffId });
      } catch (e) {
        if (!isAlreadyExists(e)) throw e;
        await snaps.remove(key);
      }
    }
    const desc: Descriptor = { mediaType: MediaType.DockerLayerGzip, digest: "" as Digest, size: 0 };
    const tar = kept ? Readable.from(kept) : diffDirectories(snaps.dir(chain), tarOpts);
    const ready = (async () => {
      const c = compressLayer(tar, { adaptive: true, ...(this.#o.signal ? { signal: this.#o.signal } : {}) });
      const blob = await this.#d.content.writeStream(c.stream);
      this.#releases.push(this.#b.lease(blob.digest));
      const info = await c.info;
      if (info.diffId !== diffId) throw internal(`The layer changed while it was compressed: diff ID ${info.diffId}, expected ${diffId}`);
      desc.digest = blob.digest;
      desc.size = blob.size;
    })();
    this.#track(ready);
    return { desc, diffId, ready };
  }

  /** Mounts snapshot `key` read-write at a fresh directory for `fn`. */
  async #withMounted<T>(key: string, fn: (root: string) => Promise<T>): Promise<T> {
    const dir = join(this.#work, `m-${randomBytes(4).toString("hex")}`);
    const mnt = join(dir, "mnt");
    await mkdir(mnt, { recursive: true, mode: 0o700 });
    await this.#d.snapshots.mount(key, mnt);
    try {
      return await fn(mnt);
    } finally {
      await this.#d.host.unmount(mnt).catch(() => this.#d.host.unmount(mnt, { lazy: true }));
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    }
  }

  /** A read-only view of a state's files (for COPY --from and bind mounts). */
  async #view(s: State): Promise<Mounted> {
    const dir = join(this.#work, `v-${randomBytes(4).toString("hex")}`);
    const mnt = join(dir, "mnt");
    await mkdir(mnt, { recursive: true, mode: 0o755 });
    if (!s.top) return { dir: mnt, release: async () => void (await rm(dir, { recursive: true, force: true })) };
    const key = `build-view-${randomBytes(8).toString("hex")}`;
    const release = this.#b.lease(key);
    await this.#d.snapshots.view(key, s.top);
    try {
      await this.#d.snapshots.mount(key, mnt);
    } catch (e) {
      await this.#d.snapshots.remove(key).catch(() => {});
      release();
      throw e;
    }
    return {
      dir: mnt,
      release: async () => {
        await this.#d.host.unmount(mnt).catch(() => this.#d.host.unmount(mnt, { lazy: true }));
        await this.#d.snapshots.remove(key).catch(() => {});
        release();
        await rm(dir, { recursive: true, force: true }).catch(() => {});
      },
    };
  }

  /** The state a `--from` names: a stage (by name or index) or an image. */
  async #fromState(run: StageRun, from: string): Promise<State> {
    const dep = this.#stageIndex(from.toLowerCase(), run.stage.index);
    if (dep !== undefined) return await this.#stage(dep);
    if (this.#df.stages.some((x) => x.name === from.toLowerCase())) {
      throw invalidArgument(`invalid from flag value ${from}: stage "${from}" is not defined before this stage`);
    }
    return await this.#image(from, this.#o.platform, false);
  }

  // ------------------------------------------------------------------ WORKDIR

  async #workdir(run: StageRun, inst: Extract<Instruction, { kind: "workdir" }>): Promise<State> {
    const parent = run.state;
    const probe = JSON.parse(parent.bytes) as ImageConfig;
    const text = applyMeta(probe, inst, run.meta) ?? "";
    const dir = probe.config?.WorkingDir ?? "/";
    const key = keyOf(parent.id, "workdir", dir);
    return await this.#step(
      key,
      async () => {
        const layer = await this.#layer(parent, (k) => this.#withMounted(k, async (root) => void (await mkdirAllInRoot(root, dir))));
        return this.#next(
          parent,
          (cfg) => {
            cfg.config = { ...(cfg.config ?? {}), WorkingDir: dir };
          },
          { created_by: `/bin/sh -c #(nop) ${text}`, ...(layer ? {} : { empty_layer: true }) },
          layer,
        );
      },
      text,
    );
  }

  // ------------------------------------------------------------------ COPY / ADD

  async #copy(run: StageRun, inst: Extract<Instruction, { kind: "copy" | "add" }>): Promise<State> {
    const parent = run.state;
    const cfg = parent.config.config ?? {};
    const workdir = cfg.WorkingDir || "/";
    const upper = inst.kind.toUpperCase();
    const rawDest = inst.dest;
    let dest = posix.isAbsolute(rawDest) ? posix.normalize(rawDest) : posix.join(workdir, rawDest);
    const destIsDirSyntax =
      rawDest.endsWith("/") || rawDest === "." || rawDest === ".." || rawDest.endsWith("/.") || rawDest.endsWith("/..");
    if (dest !== "/" && dest.endsWith("/")) dest = dest.slice(0, -1);
    const chmod = parseChmod(inst.chmod);
    const excludes = inst.excludes.length ? new PatternMatcher(inst.excludes) : undefined;
    if (inst.kind === "add" && inst.from) throw invalidArgument("ADD does not support --from; use COPY --from");
    const urls = inst.kind === "add" ? inst.sources.filter((s) => /^https?:\/\//i.test(s)) : [];
    if (inst.kind === "add" && inst.sources.some((s) => /^(git@|git:\/\/)|\.git(#.*)?$/.test(s)))
      throw notImplemented("ADD of a git repository is not supported");
    if (inst.checksum && (inst.sources.length !== 1 || urls.length !== 1))
      throw invalidArgument("checksum can't be specified for multiple sources or non-HTTP sources");
    // Sources: the context or another stage/image, mounted read-only while we work.
    let mounted: Mounted | undefined;
    let fromState: State | undefined;
    if (inst.from) {
      fromState = await this.#fromState(run, inst.from);
      mounted = await this.#view(fromState);
    }
    const downloads: { path: string; name: string; mtime: Date }[] = [];
    try {
      // ADD looks into local files (archives are unpacked): it reads them from disk.
      const local = inst.sources.filter((s) => !urls.includes(s));
      const tree: SourceTree = mounted
        ? { root: mounted.dir, keepOwners: true }
        : inst.kind === "add" && local.length
          ? await this.#contextDiskTree()
          : this.#contextTree();
      const h = createHash("sha256");
      const matches: SourceMatch[] = [];
      for (const src of local) {
        const ms = await resolveSources(tree, src);
        h.update(`src\0${src}\0`);
        for (const m of ms) await hashMatch(tree, m, h, excludes);
        matches.push(...ms);
      }
      for (const url of urls) {
        const d = await this.#download(url, inst.checksum);
        h.update(`url\0${url}\0${d.digest}\0${d.mtime.getTime()}\0`);
        downloads.push(d);
      }
      const inline = inst.inline.map((x) => {
        let data = x.chomp ? chompHeredoc(x.data) : x.data;
        if (x.expand) data = new ShellLex(this.#df.escape).processWord(data, this.#env(run));
        return { path: x.path, data };
      });
      for (const x of inline) h.update(`inline\0${x.path}\0${x.data}\0`);
      const contentHash = h.digest("hex");
      const multiple = matches.length + downloads.length + inline.length > 1 || inst.sources.some((s) => /[*?[]/.test(s));
      const destIsDir = destIsDirSyntax || multiple;
      const kindWord = matches.length + downloads.length + inline.length > 1 ? "multi" : matches[0]?.stat.isDirectory() ? "dir" : "file";
      const createdBy = `/bin/sh -c #(nop) ${upper} ${kindWord}:${contentHash} in ${rawDest.endsWith("/") && dest !== "/" ? `${dest}/` : dest} `;
      const key = keyOf(
        parent.id,
        inst.kind,
        contentHash,
        dest,
        destIsDir,
        inst.chown ?? "",
        chmod ?? -1,
        fromState?.id ?? "context",
        inst.parents,
        inst.excludes,
      );
      return await this.#step(
        key,
        async () => {
          const layer = await this.#layer(parent, (k) =>
            this.#withMounted(k, async (root) => {
              const chown = await this.#chown(root, inst.chown);
              const opts = { chown, chmod, excludes };
              const isDir = destIsDir || (await isDirInRoot(root, dest));
              if (inst.kind === "add") {
                // Local tar archives are unpacked into the destination.
                const plain: typeof matches = [];
                for (const m of matches) {
                  if (m.stat.isFile() && (await isArchive(m.host))) await this.#extract(root, m.host, dest, chown);
                  else plain.push(m);
                }
                if (plain.length) await copyInto(root, tree, plain, dest, { ...opts, destIsDir: isDir, parents: inst.parents });
              } else if (matches.length) await copyInto(root, tree, matches, dest, { ...opts, destIsDir: isDir, parents: inst.parents });
              for (const d of downloads) {
                const target = isDir ? posix.join(dest, d.name) : dest;
                await copyInto(
                  root,
                  { root: posix.dirname(d.path), keepOwners: false },
                  [{ rel: posix.basename(d.path), host: d.path, stat: await lstat(d.path) }],
                  target,
                  { chown, chmod: chmod ?? 0o600, destIsDir: false },
                );
                const final = await resolveInRoot(root, target);
                await utimes(final, d.mtime, d.mtime).catch(() => {});
              }
              for (const x of inline) {
                const target = isDir ? posix.join(dest, x.path) : dest;
                await writeInline(root, target, x.data, opts);
              }
            }),
          );
          return this.#next(parent, () => {}, { created_by: createdBy, ...(layer ? {} : { empty_layer: true }) }, layer);
        },
        `${upper} ${inst.sources.join(" ")} ${rawDest}`,
      );
    } finally {
      await mounted?.release();
      for (const d of downloads) await rm(d.path, { force: true }).catch(() => {});
    }
  }

  /** `--chown=user[:group]`, names looked up in the target root; group defaults to the uid. */
  async #chown(root: string, spec: string | undefined): Promise<{ uid: number; gid: number } | undefined> {
    if (!spec) return undefined;
    const [u = "", g] = spec.split(":", 2);
    const passwd = await readFileInRoot(root, "/etc/passwd").catch(() => undefined);
    const group = await readFileInRoot(root, "/etc/group").catch(() => undefined);
    const uid = /^\d+$/.test(u) ? Number(u) : resolveUserFrom(u, [], passwd, group).uid;
    let gid = uid;
    if (g !== undefined && g !== "") gid = /^\d+$/.test(g) ? Number(g) : resolveUserFrom(`${u}:${g}`, [], passwd, group).gid;
    return { uid, gid };
  }

  /**
   * Unpacks a local archive into `dest`. With `--chown`, it is unpacked aside first and copied
   * in with the new owner, so that what `dest` already held keeps its owners.
   */
  async #extract(root: string, file: string, dest: string, chown: { uid: number; gid: number } | undefined): Promise<void> {
    const opts: Parameters<typeof applyLayer>[2] = { host: this.#d.host, layerName: posix.basename(file) };
    if (this.#o.signal) opts.signal = this.#o.signal;
    if (!chown) {
      await applyLayer(createReadStream(file), await mkdirAllInRoot(root, dest), opts);
      return;
    }
    const aside = join(this.#work, `x-${randomBytes(6).toString("hex")}`);
    await mkdir(aside, { mode: 0o700 });
    try {
      await applyLayer(createReadStream(file), aside, opts);
      const tree: SourceTree = { root: aside, keepOwners: true };
      await copyInto(root, tree, [{ rel: "", host: aside, stat: await lstat(aside) }], dest, { chown, destIsDir: true });
    } finally {
      await rm(aside, { recursive: true, force: true }).catch(() => {});
    }
  }

  async #download(url: string, checksum: string | undefined): Promise<{ path: string; name: string; mtime: Date; digest: string }> {
    const path = join(this.#work, `dl-${randomBytes(6).toString("hex")}`);
    let res: Response;
    try {
      res = await fetch(url, this.#o.signal ? { signal: this.#o.signal, redirect: "follow" } : { redirect: "follow" });
    } catch (e) {
      throw failedPrecondition(`Cannot download "${url}": ${messageOf(e)}`);
    }
    if (!res.ok || !res.body) throw failedPrecondition(`Cannot download "${url}": HTTP ${res.status}`);
    const h = createHash("sha256");
    const tap = async function* (body: AsyncIterable<Uint8Array>) {
      for await (const c of body) {
        h.update(c);
        yield c;
      }
    };
    await pipeline(Readable.from(tap(res.body as unknown as AsyncIterable<Uint8Array>)), createWriteStream(path, { mode: 0o600 }));
    const digest = `sha256:${h.digest("hex")}`;
    if (checksum && checksum !== digest) {
      await rm(path, { force: true });
      throw invalidArgument(`digest mismatch for "${url}": ${digest}, expected ${checksum}`);
    }
    const lm = res.headers.get("last-modified");
    const mtime = lm && Number.isFinite(Date.parse(lm)) ? new Date(Date.parse(lm)) : new Date(0);
    let name = posix.basename(new URL(url).pathname);
    if (!name || name === "/") name = "__unnamed__";
    return { path, name, mtime, digest };
  }

  // ------------------------------------------------------------------ RUN

  async #run(run: StageRun, inst: Extract<Instruction, { kind: "run" }>): Promise<State> {
    const parent = run.state;
    const cfg = parent.config.config ?? {};
    const shell = cfg.Shell?.length ? cfg.Shell : DEFAULT_SHELL;
    if (inst.security && inst.security !== "sandbox") throw invalidArgument(`RUN --security=${inst.security} is not allowed`);
    if (inst.network !== undefined && !["default", "none", "host"].includes(inst.network)) {
      throw invalidArgument(`unsupported network mode "${inst.network}" for RUN --network (default, none or host)`);
    }
    const network = inst.network ?? this.#o.networkMode ?? "default";
    // Build arguments RUN sees (declared with ARG, or the predefined proxies), not overriding ENV.
    const env = [...(cfg.Env ?? [])];
    if (getEnv(env, "PATH") === undefined) env.unshift(`PATH=${DEFAULT_PATH_ENV}`);
    const argEnv: string[] = [];
    for (const [k, v] of [...run.args].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (v === undefined || getEnv(cfg.Env, k) !== undefined) continue;
      argEnv.push(`${k}=${v}`);
    }
    const proxyEnv: string[] = [];
    for (const k of PROXY_ARGS) {
      const v = this.#buildArgs[k];
      if (typeof v === "string" && !run.args.has(k) && getEnv(cfg.Env, k) === undefined) proxyEnv.push(`${k}=${v}`);
    }
    // The command, with heredocs as Docker runs them.
    const extraMounts: RunMountSpec[] = [];
    let args: string[];
    const heredocFiles: { name: string; data: string }[] = [];
    if (!inst.prependShell) args = [...inst.cmd];
    else {
      const cmd = inst.cmd[0] ?? "";
      const docs = inst.heredocs;
      if (docs.length && parseHeredoc(cmd.trim()) && docs.length === 1) {
        const d = docs[0]!;
        const data = d.chomp ? chompHeredoc(d.content) : d.content;
        if (data.startsWith("#!")) {
          heredocFiles.push({ name: d.name, data });
          args = [`/dev/pipes/${d.name}`];
        } else args = [...shell, data];
      } else if (docs.length) {
        args = [...shell, cmd + docs.map((d) => `\n${d.content}${d.name}`).join("")];
      } else args = [...shell, cmd];
    }
    const argsPrefix = argEnv.length ? [`|${argEnv.length}`, ...argEnv] : [];
    const createdBy = [...argsPrefix, ...args].join(" ");
    // Mounts.
    const mounts = inst.mounts.map((m) => {
      try {
        return parseRunMount(m);
      } catch (e) {
        throw new DockerfileError(`invalid mount "${m}": ${messageOf(e)}`, inst.line, inst.endLine);
      }
    });
    const h = createHash("sha256");
    const cleanups: (() => Promise<void>)[] = [];
    try {
      for (const m of mounts) {
        if (m.type === "ssh") throw notImplemented("RUN --mount=type=ssh is not supported");
        const target = posix.isAbsolute(m.target) || m.type === "secret" ? m.target : posix.join(cfg.WorkingDir || "/", m.target);
        if (m.type === "tmpfs") {
          extraMounts.push({ input: { type: "tmpfs", destination: target, ...(m.size ? { size: m.size } : {}) }, kind: "dir" });
          h.update(`tmpfs\0${target}\0`);
        } else if (m.type === "cache") {
          const id = m.id || target;
          const dir = join(this.#d.cacheMountRoot, sha256(id).slice(7, 39));
          if (!(await lstat(dir).catch(() => undefined))) {
            await mkdir(dir, { recursive: true, mode: m.mode ?? 0o755 });
            await this.#d.host.run("chown", [`${m.uid ?? 0}:${m.gid ?? 0}`, dir]).catch(() => {});
          }
          extraMounts.push({ input: { type: "bind", source: dir, destination: target, readonly: m.readonly }, kind: "dir" });
          h.update(`cache\0${target}\0${id}\0`);
        } else if (m.type === "secret") {
          const data = this.#o.secrets?.[m.id ?? ""];
          if (!data) {
            if (m.required) throw invalidArgument(`secret ${m.id} not found`);
            continue;
          }
          if (m.env) argEnv.push(`${m.env}=${data.toString("utf8")}`);
          if (m.target) {
            await mkdir(this.#secretsDir, { recursive: true, mode: 0o700 });
            const file = join(this.#secretsDir, randomBytes(8).toString("hex"));
            await writeFile(file, data, { mode: 0o400 });
            await chmodFile(file, m.mode ?? 0o400);
            await chownFile(file, m.uid ?? 0, m.gid ?? 0);
            cleanups.push(async () => void (await rm(file, { force: true })));
            extraMounts.push({ input: { type: "bind", source: file, destination: target, readonly: true }, kind: "file" });
          }
          h.update(`secret\0${target}\0${m.id}\0`);
        } else {
          // bind: from the context (default) or a stage/image; read-write changes are discarded.
          let root: string;
          let tree: SourceTree;
          if (m.from) {
            const st = await this.#fromState(run, m.from);
            const v = await this.#view(st);
            cleanups.push(() => v.release());
            root = v.dir;
            tree = { root, keepOwners: true };
            h.update(`from\0${st.id}\0`);
          } else {
            tree = await this.#contextDiskTree();
            root = tree.root;
          }
          const src = m.source ?? "/";
          const [match] = await resolveSources(tree, src);
          if (!match) throw notFound(`RUN --mount source "${src}" not found`);
          if (!m.from) await hashMatch(tree, match, h);
          let source = match.host;
          if (!m.readonly) {
            const copy = join(this.#work, `rw-${randomBytes(4).toString("hex")}`);
            await this.#d.host.run("cp", ["-a", "--", match.host, copy]);
            cleanups.push(async () => void (await rm(copy, { recursive: true, force: true })));
            source = copy;
          }
          extraMounts.push({
            input: { type: "bind", source, destination: target, readonly: m.readonly },
            kind: match.stat.isDirectory() ? "dir" : "file",
          });
          h.update(`bind\0${target}\0${src}\0${m.readonly}\0`);
        }
      }
      for (const f of heredocFiles) {
        await mkdir(this.#secretsDir, { recursive: true, mode: 0o700 });
        const file = join(this.#secretsDir, `h-${randomBytes(6).toString("hex")}`);
        await writeFile(file, f.data, { mode: 0o755 });
        extraMounts.push({ input: { type: "bind", source: file, destination: `/dev/pipes/${f.name}`, readonly: true }, kind: "file" });
      }
      const key = keyOf(parent.id, "run", args, argEnv, network, h.digest("hex"));
      return await this.#step(
        key,
        async () => {
          let containerId = "";
          // Output arrives on native socket callbacks that carry no async context: bind the stage.
          const stage = this.#current.getStore();
          const say = (text: string) => this.#seq.write(stage, { stream: text });
          const layer = await this.#layer(parent, async (snapKey) => {
            const code = await this.#b.runner.run({
              snapshotKey: snapKey,
              args,
              env: [...env, ...argEnv, ...proxyEnv],
              cwd: cfg.WorkingDir || "/",
              user: cfg.User ?? "",
              mounts: extraMounts,
              network,
              extraHosts: (this.#o.extraHosts ?? []).map((x) => {
                const i = x.lastIndexOf(":");
                return i < 0 ? x : `${x.slice(i + 1)}\t${x.slice(0, i)}`;
              }),
              onStart: (id) => {
                containerId = id;
                say(` ---> Running in ${short(id)}\n`);
              },
              onOutput: say,
              signal: this.#o.signal,
              resources: this.#o.resources,
              shmSize: this.#o.shmSize,
              ulimits: this.#o.ulimits,
            });
            if (code !== 0) {
              throw new BuildStepError(`The command '${args.join(" ")}' returned a non-zero code: ${code}`, code);
            }
          });
          if (containerId) say(`Removing intermediate container ${short(containerId)}\n`);
          return this.#next(parent, () => {}, { created_by: createdBy, ...(layer ? {} : { empty_layer: true }) }, layer);
        },
        `RUN ${createdBy}`.slice(0, 200),
      );
    } finally {
      for (const c of cleanups) await c().catch(() => {});
    }
  }
}

/** A tar header: the checksum field matches the header's bytes. */
function looksLikeTar(b: Buffer): boolean {
  if (b.length < 512) return false;
  if (b.subarray(0, 512).every((x) => x === 0)) return true;
  if (b.toString("latin1", 257, 262) === "ustar") return true;
  const field = b.toString("latin1", 148, 156).replace(/\0.*$/, "").trim();
  if (!/^[0-7]+$/.test(field)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : (b[i] ?? 0);
  return sum === Number.parseInt(field, 8);
}

/** Whether a file is a tar archive (plain, gzip or zstd) ADD should unpack. */
async function isArchive(path: string): Promise<boolean> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(1024);
    const { bytesRead } = await fh.read(buf, 0, 1024, 0);
    const head = buf.subarray(0, bytesRead);
    const c = detectCompression(head);
    if (c === "gzip" || c === "zstd") {
      // Peek into the decompressed stream for a tar header.
      const it = decompress(createReadStream(path, { end: 64 * 1024 }))[Symbol.asyncIterator]();
      let got = Buffer.alloc(0);
      try {
        while (got.length < 512) {
          const r = await it.next();
          if (r.done) break;
          got = Buffer.concat([got, r.value]);
        }
      } catch {
        // truncated read of the first 64 KiB is expected
      } finally {
        await it.return?.(undefined).catch(() => {});
      }
      return looksLikeTar(got);
    }
    return looksLikeTar(head);
  } finally {
    await fh.close();
  }
}
