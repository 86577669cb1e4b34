import { canceled, type Digest, invalidArgument, type Logger, shortHex } from "../base/mod.ts";
import {
  type Descriptor,
  familiarName,
  familiarString,
  parseReference,
  type Reference,
  referenceString,
  repoName,
  withDefaultTag,
} from "../oci/mod.ts";
import type { Credentials, ProgressEvent, RegistryClient } from "../registry/mod.ts";
import { chainIds, type Unpacker } from "../snapshot/mod.ts";
import type { ImageService, PullOptions, PushOptions, RegistryAuth } from "./images.ts";

function credentials(auth: RegistryAuth | undefined): Credentials | undefined {
  if (!auth) return undefined;
  const c: Credentials = {};
  if (auth.username) c.username = auth.username;
  if (auth.password) c.password = auth.password;
  if (auth.identityToken) c.identityToken = auth.identityToken;
  if (auth.registryToken) c.registryToken = auth.registryToken;
  return Object.keys(c).length ? c : undefined;
}

/** Docker's text progress bar: `[=====>      ]  1.2MB/3.4MB`. */
export function progressBar(current: number, total: number): string {
  const width = 50;
  const human = (n: number) => {
    const units = ["B", "kB", "MB", "GB", "TB"];
    let i = 0;
    let v = n;
    while (v >= 1000 && i < units.length - 1) {
      v /= 1000;
      i++;
    }
    return `${i === 0 ? v : v.toFixed(v < 10 ? 3 : v < 100 ? 2 : 1).replace(/\.?0+$/, "")}${units[i]}`;
  };
  if (total <= 0) return human(current);
  const filled = Math.min(width, Math.floor((current / total) * width));
  const bar = `${"=".repeat(Math.max(0, filled - 1))}${filled > 0 ? ">" : ""}${" ".repeat(width - filled)}`;
  return `[${bar}] ${human(current)}/${human(total)}`;
}

function toMessage(e: ProgressEvent): Record<string, unknown> {
  const m: Record<string, unknown> = { status: e.status, progressDetail: {}, id: e.id };
  if (e.current !== undefined) {
    m.progressDetail = e.total !== undefined ? { current: e.current, total: e.total } : { current: e.current };
    m.progress = progressBar(e.current, e.total ?? 0);
  }
  return m;
}

/** Where one layer's bytes come from: the download as it happens, or the content store. */
interface LayerSource {
  stream?: AsyncIterable<Buffer>;
}

/**
 * The unpacking side of one pull attempt. Layer i is unpacked as soon as it is fetched and
 * the layers below it are unpacked, while later layers still download. A layer whose download
 * starts when everything below it is unpacked (the bottom layer, or the first one missing over
 * a cached base) is unpacked from its bytes as they arrive; its snapshot is committed only
 * once the registry client has verified and stored the whole blob. If that stream fails (the
 * download restarted, or the layer is bad), the layer is unpacked again from the store once
 * fetched, and an error there is final.
 */
class UnpackPipeline {
  readonly #unpacker: Unpacker;
  readonly #layers: readonly Descriptor[];
  readonly #diffIds: readonly Digest[];
  readonly #chains: readonly Digest[];
  readonly #signal: AbortSignal;
  readonly #progress: (m: Record<string, unknown>) => void;
  readonly #sources: PromiseWithResolvers<LayerSource>[] = [];
  readonly #fetched: PromiseWithResolvers<void>[] = [];
  readonly #sourced: boolean[] = [];
  readonly #ok: boolean[] = [];
  readonly #done: Promise<void>[] = [];

