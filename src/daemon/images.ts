import { dirname } from "node:path";
import type { Readable } from "node:stream";
import tarStream from "tar-stream";
import { conflict, type Digest, type Host, invalidArgument, type Logger, notFound, shortHex } from "../base/mod.ts";
import type { ContentStore } from "../content/mod.ts";
import type { ImageName, ImageRecord, ImageStore } from "../image/mod.ts";
import {
  type ContainerConfig,
  type Descriptor,
  familiarName,
  type HistoryEntry,
  familiarString,
  type ImageConfig,
  MediaType,
  parseReference,
  type Reference,
  referenceString,
  repoName,
  withDefaultTag,
} from "../oci/mod.ts";
import { chainIds, type OverlaySnapshotter, type Unpacker } from "../snapshot/mod.ts";
import type { EventBus } from "./events.ts";
import { importImage, loadImages, type Progress } from "./image_io.ts";

/** Credentials a client sent for one registry operation (decoded X-Registry-Auth). */
export interface RegistryAuth {
  username?: string;
  password?: string;
  identityToken?: string;
  registryToken?: string;
  serverAddress?: string;
}

/** Who uses an image: containers, told by the container service. */
export type ImageUsers = (imageId: Digest) => { id: string; running: boolean }[];

/** Docker's `ImageSummary` (GET /images/json). */
export interface ImageSummary {
  Id: string;
  ParentId: string;
  RepoTags: string[];
  RepoDigests: string[];
  Created: number;
  Size: number;
  SharedSize: number;
  VirtualSize?: number;
  Labels: Record<string, string> | null;
  Containers: number;
}

/** A record of `DELETE /images/{name}`. */
export type DeleteRecord = { Untagged: string } | { Deleted: string };

function createdSeconds(cfg: ImageConfig): number {
  if (!cfg.created) return 0;
  const t = Date.parse(cfg.created);
  return Number.isFinite(t) ? Math.floor(t / 1000) : 0;
}

/** Parses Docker's time filter values: unix seconds (with fraction), RFC 3339, or durations like "10m". */
export function parseTimeFilter(v: string, now = Date.now()): number {
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const dur = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)$/.exec(v);
  if (dur) {
    const n = Number(dur[1]);
    const unit = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 }[dur[2] as "s"];
    return now - n * unit;
  }
  const t = Date.parse(v);
  if (Number.isFinite(t)) return t;
  throw invalidArgument(`invalid time value "${v}"`);
}

function matchLabels(labels: Record<string, string> | null | undefined, wanted: string[]): boolean {
  return wanted.every((w) => {
    const i = w.indexOf("=");
    if (i < 0) return labels?.[w] !== undefined;
    return labels?.[w.slice(0, i)] === w.slice(i + 1);
  });
}

/** Glob of the `reference` filter (path.Match semantics: `*` within a segment). */
function globMatch(pattern: string, s: string): boolean {
  const re = new RegExp(
    `^${pattern
      .split("")
      .map((c) => (c === "*" ? "[^/]*" : c === "?" ? "[^/]" : c.replace(/[.+^${}()|[\]\\]/g, "\\$&")))
      .join("")}$`,
  );
  return re.test(s);
}

/**
 * The image service: everything `/images/*` does, composed from the image store, the content
 * store, the snapshotter and (for pull/push) the registry client.
 */
export class ImageService {
  readonly store: ImageStore;
  readonly content: ContentStore;
  readonly snapshots: OverlaySnapshotter;
  readonly unpacker: Unpacker;
  #events: EventBus;
  #log: Logger;
  users: ImageUsers = () => [];
  /** Blob digests and snapshot keys that GC must keep (operations in flight). */
  readonly leases = new Set<string>();

  constructor(deps: {
    store: ImageStore;
    content: ContentStore;
    snapshots: OverlaySnapshotter;
    unpacker: Unpacker;
    events: EventBus;
    log: Logger;
    host: Host;
  }) {
    this.store = deps.store;
    this.content = deps.content;
    this.snapshots = deps.snapshots;
    this.unpacker = deps.unpacker;
    this.#events = deps.events;
    this.#log = deps.log;
  }

