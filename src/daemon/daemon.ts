import { mkdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { Db, type Host, invalidArgument, type Logger } from "../base/mod.ts";
import { ContentStore } from "../content/mod.ts";
import { ImageStore } from "../image/mod.ts";
import { OverlaySnapshotter, Unpacker } from "../snapshot/mod.ts";
import type { DaemonConfig } from "./config.ts";
import { EventBus } from "./events.ts";
import { RemoteImages } from "./image_remote.ts";
import { ImageService } from "./images.ts";
import { RegistryClient } from "../registry/mod.ts";
import { ContainerService, ContainerStore } from "../container/mod.ts";
import { VolumeService } from "../volume/mod.ts";
import { NetworkService } from "../network/mod.ts";
import { ContainerRuntime, defaultOciRuntime } from "../runtime/mod.ts";
import { chainIds } from "../snapshot/mod.ts";
import type { Digest } from "../base/mod.ts";
import { Builder, serviceNetwork } from "../build/mod.ts";

/**
 * The composition root: opens the data root, wires the stores and services, restores state
 * after a restart and runs garbage collection. The API layer serves what this exposes.
 */
export class Daemon {
  readonly config: DaemonConfig;
  readonly log: Logger;
  readonly host: Host;
  readonly events = new EventBus();
  readonly db: Db;
  readonly content: ContentStore;
  readonly snapshots: OverlaySnapshotter;
  readonly images: ImageService;
  readonly registry: RegistryClient;
  readonly containers: ContainerService;
  readonly builder: Builder;
  readonly volumes: VolumeService;
  readonly networks: NetworkService;
  readonly startedAt = Date.now();

  private constructor(config: DaemonConfig, log: Logger, host: Host, db: Db) {
    this.config = config;
    this.log = log;
    this.host = host;
    this.db = db;
    const root = config.dataRoot;
    this.content = new ContentStore(join(root, "content"));
    this.snapshots = new OverlaySnapshotter(join(root, "snapshots"), db, host);
    const store = new ImageStore(db, this.content);
    // berth's own daemon.json key: cap on a layer's uncompressed size (bytes), against gzip bombs.
    const maxLayerSize = config.raw["max-layer-size"];
    const unpacker = new Unpacker(this.snapshots, this.content, host, typeof maxLayerSize === "number" ? { maxLayerSize } : {});
    this.images = new ImageService({ store, content: this.content, snapshots: this.snapshots, unpacker, events: this.events, log, host });
    this.registry = new RegistryClient({
      store: this.content,
      mirrors: config.registryMirrors,
      insecureRegistries: config.insecureRegistries,
      maxConcurrentDownloads: config.maxConcurrentDownloads,
      maxConcurrentUploads: config.maxConcurrentUploads,
      logger: log,
    });
    const remote = new RemoteImages(this.images, this.registry, log);
    this.images.remote = remote;
    this.loginHook = (auth) => remote.login(auth);
    const configured = Object.entries(config.runtimes).map(([name, r]) => ({ name, path: r.path }));
    const runtime = new ContainerRuntime(host, {
      stateRoot: join(config.execRoot, "runtime"),
      runtime: defaultOciRuntime(),
      runtimes: configured,
      logger: log,
    });
    const rtName = config.defaultRuntime || "runc";
    if (!runtime.runtimes().some((r) => r.name === rtName)) throw invalidArgument(`default-runtime "${rtName}" is not a known runtime`);
    runtime.setDefault(rtName);
    const cstore = new ContainerStore(db);
    this.volumes = new VolumeService(join(root, "volumes"), db, host, log);
    this.volumes.publish = (action, name, attributes) => this.events.publish("volume", action, name, attributes);
    this.networks = new NetworkService({
      host,
      db,
      dataRoot: root,
      execRoot: config.execRoot,
      log,
      publish: (action, id, attributes) => this.events.publish("network", action, id, attributes),
      config: {
        ...(config.bip ? { bip: config.bip } : {}),
        ...(config.defaultAddressPools.length ? { defaultAddressPools: config.defaultAddressPools } : {}),
        ...(config.dns.length ? { dns: config.dns } : {}),
        ...(typeof config.raw.bridge === "string" && config.raw.bridge !== "none" ? { bridge: config.raw.bridge } : {}),
        ...(typeof config.raw.mtu === "number" ? { mtu: config.raw.mtu } : {}),
      },
      // IPv6 published ports through berthd's proxy; dockerd's "userland-proxy": false turns it off too.
      ipv6Proxy: config.raw["ipv6-proxy"] !== false && config.raw["userland-proxy"] !== false,
    });
    this.containers = new ContainerService({
      store: cstore,
      runtime,
      snapshots: this.snapshots,
      host,
      log,
      root: join(root, "containers"),
      volumes: this.volumes,
      network: this.networks,
      publish: (action, c, extra) => {
        const labels = c.Config.Labels ?? {};
        this.events.publish("container", action, c.Id, { ...labels, image: c.ImageName, name: c.Name.slice(1), ...(extra ?? {}) });
      },
      images: {
        resolve: async (name: string) => {
          const img = this.images.store.mustResolve(name);
          const cfg = await this.images.store.config(img.id);
          const top: Digest | undefined = chainIds(cfg.rootfs.diff_ids).at(-1);
          const platform = {
            os: cfg.os || "linux",
            architecture: cfg.architecture || "amd64",
            ...(cfg.variant ? { variant: cfg.variant } : {}),
          };
          return { id: img.id, config: cfg.config ?? {}, topChainId: top, name, platform };
        },
      },
    });
    this.images.users = (id) => this.containers.imageUsers(id);
    const buildRoot = { root: join(root, "build"), cacheMountRoot: join(root, "build-cache"), runRoot: join(config.execRoot, "build") };
    this.builder = new Builder({
      db,
      host,
      log,
      content: this.content,
      snapshots: this.snapshots,
      images: this.images,
      runtime,
      ...buildRoot,
    });
    this.builder.network = serviceNetwork(this.networks);
    this.startHooks.push(() => this.builder.init());
    this.containerSnapshots = () =>
      new Set(cstore.list().flatMap((c) => [c.berth.snapshotKey, ...(c.berth.topChainId ? [c.berth.topChainId] : [])]));
    this.containerCounts = () => {
      const all = cstore.list();
      return {
        running: all.filter((c) => c.State.Running && !c.State.Paused).length,
        paused: all.filter((c) => c.State.Paused).length,
        stopped: all.filter((c) => !c.State.Running).length,
      };
    };
    this.startHooks.push(async () => {
      await this.networks.init();
      await this.containers.restore();
      await this.networks.reconcile((id) => cstore.get(id)?.State.Running === true);
    });
    this.stopHooks.push(() => this.networks.shutdown());
  }

  /**
   * Opens the data root (creating it) and returns a ready daemon. `recover: false` skips the
   * crash recovery and GC at open, so that `berthd --check` sees the store as it was left.
   */
  static async open(config: DaemonConfig, log: Logger, host: Host, options: { recover?: boolean } = {}): Promise<Daemon> {
    await mkdir(config.dataRoot, { recursive: true, mode: 0o711 });
    await mkdir(config.execRoot, { recursive: true, mode: 0o711 });
    const db = new Db(join(config.dataRoot, "berth.db"));
    const d = new Daemon(config, log, host, db);
    await d.content.init();
    await d.volumes.init();
    await d.snapshots.init();
    await mkdir(join(config.dataRoot, "containers"), { recursive: true, mode: 0o711 });
    if (options.recover !== false) await d.recover();
    return d;
  }

  /** Repairs what a crash can leave: half-unpacked snapshots, stale temp files, unreferenced data. */
  async recover(): Promise<void> {
    for (const s of this.snapshots.list()) {
      if (s.key.startsWith("extract-")) await this.snapshots.remove(s.key).catch(() => {});
    }
    for (const i of await this.content.ingests()) {
      // Partial downloads are kept a day for resuming; temp spools of unknown digests are not.
      if (i.ref.startsWith("tmp-") || i.ref.startsWith("put-") || i.ageMs > 24 * 3600 * 1000) await this.content.abortIngest(i.ref);
    }
    // A pull killed after verifying layers but before recording its image leaves blobs and layer
    // snapshots no image references (its leases died with the process). Like partial downloads,
    // those less than a day old survive this GC so that the retried pull reuses them instead of
    // downloading and unpacking again; the next GC (rmi, prune) collects what is still unused.
    const keep = new Set(this.images.leases);
    const since = Date.now() - 24 * 3600 * 1000;
    for await (const b of this.content.list()) {
      const st = await stat(this.content.blobPath(b.digest)).catch(() => undefined);
      if (st && st.mtimeMs > since) keep.add(b.digest);
    }
    for (const s of this.snapshots.list()) if (s.kind === "committed" && s.createdAt > since) keep.add(s.key);
    await this.images.gc(this.containerSnapshots(), keep);
  }

  /** Container counts for /info (filled in by the container service). */
  containerCounts: () => { running: number; paused: number; stopped: number } = () => ({ running: 0, paused: 0, stopped: 0 });

  /** Snapshot keys containers hold (filled in by the container service). */
  containerSnapshots: () => Set<string> = () => new Set();

  async gc(): Promise<{ blobs: number; snapshots: number; bytes: number }> {
    return await this.images.gc(this.containerSnapshots(), this.images.leases);
  }

  /** Starts background work (restores containers, networks; schedules GC). */
  async start(): Promise<void> {
    for (const f of this.startHooks) await f();
  }

  /** Stops background work; containers keep running (live restore). */
  async shutdown(): Promise<void> {
    for (const f of this.stopHooks) await f().catch(() => {});
  }

  readonly startHooks: (() => Promise<void>)[] = [];
  readonly stopHooks: (() => Promise<void>)[] = [];

  /** POST /auth: checks credentials against a registry. */
  async registryLogin(auth: {
    username?: string;
    password?: string;
    serveraddress?: string;
    identitytoken?: string;
  }): Promise<{ identityToken?: string }> {
    return await this.loginHook(auth);
  }

  loginHook: (auth: {
    username?: string;
    password?: string;
    serveraddress?: string;
    identitytoken?: string;
  }) => Promise<{ identityToken?: string }> = async () => ({});

  close(): void {
    this.db.close();
  }
}
