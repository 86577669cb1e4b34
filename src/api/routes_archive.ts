/**
 * From containers to images: `docker diff` (GET /containers/{id}/changes), `docker cp`
 * (HEAD, GET and PUT /containers/{id}/archive), `docker export` (GET /containers/{id}/export)
 * and `docker commit` (POST /commit). The file work is `ContainerArchive`'s; commit composes it
 * with the image side (content store, unpacker, image store) here.
 */
import { compressLayer } from "../archive/mod.ts";
import { type Digest, invalidArgument, messageOf, notFound } from "../base/mod.ts";
import { ContainerArchive, type ContainerRecord } from "../container/mod.ts";
import type { Daemon } from "../daemon/mod.ts";
import { applyChanges } from "../build/mod.ts";
import {
  type ContainerConfig,
  type Descriptor,
  familiarString,
  type HistoryEntry,
  type ImageConfig,
  type Manifest,
  MediaType,
  parseManifest,
  parseReference,
  type Reference,
  referenceString,
  withDefaultTag,
} from "../oci/mod.ts";
import { chainIds } from "../snapshot/mod.ts";
import { ENGINE_VERSION, qBool, type Router, readJson, sendJson } from "./http.ts";

/** The diff ID of an empty layer (a tar of nothing: two zero blocks), which commit does not add. */
const EMPTY_LAYER = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

/** Publishes a container event with the attributes dockerd gives every one (labels, image, name). */
function containerEvent(d: Daemon, c: ContainerRecord, action: string, extra: Record<string, string> = {}): void {
  d.events.publish("container", action, c.Id, { ...(c.Config.Labels ?? {}), image: c.ImageName, name: c.Name.slice(1), ...extra });
}

/** Registers the archive, export, changes and commit routes. */
export function archiveRoutes(router: Router, d: Daemon): void {
  const svc = d.containers;
  const files = new ContainerArchive({ containers: svc, snapshots: d.snapshots, host: d.host, log: d.log });

  router.add("GET", "/containers/{id}/changes", async ({ res, params }) => {
    sendJson(res, 200, await files.changes(params.id ?? ""));
  });

  // HEAD is routed here too: the stat alone, in the header the docker CLI reads.
  router.add("GET", "/containers/{id}/archive", async ({ req, res, params, query }) => {
    const id = params.id ?? "";
    const path = query.get("path") ?? "";
    if (!path) throw invalidArgument("Path cannot be empty");
    svc.store.mustResolve(id);
    if (req.method === "HEAD") {
      const stat = await files.stat(id, path);
      res.writeHead(200, { "X-Docker-Container-Path-Stat": encodeStat(stat), "Content-Type": "application/json" });
      res.end();
      return;
    }
    const ac = new AbortController();
    res.on("close", () => ac.abort());
    const { stat, stream } = await files.archive(id, path, { signal: ac.signal });
    const c = svc.store.mustResolve(id);
    res.writeHead(200, { "X-Docker-Container-Path-Stat": encodeStat(stat), "Content-Type": "application/x-tar" });
    containerEvent(d, c, "archive-path");
    await pipeTo(stream, res);
  });

  router.add("PUT", "/containers/{id}/archive", async ({ req, res, params, query }) => {
    const id = params.id ?? "";
    const path = query.get("path") ?? "";
    if (!path) throw invalidArgument("Path cannot be empty");
    const c = svc.store.mustResolve(id);
    const ac = new AbortController();
    req.on("aborted", () => ac.abort());
    await files.extract(id, path, req, {
      noOverwriteDirNonDir: qBool(query, "noOverwriteDirNonDir"),
      copyUidGid: qBool(query, "copyUIDGID"),
      signal: ac.signal,
    });
    containerEvent(d, c, "extract-to-dir");
    res.writeHead(200, { "Content-Length": 0 });
    res.end();
  });

  router.add("GET", "/containers/{id}/export", async ({ res, params }) => {
    const id = params.id ?? "";
    const c = svc.store.mustResolve(id);
    const ac = new AbortController();
    res.on("close", () => ac.abort());
    const stream = await files.export(id, { signal: ac.signal });
    res.writeHead(200, { "Content-Type": "application/x-tar" });
    containerEvent(d, c, "export");
    await pipeTo(stream, res);
  });

  router.add("POST", "/commit", async ({ req, res, query }) => {
    const ref = query.get("container") ?? "";
    const c = svc.store.resolve(ref);
    if (!c) throw notFound(`No such container: ${ref}`);
    const body = await readJson<ContainerConfig | null>(req);
    const id = await commitContainer(d, files, c.Id, {
      repo: query.get("repo") ?? "",
      tag: query.get("tag") ?? "",
      comment: query.get("comment") ?? "",
      author: query.get("author") ?? "",
      // API 1.13 and later: pause unless told otherwise.
      pause: qBool(query, "pause", true),
      changes: query.getAll("changes"),
      config: body && typeof body === "object" ? body : undefined,
    });
    sendJson(res, 201, { Id: id });
  });
}