  /**
   * An image event as dockerd sends it: pull and push name the reference (`busybox:latest`,
   * name `busybox`), tag the image and its new name, the others the image ID twice.
   */
  event(action: string, id: string, name?: string): void {
    this.#events.publish("image", action, id, { name: name ?? id });
  }

  /** Top chain ID of an image (the parent snapshot of its containers). */
  async topChainId(img: ImageRecord): Promise<Digest | undefined> {
    const cfg = await this.store.config(img.id);
    return chainIds(cfg.rootfs.diff_ids).at(-1);
  }

  async summary(img: ImageRecord, withVirtualSize: boolean): Promise<ImageSummary> {
    const cfg = await this.store.config(img.id);
    const s: ImageSummary = {
      Id: img.id,
      ParentId: "",
      RepoTags: this.store.repoTags(img.id),
      RepoDigests: this.store.repoDigests(img.id),
      Created: createdSeconds(cfg),
      Size: img.size,
      SharedSize: -1,
      Labels: cfg.config?.Labels ?? null,
      Containers: -1,
    };
    if (withVirtualSize) s.VirtualSize = img.size;
    return s;
  }

  /** GET /images/json */
  async list(
    options: { all?: boolean; filters?: Map<string, string[]>; digests?: boolean; withVirtualSize?: boolean } = {},
  ): Promise<ImageSummary[]> {
    const f = options.filters ?? new Map<string, string[]>();
    for (const k of f.keys()) {
      if (!["reference", "dangling", "label", "before", "since", "until"].includes(k)) throw invalidArgument(`invalid filter '${k}'`);
    }
    const resolveBound = (key: string): ImageRecord | undefined => {
      const v = f.get(key)?.[0];
      return v === undefined ? undefined : this.store.mustResolve(v);
    };
    const before = resolveBound("before");
    const since = resolveBound("since");
    const until = f.get("until")?.[0];
    const untilMs = until ? parseTimeFilter(until) : undefined;
    const dangling = f.get("dangling")?.[0];
    if (dangling !== undefined && !["true", "false", "1", "0"].includes(dangling)) {
      throw invalidArgument(`Invalid filter 'dangling=${dangling}'`);
    }
    const out: ImageSummary[] = [];
    for (const img of this.store.list()) {
      const s = await this.summary(img, options.withVirtualSize ?? false);
      const isDangling = s.RepoTags.length === 0;
      if (dangling !== undefined && (dangling === "true" || dangling === "1") !== isDangling) continue;
      if (before && img.createdAt >= before.createdAt) continue;
      if (since && img.createdAt <= since.createdAt) continue;
      if (untilMs !== undefined && s.Created * 1000 > untilMs) continue;
      const labels = f.get("label");
      if (labels && !matchLabels(s.Labels, labels)) continue;
      const refs = f.get("reference");
      if (refs) {
        const names = this.store.names(img.id).map((n) => parseReference(n.name));
        const tagged = names.filter((r) => refs.some((p) => refMatches(p, r)));
        if (tagged.length === 0) continue;
        // As dockerd: only the names that match are listed (the CLI shows a `<none>` row for a
        // digest of a repository without a listed tag).
        s.RepoTags = s.RepoTags.filter((t) => refs.some((p) => refMatches(p, parseReference(t))));
        s.RepoDigests = s.RepoDigests.filter((d) => refs.some((p) => refMatches(p, parseReference(d))));
      }
      out.push(s);
    }
    return out;
  }

