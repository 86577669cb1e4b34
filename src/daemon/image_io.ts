import { Readable } from "node:stream";
import tarStream from "tar-stream";
import { type Digest, invalidArgument, isDigest, notFound, parseDigest } from "../base/mod.ts";
import {
  type ContainerConfig,
  type Descriptor,
  familiarString,
  hostPlatform,
  type ImageConfig,
  type Index,
  isIndexMediaType,
  type Manifest,
  MediaType,
  parseImageConfig,
  parseManifest,
  parsePlatform,
  parseReference,
  platformMatches,
  referenceString,
  withDefaultTag,
} from "../oci/mod.ts";
import { applyChanges } from "../build/mod.ts";
import type { ImageService } from "./images.ts";

/** A JSON progress message for the API stream. */
export type Progress = (msg: Record<string, unknown>) => void;

const SMALL = 8 * 1024 * 1024;

async function sniffCompression(svc: ImageService, d: Digest): Promise<"gzip" | "zstd" | "none"> {
  const s = await svc.content.reader(d);
  const head: Buffer = await new Promise((resolve, reject) => {
    s.once("readable", () => {
      const b = (s.read(4) as Buffer | null) ?? Buffer.alloc(0);
      s.destroy();
      resolve(b);
    });
    s.once("error", reject);
    s.once("end", () => resolve(Buffer.alloc(0)));
  });
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return "zstd";
  return "none";
}

function layerMediaType(c: "gzip" | "zstd" | "none"): string {
  return c === "gzip" ? MediaType.DockerLayerGzip : c === "zstd" ? MediaType.OciLayerZstd : MediaType.DockerLayer;
}

/**
 * POST /images/load: a docker-archive (manifest.json) or OCI layout (index.json) tar. Every
 * file is streamed into the content store as it arrives (blobs named by digest are verified),
 * then images are assembled, unpacked and named.
 */