function encodeStat(stat: object): string {
  return Buffer.from(JSON.stringify(stat)).toString("base64");
}

/** Streams a tar into the response; a failure after the headers cuts the connection (the client sees a short archive). */
async function pipeTo(
  stream: NodeJS.ReadableStream & { destroy(e?: Error): void },
  res: import("node:http").ServerResponse,
): Promise<void> {
  try {
    for await (const chunk of stream) {
      if (res.destroyed) break;
      if (!res.write(chunk as Buffer)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off("drain", done);
            res.off("close", done);
            resolve();
          };
          res.once("drain", done);
          res.once("close", done);
        });
      }
    }
    res.end();
  } catch (e) {
    res.destroy(e instanceof Error ? e : new Error(messageOf(e)));
  } finally {
    stream.destroy();
  }
}

/** What `POST /commit` asks for. */
export interface CommitOptions {
  repo: string;
  tag: string;
  comment: string;
  author: string;
  pause: boolean;
  changes: string[];
  /** Config overrides from the request body; the container's config when absent. */
  config: ContainerConfig | undefined;
}

/**
 * Dockerd's `merge`: fills what the user's config leaves empty from the container's config
 * (user, ports, env by key, labels, command unless an entrypoint is given, healthcheck,
 * working directory, volumes, stop signal).
 */
export function mergeCommitConfig(user: ContainerConfig, base: ContainerConfig): ContainerConfig {
  const u: ContainerConfig = { ...user };
  if (!u.User) u.User = base.User ?? "";
  if (!u.ExposedPorts || Object.keys(u.ExposedPorts).length === 0) {
    if (base.ExposedPorts) u.ExposedPorts = base.ExposedPorts;
  } else u.ExposedPorts = { ...(base.ExposedPorts ?? {}), ...u.ExposedPorts };
  if (!u.Env || u.Env.length === 0) u.Env = base.Env ?? null;
  else {
    const keys = new Set(u.Env.map((e) => e.split("=")[0]));
    u.Env = [...u.Env, ...(base.Env ?? []).filter((e) => !keys.has(e.split("=")[0]))];
  }
  u.Labels = { ...(base.Labels ?? {}), ...(u.Labels ?? {}) };
  if (!u.Entrypoint || u.Entrypoint.length === 0) {
    if (!u.Cmd || u.Cmd.length === 0) u.Cmd = base.Cmd ?? null;
    if (u.Entrypoint === undefined || u.Entrypoint === null) u.Entrypoint = base.Entrypoint ?? null;
  }
  if (base.Healthcheck && !u.Healthcheck) u.Healthcheck = base.Healthcheck;
  if (!u.WorkingDir) u.WorkingDir = base.WorkingDir ?? "";
  if (!u.Volumes || Object.keys(u.Volumes).length === 0) u.Volumes = base.Volumes ?? null;
  else u.Volumes = { ...u.Volumes, ...(base.Volumes ?? {}) };
  if (!u.StopSignal && base.StopSignal) u.StopSignal = base.StopSignal;
  return u;
}

/**
 * `docker commit`: the container's own layer (paused while it is read, unless told not to)
 * becomes a new layer on top of its image, with the container's config (plus `changes`) as the
 * new image's config and a history entry saying what ran. The layer is unpacked as a snapshot
 * so that the image runs at once. Returns the image ID.
 */