  /** GET /images/{name}/json */
  async inspect(name: string, version: string): Promise<Record<string, unknown>> {
    const img = this.store.mustResolve(name);
    const cfg = await this.store.config(img.id);
    const chains = chainIds(cfg.rootfs.diff_ids);
    const dirs = chains.length ? this.snapshots.chainDirs(chains.at(-1)) : [];
    const names = this.store.names(img.id).filter((n) => n.kind === "tag");
    const lastTag = names.reduce((m, n) => Math.max(m, n.createdAt), 0);
    const out: Record<string, unknown> = {
      Id: img.id,
      RepoTags: this.store.repoTags(img.id),
      RepoDigests: this.store.repoDigests(img.id),
      Parent: "",
      Comment: cfg.comment ?? "",
      Created: cfg.created ?? "0001-01-01T00:00:00Z",
      DockerVersion: cfg.docker_version ?? "",
      Author: cfg.author ?? "",
      Config: imageConfigOut(cfg.config),
      Architecture: cfg.architecture,
      Os: cfg.os,
      Size: img.size,
      GraphDriver: {
        Name: "overlay2",
        Data: dirs.length
          ? // As overlay2 shows an image's top layer: its directory, work directory and (unused) merged path.
            {
              LowerDir: dirs.slice(1).join(":") || undefined,
              MergedDir: `${dirname(dirs[0] ?? "")}/merged`,
              UpperDir: dirs[0],
              WorkDir: `${dirname(dirs[0] ?? "")}/work`,
            }
          : {},
      },
      RootFS: { Type: "layers", Layers: cfg.rootfs.diff_ids },
      Metadata: { LastTagTime: lastTag ? new Date(lastTag).toISOString() : "0001-01-01T00:00:00Z" },
    };
    if (cfg.variant) out.Variant = cfg.variant;
    if (cfg["os.version"]) out.OsVersion = cfg["os.version"];
    if (versionLessThan(version, "1.44")) {
      out.VirtualSize = img.size;
      out.Container = cfg.container ?? "";
      out.ContainerConfig = imageConfigOut(cfg.container_config ?? {});
    }
    return out;
  }

  /** GET /images/{name}/history */
  async history(name: string): Promise<Record<string, unknown>[]> {
    const img = this.store.mustResolve(name);
    const cfg = await this.store.config(img.id);
    const chains = chainIds(cfg.rootfs.diff_ids);
    const hist: HistoryEntry[] = cfg.history?.length
      ? cfg.history
      : cfg.rootfs.diff_ids.map(() => ({ created: cfg.created, created_by: "", empty_layer: false }));
    let layer = 0;
    const rows: Record<string, unknown>[] = [];
    for (const h of hist) {
      let size = 0;
      if (!h.empty_layer) {
        const c = chains[layer++];
        if (c) size = this.unpacker.layerSize(c);
      }
      rows.push({
        Id: "<missing>",
        Created: h.created ? Math.floor(Date.parse(h.created) / 1000) : 0,
        CreatedBy: h.created_by ?? "",
        Tags: null,
        Size: size,
        Comment: h.comment ?? "",
      });
    }
    rows.reverse();
    if (rows[0]) {
      rows[0].Id = img.id;
      rows[0].Tags = this.store.repoTags(img.id);
    }
    return rows;
  }

  /** POST /images/{name}/tag */
  tag(source: string, repo: string, tag: string | undefined): void {
    const img = this.store.mustResolve(source);
    let ref: Reference;
    try {
      ref = parseReference(repo);
    } catch (e) {
      throw invalidArgument((e as Error).message);
    }
    if (ref.digest !== undefined) throw invalidArgument("refusing to create a tag with a digest reference");
    if (tag !== undefined && tag !== "") {
      if (ref.tag !== undefined) throw invalidArgument(`invalid reference format`);
      ref = parseReference(`${repo}:${tag}`);
    }
    ref = withDefaultTag(ref);
    this.store.tag(img.id, ref);
    this.event("tag", img.id, familiarString(ref));
  }

