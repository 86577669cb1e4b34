import { isDigest } from "../base/mod.ts";
import { invalidArgument } from "../base/mod.ts";
import { isIndexMediaType, isManifestMediaType, MediaType } from "./media.ts";
import type { Descriptor, ImageConfig, Index, Manifest } from "./types.ts";

/** Largest manifest or index berth accepts (the distribution spec's suggested 4 MiB). */
export const MAX_MANIFEST_SIZE = 4 * 1024 * 1024;
/** Most layers an image may have: overlayfs cannot stack many more lower directories anyway. */
export const MAX_LAYERS = 500;
/** Most entries an index may have. */
export const MAX_INDEX_ENTRIES = 10000;

/**
 * Parses JSON and rejects duplicate object keys, which different parsers resolve differently
 * and so can make two readers of one manifest see two different images.
 */
export function parseStrictJson(text: string, what = "document"): unknown {
  let i = 0;
  const n = text.length;
  const fail = (m: string): never => {
    throw invalidArgument(`Invalid ${what}: ${m} at offset ${i}`);
  };
  const ws = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 32 || c === 9 || c === 10 || c === 13) i++;
      else break;
    }
  };
  const str = (): string => {
    const start = i;
    i++;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 92) i += 2;
      else if (c === 34) {
        i++;
        return JSON.parse(text.slice(start, i)) as string;
      } else i++;
    }
    return fail("unterminated string");
  };
  let depth = 0;
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === "{") {
      if (++depth > 64) fail("nesting too deep");
      i++;
      const keys = new Set<string>();
      ws();
      if (text[i] === "}") {
        i++;
        depth--;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail("expected key");
        const k = str();
        if (keys.has(k)) fail(`duplicate key "${k}"`);
        keys.add(k);
        ws();
        if (text[i] !== ":") fail("expected ':'");
        i++;
        value();
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "}") {
          i++;
          depth--;
          return;
        }
        fail("expected ',' or '}'");
      }
    } else if (c === "[") {
      if (++depth > 64) fail("nesting too deep");
      i++;
      ws();
      if (text[i] === "]") {
        i++;
        depth--;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "]") {
          i++;
          depth--;
          return;
        }
        fail("expected ',' or ']'");
      }
    } else if (c === '"') {
      str();
    } else {
      const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 64));
      if (!m) fail("unexpected token");
      i += m?.[0].length ?? 0;
    }
  };
  value();
  ws();
  if (i !== n) fail("trailing data");
  try {
    return JSON.parse(text);
  } catch (e) {
    throw invalidArgument(`Invalid ${what}: ${(e as Error).message}`);
  }
}

function checkDescriptor(d: unknown, where: string): Descriptor {
  const o = d as Partial<Descriptor> | null;
  if (!o || typeof o !== "object") throw invalidArgument(`Invalid ${where}: not an object`);
  if (typeof o.mediaType !== "string") throw invalidArgument(`Invalid ${where}: missing mediaType`);
  if (!isDigest(o.digest)) throw invalidArgument(`Invalid ${where}: bad digest "${String(o.digest).slice(0, 100)}"`);
  if (typeof o.size !== "number" || !Number.isSafeInteger(o.size) || o.size < 0) {
    throw invalidArgument(`Invalid ${where}: bad size`);
  }
  return o as Descriptor;
}

export type ParsedManifest =
  | { kind: "index"; mediaType: string; index: Index }
  | { kind: "manifest"; mediaType: string; manifest: Manifest };

/**
 * Parses a manifest or index from its raw bytes, checking it is exactly one of the two, that
 * its `mediaType` agrees with the `Content-Type` it was served with, and every descriptor.
 */
export function parseManifest(bytes: Uint8Array, contentType?: string): ParsedManifest {
  if (bytes.length > MAX_MANIFEST_SIZE) throw invalidArgument(`Manifest is larger than ${MAX_MANIFEST_SIZE} bytes`);
  const doc = parseStrictJson(Buffer.from(bytes).toString("utf8"), "manifest") as Record<string, unknown>;
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw invalidArgument("Invalid manifest: not an object");
  const hasManifests = "manifests" in doc;
  const hasLayers = "layers" in doc || "config" in doc;
  if (hasManifests && hasLayers) throw invalidArgument('Invalid manifest: has both "manifests" and "layers"');
  if (doc.schemaVersion !== 2) {
    if (doc.schemaVersion === 1)
      throw invalidArgument("Docker image manifest schema 1 is not supported: push the image again with a newer client");
    throw invalidArgument("Invalid manifest: schemaVersion is not 2");
  }
  const ct = contentType?.split(";")[0]?.trim();
  const declared = typeof doc.mediaType === "string" ? doc.mediaType : undefined;
  if (declared && ct && ct !== declared && (isIndexMediaType(ct) || isManifestMediaType(ct))) {
    throw invalidArgument(`Invalid manifest: mediaType "${declared}" does not match Content-Type "${ct}"`);
  }
  const mt =
    declared ??
    (isIndexMediaType(ct) || isManifestMediaType(ct) ? ct : undefined) ??
    (hasManifests ? MediaType.OciIndex : MediaType.OciManifest);
  if (hasManifests || isIndexMediaType(mt)) {
    if (!Array.isArray(doc.manifests)) throw invalidArgument("Invalid index: manifests is not a list");
    if (doc.manifests.length > MAX_INDEX_ENTRIES) throw invalidArgument(`Invalid index: more than ${MAX_INDEX_ENTRIES} entries`);
    doc.manifests.forEach((d, k) => {
      checkDescriptor(d, `index entry ${k}`);
    });
    return { kind: "index", mediaType: mt, index: doc as unknown as Index };
  }
  if (!isManifestMediaType(mt)) throw invalidArgument(`Unsupported manifest media type "${mt}"`);
  checkDescriptor(doc.config, "manifest config");
  if (!Array.isArray(doc.layers)) throw invalidArgument("Invalid manifest: layers is not a list");
  if (doc.layers.length > MAX_LAYERS) throw invalidArgument(`Invalid manifest: more than ${MAX_LAYERS} layers`);
  doc.layers.forEach((d, k) => {
    checkDescriptor(d, `layer ${k}`);
  });
  return { kind: "manifest", mediaType: mt, manifest: doc as unknown as Manifest };
}

/** Parses and checks an image config blob. */
export function parseImageConfig(bytes: Uint8Array): ImageConfig {
  if (bytes.length > MAX_MANIFEST_SIZE * 2) throw invalidArgument("Image config is too large");
  const c = parseStrictJson(Buffer.from(bytes).toString("utf8"), "image config") as ImageConfig;
  if (!c || typeof c !== "object") throw invalidArgument("Invalid image config: not an object");
  if (c.rootfs?.type !== "layers" || !Array.isArray(c.rootfs.diff_ids)) {
    throw invalidArgument("Invalid image config: missing rootfs.diff_ids");
  }
  for (const d of c.rootfs.diff_ids)
    if (!isDigest(d)) throw invalidArgument(`Invalid image config: bad diff_id "${String(d).slice(0, 100)}"`);
  if (c.rootfs.diff_ids.length > MAX_LAYERS) throw invalidArgument(`Invalid image config: more than ${MAX_LAYERS} layers`);
  return c;
}