export async function loadImages(svc: ImageService, input: Readable, options: { quiet: boolean; progress: Progress }): Promise<string[]> {
  const files = new Map<string, { digest: Digest; size: number; bytes?: Buffer }>();
  const extract = tarStream.extract();
  let sawEntry = false;
  const done = new Promise<void>((resolve, reject) => {
    extract.on("entry", (header, stream, next) => {
      sawEntry = true;
      const name = header.name.replace(/^\.\//, "").replace(/\/+$/, "");
      if (header.type !== "file" && header.type !== "contiguous-file") {
        stream.resume();
        stream.on("end", next);
        return;
      }
      const blobMatch = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/.exec(name);
      const expectedDigest =
        blobMatch && isDigest(`${blobMatch[1]}:${blobMatch[2]}`) ? parseDigest(`${blobMatch[1]}:${blobMatch[2]}`) : undefined;
      const small =
        header.size !== undefined &&
        header.size <= SMALL &&
        (name.endsWith(".json") || !name.includes("/") || expectedDigest !== undefined);
      if (expectedDigest) {
        void svc.content.info(expectedDigest).then((have) => {
          if (!have) return write();
          files.set(name, { digest: expectedDigest, size: have.size });
          stream.on("end", next);
          stream.resume();
        }, reject);
        return;
      }
      write();
      function write() {
        const chunks: Buffer[] = [];
        const collect = small && (header.size ?? 0) <= 1024 * 1024;
        const tee = async function* () {
          for await (const c of stream as AsyncIterable<Buffer>) {
            if (collect) chunks.push(c);
            yield c;
          }
        };
        svc.content
          .writeStream(Readable.from(tee()), expectedDigest ? { digest: expectedDigest, size: header.size ?? 0 } : undefined)
          .then((info) => {
            const rec: { digest: Digest; size: number; bytes?: Buffer } = { digest: info.digest, size: info.size };
            if (chunks.length || info.size === 0) rec.bytes = Buffer.concat(chunks);
            files.set(name, rec);
            next();
          })
          .catch((e: unknown) => {
            stream.resume();
            reject(e);
            extract.destroy(e as Error);
          });
      }
    });
    extract.on("finish", resolve);
    extract.on("error", (e) => reject(invalidArgument(`Cannot load the archive: ${e.message}`)));
  });
  input.on("error", (e) => extract.destroy(e));
  input.pipe(extract);
  await done;
  if (!sawEntry) throw invalidArgument("Cannot load the archive: it is empty or not a tar file");

  const readJsonFile = async <T>(name: string): Promise<T | undefined> => {
    const f = files.get(name);
    if (!f) return undefined;
    const bytes = f.bytes ?? (await svc.content.readBytes(f.digest, SMALL));
    try {
      return JSON.parse(bytes.toString("utf8")) as T;
    } catch (e) {
      throw invalidArgument(`Cannot load the archive: ${name} is not valid JSON: ${(e as Error).message}`);
    }
  };
  const loaded: string[] = [];
  const say = (s: string) => options.progress({ stream: `${s}\n` });

  const dockerManifest = await readJsonFile<{ Config: string; RepoTags: string[] | null; Layers: string[] }[]>("manifest.json");
  const ociIndex = await readJsonFile<Index>("index.json");
  if (dockerManifest) {
    if (!Array.isArray(dockerManifest)) throw invalidArgument("Cannot load the archive: manifest.json is not a list");
    // Original manifests from the OCI index, keyed by config digest, keep digests stable.
    const originals = new Map<string, { digest: Digest; mediaType: string; manifest: Manifest }>();
    if (ociIndex?.manifests) {
      for (const m of ociIndex.manifests) {
        if (!(await svc.content.has(m.digest))) continue;
        const p = parseManifest(await svc.content.readBytes(m.digest), m.mediaType);
        if (p.kind === "manifest")
          originals.set(p.manifest.config.digest, { digest: m.digest, mediaType: p.mediaType, manifest: p.manifest });
      }
    }
    for (const entry of dockerManifest) {
      const cfgFile = files.get(entry.Config);
      if (!cfgFile) throw invalidArgument(`Cannot load the archive: config "${entry.Config}" is missing`);
      const cfg = parseImageConfig(cfgFile.bytes ?? (await svc.content.readBytes(cfgFile.digest)));
      if (!Array.isArray(entry.Layers) || entry.Layers.length !== cfg.rootfs.diff_ids.length) {
        throw invalidArgument("Cannot load the archive: the number of layers does not match the config");
      }
      const orig = originals.get(cfgFile.digest);
      let manifestDigest: Digest;
      let manifestMediaType: string;
      let layers: Descriptor[];
      if (orig && orig.manifest.layers.length === entry.Layers.length) {
        manifestDigest = orig.digest;
        manifestMediaType = orig.mediaType;
        layers = orig.manifest.layers;
      } else {
        layers = [];
        for (const lp of entry.Layers) {
          const f = files.get(lp);
          if (!f) throw invalidArgument(`Cannot load the archive: layer "${lp}" is missing`);
          layers.push({ mediaType: layerMediaType(await sniffCompression(svc, f.digest)), digest: f.digest, size: f.size });
        }
        const manifest: Manifest = {
          schemaVersion: 2,
          mediaType: MediaType.DockerManifest,
          config: { mediaType: MediaType.DockerConfig, digest: cfgFile.digest, size: cfgFile.size },
          layers,
        };
        const bytes = Buffer.from(JSON.stringify(manifest));
        const info = await svc.content.put(bytes);
        manifestDigest = info.digest;
        manifestMediaType = MediaType.DockerManifest;
      }
      for (const l of layers)
        if (!(await svc.content.has(l.digest))) throw invalidArgument(`Cannot load the archive: layer blob "${l.digest}" is missing`);
      await svc.unpackAll(layers, cfg.rootfs.diff_ids);
      const names = (entry.RepoTags ?? []).map((t) => ({ name: referenceString(withDefaultTag(parseReference(t))), kind: "tag" as const }));
      await svc.record(
        { id: cfgFile.digest, manifestDigest, manifestMediaType, blobs: [cfgFile.digest, manifestDigest, ...layers.map((l) => l.digest)] },
        names,
      );
      svc.event("load", cfgFile.digest);
      if (names.length === 0) {
        say(`Loaded image ID: ${cfgFile.digest}`);
        loaded.push(cfgFile.digest);
      }
      for (const t of entry.RepoTags ?? []) {
        say(`Loaded image: ${familiarString(withDefaultTag(parseReference(t)))}`);
        loaded.push(t);
      }
    }
    return loaded;
  }
  if (ociIndex) {
    if (!Array.isArray(ociIndex.manifests)) throw invalidArgument("Cannot load the archive: index.json has no manifests");
    for (const top of ociIndex.manifests) {
      let desc: Descriptor = top;
      if (!(await svc.content.has(desc.digest))) throw invalidArgument(`Cannot load the archive: blob "${desc.digest}" is missing`);
      let parsed = parseManifest(await svc.content.readBytes(desc.digest), desc.mediaType);
      const blobs: Digest[] = [desc.digest];
      if (parsed.kind === "index" || isIndexMediaType(desc.mediaType)) {
        const idx = parsed.kind === "index" ? parsed.index : undefined;
        const pick = idx?.manifests.find((m) => platformMatches(m.platform, hostPlatform)) ?? idx?.manifests.find((m) => !m.platform);
        if (!pick) throw invalidArgument(`Cannot load the archive: no manifest for ${hostPlatform.os}/${hostPlatform.architecture}`);
        desc = pick;
        if (!(await svc.content.has(desc.digest))) throw invalidArgument(`Cannot load the archive: blob "${desc.digest}" is missing`);
        parsed = parseManifest(await svc.content.readBytes(desc.digest), desc.mediaType);
        blobs.push(desc.digest);
      }
      if (parsed.kind !== "manifest") throw invalidArgument("Cannot load the archive: nested indexes are not supported");
      const m = parsed.manifest;
      for (const b of [m.config, ...m.layers]) {
        if (!(await svc.content.has(b.digest))) throw invalidArgument(`Cannot load the archive: blob "${b.digest}" is missing`);
      }
      const cfg = parseImageConfig(await svc.content.readBytes(m.config.digest));
      await svc.unpackAll(m.layers, cfg.rootfs.diff_ids);
      const refName = top.annotations?.["io.containerd.image.name"] ?? top.annotations?.["org.opencontainers.image.ref.name"];
      const names: { name: string; kind: "tag" }[] = [];
      if (refName) {
        try {
          const r = parseReference(refName);
          if (refName.includes("/") || refName.includes(":")) names.push({ name: referenceString(withDefaultTag(r)), kind: "tag" });
        } catch {
          // a bare tag name ("latest") names no repository: load untagged, as docker does
        }
      }
      await svc.record(
        {
          id: m.config.digest,
          manifestDigest: desc.digest,
          manifestMediaType: parsed.mediaType,
          blobs: [...blobs, m.config.digest, ...m.layers.map((l) => l.digest)],
        },
        names,
      );
      svc.event("load", m.config.digest);
      if (names[0]) {
        const fam = familiarString(parseReference(names[0].name));
        say(`Loaded image: ${fam}`);
        loaded.push(fam);
      } else {
        say(`Loaded image ID: ${m.config.digest}`);
        loaded.push(m.config.digest);
      }
    }
    return loaded;
  }
  throw invalidArgument("Cannot load the archive: it has neither manifest.json nor index.json");
}

/** POST /images/create?fromSrc: a root filesystem tar (plain, gzip or zstd) becomes a one-layer image. */
export async function importImage(
  svc: ImageService,
  src: Readable | string,
  options: { repo: string; tag: string; changes: string[]; message: string; platform: string; signal?: AbortSignal },
): Promise<Digest> {
  let stream: Readable;
  let srcName = "-";
  if (typeof src === "string") {
    srcName = src;
    let url: URL;
    try {
      url = new URL(src);
    } catch {
      throw invalidArgument(`Invalid import source "${src}": not a URL`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:")
      throw invalidArgument(`Invalid import source "${src}": only http and https URLs`);
    const r = await fetch(url, options.signal ? { signal: options.signal } : {});
    if (!r.ok || !r.body) throw notFound(`Cannot download "${src}": HTTP ${r.status}`);
    stream = Readable.fromWeb(r.body as import("node:stream/web").ReadableStream);
  } else stream = src;
  let config: ContainerConfig = applyChanges({}, options.changes);
  if (Object.keys(config).length === 0) config = {};
  const blob = await svc.content.writeStream(stream);
  const compression = await sniffCompression(svc, blob.digest);
  const { diffId } = await svc.unpacker.unpackUnknown(blob.digest, undefined, options.signal ? { signal: options.signal } : {});
  const platform = options.platform ? parsePlatform(options.platform) : hostPlatform;
  const now = new Date().toISOString();
  const cfg: ImageConfig = {
    architecture: platform.architecture,
    os: platform.os,
    created: now,
    config,
    rootfs: { type: "layers", diff_ids: [diffId] },
    history: [{ created: now, created_by: "", comment: options.message || `Imported from ${srcName}` }],
  };
  if (options.message) cfg.comment = options.message;
  const cfgBytes = Buffer.from(JSON.stringify(cfg));
  const cfgInfo = await svc.content.put(cfgBytes);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.DockerManifest,
    config: { mediaType: MediaType.DockerConfig, digest: cfgInfo.digest, size: cfgInfo.size },
    layers: [{ mediaType: layerMediaType(compression), digest: blob.digest, size: blob.size }],
  };
  const mInfo = await svc.content.put(Buffer.from(JSON.stringify(manifest)));
  const names: { name: string; kind: "tag" }[] = [];
  if (options.repo) {
    const ref = withDefaultTag(parseReference(options.tag ? `${options.repo}:${options.tag}` : options.repo));
    names.push({ name: referenceString(ref), kind: "tag" });
  }
  await svc.record(
    {
      id: cfgInfo.digest,
      manifestDigest: mInfo.digest,
      manifestMediaType: MediaType.DockerManifest,
      blobs: [cfgInfo.digest, mInfo.digest, blob.digest],
    },
    names,
  );
  svc.event("import", cfgInfo.digest);
  return cfgInfo.digest;
}