  /** DELETE /images/{name}, with dockerd's rules for tags, digests, IDs and containers. */
  async remove(name: string, options: { force?: boolean; noprune?: boolean } = {}): Promise<DeleteRecord[]> {
    const img = this.store.mustResolve(name);
    const records: DeleteRecord[] = [];
    const names = this.store.names(img.id);
    const byId = isIdReference(name, img.id);
    const users = this.users(img.id);
    if (!byId) {
      const ref = withDefaultTag(parseReference(name));
      const full = referenceString(ref);
      const own =
        names.find((n) => n.name === full) ?? names.find((n) => n.kind === "digest" && ref.digest && n.targetDigest === ref.digest);
      if (own && !options.force && users.length > 0 && isSingleReference(names)) {
        // Removing it would leave the image dangling under a container: dockerd wants -f.
        throw conflict(
          `conflict: unable to remove repository reference "${name}" (must force) - container ${shortHex(users[0]?.id ?? "")} is using its referenced image ${shortHex(img.id)}`,
        );
      }
      if (own) {
        this.store.untag(own.name);
        records.push({ Untagged: familiarString(parseReference(own.name)) });
        this.event("untag", img.id);
        let remaining = this.store.names(img.id);
        if (own.kind === "tag") {
          const repo = repoName(parseReference(own.name));
          const sameRepoTag = remaining.some((n) => n.kind === "tag" && repoName(parseReference(n.name)) === repo);
          if (!sameRepoTag) {
            for (const n of remaining.filter((x) => x.kind === "digest" && repoName(parseReference(x.name)) === repo)) {
              this.store.untag(n.name);
              records.push({ Untagged: familiarString(parseReference(n.name)) });
            }
            remaining = this.store.names(img.id);
          }
        }
        if (remaining.length > 0) return records;
        // Last name gone: the image itself goes, unless a container uses it (then, forced, it
        // stays dangling, as with dockerd).
        if (users.length > 0) return records;
        await this.#deleteImage(img, records);
        return records;
      }
    }
    // By ID (or a name that resolved by ID prefix).
    const running = users.find((u) => u.running);
    if (running) {
      throw conflict(
        `unable to delete ${shortHex(img.id)} (cannot be forced) - image is being used by running container ${shortHex(running.id)}`,
      );
    }
    if (users.length > 0 && !options.force) {
      throw conflict(
        `unable to delete ${shortHex(img.id)} (must be forced) - image is being used by stopped container ${shortHex(users[0]?.id ?? "")}`,
      );
    }
    const repos = new Set(names.map((n) => repoName(parseReference(n.name))));
    if (repos.size > 1 && !options.force) {
      throw conflict(`unable to delete ${shortHex(img.id)} (must be forced) - image is referenced in multiple repositories`);
    }
    for (const n of names) {
      this.store.untag(n.name);
      records.push({ Untagged: familiarString(parseReference(n.name)) });
      this.event("untag", img.id);
    }
    if (users.length > 0) return records;
    await this.#deleteImage(img, records);
    return records;
  }