  constructor(
    unpacker: Unpacker,
    layers: readonly Descriptor[],
    diffIds: readonly Digest[],
    options: { signal: AbortSignal; progress: (m: Record<string, unknown>) => void; lease: (d: string) => void },
  ) {
    this.#unpacker = unpacker;
    this.#layers = layers;
    this.#diffIds = diffIds;
    this.#chains = chainIds(diffIds);
    this.#signal = options.signal;
    this.#progress = options.progress;
    for (const c of this.#chains) options.lease(c);
    for (let i = 0; i < layers.length; i++) {
      this.#sources.push(Promise.withResolvers<LayerSource>());
      this.#fetched.push(Promise.withResolvers<void>());
      // Rejections are observed by whoever awaits them; these keep an unawaited one quiet.
      this.#sources[i]?.promise.catch(() => {});
      this.#fetched[i]?.promise.catch(() => {});
    }
    for (let i = 0; i < layers.length; i++) {
      const p = this.#run(i);
      p.catch(() => {});
      this.#done.push(p);
    }
    const stop = () => {
      const e = canceled("The pull was canceled");
      for (const d of this.#sources) d.reject(e);
      for (const d of this.#fetched) d.reject(e);
    };
    if (this.#signal.aborted) stop();
    else this.#signal.addEventListener("abort", stop, { once: true });
  }

  /** The download of layer `index` starts: take its bytes if everything below it is unpacked. */
  stream(index: number, body: AsyncIterable<Buffer>): boolean {
    const c = this.#chains[index];
    if (!c || this.#sourced[index] || this.#signal.aborted) return false;
    if (index > 0 && !this.#ok[index - 1]) return false;
    if (this.#unpacker.has(c)) return false;
    this.#sourced[index] = true;
    this.#sources[index]?.resolve({ stream: body });
    return true;
  }

  /** Layer `index` is in the content store; resolves once it is unpacked. */
  fetched(index: number): Promise<void> {
    this.#fetched[index]?.resolve();
    if (!this.#sourced[index]) {
      this.#sourced[index] = true;
      this.#sources[index]?.resolve({});
    }
    if (this.#sources[index] && !this.#ok[index]) {
      // Still unpacking what streamed in: say so, as docker does after "Download complete".
      void this.#sources[index].promise.then(
        (src) => {
          if (src.stream && !this.#ok[index]) this.#progress({ status: "Extracting", progressDetail: {}, id: this.#id(index) });
        },
        () => {},
      );
    }
    return this.#done[index] ?? Promise.resolve();
  }

  /** Resolves when every layer's work has settled, whatever the outcome. */
  async settled(): Promise<void> {
    await Promise.allSettled(this.#done);
  }

  #id(index: number): string {
    return shortHex(this.#layers[index]?.digest ?? "");
  }

  async #run(i: number): Promise<void> {
    if (i > 0) await this.#done[i - 1];
    const layer = this.#layers[i];
    const d = this.#diffIds[i];
    const c = this.#chains[i];
    const src = this.#sources[i];
    if (!layer || !d || !c || !src) return;
    const parent = i > 0 ? this.#chains[i - 1] : undefined;
    const { stream } = await src.promise;
    const signal = this.#signal;
    // A layer that was there already said "Already exists": no "Pull complete" after it, as dockerd.
    let worked = true;
    if (stream) {
      try {
        await this.#unpacker.unpack(layer, d, c, parent, { signal, stream });
      } catch (e) {
        if (signal.aborted) throw e;
        await this.#fetched[i]?.promise;
        this.#progress({ status: "Extracting", progressDetail: {}, id: this.#id(i) });
        await this.#unpacker.unpack(layer, d, c, parent, { signal });
      }
    } else if (!this.#unpacker.has(c)) {
      this.#progress({ status: "Extracting", progressDetail: {}, id: this.#id(i) });
      await this.#unpacker.unpack(layer, d, c, parent, { signal });
    } else worked = false;
    this.#ok[i] = true;
    if (worked) this.#progress({ status: "Pull complete", progressDetail: {}, id: this.#id(i) });
  }
}

/**
 * Pull and push: the registry client fetches blobs into the content store while the layers
 * are unpacked into snapshots (each as soon as it and the ones below it are there, the bottom
 * one while it downloads), then the image is recorded under its names.
 */
export class RemoteImages {
  #svc: ImageService;
  #registry: RegistryClient;
  #log: Logger;

  constructor(svc: ImageService, registry: RegistryClient, log: Logger) {
    this.#svc = svc;
    this.#registry = registry;
    this.#log = log;
  }

  async login(auth: {
    username?: string;
    password?: string;
    serveraddress?: string;
    identitytoken?: string;
  }): Promise<{ identityToken?: string }> {
    const creds: Credentials = {};
    if (auth.username) creds.username = auth.username;
    if (auth.password) creds.password = auth.password;
    if (auth.identitytoken) creds.identityToken = auth.identitytoken;
    const r = await this.#registry.checkAuth(auth.serveraddress || "https://index.docker.io/v1/", creds);
    return r.identityToken ? { identityToken: r.identityToken } : {};
  }

  async pull(name: string, options: PullOptions): Promise<void> {
    let ref: Reference;
    try {
      ref = parseReference(name);
    } catch (e) {
      throw invalidArgument((e as Error).message);
    }
    if (options.allTags) {
      const tags = await this.#registry.listTags(ref, { auth: credentials(options.auth), signal: options.signal });
      // As dockerd: one "Status:" line for the repository at the end, not one per tag.
      let newer = false;
      const progress = (m: Record<string, unknown>) => {
        const st = typeof m.status === "string" ? m.status : "";
        if (!st.startsWith("Status: ")) options.progress(m);
        else if (st.startsWith("Status: Downloaded newer image")) newer = true;
      };
      for (const t of tags) await this.#pullOne({ ...ref, tag: t }, { ...options, progress });
      options.progress({ status: `Status: ${newer ? "Downloaded newer image" : "Image is up to date"} for ${familiarName(ref)}` });
      return;
    }
    await this.#pullOne(withDefaultTag(ref), options);
  }

  async #pullOne(ref: Reference, options: PullOptions): Promise<void> {
    const progress = options.progress;
    const auth = credentials(options.auth);
    const fam = familiarString(ref);
    const full = referenceString(ref);
    // Up to date? A HEAD of the manifest is enough.
    const local = this.#svc.store.name(full);
    if (local && ref.tag !== undefined && !options.platform) {
      try {
        const head = await this.#registry.headManifest(ref, { auth, signal: options.signal });
        const have = this.#svc.store.get(local.imageId);
        if (local.targetDigest === head.digest && have && (await this.#complete(have))) {
          progress({ status: `Pulling from ${familiarName(ref) === ref.path ? ref.path : ref.path}`, id: ref.tag });
          progress({ status: `Digest: ${head.digest}` });
          progress({ status: `Status: Image is up to date for ${fam}` });
          this.#svc.event("pull", fam, familiarName(ref));
          return;
        }
      } catch (e) {
        this.#log.debug("manifest HEAD failed; pulling", { ref: full, error: (e as Error).message });
      }
    }
    if (ref.digest !== undefined && this.#svc.store.name(full)) {
      const n = this.#svc.store.name(full);
      if (n && this.#svc.store.get(n.imageId)) {
        progress({ status: `${ref.path}@${ref.digest}: Pulling from ${ref.path}` });
        progress({ status: `Digest: ${ref.digest}` });
        progress({ status: `Status: Image is up to date for ${fam}` });
        return;
      }
    }
    progress({ status: `Pulling from ${ref.path}`, id: ref.tag ?? ref.digest ?? "latest" });
    const leased: string[] = [];
    const lease = (d: string) => {
      leased.push(d);
      this.#svc.leases.add(d);
    };
    let pipe: UnpackPipeline | undefined;
    try {
      const img = await this.#registry.fetchImage(ref, {
        auth,
        signal: options.signal,
        platform: options.platform,
        onProgress: (e) => progress(toMessage(e)),
        onConfig: async (config, layers, attempt) => {
          // A fallback to another endpoint: the failed attempt's unpacks stop first.
          await pipe?.settled();
          if (layers.length !== config.rootfs.diff_ids.length) return;
          pipe = new UnpackPipeline(this.#svc.unpacker, layers, config.rootfs.diff_ids, { signal: attempt, progress, lease });
        },
        onLayerStream: (i, layer, body) => {
          if (!pipe?.stream(i, body)) return false;
          lease(layer.digest);
          return true;
        },
        onLayerFetched: (i, layer) => {
          lease(layer.digest);
          return pipe?.fetched(i);
        },
      });
      lease(img.configDigest);
      lease(img.manifestDigest);
      if (img.indexDigest) lease(img.indexDigest);
      const diffIds = img.config.rootfs.diff_ids;
      if (img.layers.length !== diffIds.length) {
        throw invalidArgument(`Image "${fam}" has ${img.layers.length} layers but its config lists ${diffIds.length} diff IDs`);
      }
      // The pipeline unpacked every layer before fetchImage returned; anything it did not
      // (no config callback), in order here, each layer on the previous chain.
      const chains = chainIds(diffIds);
      for (let i = 0; i < img.layers.length; i++) {
        const layer = img.layers[i];
        const c = chains[i];
        const d = diffIds[i];
        if (!layer || !c || !d) continue;
        if (this.#svc.unpacker.has(c)) continue;
        lease(c);
        progress({ status: "Extracting", progressDetail: {}, id: shortHex(layer.digest) });
        await this.#svc.unpacker.unpack(layer, d, c, i > 0 ? chains[i - 1] : undefined, options.signal ? { signal: options.signal } : {});
        progress({ status: "Pull complete", progressDetail: {}, id: shortHex(layer.digest) });
      }
      const names: { name: string; kind: "tag" | "digest"; targetDigest: Digest }[] = [
        { name: `${repoName(ref)}@${img.digest}`, kind: "digest", targetDigest: img.digest },
      ];
      if (ref.tag !== undefined) names.unshift({ name: full, kind: "tag", targetDigest: img.digest });
      const blobs = [img.configDigest, img.manifestDigest, ...img.layers.map((l) => l.digest)];
      if (img.indexDigest) blobs.push(img.indexDigest);
      const before = this.#svc.store.name(full);
      await this.#svc.record({ id: img.configDigest, manifestDigest: img.manifestDigest, manifestMediaType: img.mediaType, blobs }, names);
      this.#svc.store.addBlobSources(
        img.layers.map((l) => l.digest),
        ref.domain,
        ref.path,
      );
      progress({ status: `Digest: ${img.digest}` });
      const newer = !before || before.imageId !== img.configDigest;
      progress({ status: `Status: ${newer ? "Downloaded newer image" : "Image is up to date"} for ${fam}` });
      this.#svc.event("pull", fam, familiarName(ref));
    } catch (e) {
      // The failed attempt aborted its unpacks: let them remove their snapshots first.
      await pipe?.settled();
      throw e;
    } finally {
      for (const d of leased) this.#svc.leases.delete(d);
    }
  }

  /** Whether every blob and layer snapshot of a stored image is present (else a pull repairs it). */
  async #complete(img: { id: Digest; manifestDigest: Digest }): Promise<boolean> {
    try {
      const rec = this.#svc.store.get(img.id);
      if (!rec) return false;
      const m = await this.#svc.store.manifest(rec);
      for (const b of [m.config, ...m.layers]) if (!(await this.#svc.content.has(b.digest))) return false;
      const top = await this.#svc.topChainId(rec);
      return top === undefined || this.#svc.unpacker.has(top);
    } catch {
      return false;
    }
  }

  async push(name: string, options: PushOptions): Promise<void> {
    const progress = options.progress;
    let ref: Reference;
    try {
      ref = parseReference(options.tag ? `${name}:${options.tag}` : name);
    } catch (e) {
      throw invalidArgument((e as Error).message);
    }
    let refs: Reference[];
    if (ref.tag === undefined && ref.digest === undefined) {
      // All local tags of the repository, as `docker push --all-tags`.
      refs = this.#svc.store
        .names()
        .filter((n) => n.kind === "tag" && repoName(parseReference(n.name)) === repoName(ref))
        .map((n) => parseReference(n.name));
      if (refs.length === 0) throw invalidArgument(`An image does not exist locally with the tag: ${familiarName(ref)}`);
    } else refs = [ref];
    progress({ status: `The push refers to repository [${ref.domain === "docker.io" ? `docker.io/${ref.path}` : repoName(ref)}]` });
    for (const r of refs) {
      const n = this.#svc.store.name(referenceString(r));
      const img = n ? this.#svc.store.get(n.imageId) : undefined;
      if (!img) throw invalidArgument(`An image does not exist locally with the tag: ${familiarString(r)}`);
      const manifest = await this.#svc.store.manifest(img);
      const manifestBytes = await this.#svc.content.readBytes(img.manifestDigest);
      for (const b of [manifest.config, ...manifest.layers]) {
        if (!(await this.#svc.content.has(b.digest))) {
          throw invalidArgument(`Cannot push "${familiarString(r)}": blob "${b.digest}" is missing from the store`);
        }
      }
      const sameRegistryRepos = this.#svc.store
        .names()
        .map((x) => parseReference(x.name))
        .filter((x) => x.domain === r.domain && x.path !== r.path)
        .map((x) => x.path);
      // Where each blob was pulled from or pushed to before, then this registry's other repositories.
      const store = this.#svc.store;
      const mountFrom = (b: Descriptor) => [
        ...new Set([...store.blobSources(b.digest, r.domain).filter((p) => p !== r.path), ...sameRegistryRepos]),
      ];
      const pushed = await this.#registry.pushImage(r, {
        auth: credentials(options.auth),
        signal: options.signal,
        manifestBytes,
        mediaType: img.manifestMediaType,
        blobs: [...manifest.layers, manifest.config],
        mountFrom,
        onProgress: (e) => progress(toMessage(e)),
      });
      const tag = r.tag ?? "latest";
      progress({ status: `${tag}: digest: ${pushed.digest} size: ${pushed.size}` });
      progress({ progressDetail: {}, aux: { Tag: tag, Digest: pushed.digest, Size: pushed.size } });
      this.#svc.store.put(img, [], [{ name: `${repoName(r)}@${pushed.digest}`, kind: "digest", targetDigest: pushed.digest }]);
      this.#svc.store.addBlobSources(
        manifest.layers.map((l) => l.digest),
        r.domain,
        r.path,
      );
      this.#svc.event("push", familiarString(r), familiarName(r));
    }
  }
}
