import { randomBytes } from "node:crypto";
import { applyLayer } from "../archive/mod.ts";
import { type Digest, type Host, invalidArgument, sha256, shortHex } from "../base/mod.ts";
import type { ContentStore } from "../content/mod.ts";
import type { Descriptor } from "../oci/mod.ts";
import type { OverlaySnapshotter } from "./overlay.ts";

/** Chain IDs of a layer stack (image-spec config.md): chain(L1) = diff(L1); chain(Ln) = sha256(chain(Ln-1) + " " + diff(Ln)). */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  let prev: Digest | undefined;
  for (const d of diffIds) {
    prev = prev === undefined ? d : sha256(`${prev} ${d}`);
    out.push(prev);
  }
  return out;
}

/** Label on committed layer snapshots: the layer's uncompressed size in bytes. */
export const SIZE_LABEL = "berth.layer.size";
/** Label on committed layer snapshots: the layer's diff ID. */
export const DIFF_LABEL = "berth.layer.diff-id";

/**
 * Unpacks image layers into committed snapshots named by chain ID. A layer whose chain
 * snapshot exists is skipped; concurrent unpacks of one chain ID in this process share the
 * work. A layer whose uncompressed digest is not the config's diff ID is rejected and nothing
 * of it remains.
 */
export class Unpacker {
  #snap: OverlaySnapshotter;
  #content: ContentStore;
  #host: Host;
  #running = new Map<string, Promise<void>>();
  #maxSize: number | undefined;

  /** `maxLayerSize` caps every layer's uncompressed size (default: applyLayer's cap). */
  constructor(snap: OverlaySnapshotter, content: ContentStore, host: Host, options: { maxLayerSize?: number } = {}) {
    this.#snap = snap;
    this.#content = content;
    this.#host = host;
    this.#maxSize = options.maxLayerSize;
  }

  /** Whether the snapshot for a chain ID exists. */
  has(chainId: Digest): boolean {
    return this.#snap.stat(chainId)?.kind === "committed";
  }

  /**
   * Unpacks one layer on top of `parent` (the previous chain ID). The blob is read from the
   * content store, or from `options.stream` when given: its bytes as they download, a stream
   * that must end only once the blob is verified and committed (so that no snapshot is
   * committed from bytes that fail the digest check). A stream that is not needed (the chain
   * is there, or being unpacked by another caller) is closed unread.
   */
  async unpack(
    layer: Descriptor,
    diffId: Digest,
    chainId: Digest,
    parent: Digest | undefined,
    options: { signal?: AbortSignal; maxSize?: number; stream?: AsyncIterable<unknown> } = {},
  ): Promise<void> {
    const running = this.has(chainId) ? undefined : this.#running.get(chainId);
    if (this.has(chainId) || running) {
      if (options.stream) await options.stream[Symbol.asyncIterator]().return?.();
      if (running) await running;
      return;
    }
    const p = this.#unpack(layer, diffId, chainId, parent, options);
    this.#running.set(chainId, p);
    try {
      await p;
    } finally {
      this.#running.delete(chainId);
    }
  }

  async #unpack(
    layer: Descriptor,
    diffId: Digest,
    chainId: Digest,
    parent: Digest | undefined,
    options: { signal?: AbortSignal; maxSize?: number; stream?: AsyncIterable<unknown> },
  ): Promise<void> {
    const key = `extract-${randomBytes(4).toString("hex")}-${shortHex(chainId)}`;
    try {
      await this.#snap.prepare(key, parent, { "berth.extract": "1" });
    } catch (e) {
      if (options.stream) await options.stream[Symbol.asyncIterator]().return?.();
      throw e;
    }
    try {
      const target = this.#snap.dir(key);
      const lowers = this.#snap.chainDirs(parent);
      const stream = options.stream ?? (await this.#content.reader(layer.digest));
      const opts: Parameters<typeof applyLayer>[2] = { lowers, host: this.#host, layerName: layer.digest };
      if (options.signal) opts.signal = options.signal;
      const maxSize = options.maxSize ?? this.#maxSize;
      if (maxSize !== undefined) opts.maxSize = maxSize;
      const r = await applyLayer(stream, target, opts);
      if (r.diffId !== diffId) {
        throw invalidArgument(
          `Cannot unpack layer "${layer.digest}": its content hashes to "${r.diffId}", but the image config says "${diffId}"`,
        );
      }
      await this.#snap.commit(chainId, key, { [SIZE_LABEL]: String(r.size), [DIFF_LABEL]: diffId });
    } catch (e) {
      // A download must never wait for a consumer that gave up.
      if (options.stream) await options.stream[Symbol.asyncIterator]().return?.();
      await this.#snap.remove(key).catch(() => {});
      throw e;
    }
  }

  /**
   * Unpacks a layer whose diff ID is not known in advance (import, load of legacy archives,
   * commit): it is applied to a temporary snapshot and committed under the chain ID its
   * content gives. Returns the diff ID and chain ID.
   */
  async unpackUnknown(
    blob: Digest,
    parent: Digest | undefined,
    options: { signal?: AbortSignal } = {},
  ): Promise<{ diffId: Digest; chainId: Digest; size: number }> {
    const key = `extract-${randomBytes(4).toString("hex")}-unknown`;
    await this.#snap.prepare(key, parent, { "berth.extract": "1" });
    try {
      const target = this.#snap.dir(key);
      const stream = await this.#content.reader(blob);
      const opts: Parameters<typeof applyLayer>[2] = { lowers: this.#snap.chainDirs(parent), host: this.#host, layerName: blob };
      if (options.signal) opts.signal = options.signal;
      if (this.#maxSize !== undefined) opts.maxSize = this.#maxSize;
      const r = await applyLayer(stream, target, opts);
      const chainId = parent === undefined ? r.diffId : sha256(`${parent} ${r.diffId}`);
      if (this.has(chainId)) {
        await this.#snap.remove(key);
      } else {
        await this.#snap.commit(chainId, key, { [SIZE_LABEL]: String(r.size), [DIFF_LABEL]: r.diffId });
      }
      return { diffId: r.diffId, chainId, size: r.size };
    } catch (e) {
      await this.#snap.remove(key).catch(() => {});
      throw e;
    }
  }

  /** Uncompressed size of the layer committed as `chainId` (0 if unknown). */
  layerSize(chainId: Digest): number {
    const s = this.#snap.stat(chainId);
    return Number(s?.labels[SIZE_LABEL] ?? 0);
  }
}