  async #deleteImage(img: ImageRecord, records: DeleteRecord[]): Promise<void> {
    this.store.delete(img.id);
    records.push({ Deleted: img.id });
    this.event("delete", img.id);
  }

  /** POST /images/prune */
  async prune(filters: Map<string, string[]>): Promise<{ ImagesDeleted: DeleteRecord[] | null; SpaceReclaimed: number }> {
    for (const k of filters.keys())
      if (!["dangling", "until", "label", "label!"].includes(k)) throw invalidArgument(`invalid filter '${k}'`);
    const danglingOnly = !["false", "0"].includes(filters.get("dangling")?.[0] ?? "true");
    const untilV = filters.get("until")?.[0];
    const untilMs = untilV ? parseTimeFilter(untilV) : undefined;
    const deleted: DeleteRecord[] = [];
    let reclaimed = 0;
    for (const img of this.store.list()) {
      const cfg = await this.store.config(img.id);
      const tags = this.store.names(img.id).filter((n) => n.kind === "tag");
      if (danglingOnly && tags.length > 0) continue;
      if (this.users(img.id).length > 0) continue;
      if (untilMs !== undefined && createdSeconds(cfg) * 1000 >= untilMs) continue;
      const labels = cfg.config?.Labels ?? {};
      if (filters.get("label") && !matchLabels(labels, filters.get("label") ?? [])) continue;
      if (filters.get("label!") && (filters.get("label!") ?? []).some((l) => matchLabels(labels, [l]))) continue;
      for (const n of this.store.names(img.id)) {
        this.store.untag(n.name);
        deleted.push({ Untagged: familiarString(parseReference(n.name)) });
      }
      this.store.delete(img.id);
      deleted.push({ Deleted: img.id });
      this.event("delete", img.id);
      reclaimed += img.size;
    }
    if (deleted.length) this.#events.publish("image", "prune", "", { reclaimed: String(reclaimed) });
    return { ImagesDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed };
  }

  /**
   * Records a new image whose blobs are all in the content store and whose layers are
   * unpacked, and points names at it. Returns the tags it took from other images.
   */
  async record(
    image: { id: Digest; manifestDigest: Digest; manifestMediaType: string; blobs: Digest[] },
    names: { name: string; kind: "tag" | "digest"; targetDigest?: Digest }[],
  ): Promise<ImageRecord> {
    const cfg = await this.store.config(image.id);
    const size = chainIds(cfg.rootfs.diff_ids).reduce((n, c) => n + this.unpacker.layerSize(c), 0);
    this.store.put(
      { id: image.id, manifestDigest: image.manifestDigest, manifestMediaType: image.manifestMediaType, size },
      image.blobs,
      names,
    );
    const rec = this.store.get(image.id);
    if (!rec) throw notFound(`No such image: ${image.id}`);
    return rec;
  }

  /** Unpacks every layer of a stored manifest (blobs already in the content store). */
  async unpackAll(layers: readonly Descriptor[], diffIds: readonly Digest[], signal?: AbortSignal): Promise<void> {
    if (layers.length !== diffIds.length) {
      throw invalidArgument(`Image has ${layers.length} layers but its config lists ${diffIds.length} diff IDs`);
    }
    const chains = chainIds(diffIds);
    for (let i = 0; i < layers.length; i++) {
      const l = layers[i];
      const d = diffIds[i];
      const c = chains[i];
      if (!l || !d || !c) continue;
      await this.unpacker.unpack(l, d, c, i > 0 ? chains[i - 1] : undefined, signal ? { signal } : {});
    }
  }

  /** GET /images/get: a docker-archive tar (manifest.json, repositories, OCI index and layout). */
  async save(names: string[]): Promise<Readable> {
    if (names.length === 0) throw invalidArgument("No image names given");
    const pack = tarStream.pack();
    const entries: { img: ImageRecord; tags: string[] }[] = [];
    for (const n of names) {
      const img = this.store.mustResolve(n);
      let tags: string[] = [];
      try {
        const ref = parseReference(n);
        if (ref.digest === undefined) tags = [familiarString(withDefaultTag(ref))];
        if (!this.store.name(referenceString(withDefaultTag(ref)))) tags = [];
      } catch {
        tags = [];
      }
      if (!isIdReference(n, img.id) && tags.length === 0 && !n.includes("@")) tags = this.store.repoTags(img.id);
      const have = entries.find((e) => e.img.id === img.id);
      if (have) have.tags.push(...tags.filter((t) => !have.tags.includes(t)));
      else entries.push({ img, tags });
    }
    const writeEntry = async (name: string, data: Buffer | (() => Promise<Readable>), size?: number) => {
      if (Buffer.isBuffer(data)) {
        await new Promise<void>((res, rej) =>
          pack.entry({ name, size: data.length, mode: 0o644, mtime: new Date(0) }, data, (e) => (e ? rej(e) : res())),
        );
        return;
      }
      const src = await data();
      await new Promise<void>((res, rej) => {
        const w = pack.entry({ name, size: size ?? 0, mode: 0o644, mtime: new Date(0) }, (e) => (e ? rej(e) : res()));
        src.pipe(w);
        src.on("error", rej);
      });
    };
    const produce = async () => {
      const manifestJson: unknown[] = [];
      const repositories: Record<string, Record<string, string>> = {};
      const written = new Set<string>();
      const indexManifests: Descriptor[] = [];
      // Real directory entries, as docker writes them: a "blobs/" file entry makes other tools'
      // untar (skopeo oci-archive:) create a file where the blob directory must go.
      for (const dir of ["blobs/", "blobs/sha256/"]) {
        await new Promise<void>((res, rej) =>
          pack.entry({ name: dir, type: "directory", mode: 0o755, mtime: new Date(0) }, (e) => (e ? rej(e) : res())),
        );
      }
      for (const { img, tags } of entries) {
        const manifest = await this.store.manifest(img);
        const cfg = await this.store.config(img.id);
        const blob = async (d: Digest, size: number) => {
          if (written.has(d)) return;
          written.add(d);
          await writeEntry(`blobs/sha256/${d.slice(7)}`, () => this.content.reader(d), size);
        };
        await blob(img.id, manifest.config.size);
        const layerPaths: string[] = [];
        for (const l of manifest.layers) {
          // docker-archive layers must be uncompressed tars for older loaders; OCI layout keeps the blobs.
          await blob(l.digest, l.size);
          layerPaths.push(`blobs/sha256/${l.digest.slice(7)}`);
        }
        await blob(img.manifestDigest, (await this.content.info(img.manifestDigest))?.size ?? 0);
        manifestJson.push({ Config: `blobs/sha256/${img.id.slice(7)}`, RepoTags: tags.length ? tags : null, Layers: layerPaths });
        for (const t of tags) {
          const r = parseReference(t);
          const repo = familiarName(r);
          repositories[repo] = { ...(repositories[repo] ?? {}), [r.tag ?? "latest"]: img.id.slice(7) };
        }
        const desc: Descriptor = {
          mediaType: img.manifestMediaType,
          digest: img.manifestDigest,
          size: (await this.content.info(img.manifestDigest))?.size ?? 0,
        };
        if (tags.length)
          desc.annotations = {
            "io.containerd.image.name": referenceString(withDefaultTag(parseReference(tags[0] ?? ""))),
            "org.opencontainers.image.ref.name": parseReference(tags[0] ?? "").tag ?? "latest",
          };
        indexManifests.push(desc);
        void cfg;
      }
      await writeEntry("oci-layout", Buffer.from(JSON.stringify({ imageLayoutVersion: "1.0.0" })));
      await writeEntry(
        "index.json",
        Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: indexManifests })),
      );
      if (Object.keys(repositories).length) await writeEntry("repositories", Buffer.from(JSON.stringify(repositories)));
      // manifest.json last: a reader that stops at it (`tar tf x | grep -q manifest.json` under
      // pipefail) must not make tar die of SIGPIPE on entries after it.
      await writeEntry("manifest.json", Buffer.from(JSON.stringify(manifestJson)));
      pack.finalize();
    };
    // The consumer may be gone (a client that hung up): an error then has no reader, and must not crash berthd.
    pack.on("error", (e) => this.#log.debug("save stream ended early", { error: (e as Error).message }));
    produce().catch((e) => pack.destroy(e as Error));
    for (const { img } of entries) this.event("save", img.id);
    return pack as unknown as Readable;
  }

  /** Garbage collection: blobs and snapshots no image, container or lease references. */
  async gc(
    referencedSnapshots: Set<string>,
    leased: Set<string> = new Set(),
  ): Promise<{ blobs: number; snapshots: number; bytes: number }> {
    const keepBlobs = this.store.referencedBlobs();
    for (const l of leased) keepBlobs.add(l);
    const keepSnaps = new Set<string>(referencedSnapshots);
    for (const l of leased) keepSnaps.add(l);
    for (const img of this.store.list()) {
      const cfg = await this.store.config(img.id).catch(() => undefined);
      if (cfg) for (const c of chainIds(cfg.rootfs.diff_ids)) keepSnaps.add(c);
    }
    let blobs = 0;
    let bytes = 0;
    for await (const b of this.content.list()) {
      if (keepBlobs.has(b.digest)) continue;
      await this.content.delete(b.digest);
      this.store.forgetBlobSources(b.digest);
      blobs++;
      bytes += b.size;
    }
    // Snapshots: remove unreferenced leaves repeatedly (parents go after their children).
    let snaps = 0;
    for (;;) {
      const all = this.snapshots.list();
      const parents = new Set(all.map((s) => s.parent).filter((p): p is string => p !== undefined));
      const victims = all.filter((s) => !keepSnaps.has(s.key) && !parents.has(s.key) && !s.key.startsWith("extract-"));
      if (victims.length === 0) break;
      for (const v of victims) {
        await this.snapshots.remove(v.key);
        snaps++;
      }
    }
    for (const d of await this.snapshots.orphanDirs()) {
      const { rm } = await import("node:fs/promises");
      await rm(d, { recursive: true, force: true });
    }
    if (blobs || snaps) this.#log.info("garbage collected", { blobs, snapshots: snaps, bytes });
    return { blobs, snapshots: snaps, bytes };
  }

  names(id: Digest): ImageName[] {
    return this.store.names(id);
  }

  /** POST /images/load */
  async load(input: Readable, options: { quiet: boolean; progress: Progress }): Promise<string[]> {
    return await loadImages(this, input, options);
  }

  /** POST /images/create?fromSrc */
  async importImage(src: Readable | string, options: Parameters<typeof importImage>[2]): Promise<Digest> {
    return await importImage(this, src, options);
  }

  /** Set by the daemon once the registry client is wired. */
  remote: {
    pull(name: string, options: PullOptions): Promise<void>;
    push(name: string, options: PushOptions): Promise<void>;
  } = {
    pull: async () => {
      throw invalidArgument("Pulling is not available");
    },
    push: async () => {
      throw invalidArgument("Pushing is not available");
    },
  };

  async pull(name: string, options: PullOptions): Promise<void> {
    await this.remote.pull(name, options);
  }

  async push(name: string, options: PushOptions): Promise<void> {
    await this.remote.push(name, options);
  }
}