export async function commitContainer(d: Daemon, files: ContainerArchive, id: string, o: CommitOptions): Promise<Digest> {
  const svc = d.containers;
  const images = d.images;
  let name: Reference | undefined;
  if (o.repo) {
    try {
      name = parseReference(o.repo);
      if (name.digest !== undefined) throw invalidArgument("refusing to create a tag with a digest reference");
      if (o.tag) {
        if (name.tag !== undefined) throw invalidArgument("invalid reference format");
        name = parseReference(`${o.repo}:${o.tag}`);
      }
      name = withDefaultTag(name);
    } catch (e) {
      throw invalidArgument(messageOf(e));
    }
  } else if (o.tag) throw invalidArgument("invalid reference format: repository name must be given with a tag");
  const leases: string[] = [];
  const lease = (k: string) => {
    images.leases.add(k);
    leases.push(k);
  };
  try {
    return await svc.withLock(id, async (c) => {
      if (c.State.Status === "dead") throw invalidArgument(`You cannot commit container ${c.Id} which is Dead`);
      const parentImg = images.store.get(c.Image as Digest);
      if (!parentImg) throw notFound(`No such image: ${c.Image}`);
      const parentCfg = await images.store.config(parentImg.id);
      const parentManifest = parseManifest(await images.content.readBytes(parentImg.manifestDigest), parentImg.manifestMediaType);
      if (parentManifest.kind !== "manifest") throw notFound(`No manifest for image ${parentImg.id}`);
      const oci = parentManifest.mediaType === MediaType.OciManifest;
      const config = mergeCommitConfig(applyChanges(structuredClone(o.config ?? c.Config), o.changes), c.Config);

      // The layer: read with the container frozen, so that the tar is one moment of it.
      const pause = o.pause && c.State.Running && !c.State.Paused;
      if (pause) await svc.pause(c.Id);
      let blob: { digest: Digest; size: number };
      let diffId: Digest;
      try {
        const tar = await files.layer(c);
        const layer = compressLayer(tar);
        blob = await images.content.writeStream(layer.stream);
        lease(blob.digest);
        diffId = (await layer.info).diffId;
      } finally {
        if (pause)
          await svc.unpause(c.Id).catch((e: unknown) => d.log.warn("unpause after commit failed", { id: c.Id, error: messageOf(e) }));
      }

      const empty = diffId === EMPTY_LAYER;
      const diffIds = [...parentCfg.rootfs.diff_ids];
      const layers: Descriptor[] = [...parentManifest.manifest.layers];
      if (!empty) {
        const parentTop = chainIds(parentCfg.rootfs.diff_ids).at(-1);
        const unpacked = await images.unpacker.unpackUnknown(blob.digest, parentTop);
        lease(unpacked.chainId);
        if (unpacked.diffId !== diffId) throw invalidArgument(`The committed layer hashes to "${unpacked.diffId}", not "${diffId}"`);
        diffIds.push(diffId);
        layers.push({ mediaType: oci ? MediaType.OciLayerGzip : MediaType.DockerLayerGzip, digest: blob.digest, size: blob.size });
      }
      const created = new Date().toISOString();
      const history: HistoryEntry = { created, created_by: (c.Config.Cmd ?? []).join(" ") };
      if (o.author) history.author = o.author;
      if (o.comment) history.comment = o.comment;
      if (empty) history.empty_layer = true;
      const cfg: ImageConfig = {
        architecture: parentCfg.architecture,
        os: parentCfg.os,
        ...(parentCfg.variant ? { variant: parentCfg.variant } : {}),
        ...(parentCfg["os.version"] ? { "os.version": parentCfg["os.version"] } : {}),
        created,
        ...(o.author ? { author: o.author } : {}),
        ...(o.comment ? { comment: o.comment } : {}),
        config,
        container: c.Id,
        container_config: c.Config,
        docker_version: ENGINE_VERSION,
        rootfs: { type: "layers", diff_ids: diffIds },
        history: [...(parentCfg.history ?? []), history],
      };
      const cfgInfo = await images.content.put(Buffer.from(JSON.stringify(cfg)));
      lease(cfgInfo.digest);
      const manifest: Manifest = {
        schemaVersion: 2,
        mediaType: oci ? MediaType.OciManifest : MediaType.DockerManifest,
        config: { mediaType: oci ? MediaType.OciConfig : MediaType.DockerConfig, digest: cfgInfo.digest, size: cfgInfo.size },
        layers,
      };
      const mInfo = await images.content.put(Buffer.from(JSON.stringify(manifest)));
      lease(mInfo.digest);
      await images.record(
        {
          id: cfgInfo.digest,
          manifestDigest: mInfo.digest,
          manifestMediaType: manifest.mediaType ?? MediaType.DockerManifest,
          blobs: [cfgInfo.digest, mInfo.digest, ...layers.map((l) => l.digest)],
        },
        name ? [{ name: referenceString(name), kind: "tag" }] : [],
      );
      if (name) images.event("tag", cfgInfo.digest, familiarString(name));
      containerEvent(d, c, "commit", { comment: o.comment, imageID: cfgInfo.digest, imageRef: name ? familiarString(name) : "" });
      return cfgInfo.digest;
    });
  } finally {
    for (const k of leases) images.leases.delete(k);
  }
}