export interface PullOptions {
  platform?: string | undefined;
  auth?: RegistryAuth | undefined;
  allTags?: boolean;
  progress: Progress;
  signal?: AbortSignal;
}

export interface PushOptions {
  tag?: string | undefined;
  auth?: RegistryAuth | undefined;
  progress: Progress;
  signal?: AbortSignal;
}

function versionLessThan(a: string, b: string): boolean {
  const [am = 0, an = 0] = a.split(".").map(Number);
  const [bm = 0, bn = 0] = b.split(".").map(Number);
  return am < bm || (am === bm && an < bn);
}

/** Whether the user named the image by (a prefix of) its ID. */
export function isIdReference(name: string, id: Digest): boolean {
  const hex = name.startsWith("sha256:") ? name.slice(7) : name;
  return /^[a-f0-9]+$/.test(hex) && id.slice(7).startsWith(hex);
}

function refMatches(pattern: string, r: Reference): boolean {
  const fam = familiarName(r);
  const tag = r.tag;
  if (pattern.includes(":") && !pattern.includes("@") && !/^[^/]+:\d+\//.test(pattern)) {
    const i = pattern.lastIndexOf(":");
    return globMatch(pattern.slice(0, i), fam) && tag !== undefined && globMatch(pattern.slice(i + 1), tag);
  }
  return globMatch(pattern, fam) || globMatch(pattern, repoName(r));
}

/** The image `Config` as dockerd prints it (nulls where Go has nil slices). */
export function imageConfigOut(c: ContainerConfig | undefined): Record<string, unknown> {
  const x = c ?? {};
  return {
    Hostname: x.Hostname ?? "",
    Domainname: x.Domainname ?? "",
    User: x.User ?? "",
    AttachStdin: x.AttachStdin ?? false,
    AttachStdout: x.AttachStdout ?? false,
    AttachStderr: x.AttachStderr ?? false,
    ...(x.ExposedPorts ? { ExposedPorts: x.ExposedPorts } : {}),
    Tty: x.Tty ?? false,
    OpenStdin: x.OpenStdin ?? false,
    StdinOnce: x.StdinOnce ?? false,
    Env: x.Env ?? null,
    Cmd: x.Cmd ?? null,
    ...(x.Healthcheck ? { Healthcheck: x.Healthcheck } : {}),
    ...(x.ArgsEscaped ? { ArgsEscaped: true } : {}),
    Image: x.Image ?? "",
    Volumes: x.Volumes ?? null,
    WorkingDir: x.WorkingDir ?? "",
    Entrypoint: x.Entrypoint ?? null,
    OnBuild: x.OnBuild ?? null,
    Labels: x.Labels ?? null,
    ...(x.StopSignal ? { StopSignal: x.StopSignal } : {}),
    ...(x.Shell ? { Shell: x.Shell } : {}),
  };
}

/**
 * dockerd's "single reference": every name is of one repository, and at most one of them is a
 * tag (`busybox:latest` with its `busybox@sha256:…`). Removing it leaves the image nameless.
 */
function isSingleReference(names: readonly { name: string; kind: "tag" | "digest" }[]): boolean {
  if (!names.length) return false;
  const repos = new Set(names.map((n) => repoName(parseReference(n.name))));
  return repos.size === 1 && names.filter((n) => n.kind === "tag").length <= 1;
}
